//! The counting rules, one boundary at a time, on hand-made scenarios in
//! `tests/scenarios/`. Each scenario's spec says in its header comment what each person's
//! rows are and what must become of them; these tests hold the product to it.
//!
//! Rules (src/outcomes.rs, src/dates.rs): the window opens on the index date and closes
//! `months` calendar months later (clamped to the month's last day); with
//! `end = "exclusive"` the closing day is outside, with `"inclusive"` inside. The lag
//! closes `window + lag` months after the index date, computed in one step, with the same
//! end rule.

use std::collections::BTreeMap;

use crate::common::*;

/// person id → dispositions, for people with exactly one conviction row.
fn single_dispositions(b: &Bundle) -> BTreeMap<String, String> {
    b.dispositions()
        .into_iter()
        .map(|(person, mut d)| {
            assert_eq!(d.len(), 1, "{person} has {} rows", d.len());
            (person, d.remove(0))
        })
        .collect()
}

fn binary(b: &Bundle) -> String {
    b.measure("cohort")["binary"]["exact"]
        .as_str()
        .expect("binary rate")
        .to_string()
}

// ---------------------------------------------------------------- window-boundary

#[test]
fn offence_on_the_index_date_counts_and_the_day_before_does_not() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("window-boundary").join("exclusive.toml"));
    let d = single_dispositions(&b);
    assert_eq!(d["W01"], "counted", "offence on 2011-10-01, the index date");
    assert_eq!(d["W02"], "before-index", "offence on 2011-09-30");
}

#[test]
fn exclusive_window_counts_the_day_before_it_closes_but_not_the_closing_day() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("window-boundary").join("exclusive.toml"));
    let d = single_dispositions(&b);
    // Index 2011-10-01 + 12 months = 2012-10-01, the closing day.
    assert_eq!(d["W03"], "counted", "offence on 2012-09-30");
    assert_eq!(d["W04"], "outside-window", "offence on 2012-10-01");
    assert_eq!(d["W05"], "outside-window", "offence on 2012-10-02");
    let outcomes = b.table("outcomes");
    assert_eq!(
        outcomes.only("person_id", "W04").get("window_end"),
        "2012-10-01"
    );
    assert_eq!(outcomes.only("person_id", "W04").get("reoffender"), "0");
    // W01 and W03 reoffend: 2 of 6.
    assert_eq!(binary(&b), "1/3");
}

#[test]
fn inclusive_window_counts_the_closing_day_but_not_the_day_after() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("window-boundary").join("inclusive.toml"));
    let d = single_dispositions(&b);
    assert_eq!(d["W01"], "counted");
    assert_eq!(d["W02"], "before-index");
    assert_eq!(d["W03"], "counted");
    assert_eq!(
        d["W04"], "counted",
        "offence on 2012-10-01, the closing day"
    );
    assert_eq!(d["W05"], "outside-window", "offence on 2012-10-02");
    // W01, W03 and W04 reoffend: 3 of 6.
    assert_eq!(binary(&b), "1/2");
}

// ------------------------------------------------------------------- lag-boundary

#[test]
fn exclusive_lag_counts_a_sanction_on_its_last_day_but_not_on_the_closing_day() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("lag-boundary").join("exclusive.toml"));
    let d = single_dispositions(&b);
    // Index 2011-10-01 + 18 months = 2013-04-01, the lag's closing day.
    assert_eq!(d["L01"], "counted", "sanction on 2013-03-31");
    assert_eq!(d["L02"], "proven-after-lag", "sanction on 2013-04-01");
    assert_eq!(d["L03"], "proven-after-lag", "sanction on 2013-04-02");
    assert_eq!(
        b.table("outcomes").only("person_id", "L01").get("lag_end"),
        "2013-04-01"
    );
    assert_eq!(binary(&b), "1/4");
}

