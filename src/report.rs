//! `report.html`: what a reviewer reads. One self-contained page — no script, no style
//! sheet or font from elsewhere, no network — with the verdict in the plain wording the
//! Justice Data Lab uses, the contract's rules as the spec states them, the measures and
//! their intervals, a chart, the exclusion ledger by reason, any claims reconciliation,
//! the findings, and how to check the bundle. Every number on it is the same string as
//! in results.json, so the page cannot say something the evidence does not.

use crate::evidence::{float, RATE_PLACES};
use crate::exact::{minor_to_decimal, Ratio};
use crate::measures::measure_name;
use crate::pipeline::Audit;
use crate::spec::{Comparator, CountingUnit, Measure, ThresholdKind};

/// Escapes text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(r: Ratio) -> String {
    r.times(Ratio::from_int(100)).to_fixed(1)
}

fn comparator_words(audit: &Audit) -> String {
    match &audit.spec.comparator {
        Comparator::FixedBaseline { source, .. } => {
            format!("the published baseline ({})", esc(source))
        }
        Comparator::Historical { period } => format!("the baseline period {}", esc(&period.name)),
        Comparator::CaseMix(c) => format!(
            "the area's baseline period {}, adjusted for the cohort's risk mix",
            esc(&c.baseline.name)
        ),
        Comparator::Matched(_) => "the matched comparison group".into(),
        Comparator::Predicted => "the cohort's own predicted rate".into(),
        Comparator::None => "no comparator".into(),
    }
}

/// The verdict sentence of one evaluation.
fn sentence(audit: &Audit, e: &crate::decision::Evaluation) -> String {
    let o = &audit.spec.outcome;
    let (treated, comparator) = match o.measure {
        Measure::Binary => (
            format!("{}%", pct(e.treated)),
            format!("{}%", pct(e.comparator)),
        ),
        Measure::FrequencyPerOffender => (
            format!("{} per 100 offenders", pct(e.treated)),
            format!("{} per 100 offenders", pct(e.comparator)),
        ),
        _ => (e.treated.to_fixed(3), e.comparator.to_fixed(3)),
    };
    let what = match o.measure {
        Measure::Binary => "one-year proven reoffending rate",
        Measure::FrequencyPerOffender => "number of proven reoffences per offender",
        Measure::FrequencyPerReoffender => "number of proven reoffences per reoffender",
        Measure::DaysToFirst => "mean time to the first proven reoffence, in days,",
    };
    let significance = match e.significant {
        Some(true) => " The difference is statistically significant.",
        Some(false) => " The difference is not statistically significant.",
        None => "",
    };
    format!(
        "The {what} for {} people in {} was {treated}, compared with {comparator} for {}.{significance} The target was {} ({}).",
        e.people,
        esc(&e.scope),
        comparator_words(audit),
        if e.met { "met" } else { "missed" },
        e.code()
    )
}

