//! Inputs: hash every byte, read the columns the spec needs with polars, and turn bad
//! data into errors that name the file, the row and the column.
//!
//! Each input is hashed by a streaming SHA-256 on its own thread while polars parses the
//! same file, so reading the data once is the cost of both. CSV text is also checked to
//! be UTF-8 on that pass, so a stray Latin-1 byte is reported with its row rather than
//! as a parser failure. The same pass follows the CSV record structure (quotes, commas,
//! line ends), so a row with too many or too few fields, a quote never closed or a NUL
//! byte is reported with its row and column, and the number of rows polars returns is
//! checked against the number of records in the file: no row is dropped or padded
//! silently. Columns are read as text and converted by our own code, which knows the row
//! of every value it rejects. This is the only module besides the bundle writer that
//! touches the file system, and the only one that knows polars.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

pub use crate::columns::{TextChunk, TextColumn, TextCursor, TextTable};
use crate::dates::{self, Day};
use crate::digest::Sha256Digest;
use crate::direct_io::DirectWriter;
use crate::spec::{InputFormat, InputSpec};

/// Problems with input data. Each names the file and, where there is one, the row
/// (1-based, header not counted) and the column as written in the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: sha256 is {actual} but the spec pins {expected} for input `{input}`; the file has changed since the spec was written, or the pin is wrong")]
    DigestMismatch {
        path: PathBuf,
        input: String,
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error("{path}: no column {column:?}{mapped}; columns in the file are: {available}\n    help: map the canonical name to the file's column in [inputs.{input}.columns]")]
    MissingColumn {
        path: PathBuf,
        input: String,
        column: String,
        mapped: String,
        available: String,
    },
    #[error("{path}: row {row}: bytes are not UTF-8 (at byte {offset} of the file)\n    help: re-export the extract as UTF-8")]
    NotUtf8 {
        path: PathBuf,
        row: usize,
        offset: u64,
    },
    #[error("{path}: cannot parse as {format}: {message}")]
    Parse {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("{path}: row {row} has {found} field{s} but the header has {expected}\n    help: every row needs one value per header column (a blank line is a row with one empty field); quote values that contain commas or line breaks", s = if *found == 1 { "" } else { "s" })]
    RaggedRow {
        path: PathBuf,
        row: usize,
        found: usize,
        expected: usize,
    },
    #[error("{path}: row {row}: a double quote opens a quoted value that is never closed\n    help: a value that contains a double quote must be quoted, with the quote doubled (\"\")")]
    UnclosedQuote { path: PathBuf, row: usize },
    #[error("{path}: polars read {read} rows but the file holds {records} records\n    help: this is a reader disagreement, not a data rule; please report it with the file")]
    RowCount {
        path: PathBuf,
        read: usize,
        records: usize,
    },
    #[error("{path}: the header names column {column:?} twice (columns {first} and {second}), so which one the audit reads would be a guess\n    help: rename or remove one of them")]
    DuplicateColumn {
        path: PathBuf,
        column: String,
        first: usize,
        second: usize,
    },
    #[error("{path} is a symbolic link ({link}); inputs must be regular files, named as they are\n    help: point the spec's path at the real file, or copy the file beside the spec")]
    Symlink { path: PathBuf, link: PathBuf },
    #[error("{path}: row {row}, column {column:?}: {problem}\n    help: {help}")]
    BadValue {
        path: PathBuf,
        row: usize,
        column: String,
        problem: String,
        help: String,
    },
}

/// An input table after hashing and parsing. Cloning shares the parsed columns.
#[derive(Clone)]
pub struct LoadedInput {
    /// The input's name in the spec.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    pub format: InputFormat,
    /// SHA-256 of the file's bytes.
    pub sha256: Sha256Digest,
    /// File size in bytes.
    pub bytes: u64,
    /// Every column name in the file, in file order.
    pub header: Vec<String>,
    /// The columns read, as text (compact: see [`crate::columns`]).
    pub table: TextTable,
    /// Number of data rows.
    rows: usize,
    /// The whole file as text, for small documents read by our own parsers (risk models
    /// and their offence maps).
    pub text: Option<String>,
    /// Date columns parsed while the file was read (their text is not kept): column
    /// name, date format, day numbers with [`dates::MISSING`] where empty.
    days: Vec<(String, String, Arc<Vec<Day>>)>,
    /// The bundle copy written while the file was read, if one was asked for.
    pub copy: Option<InputCopy>,
}

impl LoadedInput {
    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Frees one parsed column once no stage needs its text.
    pub fn drop_column(&mut self, column: &str) {
        self.table.drop_column(column);
    }

    /// True when the column (file name) was read.
    pub fn has_column(&self, column: &str) -> bool {
        self.table.chunks(column).is_some()
    }

    /// Frees the parsed columns once no stage needs them; the digest, size, header and
    /// row count stay.
    pub fn release_frame(&mut self) {
        self.table = TextTable::default();
        self.days.clear();
    }

    /// A column's values as text (`None` = empty / null), by file column name. Reads
    /// the parsed column in place, without copying it.
    pub fn text(&self, column: &str) -> Result<TextColumn<'_>, DataError> {
        self.table.column(column).ok_or_else(|| DataError::Parse {
            path: self.path.clone(),
            format: format_name(self.format),
            message: format!("column {column:?} was not read"),
        })
    }

    /// A column of dates. Missing values are `None`; a value that is not a date in the
    /// input's `date_format` is an error naming its row.
    pub fn dates(&self, column: &str, format: &str) -> Result<Vec<Option<Day>>, DataError> {
        let values = self.text(column)?;
        crate::par::fill_ranges(values.len(), |range, out| {
            let base = range.start;
            for i in range {
                out[i - base] = day_of(values.get(i), format)
                    .map_err(|()| self.bad_date(i, column, values.get(i), format))?;
            }
            Ok(())
        })
    }

    /// A column of dates as day numbers, [`dates::MISSING`] where empty: the days parsed
    /// while the input was read when that column was (they are handed over, not kept),
    /// else parsed from its text (a value that is not a date is an error naming its row).
    pub fn take_days(&mut self, column: &str, format: &str) -> Result<Vec<Day>, DataError> {
        if let Some(k) = self
            .days
            .iter()
            .position(|(c, f, _)| c == column && f == format)
        {
            let (_, _, days) = self.days.remove(k);
            return Ok(Arc::unwrap_or_clone(days));
        }
        let values = self.text(column)?;
        parse_days(&values, format).map_err(|i| self.bad_date(i, column, values.get(i), format))
    }

    fn bad_date(
        &self,
        row_index: usize,
        column: &str,
        value: Option<&str>,
        format: &str,
    ) -> DataError {
        bad_date(&self.path, &self.name, row_index, column, value, format)
    }

    /// An error about one value, `row_index` counted from 0.
    pub fn bad_value(
        &self,
        row_index: usize,
        column: &str,
        problem: String,
        help: String,
    ) -> DataError {
        DataError::BadValue {
            path: self.path.clone(),
            row: row_index + 1,
            column: column.to_string(),
            problem,
            help,
        }
    }
}

fn format_name(f: InputFormat) -> &'static str {
    match f {
        InputFormat::Csv => "CSV",
        InputFormat::Parquet => "Parquet",
        InputFormat::Toml => "TOML",
    }
}

