//! The cohort: who is measured, and a ledger of everyone who is not, with the rule that
//! left them out.
//!
//! Exclusions are where gaming hides, so every row of the people input ends up in the
//! ledger exactly once: eligible for a period, or excluded with a rule id and its
//! reason. Rules run in the order the spec lists them — periods first, then include
//! rules, then exclude rules, then the repeat-index rule — and the first that applies is
//! the one recorded.

use std::collections::{BTreeMap, HashMap};

use crate::data::{DataError, LoadedInput};
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

/// One eligible person in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Index into [`CohortResult::groups`].
    pub group: usize,
    pub person_id: String,
    pub index_date: Day,
    /// 1-based data row of the people input.
    pub row: usize,
}

/// Whether a ledger row is in the cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Eligible,
    Excluded,
}

/// One row of the people input and what became of it.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    /// 1-based data row.
    pub row: usize,
    pub person_id: String,
    pub index_date: Option<Day>,
    /// Group the index date falls in, if any.
    pub group: Option<usize>,
    pub status: Status,
    /// Rule id that excluded the row (empty when eligible).
    pub rule: String,
    /// The rule's reason (empty when eligible).
    pub reason: String,
}

/// The cohort stage's output.
#[derive(Debug, Clone)]
pub struct CohortResult {
    pub groups: Vec<Group>,
    /// Eligible people, sorted by group then person id.
    pub members: Vec<Member>,
    /// Every people row, in file order.
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
    /// Rows outside every group, by rule (index date missing, outside periods).
    pub fn unassigned_counts(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in self.ledger.iter().filter(|e| e.group.is_none()) {
            *m.entry(e.rule.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Rows in one group: (eligible, exclusions by rule in the order rules are applied).
    pub fn group_counts(&self, spec: &AuditSpec, group: usize) -> (u64, Vec<ExclusionCount>) {
        let mut eligible = 0;
        let mut by_rule: HashMap<&str, u64> = HashMap::new();
        for e in self.ledger.iter().filter(|e| e.group == Some(group)) {
            match e.status {
                Status::Eligible => eligible += 1,
                Status::Excluded => *by_rule.entry(e.rule.as_str()).or_insert(0) += 1,
            }
        }
        let mut order: Vec<(&str, &str)> = spec
            .cohort
            .include
            .iter()
            .chain(spec.cohort.exclude.iter())
            .map(|r| (r.id.as_str(), r.reason.as_str()))
            .collect();
        order.push((REPEAT_INDEX, REPEAT_REASON));
        let counts = order
            .into_iter()
            .map(|(rule, reason)| ExclusionCount {
                rule: rule.to_string(),
                reason: reason.to_string(),
                count: by_rule.get(rule).copied().unwrap_or(0),
            })
            .collect();
        (eligible, counts)
    }
}

const REPEAT_REASON: &str = "a later index event of a person already in this period";

/// File column a rule reads: the mapped name when the rule names a canonical column.
pub fn rule_column<'a>(input: &'a InputSpec, rule: &'a Rule) -> &'a str {
    input.column(&rule.column)
}

/// Evaluates one rule condition on one cell. Numeric conditions on a non-numeric value
/// are an error for the caller to place.
pub fn condition_holds(condition: &Condition, value: Option<&str>) -> Result<bool, String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let numeric = |v: &str| {
        Ratio::parse_decimal(v).map_err(|_| format!("{v:?} is not a number"))
    };
    Ok(match condition {
        Condition::Equals(x) => value == Some(x.as_str()),
        Condition::NotEquals(x) => value.is_some_and(|v| v != x),
        Condition::In(set) => value.is_some_and(|v| set.contains(v)),
        Condition::NotIn(set) => value.is_some_and(|v| !set.contains(v)),
        Condition::LessThan(x) => match value {
            Some(v) => numeric(v)? < *x,
            None => false,
        },
        Condition::AtMost(x) => match value {
            Some(v) => numeric(v)? <= *x,
            None => false,
        },
        Condition::GreaterThan(x) => match value {
            Some(v) => numeric(v)? > *x,
            None => false,
        },
        Condition::AtLeast(x) => match value {
            Some(v) => numeric(v)? >= *x,
            None => false,
        },
        Condition::IsMissing(b) => value.is_none() == *b,
    })
}

/// Columns of the people input the cohort stage reads: (file name, canonical name).
pub fn people_columns(spec: &AuditSpec) -> Vec<(String, String)> {
    let input = &spec.people;
    let mut cols = vec![
        (input.column("person_id").to_string(), "person_id".to_string()),
        (input.column("index_date").to_string(), "index_date".to_string()),
    ];
    for rule in spec.cohort.include.iter().chain(spec.cohort.exclude.iter()) {
        let c = (rule_column(input, rule).to_string(), rule.column.clone());
        if !cols.iter().any(|(f, _)| *f == c.0) {
            cols.push(c);
        }
    }
    cols
}

/// Builds the cohort and the exclusion ledger from the people input.
pub fn build(spec: &AuditSpec, people: &LoadedInput) -> Result<CohortResult, DataError> {
    let input = &spec.people;
    let groups: Vec<Group> = spec
        .all_periods()
        .into_iter()
        .map(|(p, role)| Group {
            period: p.clone(),
            role,
        })
        .collect();
    let id_col = input.column("person_id");
    let ids = people.text(id_col)?;
    let index_dates = people.dates(input.column("index_date"), &input.date_format)?;
    let rules: Vec<(&Rule, bool, Vec<Option<&str>>)> = {
        let mut v = Vec::new();
        for rule in &spec.cohort.include {
            v.push((rule, true, people.text(rule_column(input, rule))?));
        }
        for rule in &spec.cohort.exclude {
            v.push((rule, false, people.text(rule_column(input, rule))?));
        }
        v
    };

    let mut ledger = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let person_id = match id.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => s.to_string(),
            None => {
                return Err(people.bad_value(
                    i,
                    id_col,
                    "person id is missing".into(),
                    "every row of the people input needs an id; remove or complete the row"
                        .into(),
                ))
            }
        };
        let mut entry = LedgerEntry {
            row: i + 1,
            person_id,
            index_date: index_dates[i],
            group: None,
            status: Status::Excluded,
            rule: String::new(),
            reason: String::new(),
        };
        let Some(day) = index_dates[i] else {
            entry.rule = INDEX_DATE_MISSING.into();
            entry.reason = "no index date in the data".into();
            ledger.push(entry);
            continue;
        };
        entry.group = groups.iter().position(|g| g.period.contains(day));
        if entry.group.is_none() {
            entry.rule = OUTSIDE_PERIODS.into();
            entry.reason = "index date outside every cohort and baseline period".into();
            ledger.push(entry);
            continue;
        }
        let mut excluded_by = None;
        for (rule, is_include, values) in &rules {
            let holds = condition_holds(&rule.condition, values[i]).map_err(|problem| {
                people.bad_value(
                    i,
                    rule_column(input, rule),
                    problem,
                    format!("rule {:?} compares numbers; fix the value or the rule", rule.id),
                )
            })?;
            if holds != *is_include {
                excluded_by = Some(*rule);
                break;
            }
        }
        match excluded_by {
            Some(rule) => {
                entry.rule = rule.id.clone();
                entry.reason = rule.reason.clone();
            }
            None => entry.status = Status::Eligible,
        }
        ledger.push(entry);
    }

