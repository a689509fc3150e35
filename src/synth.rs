//! Synthetic reoffending data with a planted, exactly known answer.
//!
//! An auditor that recomputes outcome figures can only be trusted if its recomputation
//! has been checked against data whose right answer is known independently. This module
//! generates that data: a `people.csv` of prison discharges and a `convictions.csv` of
//! proven offences, realistic and deliberately messy (offences outside the follow-up
//! window, disposals after the court lag, breaches, cautions, unknown offence codes,
//! exact duplicate rows, several offences at one court appearance, excluded people and
//! people who are not in the cohort file at all), together with a `truth.json` stating
//! what was planted: per group, who is eligible, who reoffends, how many offences and
//! court events count and the total days to first reoffence.
//!
//! The output is a pure function of the [`SynthConfig`] (seed included): the same
//! config gives byte-identical files on every machine. Randomness comes from the
//! hand-written [`SplitMix64`] generator below, whose stream is pinned by tests and must
//! never change, because committed fixtures are defined by it. No floating point is used
//! anywhere in generation.
//!
//! The truth is stated under these counting rules (the rules of the committed specs):
//! index date = discharge date; an offence counts if it was committed on or after the
//! index date and before index date + 12 calendar months, was disposed of on or before
//! index date + 18 calendar months, is a `conviction` (cautions do not count), and its
//! code is one of the 20 [`OFFENCE_CODES`] (never [`BREACH_CODE`] or an unknown code);
//! exact duplicate rows count once. Offences = counted rows, conviction events = distinct
//! `court_event_id`s among counted rows, a reoffender has at least one counted offence.
//! Only people with `discharge_reason = sentence_completed` and `breach_only = N` are in
//! the cohort. Planted rows keep clear of every boundary: counted offences are committed
//! 1–330 days after discharge and disposed of within 150 days of the offence (by day
//! 480, before the lag ends on day 546 at the earliest), and rows that must not count
//! miss the window or the lag by at least 30 days, so the truth does not depend on how an
//! auditor treats boundary days (those are tested elsewhere with hand-made data).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use thiserror::Error;

// ---------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------

/// The SplitMix64 increment (the golden-ratio "gamma", 2^64 / φ rounded to odd).
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output function (a 64-bit finaliser): a bijection on `u64` that
/// scrambles its input. `mix64(0) == 0`.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea and Flood, 2014), the small generator this module uses for
/// every random choice.
///
/// Each step adds [`GOLDEN_GAMMA`] to a 64-bit state and returns [`mix64`] of the new
/// state; for seed 0 the first outputs are `0xe220a8397b1dcdaf`, `0x6e789e6aa1b965f4`,
/// `0x06c45d188009454f`, …. The stream is part of the fixture format: changing this type,
/// [`SplitMix64::stream`], [`SplitMix64::below`] or [`SplitMix64::shuffle`] changes every
/// generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent sub-stream for one purpose (`tag`) and one item (`index`), so that
    /// each person's data depends only on the seed and the person's position, not on how
    /// many random numbers were drawn for anyone else.
    ///
    /// The starting state is `mix64(mix64(seed ^ tag · γ) + index)` (wrapping arithmetic).
    pub fn stream(seed: u64, tag: u64, index: u64) -> Self {
        Self::new(mix64(
            mix64(seed ^ tag.wrapping_mul(GOLDEN_GAMMA)).wrapping_add(index),
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `0..n`, without modulo bias (Lemire's multiply-and-reject
    /// method). Returns 0 when `n` is 0 or 1.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let mut product = u128::from(self.next_u64()) * u128::from(n);
        let mut low = product as u64;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                product = u128::from(self.next_u64()) * u128::from(n);
                low = product as u64;
            }
        }
        (product >> 64) as u64
    }

    /// True with probability `numerator / denominator` (false when the denominator is 0).
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        denominator > 0 && self.below(denominator) < numerator
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance_per_mille(&mut self, per_mille: u32) -> bool {
        self.chance(u64::from(per_mille), 1000)
    }

    /// Shuffles a slice in place (Fisher–Yates, from the last element down).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// A uniform integer in `low..=high` (returns `low` if `high < low`).
    fn between(&mut self, low: i32, high: i32) -> i32 {
        if high <= low {
            return low;
        }
        let span = (i64::from(high) - i64::from(low) + 1) as u64;
        (i64::from(low) + self.below(span) as i64) as i32
    }

    /// An index drawn with the given integer weights (the last index if all are zero).
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut pick = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if pick < u64::from(w) {
                return i;
            }
            pick -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }

    /// Number of successes before the first failure, each success with probability
    /// `numerator / denominator`, stopping at `cap`. Mean `p / (1 − p)` before the cap.
    fn geometric(&mut self, numerator: u64, denominator: u64, cap: u32) -> u32 {
        let mut k = 0;
        while k < cap && self.chance(numerator, denominator) {
            k += 1;
        }
        k
    }
}

// ---------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------

/// The 20 OGRS3 offence categories, as the snake_case codes used in both files.
pub const OFFENCE_CODES: [&str; 20] = [
    "violence",
    "robbery",
    "sexual_child",
    "sexual_other",
    "soliciting",
    "domestic_burglary",
    "other_burglary",
    "theft",
    "handling",
    "fraud_forgery",
    "absconding_bail",
    "vehicle_theft",
    "theft_from_vehicle",
    "other_motoring",
    "drink_driving",
    "public_order",
    "criminal_damage",
    "drug_import_export",
    "drug_possession_supply",
    "other",
];

/// Offence code of a breach of an order or licence: proven, but never a reoffence.
pub const BREACH_CODE: &str = "breach";

/// The unrecognised offence codes the generator plants; they never count.
pub const UNKNOWN_CODES: [&str; 3] = ["ZZ99", "X000", "99ZZ"];

/// Relative frequency (per mille) of each of [`OFFENCE_CODES`], for index offences and
/// for reoffences.
const OFFENCE_WEIGHTS: [u32; 20] = [
    200, 40, 15, 15, 2, 60, 40, 200, 20, 30, 20, 20, 15, 40, 20, 50, 40, 10, 100, 63,
];

/// Code numbers used in planted rows: 0..20 are [`OFFENCE_CODES`], then breach, then
/// the unknown codes.
const CODE_BREACH: u8 = 20;
const CODE_UNKNOWN_FIRST: u8 = 21;

fn code_text(code: u8) -> &'static str {
    let code = usize::from(code);
    if let Some(text) = OFFENCE_CODES.get(code) {
        return text;
    }
    if code == usize::from(CODE_BREACH) {
        return BREACH_CODE;
    }
    UNKNOWN_CODES
        .get(code.saturating_sub(usize::from(CODE_UNKNOWN_FIRST)))
        .copied()
        .unwrap_or("ZZ99")
}

const ETHNICITIES: [&str; 5] = ["white", "black", "asian", "mixed", "other"];
const ETHNICITY_WEIGHTS: [u32; 5] = [780, 90, 70, 40, 20];

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// Everything that determines a generated data set. Same config (seed included) → the
/// same bytes.
///
/// Serialised (for example in `truth.json`) as:
///
/// ```json
/// {
///   "seed": 2011,
///   "id_prefix": "D",
///   "area": "doncaster",
///   "male_share_per_mille": 1000,
///   "groups": [ { "name": "baseline-2009", "from": "2009-01-01", "to": "2009-12-31", "...": "..." } ],
///   "noise": { "before_discharge_per_mille": 40, "...": "..." },
///   "outsiders": 150
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Prefix of `offender_ref` values (ASCII letters and digits), e.g. `D` → `D0000001`.
    pub id_prefix: String,
    /// Value of the `area` column (no commas, quotes or line breaks).
    pub area: String,
    /// Share of men among generated people, per mille (1000 = all male).
    pub male_share_per_mille: u32,
    /// Discharge cohorts; their date ranges must not overlap.
    pub groups: Vec<GroupConfig>,
    /// Rates of each kind of mess row.
    pub noise: NoiseConfig,
    /// People not in `people.csv` who still have conviction rows.
    pub outsiders: usize,
}

/// One discharge cohort: everyone discharged in `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Name reported in the truth, e.g. `cohort-1`.
    pub name: String,
    /// First discharge date (inclusive), serialised as `YYYY-MM-DD`.
    #[serde(with = "iso_date")]
    pub from: NaiveDate,
    /// Last discharge date (inclusive), serialised as `YYYY-MM-DD`.
    #[serde(with = "iso_date")]
    pub to: NaiveDate,
    /// People in the cohort (sentence completed, not breach-only).
    pub eligible: usize,
    /// Exactly this many eligible people reoffend (have ≥ 1 counted offence).
    pub reoffenders: usize,
    /// Mean counted offences per reoffender, in thousandths (2300 = 2.3); at least 1000
    /// and at most 20000. Each reoffender gets 1 + a geometric number of offences
    /// (capped at 60 in all), plus any planted extra offence at a shared court appearance.
    pub mean_offences_per_reoffender_milli: u32,
    /// Discharged people who were deported (excluded from the cohort).
    pub excluded_deported: usize,
    /// Discharged people released having served their time on remand (excluded).
    pub excluded_remand: usize,
    /// Discharged people whose sentence was for a breach only (excluded).
    pub excluded_breach_only: usize,
}

