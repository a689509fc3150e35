//! CSV input loading: arbitrary bytes as a `convictions.csv`, read the way `run` reads
//! it (hashed, checked for UTF-8 and record structure, parsed by polars, every column as
//! text). Loading must return the table or a `DataError`, never panic, and a table it
//! returns must hold one row per record of the file with every column readable; a
//! `person_id` date column must parse or fail with a row inside the table.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use outcome_audit::data::{load, CsvScan, DataError};
use outcome_audit::spec::{InputFormat, InputSpec};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("convictions.csv");
    std::fs::write(&path, data).expect("write input");
    let input = InputSpec {
        name: "convictions".into(),
        path,
        path_as_written: "convictions.csv".into(),
        format: InputFormat::Csv,
        sha256: None,
        columns: BTreeMap::new(),
        date_format: "%Y-%m-%d".into(),
    };
    let wanted = [("person_id".to_string(), "person_id".to_string())];
    match load(&input, &wanted, true) {
        Ok(table) => {
            let mut scan = CsvScan::default();
            scan.feed(data);
            scan.finish();
            assert_eq!(table.rows(), scan.data_rows(), "rows differ from records");
            for name in &table.header {
                let column = table.text(name).expect("every column reads as text");
                assert_eq!(column.len(), table.rows());
            }
            if let Err(DataError::BadValue { row, .. }) = table.dates("person_id", "%Y-%m-%d") {
                assert!(row >= 1 && row <= table.rows());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
