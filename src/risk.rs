//! Risk models: a person's predicted probability of proven reoffending, from a versioned
//! coefficient file.
//!
//! Several contracts price outcomes against predicted risk: Transforming Rehabilitation
//! adjusted each area's baseline for offender mix with OGRS, the Lewisham design paid
//! more for each higher-risk person who did not reoffend, and a predicted-vs-actual
//! contract pays on the gap between the cohort's mean predicted rate and its actual rate.
//! The coefficients behind those predictions differ between sources and versions (OGRS3,
//! OGRS4/G), so a risk model is **data**, not code: a TOML file such as
//! `audit-specs/models/ogrs3.toml`, hashed into the evidence like any other input. Two
//! parties who disagree about a predicted rate can then see at once whether they used
//! different coefficients (different hashes) or different people.
//!
//! Where the published sources disagree, the file must say which reading it takes. For
//! OGRS3 the two published implementations disagree on the sign of the female terms for
//! ages 10–15 (±0.785, ±0.61385, ±0.66952): the file keeps both variants and its
//! `female_juvenile_sign` field picks one, so the choice is explicit and hashed. The
//! shipped file picks `"negative"` and explains why.
//!
//! [`RiskModel::from_toml`] checks the file strictly — unknown fields rejected, every
//! age from 10 to 120 in exactly one band for each sex, all 20 offence categories present,
//! every coefficient finite — and reports every problem at once, each with its line,
//! column and field. [`RiskModel::score`] then computes the OGRS3 formula in `f64`, in a
//! fixed order, with its own logarithm and exponential (see [`OgrsScore`]) so that the
//! same inputs give the same bits on every platform.
//! [`OffenceMap::from_csv`] reads `audit-specs/models/offence-categories.csv`, which maps
//! the data's offence codes to the model's categories.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// The risk-model file format this build reads (the file's `format` field).
pub const MODEL_FORMAT: i64 = 1;

/// The youngest age the scale covers: the age of criminal responsibility in England and
/// Wales. Every age from here to [`MIN_TOP_AGE`] must be in exactly one band.
pub const MIN_AGE: u32 = 10;

/// The oldest age each sex's bands must reach at least.
pub const MIN_TOP_AGE: u32 = 120;

/// The OGRS3 offence categories, as the snake_case codes of the model file's
/// `[offence_terms]` table and of the project's synthetic data. A model must give a term
/// for each of them, and for nothing else.
pub const OFFENCE_CATEGORIES: [&str; 20] = [
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

/// The constant added to the length of the criminal career in the Copas rate,
/// `ln(S / (10 + A_conv − A_first))`. Part of the formula, not a coefficient.
const COPAS_CAREER_OFFSET: u64 = 10;

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

/// Sex, as OGRS3 uses it: each has its own age bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// The key of this sex's bands in the model file's `[age_sex]` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

/// Which of the two published variants of the female 10–15 age terms a model uses
/// (the file's `female_juvenile_sign`).
///
/// ```toml
/// female_juvenile_sign = "negative"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JuvenileSign {
    /// The band's `positive` value (e.g. +0.61385 for girls aged 12–13).
    Positive,
    /// The band's `negative` value (e.g. −0.61385 for girls aged 12–13).
    Negative,
}

impl JuvenileSign {
    /// The value as written in the model file.
    pub fn as_str(self) -> &'static str {
        match self {
            JuvenileSign::Positive => "positive",
            JuvenileSign::Negative => "negative",
        }
    }
}

/// The static factors OGRS3 scores one person on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OgrsInputs {
    pub sex: Sex,
    /// Age in whole years at the start of follow-up (release, start of the order, or
    /// the caution). Selects the age-sex band.
    pub age_at_follow_up_start: u32,
    /// Total number of sanctions, **including** the current one: at least 1.
    pub total_sanctions: u32,
    /// Age in whole years at the current conviction (or caution).
    pub age_at_current_conviction: u32,
    /// Age in whole years at the first sanction (the current one, if it is the first).
    pub age_at_first_sanction: u32,
    /// The current offence's category: one of [`OFFENCE_CATEGORIES`] (map data offence
    /// codes with an [`OffenceMap`]).
    pub offence_category: String,
}

/// One person's OGRS3 score.
///
/// The values are computed in `f64` in a fixed order, with the module's own logarithm
/// and exponential (pure IEEE arithmetic after fdlibm's algorithms, error below one unit
/// in the last place) rather than the platform's maths library, whose last bit may
/// differ between systems. Evidence should record them with the `*_fixed` helpers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OgrsScore {
    /// The Copas rate, `ln(S / (10 + A_conv − A_first))`.
    pub copas: f64,
    /// The linear predictor, `AgeSex + multiplier × Copas + FirstOrRepeat + Offence`.
    pub y: f64,
    /// Predicted probability of proven reoffending within one year.
    pub p1: f64,
    /// Predicted probability of proven reoffending within two years.
    pub p2: f64,
}

impl OgrsScore {
    /// [`OgrsScore::copas`] with exactly `places` decimals; see [`fixed`].
    pub fn copas_fixed(&self, places: u8) -> String {
        fixed(self.copas, places)
    }

    /// [`OgrsScore::y`] with exactly `places` decimals; see [`fixed`].
    pub fn y_fixed(&self, places: u8) -> String {
        fixed(self.y, places)
    }

    /// [`OgrsScore::p1`] with exactly `places` decimals; see [`fixed`].
    pub fn p1_fixed(&self, places: u8) -> String {
        fixed(self.p1, places)
    }

    /// [`OgrsScore::p2`] with exactly `places` decimals; see [`fixed`].
    pub fn p2_fixed(&self, places: u8) -> String {
        fixed(self.p2, places)
    }
}

/// `value` in decimal with exactly `places` digits after the point, rounded from its exact
/// binary value (ties to even), as Rust's formatter does on every platform. A value that
/// rounds to zero is written without a minus sign (`0.0000`, never `-0.0000`).
pub fn fixed(value: f64, places: u8) -> String {
    let text = format!("{:.*}", usize::from(places), value);
    match text.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
        _ => text,
    }
}

/// One problem found in a model file or an offence map, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelProblem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// The field the problem is about, e.g. `age_sex.female[3].to` or
    /// `offence_terms.robbery`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

/// Why a risk model or offence map could not be read, or a person could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RiskError {
    /// The model file is not a valid model; every problem found is listed.
    #[error("{}", render_problems("risk model", .problems))]
    Model { problems: Vec<ModelProblem> },
    /// The offence map is not valid; every problem found is listed.
    #[error("{}", render_problems("offence map", .problems))]
    OffenceMap { problems: Vec<ModelProblem> },
    /// An age below [`MIN_AGE`].
    #[error(
        "{field} is {age}: the scale starts at age {MIN_AGE}, the age of criminal responsibility"
    )]
    AgeBelowMinimum { field: &'static str, age: u32 },
    /// An age at the start of follow-up above the model's oldest band.
    #[error("age_at_follow_up_start is {age}: the model's {sex} bands end at {max}")]
    AgeNotCovered {
        sex: &'static str,
        age: u32,
        max: u32,
    },
    /// The first sanction is dated after the current conviction.
    #[error(
        "age_at_first_sanction ({first}) is after age_at_current_conviction ({current}): \
         the first sanction cannot come after the current one"
    )]
    FirstSanctionAfterConviction { first: u32, current: u32 },
    /// The current conviction is dated after the start of follow-up.
    #[error(
        "age_at_current_conviction ({current}) is after age_at_follow_up_start ({follow_up}): \
         follow-up starts at or after the current sanction"
    )]
    ConvictionAfterFollowUp { current: u32, follow_up: u32 },
    /// `total_sanctions` is 0.
    #[error("total_sanctions is 0: it counts the current sanction, so it is at least 1")]
    NoSanctions,
    /// An offence category the model has no term for.
    #[error("unknown offence category {category:?}; known categories are: {known}")]
    UnknownCategory { category: String, known: String },
    /// A computed value is infinite or not a number.
    #[error("{what} is not a finite number")]
    NonFinite { what: &'static str },
}

