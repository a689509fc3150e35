//! Bundle metadata parsers: arbitrary bytes as `attestation.dsse.json` (DSSE envelope),
//! its payload (in-toto Statement), `manifest.json` and `signer.pub.pem`. Each parser
//! must return a value or an error, never panic; what parses must serialise back to
//! bytes that parse to the same value (the writer and the reader agree).
#![no_main]

use libfuzzer_sys::fuzz_target;
use outcome_audit::bundle::dsse::{Envelope, Statement};
use outcome_audit::bundle::keys::{parse_public_key_pem, public_key_pem};
use outcome_audit::bundle::manifest::{Manifest, RawManifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        let again = Envelope::parse(&envelope.to_json_bytes()).expect("written envelope parses");
        assert_eq!(again, envelope);
        let _ = envelope
            .payload_bytes()
            .expect("parse checked the payload's base64");
    }
    if let Ok(statement) = Statement::parse(data) {
        let bytes = statement.to_json_bytes();
        let again = Statement::parse(&bytes).expect("written statement parses");
        assert_eq!(again.to_json_bytes(), bytes);
    }
    if let Ok(raw) = RawManifest::parse(data) {
        // The checks verify reports one by one agree with the all-or-nothing check.
        let problems = raw.entry_problems().len() + usize::from(raw.first_unsorted().is_some());
        if let Ok(manifest) = raw.check() {
            assert_eq!(problems, 0);
            let again =
                Manifest::parse(&manifest.to_json_bytes()).expect("written manifest parses");
            assert_eq!(again, manifest);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = parse_public_key_pem(text) {
            assert_eq!(
                parse_public_key_pem(&public_key_pem(&key)).expect("written key parses"),
                key
            );
        }
    }
});
