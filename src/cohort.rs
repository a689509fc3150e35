//! The cohort: who is measured, and a ledger of everyone who is not, with the rule that
//! left them out.
//!
//! Exclusions are where gaming hides, so every row of the people input ends up in the
//! ledger exactly once: eligible for a period, or excluded with a rule id and its
//! reason. Rules run in the order the spec lists them — periods first, then include
//! rules, then exclude rules, then the repeat-index rule — and the first that applies is
//! the one recorded.

use std::collections::BTreeMap;

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use crate::data::{DataError, LoadedInput, TextColumn};
use crate::dates::Day;
use crate::exact::Ratio;
use crate::spec::{AuditSpec, Condition, GroupRole, InputSpec, Period, RepeatIndex, Rule};

/// Ledger rule id for a row with no index date.
pub const INDEX_DATE_MISSING: &str = "index-date-missing";
/// Ledger rule id for a row whose index date is in no period.
pub const OUTSIDE_PERIODS: &str = "outside-periods";
/// Ledger rule id for a person's later index events in one period.
pub const REPEAT_INDEX: &str = "repeat-index";

/// A set of people measured together: one cohort period, or the historical baseline.
#[derive(Debug, Clone)]
pub struct Group {
    pub period: Period,
    pub role: GroupRole,
}

/// Person ids of the people input, one per row, stored in one buffer.
#[derive(Debug, Clone, Default)]
pub struct Ids {
    text: String,
    ends: Vec<usize>,
}

impl Ids {
    /// Room for `rows` ids of `bytes` bytes in all, so the buffers are allocated once.
    fn with_capacity(rows: usize, bytes: usize) -> Ids {
        Ids {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    /// The id of people row `i` (0-based).
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// One eligible person in one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Index into [`CohortResult::groups`].
    pub group: usize,
    /// 0-based row of the people input (index into [`CohortResult::ids`]).
    pub person: usize,
    pub index_date: Day,
}

/// Why a people row is not in the cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// No index date.
    IndexDateMissing,
    /// Index date in no period.
    OutsidePeriods,
    /// Failed the include rule with this index.
    Include(u32),
    /// Matched the exclude rule with this index.
    Exclude(u32),
    /// A later index event of a person already in the period.
    RepeatIndex,
}

impl Exclusion {
    /// Rule id and reason, for ledgers and results.
    pub fn describe<'a>(&self, spec: &'a AuditSpec) -> (&'a str, &'a str) {
        match self {
            Exclusion::IndexDateMissing => (INDEX_DATE_MISSING, "no index date in the data"),
            Exclusion::OutsidePeriods => (
                OUTSIDE_PERIODS,
                "index date outside every cohort and baseline period",
            ),
            Exclusion::Include(i) => {
                let r = &spec.cohort.include[*i as usize];
                (r.id.as_str(), r.reason.as_str())
            }
            Exclusion::Exclude(i) => {
                let r = &spec.cohort.exclude[*i as usize];
                (r.id.as_str(), r.reason.as_str())
            }
            Exclusion::RepeatIndex => (REPEAT_INDEX, REPEAT_REASON),
        }
    }
}

/// One row of the people input and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    pub index_date: Option<Day>,
    /// Group the index date falls in, if any.
    pub group: Option<u32>,
    /// `None` when the row is in the cohort.
    pub excluded: Option<Exclusion>,
}

/// The cohort stage's output.
#[derive(Debug, Clone)]
pub struct CohortResult {
    pub groups: Vec<Group>,
    /// Person id of every people row.
    pub ids: Ids,
    /// Eligible people, by group then people row.
    pub members: Vec<Member>,
    /// Every people row, in file order (row `i + 1` is `ledger[i]`).
    pub ledger: Vec<LedgerEntry>,
}

/// Per-group exclusion counts by rule, in rule order, for results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExclusionCount {
    pub rule: String,
    pub reason: String,
    pub count: u64,
}

impl CohortResult {
    /// The person id of a member.
    pub fn person_id(&self, m: &Member) -> &str {
        self.ids.get(m.person)
    }