/// An SVG chart: treated and comparator for each evaluation, the interval of the
/// difference placed on the treated bar, and the threshold line.
fn chart(audit: &Audit) -> String {
    let evals = &audit.evaluations;
    if evals.is_empty() {
        return String::new();
    }
    let max = evals
        .iter()
        .flat_map(|e| [e.treated.to_f64(), e.comparator.to_f64()])
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.25;
    let (w, h, left, bottom) = (160.0 * evals.len() as f64 + 60.0, 260.0, 50.0, 230.0);
    let y = |v: f64| bottom - v / max * 200.0;
    let mut s = format!(
        "<svg width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-labelledby=\"chart-title\"><title id=\"chart-title\">Cohort against comparator for each evaluation, with the interval of the difference and the threshold</title>"
    );
    s += &format!(
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{w:.0}\" y2=\"{bottom}\" stroke=\"black\"/>"
    );
    for (i, e) in evals.iter().enumerate() {
        let x0 = left + 20.0 + 160.0 * i as f64;
        let (t, c) = (e.treated.to_f64(), e.comparator.to_f64());
        s += &format!(
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"50\" height=\"{:.1}\" fill=\"#4a6fa5\"><title>cohort {}</title></rect>",
            y(t),
            bottom - y(t),
            e.treated.to_fixed(RATE_PLACES)
        );
        s += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"50\" height=\"{:.1}\" fill=\"#b0b0b0\"><title>comparator {}</title></rect>",
            x0 + 60.0,
            y(c),
            bottom - y(c),
            e.comparator.to_fixed(RATE_PLACES)
        );
        // Threshold line: the value the cohort had to reach.
        let line = if crate::measures::lower_is_better(audit.spec.outcome.measure) {
            e.comparator.minus(e.required)
        } else {
            e.comparator.plus(e.required)
        };
        s += &format!(
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c0392b\" stroke-dasharray=\"4 2\"><title>threshold {}</title></line>",
            x0 - 5.0,
            y(line.to_f64()),
            x0 + 115.0,
            y(line.to_f64()),
            line.to_fixed(RATE_PLACES)
        );
        let interval = audit
            .matched_scopes
            .iter()
            .find(|m| m.scope == e.scope)
            .map(|m| m.inference.clone())
            .or_else(|| {
                audit
                    .predicted_scopes
                    .iter()
                    .find(|p| p.scope == e.scope)
                    .and_then(|p| p.inference.clone())
            });
        if let Some(i) = interval {
            // The interval of the difference, placed around the cohort's value.
            let (lo, hi) = (c + i.lower, c + i.upper);
            s += &format!(
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"2\"><title>interval {} to {}</title></line>",
                x0 + 25.0,
                y(lo.max(0.0)),
                x0 + 25.0,
                y(hi.max(0.0)),
                float(i.lower),
                float(i.upper)
            );
        }
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            x0,
            bottom + 18.0,
            esc(&e.scope)
        );
    }
    s += "</svg>";
    s
}

/// A table of the report: its header and its rows of cell text (unescaped).
pub(crate) type Table = (Vec<String>, Vec<Vec<String>>);

/// A header from fixed column names.
pub(crate) fn head(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Header and rows of the case-mix tables (areas × periods, then the year), values as
/// in results.json.
fn case_mix_tables(audit: &Audit) -> Option<(Table, Table)> {
    let r = audit.case_mix.as_ref()?;
    let fixed = |x: Option<Ratio>| x.map(|v| v.to_fixed(RATE_PLACES)).unwrap_or_default();
    let cells = r
        .cells
        .iter()
        .map(|c| {
            vec![
                c.scope.clone(),
                c.cohort.people.to_string(),
                fixed(Some(c.rate)),
                fixed(Some(c.baseline_rate)),
                fixed(Some(c.adjustment)),
                fixed(Some(c.adjusted_baseline)),
                c.binary_inference
                    .as_ref()
                    .map(|i| crate::evidence::float(i.p_value))
                    .unwrap_or_default(),
                fixed(c.frequency),
                fixed(c.baseline_frequency),
                if c.frequency_fell { "yes" } else { "no" }.to_string(),
                minor_to_decimal(c.binary_minor + c.frequency_minor),
            ]
        })
        .collect();
    let annual = r
        .summaries
        .iter()
        .map(|y| {
            vec![
                y.area.clone(),
                y.cohort.people.to_string(),
                fixed(y.cohort.rate()),
                fixed(y.baseline.rate()),
                fixed(y.cohort.frequency()),
                fixed(y.baseline.frequency()),
                minor_to_decimal(y.amount_minor),
            ]
        })
        .collect();
    Some((
        (
            head(&[
                "area/period",
                "people",
                "rate",
                "baseline rate",
                "risk adjustment",
                "adjusted baseline",
                "p (binary)",
                "reoffences per reoffender",
                "baseline",
                "frequency fell",
                "amount",
            ]),
            cells,
        ),
        (
            head(&[
                "area",
                "people",
                "rate",
                "baseline rate",
                "reoffences per reoffender",
                "baseline",
                "amount",
            ]),
            annual,
        ),
    ))
}

pub(crate) fn html_table(caption: &str, (head, rows): &Table) -> String {
    let mut h = format!("<table><caption>{}</caption>\n<tr>", esc(caption));
    for c in head.iter() {
        h += &format!("<th>{}</th>", esc(c));
    }
    h += "</tr>\n";
    for r in rows {
        h += &row(&r.iter().map(|c| esc(c)).collect::<Vec<_>>());
        h += "\n";
    }
    h + "</table>\n"
}

pub(crate) fn md_table((head, rows): &Table) -> String {
    let mut m = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        m += &format!("| {} |\n", r.join(" | "));
    }
    m + "\n"
}