/// How often each kind of mess row is planted, per mille of people in `people.csv`
/// (eligible or not, reoffender or not). Each kind is planted at most once per person,
/// and none of them changes who counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseConfig {
    /// A conviction for an offence committed 30–700 days before discharge and disposed of
    /// 1–200 days after it.
    pub before_discharge_per_mille: u32,
    /// A conviction for an offence inside the window, disposed of after the 18-month lag
    /// (at least 580 days after discharge).
    pub late_disposal_per_mille: u32,
    /// A conviction for an offence committed 400–700 days after discharge.
    pub after_window_per_mille: u32,
    /// A conviction for a breach (code `breach`) inside the window.
    pub breach_per_mille: u32,
    /// A caution (not a conviction) for an offence inside the window.
    pub caution_per_mille: u32,
    /// A conviction with an unknown offence code inside the window.
    pub unknown_code_per_mille: u32,
    /// An exact copy of one existing row: of a counted row for a reoffender, of any row
    /// otherwise (nothing when the person has no rows).
    pub duplicate_per_mille: u32,
    /// A second offence at an existing court appearance (same `court_event_id` and
    /// disposal date, different offence code). For a reoffender it is a counted offence,
    /// which adds to offences but not to events; for anyone else the appearance is a new
    /// one after the window, with two offences.
    pub multi_offence_event_per_mille: u32,
    /// Mean number of criminal-history rows per person, in thousandths (not per mille of
    /// people): convictions whose offence and disposal both precede the discharge by
    /// at least 50 days. At most 20000.
    pub history_rows_milli: u32,
}

impl NoiseConfig {
    /// No mess rows at all.
    pub fn none() -> Self {
        Self {
            before_discharge_per_mille: 0,
            late_disposal_per_mille: 0,
            after_window_per_mille: 0,
            breach_per_mille: 0,
            caution_per_mille: 0,
            unknown_code_per_mille: 0,
            duplicate_per_mille: 0,
            multi_offence_event_per_mille: 0,
            history_rows_milli: 0,
        }
    }

    /// The per-mille rates with their field names, for validation.
    fn rates(&self) -> [(&'static str, u32); 8] {
        [
            (
                "before_discharge_per_mille",
                self.before_discharge_per_mille,
            ),
            ("late_disposal_per_mille", self.late_disposal_per_mille),
            ("after_window_per_mille", self.after_window_per_mille),
            ("breach_per_mille", self.breach_per_mille),
            ("caution_per_mille", self.caution_per_mille),
            ("unknown_code_per_mille", self.unknown_code_per_mille),
            ("duplicate_per_mille", self.duplicate_per_mille),
            (
                "multi_offence_event_per_mille",
                self.multi_offence_event_per_mille,
            ),
        ]
    }
}

/// `count · per_mille / 1000`, rounded down, without overflow.
fn share(count: usize, per_mille: u32) -> usize {
    let product = count as u128 * u128::from(per_mille) / 1000;
    usize::try_from(product).unwrap_or(usize::MAX)
}

impl SynthConfig {
    /// The Doncaster prison pilot: all-male discharges, a 2009 baseline year and two
    /// contract cohorts whose reoffender counts (580, 523, 547 per 1000) reproduce the
    /// published binary rates (cohort 1 is 5.7 points below the baseline, cohort 2 3.3).
    pub fn doncaster(seed: u64) -> Self {
        let group = |name: &str, from: NaiveDate, to: NaiveDate, reoffenders: usize| GroupConfig {
            name: name.to_string(),
            from,
            to,
            eligible: 1000,
            reoffenders,
            mean_offences_per_reoffender_milli: 2300,
            excluded_deported: 25,
            excluded_remand: 40,
            excluded_breach_only: 15,
        };
        Self {
            seed,
            id_prefix: "D".to_string(),
            area: "doncaster".to_string(),
            male_share_per_mille: 1000,
            groups: vec![
                group("baseline-2009", ymd(2009, 1, 1), ymd(2009, 12, 31), 580),
                group("cohort-1", ymd(2011, 10, 1), ymd(2012, 9, 30), 523),
                group("cohort-2", ymd(2012, 10, 1), ymd(2013, 9, 30), 547),
            ],
            noise: NoiseConfig {
                before_discharge_per_mille: 40,
                late_disposal_per_mille: 20,
                after_window_per_mille: 100,
                breach_per_mille: 60,
                caution_per_mille: 40,
                unknown_code_per_mille: 15,
                duplicate_per_mille: 20,
                multi_offence_event_per_mille: 40,
                history_rows_milli: 2000,
            },
            outsiders: 150,
        }
    }

    /// A national-scale data set for benchmarks: one group of `people` discharges in
    /// 2011 (2.5% deported, 4% remand, 1.5% breach-only, 45% of the eligible reoffend,
    /// 3.3 offences per reoffender), with about 4.5 conviction rows per person overall
    /// and `people / 50` outsiders. `national(seed, 1_000_000)` writes about 5 million
    /// conviction rows.
    pub fn national(seed: u64, people: usize) -> Self {
        let deported = share(people, 25);
        let remand = share(people, 40);
        let breach_only = share(people, 15);
        let eligible = people.saturating_sub(deported + remand + breach_only);
        Self {
            seed,
            id_prefix: "N".to_string(),
            area: "national".to_string(),
            male_share_per_mille: 950,
            groups: vec![GroupConfig {
                name: "national-2011".to_string(),
                from: ymd(2011, 1, 1),
                to: ymd(2011, 12, 31),
                eligible,
                reoffenders: share(eligible, 450),
                mean_offences_per_reoffender_milli: 3300,
                excluded_deported: deported,
                excluded_remand: remand,
                excluded_breach_only: breach_only,
            }],
            noise: NoiseConfig {
                before_discharge_per_mille: 60,
                late_disposal_per_mille: 30,
                after_window_per_mille: 150,
                breach_per_mille: 80,
                caution_per_mille: 60,
                unknown_code_per_mille: 20,
                duplicate_per_mille: 20,
                multi_offence_event_per_mille: 50,
                history_rows_milli: 2530,
            },
            outsiders: people / 50,
        }
    }

    /// Every problem with this config (empty when it can be generated).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.id_prefix.is_empty() || !self.id_prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            problems.push(ConfigProblem::BadIdPrefix {
                prefix: self.id_prefix.clone(),
            });
        }
        if self.area.is_empty()
            || self
                .area
                .chars()
                .any(|c| matches!(c, ',' | '"' | '\n' | '\r'))
        {
            problems.push(ConfigProblem::BadArea {
                area: self.area.clone(),
            });
        }
        if self.male_share_per_mille > 1000 {
            problems.push(ConfigProblem::RateAboveThousand {
                field: "male_share_per_mille",
                value: self.male_share_per_mille,
            });
        }
        for (field, value) in self.noise.rates() {
            if value > 1000 {
                problems.push(ConfigProblem::RateAboveThousand { field, value });
            }
        }
        if self.noise.history_rows_milli > MAX_MEAN_MILLI {
            problems.push(ConfigProblem::HistoryMeanTooLarge {
                value: self.noise.history_rows_milli,
            });
        }
        if self.groups.is_empty() {
            problems.push(ConfigProblem::NoGroups);
        }
        let mut total = Some(self.outsiders);
        let mut ranges = Vec::new();
        for (index, group) in self.groups.iter().enumerate() {
            let name = group.name.clone();
            if name.is_empty() {
                problems.push(ConfigProblem::EmptyGroupName { index });
            }
            if self.groups[..index].iter().any(|g| g.name == group.name) && !name.is_empty() {
                problems.push(ConfigProblem::DuplicateGroupName { name: name.clone() });
            }
            let mut dates_ok = true;
            for date in [group.from, group.to] {
                if date < ymd(1900, 1, 1) || date > ymd(2100, 12, 31) {
                    dates_ok = false;
                    problems.push(ConfigProblem::DateOutOfRange {
                        group: name.clone(),
                        date,
                    });
                }
            }
            if group.to < group.from {
                dates_ok = false;
                problems.push(ConfigProblem::EmptyDateRange {
                    group: name.clone(),
                    from: group.from,
                    to: group.to,
                });
            }
            if dates_ok {
                ranges.push((group.from, group.to, name.clone()));
            }
            if group.reoffenders > group.eligible {
                problems.push(ConfigProblem::ReoffendersExceedEligible {
                    group: name.clone(),
                    reoffenders: group.reoffenders,
                    eligible: group.eligible,
                });
            }
            let mean = group.mean_offences_per_reoffender_milli;
            if !(1000..=MAX_MEAN_MILLI).contains(&mean) {
                problems.push(ConfigProblem::MeanOffencesOutOfRange {
                    group: name.clone(),
                    milli: mean,
                });
            }
            total = total
                .and_then(|t| t.checked_add(group.eligible))
                .and_then(|t| t.checked_add(group.excluded_deported))
                .and_then(|t| t.checked_add(group.excluded_remand))
                .and_then(|t| t.checked_add(group.excluded_breach_only));
        }
        ranges.sort();
        for pair in ranges.windows(2) {
            if let [(_, first_to, first), (second_from, _, second)] = pair {
                if second_from <= first_to {
                    problems.push(ConfigProblem::OverlappingGroups {
                        first: first.clone(),
                        second: second.clone(),
                    });
                }
            }
        }
        match total {
            Some(total) if total <= MAX_ENTITIES => {}
            _ => problems.push(ConfigProblem::TooManyPeople {
                total: total.unwrap_or(usize::MAX),
            }),
        }
        problems
    }

    /// `Ok` when the config can be generated, else every problem at once.
    pub fn validate(&self) -> Result<(), SynthError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SynthError::InvalidConfig { problems })
        }
    }
}

