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

use std::collections::{BTreeMap, HashMap};

use crate::cohort::{condition_holds, CohortResult};
use crate::data::{DataError, LoadedInput};
use crate::dates::{add_months, Day};
use crate::spec::{AuditSpec, CountingUnit, DuplicatePolicy, Rule, Sanction, WindowEnd};

/// What became of one conviction row for one cohort member, in the order the checks run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Disposition {
    /// The offence or sanction date is missing.
    MissingDate,
    /// An exact copy of an earlier row (with `duplicates = "collapse"`).
    Duplicate,
    /// A sanction the spec does not count (e.g. a caution when only convictions count).
    SanctionNotCounted,
    /// Removed by an `[outcome] exclude` rule (its id).
    Rule(String),
    /// Offence committed before the index date.
    BeforeIndex,
    /// Offence committed after the follow-up window.
    OutsideWindow,
    /// Sanction dated before the offence: impossible, so not counted, and reported.
    SanctionBeforeOffence,
    /// Proven after the window plus court lag.
    ProvenAfterLag,
    /// Counts as reoffending.
    Counted,
}

impl Disposition {
    /// Stable code written to tables and results.
    pub fn code(&self) -> String {
        match self {
            Disposition::MissingDate => "missing-date".into(),
            Disposition::Duplicate => "duplicate".into(),
            Disposition::SanctionNotCounted => "sanction-not-counted".into(),
            Disposition::Rule(id) => format!("rule:{id}"),
            Disposition::BeforeIndex => "before-index".into(),
            Disposition::OutsideWindow => "outside-window".into(),
            Disposition::SanctionBeforeOffence => "sanction-before-offence".into(),
            Disposition::ProvenAfterLag => "proven-after-lag".into(),
            Disposition::Counted => "counted".into(),
        }
    }
}

/// One conviction row evaluated for one member.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    /// Index into the members list.
    pub member: usize,
    /// 1-based data row of the convictions input.
    pub row: usize,
    pub offence_date: Option<Day>,
    pub sanction_date: Option<Day>,
    pub sanction: Sanction,
    pub appearance: Option<String>,
    pub disposition: Disposition,
}

/// Outcome of one cohort member.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// One per member, same order as [`CohortResult::members`].
    pub people: Vec<PersonOutcome>,
    /// Every conviction row of every member, sorted by member then row.
    pub rows: Vec<RowOutcome>,
    /// Conviction rows whose person is in no audited group.
    pub rows_not_in_audit: u64,
    /// Total conviction rows read.
    pub rows_total: u64,
}

impl OutcomesResult {
    /// Row dispositions per group, by code.
    pub fn disposition_counts(&self, cohort: &CohortResult, group: usize) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in &self.rows {
            if cohort.members[r.member].group == group {
                *m.entry(r.disposition.code()).or_insert(0) += 1;
            }
        }
        m
    }
}

/// Columns of the convictions input the outcome stage reads: (file name, canonical name).
pub fn conviction_columns(spec: &AuditSpec) -> Vec<(String, String)> {
    let input = &spec.convictions;
    let mut cols: Vec<(String, String)> = ["person_id", "offence_date", "sanction_date", "sanction_type"]
        .iter()
        .map(|c| (input.column(c).to_string(), c.to_string()))
        .collect();
    if spec.outcome.unit == CountingUnit::ConvictionEvent || input.columns.contains_key("appearance_id") {
        cols.push((input.column("appearance_id").to_string(), "appearance_id".into()));
    }
    for rule in &spec.outcome.exclude {
        let c = (input.column(&rule.column).to_string(), rule.column.clone());
        if !cols.iter().any(|(f, _)| *f == c.0) {
            cols.push(c);
        }
    }
    cols
}

