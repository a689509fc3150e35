//! The bundle manifest (`manifest.json`) and the rules for the paths inside a bundle.
//!
//! The manifest is the plain, tool-independent list of what a bundle holds: every file's
//! bundle-relative path, SHA-256 and size, sorted and written byte-for-byte the same on
//! every run, so anyone can recheck a bundle with `sha256sum` and a JSON reader. This
//! module also owns the one directory walker (used by the writer, the signer and
//! `verify`) and the one definition of a safe bundle path, so that what is written and
//! what is checked can never drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;

/// File name of the manifest at the root of a bundle.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The only manifest format version this code writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// `manifest.json`: every file of a bundle (except the manifest and the attestation),
/// sorted by path in byte order.
///
/// ```json
/// {
///   "manifest_version": 1,
///   "files": [
///     { "path": "results.json", "sha256": "9f2c…", "size": 1234 }
///   ]
/// }
/// ```
///
/// [`Manifest::from_dir`] and [`Manifest::parse`] only return manifests whose paths are
/// safe, unique, free of case-variant collisions and sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Always [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// The files, sorted by `path` in byte order.
    pub files: Vec<ManifestEntry>,
}

/// One file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Bundle-relative path with `/` separators.
    pub path: String,
    /// SHA-256 of the file's bytes.
    pub sha256: Sha256Digest,
    /// Size of the file in bytes.
    pub size: u64,
}

/// `manifest.json` exactly as written, before its entries have been checked.
///
/// `verify` uses this to report every problem with the entries as a separate finding;
/// [`Manifest::parse`] turns it into a checked [`Manifest`] or an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    /// Format version as written.
    pub manifest_version: u32,
    /// Entries as written, in the order written.
    pub files: Vec<ManifestEntry>,
}

/// Why a manifest could not be built, read or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bundle directory could not be walked or a file in it could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The bundle directory holds something that may not be in a bundle.
    #[error("{path}: {kind}; a bundle may only hold regular files and directories")]
    Rejected {
        /// The offending entry.
        path: PathBuf,
        /// What it is.
        kind: RejectKind,
    },
    /// The file names in the directory, or the manifest entries, break the path rules.
    #[error("bundle path rule broken: {0}")]
    Entry(EntryProblem),
    /// The manifest is not well-formed JSON of the expected shape.
    #[error("manifest.json is not a valid manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// The manifest has a version this code does not know.
    #[error("manifest.json has manifest_version {0}; only version 1 is supported")]
    Version(u32),
    /// The manifest entries are not sorted by path.
    #[error("manifest.json entries are not sorted by path: {0:?} comes after {1:?}")]
    Unsorted(String, String),
}

/// Why a bundle-relative path is unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// The path is empty.
    Empty,
    /// The path starts with `/`.
    Absolute,
    /// The path contains `\`.
    Backslash,
    /// The path contains NUL.
    Nul,
    /// The path has an empty component (`a//b`, a trailing `/`).
    EmptyComponent,
    /// The path has a `.` component.
    CurrentDir,
    /// The path has a `..` component.
    ParentDir,
    /// The on-disk name is not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "path is empty",
            Self::Absolute => "path is absolute",
            Self::Backslash => "path contains a backslash; only '/' separates components",
            Self::Nul => "path contains a NUL character",
            Self::EmptyComponent => "path has an empty component",
            Self::CurrentDir => "path has a '.' component",
            Self::ParentDir => "path has a '..' component",
            Self::NotUtf8 => "path is not valid UTF-8",
        })
    }
}

/// Checks that `path` is a safe bundle-relative path: non-empty, relative, `/` as the
/// only separator (no `\`), no empty, `.` or `..` components and no NUL. (A `&str` is
/// valid UTF-8 by construction; the walker reports non-UTF-8 names as
/// [`PathProblem::NotUtf8`].)
pub fn check_bundle_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if path.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    for component in path.split('/') {
        match component {
            "" => return Err(PathProblem::EmptyComponent),
            "." => return Err(PathProblem::CurrentDir),
            ".." => return Err(PathProblem::ParentDir),
            _ => {}
        }
    }
    Ok(())
}

