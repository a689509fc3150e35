//! Signing a finished bundle directory, and checking one: the only way an untrusted
//! directory becomes a [`VerifiedBundle`].
//!
//! `verify` recomputes nothing; it checks that the attestation is signed by the trusted
//! key and that every byte in the directory is accounted for by both the signed
//! Statement and `manifest.json`. A tampered bundle is not an error to stop at but a set
//! of findings: every problem is reported, each with a stable kebab-case code that the
//! CLI and reports match on (never on message text), in a deterministic order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::bundle::dsse::{
    sign_envelope, DigestSet, Envelope, SignatureProblem, Statement, Subject, IN_TOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V1,
};
use crate::bundle::keys::{keyid, parse_public_key_pem, public_key_pem};
use crate::bundle::manifest::{
    bundle_file_path, check_bundle_path, entry_problems, walk, EntryProblem, Manifest,
    ManifestError, RawManifest, RejectKind, MANIFEST_FILE, MANIFEST_VERSION,
};
use crate::digest::Sha256Digest;

/// File name of the DSSE envelope at the root of a bundle.
pub const ATTESTATION_FILE: &str = "attestation.dsse.json";

/// File name of the signer's SPKI PEM public key at the root of a bundle.
pub const SIGNER_KEY_FILE: &str = "signer.pub.pem";

/// Largest `attestation.dsse.json` or `manifest.json` verify will read into memory.
const MAX_METADATA_BYTES: u64 = 256 * 1024 * 1024;

/// Largest `signer.pub.pem` verify will read; a real one is 113 bytes.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// The kind of a verification finding. [`FindingCode::as_str`] is the stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingCode {
    /// `bundle-unreadable`: the bundle directory is missing, not a directory or cannot
    /// be walked.
    BundleUnreadable,
    /// `symlink`: the bundle holds a symbolic link (never followed).
    Symlink,
    /// `not-regular-file`: the bundle holds a FIFO, socket, device or similar.
    NotRegularFile,
    /// `path-unsafe`: a file name on disk, a subject or a manifest entry breaks the
    /// bundle path rules (absolute, `..`, `\`, not UTF-8, …).
    PathUnsafe,
    /// `file-unreadable`: a file in the bundle could not be read.
    FileUnreadable,
    /// `envelope-malformed`: `attestation.dsse.json` is missing, truncated or not a DSSE
    /// envelope.
    EnvelopeMalformed,
    /// `payload-type-unexpected`: the envelope's payloadType is not
    /// `application/vnd.in-toto+json`.
    PayloadTypeUnexpected,
    /// `statement-malformed`: the payload is not an in-toto Statement v1 with a SLSA
    /// Provenance v1 predicate.
    StatementMalformed,
    /// `signer-key-malformed`: `signer.pub.pem` is missing or not an ed25519 SPKI PEM.
    SignerKeyMalformed,
    /// `key-not-trusted`: the bundle is signed by, or names, a key other than the
    /// pinned one.
    KeyNotTrusted,
    /// `signature-invalid`: a signature does not verify over the envelope's payload.
    SignatureInvalid,
    /// `keyid-mismatch`: a signature names a key id other than the verifying key's.
    KeyidMismatch,
    /// `manifest-malformed`: `manifest.json` is missing, not valid JSON of the manifest
    /// shape, of an unknown version or not sorted.
    ManifestMalformed,
    /// `entry-reserved`: the manifest or the attestation lists a file it cannot cover
    /// (itself, or the attestation).
    EntryReserved,
    /// `duplicate-entry`: a path is listed twice.
    DuplicateEntry,
    /// `case-collision`: two paths differ only in letter case.
    CaseCollision,
    /// `file-missing`: a listed file is not in the bundle.
    FileMissing,
    /// `file-unexpected`: a file in the bundle is not listed.
    FileUnexpected,
    /// `digest-mismatch`: a file's SHA-256 differs from the listed one.
    DigestMismatch,
    /// `size-mismatch`: a file's size differs from the manifest's.
    SizeMismatch,
}

impl FindingCode {
    /// Every code, in report order.
    pub const ALL: [FindingCode; 20] = [
        Self::BundleUnreadable,
        Self::Symlink,
        Self::NotRegularFile,
        Self::PathUnsafe,
        Self::FileUnreadable,
        Self::EnvelopeMalformed,
        Self::PayloadTypeUnexpected,
        Self::StatementMalformed,
        Self::SignerKeyMalformed,
        Self::KeyNotTrusted,
        Self::SignatureInvalid,
        Self::KeyidMismatch,
        Self::ManifestMalformed,
        Self::EntryReserved,
        Self::DuplicateEntry,
        Self::CaseCollision,
        Self::FileMissing,
        Self::FileUnexpected,
        Self::DigestMismatch,
        Self::SizeMismatch,
    ];

    /// The stable kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BundleUnreadable => "bundle-unreadable",
            Self::Symlink => "symlink",
            Self::NotRegularFile => "not-regular-file",
            Self::PathUnsafe => "path-unsafe",
            Self::FileUnreadable => "file-unreadable",
            Self::EnvelopeMalformed => "envelope-malformed",
            Self::PayloadTypeUnexpected => "payload-type-unexpected",
            Self::StatementMalformed => "statement-malformed",
            Self::SignerKeyMalformed => "signer-key-malformed",
            Self::KeyNotTrusted => "key-not-trusted",
            Self::SignatureInvalid => "signature-invalid",
            Self::KeyidMismatch => "keyid-mismatch",
            Self::ManifestMalformed => "manifest-malformed",
            Self::EntryReserved => "entry-reserved",
            Self::DuplicateEntry => "duplicate-entry",
            Self::CaseCollision => "case-collision",
            Self::FileMissing => "file-missing",
            Self::FileUnexpected => "file-unexpected",
            Self::DigestMismatch => "digest-mismatch",
            Self::SizeMismatch => "size-mismatch",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found while verifying a bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingCode,
    /// The bundle-relative path it is about (`attestation.dsse.json` for signature
    /// problems, empty for the bundle as a whole).
    pub path: String,
    /// A sentence naming the file and what is wrong with it.
    pub message: String,
}