/// Computes every member's outcome and the disposition of every relevant row.
pub fn compute(
    spec: &AuditSpec,
    cohort: &CohortResult,
    convictions: &LoadedInput,
) -> Result<OutcomesResult, DataError> {
    let input = &spec.convictions;
    let o = &spec.outcome;
    let id_col = input.column("person_id");
    let ids = convictions.text(id_col)?;
    let offence_dates = convictions.dates(input.column("offence_date"), &input.date_format)?;
    let sanction_dates = convictions.dates(input.column("sanction_date"), &input.date_format)?;
    let type_col = input.column("sanction_type");
    let types = convictions.text(type_col)?;
    let appearance_col = input.column("appearance_id");
    let appearances = if convictions.frame.column(appearance_col).is_ok() {
        Some(convictions.text(appearance_col)?)
    } else {
        None
    };
    let rules: Vec<(&Rule, &str, Vec<Option<&str>>)> = {
        let mut v = Vec::new();
        for rule in &o.exclude {
            let col = input.column(&rule.column);
            v.push((rule, col, convictions.text(col)?));
        }
        v
    };

    let mut by_person: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, m) in cohort.members.iter().enumerate() {
        by_person.entry(m.person_id.as_str()).or_default().push(k);
    }
    let mut member_rows: Vec<Vec<usize>> = vec![Vec::new(); cohort.members.len()];
    let mut rows_not_in_audit = 0u64;
    let mut sanctions = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let id = match id.map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => id,
            None => {
                return Err(convictions.bad_value(
                    i,
                    id_col,
                    "person id is missing".into(),
                    "every conviction row needs the id of the person convicted".into(),
                ))
            }
        };
        let sanction = match types[i].map(str::trim) {
            Some(t) => match o.sanction_codes.get(t) {
                Some(s) => Some(*s),
                None => {
                    return Err(convictions.bad_value(
                        i,
                        type_col,
                        format!("unknown sanction type {t:?}"),
                        format!(
                            "known values are: {}; map the extract's codes in outcome.sanction_codes",
                            o.sanction_codes.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            },
            None => {
                return Err(convictions.bad_value(
                    i,
                    type_col,
                    "sanction type is missing".into(),
                    "every row must say whether it is a conviction or a caution".into(),
                ))
            }
        };
        sanctions.push(sanction);
        match by_person.get(id) {
            Some(ms) => {
                for &m in ms {
                    member_rows[m].push(i);
                }
            }
            None => rows_not_in_audit += 1,
        }
    }

    let window_add = o.window_months;
    let lag_add = o.window_months + o.lag_months;
    let inside = |day: Day, end: Day| match o.window_end {
        WindowEnd::Exclusive => day < end,
        WindowEnd::Inclusive => day <= end,
    };
    let mut people = Vec::with_capacity(cohort.members.len());
    let mut rows_out = Vec::new();
    for (m, member) in cohort.members.iter().enumerate() {
        let start = member.index_date;
        let window_end = add_months(start, window_add);
        let lag_end = add_months(start, lag_add);
        let rows = &mut member_rows[m];
        // A total order on the row's content, then its position, so duplicates sit together.
        let key = |i: usize| {
            (
                offence_dates[i],
                sanction_dates[i],
                sanctions[i],
                appearances.as_ref().and_then(|a| a[i]),
                rules.iter().map(|(_, _, v)| v[i]).collect::<Vec<_>>(),
            )
        };
        rows.sort_by(|&a, &b| key(a).cmp(&key(b)).then(a.cmp(&b)));
        let mut outcome = PersonOutcome {
            window_end,
            lag_end,
            offences: 0,
            events: 0,
            first_offence: None,
        };
        let mut counted_appearances: Vec<&str> = Vec::new();
        let mut previous: Option<usize> = None;
        for &i in rows.iter() {
            let duplicate_of = previous.filter(|&p| key(p) == key(i));
            if duplicate_of.is_none() {
                previous = Some(i);
            }
            let sanction = sanctions[i].unwrap_or(Sanction::Conviction);
            let disposition = 'd: {
                let (Some(offence), Some(proven)) = (offence_dates[i], sanction_dates[i]) else {
                    break 'd Disposition::MissingDate;
                };
                if let Some(p) = duplicate_of {
                    match o.duplicates {
                        DuplicatePolicy::Collapse => break 'd Disposition::Duplicate,
                        DuplicatePolicy::Error => {
                            return Err(convictions.bad_value(
                                i,
                                id_col,
                                format!("row is an exact duplicate of row {}", p + 1),
                                "set outcome.duplicates = \"collapse\" to count such rows once, or remove the copy".into(),
                            ))
                        }
                        DuplicatePolicy::Keep => {}
                    }
                }
                if !o.sanctions.contains(&sanction) {
                    break 'd Disposition::SanctionNotCounted;
                }
                for (rule, col, values) in &rules {
                    let holds = condition_holds(&rule.condition, values[i]).map_err(|problem| {
                        convictions.bad_value(
                            i,
                            col,
                            problem,
                            format!("rule {:?} compares numbers; fix the value or the rule", rule.id),
                        )
                    })?;
                    if holds {
                        break 'd Disposition::Rule(rule.id.clone());
                    }
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
            let appearance = appearances.as_ref().and_then(|a| a[i]).map(str::trim);
            if disposition == Disposition::Counted {
                outcome.offences += 1;
                if let Some(a) = appearance.filter(|a| !a.is_empty()) {
                    if !counted_appearances.contains(&a) {
                        counted_appearances.push(a);
                    }
                } else if spec.outcome.unit == CountingUnit::ConvictionEvent {
                    return Err(convictions.bad_value(
                        i,
                        appearance_col,
                        "court appearance id is missing on a counted row".into(),
                        "conviction events are counted by appearance id; complete the extract".into(),
                    ));
                }
                outcome.first_offence = Some(match outcome.first_offence {
                    Some(d) => d.min(offence_dates[i].unwrap_or(d)),
                    None => offence_dates[i].unwrap_or(start),
                });
            }
            rows_out.push(RowOutcome {
                member: m,
                row: i + 1,
                offence_date: offence_dates[i],
                sanction_date: sanction_dates[i],
                sanction,
                appearance: appearance.map(str::to_string),
                disposition,
            });
        }
        outcome.events = counted_appearances.len() as u64;
        people.push(outcome);
    }
    rows_out.sort_by_key(|r| (r.member, r.row));
    Ok(OutcomesResult {
        people,
        rows: rows_out,
        rows_not_in_audit,
        rows_total: ids.len() as u64,
    })
}
