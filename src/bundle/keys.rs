//! Ed25519 signing keys: how they are made, stored, found and named.
//!
//! An evidence bundle is only as trustworthy as the key that signed it, so this module
//! keeps the rules for that key in one place. Private keys are PKCS#8 PEM files that are
//! owner-only (mode 0600) from the moment they exist and are never silently overwritten;
//! public keys travel as SPKI PEM (`signer.pub.pem` in every bundle); and a key is named
//! by its securesystemslib key id, so the id we print is the one an evaluator's
//! off-the-shelf DSSE tooling computes for the same key.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::digest::Sha256Digest;

/// Environment variable naming the directory that holds the default signing key.
pub const HOME_ENV: &str = "OUTCOME_AUDIT_HOME";

/// File name of the default signing key inside its directory.
pub const DEFAULT_KEY_FILE: &str = "signing-key.pem";

/// Largest key file we are willing to read; real PEM keys are a few hundred bytes.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410 section 4): SEQUENCE,
/// AlgorithmIdentifier { id-Ed25519 }, BIT STRING of 33 bytes with 0 unused bits.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a key could not be created, stored, found or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The key file (or its directory) could not be written.
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A key file is already there and overwriting was not asked for.
    #[error(
        "key file {path} already exists; refusing to overwrite it (use --force to replace it)"
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file is not a private key we can use.
    #[error("{path}: not a PKCS#8 ed25519 private key PEM ({reason})")]
    NotPrivateKey {
        /// The key file.
        path: PathBuf,
        /// What the PEM/DER decoder said.
        reason: String,
    },
    /// The file is not a public key we can use.
    #[error("{path}: not an SPKI ed25519 public key PEM ({reason})")]
    NotPublicKeyFile {
        /// The key file.
        path: PathBuf,
        /// What the PEM/DER decoder said.
        reason: String,
    },
    /// The text is not a public key we can use.
    #[error("not an SPKI ed25519 public key PEM ({reason})")]
    NotPublicKey {
        /// What the PEM/DER decoder said.
        reason: String,
    },
    /// The key could not be encoded as PKCS#8 PEM.
    #[error("cannot encode the private key as PKCS#8 PEM: {reason}")]
    Encode {
        /// What the encoder said.
        reason: String,
    },
    /// None of the environment variables that locate the default key is set.
    #[error(
        "cannot locate the default signing key: set {HOME_ENV}, XDG_CONFIG_HOME or HOME, \
         or pass a key file explicitly"
    )]
    NoKeyHome,
}

/// Makes a new ed25519 signing key from the operating system's random number generator.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

/// Writes `key` to `path` as an unencrypted PKCS#8 v1 PEM (RFC 8410 section 7, the form
/// `openssl genpkey -algorithm ed25519` writes).
///
/// Missing parent directories are created (owner-only on Unix). The key is written to a
/// temporary file in the same directory that is created with mode 0600, then renamed
/// into place, so the key is never readable by others and a crash leaves no half key.
/// An existing file at `path` is an error ([`KeyError::Exists`]) unless `force`.
pub fn write_private_key(path: &Path, key: &SigningKey, force: bool) -> Result<(), KeyError> {
    let write_err = |source: io::Error| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(KeyError::Exists {
            path: path.to_path_buf(),
        });
    }
    let pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| KeyError::Encode {
        reason: e.to_string(),
    })?;

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).map_err(write_err)?;

    let mut builder = tempfile::Builder::new();
    builder.prefix(".signing-key-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder.tempfile_in(&dir).map_err(write_err)?;
    tmp.write_all(pem.as_bytes()).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    let persisted = if force {
        tmp.persist(path)
    } else {
        tmp.persist_noclobber(path)
    };
    match persisted {
        Ok(_) => Ok(()),
        Err(e) if !force && e.error.kind() == io::ErrorKind::AlreadyExists => {
            Err(KeyError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(e) => Err(write_err(e.error)),
    }
}

/// Creates `dir` and its missing parents; on Unix the directories created are 0700.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Reads a PKCS#8 PEM ed25519 private key (v1, or v2 with a matching public key).
///
/// On Unix a key file that group or others can read is still loaded, with a warning.
pub fn load_private_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = read_small_text(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "signing key file is readable by group or others; chmod 600 it"
                );
            }
        }
    }
    SigningKey::from_pkcs8_pem(&text).map_err(|e| KeyError::NotPrivateKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The SPKI PEM (`-----BEGIN PUBLIC KEY-----`) of a public key, with `\n` line endings
/// and a trailing newline: the exact bytes of a bundle's `signer.pub.pem`.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    let mut der = Vec::with_capacity(44);
    der.extend_from_slice(&ED25519_SPKI_PREFIX);
    der.extend_from_slice(key.as_bytes());
    // 44 DER bytes are 60 base64 characters: one line, under PEM's 64-column limit.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// Parses an SPKI PEM ed25519 public key.
pub fn parse_public_key_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError::NotPublicKey {
        reason: e.to_string(),
    })
}

