//! The audit spec exactly as written: serde types that mirror the TOML.
//!
//! These types only say what is syntactically allowed. Unknown or misspelt fields are
//! rejected here, with the position the TOML parser reports; everything that needs
//! judgement (dates, decimals, which fields go with which `kind`) is checked when a
//! [`RawSpec`] becomes an [`crate::spec::AuditSpec`]. Fields that later checks may
//! complain about carry their source span (`Spanned`) so that the complaint can point at
//! `file:line:column`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A whole audit spec (one contract, one or more cohort periods).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// Spec format version. This build reads version 1.
    #[schemars(with = "u32")]
    pub version: Spanned<i64>,
    /// Who the contract is between, and how its outcome is validated.
    pub contract: RawContract,
    /// Input tables by name: `people` (one row per index event) and `convictions` (one
    /// row per proven offence) are required.
    pub inputs: BTreeMap<String, RawInput>,
    /// Who is in the cohort.
    pub cohort: RawCohort,
    /// What is counted for each person, and the measure computed from it.
    pub outcome: RawOutcome,
    /// What the cohort's measure is compared with.
    pub comparator: RawComparator,
    /// Confidence intervals and significance (matched and predicted comparisons).
    #[serde(default)]
    pub inference: Option<RawInference>,
    /// The risk model that scores each person (predicted comparisons).
    #[serde(default)]
    pub risk: Option<RawRisk>,
    /// How far the measure must fall for the target to be met (absent only for
    /// comparator kind "none").
    #[serde(default)]
    pub threshold: Option<RawThreshold>,
    /// What is owed when the target is met or missed.
    pub payment: RawPayment,
    /// Reasonable alternatives to some of the spec's own choices: the TOML path of a
    /// field → the values to try. The decision is recomputed over every combination.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, Vec<serde_json::Value>>>")]
    pub sensitivity: Option<RawSensitivity>,
}

/// `[sensitivity]` as written: `"comparator.caliper_sd" = ["0.1", "0.2", "0.25"]`.
pub type RawSensitivity = BTreeMap<Spanned<String>, Spanned<Vec<Spanned<toml::Value>>>>;

/// `[contract]`: the parties and the validation method.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawContract {
    /// Short identifier: lowercase letters, digits and `-`. Names the bundle directory.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// Human-readable title.
    pub title: String,
    /// The body that pays for outcomes.
    pub commissioner: String,
    /// The body delivering the service.
    pub provider: String,
    /// Who validates the outcome.
    pub evaluator: String,
    /// How the outcome is validated (INDIGO impact-bond vocabulary).
    pub validation_method: ValidationMethod,
    /// Date (YYYY-MM-DD) the data extract was taken, if known.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub data_snapshot: Option<Spanned<String>>,
    /// Free text kept with the evidence.
    #[serde(default)]
    pub notes: Option<String>,
}

/// Validation methods of the INDIGO impact-bond data standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationMethod {
    RandomisedTrial,
    QuasiExperimental,
    HistoricalComparison,
    PrePost,
    SimpleVerification,
}

/// `[inputs.NAME]`: one input table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// File path, relative to the spec file.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// `csv` or `parquet`.
    pub format: InputFormat,
    /// Optional pin: the file's SHA-256 as 64 hex digits. A mismatch stops the audit.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sha256: Option<Spanned<String>>,
    /// Canonical column name → column name in the file, for columns whose names differ.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub columns: BTreeMap<String, Spanned<String>>,
    /// chrono format of date columns held as text; default `%Y-%m-%d`.
    #[serde(default)]
    pub date_format: Option<String>,
}

/// File format of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Csv,
    Parquet,
    /// A TOML document (risk-model coefficient files).
    Toml,
}

impl InputFormat {
    /// File extension used for the copy inside a bundle.
    pub fn extension(self) -> &'static str {
        match self {
            InputFormat::Csv => "csv",
            InputFormat::Parquet => "parquet",
            InputFormat::Toml => "toml",
        }
    }
}

/// `[cohort]`: periods and eligibility.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCohort {
    /// One or more named periods; a person belongs to the period containing their index date.
    pub periods: Vec<RawPeriod>,
    /// What to do when one person has several index events in one period: `error`, or
    /// `first` (keep the earliest, list the others in the exclusion ledger).
    pub repeat_index: RepeatIndex,
    /// Rules every cohort member must satisfy, in order.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub include: Vec<Spanned<RawRule>>,
    /// Rules that remove a person from the cohort, in order.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub exclude: Vec<Spanned<RawRule>>,
}

