//! The signed attestation of a bundle, in the standard formats evaluators' tools read:
//! a DSSE v1 envelope (ed25519) around an in-toto Statement v1 whose predicate is SLSA
//! Provenance v1.
//!
//! We do not invent a signature format: an evaluator who has never seen this code can
//! check `attestation.dsse.json` with securesystemslib, sigstore or in-toto tooling. So
//! this module follows the published encodings exactly (the pre-authentication encoding,
//! standard base64, the securesystemslib key id, the in-toto and SLSA field names) and
//! keeps them in one place. Signatures are always made and checked over the exact
//! payload bytes stored in the envelope, never over a re-serialisation.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bundle::keys::keyid;
use crate::digest::Sha256Digest;

/// DSSE `payloadType` of an in-toto Statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";

/// `predicateType` of SLSA Provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// `buildDefinition.buildType` of an outcome-audit run.
pub const BUILD_TYPE: &str = "urn:outcome-audit:run:v1";

/// `runDetails.builder.id` of a run on the auditor's own machine.
pub const BUILDER_ID: &str = "urn:outcome-audit:builder:local";

/// The DSSE v1 pre-authentication encoding, the bytes that are actually signed:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths as ASCII decimal byte
/// counts.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// A DSSE v1 envelope (`attestation.dsse.json`).
///
/// ```json
/// {
///   "payloadType": "application/vnd.in-toto+json",
///   "payload": "<standard base64 of the Statement>",
///   "signatures": [{ "keyid": "<securesystemslib key id>", "sig": "<standard base64>" }]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Media type of the payload, e.g. [`IN_TOTO_PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Standard base64 (with padding) of the payload bytes.
    pub payload: String,
    /// Signatures over [`pae`] of the type and the decoded payload.
    pub signatures: Vec<Signature>,
}

/// One signature in an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signer's key id ([`keyid`]); optional in DSSE, so it may be empty.
    #[serde(default)]
    pub keyid: String,
    /// Standard base64 (with padding) of the 64-byte ed25519 signature.
    pub sig: String,
}

/// Why bytes are not a usable DSSE envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, truncated, a field missing or unknown, or a field of the wrong type.
    #[error("not a DSSE envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// The payload is not standard base64.
    #[error("payload is not standard base64: {0}")]
    PayloadBase64(base64::DecodeError),
    /// A signature is not standard base64.
    #[error("signature {index} is not standard base64: {source}")]
    SignatureBase64 {
        /// Position in `signatures`.
        index: usize,
        /// What the decoder said.
        source: base64::DecodeError,
    },
    /// The envelope has no signatures.
    #[error("envelope has no signatures")]
    NoSignatures,
}

/// Why an envelope does not verify under a key. Each is a separate finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The payload could not be decoded, so nothing could be verified.
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A signature names a different key than the one verifying it.
    KeyidMismatch {
        /// Position in `signatures`.
        index: usize,
        /// The key id in the envelope.
        found: String,
        /// The key id of the verifying key.
        expected: String,
    },
    /// A signature is not a valid ed25519 signature of the PAE by the key.
    Invalid {
        /// Position in `signatures`.
        index: usize,
        /// What failed.
        reason: String,
    },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { reason } => write!(f, "envelope cannot be verified: {reason}"),
            Self::KeyidMismatch {
                index,
                found,
                expected,
            } => write!(
                f,
                "signature {index} names key {found}, but the verifying key is {expected}"
            ),
            Self::Invalid { index, reason } => write!(f, "signature {index} is invalid: {reason}"),
        }
    }
}

/// Signs `payload` as a DSSE v1 envelope of type `payload_type` with `key`, naming the
/// key by its [`keyid`]. Ed25519 is deterministic, so the same inputs give the same
/// envelope bytes.
pub fn sign_envelope(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload_type: payload_type.to_string(),
        payload: BASE64.encode(payload),
        signatures: vec![Signature {
            keyid: keyid(&key.verifying_key()),
            sig: BASE64.encode(signature.to_bytes()),
        }],
    }
}

