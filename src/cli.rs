//! The command line: arguments are parsed by clap, turned into calls of the library, and
//! every outcome — a verdict, a finding, an error — is mapped to one documented exit code.
//! Printing happens here and nowhere else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::bundle::{self, keys, replay, sigstore, verify};
use crate::decision::POOLED;
use crate::exact::minor_to_decimal;
use crate::measures::measure_name;
use crate::pipeline::{self, Audit};
use crate::spec::{AuditSpec, Comparator, Measure, ThresholdKind};

/// Writes a line to stdout, ignoring a closed pipe (`outcome-audit ... | head`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use outln;

/// Writes to stdout, ignoring a closed pipe.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// Exit code: success (an audit ran, whatever its verdict; a bundle verified; a replay matched).
pub const EXIT_OK: u8 = 0;
/// Exit code: verification or replay failed — the evidence does not check out.
pub const EXIT_VERIFY_FAILED: u8 = 1;
/// Exit code: bad input or usage — a spec, data file, key or argument is wrong.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: a claimed figure disagrees with the recomputation (the bundle is written).
pub const EXIT_CLAIM_DISPUTED: u8 = 3;
/// Exit code: the tool could not write its output (disk full, permission denied).
pub const EXIT_OUTPUT_FAILED: u8 = 4;