impl Finding {
    fn new(kind: FindingCode, path: &str, message: impl fmt::Display) -> Finding {
        Finding {
            kind,
            path: path.to_string(),
            message: if path.is_empty() {
                message.to_string()
            } else {
                format!("{path}: {message}")
            },
        }
    }

    /// The stable kebab-case code, e.g. `digest-mismatch`.
    pub fn code(&self) -> &'static str {
        self.kind.as_str()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

/// Why a bundle did not verify: every finding, ordered by code (in
/// [`FindingCode::ALL`] order), then path, then message. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, finding) in self.findings.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{finding}")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyFailure {}

/// A bundle whose signature and every file have been checked. Only [`verify_bundle`]
/// makes one.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    root: PathBuf,
    signer: VerifyingKey,
    keyid: String,
    pinned: bool,
    statement: Statement,
    manifest: Manifest,
    envelope: Envelope,
}

impl VerifiedBundle {
    /// The bundle directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key the attestation verified under.
    pub fn signer(&self) -> &VerifyingKey {
        &self.signer
    }

    /// The signer's key id (securesystemslib), which is also its printed fingerprint.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// Whether the signer was pinned by the caller. If not, the bundle only proves it
    /// was signed by the key in its own `signer.pub.pem`: the CLI should say "signer
    /// is unpinned" and print [`VerifiedBundle::keyid`].
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    /// The signed in-toto Statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The checked manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The DSSE envelope whose signature verified, as read from
    /// `attestation.dsse.json` (payload and signatures exactly as stored).
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
}

/// A file found in the bundle and hashed.
struct DiskFile {
    digest: Sha256Digest,
    size: u64,
}

/// What is on disk: every regular file hashed once, what may not be there, and the
/// bytes of the three files verify parses.
#[derive(Default)]
struct Scan {
    /// Regular files other than the attestation, by bundle path.
    files: BTreeMap<String, DiskFile>,
    /// Paths of symlinks, special files and non-UTF-8 names.
    rejected: BTreeSet<String>,
    attestation: Option<Vec<u8>>,
    manifest: Option<Vec<u8>>,
    signer_key: Option<Vec<u8>>,
}

/// Findings collected during one verification.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, kind: FindingCode, path: &str, message: impl fmt::Display) {
        self.0.push(Finding::new(kind, path, message));
    }

    fn into_failure(self) -> VerifyFailure {
        let mut findings = self.0;
        findings.sort();
        findings.dedup();
        VerifyFailure { findings }
    }
}

/// Verifies the bundle in `dir`.
///
/// With `pinned`, the attestation must be signed by that key and `signer.pub.pem` must
/// hold it. Without, the bundle's own `signer.pub.pem` is trusted and the result says
/// so ([`VerifiedBundle::pinned`] is false).
///
/// Checks, all of which are run and reported together: the directory holds only
/// regular files and directories with safe, case-distinct names; `attestation.dsse.json`
/// is a DSSE envelope of an in-toto Statement v1 with a SLSA Provenance v1 predicate,
/// validly signed by the trusted key; its subjects are exactly the bundle's files other
/// than itself, with matching SHA-256; `manifest.json` is a valid manifest listing
/// exactly the files other than itself and the attestation, with matching SHA-256 and
/// size. Content files are hashed by streaming, once each; the attestation, manifest
/// and public key are read whole (with a size limit) and hashed from the bytes parsed.
pub fn verify_bundle(
    dir: &Path,
    pinned: Option<&VerifyingKey>,
) -> Result<VerifiedBundle, VerifyFailure> {
    let mut findings = Findings::default();
    let Some(scan) = scan_bundle(dir, &mut findings) else {
        return Err(findings.into_failure());
    };
    let envelope = check_envelope(scan.attestation.as_deref(), &mut findings);
    let bundle_key = check_signer_key(scan.signer_key.as_deref(), &mut findings);
    let trusted = pinned.or(bundle_key.as_ref());
    if let Some(envelope) = &envelope {
        check_signature(envelope, pinned, bundle_key.as_ref(), &mut findings);
    }
    // The subjects are compared with the files even if the signature failed, so that
    // the report says which files differ from what was signed.
    let statement = envelope
        .as_ref()
        .and_then(|envelope| check_statement(envelope, &scan, &mut findings));
    let manifest = check_manifest(&scan, &mut findings);

    match (
        findings.0.is_empty(),
        trusted,
        statement,
        manifest,
        envelope,
    ) {
        (true, Some(signer), Some(statement), Some(manifest), Some(envelope)) => {
            Ok(VerifiedBundle {
                root: dir.to_path_buf(),
                signer: *signer,
                keyid: keyid(signer),
                pinned: pinned.is_some(),
                statement,
                manifest,
                envelope,
            })
        }
        (empty, ..) => {
            if empty {
                // Unreachable by construction: every missing piece adds a finding. Never
                // fail without saying why.
                findings.add(
                    FindingCode::BundleUnreadable,
                    "",
                    "verification could not be completed",
                );
            }
            Err(findings.into_failure())
        }
    }
}

