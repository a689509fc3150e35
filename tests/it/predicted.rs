//! Predicted-versus-actual comparisons (`[comparator] kind = "predicted"`): each cohort
//! member is scored by a risk model read as data (OGRS3, `audit-specs/models/`), and the
//! cohort's actual binary rate is compared with its own predicted rate.
//!
//! Rules held here (scenarios `tests/scenarios/predicted-*`, numbers derived by hand in
//! each spec's header and again below):
//! - DOMAIN.md's worked example scores P(1 year) = 0.4795 (stored as 479506 millionths);
//!   the predicted rate is the exact mean of the stored millionths, the actual rate is
//!   k/n exactly, improvement = predicted − actual, and the payment follows it
//!   (per point, rounded toward zero; nothing or a repayment on a miss);
//! - people who cannot be scored are counted by reason, left out of both sides of the
//!   comparison, given their reason in `tables/risk.csv`, and raise `risk-unscored`;
//! - the female juvenile sign is the model file's choice; a first offender takes the
//!   first-sanction term; age bands change the score where the file says;
//! - every bad predicted spec, model or offence map is exit 2 with a message that names
//!   it (with its position where there is one);
//! - the model and the offence map are evidence: embedded, listed in the data package
//!   and the provenance, covered by `verify`, pinned by `sha256`, replayed identically.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// Every computed file of a predicted bundle.
const PREDICTED_FILES: [&str; 8] = [
    "datapackage.json",
    "report.html",
    "results.json",
    "spec.toml",
    "tables/cohort.csv",
    "tables/convictions.csv",
    "tables/outcomes.csv",
    "tables/risk.csv",
];

/// P(1 year) of DOMAIN.md's worked example, as stored: logistic(1.40256 − 1.48458) =
/// 0.4795063906 → 479506 millionths.
const WORKED_MICRO: i64 = 479_506;

fn worked(file: &str) -> PathBuf {
    scenario("predicted-worked-example").join(file)
}

/// `results.json` → `risk.scopes[]` entry of one scope.
fn risk_scope(results: &Value, scope: &str) -> Value {
    results["risk"]["scopes"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["scope"] == scope))
        .cloned()
        .unwrap_or_else(|| panic!("no risk scope {scope:?} in {:#}", results["risk"]))
}

/// Lowercase hex SHA-256 of some bytes.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("{v} is not a number: {e}"))
}

fn finding_codes(results: &Value) -> Vec<String> {
    results["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().expect("finding code").to_string())
        .collect()
}

/// The 1-based line and column of the value after `key` (e.g. `horizon_years = `).
fn value_position(text: &str, key: &str) -> (usize, usize) {
    let (line, column) = position_of(text, key);
    (line, column + key.chars().count())
}

/// `check SPEC` exits 2 and prints each of `needles`.
fn check_fails(sb: &Sandbox, spec: &Path, needles: &[&str]) -> Output {
    let out = sb.cmd(["check"]).arg(spec).assert(EXIT_BAD_INPUT);
    out.stderr_has(needles);
    out
}

/// `run SPEC` exits 2, prints each of `needles`, and leaves no bundle.
fn run_fails(sb: &Sandbox, spec: &Path, needles: &[&str]) {
    let out = sb.new_bundle_path();
    sb.cmd(["run"])
        .arg(spec)
        .arg("--out")
        .arg(&out)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(needles);
    assert!(!out.exists(), "a failed run left {}", out.display());
}

// ------------------------------------------------------------ the worked example

#[test]
fn the_worked_example_scores_0_4795_for_every_man_in_tables_risk_csv() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("paid.toml"));
    let risk = b.table("risk");
    assert_eq!(risk.records.len(), 5);
    for row in risk.rows() {
        // DOMAIN.md: copas = ln(6/19) = −1.15268; y = −1.1667 + 0.46306
        // + 1.25112 × (−1.15268) + 0.6612 = −1.48458; P(1) = 0.4795; P(2) = 0.6541.
        assert_eq!(row.get("period"), "cohort");
        assert_eq!(row.get("sex"), "male");
        assert_eq!(row.get("age"), "25");
        assert_eq!(
            row.get("total_sanctions"),
            "6",
            "5 previous + the current one"
        );
        assert_eq!(row.get("age_at_conviction"), "25");
        assert_eq!(row.get("age_at_first_sanction"), "16");
        assert_eq!(row.get("offence_category"), "theft");
        assert!(
            row.get("copas").starts_with("-1.15268"),
            "{}",
            row.get("copas")
        );
        assert!(row.get("y").starts_with("-1.48458"), "{}", row.get("y"));
        assert!(row.get("p1").starts_with("0.4795"), "{}", row.get("p1"));
        assert!(row.get("p2").starts_with("0.6541"), "{}", row.get("p2"));
        // Six places, as stored: logistic(−0.08202) = 0.4795063906 → 0.479506.
        assert_eq!(row.get("p1"), "0.479506");
        assert_eq!(row.get("probability_used"), "0.479506", "horizon_years = 1");
        assert_eq!(row.get("unscored_reason"), "");
    }
    let ids: Vec<String> = risk
        .rows()
        .map(|r| r.get("person_id").to_string())
        .collect();
    assert_eq!(ids, ["W1", "W2", "W3", "W4", "W5"], "cohort member order");
    let rows: Vec<String> = risk.rows().map(|r| r.get("row").to_string()).collect();
    assert_eq!(rows, ["1", "2", "3", "4", "5"], "1-based people rows");

    let r = b.results();
    assert_eq!(r["risk"]["model"], "OGRS3");
    assert_eq!(r["risk"]["model_version"], "1.0.0");
    assert_eq!(r["risk"]["female_juvenile_sign"], "negative");
    assert_eq!(r["risk"]["horizon_years"], 1);
    assert_eq!(r["risk"]["scored"], 5);
    assert_eq!(r["risk"]["unscored"], serde_json::json!({}));
}

