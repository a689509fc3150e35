//! `diff`: two audits of one contract under different rules, explained from cause to
//! consequence.

use crate::common::*;

#[test]
fn a_shorter_court_lag_is_named_and_the_people_it_affects_are_listed() {
    let sb = Sandbox::new();
    let a = sb.audit(committed_spec("doncaster-cohort-1"));
    let text = std::fs::read_to_string(committed_spec("doncaster-cohort-1")).unwrap();
    let text = text
        .replace("path = \"../", &format!("path = \"{}/", repo().display()))
        .replace("court_lag = { months = 6 }", "court_lag = { months = 3 }");
    let b = sb.audit(sb.write("lag3.toml", text));
    let out = sb
        .cmd(["--json", "diff"])
        .arg(&a.dir)
        .arg(&b.dir)
        .assert(EXIT_OK)
        .json();
    assert_eq!(out["identical"], false);
    let d = &out["diff"];
    let spec: Vec<&str> = d["spec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    // Only the lag differs in the rules (the input paths are the same files, written
    // differently, so `inputs.*.path` differs too; their digests do not).
    assert!(spec.contains(&"outcome.court_lag.months"), "{spec:?}");
    assert!(
        d["inputs"].as_array().unwrap().is_empty(),
        "same input bytes"
    );
    assert!(d["cohort"].as_array().unwrap().is_empty(), "same people");
    // Every one of the 1000 people has a 3-month-earlier lag end; the people whose
    // counts change are exactly those who lose offences proven in months 16 to 18.
    assert_eq!(d["dates_changed"], 1000);
    let changed = d["outcomes"].as_array().unwrap();
    assert!(!changed.is_empty());
    let offences = |s: &str| s.split(',').nth(3).unwrap().parse::<i64>().unwrap();
    let lost: i64 = changed
        .iter()
        .map(|c| offences(c["a"].as_str().unwrap()) - offences(c["b"].as_str().unwrap()))
        .sum();
    let total = |b: &Bundle| b.measure("cohort-1")["offences"].as_i64().unwrap();
    assert_eq!(
        lost,
        total(&a) - total(&b),
        "the listed people account for the whole change"
    );
    // The text form reads cause first.
    let text = diff_text(&sb, &a, &b);
    let spec_at = text
        .find("outcome.court_lag.months: 6 -> 3")
        .expect("spec line");
    let people_at = text
        .find("people whose counted outcome differs")
        .expect("people line");
    let results_at = text.find("results that differ").expect("results line");
    assert!(spec_at < people_at && people_at < results_at, "{text}");
}

#[test]
fn a_bundle_diffed_with_itself_is_identical_and_a_tampered_one_is_refused() {
    let sb = Sandbox::new();
    let a = sb.audit(committed_spec("doncaster-cohort-1"));
    let out = sb
        .cmd(["--json", "diff"])
        .arg(&a.dir)
        .arg(&a.dir)
        .assert(EXIT_OK)
        .json();
    assert_eq!(out["identical"], true);
    let copy = sb.join("copy");
    copy_dir(&a.dir, &copy);
    let results = copy.join("results.json");
    let text = std::fs::read_to_string(&results)
        .unwrap()
        .replacen("523", "524", 1);
    std::fs::write(&results, text).unwrap();
    sb.cmd(["diff"])
        .arg(&a.dir)
        .arg(&copy)
        .assert(EXIT_VERIFY_FAILED);
}

/// `diff A B` as text.
fn diff_text(sb: &Sandbox, a: &Bundle, b: &Bundle) -> String {
    sb.cmd(["diff"])
        .arg(&a.dir)
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout
}

/// `diff --json A B` → `diff`.
fn diff_json(sb: &Sandbox, a: &Bundle, b: &Bundle) -> serde_json::Value {
    sb.cmd(["--json", "diff"])
        .arg(&a.dir)
        .arg(&b.dir)
        .assert(EXIT_OK)
        .json()["diff"]
        .clone()
}

/// person id → (window_end, lag_end, a count column) of the treated rows of
/// tables/outcomes.csv.
fn treated_outcomes(b: &Bundle, column: &str) -> std::collections::BTreeMap<String, (String, i64)> {
    b.table("outcomes")
        .rows()
        .filter(|r| r.get("role") == "treated")
        .map(|r| {
            (
                r.get("person_id").to_string(),
                (
                    format!("{},{}", r.get("window_end"), r.get("lag_end")),
                    r.get(column).parse().unwrap(),
                ),
            )
        })
        .collect()
}

/// Treated people left unmatched in tables/matches.csv.
fn unmatched(b: &Bundle) -> std::collections::BTreeSet<String> {
    b.table("matches")
        .rows()
        .filter(|r| !r.get("unmatched_reason").is_empty())
        .map(|r| r.get("treated_id").to_string())
        .collect()
}

/// (numerator, denominator) of an exact fraction "n/d".
fn parts(exact: &serde_json::Value) -> (i64, i64) {
    let s = exact.as_str().unwrap();
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    (n.parse().unwrap(), d.parse().unwrap())
}

#[test]
fn the_providers_lag_is_named_as_the_cause_with_the_men_whose_events_it_moves() {
    let sb = Sandbox::new();
    let a = sb.audit(committed_spec("peterborough-cohort-1"));
    let b = sb.audit(committed_spec("peterborough-cohort-1-lag3"));
    let out = sb
        .cmd(["--json", "diff"])
        .arg(&a.dir)
        .arg(&b.dir)
        .assert(EXIT_OK)
        .json();
    let d = &out["diff"];
    // The lag moves no one's matches: matching reads no outcome.
    assert!(d["matches"].as_array().unwrap().is_empty());
    let at = &d["attribution"][0];
    assert_eq!(at["scope"], "cohort-1");
    assert_eq!(at["counted"], "conviction_events");
    // The totals are the matched cohort's, as results.json states them:
    // 1355/999 = 1.356356 and 449/333 = 1347/999.
    let scale = |x: (i64, i64), people: i64| x.0 * (people / x.1);
    let ta = parts(&a.evaluation("cohort-1")["treated"]["exact"]);
    let tb = parts(&b.evaluation("cohort-1")["treated"]["exact"]);
    assert_eq!(at["a_people"], 999);
    assert_eq!(at["b_people"], 999);
    assert_eq!(at["a_count"], scale(ta, 999));
    assert_eq!(at["b_count"], scale(tb, 999));
    assert_eq!((scale(ta, 999), scale(tb, 999)), (1355, 1347));
    assert_eq!(at["accounted"], true);
    // One cause: the lag, for exactly the matched men whose event count differs.
    let parts_ = at["parts"].as_array().unwrap();
    assert_eq!(parts_.len(), 1, "{parts_:#?}");
    assert_eq!(parts_[0]["step"], "outcomes");
    assert!(parts_[0]["cause"]
        .as_str()
        .unwrap()
        .starts_with("outcome.court_lag.months: 6 -> 3 moves their window or lag end"));
    let (oa, ob) = (
        treated_outcomes(&a, "conviction_events"),
        treated_outcomes(&b, "conviction_events"),
    );
    let left_out = unmatched(&a);
    let mut changed = Vec::new();
    let mut change = 0;
    for (id, (_, n)) in &oa {
        let m = ob[id].1;
        if m != *n && !left_out.contains(id) {
            changed.push(id.clone());
            change += m - n;
        }
    }
    let listed: Vec<String> = parts_[0]["person_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, changed);
    assert_eq!(parts_[0]["count_change"], change);
    assert_eq!(change, 1347 - 1355);
    // The comparison group's rate moves too (its men's events are counted under the
    // same lag), and so does the payment.
    assert_eq!(
        at["comparator"],
        serde_json::json!([
            a.evaluation("cohort-1")["comparator"]["value"],
            b.evaluation("cohort-1")["comparator"]["value"]
        ])
    );
    assert_eq!(at["payment"], serde_json::json!(["318066.66", "316716.66"]));
    // The text names the lag and the men.
    let text = diff_text(&sb, &a, &b);
    assert!(
        text.contains("cohort-1: conviction_events 1355 of 999 people in a, 1347 of 999 in b (-8 conviction_events, +0 people), accounted for exactly by:"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "outcomes (outcome.court_lag.months: 6 -> 3 moves their window or lag end): {} people, -8 conviction_events, +0 people counted: {}",
        listed.len(),
        listed.join(" ")
    )), "{text}");
}

#[test]
fn a_narrower_caliper_changes_matched_sets_and_the_man_it_leaves_unmatched_is_attributed() {
    let sb = Sandbox::new();
    let a = sb.audit(committed_spec("peterborough-cohort-1"));
    let text = committed_text("peterborough-cohort-1")
        .replace("caliper_sd = \"0.2\"", "caliper_sd = \"0.02\"");
    let b = sb.audit(sb.write("caliper.toml", text));
    let d = diff_json(&sb, &a, &b);
    // Matched sets from the two matches tables, compared independently.
    let sets = |b: &Bundle| {
        let mut m = std::collections::BTreeMap::<String, Vec<String>>::new();
        for r in b.table("matches").rows() {
            let v = if r.get("unmatched_reason").is_empty() {
                r.get("comparison_id").to_string()
            } else {
                format!("unmatched: {}", r.get("unmatched_reason"))
            };
            m.entry(r.get("treated_id").to_string())
                .or_default()
                .push(v);
        }
        for v in m.values_mut() {
            v.sort();
        }
        m
    };
    let (sa, sb_) = (sets(&a), sets(&b));
    let expected: Vec<&String> = sa.keys().filter(|k| sa[*k] != sb_[*k]).collect();
    let listed: Vec<&str> = d["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["treated_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, expected);
    assert!(!listed.is_empty());
    let first = &d["matches"][0];
    let id = first["treated_id"].as_str().unwrap();
    assert_eq!(first["a"], serde_json::json!(sa[id]));
    assert_eq!(first["b"], serde_json::json!(sb_[id]));
    // Men matched in a and not in b account for the whole change in the cohort's count.
    let newly: Vec<String> = unmatched(&b).difference(&unmatched(&a)).cloned().collect();
    assert!(!newly.is_empty());
    let events = treated_outcomes(&a, "conviction_events");
    let lost: i64 = newly.iter().map(|id| events[id].1).sum();
    let at = &d["attribution"][0];
    assert_eq!(at["accounted"], true);
    let parts_ = at["parts"].as_array().unwrap();
    assert_eq!(parts_.len(), 1, "{parts_:#?}");
    assert_eq!(parts_[0]["step"], "matching");
    assert_eq!(parts_[0]["people_change"], -(newly.len() as i64));
    assert_eq!(parts_[0]["count_change"], -lost);
    assert_eq!(parts_[0]["person_ids"], serde_json::json!(newly));
    assert!(parts_[0]["cause"]
        .as_str()
        .unwrap()
        .contains("not matched in b (unmatched: outside-caliper)"));
    // The comparison group moves too, and is reported without a split.
    assert!(at["comparator"].is_array());
}

#[test]
fn people_a_new_exclusion_rule_removes_are_attributed_to_that_rule() {
    let sb = Sandbox::new();
    let a = sb.audit(committed_spec("doncaster-cohort-1"));
    let text = committed_text("doncaster-cohort-1").replace(
        "exclude = [\n  { id = \"deported\"",
        "exclude = [\n  { id = \"over-50\", column = \"age\", greater_than = 50, reason = \"aged over 50 (a rule for this test)\" },\n  { id = \"deported\"",
    );
    let b = sb.audit(sb.write("over50.toml", text));
    let d = diff_json(&sb, &a, &b);
    // Independently: a's eligible people whose people.csv row has age > 50.
    let people = Table::read(&doncaster_fixtures().join("people.csv"));
    let ages: Vec<i64> = people
        .rows()
        .map(|r| r.get("age").parse().unwrap())
        .collect();
    let cohort = a.table("cohort");
    let mut over: Vec<String> = cohort
        .rows()
        .filter(|r| r.get("status") == "eligible")
        .filter(|r| ages[r.get("row").parse::<usize>().unwrap() - 1] > 50)
        .map(|r| r.get("person_id").to_string())
        .collect();
    over.sort();
    let reoffend = treated_outcomes(&a, "reoffender");
    let lost: i64 = over.iter().map(|id| reoffend[id].1).sum();
    let at = &d["attribution"][0];
    assert_eq!(at["counted"], "reoffenders");
    assert_eq!(at["accounted"], true);
    let parts_ = at["parts"].as_array().unwrap();
    assert_eq!(parts_.len(), 1, "{parts_:#?}");
    assert_eq!(parts_[0]["step"], "cohort");
    assert_eq!(
        parts_[0]["cause"],
        "counted in a only: excluded in b under rule over-50"
    );
    assert_eq!(parts_[0]["person_ids"], serde_json::json!(over));
    assert_eq!(parts_[0]["people_change"], -(over.len() as i64));
    assert_eq!(parts_[0]["count_change"], -lost);
    // And the totals are the measures' own: reoffenders and people of cohort-1.
    let m = |b: &Bundle, f: &str| b.measure("cohort-1")[f].as_i64().unwrap();
    assert_eq!(at["a_count"], m(&a, "reoffenders"));
    assert_eq!(at["b_count"], m(&b, "reoffenders"));
    assert_eq!(m(&a, "people") - m(&b, "people"), over.len() as i64);
    assert_eq!(m(&a, "reoffenders") - m(&b, "reoffenders"), lost);
}

#[test]
fn per_person_payments_that_move_are_listed_person_by_person_and_add_up_to_the_total() {
    let sb = Sandbox::new();
    let spec = committed_spec("lewisham-ogrs-weighted");
    let a = sb.audit(&spec);
    let root = repo().display().to_string();
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("path = \"../", &format!("path = \"{root}/"))
        .replace(
            "path = \"models/",
            &format!("path = \"{root}/audit-specs/models/"),
        )
        .replace("window = { months = 12,", "window = { months = 6,");
    let b = sb.audit(sb.write("window6.toml", text));

    // Independently of `diff`: every person whose paid_minor differs between the two
    // bundles' tables/payments.csv.
    type Paid = std::collections::BTreeMap<(String, String), i64>;
    let paid = |x: &Bundle| -> Paid {
        x.table("payments")
            .rows()
            .map(|r| {
                (
                    (r.get("period").to_string(), r.get("person_id").to_string()),
                    r.get("paid_minor").parse().unwrap(),
                )
            })
            .collect()
    };
    let (pa, pb) = (paid(&a), paid(&b));
    let mut expected = std::collections::BTreeMap::new();
    for k in pa.keys().chain(pb.keys()) {
        let (x, y) = (pa.get(k).copied(), pb.get(k).copied());
        if x != y {
            expected.insert(k.clone(), (x, y));
        }
    }
    // A shorter window counts fewer offences: some people stop reoffending and are paid.
    assert!(!expected.is_empty());

    let d = diff_json(&sb, &a, &b);
    let listed: std::collections::BTreeMap<(String, String), (Option<i64>, Option<i64>)> = d
        ["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                (
                    c["period"].as_str().unwrap().to_string(),
                    c["person_id"].as_str().unwrap().to_string(),
                ),
                (c["a_minor"].as_i64(), c["b_minor"].as_i64()),
            )
        })
        .collect();
    assert_eq!(listed, expected);

    // The people listed account for the whole change in the total paid.
    let total = |x: &Bundle| x.results()["payment"]["total_minor"].as_i64().unwrap();
    let moved: i64 = expected
        .values()
        .map(|(x, y)| y.unwrap_or(0) - x.unwrap_or(0))
        .sum();
    assert_eq!(moved, total(&b) - total(&a));
    assert!(moved > 0, "people who stop reoffending are paid");

    let text = diff_text(&sb, &a, &b);
    // Who stopped (or started) reoffending, from the same tables.
    let reoffended = |x: &Bundle| -> std::collections::BTreeMap<String, String> {
        x.table("payments")
            .rows()
            .map(|r| {
                (
                    r.get("person_id").to_string(),
                    r.get("reoffended").to_string(),
                )
            })
            .collect()
    };
    let (ra, rb) = (reoffended(&a), reoffended(&b));
    let flipped: Vec<&String> = ra.keys().filter(|id| ra.get(*id) != rb.get(*id)).collect();
    assert!(!flipped.is_empty());
    assert!(text.contains(&format!(
        "8. people whose payment differs: {} (their payments ",
        expected.len()
    )));
    assert!(
        text.contains(&format!(
            "; {} of them because whether they reoffended differs\n",
            flipped.len()
        )),
        "{text}"
    );
    let money = |v: &Option<i64>| {
        let v = v.unwrap();
        format!("{}.{:02}", v / 100, v % 100)
    };
    // The first person listed, with the reason when their outcome moved.
    let ((period, id), (x, y)) = expected.iter().next().unwrap();
    let why = if ra[id] != rb[id] {
        format!(" (reoffended {} -> {})", ra[id], rb[id])
    } else {
        String::new()
    };
    assert!(
        text.contains(&format!(
            "   {period} {id}: {} -> {}{why}\n",
            money(x),
            money(y)
        )),
        "{text}"
    );
    // The first listed person whose outcome moved (the text lists the first 20).
    let ((period, id), (x, y)) = expected
        .iter()
        .take(20)
        .find(|((_, id), _)| ra[id] != rb[id])
        .expect("a person whose outcome moved among the first 20 listed");
    let line = format!(
        "   {period} {id}: {} -> {} (reoffended {} -> {})\n",
        money(x),
        money(y),
        ra[id],
        rb[id]
    );
    assert!(text.contains(&line), "{line} not in {text}");
}
