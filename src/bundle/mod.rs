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
pub mod sigstore;
pub mod verify;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::data::{InputCopy, LoadedInput};
use crate::digest::Sha256Digest;
use crate::direct_io::DirectWriter;
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
    /// A file system operation on the output failed (disk full, permission denied, a
    /// path through a file, …). No bundle was installed.
    #[error("cannot {action} {path}: {source}\n    help: {help}", help = io_help(source))]
    Io {
        /// What was being done: "write", "create the folder", …
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already exists\n    help: choose another --out, or pass --force to replace it"
    )]
    Exists { path: PathBuf },
    /// `--force` was given, but what is at the output path is not a bundle.
    #[error(
        "{path} exists and is not an evidence bundle (it is not an empty folder and has no attestation.dsse.json or manifest.json); --force replaces only a bundle\n    help: choose another --out"
    )]
    NotABundle { path: PathBuf },
    #[error("{path} changed while it was being audited (sha256 {before} when read, {after} when copied)")]
    InputChanged {
        path: PathBuf,
        before: Sha256Digest,
        after: Sha256Digest,
    },
    #[error("signing failed: {0}")]
    Sign(String),
}

/// What to do about a failed file system operation on the output.
fn io_help(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            "the file system is full: free space there or choose another --out; no bundle was written, and anything already at the output path is unchanged"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            "this location cannot be written: choose an --out in a folder you may write to; no bundle was written, and anything already at the output path is unchanged"
        }
        ErrorKind::NotADirectory => {
            "a part of this path is a file, not a folder: choose another --out; no bundle was written"
        }
        _ => "no bundle was written, and anything already at the output path is unchanged",
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> BundleError + 'a {
    move |source| BundleError::Io {
        action,
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

/// Size of the pieces a [`PipedWriter`] hands on.
const PIPE_PIECE: usize = 256 << 10;

/// A writer that hands its bytes on, in the order written, in pieces of
/// [`PIPE_PIECE`], to a thread that hashes them ([`hash_pieces`]) and on to one that
/// writes them to the file ([`write_pieces`]). Formatting a large table, hashing it and
/// writing it then run side by side instead of one after the other on one core:
/// measured on the national benchmark, the 300 MB conviction ledger was formatted,
/// hashed and written on one thread for most of a second while the other core had
/// nothing left to do. The bytes, and so the digest, are exactly those written.
struct PipedWriter {
    piece: Vec<u8>,
    to_file: std::sync::mpsc::SyncSender<Vec<u8>>,
    /// Pieces handed back once written, for reuse.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl PipedWriter {
    /// Hands the current piece on (if it holds anything).
    fn send(&mut self) -> std::io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PIPE_PIECE));
        let full = std::mem::replace(&mut self.piece, next);
        // Fails only once the writing thread has stopped on an error, which it returns.
        self.to_file
            .send(full)
            .map_err(|_| std::io::Error::other("the file's hashing or writing thread stopped"))
    }
}

