//! National-scale benchmark: `cargo bench --bench national`.
//!
//! Generates (or reuses) synthetic national data — by default 1,000,000 people and about
//! 4.5 million conviction rows, ~370 MB of CSV — then measures, in one process on one
//! machine so that ratios are comparable:
//! - the floor: hashing and parsing the inputs (what any audit must do);
//! - SHA-256 alone, to show the hashing rate;
//! - `run` (the binary, end to end, with and without embedded inputs), `verify` and
//!   `replay`, each with its peak memory as reported by the binary;
//! - the same data as Parquet, and the Peterborough cohort 1 spec (a matched comparison)
//!   against a generated national comparison pool (`BENCH_POOL`, default 1,000,000).
//!
//! Environment: `BENCH_PEOPLE` (default 1000000), `BENCH_DIR` (default a folder under
//! the system temp directory, reused between runs), `BENCH_REPEAT` (default 3; the
//! minimum is reported).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use outcome_audit::digest::Sha256Digest;
use outcome_audit::direct_io::DirectWriter;
use outcome_audit::spec::AuditSpec;
use outcome_audit::synth::{self, ExistingFiles, SynthConfig};

/// The audit spec of the benchmark (also used by the crash tests).
const SPEC: &str = include_str!("national.toml");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn best<T>(repeat: usize, f: impl FnMut() -> T) -> (Duration, T) {
    let (t, _, out) = best_with_cpu(repeat, f);
    (t, out)
}

/// The shortest wall time of `repeat` calls, the least CPU time (user + system, every
/// thread of this process) one of them took, and the last result.
fn best_with_cpu<T>(repeat: usize, mut f: impl FnMut() -> T) -> (Duration, f64, T) {
    let mut best = Duration::MAX;
    let mut cpu = f64::MAX;
    let mut last = None;
    for _ in 0..repeat {
        let c = cpu_seconds().0;
        let t = Instant::now();
        let out = f();
        best = best.min(t.elapsed());
        cpu = cpu.min(cpu_seconds().0 - c);
        last = Some(out);
    }
    (best, cpu, last.expect("repeat >= 1"))
}

/// CPU time (user + system, all threads) of this process and of its waited-for
/// children, from `/proc/self/stat` (Linux; in the kernel's fixed user tick of 1/100 s).
/// Zero where that file cannot be read.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17 of the line, 12-15 after the name.
    let tick = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    (tick(11) + tick(12), tick(13) + tick(14))
}

