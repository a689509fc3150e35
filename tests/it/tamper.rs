//! A bundle that has been changed in any way fails `verify` (exit 1) with a finding that
//! names the problem by its stable code and names the file; `replay` refuses it too.
//! An untouched bundle verifies, and says whether its signer was pinned.

use std::path::Path;

use crate::common::*;

/// A fresh small bundle, signed by the sandbox's default key.
fn fresh(sb: &Sandbox) -> Bundle {
    sb.audit(scenario("small-valid").join("spec.toml"))
}

/// Replaces `from` by `to` (same length, exactly one byte different) in one file.
fn change_one_byte(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let differing = from.bytes().zip(to.bytes()).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing, 1,
        "{from:?} → {to:?} must change exactly one byte"
    );
    edit_file(path, from, to);
}

/// `verify` fails, naming `code` and `file`; `replay` fails as well.
fn assert_rejected(sb: &Sandbox, b: &Bundle, code: &str, file: &str) {
    sb.cmd(["verify"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["verification failed", &format!("{code}: {file}")]);
    sb.cmd(["replay"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["bundle failed verification", code]);
}

#[test]
fn a_fresh_bundle_verifies_and_says_its_signer_is_unpinned() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    sb.cmd(["verify"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout_has(&["verified", "unpinned"]);
}

#[test]
fn a_bundle_verified_with_its_own_signer_key_says_pinned() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    sb.cmd(["verify"])
        .arg(&b.dir)
        .arg("--key")
        .arg(b.path("signer.pub.pem"))
        .assert(EXIT_OK)
        .stdout_has(&["verified", "(pinned with --key)"]);
    let json = sb
        .cmd(["--json", "verify"])
        .arg(&b.dir)
        .arg("--key")
        .arg(b.path("signer.pub.pem"))
        .assert(EXIT_OK)
        .json();
    assert_eq!(json["verified"], true);
    assert_eq!(json["signer_pinned"], true);
}

#[test]
fn one_changed_byte_in_results_json_is_a_digest_mismatch() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // Nothing was owed; the edited bundle claims 8 pence.
    change_one_byte(
        &b.path("results.json"),
        "\"total_minor\": 0,",
        "\"total_minor\": 8,",
    );
    assert_rejected(&sb, &b, "digest-mismatch", "results.json");
}

#[test]
fn one_changed_byte_in_the_outcomes_table_is_a_digest_mismatch() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // V1 stops being a reoffender.
    change_one_byte(
        &b.path("tables/outcomes.csv"),
        "cohort,treated,V1,2011-10-01,2012-10-01,2013-04-01,1,",
        "cohort,treated,V1,2011-10-01,2012-10-01,2013-04-01,0,",
    );
    assert_rejected(&sb, &b, "digest-mismatch", "tables/outcomes.csv");
}

#[test]
fn one_changed_byte_in_an_embedded_input_is_a_digest_mismatch() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // V5's discharge moves by a day.
    change_one_byte(
        &b.path("inputs/people.csv"),
        "V5,2011-10-05,",
        "V5,2011-10-06,",
    );
    assert_rejected(&sb, &b, "digest-mismatch", "inputs/people.csv");
}

#[test]
fn one_changed_byte_in_the_spec_is_a_digest_mismatch() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // The published baseline 0.500 becomes 0.600.
    change_one_byte(
        &b.path("spec.toml"),
        "value = \"0.500\"",
        "value = \"0.600\"",
    );
    assert_rejected(&sb, &b, "digest-mismatch", "spec.toml");
}

#[test]
fn one_changed_byte_in_the_manifest_is_a_digest_mismatch() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // Change the first hex digit of the digest the manifest lists for results.json.
    let manifest = read_json(&b.path("manifest.json"));
    let digest = manifest["files"]
        .as_array()
        .and_then(|f| f.iter().find(|e| e["path"] == "results.json"))
        .and_then(|e| e["sha256"].as_str())
        .expect("results.json entry")
        .to_string();
    let first = if digest.starts_with('0') { "1" } else { "0" };
    let changed = format!("{first}{}", &digest[1..]);
    change_one_byte(&b.path("manifest.json"), &digest, &changed);
    // The manifest no longer matches the attestation, nor results.json the manifest.
    assert_rejected(&sb, &b, "digest-mismatch", "manifest.json");
    sb.cmd(["verify"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["digest-mismatch: results.json"]);
}