impl Write for PipedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.piece.len() + buf.len() > PIPE_PIECE {
            self.send()?;
        }
        if buf.len() >= PIPE_PIECE {
            // A large write goes on as a piece of its own.
            self.piece.extend_from_slice(buf);
            self.send()?;
        } else {
            self.piece.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The hashing side of a [`PipedWriter`]: hashes each piece in the order received and
/// hands it on to [`write_pieces`]; returns the digest and the number of bytes.
fn hash_pieces(
    pieces: std::sync::mpsc::Receiver<Vec<u8>>,
    to_file: std::sync::mpsc::SyncSender<Vec<u8>>,
) -> (Sha256Digest, u64) {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0u64;
    for piece in pieces {
        hasher.update(&piece);
        bytes += piece.len() as u64;
        if to_file.send(piece).is_err() {
            // The writing thread stopped on an error, which it returns.
            break;
        }
    }
    (Sha256Digest(hasher.finalize().into()), bytes)
}

/// The writing side of a [`PipedWriter`]: writes each piece in the order received and
/// hands it back for reuse; returns the file.
fn write_pieces(
    mut file: DirectWriter,
    pieces: std::sync::mpsc::Receiver<Vec<u8>>,
    spare: std::sync::mpsc::Sender<Vec<u8>>,
) -> std::io::Result<fs::File> {
    for mut piece in pieces {
        file.write_all(&piece)?;
        piece.clear();
        // The writer may have finished already; then the piece is simply freed.
        let _ = spare.send(piece);
    }
    file.finish()
}

/// Writes one file of the bundle, fsyncs it, and returns the digest and size of the
/// bytes written. `f` formats the bytes on this thread while two others hash and write
/// them ([`PipedWriter`]).
fn write_file_with(
    root: &Path,
    rel: &str,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(Sha256Digest, u64), BundleError> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err("create the folder", parent))?;
    }
    let file = DirectWriter::create(&path).map_err(io_err("create", &path))?;
    let started = std::time::Instant::now();
    let (formatted, hashed, written) = std::thread::scope(|scope| {
        let (to_hash, pieces) = std::sync::mpsc::sync_channel(1);
        let (to_file, hashed_pieces) = std::sync::mpsc::sync_channel(1);
        let (give_back, spare) = std::sync::mpsc::channel();
        let hasher = scope.spawn(move || hash_pieces(pieces, to_file));
        let writer = scope.spawn(move || write_pieces(file, hashed_pieces, give_back));
        let mut w = PipedWriter {
            piece: Vec::with_capacity(PIPE_PIECE),
            to_file: to_hash,
            spare,
        };
        let formatted = f(&mut w).and_then(|()| w.flush());
        // Closing the channel ends the hashing thread, and then the writing thread,
        // once every piece has passed through both.
        drop(w);
        let hashed = hasher.join();
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the file's writing thread failed")));
        (formatted, hashed, written)
    });
    // An error of the writing thread is the cause of any error the formatting saw.
    let file = written.map_err(io_err("write", &path))?;
    formatted.map_err(io_err("write", &path))?;
    let (digest, bytes) = hashed.map_err(|_| {
        io_err("write", &path)(std::io::Error::other("the file's hashing thread failed"))
    })?;
    let written = started.elapsed();
    file.sync_all().map_err(io_err("write", &path))?;
    tracing::debug!(
        file = rel,
        bytes,
        written_ms = written.as_millis() as u64,
        synced_ms = (started.elapsed() - written).as_millis() as u64,
        "evidence file written"
    );
    Ok((digest, bytes))
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
    let mut src = fs::File::open(from).map_err(io_err("read the input", from))?;
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

/// Prefix of the temporary folder a bundle is assembled in, beside its destination.
/// A folder with this prefix is never a bundle: it is either being written by a run
/// in progress or was left by a run that was killed, and can then be deleted.
pub const PARTIAL_PREFIX: &str = ".outcome-audit-partial-";

/// Folder inside a [`PARTIAL_PREFIX`] folder where a bundle is assembled.
const STAGED_DIR: &str = "bundle";

/// A bundle being assembled: the checks on its destination are done and its temporary
/// folder exists, so the inputs can be copied into it while they are read
/// ([`Staging::inputs_root`]). Dropped without [`Staging::finish`], it leaves nothing.
///
/// Crash safety: the bundle is assembled in a temporary folder beside `opts.out`
/// ([`PARTIAL_PREFIX`]), every file and folder of it is fsynced, and only then is it
/// moved to `opts.out` in one rename (or, with `--force` over an existing bundle, one
/// atomic exchange of the two folders; see `install`). Killed at any moment, a run
/// leaves at `opts.out` either what was there before or the complete new bundle.
pub struct Staging {
    opts: WriteOptions,
    parent: PathBuf,
    tmp: tempfile::TempDir,
}

impl Staging {
    /// Checks the destination (`--force` rules, the parent folder) and creates the
    /// temporary folder beside it.
    pub fn begin(opts: &WriteOptions) -> Result<Staging, BundleError> {
        let (parent, tmp) = begin_staging(opts)?;
        Ok(Staging {
            opts: opts.clone(),
            parent,
            tmp,
        })
    }

    /// The folder the bundle is assembled in: an input copied to
    /// `inputs_root().join(evidence::input_bundle_path(..))` while it is read is not
    /// copied again.
    pub fn inputs_root(&self) -> Option<PathBuf> {
        self.opts
            .embed_inputs
            .then(|| self.tmp.path().join(STAGED_DIR))
    }

    /// Writes the evidence, signs and installs the bundle. Returns its path.
    pub fn finish(
        self,
        audit: &Audit,
        key: &SigningKey,
        run: &RunDetails,
    ) -> Result<PathBuf, BundleError> {
        finish_staging(audit, key, run, &self.opts, &self.parent, self.tmp)
    }
}