/// A named date range, both ends inclusive.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPeriod {
    /// Name used in tables and results.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// First index date in the period (YYYY-MM-DD, inclusive).
    #[schemars(with = "String")]
    pub from: Spanned<String>,
    /// Last index date in the period (YYYY-MM-DD, inclusive).
    #[schemars(with = "String")]
    pub to: Spanned<String>,
}

/// Policy for several index events of one person in one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepeatIndex {
    Error,
    First,
}

/// A condition on one column with the reason a reviewer reads. Exactly one condition
/// field (`equals`, `not_equals`, `in`, `not_in`, `less_than`, `at_most`, `greater_than`,
/// `at_least`, `is_missing`) must be given.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Stable kebab-case identifier, shown in ledgers and results.
    pub id: String,
    /// Canonical or file column name the rule looks at.
    pub column: String,
    /// Why the rule exists, in words a reviewer understands.
    pub reason: String,
    /// The value equals this text.
    #[serde(default)]
    pub equals: Option<String>,
    /// The value is present and differs from this text.
    #[serde(default)]
    pub not_equals: Option<String>,
    /// The value is one of these.
    #[serde(default, rename = "in")]
    pub in_: Option<Vec<String>>,
    /// The value is present and none of these.
    #[serde(default)]
    pub not_in: Option<Vec<String>>,
    /// Numeric value below this (integer or decimal string).
    #[serde(default)]
    pub less_than: Option<Number>,
    /// Numeric value at most this.
    #[serde(default)]
    pub at_most: Option<Number>,
    /// Numeric value above this.
    #[serde(default)]
    pub greater_than: Option<Number>,
    /// Numeric value at least this.
    #[serde(default)]
    pub at_least: Option<Number>,
    /// The value is missing (`true`) or present (`false`).
    #[serde(default)]
    pub is_missing: Option<bool>,
}

/// A number written as a TOML integer or as a decimal string (`12`, `"0.5"`). TOML
/// floats are not accepted: they are not exact.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Text(String),
}

/// `[outcome]`: what counts as reoffending and the measure.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutcome {
    /// `binary`, `frequency_per_offender`, `frequency_per_reoffender` or `days_to_first`.
    pub measure: Measure,
    /// `offence` or `conviction_event` (one court appearance, however many offences).
    pub unit: CountingUnit,
    /// Which sanctions prove an offence: `conviction`, `caution`.
    pub sanctions: Vec<Sanction>,
    /// Follow-up window after the index date.
    pub window: RawWindow,
    /// Time after the window in which the offence must be proven.
    pub court_lag: RawLag,
    /// Exact duplicate rows: `collapse` (count once, report), `keep`, or `error`.
    pub duplicates: DuplicatePolicy,
    /// Values of the `sanction_type` column meaning each sanction; default: the names
    /// `conviction` and `caution` themselves.
    #[serde(default)]
    pub sanction_codes: Option<BTreeMap<Sanction, Vec<String>>>,
    /// Rules that stop a conviction row counting (breaches, unknown offence codes), in order.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    pub exclude: Vec<Spanned<RawRule>>,
}

/// The measure compared with the comparator.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Binary,
    FrequencyPerOffender,
    FrequencyPerReoffender,
    DaysToFirst,
}

/// What one counted unit of reoffending is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountingUnit {
    Offence,
    ConvictionEvent,
}

/// A kind of sanction that proves an offence.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Sanction {
    Conviction,
    Caution,
}

/// Follow-up window: `{ months = 12, end = "exclusive" }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Calendar months from the index date; at least 1.
    #[schemars(with = "i64")]
    pub months: Spanned<i64>,
    /// Whether the day `months` after the index date is inside the window.
    pub end: WindowEnd,
}

/// Court lag: `{ months = 6 }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLag {
    /// Calendar months after the window's end; 0 for none.
    #[schemars(with = "i64")]
    pub months: Spanned<i64>,
}

/// Whether a window's end day is inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowEnd {
    Exclusive,
    Inclusive,
}

/// Treatment of exact duplicate conviction rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicatePolicy {
    Collapse,
    Keep,
    Error,
}