/// Walks and hashes the bundle. `None` if the directory itself cannot be read.
fn scan_bundle(dir: &Path, findings: &mut Findings) -> Option<Scan> {
    let walked = match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(format!("{} is not a directory", dir.display())),
        Ok(_) => walk(dir, &[]).map_err(|e| format!("cannot walk bundle: {e}")),
        Err(e) => Err(format!("cannot read bundle {}: {e}", dir.display())),
    };
    let walked = match walked {
        Ok(walked) => walked,
        Err(message) => {
            findings.add(FindingCode::BundleUnreadable, "", message);
            return None;
        }
    };

    let mut scan = Scan::default();
    const ONLY_FILES: &str = "a bundle may only hold regular files and directories";
    for r in walked.rejected {
        let (kind, rule) = match r.kind {
            RejectKind::Symlink => (FindingCode::Symlink, ONLY_FILES),
            RejectKind::NotRegularFile => (FindingCode::NotRegularFile, ONLY_FILES),
            RejectKind::NotUtf8 => (FindingCode::PathUnsafe, "bundle paths must be UTF-8"),
        };
        findings.add(kind, &r.path, format_args!("{}; {rule}", r.kind));
        scan.rejected.insert(r.path);
    }
    for problem in entry_problems(walked.files.iter().map(|f| f.path.as_str())) {
        add_entry_problem(findings, "the bundle directory", &problem);
    }

    let cap_of = |path: &str| match path {
        ATTESTATION_FILE | MANIFEST_FILE => Some(MAX_METADATA_BYTES),
        SIGNER_KEY_FILE => Some(MAX_KEY_BYTES),
        _ => None,
    };
    // The content files are hashed first, side by side; the findings are then made in
    // walk order, as if they had been hashed one by one.
    let content: Vec<PathBuf> = walked
        .files
        .iter()
        .filter(|f| cap_of(&f.path).is_none())
        .map(|f| bundle_file_path(dir, &f.path))
        .collect();
    let mut content_digests = hash_files(&content).into_iter();
    for file in walked.files {
        let on_disk = bundle_file_path(dir, &file.path);
        let hashed = match cap_of(&file.path) {
            // One digest per content file, in the same order.
            None => content_digests
                .next()
                .unwrap_or_else(|| Err(std::io::Error::other("not hashed")))
                .map(|(digest, size)| DiskFile { digest, size }),
            Some(cap) => read_capped(&on_disk, cap).map(|bytes| {
                let hashed = DiskFile {
                    digest: Sha256Digest::of_bytes(&bytes),
                    size: bytes.len() as u64,
                };
                match file.path.as_str() {
                    ATTESTATION_FILE => scan.attestation = Some(bytes),
                    MANIFEST_FILE => scan.manifest = Some(bytes),
                    _ => scan.signer_key = Some(bytes),
                }
                hashed
            }),
        };
        match hashed {
            Ok(_) if file.path == ATTESTATION_FILE => {}
            Ok(hashed) => {
                scan.files.insert(file.path, hashed);
            }
            Err(e) => findings.add(
                FindingCode::FileUnreadable,
                &file.path,
                format_args!("cannot read: {e}"),
            ),
        }
    }
    Some(scan)
}

/// SHA-256 and size of each file, in the order given, hashed side by side
/// ([`crate::par::map_costliest_first`]), the largest first.
fn hash_files(paths: &[PathBuf]) -> Vec<std::io::Result<(Sha256Digest, u64)>> {
    crate::par::map_costliest_first(
        paths,
        |p| fs::metadata(p).map_or(0, |m| m.len()),
        |p| Sha256Digest::of_file(p),
    )
}

/// Parses `attestation.dsse.json` and checks its payload type.
fn check_envelope(bytes: Option<&[u8]>, findings: &mut Findings) -> Option<Envelope> {
    let Some(bytes) = bytes else {
        findings.add(
            FindingCode::EnvelopeMalformed,
            ATTESTATION_FILE,
            "missing or not a readable regular file; the bundle is unsigned",
        );
        return None;
    };
    let envelope = match Envelope::parse(bytes) {
        Ok(envelope) => envelope,
        Err(e) => {
            findings.add(FindingCode::EnvelopeMalformed, ATTESTATION_FILE, e);
            return None;
        }
    };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        findings.add(
            FindingCode::PayloadTypeUnexpected,
            ATTESTATION_FILE,
            format_args!(
                "payloadType is {:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}",
                envelope.payload_type
            ),
        );
    }
    Some(envelope)
}

/// Parses `signer.pub.pem`.
fn check_signer_key(bytes: Option<&[u8]>, findings: &mut Findings) -> Option<VerifyingKey> {
    let Some(bytes) = bytes else {
        findings.add(
            FindingCode::SignerKeyMalformed,
            SIGNER_KEY_FILE,
            "missing or not a readable regular file",
        );
        return None;
    };
    let parsed = std::str::from_utf8(bytes)
        .map_err(|_| "file is not UTF-8 text".to_string())
        .and_then(|text| parse_public_key_pem(text).map_err(|e| e.to_string()));
    match parsed {
        Ok(key) => Some(key),
        Err(e) => {
            findings.add(FindingCode::SignerKeyMalformed, SIGNER_KEY_FILE, e);
            None
        }
    }
}

/// Checks the signature under the trusted key: the pinned one if any, else the
/// bundle's own. With a pinned key, a bundle key that differs from it, or a signature
/// that verifies only under the bundle key, is `key-not-trusted`.
fn check_signature(
    envelope: &Envelope,
    pinned: Option<&VerifyingKey>,
    bundle_key: Option<&VerifyingKey>,
    findings: &mut Findings,
) {
    let untrusted_bundle_key = match (pinned, bundle_key) {
        (Some(pinned), Some(bundle_key)) if pinned != bundle_key => {
            findings.add(
                FindingCode::KeyNotTrusted,
                SIGNER_KEY_FILE,
                format_args!(
                    "holds key {}, not the pinned key {}",
                    keyid(bundle_key),
                    keyid(pinned)
                ),
            );
            Some(bundle_key)
        }
        _ => None,
    };
    let Some(trusted) = pinned.or(bundle_key) else {
        return; // No key to verify with; already reported.
    };
    let Err(problems) = envelope.verify(trusted) else {
        return;
    };
    let signed_by_untrusted_key = untrusted_bundle_key.filter(|key| envelope.verify(key).is_ok());
    for problem in problems {
        match problem {
            SignatureProblem::Malformed { .. } => {
                findings.add(FindingCode::EnvelopeMalformed, ATTESTATION_FILE, problem)
            }
            SignatureProblem::KeyidMismatch { .. } => {
                findings.add(FindingCode::KeyidMismatch, ATTESTATION_FILE, problem)
            }
            SignatureProblem::Invalid { .. } => match signed_by_untrusted_key {
                Some(key) => findings.add(
                    FindingCode::KeyNotTrusted,
                    ATTESTATION_FILE,
                    format_args!(
                        "signed by the key in {SIGNER_KEY_FILE} ({}), not by the pinned key {}",
                        keyid(key),
                        keyid(trusted)
                    ),
                ),
                None => findings.add(FindingCode::SignatureInvalid, ATTESTATION_FILE, problem),
            },
        }
    }
}

