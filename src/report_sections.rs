//! Sections of `report.html` (and its Markdown form) that only some audits have: the
//! covariate balance and the overlap of propensity scores of a matched comparison, and
//! the sensitivity grid of a spec with `[sensitivity]`.
//!
//! Charts are inline SVG with a title, a description and a text alternative, and every
//! chart is followed by a table of the numbers it draws, so the page reads without
//! the picture. The numbers are the strings of the evidence: balance from
//! `results.json` → `matching.balance`, score bins from the logits of
//! `tables/propensity.csv` counted with integer arithmetic, the grid from
//! `results.json` → `sensitivity`.

use crate::evidence::float;
use crate::pipeline::Audit;
use crate::report::{esc, head, html_table, md_table, Table};

/// Number of bins of the propensity-score histogram.
pub const OVERLAP_BINS: usize = 20;

/// A logit as written in `tables/propensity.csv`, in billionths (exact).
fn nanos(x: f64) -> i64 {
    let s = float(x);
    let negative = s.starts_with('-');
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if negative {
        -v
    } else {
        v
    }
}

/// Bins of the logit of the score: `OVERLAP_BINS` equal bins from the whole unit below
/// the smallest logit to the whole unit above the largest, each holding the logits
/// `from ≤ x < to` (the last also its upper edge). Returns the edges in billionths and,
/// per bin, the treated people in the model, the eligible pool and the pool people
/// used as comparisons.
pub fn overlap_bins(audit: &Audit) -> Option<(Vec<i64>, Vec<[u64; 3]>)> {
    let m = audit.matched.as_ref()?;
    let treated: Vec<i64> = m
        .treated_logit
        .iter()
        .flatten()
        .map(|&l| nanos(l))
        .collect();
    let pool: Vec<i64> = m.pool_logit.iter().map(|&l| nanos(l)).collect();
    let all = treated.iter().chain(&pool);
    let (min, max) = (*all.clone().min()?, *all.max()?);
    const UNIT: i64 = 1_000_000_000;
    let lo = min.div_euclid(UNIT) * UNIT;
    let hi = (max.div_euclid(UNIT) + 1) * UNIT;
    let n = OVERLAP_BINS as i64;
    let bin = |x: i64| {
        (((x - lo) as i128 * n as i128 / (hi - lo) as i128) as usize).min(OVERLAP_BINS - 1)
    };
    let edges: Vec<i64> = (0..=n)
        .map(|k| lo + ((hi - lo) as i128 * k as i128 / n as i128) as i64)
        .collect();
    let mut counts = vec![[0u64; 3]; OVERLAP_BINS];
    for &x in &treated {
        counts[bin(x)][0] += 1;
    }
    for (k, &x) in pool.iter().enumerate() {
        counts[bin(x)][1] += 1;
        if m.weights[k] > 0 {
            counts[bin(x)][2] += 1;
        }
    }
    Some((edges, counts))
}

fn logit_text(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let a = n.unsigned_abs();
    format!(
        "{sign}{}.{:03}",
        a / 1_000_000_000,
        a % 1_000_000_000 / 1_000_000
    )
}

/// The balance (love) plot and its table, for matched comparisons.
fn balance_html(audit: &Audit) -> String {
    let Some(m) = &audit.matched else {
        return String::new();
    };
    let crate::spec::Comparator::Matched(cfg) = &audit.spec.comparator else {
        return String::new();
    };
    let limit = cfg.balance_limit.to_f64();
    let plotted: Vec<&crate::compare::BalanceRow> = m
        .balance
        .iter()
        .filter(|b| b.smd_before.abs() != f64::MAX && b.smd_after.abs() != f64::MAX)
        .collect();
    let max = plotted
        .iter()
        .flat_map(|b| [b.smd_before.abs(), b.smd_after.abs()])
        .fold(limit, f64::max)
        * 1.1;
    let (left, width, top, step) = (200.0, 360.0, 30.0, 18.0);
    let h = top + step * plotted.len() as f64 + 40.0;
    let x = |v: f64| left + v.abs() / max * width;
    let w = left + width + 20.0;
    let mut s = format!(
        "<svg width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-labelledby=\"balance-title balance-desc\"><title id=\"balance-title\">Covariate balance before and after matching</title><desc id=\"balance-desc\">Absolute standardised mean difference of each model term between the cohort and the pool (open circle) and between the cohort and the matched comparison group (filled circle); the dashed line is the limit {}. The table below gives every value.</desc>",
        cfg.balance_limit.to_fixed(crate::evidence::RATE_PLACES)
    );
    s += &format!(
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
        h - 30.0,
        left + width,
        h - 30.0
    );
    s += &format!(
        "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#c0392b\" stroke-dasharray=\"4 2\"><title>limit {2}</title></line>",
        x(limit),
        h - 30.0,
        cfg.balance_limit.to_fixed(crate::evidence::RATE_PLACES)
    );
    s += &format!(
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\">0</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">|SMD| {:.3}</text>",
        h - 14.0,
        left + width - 60.0,
        h - 14.0,
        max
    );
    for (i, b) in plotted.iter().enumerate() {
        let y = top + step * i as f64 + step / 2.0;
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 4.0,
            esc(&b.term)
        );
        s += &format!(
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"none\" stroke=\"#555\"><title>{} before {}</title></circle>",
            x(b.smd_before),
            esc(&b.term),
            float(b.smd_before)
        );
        s += &format!(
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#4a6fa5\"><title>{} after {}</title></circle>",
            x(b.smd_after),
            esc(&b.term),
            float(b.smd_after)
        );
    }
    s += "</svg>\n";
    s += "<p>Open circles: before matching (cohort against the whole eligible pool); filled: after matching (against the weighted comparison group); dashed red: the limit.</p>\n";
    s += &html_table(
        "Standardised mean differences (values as in results.json, matching.balance)",
        &balance_table(m),
    );
    s
}

