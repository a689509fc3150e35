//! Matched comparison groups (`[comparator] kind = "matched"`): a propensity model of
//! cohort membership, nearest-neighbour matching on its logit, balance, inference, the
//! Justice Data Lab rule and `threshold.require_significance`.
//!
//! Rules held here:
//! - on the committed Peterborough fixtures the matched estimate's interval covers the
//!   planted effect (`fixtures/peterborough/truth.json`) while the naive comparison with
//!   the whole pool is biased the other way;
//! - the evidence of a matched audit (results.json and every table) is byte-identical on
//!   every run and thread count, replays identically, and a bootstrap depends on its seed
//!   only through its interval;
//! - matching is pinned: identical covariates tie at distance 0 and ties go to the smaller
//!   id, whatever the row order; the caliper, `replacement` and `exact` decide who is
//!   matched as `tests/scenarios/matched-small/` derives by hand;
//! - matching is outcome-blind: other convictions, the same matches;
//! - every bad matched spec or covariate value is exit 2 with a message that names it,
//!   and leaves no bundle;
//! - `require_significance` and the Justice Data Lab rule can turn a met size threshold
//!   into `met: false` / `significant: false`, and say why.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// Every computed file of a matched bundle: the common ones and the matching tables.
const MATCHED_FILES: [&str; 11] = [
    "datapackage.json",
    "report.html",
    "results.json",
    "spec.toml",
    "tables/balance.csv",
    "tables/cohort.csv",
    "tables/convictions.csv",
    "tables/matches.csv",
    "tables/outcomes.csv",
    "tables/pool_cohort.csv",
    "tables/propensity.csv",
];

fn peterborough_fixtures() -> PathBuf {
    repo().join("fixtures").join("peterborough")
}

fn truth() -> Value {
    read_json(&peterborough_fixtures().join("truth.json"))
}

/// `truth.matched.periods[]` entry of one period.
fn truth_period(truth: &Value, name: &str) -> Value {
    truth["matched"]["periods"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no matched period {name:?} in truth.json"))
}

/// A number written in results.json as a decimal string (or a JSON number).
fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} is not a number: {e}")),
        Value::Number(n) => n.as_f64().expect("finite number"),
        other => panic!("not a number: {other}"),
    }
}

fn int(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

/// The `matching.scopes[]` entry of one scope.
fn matched_scope(results: &Value, scope: &str) -> Value {
    results["matching"]["scopes"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["scope"] == scope))
        .cloned()
        .unwrap_or_else(|| panic!("no matching scope {scope:?}"))
}

fn finding_codes(results: &Value) -> Vec<String> {
    results["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().expect("finding code").to_string())
        .collect()
}

/// Copies a committed Peterborough spec into the sandbox with its input paths made
/// absolute, then applies `edits` (each `from` must occur exactly once).
fn peterborough_copy(sb: &Sandbox, name: &str, file: &str, edits: &[(&str, &str)]) -> PathBuf {
    let text = std::fs::read_to_string(committed_spec(name)).expect("committed spec");
    let fixtures = peterborough_fixtures().display().to_string();
    let mut text = text.replace("../fixtures/peterborough", &fixtures);
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} must occur once in {name}"
        );
        text = text.replacen(from, to, 1);
    }
    sb.write(file, text)
}

/// `run` with `POLARS_MAX_THREADS=1`.
fn audit_single_thread(sb: &Sandbox, spec: &Path) -> Bundle {
    let dir = sb.new_bundle_path();
    sb.cmd(["run"])
        .arg(spec)
        .arg("--out")
        .arg(&dir)
        .env("POLARS_MAX_THREADS", "1")
        .assert(EXIT_OK);
    Bundle {
        dir,
        stdout: String::new(),
    }
}

fn assert_same_matched_evidence(a: &Bundle, b: &Bundle) {
    for rel in MATCHED_FILES {
        assert!(
            a.bytes(rel) == b.bytes(rel),
            "{rel} differs between {} and {}",
            a.dir.display(),
            b.dir.display()
        );
    }
}

fn assert_replays_identically(sb: &Sandbox, b: &Bundle) {
    let json = sb
        .cmd(["--json", "replay"])
        .arg(&b.dir)
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
        MATCHED_FILES.into_iter().collect::<BTreeSet<_>>(),
        "replay compares every computed file, the matching tables included"
    );
}

// ------------------------------------------------------------ planted effect (truth)

/// The planted truth of one period, in events per offender: (counted events − expected
/// events without the effect) / eligible.
fn planted_effect(period: &Value) -> f64 {
    let treated = &period["treated"];
    let events = int(&treated["counted_events"]) as f64;
    let eligible = int(&treated["eligible"]) as f64;
    let without = num(&period["treated_expected_events_without_effect"]);
    (events - without) / eligible
}

