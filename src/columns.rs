//! The text columns of a loaded input, held compactly.
//!
//! polars parses every column as text into arrays of 16-byte views (values of up to 12
//! bytes held in the view itself). Most columns of an extract are short codes with few
//! distinct values (a sex, a disposal type, an offence code, a flag), and even an id of
//! eight characters costs twice its length as a view; at national scale the views of
//! the conviction columns alone were about 300 MB. So each parsed block is turned at
//! once into one [`TextChunk`] per column, and polars' arrays are freed:
//! - a column with at most 255 distinct values in the block keeps one byte per row, a
//!   code into the block's table of those values;
//! - any other column keeps its values one after another in one string, with the end of
//!   each row's value as a 4-byte offset.
//!
//! Values are exactly the text polars read, a null stays distinct from an empty
//! string, and rows stay in file order: [`TextColumn::get`] gives what polars' arrays
//! gave. Nothing here knows polars; `data` makes the chunks.

use std::sync::Arc;

/// At most this many distinct values (besides null) are coded in one byte.
const MAX_CODED: usize = u8::MAX as usize;

/// One block of one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextChunk {
    /// Few distinct values: per row a code, 0 for null, else 1 + an index into `values`.
    Coded {
        codes: Vec<u8>,
        values: Vec<Box<str>>,
    },
    /// Row `i`'s value is `text[start..ends[i]]`, where `start` is the previous row's
    /// end (0 for the first row); `nulls`, when some row is null, has bit `i` set for a
    /// null row.
    Plain {
        text: String,
        ends: Vec<u32>,
        nulls: Option<Vec<u64>>,
    },
}

impl TextChunk {
    /// The chunks holding `len` values, as `values()` gives them (called at most twice:
    /// once to try a coded chunk, once more to write a plain one if that fails).
    /// `text_bytes` is the total length of the values, for the plain chunk's capacity.
    /// Several chunks only when the text of one would pass 4 GiB.
    pub fn build<'v, I>(len: usize, text_bytes: usize, values: impl Fn() -> I) -> Vec<TextChunk>
    where
        I: Iterator<Item = Option<&'v str>>,
    {
        if let Some(coded) = Self::coded(len, values()) {
            return vec![coded];
        }
        let mut chunks = Vec::new();
        let mut plain = PlainBuilder::new(len, text_bytes);
        for v in values() {
            if let Some(s) = v {
                if plain.text.len() + s.len() > u32::MAX as usize {
                    let rest = len.saturating_sub(plain.ends.len());
                    let full = std::mem::replace(&mut plain, PlainBuilder::new(rest, 0));
                    chunks.push(full.finish());
                }
            }
            plain.push(v);
        }
        chunks.push(plain.finish());
        chunks
    }

    /// A coded chunk, or `None` when the values have more than [`MAX_CODED`] distinct.
    fn coded<'v>(len: usize, values: impl Iterator<Item = Option<&'v str>>) -> Option<TextChunk> {
        let mut codes = Vec::with_capacity(len);
        let mut table: Vec<&'v str> = Vec::new();
        let mut index: hashbrown::HashMap<&'v str, u8, foldhash::fast::FixedState> =
            hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0));
        // Runs of one value are common (sorted extracts, flags): the last code is
        // reused without a lookup.
        let mut last: Option<(&'v str, u8)> = None;
        for v in values {
            let code = match v {
                None => 0,
                Some(s) => match last {
                    Some((l, c)) if l == s => c,
                    _ => {
                        let c = match index.get(s) {
                            Some(&c) => c,
                            None => {
                                if table.len() == MAX_CODED {
                                    return None;
                                }
                                table.push(s);
                                let c = table.len() as u8;
                                index.insert(s, c);
                                c
                            }
                        };
                        last = Some((s, c));
                        c
                    }
                },
            };
            codes.push(code);
        }
        Some(TextChunk::Coded {
            codes,
            values: table.into_iter().map(Box::from).collect(),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            TextChunk::Coded { codes, .. } => codes.len(),
            TextChunk::Plain { ends, .. } => ends.len(),
        }
    }

    /// True when the chunk has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s value; `None` when null or past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        match self {
            TextChunk::Coded { codes, values } => match *codes.get(i)? {
                0 => None,
                c => values.get(c as usize - 1).map(|v| &**v),
            },
            TextChunk::Plain { text, ends, nulls } => {
                let end = *ends.get(i)? as usize;
                if let Some(nulls) = nulls {
                    if nulls.get(i >> 6).is_some_and(|w| w >> (i & 63) & 1 == 1) {
                        return None;
                    }
                }
                let start = if i == 0 { 0 } else { ends[i - 1] as usize };
                text.get(start..end)
            }
        }
    }

    /// Bytes held.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        match self {
            TextChunk::Coded { codes, values } => {
                codes.capacity() + values.iter().map(|v| v.len() + 16).sum::<usize>()
            }
            TextChunk::Plain { text, ends, nulls } => {
                text.capacity() + 4 * ends.capacity() + nulls.as_ref().map_or(0, |n| 8 * n.len())
            }
        }
    }
}

