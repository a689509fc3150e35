//! report.html: what a reviewer reads carries the evidence's own numbers, reads without
//! the network, and is well formed.

use crate::common::*;

/// Cell texts of the rows of the report's table whose caption starts with `caption`.
fn table_rows(html: &str, caption: &str) -> Vec<Vec<String>> {
    let start = html
        .find(&format!("<caption>{caption}"))
        .expect("table caption");
    let end = start + html[start..].find("</table>").expect("table end");
    html[start..end]
        .split("<tr>")
        .skip(1)
        .filter(|r| r.contains("<td>"))
        .map(|r| {
            r.split("<td>")
                .skip(1)
                .map(|c| c.split("</td>").next().unwrap_or("").to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_reports_numbers_are_the_results_numbers() {
    let sb = Sandbox::new();
    for spec in [
        "doncaster-historical",
        "peterborough-pooled",
        "predicted-vs-actual",
    ] {
        let b = sb.audit(committed_spec(spec));
        let html = std::fs::read_to_string(b.path("report.html")).unwrap();
        let r = b.results();
        let rows = table_rows(&html, "Each evaluation");
        let evals = r["evaluations"].as_array().unwrap();
        assert_eq!(rows.len(), evals.len(), "{spec}");
        for (row, e) in rows.iter().zip(evals) {
            assert_eq!(row[0], e["scope"].as_str().unwrap(), "{spec}");
            assert_eq!(row[1], e["people"].to_string(), "{spec}");
            assert_eq!(row[2], e["treated"]["value"].as_str().unwrap(), "{spec}");
            assert_eq!(row[3], e["comparator"]["value"].as_str().unwrap(), "{spec}");
            assert_eq!(
                row[4],
                e["improvement"]["value"].as_str().unwrap(),
                "{spec}"
            );
            assert_eq!(row[6], e["code"].as_str().unwrap(), "{spec}");
        }
        let total = r["payment"]["total"].as_str().unwrap();
        assert!(
            html.contains(&format!("Payment: GBP {total} ")),
            "{spec}: total {total}"
        );
        for input in r["inputs"].as_array().unwrap() {
            assert!(
                html.contains(input["sha256"].as_str().unwrap()),
                "{spec}: digest"
            );
        }
    }
}

/// No network (no URL, script, style sheet or image source) and every element opened
/// is closed, in order (void elements aside).
fn assert_self_contained_and_balanced(html: &str) {
    for needle in ["http://", "https://", "<script", "<link", "src=", "@import"] {
        assert!(!html.contains(needle), "report contains {needle:?}");
    }
    let mut stack: Vec<String> = Vec::new();
    let void = ["meta", "br"];
    for part in html.split('<').skip(1) {
        let tag = part.split(['>', ' ']).next().unwrap_or("");
        if tag.starts_with('!') || part.split('>').next().unwrap_or("").ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "unbalanced </{name}>");
        } else if !void.contains(&tag) {
            stack.push(tag.to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn the_report_uses_no_network_and_its_tags_balance() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("peterborough-cohort-1"));
    let html = std::fs::read_to_string(b.path("report.html")).unwrap();
    assert_self_contained_and_balanced(&html);
    // Accessible: headings, captions on every table, a title on the chart.
    assert_eq!(
        html.matches("<table>").count(),
        html.matches("<caption>").count()
    );
    assert!(html.contains("<h1>") && html.contains("<title id=\"chart-title\">"));
    // The Justice Data Lab wording of the verdict.
    assert!(html.contains("The number of proven reoffences per offender for 999 people in cohort-1 was 135.6 per 100 offenders, compared with 156.9 per 100 offenders for the matched comparison group. The difference is statistically significant."), "{html}");
}

#[test]
fn report_re_renders_the_bundles_page_and_writes_markdown() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-cohort-2"));
    let html = sb.cmd(["report"]).arg(&b.dir).assert(EXIT_OK).stdout;
    assert_eq!(
        html,
        std::fs::read_to_string(b.path("report.html")).unwrap()
    );
    let md = sb
        .cmd(["report", "--format", "md"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout;
    // 547 of 1000 against the published 0.580: 3.3 points, short of 5.
    assert!(
        md.contains(
            "| cohort-2 | 1000 | 0.547000 | 0.580000 | 0.033000 | 0.050000 | threshold-not-met |"
        ),
        "{md}"
    );
    assert!(
        md.contains("Payment: GBP -1000000.00 (repaid by the provider)"),
        "{md}"
    );
    sb.cmd(["report", "--format", "pdf"])
        .arg(&b.dir)
        .assert(EXIT_BAD_INPUT);
}

/// A 9-decimal number as written in the tables, in billionths (exact).
fn nanos(s: &str) -> i64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let negative = int.starts_with('-');
    let whole: i64 = int.trim_start_matches('-').parse().unwrap();
    let frac: i64 = format!("{frac:0<9}")[..9].parse().unwrap();
    let v = whole * 1_000_000_000 + frac;
    if negative {
        -v
    } else {
        v
    }
}

#[test]
fn a_matched_report_shows_balance_and_score_overlap_from_the_evidence() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("peterborough-cohort-1"));
    let html = std::fs::read_to_string(b.path("report.html")).unwrap();
    let r = b.results();
    // Balance: every term, with the SMD strings of results.json.
    let rows = table_rows(&html, "Standardised mean differences");
    let balance = r["matching"]["balance"].as_array().unwrap();
    assert_eq!(rows.len(), balance.len());
    for (row, x) in rows.iter().zip(balance) {
        assert_eq!(row[0], x["term"].as_str().unwrap());
        assert_eq!(row[1], x["smd_before"].as_str().unwrap());
        assert_eq!(row[2], x["smd_after"].as_str().unwrap());
        assert_eq!(
            row[3],
            if x["within_limit"] == true {
                "yes"
            } else {
                "no"
            }
        );
    }
    assert!(
        html.contains("<title id=\"balance-title\">")
            && html.contains("<desc id=\"balance-desc\">")
    );
    assert!(html.contains(&format!(
        "the dashed line is the limit {}",
        r["matching"]["balance_limit"].as_str().unwrap()
    )));
    // Overlap: recount tables/propensity.csv independently. 20 equal bins between the
    // whole units around the smallest and largest logit; the last bin keeps its top.
    let p = b.table("propensity");
    let mut logits: Vec<(i64, &str, bool)> = Vec::new();
    for row in p.rows() {
        logits.push((
            nanos(row.get("logit")),
            if row.get("role") == "treated" {
                "t"
            } else {
                "p"
            },
            row.get("matched") == "1",
        ));
    }
    let min = logits.iter().map(|l| l.0).min().unwrap();
    let max = logits.iter().map(|l| l.0).max().unwrap();
    let unit = 1_000_000_000i64;
    let (lo, hi) = (
        min.div_euclid(unit) * unit,
        (max.div_euclid(unit) + 1) * unit,
    );
    let mut expected = vec![[0u64; 3]; 20];
    for (x, role, matched) in &logits {
        let k = (((x - lo) as i128 * 20 / (hi - lo) as i128) as usize).min(19);
        if *role == "t" {
            expected[k][0] += 1;
        } else {
            expected[k][1] += 1;
            expected[k][2] += u64::from(*matched);
        }
    }
    let rows = table_rows(&html, "Propensity-score bins");
    assert_eq!(rows.len(), 20);
    for (row, e) in rows.iter().zip(&expected) {
        let got: Vec<u64> = row[2..5].iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(got, e.to_vec(), "bin {} to {}", row[0], row[1]);
    }
    // Every treated person in the model and every pool member is in one bin.
    let treated = expected.iter().map(|e| e[0]).sum::<u64>();
    assert_eq!(treated, r["matching"]["treated_in_model"].as_u64().unwrap());
    assert_eq!(
        expected.iter().map(|e| e[1]).sum::<u64>(),
        r["matching"]["pool_in_model"].as_u64().unwrap()
    );
    assert_eq!(
        expected.iter().map(|e| e[2]).sum::<u64>(),
        r["matching"]["controls_used"].as_u64().unwrap()
    );
    assert!(
        html.contains("<title id=\"overlap-title\">")
            && html.contains("<desc id=\"overlap-desc\">")
    );
    // The Markdown form carries the same tables.
    let md = sb
        .cmd(["report", "--format", "md"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout;
    assert!(md.contains("## Balance") && md.contains("## Propensity-score overlap"));
    let first = &balance[0];
    assert!(md.contains(&format!(
        "| {} | {} | {} |",
        first["term"].as_str().unwrap(),
        first["smd_before"].as_str().unwrap(),
        first["smd_after"].as_str().unwrap()
    )));
}

#[test]
fn the_reports_sensitivity_grid_is_the_results_grid() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("peterborough-cohort-1-sensitivity"));
    let html = std::fs::read_to_string(b.path("report.html")).unwrap();
    assert_self_contained_and_balanced(&html);
    assert_eq!(
        html.matches("<table>").count(),
        html.matches("<caption>").count()
    );
    let s = &b.results()["sensitivity"];
    let rows = table_rows(&html, "Each variant of the spec");
    let variants = s["variants"].as_array().unwrap();
    assert_eq!(rows.len(), variants.len());
    for (row, v) in rows.iter().zip(variants) {
        assert!(row[0].starts_with(&v["variant"].to_string()));
        assert_eq!(
            row[1],
            v["values"]["comparator.caliper_sd"].as_str().unwrap()
        );
        assert_eq!(row[2], v["values"]["comparator.ratio"].to_string());
        assert_eq!(
            row[5],
            v["evaluations"][0]["improvement"]["value"]
                .as_str()
                .unwrap()
        );
        assert_eq!(row[6], v["evaluations"][0]["code"].as_str().unwrap());
        assert_eq!(row[7], v["payment_total"].as_str().unwrap());
    }
    assert!(rows[22][0].contains("the spec's own"));
    assert!(html.contains(&format!(
        "The decision is robust: every one of the 36 variants reaches the spec's own decision (threshold-met). Payments range from GBP {} to {}.",
        s["payment_min"].as_str().unwrap(),
        s["payment_max"].as_str().unwrap()
    )));
    let md = sb
        .cmd(["report", "--format", "md"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout;
    let grid = md
        .split("## Sensitivity of the decision")
        .nth(1)
        .expect("sensitivity section");
    assert_eq!(grid.matches("| threshold-met |").count(), 36, "{grid}");
}
