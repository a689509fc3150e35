//! Crash safety of `run`: killed at any moment (SIGKILL, so nothing of the process gets
//! to clean up), it leaves at the output path either nothing or a complete bundle that
//! verifies; with `--force` over an existing bundle, either the old bundle intact or the
//! new one complete, never neither; the inputs are never changed; the temporary folder
//! a killed run leaves beside the output is never taken for a bundle and does not break
//! the next run. A full disk, a read-only file system and a path through a regular file
//! give exit 4 with a message naming the path, the cause and what to do, and change
//! nothing that was there before.
//!
//! The kills come after delays spread over the time one complete run takes on a
//! synthetic national extract (100,000 people), measured first in each test, so they
//! land in reading, computing, writing, signing and installing on a fast machine or a
//! slow one. The disk-full and read-only tests mount a small tmpfs, which needs root;
//! where mounting is not permitted they print why and test nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A spec over `synth --preset national` data in the same folder (the benchmark's).
const NATIONAL_SPEC: &str = include_str!("../../benches/national.toml");

/// Fractions of one run's duration after which a run is killed.
const KILL_POINTS: [f64; 12] = [
    0.05, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.15, 1.3,
];

/// Synthetic national data (100,000 people) and its spec in the sandbox.
fn national(sb: &Sandbox) -> PathBuf {
    let data = sb.join("national");
    sb.cmd([
        "synth", "--preset", "national", "--seed", "7", "--people", "100000",
    ])
    .arg("--out")
    .arg(&data)
    .assert(EXIT_OK);
    let spec = data.join("spec.toml");
    std::fs::write(&spec, NATIONAL_SPEC).expect("write spec");
    spec
}

/// `outcome-audit run SPEC --out OUT EXTRA...`, which must exit with `code`.
fn run(sb: &Sandbox, spec: &Path, out: &Path, extra: &[&str], code: i32) -> Output {
    sb.cmd(["run"])
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(extra)
        .assert(code)
}

/// `outcome-audit run SPEC --out OUT EXTRA...` started in the background.
fn spawn_run(sb: &Sandbox, spec: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .arg("run")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("OUTCOME_AUDIT_HOME", sb.home())
        .env_remove("OUTCOME_AUDIT_KEY")
        .env_remove("RUST_LOG")
        .env_remove("POLARS_MAX_THREADS")
        .current_dir(sb.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start run")
}

/// How long one complete run takes here (it must succeed).
fn time_one_run(sb: &Sandbox, spec: &Path, out: &Path) -> Duration {
    let started = Instant::now();
    let status = spawn_run(sb, spec, out, &[]).wait().expect("run");
    assert!(status.success(), "the timing run failed: {status}");
    started.elapsed()
}

/// Kills `child` with SIGKILL after `delay`. True if it was still running then.
fn kill_after(mut child: Child, delay: Duration) -> bool {
    std::thread::sleep(delay);
    let running = child.try_wait().expect("poll run").is_none();
    // SIGKILL on Unix; a child that already exited is not an error.
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// SHA-256 of every input file, to show they are never changed.
fn input_digests(spec: &Path) -> Vec<(String, String)> {
    use sha2::Digest as _;
    let dir = spec.parent().expect("spec folder");
    ["people.csv", "convictions.csv"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(f)).expect("read input");
            (f.to_string(), format!("{:x}", sha2::Sha256::digest(&bytes)))
        })
        .collect()
}

/// Temporary folders left beside bundles, in `dir`.
fn partials(dir: &Path) -> Vec<String> {
    list_dir(dir)
        .into_iter()
        .filter(|n| n.starts_with(".outcome-audit-partial-"))
        .collect()
}

fn verifies(sb: &Sandbox, dir: &Path) -> bool {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(dir)
        .env("OUTCOME_AUDIT_HOME", sb.home())
        .output()
        .expect("run verify");
    out.status.code() == Some(EXIT_OK)
}

/// A leftover temporary folder is never taken for a bundle.
fn assert_partials_are_not_bundles(sb: &Sandbox, parent: &Path) {
    for p in partials(parent) {
        let path = parent.join(&p);
        assert!(
            !verifies(sb, &path),
            "the leftover {p} verifies as a bundle"
        );
    }
}