#[test]
fn predicted_is_the_stored_millionths_actual_is_k_over_n_and_the_gap_is_paid_per_point() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("paid.toml"));
    let r = b.results();
    let s = risk_scope(&r, "cohort");
    assert_eq!(s["people"], 5);
    assert_eq!(s["unscored"], 0);
    assert_eq!(s["reoffenders"], 2);
    // Predicted: 5 × 479506 / 5,000,000 = 239753/500000, exactly the stored value.
    let predicted = fraction(5 * WORKED_MICRO, 5 * 1_000_000);
    assert_eq!(predicted, "239753/500000");
    assert_eq!(s["predicted"]["exact"], predicted);
    assert_eq!(s["predicted"]["value"], "0.479506");
    // Actual: W1 and W2 of five, exactly.
    assert_eq!(s["actual"]["exact"], fraction(2, 5));
    assert_eq!(s["actual"]["value"], "0.400000");
    // Improvement = predicted − actual = (479506 − 400000) / 1,000,000 = 39753/500000.
    assert_eq!(
        s["improvement"]["exact"],
        fraction(479_506 - 400_000, 1_000_000)
    );
    assert_eq!(s["improvement"]["value"], "0.079506");

    // The comparator and the evaluation are the same exact numbers.
    assert_eq!(r["comparator"]["kind"], "predicted");
    assert_eq!(r["comparator"]["value"]["exact"], predicted);
    let e = b.evaluation("cohort");
    assert_eq!(e["people"], 5);
    assert_eq!(e["treated"]["exact"], "2/5");
    assert_eq!(e["comparator"]["exact"], predicted);
    assert_eq!(e["improvement"], s["improvement"]);
    assert_eq!(e["met"], true, "0.079506 ≥ 0");
    assert_eq!(e["code"], "threshold-met");

    // Per percentage point at 10_001 pence: trunc(10_001 × 0.079506 × 100)
    // = trunc(79_513.9506) = 79_513.
    let line = &r["payment"]["lines"][0];
    assert_eq!(line["units"]["exact"], "39753/5000");
    assert_eq!(line["uncapped_minor"], 79_513);
    assert_eq!(line["amount_minor"], 79_513);
    assert_eq!(r["payment"]["total_minor"], 79_513);
    assert_eq!(r["payment"]["direction"], "owed to the provider");
}

#[test]
fn the_analytic_interval_is_the_normal_approximation_of_actual_minus_predicted() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("paid.toml"));
    let r = b.results();
    let inf = &risk_scope(&r, "cohort")["inference"];
    assert_eq!(inf["method"], "welch");
    assert_eq!(inf["confidence"], "0.950000000");
    assert!(inf.get("df").is_none(), "a normal approximation has no df");
    // d = actual − predicted = 0.4 − 0.479506; SE = √(Σ p(1 − p)) / n = √(5 × 0.479506
    // × 0.520494) / 5 = 0.223418887; z = 1.959963985; p = 2(1 − Φ(|d| / SE)) = 0.7219.
    let p = WORKED_MICRO as f64 / 1e6;
    let se = (5.0 * p * (1.0 - p)).sqrt() / 5.0;
    let d = 0.4 - p;
    let z = 1.959_963_984_540_054;
    assert_eq!(inf["difference"], "-0.079506000");
    assert!((num(&inf["std_error"]) - se).abs() < 1e-9, "{inf}");
    assert!((num(&inf["lower"]) - (d - z * se)).abs() < 1e-9, "{inf}");
    assert!((num(&inf["upper"]) - (d + z * se)).abs() < 1e-9, "{inf}");
    assert!((num(&inf["p_value"]) - 0.721_944_894).abs() < 1e-8, "{inf}");
    assert_eq!(inf["significant"], false);
    assert_eq!(b.evaluation("cohort")["significant"], false);
    // Not significant is a finding; the decision rests on the size of the gap.
    assert!(finding_codes(&r).contains(&"not-significant".to_string()));
    assert_eq!(b.evaluation("cohort")["met"], true);
}

