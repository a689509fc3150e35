//! Replay: recompute a bundle from its own spec and inputs and compare every computed
//! file byte for byte.
//!
//! The bundle is verified first (a tampered bundle is not worth replaying). Its
//! `spec.toml` is then run again, with each input read from the bundle's `inputs/` copy
//! or, for bundles made with `--no-embed-inputs`, from a directory the reviewer names,
//! where the file must have the digest the bundle recorded. The first difference is
//! reported: for `results.json` by JSON path with both values, for tables by line.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use crate::bundle::{computed_bytes, computed_paths, verify, write_computed, SPEC_FILE};
use crate::digest::Sha256Digest;
use crate::evidence::input_bundle_path;
use crate::pipeline::{self, AuditError};
use crate::spec::{AuditSpec, InputSpec, SpecError};

/// Why a replay could not be carried out, or did not match.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("bundle failed verification:\n{0}")]
    Verify(verify::VerifyFailure),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the bundle's spec no longer checks: {0}")]
    Spec(SpecError),
    #[error("input `{name}` is not in the bundle and no --data directory was given\n    help: the bundle was made with --no-embed-inputs; pass --data DIR holding {file}")]
    NoData { name: String, file: String },
    #[error("input `{name}`: none of {candidates} in {dir} has the recorded sha256 {expected}")]
    DataNotFound {
        name: String,
        dir: PathBuf,
        candidates: String,
        expected: Sha256Digest,
    },
    #[error("the bundle does not record a digest for input `{0}`")]
    NoRecordedDigest(String),
    #[error("recomputation failed: {0}")]
    Audit(Box<AuditError>),
}

impl From<AuditError> for ReplayError {
    fn from(e: AuditError) -> Self {
        ReplayError::Audit(Box::new(e))
    }
}

/// The first difference between a bundle's file and its recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Bundle-relative path.
    pub file: String,
    /// Where in the file: a JSON path, a line number, or "missing".
    pub location: String,
    pub in_bundle: String,
    pub recomputed: String,
}

/// Outcome of a replay that ran.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// Files compared, in path order.
    pub compared: Vec<String>,
    /// The first difference in each file that differs.
    pub differences: Vec<Difference>,
}