#[test]
fn a_replaced_signature_is_invalid() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // A real ed25519 signature by the same key, but over another bundle's statement.
    let other = sb.audit(scenario("payment").join("at-risk-repay.toml"));
    let sig_of = |bundle: &Bundle| {
        read_json(&bundle.path("attestation.dsse.json"))["signatures"][0]["sig"]
            .as_str()
            .expect("sig")
            .to_string()
    };
    let (ours, theirs) = (sig_of(&b), sig_of(&other));
    assert_ne!(ours, theirs);
    edit_file(&b.path("attestation.dsse.json"), &ours, &theirs);
    assert_rejected(&sb, &b, "signature-invalid", "attestation.dsse.json");
}

#[test]
fn a_bundle_checked_against_another_key_is_not_trusted() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    sb.cmd(["keygen", "--out"])
        .arg(sb.join("other.pem"))
        .assert(EXIT_OK);
    assert!(
        sb.join("other.pub.pem").is_file(),
        "keygen writes FILE.pub.pem"
    );
    sb.cmd(["verify"])
        .arg(&b.dir)
        .arg("--key")
        .arg(sb.join("other.pub.pem"))
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&[
            "key-not-trusted: attestation.dsse.json",
            "key-not-trusted: signer.pub.pem",
        ]);
    sb.cmd(["replay"])
        .arg(&b.dir)
        .arg("--key")
        .arg(sb.join("other.pub.pem"))
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["key-not-trusted"]);
}

#[test]
fn a_bundle_recomputed_and_re_signed_by_another_key_is_not_trusted_when_the_signer_is_pinned() {
    let sb = Sandbox::new();
    let genuine = fresh(&sb);
    let trusted = sb.join("trusted.pub.pem");
    std::fs::copy(genuine.path("signer.pub.pem"), &trusted).expect("keep the trusted key");
    sb.cmd(["keygen", "--out"])
        .arg(sb.join("forger.pem"))
        .assert(EXIT_OK);
    let forger = sb.join("forger.pem");
    let forged = sb.audit_with(
        scenario("small-valid").join("spec.toml"),
        &["--key", forger.to_str().expect("UTF-8 path")],
    );
    // Self-consistent, so it verifies on its own word...
    sb.cmd(["verify"]).arg(&forged.dir).assert(EXIT_OK);
    // ...but not against the key the reviewer holds.
    sb.cmd(["verify"])
        .arg(&forged.dir)
        .arg("--key")
        .arg(&trusted)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["key-not-trusted"]);
}

#[test]
fn an_extra_file_is_unexpected() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::write(b.path("tables/extra.csv"), "a,b\n1,2\n").expect("add a file");
    assert_rejected(&sb, &b, "file-unexpected", "tables/extra.csv");
}

#[test]
fn a_deleted_file_is_missing() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::remove_file(b.path("tables/cohort.csv")).expect("delete a file");
    assert_rejected(&sb, &b, "file-missing", "tables/cohort.csv");
}

#[test]
fn a_manifest_entry_climbing_out_of_the_bundle_is_unsafe() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // "results.json" → "../results.json" (the manifest is otherwise well-formed).
    edit_file(
        &b.path("manifest.json"),
        "\"path\": \"results.json\"",
        "\"path\": \"../results.json\"",
    );
    assert_rejected(&sb, &b, "path-unsafe", "../results.json");
}

#[test]
fn verify_json_lists_every_finding_by_code_and_path() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::remove_file(b.path("tables/cohort.csv")).expect("delete a file");
    std::fs::write(b.path("notes.txt"), "added later\n").expect("add a file");
    let out = sb
        .cmd(["--json", "verify"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED);
    let json = out.json();
    assert_eq!(json["verified"], false);
    let findings: Vec<(String, String)> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                f["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(findings.contains(&("file-missing".into(), "tables/cohort.csv".into())));
    assert!(findings.contains(&("file-unexpected".into(), "notes.txt".into())));
}

#[test]
fn a_symlink_in_the_bundle_is_rejected_even_if_its_target_matches() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // The bytes are unchanged, but live outside the bundle: verify must not follow links.
    let outside = sb.join("results-outside.json");
    std::fs::rename(b.path("results.json"), &outside).expect("move results.json");
    std::os::unix::fs::symlink(&outside, b.path("results.json")).expect("symlink");
    assert_rejected(&sb, &b, "symlink", "results.json");
}