#[test]
fn a_killed_run_leaves_no_bundle_or_a_complete_one_and_never_changes_the_inputs() {
    let sb = Sandbox::new();
    let spec = national(&sb);
    let inputs = input_digests(&spec);
    let parent = sb.join("evidence");
    let full = time_one_run(&sb, &spec, &parent.join("timing"));
    let (mut killed_running, mut left_bundle) = (0, 0);
    for (i, f) in KILL_POINTS.iter().enumerate() {
        let out = parent.join(format!("killed-{i}"));
        let running = kill_after(spawn_run(&sb, &spec, &out, &[]), full.mul_f64(*f));
        killed_running += usize::from(running);
        if out.exists() {
            left_bundle += 1;
            assert!(
                verifies(&sb, &out),
                "killed after {f} × {full:?}: {} exists but does not verify",
                out.display()
            );
        }
        assert_eq!(input_digests(&spec), inputs, "an input changed");
    }
    assert!(
        killed_running >= 3,
        "only {killed_running} of the kills hit a running process"
    );
    eprintln!(
        "crash: run takes {full:?}; {killed_running} kills hit a running process; {left_bundle} left a complete bundle, the others none"
    );
    // Only bundles and temporary folders are left; the latter are not bundles, and a
    // new run beside them succeeds and gives a bundle that verifies.
    for name in list_dir(&parent) {
        assert!(
            name == "timing"
                || name.starts_with("killed-")
                || name.starts_with(".outcome-audit-partial-"),
            "unexpected {name} in the output folder"
        );
    }
    assert_partials_are_not_bundles(&sb, &parent);
    let after = parent.join("after");
    let status = spawn_run(&sb, &spec, &after, &[]).wait().expect("run");
    assert!(status.success(), "a run beside the leftovers failed");
    assert!(verifies(&sb, &after));
}

#[test]
fn a_killed_forced_replacement_leaves_the_old_bundle_or_the_new_one() {
    let sb = Sandbox::new();
    let spec = national(&sb);
    let inputs = input_digests(&spec);
    let parent = sb.join("evidence");
    let out = parent.join("bundle");
    let full = time_one_run(&sb, &spec, &out);
    let attestation = || std::fs::read(out.join("attestation.dsse.json")).expect("attestation");
    let mut current = attestation();
    let (mut kept_old, mut took_new) = (0, 0);
    for f in KILL_POINTS {
        kill_after(spawn_run(&sb, &spec, &out, &["--force"]), full.mul_f64(f));
        assert!(
            out.is_dir(),
            "killed after {f} × {full:?}: neither the old nor the new bundle is at {}",
            out.display()
        );
        assert!(
            verifies(&sb, &out),
            "killed after {f} × {full:?}: the bundle at the output path does not verify"
        );
        // Every run signs a new invocation id, so the attestation tells old from new.
        let now = attestation();
        if now == current {
            kept_old += 1;
        } else {
            took_new += 1;
            current = now;
        }
        assert_eq!(input_digests(&spec), inputs, "an input changed");
    }
    eprintln!("crash --force: run takes {full:?}; old bundle kept {kept_old} times, new one installed {took_new} times");
    assert!(kept_old >= 1, "no kill came before the replacement");
    assert_partials_are_not_bundles(&sb, &parent);
    let status = spawn_run(&sb, &spec, &out, &["--force"])
        .wait()
        .expect("run");
    assert!(status.success(), "a forced run beside the leftovers failed");
    assert!(verifies(&sb, &out));
    assert_ne!(
        attestation(),
        current,
        "the last run did not replace the bundle"
    );
}

#[test]
fn a_forced_replacement_never_leaves_the_output_path_empty() {
    let sb = Sandbox::new();
    let spec = scenario("small-valid").join("spec.toml");
    let out = sb.join("evidence").join("bundle");
    run(&sb, &spec, &out, &[], EXIT_OK);
    // Watch the output path as fast as possible while it is replaced again and again.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (looks, gaps) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let (mut looks, mut gaps) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                looks += 1;
                if !out.join("attestation.dsse.json").is_file() {
                    gaps += 1;
                }
            }
            (looks, gaps)
        });
        for _ in 0..8 {
            run(&sb, &spec, &out, &["--force"], EXIT_OK);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().expect("watcher")
    });
    assert!(looks > 100, "the watcher looked only {looks} times");
    assert_eq!(
        gaps, 0,
        "the output path had no bundle {gaps} of {looks} times"
    );
    assert_eq!(
        list_dir(&sb.join("evidence")),
        ["bundle"],
        "nothing left beside it"
    );
}

#[test]
fn a_leftover_temporary_folder_is_reported_and_does_not_break_the_next_run() {
    let sb = Sandbox::new();
    let parent = sb.join("evidence");
    let leftover = parent.join(".outcome-audit-partial-Ab12Cd");
    sb.write(
        "evidence/.outcome-audit-partial-Ab12Cd/spec.toml",
        "version = 1\n",
    );
    sb.write(
        "evidence/.outcome-audit-partial-Ab12Cd/tables/cohort.csv",
        "person_id\n",
    );
    let out = parent.join("bundle");
    run(
        &sb,
        &scenario("small-valid").join("spec.toml"),
        &out,
        &[],
        EXIT_OK,
    )
    .stderr_has(&[
        ".outcome-audit-partial-Ab12Cd",
        "interrupted run",
        "not a bundle",
    ]);
    sb.cmd(["verify"]).arg(&out).assert(EXIT_OK);
    sb.cmd(["verify"]).arg(&leftover).assert(EXIT_VERIFY_FAILED);
    assert!(
        leftover.join("spec.toml").is_file(),
        "the leftover was touched"
    );
}

