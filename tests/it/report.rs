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

#[test]
fn the_report_uses_no_network_and_its_tags_balance() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("peterborough-cohort-1"));
    let html = std::fs::read_to_string(b.path("report.html")).unwrap();
    for needle in ["http://", "https://", "<script", "<link", "src=", "@import"] {
        assert!(!html.contains(needle), "report contains {needle:?}");
    }
    // Every element opened is closed, in order (void elements aside).
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