/// Test 1, for one committed cohort spec.
fn recovers_the_planted_effect(spec: &str, period_name: &str) {
    let sb = Sandbox::new();
    let truth = truth();
    let period = truth_period(&truth, period_name);
    let b = sb.audit(committed_spec(spec));
    let r = b.results();

    // The cohort is the truth's, person for person counted.
    let treated = &period["treated"];
    let m = b.measure(period_name);
    assert_eq!(m["people"], treated["eligible"]);
    assert_eq!(m["reoffenders"], treated["reoffenders"]);
    assert_eq!(m["offences"], treated["counted_offences"]);
    assert_eq!(m["conviction_events"], treated["counted_events"]);
    // Every eligible treated man is in the model; matched + unmatched = eligible.
    let matching = &r["matching"];
    let eligible = int(&treated["eligible"]);
    assert_eq!(int(&matching["treated_in_model"]), eligible);
    let unmatched: u64 = matching["unmatched"]
        .as_object()
        .expect("unmatched")
        .values()
        .map(int)
        .sum();
    assert_eq!(int(&matching["matched_treated"]) + unmatched, eligible);
    let scope = matched_scope(&r, period_name);
    assert_eq!(int(&scope["treated_people"]), eligible - unmatched);

    // The pool is the truth's too: the naive comparison is exactly pool events / pool
    // eligible (cohort-1: 8319 / 6900 = 2773/2300; cohort-2: 8176 / 6900 = 2044/1725).
    let pool = &period["pool"];
    assert_eq!(int(&matching["pool_in_model"]), int(&pool["eligible"]));
    assert_eq!(scope["naive_people"], pool["eligible"]);
    assert_eq!(
        scope["naive"]["exact"],
        fraction(
            int(&pool["counted_events"]) as i64,
            int(&pool["eligible"]) as i64
        )
    );

    // The matched interval covers the planted truth.
    //   cohort-1: truth (1365 − 1584.904560) / 1000 = −0.2199; interval
    //             [−0.3412, −0.0834] around −0.2123 (999 matched, 1 outside the caliper)
    //   cohort-2: truth (1389 − 1604.625266) / 1030 = −0.2093; interval
    //             [−0.3232, −0.0703] around −0.1968 (all 1030 matched)
    let effect = planted_effect(&period);
    let inf = &scope["inference"];
    let (lower, upper) = (num(&inf["lower"]), num(&inf["upper"]));
    assert!(
        lower <= effect && effect <= upper,
        "{period_name}: the interval [{lower}, {upper}] misses the planted effect {effect}"
    );
    assert_eq!(inf["method"], "welch");
    assert_eq!(inf["significant"], true);
    // The interval's centre is the exact treated − comparison difference.
    let difference = num(&inf["difference"]);
    let exact = num(&scope["treated"]["value"]) - num(&scope["comparison"]["value"]);
    assert!((difference - exact).abs() < 2e-6, "{difference} vs {exact}");

    // The naive comparison is biased the other way: the treated men are younger and have
    // more prior sanctions than the pool, so they reoffend more than the pool even with
    // the effect.
    //   cohort-1: 1355/999 − 8319/6900 = 1.3564 − 1.2057 = +0.1507 (truth −0.2199)
    //   cohort-2: 1389/1030 − 8176/6900 = 1.3485 − 1.1849 = +0.1636 (truth −0.2093)
    let naive_difference = num(&scope["treated"]["value"]) - num(&scope["naive"]["value"]);
    let half_width = (upper - lower) / 2.0;
    assert!(
        naive_difference.signum() != effect.signum()
            || (naive_difference - effect).abs() > half_width,
        "{period_name}: the naive difference {naive_difference} is not visibly biased against the truth {effect}"
    );
    // For seed 2010 it is both: the other side of zero and further than the half-width
    // (0.13 and 0.13) from the truth.
    assert!(naive_difference > 0.0 && effect < 0.0);
    assert!((naive_difference - effect).abs() > half_width);

    // Balance: within the limit after matching, and matching is what achieved it for
    // the two covariates the selection leans on most.
    //   cohort-1: age SMD −0.255 → −0.002, prior_sanctions 0.299 → −0.004
    assert_eq!(matching["balance_ok"], true);
    assert!(!finding_codes(&r).contains(&"balance-outside-limit".to_string()));
    let limit = num(&matching["balance_limit"]);
    for term in ["age", "prior_sanctions"] {
        let row = matching["balance"]
            .as_array()
            .expect("balance")
            .iter()
            .find(|b| b["term"] == term)
            .unwrap_or_else(|| panic!("no balance row for {term}"));
        let (before, after) = (num(&row["smd_before"]), num(&row["smd_after"]));
        assert!(
            before.abs() > limit && after.abs() <= limit && before.abs() > after.abs(),
            "{term}: SMD {before} before, {after} after matching (limit {limit})"
        );
    }
    // The balance table says the same as results.json.
    let table = b.table("balance");
    assert_eq!(
        table.records.len(),
        matching["balance"].as_array().unwrap().len()
    );
    assert!(table.rows().all(|row| row.get("within_limit") == "true"));

    // The role column: one outcomes row per treated man and per eligible pool man.
    let outcomes = b.table("outcomes");
    let count = |role: &str| outcomes.rows().filter(|r| r.get("role") == role).count() as u64;
    assert_eq!(count("treated"), eligible);
    assert_eq!(count("pool"), int(&pool["eligible"]));
    assert_eq!(
        outcomes.records.len() as u64,
        eligible + int(&pool["eligible"])
    );
    for row in outcomes.rows() {
        let prefix = if row.get("role") == "treated" {
            "P"
        } else {
            "N"
        };
        assert!(row.get("person_id").starts_with(prefix));
        assert_eq!(row.get("period"), period_name);
    }
    let convictions = b.table("convictions");
    for row in convictions.rows() {
        match row.get("role") {
            "treated" => assert!(row.get("person_id").starts_with('P')),
            "pool" => assert!(row.get("person_id").starts_with('N')),
            other => panic!("conviction row with role {other:?}"),
        }
    }
    // Pool events counted in the role column = the truth's pool events.
    let pool_events: u64 = outcomes
        .rows()
        .filter(|r| r.get("role") == "pool")
        .map(|r| r.get("conviction_events").parse::<u64>().expect("events"))
        .sum();
    assert_eq!(pool_events, int(&pool["counted_events"]));
}

#[test]
fn cohort_1_matched_interval_covers_the_planted_effect_and_the_naive_comparison_is_biased() {
    recovers_the_planted_effect("peterborough-cohort-1", "cohort-1");
}

#[test]
fn cohort_2_matched_interval_covers_the_planted_effect_and_the_naive_comparison_is_biased() {
    recovers_the_planted_effect("peterborough-cohort-2", "cohort-2");
}