#[test]
fn inclusive_lag_counts_a_sanction_on_the_closing_day() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("lag-boundary").join("inclusive.toml"));
    let d = single_dispositions(&b);
    assert_eq!(d["L01"], "counted");
    assert_eq!(
        d["L02"], "counted",
        "sanction on 2013-04-01, the closing day"
    );
    assert_eq!(d["L03"], "proven-after-lag", "sanction on 2013-04-02");
    assert_eq!(binary(&b), "1/2");
}

// ---------------------------------------------------------------------- month-end

#[test]
fn index_on_29_february_closes_the_window_on_28_february_and_the_lag_on_29_august() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("month-end").join("spec.toml"));
    let outcomes = b.table("outcomes");
    for p in ["F1", "F2", "F3", "F4"] {
        let row = outcomes.only("person_id", p);
        assert_eq!(row.get("index_date"), "2012-02-29");
        assert_eq!(
            row.get("window_end"),
            "2013-02-28",
            "{p}: no 29 Feb in 2013"
        );
        assert_eq!(
            row.get("lag_end"),
            "2013-08-29",
            "{p}: 18 months in one step"
        );
    }
    let d = single_dispositions(&b);
    assert_eq!(d["F1"], "counted", "offence on 2013-02-27");
    assert_eq!(d["F2"], "outside-window", "offence on 2013-02-28");
    // 12 months (2013-02-28) then 6 more would close the lag on 2013-08-28 and lose F3.
    assert_eq!(d["F3"], "counted", "sanction on 2013-08-28");
    assert_eq!(d["F4"], "proven-after-lag", "sanction on 2013-08-29");
}

#[test]
fn index_on_31_august_plus_18_months_closes_on_28_february() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("month-end").join("spec.toml"));
    let outcomes = b.table("outcomes");
    for p in ["M1", "M2"] {
        let row = outcomes.only("person_id", p);
        assert_eq!(row.get("window_end"), "2012-08-31", "{p}");
        assert_eq!(
            row.get("lag_end"),
            "2013-02-28",
            "{p}: 31 Aug 2013-02 clamps to 28"
        );
    }
    let d = single_dispositions(&b);
    assert_eq!(d["M1"], "counted", "sanction on 2013-02-27");
    assert_eq!(d["M2"], "proven-after-lag", "sanction on 2013-02-28");
    // F1, F3 and M1 reoffend: 3 of 6.
    assert_eq!(binary(&b), "1/2");
}

// ------------------------------------------------------------------ counting-unit

#[test]
fn three_offences_at_one_appearance_are_three_offences_and_one_conviction_event() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("counting-unit").join("conviction-event.toml"));
    let outcomes = b.table("outcomes");
    let c1 = outcomes.only("person_id", "C1");
    assert_eq!(
        (c1.get("offences"), c1.get("conviction_events")),
        ("3", "1")
    );
    let c2 = outcomes.only("person_id", "C2");
    assert_eq!(
        (c2.get("offences"), c2.get("conviction_events")),
        ("1", "1")
    );
    let m = b.measure("cohort");
    assert_eq!(
        (m["offences"].clone(), m["conviction_events"].clone()),
        (4.into(), 2.into())
    );
    // Events per offender: (1 + 1 + 0) / 3 = 2/3; against 1.500 the improvement is 5/6,
    // above the 0.50 target.
    assert_eq!(m["frequency_per_offender"]["exact"], "2/3");
    let e = b.evaluation("cohort");
    assert_eq!(e["improvement"]["exact"], "5/6");
    assert_eq!(e["met"], true);
}

#[test]
fn frequency_by_offence_counts_every_offence_at_an_appearance() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("counting-unit").join("offence.toml"));
    let m = b.measure("cohort");
    // Offences per offender: (3 + 1 + 0) / 3 = 4/3; improvement 1.5 − 4/3 = 1/6 < 0.50.
    assert_eq!(m["offences"], 4);
    assert_eq!(m["frequency_per_offender"]["exact"], "4/3");
    let e = b.evaluation("cohort");
    assert_eq!(e["treated"]["exact"], "4/3");
    assert_eq!(e["improvement"]["exact"], "1/6");
    assert_eq!(e["met"], false);
    assert_eq!(b.results()["rules"]["counting_unit"], "offence");
}