/// Upper bound on people plus outsiders (ids and row references are 32-bit).
pub const MAX_ENTITIES: usize = 100_000_000;

/// Upper bound on the `*_milli` means.
const MAX_MEAN_MILLI: u32 = 20_000;

/// A date the caller knows to be valid (used only for constants).
fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

/// `YYYY-MM-DD` (de)serialisation of dates, independent of chrono's optional serde
/// support.
mod iso_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(date)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let text = String::deserialize(d)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| {
            serde::de::Error::custom(format!("expected a date as YYYY-MM-DD, got {text:?}: {e}"))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Truth
// ---------------------------------------------------------------------------------------

/// What the generator planted: the answer an auditor must reproduce. Written as
/// `truth.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthTruth {
    /// The seed (also in `config`).
    pub seed: u64,
    /// The config that produced the files.
    pub config: SynthConfig,
    /// One entry per configured group, in config order.
    pub groups: Vec<GroupTruth>,
    /// How many rows of each kind were written.
    pub rows: RowTruth,
}

/// The planted outcome of one group under the module's counting rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupTruth {
    /// Group name from the config.
    pub name: String,
    /// People in the cohort.
    pub eligible: u64,
    /// Discharged people excluded from the cohort, by reason.
    pub excluded: ExcludedTruth,
    /// Eligible people with at least one counted offence.
    pub reoffenders: u64,
    /// Counted offences (counted rows after collapsing exact duplicates).
    pub counted_offences: u64,
    /// Distinct court events among counted rows.
    pub counted_events: u64,
    /// Sum over reoffenders of (first counted offence date − discharge date) in days.
    pub days_to_first_sum: u64,
}

/// Excluded people by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcludedTruth {
    /// `discharge_reason = deported`.
    pub deported: u64,
    /// `discharge_reason = time_served_on_remand`.
    pub time_served_on_remand: u64,
    /// `breach_only = Y`.
    pub breach_only: u64,
}

/// Rows written, by kind. `convictions` is the sum of `reoffences`, `history`,
/// `excluded_in_window`, `outsiders` and every field of `noise`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowTruth {
    /// Data rows of `people.csv`.
    pub people: u64,
    /// Data rows of `convictions.csv`.
    pub convictions: u64,
    /// The planted counted offences of reoffenders (one court event each).
    pub reoffences: u64,
    /// Criminal-history rows before discharge.
    pub history: u64,
    /// Rows of excluded people that would count if they were eligible.
    pub excluded_in_window: u64,
    /// Rows of people absent from `people.csv`.
    pub outsiders: u64,
    /// Mess rows by kind.
    pub noise: NoiseRows,
}

/// Mess rows written, by kind (see [`NoiseConfig`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseRows {
    /// Offence before discharge, disposed of after it.
    pub before_discharge: u64,
    /// Offence in the window, disposed of after the lag.
    pub late_disposal: u64,
    /// Offence after the window.
    pub after_window: u64,
    /// Breach in the window.
    pub breach: u64,
    /// Caution in the window.
    pub caution: u64,
    /// Unknown offence code in the window.
    pub unknown_code: u64,
    /// Exact duplicate rows.
    pub duplicate: u64,
    /// Rows of multi-offence court appearances (one extra counted row for a reoffender,
    /// two rows after the window for anyone else).
    pub multi_offence_event: u64,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One reason a [`SynthConfig`] cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigProblem {
    /// No groups configured.
    #[error("no groups: configure at least one discharge group")]
    NoGroups,
    /// A group without a name.
    #[error("group {index} has an empty name")]
    EmptyGroupName {
        /// Position in `groups`.
        index: usize,
    },
    /// Two groups with one name.
    #[error("group name {name:?} is used more than once")]
    DuplicateGroupName {
        /// The repeated name.
        name: String,
    },
    /// `to` before `from`.
    #[error("group {group:?} has an empty date range: {to} is before {from}")]
    EmptyDateRange {
        /// Group name.
        group: String,
        /// Configured start.
        from: NaiveDate,
        /// Configured end.
        to: NaiveDate,
    },
    /// A discharge date outside the supported calendar.
    #[error("group {group:?}: date {date} is outside the supported range 1900-01-01..=2100-12-31")]
    DateOutOfRange {
        /// Group name.
        group: String,
        /// The offending date.
        date: NaiveDate,
    },
    /// Two groups' discharge ranges share days, so a person's group would be ambiguous.
    #[error("groups {first:?} and {second:?} have overlapping date ranges")]
    OverlappingGroups {
        /// The group starting first.
        first: String,
        /// The group starting second.
        second: String,
    },
    /// More reoffenders than eligible people.
    #[error("group {group:?} has {reoffenders} reoffenders but only {eligible} eligible people")]
    ReoffendersExceedEligible {
        /// Group name.
        group: String,
        /// Configured reoffenders.
        reoffenders: usize,
        /// Configured eligible people.
        eligible: usize,
    },
    /// Mean offences per reoffender outside 1000..=20000 thousandths.
    #[error(
        "group {group:?}: mean_offences_per_reoffender_milli is {milli}, expected 1000..=20000 (every reoffender has at least one offence)"
    )]
    MeanOffencesOutOfRange {
        /// Group name.
        group: String,
        /// Configured mean.
        milli: u32,
    },
    /// A per-mille rate above 1000.
    #[error("{field} is {value}, expected a per-mille rate in 0..=1000")]
    RateAboveThousand {
        /// Field name.
        field: &'static str,
        /// Configured value.
        value: u32,
    },
    /// History rows mean above 20000 thousandths.
    #[error("history_rows_milli is {value}, expected at most 20000")]
    HistoryMeanTooLarge {
        /// Configured value.
        value: u32,
    },
    /// An id prefix that is empty or not ASCII letters and digits.
    #[error("id_prefix {prefix:?} must be non-empty ASCII letters and digits")]
    BadIdPrefix {
        /// Configured prefix.
        prefix: String,
    },
    /// An area that is empty or would need CSV quoting.
    #[error("area {area:?} must be non-empty, without commas, quotes or line breaks")]
    BadArea {
        /// Configured area.
        area: String,
    },
    /// People plus outsiders above [`MAX_ENTITIES`].
    #[error("{total} people and outsiders in all, at most 100000000 are supported")]
    TooManyPeople {
        /// The total (saturated on overflow).
        total: usize,
    },
}

/// Why generation failed.
#[derive(Debug, Error)]
pub enum SynthError {
    /// The config cannot be generated; every problem is listed.
    #[error("invalid synth config: {}", join_problems(problems))]
    InvalidConfig {
        /// All problems found.
        problems: Vec<ConfigProblem>,
    },
    /// An output file exists and overwriting was not allowed.
    #[error("{} already exists: choose an empty directory or allow overwriting", path.display())]
    FileExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The output directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The truth could not be serialised (not expected to happen).
    #[error("cannot serialise the truth file: {source}")]
    Json {
        /// The cause.
        source: serde_json::Error,
    },
    /// A planted date fell outside the calendar (not expected after validation).
    #[error("internal error: day number {day} is outside the supported calendar")]
    DateOutOfRange {
        /// Days from 0001-01-01 (day 1).
        day: i32,
    },
}

fn join_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------
// Output API
// ---------------------------------------------------------------------------------------

/// Name of the people file written by [`generate`].
pub const PEOPLE_FILE: &str = "people.csv";
/// Name of the convictions file written by [`generate`].
pub const CONVICTIONS_FILE: &str = "convictions.csv";
/// Name of the truth file written by [`generate`].
pub const TRUTH_FILE: &str = "truth.json";

/// Header row of `people.csv`.
pub const PEOPLE_HEADER: &str = "offender_ref,sex,age,ethnicity,prior_sanctions,age_first_sanction,index_offence,sentence_months,discharge_date,discharge_reason,breach_only,area";
/// Header row of `convictions.csv`.
pub const CONVICTIONS_HEADER: &str =
    "offender_ref,offence_date,disposal_date,disposal_type,court_event_id,offence_code";

/// What to do when an output file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingFiles {
    /// Fail with [`SynthError::FileExists`] before writing anything.
    Refuse,
    /// Replace the files.
    Overwrite,
}

/// Generates `people.csv`, `convictions.csv` and `truth.json` into `out_dir` (created if
/// missing), refusing to replace existing files. Returns the planted truth.
pub fn generate(config: &SynthConfig, out_dir: &Path) -> Result<SynthTruth, SynthError> {
    generate_into(config, out_dir, ExistingFiles::Refuse)
}