/// The destination checks and the temporary folder of [`Staging::begin`].
fn begin_staging(opts: &WriteOptions) -> Result<(PathBuf, tempfile::TempDir), BundleError> {
    let out = &opts.out;
    if fs::symlink_metadata(out).is_ok() {
        if !opts.force {
            return Err(BundleError::Exists { path: out.clone() });
        }
        if !replaceable(out) {
            return Err(BundleError::NotABundle { path: out.clone() });
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent_is_file = fs::metadata(&parent).is_ok_and(|m| !m.is_dir());
    if parent_is_file {
        let not_a_folder = std::io::Error::from(std::io::ErrorKind::NotADirectory);
        return Err(io_err("create the output folder", &parent)(not_a_folder));
    }
    fs::create_dir_all(&parent).map_err(io_err("create the output folder", &parent))?;
    warn_about_leftovers(&parent);
    let tmp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempdir_in(&parent)
        .map_err(io_err("create a temporary folder in", &parent))?;
    // The bundle is assembled one level down, so that a folder left by a killed run is
    // never itself a bundle, however far the run got.
    let staging = tmp.path().join(STAGED_DIR);
    fs::create_dir(&staging).map_err(io_err("create a temporary folder in", tmp.path()))?;
    Ok((parent, tmp))
}

/// Everything of [`Staging::finish`]: the evidence, the signature and the install.
fn finish_staging(
    audit: &Audit,
    key: &SigningKey,
    run: &RunDetails,
    opts: &WriteOptions,
    parent: &Path,
    tmp: tempfile::TempDir,
) -> Result<PathBuf, BundleError> {
    let out = &opts.out;
    let staging = tmp.path().join(STAGED_DIR);
    let root = staging.as_path();

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
                match &input.copy {
                    // Copied as it was read: the very bytes hashed; made durable here.
                    Some(InputCopy::Written(at)) if *at == root.join(&rel) => fs::File::open(at)
                        .and_then(|f| f.sync_all())
                        .map_err(io_err("write", at))
                        .map(|()| (rel, (input.sha256, input.bytes))),
                    Some(InputCopy::Failed { path, error }) => Err(BundleError::Io {
                        action: "write",
                        path: path.clone(),
                        source: std::io::Error::new(error.kind(), error.to_string()),
                    }),
                    _ => copy_input(&input.path, root, &rel, input.sha256).map(|d| (rel, d)),
                }
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
    verify::sign_bundle_dir_with_known(root, key, predicate, &known).map_err(|e| match e {
        verify::SignError::Write { path, source } => BundleError::Io {
            action: "write",
            path,
            source,
        },
        other => BundleError::Sign(other.to_string()),
    })?;
    // Every file was fsynced as it was written; the folders' entries must be durable
    // too before the bundle is renamed into place.
    sync_folders(root)?;
    sync_folder(tmp.path())?;

    let partial = tmp.keep();
    let staged = partial.join(STAGED_DIR);
    if let Err(e) = install(&staged, out, parent) {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    // Empty now, or holding what is left of a replaced bundle being deleted.
    if let Err(e) = fs::remove_dir_all(&partial) {
        tracing::warn!(
            "the temporary folder {} is left: {e}; it can be deleted",
            partial.display()
        );
    }
    Ok(out.clone())
}

/// Whether `--force` may replace what is at `path`: an empty folder, or a folder that
/// holds a bundle's attestation or manifest (a bundle, possibly a tampered one). Never
/// a file, a symlink or a folder of other things, such as the inputs.
fn replaceable(path: &Path) -> bool {
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let empty = || fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
    let sealed = || {
        [verify::ATTESTATION_FILE, manifest::MANIFEST_FILE]
            .iter()
            .any(|f| fs::symlink_metadata(path.join(f)).is_ok_and(|m| m.is_file()))
    };
    is_dir && (empty() || sealed())
}

/// Logs the temporary folders that killed runs left beside the destination. They are
/// not deleted: another run may be writing one of them right now.
fn warn_about_leftovers(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(PARTIAL_PREFIX)
        {
            tracing::warn!(
                "{} was left by an interrupted run; it is not a bundle and can be deleted once no other run is writing beside it",
                entry.path().display()
            );
        }
    }
}

/// fsyncs `root` and every folder under it, so that their entries survive a crash.
fn sync_folders(root: &Path) -> Result<(), BundleError> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
            let entry = entry.map_err(io_err("read", &dir))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
        sync_folder(&dir)?;
    }
    Ok(())
}