/// Parses the payload as a Statement and compares its subjects with the files.
fn check_statement(envelope: &Envelope, scan: &Scan, findings: &mut Findings) -> Option<Statement> {
    // An undecodable payload has already been reported by `Envelope::parse`.
    let payload = envelope.payload_bytes().ok()?;
    let statement = match Statement::parse(&payload) {
        Ok(statement) => statement,
        Err(e) => {
            findings.add(FindingCode::StatementMalformed, ATTESTATION_FILE, e);
            return None;
        }
    };
    if statement.predicate_type != SLSA_PROVENANCE_V1 {
        findings.add(
            FindingCode::StatementMalformed,
            ATTESTATION_FILE,
            format_args!(
                "predicateType is {:?}, expected {SLSA_PROVENANCE_V1:?}",
                statement.predicate_type
            ),
        );
        return None;
    }
    let listed = statement
        .subject
        .iter()
        .map(|s| (s.name.as_str(), s.digest.sha256, None));
    check_listing(
        findings,
        "the attestation",
        &[ATTESTATION_FILE],
        listed,
        scan,
    );
    Some(statement)
}

/// Parses `manifest.json` and compares its entries with the files.
fn check_manifest(scan: &Scan, findings: &mut Findings) -> Option<Manifest> {
    let Some(bytes) = &scan.manifest else {
        findings.add(
            FindingCode::ManifestMalformed,
            MANIFEST_FILE,
            "missing or not a readable regular file",
        );
        return None;
    };
    let raw = match RawManifest::parse(bytes) {
        Ok(raw) => raw,
        Err(e) => {
            findings.add(FindingCode::ManifestMalformed, MANIFEST_FILE, e);
            return None;
        }
    };
    if raw.manifest_version != MANIFEST_VERSION {
        findings.add(
            FindingCode::ManifestMalformed,
            MANIFEST_FILE,
            ManifestError::Version(raw.manifest_version),
        );
    }
    if let Some((a, b)) = raw.first_unsorted() {
        findings.add(
            FindingCode::ManifestMalformed,
            MANIFEST_FILE,
            format_args!("entries are not sorted by path: {b:?} comes after {a:?}"),
        );
    }
    let listed = raw
        .files
        .iter()
        .map(|e| (e.path.as_str(), e.sha256, Some(e.size)));
    check_listing(
        findings,
        MANIFEST_FILE,
        &[MANIFEST_FILE, ATTESTATION_FILE],
        listed,
        scan,
    );
    raw.check().ok()
}

/// Compares a listing (attestation subjects or manifest entries: path, digest, and
/// size if listed) with the files on disk, which it must cover exactly, except the
/// `reserved` files it cannot cover.
fn check_listing<'a>(
    findings: &mut Findings,
    lister: &str,
    reserved: &[&str],
    listed: impl Iterator<Item = (&'a str, Sha256Digest, Option<u64>)>,
    scan: &Scan,
) {
    let listed: Vec<_> = listed.collect();
    for problem in entry_problems(listed.iter().map(|(path, ..)| *path)) {
        add_entry_problem(findings, lister, &problem);
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for &(path, digest, size) in &listed {
        // Duplicates and unsafe paths were reported above.
        if !seen.insert(path) || check_bundle_path(path).is_err() {
            continue;
        }
        if reserved.contains(&path) {
            findings.add(
                FindingCode::EntryReserved,
                path,
                format_args!("listed in {lister}, which cannot cover this file"),
            );
            continue;
        }
        let Some(file) = scan.files.get(path) else {
            // A symlink or special file in its place has been reported already.
            if !scan.rejected.contains(path) {
                findings.add(
                    FindingCode::FileMissing,
                    path,
                    format_args!("listed in {lister} but not in the bundle"),
                );
            }
            continue;
        };
        if file.digest != digest {
            findings.add(
                FindingCode::DigestMismatch,
                path,
                format_args!("sha256 is {}, but {lister} says {digest}", file.digest),
            );
        }
        if let Some(size) = size {
            if file.size != size {
                findings.add(
                    FindingCode::SizeMismatch,
                    path,
                    format_args!("{} bytes, but {lister} says {size}", file.size),
                );
            }
        }
    }
    for path in scan.files.keys() {
        if !seen.contains(path.as_str()) && !reserved.contains(&path.as_str()) {
            findings.add(
                FindingCode::FileUnexpected,
                path,
                format_args!("in the bundle but not listed in {lister}"),
            );
        }
    }
}

fn add_entry_problem(findings: &mut Findings, lister: &str, problem: &EntryProblem) {
    match problem {
        EntryProblem::Unsafe { path, problem } => findings.add(
            FindingCode::PathUnsafe,
            path,
            format_args!("in {lister}: {problem}"),
        ),
        EntryProblem::Duplicate { path, count } => findings.add(
            FindingCode::DuplicateEntry,
            path,
            format_args!("listed {count} times in {lister}"),
        ),
        EntryProblem::CaseCollision { first, second } => findings.add(
            FindingCode::CaseCollision,
            first,
            format_args!(
                "differs from {second:?} in {lister} only in letter case; they would be one \
                 file on a case-insensitive file system"
            ),
        ),
    }
}

/// Reads at most `cap` bytes of a file; a larger file is an error.
fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {cap}-byte limit for this file"),
        ));
    }
    Ok(bytes)
}

