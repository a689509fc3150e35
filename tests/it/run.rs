//! `run` on the committed Doncaster specs: the published verdicts, and results that equal
//! the truth planted by the generator (`fixtures/doncaster/truth.json`).
//!
//! The published Doncaster figures are a 58.0% baseline, cohort 1 at 52.3% (5.7 points
//! below: target of 5 points met) and cohort 2 at 54.7% (3.3 points below: missed). With
//! GBP 1,000,000.00 at risk and `on_miss = "repay"`, cohort 1 earns it and cohort 2
//! repays it.

use serde_json::Value;

use crate::common::*;

fn truth() -> Value {
    read_json(&doncaster_fixtures().join("truth.json"))
}

fn truth_group<'a>(truth: &'a Value, name: &str) -> &'a Value {
    truth["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == name))
        .unwrap_or_else(|| panic!("truth.json has no group {name:?}"))
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// Whether a treated group meets a 5-point target against a baseline group, from the
/// truth's integer counts: (rb/eb − rt/et) ≥ 1/20 ⇔ 20·(rb·et − rt·eb) ≥ eb·et.
fn meets_five_points(baseline: &Value, treated: &Value) -> bool {
    let (rb, eb) = (int(&baseline["reoffenders"]), int(&baseline["eligible"]));
    let (rt, et) = (int(&treated["reoffenders"]), int(&treated["eligible"]));
    20 * (rb * et - rt * eb) >= eb * et
}

#[test]
fn doncaster_cohort_1_meets_the_five_point_target_and_keeps_the_amount_at_risk() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-cohort-1"));
    // 523 of 1000 reoffend: 52.3% against 58.0% is 5.7 points better, at least 5.0 needed.
    for needle in [
        "52.3%",
        "58.0%",
        "5.7 points better",
        "target met",
        "full payment, the provider keeps the GBP 1000000.00 at risk",
        "GBP 0.00 (nothing owed)",
    ] {
        assert!(
            b.stdout.contains(needle),
            "verdict lacks {needle:?}:\n{}",
            b.stdout
        );
    }
    // The amount at risk was paid in advance: meeting the target moves no money.
    assert_eq!(b.results()["payment"]["total_minor"], 0);
    assert_eq!(b.results()["verdict"]["code"], "threshold-met");
}

#[test]
fn doncaster_cohort_2_misses_the_target_and_the_provider_repays() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-cohort-2"));
    // 547 of 1000: 54.7%, only 3.3 points below 58.0%.
    for needle in [
        "54.7%",
        "58.0%",
        "3.3 points better",
        "target missed",
        "provider repays GBP 1000000.00",
        "repaid by the provider",
    ] {
        assert!(
            b.stdout.contains(needle),
            "verdict lacks {needle:?}:\n{}",
            b.stdout
        );
    }
    assert_eq!(b.results()["payment"]["total_minor"], -100_000_000);
    assert_eq!(b.results()["verdict"]["code"], "threshold-not-met");
}

#[test]
fn doncaster_historical_computes_the_58_percent_baseline_from_the_2009_rows() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-historical"));
    let r = b.results();
    // 580 of the 1000 eligible 2009 discharges reoffend: 580/1000 = 29/50 = 58.0%.
    assert_eq!(r["comparator"]["kind"], "historical");
    assert_eq!(r["comparator"]["period"], "baseline-2009");
    assert_eq!(r["comparator"]["value"]["exact"], "29/50");
    assert_eq!(r["comparator"]["value"]["value"], "0.580000");
    assert!(
        b.stdout
            .contains("58.0% (historical baseline baseline-2009)"),
        "{}",
        b.stdout
    );
    // Cohort 1 keeps its GBP 1m at risk, cohort 2 repays GBP 1m.
    assert_eq!(b.evaluation("cohort-1")["met"], true);
    assert_eq!(b.evaluation("cohort-2")["met"], false);
    assert_eq!(r["payment"]["total_minor"], -100_000_000);
}