#[test]
fn a_validly_re_signed_bundle_whose_results_do_not_follow_from_its_inputs_fails_replay() {
    // Someone holding the signing key edits the evidence and signs it again: `verify`
    // cannot tell, `replay` must.
    let sb = Sandbox::new();
    let b = fresh(&sb);
    change_one_byte(
        &b.path("results.json"),
        "\"total_minor\": 0,",
        "\"total_minor\": 8,",
    );
    change_one_byte(
        &b.path("tables/outcomes.csv"),
        "cohort,treated,V3,2011-10-03,2012-10-03,2013-04-03,0,",
        "cohort,treated,V3,2011-10-03,2012-10-03,2013-04-03,1,",
    );
    let key = outcome_audit::bundle::keys::load_private_key(&sb.home().join("signing-key.pem"))
        .expect("the sandbox's default key");
    outcome_audit::bundle::verify::sign_bundle_dir(&b.dir, &key, b.provenance())
        .expect("re-sign the edited bundle");
    sb.cmd(["verify"]).arg(&b.dir).assert(EXIT_OK);
    let out = sb.cmd(["replay"]).arg(&b.dir).assert(EXIT_VERIFY_FAILED);
    out.stdout_has(&[
        "differs: results.json at $.payment.total_minor: bundle has 8, recomputed 0",
        "differs: tables/outcomes.csv at line 4",
    ]);
    let json = sb
        .cmd(["--json", "replay"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .json();
    assert_eq!(json["identical"], false);
    assert_eq!(json["differences"].as_array().map(Vec::len), Some(2));
}

#[cfg(unix)]
#[test]
fn signing_keys_are_owner_only_and_never_enter_a_bundle() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = Sandbox::new();
    let b = fresh(&sb);
    sb.cmd(["keygen", "--out"])
        .arg(sb.join("k.pem"))
        .assert(EXIT_OK);
    for key in [sb.home().join("signing-key.pem"), sb.join("k.pem")] {
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", key.display());
    }
    // keygen refuses to overwrite a key unless forced.
    sb.cmd(["keygen", "--out"])
        .arg(sb.join("k.pem"))
        .assert(EXIT_BAD_INPUT);
    let mut stack = vec![b.dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("bundle folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("bundle file");
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains("PRIVATE KEY"),
                    "{} holds a private key",
                    path.display()
                );
            }
        }
    }
}

/// Signs a new attestation over the bundle's files as they are now (manifest included),
/// with the sandbox's default key: what someone holding the key, or a careless writer,
/// could produce. Verify must still find what is wrong with the files themselves.
fn re_sign_statement(sb: &Sandbox, b: &Bundle) {
    re_sign_statement_with(b, &sandbox_key(sb));
}

fn sandbox_key(sb: &Sandbox) -> ed25519_dalek::SigningKey {
    outcome_audit::bundle::keys::load_private_key(&sb.home().join("signing-key.pem"))
        .expect("the sandbox's default key")
}

fn re_sign_statement_with(b: &Bundle, key: &ed25519_dalek::SigningKey) {
    use outcome_audit::bundle::dsse::{
        sign_envelope, DigestSet, Statement, Subject, IN_TOTO_PAYLOAD_TYPE, SLSA_PROVENANCE_V1,
    };
    use outcome_audit::bundle::manifest::{bundle_file_path, walk};
    use outcome_audit::digest::Sha256Digest;
    let predicate = b.provenance();
    let walked = walk(&b.dir, &["attestation.dsse.json"]).expect("walk the bundle");
    let subject = walked
        .files
        .iter()
        .map(|f| Subject {
            name: f.path.clone(),
            digest: DigestSet {
                sha256: Sha256Digest::of_file(&bundle_file_path(&b.dir, &f.path))
                    .expect("hash")
                    .0,
            },
        })
        .collect();
    let statement = Statement::new(subject, SLSA_PROVENANCE_V1, predicate);
    let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, &statement.to_json_bytes(), key);
    std::fs::write(b.path("attestation.dsse.json"), envelope.to_json_bytes())
        .expect("write attestation");
}

/// Edits `manifest.json`'s entries as JSON and writes it back (pretty, as the writer does).
fn edit_manifest(b: &Bundle, edit: impl FnOnce(&mut Vec<serde_json::Value>)) {
    let mut manifest = read_json(&b.path("manifest.json"));
    let files = manifest["files"].as_array_mut().expect("files");
    edit(files);
    write_json(&b.path("manifest.json"), &manifest);
}