/// Independent auditor for outcome-based contracts.
#[derive(Debug, Parser)]
#[command(name = "outcome-audit", version, about, long_about = None)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit one or more contracts and write a signed evidence bundle for each.
    Run {
        /// Audit spec files (TOML).
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// Bundle directory (one spec), or a directory holding one bundle per contract id
        /// (several specs). Default: `evidence/<contract id>`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Private signing key (PKCS#8 PEM). Default: $OUTCOME_AUDIT_KEY, else a per-user
        /// key created on first use.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Keep only the inputs' hashes in the bundle, not copies of them.
        #[arg(long)]
        no_embed_inputs: bool,
        /// Replace an existing bundle.
        #[arg(long)]
        force: bool,
        /// A party's claims file (TOML) to reconcile with the audit (one spec, which
        /// must not name claims itself); recorded in the bundle's spec as
        /// `[inputs.claims]` with its sha256.
        #[arg(long)]
        claims: Option<PathBuf>,
    },
    /// Check a bundle's signature and every hash, without recomputing.
    Verify {
        /// Bundle directory.
        bundle: PathBuf,
        /// Trust only this public key (SPKI PEM).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Recompute a bundle from its spec and inputs and compare every output byte for byte.
    Replay {
        /// Bundle directory.
        bundle: PathBuf,
        /// Directory holding the inputs of a bundle made with --no-embed-inputs.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Trust only this public key (SPKI PEM).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Re-render a bundle's report (recomputed from its spec and inputs, after verifying).
    Report {
        /// Bundle directory.
        bundle: PathBuf,
        /// `html` (as report.html) or `md` (Markdown for a review document).
        #[arg(long, default_value = "html")]
        format: String,
        /// Directory holding the inputs of a bundle made with --no-embed-inputs.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Trust only this public key (SPKI PEM).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Explain why two bundles differ: spec, inputs, cohort, outcomes, results.
    Diff {
        /// The first bundle.
        a: PathBuf,
        /// The second bundle.
        b: PathBuf,
        /// Trust only this public key (SPKI PEM) for both bundles.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Verify a bundle, then print its attestation as a Sigstore bundle v0.3 (DSSE
    /// envelope with a public-key hint) for Sigstore verifiers such as @sigstore/verify.
    ExportSigstore {
        /// Bundle directory.
        bundle: PathBuf,
        /// Write the Sigstore bundle to this file instead of stdout (conventionally
        /// `attestation.sigstore.json` beside the bundle, never inside it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
        /// Trust only this public key (SPKI PEM).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Recompute a spec's `[sensitivity]` grid and print it, without writing a bundle.
    Sensitivity {
        /// Audit spec file (TOML) with a `[sensitivity]` section.
        spec: PathBuf,
    },
    /// Validate specs (and that their inputs exist with the named columns) without running.
    Check {
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// Make an ed25519 signing key (private key file owner-only).
    Keygen {
        /// Where to write the private key. Default: the per-user default key.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Generate synthetic data with a planted, exactly known result.
    Synth(SynthArgs),
    /// Print the JSON Schema of the audit spec format.
    Schema,
}

/// Arguments of `synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// `doncaster` (baseline 2009 and cohorts 1-2), `national` (one large cohort) or
    /// `peterborough` (two cohorts and a national comparison pool).
    #[arg(long, default_value = "doncaster")]
    pub preset: String,
    /// Seed of the generator; the same seed gives the same bytes.
    #[arg(long, default_value_t = 2011)]
    pub seed: u64,
    /// People in the cohort (national preset).
    #[arg(long, default_value_t = 1_000_000)]
    pub people: usize,
    /// People in the national comparison pool (peterborough preset).
    #[arg(long, default_value_t = crate::synth::PETERBOROUGH_POOL)]
    pub pool: usize,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write Parquet copies of the CSV files.
    #[arg(long)]
    pub parquet: bool,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// Runs the command line and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            });
        }
    };
    init_logging(cli.verbose);
    let code = run(cli);
    if std::env::var_os("OUTCOME_AUDIT_REPORT_PEAK_MEMORY").is_some() {
        if let Some(bytes) = peak_memory() {
            eprintln!("peak memory: {bytes} bytes");
        }
    }
    ExitCode::from(code)
}

/// Peak resident memory of this process (Linux `VmHWM`), for benchmarks.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> u8 {
    let json = cli.json;
    match cli.command {
        Command::Run {
            specs,
            out,
            key,
            no_embed_inputs,
            force,
            claims,
        } => cmd_run(
            &specs,
            out.as_deref(),
            key.as_deref(),
            !no_embed_inputs,
            force,
            claims.as_deref(),
            json,
        ),
        Command::Verify { bundle, key } => cmd_verify(&bundle, key.as_deref(), json),
        Command::Replay { bundle, data, key } => {
            cmd_replay(&bundle, data.as_deref(), key.as_deref(), json)
        }
        Command::ExportSigstore {
            bundle,
            out,
            force,
            key,
        } => cmd_export_sigstore(&bundle, out.as_deref(), force, key.as_deref(), json),
        Command::Check { specs } => cmd_check(&specs, json),
        Command::Sensitivity { spec } => cmd_sensitivity(&spec, json),
        Command::Diff { a, b, key } => cmd_diff(&a, &b, key.as_deref(), json),
        Command::Report {
            bundle,
            format,
            data,
            key,
        } => cmd_report(&bundle, &format, data.as_deref(), key.as_deref()),
        Command::Keygen { out, force } => cmd_keygen(out.as_deref(), force, json),
        Command::Synth(args) => cmd_synth(&args, json),
        Command::Schema => {
            out!("{}", crate::spec::json_schema());
            EXIT_OK
        }
    }
}

fn error(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}

fn print_json(value: &serde_json::Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn invocation_id() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Threads polars uses: `POLARS_MAX_THREADS` when set, else the machine's cores.
pub fn polars_threads() -> usize {
    crate::par::threads()
}

fn signing_key(path: Option<&Path>) -> Result<ed25519_dalek::SigningKey, String> {
    let from_env = std::env::var_os("OUTCOME_AUDIT_KEY").map(PathBuf::from);
    match path.map(Path::to_path_buf).or(from_env) {
        Some(p) => keys::load_private_key(&p).map_err(|e| e.to_string()),
        None => {
            let (key, path, created) = keys::load_or_create_default().map_err(|e| e.to_string())?;
            if created {
                eprintln!(
                    "created signing key {} (fingerprint {})",
                    path.display(),
                    keys::keyid(&key.verifying_key())
                );
            }
            Ok(key)
        }
    }
}

fn cmd_run(
    specs: &[PathBuf],
    out: Option<&Path>,
    key: Option<&Path>,
    embed: bool,
    force: bool,
    claims: Option<&Path>,
    json: bool,
) -> u8 {
    // Check every spec before doing any work.
    let mut loaded = Vec::new();
    for path in specs {
        match AuditSpec::load(path) {
            Ok(s) => loaded.push(s),
            Err(e) => return error(EXIT_BAD_INPUT, e),
        }
    }
    if let Some(file) = claims {
        if loaded.len() != 1 {
            return error(
                EXIT_BAD_INPUT,
                "--claims takes exactly one spec: a claims file belongs to one contract",
            );
        }
        match loaded.pop().map(|s| crate::claims::attach(s, file)) {
            Some(Ok(s)) => loaded.push(s),
            Some(Err(e)) => return error(EXIT_BAD_INPUT, e),
            None => {}
        }
    }
    let key = match signing_key(key) {
        Ok(k) => k,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    let several = loaded.len() > 1;
    let mut reports = Vec::new();
    let mut disputed = false;
    for spec in loaded {
        let id = spec.contract.id.clone();
        let dest = match (out, several) {
            (Some(dir), false) => dir.to_path_buf(),
            (Some(dir), true) => dir.join(&id),
            (None, _) => Path::new("evidence").join(&id),
        };
        let started_on = now_rfc3339();
        let opts = bundle::WriteOptions {
            out: dest.clone(),
            embed_inputs: embed,
            force,
        };
        // The destination is checked, and the bundle's folder made, before any input is
        // read: each input is copied into it on the pass that hashes it.
        let staging = match bundle::Staging::begin(&opts) {
            Ok(s) => s,
            Err(e) => return bundle_error(e),
        };
        let copy_root = staging.inputs_root();
        let audit =
            match pipeline::load_inputs_copying(&spec, &Default::default(), copy_root.as_deref())
                .map_err(pipeline::AuditError::from)
                .and_then(|inputs| pipeline::audit(spec, inputs))
            {
                Ok(a) => a,
                Err(e) => return error(EXIT_BAD_INPUT, e),
            };
        let run = bundle::RunDetails {
            started_on,
            finished_on: now_rfc3339(),
            invocation_id: invocation_id(),
            polars_max_threads: polars_threads(),
        };
        let written = match staging.finish(&audit, &key, &run) {
            Ok(p) => p,
            Err(e) => return bundle_error(e),
        };
        disputed |= audit
            .reconciliation
            .as_ref()
            .is_some_and(|r| r.disputed() > 0);
        if json {
            reports.push(verdict_json(&audit, &written));
        } else {
            out!("{}", verdict_text(&audit, &written));
        }
    }
    if json {
        print_json(&serde_json::Value::Array(reports));
    }
    if disputed {
        EXIT_CLAIM_DISPUTED
    } else {
        EXIT_OK
    }
}

/// The exit code and message of a failure to write a bundle: the user's input (an
/// existing bundle without `--force`, a changed input, a folder that is not a bundle)
/// or the output (disk full, read-only, a path through a file).
fn bundle_error(e: bundle::BundleError) -> u8 {
    match e {
        e @ (bundle::BundleError::Exists { .. }
        | bundle::BundleError::InputChanged { .. }
        | bundle::BundleError::NotABundle { .. }) => error(EXIT_BAD_INPUT, e),
        e => error(EXIT_OUTPUT_FAILED, e),
    }
}

fn percent_or_value(measure: Measure, r: crate::exact::Ratio) -> String {
    match measure {
        Measure::Binary => format!(
            "{}%",
            r.times(crate::exact::Ratio::from_int(100)).to_fixed(1)
        ),
        Measure::FrequencyPerOffender => format!(
            "{} per 100 offenders",
            r.times(crate::exact::Ratio::from_int(100)).to_fixed(1)
        ),
        _ => r.to_fixed(3),
    }
}

fn amount_in_points(measure: Measure, kind: ThresholdKind, r: crate::exact::Ratio) -> String {
    match (kind, measure) {
        (ThresholdKind::Relative, _) => format!(
            "{}%",
            r.times(crate::exact::Ratio::from_int(100)).to_fixed(1)
        ),
        (ThresholdKind::Points, Measure::Binary) => {
            format!(
                "{} points",
                r.times(crate::exact::Ratio::from_int(100)).to_fixed(1)
            )
        }
        (ThresholdKind::Points, Measure::FrequencyPerOffender) => format!(
            "{} per 100 offenders",
            r.times(crate::exact::Ratio::from_int(100)).to_fixed(1)
        ),
        (ThresholdKind::Points, _) => r.to_fixed(3),
    }
}

/// The short verdict printed after a run.
pub fn verdict_text(audit: &Audit, bundle: &Path) -> String {
    let spec = &audit.spec;
    let o = &spec.outcome;
    let mut s = format!("{}: {}\n", spec.contract.id, spec.contract.title);
    let unit = match o.unit {
        crate::spec::CountingUnit::Offence => "offences",
        crate::spec::CountingUnit::ConvictionEvent => "conviction events",
    };
    s += &format!(
        "  measure     {} ({}; {} months + {} months court lag)\n",
        measure_name(o.measure),
        unit,
        o.window_months,
        o.lag_months
    );
    let comparator = match &spec.comparator {
        Comparator::FixedBaseline { source, .. } => format!("fixed baseline: {source}"),
        Comparator::Historical { period } => format!("historical baseline {}", period.name),
        Comparator::CaseMix(c) => format!(
            "each area's {} rate, adjusted for the cohort's mean predicted risk (areas from column {})",
            c.baseline.name, c.area_column
        ),
        Comparator::Predicted => {
            "the cohort's own predicted rate: mean risk-model probability".to_string()
        }
        Comparator::None => {
            "none: each person who does not reoffend earns a payment set by their risk".to_string()
        }
        Comparator::Matched(m) => format!(
            "matched comparison group, 1:{} {} replacement{}",
            m.ratio,
            if m.replacement { "with" } else { "without" },
            m.caliper_sd
                .map(|c| format!(", caliper {} SD of the logit", c.to_fixed(c.scale_hint())))
                .unwrap_or_default()
        ),
    };
    if matches!(spec.comparator, Comparator::None) {
        s += &format!("  comparator  {comparator}\n");
    } else {
        s += &format!(
            "  comparator  {} ({comparator})\n",
            percent_or_value(o.measure, audit.comparator)
        );
    }
    if let Some(r) = &audit.case_mix {
        s += &r.table(&spec.payment.currency);
    }
    let per_scope = if audit.case_mix.is_some() {
        &[][..]
    } else {
        &audit.evaluations[..]
    };
    for e in per_scope {
        // The counts shown are the ones the rate was computed from: for a matched
        // comparison, the cohort members who were matched.
        let matched = audit.matched_scopes.iter().find(|m| m.scope == e.scope);
        let predicted = audit
            .predicted_scopes
            .iter()
            .find(|p| p.scope == e.scope)
            .map(|p| crate::measures::Totals {
                people: p.people,
                reoffenders: p.reoffenders,
                ..Default::default()
            });
        let t = match (matched, &predicted) {
            (_, Some(p)) => p,
            (Some(m), _) => &m.treated,
            (None, None) if e.scope == POOLED => &audit.pooled,
            (None, None) => audit
                .cohort
                .groups
                .iter()
                .position(|g| g.period.name == e.scope)
                .map(|g| &audit.totals[g])
                .unwrap_or(&audit.pooled),
        };
        s += &format!(
            "  {:<11} {} ({} reoffenders of {} {}people)\n",
            e.scope,
            percent_or_value(o.measure, e.treated),
            t.reoffenders,
            t.people,
            if matched.is_some() {
                "matched "
            } else if predicted.is_some() {
                "scored "
            } else {
                ""
            }
        );
        let better = if e.improvement.is_negative() {
            "worse"
        } else {
            "better"
        };
        s += &format!(
            "  difference  {} {} than the comparator{}\n",
            amount_in_points(o.measure, ThresholdKind::Points, e.improvement.abs_value()),
            better,
            e.relative_improvement
                .map(|r| format!(
                    " ({} relative)",
                    amount_in_points(o.measure, ThresholdKind::Relative, r)
                ))
                .unwrap_or_default()
        );
        s += &format!(
            "  threshold   at least {} ({}, {})\n",
            amount_in_points(o.measure, e.threshold_kind, e.minimum),
            match e.threshold_kind {
                ThresholdKind::Points => "points",
                ThresholdKind::Relative => "relative",
            },
            if e.scope == POOLED {
                "pooled"
            } else {
                "per period"
            }
        );
        if let Some(scope) = audit.matched_scopes.iter().find(|m| m.scope == e.scope) {
            let i = &scope.inference;
            s += &format!(
                "  comparison  {} (matched, weighted; naive pool {})\n",
                percent_or_value(o.measure, e.comparator),
                scope
                    .naive
                    .measure(o.measure, o.unit)
                    .map(|r| percent_or_value(o.measure, r))
                    .unwrap_or_else(|| "undefined".into())
            );
            s +=
                &format!(
                "  inference   difference {:.4}, {:.0}% interval [{:.4}, {:.4}], p = {:.4} ({})\n",
                i.difference,
                i.confidence * 100.0,
                i.lower,
                i.upper,
                i.p_value,
                if i.significant { "significant" } else { "not significant" }
            );
        }
        s += &format!(
            "  decision    {} [{}]\n",
            if e.met { "target met" } else { "target missed" },
            e.code()
        );
    }
    if let Some(m) = &audit.matched {
        s += &format!(
            "  balance     {} (largest |SMD| after matching {:.3}; {} of {} cohort members matched)\n",
            if m.balance_ok { "within the limit" } else { "OUTSIDE the limit [balance-outside-limit]" },
            m.balance.iter().map(|b| b.smd_after.abs()).fold(0.0, f64::max),
            m.matched_treated.iter().filter(|b| **b).count(),
            m.treated_logit.iter().filter(|l| l.is_some()).count()
        );
    }
    for p in &audit.payments {
        if audit.case_mix.is_none() || p.scope == crate::casemix::CAP_SCOPE {
            s += &format!("  payment     {}: {}\n", p.scope, p.explanation);
        }
    }
    s += &format!(
        "  total       {} {} ({})\n",
        spec.payment.currency,
        minor_to_decimal(audit.total_minor),
        crate::evidence::direction(audit.total_minor)
    );
    if let Some(r) = &audit.reconciliation {
        let disputed = r.disputed();
        s += &format!(
            "  claims      {} of {} figures claimed by {} disputed{}\n",
            disputed,
            r.lines.len(),
            r.party,
            if disputed > 0 {
                " [claim-disputed]"
            } else {
                ""
            }
        );
        for l in r.lines.iter().filter(|l| !l.agreed) {
            s += &format!(
                "              {} {}: claimed {}, recomputed {}\n",
                l.scope, l.field, l.claimed, l.recomputed
            );
        }
    }
    s += &crate::sensitivity::summary_lines(audit);
    s += &format!("  bundle      {}\n", bundle.display());
    s
}

fn verdict_json(audit: &Audit, bundle: &Path) -> serde_json::Value {
    json!({
        "contract": audit.spec.contract.id,
        "verdict": crate::evidence::verdict_code(audit),
        "summary": crate::evidence::verdict_summary(audit),
        "evaluations": audit.evaluations.iter().map(|e| json!({
            "scope": e.scope,
            "code": e.code(),
            "treated": e.treated.to_fixed(crate::evidence::RATE_PLACES),
            "comparator": e.comparator.to_fixed(crate::evidence::RATE_PLACES),
            "improvement": e.improvement.to_fixed(crate::evidence::RATE_PLACES),
        })).collect::<Vec<_>>(),
        "currency": audit.spec.payment.currency,
        "total_minor": i64::try_from(audit.total_minor)
            .unwrap_or(if audit.total_minor < 0 { i64::MIN } else { i64::MAX }),
        "sensitivity": audit.sensitivity.as_ref().map(|r| json!({
            "robust": r.robust(),
            "variants": r.variants.len(),
            "flipping_variants": r.flipping(),
        })),
        "bundle": bundle.display().to_string(),
    })
}

fn load_pinned(key: Option<&Path>) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
    key.map(|p| keys::load_public_key(p).map_err(|e| e.to_string()))
        .transpose()
}

fn cmd_verify(bundle: &Path, key: Option<&Path>, json: bool) -> u8 {
    let pinned = match load_pinned(key) {
        Ok(k) => k,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    match verify::verify_bundle(bundle, pinned.as_ref()) {
        Ok(v) => {
            let files = v.manifest().files.len();
            if json {
                print_json(&json!({
                    "verified": true,
                    "bundle": bundle.display().to_string(),
                    "files": files,
                    "signer_keyid": v.keyid(),
                    "signer_pinned": v.pinned(),
                }));
            } else {
                outln!(
                    "verified: {} ({} files and the attestation)",
                    bundle.display(),
                    files
                );
                if v.pinned() {
                    outln!("signer: {} (pinned with --key)", v.keyid());
                } else {
                    outln!(
                        "signer: {} (unpinned: the bundle names its own key; pass --key to trust only a key you hold)",
                        v.keyid()
                    );
                }
            }
            EXIT_OK
        }
        Err(failure) => {
            if json {
                print_json(&json!({
                    "verified": false,
                    "bundle": bundle.display().to_string(),
                    "findings": failure.findings.iter().map(|f| json!({
                        "code": f.kind.as_str(),
                        "path": f.path,
                        "message": f.message,
                    })).collect::<Vec<_>>(),
                }));
            }
            eprintln!("verification failed: {}\n{}", bundle.display(), failure);
            EXIT_VERIFY_FAILED
        }
    }
}

fn cmd_replay(bundle: &Path, data: Option<&Path>, key: Option<&Path>, json: bool) -> u8 {
    let pinned = match load_pinned(key) {
        Ok(k) => k,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    match replay::replay(bundle, data, pinned.as_ref()) {
        Ok(report) => {
            if json {
                print_json(&json!({
                    "identical": report.identical(),
                    "compared": report.compared,
                    "differences": report.differences.iter().map(|d| json!({
                        "file": d.file, "location": d.location,
                        "in_bundle": d.in_bundle, "recomputed": d.recomputed,
                    })).collect::<Vec<_>>(),
                }));
            } else if report.identical() {
                outln!(
                    "identical: {} files recomputed byte for byte ({})",
                    report.compared.len(),
                    report.compared.join(", ")
                );
            } else {
                for d in &report.differences {
                    outln!(
                        "differs: {} at {}: bundle has {}, recomputed {}",
                        d.file,
                        d.location,
                        d.in_bundle,
                        d.recomputed
                    );
                }
            }
            if report.identical() {
                EXIT_OK
            } else {
                EXIT_VERIFY_FAILED
            }
        }
        Err(e @ replay::ReplayError::Verify(_)) => error(EXIT_VERIFY_FAILED, e),
        Err(e @ replay::ReplayError::DataNotFound { .. }) => error(EXIT_VERIFY_FAILED, e),
        Err(e) => error(EXIT_BAD_INPUT, e),
    }
}

fn cmd_report(bundle: &Path, format: &str, data: Option<&Path>, key: Option<&Path>) -> u8 {
    if format != "html" && format != "md" {
        return error(
            EXIT_BAD_INPUT,
            format!("unknown report format {format:?}; known formats are: html, md"),
        );
    }
    let pinned = match load_pinned(key) {
        Ok(k) => k,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    match replay::recompute(bundle, data, pinned.as_ref()) {
        Ok(audit) => {
            if format == "md" {
                out!("{}", crate::report::report_markdown(&audit));
            } else {
                out!(
                    "{}",
                    String::from_utf8_lossy(&crate::report::report_html(&audit))
                );
            }
            EXIT_OK
        }
        Err(e @ replay::ReplayError::Verify(_)) => error(EXIT_VERIFY_FAILED, e),
        Err(e) => error(EXIT_BAD_INPUT, e),
    }
}

fn cmd_diff(a: &Path, b: &Path, key: Option<&Path>, json: bool) -> u8 {
    let pinned = match load_pinned(key) {
        Ok(k) => k,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    match crate::bundle::diff::diff(a, b, pinned.as_ref()) {
        Ok(d) => {
            if json {
                print_json(&json!({
                    "identical": d.identical(),
                    "diff": serde_json::to_value(&d).unwrap_or_default(),
                }));
            } else {
                out!("{}", crate::bundle::diff::render(&d, a, b));
            }
            EXIT_OK
        }
        Err(e @ crate::bundle::diff::DiffError::Verify { .. }) => error(EXIT_VERIFY_FAILED, e),
        Err(e) => error(EXIT_BAD_INPUT, e),
    }
}

fn cmd_export_sigstore(
    bundle: &Path,
    out: Option<&Path>,
    force: bool,
    key: Option<&Path>,
    json: bool,
) -> u8 {
    let pinned = match load_pinned(key) {
        Ok(k) => k,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    let verified = match verify::verify_bundle(bundle, pinned.as_ref()) {
        Ok(v) => v,
        Err(failure) => {
            eprintln!(
                "verification failed: {}\n{}\nerror: nothing exported: only a bundle that verifies can be exported",
                bundle.display(),
                failure
            );
            return EXIT_VERIFY_FAILED;
        }
    };
    let bytes = match sigstore::sigstore_bundle_json(&verified) {
        Ok(b) => b,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    let Some(path) = out else {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(&bytes);
        return EXIT_OK;
    };
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return error(
            EXIT_BAD_INPUT,
            format!(
                "{} already exists\n    help: choose another --out, or pass --force to replace it",
                path.display()
            ),
        );
    }
    if let Err(e) = write_file_atomically(path, &bytes) {
        return error(
            EXIT_OUTPUT_FAILED,
            format!(
                "cannot write {}: {e}\n    help: choose an --out in a folder you may write to, with free space",
                path.display()
            ),
        );
    }
    if json {
        print_json(&json!({
            "exported": path.display().to_string(),
            "bundle": bundle.display().to_string(),
            "hint": verified.keyid(),
            "media_type": sigstore::SIGSTORE_BUNDLE_V03,
        }));
    } else {
        outln!(
            "exported: {} (Sigstore bundle v0.3 of {}; public key hint {})",
            path.display(),
            bundle.display(),
            verified.keyid()
        );
    }
    EXIT_OK
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs it and renames it into
/// place, so `path` never holds a partial file.
fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    // A temporary file is owner-only by default; this one is public evidence.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn cmd_sensitivity(path: &Path, json: bool) -> u8 {
    let spec = match AuditSpec::load(path) {
        Ok(s) => s,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    if spec.sensitivity.is_none() {
        return error(
            EXIT_BAD_INPUT,
            format!(
                "{} has no [sensitivity] section\n    help: list alternatives by TOML path, e.g. \"comparator.caliper_sd\" = [\"0.1\", \"0.25\"] (docs/spec.md §16)",
                path.display()
            ),
        );
    }
    let audit = match pipeline::load_inputs(&spec, &Default::default())
        .map_err(pipeline::AuditError::from)
        .and_then(|inputs| pipeline::audit(spec, inputs))
    {
        Ok(a) => a,
        Err(e) => return error(EXIT_BAD_INPUT, e),
    };
    if json {
        print_json(
            &serde_json::to_value(crate::sensitivity::results_out(&audit)).unwrap_or_default(),
        );
    } else {
        out!("{}", crate::sensitivity::render_grid(&audit));
    }
    EXIT_OK
}

fn cmd_check(specs: &[PathBuf], json: bool) -> u8 {
    let mut code = EXIT_OK;
    let mut reports = Vec::new();
    for path in specs {
        let result = AuditSpec::load(path)
            .map_err(|e| e.to_string())
            .and_then(|spec| {
                crate::data::check_columns(
                    &spec.people,
                    &crate::sensitivity::people_columns(&spec, &spec.people),
                )
                .and_then(|_| match &spec.pool {
                    Some(pool) => crate::data::check_columns(
                        pool,
                        &crate::sensitivity::people_columns(&spec, pool),
                    ),
                    None => Ok(()),
                })
                .and_then(|_| {
                    crate::data::check_columns(
                        &spec.convictions,
                        &crate::outcomes::conviction_columns(&spec),
                    )
                })
                .map_err(|e| e.to_string())
                .and_then(|_| check_pins(&spec))
                .and_then(|_| check_risk_inputs(&spec))
                .map(|_| spec)
            });
        match result {
            Ok(spec) => {
                if json {
                    reports.push(json!({"spec": path.display().to_string(), "ok": true, "contract": spec.contract.id}));
                } else {
                    outln!(
                        "ok: {} (contract {}; inputs {} and {} found with the columns the spec names)",
                        path.display(),
                        spec.contract.id,
                        spec.people.path.display(),
                        spec.convictions.path.display()
                    );
                }
            }
            Err(e) => {
                if json {
                    reports
                        .push(json!({"spec": path.display().to_string(), "ok": false, "error": e}));
                }
                eprintln!("error: {e}");
                code = EXIT_BAD_INPUT;
            }
        }
    }
    if json {
        print_json(&serde_json::Value::Array(reports));
    }
    code
}

/// Reads the risk model and its offence map, if the spec has them, and checks they parse.
fn check_risk_inputs(spec: &AuditSpec) -> Result<(), String> {
    let (Some(model), Some(map)) = (&spec.risk_model, &spec.offence_categories) else {
        return Ok(());
    };
    let model_doc = crate::data::load_document(model).map_err(|e| e.to_string())?;
    let map_doc = crate::data::load_document(map).map_err(|e| e.to_string())?;
    let parsed = crate::risk::RiskModel::from_toml(model_doc.text.as_deref().unwrap_or(""))
        .map_err(|e| format!("{}: {e}", model.path.display()))?;
    crate::risk::OffenceMap::from_csv(map_doc.text.as_deref().unwrap_or(""), &parsed)
        .map_err(|e| format!("{}: {e}", map.path.display()))?;
    Ok(())
}

/// Hashes every pinned input and compares it with its pin.
fn check_pins(spec: &AuditSpec) -> Result<(), String> {
    for input in spec.inputs() {
        if let Some(expected) = input.sha256 {
            let (actual, _) = crate::data::hash_file(&input.path).map_err(|e| e.to_string())?;
            if actual != expected {
                return Err(crate::data::DataError::DigestMismatch {
                    path: input.path.clone(),
                    input: input.name.clone(),
                    expected,
                    actual,
                }
                .to_string());
            }
        }
    }
    Ok(())
}

fn cmd_keygen(out: Option<&Path>, force: bool, json: bool) -> u8 {
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => match keys::default_key_path() {
            Ok(p) => p,
            Err(e) => return error(EXIT_BAD_INPUT, e),
        },
    };
    let key = keys::generate();
    if let Err(e) = keys::write_private_key(&path, &key, force) {
        return error(EXIT_BAD_INPUT, e);
    }
    let keyid = keys::keyid(&key.verifying_key());
    let pub_path = path.with_extension("pub.pem");
    if let Err(e) = std::fs::write(&pub_path, keys::public_key_pem(&key.verifying_key())) {
        return error(EXIT_OUTPUT_FAILED, format!("{}: {e}", pub_path.display()));
    }
    if json {
        print_json(
            &json!({"private_key": path.display().to_string(), "public_key": pub_path.display().to_string(), "keyid": keyid}),
        );
    } else {
        outln!("private key: {} (owner-only)", path.display());
        outln!("public key:  {}", pub_path.display());
        outln!("fingerprint: {keyid}");
    }
    EXIT_OK
}

fn cmd_synth(args: &SynthArgs, json: bool) -> u8 {
    crate::synth_cli::run(args, json)
}
