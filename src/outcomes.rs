//! Per-person outcomes: which proven offences count for each cohort member, under the
//! spec's window, court lag, sanctions, counting unit and row rules.
//!
//! Every conviction row of a cohort member gets exactly one disposition, decided in a
//! fixed order (see [`Disposition`]); only `counted` rows feed the measures. The rules
//! for the window are:
//! - the window opens on the index date itself (an offence on the day of release counts);
//! - it closes `window months` calendar months later ([`crate::dates::add_months`]);
//!   with `end = "exclusive"` an offence on that closing day is outside, with
//!   `"inclusive"` it is inside;
//! - the offence must be proven by `window + lag` calendar months after the index date
//!   (computed from the index date in one step, so 29 February + 18 months is
//!   29 August), with the same end rule.

use std::collections::BTreeMap;

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hash, Hasher};

use crate::cohort::condition_holds;
use crate::data::{DataError, LoadedInput, TextColumn};
use crate::dates::{add_months, Day};
use crate::spec::{AuditSpec, CountingUnit, DuplicatePolicy, Rule, Sanction, WindowEnd};

/// What became of one conviction row for one cohort member, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Disposition {
    /// The offence or sanction date is missing.
    MissingDate,
    /// An exact copy of an earlier row (with `duplicates = "collapse"`).
    Duplicate,
    /// A sanction the spec does not count (e.g. a caution when only convictions count).
    SanctionNotCounted,
    /// Removed by the `[outcome] exclude` rule with this index.
    Rule(u16),
    /// Offence committed before the index date.
    BeforeIndex,
    /// Offence committed after the follow-up window.
    OutsideWindow,
    /// Sanction dated before the offence: impossible, so not counted, and reported.
    SanctionBeforeOffence,
    /// Proven after the window plus court lag.
    ProvenAfterLag,
    /// Counts as reoffending.
    #[default]
    Counted,
}

impl Disposition {
    /// Stable code written to tables and results (`rule:<id>` for exclude rules).
    pub fn code(&self, rules: &[Rule]) -> String {
        match self {
            Disposition::Rule(i) => format!(
                "rule:{}",
                rules
                    .get(usize::from(*i))
                    .map(|r| r.id.as_str())
                    .unwrap_or("?")
            ),
            other => other.fixed_code().unwrap_or_default().to_string(),
        }
    }

    /// The code of every disposition but `Rule`, without allocating.
    pub fn fixed_code(&self) -> Option<&'static str> {
        Some(match self {
            Disposition::MissingDate => "missing-date",
            Disposition::Duplicate => "duplicate",
            Disposition::SanctionNotCounted => "sanction-not-counted",
            Disposition::Rule(_) => return None,
            Disposition::BeforeIndex => "before-index",
            Disposition::OutsideWindow => "outside-window",
            Disposition::SanctionBeforeOffence => "sanction-before-offence",
            Disposition::ProvenAfterLag => "proven-after-lag",
            Disposition::Counted => "counted",
        })
    }
}

/// One conviction row evaluated for one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowOutcome {
    /// Index into the members list.
    pub member: u32,
    /// 0-based data row of the convictions input.
    pub row: u32,
    /// Offence date, or [`MISSING_DAY`].
    offence: Day,
    /// Sanction date, or [`MISSING_DAY`].
    proven: Day,
    pub disposition: Disposition,
}

impl RowOutcome {
    /// The offence date, if the row has one.
    pub fn offence_date(&self) -> Option<Day> {
        (self.offence != MISSING_DAY).then_some(self.offence)
    }

    /// The sanction date, if the row has one.
    pub fn sanction_date(&self) -> Option<Day> {
        (self.proven != MISSING_DAY).then_some(self.proven)
    }
}

/// Outcome of one cohort member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PersonOutcome {
    pub window_end: Day,
    pub lag_end: Day,
    /// Counted offences (rows).
    pub offences: u64,
    /// Distinct court appearances among counted rows.
    pub events: u64,
    /// Date of the first counted offence.
    pub first_offence: Option<Day>,
}

impl PersonOutcome {
    /// At least one counted offence.
    pub fn reoffended(&self) -> bool {
        self.offences > 0
    }