/// Writes pretty JSON and a newline, as the bundle writer does.
fn write_json(path: &Path, value: &serde_json::Value) {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON");
    bytes.push(b'\n');
    std::fs::write(path, bytes).expect("write JSON");
}

/// `verify` fails naming each `code: path`, and replay refuses the bundle.
fn assert_rejected_all(sb: &Sandbox, b: &Bundle, expected: &[(&str, &str)]) {
    let out = sb.cmd(["verify"]).arg(&b.dir).assert(EXIT_VERIFY_FAILED);
    for (code, path) in expected {
        out.stderr_has(&[&format!("{code}: {path}")]);
    }
    sb.cmd(["replay"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["bundle failed verification"]);
}

#[test]
fn a_truncated_envelope_is_malformed() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let bytes = b.bytes("attestation.dsse.json");
    std::fs::write(b.path("attestation.dsse.json"), &bytes[..bytes.len() / 2]).expect("truncate");
    assert_rejected(&sb, &b, "envelope-malformed", "attestation.dsse.json");
}

#[test]
fn bytes_after_the_envelope_are_malformed() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let mut bytes = b.bytes("attestation.dsse.json");
    bytes.extend_from_slice(b"{\"payloadType\":\"x\"}\n");
    std::fs::write(b.path("attestation.dsse.json"), bytes).expect("append");
    assert_rejected(&sb, &b, "envelope-malformed", "attestation.dsse.json");
}

#[test]
fn an_envelope_without_signatures_is_malformed() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let mut envelope = read_json(&b.path("attestation.dsse.json"));
    envelope["signatures"] = serde_json::json!([]);
    write_json(&b.path("attestation.dsse.json"), &envelope);
    assert_rejected(&sb, &b, "envelope-malformed", "attestation.dsse.json");
}

#[test]
fn a_second_signature_that_does_not_verify_is_invalid() {
    // One good signature does not carry a bad one: every signature must verify.
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let mut envelope = read_json(&b.path("attestation.dsse.json"));
    let mut second = envelope["signatures"][0].clone();
    second["sig"] = serde_json::Value::String(base64_of(&[7u8; 64]));
    envelope["signatures"]
        .as_array_mut()
        .expect("signatures")
        .push(second);
    write_json(&b.path("attestation.dsse.json"), &envelope);
    assert_rejected(&sb, &b, "signature-invalid", "attestation.dsse.json");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_duplicated_manifest_entry_is_reported_even_when_signed() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    edit_manifest(&b, |files| {
        let i = files
            .iter()
            .position(|e| e["path"] == "results.json")
            .expect("results.json entry");
        let copy = files[i].clone();
        files.insert(i, copy);
    });
    re_sign_statement(&sb, &b);
    assert_rejected_all(&sb, &b, &[("duplicate-entry", "results.json")]);
}

#[test]
fn a_case_variant_file_beside_the_original_collides() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::write(b.path("Results.json"), b.bytes("results.json")).expect("add Results.json");
    // Even listed in the manifest and signed, the two names would be one file on a
    // case-insensitive file system.
    let (digest, size) =
        outcome_audit::digest::Sha256Digest::of_file(&b.path("Results.json")).expect("hash");
    edit_manifest(&b, |files| {
        files.push(serde_json::json!({
            "path": "Results.json", "sha256": digest.to_hex(), "size": size
        }));
        files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    });
    re_sign_statement(&sb, &b);
    assert_rejected_all(&sb, &b, &[("case-collision", "Results.json")]);
}

#[test]
fn a_case_variant_file_instead_of_the_original_is_missing_and_unexpected() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::rename(b.path("results.json"), b.path("Results.json")).expect("rename");
    assert_rejected_all(
        &sb,
        &b,
        &[
            ("file-missing", "results.json"),
            ("file-unexpected", "Results.json"),
        ],
    );
}

#[test]
fn a_replaced_public_key_with_a_matching_re_signature_fails_against_the_pinned_key() {
    // The attacker edits the results, puts their own key in signer.pub.pem and signs
    // everything again: self-consistent, so only the reviewer's pinned key catches it.
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let trusted = sb.join("trusted.pub.pem");
    std::fs::copy(b.path("signer.pub.pem"), &trusted).expect("keep the trusted key");
    change_one_byte(
        &b.path("results.json"),
        "\"total_minor\": 0,",
        "\"total_minor\": 8,",
    );
    let forger = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    outcome_audit::bundle::verify::sign_bundle_dir(&b.dir, &forger, b.provenance())
        .expect("re-sign with the forger's key");
    assert_ne!(
        b.bytes("signer.pub.pem"),
        std::fs::read(&trusted).expect("trusted")
    );
    sb.cmd(["verify"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout_has(&["unpinned"]);
    sb.cmd(["verify"])
        .arg(&b.dir)
        .arg("--key")
        .arg(&trusted)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&[
            "key-not-trusted: signer.pub.pem",
            "key-not-trusted: attestation.dsse.json",
        ]);
    sb.cmd(["replay"])
        .arg(&b.dir)
        .arg("--key")
        .arg(&trusted)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["key-not-trusted"]);
}