/// Writes a [`TextChunk::Plain`].
struct PlainBuilder {
    text: String,
    ends: Vec<u32>,
    nulls: Option<Vec<u64>>,
}

impl PlainBuilder {
    fn new(len: usize, text_bytes: usize) -> PlainBuilder {
        PlainBuilder {
            text: String::with_capacity(text_bytes.min(u32::MAX as usize)),
            ends: Vec::with_capacity(len),
            nulls: None,
        }
    }

    fn push(&mut self, v: Option<&str>) {
        let i = self.ends.len();
        match v {
            Some(s) => self.text.push_str(s),
            None => {
                let rows = self.ends.capacity();
                let nulls = self
                    .nulls
                    .get_or_insert_with(|| Vec::with_capacity(rows.div_ceil(64)));
                if nulls.len() <= i >> 6 {
                    nulls.resize((i >> 6) + 1, 0);
                }
                nulls[i >> 6] |= 1 << (i & 63);
            }
        }
        // The text of one plain chunk never passes u32::MAX bytes (see `build`).
        self.ends.push(self.text.len() as u32);
    }

    fn finish(mut self) -> TextChunk {
        // Sized for the rows given (a chunk cut short at 4 GiB of text has fewer).
        self.ends.shrink_to_fit();
        if let Some(nulls) = &mut self.nulls {
            nulls.resize(self.ends.len().div_ceil(64), 0);
        }
        TextChunk::Plain {
            text: self.text,
            ends: self.ends,
            nulls: self.nulls,
        }
    }
}

/// The text columns read from one input: each a list of chunks in row order (a CSV
/// input one per block, a Parquet input one per row group). Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    height: usize,
    columns: Vec<(String, Arc<[TextChunk]>)>,
}

impl TextTable {
    /// A table of `height` rows from its columns' chunks, each column holding exactly
    /// `height` rows.
    pub fn new(height: usize, columns: Vec<(String, Vec<TextChunk>)>) -> TextTable {
        debug_assert!(columns
            .iter()
            .all(|(_, c)| c.iter().map(TextChunk::len).sum::<usize>() == height));
        TextTable {
            height,
            columns: columns
                .into_iter()
                .map(|(name, chunks)| (name, Arc::from(chunks)))
                .collect(),
        }
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Column names, in the order read.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }

    /// The column called `name`, if it was read.
    pub fn column(&self, name: &str) -> Option<TextColumn<'_>> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, chunks)| TextColumn::of(chunks))
    }

    /// Every column, with its name, in the order read.
    pub fn iter(&self) -> impl Iterator<Item = (&str, TextColumn<'_>)> {
        self.columns
            .iter()
            .map(|(name, chunks)| (name.as_str(), TextColumn::of(chunks)))
    }

    /// Every column's values in row order, by name (for tests and comparisons).
    pub fn values(&self) -> Vec<(String, Vec<Option<String>>)> {
        self.iter()
            .map(|(name, column)| {
                let values = column.iter().map(|v| v.map(str::to_string)).collect();
                (name.to_string(), values)
            })
            .collect()
    }

    /// The chunks of the column called `name`, if it was read.
    pub fn chunks(&self, name: &str) -> Option<&[TextChunk]> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, chunks)| &**chunks)
    }

    /// Frees one column.
    pub fn drop_column(&mut self, name: &str) {
        self.columns.retain(|(n, _)| n != name);
    }

    /// Bytes held by the columns' chunks.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.columns
            .iter()
            .flat_map(|(_, c)| c.iter())
            .map(TextChunk::heap_bytes)
            .sum()
    }
}

/// One text column of a loaded input, read in place across its chunks.
#[derive(Clone)]
pub struct TextColumn<'a> {
    chunks: Vec<&'a TextChunk>,
    /// Row index just after each chunk.
    ends: Vec<usize>,
    /// For every `1 << SLOT_BITS` rows, the chunk holding the first of them, so that a
    /// row's chunk is searched for only among the chunks of its slot (one or two for a
    /// CSV input's blocks).
    slots: Vec<u32>,
}