/// What [`sign_bundle_dir`] wrote.
#[derive(Debug, Clone)]
pub struct SignedBundle {
    /// Key id of the signing key.
    pub keyid: String,
    /// The manifest written to `manifest.json`.
    pub manifest: Manifest,
    /// The Statement signed into `attestation.dsse.json`.
    pub statement: Statement,
}

/// Why a bundle directory could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A bundle file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The directory could not be listed or hashed, or holds something a bundle may
    /// not (a symlink, a special file, an unsafe or case-colliding name).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Seals a directory of content files into a signed bundle.
///
/// Call it once every content file (spec, results, tables, inputs, report, …) is in
/// `dir`, normally a temporary directory that is renamed into place afterwards. It
/// writes, in this order:
///
/// 1. `signer.pub.pem`: the SPKI PEM of `key`'s public key;
/// 2. `manifest.json`: [`Manifest::from_dir`] of `dir` excluding `manifest.json` and
///    `attestation.dsse.json`;
/// 3. `attestation.dsse.json`: a DSSE envelope, signed by `key`, of an in-toto
///    Statement v1 whose subjects are every file in `dir` except the attestation
///    (sorted by path) and whose predicate is `predicate` with predicate type SLSA
///    Provenance v1 (build it with [`crate::bundle::dsse::provenance_predicate`]).
///
/// Existing copies of those three files are replaced. Fails if `dir` holds anything a
/// bundle may not (see [`crate::bundle::manifest::list_files`]). Each content file is
/// hashed once.
pub fn sign_bundle_dir(
    dir: &Path,
    key: &SigningKey,
    predicate: serde_json::Value,
) -> Result<SignedBundle, SignError> {
    sign_bundle_dir_with_known(dir, key, predicate, &BTreeMap::new())
}

/// [`sign_bundle_dir`], reusing digests the writer computed while writing files
/// (bundle path → digest and size), so large files are not read twice.
pub fn sign_bundle_dir_with_known(
    dir: &Path,
    key: &SigningKey,
    predicate: serde_json::Value,
    known: &BTreeMap<String, (Sha256Digest, u64)>,
) -> Result<SignedBundle, SignError> {
    let verifying = key.verifying_key();
    write_file(dir, SIGNER_KEY_FILE, public_key_pem(&verifying).as_bytes())?;

    let manifest = Manifest::from_dir_with_known(dir, &[MANIFEST_FILE, ATTESTATION_FILE], known)?;
    let manifest_bytes = manifest.to_json_bytes();
    write_file(dir, MANIFEST_FILE, &manifest_bytes)?;

    let mut subject: Vec<Subject> = manifest
        .files
        .iter()
        .map(|e| Subject {
            name: e.path.clone(),
            digest: DigestSet { sha256: e.sha256 },
        })
        .collect();
    subject.push(Subject {
        name: MANIFEST_FILE.to_string(),
        digest: DigestSet {
            sha256: Sha256Digest::of_bytes(&manifest_bytes),
        },
    });
    subject.sort_by(|a, b| a.name.cmp(&b.name));
    let statement = Statement::new(subject, SLSA_PROVENANCE_V1, predicate);
    write_attestation(dir, key, &statement)?;
    Ok(SignedBundle {
        keyid: keyid(&verifying),
        manifest,
        statement,
    })
}

/// Signs `statement` and writes it as `attestation.dsse.json`.
fn write_attestation(dir: &Path, key: &SigningKey, statement: &Statement) -> Result<(), SignError> {
    let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, &statement.to_json_bytes(), key);
    write_file(dir, ATTESTATION_FILE, &envelope.to_json_bytes())
}