/// A value quoted for a message: whole if short, else its start and its length, so a
/// 10,000-character value does not become a 10,000-character message.
pub fn shown(value: &str) -> String {
    const KEEP: usize = 40;
    let chars = value.chars().count();
    if chars <= 2 * KEEP {
        format!("{value:?}")
    } else {
        let start: String = value.chars().take(KEEP).collect();
        format!("{start:?}… ({chars} characters)")
    }
}

/// The day number of one date value in `format`; `None` when empty, `Err` when it is
/// not a date.
fn day_of(value: Option<&str>, format: &str) -> Result<Option<Day>, ()> {
    match value.map(str::trim_ascii) {
        None | Some("") => Ok(None),
        Some(s) => dates::parse_with_format(s, format).map(Some).ok_or(()),
    }
}

/// Parses a column of dates on every core, [`dates::MISSING`] where empty; the error is
/// the index of the first value that is not a date.
fn parse_days(values: &TextColumn<'_>, format: &str) -> Result<Vec<Day>, usize> {
    parse_days_with(values.len(), |i| values.get(i), format)
}

/// [`parse_days`] of `len` values given by `value`.
fn parse_days_with<'v>(
    len: usize,
    value: impl Fn(usize) -> Option<&'v str> + Sync,
    format: &str,
) -> Result<Vec<Day>, usize> {
    crate::par::fill_ranges(len, |range, out| {
        let base = range.start;
        for i in range {
            out[i - base] = day_of(value(i), format)
                .map_err(|()| i)?
                .unwrap_or(dates::MISSING);
        }
        Ok(())
    })
}

/// The error for a value that is not a date, `row_index` counted from 0.
fn bad_date(
    path: &Path,
    input: &str,
    row_index: usize,
    column: &str,
    value: Option<&str>,
    format: &str,
) -> DataError {
    let value = value.map(str::trim_ascii).unwrap_or_default();
    DataError::BadValue {
        path: path.to_path_buf(),
        row: row_index + 1,
        column: column.to_string(),
        problem: format!("{} is not a date in the format {format}", shown(value)),
        help: format!("dates must be real calendar dates between {} and {}; set [inputs.{input}] date_format if the extract uses another layout", dates::MIN_YEAR, dates::MAX_YEAR),
    }
}

/// Result of the hashing pass.
struct HashPass {
    digest: Sha256Digest,
    bytes: u64,
    /// Offset of the first byte that is not UTF-8, for CSV.
    bad_utf8_at: Option<u64>,
    /// The record structure, for CSV.
    csv: Option<CsvScan>,
    /// The copy written on the way, if one was asked for.
    copy: Option<InputCopy>,
}

/// A copy of an input written while it is hashed: the bytes hashed, block by block.
#[derive(Debug, Clone)]
pub enum InputCopy {
    /// Written in full at this path (not yet fsynced: the bundle's writer does that
    /// with the other files, so the disk is not waited for while the audit runs).
    Written(PathBuf),
    /// Could not be written (a full disk, a read-only folder): the input is still read
    /// and audited, and the bundle is refused when it is written.
    Failed {
        path: PathBuf,
        error: Arc<std::io::Error>,
    },
}

/// The file a copy is being written to (directly where the file system takes it: see
/// [`crate::direct_io`]), or why it stopped.
struct CopyOut {
    path: PathBuf,
    file: std::io::Result<DirectWriter>,
}

impl CopyOut {
    fn create(path: &Path) -> CopyOut {
        let file = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| DirectWriter::create(path));
        CopyOut {
            path: path.to_path_buf(),
            file,
        }
    }

    fn write(&mut self, chunk: &[u8]) {
        if let Ok(f) = &mut self.file {
            if let Err(e) = f.write_all(chunk) {
                self.file = Err(e);
            }
        }
    }

    fn finish(self) -> InputCopy {
        match self.file.and_then(DirectWriter::finish) {
            Ok(_) => InputCopy::Written(self.path),
            Err(e) => InputCopy::Failed {
                path: self.path,
                error: Arc::new(e),
            },
        }
    }
}

/// The record structure of a CSV file, followed byte by byte on the hashing pass: how
/// many records it holds, the first whose field count differs from the header's, the
/// first NUL byte and an unclosed quote.
///
/// Quotes toggle quoting wherever they occur, as polars' line splitter does; for
/// well-formed RFC 4180 text (a value either quoted whole, with quotes doubled, or not
/// at all) that is the standard reading. A line break inside quotes is part of the
/// value; `\r` before a line break belongs to the line end.
#[derive(Debug, Default, Clone)]
pub struct CsvScan {
    quoted: bool,
    /// Record of the quote that opened the current quoted value.
    quote_opened: usize,
    /// Index of the current record (0 = the header).
    record: usize,
    /// Bytes fed so far, before the block being fed.
    fed: u64,
    /// File offset just after the last complete record's line break.
    record_end: u64,
    /// File offset just after the header's line break.
    header_end: Option<u64>,
    /// Field separators seen in the current record.
    separators: usize,
    /// Whether the current record has any byte besides `\r`.
    non_empty: bool,
    header_fields: Option<usize>,
    /// First ragged record: (record, fields).
    pub ragged: Option<(usize, usize)>,
    /// First NUL byte: (record, 0-based field).
    pub nul: Option<(usize, usize)>,
    /// Record whose quote is still open at the end of the file.
    pub unclosed_quote: Option<usize>,
}

impl CsvScan {
    /// Follows the next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.nul.is_none() {
            if let Some(z) = memchr::memchr(0, bytes) {
                self.feed_events(&bytes[..z], 0);
                self.nul = Some((self.record, self.separators));
                self.non_empty = true;
                self.feed_events(&bytes[z + 1..], z + 1);
                self.fed += bytes.len() as u64;
                return;
            }
        }
        self.feed_events(bytes, 0);
        self.fed += bytes.len() as u64;
    }

    /// Notes a record's line break at `at` in the block being fed (`at` counted from the
    /// start of that block).
    fn line_break(&mut self, at: usize) {
        self.end_record();
        self.record_end = self.fed + at as u64 + 1;
        if self.header_end.is_none() {
            self.header_end = Some(self.record_end);
        }
    }

    /// File offset just after the last complete record's line break.
    pub fn record_end(&self) -> u64 {
        self.record_end
    }

    /// File offset just after the header's line break, once it has been read.
    pub fn header_end(&self) -> Option<u64> {
        self.header_end
    }

    /// Visits only the bytes that change the structure (line breaks, quotes, commas),
    /// found with memchr's vectorised search; the rest only decide whether the last
    /// record is empty.
    fn feed_events(&mut self, bytes: &[u8], base: usize) {
        if !self.quoted && memchr::memchr(b'"', bytes).is_none() {
            // No quote in the block (the usual case): records are lines, and counting
            // each line's commas is a vectorised count.
            let commas = |s: &[u8]| s.iter().filter(|&&b| b == b',').count();
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', bytes) {
                self.separators += commas(&bytes[start..end]);
                self.line_break(base + end);
                start = end + 1;
            }
            let tail = &bytes[start..];
            self.separators += commas(tail);
            if !self.non_empty && tail.iter().any(|&b| b != b'\r') {
                self.non_empty = true;
            }
            return;
        }
        let mut tail = 0;
        for i in memchr::memchr3_iter(b'\n', b'"', b',', bytes) {
            match bytes[i] {
                b'\n' if !self.quoted => {
                    self.line_break(base + i);
                    tail = i + 1;
                    continue;
                }
                b'"' => {
                    if !self.quoted {
                        self.quote_opened = self.record;
                    }
                    self.quoted = !self.quoted;
                }
                b',' if !self.quoted => self.separators += 1,
                _ => {}
            }
            self.non_empty = true;
        }
        if !self.non_empty && bytes[tail..].iter().any(|&b| b != b'\r') {
            self.non_empty = true;
        }
    }

    fn end_record(&mut self) {
        let fields = self.separators + 1;
        match self.header_fields {
            None => self.header_fields = Some(fields),
            Some(expected) if fields != expected && self.ragged.is_none() => {
                self.ragged = Some((self.record, fields))
            }
            Some(_) => {}
        }
        self.record += 1;
        self.separators = 0;
        self.non_empty = false;
    }

    /// Ends the file: a last record without a line break still counts.
    pub fn finish(&mut self) {
        if self.quoted {
            self.unclosed_quote = Some(self.quote_opened);
            self.quoted = false;
        }
        if self.non_empty || self.separators > 0 {
            self.end_record();
        }
    }

    /// Number of data records (the header not counted).
    pub fn data_rows(&self) -> usize {
        self.record.saturating_sub(1)
    }

    /// Number of fields in the header record, once it has been read.
    pub fn header_fields(&self) -> Option<usize> {
        self.header_fields
    }

    /// Index of the record being read (0 = the header).
    pub fn current_record(&self) -> usize {
        self.record
    }
}