/// [`generate`], choosing what happens to existing output files (the CLI's `--force`
/// maps to [`ExistingFiles::Overwrite`]).
pub fn generate_into(
    config: &SynthConfig,
    out_dir: &Path,
    existing: ExistingFiles,
) -> Result<SynthTruth, SynthError> {
    config.validate()?;
    let plan = Plan::new(config);

    fs::create_dir_all(out_dir).map_err(|source| SynthError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let paths = [PEOPLE_FILE, CONVICTIONS_FILE, TRUTH_FILE].map(|name| out_dir.join(name));
    if existing == ExistingFiles::Refuse {
        if let Some(path) = paths.iter().find(|p| p.exists()) {
            return Err(SynthError::FileExists { path: path.clone() });
        }
    }
    let [people_path, convictions_path, truth_path] = paths;

    let mut truth = plan.empty_truth();
    let mut people = CsvOut::create(&people_path, existing)?;
    plan.write_people(&mut people, &mut truth)?;
    people.finish()?;

    let mut convictions = CsvOut::create(&convictions_path, existing)?;
    plan.write_convictions(&mut convictions, &mut truth)?;
    convictions.finish()?;

    let mut json =
        serde_json::to_vec_pretty(&truth).map_err(|source| SynthError::Json { source })?;
    json.push(b'\n');
    let mut out = CsvOut::create(&truth_path, existing)?;
    out.write_line(&json)?;
    out.finish()?;
    Ok(truth)
}

/// A buffered output file that remembers its path for errors.
struct CsvOut {
    path: PathBuf,
    writer: BufWriter<File>,
    line: Vec<u8>,
}

impl CsvOut {
    fn create(path: &Path, existing: ExistingFiles) -> Result<Self, SynthError> {
        let mut options = OpenOptions::new();
        options.write(true);
        match existing {
            ExistingFiles::Refuse => options.create_new(true),
            ExistingFiles::Overwrite => options.create(true).truncate(true),
        };
        let file = options.open(path).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                SynthError::FileExists {
                    path: path.to_path_buf(),
                }
            } else {
                SynthError::Write {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, file),
            line: Vec::with_capacity(256),
        })
    }

    fn write_line(&mut self, bytes: &[u8]) -> Result<(), SynthError> {
        self.writer
            .write_all(bytes)
            .map_err(|source| SynthError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Writes the line assembled in `self.line` and clears it.
    fn emit(&mut self) -> Result<(), SynthError> {
        self.line.push(b'\n');
        let result = self.writer.write_all(&self.line);
        self.line.clear();
        result.map_err(|source| SynthError::Write {
            path: self.path.clone(),
            source,
        })
    }

    fn finish(mut self) -> Result<(), SynthError> {
        self.writer
            .flush()
            .and_then(|()| self.writer.get_ref().sync_all())
            .map_err(|source| SynthError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

// ---------------------------------------------------------------------------------------
// Planning people
// ---------------------------------------------------------------------------------------

/// Stream tags of [`SplitMix64::stream`]; part of the fixture format.
const STREAM_GROUP: u64 = 1;
const STREAM_PERSON: u64 = 2;
const STREAM_ORDER: u64 = 3;
const STREAM_ROWS: u64 = 4;
const STREAM_BLOCK: u64 = 5;

/// Entities (people and outsiders) whose conviction rows are shuffled together.
const BLOCK_ENTITIES: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Eligible,
    Deported,
    Remand,
    BreachOnly,
}

/// One row of `people.csv`, compactly.
#[derive(Debug, Clone)]
struct Person {
    /// Discharge date as days from the common era (chrono's `num_days_from_ce`).
    discharge: i32,
    group: u32,
    status: Status,
    reoffender: bool,
    male: bool,
    age: u8,
    ethnicity: u8,
    prior_sanctions: u16,
    age_first_sanction: u8,
    index_offence: u8,
    sentence_months: u8,
}

/// All people, planned before anything is written.
struct Plan<'a> {
    config: &'a SynthConfig,
    people: Vec<Person>,
    /// Per group: reoffenders per mille of eligible, used for excluded people's rows.
    group_rate_per_mille: Vec<u32>,
    /// First and last day on which outsiders offend.
    outsider_days: (i32, i32),
}

impl<'a> Plan<'a> {
    fn new(config: &'a SynthConfig) -> Self {
        let mut people = Vec::new();
        let mut group_rate_per_mille = Vec::new();
        for (g, group) in config.groups.iter().enumerate() {
            let g = g as u32;
            let mut rng = SplitMix64::stream(config.seed, STREAM_GROUP, u64::from(g));
            let first = group.from.num_days_from_ce();
            let last = group.to.num_days_from_ce();
            let mut statuses = Vec::new();
            for (status, n) in [
                (Status::Eligible, group.eligible),
                (Status::Deported, group.excluded_deported),
                (Status::Remand, group.excluded_remand),
                (Status::BreachOnly, group.excluded_breach_only),
            ] {
                statuses.extend(std::iter::repeat_n(status, n));
            }
            rng.shuffle(&mut statuses);
            let mut days: Vec<i32> = statuses.iter().map(|_| rng.between(first, last)).collect();
            days.sort_unstable();

            // Covariates, and a key for choosing reoffenders: sequential Poisson
            // sampling, i.e. the `reoffenders` smallest values of u / w, where u is
            // uniform and w grows with youth and criminal history.
            let mut candidates = Vec::new();
            for (status, discharge) in statuses.into_iter().zip(days) {
                let index = people.len() as u64;
                let mut rng = SplitMix64::stream(config.seed, STREAM_PERSON, index);
                let person = plan_person(&mut rng, config, g, status, discharge);
                if status == Status::Eligible {
                    let u = 1 + rng.below(1 << 32);
                    candidates.push((people.len(), u, reoffending_weight(&person)));
                }
                people.push(person);
            }
            candidates.sort_unstable_by(|a, b| {
                (u128::from(a.1) * u128::from(b.2))
                    .cmp(&(u128::from(b.1) * u128::from(a.2)))
                    .then(a.0.cmp(&b.0))
            });
            for &(index, _, _) in candidates.iter().take(group.reoffenders) {
                if let Some(person) = people.get_mut(index) {
                    person.reoffender = true;
                }
            }
            let rate = if group.eligible == 0 {
                500
            } else {
                (group.reoffenders as u128 * 1000 / group.eligible as u128) as u32
            };
            group_rate_per_mille.push(rate);
        }
        let first = config
            .groups
            .iter()
            .map(|g| g.from.num_days_from_ce())
            .min()
            .unwrap_or(0);
        let last = config
            .groups
            .iter()
            .map(|g| g.to.num_days_from_ce())
            .max()
            .unwrap_or(0);
        Self {
            config,
            people,
            group_rate_per_mille,
            outsider_days: (first, last.saturating_add(365)),
        }
    }

    fn empty_truth(&self) -> SynthTruth {
        SynthTruth {
            seed: self.config.seed,
            config: self.config.clone(),
            groups: self
                .config
                .groups
                .iter()
                .map(|g| GroupTruth {
                    name: g.name.clone(),
                    eligible: 0,
                    excluded: ExcludedTruth {
                        deported: 0,
                        time_served_on_remand: 0,
                        breach_only: 0,
                    },
                    reoffenders: 0,
                    counted_offences: 0,
                    counted_events: 0,
                    days_to_first_sum: 0,
                })
                .collect(),
            rows: RowTruth::default(),
        }
    }

    fn push_ref(&self, line: &mut Vec<u8>, entity: u32) {
        line.extend_from_slice(self.config.id_prefix.as_bytes());
        push_num(line, u64::from(entity) + 1, 7);
    }

    fn write_people(&self, out: &mut CsvOut, truth: &mut SynthTruth) -> Result<(), SynthError> {
        out.line.extend_from_slice(PEOPLE_HEADER.as_bytes());
        out.emit()?;
        let mut order: Vec<u32> = (0..self.people.len() as u32).collect();
        SplitMix64::stream(self.config.seed, STREAM_ORDER, 0).shuffle(&mut order);
        for index in order {
            let Some(p) = self.people.get(index as usize) else {
                continue;
            };
            let line = &mut out.line;
            self.push_ref(line, index);
            line.extend_from_slice(if p.male { b",M," } else { b",F," });
            push_num(line, u64::from(p.age), 1);
            line.push(b',');
            line.extend_from_slice(
                ETHNICITIES
                    .get(usize::from(p.ethnicity))
                    .unwrap_or(&"other")
                    .as_bytes(),
            );
            line.push(b',');
            push_num(line, u64::from(p.prior_sanctions), 1);
            line.push(b',');
            push_num(line, u64::from(p.age_first_sanction), 1);
            line.push(b',');
            line.extend_from_slice(code_text(p.index_offence).as_bytes());
            line.push(b',');
            push_num(line, u64::from(p.sentence_months), 1);
            line.push(b',');
            push_date(line, p.discharge)?;
            line.extend_from_slice(match p.status {
                Status::Eligible => b",sentence_completed,N,",
                Status::Deported => b",deported,N,",
                Status::Remand => b",time_served_on_remand,N,",
                Status::BreachOnly => b",sentence_completed,Y,",
            });
            line.extend_from_slice(self.config.area.as_bytes());
            out.emit()?;

            truth.rows.people += 1;
            if let Some(group) = truth.groups.get_mut(p.group as usize) {
                match p.status {
                    Status::Eligible => group.eligible += 1,
                    Status::Deported => group.excluded.deported += 1,
                    Status::Remand => group.excluded.time_served_on_remand += 1,
                    Status::BreachOnly => group.excluded.breach_only += 1,
                }
                if p.reoffender {
                    group.reoffenders += 1;
                }
            }
        }
        Ok(())
    }

    fn write_convictions(
        &self,
        out: &mut CsvOut,
        truth: &mut SynthTruth,
    ) -> Result<(), SynthError> {
        out.line.extend_from_slice(CONVICTIONS_HEADER.as_bytes());
        out.emit()?;
        let entities = self.people.len() + self.config.outsiders;
        let mut order: Vec<u32> = (0..entities as u32).collect();
        SplitMix64::stream(self.config.seed, STREAM_ORDER, 1).shuffle(&mut order);
        let mut planter = Planter {
            plan: self,
            rows: Vec::new(),
            next_event: 1,
        };
        for (block, chunk) in order.chunks(BLOCK_ENTITIES).enumerate() {
            planter.rows.clear();
            for &entity in chunk {
                planter.plant_entity(entity, truth);
            }
            let mut rows = std::mem::take(&mut planter.rows);
            SplitMix64::stream(self.config.seed, STREAM_BLOCK, block as u64).shuffle(&mut rows);
            for row in &rows {
                let line = &mut out.line;
                self.push_ref(line, row.entity);
                line.push(b',');
                push_date(line, row.offence)?;
                line.push(b',');
                push_date(line, row.disposal)?;
                line.extend_from_slice(if row.caution {
                    b",caution,E"
                } else {
                    b",conviction,E"
                });
                push_num(line, row.event, 8);
                line.push(b',');
                line.extend_from_slice(code_text(row.code).as_bytes());
                out.emit()?;
            }
            truth.rows.convictions += rows.len() as u64;
            planter.rows = rows;
        }
        Ok(())
    }
}

/// Draws one person's covariates (the order of draws is part of the fixture format).
fn plan_person(
    rng: &mut SplitMix64,
    config: &SynthConfig,
    group: u32,
    status: Status,
    discharge: i32,
) -> Person {
    let male = rng.chance_per_mille(config.male_share_per_mille);
    // Skewed young: the smaller of two uniform draws over 18..=70.
    let age = 18 + rng.below(53).min(rng.below(53)) as u8;
    let ethnicity = rng.weighted(&ETHNICITY_WEIGHTS) as u8;
    let span = u64::from(age - 10) + 1;
    let age_first_sanction = 10 + rng.below(span).min(rng.below(span)) as u8;
    let career = u64::from(age - age_first_sanction);
    let prior_sanctions = rng.below(career * 3 / 2 + 2).min(99) as u16;
    let index_offence = rng.weighted(&OFFENCE_WEIGHTS) as u8;
    let sentence_months = if rng.chance_per_mille(700) {
        1 + rng.below(11)
    } else {
        12 + rng.below(37)
    } as u8;
    Person {
        discharge,
        group,
        status,
        reoffender: false,
        male,
        age,
        ethnicity,
        prior_sanctions,
        age_first_sanction,
        index_offence,
        sentence_months,
    }
}

/// Relative propensity to be chosen as a reoffender: higher when young and with more
/// prior sanctions.
fn reoffending_weight(person: &Person) -> u64 {
    let age_weight = match person.age {
        0..=20 => 12,
        21..=24 => 10,
        25..=29 => 9,
        30..=34 => 8,
        35..=39 => 7,
        40..=49 => 6,
        _ => 3,
    };
    age_weight * (4 + u64::from(person.prior_sanctions.min(24)))
}

// ---------------------------------------------------------------------------------------
// Planting conviction rows
// ---------------------------------------------------------------------------------------

/// One row of `convictions.csv`, compactly. Dates are days from the common era.
#[derive(Debug, Clone, Copy)]
struct ConvRow {
    entity: u32,
    offence: i32,
    disposal: i32,
    event: u64,
    code: u8,
    caution: bool,
    /// Whether this row counts under the module's rules (duplicates are marked false).
    counted: bool,
}

/// Day offsets from discharge. The window ends 365 or 366 days and the lag 546 to 550
/// days after discharge, so counted rows (offence on days 1–330, disposal by day 480)
/// and uncounted ones (offence from day 400, or disposal from day 580) stay clear.
const WINDOW_FIRST: i32 = 1;
const WINDOW_LAST: i32 = 330;
const MAX_DISPOSAL_DELAY: i32 = 150;
const AFTER_WINDOW_FIRST: i32 = 400;
const AFTER_WINDOW_LAST: i32 = 700;
const LATE_DISPOSAL_FIRST: i32 = 580;

struct Planter<'p, 'a> {
    plan: &'p Plan<'a>,
    rows: Vec<ConvRow>,
    next_event: u64,
}

impl Planter<'_, '_> {
    fn event(&mut self) -> u64 {
        let event = self.next_event;
        self.next_event += 1;
        event
    }

    fn push(&mut self, entity: u32, offence: i32, disposal: i32, event: u64, code: u8) {
        self.rows.push(ConvRow {
            entity,
            offence,
            disposal,
            event,
            code,
            caution: false,
            counted: false,
        });
    }

    /// A conviction at a new court appearance, disposed of 0–150 days after the offence.
    fn push_new(&mut self, rng: &mut SplitMix64, entity: u32, offence: i32, code: u8) {
        let disposal = offence + rng.between(0, MAX_DISPOSAL_DELAY);
        let event = self.event();
        self.push(entity, offence, disposal, event, code);
    }

    fn plant_entity(&mut self, entity: u32, truth: &mut SynthTruth) {
        let mut rng = SplitMix64::stream(self.plan.config.seed, STREAM_ROWS, u64::from(entity));
        match self.plan.people.get(entity as usize) {
            Some(person) => self.plant_person(&mut rng, entity, person, truth),
            None => self.plant_outsider(&mut rng, entity, truth),
        }
    }

    fn plant_outsider(&mut self, rng: &mut SplitMix64, entity: u32, truth: &mut SynthTruth) {
        let n = 1 + rng.below(3);
        let (first, last) = self.plan.outsider_days;
        for _ in 0..n {
            let offence = rng.between(first, last);
            let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
            self.push_new(rng, entity, offence, code);
        }
        truth.rows.outsiders += n;
    }

    fn plant_person(
        &mut self,
        rng: &mut SplitMix64,
        entity: u32,
        person: &Person,
        truth: &mut SynthTruth,
    ) {
        let noise = &self.plan.config.noise;
        let d = person.discharge;
        let start = self.rows.len();
        let counts = person.status == Status::Eligible && person.reoffender;

        // Criminal history, wholly before discharge.
        let history = rng.geometric(
            u64::from(noise.history_rows_milli),
            u64::from(noise.history_rows_milli) + 1000,
            40,
        );
        for _ in 0..history {
            let offence = d - 200 - rng.between(0, 2800);
            let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
            self.push_new(rng, entity, offence, code);
        }
        truth.rows.history += u64::from(history);

        // Offences in the window: counted for reoffenders, never for excluded people.
        let group = self.plan.config.groups.get(person.group as usize);
        if counts {
            let mean = u64::from(group.map_or(1000, |g| g.mean_offences_per_reoffender_milli));
            let k = 1 + rng.geometric(mean.saturating_sub(1000), mean, 59);
            for _ in 0..k {
                let offence = d + rng.between(WINDOW_FIRST, WINDOW_LAST);
                let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
                self.push_new(rng, entity, offence, code);
                if let Some(row) = self.rows.last_mut() {
                    row.counted = true;
                }
            }
            truth.rows.reoffences += u64::from(k);
        } else if person.status != Status::Eligible {
            let rate = self
                .plan
                .group_rate_per_mille
                .get(person.group as usize)
                .copied()
                .unwrap_or(500);
            if rng.chance_per_mille(rate) {
                let k = 1 + rng.below(3);
                for _ in 0..k {
                    let offence = d + rng.between(WINDOW_FIRST, WINDOW_LAST);
                    let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
                    self.push_new(rng, entity, offence, code);
                }
                truth.rows.excluded_in_window += k;
            }
        }

        let in_window = |rng: &mut SplitMix64| d + rng.between(WINDOW_FIRST, WINDOW_LAST);
        let tally = &mut truth.rows.noise;
        if rng.chance_per_mille(noise.before_discharge_per_mille) {
            let offence = d - rng.between(30, 700);
            let disposal = d + rng.between(1, 200);
            let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
            let event = self.event();
            self.push(entity, offence, disposal, event, code);
            tally.before_discharge += 1;
        }
        if rng.chance_per_mille(noise.late_disposal_per_mille) {
            let offence = d + rng.between(30, 300);
            let disposal = d + rng.between(LATE_DISPOSAL_FIRST, LATE_DISPOSAL_FIRST + 200);
            let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
            let event = self.event();
            self.push(entity, offence, disposal, event, code);
            tally.late_disposal += 1;
        }
        if rng.chance_per_mille(noise.after_window_per_mille) {
            let offence = d + rng.between(AFTER_WINDOW_FIRST, AFTER_WINDOW_LAST);
            let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
            self.push_new(rng, entity, offence, code);
            tally.after_window += 1;
        }
        if rng.chance_per_mille(noise.breach_per_mille) {
            let offence = in_window(rng);
            self.push_new(rng, entity, offence, CODE_BREACH);
            tally.breach += 1;
        }
        if rng.chance_per_mille(noise.caution_per_mille) {
            let offence = in_window(rng);
            let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
            self.push_new(rng, entity, offence, code);
            if let Some(row) = self.rows.last_mut() {
                row.caution = true;
            }
            tally.caution += 1;
        }
        if rng.chance_per_mille(noise.unknown_code_per_mille) {
            let offence = in_window(rng);
            let code = CODE_UNKNOWN_FIRST + rng.below(UNKNOWN_CODES.len() as u64) as u8;
            self.push_new(rng, entity, offence, code);
            tally.unknown_code += 1;
        }
        if rng.chance_per_mille(noise.multi_offence_event_per_mille) {
            let counted: Vec<ConvRow> = self.rows[start..]
                .iter()
                .filter(|r| r.counted)
                .copied()
                .collect();
            if counted.is_empty() {
                // A new appearance after the window with two different offences.
                let offence = d + rng.between(AFTER_WINDOW_FIRST, AFTER_WINDOW_LAST);
                let code = rng.weighted(&OFFENCE_WEIGHTS) as u8;
                self.push_new(rng, entity, offence, code);
                if let Some(first) = self.rows.last().copied() {
                    let offence = rng.between(d + AFTER_WINDOW_FIRST, first.disposal);
                    let code = other_code(rng, first.code);
                    self.push(entity, offence, first.disposal, first.event, code);
                }
                tally.multi_offence_event += 2;
            } else {
                // One more counted offence at an existing counted appearance.
                let base = counted[rng.below(counted.len() as u64) as usize];
                let offence = rng.between(d + WINDOW_FIRST, base.disposal.min(d + WINDOW_LAST));
                let code = other_code(rng, base.code);
                self.push(entity, offence, base.disposal, base.event, code);
                if let Some(row) = self.rows.last_mut() {
                    row.counted = true;
                }
                tally.multi_offence_event += 1;
            }
        }
        if rng.chance_per_mille(noise.duplicate_per_mille) {
            let mine = &self.rows[start..];
            let pool: Vec<ConvRow> = if counts {
                mine.iter().filter(|r| r.counted).copied().collect()
            } else {
                mine.to_vec()
            };
            if !pool.is_empty() {
                let mut copy = pool[rng.below(pool.len() as u64) as usize];
                copy.counted = false;
                self.rows.push(copy);
                tally.duplicate += 1;
            }
        }

        if counts {
            let mine = &self.rows[start..];
            let mut events: Vec<u64> = mine.iter().filter(|r| r.counted).map(|r| r.event).collect();
            let offences = events.len() as u64;
            events.sort_unstable();
            events.dedup();
            let first = mine
                .iter()
                .filter(|r| r.counted)
                .map(|r| r.offence)
                .min()
                .unwrap_or(d);
            if let Some(group) = truth.groups.get_mut(person.group as usize) {
                group.counted_offences += offences;
                group.counted_events += events.len() as u64;
                group.days_to_first_sum += u64::try_from(first - d).unwrap_or(0);
            }
        }
    }
}

/// A uniformly chosen offence category other than `code`.
fn other_code(rng: &mut SplitMix64, code: u8) -> u8 {
    let n = OFFENCE_CODES.len() as u64;
    ((u64::from(code) + 1 + rng.below(n - 1)) % n) as u8
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

/// Appends `value` in decimal, zero-padded to at least `width` digits.
fn push_num(line: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    while n < digits.len() {
        digits[n] = b'0' + (value % 10) as u8;
        n += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    line.extend(std::iter::repeat_n(b'0', width.saturating_sub(n)));
    line.extend(digits[..n].iter().rev());
}

/// Appends a day number (days from the common era) as `YYYY-MM-DD`.
fn push_date(line: &mut Vec<u8>, day: i32) -> Result<(), SynthError> {
    let date = NaiveDate::from_num_days_from_ce_opt(day)
        .filter(|d| (1..=9999).contains(&d.year()))
        .ok_or(SynthError::DateOutOfRange { day })?;
    push_num(line, date.year() as u64, 4);
    line.push(b'-');
    push_num(line, u64::from(date.month()), 2);
    line.push(b'-');
    push_num(line, u64::from(date.day()), 2);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use chrono::Months;

    use super::*;

    /// FNV-1a of people.csv, convictions.csv and truth.json for `doncaster(2011)`,
    /// computed by Python over the generated files.
    const PINNED_DONCASTER_2011_FNV1A: [u64; 3] = [
        0xd414_c64f_482b_e105,
        0xdd8b_e1b8_09bb_4f4f,
        0xf59a_7ed8_75be_4663,
    ];

    fn generate_fresh(config: &SynthConfig) -> (tempfile::TempDir, SynthTruth) {
        let dir = tempfile::tempdir().expect("temp dir");
        let truth = generate(config, dir.path()).expect("generate");
        (dir, truth)
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).expect("read output")
    }

    /// FNV-1a, 64-bit: a tiny stable hash for pinning file contents.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// Every noise kind on for everyone, women and men, a leap day inside a group.
    fn noisy_config(seed: u64) -> SynthConfig {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        SynthConfig {
            seed,
            id_prefix: "T".to_string(),
            area: "test-area".to_string(),
            male_share_per_mille: 800,
            groups: vec![
                GroupConfig {
                    name: "leap".to_string(),
                    from: date(2012, 2, 1),
                    to: date(2012, 3, 31),
                    eligible: 300,
                    reoffenders: 170,
                    mean_offences_per_reoffender_milli: 3100,
                    excluded_deported: 10,
                    excluded_remand: 12,
                    excluded_breach_only: 9,
                },
                GroupConfig {
                    name: "one-day".to_string(),
                    from: date(2013, 12, 31),
                    to: date(2013, 12, 31),
                    eligible: 50,
                    reoffenders: 50,
                    mean_offences_per_reoffender_milli: 1000,
                    excluded_deported: 3,
                    excluded_remand: 0,
                    excluded_breach_only: 1,
                },
                GroupConfig {
                    name: "nobody-reoffends".to_string(),
                    from: date(2014, 1, 1),
                    to: date(2014, 6, 30),
                    eligible: 40,
                    reoffenders: 0,
                    mean_offences_per_reoffender_milli: 2000,
                    excluded_deported: 2,
                    excluded_remand: 2,
                    excluded_breach_only: 2,
                },
            ],
            noise: NoiseConfig {
                before_discharge_per_mille: 1000,
                late_disposal_per_mille: 1000,
                after_window_per_mille: 1000,
                breach_per_mille: 1000,
                caution_per_mille: 1000,
                unknown_code_per_mille: 1000,
                duplicate_per_mille: 1000,
                multi_offence_event_per_mille: 1000,
                history_rows_milli: 3000,
            },
            outsiders: 40,
        }
    }

    /// Recomputes every group's figures from the CSV text alone, under the counting
    /// rules in the module documentation, sharing no code with the generator.
    fn recount(config: &SynthConfig, people: &str, convictions: &str) -> Vec<GroupTruth> {
        let parse = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let mut lines = people.lines();
        assert_eq!(lines.next(), Some(PEOPLE_HEADER));
        let mut result: Vec<GroupTruth> = config
            .groups
            .iter()
            .map(|g| GroupTruth {
                name: g.name.clone(),
                eligible: 0,
                excluded: ExcludedTruth {
                    deported: 0,
                    time_served_on_remand: 0,
                    breach_only: 0,
                },
                reoffenders: 0,
                counted_offences: 0,
                counted_events: 0,
                days_to_first_sum: 0,
            })
            .collect();
        let mut cohort: HashMap<&str, (usize, NaiveDate)> = HashMap::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 12, "{line}");
            let discharge = parse(f[8]);
            let g = config
                .groups
                .iter()
                .position(|g| g.from <= discharge && discharge <= g.to)
                .expect("discharge inside a group");
            match (f[9], f[10]) {
                ("sentence_completed", "N") => {
                    result[g].eligible += 1;
                    assert!(cohort.insert(f[0], (g, discharge)).is_none(), "unique ref");
                }
                ("sentence_completed", "Y") => result[g].excluded.breach_only += 1,
                ("deported", "N") => result[g].excluded.deported += 1,
                ("time_served_on_remand", "N") => result[g].excluded.time_served_on_remand += 1,
                other => panic!("unexpected discharge fields {other:?}"),
            }
        }
        let mut lines = convictions.lines();
        assert_eq!(lines.next(), Some(CONVICTIONS_HEADER));
        let mut counted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            let Some(&(_, index)) = cohort.get(f[0]) else {
                continue;
            };
            let offence = parse(f[1]);
            let disposal = parse(f[2]);
            let window_end = index.checked_add_months(Months::new(12)).expect("date");
            let lag_end = index.checked_add_months(Months::new(18)).expect("date");
            if offence >= index
                && offence < window_end
                && disposal <= lag_end
                && f[3] == "conviction"
                && OFFENCE_CODES.contains(&f[5])
            {
                counted.entry(f[0]).or_default().insert(line);
            }
        }
        for (reference, rows) in counted {
            let (g, index) = cohort[reference];
            let group = &mut result[g];
            group.reoffenders += 1;
            group.counted_offences += rows.len() as u64;
            let events: BTreeSet<&str> = rows
                .iter()
                .map(|r| r.split(',').nth(4).expect("event"))
                .collect();
            group.counted_events += events.len() as u64;
            let first = rows
                .iter()
                .map(|r| parse(r.split(',').nth(1).expect("date")))
                .min()
                .expect("rows");
            group.days_to_first_sum += (first - index).num_days() as u64;
        }
        result
    }

    #[test]
    fn splitmix64_seed_zero_matches_reference_values() {
        let mut rng = SplitMix64::new(0);
        let first: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f,
                0xf88b_b8a8_724c_81ec,
                0x1b39_896a_51a8_749b,
            ]
        );
    }

    #[test]
    fn derived_draws_are_pinned() {
        let mut rng = SplitMix64::stream(2011, STREAM_PERSON, 7);
        let below: Vec<u64> = (0..6).map(|_| rng.below(10)).collect();
        let mut items: Vec<u32> = (0..10).collect();
        rng.shuffle(&mut items);
        let chances: Vec<bool> = (0..6).map(|_| rng.chance_per_mille(500)).collect();
        // Reference values computed by an independent Python transcription of
        // `SplitMix64::stream`, `below` and `shuffle`.
        assert_eq!(below, [1, 4, 3, 5, 4, 2]);
        assert_eq!(items, [2, 4, 6, 8, 5, 9, 7, 3, 1, 0]);
        assert_eq!(chances, [true, false, false, false, false, false]);
    }

    #[test]
    fn below_is_in_range_and_handles_degenerate_bounds() {
        let mut rng = SplitMix64::new(99);
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.below(1), 0);
        for n in [2, 3, 7, 1000, u64::MAX / 3 + 1, u64::MAX] {
            for _ in 0..200 {
                assert!(rng.below(n) < n);
            }
        }
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[rng.below(3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn same_config_gives_identical_bytes() {
        let config = SynthConfig::doncaster(7);
        let (a, truth_a) = generate_fresh(&config);
        let (b, truth_b) = generate_fresh(&config);
        assert_eq!(truth_a, truth_b);
        for name in [PEOPLE_FILE, CONVICTIONS_FILE, TRUTH_FILE] {
            assert_eq!(read(a.path(), name), read(b.path(), name), "{name}");
        }
    }

    #[test]
    fn different_seeds_give_different_files() {
        let (a, _) = generate_fresh(&SynthConfig::doncaster(1));
        let (b, _) = generate_fresh(&SynthConfig::doncaster(2));
        assert_ne!(read(a.path(), PEOPLE_FILE), read(b.path(), PEOPLE_FILE));
        assert_ne!(
            read(a.path(), CONVICTIONS_FILE),
            read(b.path(), CONVICTIONS_FILE)
        );
    }

    #[test]
    fn doncaster_2011_output_is_pinned() {
        // These bytes define the committed doncaster fixtures: if this fails, the
        // generator's stream changed and every fixture and expected figure must be
        // regenerated deliberately.
        let (dir, truth) = generate_fresh(&SynthConfig::doncaster(2011));
        let figures: Vec<(u64, u64, u64, u64)> = truth
            .groups
            .iter()
            .map(|g| {
                (
                    g.reoffenders,
                    g.counted_offences,
                    g.counted_events,
                    g.days_to_first_sum,
                )
            })
            .collect();
        assert_eq!(
            figures,
            [
                (580, 1418, 1394, 65739),
                (523, 1228, 1202, 60363),
                (547, 1259, 1239, 66473)
            ]
        );
        let hashes = [PEOPLE_FILE, CONVICTIONS_FILE, TRUTH_FILE]
            .map(|name| fnv1a(read(dir.path(), name).as_bytes()));
        assert_eq!(hashes, PINNED_DONCASTER_2011_FNV1A);
    }

    #[test]
    fn recount_from_csv_matches_truth_for_doncaster() {
        let config = SynthConfig::doncaster(2011);
        let (dir, truth) = generate_fresh(&config);
        let recounted = recount(
            &config,
            &read(dir.path(), PEOPLE_FILE),
            &read(dir.path(), CONVICTIONS_FILE),
        );
        assert_eq!(recounted, truth.groups);
    }

    #[test]
    fn recount_from_csv_matches_truth_with_every_noise_kind_always_on() {
        for seed in [0, 1, u64::MAX] {
            let config = noisy_config(seed);
            let (dir, truth) = generate_fresh(&config);
            let recounted = recount(
                &config,
                &read(dir.path(), PEOPLE_FILE),
                &read(dir.path(), CONVICTIONS_FILE),
            );
            assert_eq!(recounted, truth.groups, "seed {seed}");
            let noise = &truth.rows.noise;
            let people = truth.rows.people;
            assert_eq!(noise.before_discharge, people);
            assert_eq!(noise.breach, people);
            assert_eq!(noise.caution, people);
            assert_eq!(noise.unknown_code, people);
            assert!(noise.duplicate > 0 && noise.multi_offence_event > people);
        }
    }

    #[test]
    fn planted_noise_changes_offences_but_not_reoffenders() {
        let truth = generate_fresh(&noisy_config(3)).1;
        let leap = &truth.groups[0];
        assert_eq!(leap.reoffenders, 170);
        // Every reoffender got one extra offence at an existing appearance.
        assert!(leap.counted_offences >= leap.counted_events + 170);
        let one_day = &truth.groups[1];
        // Mean 1.0 offences: one event each, plus the shared-appearance offence.
        assert_eq!(
            (one_day.counted_events, one_day.counted_offences),
            (50, 100)
        );
        let nobody = &truth.groups[2];
        assert_eq!((nobody.reoffenders, nobody.counted_offences), (0, 0));
    }

    #[test]
    fn row_kinds_add_up_to_the_conviction_rows_written() {
        for config in [SynthConfig::doncaster(5), noisy_config(5)] {
            let (dir, truth) = generate_fresh(&config);
            let r = &truth.rows;
            let n = &r.noise;
            let sum = r.reoffences
                + r.history
                + r.excluded_in_window
                + r.outsiders
                + n.before_discharge
                + n.late_disposal
                + n.after_window
                + n.breach
                + n.caution
                + n.unknown_code
                + n.duplicate
                + n.multi_offence_event;
            assert_eq!(sum, r.convictions);
            let lines = |name| read(dir.path(), name).lines().count() as u64 - 1;
            assert_eq!(lines(CONVICTIONS_FILE), r.convictions);
            assert_eq!(lines(PEOPLE_FILE), r.people);
        }
    }

    #[test]
    fn outsiders_are_absent_from_people_csv() {
        let config = noisy_config(8);
        let (dir, truth) = generate_fresh(&config);
        let people = read(dir.path(), PEOPLE_FILE);
        let refs: BTreeSet<&str> = people
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .collect();
        let convictions = read(dir.path(), CONVICTIONS_FILE);
        let strangers: BTreeSet<&str> = convictions
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .filter(|r| !refs.contains(r))
            .collect();
        assert_eq!(strangers.len(), config.outsiders);
        let outsider_rows = convictions
            .lines()
            .skip(1)
            .filter(|l| l.split(',').next().is_some_and(|r| strangers.contains(r)))
            .count();
        assert_eq!(outsider_rows as u64, truth.rows.outsiders);
    }

    #[test]
    fn people_fields_are_within_documented_ranges() {
        let config = noisy_config(11);
        let (dir, _) = generate_fresh(&config);
        let people = read(dir.path(), PEOPLE_FILE);
        let mut sexes = BTreeSet::new();
        for line in people.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert!(f[0].starts_with('T') && f[0].len() == 8, "{line}");
            sexes.insert(f[1]);
            let age: u32 = f[2].parse().expect("age");
            assert!((18..=70).contains(&age), "{line}");
            assert!(ETHNICITIES.contains(&f[3]), "{line}");
            let _priors: u32 = f[4].parse().expect("priors");
            let first: u32 = f[5].parse().expect("age first");
            assert!((10..=age).contains(&first), "{line}");
            assert!(OFFENCE_CODES.contains(&f[6]), "{line}");
            let months: u32 = f[7].parse().expect("sentence");
            assert!((1..=48).contains(&months), "{line}");
            assert_eq!(f[11], "test-area");
        }
        assert_eq!(sexes, BTreeSet::from(["F", "M"]));
        let convictions = read(dir.path(), CONVICTIONS_FILE);
        for line in convictions.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert!(f[1] <= f[2], "offence after disposal: {line}");
            assert!(f[3] == "conviction" || f[3] == "caution", "{line}");
            assert!(f[4].starts_with('E') && f[4].len() == 9, "{line}");
            assert!(
                OFFENCE_CODES.contains(&f[5])
                    || f[5] == BREACH_CODE
                    || UNKNOWN_CODES.contains(&f[5]),
                "{line}"
            );
        }
    }

    #[test]
    fn rows_are_not_written_in_sorted_order() {
        let (dir, _) = generate_fresh(&SynthConfig::doncaster(4));
        for name in [PEOPLE_FILE, CONVICTIONS_FILE] {
            let text = read(dir.path(), name);
            let rows: Vec<&str> = text.lines().skip(1).collect();
            let mut sorted = rows.clone();
            sorted.sort_unstable();
            assert_ne!(rows, sorted, "{name}");
        }
    }

    #[test]
    fn reoffenders_are_younger_and_have_more_prior_sanctions() {
        let config = SynthConfig::doncaster(2011);
        let plan = Plan::new(&config);
        let mean = |reoffender: bool, f: fn(&Person) -> u64| {
            let chosen: Vec<u64> = plan
                .people
                .iter()
                .filter(|p| p.status == Status::Eligible && p.reoffender == reoffender)
                .map(f)
                .collect();
            chosen.iter().sum::<u64>() * 1000 / chosen.len() as u64
        };
        let age = |p: &Person| u64::from(p.age);
        let priors = |p: &Person| u64::from(p.prior_sanctions);
        assert!(mean(true, age) + 2000 < mean(false, age));
        assert!(mean(true, priors) > mean(false, priors) + 2000);
    }

    #[test]
    fn doncaster_preset_reproduces_the_published_binary_rates() {
        let truth = generate_fresh(&SynthConfig::doncaster(2011)).1;
        let per_mille: Vec<u64> = truth
            .groups
            .iter()
            .map(|g| g.reoffenders * 1000 / g.eligible)
            .collect();
        assert_eq!(per_mille, [580, 523, 547]);
        // 5.7 and 3.3 percentage points below the 2009 baseline.
        assert_eq!(
            (per_mille[0] - per_mille[1], per_mille[0] - per_mille[2]),
            (57, 33)
        );
    }

    #[test]
    fn national_preset_writes_about_four_and_a_half_conviction_rows_per_person() {
        let config = SynthConfig::national(9, 2_000);
        let truth = generate_fresh(&config).1;
        assert_eq!(truth.rows.people, 2_000);
        let per_person_milli = truth.rows.convictions * 1000 / truth.rows.people;
        assert!(
            (4_200..=4_800).contains(&per_person_milli),
            "{per_person_milli}"
        );
        let recounted = {
            let dir = tempfile::tempdir().expect("temp dir");
            generate(&config, dir.path()).expect("generate");
            recount(
                &config,
                &read(dir.path(), PEOPLE_FILE),
                &read(dir.path(), CONVICTIONS_FILE),
            )
        };
        assert_eq!(recounted, truth.groups);
    }

    #[test]
    fn truth_file_is_pretty_json_that_reads_back() {
        let (dir, truth) = generate_fresh(&noisy_config(2));
        let text = read(dir.path(), TRUTH_FILE);
        assert!(text.ends_with("}\n") && text.starts_with("{\n  \"seed\": 2,"));
        let back: SynthTruth = serde_json::from_str(&text).expect("truth parses");
        assert_eq!(back, truth);
        let config: SynthConfig =
            serde_json::from_value(serde_json::to_value(&truth.config).expect("json"))
                .expect("config");
        assert_eq!(config, noisy_config(2));
    }

    #[test]
    fn refuses_existing_files_unless_told_to_overwrite() {
        let config = noisy_config(6);
        let (dir, first) = generate_fresh(&config);
        let err = generate(&config, dir.path()).expect_err("files exist");
        assert!(matches!(err, SynthError::FileExists { .. }), "{err}");
        assert!(err
            .to_string()
            .ends_with("already exists: choose an empty directory or allow overwriting"));
        let again =
            generate_into(&config, dir.path(), ExistingFiles::Overwrite).expect("overwrite");
        assert_eq!(again, first);
    }

    #[test]
    fn refuses_before_writing_anything_when_only_the_truth_file_exists() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(TRUTH_FILE), "keep me").expect("write");
        let err = generate(&noisy_config(1), dir.path()).expect_err("truth exists");
        assert!(matches!(err, SynthError::FileExists { ref path } if path.ends_with(TRUTH_FILE)));
        assert!(!dir.path().join(PEOPLE_FILE).exists());
        assert_eq!(read(dir.path(), TRUTH_FILE), "keep me");
    }

    #[test]
    fn creates_a_missing_output_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("a/b");
        generate(&noisy_config(1), &out).expect("generate");
        assert!(out.join(CONVICTIONS_FILE).exists());
    }

    #[test]
    fn invalid_config_reports_every_problem_at_once() {
        let mut config = noisy_config(1);
        config.id_prefix = "D-".to_string();
        config.area = "a,b".to_string();
        config.male_share_per_mille = 1001;
        config.noise.caution_per_mille = 2000;
        config.noise.history_rows_milli = 20_001;
        config.groups[0].reoffenders = 301;
        config.groups[0].mean_offences_per_reoffender_milli = 999;
        config.groups[1].name = "leap".to_string();
        config.groups[1].to = config.groups[0].to;
        config.groups[2].from = NaiveDate::from_ymd_opt(2014, 7, 1).expect("date");
        config.groups[2].to = NaiveDate::from_ymd_opt(2101, 1, 1).expect("date");
        let err = generate(&config, Path::new("/nonexistent/never-created")).expect_err("invalid");
        let SynthError::InvalidConfig { problems } = &err else {
            panic!("unexpected error {err}");
        };
        let message = err.to_string();
        assert!(
            message.starts_with("invalid synth config: id_prefix \"D-\""),
            "{message}"
        );
        assert!(message.contains("group \"leap\" has 301 reoffenders but only 300 eligible people"));
        assert!(message
            .contains("group \"leap\" has an empty date range: 2012-03-31 is before 2013-12-31"));
        assert!(message.contains("date 2101-01-01 is outside the supported range"));
        assert_eq!(problems.len(), 10, "{message}");
        assert!(!Path::new("/nonexistent/never-created").exists());
    }

    #[test]
    fn overlapping_groups_and_oversized_configs_are_rejected() {
        let mut config = noisy_config(1);
        config.groups[1].from = NaiveDate::from_ymd_opt(2012, 3, 31).expect("date");
        config.outsiders = usize::MAX;
        let problems = config.problems();
        assert!(problems.contains(&ConfigProblem::OverlappingGroups {
            first: "leap".to_string(),
            second: "one-day".to_string(),
        }));
        assert!(problems.contains(&ConfigProblem::TooManyPeople { total: usize::MAX }));
        let empty = SynthConfig {
            groups: Vec::new(),
            ..noisy_config(1)
        };
        assert_eq!(empty.problems(), [ConfigProblem::NoGroups]);
    }

    #[test]
    fn random_configs_either_fail_validation_or_recount_exactly() {
        let mut rng = SplitMix64::new(0x5eed);
        let mut generated = 0;
        for case in 0..200 {
            let date = |rng: &mut SplitMix64| {
                let day = 690_000 + rng.below(80_000) as i32; // about 1890..2110
                NaiveDate::from_num_days_from_ce_opt(day).expect("date")
            };
            let groups = (0..rng.below(4))
                .map(|i| {
                    let from = date(&mut rng);
                    let to = if rng.chance_per_mille(900) {
                        from + chrono::Days::new(rng.below(400))
                    } else {
                        date(&mut rng)
                    };
                    let eligible = rng.below(40) as usize;
                    GroupConfig {
                        name: format!("g{}", i % 3),
                        from,
                        to,
                        eligible,
                        reoffenders: rng.below(eligible as u64 + 2) as usize,
                        mean_offences_per_reoffender_milli: 900 + rng.below(20_200) as u32,
                        excluded_deported: rng.below(5) as usize,
                        excluded_remand: rng.below(5) as usize,
                        excluded_breach_only: rng.below(5) as usize,
                    }
                })
                .collect();
            let rate = |rng: &mut SplitMix64| rng.below(1_003) as u32;
            let pick = |rng: &mut SplitMix64, good: &str, bad: &[&str]| {
                if rng.chance_per_mille(950) {
                    good.to_string()
                } else {
                    bad[rng.below(bad.len() as u64) as usize].to_string()
                }
            };
            let config = SynthConfig {
                seed: rng.next_u64(),
                id_prefix: pick(&mut rng, "P9", &["", "é", "x-"]),
                area: pick(&mut rng, "a b", &["", "a,b", "a\"b", "a\nb"]),
                male_share_per_mille: rate(&mut rng),
                groups,
                noise: NoiseConfig {
                    before_discharge_per_mille: rate(&mut rng),
                    late_disposal_per_mille: rate(&mut rng),
                    after_window_per_mille: rate(&mut rng),
                    breach_per_mille: rate(&mut rng),
                    caution_per_mille: rate(&mut rng),
                    unknown_code_per_mille: rate(&mut rng),
                    duplicate_per_mille: rate(&mut rng),
                    multi_offence_event_per_mille: rate(&mut rng),
                    history_rows_milli: rng.below(21_000) as u32,
                },
                outsiders: rng.below(5) as usize,
            };
            let dir = tempfile::tempdir().expect("temp dir");
            match generate(&config, dir.path()) {
                Ok(truth) => {
                    generated += 1;
                    let recounted = recount(
                        &config,
                        &read(dir.path(), PEOPLE_FILE),
                        &read(dir.path(), CONVICTIONS_FILE),
                    );
                    assert_eq!(recounted, truth.groups, "case {case}: {config:?}");
                }
                Err(SynthError::InvalidConfig { problems }) => assert!(!problems.is_empty()),
                Err(other) => panic!("case {case}: unexpected error {other}"),
            }
        }
        assert!(
            generated >= 40,
            "only {generated} random configs were valid"
        );
    }

    #[test]
    fn presets_are_valid() {
        assert_eq!(SynthConfig::doncaster(0).problems(), []);
        for people in [0, 1, 999, 2_000, 1_000_000] {
            assert_eq!(SynthConfig::national(0, people).problems(), [], "{people}");
        }
    }

    #[test]
    fn zero_people_still_writes_headers_and_outsiders() {
        let mut config = SynthConfig::national(1, 0);
        config.outsiders = 3;
        let (dir, truth) = generate_fresh(&config);
        assert_eq!(read(dir.path(), PEOPLE_FILE), format!("{PEOPLE_HEADER}\n"));
        assert_eq!(truth.rows.people, 0);
        assert!(truth.rows.convictions >= 3);
        assert_eq!(truth.groups[0].eligible, 0);
    }
}