/// Runs the binary; returns wall time and the peak resident memory it reports.
fn run_binary(bin: &Path, args: &[&str], home: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .env("OUTCOME_AUDIT_HOME", home)
        .env("OUTCOME_AUDIT_REPORT_PEAK_MEMORY", "1")
        .output()
        .expect("binary runs");
    let elapsed = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    let peak = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|v| v.trim_end_matches(" bytes").parse().ok())
        .unwrap_or(0);
    (elapsed, peak)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Set (to a spec's path) in a child of this benchmark that measures the floor as a
/// process of its own, as `run` is measured.
const FLOOR_CHILD: &str = "OUTCOME_AUDIT_BENCH_FLOOR_OF";

fn main() {
    if let Some(spec) = std::env::var_os(FLOOR_CHILD) {
        let spec = AuditSpec::load(Path::new(&spec)).expect("spec loads");
        load_as_text(&spec, None);
        return;
    }
    let people = env_usize("BENCH_PEOPLE", 1_000_000);
    let repeat = env_usize("BENCH_REPEAT", 3).max(1);
    let dir = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("outcome-audit-bench-{people}")));
    std::fs::create_dir_all(&dir).expect("bench dir");
    if !dir.join("convictions.csv").exists() {
        let t = Instant::now();
        synth::generate_into(
            &SynthConfig::national(7, people),
            &dir,
            ExistingFiles::Overwrite,
        )
        .expect("synth");
        println!(
            "generated {people} people in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    let spec_path = dir.join("national.toml");
    std::fs::write(&spec_path, SPEC).expect("spec");
    let spec = AuditSpec::load(&spec_path).expect("spec loads");
    let input_bytes: u64 = spec
        .inputs()
        .iter()
        .map(|i| std::fs::metadata(&i.path).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!("inputs: {:.1} MB ({people} people)", mb(input_bytes));

    // Warm the page cache so every measurement reads from memory alike.
    for i in spec.inputs() {
        let _ = Sha256Digest::of_file(&i.path);
    }
    let (hash, _) = best(repeat, || {
        for i in spec.inputs() {
            Sha256Digest::of_file(&i.path).expect("hash");
        }
    });
    println!(
        "sha256 alone:           {:>7.3} s  ({:.2} GB/s)",
        hash.as_secs_f64(),
        input_bytes as f64 / hash.as_secs_f64() / 1e9
    );
    let (floor, floor_cpu, _) = best_with_cpu(repeat, || load_as_text(&spec, None));
    println!(
        "floor (hash + parse):   {:>7.3} s  (CPU {floor_cpu:.2} s on {} cores)",
        floor.as_secs_f64(),
        cores()
    );
    // The floor keeps every core busy, so a run within 1.5 x of it can spend at most
    // this much CPU time on everything beyond hashing and parsing: record checks, dates,
    // cohort, outcomes, and formatting, hashing and writing the evidence.
    let budget = 1.5 * floor.as_secs_f64() * cores() as f64 - floor_cpu;
    println!(
        "  the floor keeps {:.2} of {} cores busy; 1.5 x floor leaves {budget:.2} s of CPU beyond it",
        floor_cpu / floor.as_secs_f64(),
        cores()
    );
    // The same work in a process of its own, started and timed from outside as `run` is:
    // it pays for starting, and for memory the process has never touched, as `run` does.
    let (floor_process, floor_process_cpu) = {
        let mut best_t = Duration::MAX;
        let mut cpu = f64::MAX;
        for _ in 0..repeat {
            let c = cpu_seconds().1;
            let t = Instant::now();
            let status = Command::new(std::env::current_exe().expect("bench binary"))
                .env(FLOOR_CHILD, &spec_path)
                .status()
                .expect("floor child");
            assert!(status.success(), "the floor's process failed");
            best_t = best_t.min(t.elapsed());
            cpu = cpu.min(cpu_seconds().1 - c);
        }
        (best_t, cpu)
    };
    beside_floor(
        "floor as a process:",
        floor_process,
        floor_process_cpu,
        floor,
        "",
    );
    // The same, with the copy of each input that a bundle embedding its inputs must
    // hold written on the hashing thread and fsynced: the floor of `run`'s default.
    let copies = dir.join("floor-copies");
    let (floor_copy, floor_copy_cpu, _) = best_with_cpu(repeat, || {
        empty_folder(&copies);
        load_as_text(&spec, Some(&copies))
    });
    let _ = std::fs::remove_dir_all(&copies);
    beside_floor(
        "floor + input copies:",
        floor_copy,
        floor_copy_cpu,
        floor,
        "",
    );

    let bin = PathBuf::from(env!("CARGO_BIN_EXE_outcome-audit"));
    let home = dir.join("home");
    let out = dir.join("bundle");
    let out_s = out.to_string_lossy().into_owned();
    let spec_s = spec_path.to_string_lossy().into_owned();
    let report = |label: &str, args: &[&str]| -> Duration {
        let mut best_t = Duration::MAX;
        let mut cpu = f64::MAX;
        let mut peak = 0;
        for _ in 0..repeat {
            let c = cpu_seconds().1;
            let (t, p) = run_binary(&bin, args, &home);
            best_t = best_t.min(t);
            cpu = cpu.min(cpu_seconds().1 - c);
            peak = peak.max(p);
        }
        println!(
            "{label:<23} {:>7.3} s  = {:.2} x floor, {:.2} x floor as a process (CPU {cpu:.2} s = {:.2} x floor's, {:.2} s beyond it); peak memory {:.0} MB = {:.2} x input",
            best_t.as_secs_f64(),
            best_t.as_secs_f64() / floor.as_secs_f64(),
            best_t.as_secs_f64() / floor_process.as_secs_f64(),
            cpu / floor_cpu,
            cpu - floor_cpu,
            mb(peak),
            peak as f64 / input_bytes as f64
        );
        best_t
    };
    let run = report(
        "run (embedded inputs):",
        &["run", &spec_s, "--out", &out_s, "--force"],
    );
    report(
        "run --no-embed-inputs:",
        &[
            "run",
            &spec_s,
            "--out",
            &out_s,
            "--force",
            "--no-embed-inputs",
        ],
    );
    report(
        "run (embedded inputs):",
        &["run", &spec_s, "--out", &out_s, "--force"],
    );
    let bundle_bytes: u64 = walk_size(&out);
    // Written directly, the bundle is not in the page cache: read it once first, so
    // that hashing it is measured from memory as the inputs are.
    hash_tree(&out);
    let (bundle_hash, _) = best(repeat, || hash_tree(&out));
    println!(
        "bundle: {:.1} MB; hashing it alone {:.3} s",
        mb(bundle_bytes),
        bundle_hash.as_secs_f64()
    );
    // A lower bound on `run` for this bundle: the floor with the input copies, while the
    // bundle's tables, already formatted in memory, are hashed, written and fsynced on
    // other threads. No computation and no formatting: only the I/O any run that writes
    // this evidence must do.
    let tables: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("tables"))
        .expect("tables")
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("table"))
        })
        .collect();
    for (label, skip) in [
        ("", None),
        (" without the conviction ledger", Some("convictions.csv")),
    ] {
        let (evidence_io, evidence_io_cpu, _) = best_with_cpu(repeat, || {
            empty_folder(&copies);
            std::fs::create_dir(copies.join("tables")).expect("tables folder");
            std::thread::scope(|scope| {
                for (name, bytes) in tables.iter().filter(|(n, _)| Some(n.as_str()) != skip) {
                    let to = copies.join("tables").join(name);
                    scope.spawn(move || {
                        let mut file = DirectWriter::create(&to).expect("table copy");
                        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
                        for piece in bytes.chunks(1 << 20) {
                            sha2::Digest::update(&mut hasher, piece);
                            file.write_all(piece).expect("write");
                        }
                        file.finish().expect("write").sync_all().expect("fsync");
                        sha2::Digest::finalize(hasher)
                    });
                }
                load_as_text(&spec, Some(&copies))
            })
        });
        let _ = std::fs::remove_dir_all(&copies);
        beside_floor(
            "floor + evidence I/O:",
            evidence_io,
            evidence_io_cpu,
            floor,
            &format!(": the input copies and the bundle's tables{label} hashed, written and fsynced, nothing computed or formatted"),
        );
    }
    drop(tables);
    let verify = report("verify:", &["verify", &out_s]);
    println!(
        "  verify / hashing the bundle = {:.2}",
        verify.as_secs_f64() / bundle_hash.as_secs_f64()
    );
    let replay = report("replay:", &["replay", &out_s]);
    println!(
        "  replay / run = {:.2}",
        replay.as_secs_f64() / run.as_secs_f64()
    );

    // The same data as Parquet, through the same spec.
    let parquet = dir.join("parquet");
    std::fs::create_dir_all(&parquet).expect("parquet dir");
    for name in ["people", "convictions"] {
        let to = parquet.join(format!("{name}.parquet"));
        if !to.exists() {
            outcome_audit::data::csv_to_parquet(&dir.join(format!("{name}.csv")), &to)
                .expect("parquet");
        }
    }
    let parquet_spec = parquet.join("national.toml");
    std::fs::write(
        &parquet_spec,
        SPEC.replace("people.csv", "people.parquet")
            .replace("convictions.csv", "convictions.parquet")
            .replace("format = \"csv\"", "format = \"parquet\""),
    )
    .expect("parquet spec");
    println!("\nthe same data as Parquet:");
    end_to_end(&parquet_spec, &bin, &home, repeat);

    // The Peterborough spec (matched comparison) against a national comparison pool.
    let pool = env_usize("BENCH_POOL", 1_000_000);
    let pb = dir.join(format!("peterborough-{pool}"));
    if !pb.join("pool.csv").exists() {
        std::fs::create_dir_all(&pb).expect("peterborough dir");
        synth::generate_into(
            &SynthConfig::peterborough_with_pool(2010, pool),
            &pb,
            ExistingFiles::Overwrite,
        )
        .expect("synth peterborough");
    }
    let pb_spec = pb.join("peterborough-cohort-1.toml");
    std::fs::write(
        &pb_spec,
        PETERBOROUGH_SPEC.replace("../fixtures/peterborough/", ""),
    )
    .expect("peterborough spec");
    println!("\npeterborough-cohort-1.toml with a pool of {pool}:");
    end_to_end(&pb_spec, &bin, &home, repeat);
}