/// Every model term's standardised mean difference, before and after matching.
fn balance_table(m: &crate::compare::MatchedAnalysis) -> Table {
    let rows = m
        .balance
        .iter()
        .map(|b| {
            vec![
                b.term.clone(),
                balance_value(b.smd_before),
                balance_value(b.smd_after),
                if b.within_limit { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    (
        head(&["term", "SMD before", "SMD after", "within the limit"]),
        rows,
    )
}

fn balance_value(x: f64) -> String {
    if x.abs() == f64::MAX {
        "constant-within-groups".into()
    } else {
        float(x)
    }
}

/// The overlap histogram of propensity scores and its table.
fn overlap_html(audit: &Audit) -> String {
    let Some((edges, counts)) = overlap_bins(audit) else {
        return String::new();
    };
    let totals = counts.iter().fold([0u64; 3], |mut t, c| {
        for k in 0..3 {
            t[k] += c[k];
        }
        t
    });
    let share = |c: u64, k: usize| c as f64 / totals[k].max(1) as f64;
    let max = counts
        .iter()
        .flat_map(|c| [share(c[0], 0), share(c[1], 1), share(c[2], 2)])
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let (left, bottom, bw, height) = (40.0, 230.0, 24.0, 200.0);
    let w = left + bw * OVERLAP_BINS as f64 + 20.0;
    let mut s = format!(
        "<svg width=\"{w:.0}\" height=\"270\" viewBox=\"0 0 {w:.0} 270\" role=\"img\" aria-labelledby=\"overlap-title overlap-desc\"><title id=\"overlap-title\">Overlap of propensity scores</title><desc id=\"overlap-desc\">Share of each group in {OVERLAP_BINS} bins of the logit of the propensity score, from {} to {}: the cohort (blue bars), the eligible pool (grey outline) and the pool people used as comparisons (black line). The table below gives every count.</desc>",
        logit_text(edges[0]),
        logit_text(edges[OVERLAP_BINS])
    );
    s += &format!(
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{w:.0}\" y2=\"{bottom}\" stroke=\"black\"/>"
    );
    let y = |v: f64| bottom - v / max * height;
    let mut matched_path = String::new();
    for (i, c) in counts.iter().enumerate() {
        let x0 = left + bw * i as f64;
        let (t, p, u) = (share(c[0], 0), share(c[1], 1), share(c[2], 2));
        s += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4a6fa5\" fill-opacity=\"0.7\"><title>cohort {} people, logit {} to {}</title></rect>",
            x0 + 1.0,
            y(t),
            bw - 2.0,
            bottom - y(t),
            c[0],
            logit_text(edges[i]),
            logit_text(edges[i + 1])
        );
        s += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#777\"><title>pool {} people</title></rect>",
            x0 + 1.0,
            y(p),
            bw - 2.0,
            bottom - y(p),
            c[1]
        );
        matched_path += &format!(
            "{}{:.1},{:.1} {:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            x0,
            y(u),
            x0 + bw,
            y(u)
        );
    }
    s += &format!(
        "<path d=\"{matched_path}\" fill=\"none\" stroke=\"black\" stroke-width=\"1.5\"><title>pool people used as comparisons</title></path>"
    );
    s += &format!(
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        bottom + 16.0,
        logit_text(edges[0]),
        w - 20.0,
        bottom + 16.0,
        logit_text(edges[OVERLAP_BINS])
    );
    s += "</svg>\n<p>Bars: the share of each group in each bin of the logit of the score; blue: the cohort; grey outline: the eligible pool; black line: the pool people used as comparisons. Where the cohort has people and the pool has none, no comparison is possible.</p>\n";
    s += &html_table(
        &format!(
            "Propensity-score bins (logits as in tables/propensity.csv; totals {} cohort, {} pool, {} used)",
            totals[0], totals[1], totals[2]
        ),
        &overlap_table(&edges, &counts),
    );
    s
}

/// The overlap bins: each bin's logit range and its counts.
fn overlap_table(edges: &[i64], counts: &[[u64; 3]]) -> Table {
    let rows = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                logit_text(edges[i]),
                logit_text(edges[i + 1]),
                c[0].to_string(),
                c[1].to_string(),
                c[2].to_string(),
            ]
        })
        .collect();
    (
        head(&[
            "logit from",
            "logit to",
            "cohort",
            "pool",
            "pool used as comparisons",
        ]),
        rows,
    )
}