impl RiskError {
    /// A stable kebab-case code for the kind of error; reports match on this, never on
    /// the message.
    pub fn code(&self) -> &'static str {
        match self {
            RiskError::Model { .. } => "risk-model-invalid",
            RiskError::OffenceMap { .. } => "offence-map-invalid",
            RiskError::AgeBelowMinimum { .. } => "risk-age-below-minimum",
            RiskError::AgeNotCovered { .. } => "risk-age-not-covered",
            RiskError::FirstSanctionAfterConviction { .. } => {
                "risk-first-sanction-after-conviction"
            }
            RiskError::ConvictionAfterFollowUp { .. } => "risk-conviction-after-follow-up",
            RiskError::NoSanctions => "risk-no-sanctions",
            RiskError::UnknownCategory { .. } => "risk-unknown-category",
            RiskError::NonFinite { .. } => "risk-non-finite",
        }
    }
}

// ---------------------------------------------------------------------------------------
// The checked model
// ---------------------------------------------------------------------------------------

/// A checked OGRS3-form risk model. Only [`RiskModel::from_toml`] makes one, so every
/// model in hand covers every age and category with finite coefficients.
///
/// ```toml
/// format = 1
/// name = "OGRS3"
/// version = "1.0.0"
/// source = "where the coefficients come from"
/// female_juvenile_sign = "negative"
/// copas_multiplier = 1.25112
/// first_sanction = 0.12614
/// repeat_sanction = 0.46306
/// intercept_1_year = 1.40256
/// intercept_2_years = 2.1217
///
/// [age_sex]
/// male = [{ from = 10, to = 11, term = 0.0 }, ...]
/// female = [{ from = 10, to = 11, positive = 0.785, negative = -0.785 }, ...]
///
/// [offence_terms]
/// violence = 0.0
/// ...
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RiskModel {
    name: String,
    version: String,
    source: String,
    female_juvenile_sign: JuvenileSign,
    copas_multiplier: f64,
    first_sanction: f64,
    repeat_sanction: f64,
    intercept_1_year: f64,
    intercept_2_years: f64,
    /// Sorted, contiguous from [`MIN_AGE`], each with its term already resolved.
    male: Vec<AgeBand>,
    female: Vec<AgeBand>,
    offence_terms: BTreeMap<String, f64>,
}

/// One checked age band: ages `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AgeBand {
    from: u32,
    to: u32,
    term: f64,
}

impl RiskModel {
    /// Reads and checks a model file. Unknown or missing fields stop the reading with the
    /// parser's position; every other problem (gaps or overlaps in the age bands, missing
    /// or unknown offence categories, non-finite coefficients, a bad `format`) is
    /// collected and reported together in [`RiskError::Model`].
    pub fn from_toml(text: &str) -> Result<RiskModel, RiskError> {
        let raw: RawModel = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                return Err(RiskError::Model {
                    problems: vec![parse_problem(text, &e)],
                })
            }
        };
        let mut p = Problems::new(text);

        if *raw.format.get_ref() != MODEL_FORMAT {
            p.at(
                raw.format.span(),
                "format",
                format!("format {} is not supported", raw.format.get_ref()),
                Some(format!("this build reads format {MODEL_FORMAT}")),
            );
        }
        let name = p.text(&raw.name, "name");
        let version = p.text(&raw.version, "version");
        let source = p.text(&raw.source, "source");
        let copas_multiplier = p.finite(&raw.copas_multiplier, "copas_multiplier");
        let first_sanction = p.finite(&raw.first_sanction, "first_sanction");
        let repeat_sanction = p.finite(&raw.repeat_sanction, "repeat_sanction");
        let intercept_1_year = p.finite(&raw.intercept_1_year, "intercept_1_year");
        let intercept_2_years = p.finite(&raw.intercept_2_years, "intercept_2_years");
        let sign = raw.female_juvenile_sign;
        let male = p.bands(Sex::Male, &raw.age_sex.male, sign);
        let female = p.bands(Sex::Female, &raw.age_sex.female, sign);
        let offence_terms = p.offence_terms(&raw.offence_terms);

        if !p.list.is_empty() {
            return Err(RiskError::Model {
                problems: p.finish(),
            });
        }
        Ok(RiskModel {
            name,
            version,
            source,
            female_juvenile_sign: sign,
            copas_multiplier,
            first_sanction,
            repeat_sanction,
            intercept_1_year,
            intercept_2_years,
            male,
            female,
            offence_terms,
        })
    }

    /// Scores one person:
    ///
    /// ```text
    /// copas = ln(S / (10 + A_conv − A_first))
    /// y     = AgeSex + copas_multiplier × copas + FirstOrRepeat + Offence
    /// p1    = logistic(intercept_1_year + y)
    /// p2    = logistic(intercept_2_years + y)
    /// ```
    ///
    /// summed left to right in exactly that order. Inputs that cannot describe a real
    /// person are errors, never a zero score: an age below 10, a first sanction after
    /// the current conviction, a current conviction after the start of follow-up, no
    /// sanctions, an unknown category, an age beyond the model's bands.
    pub fn score(&self, p: &OgrsInputs) -> Result<OgrsScore, RiskError> {
        for (field, age) in [
            ("age_at_follow_up_start", p.age_at_follow_up_start),
            ("age_at_current_conviction", p.age_at_current_conviction),
            ("age_at_first_sanction", p.age_at_first_sanction),
        ] {
            if age < MIN_AGE {
                return Err(RiskError::AgeBelowMinimum { field, age });
            }
        }
        if p.age_at_first_sanction > p.age_at_current_conviction {
            return Err(RiskError::FirstSanctionAfterConviction {
                first: p.age_at_first_sanction,
                current: p.age_at_current_conviction,
            });
        }
        if p.age_at_current_conviction > p.age_at_follow_up_start {
            return Err(RiskError::ConvictionAfterFollowUp {
                current: p.age_at_current_conviction,
                follow_up: p.age_at_follow_up_start,
            });
        }
        let age_sex = self.age_sex_term(p.sex, p.age_at_follow_up_start)?;
        let first_or_repeat = self.first_or_repeat_term(p.total_sanctions)?;
        let offence = self.offence_term(&p.offence_category)?;

        // Every operand is an integer below 2^33, so both conversions are exact.
        let career = COPAS_CAREER_OFFSET + u64::from(p.age_at_current_conviction)
            - u64::from(p.age_at_first_sanction);
        let copas = ln(f64::from(p.total_sanctions) / career as f64);
        let y = ((age_sex + self.copas_multiplier * copas) + first_or_repeat) + offence;
        let p1 = logistic(self.intercept_1_year + y);
        let p2 = logistic(self.intercept_2_years + y);
        for (what, v) in [("copas", copas), ("y", y), ("p1", p1), ("p2", p2)] {
            if !v.is_finite() {
                return Err(RiskError::NonFinite { what });
            }
        }
        Ok(OgrsScore { copas, y, p1, p2 })
    }

    /// The age-sex term for `sex` at `age` (at the start of follow-up), with the female
    /// juvenile sign already applied.
    pub fn age_sex_term(&self, sex: Sex, age: u32) -> Result<f64, RiskError> {
        if age < MIN_AGE {
            return Err(RiskError::AgeBelowMinimum {
                field: "age_at_follow_up_start",
                age,
            });
        }
        let bands = match sex {
            Sex::Male => &self.male,
            Sex::Female => &self.female,
        };
        match bands.iter().find(|b| b.from <= age && age <= b.to) {
            Some(band) => Ok(band.term),
            None => Err(RiskError::AgeNotCovered {
                sex: sex.as_str(),
                age,
                max: bands.last().map_or(0, |b| b.to),
            }),
        }
    }

    /// `first_sanction` when `total_sanctions` is 1, `repeat_sanction` when it is more.
    pub fn first_or_repeat_term(&self, total_sanctions: u32) -> Result<f64, RiskError> {
        match total_sanctions {
            0 => Err(RiskError::NoSanctions),
            1 => Ok(self.first_sanction),
            _ => Ok(self.repeat_sanction),
        }
    }

    /// The term for an offence category.
    pub fn offence_term(&self, category: &str) -> Result<f64, RiskError> {
        self.offence_terms
            .get(category)
            .copied()
            .ok_or_else(|| RiskError::UnknownCategory {
                category: category.to_string(),
                known: OFFENCE_CATEGORIES.join(", "),
            })
    }

    /// The model's `name`, e.g. `OGRS3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The coefficient file's own `version`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where the coefficients come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Which variant of the female 10–15 terms this model uses.
    pub fn female_juvenile_sign(&self) -> JuvenileSign {
        self.female_juvenile_sign
    }

    /// Whether `category` is one of the model's offence categories.
    pub fn has_category(&self, category: &str) -> bool {
        self.offence_terms.contains_key(category)
    }
}