impl Envelope {
    /// Parses an envelope: well-formed JSON with exactly the DSSE fields, standard base64
    /// payload and signatures, and at least one signature. Nothing is verified.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let envelope: Envelope = serde_json::from_slice(bytes)?;
        envelope.payload_bytes()?;
        if envelope.signatures.is_empty() {
            return Err(EnvelopeError::NoSignatures);
        }
        for (index, signature) in envelope.signatures.iter().enumerate() {
            BASE64
                .decode(&signature.sig)
                .map_err(|source| EnvelopeError::SignatureBase64 { index, source })?;
        }
        Ok(envelope)
    }

    /// The bytes of `attestation.dsse.json`: pretty JSON and a trailing newline.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self)
            // Only strings: cannot fail.
            .expect("serialising a DSSE envelope cannot fail");
        bytes.push(b'\n');
        bytes
    }

    /// The decoded payload, unverified.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        BASE64
            .decode(&self.payload)
            .map_err(EnvelopeError::PayloadBase64)
    }

    /// Verifies the envelope under `key` and returns the payload bytes that were signed.
    ///
    /// Every signature must be by `key`: each must be a valid ed25519 signature
    /// (`verify_strict`) of [`pae`] of the payload type and decoded payload, and a
    /// non-empty `keyid` must equal [`keyid`] of `key`. All problems are returned.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Vec<u8>, Vec<SignatureProblem>> {
        let payload = self.payload_bytes().map_err(|e| {
            vec![SignatureProblem::Malformed {
                reason: e.to_string(),
            }]
        })?;
        if self.signatures.is_empty() {
            return Err(vec![SignatureProblem::Malformed {
                reason: EnvelopeError::NoSignatures.to_string(),
            }]);
        }
        let expected = keyid(key);
        let message = pae(&self.payload_type, &payload);
        let mut problems = Vec::new();
        for (index, signature) in self.signatures.iter().enumerate() {
            if !signature.keyid.is_empty() && signature.keyid != expected {
                problems.push(SignatureProblem::KeyidMismatch {
                    index,
                    found: signature.keyid.clone(),
                    expected: expected.clone(),
                });
            }
            if let Err(reason) = check_signature(key, &message, &signature.sig) {
                problems.push(SignatureProblem::Invalid { index, reason });
            }
        }
        if problems.is_empty() {
            Ok(payload)
        } else {
            Err(problems)
        }
    }
}

/// Checks one base64 signature of `message` under `key`.
fn check_signature(key: &VerifyingKey, message: &[u8], sig_b64: &str) -> Result<(), String> {
    let raw = BASE64
        .decode(sig_b64)
        .map_err(|e| format!("not standard base64: {e}"))?;
    let bytes: [u8; 64] = raw
        .as_slice()
        .try_into()
        .map_err(|_| format!("{} bytes long; an ed25519 signature is 64", raw.len()))?;
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
        .map_err(|_| "ed25519 verification failed".to_string())
}

/// An in-toto Statement v1: what was produced (the subjects, by digest) and a typed
/// claim about it (the predicate).
///
/// ```json
/// {
///   "_type": "https://in-toto.io/Statement/v1",
///   "subject": [{ "name": "results.json", "digest": { "sha256": "…" } }],
///   "predicateType": "https://slsa.dev/provenance/v1",
///   "predicate": { … }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE_V1`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The artifacts the statement is about.
    pub subject: Vec<Subject>,
    /// The predicate's type URI, e.g. [`SLSA_PROVENANCE_V1`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate, a JSON object.
    pub predicate: serde_json::Value,
}

/// One subject of a [`Statement`]: a bundle file by name and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Bundle-relative path with `/` separators.
    pub name: String,
    /// The file's digests.
    pub digest: DigestSet,
}

/// The digest set of a subject or dependency: `{"sha256": "<64 hex>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    /// SHA-256 of the bytes.
    pub sha256: Sha256Digest,
}