#[test]
fn the_pool_ledger_accounts_for_every_pool_row_as_the_truth_says() {
    let sb = Sandbox::new();
    let truth = truth();
    let b = sb.audit(committed_spec("peterborough-cohort-1"));
    let r = b.results();
    let pool = &truth_period(&truth, "cohort-1")["pool"];
    let group = &r["pool"]["groups"][0];
    assert_eq!(group["period"], "cohort-1");
    assert_eq!(group["role"], "pool");
    assert_eq!(group["eligible"], pool["eligible"]);
    let excluded = |rule: &str| {
        group["excluded"]
            .as_array()
            .expect("excluded")
            .iter()
            .find(|e| e["rule"] == rule)
            .map(|e| int(&e["count"]))
            .unwrap_or_else(|| panic!("no exclusion {rule:?}"))
    };
    let truth_excluded = |k: &str| int(&pool["excluded"][k]);
    // Each excluded pool row fails exactly one rule (README-synth.md).
    assert_eq!(excluded("male"), truth_excluded("female"));
    assert_eq!(excluded("adult"), truth_excluded("under_18"));
    assert_eq!(
        excluded("short-sentence"),
        truth_excluded("sentence_12_months_or_more")
    );
    assert_eq!(
        excluded("not-released-from-court"),
        truth_excluded("released_from_court")
    );
    assert_eq!(
        excluded("sentence-completed"),
        truth_excluded("deported") + truth_excluded("time_served_on_remand")
    );
    // tables/pool_cohort.csv: one row per pool row; cohort-1's eligible rows are the
    // eligible pool; the other half of the pool lies in cohort-2's dates.
    let ledger = b.table("pool_cohort");
    assert_eq!(ledger.records.len() as u64, int(&truth["rows"]["pool"]));
    let eligible = ledger
        .rows()
        .filter(|row| row.get("period") == "cohort-1" && row.get("status") == "eligible")
        .count() as u64;
    assert_eq!(eligible, int(&pool["eligible"]));
}

#[test]
fn every_committed_peterborough_spec_checks() {
    let sb = Sandbox::new();
    for name in [
        "peterborough-cohort-1",
        "peterborough-cohort-2",
        "peterborough-pooled",
    ] {
        sb.cmd(["check"])
            .arg(committed_spec(name))
            .assert(EXIT_OK)
            .stdout_has(&["ok:", &format!("contract {name}")]);
    }
}

// ------------------------------------------------------------------------ determinism

#[test]
fn a_matched_audit_is_byte_identical_on_every_run_and_thread_count_and_replays() {
    let sb = Sandbox::new();
    let spec = committed_spec("peterborough-cohort-1");
    let a = sb.audit(&spec);
    let b = sb.audit(&spec);
    let single = audit_single_thread(&sb, &spec);
    assert_same_matched_evidence(&a, &b);
    assert_same_matched_evidence(&a, &single);
    assert_eq!(
        single.provenance()["buildDefinition"]["internalParameters"]["polars_max_threads"],
        1
    );
    assert_replays_identically(&sb, &a);
}

#[test]
fn a_seeded_bootstrap_is_byte_identical_on_every_run_and_thread_count_and_replays() {
    let sb = Sandbox::new();
    let spec = committed_spec("peterborough-pooled");
    let a = sb.audit(&spec);
    let b = sb.audit(&spec);
    let single = audit_single_thread(&sb, &spec);
    assert_same_matched_evidence(&a, &b);
    assert_same_matched_evidence(&a, &single);
    assert_eq!(
        matched_scope(&a.results(), "pooled")["inference"]["method"],
        "bootstrap"
    );
    assert_replays_identically(&sb, &a);
}

#[test]
fn another_bootstrap_seed_moves_the_interval_but_not_the_estimate_or_the_decision() {
    let sb = Sandbox::new();
    let committed = sb.audit(committed_spec("peterborough-pooled"));
    let same_seed = peterborough_copy(&sb, "peterborough-pooled", "seed-20100909.toml", &[]);
    let other_seed = peterborough_copy(
        &sb,
        "peterborough-pooled",
        "seed-7.toml",
        &[("seed = 20100909", "seed = 7")],
    );
    let same = sb.audit(&same_seed);
    let other = sb.audit(&other_seed);
    let (c, s, o) = (committed.results(), same.results(), other.results());
    // Guard: the copy with absolute paths and the same seed changes nothing computed.
    assert_eq!(c["matching"], s["matching"]);
    assert_eq!(c["evaluations"], s["evaluations"]);

    let mut moved = 0;
    for scope in ["cohort-1", "cohort-2", "pooled"] {
        let (a, b) = (matched_scope(&s, scope), matched_scope(&o, scope));
        let (ia, ib) = (&a["inference"], &b["inference"]);
        assert_eq!(ia["method"], "bootstrap");
        // The point estimate is the matched difference itself, not a resampling mean.
        assert_eq!(ia["difference"], ib["difference"], "{scope}");
        assert_eq!(a["treated"], b["treated"], "{scope}");
        assert_eq!(a["comparison"], b["comparison"], "{scope}");
        assert_eq!(ia["significant"], ib["significant"], "{scope}");
        if ia["lower"] != ib["lower"] || ia["upper"] != ib["upper"] {
            moved += 1;
        }
    }
    // Seed 20100909 vs 7, pooled scope: [−0.3787, −0.1554] vs [−0.3728, −0.1603].
    assert_eq!(moved, 3, "every scope's interval depends on the seed");
    for part in ["evaluations", "payment", "verdict", "findings"] {
        assert_eq!(s[part], o[part], "results.json {part} depends on the seed");
    }
    // Only results.json (and the spec) differ: the matching itself has no randomness.
    for rel in [
        "tables/balance.csv",
        "tables/matches.csv",
        "tables/propensity.csv",
        "tables/outcomes.csv",
    ] {
        assert!(
            same.bytes(rel) == other.bytes(rel),
            "{rel} depends on the seed"
        );
    }
}

// ------------------------------------------------------------------- matched-small

fn small_spec(file: &str) -> PathBuf {
    scenario("matched-small").join(file)
}

/// (treated id, comparison id) or (treated id, unmatched reason) rows of matches.csv.
type IdPairs = Vec<(String, String)>;

/// The matched pairs, and the unmatched treated ids with their reason.
fn matches(b: &Bundle) -> (IdPairs, IdPairs) {
    let table = b.table("matches");
    let mut pairs = Vec::new();
    let mut unmatched = Vec::new();
    for row in table.rows() {
        if row.get("unmatched_reason").is_empty() {
            pairs.push((
                row.get("treated_id").to_string(),
                row.get("comparison_id").to_string(),
            ));
        } else {
            assert_eq!(row.get("comparison_id"), "");
            unmatched.push((
                row.get("treated_id").to_string(),
                row.get("unmatched_reason").to_string(),
            ));
        }
    }
    (pairs, unmatched)
}