#[test]
fn the_justice_data_lab_rule_is_applied_or_refused_for_a_predicted_comparison() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            "confidence = \"0.95\"",
            "confidence = \"0.95\"\njdl_rule = true",
        )],
    );
    std::fs::write(
        spec.with_file_name("convictions.csv"),
        "person_id,offence_date,sanction_date,sanction_type,appearance_id\n",
    )
    .expect("write convictions");
    // Nobody reoffends: d = −0.479506, SE = 0.223419, p = 2(1 − Φ(2.146)) = 0.0319,
    // significant at 5%, but 5 people are fewer than the rule's 30.
    let check = std::process::Command::new(BIN)
        .arg("check")
        .arg(&spec)
        .env("OUTCOME_AUDIT_HOME", sb.home())
        .output()
        .expect("run check");
    if check.status.code() == Some(EXIT_BAD_INPUT) {
        // Refusing the combination is a fix too.
        assert!(String::from_utf8_lossy(&check.stderr).contains("jdl_rule"));
        return;
    }
    let r = sb.audit(&spec).results();
    let inf = &risk_scope(&r, "cohort")["inference"];
    assert!((num(&inf["p_value"]) - 0.031_855_461).abs() < 1e-8, "{inf}");
    assert_eq!(inf["significant"], false, "{inf}");
    assert!(
        inf["jdl_note"]
            .as_str()
            .unwrap_or("")
            .contains("fewer than 30"),
        "{inf}"
    );
}

#[test]
fn a_cohort_above_its_prediction_is_paid_nothing_when_on_miss_is_nothing() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("missed.toml"));
    let r = b.results();
    let s = risk_scope(&r, "cohort");
    assert_eq!(s["reoffenders"], 3);
    assert_eq!(s["actual"]["exact"], "3/5");
    // 479506/1000000 − 600000/1000000 = −120494/1000000 = −60247/500000.
    assert_eq!(s["improvement"]["exact"], "-60247/500000");
    assert_eq!(s["improvement"]["value"], "-0.120494");
    let e = b.evaluation("cohort");
    assert_eq!(e["met"], false);
    assert_eq!(e["code"], "threshold-not-met");
    let line = &r["payment"]["lines"][0];
    assert_eq!(line["met"], false);
    assert_eq!(line["amount_minor"], 0);
    assert!(line.get("units").is_none());
    assert_eq!(r["payment"]["total_minor"], 0);
    assert_eq!(r["payment"]["direction"], "nothing owed");
}

#[test]
fn a_cohort_above_its_prediction_repays_repay_minor_when_on_miss_is_repay() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("missed-repay.toml"));
    let r = b.results();
    assert_eq!(
        risk_scope(&r, "cohort")["improvement"]["exact"],
        "-60247/500000"
    );
    assert_eq!(r["payment"]["lines"][0]["amount_minor"], -4_242);
    assert_eq!(r["payment"]["total_minor"], -4_242);
    assert_eq!(r["payment"]["direction"], "repaid by the provider");
    assert!(b.stdout.contains("GBP -42.42"), "{}", b.stdout);
}

#[test]
fn horizon_two_compares_with_the_two_year_probability() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[("horizon_years = 1", "horizon_years = 2")],
    );
    let b = sb.audit(&spec);
    let r = b.results();
    assert_eq!(r["risk"]["horizon_years"], 2);
    // P(2 years) = logistic(2.1217 − 1.48458) = 0.6541020549 → 654102 millionths.
    let s = risk_scope(&r, "cohort");
    assert_eq!(s["predicted"]["exact"], fraction(654_102, 1_000_000));
    assert_eq!(
        s["improvement"]["exact"],
        fraction(654_102 - 400_000, 1_000_000)
    );
    for row in b.table("risk").rows() {
        assert_eq!(row.get("p2"), "0.654102");
        assert_eq!(row.get("probability_used"), row.get("p2"));
    }
}

#[test]
fn each_period_and_the_pooled_scope_compare_their_own_members() {
    let sb = Sandbox::new();
    // W1, W2 (index dates in 2011) reoffend; W3–W5 (2012) do not.
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[
            (
                r#"periods = [{ name = "cohort", from = "2011-10-01", to = "2012-09-30" }]"#,
                r#"periods = [{ name = "c1", from = "2011-10-01", to = "2011-12-31" }, { name = "c2", from = "2012-01-01", to = "2012-09-30" }]"#,
            ),
            ("per_period = \"0\"", "per_period = \"0\"\npooled = \"0\""),
        ],
    );
    let r = sb.audit(&spec).results();
    let scopes: Vec<&str> = r["risk"]["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .map(|s| s["scope"].as_str().expect("scope"))
        .collect();
    assert_eq!(scopes, ["c1", "c2", "pooled"], "the order of evaluations");
    for (scope, people, reoffenders, actual, improvement) in [
        // 479506/10^6 − 1 = −520494/10^6
        ("c1", 2, 2, "1", fraction(479_506 - 1_000_000, 1_000_000)),
        ("c2", 3, 0, "0", fraction(479_506, 1_000_000)),
        ("pooled", 5, 2, "2/5", fraction(79_506, 1_000_000)),
    ] {
        let s = risk_scope(&r, scope);
        assert_eq!(s["people"], people, "{scope}");
        assert_eq!(s["reoffenders"], reoffenders, "{scope}");
        assert_eq!(s["predicted"]["exact"], "239753/500000", "{scope}");
        assert_eq!(s["actual"]["exact"], actual, "{scope}");
        assert_eq!(s["improvement"]["exact"], improvement, "{scope}");
    }
    // The headline comparator is the first evaluation's.
    assert_eq!(r["comparator"]["value"]["exact"], "239753/500000");
    // Per period: c1 missed (0), c2 met: trunc(47.9506 × 10_001) = trunc(479_553.9506).
    assert_eq!(r["payment"]["total_minor"], 479_553);
}