/// Why a payload is not an in-toto Statement v1 we accept.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// Not JSON of the Statement's shape.
    #[error("payload is not an in-toto Statement: {0}")]
    Json(#[from] serde_json::Error),
    /// `_type` is not [`STATEMENT_TYPE_V1`].
    #[error("statement _type is {0:?}, expected {STATEMENT_TYPE_V1:?}")]
    Type(String),
    /// `subject` is empty.
    #[error("statement has no subjects")]
    NoSubjects,
    /// `predicateType` is empty.
    #[error("statement predicateType is empty")]
    EmptyPredicateType,
    /// `predicate` is not a JSON object.
    #[error("statement predicate is not a JSON object")]
    PredicateNotObject,
}

impl Statement {
    /// A Statement v1 about `subject`.
    pub fn new(
        subject: Vec<Subject>,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        Statement {
            statement_type: STATEMENT_TYPE_V1.to_string(),
            subject,
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }

    /// The payload bytes to sign: compact JSON in field order.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Strings, digests and a `serde_json::Value` (string keys only): cannot fail.
        serde_json::to_vec(self).expect("serialising an in-toto statement cannot fail")
    }

    /// Parses a payload as an in-toto Statement v1: exactly the four Statement fields,
    /// `_type` v1, at least one subject, each with a sha256 digest, a predicate type and
    /// an object predicate (the rules of in-toto-attestation's `Statement.validate`).
    /// Subject names are checked by the caller.
    pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
        let statement: Statement = serde_json::from_slice(bytes)?;
        if statement.statement_type != STATEMENT_TYPE_V1 {
            return Err(StatementError::Type(statement.statement_type));
        }
        if statement.subject.is_empty() {
            return Err(StatementError::NoSubjects);
        }
        if statement.predicate_type.is_empty() {
            return Err(StatementError::EmptyPredicateType);
        }
        if !statement.predicate.is_object() {
            return Err(StatementError::PredicateNotObject);
        }
        Ok(statement)
    }
}

/// What the SLSA Provenance v1 predicate of a run records. Times are supplied by the
/// caller (the clock is injected) as RFC 3339 UTC strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceInputs {
    /// The contract id from the spec.
    pub contract_id: String,
    /// Path of the spec inside the bundle, normally `spec.toml`.
    pub spec_path_in_bundle: String,
    /// SHA-256 of the spec as run.
    pub spec_sha256: Sha256Digest,
    /// The inputs: (input name, URI such as `inputs/people.csv`, SHA-256).
    pub inputs: Vec<(String, String, Sha256Digest)>,
    /// Whether the inputs are copied into the bundle (otherwise only their hashes are).
    pub embedded_inputs: bool,
    /// Tool name, e.g. `outcome-audit`.
    pub tool_name: String,
    /// Tool version.
    pub tool_version: String,
    /// polars version the tool was built with.
    pub polars_version: String,
    /// polars thread pool size of the run.
    pub polars_max_threads: usize,
    /// Whether matching was done blind to outcomes; recorded only when known.
    pub outcome_blind_matching: Option<bool>,
    /// When the run started (RFC 3339, UTC).
    pub started_on: String,
    /// When the run finished (RFC 3339, UTC).
    pub finished_on: String,
    /// Unique id of this run.
    pub invocation_id: String,
}

