//! The hostile-input corpus (`tests/hostile/`): every case is a folder with an
//! `expect.toml` that states the documented outcome, and this one data-driven test runs
//! them all. For each case: the exit code is the documented one; nothing panicked; a
//! refused input says what is wrong, naming the file and, where there is one, the row
//! and column or the spec's line and column; and a refused `run` leaves no bundle and no
//! partial bundle behind. Inputs that are valid however odd they look (a byte-order
//! mark, CRLF line ends, a quoted line break, a cohort where everyone reoffends) state
//! the figure they must give.
//!
//! A case folder may start from a scenario (`base = "small-valid"` copies
//! `tests/scenarios/small-valid`), then add its own files, then apply `[[edit]]`s,
//! `[[symlink]]`s and `[[parquet]]` conversions, so each case shows only what it breaks.
//! See `tests/hostile/README.md` for the format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::common::*;

/// `expect.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// One line: what the case proves.
    about: String,
    /// A `tests/scenarios/` folder copied before the case's own files.
    base: Option<String>,
    /// The spec, relative to the case folder (default `spec.toml`).
    #[serde(default = "default_spec")]
    spec: String,
    /// `run` (default) or `check`.
    #[serde(default = "default_command")]
    command: String,
    /// The documented exit code.
    exit: i32,
    /// Substrings stderr must contain.
    #[serde(default)]
    stderr: Vec<String>,
    /// Substrings stdout must contain.
    #[serde(default)]
    stdout: Vec<String>,
    /// JSON pointer into the bundle's `results.json` → expected value (exit 0 runs).
    #[serde(default)]
    results: BTreeMap<String, toml::Value>,
    #[serde(default)]
    edit: Vec<Edit>,
    #[serde(default)]
    symlink: Vec<Symlink>,
    #[serde(default)]
    parquet: Vec<Parquet>,
}

fn default_spec() -> String {
    "spec.toml".into()
}

fn default_command() -> String {
    "run".into()
}

/// Replaces the one occurrence of `from` in `file` by `to` repeated `repeat` times
/// (`{case}` in `to` is the case folder's absolute path), or appends `append`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    file: String,
    from: Option<String>,
    to: Option<String>,
    #[serde(default = "one")]
    repeat: usize,
    append: Option<String>,
}

fn one() -> usize {
    1
}

/// Replaces `link` by a symbolic link to `target` (relative to the link's folder).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Symlink {
    link: String,
    target: String,
}

/// Writes `out` as Parquet from the CSV `csv`, casting the named columns to `i64`,
/// `f64`, `bool` or `datetime` (milliseconds since 1970 from integers).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parquet {
    csv: String,
    out: String,
    #[serde(default)]
    types: BTreeMap<String, String>,
}

fn hostile_dir() -> PathBuf {
    repo().join("tests").join("hostile")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(hostile_dir())
        .expect("tests/hostile")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("expect.toml").is_file())
        .collect();
    cases.sort();
    cases
}

#[test]
fn the_corpus_has_at_least_forty_cases_and_each_states_its_outcome() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} hostile cases", cases.len());
    for case in &cases {
        let expect = read_expect(case);
        assert!(!expect.about.trim().is_empty(), "{}", case.display());
        if expect.exit == EXIT_OK {
            assert!(
                !expect.results.is_empty() || !expect.stdout.is_empty(),
                "{}: an accepted input must state the figure it gives",
                case.display()
            );
        } else {
            assert!(
                expect.stderr.len() >= 2,
                "{}: a refusal must state at least two things its message names",
                case.display()
            );
        }
    }
}