/// Reads `reader` to its end in 1 MiB blocks, handing each block to `f`.
fn for_each_block(mut reader: impl Read, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => f(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Size of the blocks in which a CSV input is read, hashed, checked and parsed.
const CSV_BLOCK: usize = 32 << 20;

/// Reads a CSV input in one pass: a reader thread reads it in blocks, hashing each,
/// checking UTF-8 and following the records, and hands on every run of complete records;
/// polars parses each run (with the header line in front) while the next block is read.
/// The file is never memory-mapped whole, so the peak memory is the parsed columns plus a
/// few blocks. Returns the pass and the parsed frame (columns as text, several chunks).
fn read_csv_blocks(
    path: &Path,
    columns: &[&str],
    dates: &DatesOnRead<'_>,
    copy_to: Option<&Path>,
) -> std::io::Result<(HashPass, PolarsResult<TextTable>, BlockDays)> {
    read_csv_blocks_of(path, columns, dates, copy_to, CSV_BLOCK)
}

/// Date columns of a CSV input to parse block by block as it is read, so that their
/// text is never held whole (at national scale, two date columns of text take more
/// memory than every other step of the audit).
#[derive(Debug, Clone, Copy, Default)]
pub struct DatesOnRead<'a> {
    /// File column names.
    pub columns: &'a [&'a str],
    /// Their date format (`date_format` of the input).
    pub format: &'a str,
}

/// A value that is not a date, found while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BadDateAt {
    /// Data row, counted from 0.
    row_index: usize,
    column: String,
    value: Option<String>,
}

/// The date columns parsed while reading, in [`DatesOnRead::columns`] order, or the
/// first value (lowest row, then column order) that is not a date.
type BlockDays = Result<Vec<Vec<Day>>, BadDateAt>;

/// Parses the date columns of one parsed block, whose first row is data row `first_row`,
/// appends their days to `days` and drops their text from the block.
fn take_block_days(
    block: &mut DataFrame,
    dates: &DatesOnRead<'_>,
    first_row: usize,
    days: &mut [Vec<Day>],
) -> PolarsResult<Result<(), BadDateAt>> {
    let mut parsed = Vec::with_capacity(dates.columns.len());
    let mut first_bad: Option<(usize, usize)> = None;
    for (k, column) in dates.columns.iter().enumerate() {
        let text = block.column(column)?.str()?;
        match parse_days_with(text.len(), |i| text.get(i), dates.format) {
            Ok(d) => parsed.push(d),
            Err(i) => {
                if first_bad.is_none_or(|(row, _)| i < row) {
                    first_bad = Some((i, k));
                }
                parsed.push(Vec::new());
            }
        }
    }
    if let Some((i, k)) = first_bad {
        let column = dates.columns[k];
        let value = block.column(column)?.str()?.get(i).map(str::to_string);
        return Ok(Err(BadDateAt {
            row_index: first_row + i,
            column: column.to_string(),
            value,
        }));
    }
    for (k, d) in parsed.into_iter().enumerate() {
        days[k].extend_from_slice(&d);
        block.drop_in_place(dates.columns[k])?;
    }
    Ok(Ok(()))
}