// ------------------------------------------------------------ unscored people

#[test]
fn unscored_people_are_counted_by_reason_and_left_out_of_both_sides() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("predicted-unscored").join("spec.toml"));
    let r = b.results();
    assert_eq!(r["risk"]["scored"], 2);
    assert_eq!(
        r["risk"]["unscored"],
        serde_json::json!({ "missing-age": 1, "unknown-offence-code": 1 })
    );
    // Only U1 and U2 are compared: predicted 2 × 479506 / 2,000,000; actual 1/2 (U1).
    // Counting U3 and U4, who reoffend, would make the actual rate 3/4.
    let s = risk_scope(&r, "cohort");
    assert_eq!(s["people"], 2);
    assert_eq!(s["unscored"], 2);
    assert_eq!(s["reoffenders"], 1);
    assert_eq!(s["predicted"]["exact"], "239753/500000");
    assert_eq!(s["actual"]["exact"], "1/2");
    assert_eq!(
        s["improvement"]["exact"],
        fraction(479_506 - 500_000, 1_000_000)
    );
    let e = b.evaluation("cohort");
    assert_eq!(e["people"], 2, "the evaluation counts the scored people");
    assert_eq!(e["treated"]["exact"], "1/2");
    // The cohort's own measures still count every eligible member.
    let m = b.measure("cohort");
    assert_eq!(m["people"], 4);
    assert_eq!(m["reoffenders"], 3);

    let finding = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "risk-unscored")
        .unwrap_or_else(|| panic!("no risk-unscored finding: {:#}", r["findings"]))
        .clone();
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains('2'), "{message}");
    assert!(message.contains("tables/risk.csv"), "{message}");

    let risk = b.table("risk");
    assert_eq!(risk.records.len(), 4, "every cohort member has a row");
    for (id, reason) in [("U3", "unknown-offence-code"), ("U4", "missing-age")] {
        let row = risk.only("person_id", id);
        assert_eq!(row.get("unscored_reason"), reason);
        for column in ["copas", "y", "p1", "p2", "probability_used"] {
            assert_eq!(row.get(column), "", "{id} has no {column}, not a zero");
        }
    }
    for id in ["U1", "U2"] {
        let row = risk.only("person_id", id);
        assert_eq!(row.get("probability_used"), "0.479506");
        assert_eq!(row.get("unscored_reason"), "");
    }
}

#[test]
fn the_run_summary_counts_the_scored_people_its_rate_is_computed_from() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("predicted-unscored").join("spec.toml"));
    let line = b
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("cohort "))
        .unwrap_or_else(|| panic!("no cohort line:\n{}", b.stdout));
    assert!(line.contains("50.0%"), "{line}");
    assert!(line.contains("(1 reoffenders of 2 "), "{line}");
}

#[test]
fn every_reason_a_person_cannot_be_scored_has_its_own_code() {
    let sb = Sandbox::new();
    let spec = edited(&sb, "predicted-worked-example", "paid.toml", &[]);
    // Values are trimmed (X7 scores); an age that is not a whole number, or a sex code
    // that sex_codes does not list, is reported under the field's missing-* code.
    std::fs::write(
        spec.with_file_name("people.csv"),
        "person_id,index_date,sex,age,age_at_conviction,age_first_sanction,previous_sanctions,offence_code\n\
         X1,2011-10-01,X,25,25,16,5,theft\n\
         X2,2011-10-01,M,9,9,9,0,theft\n\
         X3,2011-10-01,M,25,25,26,5,theft\n\
         X4,2011-10-01,M,25,26,16,5,theft\n\
         X5,2011-10-01,M,25,25,16,two,theft\n\
         X6,2011-10-01,M,25.5,25,16,5,theft\n\
         X7,2011-10-01, M , 25 , 25 , 16 , 5 , theft \n\
         X8,2011-10-01,M,25,,16,5,theft\n\
         X9,2011-10-01,M,25,25,,5,theft\n",
    )
    .expect("write people");
    let b = sb.audit(&spec);
    let risk = b.table("risk");
    for (id, reason) in [
        ("X1", "missing-sex"),
        ("X2", "risk-age-below-minimum"),
        ("X3", "risk-first-sanction-after-conviction"),
        ("X4", "risk-conviction-after-follow-up"),
        ("X5", "missing-previous-sanctions"),
        ("X6", "missing-age"),
        ("X7", ""),
        ("X8", "missing-age-at-conviction"),
        ("X9", "missing-age-at-first-sanction"),
    ] {
        assert_eq!(
            risk.only("person_id", id).get("unscored_reason"),
            reason,
            "{id}"
        );
    }
    assert_eq!(risk.only("person_id", "X7").get("p1"), "0.479506");
    let r = b.results();
    assert_eq!(r["risk"]["scored"], 1);
    let unscored: u64 = r["risk"]["unscored"]
        .as_object()
        .expect("unscored")
        .values()
        .map(|v| v.as_u64().expect("count"))
        .sum();
    assert_eq!(unscored, 8);
    // W1 and W2's convictions no longer belong to anyone: X7 alone, no reoffence.
    assert_eq!(risk_scope(&r, "cohort")["actual"]["exact"], "0");
}

