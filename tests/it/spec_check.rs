//! `check` validates specs without running them and lists every problem at once, each at
//! its `file:line:column`; `schema` prints the spec format as JSON Schema.

use crate::common::*;

#[test]
fn every_committed_spec_checks() {
    let sb = Sandbox::new();
    for name in [
        "doncaster-cohort-1",
        "doncaster-cohort-2",
        "doncaster-historical",
    ] {
        sb.cmd(["check"])
            .arg(committed_spec(name))
            .assert(EXIT_OK)
            .stdout_has(&["ok:", &format!("contract {name}")]);
    }
    let json = sb
        .cmd(["--json", "check"])
        .arg(committed_spec("doncaster-cohort-1"))
        .arg(committed_spec("doncaster-cohort-2"))
        .assert(EXIT_OK)
        .json();
    assert_eq!(json[0]["ok"], true);
    assert_eq!(json[1]["contract"], "doncaster-cohort-2");
}

#[test]
fn every_scenario_spec_checks() {
    // The hand-made scenarios are valid contracts too; only their data is unusual.
    let sb = Sandbox::new();
    let root = repo().join("tests").join("scenarios");
    let mut checked = 0;
    for folder in std::fs::read_dir(&root).expect("scenarios") {
        let folder = folder.expect("entry").path();
        if !folder.is_dir() || folder.file_name().is_some_and(|n| n == "spec-problems") {
            continue;
        }
        for file in std::fs::read_dir(&folder).expect("scenario folder") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "toml") {
                sb.cmd(["check"]).arg(&file).assert(EXIT_OK);
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} scenario specs found");
}

/// `tests/scenarios/spec-problems/spec.toml`: three problems, marked in its comments.
fn problem_spec() -> (std::path::PathBuf, String) {
    let path = scenario("spec-problems").join("spec.toml");
    let text = std::fs::read_to_string(&path).expect("spec-problems/spec.toml");
    (path, text)
}

#[test]
fn check_lists_every_problem_of_a_spec_at_once() {
    let sb = Sandbox::new();
    let (path, text) = problem_spec();
    let out = sb.cmd(["check"]).arg(&path).assert(EXIT_BAD_INPUT);
    let at = |needle: &str| {
        let (line, column) = position_of(&text, needle);
        format!("{}:{line}:{column}", path.display())
    };
    out.stderr_has(&[
        "3 problems",
        // The month 13 in the period's end date (the position is the value's quote).
        &format!(
            "{}: period end \"2011-13-01\" is not a valid date",
            at("\"2011-13-01\"")
        ),
        &format!("{}: threshold.per_period is negative", at("\"-0.05\"")),
        "comparator.period is not used by kind \"fixed-baseline\"",
    ]);
}

#[test]
fn check_points_at_a_field_the_comparator_kind_does_not_use() {
    let sb = Sandbox::new();
    let (path, text) = problem_spec();
    let (line, _) = position_of(&text, "period = { name = \"baseline-2009\"");
    let out = sb.cmd(["check"]).arg(&path).assert(EXIT_BAD_INPUT);
    let prefix = format!("{}:{line}:", path.display());
    assert!(
        out.stderr.lines().any(|l| l.contains(&prefix)
            && l.contains("comparator.period is not used by kind \"fixed-baseline\"")),
        "no {prefix}<column> on the comparator.period problem:\n{}",
        out.stderr
    );
}

#[test]
fn check_finds_a_missing_input_column_without_running() {
    let sb = Sandbox::new();
    let dir = sb.copy_scenario("small-valid");
    edit_file(
        &dir.join("people.csv"),
        "person_id,index_date,discharge_reason",
        "person_id,index_date,reason",
    );
    sb.cmd(["check"])
        .arg(dir.join("spec.toml"))
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["people.csv", "no column \"discharge_reason\""]);
}

#[test]
fn schema_prints_json_schema_of_the_spec_format() {
    let sb = Sandbox::new();
    let schema = sb.cmd(["schema"]).assert(EXIT_OK).json();
    let properties = &schema["properties"];
    assert!(properties["contract"].is_object(), "{schema:#}");
    for field in [
        "version",
        "inputs",
        "cohort",
        "outcome",
        "comparator",
        "threshold",
        "payment",
    ] {
        assert!(properties[field].is_object(), "schema lacks {field}");
    }
}