/// The floor: every table input hashed (SHA-256, on its own thread) while polars parses
/// it into text columns, in the fastest way polars offers (the file memory-mapped and
/// parsed on every core), with the columns `run` reads. This is the work any audit of
/// these files must do; it is independent of how `run` reads them (in blocks, with the
/// record checks, the dates and the bundle copy on the same pass).
///
/// With `copy_to`, the hashing thread also writes each file's bytes to a file of the same
/// name in that folder and fsyncs it, as `run` does for the bundle's `inputs/`.
fn load_as_text(spec: &AuditSpec, copy_to: Option<&Path>) -> Vec<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let people_columns = |input| {
        outcome_audit::sensitivity::people_columns(spec, input)
            .into_iter()
            .map(|(file, _)| PlSmallStr::from(file))
            .collect::<Vec<_>>()
    };
    let mut tables = vec![(&spec.people, Some(people_columns(&spec.people)))];
    if let Some(pool) = &spec.pool {
        tables.push((pool, Some(people_columns(pool))));
    }
    // Every column of the convictions, as `run` reads them.
    tables.push((&spec.convictions, None));
    tables
        .into_iter()
        .map(|(input, columns)| {
            let path = input.path.clone();
            let copy = copy_to.map(|d| d.join(path.file_name().expect("file name")));
            let hasher = std::thread::spawn(move || {
                let file = std::fs::File::open(&path).expect("open");
                match copy {
                    None => Sha256Digest::of_reader(file).expect("hash"),
                    Some(to) => {
                        // Written as `run` writes its copies (directly, where the file
                        // system takes it).
                        let mut out = DirectWriter::create(&to).expect("copy");
                        let digest = Sha256Digest::of_reader(Tee {
                            from: file,
                            to: &mut out,
                        })
                        .expect("hash");
                        out.finish().expect("copy").sync_all().expect("fsync");
                        digest
                    }
                }
            });
            let mut dedup: Vec<PlSmallStr> = Vec::new();
            for c in columns.into_iter().flatten() {
                if !dedup.contains(&c) {
                    dedup.push(c);
                }
            }
            let frame = match input.format {
                outcome_audit::spec::InputFormat::Parquet => {
                    let file = std::fs::File::open(&input.path).expect("open");
                    ParquetReader::new(file)
                        .with_columns(
                            (!dedup.is_empty())
                                .then(|| dedup.iter().map(|c| c.to_string()).collect()),
                        )
                        .finish()
                        .expect("parquet")
                }
                _ => CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(Some(0))
                    .with_columns((!dedup.is_empty()).then(|| dedup.into()))
                    .try_into_reader_with_file_path(Some(input.path.clone()))
                    .expect("reader")
                    .finish()
                    .expect("csv"),
            };
            hasher.join().expect("hash thread");
            frame
        })
        .collect()
}

