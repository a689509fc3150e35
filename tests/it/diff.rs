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
    let text = sb
        .cmd(["diff"])
        .arg(&a.dir)
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout;
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