/// A problem with a list of bundle paths (manifest entries, attestation subjects, or the
/// files found on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// A path breaks [`check_bundle_path`].
    Unsafe {
        /// The path as listed.
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// The same path is listed more than once.
    Duplicate {
        /// The repeated path.
        path: String,
        /// How many times it is listed.
        count: usize,
    },
    /// Two different paths (or directories on them) differ only in letter case, so they
    /// would be one file on a case-insensitive file system.
    CaseCollision {
        /// One spelling.
        first: String,
        /// Another spelling.
        second: String,
    },
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsafe { path, problem } => write!(f, "{path:?}: {problem}"),
            Self::Duplicate { path, count } => write!(f, "{path:?} is listed {count} times"),
            Self::CaseCollision { first, second } => write!(
                f,
                "{first:?} and {second:?} differ only in letter case and would collide on a \
                 case-insensitive file system"
            ),
        }
    }
}

/// Every problem with a list of bundle paths: unsafe paths, duplicates and case-variant
/// collisions (see [`case_collisions`]), in a deterministic order.
pub fn entry_problems<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<EntryProblem> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for path in paths {
        *counts.entry(path).or_default() += 1;
    }
    let mut problems = Vec::new();
    for (&path, &count) in &counts {
        if let Err(problem) = check_bundle_path(path) {
            problems.push(EntryProblem::Unsafe {
                path: path.to_string(),
                problem,
            });
        }
        if count > 1 {
            problems.push(EntryProblem::Duplicate {
                path: path.to_string(),
                count,
            });
        }
    }
    for (first, second) in case_collisions(counts.keys().copied()) {
        problems.push(EntryProblem::CaseCollision { first, second });
    }
    problems
}

/// Pairs of distinct paths that collide when letter case is ignored: either the whole
/// paths (`Results.json`, `results.json`) or directories on them (`Tables/a.csv`,
/// `tables/b.csv`). Each colliding group is reported once, as its two smallest
/// spellings in byte order.
pub fn case_collisions<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut by_folded: BTreeMap<String, BTreeSet<&'a str>> = BTreeMap::new();
    for path in paths {
        // The path itself and every directory prefix of it.
        let prefixes = path
            .match_indices('/')
            .map(|(i, _)| &path[..i])
            .chain(std::iter::once(path));
        for prefix in prefixes {
            by_folded
                .entry(prefix.to_lowercase())
                .or_default()
                .insert(prefix);
        }
    }
    by_folded
        .into_values()
        .filter_map(|spellings| {
            let mut it = spellings.into_iter();
            match (it.next(), it.next()) {
                (Some(a), Some(b)) => Some((a.to_string(), b.to_string())),
                _ => None,
            }
        })
        .collect()
}

/// What a directory entry that may not be in a bundle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO, socket, device or anything else that is not a regular file or directory.
    NotRegularFile,
    /// A name that is not valid UTF-8 (cannot be named in a manifest).
    NotUtf8,
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Symlink => "is a symbolic link",
            Self::NotRegularFile => "is not a regular file or directory",
            Self::NotUtf8 => "has a name that is not valid UTF-8",
        })
    }
}

/// A regular file found by [`walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedFile {
    /// Bundle-relative path with `/` separators.
    pub path: String,
    /// Size reported by the file system when walked.
    pub size: u64,
}

/// An entry found by [`walk`] that may not be in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Bundle-relative path with `/` separators (lossy if the name is not UTF-8).
    pub path: String,
    /// What it is.
    pub kind: RejectKind,
}

/// Everything under a bundle directory: the regular files, and whatever else was found
/// there. Both lists are sorted by path in byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// Regular files.
    pub files: Vec<WalkedFile>,
    /// Symlinks, special files and non-UTF-8 names. Symlinks are never followed.
    pub rejected: Vec<Rejected>,
}