// ---------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    format: Spanned<i64>,
    name: Spanned<String>,
    version: Spanned<String>,
    source: Spanned<String>,
    female_juvenile_sign: JuvenileSign,
    copas_multiplier: Spanned<f64>,
    first_sanction: Spanned<f64>,
    repeat_sanction: Spanned<f64>,
    intercept_1_year: Spanned<f64>,
    intercept_2_years: Spanned<f64>,
    age_sex: RawAgeSex,
    offence_terms: Spanned<BTreeMap<String, Spanned<f64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgeSex {
    male: Spanned<Vec<Spanned<RawBand>>>,
    female: Spanned<Vec<Spanned<RawBand>>>,
}

/// One band as written: `term`, or (female juvenile bands) `positive` and `negative`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBand {
    from: Spanned<i64>,
    to: Spanned<i64>,
    #[serde(default)]
    term: Option<Spanned<f64>>,
    #[serde(default)]
    positive: Option<Spanned<f64>>,
    #[serde(default)]
    negative: Option<Spanned<f64>>,
}

// ---------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------

/// Collects problems with positions computed from spans in the source text.
struct Problems<'a> {
    source: &'a str,
    list: Vec<(usize, ModelProblem)>,
}

impl<'a> Problems<'a> {
    fn new(source: &'a str) -> Self {
        Problems {
            source,
            list: Vec::new(),
        }
    }

    fn at(
        &mut self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let (line, column) = position(self.source, span.start);
        self.list.push((
            span.start,
            ModelProblem {
                line: Some(line),
                column: Some(column),
                field: field.into(),
                message: message.into(),
                help,
            },
        ));
    }

    /// The problems in file order (stable for problems at the same place).
    fn finish(mut self) -> Vec<ModelProblem> {
        self.list.sort_by_key(|(offset, _)| *offset);
        self.list.into_iter().map(|(_, p)| p).collect()
    }

    fn text(&mut self, s: &Spanned<String>, field: &str) -> String {
        if s.get_ref().trim().is_empty() {
            self.at(s.span(), field, format!("{field} is empty"), None);
        }
        s.get_ref().clone()
    }

    fn finite(&mut self, v: &Spanned<f64>, field: &str) -> f64 {
        let x = *v.get_ref();
        if !x.is_finite() {
            self.at(
                v.span(),
                field,
                format!("{field} is {x}: coefficients must be finite numbers"),
                None,
            );
        }
        x
    }

    /// Checks one sex's bands and resolves their terms. Returns them sorted by age.
    fn bands(
        &mut self,
        sex: Sex,
        raw: &Spanned<Vec<Spanned<RawBand>>>,
        sign: JuvenileSign,
    ) -> Vec<AgeBand> {
        let list_field = format!("age_sex.{}", sex.as_str());
        let mut bands: Vec<(AgeBand, Range<usize>)> = Vec::new();
        let mut ages_ok = true;
        for (i, band) in raw.get_ref().iter().enumerate() {
            let field = format!("{list_field}[{i}]");
            let b = band.get_ref();
            let from = *b.from.get_ref();
            let to = *b.to.get_ref();
            let mut ok = true;
            if from < i64::from(MIN_AGE) {
                self.at(
                    b.from.span(),
                    format!("{field}.from"),
                    format!("band starts at age {from}"),
                    Some(format!(
                        "the scale starts at {MIN_AGE}, the age of criminal responsibility"
                    )),
                );
                ok = false;
            }
            if to < from {
                self.at(
                    b.to.span(),
                    format!("{field}.to"),
                    format!("band ends at age {to}, before it starts at {from}"),
                    Some("`from` and `to` are both inclusive".to_string()),
                );
                ok = false;
            }
            let (from32, to32) = match (u32::try_from(from), u32::try_from(to)) {
                (Ok(f), Ok(t)) => (f, t),
                _ => {
                    if ok {
                        self.at(
                            band.span(),
                            field.clone(),
                            format!("ages {from}..={to} are out of range"),
                            None,
                        );
                    }
                    ages_ok = false;
                    continue;
                }
            };
            ages_ok &= ok;
            if let Some(term) = self.band_term(sex, &field, band, sign) {
                bands.push((
                    AgeBand {
                        from: from32,
                        to: to32,
                        term,
                    },
                    band.span(),
                ));
            } else {
                ages_ok = false;
            }
        }
        if !ages_ok {
            // The coverage check would only repeat the problems already reported.
            return Vec::new();
        }
        bands.sort_by_key(|(b, _)| (b.from, b.to));

        // Walk the bands in age order: `next` is the youngest age not yet covered.
        let mut next = u64::from(MIN_AGE);
        let mut oldest = raw.span();
        for (b, span) in &bands {
            let (from, to) = (u64::from(b.from), u64::from(b.to));
            if from > next {
                self.at(
                    span.clone(),
                    list_field.clone(),
                    format!(
                        "{} in no band (gap before the band {}-{})",
                        ages(next, from - 1),
                        b.from,
                        b.to
                    ),
                    Some("the bands must cover every age from 10 to 120 exactly once".into()),
                );
            } else if from < next {
                self.at(
                    span.clone(),
                    list_field.clone(),
                    format!(
                        "{} in two bands (the band {}-{} overlaps an earlier one)",
                        ages(from, to.min(next - 1)),
                        b.from,
                        b.to
                    ),
                    Some("the bands must cover every age from 10 to 120 exactly once".into()),
                );
            }
            if to + 1 > next {
                next = to + 1;
                oldest = span.clone();
            }
        }
        if next <= u64::from(MIN_TOP_AGE) {
            let message = if bands.is_empty() {
                format!("no bands: ages {MIN_AGE} to {MIN_TOP_AGE} are in no band")
            } else {
                format!(
                    "{} in no band (gap after the last band)",
                    ages(next, u64::from(MIN_TOP_AGE))
                )
            };
            self.at(
                oldest,
                list_field,
                message,
                Some(format!(
                    "the last band must reach at least {MIN_TOP_AGE}, e.g. {{ from = 50, to = \
                     {MIN_TOP_AGE}, term = ... }}"
                )),
            );
        }
        bands.into_iter().map(|(b, _)| b).collect()
    }

