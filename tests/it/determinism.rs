//! Same spec + same input bytes → byte-identical evidence, on any run and any thread
//! count; `replay` recomputes a bundle byte for byte; `synth` regenerates the committed
//! fixtures; Parquet inputs give the same results as CSV.

use crate::common::*;

fn assert_same_evidence(a: &Bundle, b: &Bundle) {
    for rel in COMPUTED_FILES {
        assert!(
            a.bytes(rel) == b.bytes(rel),
            "{rel} differs between {} and {}",
            a.dir.display(),
            b.dir.display()
        );
    }
}

#[test]
fn the_same_spec_run_twice_gives_byte_identical_evidence() {
    let sb = Sandbox::new();
    let spec = committed_spec("doncaster-historical");
    let a = sb.audit(&spec);
    let b = sb.audit(&spec);
    assert_same_evidence(&a, &b);
}

#[test]
fn one_polars_thread_and_the_default_give_byte_identical_evidence() {
    let sb = Sandbox::new();
    let spec = committed_spec("doncaster-historical");
    let default = sb.audit(&spec);
    let dir = sb.new_bundle_path();
    sb.cmd(["run"])
        .arg(&spec)
        .arg("--out")
        .arg(&dir)
        .env("POLARS_MAX_THREADS", "1")
        .assert(EXIT_OK);
    let single = Bundle {
        dir,
        stdout: String::new(),
    };
    assert_same_evidence(&default, &single);
    // The thread count belongs in the provenance, and only there.
    let params = &single.provenance()["buildDefinition"]["internalParameters"];
    assert_eq!(params["polars_max_threads"], 1);
    assert_eq!(params["polars_version"], "0.55.2");
}

#[test]
fn replay_of_a_fresh_bundle_is_identical() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec("doncaster-historical"));
    let out = sb.cmd(["replay"]).arg(&b.dir).assert(EXIT_OK);
    out.stdout_has(&["identical", "results.json", "tables/outcomes.csv"]);
    let json = sb
        .cmd(["--json", "replay"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .json();
    assert_eq!(json["identical"], true);
    assert_eq!(
        json["compared"].as_array().map(Vec::len),
        Some(COMPUTED_FILES.len())
    );
}

#[test]
fn a_bundle_without_its_inputs_replays_only_with_a_data_directory() {
    let sb = Sandbox::new();
    let b = sb.audit_with(committed_spec("doncaster-cohort-1"), &["--no-embed-inputs"]);
    assert!(!b.path("inputs").exists(), "inputs are not copied");
    // The bundle itself still verifies: only the hashes of the inputs are in it.
    sb.cmd(["verify"]).arg(&b.dir).assert(EXIT_OK);
    sb.cmd(["replay"])
        .arg(&b.dir)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["--data", "people.csv"]);
    sb.cmd(["replay"])
        .arg(&b.dir)
        .arg("--data")
        .arg(doncaster_fixtures())
        .assert(EXIT_OK)
        .stdout_has(&["identical"]);
}

#[test]
fn synth_doncaster_seed_2011_reproduces_the_committed_fixtures() {
    let sb = Sandbox::new();
    let out = sb.join("synth");
    sb.cmd(["synth", "--preset", "doncaster", "--seed", "2011", "--out"])
        .arg(&out)
        .assert(EXIT_OK);
    for file in ["people.csv", "convictions.csv", "truth.json"] {
        assert!(
            std::fs::read(out.join(file)).expect("generated file")
                == std::fs::read(doncaster_fixtures().join(file)).expect("fixture"),
            "{file} differs from fixtures/doncaster/{file}"
        );
    }
}

#[test]
fn parquet_inputs_give_the_same_results_as_csv() {
    let sb = Sandbox::new();
    let data = sb.join("synth");
    sb.cmd([
        "synth",
        "--preset",
        "doncaster",
        "--seed",
        "2011",
        "--parquet",
        "--out",
    ])
    .arg(&data)
    .assert(EXIT_OK);
    // The committed spec, reading the Parquet copies written beside the CSV files.
    let csv_spec = committed_spec("doncaster-historical");
    let text = std::fs::read_to_string(&csv_spec).expect("committed spec");
    let parquet_text = text
        .replace("../fixtures/doncaster/people.csv", "people.parquet")
        .replace(
            "../fixtures/doncaster/convictions.csv",
            "convictions.parquet",
        )
        .replace("format = \"csv\"", "format = \"parquet\"");
    let parquet_spec = sb.write("synth/parquet.toml", parquet_text);

    let csv = sb.audit(&csv_spec);
    let parquet = sb.audit(&parquet_spec);
    let (a, b) = (csv.results(), parquet.results());
    assert_eq!(b["inputs"][0]["format"], "parquet");
    assert_eq!(b["inputs"][0]["path"], "inputs/people.parquet");
    // Everything computed from the data is the same; only the inputs (and the spec's
    // hash) describe different files.
    for part in [
        "rules",
        "cohort",
        "convictions",
        "measures",
        "comparator",
        "evaluations",
        "payment",
        "verdict",
    ] {
        assert_eq!(a[part], b[part], "results.json {part} differs");
    }
    for rel in [
        "tables/cohort.csv",
        "tables/convictions.csv",
        "tables/outcomes.csv",
    ] {
        assert!(csv.bytes(rel) == parquet.bytes(rel), "{rel} differs");
    }
    sb.cmd(["replay"])
        .arg(&parquet.dir)
        .assert(EXIT_OK)
        .stdout_has(&["identical"]);
}

#[test]
fn replay_refuses_a_data_directory_whose_files_differ_from_the_recorded_digests() {
    let sb = Sandbox::new();
    let b = sb.audit_with(
        scenario("small-valid").join("spec.toml"),
        &["--no-embed-inputs"],
    );
    let recorded = b.results()["inputs"][0]["sha256"]
        .as_str()
        .expect("people digest")
        .to_string();
    let data = sb.copy_scenario("small-valid");
    edit_file(&data.join("people.csv"), "V5,2011-10-05,", "V5,2011-10-06,");
    sb.cmd(["replay"])
        .arg(&b.dir)
        .arg("--data")
        .arg(&data)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["people", &recorded]);
}

#[test]
fn crlf_line_endings_and_a_byte_order_mark_do_not_change_the_results() {
    // Real extracts come from Windows and Excel. Same rows, other bytes: the input
    // digests differ, everything computed from the rows is the same.
    let sb = Sandbox::new();
    let clean = sb.audit(scenario("small-valid").join("spec.toml"));
    let dir = sb.copy_scenario("small-valid");
    for name in ["people.csv", "convictions.csv"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("csv");
        let windows = format!("\u{feff}{}", text.replace('\n', "\r\n"));
        std::fs::write(dir.join(name), windows).expect("write csv");
    }
    let messy = sb.audit(dir.join("spec.toml"));
    let (a, b) = (clean.results(), messy.results());
    assert_ne!(a["inputs"], b["inputs"]);
    for part in [
        "cohort",
        "convictions",
        "measures",
        "evaluations",
        "payment",
    ] {
        assert_eq!(a[part], b[part], "results.json {part} differs");
    }
    for rel in [
        "tables/cohort.csv",
        "tables/convictions.csv",
        "tables/outcomes.csv",
    ] {
        assert!(clean.bytes(rel) == messy.bytes(rel), "{rel} differs");
    }
}