#[test]
fn conviction_events_are_reported_under_the_offence_unit_when_appearance_id_is_mapped() {
    // docs/spec.md: with unit = "offence" the appearance id is read only when mapped;
    // offence.toml maps it, so both counts are reported.
    let sb = Sandbox::new();
    let b = sb.audit(scenario("counting-unit").join("offence.toml"));
    let outcomes = b.table("outcomes");
    let c1 = outcomes.only("person_id", "C1");
    assert_eq!(
        (c1.get("offences"), c1.get("conviction_events")),
        ("3", "1")
    );
    assert_eq!(b.measure("cohort")["conviction_events"], 2);
}

#[test]
fn different_offences_on_one_day_at_one_appearance_are_not_duplicates() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("same-day-offences").join("spec.toml"));
    // burglary, theft and criminal damage on 2012-01-01 at E1: three offences, one event.
    assert_eq!(b.dispositions()["S1"], ["counted", "counted", "counted"]);
    assert_eq!(b.measure("cohort")["offences"], 3);
    assert_eq!(
        b.measure("cohort")["frequency_per_offender"]["exact"],
        "3/2"
    );
}

// -------------------------------------------------------------------- row rules

#[test]
fn breach_rows_are_removed_by_the_outcome_rule_and_ledgered_with_its_id() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("breach-rule").join("spec.toml"));
    let d = b.dispositions();
    assert_eq!(d["B1"], ["rule:breach"]);
    assert_eq!(d["B2"], ["rule:breach", "counted"]);
    let outcomes = b.table("outcomes");
    assert_eq!(outcomes.only("person_id", "B1").get("reoffender"), "0");
    assert_eq!(outcomes.only("person_id", "B2").get("offences"), "1");
    let summary = &b.results()["convictions"]["groups"][0]["dispositions"];
    assert_eq!(summary["rule:breach"], 2);
    assert_eq!(summary["counted"], 1);
    // Only B2 reoffends: 1 of 3.
    assert_eq!(binary(&b), "1/3");
}

#[test]
fn caution_is_not_counted_when_only_convictions_prove_an_offence() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("caution").join("convictions-only.toml"));
    let d = single_dispositions(&b);
    assert_eq!(d["K1"], "sanction-not-counted");
    assert_eq!(d["K2"], "counted");
    assert_eq!(binary(&b), "1/3");
}

#[test]
fn caution_counts_when_cautions_are_listed_as_sanctions() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("caution").join("convictions-and-cautions.toml"));
    let d = single_dispositions(&b);
    assert_eq!(d["K1"], "counted");
    assert_eq!(d["K2"], "counted");
    assert_eq!(binary(&b), "2/3");
}

#[test]
fn exact_duplicate_rows_count_once_when_collapsed_and_are_ledgered() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("duplicates").join("collapse.toml"));
    // Data rows 1 and 3 are the same D1 offence.
    let convictions = b.table("convictions");
    let d1: Vec<(String, String)> = convictions
        .rows()
        .filter(|r| r.get("person_id") == "D1")
        .map(|r| (r.get("row").to_string(), r.get("disposition").to_string()))
        .collect();
    assert_eq!(
        d1,
        [
            ("1".into(), "counted".into()),
            ("3".into(), "duplicate".into())
        ]
    );
    let m = b.measure("cohort");
    // 1 (D1) + 1 (D2) offences among 3 people.
    assert_eq!(m["offences"], 2);
    assert_eq!(m["frequency_per_offender"]["exact"], "2/3");
    assert_eq!(
        b.results()["convictions"]["groups"][0]["dispositions"]["duplicate"],
        1
    );
}

#[test]
fn exact_duplicate_rows_count_twice_when_kept() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("duplicates").join("keep.toml"));
    assert_eq!(b.dispositions()["D1"], ["counted", "counted"]);
    let m = b.measure("cohort");
    // 2 (D1) + 1 (D2) offences among 3 people = 1 per offender.
    assert_eq!(m["offences"], 3);
    assert_eq!(m["frequency_per_offender"]["exact"], "1");
}

