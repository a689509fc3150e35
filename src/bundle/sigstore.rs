//! A verified bundle's attestation as a Sigstore bundle v0.3, for Sigstore verifiers.
//!
//! Sigstore clients (the npm package `@sigstore/verify`, `cosign`, `sigstore-python`)
//! read signatures in their own container, the Sigstore bundle, rather than a bare DSSE
//! envelope. A Sigstore bundle may carry a DSSE envelope signed with a plain key instead
//! of a Fulcio certificate: `verificationMaterial.publicKey.hint` then names the key, and
//! the verifier supplies the key for that hint from its own trusted material. So the
//! export only rewraps: the envelope's `payloadType`, `payload` and `signatures` are
//! copied exactly as stored in `attestation.dsse.json`, the hint is the signer's key id
//! (the same securesystemslib key id the envelope names), and there are no transparency
//! log entries or timestamps (the verifier must not require them).
//!
//! ```json
//! {
//!   "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//!   "verificationMaterial": { "publicKey": { "hint": "<key id>" }, "tlogEntries": [] },
//!   "dsseEnvelope": { "payloadType": "…", "payload": "…", "signatures": [{ "keyid": "…", "sig": "…" }] }
//! }
//! ```
//!
//! Only a [`VerifiedBundle`] can be exported: a bundle that does not verify is refused.

use serde::Serialize;

use crate::bundle::dsse::Envelope;
use crate::bundle::verify::VerifiedBundle;

/// `mediaType` of a Sigstore bundle v0.3.
pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// File name suggested for an exported Sigstore bundle, beside (never inside) the
/// evidence bundle: inside, it would be a file the attestation does not list.
pub const SIGSTORE_FILE: &str = "attestation.sigstore.json";

/// Why a verified bundle cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A Sigstore bundle holds a DSSE envelope with exactly one signature.
    #[error(
        "the attestation has {0} signatures; a Sigstore bundle holds exactly one\n    help: export a bundle signed once, as `outcome-audit run` writes them"
    )]
    SignatureCount(usize),
}

#[derive(Serialize)]
struct SigstoreBundle<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    #[serde(rename = "verificationMaterial")]
    verification_material: VerificationMaterial<'a>,
    #[serde(rename = "dsseEnvelope")]
    dsse_envelope: &'a Envelope,
}

#[derive(Serialize)]
struct VerificationMaterial<'a> {
    #[serde(rename = "publicKey")]
    public_key: PublicKeyIdentifier<'a>,
    /// Always empty: the signature is not in a transparency log.
    #[serde(rename = "tlogEntries")]
    tlog_entries: [(); 0],
}

#[derive(Serialize)]
struct PublicKeyIdentifier<'a> {
    hint: &'a str,
}

/// The Sigstore bundle v0.3 JSON (pretty, with a trailing newline) of a verified
/// bundle's attestation.
pub fn sigstore_bundle_json(verified: &VerifiedBundle) -> Result<Vec<u8>, ExportError> {
    let envelope = verified.envelope();
    if envelope.signatures.len() != 1 {
        return Err(ExportError::SignatureCount(envelope.signatures.len()));
    }
    let bundle = SigstoreBundle {
        media_type: SIGSTORE_BUNDLE_V03,
        verification_material: VerificationMaterial {
            public_key: PublicKeyIdentifier {
                hint: verified.keyid(),
            },
            tlog_entries: [],
        },
        dsse_envelope: envelope,
    };
    // Only strings and an empty array: serialising cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    bytes.push(b'\n');
    Ok(bytes)
}
