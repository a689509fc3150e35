//! Spec parser: arbitrary bytes as an audit spec's TOML text. Reading and checking must
//! return a checked spec or a `SpecError` with at least one problem, never panic, and
//! every reported position must lie inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use outcome_audit::spec::AuditSpec;

fuzz_target!(|data: &[u8]| {
    match AuditSpec::from_bytes(Path::new("fuzz/spec.toml"), data.to_vec()) {
        Ok(spec) => assert_eq!(spec.bytes, data),
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error without problems");
            let lines = data.split(|&b| b == b'\n').count();
            for p in &e.problems {
                assert!(!p.message.is_empty());
                if let Some(line) = p.line {
                    assert!(line >= 1 && line <= lines, "line {line} of {lines}: {p:?}");
                }
            }
            assert!(!e.to_string().is_empty());
        }
    }
});