/// Reads an SPKI PEM ed25519 public key file.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = read_small_text(path)?;
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| KeyError::NotPublicKeyFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads a key file of at most [`MAX_KEY_FILE_BYTES`] as UTF-8 text.
fn read_small_text(path: &Path) -> Result<String, KeyError> {
    let read_err = |source: io::Error| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file is larger than {MAX_KEY_FILE_BYTES} bytes, too large for a key"),
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        read_err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file is not UTF-8 text, so not a PEM key",
        ))
    })
}

/// The securesystemslib default key id of an ed25519 public key: lowercase hex SHA-256
/// of the compact, sorted-key JSON
/// `{"keytype":"ed25519","keyval":{"public":"<64 hex>"},"scheme":"ed25519"}`.
///
/// This is the `keyid` in our DSSE signatures and the key "fingerprint" we print.
pub fn keyid(key: &VerifyingKey) -> String {
    let canonical = format!(
        r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
        hex(key.as_bytes())
    );
    Sha256Digest::of_bytes(canonical.as_bytes()).to_hex()
}

/// Lowercase hex of a byte string.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Where the default signing key lives: `$OUTCOME_AUDIT_HOME/signing-key.pem`, else
/// `$XDG_CONFIG_HOME/outcome-audit/signing-key.pem`, else
/// `$HOME/.config/outcome-audit/signing-key.pem`. Empty variables count as unset.
pub fn default_key_path() -> Result<PathBuf, KeyError> {
    default_key_path_with(|name| std::env::var_os(name))
}