#[test]
fn a_cohort_with_nobody_scored_stops_the_audit() {
    let sb = Sandbox::new();
    let spec = edited(&sb, "predicted-worked-example", "paid.toml", &[]);
    let people = spec.with_file_name("people.csv");
    let text = std::fs::read_to_string(&people).expect("people");
    std::fs::write(&people, text.replace(",theft", ",shoplifting")).expect("write people");
    run_fails(&sb, &spec, &["cohort", "denominator is zero", "0 people"]);
}

// ------------------------------------------------------------ age, sex and history

#[test]
fn a_girl_of_12_scores_with_the_sign_the_model_file_chooses() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("predicted-risk-factors").join("spec.toml"));
    // "negative": y = −0.61385 + 1.25112 × ln(1/10) + 0.12614 + 0.6612 = −2.707320.
    let risk = b.table("risk");
    let g = risk.only("person_id", "G12");
    assert_eq!(g.get("sex"), "female");
    assert_eq!(g.get("age"), "12");
    assert_eq!(g.get("total_sanctions"), "1");
    assert_eq!(g.get("copas"), "-2.302585");
    assert_eq!(g.get("y"), "-2.707320");
    assert_eq!(g.get("p1"), "0.213365");
    assert_eq!(g.get("p2"), "0.357640");
    assert_eq!(b.results()["risk"]["female_juvenile_sign"], "negative");

    // The same girl under a copy of the model that picks "positive": +0.61385, so y is
    // 2 × 0.61385 = 1.2277 higher (−1.479620) and P(1 year) = logistic(−0.07706).
    let sb2 = Sandbox::new();
    let model = std::fs::read_to_string(models().join("ogrs3.toml")).expect("model");
    assert_eq!(
        model.matches("female_juvenile_sign = \"negative\"").count(),
        1
    );
    let positive = sb2.write(
        "ogrs3-positive.toml",
        model.replace(
            "female_juvenile_sign = \"negative\"",
            "female_juvenile_sign = \"positive\"",
        ),
    );
    let spec = edited(
        &sb2,
        "predicted-risk-factors",
        "spec.toml",
        &[(
            &format!("{}/ogrs3.toml", models().display()),
            &positive.display().to_string(),
        )],
    );
    let b2 = sb2.audit(&spec);
    let risk2 = b2.table("risk");
    let g2 = risk2.only("person_id", "G12");
    assert_eq!(g2.get("y"), "-1.479620");
    assert_eq!(g2.get("p1"), "0.480744");
    let r2 = b2.results();
    assert_eq!(r2["risk"]["female_juvenile_sign"], "positive");
    // Only the girl's band has two variants: the men score the same.
    for id in ["M25-first", "M25-repeat", "M24-repeat"] {
        assert_eq!(
            risk.only("person_id", id).get("y"),
            risk2.only("person_id", id).get("y"),
            "{id}"
        );
    }
    // The choice is in the hashed file: the two bundles name different models.
    let digest = |r: &Value| {
        r["inputs"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == "risk_model"))
            .map(|i| i["sha256"].clone())
            .expect("risk_model input")
    };
    assert_ne!(digest(&b.results()), digest(&r2));
}

#[test]
fn a_first_offender_takes_the_first_sanction_term() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("predicted-risk-factors").join("spec.toml"));
    let risk = b.table("risk");
    let first = risk.only("person_id", "M25-first");
    let repeat = risk.only("person_id", "M25-repeat");
    assert_eq!(
        first.get("total_sanctions"),
        "1",
        "0 previous + the current one"
    );
    assert_eq!(repeat.get("total_sanctions"), "2");
    // copas: ln(1/10) = −2.302585 and ln(2/10) = −1.609438.
    assert_eq!(first.get("copas"), "-2.302585");
    assert_eq!(repeat.get("copas"), "-1.609438");
    // y = −1.1667 + 1.25112 × copas + (0.12614 | 0.46306) + 0.6612.
    assert_eq!(first.get("y"), "-3.260170");
    assert_eq!(repeat.get("y"), "-2.056040");
    // The difference is the first/repeat terms' plus the Copas difference:
    // (0.46306 − 0.12614) + 1.25112 × (ln(2/10) − ln(1/10)) = 0.33692 + 1.25112 × ln 2
    // = 0.33692 + 0.867210 = 1.204130.
    let dy = num(&Value::from(repeat.get("y"))) - num(&Value::from(first.get("y")));
    let by_hand = (0.46306 - 0.12614) + 1.25112 * 2f64.ln();
    assert!((dy - by_hand).abs() < 2e-6, "{dy} vs {by_hand}");
    assert!((by_hand - 1.204_130).abs() < 1e-6);
}