    // One index event per person per group: the earliest (then the first row).
    let mut first: HashMap<(usize, &str), usize> = HashMap::new();
    let mut repeats = Vec::new();
    for (k, e) in ledger.iter().enumerate() {
        if e.status != Status::Eligible {
            continue;
        }
        let Some(g) = e.group else { continue };
        let key = (g, e.person_id.as_str());
        match first.get(&key) {
            None => {
                first.insert(key, k);
            }
            Some(&prev) => {
                let p = &ledger[prev];
                if spec.cohort.repeat_index == RepeatIndex::Error {
                    return Err(people.bad_value(
                        e.row - 1,
                        id_col,
                        format!(
                            "person {:?} has another index event in period {:?} (row {})",
                            e.person_id, groups[g].period.name, p.row
                        ),
                        "set cohort.repeat_index = \"first\" to keep each person's first index event, or fix the extract".into(),
                    ));
                }
                let later_is_new = (e.index_date, e.row) < (p.index_date, p.row);
                if later_is_new {
                    first.insert(key, k);
                    repeats.push(prev);
                } else {
                    repeats.push(k);
                }
            }
        }
    }
    for k in repeats {
        let e = &mut ledger[k];
        e.status = Status::Excluded;
        e.rule = REPEAT_INDEX.into();
        e.reason = REPEAT_REASON.into();
    }

    let mut members: Vec<Member> = ledger
        .iter()
        .filter(|e| e.status == Status::Eligible)
        .filter_map(|e| {
            Some(Member {
                group: e.group?,
                person_id: e.person_id.clone(),
                index_date: e.index_date?,
                row: e.row,
            })
        })
        .collect();
    members.sort_by(|a, b| (a.group, &a.person_id).cmp(&(b.group, &b.person_id)));
    Ok(CohortResult {
        groups,
        members,
        ledger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn conditions_follow_their_documented_meaning() {
        let set: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let twelve = Ratio::from_int(12);
        assert!(condition_holds(&Condition::Equals("Y".into()), Some(" Y ")).unwrap());
        assert!(!condition_holds(&Condition::Equals("Y".into()), None).unwrap());
        assert!(!condition_holds(&Condition::NotEquals("Y".into()), None).unwrap());
        assert!(condition_holds(&Condition::In(set.clone()), Some("a")).unwrap());
        assert!(!condition_holds(&Condition::NotIn(set.clone()), Some("a")).unwrap());
        assert!(!condition_holds(&Condition::NotIn(set), Some("")).unwrap());
        assert!(condition_holds(&Condition::LessThan(twelve), Some("11.5")).unwrap());
        assert!(!condition_holds(&Condition::LessThan(twelve), Some("12")).unwrap());
        assert!(condition_holds(&Condition::AtMost(twelve), Some("12")).unwrap());
        assert!(!condition_holds(&Condition::AtLeast(twelve), None).unwrap());
        assert!(condition_holds(&Condition::IsMissing(true), Some("  ")).unwrap());
        assert!(condition_holds(&Condition::LessThan(twelve), Some("twelve")).is_err());
    }
}