/// The matched-comparison sections of report.html.
pub fn matched_html(audit: &Audit) -> String {
    if audit.matched.is_none() {
        return String::new();
    }
    let mut s = String::from("<h2>Balance</h2>\n");
    s += &balance_html(audit);
    s += "<h2>Propensity-score overlap</h2>\n";
    s += &overlap_html(audit);
    s
}

/// Rows of the sensitivity grid: header, then one row per variant (values as in
/// results.json → sensitivity).
fn grid_rows(audit: &Audit) -> Option<(String, Table)> {
    let out = crate::sensitivity::results_out(audit)?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut header = vec!["variant".to_string()];
    header.extend(out.fields.iter().map(|f| f.path.clone()));
    let own = &out.variants[out.spec_variant];
    for e in &own.evaluations {
        header.push(format!("{} improvement", e.scope));
        header.push(format!("{} decision", e.scope));
    }
    header.push(format!("payment {}", audit.spec.payment.currency));
    let mut rows = Vec::new();
    for v in &out.variants {
        let mut r = vec![format!(
            "{}{}",
            v.variant,
            if v.as_specified {
                " (the spec's own)"
            } else if !v.same_decision {
                " (decision differs)"
            } else {
                ""
            }
        )];
        r.extend(v.values.values().map(text));
        for e in &v.evaluations {
            r.push(e.improvement.value.clone());
            r.push(e.code.to_string());
        }
        r.push(v.payment_total.clone());
        rows.push(r);
    }
    let verdict = if out.robust {
        format!(
            "The decision is robust: every one of the {} variants reaches the spec's own decision ({}). Payments range from {} {} to {}.",
            out.variants.len(),
            out.decision,
            audit.spec.payment.currency,
            out.payment_min,
            out.payment_max
        )
    } else {
        let flips: Vec<String> = out
            .flips
            .iter()
            .map(|f| {
                format!(
                    "{} = {} instead of {} gives {}",
                    f.path,
                    text(&f.value),
                    text(&f.spec_value),
                    f.decision
                )
            })
            .collect();
        format!(
            "The decision is fragile: {} of the {} variants reach a different decision from the spec's own ({}).{}",
            out.flipping_variants.len(),
            out.variants.len(),
            out.decision,
            if flips.is_empty() {
                " No single change flips it; only combinations do.".to_string()
            } else {
                format!(" Alone, {}.", flips.join("; "))
            }
        )
    };
    Some((verdict, (header, rows)))
}

/// The sensitivity section of report.html.
pub fn sensitivity_html(audit: &Audit) -> String {
    let Some((verdict, rows)) = grid_rows(audit) else {
        return String::new();
    };
    format!(
        "<h2>Sensitivity of the decision</h2>\n<p>{}</p>\n{}",
        esc(&verdict),
        html_table(
            "Each variant of the spec (values as in results.json, sensitivity)",
            &rows
        )
    )
}

/// The balance, overlap and sensitivity sections as Markdown.
pub fn markdown(audit: &Audit) -> String {
    let mut m = String::new();
    if let Some(a) = &audit.matched {
        m += "\n## Balance\n\n";
        m += &md_table(&balance_table(a));
        if let Some((edges, counts)) = overlap_bins(audit) {
            m += "\n## Propensity-score overlap\n\n";
            m += &md_table(&overlap_table(&edges, &counts));
        }
    }
    if let Some((verdict, rows)) = grid_rows(audit) {
        m += &format!("\n## Sensitivity of the decision\n\n{verdict}\n\n");
        m += &md_table(&rows);
    }
    m
}