    /// The term a band contributes under `sign`, or `None` after reporting a problem.
    fn band_term(
        &mut self,
        sex: Sex,
        field: &str,
        band: &Spanned<RawBand>,
        sign: JuvenileSign,
    ) -> Option<f64> {
        let b = band.get_ref();
        let form_help = || {
            Some(
                "give `term`, or (female bands to age 17 only) both `positive` and `negative`"
                    .to_string(),
            )
        };
        match (&b.term, &b.positive, &b.negative) {
            (Some(term), None, None) => {
                let x = self.finite(term, &format!("{field}.term"));
                x.is_finite().then_some(x)
            }
            (None, Some(pos), Some(neg)) => {
                let mut ok = true;
                if sex != Sex::Female || *b.to.get_ref() > 17 {
                    self.at(
                        pos.span(),
                        format!("{field}.positive"),
                        "sign variants are only for the female juvenile bands (ages 10 to 17), \
                         chosen by female_juvenile_sign",
                        Some("give a single `term`".to_string()),
                    );
                    ok = false;
                }
                let p = self.finite(pos, &format!("{field}.positive"));
                let n = self.finite(neg, &format!("{field}.negative"));
                if p.is_finite() && n.is_finite() && !(p > 0.0 && n == -p) {
                    self.at(
                        neg.span(),
                        format!("{field}.negative"),
                        format!(
                            "variants {p} and {n} do not differ only in sign: `positive` must \
                             be above 0 and `negative` must be minus `positive`"
                        ),
                        None,
                    );
                    ok = false;
                }
                let x = match sign {
                    JuvenileSign::Positive => p,
                    JuvenileSign::Negative => n,
                };
                (ok && x.is_finite()).then_some(x)
            }
            (None, None, None) => {
                self.at(band.span(), field, "band has no term", form_help());
                None
            }
            (Some(term), _, _) => {
                self.at(
                    term.span(),
                    format!("{field}.term"),
                    "band has both `term` and a sign variant",
                    form_help(),
                );
                None
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                let missing = if b.positive.is_none() {
                    "positive"
                } else {
                    "negative"
                };
                self.at(
                    band.span(),
                    format!("{field}.{missing}"),
                    format!("band has only one sign variant: `{missing}` is missing"),
                    form_help(),
                );
                None
            }
        }
    }

    fn offence_terms(
        &mut self,
        raw: &Spanned<BTreeMap<String, Spanned<f64>>>,
    ) -> BTreeMap<String, f64> {
        let known: BTreeSet<&str> = OFFENCE_CATEGORIES.iter().copied().collect();
        let mut terms = BTreeMap::new();
        for (key, value) in raw.get_ref() {
            let field = format!("offence_terms.{key}");
            if !known.contains(key.as_str()) {
                self.at(
                    value.span(),
                    field,
                    format!("unknown offence category `{key}`"),
                    Some(format!(
                        "known categories are: {}",
                        OFFENCE_CATEGORIES.join(", ")
                    )),
                );
                continue;
            }
            terms.insert(key.clone(), self.finite(value, &field));
        }
        for category in OFFENCE_CATEGORIES {
            if !raw.get_ref().contains_key(category) {
                self.at(
                    raw.span(),
                    format!("offence_terms.{category}"),
                    format!("offence category `{category}` is missing"),
                    Some("every one of the 20 OGRS3 categories needs a term".to_string()),
                );
            }
        }
        terms
    }
}

/// "age 20 is" or "ages 20 to 24 are".
fn ages(from: u64, to: u64) -> String {
    if from == to {
        format!("age {from} is")
    } else {
        format!("ages {from} to {to} are")
    }
}