/// fsyncs one folder's entries (a no-op where folders cannot be opened as files).
fn sync_folder(dir: &Path) -> Result<(), BundleError> {
    if cfg!(unix) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", dir))?;
    }
    Ok(())
}

/// Moves the finished bundle `staged` to `out` (both in `parent`) and makes the move
/// durable.
///
/// - Nothing at `out`: one rename, refusing to replace anything that appeared there in
///   the meantime.
/// - A bundle at `out` (`--force`): on Linux, one `renameat2(RENAME_EXCHANGE)` swaps the
///   two folders atomically, so `out` holds the old bundle until the instant it holds
///   the new one; the old bundle, now at `staged`, is then deleted. Where the exchange
///   is not available (another system, or a file system that refuses it) the old bundle
///   is first renamed aside and then the new one into place: a crash between those two
///   renames leaves the old bundle complete in a `.outcome-audit-partial-*` folder
///   beside `out`, and nothing at `out`.
fn install(staged: &Path, out: &Path, parent: &Path) -> Result<(), BundleError> {
    let replacing = fs::symlink_metadata(out).is_ok();
    if !replacing {
        match rename_noreplace(staged, out) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(BundleError::Exists {
                    path: out.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err("move the finished bundle to", out)(e)),
        }
        return sync_folder(parent);
    }
    match exchange(staged, out) {
        Ok(()) => {
            sync_folder(parent)?;
            // `staged` now holds the old bundle.
            if let Err(e) = fs::remove_dir_all(staged) {
                tracing::warn!(
                    "the replaced bundle is left at {}: {e}; it can be deleted",
                    staged.display()
                );
            }
            Ok(())
        }
        Err(e) if exchange_unsupported(&e) => replace_in_two_renames(staged, out, parent),
        Err(e) => Err(io_err("replace the bundle at", out)(e)),
    }
}

