//! Evidence bundles: write one atomically, sign it, verify it, replay it.
//!
//! A bundle is a directory: the spec as run, the inputs (copied, or only their hashes),
//! the computed evidence, a Frictionless `datapackage.json` describing the inputs, a
//! `manifest.json` of every file's hash, the signer's public key, and a DSSE envelope
//! over an in-toto Statement (SLSA provenance) whose subjects are all of those files. It
//! is assembled in a temporary directory beside the destination and renamed into place,
//! so a failed run leaves nothing behind and a finished bundle is never half-written.

pub mod attribution;
pub mod diff;
pub mod dsse;
pub mod keys;
pub mod manifest;
pub mod replay;
pub mod verify;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::data::LoadedInput;
use crate::digest::Sha256Digest;
use crate::evidence;
use crate::pipeline::Audit;
use crate::spec::InputFormat;

/// Name of the spec's copy in a bundle.
pub const SPEC_FILE: &str = "spec.toml";
/// Name of the data package descriptor.
pub const DATAPACKAGE_FILE: &str = "datapackage.json";

/// Problems writing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already exists\n    help: choose another --out, or pass --force to replace it"
    )]
    Exists { path: PathBuf },
    #[error("{path} changed while it was being audited (sha256 {before} when read, {after} when copied)")]
    InputChanged {
        path: PathBuf,
        before: Sha256Digest,
        after: Sha256Digest,
    },
    #[error("signing failed: {0}")]
    Sign(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How to write a bundle.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The bundle directory to create.
    pub out: PathBuf,
    /// Copy the inputs into `inputs/` (otherwise only their hashes are kept).
    pub embed_inputs: bool,
    /// Replace an existing bundle at `out`.
    pub force: bool,
}

/// Run details that belong only in the attestation (never in results or tables).
#[derive(Debug, Clone)]
pub struct RunDetails {
    pub started_on: String,
    pub finished_on: String,
    pub invocation_id: String,
    pub polars_max_threads: usize,
}

#[derive(Serialize)]
struct DataPackage {
    profile: &'static str,
    name: String,
    title: String,
    resources: Vec<Resource>,
}

#[derive(Serialize)]
struct Resource {
    name: String,
    path: String,
    profile: &'static str,
    format: &'static str,
    mediatype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    bytes: u64,
    hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<TableSchema>,
}

#[derive(Serialize)]
struct TableSchema {
    fields: Vec<Field>,
}

#[derive(Serialize)]
struct Field {
    name: String,
    #[serde(rename = "type")]
    type_: &'static str,
}