/// Rows per entry of [`TextColumn::slots`] (as a power of two); a CSV input's chunks
/// are blocks of many more rows than this, so a slot's rows span at most a few chunks.
const SLOT_BITS: u32 = 12;

impl<'a> TextColumn<'a> {
    /// A column over these chunks, in row order.
    pub fn of(chunks: &'a [TextChunk]) -> TextColumn<'a> {
        let chunks: Vec<&'a TextChunk> = chunks.iter().collect();
        let ends: Vec<usize> = chunks
            .iter()
            .scan(0, |end, chunk| {
                *end += chunk.len();
                Some(*end)
            })
            .collect();
        let len: usize = ends.last().copied().unwrap_or(0);
        let mut slots = Vec::with_capacity((len >> SLOT_BITS) + 1);
        let mut c = 0u32;
        for slot in 0..=(len >> SLOT_BITS) {
            while (c as usize) < ends.len() && ends[c as usize] <= slot << SLOT_BITS {
                c += 1;
            }
            slots.push(c);
        }
        TextColumn {
            chunks,
            ends,
            slots,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of row `i` (0-based); `None` when empty or null, or past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        if let [only] = self.chunks.as_slice() {
            return only.get(i);
        }
        // Row i's chunk lies between the chunks holding the first rows of its slot and
        // of the next slot (many chunks when they are small, as tiny Parquet row groups
        // are): the first chunk that ends after it.
        let slot = i >> SLOT_BITS;
        let lo = *self.slots.get(slot)? as usize;
        let hi = self
            .slots
            .get(slot + 1)
            .map_or(self.ends.len(), |&next| next as usize + 1)
            .min(self.ends.len());
        let c = lo + self.ends.get(lo..hi)?.partition_point(|&end| end <= i);
        if c >= self.ends.len() {
            return None;
        }
        let start = if c == 0 { 0 } else { self.ends[c - 1] };
        self.chunks[c].get(i - start)
    }

    /// A reader of rows that remembers the chunk of the last row it read, for passes in
    /// row order (any order works; only a row in another chunk costs a search).
    pub fn cursor(&self) -> TextCursor<'a, '_> {
        TextCursor {
            column: self,
            chunk: 0,
            start: 0,
            end: 0,
        }
    }

    /// Every value in row order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&'a str>> + 'a {
        self.chunks
            .clone()
            .into_iter()
            .flat_map(|chunk| (0..chunk.len()).map(move |i| chunk.get(i)))
    }
}

/// See [`TextColumn::cursor`].
pub struct TextCursor<'a, 'c> {
    column: &'c TextColumn<'a>,
    /// The chunk last read, and the rows it holds (`start..end`; empty at first).
    chunk: usize,
    start: usize,
    end: usize,
}

impl<'a> TextCursor<'a, '_> {
    /// The value of row `i`, as [`TextColumn::get`] gives it.
    #[inline]
    pub fn at(&mut self, i: usize) -> Option<&'a str> {
        if !(self.start..self.end).contains(&i) {
            let ends = &self.column.ends;
            // Usually the next chunk (once a chunk has been read); else search.
            let next = self.end > 0 && i >= self.end;
            let c = if next && ends.get(self.chunk + 1).is_some_and(|&e| i < e) {
                self.chunk + 1
            } else {
                ends.partition_point(|&end| end <= i)
            };
            if c >= ends.len() {
                return None;
            }
            self.chunk = c;
            self.start = if c == 0 { 0 } else { ends[c - 1] };
            self.end = ends[c];
        }
        self.column.chunks[self.chunk].get(i - self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(values: &[Option<&str>]) -> Vec<TextChunk> {
        let bytes = values.iter().flatten().map(|s| s.len()).sum();
        TextChunk::build(values.len(), bytes, || values.iter().copied())
    }

    fn read_back(chunks: &[TextChunk]) -> Vec<Option<String>> {
        let column = TextColumn::of(chunks);
        (0..column.len())
            .map(|i| column.get(i).map(str::to_string))
            .collect()
    }

    #[test]
    fn few_distinct_values_are_coded_and_read_back_exactly() {
        let values = [
            Some("conviction"),
            Some("caution"),
            None,
            Some(""),
            Some("conviction"),
            Some("conviction"),
            None,
            Some("CONV "),
        ];
        let chunks = chunks_of(&values);
        assert_eq!(chunks.len(), 1);
        let TextChunk::Coded {
            codes,
            values: table,
        } = &chunks[0]
        else {
            panic!("expected a coded chunk, got {:?}", chunks[0]);
        };
        assert_eq!(codes, &[1, 2, 0, 3, 1, 1, 0, 4]);
        assert_eq!(table.len(), 4);
        // A null and an empty string stay different; spaces are kept.
        let expected: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(read_back(&chunks), expected);
    }

    #[test]
    fn the_256th_distinct_value_makes_a_plain_chunk() {
        let at_limit: Vec<String> = (0..MAX_CODED).map(|i| format!("v{i}")).collect();
        let values: Vec<Option<&str>> = at_limit.iter().map(|s| Some(s.as_str())).collect();
        assert!(matches!(chunks_of(&values)[0], TextChunk::Coded { .. }));

        let over: Vec<String> = (0..=MAX_CODED).map(|i| format!("v{i}")).collect();
        let mut values: Vec<Option<&str>> = over.iter().map(|s| Some(s.as_str())).collect();
        values.insert(3, None);
        values.insert(70, Some(""));
        values.push(None);
        let chunks = chunks_of(&values);
        assert_eq!(chunks.len(), 1);
        assert!(matches!(
            &chunks[0],
            TextChunk::Plain { nulls: Some(_), .. }
        ));
        let expected: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(read_back(&chunks), expected);
    }

    #[test]
    fn plain_chunks_without_nulls_keep_no_null_bits_and_read_multibyte_text() {
        let ids: Vec<String> = (0..1000).map(|i| format!("N{i:07}é")).collect();
        let values: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        let chunks = chunks_of(&values);
        let TextChunk::Plain { nulls, text, .. } = &chunks[0] else {
            panic!("expected a plain chunk");
        };
        assert!(nulls.is_none());
        assert_eq!(text.len(), ids.iter().map(String::len).sum::<usize>());
        assert_eq!(
            read_back(&chunks),
            ids.iter().map(|s| Some(s.clone())).collect::<Vec<_>>()
        );
        // Ten bytes of text and four of offset a row, against a 16-byte view each.
        assert!(chunks[0].heap_bytes() < 1000 * 16);
    }

    #[test]
    fn a_column_reads_across_chunks_of_both_kinds_by_index_cursor_and_iterator() {
        // Chunks of 1, 4,096 (a whole slot), 5,000 and 3 rows, coded and plain.
        let mut chunks = Vec::new();
        let mut all: Vec<Option<String>> = Vec::new();
        for (n, distinct) in [(1usize, 1usize), (4096, 3), (5000, 5000), (3, 2)] {
            let owned: Vec<Option<String>> = (0..n)
                .map(|i| (i % 7 != 5).then(|| format!("{n}-{}", i % distinct)))
                .collect();
            let values: Vec<Option<&str>> = owned.iter().map(|v| v.as_deref()).collect();
            chunks.extend(chunks_of(&values));
            all.extend(owned);
        }
        let column = TextColumn::of(&chunks);
        assert_eq!(column.len(), all.len());
        for (i, v) in all.iter().enumerate() {
            assert_eq!(column.get(i), v.as_deref(), "row {i}");
        }
        assert_eq!(column.get(all.len()), None);
        let iterated: Vec<Option<&str>> = column.iter().collect();
        assert!(iterated.iter().zip(&all).all(|(a, b)| *a == b.as_deref()));
        let mut cursor = column.cursor();
        let order: Vec<usize> = (0..all.len())
            .rev()
            .chain([0, 9099, 1, 4097, 4096, 9098, 5])
            .collect();
        for i in order {
            assert_eq!(cursor.at(i), all[i].as_deref(), "row {i}");
        }
        assert_eq!(cursor.at(all.len()), None);
    }

    #[test]
    fn a_table_finds_drops_and_sizes_its_columns() {
        let ids = chunks_of(&[Some("a"), Some("b")]);
        let flags = chunks_of(&[Some("Y"), None]);
        let mut table = TextTable::new(2, vec![("id".into(), ids), ("flag".into(), flags)]);
        assert_eq!(table.height(), 2);
        assert_eq!(table.names().collect::<Vec<_>>(), ["id", "flag"]);
        assert_eq!(table.column("flag").and_then(|c| c.get(0)), Some("Y"));
        assert!(table.column("nope").is_none());
        let before = table.heap_bytes();
        table.drop_column("id");
        assert!(table.column("id").is_none());
        assert!(table.heap_bytes() < before);
    }
}