#[test]
fn every_hostile_case_gives_its_documented_outcome() {
    let mut failed = Vec::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = std::panic::catch_unwind(|| run_case(&case));
        if let Err(e) = outcome {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{name}: {message}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} hostile case(s) failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

fn read_expect(case: &Path) -> Expect {
    let text = std::fs::read_to_string(case.join("expect.toml")).expect("expect.toml");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", case.display()))
}

fn run_case(case: &Path) {
    let expect = read_expect(case);
    let sb = Sandbox::new();
    let work = sb.join("case");
    if let Some(base) = &expect.base {
        copy_dir(&scenario(base), &work);
    }
    copy_case_files(case, &work);
    for edit in &expect.edit {
        apply_edit(&work, edit);
    }
    for p in &expect.parquet {
        write_parquet(&work.join(&p.csv), &work.join(&p.out), &p.types);
    }
    for link in &expect.symlink {
        let at = work.join(&link.link);
        if at.symlink_metadata().is_ok() {
            if at.is_dir() {
                std::fs::rename(&at, work.join(format!("{}.moved", link.link)))
                    .expect("move folder");
            } else {
                std::fs::remove_file(&at).expect("remove file");
            }
        }
        std::os::unix::fs::symlink(&link.target, &at).expect("symlink");
    }
    std::fs::create_dir(sb.join("evidence")).expect("evidence folder");
    let out_dir = sb.join("evidence").join("bundle");
    let spec = work.join(&expect.spec);
    let cmd = match expect.command.as_str() {
        "run" => sb.cmd(["run"]).arg(&spec).arg("--out").arg(&out_dir),
        "check" => sb.cmd(["check"]).arg(&spec),
        other => panic!("unknown command {other:?}"),
    };
    let out = cmd.assert(expect.exit);
    // Shown with `-- --nocapture`, to read every message of the corpus at once.
    println!("== {}\n{}{}", case.display(), out.stdout, out.stderr);
    out.stderr_has(&needles(&expect.stderr));
    out.stdout_has(&needles(&expect.stdout));
    if expect.exit == EXIT_OK {
        if expect.command == "run" {
            let results = read_json(&out_dir.join("results.json"));
            for (pointer, want) in &expect.results {
                let got = results
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("results.json has no {pointer}"));
                let want: serde_json::Value =
                    serde_json::to_value(want).expect("expected value as JSON");
                assert_eq!(got, &want, "results.json {pointer}");
            }
            sb.cmd(["verify"]).arg(&out_dir).assert(EXIT_OK);
        }
    } else {
        assert!(
            out.stderr.lines().any(|l| l.starts_with("error")),
            "no `error` line:\n{}",
            out.stderr
        );
        let left = list_dir(&sb.join("evidence"));
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// Copies the case's files (all but `expect.toml`) over the base.
fn needles(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

fn copy_case_files(case: &Path, work: &Path) {
    std::fs::create_dir_all(work).expect("case folder");
    for entry in std::fs::read_dir(case).expect("case") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == "expect.toml" {
            continue;
        }
        let to = work.join(&name);
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

fn apply_edit(work: &Path, edit: &Edit) {
    let path = work.join(&edit.file);
    let mut bytes = std::fs::read(&path).unwrap_or_default();
    if let Some(append) = &edit.append {
        bytes.extend_from_slice(append.as_bytes());
        std::fs::write(&path, bytes).expect("write");
        return;
    }
    let (Some(from), Some(to)) = (&edit.from, &edit.to) else {
        panic!("an edit needs from and to, or append");
    };
    let text = String::from_utf8(bytes).expect("edited files are UTF-8");
    assert_eq!(
        text.matches(from.as_str()).count(),
        1,
        "{from:?} must occur once in {}",
        edit.file
    );
    // `{case}` stands for the case folder's absolute path.
    let to = to.replace("{case}", &work.display().to_string());
    std::fs::write(
        &path,
        text.replacen(from.as_str(), &to.repeat(edit.repeat), 1),
    )
    .expect("write");
}

fn write_parquet(csv: &Path, out: &Path, types: &BTreeMap<String, String>) {
    use polars::prelude::*;
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(csv.to_path_buf()))
        .expect("csv reader")
        .finish()
        .expect("read csv");
    for (column, kind) in types {
        let col = df.column(column).expect("column to cast").clone();
        let cast = match kind.as_str() {
            "i64" => col.cast(&DataType::Int64),
            "f64" => col.cast(&DataType::Float64),
            "bool" => col.cast(&DataType::Boolean),
            "datetime" => col
                .cast(&DataType::Int64)
                .and_then(|c| c.cast(&DataType::Datetime(TimeUnit::Milliseconds, None))),
            other => panic!("unknown Parquet type {other:?}"),
        }
        .expect("cast");
        df.with_column(cast).expect("replace column");
    }
    let file = std::fs::File::create(out).expect("create parquet");
    ParquetWriter::new(file)
        .finish(&mut df)
        .expect("write parquet");
}
