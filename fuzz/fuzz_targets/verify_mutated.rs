//! `verify` over a mutated bundle: a small bundle is signed once, and each fuzz input
//! changes it in one way (replaces the bytes of one file, deletes one, or adds one under
//! a name taken from the input). `verify` must never panic, and must reject every
//! bundle that differs from the one that was signed — with and without a pinned key —
//! and accept the bundle when the change leaves every byte as it was.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use outcome_audit::bundle::dsse::Envelope;
use outcome_audit::bundle::verify::{sign_bundle_dir, verify_bundle};

/// The signed seed bundle: (bundle-relative path, bytes) of every file.
fn seed() -> &'static Vec<(String, Vec<u8>)> {
    static SEED: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let files: [(&str, &[u8]); 5] = [
            (
                "spec.toml",
                include_bytes!("../../tests/scenarios/small-valid/spec.toml"),
            ),
            (
                "inputs/people.csv",
                include_bytes!("../../tests/scenarios/small-valid/people.csv"),
            ),
            (
                "inputs/convictions.csv",
                include_bytes!("../../tests/scenarios/small-valid/convictions.csv"),
            ),
            ("results.json", b"{\n  \"decision\": \"threshold-met\"\n}\n"),
            (
                "tables/cohort.csv",
                b"person_id,status\nV1,eligible\nV5,excluded\n",
            ),
        ];
        for (rel, bytes) in files {
            write(dir.path(), rel, bytes);
        }
        sign_bundle_dir(
            dir.path(),
            &key(),
            serde_json::json!({ "buildDefinition": {} }),
        )
        .expect("sign the seed bundle");
        let mut out = Vec::new();
        collect(dir.path(), dir.path(), &mut out);
        out.sort();
        out
    })
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
    fs::write(path, bytes).expect("write file");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).expect("read folder") {
        let path: PathBuf = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, fs::read(&path).expect("read file")));
        }
    }
}

/// The payload type and payload bytes of an envelope, if it parses.
fn signed_payload(bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let envelope = Envelope::parse(bytes).ok()?;
    let payload = envelope.payload_bytes().ok()?;
    Some((envelope.payload_type, payload))
}

fuzz_target!(|data: &[u8]| {
    let [op, which, rest @ ..] = data else { return };
    let seed = seed();
    let dir = tempfile::tempdir().expect("temporary directory");
    for (rel, bytes) in seed {
        write(dir.path(), rel, bytes);
    }
    let (rel, original) = &seed[usize::from(*which) % seed.len()];
    let unchanged = match op % 3 {
        0 => {
            fs::write(dir.path().join(rel), rest).expect("replace file");
            rest == original.as_slice()
        }
        1 => {
            fs::remove_file(dir.path().join(rel)).expect("delete file");
            false
        }
        _ => {
            // A new file whose name is the rest of the input (if it is a usable name).
            let Ok(name) = std::str::from_utf8(rest) else {
                return;
            };
            if name.is_empty()
                || name.len() > 64
                || name.contains(['\0', '/', '\\'])
                || name == "."
                || name == ".."
            {
                return;
            }
            let path = dir.path().join(name);
            if path.exists() {
                return;
            }
            if fs::write(&path, b"added\n").is_err() {
                return;
            }
            false
        }
    };
    // The envelope is the one file no digest covers: it may be rewritten (spacing,
    // field order, an empty keyid hint) as long as it still carries the same signed
    // payload, which is what "unchanged" means for it.
    let same_signed_payload = op % 3 == 0
        && rel == "attestation.dsse.json"
        && signed_payload(rest).is_some()
        && signed_payload(rest) == signed_payload(original);
    let public = key().verifying_key();
    for pinned in [None, Some(&public)] {
        match verify_bundle(dir.path(), pinned) {
            Ok(_) => assert!(
                unchanged || same_signed_payload,
                "a changed bundle verified: op {op}, file {rel}"
            ),
            Err(failure) => {
                assert!(!unchanged, "the signed bundle failed: {failure}");
                assert!(!failure.findings.is_empty());
            }
        }
    }
});
