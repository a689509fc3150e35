//! A small builder for running the binary, read like a specification:
//!
//! ```ignore
//! let sb = Sandbox::new();
//! let out = sb.cmd(["check"]).arg(&spec).assert(0);
//! let bundle = sb.audit(scenario("lag-boundary").join("exclusive.toml"));
//! assert_eq!(bundle.results()["payment"]["total_minor"], 100_000);
//! ```
//!
//! Every command runs with `OUTCOME_AUDIT_HOME` pointing into a temporary directory (the
//! builder refuses to run without it), with `OUTCOME_AUDIT_KEY`, `RUST_LOG` and
//! `POLARS_MAX_THREADS` removed from the inherited environment unless a test sets them.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_outcome-audit");

/// Exit codes as documented in `src/cli.rs`.
pub const EXIT_OK: i32 = 0;
pub const EXIT_VERIFY_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_OUTPUT_FAILED: i32 = 4;

/// The files of a bundle that are computed from the spec and the inputs, and so must be
/// byte-identical on every run.
pub const COMPUTED_FILES: [&str; 7] = [
    "datapackage.json",
    "report.html",
    "results.json",
    "spec.toml",
    "tables/cohort.csv",
    "tables/convictions.csv",
    "tables/outcomes.csv",
];

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A committed contract spec, e.g. `committed_spec("doncaster-cohort-1")`.
pub fn committed_spec(name: &str) -> PathBuf {
    repo().join("audit-specs").join(format!("{name}.toml"))
}

/// A committed spec's text with its input paths made absolute, so that an edited copy
/// can be written anywhere.
pub fn committed_text(name: &str) -> String {
    std::fs::read_to_string(committed_spec(name))
        .expect("committed spec")
        .replace("path = \"../", &format!("path = \"{}/", repo().display()))
}

/// A hand-made scenario folder under `tests/scenarios/`.
pub fn scenario(name: &str) -> PathBuf {
    repo().join("tests").join("scenarios").join(name)
}

/// The committed Doncaster fixture folder.
pub fn doncaster_fixtures() -> PathBuf {
    repo().join("fixtures").join("doncaster")
}

/// One command line of the binary, not yet run.
pub struct Cmd {
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
}

impl Cmd {
    /// `outcome-audit ARGS...`
    pub fn new<I, S>(args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            envs: Vec::new(),
            dir: None,
        }
    }

    /// One more argument (a path, usually).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs the command in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Runs the command, checks the exit code and that nothing panicked, and returns
    /// what it printed.
    pub fn assert(self, code: i32) -> Output {
        assert!(
            self.envs.iter().any(|(k, _)| k == "OUTCOME_AUDIT_HOME"),
            "every command must set OUTCOME_AUDIT_HOME to a temporary directory"
        );
        let mut command = Command::new(BIN);
        command
            .args(&self.args)
            .env_remove("OUTCOME_AUDIT_KEY")
            .env_remove("RUST_LOG")
            .env_remove("POLARS_MAX_THREADS");
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        let output = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let shown = self
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            output.code, code,
            "`outcome-audit {shown}` exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            output.code, output.stdout, output.stderr
        );
        assert!(
            !output.stderr.contains("panicked"),
            "`outcome-audit {shown}` panicked:\n{}",
            output.stderr
        );
        output
    }
}

/// What a command printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts stdout contains every one of `needles`.
    pub fn stdout_has(&self, needles: &[&str]) -> &Output {
        for n in needles {
            assert!(
                self.stdout.contains(n),
                "stdout lacks {n:?}:\n{}",
                self.stdout
            );
        }
        self
    }

    /// Asserts stderr contains every one of `needles`.
    pub fn stderr_has(&self, needles: &[&str]) -> &Output {
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A temporary directory for one test: its own key home, its own bundles.
pub struct Sandbox {
    dir: tempfile::TempDir,
    bundles: Cell<usize>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("home")).expect("key home");
        Sandbox {
            dir,
            bundles: Cell::new(0),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The directory used as `OUTCOME_AUDIT_HOME` (the default signing key lives there).
    pub fn home(&self) -> PathBuf {
        self.join("home")
    }

    /// A command run in this sandbox, with its key home.
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd::new(args)
            .env("OUTCOME_AUDIT_HOME", self.home())
            .current_dir(self.path())
    }

    /// A fresh bundle path inside the sandbox (not created).
    pub fn new_bundle_path(&self) -> PathBuf {
        let n = self.bundles.get() + 1;
        self.bundles.set(n);
        self.join(format!("bundle-{n}"))
    }

    /// `run SPEC --out <fresh dir> EXTRA...`, which must exit 0.
    pub fn audit_with(&self, spec: impl AsRef<Path>, extra: &[&str]) -> Bundle {
        let dir = self.new_bundle_path();
        let out = self
            .cmd(["run"])
            .arg(spec.as_ref())
            .arg("--out")
            .arg(&dir)
            .args(extra)
            .assert(EXIT_OK);
        Bundle {
            dir,
            stdout: out.stdout,
        }
    }

    /// `run SPEC --out <fresh dir>`, which must exit 0.
    pub fn audit(&self, spec: impl AsRef<Path>) -> Bundle {
        self.audit_with(spec, &[])
    }

    /// Copies a scenario folder into the sandbox (to be edited) and returns the copy.
    pub fn copy_scenario(&self, name: &str) -> PathBuf {
        let to = self.join(name);
        copy_dir(&scenario(name), &to);
        to
    }

    /// Writes a file into the sandbox, creating folders.
    pub fn write(&self, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(&path, bytes).expect("write file");
        path
    }
}