fn pairs(list: &[(&str, &str)]) -> IdPairs {
    list.iter()
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect()
}

#[test]
fn the_caliper_leaves_the_outlier_unmatched_and_replacement_decides_the_controls_used() {
    let sb = Sandbox::new();
    let with = sb.audit(small_spec("with-replacement.toml"));
    let without = sb.audit(small_spec("without-replacement.toml"));

    for b in [&with, &without] {
        let r = b.results();
        // T6 (age 85, 60 priors) has no control within 0.05 SD of the logit.
        assert!(finding_codes(&r).contains(&"treated-unmatched".to_string()));
        let (_, unmatched) = matches(b);
        assert_eq!(
            unmatched,
            pairs(&[("T6", "outside-caliper")]),
            "matches.csv lists T6 as outside the caliper"
        );
        let m = &r["matching"];
        assert_eq!(int(&m["treated_in_model"]), 6);
        assert_eq!(int(&m["pool_in_model"]), 12);
        assert_eq!(int(&m["matched_treated"]), 5);
        assert_eq!(m["unmatched"], serde_json::json!({ "outside-caliper": 1 }));
        // The product's own numbers agree: T6's nearest control is beyond the caliper,
        // and the twins are at distance 0.
        let caliper = num(&m["caliper"]);
        let propensity = b.table("propensity");
        let logit = |id: &str| -> f64 {
            propensity
                .only("person_id", id)
                .get("logit")
                .parse()
                .expect("logit")
        };
        let nearest = propensity
            .rows()
            .filter(|row| row.get("role") == "pool")
            .map(|row| (row.get("logit").parse::<f64>().expect("logit") - logit("T6")).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest > caliper,
            "T6: nearest control {nearest}, caliper {caliper}"
        );
        assert_eq!(propensity.only("person_id", "T6").get("matched"), "0");
        for (t, c) in [
            ("T1", "C01"),
            ("T2", "C02"),
            ("T3", "C03"),
            ("T4", "C04"),
            ("T5", "C05"),
        ] {
            assert_eq!(logit(t), logit(c), "{t} and its twin {c}");
        }
        for row in b
            .table("matches")
            .rows()
            .filter(|r| r.get("unmatched_reason").is_empty())
        {
            assert_eq!(row.get("distance"), "0.000000000");
            assert_eq!(row.get("rank"), "1");
            assert_eq!(row.get("weight"), "1/1");
        }
        // Matched on twins, every term balances exactly after matching.
        assert_eq!(m["balance_ok"], true);
        for row in m["balance"].as_array().expect("balance") {
            assert!(num(&row["smd_after"]).abs() < 1e-9, "{row}");
        }
        // Cohort: 2 reoffenders of 6. Matched treated T1-T5: 2 of 5. Naive pool: 5 of 12.
        assert_eq!(b.measure("cohort")["binary"]["exact"], "1/3");
        let scope = matched_scope(&r, "cohort");
        assert_eq!(scope["treated"]["exact"], "2/5");
        assert_eq!(scope["treated_people"], 5);
        assert_eq!(scope["naive"]["exact"], "5/12");
        assert_eq!(scope["comparison_weight"], "5");
        assert_eq!(b.evaluation("cohort")["people"], 5);
    }

    // With replacement T1 and T2 both take C01 (the smaller id of the tied twins):
    // 4 distinct controls, C01 weighted 2; comparison (2 + 1 + 1 + 0) / 5 = 4/5.
    let (with_pairs, _) = matches(&with);
    assert_eq!(
        with_pairs,
        pairs(&[
            ("T1", "C01"),
            ("T2", "C01"),
            ("T3", "C03"),
            ("T4", "C04"),
            ("T5", "C05")
        ])
    );
    let r = with.results();
    assert_eq!(int(&r["matching"]["controls_used"]), 4);
    assert_eq!(matched_scope(&r, "cohort")["comparison_people"], 4);
    assert_eq!(matched_scope(&r, "cohort")["comparison"]["exact"], "4/5");
    assert_eq!(
        with.table("propensity")
            .only("person_id", "C02")
            .get("matched"),
        "0"
    );

    // Without replacement T1 takes C01 and T2 the other twin, C02: 5 distinct controls;
    // comparison (1 + 0 + 1 + 1 + 0) / 5 = 3/5.
    let (without_pairs, _) = matches(&without);
    assert_eq!(
        without_pairs,
        pairs(&[
            ("T1", "C01"),
            ("T2", "C02"),
            ("T3", "C03"),
            ("T4", "C04"),
            ("T5", "C05")
        ])
    );
    let r = without.results();
    assert_eq!(int(&r["matching"]["controls_used"]), 5);
    assert_eq!(matched_scope(&r, "cohort")["comparison_people"], 5);
    assert_eq!(matched_scope(&r, "cohort")["comparison"]["exact"], "3/5");
    assert_eq!(
        without
            .table("propensity")
            .only("person_id", "C02")
            .get("matched"),
        "1"
    );
}

#[test]
fn ties_go_to_the_smaller_id_whatever_the_pool_row_order() {
    let sb = Sandbox::new();
    let original = sb.audit(small_spec("with-replacement.toml"));
    let dir = sb.copy_scenario("matched-small");
    // The pool's data rows in reverse order: C02 now comes before C01.
    let text = std::fs::read_to_string(dir.join("pool.csv")).expect("pool.csv");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(dir.join("pool.csv"), lines.join("\n") + "\n").expect("write pool.csv");
    let reversed = sb.audit(dir.join("with-replacement.toml"));
    assert!(
        original.bytes("tables/matches.csv") == reversed.bytes("tables/matches.csv"),
        "matches.csv depends on the pool's row order"
    );
    let (pairs, _) = matches(&reversed);
    assert!(pairs.contains(&("T2".to_string(), "C01".to_string())));
    for part in ["evaluations", "payment", "findings"] {
        assert_eq!(original.results()[part], reversed.results()[part], "{part}");
    }
}