    /// Counted units under the spec's counting unit.
    pub fn units(&self, unit: CountingUnit) -> u64 {
        match unit {
            CountingUnit::Offence => self.offences,
            CountingUnit::ConvictionEvent => self.events,
        }
    }
}

/// The outcome stage's output.
#[derive(Debug, Clone)]
pub struct OutcomesResult {
    /// One per member, in the order the members were given.
    pub people: Vec<PersonOutcome>,
    /// Every conviction row of every member, sorted by member then row.
    pub rows: Vec<RowOutcome>,
    /// Conviction rows whose person is in no audited group.
    pub rows_not_in_audit: u64,
    /// Total conviction rows read.
    pub rows_total: u64,
    /// Whether the input has court appearance ids (otherwise events are not counted).
    pub has_appearances: bool,
}

impl OutcomesResult {
    /// Row dispositions per group, by code.
    pub fn disposition_counts(
        &self,
        spec: &AuditSpec,
        in_group: impl Fn(usize) -> bool,
    ) -> BTreeMap<String, u64> {
        // Counted in a slot per disposition (the fixed ones, then one per exclude rule):
        // millions of rows at national scale.
        const FIXED: [Disposition; 8] = [
            Disposition::MissingDate,
            Disposition::Duplicate,
            Disposition::SanctionNotCounted,
            Disposition::BeforeIndex,
            Disposition::OutsideWindow,
            Disposition::SanctionBeforeOffence,
            Disposition::ProvenAfterLag,
            Disposition::Counted,
        ];
        // Every variant named, so a new one cannot be counted in another's slot.
        let slot = |d: Disposition| match d {
            Disposition::MissingDate => 0,
            Disposition::Duplicate => 1,
            Disposition::SanctionNotCounted => 2,
            Disposition::BeforeIndex => 3,
            Disposition::OutsideWindow => 4,
            Disposition::SanctionBeforeOffence => 5,
            Disposition::ProvenAfterLag => 6,
            Disposition::Counted => 7,
            Disposition::Rule(i) => FIXED.len() + usize::from(i),
        };
        debug_assert!(FIXED.iter().enumerate().all(|(k, &d)| slot(d) == k));
        let mut counts = vec![0u64; FIXED.len() + spec.outcome.exclude.len()];
        for r in &self.rows {
            if in_group(r.member as usize) {
                let k = slot(r.disposition);
                if k >= counts.len() {
                    // A rule index beyond the spec's rules (never made so): counted all
                    // the same, under the code `Disposition::code` gives it.
                    counts.resize(k + 1, 0);
                }
                counts[k] += 1;
            }
        }
        let rules = counts.len() - FIXED.len();
        let every = FIXED
            .into_iter()
            .chain((0..rules).map(|i| Disposition::Rule(i as u16)));
        every
            .zip(counts)
            .filter(|&(_, n)| n > 0)
            .map(|(d, n)| (d.code(&spec.outcome.exclude), n))
            .collect()
    }
}

/// Columns of the convictions input the outcome stage reads: (file name, canonical name).
pub fn conviction_columns(spec: &AuditSpec) -> Vec<(String, String)> {
    let input = &spec.convictions;
    let mut cols: Vec<(String, String)> = [
        "person_id",
        "offence_date",
        "sanction_date",
        "sanction_type",
    ]
    .iter()
    .map(|c| (input.column(c).to_string(), c.to_string()))
    .collect();
    if spec.outcome.unit == CountingUnit::ConvictionEvent
        || input.columns.contains_key("appearance_id")
    {
        cols.push((
            input.column("appearance_id").to_string(),
            "appearance_id".into(),
        ));
    }
    for rule in &spec.outcome.exclude {
        let c = (input.column(&rule.column).to_string(), rule.column.clone());
        if !cols.iter().any(|(f, _)| *f == c.0) {
            cols.push(c);
        }
    }
    cols
}