#[test]
fn exact_duplicate_rows_stop_the_audit_naming_both_rows_when_an_error() {
    let sb = Sandbox::new();
    let out = sb.join("b");
    sb.cmd(["run"])
        .arg(scenario("duplicates").join("error.toml"))
        .arg("--out")
        .arg(&out)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["convictions.csv", "row 3", "duplicate of row 1"]);
    assert!(!out.exists(), "no bundle is written");
}

// ------------------------------------------------------------ threshold semantics

#[test]
fn the_same_minimum_read_as_points_misses_and_read_as_relative_meets() {
    let sb = Sandbox::new();
    // 4 of 10 reoffend (0.4) against 0.5: improvement 0.1 points = 20% relative.
    let points = sb.audit(scenario("threshold-kind").join("points.toml"));
    let e = points.evaluation("cohort");
    assert_eq!(e["improvement"]["exact"], "1/10");
    assert_eq!(e["required_improvement"]["exact"], "3/20", "0.15 points");
    assert_eq!(e["met"], false);
    assert_eq!(points.results()["payment"]["total_minor"], -100_000);

    let relative = sb.audit(scenario("threshold-kind").join("relative.toml"));
    let e = relative.evaluation("cohort");
    assert_eq!(e["improvement"]["exact"], "1/10");
    assert_eq!(e["relative_improvement"]["exact"], "1/5");
    // 15% of 0.5 = 0.075 points needed.
    assert_eq!(e["required_improvement"]["exact"], "3/40");
    assert_eq!(e["met"], true);
    // Met, and the amount at risk was paid in advance: nothing moves.
    assert_eq!(relative.results()["payment"]["total_minor"], 0);
}

#[test]
fn pooled_evaluation_sums_counts_across_periods_and_pays_on_the_pooled_result() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("pooled").join("spec.toml"));
    let first = b.evaluation("first-half");
    assert_eq!(first["treated"]["exact"], "1/4");
    assert_eq!(first["met"], true);
    let second = b.evaluation("second-half");
    assert_eq!(second["treated"]["exact"], "1/2");
    assert_eq!(second["met"], false);
    // (1 + 3) / (4 + 6) = 2/5, not the mean of the rates (3/8).
    let pooled = b.measure("pooled");
    assert_eq!(pooled["people"], 10);
    assert_eq!(pooled["reoffenders"], 4);
    assert_eq!(pooled["offences"], 5, "1 + (2 + 1 + 1)");
    assert_eq!(pooled["binary"]["exact"], "2/5");
    let e = b.evaluation("pooled");
    assert_eq!(e["people"], 10);
    assert_eq!(e["improvement"]["exact"], "1/10");
    assert_eq!(
        e["met"], true,
        "an improvement exactly on the minimum meets it"
    );
    // basis = "pooled": one payment line, the pooled one.
    let lines = b.results()["payment"]["lines"].clone();
    assert_eq!(lines.as_array().map(Vec::len), Some(1));
    assert_eq!(lines[0]["scope"], "pooled");
    assert_eq!(b.results()["payment"]["total_minor"], 50_000);
}

// ------------------------------------------------------------------------ payment

#[test]
fn per_unit_payment_is_rounded_toward_zero_then_capped() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("payment").join("per-unit-capped.toml"));
    let line = &b.results()["payment"]["lines"][0];
    // 0.537 − 0.4 = 0.137 × 10 people = 1.37 units × 100_001 = 137_001.37 → 137_001.
    assert_eq!(line["units"]["exact"], "137/100");
    assert_eq!(line["uncapped_minor"], 137_001);
    assert_eq!(line["amount_minor"], 100_000, "capped");
    assert_eq!(b.results()["payment"]["total_minor"], 100_000);
}