#[test]
fn matching_is_outcome_blind() {
    let sb = Sandbox::new();
    let original = sb.audit(small_spec("with-replacement.toml"));
    let dir = sb.copy_scenario("matched-small");
    // Other people reoffend: T2 and T4 (treated), C02, C05 and C12 (pool).
    std::fs::write(
        dir.join("convictions.csv"),
        "person_id,offence_date,sanction_date,sanction_type,appearance_id\n\
         T2,2011-04-01,2011-05-01,conviction,A01\n\
         T4,2011-06-01,2011-07-01,conviction,A02\n\
         C02,2011-03-15,2011-04-15,conviction,A03\n\
         C05,2011-06-15,2011-07-15,conviction,A04\n\
         C12,2011-11-01,2011-12-01,conviction,A05\n",
    )
    .expect("write convictions.csv");
    let other = sb.audit(dir.join("with-replacement.toml"));
    for rel in [
        "tables/propensity.csv",
        "tables/matches.csv",
        "tables/balance.csv",
        "tables/pool_cohort.csv",
        "tables/cohort.csv",
    ] {
        assert!(
            original.bytes(rel) == other.bytes(rel),
            "{rel} depends on the outcomes"
        );
    }
    assert_eq!(
        original.results()["matching"]["model"],
        other.results()["matching"]["model"]
    );
    // The outcomes did change: T2, T4 = 2/5 treated; C01 (×2) 0, C03 0, C04 0, C05 1 =
    // 1/5 comparison.
    let scope = matched_scope(&other.results(), "cohort");
    assert_eq!(scope["treated"]["exact"], "2/5");
    assert_eq!(scope["comparison"]["exact"], "1/5");
}

#[test]
fn a_treated_person_alone_in_an_exact_stratum_is_unmatched_with_no_control_in_stratum() {
    let sb = Sandbox::new();
    let dir = sb.copy_scenario("matched-small");
    // A region column, matched exactly: everyone is "north" but T3, in the "south",
    // where the pool has nobody. Region is not in the propensity model, so the logits
    // (and T6's distance to the caliper) are unchanged.
    for (file, south) in [("people.csv", Some("T3,")), ("pool.csv", None)] {
        let text = std::fs::read_to_string(dir.join(file)).expect("csv");
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let region = match (i, south) {
                (0, _) => "region",
                (_, Some(id)) if line.starts_with(id) => "south",
                _ => "north",
            };
            out.push_str(&format!("{line},{region}\n"));
        }
        std::fs::write(dir.join(file), out).expect("write csv");
    }
    edit_file(
        &dir.join("with-replacement.toml"),
        "ratio = 1\n",
        "exact = [\"region\"]\nratio = 1\n",
    );
    let b = sb.audit(dir.join("with-replacement.toml"));
    let r = b.results();
    assert_eq!(r["matching"]["exact"], serde_json::json!(["region"]));
    assert_eq!(
        r["matching"]["unmatched"],
        serde_json::json!({ "no-control-in-stratum": 1, "outside-caliper": 1 })
    );
    assert_eq!(int(&r["matching"]["matched_treated"]), 4);
    let (pairs_found, mut unmatched) = matches(&b);
    unmatched.sort();
    assert_eq!(
        unmatched,
        pairs(&[("T3", "no-control-in-stratum"), ("T6", "outside-caliper")])
    );
    assert_eq!(
        pairs_found,
        pairs(&[("T1", "C01"), ("T2", "C01"), ("T4", "C04"), ("T5", "C05")])
    );
    // T3 (a reoffender) is left out: matched treated T1, T2, T4, T5 = 1 of 4.
    assert_eq!(matched_scope(&r, "cohort")["treated"]["exact"], "1/4");
}

// ------------------------------------------------------------------ spec validation

/// The matched-small spec (with replacement) copied into the sandbox with its data,
/// one edit applied; returns the spec's path and text.
fn edited_small_spec(sb: &Sandbox, from: &str, to: &str) -> (PathBuf, String) {
    let dir = sb.copy_scenario("matched-small");
    let spec = dir.join("with-replacement.toml");
    edit_file(&spec, from, to);
    let text = std::fs::read_to_string(&spec).expect("spec");
    (spec, text)
}

/// The small-valid spec (fixed baseline) copied with the matched-small pool beside it.
fn edited_fixed_baseline_spec(sb: &Sandbox, from: &str, to: &str) -> (PathBuf, String) {
    let dir = sb.copy_scenario("small-valid");
    std::fs::copy(small_spec("pool.csv"), dir.join("pool.csv")).expect("copy pool.csv");
    let spec = dir.join("spec.toml");
    edit_file(&spec, from, to);
    let text = std::fs::read_to_string(&spec).expect("spec");
    (spec, text)
}

/// `check SPEC` exits 2 with one problem, `message`, at `file:line:column` when given.
fn check_refuses(sb: &Sandbox, spec: &Path, at: Option<(usize, usize)>, message: &str) {
    let out = sb.cmd(["check"]).arg(spec).assert(EXIT_BAD_INPUT);
    let shown = spec.display().to_string();
    let expected = match at {
        Some((line, column)) => format!("{shown}:{line}:{column}: {message}"),
        None => format!("{shown}: {message}"),
    };
    out.stderr_has(&["1 problem in spec", &expected]);
    // run refuses it the same way, before writing anything.
    let bundle = sb.join("refused-bundle");
    sb.cmd(["run"])
        .arg(spec)
        .arg("--out")
        .arg(&bundle)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&[message]);
    assert!(!bundle.exists(), "a refused spec left a bundle");
}

/// (line, column) of the first character of `value` where it follows `needle`.
fn value_position(text: &str, needle: &str, value: &str) -> (usize, usize) {
    let (line, column) = position_of(text, needle);
    let offset = needle.find(value).expect("value inside needle");
    (line, column + offset)
}

#[test]
fn a_matched_comparator_without_a_pool_is_refused() {
    let sb = Sandbox::new();
    let (spec, _) = edited_small_spec(
        &sb,
        "[inputs.pool]\npath = \"pool.csv\"\nformat = \"csv\"\n",
        "",
    );
    check_refuses(
        &sb,
        &spec,
        None,
        "comparator kind \"matched\" needs an [inputs.pool] table",
    );
}

