//! `export-sigstore` writes the verified attestation as a Sigstore bundle v0.3: the
//! DSSE envelope exactly as signed (payload and signature unchanged), a public-key hint
//! that is the signer's key id, no transparency-log entries; and it refuses a bundle
//! that does not verify. That Sigstore's own verifier accepts the result is checked by
//! `.ci/interop` with the npm package `@sigstore/verify`; these tests need no Python or
//! node.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use crate::common::*;

fn fresh(sb: &Sandbox) -> Bundle {
    sb.audit(scenario("small-valid").join("spec.toml"))
}

fn export(sb: &Sandbox, b: &Bundle) -> Value {
    let out = sb.cmd(["export-sigstore"]).arg(&b.dir).assert(EXIT_OK);
    serde_json::from_str(&out.stdout).expect("stdout is JSON")
}

fn keys_of(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn export_sigstore_wraps_the_signed_envelope_unchanged_with_a_key_hint() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let sigstore = export(&sb, &b);
    let envelope = read_json(&b.path("attestation.dsse.json"));
    let verified = sb
        .cmd(["--json", "verify"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .json();

    assert_eq!(
        keys_of(&sigstore),
        ["dsseEnvelope", "mediaType", "verificationMaterial"]
    );
    assert_eq!(
        sigstore["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let material = &sigstore["verificationMaterial"];
    assert_eq!(keys_of(material), ["publicKey", "tlogEntries"]);
    assert_eq!(material["publicKey"]["hint"], verified["signer_keyid"]);
    assert_eq!(material["tlogEntries"], serde_json::json!([]));
    // The envelope is the one in the bundle, field for field: same payload bytes, same
    // signature, same key id.
    assert_eq!(sigstore["dsseEnvelope"], envelope);
    assert_eq!(
        sigstore["dsseEnvelope"]["signatures"][0]["sig"],
        envelope["signatures"][0]["sig"]
    );
    assert_eq!(
        sigstore["dsseEnvelope"]["signatures"][0]["keyid"],
        verified["signer_keyid"]
    );
}

#[test]
fn the_exported_signature_verifies_over_the_dsse_encoding_of_the_exported_payload() {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let sigstore = export(&sb, &b);
    let env = &sigstore["dsseEnvelope"];
    let payload_type = env["payloadType"].as_str().expect("payloadType");
    let payload = BASE64
        .decode(env["payload"].as_str().expect("payload"))
        .expect("standard base64 payload");
    let sig: [u8; 64] = BASE64
        .decode(env["signatures"][0]["sig"].as_str().expect("sig"))
        .expect("standard base64 signature")
        .try_into()
        .expect("a 64-byte ed25519 signature");
    let pem = std::fs::read_to_string(b.path("signer.pub.pem")).expect("public key");
    let key = ed25519_dalek::VerifyingKey::from_public_key_pem(&pem).expect("SPKI PEM");
    // DSSE v1 pre-authentication encoding, written out here rather than borrowed.
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    let signature = ed25519_dalek::Signature::from_bytes(&sig);
    key.verify_strict(&pae, &signature)
        .expect("the exported signature verifies under signer.pub.pem");
    // And not over a payload with one byte changed.
    let last = pae.len() - 2;
    pae[last] ^= 1;
    assert!(key.verify_strict(&pae, &signature).is_err());
}

#[test]
fn export_sigstore_out_writes_the_same_json_and_does_not_overwrite_without_force() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let stdout = sb
        .cmd(["export-sigstore"])
        .arg(&b.dir)
        .assert(EXIT_OK)
        .stdout;
    let file = sb.join("attestation.sigstore.json");
    sb.cmd(["export-sigstore"])
        .arg(&b.dir)
        .arg("--out")
        .arg(&file)
        .assert(EXIT_OK)
        .stdout_has(&["exported:", "attestation.sigstore.json", "hint"]);
    assert_eq!(
        std::fs::read_to_string(&file).expect("exported file"),
        stdout
    );
    std::fs::write(&file, "keep me\n").expect("overwrite");
    sb.cmd(["export-sigstore"])
        .arg(&b.dir)
        .arg("--out")
        .arg(&file)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["already exists", "--force"]);
    assert_eq!(std::fs::read_to_string(&file).expect("file"), "keep me\n");
    sb.cmd(["export-sigstore"])
        .arg(&b.dir)
        .arg("--out")
        .arg(&file)
        .arg("--force")
        .assert(EXIT_OK);
    assert_eq!(std::fs::read_to_string(&file).expect("file"), stdout);
}

#[test]
fn export_sigstore_refuses_a_tampered_bundle_with_exit_1() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // Nothing was owed; the edited bundle claims 8 pence.
    edit_file(
        &b.path("results.json"),
        "\"total_minor\": 0,",
        "\"total_minor\": 8,",
    );
    let file = sb.join("attestation.sigstore.json");
    let out = sb
        .cmd(["export-sigstore"])
        .arg(&b.dir)
        .arg("--out")
        .arg(&file)
        .assert(EXIT_VERIFY_FAILED);
    out.stderr_has(&[
        "verification failed",
        "digest-mismatch: results.json",
        "nothing exported",
    ]);
    assert!(out.stdout.is_empty(), "printed: {}", out.stdout);
    assert!(!file.exists(), "a Sigstore bundle was written");
    // To stdout, likewise nothing.
    let out = sb
        .cmd(["export-sigstore"])
        .arg(&b.dir)
        .assert(EXIT_VERIFY_FAILED);
    assert!(out.stdout.is_empty(), "printed: {}", out.stdout);
}

#[test]
fn export_sigstore_refuses_a_bundle_signed_by_another_key_than_the_pinned_one() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    let other = sb.join("other.pem");
    sb.cmd(["keygen", "--out"]).arg(&other).assert(EXIT_OK);
    sb.cmd(["export-sigstore"])
        .arg(&b.dir)
        .arg("--key")
        .arg(sb.join("other.pub.pem"))
        .assert(EXIT_VERIFY_FAILED)
        .stderr_has(&["key-not-trusted"]);
    sb.cmd(["export-sigstore"])
        .arg(&b.dir)
        .arg("--key")
        .arg(b.path("signer.pub.pem"))
        .assert(EXIT_OK);
}

#[test]
fn export_sigstore_refuses_an_envelope_with_two_signatures() {
    let sb = Sandbox::new();
    let b = fresh(&sb);
    // The same valid signature twice: the bundle still verifies, but a Sigstore bundle
    // holds exactly one signature.
    let path = b.path("attestation.dsse.json");
    let mut envelope = read_json(&path);
    let first = envelope["signatures"][0].clone();
    envelope["signatures"]
        .as_array_mut()
        .expect("signatures")
        .push(first);
    std::fs::write(&path, serde_json::to_vec_pretty(&envelope).expect("JSON")).expect("write");
    sb.cmd(["verify"]).arg(&b.dir).assert(EXIT_OK);
    sb.cmd(["export-sigstore"])
        .arg(&b.dir)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["2 signatures", "exactly one"]);
}