/// The conviction date columns parsed as the input is read (their text is never held
/// whole): both dates, unless an `[outcome] exclude` rule reads one as text, or a
/// sensitivity grid may read them in another way.
pub fn dates_parsed_on_read(spec: &AuditSpec) -> Vec<&str> {
    let input = &spec.convictions;
    if spec.sensitivity.is_some() {
        return Vec::new();
    }
    let mut columns: Vec<&str> = Vec::new();
    for col in [input.column("offence_date"), input.column("sanction_date")] {
        let read_by_rule = spec
            .outcome
            .exclude
            .iter()
            .any(|r| input.column(&r.column) == col);
        if !read_by_rule && !columns.contains(&col) {
            columns.push(col);
        }
    }
    columns
}

/// Day number standing for a missing date (never a real date: years are limited to
/// 1900-2200).
pub const MISSING_DAY: Day = crate::dates::MISSING;
/// [`Row::rule`] when no exclude rule holds.
const NO_RULE: u16 = u16::MAX;

/// Hash of a row's values (every column but the dates), truncated to 32 bits: it only
/// orders and screens rows, and rows it calls equal are compared on their text.
fn content_hash<'a>(hasher: &FixedState, values: impl Iterator<Item = Option<&'a str>>) -> u32 {
    let mut h = hasher.build_hasher();
    for v in values {
        v.hash(&mut h);
    }
    h.finish() as u32
}

/// No row: no duplicate, or no appearance id.
const NONE: u32 = u32::MAX;

/// A conviction row reduced to what the per-person pass needs (20 bytes). The hashes
/// only order and screen rows: rows they call equal are compared on their text.
#[derive(Debug, Clone, Copy)]
struct Row {
    offence: Day,
    proven: Day,
    appearance_hash: u32,
    /// Hash of every column's value (the whole row).
    content_hash: u32,
    /// Index of the first `[outcome] exclude` rule that holds, or [`NO_RULE`].
    rule: u16,
    sanction: Sanction,
    /// The row names a court appearance (its id is not empty): only then is its
    /// appearance text read, and only when another row of the person has the same hash.
    has_appearance: bool,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            offence: MISSING_DAY,
            proven: MISSING_DAY,
            sanction: Sanction::Conviction,
            rule: NO_RULE,
            appearance_hash: 0,
            content_hash: 0,
            has_appearance: false,
        }
    }
}

/// The order in which a member's rows are compared: offence date, sanction date,
/// sanction, content hash, then row, packed in integers that order exactly as those
/// fields do (a day's sign bit flipped, so that negative days and [`MISSING_DAY`] come
/// first), so that sorting compares integers instead of fetching records.
fn sort_key(r: &Row, row: u32) -> (u64, u64, u32) {
    let day_bits = |d: Day| u64::from((d as u32) ^ 0x8000_0000);
    (
        day_bits(r.offence) << 32 | day_bits(r.proven),
        u64::from(r.sanction as u8) << 32 | u64::from(r.content_hash),
        row,
    )
}

/// A person whose outcome is computed: id and index date.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    pub person_id: &'a str,
    pub index_date: Day,
}