#[test]
fn a_categorical_covariate_needs_a_reference_and_a_numeric_one_has_none() {
    let sb = Sandbox::new();
    let (spec, text) = edited_small_spec(&sb, ", reference = \"violence\"", "");
    check_refuses(
        &sb,
        &spec,
        Some(position_of(&text, "{ column = \"offence\"")),
        "categorical covariate \"offence\" needs a `reference` level",
    );

    let sb = Sandbox::new();
    let (spec, text) = edited_small_spec(
        &sb,
        "{ column = \"age\", kind = \"numeric\" }",
        "{ column = \"age\", kind = \"numeric\", reference = \"30\" }",
    );
    check_refuses(
        &sb,
        &spec,
        Some(position_of(&text, "{ column = \"age\"")),
        "numeric covariate \"age\" has a `reference`",
    );
}

#[test]
fn a_ratio_outside_1_to_10_is_refused_at_its_value() {
    for ratio in ["0", "11"] {
        let sb = Sandbox::new();
        let line = format!("ratio = {ratio}\n");
        let (spec, text) = edited_small_spec(&sb, "ratio = 1\n", &line);
        check_refuses(
            &sb,
            &spec,
            Some(value_position(&text, &line, ratio)),
            &format!("comparator.ratio is {ratio}; it must be between 1 and 10"),
        );
    }
}

#[test]
fn a_matched_comparator_must_say_whether_it_matches_with_replacement() {
    let sb = Sandbox::new();
    let (spec, _) = edited_small_spec(&sb, "replacement = true\n", "");
    check_refuses(
        &sb,
        &spec,
        None,
        "comparator kind \"matched\" needs `replacement`",
    );
}

#[test]
fn a_balance_limit_of_zero_is_refused_at_its_value() {
    let sb = Sandbox::new();
    let (spec, text) = edited_small_spec(&sb, "balance_limit = \"0.10\"", "balance_limit = \"0\"");
    check_refuses(
        &sb,
        &spec,
        Some(value_position(&text, "balance_limit = \"0\"", "\"0\"")),
        "comparator.balance_limit must be above 0 and at most 1",
    );
}

#[test]
fn a_matched_comparator_needs_an_inference_section() {
    let sb = Sandbox::new();
    let (spec, _) = edited_small_spec(
        &sb,
        "[inference]\nmethod = \"welch\"\nconfidence = \"0.95\"\n",
        "",
    );
    check_refuses(
        &sb,
        &spec,
        None,
        "comparator kind \"matched\" needs an [inference] section",
    );
}

#[test]
fn a_bootstrap_without_a_seed_is_refused_in_its_inference_section() {
    let sb = Sandbox::new();
    let (spec, text) = edited_small_spec(
        &sb,
        "method = \"welch\"",
        "method = \"bootstrap\"\nreplicates = 1000",
    );
    // `seed` is absent, so the problem points into [inference], at its confidence value.
    check_refuses(
        &sb,
        &spec,
        Some(value_position(&text, "confidence = \"0.95\"", "\"0.95\"")),
        "a bootstrap needs `replicates` and `seed`",
    );
}

#[test]
fn require_significance_needs_an_inference_section() {
    let sb = Sandbox::new();
    let (spec, text) = edited_fixed_baseline_spec(
        &sb,
        "per_period = \"0.05\"",
        "per_period = \"0.05\"\nrequire_significance = true",
    );
    check_refuses(
        &sb,
        &spec,
        Some(value_position(&text, "require_significance = true", "true")),
        "threshold.require_significance needs an [inference] section",
    );
}

#[test]
fn a_pool_or_covariates_with_a_fixed_baseline_are_refused() {
    let sb = Sandbox::new();
    let (spec, text) = edited_fixed_baseline_spec(
        &sb,
        "[inputs.convictions]",
        "[inputs.pool]\npath = \"pool.csv\"\nformat = \"csv\"\n\n[inputs.convictions]",
    );
    check_refuses(
        &sb,
        &spec,
        Some(value_position(&text, "path = \"pool.csv\"", "\"pool.csv\"")),
        "inputs.pool is only used by comparator kind \"matched\"",
    );

    let sb = Sandbox::new();
    let (spec, text) = edited_fixed_baseline_spec(
        &sb,
        "source = \"test value\"",
        "source = \"test value\"\ncovariates = [{ column = \"age\", kind = \"numeric\" }]",
    );
    check_refuses(
        &sb,
        &spec,
        Some(position_of(&text, "{ column = \"age\"")),
        "comparator.covariates is only used by kind \"matched\"",
    );
}

#[test]
fn a_present_field_that_is_not_allowed_is_reported_at_its_position() {
    let sb = Sandbox::new();
    let (spec, text) = edited_fixed_baseline_spec(
        &sb,
        "[inputs.convictions]",
        "[inputs.pool]\npath = \"pool.csv\"\nformat = \"csv\"\n\n[inputs.convictions]",
    );
    let (line, _) = position_of(&text, "path = \"pool.csv\"");
    let out = sb.cmd(["check"]).arg(&spec).assert(EXIT_BAD_INPUT);
    let prefix = format!("{}:{line}:", spec.display());
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains(&prefix) && l.contains("inputs.pool is only used")),
        "no {prefix}<column> on the inputs.pool problem:\n{}",
        out.stderr
    );

    let sb = Sandbox::new();
    let (spec, text) = edited_fixed_baseline_spec(
        &sb,
        "per_period = \"0.05\"",
        "per_period = \"0.05\"\nrequire_significance = true",
    );
    let (line, _) = position_of(&text, "require_significance = true");
    let out = sb.cmd(["check"]).arg(&spec).assert(EXIT_BAD_INPUT);
    let prefix = format!("{}:{line}:", spec.display());
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains(&prefix) && l.contains("require_significance")),
        "no {prefix}<column> on the require_significance problem:\n{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------- data errors

/// A copy of matched-small to break, with an empty `evidence/` folder for the bundle.
struct BrokenSmall {
    sb: Sandbox,
    dir: PathBuf,
}

