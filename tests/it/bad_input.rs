//! Bad input is exit 2 with a message that names the cause (file, row, column, field
//! position, both hashes), never a panic, and never a bundle: nothing is left at `--out`
//! and no `.outcome-audit-partial-*` directory beside it.
//!
//! Each test copies `tests/scenarios/small-valid` (4 eligible people, 2 reoffending) into
//! its sandbox and breaks one thing.

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::common::*;

struct Broken {
    sb: Sandbox,
    /// The copied scenario folder.
    dir: PathBuf,
    /// Where the bundle would go; its parent, `evidence/`, exists and starts empty.
    out: PathBuf,
}

impl Broken {
    fn new() -> Broken {
        let sb = Sandbox::new();
        let dir = sb.copy_scenario("small-valid");
        std::fs::create_dir(sb.join("evidence")).expect("evidence folder");
        let out = sb.join("evidence").join("bundle");
        Broken { sb, dir, out }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn spec(&self) -> PathBuf {
        self.file("spec.toml")
    }

    fn spec_text(&self) -> String {
        std::fs::read_to_string(self.spec()).expect("spec text")
    }

    /// `run` exits 2 and leaves nothing behind; returns the output for message checks.
    fn run_fails(&self) -> Output {
        let out = self
            .sb
            .cmd(["run"])
            .arg(self.spec())
            .arg("--out")
            .arg(&self.out)
            .assert(EXIT_BAD_INPUT);
        assert!(
            out.stderr.lines().any(|l| l.starts_with("error: ")),
            "no `error:` line:\n{}",
            out.stderr
        );
        assert_nothing_left(&self.sb.join("evidence"));
        out
    }
}

/// The output folder is empty: no bundle, no partial bundle.
fn assert_nothing_left(evidence: &Path) {
    let left = list_dir(evidence);
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        evidence.display()
    );
}

#[test]
fn the_unbroken_base_scenario_runs() {
    // Guard: every failure below is caused by the one thing each test breaks.
    let b = Broken::new();
    b.sb.cmd(["run"])
        .arg(b.spec())
        .arg("--out")
        .arg(&b.out)
        .assert(EXIT_OK);
    assert_eq!(
        read_json(&b.out.join("results.json"))["measures"][0]["people"],
        4
    );
}

#[test]
fn a_missing_input_file_is_named() {
    let b = Broken::new();
    std::fs::remove_file(b.file("convictions.csv")).expect("remove input");
    b.run_fails()
        .stderr_has(&["convictions.csv", "cannot read"]);
}