    /// Rows outside every group, by rule (index date missing, outside periods).
    pub fn unassigned_counts(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in self.ledger.iter().filter(|e| e.group.is_none()) {
            let rule = match e.excluded {
                Some(Exclusion::IndexDateMissing) => INDEX_DATE_MISSING,
                _ => OUTSIDE_PERIODS,
            };
            *m.entry(rule.to_string()).or_insert(0) += 1;
        }
        m
    }

    /// Rows whose index date falls in a group.
    pub fn group_rows(&self, group: usize) -> u64 {
        self.ledger
            .iter()
            .filter(|e| e.group == Some(group as u32))
            .count() as u64
    }

    /// Rows in one group: (eligible, exclusions by rule in the order rules are applied).
    pub fn group_counts(&self, spec: &AuditSpec, group: usize) -> (u64, Vec<ExclusionCount>) {
        let n_inc = spec.cohort.include.len();
        let n_exc = spec.cohort.exclude.len();
        let mut counts = vec![0u64; n_inc + n_exc + 1];
        let mut eligible = 0;
        for e in self.ledger.iter().filter(|e| e.group == Some(group as u32)) {
            match e.excluded {
                None => eligible += 1,
                Some(Exclusion::Include(i)) => counts[i as usize] += 1,
                Some(Exclusion::Exclude(i)) => counts[n_inc + i as usize] += 1,
                Some(Exclusion::RepeatIndex) => counts[n_inc + n_exc] += 1,
                Some(_) => {}
            }
        }
        let mut kinds: Vec<Exclusion> = (0..n_inc as u32).map(Exclusion::Include).collect();
        kinds.extend((0..n_exc as u32).map(Exclusion::Exclude));
        kinds.push(Exclusion::RepeatIndex);
        let out = kinds
            .iter()
            .zip(counts)
            .map(|(k, count)| {
                let (rule, reason) = k.describe(spec);
                ExclusionCount {
                    rule: rule.to_string(),
                    reason: reason.to_string(),
                    count,
                }
            })
            .collect();
        (eligible, out)
    }
}

const REPEAT_REASON: &str = "a later index event of a person already in this period";

/// File column a rule reads: the mapped name when the rule names a canonical column.
pub fn rule_column<'a>(input: &'a InputSpec, rule: &'a Rule) -> &'a str {
    input.column(&rule.column)
}

/// Evaluates one rule condition on one cell.
///
/// A missing (empty) value equals nothing and is in no list, so `equals` and `in` are
/// false and `not_equals` and `not_in` are true for it. A numeric comparison cannot be
/// made on a missing or non-numeric value: that is an error for the caller to place
/// (put an `is_missing` rule first to decide what missing values mean).
pub fn condition_holds(condition: &Condition, value: Option<&str>) -> Result<bool, String> {
    let value = value.map(str::trim_ascii).filter(|v| !v.is_empty());
    let numeric = || -> Result<Ratio, String> {
        match value {
            Some(v) => Ratio::parse_decimal(v).map_err(|_| format!("{v:?} is not a number")),
            None => Err("the value is missing, so it cannot be compared as a number".into()),
        }
    };
    Ok(match condition {
        Condition::Equals(x) => value == Some(x.as_str()),
        Condition::NotEquals(x) => value != Some(x.as_str()),
        Condition::In(set) => value.is_some_and(|v| set.contains(v)),
        Condition::NotIn(set) => !value.is_some_and(|v| set.contains(v)),
        Condition::LessThan(x) => numeric()? < *x,
        Condition::AtMost(x) => numeric()? <= *x,
        Condition::GreaterThan(x) => numeric()? > *x,
        Condition::AtLeast(x) => numeric()? >= *x,
        Condition::IsMissing(b) => value.is_none() == *b,
    })
}