impl BrokenSmall {
    fn new() -> BrokenSmall {
        let sb = Sandbox::new();
        let dir = sb.copy_scenario("matched-small");
        std::fs::create_dir(sb.join("evidence")).expect("evidence folder");
        BrokenSmall { sb, dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `run` exits 2 with an `error:` line and leaves nothing in `evidence/`.
    fn run_fails(&self) -> Output {
        let out = self
            .sb
            .cmd(["run"])
            .arg(self.file("with-replacement.toml"))
            .arg("--out")
            .arg(self.sb.join("evidence").join("bundle"))
            .assert(EXIT_BAD_INPUT);
        assert!(
            out.stderr.lines().any(|l| l.starts_with("error: ")),
            "no `error:` line:\n{}",
            out.stderr
        );
        let left = list_dir(&self.sb.join("evidence"));
        assert!(left.is_empty(), "left behind: {left:?}");
        out
    }

    /// Adds a column to people.csv and pool.csv: `value(file, id)` for each data row.
    fn add_column(&self, name: &str, value: impl Fn(&str, &str) -> String) {
        for file in ["people.csv", "pool.csv"] {
            let text = std::fs::read_to_string(self.file(file)).expect("csv");
            let mut out = String::new();
            for (i, line) in text.lines().enumerate() {
                let cell = if i == 0 {
                    name.to_string()
                } else {
                    value(file, line.split(',').next().expect("id"))
                };
                out.push_str(&format!("{line},{cell}\n"));
            }
            std::fs::write(self.file(file), out).expect("write csv");
        }
    }

    fn add_covariate(&self, covariate: &str) {
        edit_file(
            &self.file("with-replacement.toml"),
            "  { column = \"prior\", kind = \"numeric\" },\n",
            &format!("  {{ column = \"prior\", kind = \"numeric\" }},\n  {covariate},\n"),
        );
    }
}

/// Neither stdout nor stderr shows a NaN or an infinity.
fn assert_no_nan(out: &Output) {
    for text in [&out.stdout, &out.stderr] {
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            let w = word.to_ascii_lowercase();
            assert!(
                !matches!(w.as_str(), "nan" | "inf" | "infinity"),
                "{word:?} in the output:\n{text}"
            );
        }
    }
}

#[test]
fn a_covariate_that_is_not_a_number_names_the_file_row_and_column() {
    let b = BrokenSmall::new();
    // Pool data row 3 is C03.
    edit_file(
        &b.file("pool.csv"),
        "C03,2011-03-15,40,",
        "C03,2011-03-15,abc,",
    );
    b.run_fails().stderr_has(&[
        "pool.csv",
        "row 3",
        "column \"age\"",
        "\"abc\" is not a number",
    ]);

    let b = BrokenSmall::new();
    // A missing value is named as missing.
    edit_file(
        &b.file("people.csv"),
        "T5,2011-05-10,50,1,",
        "T5,2011-05-10,50,,",
    );
    b.run_fails().stderr_has(&[
        "people.csv",
        "row 5",
        "column \"prior\"",
        "covariate value is missing",
    ]);
}

#[test]
fn nan_and_infinity_are_not_numeric_covariate_values() {
    // People data row 4 is T4 (age 30, prior 10).
    for (to, column, value) in [
        ("T4,2011-04-10,30,NaN,", "prior", "NaN"),
        ("T4,2011-04-10,inf,10,", "age", "inf"),
        ("T4,2011-04-10,-inf,10,", "age", "-inf"),
        ("T4,2011-04-10,1e999,10,", "age", "1e999"),
    ] {
        let b = BrokenSmall::new();
        edit_file(&b.file("people.csv"), "T4,2011-04-10,30,10,", to);
        b.run_fails().stderr_has(&[
            "people.csv",
            "row 4",
            &format!("column \"{column}\""),
            &format!("\"{value}\" is not a number"),
        ]);
    }
}

#[test]
fn a_categorical_reference_level_that_never_occurs_is_named_with_the_levels_found() {
    let b = BrokenSmall::new();
    edit_file(
        &b.file("with-replacement.toml"),
        "reference = \"violence\"",
        "reference = \"robbery\"",
    );
    b.run_fails().stderr_has(&[
        "covariate \"offence\"",
        "reference level \"robbery\"",
        "does not occur",
        "theft, violence",
    ]);
}

#[test]
fn a_pool_that_shares_no_level_with_the_cohort_is_separation_not_a_nan() {
    // Every treated man was released from "peterborough", every pool man from
    // "national": the indicator predicts treatment perfectly.
    let b = BrokenSmall::new();
    b.add_column("prison", |file, _| {
        if file == "people.csv" {
            "peterborough"
        } else {
            "national"
        }
        .to_string()
    });
    b.add_covariate("{ column = \"prison\", kind = \"categorical\", reference = \"national\" }");
    let out = b.run_fails();
    out.stderr_has(&["`prison=peterborough`", "perfectly separates"]);
    assert_no_nan(&out);
}

#[test]
fn a_pool_with_no_overlap_on_a_numeric_covariate_is_separation_not_a_nan() {
    // Every treated man 60 years older: ages 85-145 against the pool's 19-55.
    let b = BrokenSmall::new();
    older_treated(&b);
    let out = b.run_fails();
    out.stderr_has(&["perfectly separates"]);
    assert_no_nan(&out);
}

fn older_treated(b: &BrokenSmall) {
    let text = std::fs::read_to_string(b.file("people.csv")).expect("people.csv");
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
        } else {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            cells[2] = (cells[2].parse::<u32>().expect("age") + 60).to_string();
            out.push_str(&cells.join(","));
        }
        out.push('\n');
    }
    std::fs::write(b.file("people.csv"), out).expect("write people.csv");
}

#[test]
fn separation_on_a_numeric_covariate_names_that_covariate() {
    let b = BrokenSmall::new();
    older_treated(&b);
    let out = b.run_fails();
    out.stderr_has(&["`age` (almost) perfectly separates"]);
}

#[test]
fn a_covariate_with_one_value_for_everyone_is_refused_by_name() {
    let b = BrokenSmall::new();
    b.add_column("flag", |_, _| "1".to_string());
    b.add_covariate("{ column = \"flag\", kind = \"numeric\" }");
    let out = b.run_fails();
    out.stderr_has(&["covariate `flag` has the same value in every row"]);
    assert_no_nan(&out);
}