/// Builds the SLSA Provenance v1 predicate (`https://slsa.dev/provenance/v1`) of a run:
/// the spec is the external parameter; tool, polars version and thread count are
/// internal parameters; the inputs (sorted by name, then URI) are the resolved
/// dependencies; run times and the invocation id appear only in `runDetails.metadata`.
///
/// ```json
/// {
///   "buildDefinition": {
///     "buildType": "urn:outcome-audit:run:v1",
///     "externalParameters": {
///       "spec": { "path": "spec.toml", "digest": { "sha256": "…" } },
///       "contract_id": "doncaster-cohort-1",
///       "embedded_inputs": true
///     },
///     "internalParameters": {
///       "tool": "outcome-audit", "tool_version": "0.1.0",
///       "polars_version": "0.55.2", "polars_max_threads": 2
///     },
///     "resolvedDependencies": [
///       { "name": "people", "uri": "inputs/people.csv", "digest": { "sha256": "…" } }
///     ]
///   },
///   "runDetails": {
///     "builder": { "id": "urn:outcome-audit:builder:local" },
///     "metadata": { "invocationId": "…", "startedOn": "…", "finishedOn": "…" }
///   }
/// }
/// ```
pub fn provenance_predicate(p: &ProvenanceInputs) -> serde_json::Value {
    let mut inputs: Vec<&(String, String, Sha256Digest)> = p.inputs.iter().collect();
    inputs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let dependencies: Vec<serde_json::Value> = inputs
        .into_iter()
        .map(|(name, uri, digest)| {
            json!({ "name": name, "uri": uri, "digest": { "sha256": digest.to_hex() } })
        })
        .collect();
    let mut internal = serde_json::Map::new();
    internal.insert("tool".into(), json!(p.tool_name));
    internal.insert("tool_version".into(), json!(p.tool_version));
    internal.insert("polars_version".into(), json!(p.polars_version));
    internal.insert("polars_max_threads".into(), json!(p.polars_max_threads));
    if let Some(blind) = p.outcome_blind_matching {
        internal.insert("outcome_blind_matching".into(), json!(blind));
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "spec": {
                    "path": p.spec_path_in_bundle,
                    "digest": { "sha256": p.spec_sha256.to_hex() },
                },
                "contract_id": p.contract_id,
                "embedded_inputs": p.embedded_inputs,
            },
            "internalParameters": internal,
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": { "id": BUILDER_ID },
            "metadata": {
                "invocationId": p.invocation_id,
                "startedOn": p.started_on,
                "finishedOn": p.finished_on,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE v1 protocol document's test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        // Lengths are byte counts, not character counts.
        assert_eq!(pae("t", "é".as_bytes()), b"DSSEv1 1 t 2 \xc3\xa9".to_vec());
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn signed_envelope_verifies_and_returns_the_payload() {
        let k = key(1);
        let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &k);
        assert_eq!(envelope.signatures[0].keyid, keyid(&k.verifying_key()));
        assert_eq!(envelope.verify(&k.verifying_key()).unwrap(), b"{\"a\":1}");
        let reparsed = Envelope::parse(&envelope.to_json_bytes()).unwrap();
        assert_eq!(reparsed, envelope);
        // Deterministic: same inputs, same bytes.
        assert_eq!(
            sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &k).to_json_bytes(),
            envelope.to_json_bytes()
        );
    }

    #[test]
    fn envelope_json_uses_the_dsse_field_names() {
        let envelope = sign_envelope("text/plain", b"hi", &key(1));
        let text = String::from_utf8(envelope.to_json_bytes()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["payloadType", "payload", "signatures"]);
        let sig_keys: Vec<_> = value["signatures"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(sig_keys, ["keyid", "sig"]);
        assert_eq!(value["payload"], "aGk=");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn wrong_key_tampered_payload_and_tampered_signature_are_rejected() {
        let k = key(1);
        let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"payload", &k);

        let problems = envelope.verify(&key(2).verifying_key()).unwrap_err();
        assert!(matches!(
            problems[0],
            SignatureProblem::KeyidMismatch { .. }
        ));
        assert!(matches!(problems[1], SignatureProblem::Invalid { .. }));

        let mut tampered = envelope.clone();
        tampered.payload = BASE64.encode(b"payloaD");
        assert!(matches!(
            tampered.verify(&k.verifying_key()).unwrap_err()[..],
            [SignatureProblem::Invalid { .. }]
        ));

        let mut tampered = envelope.clone();
        tampered.payload_type = "text/plain".into();
        assert!(tampered.verify(&k.verifying_key()).is_err());

        let mut tampered = envelope.clone();
        let mut sig = BASE64.decode(&tampered.signatures[0].sig).unwrap();
        sig[10] ^= 1;
        tampered.signatures[0].sig = BASE64.encode(&sig);
        assert!(matches!(
            tampered.verify(&k.verifying_key()).unwrap_err()[..],
            [SignatureProblem::Invalid { .. }]
        ));

        let mut short = envelope.clone();
        short.signatures[0].sig = BASE64.encode([0u8; 63]);
        let problems = short.verify(&k.verifying_key()).unwrap_err();
        assert!(
            problems[0].to_string().contains("63 bytes"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn keyid_mismatch_is_reported_even_when_the_signature_is_valid() {
        let k = key(1);
        let mut envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"payload", &k);
        envelope.signatures[0].keyid = "0".repeat(64);
        assert!(matches!(
            envelope.verify(&k.verifying_key()).unwrap_err()[..],
            [SignatureProblem::KeyidMismatch { .. }]
        ));
        // An empty keyid is allowed by DSSE.
        envelope.signatures[0].keyid.clear();
        assert!(envelope.verify(&k.verifying_key()).is_ok());
    }

    #[test]
    fn parse_rejects_malformed_envelopes() {
        let good = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"payload", &key(1)).to_json_bytes();
        assert!(Envelope::parse(&good).is_ok());
        assert!(matches!(
            Envelope::parse(&good[..good.len() / 2]),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            Envelope::parse(b"not json"),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            Envelope::parse(br#"{"payloadType":"t","signatures":[{"sig":"AA=="}]}"#),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            Envelope::parse(
                br#"{"payloadType":"t","payload":"AA==","signatures":[{"keyid":"k"}]}"#
            ),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            Envelope::parse(br#"{"payloadType":"t","payload":"AA==","signatures":[]}"#),
            Err(EnvelopeError::NoSignatures)
        ));
        assert!(matches!(
            Envelope::parse(
                br#"{"payloadType":"t","payload":"!!!","signatures":[{"sig":"AA=="}]}"#
            ),
            Err(EnvelopeError::PayloadBase64(_))
        ));
        assert!(matches!(
            Envelope::parse(
                br#"{"payloadType":"t","payload":"AA==","signatures":[{"sig":"A*=="}]}"#
            ),
            Err(EnvelopeError::SignatureBase64 { index: 0, .. })
        ));
        assert!(matches!(
            Envelope::parse(
                br#"{"payloadType":"t","payload":"AA==","signatures":[{"sig":"AA=="}],"x":1}"#
            ),
            Err(EnvelopeError::Json(_))
        ));
        // keyid is optional in DSSE.
        let no_keyid = Envelope::parse(
            br#"{"payloadType":"t","payload":"AA==","signatures":[{"sig":"AA=="}]}"#,
        )
        .unwrap();
        assert_eq!(no_keyid.signatures[0].keyid, "");
    }

    #[test]
    fn statement_uses_in_toto_field_names_and_round_trips() {
        let statement = Statement::new(
            vec![Subject {
                name: "results.json".into(),
                digest: DigestSet {
                    sha256: Sha256Digest::of_bytes(b"{}"),
                },
            }],
            SLSA_PROVENANCE_V1,
            json!({"k": "v"}),
        );
        let bytes = statement.to_json_bytes();
        let expected = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"results.json","digest":{{"sha256":"{}"}}}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{{"k":"v"}}}}"#,
            Sha256Digest::of_bytes(b"{}")
        );
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        assert_eq!(Statement::parse(&bytes).unwrap(), statement);
    }

    #[test]
    fn statement_parse_rejects_other_types_and_shapes() {
        let digest = Sha256Digest::of_bytes(b"");
        let doc = |t: &str, extra: &str| {
            format!(
                r#"{{"_type":"{t}","subject":[{{"name":"a","digest":{{"sha256":"{digest}"}}}}],"predicateType":"p","predicate":{{}}{extra}}}"#
            )
        };
        assert!(Statement::parse(doc(STATEMENT_TYPE_V1, "").as_bytes()).is_ok());
        assert!(matches!(
            Statement::parse(doc("https://in-toto.io/Statement/v0.1", "").as_bytes()),
            Err(StatementError::Type(_))
        ));
        assert!(matches!(
            Statement::parse(doc(STATEMENT_TYPE_V1, r#","extra":1"#).as_bytes()),
            Err(StatementError::Json(_))
        ));
        assert!(matches!(
            Statement::parse(b"[]"),
            Err(StatementError::Json(_))
        ));
        let no_sha = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"md5":"x"}}],"predicateType":"p","predicate":{}}"#;
        assert!(matches!(
            Statement::parse(no_sha.as_bytes()),
            Err(StatementError::Json(_))
        ));
        let no_subjects = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p","predicate":{}}"#;
        assert!(matches!(
            Statement::parse(no_subjects.as_bytes()),
            Err(StatementError::NoSubjects)
        ));
        let array_predicate = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"a","digest":{{"sha256":"{digest}"}}}}],"predicateType":"p","predicate":[]}}"#
        );
        assert!(matches!(
            Statement::parse(array_predicate.as_bytes()),
            Err(StatementError::PredicateNotObject)
        ));
    }

    pub(crate) fn sample_provenance() -> ProvenanceInputs {
        ProvenanceInputs {
            contract_id: "doncaster-cohort-1".into(),
            spec_path_in_bundle: "spec.toml".into(),
            spec_sha256: Sha256Digest::of_bytes(b"spec"),
            inputs: vec![
                (
                    "people".into(),
                    "inputs/people.csv".into(),
                    Sha256Digest::of_bytes(b"people"),
                ),
                (
                    "convictions".into(),
                    "inputs/convictions.csv".into(),
                    Sha256Digest::of_bytes(b"convictions"),
                ),
            ],
            embedded_inputs: true,
            tool_name: "outcome-audit".into(),
            tool_version: "0.1.0".into(),
            polars_version: "0.55.2".into(),
            polars_max_threads: 2,
            outcome_blind_matching: None,
            started_on: "2024-01-02T03:04:05Z".into(),
            finished_on: "2024-01-02T03:04:09Z".into(),
            invocation_id: "run-1".into(),
        }
    }

    #[test]
    fn provenance_predicate_has_the_slsa_v1_shape() {
        let p = sample_provenance();
        let v = provenance_predicate(&p);
        let bd = &v["buildDefinition"];
        assert_eq!(bd["buildType"], BUILD_TYPE);
        assert_eq!(bd["externalParameters"]["spec"]["path"], "spec.toml");
        assert_eq!(
            bd["externalParameters"]["spec"]["digest"]["sha256"],
            p.spec_sha256.to_hex()
        );
        assert_eq!(
            bd["externalParameters"]["contract_id"],
            "doncaster-cohort-1"
        );
        assert_eq!(bd["externalParameters"]["embedded_inputs"], true);
        assert_eq!(bd["internalParameters"]["tool"], "outcome-audit");
        assert_eq!(bd["internalParameters"]["polars_version"], "0.55.2");
        assert_eq!(bd["internalParameters"]["polars_max_threads"], 2);
        assert!(bd["internalParameters"]
            .get("outcome_blind_matching")
            .is_none());
        // Dependencies sorted by name.
        assert_eq!(bd["resolvedDependencies"][0]["name"], "convictions");
        assert_eq!(bd["resolvedDependencies"][1]["uri"], "inputs/people.csv");
        assert_eq!(
            bd["resolvedDependencies"][1]["digest"]["sha256"],
            Sha256Digest::of_bytes(b"people").to_hex()
        );
        let rd = &v["runDetails"];
        assert_eq!(rd["builder"]["id"], BUILDER_ID);
        assert_eq!(rd["metadata"]["invocationId"], "run-1");
        assert_eq!(rd["metadata"]["startedOn"], "2024-01-02T03:04:05Z");
        assert_eq!(rd["metadata"]["finishedOn"], "2024-01-02T03:04:09Z");
        // Run times appear nowhere but runDetails.metadata.
        let text = serde_json::to_string(&bd).unwrap();
        assert!(!text.contains("2024-01-02"));

        let blind = provenance_predicate(&ProvenanceInputs {
            outcome_blind_matching: Some(true),
            ..p
        });
        assert_eq!(
            blind["buildDefinition"]["internalParameters"]["outcome_blind_matching"],
            true
        );
    }

    #[test]
    fn provenance_predicate_is_deterministic() {
        let a = serde_json::to_vec(&provenance_predicate(&sample_provenance())).unwrap();
        let mut reversed = sample_provenance();
        reversed.inputs.reverse();
        let b = serde_json::to_vec(&provenance_predicate(&reversed)).unwrap();
        assert_eq!(a, b);
    }
}