/// `datapackage.json`: the inputs as a Frictionless Data Package, so `frictionless
/// validate` can recheck bytes, hashes and headers without this tool. Every field is
/// declared `string`: type checks are this tool's job and are reported with rows.
pub fn datapackage_json(contract_id: &str, inputs: &[&LoadedInput]) -> Vec<u8> {
    let dp = DataPackage {
        profile: "data-package",
        name: format!("{contract_id}-inputs"),
        title: format!("Inputs of audit {contract_id}"),
        resources: inputs
            .iter()
            .map(|i| {
                let csv = i.format == InputFormat::Csv;
                Resource {
                    name: i.name.clone(),
                    path: evidence::input_bundle_path(&i.name, i.format),
                    profile: if csv {
                        "tabular-data-resource"
                    } else {
                        "data-resource"
                    },
                    format: i.format.extension(),
                    mediatype: match i.format {
                        InputFormat::Csv => "text/csv",
                        InputFormat::Parquet => "application/vnd.apache.parquet",
                        InputFormat::Toml => "application/toml",
                    },
                    encoding: (i.format != InputFormat::Parquet).then_some("utf-8"),
                    bytes: i.bytes,
                    hash: format!("sha256:{}", i.sha256.to_hex()),
                    schema: csv.then(|| TableSchema {
                        fields: i
                            .header
                            .iter()
                            .map(|h| Field {
                                name: h.clone(),
                                type_: "string",
                            })
                            .collect(),
                    }),
                }
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&dp).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Every file of a bundle that is computed from the spec and the inputs (everything
/// except copied inputs, the manifest, the key and the attestation), in path order.
/// Replay recomputes exactly these and compares them byte for byte.
pub fn computed_paths(audit: &Audit) -> Vec<&'static str> {
    let mut v = vec![DATAPACKAGE_FILE, SPEC_FILE];
    v.extend(evidence::evidence_files(audit));
    v.sort_unstable();
    v
}

/// Writes one computed file.
pub fn write_computed(audit: &Audit, path: &str, w: &mut dyn Write) -> std::io::Result<()> {
    match path {
        SPEC_FILE => w.write_all(&audit.spec.bytes),
        DATAPACKAGE_FILE => {
            w.write_all(&datapackage_json(&audit.spec.contract.id, &audit.inputs()))
        }
        other => evidence::write_evidence(audit, other, w),
    }
}

/// One computed file's bytes, in memory.
pub fn computed_bytes(audit: &Audit, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_computed(audit, path, &mut out);
    out
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one file of the bundle, fsyncs it, and returns the digest and size of the
/// bytes written.
fn write_file_with(
    root: &Path,
    rel: &str,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(Sha256Digest, u64), BundleError> {
    use sha2::Digest;
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let file = fs::File::create(&path).map_err(io_err(&path))?;
    let mut w = HashingWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        hasher: sha2::Sha256::new(),
        bytes: 0,
    };
    f(&mut w).map_err(io_err(&path))?;
    let digest = Sha256Digest(w.hasher.finalize().into());
    let file = w
        .inner
        .into_inner()
        .map_err(|e| io_err(&path)(e.into_error()))?;
    file.sync_all().map_err(io_err(&path))?;
    Ok((digest, w.bytes))
}

/// Copies an input into the bundle, hashing the bytes copied; fails if they are not the
/// bytes that were audited.
fn copy_input(
    from: &Path,
    root: &Path,
    rel: &str,
    expected: Sha256Digest,
) -> Result<(Sha256Digest, u64), BundleError> {
    use std::io::Read;
    let mut src = fs::File::open(from).map_err(io_err(from))?;
    let copied = write_file_with(root, rel, |w| {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            w.write_all(&buf[..n])?;
        }
    })?;
    if copied.0 != expected {
        return Err(BundleError::InputChanged {
            path: from.to_path_buf(),
            before: expected,
            after: copied.0,
        });
    }
    Ok(copied)
}

/// Writes, signs and atomically installs a bundle. Returns the bundle's path.
pub fn write(
    audit: &Audit,
    key: &SigningKey,
    run: &RunDetails,
    opts: &WriteOptions,
) -> Result<PathBuf, BundleError> {
    let out = &opts.out;
    if out.exists() && !opts.force {
        return Err(BundleError::Exists { path: out.clone() });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".outcome-audit-partial-")
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    let root = tmp.path();

    // The files are independent: write (and hash) the evidence and copy the inputs side
    // by side, so their writes and flushes overlap.
    let inputs: Vec<&LoadedInput> = if opts.embed_inputs {
        audit.inputs()
    } else {
        Vec::new()
    };
    let written = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for rel in computed_paths(audit) {
            handles.push(scope.spawn(move || {
                write_file_with(root, rel, |w| write_computed(audit, rel, w))
                    .map(|d| (rel.to_string(), d))
            }));
        }
        for input in inputs {
            handles.push(scope.spawn(move || {
                let rel = evidence::input_bundle_path(&input.name, input.format);
                copy_input(&input.path, root, &rel, input.sha256).map(|d| (rel, d))
            }));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BundleError::Sign("a writer thread failed".into())))
            })
            .collect::<Result<Vec<_>, BundleError>>()
    })?;
    let known: BTreeMap<String, (Sha256Digest, u64)> = written.into_iter().collect();
    tracing::info!("evidence written and inputs copied");

    let spec = &audit.spec;
    let predicate = dsse::provenance_predicate(&dsse::ProvenanceInputs {
        contract_id: spec.contract.id.clone(),
        spec_path_in_bundle: SPEC_FILE.to_string(),
        spec_sha256: spec.sha256,
        inputs: audit
            .inputs()
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    evidence::input_bundle_path(&i.name, i.format),
                    i.sha256,
                )
            })
            .collect(),
        embedded_inputs: opts.embed_inputs,
        tool_name: env!("CARGO_PKG_NAME").to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        polars_version: POLARS_VERSION.to_string(),
        polars_max_threads: run.polars_max_threads,
        outcome_blind_matching: audit.matched.as_ref().map(|_| true),
        started_on: run.started_on.clone(),
        finished_on: run.finished_on.clone(),
        invocation_id: run.invocation_id.clone(),
    });
    tracing::info!("signing");
    verify::sign_bundle_dir_with_known(root, key, predicate, &known)
        .map_err(|e| BundleError::Sign(e.to_string()))?;

    // Install: rename into place (replacing an old bundle only with --force).
    let staged = tmp.keep();
    if out.exists() {
        let old = tempfile::Builder::new()
            .prefix(".outcome-audit-replaced-")
            .tempdir_in(&parent)
            .map_err(io_err(&parent))?;
        let old_path = old.path().join("bundle");
        fs::rename(out, &old_path).map_err(io_err(out))?;
        if let Err(e) = fs::rename(&staged, out) {
            let _ = fs::rename(&old_path, out);
            let _ = fs::remove_dir_all(&staged);
            return Err(io_err(out)(e));
        }
        drop(old);
    } else if let Err(e) = fs::rename(&staged, out) {
        let _ = fs::remove_dir_all(&staged);
        return Err(io_err(out)(e));
    }
    Ok(out.clone())
}

/// The polars version this build is pinned to (recorded in provenance).
pub const POLARS_VERSION: &str = "0.55.2";