/// The committed Peterborough cohort 1 spec, pointed at generated data.
const PETERBOROUGH_SPEC: &str = include_str!("../audit-specs/peterborough-cohort-1.toml");

/// Floor (hash + parse) and `run` of one spec, with the ratio and the peak memory.
fn end_to_end(spec_path: &Path, bin: &Path, home: &Path, repeat: usize) {
    let spec = AuditSpec::load(spec_path).expect("spec loads");
    let input_bytes: u64 = spec
        .inputs()
        .iter()
        .map(|i| std::fs::metadata(&i.path).map(|m| m.len()).unwrap_or(0))
        .sum();
    for i in spec.inputs() {
        let _ = Sha256Digest::of_file(&i.path);
    }
    let (floor, _) = best(repeat, || load_as_text(&spec, None));
    let out = spec_path.with_file_name("bundle");
    let args = [
        "run",
        spec_path.to_str().expect("path"),
        "--out",
        out.to_str().expect("path"),
        "--force",
    ];
    let mut best_t = Duration::MAX;
    let mut peak = 0;
    for _ in 0..repeat {
        let (t, p) = run_binary(bin, &args, home);
        best_t = best_t.min(t);
        peak = peak.max(p);
    }
    println!(
        "inputs {:.1} MB; floor {:.3} s; run {:.3} s = {:.2} x floor; peak memory {:.0} MB = {:.2} x input",
        mb(input_bytes),
        floor.as_secs_f64(),
        best_t.as_secs_f64(),
        best_t.as_secs_f64() / floor.as_secs_f64(),
        mb(peak),
        peak as f64 / input_bytes as f64
    );
}

/// Prints a measurement of the floor's kind beside the floor: time, ratio, CPU time.
fn beside_floor(label: &str, t: Duration, cpu: f64, floor: Duration, note: &str) {
    println!(
        "{label:<23} {:>7.3} s  = {:.2} x floor (CPU {cpu:.2} s){note}",
        t.as_secs_f64(),
        t.as_secs_f64() / floor.as_secs_f64()
    );
}

/// Makes `dir` an empty folder (its parents too, where missing).
fn empty_folder(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("folder");
}

/// A reader that writes everything it reads to `to` as well.
struct Tee<'a> {
    from: std::fs::File,
    to: &'a mut DirectWriter,
}

impl std::io::Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.from.read(buf)?;
        self.to.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn walk_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            total += walk_size(&p);
        } else if let Ok(m) = entry.metadata() {
            total += m.len();
        }
    }
    total
}

fn hash_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            hash_tree(&p);
        } else {
            let _ = Sha256Digest::of_file(&p);
        }
    }
}