#[test]
fn results_equal_the_planted_truth_in_every_group() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-historical"));
    let truth = truth();
    let baseline = truth_group(&truth, "baseline-2009");
    for name in ["baseline-2009", "cohort-1", "cohort-2"] {
        let t = truth_group(&truth, name);
        let m = b.measure(name);
        assert_eq!(m["people"], t["eligible"], "{name}: people");
        assert_eq!(m["reoffenders"], t["reoffenders"], "{name}: reoffenders");
        assert_eq!(m["offences"], t["counted_offences"], "{name}: offences");
        assert_eq!(
            m["conviction_events"], t["counted_events"],
            "{name}: events"
        );
        assert_eq!(
            m["days_to_first_sum"], t["days_to_first_sum"],
            "{name}: days"
        );
        let (r, e) = (int(&t["reoffenders"]), int(&t["eligible"]));
        assert_eq!(m["binary"]["exact"], fraction(r, e), "{name}: binary rate");
    }
    // Each cohort is evaluated against the baseline's own rate, from the same truth.
    let (rb, eb) = (int(&baseline["reoffenders"]), int(&baseline["eligible"]));
    let mut total = 0;
    for name in ["cohort-1", "cohort-2"] {
        let t = truth_group(&truth, name);
        let (rt, et) = (int(&t["reoffenders"]), int(&t["eligible"]));
        let e = b.evaluation(name);
        assert_eq!(e["treated"]["exact"], fraction(rt, et), "{name}: treated");
        assert_eq!(
            e["comparator"]["exact"],
            fraction(rb, eb),
            "{name}: comparator"
        );
        assert_eq!(
            e["improvement"]["exact"],
            fraction(rb * et - rt * eb, eb * et),
            "{name}: improvement"
        );
        let met = meets_five_points(baseline, t);
        assert_eq!(e["met"], met, "{name}: decision");
        // At risk and paid in advance: met moves nothing, missed repays GBP 1m.
        total += if met { 0 } else { -100_000_000 };
    }
    assert_eq!(b.results()["payment"]["total_minor"], total);
}

#[test]
fn fixed_baseline_payment_follows_the_truth() {
    // The committed single-cohort specs against the published 0.580: the payment is
    // nothing when the truth's counts meet 5 points (the provider keeps the GBP 1m at
    // risk), −GBP 1m when they do not.
    let sb = Sandbox::new();
    let truth = truth();
    let baseline = truth_group(&truth, "baseline-2009");
    for name in ["cohort-1", "cohort-2"] {
        let b = sb.audit(committed_spec(&format!("doncaster-{name}")));
        let t = truth_group(&truth, name);
        let m = b.measure(name);
        assert_eq!(m["reoffenders"], t["reoffenders"], "{name}");
        assert_eq!(m["offences"], t["counted_offences"], "{name}");
        assert_eq!(m["conviction_events"], t["counted_events"], "{name}");
        let expected = if meets_five_points(baseline, t) {
            0
        } else {
            -100_000_000
        };
        assert_eq!(b.results()["payment"]["total_minor"], expected, "{name}");
    }
}

#[test]
fn exclusion_counts_equal_the_planted_exclusions() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-historical"));
    let r = b.results();
    let truth = truth();
    // Spec rule id → the truth's name for the same exclusion.
    let rules = [
        ("deported", "deported"),
        ("remand-time-served", "time_served_on_remand"),
        ("breach-only", "breach_only"),
    ];
    let groups = r["cohort"]["groups"].as_array().expect("cohort.groups");
    assert_eq!(groups.len(), 3);
    for g in groups {
        let name = g["period"].as_str().expect("period name");
        let t = truth_group(&truth, name);
        assert_eq!(g["eligible"], t["eligible"], "{name}: eligible");
        let excluded = g["excluded"].as_array().expect("excluded");
        let count = |rule: &str| {
            excluded
                .iter()
                .find(|x| x["rule"] == rule)
                .unwrap_or_else(|| panic!("{name}: no exclusion count for {rule}"))["count"]
                .clone()
        };
        let mut sum = int(&t["eligible"]);
        for (rule, truth_name) in rules {
            assert_eq!(count(rule), t["excluded"][truth_name], "{name}: {rule}");
            sum += int(&t["excluded"][truth_name]);
        }
        assert_eq!(count("repeat-index"), 0, "{name}: no repeated index events");
        // 1000 eligible + 25 + 40 + 15 excluded = 1080 rows in each period.
        assert_eq!(g["rows"], sum, "{name}: rows");
    }
}