/// [`default_key_path`] with the environment supplied by `lookup`, so the rules can be
/// tested without touching the process environment.
pub fn default_key_path_with(
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, KeyError> {
    let get = |name: &str| lookup(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = get(HOME_ENV) {
        return Ok(home.join(DEFAULT_KEY_FILE));
    }
    if let Some(config) = get("XDG_CONFIG_HOME") {
        return Ok(config.join("outcome-audit").join(DEFAULT_KEY_FILE));
    }
    if let Some(home) = get("HOME") {
        return Ok(home
            .join(".config")
            .join("outcome-audit")
            .join(DEFAULT_KEY_FILE));
    }
    Err(KeyError::NoKeyHome)
}

/// Loads the default signing key, creating it (owner-only) on first use. Returns the
/// key, its path and whether it was created just now.
pub fn load_or_create_default() -> Result<(SigningKey, PathBuf, bool), KeyError> {
    let path = default_key_path()?;
    let (key, created) = load_or_create(&path)?;
    Ok((key, path, created))
}

/// Loads the key at `path`, or creates it there if there is no file. Returns the key
/// and whether it was created. If another process creates the file first, its key is
/// loaded rather than overwritten.
pub fn load_or_create(path: &Path) -> Result<(SigningKey, bool), KeyError> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok((load_private_key(path)?, false));
    }
    let key = generate();
    match write_private_key(path, &key, false) {
        Ok(()) => {
            tracing::info!(path = %path.display(), keyid = %keyid(&key.verifying_key()), "created signing key");
            Ok((key, true))
        }
        Err(KeyError::Exists { .. }) => Ok((load_private_key(path)?, false)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePublicKey;

    /// RFC 8032 section 7.1, TEST 1: secret key (seed) and its public key.
    const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn seed(hex_str: &str) -> [u8; 32] {
        let digest: Sha256Digest = hex_str.parse().unwrap();
        digest.0
    }

    pub(crate) fn rfc8032_key() -> SigningKey {
        SigningKey::from_bytes(&seed(RFC8032_SEED))
    }

    #[test]
    fn keyid_matches_securesystemslib_rule_for_rfc8032_key() {
        let key = rfc8032_key().verifying_key();
        assert_eq!(hex(key.as_bytes()), RFC8032_PUBLIC);
        // Derived independently in Python 3 from the RFC 8032 public key:
        //   import hashlib, json
        //   d = {"keytype": "ed25519", "scheme": "ed25519",
        //        "keyval": {"public": "d75a9801...f707511a"}}
        //   hashlib.sha256(json.dumps(d, sort_keys=True,
        //                  separators=(",", ":")).encode()).hexdigest()
        // and confirmed equal to the keyid securesystemslib 1.6.0 computes for this key
        // (SSlibKey.from_crypto / CryptoSigner), which also verified our envelopes.
        assert_eq!(
            keyid(&key),
            "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
        );
    }

    #[test]
    fn public_key_pem_is_the_standard_spki_encoding_and_round_trips() {
        let key = rfc8032_key().verifying_key();
        let ours = public_key_pem(&key);
        let theirs = key.to_public_key_pem(LineEnding::LF).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(parse_public_key_pem(&ours).unwrap(), key);
        assert!(parse_public_key_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )
        .is_err());
    }

    #[test]
    fn private_key_file_is_owner_only_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/signing-key.pem");
        let key = rfc8032_key();
        write_private_key(&path, &key, false).unwrap();
        let loaded = load_private_key(&path).unwrap();
        assert_eq!(loaded.to_bytes(), key.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode was {mode:o}");
            let dir_mode = fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o077, 0, "dir mode was {dir_mode:o}");
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // Only the key file itself is left in the directory: no temporary files.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn private_key_file_is_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        let first = rfc8032_key();
        write_private_key(&path, &first, false).unwrap();
        let second = SigningKey::from_bytes(&[7u8; 32]);
        let err = write_private_key(&path, &second, false).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("already exists"));
        assert_eq!(
            load_private_key(&path).unwrap().to_bytes(),
            first.to_bytes()
        );

        write_private_key(&path, &second, true).unwrap();
        assert_eq!(
            load_private_key(&path).unwrap().to_bytes(),
            second.to_bytes()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn loading_a_non_key_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-key.pem");
        fs::write(&path, "hello\n").unwrap();
        let err = load_private_key(&path).unwrap_err().to_string();
        assert!(err.contains("not-a-key.pem"), "{err}");
        assert!(
            err.contains("not a PKCS#8 ed25519 private key PEM"),
            "{err}"
        );

        let pub_path = dir.path().join("signer.pub.pem");
        fs::write(&pub_path, public_key_pem(&rfc8032_key().verifying_key())).unwrap();
        let err = load_private_key(&pub_path).unwrap_err().to_string();
        assert!(
            err.contains("not a PKCS#8 ed25519 private key PEM"),
            "{err}"
        );
        let err = load_public_key(&path).unwrap_err().to_string();
        assert!(
            err.contains("not-a-key.pem") && err.contains("SPKI"),
            "{err}"
        );
        assert_eq!(
            load_public_key(&pub_path).unwrap(),
            rfc8032_key().verifying_key()
        );

        let missing = dir.path().join("missing.pem");
        let err = load_private_key(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read key file") && err.contains("missing.pem"),
            "{err}"
        );
    }

    #[test]
    fn default_key_path_prefers_outcome_audit_home_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let all = env(&[
            ("OUTCOME_AUDIT_HOME", "/oa"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(
            default_key_path_with(all).unwrap(),
            PathBuf::from("/oa/signing-key.pem")
        );
        let xdg = env(&[
            ("OUTCOME_AUDIT_HOME", ""),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(
            default_key_path_with(xdg).unwrap(),
            PathBuf::from("/xdg/outcome-audit/signing-key.pem")
        );
        let home = env(&[("HOME", "/home/u")]);
        assert_eq!(
            default_key_path_with(home).unwrap(),
            PathBuf::from("/home/u/.config/outcome-audit/signing-key.pem")
        );
        let none = env(&[]);
        assert!(matches!(
            default_key_path_with(none),
            Err(KeyError::NoKeyHome)
        ));
    }

    #[test]
    fn load_or_create_creates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/signing-key.pem");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (second, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.to_bytes(), second.to_bytes());
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(generate().to_bytes(), generate().to_bytes());
    }
}