/// A TOML or serde error (syntax, type, unknown or missing field) as one problem.
fn parse_problem(source: &str, e: &toml::de::Error) -> ModelProblem {
    let (line, column) = match e.span() {
        Some(span) => {
            let (l, c) = position(source, span.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    let field = quoted_field(e.message())
        .or_else(|| e.span().and_then(|s| key_before(source, s.start)))
        .unwrap_or_else(|| "(file)".to_string());
    let help = (field == "female_juvenile_sign").then(|| {
        "say which published variant of the female 10-15 age terms the model uses: \
         \"positive\" or \"negative\""
            .to_string()
    });
    ModelProblem {
        line,
        column,
        field,
        message: e.message().trim_end().to_string(),
        help,
    }
}

/// The field named in serde's "unknown field `x`" and "missing field `x`" messages.
fn quoted_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_string)
}

/// The key of the `key = value` whose value starts at `offset`, read back from the text.
fn key_before(source: &str, offset: usize) -> Option<String> {
    let before = source.get(..offset)?;
    let line = before.rsplit('\n').next()?;
    let key = line.trim_end().strip_suffix('=')?.trim_end();
    let start = key
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let key = &key[start..];
    (!key.is_empty()).then(|| key.to_string())
}

/// 1-based line and column (in characters) of a byte offset.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn render_problems(what: &str, problems: &[ModelProblem]) -> String {
    let n = problems.len();
    let mut out = format!("{n} problem{} in {what}", if n == 1 { "" } else { "s" });
    for p in problems {
        out.push_str("\n  ");
        if let Some(line) = p.line {
            let _ = write!(out, "line {line}");
            if let Some(column) = p.column {
                let _ = write!(out, ":{column}");
            }
            out.push_str(": ");
        }
        let _ = write!(out, "{}: {}", p.field, p.message);
        if let Some(help) = &p.help {
            let _ = write!(out, "\n    help: {help}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Offence codes → categories
// ---------------------------------------------------------------------------------------

/// Maps the data's offence codes to a model's offence categories, read from a
/// `code,category` CSV such as `audit-specs/models/offence-categories.csv`:
///
/// ```text
/// code,category
/// violence,violence
/// ```
///
/// Fields are plain (no quoting), codes are unique, every category is one the model
/// knows. A code not in the map has no category: the caller decides what that means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffenceMap {
    map: BTreeMap<String, String>,
}

impl OffenceMap {
    /// Reads and checks the CSV against `model`, reporting every problem at once.
    pub fn from_csv(text: &str, model: &RiskModel) -> Result<OffenceMap, RiskError> {
        let mut problems = Vec::new();
        let mut problem = |line: usize, field: &str, message: String, help: Option<String>| {
            problems.push(ModelProblem {
                line: Some(line),
                column: None,
                field: field.to_string(),
                message,
                help,
            });
        };
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut lines = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        match lines.next() {
            Some("code,category") => {}
            other => problem(
                1,
                "header",
                format!("header is {:?}", other.unwrap_or("")),
                Some("the first line must be `code,category`".to_string()),
            ),
        }
        let mut map = BTreeMap::new();
        let mut first_seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, row) in lines.enumerate() {
            let line = i + 2;
            let fields: Vec<&str> = row.split(',').collect();
            let [code, category] = fields[..] else {
                let message = if row.is_empty() {
                    "blank line".to_string()
                } else {
                    format!("row {row:?} has {} fields, not 2", fields.len())
                };
                problem(
                    line,
                    "row",
                    message,
                    Some("write `code,category`, without quotes or blank lines".to_string()),
                );
                continue;
            };
            let mut ok = true;
            for (field, value) in [("code", code), ("category", category)] {
                if value.is_empty() || value.trim() != value || value.contains('"') {
                    problem(
                        line,
                        field,
                        format!("{field} {value:?} is empty, padded or quoted"),
                        None,
                    );
                    ok = false;
                }
            }
            if !model.has_category(category) {
                problem(
                    line,
                    "category",
                    format!("unknown offence category {category:?} for code {code:?}"),
                    Some(format!(
                        "known categories are: {}",
                        OFFENCE_CATEGORIES.join(", ")
                    )),
                );
                ok = false;
            }
            if let Some(first) = first_seen.get(code) {
                problem(
                    line,
                    "code",
                    format!("code {code:?} is mapped twice (first on line {first})"),
                    None,
                );
                ok = false;
            } else {
                first_seen.insert(code.to_string(), line);
            }
            if ok {
                map.insert(code.to_string(), category.to_string());
            }
        }
        if problems.is_empty() {
            Ok(OffenceMap { map })
        } else {
            Err(RiskError::OffenceMap { problems })
        }
    }

    /// The category of a data offence code, if the map has one.
    pub fn category(&self, code: &str) -> Option<&str> {
        self.map.get(code).map(String::as_str)
    }

    /// Every `(code, category)` pair, sorted by code.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(c, k)| (c.as_str(), k.as_str()))
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic elementary functions
// ---------------------------------------------------------------------------------------
//
// `f64::ln` and `f64::exp` call the platform's maths library, whose results may differ
// in the last bit between systems. The two functions below use only IEEE-754 basic
// operations (which Rust never fuses), so they give the same bits everywhere. They follow
// the algorithms of fdlibm's e_log.c and e_exp.c (Copyright (C) 1993, 2004 by Sun
// Microsystems, Inc. All rights reserved. Permission to use, copy, modify, and distribute
// this software is freely granted, provided that this notice is preserved.), whose error
// is below one unit in the last place. Constants are given by their bits.

/// 1 / (1 + e^−z).
fn logistic(z: f64) -> f64 {
    1.0 / (1.0 + exp(-z))
}

const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Natural logarithm. NaN for negative numbers and NaN, −∞ for zero, +∞ for +∞.
fn ln(x: f64) -> f64 {
    const TWO54: f64 = f64::from_bits(0x4350_0000_0000_0000);
    const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593);
    const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04);
    const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359);
    const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af);
    const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de);
    const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f);
    const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244);

    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return x;
    }
    let mut x = x;
    let mut k: i32 = 0;
    if x < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first.
        k -= 54;
        x *= TWO54;
    }
    let bits = x.to_bits();
    let mut hx = (bits >> 32) as u32;
    let lx = bits & 0xffff_ffff;
    k += ((hx >> 20) as i32) - 1023;
    hx &= 0x000f_ffff;
    // Write x = 2^k × m with m in [√2/2, √2).
    let i = hx.wrapping_add(0x95f64) & 0x0010_0000;
    let m = f64::from_bits((u64::from(hx | (i ^ 0x3ff0_0000)) << 32) | lx);
    k += (i >> 20) as i32;
    let f = m - 1.0;
    let dk = f64::from(k);

    if (0x000f_ffff & hx.wrapping_add(2)) < 3 {
        // |f| < 2^−20.
        if f == 0.0 {
            return dk * LN2_HI + dk * LN2_LO;
        }
        let r = f * f * (0.5 - 0.333_333_333_333_333_3 * f);
        return if k == 0 {
            f - r
        } else {
            dk * LN2_HI - ((r - dk * LN2_LO) - f)
        };
    }
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let far = (hx as i32 - 0x6147a) | (0x6b851 - hx as i32);
    if far > 0 {
        let hfsq = 0.5 * f * f;
        if k == 0 {
            f - (hfsq - s * (hfsq + r))
        } else {
            dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)
        }
    } else if k == 0 {
        f - s * (f - r)
    } else {
        dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)
    }
}