/// Walks `root` recursively without following symlinks and lists what is there.
///
/// Entries whose bundle-relative path is in `exclude` (exact match, e.g.
/// `"manifest.json"`) are skipped. Directories themselves are not listed. Errors only
/// when a directory cannot be read.
pub fn walk(root: &Path, exclude: &[&str]) -> Result<Walk, ManifestError> {
    let mut out = Walk::default();
    walk_into(root, "", exclude, &mut out)?;
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.rejected.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    exclude: &[&str],
    out: &mut Walk,
) -> Result<(), ManifestError> {
    let io_err = |path: &Path, source: io::Error| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        entries.push(entry);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let full = entry.path();
        let (name, utf8) = match name.to_str() {
            Some(s) => (s.to_string(), true),
            None => (name.to_string_lossy().into_owned(), false),
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if exclude.contains(&rel.as_str()) {
            continue;
        }
        // `DirEntry::file_type` does not follow symlinks.
        let file_type = entry.file_type().map_err(|e| io_err(&full, e))?;
        let reject = |kind| Rejected {
            path: rel.clone(),
            kind,
        };
        if file_type.is_symlink() {
            out.rejected.push(reject(RejectKind::Symlink));
        } else if !utf8 {
            out.rejected.push(reject(RejectKind::NotUtf8));
        } else if file_type.is_dir() {
            walk_into(&full, &rel, exclude, out)?;
        } else if file_type.is_file() {
            let size = entry.metadata().map_err(|e| io_err(&full, e))?.len();
            out.files.push(WalkedFile { path: rel, size });
        } else {
            out.rejected.push(reject(RejectKind::NotRegularFile));
        }
    }
    Ok(())
}

/// The regular files under `root` (minus `exclude`), sorted by path, for building a
/// manifest or attestation. Unlike [`walk`], anything that may not be in a bundle is an
/// error: a symlink, a special file, a non-UTF-8 name, an unsafe name or two names that
/// differ only in case.
pub fn list_files(root: &Path, exclude: &[&str]) -> Result<Vec<WalkedFile>, ManifestError> {
    let walked = walk(root, exclude)?;
    if let Some(r) = walked.rejected.into_iter().next() {
        return Err(ManifestError::Rejected {
            path: root.join(&r.path),
            kind: r.kind,
        });
    }
    if let Some(problem) = entry_problems(walked.files.iter().map(|f| f.path.as_str()))
        .into_iter()
        .next()
    {
        return Err(ManifestError::Entry(problem));
    }
    Ok(walked.files)
}

/// The on-disk location of a bundle-relative path (which must be safe).
pub fn bundle_file_path(root: &Path, rel: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(rel.split('/'));
    path
}

impl Manifest {
    /// Builds the manifest of the directory `root`: every regular file except the
    /// bundle-relative paths in `exclude`, hashed by streaming. Fails on anything
    /// [`list_files`] rejects.
    pub fn from_dir(root: &Path, exclude: &[&str]) -> Result<Manifest, ManifestError> {
        Self::from_dir_with_known(root, exclude, &BTreeMap::new())
    }

    /// [`Manifest::from_dir`], taking the digest of a file from `known` (bundle path →
    /// digest and size) instead of reading it again, when the writer hashed the bytes as
    /// it wrote them and the size on disk still matches.
    pub fn from_dir_with_known(
        root: &Path,
        exclude: &[&str],
        known: &BTreeMap<String, (Sha256Digest, u64)>,
    ) -> Result<Manifest, ManifestError> {
        let mut files = Vec::new();
        for file in list_files(root, exclude)? {
            let on_disk = bundle_file_path(root, &file.path);
            let known = known.get(&file.path).filter(|(_, size)| *size == file.size);
            let (sha256, size) = match known {
                Some(&(digest, size)) => (digest, size),
                None => Sha256Digest::of_file(&on_disk).map_err(|source| ManifestError::Io {
                    path: on_disk,
                    source,
                })?,
            };
            files.push(ManifestEntry {
                path: file.path,
                sha256,
                size,
            });
        }
        Ok(Manifest {
            manifest_version: MANIFEST_VERSION,
            files,
        })
    }

    /// The canonical bytes of `manifest.json`: pretty JSON, fields in declaration order,
    /// entries in path order, trailing newline.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self)
            // Only strings, digests (serialised as strings) and integers: cannot fail.
            .expect("serialising a manifest cannot fail");
        bytes.push(b'\n');
        bytes
    }

    /// Parses and checks `manifest.json`: unknown fields, an unknown version, unsafe,
    /// duplicated or case-colliding paths and unsorted entries are all errors.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        RawManifest::parse(bytes)?.check()
    }

    /// Looks up an entry by path.
    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.files
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .and_then(|i| self.files.get(i))
    }
}

impl RawManifest {
    /// Parses `manifest.json` as JSON of the manifest's shape, rejecting unknown fields
    /// and malformed digests, without checking the entries.
    pub fn parse(bytes: &[u8]) -> Result<RawManifest, ManifestError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Every problem with the entries' paths (see [`entry_problems`]).
    pub fn entry_problems(&self) -> Vec<EntryProblem> {
        entry_problems(self.files.iter().map(|e| e.path.as_str()))
    }