/// [`read_csv_blocks`] with a given block size (small ones in tests).
fn read_csv_blocks_of(
    path: &Path,
    columns: &[&str],
    dates: &DatesOnRead<'_>,
    copy_to: Option<&Path>,
    block: usize,
) -> std::io::Result<(HashPass, PolarsResult<TextTable>, BlockDays)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
    let file_path = path.to_path_buf();
    let copy_to = copy_to.map(Path::to_path_buf);
    let reader = std::thread::spawn(move || -> std::io::Result<HashPass> {
        use sha2::{Digest, Sha256};
        let mut file = File::open(&file_path)?;
        // A small file is read in one block of its own size, not into a 32 MiB buffer
        // (whose pages would all be faulted in and zeroed). Only the buffer's size
        // depends on this: a file that grows while it is read is still read whole, in
        // more blocks, and refused afterwards for having changed.
        let block = block
            .min(usize::try_from(file.metadata()?.len()).map_or(block, |n| n.saturating_add(1)));
        let mut copy = copy_to.as_deref().map(CopyOut::create);
        let mut hasher = Sha256::new();
        let mut scan = CsvScan::default();
        let mut carry = Vec::new();
        let mut bad_utf8_at = None;
        let mut total = 0u64;
        // `pending` holds the header line (after the first run) and the bytes read but
        // not yet handed on, which start at file offset `sent`.
        let mut pending: Vec<u8> = Vec::with_capacity(block);
        let mut header_len = 0usize;
        let mut sent = 0u64;
        let mut parser_gone = false;
        loop {
            let start = pending.len();
            pending.resize(start + block, 0);
            let n = loop {
                match file.read(&mut pending[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            pending.truncate(start + n);
            if n == 0 {
                break;
            }
            let chunk = &pending[start..];
            hasher.update(chunk);
            if let Some(copy) = &mut copy {
                copy.write(chunk);
            }
            scan.feed(chunk);
            if bad_utf8_at.is_none() {
                bad_utf8_at = check_utf8_block(&mut carry, chunk, total);
            }
            total += n as u64;
            if parser_gone {
                // Nothing is parsed any more: keep hashing and checking only.
                pending.truncate(header_len);
                continue;
            }
            let cut = header_len + (scan.record_end() - sent) as usize;
            if cut > header_len {
                let rest = pending[cut..].to_vec();
                if header_len == 0 {
                    header_len = scan.header_end().unwrap_or(0) as usize;
                }
                let header = pending[..header_len].to_vec();
                pending.truncate(cut);
                let run = std::mem::replace(&mut pending, header);
                pending.reserve(block + rest.len());
                pending.extend_from_slice(&rest);
                sent = scan.record_end();
                parser_gone = tx.send(run).is_err();
            }
        }
        if bad_utf8_at.is_none() && !carry.is_empty() {
            bad_utf8_at = Some(total - carry.len() as u64);
        }
        scan.finish();
        if pending.len() > header_len && !parser_gone {
            let _ = tx.send(pending);
        }
        drop(tx);
        tracing::debug!(path = %file_path.display(), "hashed");
        Ok(HashPass {
            digest: Sha256Digest(hasher.finalize().into()),
            bytes: total,
            bad_utf8_at,
            csv: Some(scan),
            copy: copy.map(CopyOut::finish),
        })
    });
    // Each block's columns are made compact as soon as it is parsed, and polars'
    // arrays freed (see [`crate::columns`]).
    let mut table: Option<Vec<(String, Vec<TextChunk>)>> = None;
    let mut failed = None;
    let mut days: Vec<Vec<Day>> = vec![Vec::new(); dates.columns.len()];
    let mut bad_date = None;
    let mut rows = 0usize;
    for run in rx {
        let parsed = parse_csv_bytes(run, columns).and_then(|mut df| {
            let height = df.height();
            if !dates.columns.is_empty() {
                if let Err(bad) = take_block_days(&mut df, dates, rows, &mut days)? {
                    bad_date = Some(bad);
                    return Ok(false);
                }
            }
            rows += height;
            let parsed = compact_columns(df, joined_chunk)?;
            match table.as_mut() {
                None => table = Some(parsed),
                Some(t) => {
                    // Every block is parsed with the same header and columns; a block
                    // that came back otherwise must not be joined by position.
                    let same = t.len() == parsed.len()
                        && t.iter().zip(&parsed).all(|((a, _), (b, _))| a == b);
                    if !same {
                        return Err(PolarsError::ComputeError(
                            "a block of the file was read with other columns than the first".into(),
                        ));
                    }
                    for ((_, chunks), (_, more)) in t.iter_mut().zip(parsed) {
                        chunks.extend(more);
                    }
                }
            }
            Ok(true)
        });
        match parsed {
            Ok(true) => {}
            // Dropping the receiver tells the reader to stop handing on runs; it still
            // hashes and checks the rest of the file.
            Ok(false) => break,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let pass = reader
        .join()
        .map_err(|_| std::io::Error::other("reading thread failed"))??;
    let table = match (failed, table) {
        (Some(e), _) => Err(e),
        (None, Some(t)) => Ok(TextTable::new(rows, t)),
        // No data row (or a bad date in the first block): the header alone gives the
        // columns.
        (None, None) => {
            let header_end = pass.csv.as_ref().and_then(|s| s.header_end());
            let mut bytes = std::fs::read(path)?;
            bytes.truncate(header_end.map_or(bytes.len(), |e| e as usize));
            parse_csv_bytes(bytes, columns).and_then(|mut df| {
                for column in dates.columns {
                    df.drop_in_place(column)?;
                }
                Ok(TextTable::new(0, compact_columns(df, joined_chunk)?))
            })
        }
    };
    let days = match bad_date {
        Some(bad) => Err(bad),
        None => Ok(days),
    };
    Ok((pass, table, days))
}

/// Parses CSV bytes (header line first) into text columns.
fn parse_csv_bytes(bytes: Vec<u8>, columns: &[&str]) -> PolarsResult<DataFrame> {
    let names: Arc<[PlSmallStr]> = columns.iter().map(|c| PlSmallStr::from(*c)).collect();
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_columns(Some(names))
        .with_rechunk(false)
        .into_reader_with_file_handle(std::io::Cursor::new(bytes))
        .finish()
}

/// A frame's text columns as compact chunks, `chunks` making each column's; each
/// column's polars arrays (and the bytes they were parsed from) are freed before the
/// next column is made.
fn compact_columns(
    frame: DataFrame,
    chunks: fn(&StringChunked) -> Vec<TextChunk>,
) -> PolarsResult<Vec<(String, Vec<TextChunk>)>> {
    frame
        .into_columns()
        .into_iter()
        .map(|column| Ok((column.name().to_string(), chunks(column.str()?))))
        .collect()
}

/// One chunk for all of a column's arrays: a CSV block's per-thread pieces joined.
fn joined_chunk(column: &StringChunked) -> Vec<TextChunk> {
    let bytes = column.downcast_iter().map(|a| a.total_bytes_len()).sum();
    TextChunk::build(column.len(), bytes, || column.iter())
}

/// One chunk per array: a Parquet input's row groups kept apart.
fn chunk_per_array(column: &StringChunked) -> Vec<TextChunk> {
    column
        .downcast_iter()
        .flat_map(|a| TextChunk::build(a.len(), a.total_bytes_len(), || a.iter()))
        .collect()
}

/// Streams a file through SHA-256, and for CSV checks UTF-8 and follows the records on
/// the way.
fn hash_pass(path: &Path, csv: bool, copy_to: Option<&Path>) -> std::io::Result<HashPass> {
    use sha2::{Digest, Sha256};
    let mut copy = copy_to.map(CopyOut::create);
    let check_utf8 = csv;
    let mut scan = csv.then(CsvScan::default);
    let mut hasher = Sha256::new();
    let mut carry: Vec<u8> = Vec::new();
    let mut total = 0u64;
    let mut bad_utf8_at = None;
    for_each_block(File::open(path)?, |chunk| {
        let n = chunk.len();
        hasher.update(chunk);
        if let Some(copy) = &mut copy {
            copy.write(chunk);
        }
        if let Some(scan) = &mut scan {
            scan.feed(chunk);
        }
        if check_utf8 && bad_utf8_at.is_none() {
            bad_utf8_at = check_utf8_block(&mut carry, chunk, total);
        }
        total += n as u64;
    })?;
    if check_utf8 && bad_utf8_at.is_none() && !carry.is_empty() {
        bad_utf8_at = Some(total - carry.len() as u64);
    }
    if let Some(scan) = &mut scan {
        scan.finish();
    }
    tracing::debug!(path = %path.display(), "hashed");
    Ok(HashPass {
        digest: Sha256Digest(hasher.finalize().into()),
        bytes: total,
        bad_utf8_at,
        csv: scan,
        copy: copy.map(CopyOut::finish),
    })
}

/// Checks that `chunk`, read at file offset `offset` after the `carry` bytes of a
/// character cut at the previous block's end, is UTF-8; keeps a character cut at this
/// block's end in `carry`. Returns the file offset of the first byte that is not UTF-8.
/// The block is validated where it lies: only a cut character (at most 4 bytes) is
/// copied.
fn check_utf8_block(carry: &mut Vec<u8>, chunk: &[u8], offset: u64) -> Option<u64> {
    let mut rest = chunk;
    let mut rest_at = offset;
    if !carry.is_empty() {
        let width = match carry[0] {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Some(offset - carry.len() as u64),
        };
        let need = (width - carry.len()).min(chunk.len());
        carry.extend_from_slice(&chunk[..need]);
        if carry.len() < width {
            // Still cut: the next block completes it (or the end of the file reports it).
            return match std::str::from_utf8(carry) {
                Err(e) if e.error_len().is_some() => Some(offset - (carry.len() - need) as u64),
                _ => None,
            };
        }
        if std::str::from_utf8(carry).is_err() {
            return Some(offset - (carry.len() - need) as u64);
        }
        carry.clear();
        rest = &chunk[need..];
        rest_at = offset + need as u64;
    }
    match std::str::from_utf8(rest) {
        Ok(_) => None,
        Err(e) => match e.error_len() {
            Some(_) => Some(rest_at + e.valid_up_to() as u64),
            None => {
                carry.extend_from_slice(&rest[e.valid_up_to()..]);
                None
            }
        },
    }
}

/// 1-based data row (the header is row 0) of the CSV record holding byte `offset` of a
/// file; line breaks inside quoted values do not start a row.
fn row_of_offset(path: &Path, offset: u64) -> std::io::Result<usize> {
    let mut scan = CsvScan::default();
    for_each_block(File::open(path)?.take(offset), |block| scan.feed(block))?;
    Ok(scan.current_record())
}

/// The first problem with a CSV file's record structure, if any.
fn csv_structure_error(path: &Path, header: &[String], scan: &CsvScan) -> Option<DataError> {
    if let Some((row, column)) = scan.nul {
        let column = header
            .get(column)
            .cloned()
            .unwrap_or_else(|| format!("field {}", column + 1));
        return Some(nul_error(path, row, column));
    }
    if let Some(row) = scan.unclosed_quote {
        return Some(DataError::UnclosedQuote {
            path: path.to_path_buf(),
            row,
        });
    }
    if let Some((row, found)) = scan.ragged {
        return Some(DataError::RaggedRow {
            path: path.to_path_buf(),
            row,
            found,
            expected: scan.header_fields().unwrap_or(0),
        });
    }
    None
}

/// Column names of a CSV file's header row.
fn csv_header(path: &Path) -> Result<Vec<String>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut line = Vec::new();
    BufReader::new(file)
        .read_until(b'\n', &mut line)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut text = String::from_utf8_lossy(&line).into_owned();
    if let Some(stripped) = text.strip_prefix('\u{feff}') {
        text = stripped.to_string();
    }
    let text = text.trim_end_matches(['\n', '\r']);
    Ok(split_csv_line(text))
}

/// Splits one CSV line on commas, honouring double quotes (the tool's own tables and
/// header rows).
pub fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Hashes and reads one input as text: the `columns` named (file name, canonical name),
/// which must exist, and with `all_columns` every other column of the file too.
pub fn load(
    input: &InputSpec,
    columns: &[(String, String)],
    all_columns: bool,
) -> Result<LoadedInput, DataError> {
    load_with(
        input,
        columns,
        &LoadOptions {
            all_columns,
            ..LoadOptions::default()
        },
    )
}

/// How [`load_with`] reads an input.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Read every column of the file, not only the columns named.
    pub all_columns: bool,
    /// Date columns of a CSV input (file names, read among the columns) to parse in the
    /// input's `date_format` block by block as it is read: their text is not kept, and
    /// [`LoadedInput::take_days`] gives their days. A value that is not a date is an
    /// error naming its row, reported once every check of the file as a whole passed.
    pub date_columns: &'a [&'a str],
    /// Write a copy of the file here while hashing it (the bundle's `inputs/` copy):
    /// the very bytes hashed, so it need not be read or hashed again.
    pub copy_to: Option<&'a Path>,
}

/// [`load`] with the choices of [`LoadOptions`].
pub fn load_with(
    input: &InputSpec,
    columns: &[(String, String)],
    opts: &LoadOptions<'_>,
) -> Result<LoadedInput, DataError> {
    let LoadOptions {
        all_columns,
        date_columns,
        copy_to,
    } = *opts;
    let path = input.path.clone();
    let io = |source| DataError::Io {
        path: path.clone(),
        source,
    };
    check_input_path(input)?;
    if input.format == InputFormat::Toml {
        return load_document(input);
    }
    let header = header_of(input)?;
    check_header(input, &header, columns)?;

    let before = Stamp::of(&path).map_err(io)?;
    let mut wanted: Vec<&str> = Vec::new();
    for (c, _) in columns {
        if !wanted.contains(&c.as_str()) {
            wanted.push(c);
        }
    }
    if all_columns {
        for h in &header {
            if !wanted.contains(&h.as_str()) {
                wanted.push(h);
            }
        }
    }
    let date_columns: Vec<&str> = if input.format == InputFormat::Csv {
        date_columns
            .iter()
            .copied()
            .filter(|c| wanted.contains(c))
            .collect()
    } else {
        Vec::new()
    };
    let on_read = DatesOnRead {
        columns: &date_columns,
        format: &input.date_format,
    };
    let (pass, parsed, days) = if input.format == InputFormat::Csv {
        read_csv_blocks(&path, &wanted, &on_read, copy_to).map_err(io)?
    } else {
        let hash_path = path.clone();
        let copy_path = copy_to.map(Path::to_path_buf);
        let hasher = std::thread::spawn(move || hash_pass(&hash_path, false, copy_path.as_deref()));
        // A Parquet input keeps one chunk per row group.
        let parsed = read_frame(input.format, &path, &wanted).and_then(|frame| {
            let height = frame.height();
            Ok(TextTable::new(
                height,
                compact_columns(frame, chunk_per_array)?,
            ))
        });
        let pass = hasher
            .join()
            .map_err(|_| DataError::Io {
                path: path.clone(),
                source: std::io::Error::other("hashing thread failed"),
            })?
            .map_err(io)?;
        (pass, parsed, Ok(Vec::new()))
    };
    tracing::debug!(
        input = %input.name,
        rss_mb = crate::pipeline::resident_mb(),
        peak_mb = crate::pipeline::peak_mb(),
        "parsed"
    );
    // The file is opened and read while it may be written: it must not have changed.
    if Stamp::of(&path).map_err(io)? != before || pass.bytes != before.len {
        return Err(DataError::Io {
            path: path.clone(),
            source: std::io::Error::other(
                "the file changed while it was being read; run again once it is no longer being written",
            ),
        });
    }
    if let Some(offset) = pass.bad_utf8_at {
        let row = row_of_offset(&path, offset).map_err(io)?;
        return Err(DataError::NotUtf8 {
            path: path.clone(),
            row,
            offset,
        });
    }
    if let Some(expected) = input.sha256 {
        if expected != pass.digest {
            return Err(DataError::DigestMismatch {
                path: path.clone(),
                input: input.name.clone(),
                expected,
                actual: pass.digest,
            });
        }
    }
    if let Some(e) = pass
        .csv
        .as_ref()
        .and_then(|scan| csv_structure_error(&path, &header, scan))
    {
        return Err(e);
    }
    let table = parsed.map_err(|e| DataError::Parse {
        path: path.clone(),
        format: format_name(input.format),
        message: e.to_string(),
    })?;
    let days = days.map_err(|bad| {
        bad_date(
            &path,
            &input.name,
            bad.row_index,
            &bad.column,
            bad.value.as_deref(),
            &input.date_format,
        )
    })?;
    // The columns keep their chunks as read (a CSV input one compact chunk per block, a
    // Parquet input one per row group): [`TextColumn`] reads across them, and joining
    // them would copy every column once more.
    // Never a row dropped or invented by the reader: polars must see every record.
    if let Some(scan) = &pass.csv {
        if table.height() != scan.data_rows() && !wanted.is_empty() {
            return Err(DataError::RowCount {
                path: path.clone(),
                read: table.height(),
                records: scan.data_rows(),
            });
        }
    }
    if input.format == InputFormat::Parquet {
        check_no_nul(&path, &table)?;
    }
    let days = date_columns
        .iter()
        .zip(days)
        .map(|(c, d)| (c.to_string(), input.date_format.clone(), Arc::new(d)))
        .collect();
    Ok(LoadedInput {
        text: None,
        days,
        copy: pass.copy,
        rows: table.height(),
        name: input.name.clone(),
        path,
        format: input.format,
        sha256: pass.digest,
        bytes: pass.bytes,
        header,
        table,
    })
}

/// What identifies a file's contents cheaply: size and modification time.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Stamp> {
        let meta = std::fs::metadata(path)?;
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Refuses an input that is not a regular file, or whose path as the spec wrote it
/// passes through a symbolic link (the file itself or a folder the spec names).
///
/// A link makes the spec name one file and the evidence hold another, and it can be
/// re-pointed between two runs of the same spec text without any trace in the spec.
/// Folders above the spec's own folder are not the spec's to name and are not checked.
pub fn check_input_path(input: &InputSpec) -> Result<(), DataError> {
    use std::path::Component;
    let path = &input.path;
    let written = Path::new(&input.path_as_written);
    // Replay reads the bundle's copies: then only the file itself is checked.
    let named = if path.ends_with(written) {
        written
            .components()
            .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
            .count()
    } else {
        1
    };
    for (depth, candidate) in path.ancestors().take(named.max(1)).enumerate() {
        if candidate.ends_with("..") {
            continue;
        }
        match std::fs::symlink_metadata(candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(candidate).unwrap_or_default();
                return Err(DataError::Symlink {
                    path: candidate.to_path_buf(),
                    link: if link.as_os_str().is_empty() {
                        PathBuf::from("unreadable target")
                    } else {
                        PathBuf::from(format!("-> {}", link.display()))
                    },
                });
            }
            Ok(meta) if depth == 0 && !meta.is_file() => {
                return Err(DataError::Io {
                    path: path.clone(),
                    source: std::io::Error::other("not a regular file"),
                });
            }
            Ok(_) => {}
            Err(source) if depth == 0 => {
                return Err(DataError::Io {
                    path: path.clone(),
                    source,
                })
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Refuses a NUL byte in any text value of a frame (Parquet strings; CSV files are
/// checked byte by byte on the hashing pass).
fn check_no_nul(path: &Path, table: &TextTable) -> Result<(), DataError> {
    for (name, column) in table.iter() {
        if let Some(i) = column
            .iter()
            .position(|v| v.is_some_and(|v| v.contains('\0')))
        {
            return Err(nul_error(path, i + 1, name.to_string()));
        }
    }
    Ok(())
}

fn nul_error(path: &Path, row: usize, column: String) -> DataError {
    DataError::BadValue {
        path: path.to_path_buf(),
        row,
        column,
        problem: "contains a NUL byte (\\0)".into(),
        help: "NUL bytes are never part of real values: the extract is damaged or not text; re-export it".into(),
    }
}

fn read_frame(format: InputFormat, path: &Path, columns: &[&str]) -> PolarsResult<DataFrame> {
    match format {
        InputFormat::Toml => Ok(DataFrame::empty()),
        InputFormat::Csv => {
            let names: Arc<[PlSmallStr]> = columns.iter().map(|c| PlSmallStr::from(*c)).collect();
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .with_columns(Some(names))
                .with_rechunk(false)
                .try_into_reader_with_file_path(Some(path.to_path_buf()))?
                .finish()
        }
        InputFormat::Parquet => {
            let file = File::open(path)?;
            let df = ParquetReader::new(file)
                .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
                .finish()?;
            // Every column as text, so both formats go through the same checks.
            let mut out = Vec::with_capacity(df.width());
            for col in df.columns() {
                out.push(col.cast(&DataType::String)?);
            }
            DataFrame::new_infer_height(out)
        }
    }
}

/// Reads a small document whole (a risk model, an offence map): hashed, checked against
/// its pin and for UTF-8, kept as text for its own parser.
pub fn load_document(input: &InputSpec) -> Result<LoadedInput, DataError> {
    check_input_path(input)?;
    let path = input.path.clone();
    let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    let digest = Sha256Digest::of_bytes(&bytes);
    if let Some(expected) = input.sha256 {
        if expected != digest {
            return Err(DataError::DigestMismatch {
                path,
                input: input.name.clone(),
                expected,
                actual: digest,
            });
        }
    }
    let size = bytes.len() as u64;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let row = e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        DataError::NotUtf8 {
            path: path.clone(),
            row,
            offset: offset as u64,
        }
    })?;
    let header = match input.format {
        InputFormat::Csv => split_csv_line(text.lines().next().unwrap_or("")),
        _ => Vec::new(),
    };
    if input.format == InputFormat::Csv {
        let mut scan = CsvScan::default();
        scan.feed(text.as_bytes());
        scan.finish();
        if let Some(e) = csv_structure_error(&path, &header, &scan) {
            return Err(e);
        }
    }
    let rows = match input.format {
        InputFormat::Csv => text.lines().count().saturating_sub(1),
        _ => 0,
    };
    Ok(LoadedInput {
        name: input.name.clone(),
        path,
        format: input.format,
        sha256: digest,
        bytes: size,
        header,
        table: TextTable::default(),
        rows,
        text: Some(text),
        days: Vec::new(),
        copy: None,
    })
}

/// Hashes a file without parsing it (used by `check`, the bundle and replay).
pub fn hash_file(path: &Path) -> Result<(Sha256Digest, u64), DataError> {
    Sha256Digest::of_file(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Column names of a table input, from its header (CSV) or schema (Parquet).
fn header_of(input: &InputSpec) -> Result<Vec<String>, DataError> {
    match input.format {
        InputFormat::Toml => Ok(Vec::new()),
        InputFormat::Csv => csv_header(&input.path),
        InputFormat::Parquet => {
            let file = File::open(&input.path).map_err(|source| DataError::Io {
                path: input.path.clone(),
                source,
            })?;
            let mut reader = ParquetReader::new(file);
            let schema = reader.schema().map_err(|e| DataError::Parse {
                path: input.path.clone(),
                format: "Parquet",
                message: e.to_string(),
            })?;
            Ok(schema.iter_names().map(|n| n.to_string()).collect())
        }
    }
}

/// Every column named (file name, canonical name) must be in the header.
fn check_header(
    input: &InputSpec,
    header: &[String],
    columns: &[(String, String)],
) -> Result<(), DataError> {
    for (second, name) in header.iter().enumerate() {
        if let Some(first) = header[..second].iter().position(|h| h == name) {
            return Err(DataError::DuplicateColumn {
                path: input.path.clone(),
                column: name.clone(),
                first: first + 1,
                second: second + 1,
            });
        }
    }
    for (file_col, canonical) in columns {
        if !header.iter().any(|h| h == file_col) {
            return Err(DataError::MissingColumn {
                path: input.path.clone(),
                input: input.name.clone(),
                column: file_col.clone(),
                mapped: if file_col != canonical {
                    format!(" (mapped from canonical {canonical:?})")
                } else {
                    String::new()
                },
                available: header.join(", "),
            });
        }
    }
    Ok(())
}

/// Checks that an input exists, is readable and has the columns named; does not parse rows.
pub fn check_columns(input: &InputSpec, columns: &[(String, String)]) -> Result<(), DataError> {
    check_input_path(input)?;
    if input.format == InputFormat::Toml {
        return Ok(());
    }
    let header = header_of(input)?;
    check_header(input, &header, columns)
}

/// Writes a frame of text columns as Parquet (used by `synth --parquet` and tests).
pub fn csv_to_parquet(csv: &Path, parquet: &Path) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: parquet.to_path_buf(),
        source,
    };
    let parse = |e: PolarsError| DataError::Parse {
        path: csv.to_path_buf(),
        format: "CSV",
        message: e.to_string(),
    };
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(csv.to_path_buf()))
        .map_err(parse)?
        .finish()
        .map_err(parse)?;
    let file = File::create(parquet).map_err(io)?;
    ParquetWriter::new(file).finish(&mut df).map_err(parse)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parquet_input_is_read_across_its_row_groups() {
        // polars gives one chunk per row group; the columns keep them (no joined copy),
        // and every row must still be found in its chunk.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let ids: Vec<String> = (0..50).map(|i| format!("P{i:02}")).collect();
        let notes: Vec<String> = (0..50)
            .map(|i| format!("a value longer than a view holds inline, row {i}"))
            .collect();
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("id".into(), &ids),
            Column::new("note".into(), &notes),
        ])
        .expect("frame");
        for row_group in [1, 7] {
            ParquetWriter::new(File::create(&path).expect("create"))
                .with_row_group_size(Some(row_group))
                .finish(&mut df)
                .expect("write");
            let input = InputSpec {
                name: "t".into(),
                path: path.clone(),
                path_as_written: "t.parquet".into(),
                format: InputFormat::Parquet,
                sha256: None,
                columns: std::collections::BTreeMap::new(),
                date_format: "%Y-%m-%d".into(),
            };
            let columns = [
                ("id".to_string(), "id".to_string()),
                ("note".to_string(), "note".to_string()),
            ];
            let loaded = load_with(&input, &columns, &LoadOptions::default()).expect("load");
            assert_eq!(loaded.rows(), 50);
            let chunks = loaded.table.chunks("note").expect("note").len();
            assert!(chunks > 1, "expected one chunk per row group, got {chunks}");
            let (id, note) = (
                loaded.text("id").expect("id"),
                loaded.text("note").expect("note"),
            );
            for i in 0..50 {
                assert_eq!(id.get(i), Some(ids[i].as_str()), "row {i}");
                assert_eq!(note.get(i), Some(notes[i].as_str()), "row {i}");
            }
            assert_eq!(id.get(50), None);
            // A cursor reads the same values in row order, backwards, by jumps across
            // chunks, and nothing past the end.
            let mut cursor = note.cursor();
            let order: Vec<usize> = (0..50)
                .chain((0..50).rev())
                .chain([3, 41, 0, 49, 7, 8])
                .collect();
            for i in order {
                assert_eq!(cursor.at(i), Some(notes[i].as_str()), "cursor at row {i}");
            }
            assert_eq!(cursor.at(50), None);
            assert_eq!(cursor.at(1000), None);
            assert_eq!(cursor.at(5), Some(notes[5].as_str()));
            let all: Vec<&str> = note.iter().map(Option::unwrap_or_default).collect();
            assert_eq!(all, notes);
        }
    }

    #[test]
    fn csv_header_split_honours_quotes() {
        assert_eq!(split_csv_line("a,\"b,c\",d"), vec!["a", "b,c", "d"]);
        assert_eq!(split_csv_line("\"x\"\"y\""), vec!["x\"y"]);
        assert_eq!(split_csv_line(""), vec![""]);
    }

    fn scan(text: &[u8]) -> CsvScan {
        let mut scan = CsvScan::default();
        // Fed in two pieces, to cross a block edge inside a quoted value.
        let (a, b) = text.split_at(text.len() / 2);
        scan.feed(a);
        scan.feed(b);
        scan.finish();
        scan
    }

    #[test]
    fn csv_read_in_blocks_equals_the_whole_file_read_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.csv");
        let mut text = String::from("id,note,code\r\n");
        for i in 0..40 {
            match i % 4 {
                0 => text += &format!("P{i},\"two\nlines, and a comma\",c{i}\r\n"),
                1 => text += &format!("P{i},\"say \"\"hi\"\"\",é{i}\n"),
                2 => text += &format!("P{i},,\n"),
                _ => text += &format!("P{i},plain,x\n"),
            }
        }
        text += "P40,last,no line break";
        std::fs::write(&path, &text).expect("write");
        let cols = ["id", "note", "code"];
        let no_dates = DatesOnRead::default();
        let (whole_pass, whole, _) =
            read_csv_blocks_of(&path, &cols, &no_dates, None, 1 << 20).expect("read");
        let whole = whole.expect("parse");
        assert_eq!(whole.height(), 41);
        assert_eq!(whole_pass.csv.as_ref().map(CsvScan::data_rows), Some(41));
        // The compact columns hold exactly what polars read from the whole file: the
        // same text, nulls where polars has nulls (the empty notes of `P2,,`).
        let polars = read_frame(InputFormat::Csv, &path, &cols).expect("polars");
        let expected: Vec<(String, Vec<Option<String>>)> = polars
            .columns()
            .iter()
            .map(|c| {
                let values = c.str().expect("text").iter();
                (
                    c.name().to_string(),
                    values.map(|v| v.map(str::to_string)).collect(),
                )
            })
            .collect();
        assert_eq!(whole.values(), expected);
        assert_eq!(expected[1].1[2], None);
        for block in [1, 2, 3, 5, 8, 13, 64, 200] {
            let (pass, frame, _) =
                read_csv_blocks_of(&path, &cols, &no_dates, None, block).expect("read");
            let frame = frame.expect("parse");
            assert_eq!(pass.digest, whole_pass.digest, "block {block}");
            assert_eq!(pass.bytes, text.len() as u64);
            assert_eq!(frame.values(), expected, "block {block}");
        }
    }

    /// A CSV of `n` rows: id, an offence date, a note (quoted, some with line breaks)
    /// and a sanction date (empty every seventh row).
    fn dated_csv(n: usize) -> String {
        let mut text = String::from("id,offence,note,sanction\n");
        for record in dated_records(n) {
            text += &record;
            text.push('\n');
        }
        text
    }

    /// The records of [`dated_csv`], without their line breaks.
    fn dated_records(n: usize) -> Vec<String> {
        let mut records = Vec::new();
        for i in 0..n {
            let offence = format!("20{:02}-{:02}-{:02}", i % 30, i % 12 + 1, i % 28 + 1);
            let sanction = if i % 7 == 3 {
                String::new()
            } else {
                format!("19{:02}-01-{:02}", 50 + i % 40, i % 31 + 1)
            };
            let note = if i % 5 == 0 {
                "\"two\nlines\""
            } else {
                "plain"
            };
            records.push(format!("P{i},{offence},{note},{sanction}"));
        }
        records
    }

    #[test]
    fn dates_parsed_while_reading_equal_the_text_parsed_afterwards_at_every_block_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("d.csv");
        let text = dated_csv(300);
        std::fs::write(&path, &text).expect("write");
        let cols = ["id", "offence", "note", "sanction"];
        let none = DatesOnRead::default();
        let (_, whole, _) = read_csv_blocks_of(&path, &cols, &none, None, 1 << 20).expect("read");
        let whole = whole.expect("parse");
        let expected: Vec<Vec<Day>> = ["offence", "sanction"]
            .iter()
            .map(|c| parse_days(&whole.column(c).expect("column"), "%Y-%m-%d").expect("dates"))
            .collect();
        assert_eq!(expected[1][3], dates::MISSING);
        assert_eq!(Some(expected[0][1]), dates::parse_iso("2001-02-02"));
        let on_read = DatesOnRead {
            columns: &["offence", "sanction"],
            format: "%Y-%m-%d",
        };
        for block in [7, 64, 100, 1000, 4096, 1 << 20] {
            let (_, frame, days) =
                read_csv_blocks_of(&path, &cols, &on_read, None, block).expect("read");
            let frame = frame.expect("parse");
            assert_eq!(days.expect("days"), expected, "block {block}");
            // The dates' text is not kept; the other columns are, in every row.
            assert_eq!(
                frame.names().collect::<Vec<_>>(),
                ["id", "note"],
                "block {block}"
            );
            assert_eq!(frame.height(), 300);
            let ids = frame.column("id").expect("id");
            assert_eq!(ids.len(), 300);
            assert_eq!(ids.get(0), Some("P0"));
            assert_eq!(ids.get(299), Some("P299"));
            assert_eq!(ids.get(300), None);
            let all: Vec<_> = ids.iter().collect();
            assert_eq!(all.len(), 300);
            assert!((0..300).all(|i| ids.get(i) == all[i]));
            assert!((0..300).all(|i| ids.get(i) == Some(format!("P{i}").as_str())));
        }
    }

    #[test]
    fn the_first_bad_date_in_file_order_is_reported_at_every_block_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.csv");
        let mut records = dated_records(300);
        // Data row 250 has a bad sanction date, row 260 a bad offence date.
        records[250] = "P250,2001-01-01,plain,2001-02-30".into();
        records[260] = "P260,yesterday,plain,2001-01-01".into();
        let text = format!("id,offence,note,sanction\n{}\n", records.join("\n"));
        std::fs::write(&path, text).expect("write");
        let cols = ["id", "offence", "note", "sanction"];
        let on_read = DatesOnRead {
            columns: &["offence", "sanction"],
            format: "%Y-%m-%d",
        };
        for block in [7, 64, 100, 1000, 1 << 20] {
            let (_, _, days) =
                read_csv_blocks_of(&path, &cols, &on_read, None, block).expect("read");
            let bad = days.expect_err("a bad date");
            assert_eq!(
                bad,
                BadDateAt {
                    row_index: 250,
                    column: "sanction".into(),
                    value: Some("2001-02-30".into())
                },
                "block {block}"
            );
        }
    }

    #[test]
    fn utf8_check_gives_the_same_answer_wherever_the_blocks_are_cut() {
        let texts: [&[u8]; 5] = [
            "a,é\n€,𝄞x\n".as_bytes(),
            b"ok,\xE2\x82\n",          // cut three-byte character
            b"\xF0\x9D\x84\x9E,\xC3(", // bad continuation
            b"abc\xC3",                // cut at the end of the file
            b"\xED\xA0\x80 surrogate", // not UTF-8 at all
        ];
        for text in texts {
            let expected = match std::str::from_utf8(text) {
                Ok(_) => None,
                Err(e) => Some(e.valid_up_to() as u64),
            };
            for size in 1..=text.len() {
                let mut carry = Vec::new();
                let mut found = None;
                let mut offset = 0u64;
                for chunk in text.chunks(size) {
                    if found.is_none() {
                        found = check_utf8_block(&mut carry, chunk, offset);
                    }
                    offset += chunk.len() as u64;
                }
                if found.is_none() && !carry.is_empty() {
                    found = Some(offset - carry.len() as u64);
                }
                assert_eq!(found, expected, "{text:?} in blocks of {size}");
            }
        }
    }

    #[test]
    fn csv_scan_gives_the_same_answer_wherever_the_blocks_are_cut() {
        let text: &[u8] = b"id,note\r\n1,\"a,\nb\"\r\n2,x\0y\n3\n\"4,\"\"z\",w\n5,";
        let whole = scan(text);
        for size in 1..=text.len() {
            let mut s = CsvScan::default();
            for chunk in text.chunks(size) {
                s.feed(chunk);
            }
            s.finish();
            assert_eq!(
                (s.data_rows(), s.ragged, s.nul, s.unclosed_quote),
                (
                    whole.data_rows(),
                    whole.ragged,
                    whole.nul,
                    whole.unclosed_quote
                ),
                "blocks of {size}"
            );
        }
        assert_eq!(whole.data_rows(), 5);
        assert_eq!(whole.ragged, Some((3, 1)));
        assert_eq!(whole.nul, Some((2, 1)));
    }

    #[test]
    fn csv_scan_counts_records_not_lines() {
        let s = scan(b"a,b\r\n1,\"x\r\ny\"\r\n2,\"say \"\"hi\"\"\"\r\n3,z");
        assert_eq!(s.data_rows(), 3);
        assert_eq!((s.ragged, s.nul, s.unclosed_quote), (None, None, None));
        assert_eq!(scan(b"a,b\n").data_rows(), 0);
        assert_eq!(scan(b"").data_rows(), 0);
    }

    #[test]
    fn csv_scan_finds_ragged_rows_nul_bytes_and_unclosed_quotes() {
        assert_eq!(scan(b"a,b\n1,2\n1,2,3\n1\n").ragged, Some((2, 3)));
        assert_eq!(scan(b"a,b\n1,2\n\n1,2\n").ragged, Some((2, 1)));
        assert_eq!(scan(b"a,b,c\n1,2,3\n1,x\x00y,3\n").nul, Some((2, 1)));
        assert_eq!(scan(b"a,b\n1,2\n1,\"open\n2,3\n").unclosed_quote, Some(2));
    }

    #[test]
    fn hash_pass_finds_the_first_non_utf8_byte_across_block_edges() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        let mut bytes = b"id,name\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', (1 << 20) - 9));
        // A valid two-byte sequence straddling the 1 MiB block boundary (data row 1)...
        bytes.extend("é\n".as_bytes());
        // ...then a lone Latin-1 byte on data row 2.
        let bad_at = bytes.len() + 2;
        bytes.extend(b"1,\xe9\n");
        std::fs::write(&p, &bytes).unwrap();
        let pass = hash_pass(&p, true, None).unwrap();
        assert_eq!(pass.bad_utf8_at, Some(bad_at as u64));
        assert_eq!(pass.digest, Sha256Digest::of_bytes(&bytes));
        assert_eq!(row_of_offset(&p, bad_at as u64).unwrap(), 2);
    }
}