#[test]
fn a_sha256_pin_mismatch_shows_both_hashes() {
    let b = Broken::new();
    let actual = hex(&sha2::Sha256::digest(
        std::fs::read(b.file("people.csv")).expect("people.csv"),
    ));
    let pinned = "ab".repeat(32);
    edit_file(
        &b.spec(),
        "path = \"people.csv\"\n",
        &format!("path = \"people.csv\"\nsha256 = \"{pinned}\"\n"),
    );
    b.run_fails()
        .stderr_has(&["people.csv", &actual, &pinned, "sha256"]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_missing_column_names_the_column_and_the_file() {
    let b = Broken::new();
    edit_file(
        &b.file("convictions.csv"),
        "person_id,offence_date,",
        "person_id,offence_dt,",
    );
    b.run_fails().stderr_has(&[
        "convictions.csv",
        "no column \"offence_date\"",
        "offence_dt",
    ]);
}

#[test]
fn an_unparsable_date_names_the_file_row_and_column() {
    let b = Broken::new();
    // Data row 2 (V2): 31 February.
    edit_file(
        &b.file("convictions.csv"),
        "V2,2012-02-01,",
        "V2,2012-02-31,",
    );
    b.run_fails()
        .stderr_has(&["convictions.csv", "row 2", "\"offence_date\"", "2012-02-31"]);
}

#[test]
fn a_non_utf8_byte_names_the_row() {
    let b = Broken::new();
    // A Latin-1 é on data row 3.
    let mut bytes = std::fs::read(b.file("convictions.csv")).expect("convictions.csv");
    bytes.extend_from_slice(b"V3,2012-03-01,2012-03-20,conviction,A\xe903,theft\n");
    std::fs::write(b.file("convictions.csv"), bytes).expect("write");
    b.run_fails()
        .stderr_has(&["convictions.csv", "row 3", "not UTF-8"]);
}

#[test]
fn a_period_with_no_eligible_people_is_an_error() {
    let b = Broken::new();
    // Nobody was discharged in January 2012.
    edit_file(
        &b.spec(),
        "periods = [{ name = \"cohort\", from = \"2011-10-01\", to = \"2011-10-31\" }]",
        "periods = [\n  { name = \"cohort\", from = \"2011-10-01\", to = \"2011-10-31\" },\n  \
         { name = \"january-2012\", from = \"2012-01-01\", to = \"2012-01-31\" },\n]",
    );
    b.run_fails()
        .stderr_has(&["\"january-2012\"", "no eligible people"]);
}

#[test]
fn an_unknown_spec_field_is_named_with_its_line_and_column() {
    let b = Broken::new();
    edit_file(
        &b.spec(),
        "court_lag = { months = 6 }\n",
        "court_lag = { months = 6 }\ncourt_lagg = 3\n",
    );
    let (line, column) = position_of(&b.spec_text(), "court_lagg");
    let at = format!("{}:{line}:{column}", b.spec().display());
    b.run_fails()
        .stderr_has(&[&at, "unknown field `court_lagg`", "`court_lag`"]);
}

#[test]
fn a_window_of_zero_months_is_refused_at_its_position() {
    let b = Broken::new();
    edit_file(&b.spec(), "months = 12,", "months = 0,");
    let text = b.spec_text();
    let (line, _) = position_of(&text, "months = 0,");
    let (_, column) = position_of(&text, "0, end");
    let at = format!("{}:{line}:{column}", b.spec().display());
    b.run_fails()
        .stderr_has(&[&at, "outcome.window.months is 0"]);
}

#[test]
fn an_unknown_spec_version_is_refused() {
    let b = Broken::new();
    edit_file(&b.spec(), "\nversion = 1\n", "\nversion = 2\n");
    let (line, _) = position_of(&b.spec_text(), "version = 2");
    let at = format!("{}:{line}:11", b.spec().display());
    b.run_fails()
        .stderr_has(&[&at, "unsupported spec version 2", "version = 1"]);
}

#[test]
fn an_existing_bundle_is_not_overwritten_without_force() {
    let b = Broken::new();
    let run = |extra: &[&str], code: i32| {
        b.sb.cmd(["run"])
            .arg(b.spec())
            .arg("--out")
            .arg(&b.out)
            .args(extra)
            .assert(code)
    };
    run(&[], EXIT_OK);
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for rel in COMPUTED_FILES.iter().chain(&[
            "attestation.dsse.json",
            "manifest.json",
            "inputs/people.csv",
        ]) {
            files.push((
                rel.to_string(),
                std::fs::read(dir.join(rel)).expect("bundle file"),
            ));
        }
        files
    };
    let before = snapshot(&b.out);
    // The contract text changes, then the same --out is used again.
    edit_file(&b.spec(), "value = \"0.500\"", "value = \"0.600\"");
    run(&[], EXIT_BAD_INPUT).stderr_has(&["already exists", "--force"]);
    assert!(snapshot(&b.out) == before, "the old bundle was changed");
    assert_eq!(
        list_dir(&b.sb.join("evidence")),
        ["bundle"],
        "no partial bundle beside it"
    );
    // With --force it is replaced by the new run.
    run(&["--force"], EXIT_OK);
    assert!(snapshot(&b.out) != before);
    assert_eq!(
        read_json(&b.out.join("results.json"))["comparator"]["value_as_written"],
        "0.600"
    );
}

#[test]
fn output_that_cannot_be_written_is_exit_4() {
    let b = Broken::new();
    // --out under a regular file: the bundle's folder cannot be created.
    std::fs::write(b.sb.join("evidence").join("not-a-folder"), "x").expect("a file");
    let out = b.sb.join("evidence").join("not-a-folder").join("bundle");
    b.sb.cmd(["run"])
        .arg(b.spec())
        .arg("--out")
        .arg(&out)
        .assert(EXIT_OUTPUT_FAILED)
        .stderr_has(&["not-a-folder"]);
    assert_eq!(
        list_dir(&b.sb.join("evidence")),
        ["not-a-folder"],
        "nothing else is left behind"
    );
}