/// Columns of a people-shaped input (people or pool) the audit reads: (file name,
/// canonical name): ids, index dates, rule columns, and matching covariates.
pub fn people_columns(spec: &AuditSpec, input: &InputSpec) -> Vec<(String, String)> {
    let mut cols = vec![
        (
            input.column("person_id").to_string(),
            "person_id".to_string(),
        ),
        (
            input.column("index_date").to_string(),
            "index_date".to_string(),
        ),
    ];
    let mut extra: Vec<&str> = spec
        .cohort
        .include
        .iter()
        .chain(spec.cohort.exclude.iter())
        .map(|r| r.column.as_str())
        .collect();
    if let Some(r) = &spec.risk {
        extra.extend([
            r.sex.as_str(),
            r.age.as_str(),
            r.age_at_conviction.as_str(),
            r.age_at_first_sanction.as_str(),
            r.previous_sanctions.as_str(),
            r.offence.as_str(),
        ]);
    }
    match &spec.comparator {
        crate::spec::Comparator::Matched(m) => {
            extra.extend(m.covariates.iter().map(|c| c.column.as_str()));
            extra.extend(m.exact.iter().map(String::as_str));
        }
        crate::spec::Comparator::CaseMix(c) => extra.push(c.area_column.as_str()),
        _ => {}
    }
    for name in extra {
        let c = (input.column(name).to_string(), name.to_string());
        if !cols.iter().any(|(f, _)| *f == c.0) {
            cols.push(c);
        }
    }
    cols
}

/// Builds the cohort and the exclusion ledger from the people input: the cohort
/// periods, and a historical baseline period if the comparator has one.
pub fn build(spec: &AuditSpec, people: &LoadedInput) -> Result<CohortResult, DataError> {
    let groups: Vec<Group> = spec
        .all_periods()
        .into_iter()
        .map(|(p, role)| Group {
            period: p.clone(),
            role,
        })
        .collect();
    build_groups(spec, &spec.people, people, groups)
}

/// Builds the eligible comparison pool, under the same rules and periods as the cohort.
pub fn build_pool(
    spec: &AuditSpec,
    input: &InputSpec,
    pool: &LoadedInput,
) -> Result<CohortResult, DataError> {
    let groups = spec
        .cohort
        .periods
        .iter()
        .map(|p| Group {
            period: p.clone(),
            role: GroupRole::Pool,
        })
        .collect();
    build_groups(spec, input, pool, groups)
}