/// `[comparator]`: the counterfactual.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawComparator {
    /// `fixed-baseline` (a published value) or `historical` (a baseline period computed
    /// from the same inputs under the same rules).
    pub kind: ComparatorKind,
    /// fixed-baseline: the published value as a decimal string, in the measure's units.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub value: Option<Spanned<String>>,
    /// fixed-baseline: where the value comes from.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub source: Option<Spanned<String>>,
    /// historical: the baseline period.
    #[serde(default)]
    pub period: Option<RawPeriod>,
    /// matched: covariates of the propensity model, in order.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawCovariate>>")]
    pub covariates: Option<Vec<Spanned<RawCovariate>>>,
    /// matched: columns matched exactly (besides the cohort period, always exact).
    #[serde(default)]
    pub exact: Option<Vec<String>>,
    /// matched: caliper in standard deviations of the logit of the score (decimal string),
    /// or absent for no caliper.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub caliper_sd: Option<Spanned<String>>,
    /// matched: comparisons per treated person (1:k).
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub ratio: Option<Spanned<i64>>,
    /// matched: whether a comparison person may be matched to several treated people.
    #[serde(default)]
    pub replacement: Option<bool>,
    /// matched: largest acceptable absolute standardised mean difference after matching.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub balance_limit: Option<Spanned<String>>,
    /// matched: iteration limit of the propensity model fit (default 50).
    #[serde(default)]
    pub max_iterations: Option<u32>,
    /// case-mix-adjusted: the people column naming each person's area (e.g. the contract
    /// package area); every area has its own baseline.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub area_column: Option<Spanned<String>>,
}

/// One covariate of the propensity model.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCovariate {
    /// Canonical or file column name (in both the people and pool inputs).
    pub column: String,
    /// `numeric` (used as it is) or `categorical` (one indicator per level but the reference).
    pub kind: CovariateKind,
    /// categorical: the reference level, left out of the model.
    #[serde(default)]
    pub reference: Option<String>,
}

/// How a covariate enters the propensity model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CovariateKind {
    Numeric,
    Categorical,
}

/// Comparator kinds this build audits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComparatorKind {
    FixedBaseline,
    Historical,
    Matched,
    /// The cohort's own predicted rate: the mean risk-model probability of its members.
    Predicted,
    /// No comparator: each person is paid on their own outcome (payment kind
    /// "per-person", weighted by risk).
    None,
    /// Each area's baseline-period rate, adjusted by the difference between the cohort's
    /// and the baseline cohort's mean predicted risk (Transforming Rehabilitation).
    CaseMixAdjusted,
}

/// `[inference]`: uncertainty of a matched comparison.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInference {
    /// `welch` (weighted two-sample t, as the Justice Data Lab reports) or `bootstrap`.
    pub method: InferenceMethod,
    /// Confidence level of intervals, e.g. "0.95".
    #[schemars(with = "String")]
    pub confidence: Spanned<String>,
    /// bootstrap: number of replicates.
    #[serde(default)]
    pub replicates: Option<u32>,
    /// bootstrap: seed of the resampling.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Apply the Justice Data Lab rule: significant only if p ≤ 1 − confidence,
    /// n·p ≥ 10 and at least 30 treated people.
    #[serde(default)]
    pub jdl_rule: bool,
}

/// `[risk]`: how a risk model (inputs `risk_model` and `offence_categories`) scores people.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRisk {
    /// Which probability is used: 1 (one-year) or 2 (two-year).
    #[schemars(with = "i64")]
    pub horizon_years: Spanned<i64>,
    /// Columns of the people input holding the model's inputs.
    pub columns: RawRiskColumns,
    /// Values of the sex column: `{ male = ["M"], female = ["F"] }`.
    pub sex_codes: RawSexCodes,
}

/// People columns the risk model reads.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRiskColumns {
    pub sex: String,
    /// Age in whole years at the start of follow-up (the index date).
    pub age: String,
    /// Age in whole years at the current conviction.
    pub age_at_conviction: String,
    /// Age in whole years at the first sanction.
    pub age_at_first_sanction: String,
    /// Number of sanctions before the current one (the model adds the current one).
    pub previous_sanctions: String,
    /// Current offence code, mapped to a category by the `offence_categories` input.
    pub offence: String,
}

/// Values of the sex column.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSexCodes {
    pub male: Vec<String>,
    pub female: Vec<String>,
}

/// Inference methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InferenceMethod {
    Welch,
    Bootstrap,
}