/// Writes one file and fsyncs it, so that a bundle renamed into place afterwards is
/// complete on disk even if the machine stops.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SignError> {
    use std::io::Write as _;
    let path = dir.join(name);
    fs::File::create(&path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|source| SignError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::dsse::{provenance_predicate, ProvenanceInputs};
    use crate::bundle::manifest::ManifestEntry;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;

    fn signer() -> SigningKey {
        SigningKey::from_bytes(&[42u8; 32])
    }

    fn other_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn predicate(dir: &Path) -> serde_json::Value {
        let hash = |rel: &str| Sha256Digest::of_bytes(&fs::read(dir.join(rel)).unwrap());
        provenance_predicate(&ProvenanceInputs {
            contract_id: "doncaster-cohort-1".into(),
            spec_path_in_bundle: "spec.toml".into(),
            spec_sha256: hash("spec.toml"),
            inputs: vec![(
                "people".into(),
                "inputs/people.csv".into(),
                hash("inputs/people.csv"),
            )],
            embedded_inputs: true,
            tool_name: "outcome-audit".into(),
            tool_version: "0.1.0".into(),
            polars_version: "0.55.2".into(),
            polars_max_threads: 1,
            outcome_blind_matching: Some(true),
            started_on: "2024-01-02T03:04:05Z".into(),
            finished_on: "2024-01-02T03:04:06Z".into(),
            invocation_id: "test-run".into(),
        })
    }

    /// A small signed bundle: spec, results, a table and an embedded input.
    fn bundle() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("tables")).unwrap();
        fs::create_dir_all(root.join("inputs")).unwrap();
        fs::write(root.join("spec.toml"), "version = 1\n").unwrap();
        fs::write(root.join("results.json"), "{\"decision\":\"met\"}\n").unwrap();
        fs::write(
            root.join("tables/cohort.csv"),
            "person_id,eligible\n1,true\n",
        )
        .unwrap();
        fs::write(root.join("inputs/people.csv"), "offender_ref\n1\n").unwrap();
        sign_bundle_dir(root, &signer(), predicate(root)).unwrap();
        dir
    }

    fn codes(dir: &Path, pinned: Option<&VerifyingKey>) -> Vec<&'static str> {
        match verify_bundle(dir, pinned) {
            Ok(_) => Vec::new(),
            Err(failure) => failure.findings.iter().map(Finding::code).collect(),
        }
    }

    fn failure(dir: &Path, pinned: Option<&VerifyingKey>) -> VerifyFailure {
        match verify_bundle(dir, pinned) {
            Ok(_) => panic!("bundle verified but should not have"),
            Err(failure) => failure,
        }
    }

    /// Re-signs a Statement over whatever files are in the directory now (even ones a
    /// writer would refuse), leaving manifest.json and signer.pub.pem as they are: the
    /// attacker who holds the key, or a buggy writer.
    fn resign_statement(dir: &Path, key: &SigningKey) {
        let walked = walk(dir, &[ATTESTATION_FILE]).unwrap();
        let subject = walked
            .files
            .iter()
            .map(|f| Subject {
                name: f.path.clone(),
                digest: DigestSet {
                    sha256: Sha256Digest::of_file(&bundle_file_path(dir, &f.path))
                        .unwrap()
                        .0,
                },
            })
            .collect();
        let statement = Statement::new(subject, SLSA_PROVENANCE_V1, predicate(dir));
        write_attestation(dir, key, &statement).unwrap();
    }

    fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Vec<ManifestEntry>)) {
        let mut raw = RawManifest::parse(&fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
        edit(&mut raw.files);
        let manifest = Manifest {
            manifest_version: raw.manifest_version,
            files: raw.files,
        };
        fs::write(dir.join(MANIFEST_FILE), manifest.to_json_bytes()).unwrap();
    }

    fn read_envelope(dir: &Path) -> Envelope {
        Envelope::parse(&fs::read(dir.join(ATTESTATION_FILE)).unwrap()).unwrap()
    }

    fn write_envelope(dir: &Path, envelope: &Envelope) {
        fs::write(dir.join(ATTESTATION_FILE), envelope.to_json_bytes()).unwrap();
    }

    #[test]
    fn finding_codes_are_unique_kebab_case() {
        let mut seen = BTreeSet::new();
        for code in FindingCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{s}"
            );
        }
        // ALL is in declaration (report) order.
        assert!(FindingCode::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn signed_bundle_verifies_unpinned_and_pinned() {
        let dir = bundle();
        let unpinned = verify_bundle(dir.path(), None).unwrap();
        assert!(!unpinned.pinned());
        assert_eq!(unpinned.keyid(), keyid(&signer().verifying_key()));
        assert_eq!(unpinned.root(), dir.path());

        let pinned = verify_bundle(dir.path(), Some(&signer().verifying_key())).unwrap();
        assert!(pinned.pinned());
        assert_eq!(pinned.signer(), &signer().verifying_key());

        let subjects: Vec<_> = pinned
            .statement()
            .subject
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            subjects,
            [
                "inputs/people.csv",
                "manifest.json",
                "results.json",
                "signer.pub.pem",
                "spec.toml",
                "tables/cohort.csv"
            ]
        );
        let listed: Vec<_> = pinned
            .manifest()
            .files
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(
            listed,
            [
                "inputs/people.csv",
                "results.json",
                "signer.pub.pem",
                "spec.toml",
                "tables/cohort.csv"
            ]
        );
        assert_eq!(
            pinned.statement().predicate["runDetails"]["metadata"]["invocationId"],
            "test-run"
        );
    }

    #[test]
    fn signing_the_same_content_twice_gives_identical_bytes() {
        let a = bundle();
        let b = bundle();
        for name in [ATTESTATION_FILE, MANIFEST_FILE, SIGNER_KEY_FILE] {
            assert_eq!(
                fs::read(a.path().join(name)).unwrap(),
                fs::read(b.path().join(name)).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn one_changed_byte_in_a_content_file_is_named() {
        let dir = bundle();
        let path = dir.path().join("results.json");
        let mut bytes = fs::read(&path).unwrap();
        bytes[3] ^= 0x20;
        fs::write(&path, bytes).unwrap();
        let failure = failure(dir.path(), None);
        assert_eq!(
            failure
                .findings
                .iter()
                .map(Finding::code)
                .collect::<Vec<_>>(),
            ["digest-mismatch", "digest-mismatch"]
        );
        assert!(failure.findings.iter().all(|f| f.path == "results.json"));
        let text = failure.to_string();
        assert!(
            text.contains("digest-mismatch: results.json: sha256 is "),
            "{text}"
        );
        assert!(text.contains("but the attestation says"), "{text}");
        assert!(text.contains("but manifest.json says"), "{text}");
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn one_changed_byte_in_the_manifest_is_named() {
        let dir = bundle();
        let path = dir.path().join(MANIFEST_FILE);
        let text = fs::read_to_string(&path).unwrap();
        let digest = Sha256Digest::of_bytes(b"{\"decision\":\"met\"}\n").to_hex();
        let first = digest.chars().next().unwrap();
        let replacement = if first == '0' { '1' } else { '0' };
        let tampered = text.replacen(&digest, &format!("{replacement}{}", &digest[1..]), 1);
        assert_ne!(tampered, text);
        fs::write(&path, tampered).unwrap();
        let failure = failure(dir.path(), None);
        let found: Vec<_> = failure
            .findings
            .iter()
            .map(|f| (f.code(), f.path.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("digest-mismatch", "manifest.json"),
                ("digest-mismatch", "results.json")
            ]
        );
    }

    #[test]
    fn one_changed_byte_in_the_signed_payload_invalidates_the_signature() {
        let dir = bundle();
        let mut envelope = read_envelope(dir.path());
        let payload = envelope.payload_bytes().unwrap();
        let text = String::from_utf8(payload).unwrap();
        let tampered = text.replacen("doncaster", "doncastex", 1);
        assert_ne!(tampered, text);
        envelope.payload = BASE64.encode(tampered.as_bytes());
        write_envelope(dir.path(), &envelope);
        assert_eq!(codes(dir.path(), None), ["signature-invalid"]);
        assert_eq!(
            codes(dir.path(), Some(&signer().verifying_key())),
            ["signature-invalid"]
        );
    }

    #[test]
    fn one_changed_byte_in_the_signature_is_rejected() {
        let dir = bundle();
        let mut envelope = read_envelope(dir.path());
        let mut sig = BASE64.decode(&envelope.signatures[0].sig).unwrap();
        sig[0] ^= 1;
        envelope.signatures[0].sig = BASE64.encode(&sig);
        write_envelope(dir.path(), &envelope);
        assert_eq!(codes(dir.path(), None), ["signature-invalid"]);
        assert_eq!(
            codes(dir.path(), Some(&signer().verifying_key())),
            ["signature-invalid"]
        );
    }

    #[test]
    fn added_file_is_unexpected() {
        let dir = bundle();
        fs::write(dir.path().join("tables/extra.csv"), "x\n").unwrap();
        let failure = failure(dir.path(), None);
        let found: Vec<_> = failure
            .findings
            .iter()
            .map(|f| (f.code(), f.path.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("file-unexpected", "tables/extra.csv"),
                ("file-unexpected", "tables/extra.csv")
            ]
        );
    }

    #[test]
    fn removed_file_is_missing() {
        let dir = bundle();
        fs::remove_file(dir.path().join("inputs/people.csv")).unwrap();
        assert_eq!(codes(dir.path(), None), ["file-missing", "file-missing"]);
    }

    #[test]
    fn manifest_entry_with_dot_dot_is_unsafe_even_when_signed() {
        let dir = bundle();
        edit_manifest(dir.path(), |files| {
            files.insert(
                0,
                ManifestEntry {
                    path: "../outside.csv".into(),
                    sha256: Sha256Digest::of_bytes(b""),
                    size: 0,
                },
            );
        });
        resign_statement(dir.path(), &signer());
        let failure = failure(dir.path(), None);
        assert_eq!(
            failure
                .findings
                .iter()
                .map(Finding::code)
                .collect::<Vec<_>>(),
            ["path-unsafe"]
        );
        assert!(failure.to_string().contains("'..'"), "{failure}");
    }

    #[test]
    fn duplicated_manifest_entry_is_reported() {
        let dir = bundle();
        edit_manifest(dir.path(), |files| {
            let i = files.iter().position(|e| e.path == "results.json").unwrap();
            let copy = files[i].clone();
            files.insert(i, copy);
        });
        resign_statement(dir.path(), &signer());
        assert_eq!(codes(dir.path(), None), ["duplicate-entry"]);
    }

    #[test]
    fn case_variant_file_names_collide() {
        let dir = bundle();
        fs::write(dir.path().join("Results.json"), "{}\n").unwrap();
        // Even a bundle whose manifest and attestation list both spellings fails.
        edit_manifest(dir.path(), |files| {
            files.push(ManifestEntry {
                path: "Results.json".into(),
                sha256: Sha256Digest::of_bytes(b"{}\n"),
                size: 3,
            });
            files.sort_by(|a, b| a.path.cmp(&b.path));
        });
        resign_statement(dir.path(), &signer());
        let failure = failure(dir.path(), None);
        assert!(!failure.findings.is_empty());
        assert!(
            failure
                .findings
                .iter()
                .all(|f| f.code() == "case-collision"),
            "{failure}"
        );
        // Reported for the directory, the manifest and the attestation.
        assert_eq!(failure.findings.len(), 3, "{failure}");
        // And the writer refuses to sign such a directory in the first place.
        assert!(sign_bundle_dir(dir.path(), &signer(), serde_json::json!({})).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_in_the_bundle_is_rejected() {
        let dir = bundle();
        std::os::unix::fs::symlink("cohort.csv", dir.path().join("tables/link.csv")).unwrap();
        let failure = failure(dir.path(), None);
        assert_eq!(
            failure
                .findings
                .iter()
                .map(Finding::code)
                .collect::<Vec<_>>(),
            ["symlink"]
        );
        assert_eq!(failure.findings[0].path, "tables/link.csv");

        // A listed file replaced by a symlink to identical content is still rejected.
        let dir = bundle();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("results.json");
        fs::copy(dir.path().join("results.json"), &target).unwrap();
        fs::remove_file(dir.path().join("results.json")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("results.json")).unwrap();
        assert_eq!(codes(dir.path(), None), ["symlink"]);
    }

    #[cfg(unix)]
    #[test]
    fn special_file_in_the_bundle_is_rejected() {
        let dir = bundle();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        assert_eq!(codes(dir.path(), None), ["not-regular-file"]);
    }

    #[test]
    fn replaced_signer_key_with_matching_signature_fails_against_the_pinned_key() {
        let dir = bundle();
        let original = signer().verifying_key();
        // The attacker rewrites everything with their own key.
        sign_bundle_dir(dir.path(), &other_key(), predicate(dir.path())).unwrap();
        let found = codes(dir.path(), Some(&original));
        assert!(found.contains(&"key-not-trusted"), "{found:?}");
        assert!(found.contains(&"keyid-mismatch"), "{found:?}");
        assert!(!found.contains(&"signature-invalid"), "{found:?}");
        let text = failure(dir.path(), Some(&original)).to_string();
        assert!(
            text.contains(&keyid(&other_key().verifying_key())),
            "{text}"
        );
        assert!(text.contains(&keyid(&original)), "{text}");

        // Unpinned, the bundle is internally consistent: verify says so, and says
        // whose key it is, so the caller can report "signer is unpinned".
        let unpinned = verify_bundle(dir.path(), None).unwrap();
        assert!(!unpinned.pinned());
        assert_eq!(unpinned.keyid(), keyid(&other_key().verifying_key()));
    }

    #[test]
    fn verifying_against_another_pinned_key_fails() {
        let dir = bundle();
        let found = codes(dir.path(), Some(&other_key().verifying_key()));
        assert_eq!(
            found,
            ["key-not-trusted", "key-not-trusted", "keyid-mismatch"],
            "{found:?}"
        );
    }

    #[test]
    fn truncated_or_missing_envelope_is_malformed() {
        let dir = bundle();
        let path = dir.path().join(ATTESTATION_FILE);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(codes(dir.path(), None), ["envelope-malformed"]);

        fs::write(&path, b"").unwrap();
        assert_eq!(codes(dir.path(), None), ["envelope-malformed"]);

        fs::remove_file(&path).unwrap();
        assert_eq!(codes(dir.path(), None), ["envelope-malformed"]);
    }

    #[test]
    fn wrong_payload_type_and_non_statement_payloads_are_reported() {
        let dir = bundle();
        let statement_bytes = read_envelope(dir.path()).payload_bytes().unwrap();
        let envelope = sign_envelope("application/json", &statement_bytes, &signer());
        write_envelope(dir.path(), &envelope);
        assert_eq!(codes(dir.path(), None), ["payload-type-unexpected"]);

        let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{\"hello\":1}", &signer());
        write_envelope(dir.path(), &envelope);
        assert_eq!(codes(dir.path(), None), ["statement-malformed"]);

        let mut statement = Statement::parse(&statement_bytes).unwrap();
        statement.predicate_type = "https://example.com/other/v1".into();
        let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, &statement.to_json_bytes(), &signer());
        write_envelope(dir.path(), &envelope);
        assert_eq!(codes(dir.path(), None), ["statement-malformed"]);
    }

    #[test]
    fn keyid_naming_another_key_is_reported() {
        let dir = bundle();
        let mut envelope = read_envelope(dir.path());
        envelope.signatures[0].keyid = keyid(&other_key().verifying_key());
        write_envelope(dir.path(), &envelope);
        assert_eq!(codes(dir.path(), None), ["keyid-mismatch"]);
    }

    #[test]
    fn size_mismatch_in_a_signed_manifest_is_reported() {
        let dir = bundle();
        edit_manifest(dir.path(), |files| {
            for e in files.iter_mut().filter(|e| e.path == "spec.toml") {
                e.size += 1;
            }
        });
        resign_statement(dir.path(), &signer());
        assert_eq!(codes(dir.path(), None), ["size-mismatch"]);
    }

    #[test]
    fn malformed_or_missing_manifest_is_reported() {
        let dir = bundle();
        fs::write(dir.path().join(MANIFEST_FILE), "{\"manifest_version\":1}\n").unwrap();
        resign_statement(dir.path(), &signer());
        assert_eq!(codes(dir.path(), None), ["manifest-malformed"]);

        fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
        resign_statement(dir.path(), &signer());
        assert_eq!(codes(dir.path(), None), ["manifest-malformed"]);

        let dir = bundle();
        edit_manifest(dir.path(), |files| files.reverse());
        resign_statement(dir.path(), &signer());
        assert_eq!(codes(dir.path(), None), ["manifest-malformed"]);
    }

    #[test]
    fn manifest_listing_the_attestation_is_reported() {
        let dir = bundle();
        edit_manifest(dir.path(), |files| {
            files.insert(
                0,
                ManifestEntry {
                    path: ATTESTATION_FILE.into(),
                    sha256: Sha256Digest::of_bytes(b""),
                    size: 0,
                },
            );
        });
        resign_statement(dir.path(), &signer());
        assert_eq!(codes(dir.path(), None), ["entry-reserved"]);
    }

    #[test]
    fn missing_or_broken_signer_key_is_reported() {
        let dir = bundle();
        fs::write(dir.path().join(SIGNER_KEY_FILE), "not a key\n").unwrap();
        let found = codes(dir.path(), None);
        assert!(found.contains(&"signer-key-malformed"), "{found:?}");
        assert!(found.contains(&"digest-mismatch"), "{found:?}");

        fs::remove_file(dir.path().join(SIGNER_KEY_FILE)).unwrap();
        let found = codes(dir.path(), Some(&signer().verifying_key()));
        assert_eq!(
            found,
            ["signer-key-malformed", "file-missing", "file-missing"],
            "{found:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_in_a_stable_order() {
        let dir = bundle();
        fs::write(dir.path().join("results.json"), "{}\n").unwrap();
        fs::write(dir.path().join("zz-extra.txt"), "x").unwrap();
        fs::remove_file(dir.path().join("spec.toml")).unwrap();
        let mut envelope = read_envelope(dir.path());
        envelope.signatures[0].sig = BASE64.encode([0u8; 64]);
        write_envelope(dir.path(), &envelope);

        let first = failure(dir.path(), None);
        let second = failure(dir.path(), None);
        assert_eq!(first, second);
        let text = first.to_string();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), first.findings.len());
        let order: Vec<_> = first.findings.iter().map(Finding::code).collect();
        assert_eq!(
            order,
            [
                "signature-invalid",
                "file-missing",
                "file-missing",
                "file-unexpected",
                "file-unexpected",
                "digest-mismatch",
                "digest-mismatch",
                "size-mismatch"
            ]
        );
        assert!(lines[0].starts_with("signature-invalid: attestation.dsse.json: "));
    }

    #[test]
    fn missing_bundle_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(codes(&dir.path().join("nope"), None), ["bundle-unreadable"]);
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        assert_eq!(codes(&file, None), ["bundle-unreadable"]);
    }
}