#[test]
fn a_manifest_entry_with_an_absolute_path_is_unsafe_even_when_signed() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let (digest, size) = outcome_audit::digest::Sha256Digest::of_file(Path::new("/etc/hostname"))
        .unwrap_or((outcome_audit::digest::Sha256Digest::of_bytes(b""), 0));
    edit_manifest(&b, |files| {
        files.insert(
            0,
            serde_json::json!({ "path": "/etc/hostname", "sha256": digest.to_hex(), "size": size }),
        );
    });
    re_sign_statement(&sb, &b);
    assert_rejected_all(&sb, &b, &[("path-unsafe", "/etc/hostname")]);
}

#[test]
fn a_manifest_entry_climbing_out_of_the_bundle_is_unsafe_even_when_signed() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::write(sb.join("x"), "outside\n").expect("a file beside the bundle");
    edit_manifest(&b, |files| {
        files.insert(
            0,
            serde_json::json!({
                "path": "../x",
                "sha256": outcome_audit::digest::Sha256Digest::of_bytes(b"outside\n").to_hex(),
                "size": 8
            }),
        );
    });
    re_sign_statement(&sb, &b);
    assert_rejected_all(&sb, &b, &[("path-unsafe", "../x")]);
}

#[cfg(unix)]
#[test]
fn a_symlink_added_inside_the_bundle_pointing_outside_is_rejected() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::os::unix::fs::symlink("/etc/passwd", b.path("tables/passwd.csv")).expect("symlink");
    assert_rejected(&sb, &b, "symlink", "tables/passwd.csv");
}

#[cfg(unix)]
#[test]
fn a_symlinked_folder_holding_identical_copies_is_rejected() {
    // inputs/ moved out of the bundle and linked back: every byte is the same, but the
    // evidence is no longer inside the bundle.
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let outside = sb.join("inputs-outside");
    std::fs::rename(b.path("inputs"), &outside).expect("move inputs/");
    std::os::unix::fs::symlink(&outside, b.path("inputs")).expect("symlink");
    assert_rejected_all(
        &sb,
        &b,
        &[("symlink", "inputs"), ("file-missing", "inputs/people.csv")],
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_a_file_is_not_a_regular_file() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::remove_file(b.path("tables/outcomes.csv")).expect("remove");
    let status = std::process::Command::new("mkfifo")
        .arg(b.path("tables/outcomes.csv"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    assert_rejected(&sb, &b, "not-regular-file", "tables/outcomes.csv");
}

#[test]
fn a_file_emptied_is_a_digest_and_size_mismatch() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    std::fs::write(b.path("tables/cohort.csv"), b"").expect("empty the file");
    assert_rejected_all(
        &sb,
        &b,
        &[
            ("digest-mismatch", "tables/cohort.csv"),
            ("size-mismatch", "tables/cohort.csv"),
        ],
    );
}

#[test]
fn a_manifest_with_an_unknown_field_is_malformed() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let mut manifest = read_json(&b.path("manifest.json"));
    manifest["note"] = serde_json::json!("trust me");
    write_json(&b.path("manifest.json"), &manifest);
    re_sign_statement(&sb, &b);
    assert_rejected_all(&sb, &b, &[("manifest-malformed", "manifest.json")]);
}

#[test]
fn a_bundle_path_that_is_a_file_is_unreadable() {
    let sb = Sandbox::new();
    let file = sb.write("not-a-bundle", "x");
    sb.cmd(["verify"])
        .arg(&file)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["bundle-unreadable", "not a directory"]);
}

#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_is_unsafe() {
    use std::os::unix::ffi::OsStrExt as _;
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let name = std::ffi::OsStr::from_bytes(b"tables/caf\xe9.csv");
    std::fs::write(b.dir.join(name), "x\n").expect("write");
    sb.cmd(["verify"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["path-unsafe: tables/caf", "UTF-8"]);
}