#[test]
fn cohort_ledger_has_one_line_per_people_row_and_every_exclusion_has_a_rule_and_reason() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-cohort-1"));
    let ledger = b.table("cohort");
    let people = Table::read(&doncaster_fixtures().join("people.csv"));
    // 3240 rows = 3 groups × 1080; every one is in the ledger, in file order.
    assert_eq!(ledger.records.len(), 3240);
    assert_eq!(truth()["rows"]["people"], 3240);
    assert_eq!(people.records.len(), 3240);
    for (i, (row, person)) in ledger.rows().zip(people.rows()).enumerate() {
        assert_eq!(row.get("row"), (i + 1).to_string());
        assert_eq!(row.get("person_id"), person.get("offender_ref"));
        assert_eq!(row.get("index_date"), person.get("discharge_date"));
        match row.get("status") {
            "eligible" => {
                assert_eq!(row.get("period"), "cohort-1");
                assert_eq!((row.get("rule"), row.get("reason")), ("", ""));
            }
            "excluded" => {
                assert!(!row.get("rule").is_empty(), "row {} has no rule", i + 1);
                assert!(!row.get("reason").is_empty(), "row {} has no reason", i + 1);
            }
            other => panic!("row {}: unknown status {other:?}", i + 1),
        }
    }
    // Cohort 1 alone: 1000 eligible; its 80 exclusions by rule; the 2160 rows of 2009
    // and cohort 2 are outside the spec's only period.
    let count = |rule: &str| ledger.rows().filter(|r| r.get("rule") == rule).count();
    assert_eq!(
        ledger
            .rows()
            .filter(|r| r.get("status") == "eligible")
            .count(),
        1000
    );
    assert_eq!(count("deported"), 25);
    assert_eq!(count("remand-time-served"), 40);
    assert_eq!(count("breach-only"), 15);
    assert_eq!(count("outside-periods"), 2160);
    assert_eq!(b.results()["cohort"]["unassigned"]["outside-periods"], 2160);
}

#[test]
fn json_output_parses_and_carries_the_verdict() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(["--json", "run"])
        .arg(committed_spec("doncaster-cohort-1"))
        .arg("--out")
        .arg(sb.join("b"))
        .assert(EXIT_OK);
    let reports = out.json();
    let report = &reports.as_array().expect("an array of reports")[0];
    assert_eq!(report["contract"], "doncaster-cohort-1");
    assert_eq!(report["verdict"], "threshold-met");
    assert_eq!(report["total_minor"], 0);
    assert_eq!(report["currency"], "GBP");
    assert_eq!(report["evaluations"][0]["treated"], "0.523000");
    assert_eq!(report["evaluations"][0]["improvement"], "0.057000");
}

#[test]
fn several_specs_write_one_bundle_per_contract_id_under_out() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(["run"])
        .arg(committed_spec("doncaster-cohort-1"))
        .arg(committed_spec("doncaster-cohort-2"))
        .arg("--out")
        .arg(sb.join("evidence"))
        .assert(EXIT_OK);
    out.stdout_has(&["52.3%", "54.7%"]);
    for id in ["doncaster-cohort-1", "doncaster-cohort-2"] {
        let results = read_json(&sb.join("evidence").join(id).join("results.json"));
        assert_eq!(results["contract"]["id"], id);
    }
}