/// e^x. +∞ above about 709.78, 0 below about −745.13, NaN for NaN.
fn exp(x: f64) -> f64 {
    const OVERFLOW: f64 = f64::from_bits(0x4086_2e42_fefa_39ef);
    const UNDERFLOW: f64 = f64::from_bits(0xc087_4910_d52d_3051);
    const INV_LN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
    const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e);
    const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93);
    const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c);
    const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1);
    const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0);
    const TWO_M1000: f64 = f64::from_bits(0x0170_0000_0000_0000);

    if x.is_nan() {
        return x;
    }
    if x > OVERFLOW {
        return f64::INFINITY;
    }
    if x < UNDERFLOW {
        return 0.0;
    }
    // Reduce: x = k × ln2 + r with |r| ≤ ln2 / 2, r held as hi − lo.
    let (r, hi, lo, k) = if x.abs() > 0.5 * std::f64::consts::LN_2 {
        let half = if x < 0.0 { -0.5 } else { 0.5 };
        // |x| ≤ 745.2, so the quotient fits an i32 and `as` truncates towards zero.
        let k = (INV_LN2 * x + half) as i32;
        let t = f64::from(k);
        let hi = x - t * LN2_HI; // exact: k has at most 11 bits, LN2_HI 32
        let lo = t * LN2_LO;
        (hi - lo, hi, lo, k)
    } else {
        (x, 0.0, 0.0, 0)
    };
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    if k == 0 {
        return 1.0 - ((r * c) / (c - 2.0) - r);
    }
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    if k >= -1021 {
        if k == 1024 {
            return y * 2.0 * f64::from_bits(0x7fe0_0000_0000_0000);
        }
        y * f64::from_bits(((1023 + k) as u64) << 52)
    } else {
        y * f64::from_bits(((1023 + k + 1000) as u64) << 52) * TWO_M1000
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const OGRS3: &str = include_str!("../audit-specs/models/ogrs3.toml");
    const OFFENCE_CSV: &str = include_str!("../audit-specs/models/offence-categories.csv");

    fn model() -> RiskModel {
        RiskModel::from_toml(OGRS3).expect("shipped ogrs3.toml is valid")
    }

    fn with_sign(sign: &str) -> RiskModel {
        let text = OGRS3.replace(
            "female_juvenile_sign = \"negative\"",
            &format!("female_juvenile_sign = \"{sign}\""),
        );
        RiskModel::from_toml(&text).expect("valid model")
    }

    fn person(sex: Sex, age: u32, sanctions: u32, first: u32, offence: &str) -> OgrsInputs {
        OgrsInputs {
            sex,
            age_at_follow_up_start: age,
            total_sanctions: sanctions,
            age_at_current_conviction: age,
            age_at_first_sanction: first,
            offence_category: offence.to_string(),
        }
    }

    /// The problems of a model that must be rejected.
    fn problems(text: &str) -> Vec<ModelProblem> {
        match RiskModel::from_toml(text) {
            Err(RiskError::Model { problems }) => problems,
            other => panic!("expected a model error, got {other:?}"),
        }
    }

    // --- The published worked example -------------------------------------------------

    #[test]
    fn domain_worked_example_man_of_25_with_six_sanctions_for_theft() {
        let s = model()
            .score(&person(Sex::Male, 25, 6, 16, "theft"))
            .unwrap();
        assert_eq!(s.copas_fixed(5), "-1.15268");
        assert_eq!(s.y_fixed(5), "-1.48458");
        assert_eq!(s.p1_fixed(4), "0.4795");
        assert_eq!(s.p2_fixed(4), "0.6541");
        // And the formula itself, in the documented order.
        let copas = (6.0f64 / 19.0).ln();
        assert!((s.copas - copas).abs() < 1e-15);
        let y = -1.1667 + 1.25112 * copas + 0.46306 + 0.6612;
        assert!((s.y - y).abs() < 1e-14);
    }

    #[test]
    fn score_is_bit_identical_when_repeated() {
        let m = model();
        let p = person(Sex::Female, 33, 14, 15, "drug_possession_supply");
        let a = m.score(&p).unwrap();
        let b = m.score(&p).unwrap();
        assert_eq!(a.y.to_bits(), b.y.to_bits());
        assert_eq!(a.p1.to_bits(), b.p1.to_bits());
        assert_eq!(a.p2.to_bits(), b.p2.to_bits());
    }

    // --- Age bands --------------------------------------------------------------------

    /// Every band boundary, with the term read off DOMAIN.md by hand.
    const MALE_BOUNDARIES: [(u32, f64); 22] = [
        (10, 0.0),
        (11, 0.0),
        (12, 0.08392),
        (13, 0.08392),
        (14, 0.07578),
        (15, 0.07578),
        (16, -0.0616),
        (17, -0.0616),
        (18, -0.6251),
        (20, -0.6251),
        (21, -1.0515),
        (24, -1.0515),
        (25, -1.1667),
        (29, -1.1667),
        (30, -1.326),
        (34, -1.326),
        (35, -1.368),
        (39, -1.368),
        (40, -1.4997),
        (49, -1.4997),
        (50, -2.0253),
        (120, -2.0253),
    ];

    /// As above; the shipped file uses the negative female juvenile terms.
    const FEMALE_BOUNDARIES: [(u32, f64); 22] = [
        (10, -0.785),
        (11, -0.785),
        (12, -0.61385),
        (13, -0.61385),
        (14, -0.66952),
        (15, -0.66952),
        (16, -0.9592),
        (17, -0.9592),
        (18, -0.8975),
        (20, -0.8975),
        (21, -1.0285),
        (24, -1.0285),
        (25, -1.0528),
        (29, -1.0528),
        (30, -1.1291),
        (34, -1.1291),
        (35, -1.4219),
        (39, -1.4219),
        (40, -1.5247),
        (49, -1.5247),
        (50, -2.4498),
        (120, -2.4498),
    ];

    #[test]
    fn every_age_band_boundary_picks_the_published_term_for_both_sexes() {
        let m = model();
        for (sex, table) in [
            (Sex::Male, &MALE_BOUNDARIES),
            (Sex::Female, &FEMALE_BOUNDARIES),
        ] {
            for &(age, term) in table.iter() {
                assert_eq!(m.age_sex_term(sex, age).unwrap(), term, "{sex:?} {age}");
                // Through the whole score: one sanction at this very age, violence, so
                // copas = ln(1/10) and only the age-sex term varies.
                let s = m.score(&person(sex, age, 1, age, "violence")).unwrap();
                let y = ((term + 1.25112 * ln(0.1)) + 0.12614) + 0.0;
                assert_eq!(s.y, y, "{sex:?} {age}");
            }
        }
    }

    #[test]
    fn every_age_from_10_to_120_has_exactly_the_term_of_its_band() {
        let m = model();
        for (sex, table) in [
            (Sex::Male, &MALE_BOUNDARIES),
            (Sex::Female, &FEMALE_BOUNDARIES),
        ] {
            // Consecutive pairs of the boundary table are (start, end) of each band.
            for pair in table.chunks(2) {
                let ((from, term), (to, _)) = (pair[0], pair[1]);
                for age in from..=to {
                    assert_eq!(m.age_sex_term(sex, age).unwrap(), term, "{sex:?} {age}");
                }
            }
        }
    }

    #[test]
    fn ages_beyond_the_bands_are_errors() {
        let m = model();
        assert_eq!(
            m.age_sex_term(Sex::Male, 121),
            Err(RiskError::AgeNotCovered {
                sex: "male",
                age: 121,
                max: 120
            })
        );
        assert!(matches!(
            m.score(&person(Sex::Female, 9, 1, 9, "theft")),
            Err(RiskError::AgeBelowMinimum {
                field: "age_at_follow_up_start",
                age: 9
            })
        ));
    }

    // --- First or repeat ---------------------------------------------------------------

    #[test]
    fn first_sanction_uses_0_12614_and_a_repeat_uses_0_46306() {
        let m = model();
        let base = -1.1667 + 0.6612; // man of 25, theft
        for (sanctions, term) in [(1, 0.12614), (2, 0.46306), (3, 0.46306)] {
            let s = m
                .score(&person(Sex::Male, 25, sanctions, 25, "theft"))
                .unwrap();
            let copas = ln(f64::from(sanctions) / 10.0);
            assert_eq!(s.copas, copas);
            let y = ((-1.1667 + 1.25112 * copas) + term) + 0.6612;
            assert_eq!(s.y, y, "S = {sanctions}");
            assert!((s.y - (base + 1.25112 * copas + term)).abs() < 1e-14);
        }
        assert_eq!(m.first_or_repeat_term(1), Ok(0.12614));
        assert_eq!(m.first_or_repeat_term(2), Ok(0.46306));
    }

    // --- The female juvenile sign --------------------------------------------------------

    #[test]
    fn female_juvenile_sign_moves_a_girl_of_12_by_twice_0_61385() {
        let girl = person(Sex::Female, 12, 2, 11, "theft");
        let pos = with_sign("positive").score(&girl).unwrap();
        let neg = with_sign("negative").score(&girl).unwrap();
        assert!((pos.y - neg.y - 2.0 * 0.61385).abs() < 1e-12);
        assert!(pos.p1 > neg.p1 && pos.p2 > neg.p2);
        // The term itself differs by exactly 2 × 0.61385 in binary.
        let pos_term = with_sign("positive").age_sex_term(Sex::Female, 12).unwrap();
        let neg_term = with_sign("negative").age_sex_term(Sex::Female, 12).unwrap();
        assert_eq!(pos_term - neg_term, 2.0 * 0.61385);
    }

    #[test]
    fn female_juvenile_sign_leaves_boys_and_women_alone() {
        let (pos, neg) = (with_sign("positive"), with_sign("negative"));
        for p in [
            person(Sex::Male, 12, 2, 11, "theft"),
            person(Sex::Female, 16, 2, 11, "theft"),
            person(Sex::Female, 40, 9, 19, "robbery"),
        ] {
            assert_eq!(pos.score(&p).unwrap(), neg.score(&p).unwrap(), "{p:?}");
        }
    }

    #[test]
    fn shipped_model_says_which_sign_it_uses() {
        assert_eq!(model().female_juvenile_sign(), JuvenileSign::Negative);
        assert!(OGRS3.contains("female_juvenile_sign = \"negative\""));
    }

    // --- Scoring errors ------------------------------------------------------------------

    #[test]
    fn impossible_people_are_errors_not_zeros() {
        let m = model();
        let ok = person(Sex::Male, 30, 4, 18, "theft");
        assert!(m.score(&ok).is_ok());

        let mut p = ok.clone();
        p.age_at_first_sanction = 8;
        assert_eq!(
            m.score(&p),
            Err(RiskError::AgeBelowMinimum {
                field: "age_at_first_sanction",
                age: 8
            })
        );

        let mut p = ok.clone();
        p.age_at_first_sanction = 31;
        p.age_at_current_conviction = 29;
        assert_eq!(
            m.score(&p),
            Err(RiskError::FirstSanctionAfterConviction {
                first: 31,
                current: 29
            })
        );

        let mut p = ok.clone();
        p.age_at_current_conviction = 31;
        assert_eq!(
            m.score(&p),
            Err(RiskError::ConvictionAfterFollowUp {
                current: 31,
                follow_up: 30
            })
        );

        let mut p = ok.clone();
        p.total_sanctions = 0;
        assert_eq!(m.score(&p), Err(RiskError::NoSanctions));

        let mut p = ok.clone();
        p.offence_category = "Theft".to_string();
        let err = m.score(&p).unwrap_err();
        assert!(matches!(&err, RiskError::UnknownCategory { category, .. } if category == "Theft"));
        assert!(err
            .to_string()
            .contains("known categories are: violence, robbery"));
    }

    #[test]
    fn extreme_inputs_score_without_panicking() {
        let m = model();
        let many = OgrsInputs {
            sex: Sex::Male,
            age_at_follow_up_start: 120,
            total_sanctions: u32::MAX,
            age_at_current_conviction: 120,
            age_at_first_sanction: 120,
            offence_category: "soliciting".to_string(),
        };
        let s = m.score(&many).unwrap();
        assert!(s.p1 > 0.999 && s.p1 <= 1.0);
        let huge = OgrsInputs {
            age_at_follow_up_start: u32::MAX,
            age_at_current_conviction: u32::MAX,
            age_at_first_sanction: 10,
            ..many.clone()
        };
        assert!(matches!(
            m.score(&huge),
            Err(RiskError::AgeNotCovered { .. })
        ));
    }

    #[test]
    fn error_codes_are_unique_kebab_case() {
        let errors = [
            RiskError::Model { problems: vec![] },
            RiskError::OffenceMap { problems: vec![] },
            RiskError::AgeBelowMinimum { field: "f", age: 0 },
            RiskError::AgeNotCovered {
                sex: "male",
                age: 0,
                max: 0,
            },
            RiskError::FirstSanctionAfterConviction {
                first: 0,
                current: 0,
            },
            RiskError::ConvictionAfterFollowUp {
                current: 0,
                follow_up: 0,
            },
            RiskError::NoSanctions,
            RiskError::UnknownCategory {
                category: String::new(),
                known: String::new(),
            },
            RiskError::NonFinite { what: "y" },
        ];
        let codes: BTreeSet<&str> = errors.iter().map(RiskError::code).collect();
        assert_eq!(codes.len(), errors.len());
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{code}"
            );
        }
    }

    #[test]
    fn fixed_decimals_are_stable_and_never_negative_zero() {
        assert_eq!(fixed(0.479_506_390_557_099_1, 4), "0.4795");
        assert_eq!(fixed(-0.000_01, 4), "0.0000");
        assert_eq!(fixed(-0.0, 2), "0.00");
        assert_eq!(fixed(-1.5, 0), "-2");
        assert_eq!(fixed(0.125, 2), "0.12"); // exact binary tie: to even
        assert_eq!(fixed(1.0, 0), "1");
    }

    // --- The shipped model file ----------------------------------------------------------

    #[test]
    fn shipped_ogrs3_parses_with_every_published_coefficient() {
        let m = model();
        assert_eq!(m.name(), "OGRS3");
        assert!(!m.version().is_empty());
        assert!(m.source().contains("DOMAIN.md"));
        assert_eq!(m.copas_multiplier, 1.25112);
        assert_eq!(m.first_sanction, 0.12614);
        assert_eq!(m.repeat_sanction, 0.46306);
        assert_eq!(m.intercept_1_year, 1.40256);
        assert_eq!(m.intercept_2_years, 2.1217);
        let published = [
            ("violence", 0.0),
            ("robbery", -0.6348),
            ("sexual_child", -0.6534),
            ("sexual_other", 0.0328),
            ("soliciting", 0.7606),
            ("domestic_burglary", -0.1239),
            ("other_burglary", 0.2406),
            ("theft", 0.6612),
            ("handling", 0.3519),
            ("fraud_forgery", 0.1599),
            ("absconding_bail", 0.7334),
            ("vehicle_theft", 0.3801),
            ("theft_from_vehicle", 0.4272),
            ("other_motoring", 0.2622),
            ("drink_driving", -0.1214),
            ("public_order", 0.1819),
            ("criminal_damage", 0.2050),
            ("drug_import_export", -0.7956),
            ("drug_possession_supply", 0.0772),
            ("other", -0.0607),
        ];
        assert_eq!(published.len(), OFFENCE_CATEGORIES.len());
        for (category, term) in published {
            assert_eq!(m.offence_term(category), Ok(term), "{category}");
        }
        assert_eq!(m.offence_terms.len(), 20);
    }

    #[test]
    fn shipped_offence_map_covers_the_20_categories_by_identity() {
        let m = model();
        let map = OffenceMap::from_csv(OFFENCE_CSV, &m).unwrap();
        assert_eq!(map.iter().count(), 20);
        for category in OFFENCE_CATEGORIES {
            assert_eq!(map.category(category), Some(category));
        }
        assert_eq!(map.category("breach"), None);
    }

    // --- Rejected model files --------------------------------------------------------------

    #[test]
    fn band_gap_is_rejected_naming_the_band_list_and_the_ages() {
        let text = OGRS3.replace(
            "{ from = 18, to = 20, term = -0.6251 },",
            "{ from = 18, to = 19, term = -0.6251 },",
        );
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "age_sex.male");
        assert!(p[0].message.contains("age 20 is in no band"), "{p:?}");
        let line = OGRS3
            .lines()
            .position(|l| l.contains("{ from = 21, to = 24, term = -1.0515 }"))
            .unwrap()
            + 1;
        assert_eq!(p[0].line, Some(line));
    }

    #[test]
    fn band_overlap_and_short_top_are_rejected() {
        let text = OGRS3
            .replace(
                "{ from = 25, to = 29, term = -1.0528 },",
                "{ from = 24, to = 29, term = -1.0528 },",
            )
            .replace(
                "{ from = 50, to = 120, term = -2.4498 },",
                "{ from = 50, to = 99, term = -2.4498 },",
            );
        let p = problems(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|p| p.field == "age_sex.female"));
        assert!(p[0].message.contains("age 24 is in two bands"));
        assert!(p[1].message.contains("ages 100 to 120 are in no band"));
    }

    #[test]
    fn missing_category_is_rejected_naming_it() {
        let text = OGRS3.replace("robbery = -0.6348\n", "");
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "offence_terms.robbery");
        assert!(p[0].message.contains("`robbery` is missing"));
    }

    #[test]
    fn unknown_category_is_rejected_naming_it() {
        let text = OGRS3.replace("robbery = -0.6348", "robery = -0.6348");
        let p = problems(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"offence_terms.robery"));
        assert!(fields.contains(&"offence_terms.robbery"));
    }

    #[test]
    fn unknown_field_is_rejected_naming_it_with_its_position() {
        let text = OGRS3.replace("copas_multiplier = 1.25112", "copas_multiplyer = 1.25112");
        let p = problems(&text);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "copas_multiplyer");
        assert!(p[0].message.contains("unknown field `copas_multiplyer`"));
        let line = OGRS3
            .lines()
            .position(|l| l.starts_with("copas_multiplier"))
            .unwrap()
            + 1;
        assert_eq!((p[0].line, p[0].column), (Some(line), Some(1)));

        let text = OGRS3.replace(
            "{ from = 16, to = 17, term = -0.0616 }",
            "{ from = 16, to = 17, term = -0.0616, note = \"x\" }",
        );
        assert_eq!(problems(&text)[0].field, "note");
    }

    #[test]
    fn missing_sign_choice_is_rejected_naming_it() {
        let text = OGRS3.replace("female_juvenile_sign = \"negative\"\n", "");
        let p = problems(&text);
        assert_eq!(p[0].field, "female_juvenile_sign");
        assert!(p[0].message.contains("missing field"));
        assert!(p[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("\"positive\" or \"negative\""));

        let text = OGRS3.replace(
            "female_juvenile_sign = \"negative\"",
            "female_juvenile_sign = \"both\"",
        );
        let p = problems(&text);
        assert_eq!(p[0].field, "female_juvenile_sign");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = OGRS3.replace(
            "intercept_1_year = 1.40256",
            "intercept_1_year = \"1.40256\"",
        );
        let p = problems(&text);
        assert_eq!(p[0].field, "intercept_1_year", "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = OGRS3
            .replace("format = 1", "format = 2")
            .replace("intercept_2_years = 2.1217", "intercept_2_years = nan")
            .replace(
                "positive = 0.61385, negative = -0.61385",
                "positive = 0.61385",
            )
            .replace(
                "{ from = 16, to = 17, term = -0.0616 }",
                "{ from = 16, to = 17, positive = 0.1, negative = -0.1 }",
            )
            .replace("other = -0.0607", "other = inf");
        let fields: Vec<String> = problems(&text).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "format",
                "intercept_2_years",
                "age_sex.male[3].positive",
                "age_sex.female[1].negative",
                "offence_terms.other",
            ]
        );
    }

    #[test]
    fn sign_variants_must_differ_only_in_sign() {
        let text = OGRS3.replace(
            "positive = 0.785, negative = -0.785",
            "positive = 0.785, negative = -0.758",
        );
        let p = problems(&text);
        assert_eq!(p[0].field, "age_sex.female[0].negative");
        let text = OGRS3.replace(
            "{ from = 10, to = 11, term = 0.0 }",
            "{ from = 10, to = 11, term = 0.0, positive = 0.1, negative = -0.1 }",
        );
        assert_eq!(problems(&text)[0].field, "age_sex.male[0].term");
    }

    #[test]
    fn rendered_problems_read_line_column_field_message_help() {
        let text = OGRS3.replace("robbery = -0.6348\n", "");
        let err = RiskModel::from_toml(&text).unwrap_err().to_string();
        assert!(err.starts_with("1 problem in risk model\n  line "), "{err}");
        assert!(err.contains(": offence_terms.robbery: offence category `robbery` is missing"));
        assert!(err.contains("\n    help: every one of the 20 OGRS3 categories needs a term"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "\u{0}",
            "[",
            "format = 1\n[age_sex]\nmale = 3",
            "é = ",
            "a\n\n\n=é",
            "format = é\"x\"",
            "\"«x»\" = 1",
        ] {
            assert!(RiskModel::from_toml(text).is_err(), "{text:?}");
        }
        assert_eq!(key_before("«x»to = ", 10), Some("to".to_string()));
        assert_eq!(key_before("{ é = 1, to = ", 15), Some("to".to_string()));
        assert_eq!(key_before("x = ", 99), None);
    }

    #[test]
    fn every_truncation_and_every_deleted_line_is_an_error_not_a_panic() {
        for (end, _) in OGRS3.char_indices() {
            // Cutting only trailing comments or blank lines leaves a valid model.
            let _ = RiskModel::from_toml(&OGRS3[..end]);
        }
        let lines: Vec<&str> = OGRS3.lines().collect();
        for skip in 0..lines.len() {
            let mut text = lines.clone();
            text.remove(skip);
            let _ = RiskModel::from_toml(&text.join("\n"));
        }
        let m = model();
        for end in 0..OFFENCE_CSV.len() {
            let _ = OffenceMap::from_csv(&OFFENCE_CSV[..end], &m);
        }
    }

    #[test]
    fn any_combination_of_inputs_scores_or_errs_without_panicking() {
        let m = model();
        let edges = [0, 1, 9, 10, 11, 17, 18, 49, 50, 119, 120, 121, u32::MAX];
        for sex in [Sex::Male, Sex::Female] {
            for age in edges {
                for conv in edges {
                    for first in edges {
                        for sanctions in [0, 1, 2, 99, u32::MAX] {
                            for category in ["violence", "theft", "", "other "] {
                                let p = OgrsInputs {
                                    sex,
                                    age_at_follow_up_start: age,
                                    total_sanctions: sanctions,
                                    age_at_current_conviction: conv,
                                    age_at_first_sanction: first,
                                    offence_category: category.to_string(),
                                };
                                if let Ok(s) = m.score(&p) {
                                    assert!((0.0..=1.0).contains(&s.p1), "{p:?}");
                                    assert!(s.p1 <= s.p2, "{p:?}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // --- Offence map -----------------------------------------------------------------------

    #[test]
    fn offence_map_rejects_bad_rows_all_at_once() {
        let m = model();
        let csv = "code,category\nTH1,theft\nTH1,theft\nX,burglary\n\"Q\",theft\na,b,c\n\n";
        let Err(RiskError::OffenceMap { problems }) = OffenceMap::from_csv(csv, &m) else {
            panic!("expected an offence map error");
        };
        let found: Vec<(Option<usize>, &str)> = problems
            .iter()
            .map(|p| (p.line, p.field.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (Some(3), "code"),
                (Some(4), "category"),
                (Some(5), "code"),
                (Some(6), "row"),
                (Some(7), "row"),
            ]
        );
        assert!(OffenceMap::from_csv("code;category\n", &m).is_err());
        assert!(OffenceMap::from_csv("", &m).is_err());
        let crlf = OffenceMap::from_csv("code,category\r\nTH1,theft\r\n", &m).unwrap();
        assert_eq!(crlf.category("TH1"), Some("theft"));
    }

    // --- Deterministic ln and exp ------------------------------------------------------------

    /// Distance in units in the last place between two finite values of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn ln_is_within_one_ulp_of_the_platform() {
        // Every Copas ratio S / career for S and career up to 200, plus a sweep.
        for s in 1..=200u32 {
            for career in 10..=200u32 {
                let x = f64::from(s) / f64::from(career);
                assert!(ulps(ln(x), x.ln()) <= 1, "ln({x})");
            }
        }
        let mut x = 1e-300;
        while x < 1e300 {
            assert!(ulps(ln(x), x.ln()) <= 1, "ln({x})");
            x *= 1.000_7;
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(ulps(ln(5e-324), 5e-324f64.ln()) <= 1);
    }

    #[test]
    fn exp_is_within_one_ulp_of_the_platform() {
        let mut x = -745.0;
        while x < 709.0 {
            let (a, b) = (exp(x), x.exp());
            if b >= f64::MIN_POSITIVE {
                assert!(ulps(a, b) <= 1, "exp({x}): {a} vs {b}");
            } else {
                assert!((a - b).abs() <= 5e-324 * 2.0, "exp({x})");
            }
            x += 0.001_3;
        }
        for x in [-1e-20, 0.0, 1e-20, 0.34, 0.35, 1.03, 1.04, 2.0, -2.0] {
            assert!(ulps(exp(x), x.exp()) <= 1, "exp({x})");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
    }
}