fn build_groups(
    spec: &AuditSpec,
    input: &InputSpec,
    people: &LoadedInput,
    groups: Vec<Group>,
) -> Result<CohortResult, DataError> {
    let id_col = input.column("person_id");
    let raw_ids = people.text(id_col)?;
    let index_dates = people.dates(input.column("index_date"), &input.date_format)?;
    let mut rules: Vec<(&Rule, Exclusion, TextColumn<'_>)> = Vec::new();
    for (i, rule) in spec.cohort.include.iter().enumerate() {
        rules.push((
            rule,
            Exclusion::Include(i as u32),
            people.text(rule_column(input, rule))?,
        ));
    }
    for (i, rule) in spec.cohort.exclude.iter().enumerate() {
        rules.push((
            rule,
            Exclusion::Exclude(i as u32),
            people.text(rule_column(input, rule))?,
        ));
    }

    let id_bytes = raw_ids
        .iter()
        .map(|id| id.map_or(0, |s| s.trim_ascii().len()))
        .sum();
    let mut ids = Ids::with_capacity(raw_ids.len(), id_bytes);
    let mut ledger = Vec::with_capacity(raw_ids.len());
    for (i, id) in raw_ids.iter().enumerate() {
        match id.map(str::trim_ascii).filter(|s| !s.is_empty()) {
            Some(s) => ids.push(s),
            None => {
                return Err(people.bad_value(
                    i,
                    id_col,
                    "person id is missing".into(),
                    "every row of the people input needs an id; remove or complete the row".into(),
                ))
            }
        }
        let mut entry = LedgerEntry {
            index_date: index_dates[i],
            group: None,
            excluded: None,
        };
        let Some(day) = index_dates[i] else {
            entry.excluded = Some(Exclusion::IndexDateMissing);
            ledger.push(entry);
            continue;
        };
        entry.group = groups
            .iter()
            .position(|g| g.period.contains(day))
            .map(|g| g as u32);
        if entry.group.is_none() {
            entry.excluded = Some(Exclusion::OutsidePeriods);
            ledger.push(entry);
            continue;
        }
        for (rule, kind, values) in &rules {
            let holds = condition_holds(&rule.condition, values.get(i)).map_err(|problem| {
                people.bad_value(
                    i,
                    rule_column(input, rule),
                    problem,
                    format!("rule {:?} compares numbers; fix the value, or add an is_missing rule before it", rule.id),
                )
            })?;
            let is_include = matches!(kind, Exclusion::Include(_));
            if holds != is_include {
                entry.excluded = Some(*kind);
                break;
            }
        }
        ledger.push(entry);
    }

    // One index event per person per group: the earliest (then the first row). The
    // table holds ledger rows only (4 bytes each), hashed and compared by group and id.
    let hasher = FixedState::default();
    let key_hash = |k: usize| hasher.hash_one((ledger[k].group, ids.get(k)));
    let mut first: HashTable<u32> = HashTable::with_capacity(ledger.len());
    let mut repeats = Vec::new();
    for k in 0..ledger.len() {
        let e = &ledger[k];
        let (None, Some(g), Some(day)) = (e.excluded, e.group, e.index_date) else {
            continue;
        };
        let hash = key_hash(k);
        let same =
            |&p: &u32| ledger[p as usize].group == Some(g) && ids.get(p as usize) == ids.get(k);
        match first.find_mut(hash, same) {
            None => {
                first.insert_unique(hash, k as u32, |&p| key_hash(p as usize));
            }
            Some(prev) => {
                let p = *prev as usize;
                if spec.cohort.repeat_index == RepeatIndex::Error {
                    return Err(people.bad_value(
                        k,
                        id_col,
                        format!(
                            "person {:?} has another index event in period {:?} (row {})",
                            ids.get(k),
                            groups[g as usize].period.name,
                            p + 1
                        ),
                        "set cohort.repeat_index = \"first\" to keep each person's first index event, or fix the extract".into(),
                    ));
                }
                let this_is_earlier = Some(day) < ledger[p].index_date;
                if this_is_earlier {
                    *prev = k as u32;
                    repeats.push(p);
                } else {
                    repeats.push(k);
                }
            }
        }
    }
    drop(first);
    for k in repeats {
        ledger[k].excluded = Some(Exclusion::RepeatIndex);
    }

    // Period order, then file order: a total order fixed by the input bytes.
    let mut per_group = vec![0usize; groups.len()];
    for e in &ledger {
        if let (None, Some(group), Some(_)) = (e.excluded, e.group, e.index_date) {
            per_group[group as usize] += 1;
        }
    }
    let mut members: Vec<Member> = Vec::with_capacity(per_group.iter().sum());
    for g in 0..groups.len() {
        members.extend(ledger.iter().enumerate().filter_map(|(k, e)| {
            match (e.excluded, e.group, e.index_date) {
                (None, Some(group), Some(index_date)) if group as usize == g => Some(Member {
                    group: g,
                    person: k,
                    index_date,
                }),
                _ => None,
            }
        }));
    }
    Ok(CohortResult {
        groups,
        ids,
        members,
        ledger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_ledger_row_stays_small() {
        // One entry per row of the people or pool input (a national pool has millions).
        assert!(std::mem::size_of::<LedgerEntry>() <= 24);
    }

    #[test]
    fn conditions_follow_their_documented_meaning() {
        let set: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let twelve = Ratio::from_int(12);
        assert!(condition_holds(&Condition::Equals("Y".into()), Some(" Y ")).unwrap());
        assert!(!condition_holds(&Condition::Equals("Y".into()), None).unwrap());
        assert!(condition_holds(&Condition::NotEquals("Y".into()), None).unwrap());
        assert!(condition_holds(&Condition::In(set.clone()), Some("a")).unwrap());
        assert!(!condition_holds(&Condition::NotIn(set.clone()), Some("a")).unwrap());
        assert!(condition_holds(&Condition::NotIn(set), Some("")).unwrap());
        assert!(condition_holds(&Condition::LessThan(twelve), Some("11.5")).unwrap());
        assert!(!condition_holds(&Condition::LessThan(twelve), Some("12")).unwrap());
        assert!(condition_holds(&Condition::AtMost(twelve), Some("12")).unwrap());
        assert!(condition_holds(&Condition::AtLeast(twelve), None).is_err());
        assert!(condition_holds(&Condition::IsMissing(true), Some("  ")).unwrap());
        assert!(condition_holds(&Condition::LessThan(twelve), Some("twelve")).is_err());
    }
}