#[test]
fn the_age_band_changes_between_24_and_25() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("predicted-risk-factors").join("spec.toml"));
    let risk = b.table("risk");
    // Same history and offence; male 21–24 is −1.0515, 25–29 is −1.1667: y differs by
    // 0.1152 exactly (to the 6 places written).
    assert_eq!(risk.only("person_id", "M24-repeat").get("y"), "-1.940840");
    assert_eq!(risk.only("person_id", "M25-repeat").get("y"), "-2.056040");
    assert_eq!(risk.only("person_id", "M24-repeat").get("p1"), "0.368588");
}

// ------------------------------------------------------------ bad specs, models, maps

#[test]
fn a_predicted_comparator_without_a_risk_section_is_refused() {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(worked("paid.toml")).expect("spec");
    let start = text.find("[risk]").expect("[risk]");
    let end = start + text[start..].find("\n\n").expect("end of [risk]") + 2;
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(&text[start..end], "")],
    );
    let out = check_fails(
        &sb,
        &spec,
        &[
            "2 problems in spec",
            "comparator kind \"predicted\" needs a [risk] section and the inputs risk_model and offence_categories",
            "the inputs risk_model and offence_categories need a [risk] section",
        ],
    );
    // Both are about something absent: no position.
    assert!(
        out.stderr
            .contains("edited.toml: comparator kind \"predicted\""),
        "{}",
        out.stderr
    );
}

#[test]
fn a_risk_section_without_the_risk_model_input_is_refused_at_horizon_years() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            &format!(
                "[inputs.risk_model]\npath = \"{}/ogrs3.toml\"\nformat = \"toml\"\n\n",
                models().display()
            ),
            "",
        )],
    );
    let text = std::fs::read_to_string(&spec).expect("spec");
    let (line, col) = value_position(&text, "horizon_years = ");
    check_fails(
        &sb,
        &spec,
        &[&format!(
            "edited.toml:{line}:{col}: [risk] needs the inputs risk_model (TOML) and offence_categories (CSV)"
        )],
    );
}

#[test]
fn a_risk_model_input_in_csv_format_is_refused_at_its_path() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            "ogrs3.toml\"\nformat = \"toml\"",
            "ogrs3.toml\"\nformat = \"csv\"",
        )],
    );
    let text = std::fs::read_to_string(&spec).expect("spec");
    let (line, col) = position_of(&text, &format!("\"{}/ogrs3.toml\"", models().display()));
    check_fails(
        &sb,
        &spec,
        &[&format!(
            "edited.toml:{line}:{col}: inputs.risk_model must have format = \"toml\""
        )],
    );
}

#[test]
fn an_offence_map_in_toml_format_is_refused_at_its_path() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            "offence-categories.csv\"\nformat = \"csv\"",
            "offence-categories.csv\"\nformat = \"toml\"",
        )],
    );
    let text = std::fs::read_to_string(&spec).expect("spec");
    let (line, col) = position_of(
        &text,
        &format!("\"{}/offence-categories.csv\"", models().display()),
    );
    check_fails(
        &sb,
        &spec,
        &[&format!(
            "edited.toml:{line}:{col}: inputs.offence_categories must have format = \"csv\""
        )],
    );
}

#[test]
fn a_horizon_of_three_years_is_refused_at_its_value() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[("horizon_years = 1", "horizon_years = 3")],
    );
    let text = std::fs::read_to_string(&spec).expect("spec");
    let (line, col) = value_position(&text, "horizon_years = ");
    check_fails(
        &sb,
        &spec,
        &[&format!(
            "edited.toml:{line}:{col}: risk.horizon_years is 3; OGRS gives 1- and 2-year probabilities"
        )],
    );
}

#[test]
fn a_predicted_comparator_with_a_frequency_measure_is_refused() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[
            (
                "measure = \"binary\"",
                "measure = \"frequency_per_offender\"",
            ),
            // Percentage points are refused for frequencies anyway; pay per outcome.
            ("unit = \"percentage-point\"", "unit = \"outcome-avoided\""),
        ],
    );
    check_fails(
        &sb,
        &spec,
        &[
            "1 problem in spec",
            "comparator kind \"predicted\" compares a binary rate with a predicted probability",
            "help: set outcome.measure = \"binary\"",
        ],
    );
}

#[test]
fn a_bootstrap_with_a_predicted_comparator_is_refused_at_confidence() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            "method = \"welch\"",
            "method = \"bootstrap\"\nreplicates = 1000\nseed = 7",
        )],
    );
    let text = std::fs::read_to_string(&spec).expect("spec");
    let (line, col) = value_position(&text, "confidence = ");
    check_fails(
        &sb,
        &spec,
        &[&format!(
            "edited.toml:{line}:{col}: a predicted comparison has an analytic interval: use method = \"welch\""
        )],
    );
}

#[test]
fn a_comparator_value_with_kind_predicted_is_refused_at_the_value() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            "kind = \"predicted\"",
            "kind = \"predicted\"\nvalue = \"0.5\"",
        )],
    );
    let text = std::fs::read_to_string(&spec).expect("spec");
    let (line, col) = value_position(&text, "value = ");
    check_fails(
        &sb,
        &spec,
        &[&format!(
            "edited.toml:{line}:{col}: comparator.value is not used by kind \"predicted\""
        )],
    );
}