// ------------------------------------------------------------- require_significance

#[test]
fn require_significance_turns_a_met_size_threshold_into_a_miss_when_not_significant() {
    // Cohort-1 narrowed to men released in March and April 2011: 88 matched treated men
    // against their comparison group, 1.1591 vs 1.4593 events per offender, a 20.6%
    // reduction (above the 1% minimum) but p = 0.14 (interval [−0.70, 0.10]).
    let narrow = [
        (
            "from = \"2010-09-09\", to = \"2012-07-01\"",
            "from = \"2011-03-01\", to = \"2011-04-30\"",
        ),
        ("per_period = \"0.10\"", "per_period = \"0.01\""),
    ];
    let sb = Sandbox::new();
    let size_only = peterborough_copy(&sb, "peterborough-cohort-1", "size-only.toml", &narrow);
    let mut with_significance = narrow.to_vec();
    with_significance.push((
        "[threshold]\n",
        "[threshold]\nrequire_significance = true\n",
    ));
    let significance = peterborough_copy(
        &sb,
        "peterborough-cohort-1",
        "significance.toml",
        &with_significance,
    );

    let a = sb.audit(&size_only);
    let b = sb.audit(&significance);
    let (ea, eb) = (a.evaluation("cohort-1"), b.evaluation("cohort-1"));
    // The same numbers: the size threshold is met in both.
    for field in [
        "treated",
        "comparator",
        "relative_improvement",
        "minimum",
        "people",
    ] {
        assert_eq!(ea[field], eb[field], "{field}");
    }
    assert!(num(&eb["relative_improvement"]["value"]) >= num(&eb["minimum"]["value"]));
    assert_eq!(ea["significant"], false);
    assert_eq!(eb["significant"], false);
    let scope = matched_scope(&b.results(), "cohort-1");
    assert_eq!(scope["inference"]["significant"], false);
    assert!(num(&scope["inference"]["p_value"]) > 0.05);
    assert!(
        num(&scope["inference"]["upper"]) > 0.0,
        "the interval covers 0"
    );

    // Without require_significance it is met and paid; with it, missed and unpaid.
    assert_eq!(ea["met"], true);
    assert!(int(&a.results()["payment"]["total_minor"]) > 0);
    assert_eq!(eb["met"], false);
    let rb = b.results();
    assert_eq!(rb["payment"]["total_minor"], 0);
    assert_eq!(rb["payment"]["lines"][0]["met"], false);
    // Both say why a reviewer should look: the finding names the scope.
    for r in [a.results(), rb] {
        let finding = r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["code"] == "not-significant")
            .cloned()
            .expect("a not-significant finding");
        assert!(finding["message"]
            .as_str()
            .expect("message")
            .contains("cohort-1"));
    }
}

// ------------------------------------------------------------ Justice Data Lab rule

#[test]
fn the_jdl_rule_makes_a_significant_difference_on_20_treated_people_not_significant() {
    let sb = Sandbox::new();
    let plain = sb.audit(scenario("matched-jdl").join("no-jdl-rule.toml"));
    let jdl = sb.audit(scenario("matched-jdl").join("jdl-rule.toml"));

    // The same comparison in both: 12/20 = 3/5 treated against 20/20 = 1 matched.
    for b in [&plain, &jdl] {
        let r = b.results();
        assert_eq!(int(&r["matching"]["matched_treated"]), 20);
        assert_eq!(int(&r["matching"]["controls_used"]), 20);
        let scope = matched_scope(&r, "cohort");
        assert_eq!(scope["treated"]["exact"], "3/5");
        assert_eq!(scope["comparison"]["exact"], "1");
        let inf = &scope["inference"];
        // Hand-derived: SE = sqrt(0.6 × 0.4 × 20/19 / 20) = 0.112390, df = 19, p ≈ 0.0021.
        assert!((num(&inf["difference"]) + 0.4).abs() < 1e-9);
        assert!((num(&inf["std_error"]) - (0.6f64 * 0.4 / 19.0).sqrt()).abs() < 1e-8);
        assert!((num(&inf["df"]) - 19.0).abs() < 1e-6);
        let p = num(&inf["p_value"]);
        assert!(p > 0.001 && p < 0.005, "p = {p}");
    }

    // Welch alone: significant, no note.
    let inf = &matched_scope(&plain.results(), "cohort")["inference"];
    assert_eq!(inf["significant"], true);
    assert!(inf.get("jdl_note").is_none_or(Value::is_null));
    assert_eq!(plain.evaluation("cohort")["significant"], true);
    assert!(!finding_codes(&plain.results()).contains(&"not-significant".to_string()));

    // The JDL rule: p ≤ 0.05 and n·p = 12 ≥ 10 hold, but 20 < 30 treated people.
    let r = jdl.results();
    let inf = &matched_scope(&r, "cohort")["inference"];
    assert_eq!(inf["significant"], false);
    let note = inf["jdl_note"].as_str().expect("a jdl_note");
    assert!(
        note.contains("treated group has 20 people") && note.contains("30"),
        "the note names the treated group's size: {note}"
    );
    assert!(
        !note.contains("p-value") && !note.contains("n·p"),
        "only the size condition failed: {note}"
    );
    assert_eq!(jdl.evaluation("cohort")["significant"], false);
    assert!(finding_codes(&r).contains(&"not-significant".to_string()));
    // require_significance is not set: the size threshold alone decides the payment.
    assert_eq!(jdl.evaluation("cohort")["met"], true);
}

// ------------------------------------------------------------------ text summary

#[test]
fn the_run_summary_shows_a_rate_with_the_counts_it_was_computed_from() {
    let sb = Sandbox::new();
    let b = sb.audit(small_spec("with-replacement.toml"));
    let line = b
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("cohort "))
        .expect("the cohort line");
    assert!(
        line.contains("40.0% (2 reoffenders of 5 matched people)")
            || line.contains("33.3% (2 reoffenders of 6 people)"),
        "rate and counts disagree: {line}"
    );
}