/// `[threshold]`: the target.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    /// `points` (comparator − treated, in the measure's units) or `relative`
    /// ((comparator − treated) / comparator).
    pub kind: ThresholdKind,
    /// Minimum reduction each cohort period must reach, as a decimal string.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub per_period: Option<Spanned<String>>,
    /// Minimum reduction over all periods pooled, as a decimal string.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pooled: Option<Spanned<String>>,
    /// Also require the difference to be statistically significant (needs `[inference]`).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub require_significance: Option<Spanned<bool>>,
}

/// Threshold semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdKind {
    Points,
    Relative,
}

/// `[payment]`: money, in integer minor units.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPayment {
    /// ISO 4217 code, e.g. `GBP`.
    #[schemars(with = "String")]
    pub currency: Spanned<String>,
    /// `per-period` (each period paid on its own result) or `pooled`.
    pub basis: PaymentBasis,
    /// `at-risk` (an amount paid in advance and repaid on a miss, or withheld until the
    /// target is met, as `on_miss` says) or `per-unit` (a price per unit of improvement).
    pub kind: PaymentKind,
    /// at-risk: the amount at risk, in minor units.
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub at_risk_minor: Option<Spanned<i64>>,
    /// per-unit: price of one unit of improvement, in minor units.
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub price_minor: Option<Spanned<i64>>,
    /// per-unit: `percentage-point` (binary measure only) or `outcome-avoided`.
    #[serde(default)]
    #[schemars(with = "Option<PaymentUnit>")]
    pub unit: Option<Spanned<PaymentUnit>>,
    /// per-unit: most that can be paid, in minor units.
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub cap_minor: Option<Spanned<i64>>,
    /// When the target is missed: `nothing` (nothing is paid) or `repay`.
    pub on_miss: OnMiss,
    /// per-unit with `on_miss = "repay"`: the amount repaid, in minor units.
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub repay_minor: Option<Spanned<i64>>,
    /// per-person: instead of price_minor × probability, a price per band of the
    /// probability: bands in ascending order of `from`, the first from "0"; each covers
    /// [from, next from), the last up to 1 inclusive.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawPriceBand>>")]
    pub price_bands: Option<Spanned<Vec<RawPriceBand>>>,
    /// case-mix: price of one reoffence fewer than the baseline frequency, paid only when
    /// the binary target is met (the binary hurdle), in minor units.
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub frequency_price_minor: Option<Spanned<i64>>,
    /// case-mix: what a rise in the binary rate beyond the threshold (significant, when
    /// the threshold requires it) costs the provider: `nothing` or `penalty` (price_minor
    /// per reoffender above the adjusted baseline).
    #[serde(default)]
    #[schemars(with = "Option<OnRise>")]
    pub on_rise: Option<Spanned<OnRise>>,
}

/// One price band of a per-person payment.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPriceBand {
    /// Lowest probability of the band (inclusive), as a decimal string.
    #[schemars(with = "String")]
    pub from: Spanned<String>,
    /// What a person of the band who does not reoffend earns, in minor units.
    #[schemars(with = "i64")]
    pub price_minor: Spanned<i64>,
}

/// What a rise in the binary rate costs under a case-mix payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnRise {
    Nothing,
    Penalty,
}

/// Which result a payment is made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentBasis {
    PerPeriod,
    Pooled,
}

/// Payment mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentKind {
    AtRisk,
    PerUnit,
    /// Each person who does not reoffend earns price × their risk-model probability,
    /// scaled pro rata to fit `cap_minor` (Lewisham).
    PerPerson,
    /// Per area and cohort period: price_minor per reoffender below the case-mix-adjusted
    /// baseline, frequency_price_minor per reoffence below the baseline frequency when the
    /// binary target is met, and optionally a penalty for a rise (Transforming
    /// Rehabilitation).
    CaseMix,
}

/// What a per-unit price is paid per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentUnit {
    /// One percentage point of improvement (improvement × 100).
    PercentagePoint,
    /// One reoffender, offence or conviction event avoided (improvement × cohort size).
    OutcomeAvoided,
}

/// What happens when the target is missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnMiss {
    Nothing,
    Repay,
}

/// Only the version, read first so that a future format is refused before its fields
/// are misread.
#[derive(Debug, Deserialize)]
pub struct VersionOnly {
    pub version: Option<Spanned<i64>>,
}