#[test]
fn a_model_file_with_a_missing_category_stops_the_run_naming_line_and_field() {
    let sb = Sandbox::new();
    let model = std::fs::read_to_string(models().join("ogrs3.toml")).expect("model");
    let broken = model.replace("robbery = -0.6348\n", "");
    assert_ne!(broken, model);
    let path = sb.write("broken.toml", &broken);
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            &format!("{}/ogrs3.toml", models().display()),
            &path.display().to_string(),
        )],
    );
    // A missing category is reported at the table that lacks it.
    let (line, _) = position_of(&broken, "[offence_terms]");
    run_fails(
        &sb,
        &spec,
        &[
            "broken.toml: 1 problem in risk model",
            &format!("line {line}:1: offence_terms.robbery: offence category `robbery` is missing"),
            "help: every one of the 20 OGRS3 categories needs a term",
        ],
    );
}

#[test]
fn an_offence_map_naming_an_unknown_category_stops_the_run_at_its_line() {
    let sb = Sandbox::new();
    let map = sb.write("map.csv", "code,category\ntheft,thefts\n");
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            &format!("{}/offence-categories.csv", models().display()),
            &map.display().to_string(),
        )],
    );
    run_fails(
        &sb,
        &spec,
        &[
            "map.csv: 1 problem in offence map",
            "line 2: category: unknown offence category \"thefts\" for code \"theft\"",
        ],
    );
}

#[test]
fn a_risk_column_missing_from_the_people_file_is_named_by_check_and_run() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            "age_at_first_sanction = \"age_first_sanction\"",
            "age_at_first_sanction = \"age_first\"",
        )],
    );
    check_fails(&sb, &spec, &["people.csv: no column \"age_first\""]);
    run_fails(&sb, &spec, &["people.csv: no column \"age_first\""]);
}

#[test]
fn check_refuses_a_risk_model_that_does_not_exist() {
    let sb = Sandbox::new();
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[("/ogrs3.toml", "/nope.toml")],
    );
    check_fails(&sb, &spec, &["nope.toml"]);
}

// ------------------------------------------------------------ evidence

#[test]
fn the_model_and_offence_map_are_embedded_and_listed_as_inputs() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("paid.toml"));
    let model = std::fs::read(models().join("ogrs3.toml")).expect("model");
    let map = std::fs::read(models().join("offence-categories.csv")).expect("map");
    assert_eq!(b.bytes("inputs/risk_model.toml"), model);
    assert_eq!(b.bytes("inputs/offence_categories.csv"), map);
    assert_eq!(
        list_dir(&b.path("inputs")),
        [
            "convictions.csv",
            "offence_categories.csv",
            "people.csv",
            "risk_model.toml"
        ]
    );
    assert_eq!(
        list_dir(&b.path("tables")),
        ["cohort.csv", "convictions.csv", "outcomes.csv", "risk.csv"]
    );
    let sha = sha256_hex;

    // results.json → inputs: spec order people, convictions, risk_model, offence map.
    let r = b.results();
    let inputs = r["inputs"].as_array().expect("inputs");
    let names: Vec<&str> = inputs.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["people", "convictions", "risk_model", "offence_categories"]
    );
    assert_eq!(inputs[2]["path"], "inputs/risk_model.toml");
    assert_eq!(inputs[2]["format"], "toml");
    assert_eq!(inputs[2]["sha256"], sha(&model));
    assert_eq!(inputs[2]["bytes"], model.len());
    assert_eq!(inputs[2]["rows"], 0, "a document has no rows");
    assert_eq!(inputs[3]["path"], "inputs/offence_categories.csv");
    assert_eq!(inputs[3]["sha256"], sha(&map));
    assert_eq!(inputs[3]["rows"], 20, "one row per OGRS3 category");

    // datapackage.json: same order; the model is a plain data resource, the map a table.
    let dp = read_json(&b.path("datapackage.json"));
    let res = dp["resources"].as_array().expect("resources");
    let names: Vec<&str> = res.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["people", "convictions", "risk_model", "offence_categories"]
    );
    let m = &res[2];
    assert_eq!(m["path"], "inputs/risk_model.toml");
    assert_eq!(m["profile"], "data-resource");
    assert_eq!(m["format"], "toml");
    assert_eq!(m["encoding"], "utf-8");
    assert_eq!(m["bytes"], model.len());
    assert_eq!(m["hash"], format!("sha256:{}", sha(&model)));
    assert!(
        m.get("schema").is_none(),
        "a TOML document has no table schema"
    );
    let c = &res[3];
    assert_eq!(c["path"], "inputs/offence_categories.csv");
    assert_eq!(c["profile"], "tabular-data-resource");
    assert_eq!(c["mediatype"], "text/csv");
    assert_eq!(c["hash"], format!("sha256:{}", sha(&map)));
    assert_eq!(
        c["schema"]["fields"],
        serde_json::json!([
            { "name": "code", "type": "string" },
            { "name": "category", "type": "string" }
        ])
    );

    // The signed provenance resolves all four, sorted by name.
    let deps = b.provenance()["buildDefinition"]["resolvedDependencies"].clone();
    let deps = deps.as_array().expect("resolvedDependencies");
    let listed: Vec<(&str, &str)> = deps
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["uri"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("convictions", "inputs/convictions.csv"),
            ("offence_categories", "inputs/offence_categories.csv"),
            ("people", "inputs/people.csv"),
            ("risk_model", "inputs/risk_model.toml"),
        ]
    );
    assert_eq!(deps[1]["digest"]["sha256"], sha(&map));
    assert_eq!(deps[3]["digest"]["sha256"], sha(&model));
    // 4 inputs, 4 tables, datapackage.json, results.json, spec.toml, signer.pub.pem
    // (verify counts the files besides manifest.json and the attestation).
    sb.cmd(["verify"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout_has(&["(13 files and the attestation)"]);
}

#[test]
fn the_data_package_gives_the_risk_model_a_toml_media_type() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("paid.toml"));
    let dp = read_json(&b.path("datapackage.json"));
    assert_eq!(dp["resources"][2]["name"], "risk_model");
    assert_eq!(dp["resources"][2]["mediatype"], "application/toml");
}