    /// The first two consecutive entries out of byte order, if any (duplicates are
    /// reported by [`RawManifest::entry_problems`], not here).
    pub fn first_unsorted(&self) -> Option<(&str, &str)> {
        self.files
            .windows(2)
            .find(|w| w[0].path > w[1].path)
            .map(|w| (w[0].path.as_str(), w[1].path.as_str()))
    }

    /// Turns the manifest as written into a checked [`Manifest`].
    pub fn check(self) -> Result<Manifest, ManifestError> {
        if self.manifest_version != MANIFEST_VERSION {
            return Err(ManifestError::Version(self.manifest_version));
        }
        if let Some(problem) = self.entry_problems().into_iter().next() {
            return Err(ManifestError::Entry(problem));
        }
        if let Some((a, b)) = self.first_unsorted() {
            return Err(ManifestError::Unsorted(b.to_string(), a.to_string()));
        }
        Ok(Manifest {
            manifest_version: self.manifest_version,
            files: self.files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let path = bundle_file_path(root, rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn safe_paths_are_relative_slash_separated_and_plain() {
        for ok in [
            "results.json",
            "tables/cohort.csv",
            "inputs/a b.csv",
            "a/.hidden",
            "a..b",
        ] {
            assert_eq!(check_bundle_path(ok), Ok(()), "{ok}");
        }
        let bad = [
            ("", PathProblem::Empty),
            ("/etc/passwd", PathProblem::Absolute),
            ("tables\\cohort.csv", PathProblem::Backslash),
            ("a\0b", PathProblem::Nul),
            ("a//b", PathProblem::EmptyComponent),
            ("a/", PathProblem::EmptyComponent),
            ("./a", PathProblem::CurrentDir),
            ("a/./b", PathProblem::CurrentDir),
            ("../outside", PathProblem::ParentDir),
            ("a/../../b", PathProblem::ParentDir),
            ("..", PathProblem::ParentDir),
        ];
        for (path, expected) in bad {
            assert_eq!(check_bundle_path(path), Err(expected), "{path:?}");
        }
    }

    #[test]
    fn case_variants_of_files_and_directories_collide() {
        assert_eq!(
            case_collisions(["Results.json", "results.json", "spec.toml"]),
            vec![("Results.json".to_string(), "results.json".to_string())]
        );
        assert_eq!(
            case_collisions(["Tables/a.csv", "tables/b.csv"]),
            vec![("Tables".to_string(), "tables".to_string())]
        );
        assert!(case_collisions(["a.csv", "b.csv", "tables/a.csv"]).is_empty());
    }

    #[test]
    fn entry_problems_reports_every_problem_once() {
        let problems = entry_problems(["a", "../b", "a", "A", "c"]);
        assert_eq!(
            problems,
            vec![
                EntryProblem::Unsafe {
                    path: "../b".into(),
                    problem: PathProblem::ParentDir
                },
                EntryProblem::Duplicate {
                    path: "a".into(),
                    count: 2
                },
                EntryProblem::CaseCollision {
                    first: "A".into(),
                    second: "a".into()
                },
            ]
        );
    }

    #[test]
    fn from_dir_lists_files_in_byte_order_with_digests_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a/b", b"ab");
        write(root, "a-c", b"a-c");
        write(root, "spec.toml", b"version = 1\n");
        write(root, "manifest.json", b"old");
        fs::create_dir_all(root.join("empty-dir")).unwrap();
        let manifest = Manifest::from_dir(root, &[MANIFEST_FILE]).unwrap();
        let paths: Vec<_> = manifest.files.iter().map(|e| e.path.as_str()).collect();
        // '-' (0x2d) sorts before '/' (0x2f): byte order of the whole path.
        assert_eq!(paths, ["a-c", "a/b", "spec.toml"]);
        let spec = manifest.get("spec.toml").unwrap();
        assert_eq!(spec.size, 12);
        assert_eq!(spec.sha256, Sha256Digest::of_bytes(b"version = 1\n"));
        assert!(manifest.get("manifest.json").is_none());
    }

    #[test]
    fn manifest_bytes_are_canonical_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "results.json", b"{}\n");
        write(dir.path(), "tables/cohort.csv", b"id\n1\n");
        let first = Manifest::from_dir(dir.path(), &[]).unwrap().to_json_bytes();
        let second = Manifest::from_dir(dir.path(), &[]).unwrap().to_json_bytes();
        assert_eq!(first, second);
        let text = String::from_utf8(first.clone()).unwrap();
        assert!(text.starts_with("{\n  \"manifest_version\": 1,\n  \"files\": [\n"));
        assert!(text.ends_with("}\n"));
        let expected = format!(
            "    {{\n      \"path\": \"results.json\",\n      \"sha256\": \"{}\",\n      \"size\": 3\n    }},",
            Sha256Digest::of_bytes(b"{}\n")
        );
        assert!(text.contains(&expected), "{text}");
        let parsed = Manifest::parse(&first).unwrap();
        assert_eq!(parsed.to_json_bytes(), first);
    }

    #[cfg(unix)]
    #[test]
    fn from_dir_rejects_symlinks_and_special_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "real.csv", b"x");
        std::os::unix::fs::symlink("real.csv", dir.path().join("link.csv")).unwrap();
        let err = Manifest::from_dir(dir.path(), &[]).unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::Rejected {
                    kind: RejectKind::Symlink,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("link.csv"));