impl ReplayReport {
    /// True when every recomputed file is identical to the bundle's.
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ReplayError> {
    std::fs::read(path).map_err(|source| ReplayError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Recorded input digests, from the signed provenance's resolved dependencies.
fn recorded_digests(statement: &crate::bundle::dsse::Statement) -> BTreeMap<String, Sha256Digest> {
    let mut out = BTreeMap::new();
    let deps = statement
        .predicate
        .pointer("/buildDefinition/resolvedDependencies")
        .and_then(|v| v.as_array());
    for dep in deps.into_iter().flatten() {
        let name = dep.get("name").and_then(|v| v.as_str());
        let digest = dep
            .pointer("/digest/sha256")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        if let (Some(name), Some(digest)) = (name, digest) {
            out.insert(name.to_string(), digest);
        }
    }
    out
}

fn locate_input(
    bundle: &Path,
    data: Option<&Path>,
    input: &InputSpec,
    expected: Sha256Digest,
) -> Result<PathBuf, ReplayError> {
    let rel = input_bundle_path(&input.name, input.format);
    let embedded = bundle.join(&rel);
    if embedded.is_file() {
        return Ok(embedded);
    }
    let bundle_name = rel.rsplit('/').next().unwrap_or(&rel).to_string();
    let Some(dir) = data else {
        return Err(ReplayError::NoData {
            name: input.name.clone(),
            file: bundle_name,
        });
    };
    let written_name = Path::new(&input.path_as_written)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut candidates = vec![bundle_name];
    if let Some(n) = written_name {
        if !candidates.contains(&n) {
            candidates.push(n);
        }
    }
    for c in &candidates {
        let p = dir.join(c);
        if p.is_file() {
            if let Ok((d, _)) = Sha256Digest::of_file(&p) {
                if d == expected {
                    return Ok(p);
                }
            }
        }
    }
    Err(ReplayError::DataNotFound {
        name: input.name.clone(),
        dir: dir.to_path_buf(),
        candidates: candidates.join(", "),
        expected,
    })
}

/// Verifies a bundle, recomputes it and compares.
pub fn replay(
    bundle: &Path,
    data: Option<&Path>,
    pinned: Option<&VerifyingKey>,
) -> Result<ReplayReport, ReplayError> {
    let audit = recompute(bundle, data, pinned)?;
    tracing::debug!(
        rss_mb = pipeline::resident_mb(),
        peak_mb = pipeline::peak_mb(),
        "recomputed"
    );
    let mut report = ReplayReport {
        compared: Vec::new(),
        differences: Vec::new(),
    };
    compare(bundle, &audit, &mut report);
    Ok(report)
}

/// Verifies a bundle and recomputes its audit from its own spec and inputs.
pub fn recompute(
    bundle: &Path,
    data: Option<&Path>,
    pinned: Option<&VerifyingKey>,
) -> Result<pipeline::Audit, ReplayError> {
    let verified = verify::verify_bundle(bundle, pinned).map_err(ReplayError::Verify)?;
    let recorded = recorded_digests(verified.statement());
    let spec_path = bundle.join(SPEC_FILE);
    let spec = AuditSpec::from_bytes(&spec_path, read(&spec_path)?).map_err(ReplayError::Spec)?;
    let mut paths = std::collections::BTreeMap::new();
    for input in spec.inputs() {
        let expected = *recorded
            .get(&input.name)
            .ok_or_else(|| ReplayError::NoRecordedDigest(input.name.clone()))?;
        paths.insert(
            input.name.clone(),
            locate_input(bundle, data, input, expected)?,
        );
    }
    let inputs = pipeline::load_inputs(&spec, &paths).map_err(AuditError::from)?;
    Ok(pipeline::audit(spec, inputs)?)
}

fn compare(bundle: &Path, audit: &pipeline::Audit, report: &mut ReplayReport) {
    let rels = computed_paths(audit);
    // The usual case, a file recomputed identically, is checked as it is written,
    // without holding either version whole (the conviction ledger of a national audit
    // is hundreds of megabytes); the files side by side, the largest first.
    let same_files = crate::par::map_costliest_first(
        &rels,
        |rel| std::fs::metadata(bundle.join(rel)).map_or(0, |m| m.len()),
        |rel| {
            let same = same_as_stored(audit, rel, &bundle.join(rel));
            tracing::debug!(
                rel,
                rss_mb = pipeline::resident_mb(),
                peak_mb = pipeline::peak_mb(),
                "compared"
            );
            same
        },
    );
    for (rel, same) in rels.into_iter().zip(same_files) {
        let path = bundle.join(rel);
        if same {
            report.compared.push(rel.to_string());
            continue;
        }
        let recomputed = computed_bytes(audit, rel);
        let rel = rel.to_string();
        report.compared.push(rel.clone());
        let stored = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                report.differences.push(Difference {
                    file: rel.clone(),
                    location: "missing".into(),
                    in_bundle: "(no such file)".into(),
                    recomputed: format!("{} bytes", recomputed.len()),
                });
                continue;
            }
        };
        if stored != recomputed {
            report
                .differences
                .push(first_difference(&rel, &stored, &recomputed));
        }
    }
}

/// Whether the file at `path` holds exactly the bytes of the computed file `rel`,
/// compared block by block as they are written.
fn same_as_stored(audit: &pipeline::Audit, rel: &str, path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut stored = StoredComparison {
        file: std::io::BufReader::with_capacity(1 << 20, file),
        buf: Vec::new(),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut stored);
    if write_computed(audit, rel, &mut w).is_err() || w.flush().is_err() {
        return false;
    }
    drop(w);
    // Nothing may follow in the stored file.
    matches!(stored.file.read(&mut [0u8; 1]), Ok(0))
}

/// A writer that compares what is written with the next bytes of a stored file, and
/// fails at the first difference.
struct StoredComparison {
    file: std::io::BufReader<std::fs::File>,
    buf: Vec<u8>,
}

impl Write for StoredComparison {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.resize(data.len(), 0);
        self.file.read_exact(&mut self.buf)?;
        if self.buf != data {
            return Err(std::io::Error::other("differs from the stored file"));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Locates the first difference between two versions of a file.
pub fn first_difference(file: &str, stored: &[u8], recomputed: &[u8]) -> Difference {
    if file.ends_with(".json") {
        if let (Ok(a), Ok(b)) = (
            serde_json::from_slice::<serde_json::Value>(stored),
            serde_json::from_slice::<serde_json::Value>(recomputed),
        ) {
            if let Some((path, x, y)) = json_difference("$", &a, &b) {
                return Difference {
                    file: file.to_string(),
                    location: path,
                    in_bundle: x,
                    recomputed: y,
                };
            }
        }
    }
    let a = String::from_utf8_lossy(stored);
    let b = String::from_utf8_lossy(recomputed);
    let mut la = a.split('\n');
    let mut lb = b.split('\n');
    let mut line = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            (x, y) => {
                return Difference {
                    file: file.to_string(),
                    location: format!("line {line}"),
                    in_bundle: x.unwrap_or("(end of file)").to_string(),
                    recomputed: y.unwrap_or("(end of file)").to_string(),
                }
            }
        }
    }
}

fn json_difference(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = json_difference(&p, va, vb) {
                            return Some(d);
                        }
                    }
                    None => return Some((p, va.to_string(), "(absent)".into())),
                }
            }
            for (k, vb) in y {
                if !x.contains_key(k) {
                    return Some((format!("{path}.{k}"), "(absent)".into(), vb.to_string()));
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if let Some(d) = json_difference(&format!("{path}[{i}]"), va, vb) {
                    return Some(d);
                }
            }
            if x.len() != y.len() {
                return Some((
                    format!("{path}.length"),
                    x.len().to_string(),
                    y.len().to_string(),
                ));
            }
            None
        }
        _ if a == b => None,
        _ => Some((path.to_string(), a.to_string(), b.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_difference_names_the_path_and_both_values() {
        let d = first_difference(
            "results.json",
            br#"{"a":{"b":[1,{"c":"0.523"}]}}"#,
            br#"{"a":{"b":[1,{"c":"0.524"}]}}"#,
        );
        assert_eq!(d.location, "$.a.b[1].c");
        assert_eq!(
            (d.in_bundle.as_str(), d.recomputed.as_str()),
            ("\"0.523\"", "\"0.524\"")
        );
    }

    #[test]
    fn text_difference_names_the_line() {
        let d = first_difference("tables/x.csv", b"h\n1\n2\n", b"h\n1\n3\n");
        assert_eq!(d.location, "line 3");
        assert_eq!((d.in_bundle.as_str(), d.recomputed.as_str()), ("2", "3"));
    }
}