#[test]
fn force_replaces_only_a_bundle_never_a_folder_of_other_files() {
    let sb = Sandbox::new();
    let spec = scenario("small-valid").join("spec.toml");
    // A folder of data (such as the inputs themselves) given as --out by mistake.
    let data = sb.write("data/people.csv", "offender_ref\nX1\n");
    run(&sb, &spec, &sb.join("data"), &["--force"], EXIT_BAD_INPUT).stderr_has(&[
        "is not an evidence bundle",
        "--force replaces only a bundle",
    ]);
    assert_eq!(
        std::fs::read_to_string(&data).expect("data"),
        "offender_ref\nX1\n"
    );
    assert_eq!(list_dir(&sb.join("data")), ["people.csv"]);
    // An empty folder may be used.
    std::fs::create_dir(sb.join("empty")).expect("empty folder");
    run(&sb, &spec, &sb.join("empty"), &["--force"], EXIT_OK);
    sb.cmd(["verify"]).arg(sb.join("empty")).assert(EXIT_OK);
}

#[test]
fn an_output_path_through_a_regular_file_is_exit_4_naming_it() {
    let sb = Sandbox::new();
    sb.write("evidence", "a file, not a folder\n");
    run(
        &sb,
        &scenario("small-valid").join("spec.toml"),
        &sb.join("evidence").join("bundle"),
        &[],
        EXIT_OUTPUT_FAILED,
    )
    .stderr_has(&["cannot create the output folder", "evidence", "help:"]);
    assert_eq!(
        std::fs::read_to_string(sb.join("evidence")).expect("file"),
        "a file, not a folder\n"
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`) at `at`, or says why it cannot.
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs(at.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot remount {} read-only",
            self.0.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a tmpfs, or prints why the test is skipped.
fn tmpfs_or_skip(sb: &Sandbox, size: &str, test: &str) -> Option<(Tmpfs, PathBuf)> {
    let at = sb.join("mnt");
    match Tmpfs::mount(&at, size) {
        Ok(m) => Some((m, at)),
        Err(why) => {
            eprintln!("skipped {test}: cannot mount a tmpfs ({why})");
            None
        }
    }
}

#[test]
fn a_full_disk_is_exit_4_and_leaves_nothing_behind() {
    let sb = Sandbox::new();
    // The Doncaster bundle is about 1.6 MB; 512 KiB cannot hold it.
    let Some((_mount, mnt)) = tmpfs_or_skip(&sb, "512k", "disk-full") else {
        return;
    };
    let out = mnt.join("bundle");
    run(
        &sb,
        &committed_spec("doncaster-cohort-1"),
        &out,
        &[],
        EXIT_OUTPUT_FAILED,
    )
    .stderr_has(&[
        "error: cannot ",
        &mnt.display().to_string(),
        "No space left on device",
        "help: the file system is full",
    ]);
    assert!(
        list_dir(&mnt).is_empty(),
        "left behind: {:?}",
        list_dir(&mnt)
    );
}

#[test]
fn a_full_disk_during_a_forced_replacement_keeps_the_old_bundle() {
    let sb = Sandbox::new();
    // Room for one Doncaster bundle (about 1.6 MB) but not for a second beside it.
    let Some((_mount, mnt)) = tmpfs_or_skip(&sb, "2500k", "disk-full replacement") else {
        return;
    };
    let out = mnt.join("bundle");
    let spec = committed_spec("doncaster-cohort-1");
    run(&sb, &spec, &out, &[], EXIT_OK);
    let before = std::fs::read(out.join("attestation.dsse.json")).expect("attestation");
    run(&sb, &spec, &out, &["--force"], EXIT_OUTPUT_FAILED).stderr_has(&[
        "No space left on device",
        "anything already at the output path is unchanged",
    ]);
    sb.cmd(["verify"]).arg(&out).assert(EXIT_OK);
    assert_eq!(
        std::fs::read(out.join("attestation.dsse.json")).expect("attestation"),
        before,
        "the old bundle was changed"
    );
    assert_eq!(list_dir(&mnt), ["bundle"], "nothing left beside it");
}

#[test]
fn a_read_only_file_system_is_exit_4_and_keeps_the_old_bundle() {
    let sb = Sandbox::new();
    let Some((mount, mnt)) = tmpfs_or_skip(&sb, "8m", "read-only") else {
        return;
    };
    let spec = scenario("small-valid").join("spec.toml");
    let out = mnt.join("bundle");
    run(&sb, &spec, &out, &[], EXIT_OK);
    mount.remount_read_only();
    // Root ignores file permissions, but not a read-only mount.
    run(&sb, &spec, &out, &["--force"], EXIT_OUTPUT_FAILED).stderr_has(&[
        &mnt.display().to_string(),
        "Read-only file system",
        "help: this location cannot be written",
    ]);
    run(&sb, &spec, &mnt.join("another"), &[], EXIT_OUTPUT_FAILED)
        .stderr_has(&["Read-only file system"]);
    sb.cmd(["verify"]).arg(&out).assert(EXIT_OK);
    assert_eq!(list_dir(&mnt), ["bundle"]);
}