#[test]
fn one_changed_coefficient_byte_in_the_embedded_model_fails_verify_and_replay() {
    let sb = Sandbox::new();
    let b = sb.audit(worked("paid.toml"));
    // 1.25112 → 1.25113: one byte, the Copas multiplier.
    edit_file(
        &b.path("inputs/risk_model.toml"),
        "copas_multiplier = 1.25112",
        "copas_multiplier = 1.25113",
    );
    let json = sb
        .cmd(["--json", "verify"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .json();
    assert_eq!(json["verified"], false);
    let findings: BTreeSet<(String, String)> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        BTreeSet::from([(
            "digest-mismatch".to_string(),
            "inputs/risk_model.toml".to_string()
        )]),
        "{json:#}"
    );
    sb.cmd(["replay"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["digest-mismatch", "inputs/risk_model.toml"]);
}

#[test]
fn a_sha256_pin_that_does_not_match_the_model_stops_check_and_run() {
    let sb = Sandbox::new();
    let wrong = "0".repeat(64);
    let spec = edited(
        &sb,
        "predicted-worked-example",
        "paid.toml",
        &[(
            "ogrs3.toml\"\nformat = \"toml\"",
            &format!("ogrs3.toml\"\nformat = \"toml\"\nsha256 = \"{wrong}\""),
        )],
    );
    let needles = [
        "ogrs3.toml: sha256 is",
        "but the spec pins 0000000000000000000000000000000000000000000000000000000000000000 for input `risk_model`",
    ];
    check_fails(&sb, &spec, &needles);
    run_fails(&sb, &spec, &needles);

    // The right pin runs.
    let right = sha256_hex(&std::fs::read(models().join("ogrs3.toml")).expect("model"));
    let text = std::fs::read_to_string(&spec).expect("spec");
    std::fs::write(&spec, text.replace(&wrong, &right)).expect("write spec");
    sb.cmd(["check"]).arg(&spec).assert(EXIT_OK);
    sb.audit(&spec);
}

#[test]
fn two_runs_are_byte_identical_and_replay_identically() {
    let sb = Sandbox::new();
    let a = sb.audit(worked("paid.toml"));
    let b = sb.audit_with(worked("paid.toml"), &[]);
    for rel in PREDICTED_FILES {
        assert!(a.bytes(rel) == b.bytes(rel), "{rel} differs between runs");
    }
    let json = sb
        .cmd(["--json", "replay"])
        .arg(&a.dir)
        .assert(EXIT_OK)
        .json();
    assert_eq!(json["identical"], true, "{json:#}");
    let compared: BTreeSet<&str> = json["compared"]
        .as_array()
        .expect("compared")
        .iter()
        .map(|v| v.as_str().expect("file"))
        .collect();
    assert_eq!(
        compared,
        PREDICTED_FILES.into_iter().collect::<BTreeSet<_>>(),
        "replay rescores everyone and compares tables/risk.csv"
    );
}

#[test]
fn replay_without_embedded_inputs_finds_the_model_under_its_own_file_name() {
    let sb = Sandbox::new();
    let b = sb.audit_with(worked("paid.toml"), &["--no-embed-inputs"]);
    assert!(!b.path("inputs").exists());
    // The data folder holds the files under their original names, as a commissioner
    // would have them: ogrs3.toml and offence-categories.csv, not risk_model.toml.
    let data = sb.join("data");
    std::fs::create_dir(&data).expect("data folder");
    for (from, name) in [
        (worked("people.csv"), "people.csv"),
        (worked("convictions.csv"), "convictions.csv"),
        (models().join("ogrs3.toml"), "ogrs3.toml"),
        (
            models().join("offence-categories.csv"),
            "offence-categories.csv",
        ),
    ] {
        std::fs::copy(&from, data.join(name)).expect("copy input");
    }
    let json = sb
        .cmd(["--json", "replay"])
        .arg(&b.dir)
        .arg("--data")
        .arg(&data)
        .assert(EXIT_OK)
        .json();
    assert_eq!(json["identical"], true, "{json:#}");
}