/// Replaces the folder `out` by `staged` where no atomic exchange is available: the old
/// bundle is renamed aside (into a partial folder), the new one into place, then the
/// old one is deleted. On failure the old bundle is put back.
fn replace_in_two_renames(staged: &Path, out: &Path, parent: &Path) -> Result<(), BundleError> {
    let aside = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempdir_in(parent)
        .map_err(io_err("create a temporary folder in", parent))?;
    let old = aside.path().join("replaced-bundle");
    fs::rename(out, &old).map_err(io_err("move the old bundle away from", out))?;
    if let Err(e) = fs::rename(staged, out) {
        let _ = fs::rename(&old, out);
        return Err(io_err("move the finished bundle to", out)(e));
    }
    sync_folder(parent)?;
    drop(aside);
    Ok(())
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists.
#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = std::io::Error::from(e);
            if exchange_unsupported(&e) {
                rename_checked(from, to)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    rename_checked(from, to)
}

/// A plain rename that refuses an existing destination (checked just before; where the
/// system offers nothing atomic).
fn rename_checked(from: &Path, to: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    fs::rename(from, to)
}

/// Atomically swaps the folders `a` and `b`.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Whether a rename with flags failed because the system or file system does not
/// offer it (rather than for a reason a plain rename would share).
fn exchange_unsupported(e: &std::io::Error) -> bool {
    const EINVAL: i32 = 22;
    const ENOSYS: i32 = 38;
    e.kind() == std::io::ErrorKind::Unsupported
        || (cfg!(target_os = "linux") && matches!(e.raw_os_error(), Some(EINVAL | ENOSYS)))
}

/// The polars version this build is pinned to (recorded in provenance).
pub const POLARS_VERSION: &str = "0.55.2";

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder `name` in `parent` holding an `attestation.dsse.json` of `content`.
    fn folder(parent: &Path, name: &str, content: &str) -> PathBuf {
        let dir = parent.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("attestation.dsse.json"), content).unwrap();
        dir
    }

    fn content(dir: &Path) -> String {
        fs::read_to_string(dir.join("attestation.dsse.json")).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_piped_file_holds_exactly_the_bytes_written_and_their_digest() {
        let tmp = tempfile::tempdir().unwrap();
        // Small writes, a write that fills a piece exactly, one larger than a piece,
        // an empty write, and a tail: every boundary of the pieces handed on.
        let mut expected = Vec::new();
        let writes: Vec<Vec<u8>> = vec![
            b"header\n".to_vec(),
            vec![b'a'; PIPE_PIECE - 7],
            vec![b'b'; 3 * PIPE_PIECE + 5],
            Vec::new(),
            (0..=255u8).cycle().take(PIPE_PIECE + 1).collect(),
            b"tail".to_vec(),
        ];
        for w in &writes {
            expected.extend_from_slice(w);
        }
        let (digest, bytes) = write_file_with(tmp.path(), "tables/t.csv", |w| {
            for piece in &writes {
                w.write_all(piece)?;
            }
            Ok(())
        })
        .unwrap();
        let on_disk = fs::read(tmp.path().join("tables/t.csv")).unwrap();
        assert!(
            on_disk == expected,
            "the file differs from the bytes written"
        );
        assert_eq!(bytes, expected.len() as u64);
        assert_eq!(digest, Sha256Digest::of_bytes(&expected));

        let (digest, bytes) = write_file_with(tmp.path(), "empty", |_| Ok(())).unwrap();
        assert_eq!((digest, bytes), (Sha256Digest::of_bytes(b""), 0));
        assert_eq!(fs::read(tmp.path().join("empty")).unwrap(), b"");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_error_of_the_writing_thread_is_returned_with_the_path() {
        // /dev/full refuses every write with "no space left on device".
        if !Path::new("/dev/full").exists() {
            return;
        }
        let err = write_file_with(Path::new("/dev"), "full", |w| {
            w.write_all(&vec![0u8; 4 * PIPE_PIECE])
        })
        .unwrap_err();
        match err {
            BundleError::Io {
                action,
                path,
                source,
            } => {
                assert_eq!(action, "write");
                assert_eq!(path, Path::new("/dev/full"));
                assert_eq!(source.raw_os_error(), Some(28), "{source}");
            }
            other => panic!("expected an Io error, got {other}"),
        }
    }

    #[test]
    fn install_into_a_free_path_renames_the_staged_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let staged = folder(tmp.path(), ".outcome-audit-partial-a", "new");
        let out = tmp.path().join("bundle");
        install(&staged, &out, tmp.path()).unwrap();
        assert_eq!(content(&out), "new");
        assert_eq!(names(tmp.path()), ["bundle"]);
    }

    #[test]
    fn install_over_a_bundle_swaps_it_and_deletes_the_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let out = folder(tmp.path(), "bundle", "old");
        let staged = folder(tmp.path(), ".outcome-audit-partial-a", "new");
        install(&staged, &out, tmp.path()).unwrap();
        assert_eq!(content(&out), "new");
        assert_eq!(names(tmp.path()), ["bundle"]);
    }

    #[test]
    fn the_two_rename_fallback_replaces_the_bundle_and_leaves_nothing_beside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let out = folder(tmp.path(), "bundle", "old");
        let staged = folder(tmp.path(), ".outcome-audit-partial-a", "new");
        replace_in_two_renames(&staged, &out, tmp.path()).unwrap();
        assert_eq!(content(&out), "new");
        assert_eq!(names(tmp.path()), ["bundle"]);
    }

    #[test]
    fn the_two_rename_fallback_puts_the_old_bundle_back_when_the_new_one_cannot_move() {
        let tmp = tempfile::tempdir().unwrap();
        let out = folder(tmp.path(), "bundle", "old");
        let missing = tmp.path().join(".outcome-audit-partial-gone");
        assert!(replace_in_two_renames(&missing, &out, tmp.path()).is_err());
        assert_eq!(content(&out), "old");
        assert_eq!(names(tmp.path()), ["bundle"]);
    }

    #[test]
    fn only_an_empty_folder_or_a_sealed_one_may_be_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = folder(tmp.path(), "bundle", "x");
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let data = tmp.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("people.csv"), "id\n").unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(replaceable(&bundle));
        assert!(replaceable(&empty));
        assert!(!replaceable(&data));
        assert!(!replaceable(&file));
    }

    #[test]
    fn a_full_disk_error_says_the_file_system_is_full_and_nothing_changed() {
        let e = BundleError::Io {
            action: "write",
            path: PathBuf::from("out/.outcome-audit-partial-x/results.json"),
            source: std::io::ErrorKind::StorageFull.into(),
        }
        .to_string();
        assert!(e.starts_with("cannot write out/.outcome-audit-partial-x/results.json: "));
        assert!(e.contains("help: the file system is full"));
        assert!(e.contains("anything already at the output path is unchanged"));
    }
}