const CASE_MIX_NOTE: &str = "Each area's cohort in each period is compared with the area's baseline rate moved by the risk adjustment (the cohort's mean predicted probability minus the baseline cohort's). Reoffences per reoffender are paid only where the binary target is met (the binary hurdle).";

/// One table row of already-escaped cells.
pub(crate) fn row(cells: &[String]) -> String {
    let mut s = String::from("<tr>");
    for c in cells {
        s += &format!("<td>{c}</td>");
    }
    s + "</tr>"
}

/// report.html, as bytes.
pub fn report_html(audit: &Audit) -> Vec<u8> {
    let spec = &audit.spec;
    let o = &spec.outcome;
    let c = &spec.contract;
    let mut h =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h += &format!("<title>Audit {}</title>\n", esc(&c.id));
    h += "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}table{border-collapse:collapse;margin:1em 0;display:block;max-width:100%;overflow-x:auto}td,th{border:1px solid #999;padding:.2em .5em;text-align:left}caption{font-weight:bold;text-align:left}svg{max-width:100%;height:auto}</style>\n</head>\n<body>\n";
    h += &format!("<h1>{}</h1>\n<p>Contract <code>{}</code>: {} (commissioner), {} (provider), {} (evaluator).</p>\n",
        esc(&c.title), esc(&c.id), esc(&c.commissioner), esc(&c.provider), esc(&c.evaluator));

    h += "<h2>Verdict</h2>\n";
    for e in &audit.evaluations {
        h += &format!("<p>{}</p>\n", sentence(audit, e));
    }
    h += &format!(
        "<p>Payment: {} {} ({}). Verdict code: <code>{}</code>.</p>\n",
        esc(&spec.payment.currency),
        minor_to_decimal(audit.total_minor),
        crate::evidence::direction(audit.total_minor),
        crate::evidence::verdict_code(audit)
    );

    h += "<h2>The contract's rules</h2>\n<table><caption>Rules as the spec states them</caption>\n";
    let unit = match o.unit {
        CountingUnit::Offence => "offence",
        CountingUnit::ConvictionEvent => "conviction event (court appearance)",
    };
    let threshold = match (
        spec.threshold.kind,
        spec.threshold.per_period,
        spec.threshold.pooled,
    ) {
        (_, None, None) => "none".to_string(),
        (k, per, pooled) => format!(
            "{} reduction{}{}",
            match k {
                ThresholdKind::Points => "points",
                ThresholdKind::Relative => "relative",
            },
            per.map(|r| format!(", per period at least {}", r.to_fixed(RATE_PLACES)))
                .unwrap_or_default(),
            pooled
                .map(|r| format!(", pooled at least {}", r.to_fixed(RATE_PLACES)))
                .unwrap_or_default()
        ),
    };
    for (k, v) in [
        ("measure", measure_name(o.measure).to_string()),
        ("counting unit", unit.to_string()),
        (
            "follow-up window",
            format!(
                "{} months from the index date ({:?} end)",
                o.window_months, o.window_end
            )
            .to_lowercase(),
        ),
        ("court lag", format!("{} months", o.lag_months)),
        ("comparator", comparator_words(audit)),
        ("threshold", threshold),
        (
            "periods",
            spec.cohort
                .periods
                .iter()
                .map(|p| {
                    format!(
                        "{} ({} to {})",
                        p.name,
                        crate::dates::format_day(p.from),
                        crate::dates::format_day(p.to)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ] {
        h += &row(&[k.to_string(), esc(&v)]);
        h += "\n";
    }
    h += "</table>\n";

    if !audit.evaluations.is_empty() {
        h += "<h2>Measures</h2>\n<table><caption>Each evaluation (values as in results.json)</caption>\n<tr><th>scope</th><th>people</th><th>cohort</th><th>comparator</th><th>improvement</th><th>required</th><th>decision</th></tr>\n";
        for e in &audit.evaluations {
            h += &row(&[
                esc(&e.scope),
                e.people.to_string(),
                e.treated.to_fixed(RATE_PLACES),
                e.comparator.to_fixed(RATE_PLACES),
                e.improvement.to_fixed(RATE_PLACES),
                e.required.to_fixed(RATE_PLACES),
                e.code().to_string(),
            ]);
            h += "\n";
        }
        h += "</table>\n<h2>Chart</h2>\n";
        h += &chart(audit);
        h += "\n<p>Blue: the cohort; grey: the comparator; dashed red: the value the cohort had to reach; black: the interval of the difference, where one was computed.</p>\n";
    }
    h += &crate::report_sections::matched_html(audit);
    h += &crate::report_sections::sensitivity_html(audit);

    if let Some((cells, annual)) = case_mix_tables(audit) {
        h += &format!("<h2>Areas and periods</h2>\n<p>{CASE_MIX_NOTE}</p>\n");
        h += &html_table(
            "Each area and period against its case-mix-adjusted baseline",
            &cells,
        );
        h += &html_table("The year, per area and over all areas", &annual);
    }

    h += "<h2>Payment</h2>\n<table><caption>What is owed, line by line</caption>\n<tr><th>scope</th><th>amount</th><th>explanation</th></tr>\n";
    for p in &audit.payments {
        h += &row(&[
            esc(&p.scope),
            minor_to_decimal(p.amount_minor),
            esc(&p.explanation),
        ]);
        h += "\n";
    }
    h += "</table>\n";

    h += "<h2>Exclusion ledger</h2>\n<table><caption>People in the data but not in the cohort, by rule</caption>\n<tr><th>period</th><th>rule</th><th>reason</th><th>people</th></tr>\n";
    for (g, group) in audit.cohort.groups.iter().enumerate() {
        let (eligible, excluded) = audit.cohort.group_counts(spec, g);
        h += &row(&[
            esc(&group.period.name),
            "(eligible)".into(),
            String::new(),
            eligible.to_string(),
        ]);
        for x in excluded {
            h += &row(&[
                esc(&group.period.name),
                esc(&x.rule),
                esc(&x.reason),
                x.count.to_string(),
            ]);
        }
        h += "\n";
    }
    for (rule, n) in audit.cohort.unassigned_counts() {
        h += &row(&[
            "(no period)".into(),
            esc(&rule),
            String::new(),
            n.to_string(),
        ]);
    }
    h += "</table>\n";

    if let Some(r) = &audit.reconciliation {
        h += &format!("<h2>Claims reconciliation</h2>\n<table><caption>Figures claimed by {} against the recomputation (tolerance {})</caption>\n<tr><th>scope</th><th>field</th><th>claimed</th><th>recomputed</th><th>status</th></tr>\n", esc(&r.party), r.tolerance.to_fixed(RATE_PLACES));
        for l in &r.lines {
            h += &row(&[
                esc(&l.scope),
                l.field.to_string(),
                esc(&l.claimed),
                esc(&l.recomputed),
                if l.agreed { "agreed" } else { "disputed" }.to_string(),
            ]);
            h += "\n";
        }
        h += "</table>\n";
    }

    h += "<h2>Provenance</h2>\n<table><caption>Inputs, by SHA-256</caption>\n<tr><th>input</th><th>file in the bundle</th><th>sha256</th><th>bytes</th></tr>\n";
    for i in audit.inputs() {
        h += &row(&[
            esc(&i.name),
            crate::evidence::input_bundle_path(&i.name, i.format),
            i.sha256.to_hex(),
            i.bytes.to_string(),
        ]);
        h += "\n";
    }
    h += &format!("</table>\n<p>Spec: <code>spec.toml</code>, sha256 <code>{}</code>. The signer's key is in <code>signer.pub.pem</code>; its fingerprint is printed by <code>outcome-audit verify</code>.</p>\n", spec.sha256.to_hex());
    h += "<h2>How to check this bundle</h2>\n<ol>\n<li><code>outcome-audit verify BUNDLE --key signer.pub.pem</code> checks the signature and every file's hash; <code>outcome-audit replay BUNDLE</code> recomputes every figure from the embedded inputs and compares them byte for byte.</li>\n<li>Without this tool: check <code>manifest.json</code> with <code>sha256sum</code>, the DSSE envelope <code>attestation.dsse.json</code> with Python securesystemslib, and <code>datapackage.json</code> with <code>frictionless validate</code> (docs/verify-without-us.md gives the commands).</li>\n</ol>\n</body>\n</html>\n";
    h.into_bytes()
}

/// The report as Markdown, for pasting into a review document: the verdict, the
/// evaluations table, the payment lines and the exclusion ledger, with the same
/// figures as report.html and results.json.
pub fn report_markdown(audit: &Audit) -> String {
    let spec = &audit.spec;
    let c = &spec.contract;
    let mut m = format!("# {}\n\nContract `{}`: {} (commissioner), {} (provider), {} (evaluator).\n\n## Verdict\n\n", c.title, c.id, c.commissioner, c.provider, c.evaluator);
    for e in &audit.evaluations {
        m += &format!("{}\n\n", sentence(audit, e).replace("&amp;", "&"));
    }
    m += &format!(
        "Payment: {} {} ({}). Verdict code: `{}`.\n\n",
        spec.payment.currency,
        minor_to_decimal(audit.total_minor),
        crate::evidence::direction(audit.total_minor),
        crate::evidence::verdict_code(audit)
    );
    if !audit.evaluations.is_empty() {
        m += "## Measures\n\n| scope | people | cohort | comparator | improvement | required | decision |\n|---|---|---|---|---|---|---|\n";
        for e in &audit.evaluations {
            m += &format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                e.scope,
                e.people,
                e.treated.to_fixed(RATE_PLACES),
                e.comparator.to_fixed(RATE_PLACES),
                e.improvement.to_fixed(RATE_PLACES),
                e.required.to_fixed(RATE_PLACES),
                e.code()
            );
        }
        m += "\n";
    }
    if let Some((cells, annual)) = case_mix_tables(audit) {
        m += &format!("## Areas and periods\n\n{CASE_MIX_NOTE}\n\n");
        m += &md_table(&cells);
        m += &md_table(&annual);
    }
    m += "## Payment\n\n| scope | amount | explanation |\n|---|---|---|\n";
    for p in &audit.payments {
        m += &format!(
            "| {} | {} | {} |\n",
            p.scope,
            minor_to_decimal(p.amount_minor),
            p.explanation
        );
    }
    m += "\n## Exclusion ledger\n\n| period | rule | people |\n|---|---|---|\n";
    for (g, group) in audit.cohort.groups.iter().enumerate() {
        let (eligible, excluded) = audit.cohort.group_counts(spec, g);
        m += &format!("| {} | (eligible) | {} |\n", group.period.name, eligible);
        for x in excluded {
            m += &format!("| {} | {} | {} |\n", group.period.name, x.rule, x.count);
        }
    }
    m += &crate::report_sections::markdown(audit);
    m
}