        let dir = tempfile::tempdir().unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        let err = Manifest::from_dir(dir.path(), &[]).unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::Rejected {
                    kind: RejectKind::NotRegularFile,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn walk_reports_rejects_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x/y.csv", b"1");
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc", dir.path().join("x/etc")).unwrap();
        let walked = walk(dir.path(), &[]).unwrap();
        assert_eq!(walked.files.len(), 1);
        #[cfg(unix)]
        assert_eq!(
            walked.rejected,
            vec![Rejected {
                path: "x/etc".into(),
                kind: RejectKind::Symlink
            }]
        );
    }

    #[test]
    fn parse_is_strict() {
        let digest = Sha256Digest::of_bytes(b"").to_hex();
        let entry = |p: &str| format!(r#"{{"path":"{p}","sha256":"{digest}","size":0}}"#);
        let doc = |entries: &[String]| {
            format!(
                r#"{{"manifest_version":1,"files":[{}]}}"#,
                entries.join(",")
            )
        };
        assert!(Manifest::parse(doc(&[entry("a"), entry("b")]).as_bytes()).is_ok());

        let unknown = r#"{"manifest_version":1,"files":[],"extra":true}"#;
        assert!(matches!(
            Manifest::parse(unknown.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        let unknown_entry = format!(
            r#"{{"manifest_version":1,"files":[{{"path":"a","sha256":"{digest}","size":0,"mode":420}}]}}"#
        );
        assert!(matches!(
            Manifest::parse(unknown_entry.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        let bad_digest = r#"{"manifest_version":1,"files":[{"path":"a","sha256":"xyz","size":0}]}"#;
        assert!(matches!(
            Manifest::parse(bad_digest.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        let missing = r#"{"manifest_version":1}"#;
        assert!(matches!(
            Manifest::parse(missing.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            Manifest::parse(b"{\"manifest_version\":1,"),
            Err(ManifestError::Json(_))
        ));
        let v2 = r#"{"manifest_version":2,"files":[]}"#;
        assert!(matches!(
            Manifest::parse(v2.as_bytes()),
            Err(ManifestError::Version(2))
        ));

        let dup = doc(&[entry("a"), entry("a")]);
        assert!(matches!(
            Manifest::parse(dup.as_bytes()),
            Err(ManifestError::Entry(EntryProblem::Duplicate { .. }))
        ));
        let dotdot = doc(&[entry("../a")]);
        assert!(matches!(
            Manifest::parse(dotdot.as_bytes()),
            Err(ManifestError::Entry(EntryProblem::Unsafe { .. }))
        ));
        let case = doc(&[entry("A"), entry("a")]);
        assert!(matches!(
            Manifest::parse(case.as_bytes()),
            Err(ManifestError::Entry(EntryProblem::CaseCollision { .. }))
        ));
        let unsorted = doc(&[entry("b"), entry("a")]);
        assert!(matches!(
            Manifest::parse(unsorted.as_bytes()),
            Err(ManifestError::Unsorted(..))
        ));
    }
}