#[test]
fn per_unit_payment_per_percentage_point_below_the_cap_is_paid_in_full() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("payment").join("per-unit-points.toml"));
    let line = &b.results()["payment"]["lines"][0];
    // 0.137 = 13.7 points × 1_001 = 13_713.7 → 13_713, under the 1_000_000 cap.
    assert_eq!(line["units"]["exact"], "137/10");
    assert_eq!(line["uncapped_minor"], 13_713);
    assert_eq!(line["amount_minor"], 13_713);
    assert_eq!(line["amount"], "137.13");
}

#[test]
fn at_risk_amount_is_repaid_when_the_target_is_missed() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("payment").join("at-risk-repay.toml"));
    // 0.42 − 0.40 = 0.02 < 0.05.
    assert_eq!(b.evaluation("cohort")["met"], false);
    assert_eq!(b.results()["payment"]["total_minor"], -250_000);
    assert_eq!(
        b.results()["payment"]["direction"],
        "repaid by the provider"
    );
    assert!(
        b.stdout.contains("provider repays GBP 2500.00"),
        "{}",
        b.stdout
    );
}

#[test]
fn per_unit_contract_repays_repay_minor_when_the_target_is_missed() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("payment").join("per-unit-repay.toml"));
    assert_eq!(b.evaluation("cohort")["met"], false);
    assert_eq!(b.results()["payment"]["total_minor"], -12_345);
}

// ------------------------------------------------------------------- repeat index

#[test]
fn repeat_index_first_keeps_the_earliest_event_and_ledgers_the_other() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("repeat-index").join("first.toml"));
    let ledger = b.table("cohort");
    let r1: Vec<(String, String, String)> = ledger
        .rows()
        .filter(|r| r.get("person_id") == "R1")
        .map(|r| {
            (
                r.get("index_date").to_string(),
                r.get("status").to_string(),
                r.get("rule").to_string(),
            )
        })
        .collect();
    assert_eq!(
        r1,
        [
            (
                "2011-03-01".into(),
                "excluded".into(),
                "repeat-index".into()
            ),
            ("2011-02-01".into(), "eligible".into(), String::new()),
        ]
    );
    // From 2011-02-01, R1's offence on 2011-02-15 is in the window.
    let outcomes = b.table("outcomes");
    let row = outcomes.only("person_id", "R1");
    assert_eq!(row.get("index_date"), "2011-02-01");
    assert_eq!(row.get("reoffender"), "1");
    let excluded = &b.results()["cohort"]["groups"][0]["excluded"];
    let repeat = excluded
        .as_array()
        .and_then(|x| x.iter().find(|e| e["rule"] == "repeat-index"))
        .expect("repeat-index count");
    assert_eq!(repeat["count"], 1);
}

#[test]
fn repeat_index_error_stops_the_audit_naming_the_person_and_both_rows() {
    let sb = Sandbox::new();
    let out = sb.join("b");
    sb.cmd(["run"])
        .arg(scenario("repeat-index").join("error.toml"))
        .arg("--out")
        .arg(&out)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["people.csv", "\"R1\"", "row 2", "(row 1)"]);
    assert!(!out.exists(), "no bundle is written");
}

// ----------------------------------------------------------------- period-boundary

#[test]
fn a_period_includes_its_first_and_last_days() {
    let sb = Sandbox::new();
    let b = sb.audit(scenario("period-boundary").join("spec.toml"));
    let ledger = b.table("cohort");
    let status = |p: &str| {
        let row = ledger.only("person_id", p);
        (row.get("status").to_string(), row.get("rule").to_string())
    };
    let outside = ("excluded".to_string(), "outside-periods".to_string());
    let eligible = ("eligible".to_string(), String::new());
    assert_eq!(status("A"), outside, "discharged 2011-09-30");
    assert_eq!(
        status("B"),
        eligible,
        "discharged 2011-10-01, the first day"
    );
    assert_eq!(status("C"), eligible, "discharged 2012-09-30, the last day");
    assert_eq!(status("D"), outside, "discharged 2012-10-01");
    assert_eq!(b.measure("cohort-1")["binary"]["exact"], "1/2");
}