/// A bundle written by `run`.
pub struct Bundle {
    pub dir: PathBuf,
    /// What `run` printed.
    pub stdout: String,
}

impl Bundle {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn results(&self) -> Value {
        read_json(&self.path("results.json"))
    }

    /// `tables/NAME.csv`.
    pub fn table(&self, name: &str) -> Table {
        Table::read(&self.path(&format!("tables/{name}.csv")))
    }

    /// The `measures[]` entry of one scope (a period name or `pooled`).
    pub fn measure(&self, scope: &str) -> Value {
        find_scope(&self.results()["measures"], scope)
    }

    /// The `evaluations[]` entry of one scope.
    pub fn evaluation(&self, scope: &str) -> Value {
        find_scope(&self.results()["evaluations"], scope)
    }

    /// The signed SLSA provenance predicate (decoded from the DSSE envelope's payload).
    pub fn provenance(&self) -> Value {
        use base64::Engine as _;
        let envelope = read_json(&self.path("attestation.dsse.json"));
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().expect("payload"))
            .expect("payload is standard base64");
        let statement: Value = serde_json::from_slice(&payload).expect("payload is JSON");
        statement["predicate"].clone()
    }

    /// person id → dispositions of their conviction rows, in data-row order
    /// (`tables/convictions.csv`).
    pub fn dispositions(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut m = std::collections::BTreeMap::<String, Vec<String>>::new();
        for row in self.table("convictions").rows() {
            m.entry(row.get("person_id").to_string())
                .or_default()
                .push(row.get("disposition").to_string());
        }
        m
    }
}

fn find_scope(list: &Value, scope: &str) -> Value {
    list.as_array()
        .and_then(|a| a.iter().find(|m| m["scope"] == scope))
        .cloned()
        .unwrap_or_else(|| panic!("no scope {scope:?} in {list:#}"))
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Names of the entries of a folder, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Replaces the one occurrence of `from` in a file by `to`.
pub fn edit_file(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read file to edit");
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once in {}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).expect("write edited file");
}

/// 1-based line and column (in characters) where `needle` first occurs in `text`.
pub fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not found"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The reduced fraction `n/d` as `results.json` writes exact values ("523/1000", "2").
pub fn fraction(n: i64, d: i64) -> String {
    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 {
            a.abs()
        } else {
            gcd(b, a % b)
        }
    }
    let g = gcd(n, d).max(1);
    let (n, d) = (n / g, d / g);
    if d == 1 {
        n.to_string()
    } else {
        format!("{n}/{d}")
    }
}

/// A CSV table with a header row (RFC 4180 quoting).
pub struct Table {
    pub header: Vec<String>,
    pub records: Vec<Vec<String>>,
}

/// One row of a [`Table`].
pub struct Row<'a> {
    table: &'a Table,
    cells: &'a [String],
}

impl Row<'_> {
    /// The cell in column `name`.
    pub fn get(&self, name: &str) -> &str {
        &self.cells[self.table.column(name)]
    }
}

impl Table {
    pub fn read(path: &Path) -> Table {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Table::parse(&text)
    }

    pub fn parse(text: &str) -> Table {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => record.push(std::mem::take(&mut field)),
                ('\n', false) => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (c, _) => field.push(c),
            }
        }
        if !field.is_empty() || !record.is_empty() {
            record.push(field);
            records.push(record);
        }
        let header = if records.is_empty() {
            Vec::new()
        } else {
            records.remove(0)
        };
        for (i, r) in records.iter().enumerate() {
            assert_eq!(
                r.len(),
                header.len(),
                "record {} has the wrong width",
                i + 1
            );
        }
        Table { header, records }
    }

    pub fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.header))
    }

    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.records
            .iter()
            .map(move |cells| Row { table: self, cells })
    }

    /// The one row whose `column` is `value`.
    pub fn only(&self, column: &str, value: &str) -> Row<'_> {
        let mut found = self.rows().filter(|r| r.get(column) == value);
        let row = found
            .next()
            .unwrap_or_else(|| panic!("no row with {column} = {value:?}"));
        assert!(
            found.next().is_none(),
            "more than one row with {column} = {value:?}"
        );
        row
    }
}

/// How the scenario specs reach the shipped risk model (relative to their folder).
pub const MODELS_REL: &str = "../../../audit-specs/models";

/// The shipped risk model's folder.
pub fn models() -> PathBuf {
    repo().join("audit-specs").join("models")
}

/// Copies a scenario folder into the sandbox, makes the model paths of `file` absolute,
/// applies `edits` (each `from` must occur exactly once) and writes the result as
/// `edited.toml` beside the copied data. Returns its path.
pub fn edited(sb: &Sandbox, folder: &str, file: &str, edits: &[(&str, &str)]) -> PathBuf {
    let dir = sb.copy_scenario(folder);
    let mut text = std::fs::read_to_string(dir.join(file)).expect("scenario spec");
    text = text.replace(MODELS_REL, &models().display().to_string());
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} must occur once in {folder}/{file}"
        );
        text = text.replacen(from, to, 1);
    }
    let path = dir.join("edited.toml");
    std::fs::write(&path, text).expect("write edited spec");
    path
}