/// Computes every member's outcome and the disposition of every relevant row.
pub fn compute(
    spec: &AuditSpec,
    members: &[MemberRef<'_>],
    loaded: &mut LoadedInput,
) -> Result<OutcomesResult, DataError> {
    let input = &spec.convictions;
    let o = &spec.outcome;
    let offence_col = input.column("offence_date");
    let sanction_col = input.column("sanction_date");
    let offence_dates = loaded.take_days(offence_col, &input.date_format)?;
    let sanction_dates = if sanction_col == offence_col {
        offence_dates.clone()
    } else {
        loaded.take_days(sanction_col, &input.date_format)?
    };
    // From here on the dates are used parsed: their text is freed, unless a rule reads it.
    let mut dropped = Vec::new();
    for col in [offence_col, sanction_col] {
        if !o.exclude.iter().any(|r| input.column(&r.column) == col) {
            loaded.drop_column(col);
            dropped.push(col);
        }
    }
    let convictions: &LoadedInput = loaded;
    let id_col = input.column("person_id");
    let ids = convictions.text(id_col)?;
    let type_col = input.column("sanction_type");
    let types = convictions.text(type_col)?;
    let appearance_col = input.column("appearance_id");
    let appearances: Option<TextColumn<'_>> = if convictions.has_column(appearance_col) {
        Some(convictions.text(appearance_col)?)
    } else {
        None
    };
    // Every other column of the file, in file order, for the exact-duplicate test (the
    // two dates are compared parsed, as part of the sort key).
    let mut all_values: Vec<TextColumn<'_>> = Vec::new();
    for name in &convictions.header {
        if !dropped.contains(&name.as_str()) {
            all_values.push(convictions.text(name)?);
        }
    }
    let mut rule_values: Vec<TextColumn<'_>> = Vec::new();
    for rule in &o.exclude {
        rule_values.push(convictions.text(input.column(&rule.column))?);
    }

    // Which member(s) each row belongs to; rows of no member only count as such.
    // The table holds member indexes only (4 bytes each), hashed and compared by id.
    let id_hasher = FixedState::default();
    let id_hash = |id: &str| id_hasher.hash_one(id);
    let mut first_member: HashTable<u32> = HashTable::with_capacity(members.len());
    let mut next_same_person: Vec<u32> = vec![u32::MAX; members.len()];
    for (k, m) in members.iter().enumerate().rev() {
        let id = m.person_id;
        let hash = id_hash(id);
        match first_member.find_mut(hash, |&p| members[p as usize].person_id == id) {
            Some(prev) => {
                next_same_person[k] = *prev;
                *prev = k as u32;
            }
            None => {
                first_member
                    .insert_unique(hash, k as u32, |&p| id_hash(members[p as usize].person_id));
            }
        }
    }
    // The join of rows to members is a read-only lookup: both cores share it.
    let row_member: Vec<u32> = crate::par::fill_ranges(ids.len(), |range, out| {
        let base = range.start;
        let mut ids = ids.cursor();
        for i in range {
            let Some(id) = ids.at(i).map(str::trim_ascii).filter(|s| !s.is_empty()) else {
                return Err(convictions.bad_value(
                    i,
                    id_col,
                    "person id is missing".into(),
                    "every conviction row needs the id of the person convicted".into(),
                ));
            };
            out[i - base] = first_member
                .find(id_hash(id), |&p| members[p as usize].person_id == id)
                .copied()
                .unwrap_or(u32::MAX);
        }
        Ok(())
    })?;
    let mut counts = vec![0u32; members.len() + 1];
    let mut rows_not_in_audit = 0u64;
    for &m in &row_member {
        if m == u32::MAX {
            rows_not_in_audit += 1;
            continue;
        }
        let mut k = m;
        while k != u32::MAX {
            counts[k as usize + 1] += 1;
            k = next_same_person[k as usize];
        }
    }
    drop(first_member);
    tracing::debug!(
        rss_mb = crate::pipeline::resident_mb(),
        peak_mb = crate::pipeline::peak_mb(),
        "conviction columns read"
    );
    // One pass in file order turns every row into a compact record, so the per-person
    // pass below touches one small struct per row instead of every column.
    let codes: Vec<(&str, Sanction)> = o
        .sanction_codes
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let hasher = FixedState::default();
    let rows: Vec<Row> = crate::par::fill_ranges(ids.len(), |range, rows| {
        let base = range.start;
        // Each column read in row order through a cursor of its own.
        let mut types = types.cursor();
        let mut rule_values: Vec<_> = rule_values.iter().map(TextColumn::cursor).collect();
        let mut appearances = appearances.as_ref().map(TextColumn::cursor);
        let mut all_values: Vec<_> = all_values.iter().map(TextColumn::cursor).collect();
        for i in range {
            let t = types.at(i).map(str::trim_ascii).filter(|t| !t.is_empty());
            let Some(t) = t else {
                return Err(convictions.bad_value(
                    i,
                    type_col,
                    "sanction type is missing".into(),
                    "every row must say whether it is a conviction or a caution".into(),
                ));
            };
            let sanction = match codes.iter().find(|(k, _)| *k == t) {
                Some((_, s)) => *s,
                None => {
                    return Err(convictions.bad_value(
                        i,
                        type_col,
                        format!("unknown sanction type {t:?}"),
                        format!(
                        "known values are: {}; map the extract's codes in outcome.sanction_codes",
                        codes.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                    ),
                    ))
                }
            };
            if row_member[i] == u32::MAX {
                rows[i - base] = Row {
                    sanction,
                    ..Row::default()
                };
                continue;
            }
            let mut rule = NO_RULE;
            for (r, rule_spec) in o.exclude.iter().enumerate() {
                let holds = condition_holds(&rule_spec.condition, rule_values[r].at(i)).map_err(|problem| {
                    convictions.bad_value(
                        i,
                        input.column(&rule_spec.column),
                        problem,
                        format!("rule {:?} compares numbers; fix the value, or add an is_missing rule before it", rule_spec.id),
                    )
                })?;
                if holds {
                    rule = r as u16;
                    break;
                }
            }
            let appearance = appearances
                .as_mut()
                .and_then(|a| a.at(i))
                .map(str::trim_ascii);
            // Truncated to 32 bits: equal hashes are confirmed on the text.
            let appearance_hash = hasher.hash_one(appearance) as u32;
            let content_hash = content_hash(&hasher, all_values.iter_mut().map(|v| v.at(i)));
            rows[i - base] = Row {
                offence: offence_dates[i],
                proven: sanction_dates[i],
                sanction,
                rule,
                appearance_hash,
                content_hash,
                has_appearance: appearance.is_some_and(|a| !a.is_empty()),
            };
        }
        Ok(())
    })?;

    drop(offence_dates);
    drop(sanction_dates);
    tracing::debug!(
        rss_mb = crate::pipeline::resident_mb(),
        peak_mb = crate::pipeline::peak_mb(),
        "rows prepared"
    );

    // Conviction rows of each member, as one flat array sliced by member (CSR layout).

    for k in 1..counts.len() {
        counts[k] += counts[k - 1];
    }
    let offsets = counts;
    let mut fill = offsets.clone();
    let mut flat = vec![0u32; offsets[offsets.len() - 1] as usize];
    for (i, &m) in row_member.iter().enumerate() {
        let mut k = m;
        while k != u32::MAX {
            flat[fill[k as usize] as usize] = i as u32;
            fill[k as usize] += 1;
            k = next_same_person[k as usize];
        }
    }
    drop(row_member);
    drop(fill);
    tracing::debug!(
        rss_mb = crate::pipeline::resident_mb(),
        "rows grouped by member"
    );

    // Phase 1, while the text is held: each member's rows are sorted, and every row
    // compared with the others of the same person that need its text. Rows of one
    // person compare by content, then by position, so exact duplicates are adjacent and
    // the first copy in file order is the one kept. Hashes order the rows cheaply; equal
    // hashes are confirmed on the values themselves.
    let same_content =
        |a: usize, b: usize| -> bool { all_values.iter().all(|v| v.get(a) == v.get(b)) };
    let key = |r: &Row| (r.offence, r.proven, r.sanction, r.content_hash);
    let appearance_of = |i: usize| -> Option<&str> {
        appearances
            .as_ref()
            .and_then(|a| a.get(i))
            .map(str::trim_ascii)
            .filter(|a| !a.is_empty())
    };
    let threads = crate::par::threads().min(members.len()).max(1);
    let bounds = crate::par::split_weighted(&offsets, threads);
    // For each position of `flat`: the row it exactly duplicates, and the first row of
    // the member with the same court appearance id (`NONE` for either when there is none).
    let mut duplicate_of = vec![NONE; flat.len()];
    let mut appearance_first = vec![NONE; flat.len()];
    let compare = |range: std::ops::Range<usize>,
                   base: usize,
                   flat: &mut [u32],
                   duplicate_of: &mut [u32],
                   appearance_first: &mut [u32]| {
        // Rows kept (not duplicates) in the current run of rows with equal sort keys: a
        // row is a duplicate of the first of them with the same text.
        let mut kept_in_run: Vec<usize> = Vec::new();
        // The first row of each appearance id seen so far, with its hash.
        let mut seen: Vec<(u32, usize)> = Vec::new();
        // Each member's sort keys, gathered once ([`sort_key`]).
        let mut keyed: Vec<(u64, u64, u32)> = Vec::new();
        for m in range {
            let span = offsets[m] as usize - base..offsets[m + 1] as usize - base;
            let mine = &mut flat[span.clone()];
            keyed.clear();
            keyed.extend(mine.iter().map(|&a| sort_key(&rows[a as usize], a)));
            keyed.sort_unstable();
            for (slot, k) in mine.iter_mut().zip(&keyed) {
                *slot = k.2;
            }
            kept_in_run.clear();
            seen.clear();
            for (j, &row) in mine.iter().enumerate() {
                let i = row as usize;
                let r = &rows[i];
                if kept_in_run
                    .first()
                    .is_some_and(|&p| key(&rows[p]) != key(r))
                {
                    kept_in_run.clear();
                }
                match kept_in_run.iter().copied().find(|&p| same_content(p, i)) {
                    Some(p) => duplicate_of[span.start + j] = p as u32,
                    None => kept_in_run.push(i),
                }
                if r.has_appearance {
                    // The row's own id is read only once another row has its hash.
                    let mut mine: Option<Option<&str>> = None;
                    let first = seen
                        .iter()
                        .find(|&&(h, p)| {
                            h == r.appearance_hash
                                && appearance_of(p) == *mine.get_or_insert_with(|| appearance_of(i))
                        })
                        .map(|&(_, p)| p);
                    let first = first.unwrap_or_else(|| {
                        seen.push((r.appearance_hash, i));
                        i
                    });
                    appearance_first[span.start + j] = first as u32;
                }
            }
        }
    };
    std::thread::scope(|scope| {
        let mut flat_rest: &mut [u32] = &mut flat;
        let mut dup_rest: &mut [u32] = &mut duplicate_of;
        let mut app_rest: &mut [u32] = &mut appearance_first;
        let mut consumed = 0usize;
        let mut handles = Vec::new();
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let len = offsets[hi] as usize - consumed;
            let (f, ft) = std::mem::take(&mut flat_rest).split_at_mut(len);
            let (d, dt) = std::mem::take(&mut dup_rest).split_at_mut(len);
            let (a, at) = std::mem::take(&mut app_rest).split_at_mut(len);
            flat_rest = ft;
            dup_rest = dt;
            app_rest = at;
            let compare = &compare;
            let base = consumed;
            handles.push(scope.spawn(move || compare(lo..hi, base, f, d, a)));
            consumed += len;
        }
        for h in handles {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let rows_total = ids.len() as u64;
    let has_appearances = appearances.is_some();
    drop(all_values);
    drop(rule_values);
    // The text is not needed any more: it is freed before the outcomes are allocated.
    loaded.release_frame();
    let convictions: &LoadedInput = loaded;
    tracing::debug!(
        rss_mb = crate::pipeline::resident_mb(),
        peak_mb = crate::pipeline::peak_mb(),
        "rows compared"
    );

    // Phase 2: each row's disposition and each member's outcome, from the records alone.
    let window_add = o.window_months;
    let lag_add = o.window_months + o.lag_months;
    let inside = |day: Day, end: Day| match o.window_end {
        WindowEnd::Exclusive => day < end,
        WindowEnd::Inclusive => day <= end,
    };
    // Members are processed in contiguous ranges, one per thread; the ranges' results are
    // joined in member order, and an error is the first in member order, so the output is
    // the same for any number of threads.
    let process = |range: std::ops::Range<usize>,
                   people: &mut [PersonOutcome],
                   rows_out: &mut [RowOutcome]|
     -> Result<(), DataError> {
        let first_member = range.start;
        let mut next_out = 0usize;
        let mut counted_appearances: Vec<u32> = Vec::new();
        for m in range {
            let member = &members[m];
            let start = member.index_date;
            let window_end = add_months(start, window_add);
            let lag_end = add_months(start, lag_add);
            let span = offsets[m] as usize..offsets[m + 1] as usize;
            let mut outcome = PersonOutcome {
                window_end,
                lag_end,
                offences: 0,
                events: 0,
                first_offence: None,
            };
            counted_appearances.clear();
            for pos in span {
                let row = flat[pos];
                let i = row as usize;
                let r = rows[i];
                let duplicate = duplicate_of[pos];
                let disposition = 'd: {
                    if r.offence == MISSING_DAY || r.proven == MISSING_DAY {
                        break 'd Disposition::MissingDate;
                    }
                    let (offence, proven) = (r.offence, r.proven);
                    if duplicate != NONE {
                        match o.duplicates {
                        DuplicatePolicy::Collapse => break 'd Disposition::Duplicate,
                        DuplicatePolicy::Error => {
                            return Err(convictions.bad_value(
                                i,
                                id_col,
                                format!("row is an exact duplicate of row {}", duplicate as usize + 1),
                                "set outcome.duplicates = \"collapse\" to count such rows once, or remove the copy".into(),
                            ))
                        }
                        DuplicatePolicy::Keep => {}
                    }
                    }
                    if !o.sanctions.contains(&r.sanction) {
                        break 'd Disposition::SanctionNotCounted;
                    }
                    if r.rule != NO_RULE {
                        break 'd Disposition::Rule(r.rule);
                    }
                    if offence < start {
                        break 'd Disposition::BeforeIndex;
                    }
                    if !inside(offence, window_end) {
                        break 'd Disposition::OutsideWindow;
                    }
                    if proven < offence {
                        break 'd Disposition::SanctionBeforeOffence;
                    }
                    if !inside(proven, lag_end) {
                        break 'd Disposition::ProvenAfterLag;
                    }
                    Disposition::Counted
                };
                if disposition == Disposition::Counted {
                    outcome.offences += 1;
                    match appearance_first[pos] {
                        NONE if o.unit == CountingUnit::ConvictionEvent => {
                            return Err(convictions.bad_value(
                                i,
                                appearance_col,
                                "court appearance id is missing on a counted row".into(),
                                "conviction events are counted by appearance id; complete the extract"
                                    .into(),
                            ))
                        }
                        NONE => {}
                        first if !counted_appearances.contains(&first) => {
                            counted_appearances.push(first);
                        }
                        _ => {}
                    }
                    // Rows are in offence-date order, so the first counted one is the earliest.
                    if outcome.first_offence.is_none() {
                        outcome.first_offence = Some(r.offence);
                    }
                }
                rows_out[next_out] = RowOutcome {
                    member: m as u32,
                    row,
                    offence: r.offence,
                    proven: r.proven,
                    disposition,
                };
                next_out += 1;
            }
            outcome.events = counted_appearances.len() as u64;
            people[m - first_member] = outcome;
            // The member's rows back in file order, for the tables.
            let written = offsets[m + 1] as usize - offsets[m] as usize;
            rows_out[next_out - written..next_out].sort_unstable_by_key(|r| r.row);
        }
        debug_assert_eq!(next_out, rows_out.len());
        Ok(())
    };
    let mut people = vec![PersonOutcome::default(); members.len()];
    let mut rows_out = vec![RowOutcome::default(); flat.len()];
    let results: Vec<std::thread::Result<Result<(), DataError>>> = std::thread::scope(|scope| {
        let mut people_rest: &mut [PersonOutcome] = &mut people;
        let mut rows_rest: &mut [RowOutcome] = &mut rows_out;
        let mut consumed = 0usize;
        let mut handles = Vec::new();
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let len = offsets[hi] as usize - consumed;
            let (r, rt) = std::mem::take(&mut rows_rest).split_at_mut(len);
            let (p, pt) = std::mem::take(&mut people_rest).split_at_mut(hi - lo);
            rows_rest = rt;
            people_rest = pt;
            let process = &process;
            handles.push(scope.spawn(move || process(lo..hi, p, r)));
            consumed += len;
        }
        handles.into_iter().map(|h| h.join()).collect()
    });
    for r in results {
        match r {
            Ok(part) => part?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    Ok(OutcomesResult {
        people,
        rows: rows_out,
        rows_not_in_audit,
        rows_total,
        has_appearances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn packed_sort_keys_order_rows_as_their_fields_do() {
        let days = [MISSING_DAY, -40_000, -1, 0, 1, 15_000, 15_001, i32::MAX];
        let mut rows = Vec::new();
        for (k, &offence) in days.iter().enumerate() {
            for &proven in &days[k % 3..] {
                for sanction in [Sanction::Conviction, Sanction::Caution] {
                    for content_hash in [0, 7, u32::MAX] {
                        rows.push(Row {
                            offence,
                            proven,
                            sanction,
                            content_hash,
                            ..Row::default()
                        });
                    }
                }
            }
        }
        let mut by_fields: Vec<u32> = (0..rows.len() as u32).rev().collect();
        let mut by_key = by_fields.clone();
        by_fields.sort_by(|&a, &b| {
            let (x, y) = (&rows[a as usize], &rows[b as usize]);
            (x.offence, x.proven, x.sanction, x.content_hash, a).cmp(&(
                y.offence,
                y.proven,
                y.sanction,
                y.content_hash,
                b,
            ))
        });
        by_key.sort_by_key(|&a| sort_key(&rows[a as usize], a));
        assert_eq!(by_key, by_fields);
    }

    #[test]
    fn a_conviction_record_stays_at_twenty_bytes() {
        // 4.5 million of them are held at national scale.
        assert!(
            std::mem::size_of::<Row>() <= 20,
            "{}",
            std::mem::size_of::<Row>()
        );
    }

    /// Two offence codes whose rows (person D1, a conviction at appearance A01) have the
    /// same 32-bit content hash: found by a birthday search.
    fn colliding_codes() -> (String, String) {
        let hasher = FixedState::default();
        let mut seen: HashMap<u32, String> = HashMap::new();
        for n in 0u64.. {
            let code = format!("C{n}");
            let values = [
                Some("D1"),
                Some("conviction"),
                Some("A01"),
                Some(code.as_str()),
            ];
            let h = content_hash(&hasher, values.into_iter());
            if let Some(other) = seen.insert(h, code.clone()) {
                return (other, code);
            }
        }
        unreachable!()
    }

    /// Rows whose hashes collide but whose text differs are not duplicates, and do not
    /// hide a real copy of an earlier row behind them.
    #[test]
    fn a_hash_collision_neither_makes_nor_hides_a_duplicate() {
        let (x, y) = colliding_codes();
        assert_ne!(x, y);
        let dir = tempfile::tempdir().expect("temp dir");
        let spec_text = include_str!("../tests/scenarios/duplicates/collapse.toml");
        std::fs::write(dir.path().join("spec.toml"), spec_text).expect("spec");
        std::fs::write(
            dir.path().join("people.csv"),
            "person_id,index_date\nD1,2011-10-01\n",
        )
        .expect("people");
        // Data rows 1 and 3 are the same offence; row 2 differs from them only in its
        // code, whose hash equals theirs.
        let csv = format!(
            "person_id,offence_date,sanction_date,sanction_type,appearance_id,offence_code\n\
             D1,2012-01-01,2012-01-20,conviction,A01,{x}\n\
             D1,2012-01-01,2012-01-20,conviction,A01,{y}\n\
             D1,2012-01-01,2012-01-20,conviction,A01,{x}\n"
        );
        std::fs::write(dir.path().join("convictions.csv"), csv).expect("convictions");
        let spec = AuditSpec::load(&dir.path().join("spec.toml")).expect("spec");
        let mut convictions = crate::data::load_with(
            &spec.convictions,
            &conviction_columns(&spec),
            &crate::data::LoadOptions {
                all_columns: true,
                date_columns: &dates_parsed_on_read(&spec),
                copy_to: None,
            },
        )
        .expect("load");
        let members = [MemberRef {
            person_id: "D1",
            index_date: crate::dates::parse_iso("2011-10-01").expect("date"),
        }];
        let out = compute(&spec, &members, &mut convictions).expect("outcomes");
        let dispositions: Vec<(u32, Disposition)> =
            out.rows.iter().map(|r| (r.row, r.disposition)).collect();
        assert_eq!(
            dispositions,
            [
                (0, Disposition::Counted),
                (1, Disposition::Counted),
                (2, Disposition::Duplicate)
            ]
        );
        assert_eq!(out.people[0].offences, 2);
        assert_eq!(out.people[0].events, 1);
    }
}
