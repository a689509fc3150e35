//! Audit specs: read a contract's TOML, check it, and hand the rest of the pipeline a
//! value it never has to re-check.
//!
//! Reading happens in two steps, as in cargo-deny: [`raw`] mirrors the file (unknown
//! fields rejected by the parser with their position), then `AuditSpec::from_raw`
//! checks meaning — dates, decimals, which fields go with which `kind` — and reports
//! *every* problem at once, each with `file:line:column` and a line of help. Nothing
//! that DOMAIN.md calls contract-specific has a default: the spec must say it.

pub mod raw;
pub mod sensitivity;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::dates::{self, Day};
use crate::digest::Sha256Digest;
use crate::exact::Ratio;
pub use raw::{
    ComparatorKind, CountingUnit, CovariateKind, DuplicatePolicy, InferenceMethod, InputFormat,
    Measure, OnMiss, OnRise, PaymentBasis, PaymentKind, PaymentUnit, RepeatIndex, Sanction,
    ThresholdKind, ValidationMethod, WindowEnd,
};
use raw::{Number, RawPeriod, RawRule, RawSpec};

/// The spec format version this build reads.
pub const SPEC_VERSION: i64 = 1;

/// One problem found in a spec, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

/// Every problem found in one spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The spec file.
    pub path: PathBuf,
    /// All problems, in file order.
    pub problems: Vec<SpecProblem>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} problem{} in spec {}",
            n,
            if n == 1 { "" } else { "s" },
            self.path.display()
        )?;
        for p in &self.problems {
            write!(f, "\n  {}", self.path.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
                if let Some(col) = p.column {
                    write!(f, ":{col}")?;
                }
            }
            write!(f, ": {}", p.message)?;
            if let Some(help) = &p.help {
                write!(f, "\n    help: {help}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// A checked audit spec.
#[derive(Debug, Clone)]
pub struct AuditSpec {
    /// Where the spec was read from.
    pub path: PathBuf,
    /// The spec's bytes exactly as read; copied into the bundle.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub sha256: Sha256Digest,
    pub contract: Contract,
    pub people: InputSpec,
    pub convictions: InputSpec,
    pub cohort: Cohort,
    pub outcome: Outcome,
    pub comparator: Comparator,
    /// The national comparison pool (matched comparisons only).
    pub pool: Option<InputSpec>,
    /// How the risk model scores people, if the spec uses one.
    pub risk: Option<RiskSpec>,
    /// The risk model's coefficient file (TOML).
    pub risk_model: Option<InputSpec>,
    /// Data offence codes → model offence categories (CSV).
    pub offence_categories: Option<InputSpec>,
    /// A party's claimed figures, reconciled with the recomputation (TOML).
    pub claims: Option<InputSpec>,
    pub inference: Option<Inference>,
    pub threshold: Threshold,
    pub payment: Payment,
    /// Alternatives to some of the spec's choices, and the grid of variants they make.
    pub sensitivity: Option<sensitivity::Sensitivity>,
}

/// `[contract]`, checked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Contract {
    pub id: String,
    pub title: String,
    pub commissioner: String,
    pub provider: String,
    pub evaluator: String,
    pub validation_method: ValidationMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_snapshot: Option<String>,
}

/// One input table, checked. Paths are resolved against the spec's folder.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// The input's name in the spec (`people`, `convictions`).
    pub name: String,
    /// Resolved path.
    pub path: PathBuf,
    /// The path as written in the spec.
    pub path_as_written: String,
    pub format: InputFormat,
    /// Pinned digest, if any.
    pub sha256: Option<Sha256Digest>,
    /// Canonical name → file column name.
    pub columns: BTreeMap<String, String>,
    /// chrono format of text dates.
    pub date_format: String,
}

impl InputSpec {
    /// The file's name for a canonical column (the canonical name itself when unmapped).
    pub fn column<'a>(&'a self, canonical: &'a str) -> &'a str {
        self.columns
            .get(canonical)
            .map(String::as_str)
            .unwrap_or(canonical)
    }
}

/// A named, inclusive range of index dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub name: String,
    pub from: Day,
    pub to: Day,
}

impl Period {
    /// True when `day` lies in the period (both ends inclusive).
    pub fn contains(&self, day: Day) -> bool {
        self.from <= day && day <= self.to
    }
}

/// `[cohort]`, checked.
#[derive(Debug, Clone)]
pub struct Cohort {
    pub periods: Vec<Period>,
    pub repeat_index: RepeatIndex,
    pub include: Vec<Rule>,
    pub exclude: Vec<Rule>,
}

/// A checked rule on one column.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// Canonical or file column name as written.
    pub column: String,
    pub reason: String,
    pub condition: Condition,
}

/// The one condition a rule tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Equals(String),
    NotEquals(String),
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    LessThan(Ratio),
    AtMost(Ratio),
    GreaterThan(Ratio),
    AtLeast(Ratio),
    IsMissing(bool),
}

impl Condition {
    /// True when the condition needs numeric values.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Condition::LessThan(_)
                | Condition::AtMost(_)
                | Condition::GreaterThan(_)
                | Condition::AtLeast(_)
        )
    }

    /// Short description for reports, e.g. `sentence_months < 12`.
    pub fn describe(&self, column: &str) -> String {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        match self {
            Condition::Equals(v) => format!("{column} = {v:?}"),
            Condition::NotEquals(v) => format!("{column} != {v:?}"),
            Condition::In(s) => format!("{column} in [{}]", list(s)),
            Condition::NotIn(s) => format!("{column} not in [{}]", list(s)),
            Condition::LessThan(r) => format!("{column} < {}", r.to_fixed(r.scale_hint())),
            Condition::AtMost(r) => format!("{column} <= {}", r.to_fixed(r.scale_hint())),
            Condition::GreaterThan(r) => format!("{column} > {}", r.to_fixed(r.scale_hint())),
            Condition::AtLeast(r) => format!("{column} >= {}", r.to_fixed(r.scale_hint())),
            Condition::IsMissing(true) => format!("{column} is missing"),
            Condition::IsMissing(false) => format!("{column} is present"),
        }
    }
}

/// `[outcome]`, checked.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub measure: Measure,
    pub unit: CountingUnit,
    pub sanctions: BTreeSet<Sanction>,
    pub window_months: u32,
    pub window_end: WindowEnd,
    pub lag_months: u32,
    pub duplicates: DuplicatePolicy,
    /// Data value → sanction.
    pub sanction_codes: BTreeMap<String, Sanction>,
    pub exclude: Vec<Rule>,
}

/// `[comparator]`, checked.
#[derive(Debug, Clone)]
pub enum Comparator {
    /// A published value in the measure's units.
    FixedBaseline {
        value: Ratio,
        value_as_written: String,
        source: String,
    },
    /// A baseline period recomputed from the same inputs under the same rules.
    Historical { period: Period },
    /// A comparison group matched on the propensity score from the pool input.
    Matched(Matched),
    /// The cohort's own predicted rate: the mean risk-model probability of its members.
    Predicted,
    /// No comparator: each person is paid on their own outcome.
    None,
    /// Per area, the baseline period's rate adjusted for the cohort's risk mix.
    CaseMix(CaseMix),
}

/// A case-mix-adjusted comparison (Transforming Rehabilitation), checked: each area's
/// cohort is compared with the same area's baseline-period cohort, whose binary rate is
/// moved by the difference between the two cohorts' mean predicted risk.
#[derive(Debug, Clone)]
pub struct CaseMix {
    /// The baseline period, computed from the same inputs under the same rules.
    pub baseline: Period,
    /// The people column naming each person's area.
    pub area_column: String,
}

/// `[threshold]`, checked.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub per_period: Option<Ratio>,
    pub pooled: Option<Ratio>,
    /// The difference must also be statistically significant.
    pub require_significance: bool,
}

/// `[risk]`, checked: the people columns the model reads.
#[derive(Debug, Clone)]
pub struct RiskSpec {
    /// 1 or 2: which probability is used.
    pub horizon_years: u8,
    pub sex: String,
    pub age: String,
    pub age_at_conviction: String,
    pub age_at_first_sanction: String,
    pub previous_sanctions: String,
    pub offence: String,
    pub male: Vec<String>,
    pub female: Vec<String>,
}

/// `[inference]`, checked.
#[derive(Debug, Clone)]
pub struct Inference {
    pub method: InferenceMethod,
    /// Confidence level; the significance level is 1 − confidence.
    pub confidence: Ratio,
    /// Bootstrap replicates (0 for Welch).
    pub replicates: u32,
    /// Bootstrap seed (0 for Welch).
    pub seed: u64,
    pub jdl_rule: bool,
}

/// A matched comparison, checked.
#[derive(Debug, Clone)]
pub struct Matched {
    pub covariates: Vec<Covariate>,
    /// Columns matched exactly, besides the period.
    pub exact: Vec<String>,
    /// Caliper in standard deviations of the logit of the score.
    pub caliper_sd: Option<Ratio>,
    /// Comparisons per treated person.
    pub ratio: usize,
    pub replacement: bool,
    /// Largest acceptable |SMD| after matching.
    pub balance_limit: Ratio,
    pub max_iterations: u32,
}

/// A covariate of the propensity model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covariate {
    pub column: String,
    pub kind: CovariateKind,
    /// The left-out level of a categorical covariate.
    pub reference: Option<String>,
}

/// `[payment]`, checked.
#[derive(Debug, Clone)]
pub struct Payment {
    pub currency: String,
    pub basis: PaymentBasis,
    pub mechanism: Mechanism,
    pub on_miss: MissRule,
}

/// How much is earned when the target is met.
#[derive(Debug, Clone)]
pub enum Mechanism {
    /// A fixed amount at risk.
    AtRisk { amount_minor: i128 },
    /// A price per unit of improvement, optionally capped.
    PerUnit {
        price_minor: i128,
        unit: PaymentUnit,
        cap_minor: Option<i128>,
    },
    /// Each person who does not reoffend earns a price set by their probability; totals
    /// above the cap are scaled pro rata.
    PerPerson {
        pricing: PersonPricing,
        cap_minor: Option<i128>,
    },
    /// Per area and cohort period: `price_minor` per reoffender below the adjusted
    /// baseline; `frequency_price_minor` per reoffence below the baseline frequency when
    /// the binary target is met; with `penalty`, a binary rise beyond the threshold costs
    /// `price_minor` per reoffender above it. `cap_minor` caps the year's payments.
    CaseMix {
        price_minor: i128,
        frequency_price_minor: Option<i128>,
        cap_minor: Option<i128>,
        penalty: bool,
    },
}

/// How a per-person payment is priced from the person's probability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonPricing {
    /// price × probability.
    TimesProbability { price_minor: i128 },
    /// A price per band: (lowest probability of the band, price), ascending, the first
    /// from 0; each band runs to the next band's lower bound, the last to 1.
    Bands(Vec<(Ratio, i128)>),
}

impl PersonPricing {
    /// What a person of probability `micro` millionths earns before any cap, rounded
    /// toward zero.
    pub fn uncapped_minor(&self, micro: i128) -> i128 {
        match self {
            PersonPricing::TimesProbability { price_minor } => price_minor * micro / 1_000_000,
            PersonPricing::Bands(bands) => {
                let p = Ratio::new(micro, 1_000_000).unwrap_or(Ratio::ZERO);
                bands
                    .iter()
                    .rev()
                    .find(|(from, _)| p >= *from)
                    .map_or(0, |(_, price)| *price)
            }
        }
    }

    /// How the price is set, in words.
    pub fn describe(&self) -> &'static str {
        match self {
            PersonPricing::TimesProbability { .. } => "price × probability",
            PersonPricing::Bands(_) => "price band of the probability",
        }
    }
}

/// What happens when the target is missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissRule {
    Nothing,
    Repay { amount_minor: i128 },
}

impl Ratio {
    /// Decimal places needed to show this value without loss, when it is a decimal of at
    /// most 6 places (else 6).
    pub fn scale_hint(&self) -> u32 {
        let d = self.denom();
        (0..=6).find(|&k| 10i128.pow(k) % d == 0).unwrap_or(6)
    }
}

/// Canonical column names of the `people` input.
pub const PEOPLE_COLUMNS: &[&str] = &["person_id", "index_date"];
/// Canonical column names of the `convictions` input.
pub const CONVICTION_COLUMNS: &[&str] = &[
    "person_id",
    "offence_date",
    "sanction_date",
    "sanction_type",
    "appearance_id",
];

/// Collects problems with positions computed from spans in the source text.
struct Problems<'a> {
    source: &'a str,
    list: Vec<(usize, SpecProblem)>,
}

impl<'a> Problems<'a> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count() + 1)
            .unwrap_or(1);
        (line, col)
    }

    fn at(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<&str>) {
        let (line, column) = self.position(span.start);
        self.list.push((
            span.start,
            SpecProblem {
                line: Some(line),
                column: Some(column),
                message: message.into(),
                help: help.map(str::to_string),
            },
        ));
    }

    fn nowhere(&mut self, message: impl Into<String>, help: Option<&str>) {
        self.list.push((
            usize::MAX,
            SpecProblem {
                line: None,
                column: None,
                message: message.into(),
                help: help.map(str::to_string),
            },
        ));
    }

    fn date(&mut self, s: &Spanned<String>, what: &str) -> Option<Day> {
        let d = dates::parse_iso(s.get_ref());
        if d.is_none() {
            self.at(
                s.span(),
                format!("{what} {:?} is not a valid date", s.get_ref()),
                Some("write dates as \"YYYY-MM-DD\" between 1900 and 2200"),
            );
        }
        d
    }

    fn decimal(&mut self, s: &Spanned<String>, what: &str) -> Option<Ratio> {
        match Ratio::parse_decimal(s.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                self.at(
                    s.span(),
                    format!("{what}: {e}"),
                    Some("decimals are written as strings so they stay exact"),
                );
                None
            }
        }
    }

    fn finish(mut self, path: &Path) -> Result<(), SpecError> {
        if self.list.is_empty() {
            return Ok(());
        }
        self.list.sort_by_key(|(offset, _)| *offset);
        Err(SpecError {
            path: path.to_path_buf(),
            problems: self.list.into_iter().map(|(_, p)| p).collect(),
        })
    }
}

/// Why an input path as written cannot be used, if it cannot: see docs/spec.md §17,
/// "Hostile input policy". Paths may climb out of the spec's folder with `..`, and may
/// be absolute; what they must not be is read differently on another system.
fn input_path_problem(written: &str) -> Option<&'static str> {
    let bytes = written.as_bytes();
    if written.starts_with('~') {
        Some("starts with `~`, which is not expanded")
    } else if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        Some("starts with a drive letter, which names a different file off Windows")
    } else if written.contains('\\') {
        Some("contains `\\`, which separates folders only on Windows")
    } else if written.contains('\0') {
        Some("contains a NUL character")
    } else {
        None
    }
}

fn is_kebab_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl AuditSpec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<AuditSpec, SpecError> {
        let bytes = std::fs::read(path).map_err(|e| SpecError {
            path: path.to_path_buf(),
            problems: vec![SpecProblem {
                line: None,
                column: None,
                message: format!("cannot read spec: {e}"),
                help: Some("check the path; specs live in audit-specs/".into()),
            }],
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Checks a spec given its bytes; `path` is used for messages and to resolve inputs.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<AuditSpec, SpecError> {
        let one =
            |line: Option<usize>, column: Option<usize>, message: String, help: &str| SpecError {
                path: path.to_path_buf(),
                problems: vec![SpecProblem {
                    line,
                    column,
                    message,
                    help: Some(help.to_string()),
                }],
            };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t.to_string(),
            Err(e) => {
                return Err(one(
                    None,
                    None,
                    format!(
                        "spec is not UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ),
                    "save the spec as UTF-8 text",
                ))
            }
        };
        let problems = Problems {
            source: &text,
            list: Vec::new(),
        };
        let toml_error = |e: toml::de::Error, help: &str| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = problems.position(span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            one(line, column, e.message().trim().to_string(), help)
        };
        let version: raw::VersionOnly = toml::from_str(&text)
            .map_err(|e| toml_error(e, "the spec must be valid TOML (see docs/spec.md)"))?;
        match version.version {
            None => {
                return Err(one(
                    Some(1),
                    Some(1),
                    "missing `version`".into(),
                    "start the spec with `version = 1`",
                ))
            }
            Some(v) if *v.get_ref() != SPEC_VERSION => {
                let (l, c) = problems.position(v.span().start);
                return Err(one(
                    Some(l),
                    Some(c),
                    format!("unsupported spec version {}", v.get_ref()),
                    "this build reads `version = 1`",
                ));
            }
            Some(_) => {}
        }
        let raw: RawSpec = toml::from_str(&text).map_err(|e| {
            toml_error(
                e,
                "check the field name and type against docs/spec.md or `outcome-audit schema`",
            )
        })?;
        Self::from_raw(path, bytes.clone(), &text, raw)
    }

    fn from_raw(
        path: &Path,
        bytes: Vec<u8>,
        text: &str,
        raw: RawSpec,
    ) -> Result<AuditSpec, SpecError> {
        let mut p = Problems {
            source: text,
            list: Vec::new(),
        };
        let base = path.parent().unwrap_or_else(|| Path::new("."));

        // [contract]
        let c = &raw.contract;
        if !is_kebab_id(c.id.get_ref()) {
            p.at(
                c.id.span(),
                format!(
                    "contract id {:?} is not a kebab-case identifier",
                    c.id.get_ref()
                ),
                Some("use lowercase letters, digits and `-`, e.g. \"doncaster-cohort-1\""),
            );
        }
        for (field, value) in [
            ("title", &c.title),
            ("commissioner", &c.commissioner),
            ("provider", &c.provider),
            ("evaluator", &c.evaluator),
        ] {
            if value.trim().is_empty() {
                p.nowhere(
                    format!("contract {field} is empty"),
                    Some("name the party as the contract does"),
                );
            }
        }
        let data_snapshot = c
            .data_snapshot
            .as_ref()
            .and_then(|s| p.date(s, "data_snapshot").map(|_| s.get_ref().clone()));

        // [inputs]
        let mut people = None;
        let mut convictions = None;
        let mut pool = None;
        let mut risk_model = None;
        let mut offence_categories = None;
        let mut claims = None;
        for (name, input) in &raw.inputs {
            let (slot, canon, format) = match name.as_str() {
                "people" => (&mut people, PEOPLE_COLUMNS, None),
                "convictions" => (&mut convictions, CONVICTION_COLUMNS, None),
                "pool" => (&mut pool, PEOPLE_COLUMNS, None),
                "risk_model" => (&mut risk_model, &[][..], Some(InputFormat::Toml)),
                "offence_categories" => (&mut offence_categories, &[][..], Some(InputFormat::Csv)),
                "claims" => (&mut claims, &[][..], Some(InputFormat::Toml)),
                other => {
                    p.at(
                        input.path.span(),
                        format!("unknown input {other:?}"),
                        Some("known inputs are: people, convictions, pool, risk_model, offence_categories, claims"),
                    );
                    continue;
                }
            };
            match format {
                Some(f) if input.format != f => p.at(
                    input.path.span(),
                    format!("inputs.{name} must have format = \"{}\"", f.extension()),
                    Some("a risk model is a TOML file; its offence categories a CSV file"),
                ),
                None if input.format == InputFormat::Toml => p.at(
                    input.path.span(),
                    format!("inputs.{name} is a table: its format is csv or parquet"),
                    None,
                ),
                _ => {}
            }
            let sha256 = input
                .sha256
                .as_ref()
                .and_then(|s| match s.get_ref().parse() {
                    Ok(d) => Some(d),
                    Err(e) => {
                        p.at(
                            s.span(),
                            format!("inputs.{name}.sha256: {e}"),
                            Some("paste the digest printed by `sha256sum FILE`"),
                        );
                        None
                    }
                });
            // Keys are canonical names, or names that rules use for this input.
            let covariate_columns = raw
                .comparator
                .covariates
                .iter()
                .flatten()
                .map(|c| c.get_ref().column.as_str())
                .chain(raw.comparator.exact.iter().flatten().map(String::as_str));
            let risk_columns = raw.risk.iter().flat_map(|r| {
                let c = &r.columns;
                [
                    c.sex.as_str(),
                    c.age.as_str(),
                    c.age_at_conviction.as_str(),
                    c.age_at_first_sanction.as_str(),
                    c.previous_sanctions.as_str(),
                    c.offence.as_str(),
                ]
            });
            let rule_columns: Vec<&str> = match name.as_str() {
                "people" | "pool" => raw
                    .cohort
                    .include
                    .iter()
                    .chain(&raw.cohort.exclude)
                    .map(|r| r.get_ref().column.as_str())
                    .chain(covariate_columns)
                    .chain(risk_columns)
                    .collect(),
                _ => raw
                    .outcome
                    .exclude
                    .iter()
                    .map(|r| r.get_ref().column.as_str())
                    .collect(),
            };
            for (key, value) in &input.columns {
                if !canon.contains(&key.as_str()) && !rule_columns.contains(&key.as_str()) {
                    p.at(
                        value.span(),
                        format!("inputs.{name}.columns maps {key:?}, which is neither a canonical column nor a column a rule uses"),
                        Some(&format!("canonical columns of {name} are: {}", canon.join(", "))),
                    );
                }
            }
            let written = input.path.get_ref();
            if written.trim().is_empty() {
                p.at(
                    input.path.span(),
                    format!("inputs.{name}.path is empty"),
                    Some("give the file's path relative to the spec"),
                );
            } else if let Some(problem) = input_path_problem(written) {
                p.at(
                    input.path.span(),
                    format!("inputs.{name}.path {written:?} {problem}"),
                    Some("write the path relative to the spec's folder with `/` between names, e.g. \"../fixtures/doncaster/people.csv\", so the spec reads the same file on every system"),
                );
            }
            *slot = Some(InputSpec {
                name: name.clone(),
                path: base.join(input.path.get_ref()),
                path_as_written: input.path.get_ref().clone(),
                format: input.format,
                sha256,
                columns: input
                    .columns
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect(),
                date_format: input
                    .date_format
                    .clone()
                    .unwrap_or_else(|| "%Y-%m-%d".to_string()),
            });
        }
        for (name, slot) in [("people", &people), ("convictions", &convictions)] {
            if slot.is_none() {
                p.nowhere(
                    format!("missing input `{name}`"),
                    Some(&format!(
                        "add an [inputs.{name}] table with path and format"
                    )),
                );
            }
        }

        // [cohort]
        let mut periods = Vec::new();
        if raw.cohort.periods.is_empty() {
            p.nowhere("cohort.periods is empty", Some("name at least one period: periods = [{ name = \"cohort-1\", from = \"2011-10-01\", to = \"2012-09-30\" }]"));
        }
        for rp in &raw.cohort.periods {
            if let Some(period) = check_period(&mut p, rp) {
                periods.push(period);
            }
        }
        let mut cohort_ids = BTreeSet::new();
        let include = check_rules(
            &mut p,
            &raw.cohort.include,
            "cohort.include",
            &mut cohort_ids,
        );
        let exclude = check_rules(
            &mut p,
            &raw.cohort.exclude,
            "cohort.exclude",
            &mut cohort_ids,
        );

        // [outcome]
        let o = &raw.outcome;
        let window_months = check_months(&mut p, &o.window.months, "outcome.window.months", 1);
        let lag_months = check_months(&mut p, &o.court_lag.months, "outcome.court_lag.months", 0);
        if o.sanctions.is_empty() {
            p.nowhere("outcome.sanctions is empty", Some("say which sanctions prove an offence: [\"conviction\"] or [\"conviction\", \"caution\"]"));
        }
        let mut sanction_codes = BTreeMap::new();
        match &o.sanction_codes {
            None => {
                sanction_codes.insert("conviction".to_string(), Sanction::Conviction);
                sanction_codes.insert("caution".to_string(), Sanction::Caution);
            }
            Some(map) => {
                for (sanction, values) in map {
                    for v in values {
                        if sanction_codes.insert(v.clone(), *sanction).is_some() {
                            p.nowhere(
                                format!("outcome.sanction_codes lists {v:?} more than once"),
                                Some("each data value must mean one sanction"),
                            );
                        }
                    }
                }
            }
        }
        let outcome_exclude =
            check_rules(&mut p, &o.exclude, "outcome.exclude", &mut BTreeSet::new());

        // [comparator]
        let rc = &raw.comparator;
        if rc.kind != ComparatorKind::Matched {
            for (field, span) in [
                ("caliper_sd", rc.caliper_sd.as_ref().map(|v| v.span())),
                ("ratio", rc.ratio.as_ref().map(|v| v.span())),
                ("balance_limit", rc.balance_limit.as_ref().map(|v| v.span())),
                (
                    "covariates",
                    rc.covariates
                        .as_ref()
                        .and_then(|v| v.first())
                        .map(|v| v.span()),
                ),
            ] {
                if let Some(span) = span {
                    p.at(
                        span,
                        format!("comparator.{field} is only used by kind \"matched\""),
                        Some("remove it, or use kind = \"matched\""),
                    );
                }
            }
            if rc.exact.is_some() || rc.replacement.is_some() || rc.max_iterations.is_some() {
                p.nowhere("comparator.exact, replacement and max_iterations are only used by kind \"matched\"", Some("remove them, or use kind = \"matched\""));
            }
        }
        let comparator = match rc.kind {
            ComparatorKind::FixedBaseline => {
                if let Some(rp) = &rc.period {
                    p.at(
                        rp.name.span(),
                        "comparator.period is not used by kind \"fixed-baseline\"",
                        Some("remove it, or use kind = \"historical\""),
                    );
                }
                let value = match &rc.value {
                    Some(v) => p
                        .decimal(v, "comparator.value")
                        .map(|r| (r, v.get_ref().clone())),
                    None => {
                        p.nowhere("comparator kind \"fixed-baseline\" needs `value`", Some("give the published baseline as a decimal string, e.g. value = \"0.580\""));
                        None
                    }
                };
                if let Some((r, _)) = &value {
                    if *r == Ratio::ZERO
                        && raw.threshold.as_ref().map(|t| t.kind) == Some(ThresholdKind::Relative)
                    {
                        if let Some(v) = &rc.value {
                            p.at(
                                v.span(),
                                "comparator.value is 0, so a relative threshold cannot be computed",
                                Some("use kind = \"points\", or check the published value"),
                            );
                        }
                    }
                    if r.is_negative() {
                        if let Some(v) = &rc.value {
                            p.at(
                                v.span(),
                                "comparator.value is negative",
                                Some("a baseline rate or frequency is zero or more"),
                            );
                        }
                    }
                    if o.measure == Measure::Binary && *r > Ratio::from_int(1) {
                        if let Some(v) = &rc.value {
                            p.at(
                                v.span(),
                                "comparator.value is above 1 for a binary rate",
                                Some("write rates as proportions: 58% is \"0.580\""),
                            );
                        }
                    }
                }
                let source = rc
                    .source
                    .as_ref()
                    .map(|s| s.get_ref().clone())
                    .unwrap_or_default();
                if source.trim().is_empty() {
                    p.nowhere(
                        "comparator kind \"fixed-baseline\" needs `source`",
                        Some("say where the published value comes from"),
                    );
                }
                value.map(|(value, value_as_written)| Comparator::FixedBaseline {
                    value,
                    value_as_written,
                    source,
                })
            }
            ComparatorKind::Matched => check_matched(&mut p, rc, pool.is_some()),
            ComparatorKind::None => {
                baseline_fields_unused(
                    &mut p,
                    rc,
                    "none",
                    "with no comparator each person is paid on their own outcome",
                );
                if o.measure != Measure::Binary {
                    p.nowhere("comparator kind \"none\" pays people who do not reoffend: set outcome.measure = \"binary\"", None);
                }
                if raw.payment.kind != PaymentKind::PerPerson {
                    p.nowhere("comparator kind \"none\" pays each person on their own outcome: it needs payment kind \"per-person\"", None);
                }
                if raw.risk.is_none() {
                    p.nowhere("comparator kind \"none\" needs a [risk] section: payments are weighted by each person's risk", None);
                }
                Some(Comparator::None)
            }
            ComparatorKind::Predicted => {
                baseline_fields_unused(
                    &mut p,
                    rc,
                    "predicted",
                    "the predicted rate comes from the risk model",
                );
                if raw.risk.is_none() {
                    p.nowhere("comparator kind \"predicted\" needs a [risk] section and the inputs risk_model and offence_categories", Some("see docs/spec.md, [risk]"));
                }
                if o.measure != Measure::Binary {
                    p.nowhere("comparator kind \"predicted\" compares a binary rate with a predicted probability", Some("set outcome.measure = \"binary\""));
                }
                Some(Comparator::Predicted)
            }
            ComparatorKind::CaseMixAdjusted => check_case_mix(&mut p, &raw),
            ComparatorKind::Historical => {
                for (field, span) in [
                    ("value", rc.value.as_ref().map(|v| v.span())),
                    ("source", rc.source.as_ref().map(|v| v.span())),
                ] {
                    if let Some(span) = span {
                        p.at(
                            span,
                            format!("comparator.{field} is not used by kind \"historical\""),
                            Some("the baseline is computed from the data; remove it"),
                        );
                    }
                }
                match &rc.period {
                    None => {
                        p.nowhere("comparator kind \"historical\" needs `period`", Some("period = { name = \"baseline-2009\", from = \"2009-01-01\", to = \"2009-12-31\" }"));
                        None
                    }
                    Some(rp) => {
                        check_period(&mut p, rp).map(|period| Comparator::Historical { period })
                    }
                }
            }
        };
        // Periods (including a historical baseline) must have distinct names and not overlap.
        let mut all_periods: Vec<&Period> = periods.iter().collect();
        match &comparator {
            Some(Comparator::Historical { period }) => all_periods.push(period),
            Some(Comparator::CaseMix(c)) => all_periods.push(&c.baseline),
            _ => {}
        }
        let mut names = BTreeSet::new();
        for period in &all_periods {
            if !names.insert(period.name.as_str()) {
                p.nowhere(
                    format!("period name {:?} is used twice", period.name),
                    Some("give every period its own name"),
                );
            }
        }
        for (i, a) in all_periods.iter().enumerate() {
            for b in &all_periods[i + 1..] {
                if a.from <= b.to && b.from <= a.to {
                    p.nowhere(
                        format!("periods {:?} and {:?} overlap", a.name, b.name),
                        Some("each index date must belong to one period"),
                    );
                }
            }
        }

        // [inference]
        let inference = raw.inference.as_ref().and_then(|ri| {
            if !matches!(
                rc.kind,
                ComparatorKind::Matched | ComparatorKind::Predicted | ComparatorKind::CaseMixAdjusted
            ) {
                p.at(ri.confidence.span(), "[inference] applies to matched, predicted and case-mix-adjusted comparisons in this version", Some("remove [inference], or use kind = \"matched\", \"predicted\" or \"case-mix-adjusted\""));
            }
            if rc.kind == ComparatorKind::CaseMixAdjusted && (ri.jdl_rule || ri.method != InferenceMethod::Welch) {
                p.at(ri.confidence.span(), "a case-mix-adjusted comparison tests each area and period with Welch's test: use method = \"welch\" without jdl_rule", None);
            }
            if rc.kind == ComparatorKind::Predicted && ri.jdl_rule {
                p.at(ri.confidence.span(), "inference.jdl_rule applies to matched comparisons", Some("the Justice Data Lab rule is for treated-versus-comparison groups; remove jdl_rule"));
            }
            if rc.kind == ComparatorKind::Predicted && ri.method != InferenceMethod::Welch {
                p.at(ri.confidence.span(), "a predicted comparison has an analytic interval: use method = \"welch\"", None);
            }
            let confidence = p.decimal(&ri.confidence, "inference.confidence")?;
            if confidence <= Ratio::ZERO || confidence >= Ratio::from_int(1) {
                p.at(ri.confidence.span(), "inference.confidence must be between 0 and 1", Some("e.g. \"0.95\""));
            }
            if ri.method == InferenceMethod::Bootstrap
                && !matches!(raw.outcome.measure, Measure::Binary | Measure::FrequencyPerOffender)
            {
                p.at(
                    ri.confidence.span(),
                    "the bootstrap resamples people, so it needs a per-person measure (binary or frequency_per_offender)",
                    Some("use method = \"welch\" for per-reoffender measures and days to first"),
                );
            }
            let (replicates, seed) = match ri.method {
                InferenceMethod::Bootstrap => match (ri.replicates, ri.seed) {
                    (Some(r), Some(s)) if r >= 100 => (r, s),
                    (Some(r), Some(_)) => {
                        p.at(ri.confidence.span(), format!("inference.replicates is {r}; a bootstrap needs at least 100"), Some("1000 is usual"));
                        (r, 0)
                    }
                    _ => {
                        p.at(ri.confidence.span(), "a bootstrap needs `replicates` and `seed`", Some("replicates = 1000, seed = 20100909: the seed is part of the evidence"));
                        (0, 0)
                    }
                },
                InferenceMethod::Welch => {
                    if ri.replicates.is_some() || ri.seed.is_some() {
                        p.at(ri.confidence.span(), "inference.replicates and inference.seed are only used by method \"bootstrap\"", Some("remove them, or set method = \"bootstrap\""));
                    }
                    (0, 0)
                }
            };
            Some(Inference {
                method: ri.method,
                confidence,
                replicates,
                seed,
                jdl_rule: ri.jdl_rule,
            })
        });
        if let Some(rs) = raw
            .threshold
            .as_ref()
            .and_then(|t| t.require_significance.as_ref())
        {
            if *rs.get_ref() && raw.inference.is_none() {
                p.at(
                    rs.span(),
                    "threshold.require_significance needs an [inference] section",
                    Some("add [inference] with method and confidence"),
                );
            }
        }
        if rc.kind == ComparatorKind::CaseMixAdjusted {
            if raw.inference.is_none() {
                p.nowhere(
                    "comparator kind \"case-mix-adjusted\" needs an [inference] section: payment follows a statistically significant change",
                    Some("[inference] method = \"welch\", confidence = \"0.95\""),
                );
            }
            if let Some(pooled) = raw.threshold.as_ref().and_then(|t| t.pooled.as_ref()) {
                p.at(pooled.span(), "threshold.pooled is not used by comparator kind \"case-mix-adjusted\": each area and period is judged on its own and the year's total is their sum", Some("remove threshold.pooled; set threshold.per_period"));
            }
            if raw.payment.kind != PaymentKind::CaseMix {
                p.nowhere("comparator kind \"case-mix-adjusted\" needs payment kind \"case-mix\"", Some("kind = \"case-mix\" with price_minor (per reoffender) and frequency_price_minor (per reoffence)"));
            }
        } else if let Some(a) = &rc.area_column {
            p.at(
                a.span(),
                "comparator.area_column is only used by kind \"case-mix-adjusted\"",
                Some("remove it"),
            );
        }
        if rc.kind == ComparatorKind::Matched && raw.inference.is_none() {
            p.nowhere(
                "comparator kind \"matched\" needs an [inference] section",
                Some("[inference] method = \"welch\", confidence = \"0.95\""),
            );
        }
        if let (Some(pool_raw), true) = (raw.inputs.get("pool"), rc.kind != ComparatorKind::Matched)
        {
            p.at(
                pool_raw.path.span(),
                "inputs.pool is only used by comparator kind \"matched\"",
                Some("remove [inputs.pool], or use kind = \"matched\""),
            );
        }

        // [risk]
        let risk = raw.risk.as_ref().and_then(|r| {
            if risk_model.is_none() || offence_categories.is_none() {
                p.at(
                    r.horizon_years.span(),
                    "[risk] needs the inputs risk_model (TOML) and offence_categories (CSV)",
                    Some("[inputs.risk_model] path = \"models/ogrs3.toml\", format = \"toml\""),
                );
            }
            let h = *r.horizon_years.get_ref();
            if h != 1 && h != 2 {
                p.at(
                    r.horizon_years.span(),
                    format!("risk.horizon_years is {h}; OGRS gives 1- and 2-year probabilities"),
                    Some("horizon_years = 1"),
                );
                return None;
            }
            if r.sex_codes.male.is_empty() || r.sex_codes.female.is_empty() {
                p.at(
                    r.horizon_years.span(),
                    "risk.sex_codes needs values for both male and female",
                    None,
                );
            }
            let c = &r.columns;
            Some(RiskSpec {
                horizon_years: h as u8,
                sex: c.sex.clone(),
                age: c.age.clone(),
                age_at_conviction: c.age_at_conviction.clone(),
                age_at_first_sanction: c.age_at_first_sanction.clone(),
                previous_sanctions: c.previous_sanctions.clone(),
                offence: c.offence.clone(),
                male: r.sex_codes.male.clone(),
                female: r.sex_codes.female.clone(),
            })
        });
        if (risk_model.is_some() || offence_categories.is_some()) && raw.risk.is_none() {
            p.nowhere(
                "the inputs risk_model and offence_categories need a [risk] section",
                Some("say which people columns the model reads"),
            );
        }

        // [threshold]
        let absent = raw::RawThreshold {
            kind: ThresholdKind::Points,
            per_period: None,
            pooled: None,
            require_significance: None,
        };
        match (&raw.threshold, rc.kind) {
            (None, k) if k != ComparatorKind::None => p.nowhere(
                "missing [threshold]",
                Some("say how far the measure must fall: kind and per_period and/or pooled"),
            ),
            (Some(_), ComparatorKind::None) => p.nowhere(
                "[threshold] is not used with comparator kind \"none\": each person is paid on their own outcome",
                Some("remove [threshold]"),
            ),
            _ => {}
        }
        let t = raw.threshold.as_ref().unwrap_or(&absent);
        let mut threshold_value = |s: &Option<Spanned<String>>, what: &str| -> Option<Ratio> {
            let s = s.as_ref()?;
            let r = p.decimal(s, what)?;
            if r.is_negative() {
                p.at(
                    s.span(),
                    format!("{what} is negative"),
                    Some("a minimum reduction is zero or more"),
                );
            } else if (t.kind == ThresholdKind::Relative || o.measure == Measure::Binary)
                && r > Ratio::from_int(1)
            {
                p.at(
                    s.span(),
                    format!("{what} is above 1"),
                    Some("write reductions as proportions: 5 points is \"0.05\", 10% is \"0.10\""),
                );
            }
            Some(r)
        };
        let per_period = threshold_value(&t.per_period, "threshold.per_period");
        let pooled = threshold_value(&t.pooled, "threshold.pooled");
        if t.per_period.is_none() && t.pooled.is_none() && raw.threshold.is_some() {
            p.nowhere(
                "threshold needs `per_period`, `pooled` or both",
                Some("e.g. per_period = \"0.05\""),
            );
        }

        // [payment]
        let pay = &raw.payment;
        let currency = pay.currency.get_ref().clone();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            p.at(
                pay.currency.span(),
                format!("currency {currency:?} is not an ISO 4217 code"),
                Some("e.g. \"GBP\""),
            );
        }
        match pay.basis {
            _ if rc.kind == ComparatorKind::None => {}
            PaymentBasis::PerPeriod if t.per_period.is_none() => p.nowhere(
                "payment.basis is \"per-period\" but threshold.per_period is not set",
                Some("add threshold.per_period, or pay on the pooled result"),
            ),
            PaymentBasis::Pooled if t.pooled.is_none() => p.nowhere(
                "payment.basis is \"pooled\" but threshold.pooled is not set",
                Some("add threshold.pooled, or pay per period"),
            ),
            _ => {}
        }
        let money = |p: &mut Problems,
                     v: &Option<Spanned<i64>>,
                     what: &str,
                     required: bool|
         -> Option<i128> {
            match v {
                Some(s) if *s.get_ref() < 0 => {
                    p.at(
                        s.span(),
                        format!("payment.{what} is negative"),
                        Some("amounts are written as positive minor units (pence)"),
                    );
                    None
                }
                Some(s) => Some(i128::from(*s.get_ref())),
                None => {
                    if required {
                        p.nowhere(
                            format!("payment needs `{what}` for this kind"),
                            Some("amounts are integer minor units: £1,000,000.00 is 100_000_000"),
                        );
                    }
                    None
                }
            }
        };
        if let (Some(b), false) = (&pay.price_bands, pay.kind == PaymentKind::PerPerson) {
            p.at(
                b.span(),
                "payment.price_bands is only used by kind \"per-person\"",
                Some("remove it"),
            );
        }
        if pay.kind != PaymentKind::CaseMix {
            for (field, span) in [
                (
                    "frequency_price_minor",
                    pay.frequency_price_minor.as_ref().map(|v| v.span()),
                ),
                ("on_rise", pay.on_rise.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = span {
                    p.at(
                        span,
                        format!("payment.{field} is only used by kind \"case-mix\""),
                        Some("remove it"),
                    );
                }
            }
        }
        let mechanism = match pay.kind {
            PaymentKind::PerPerson => None,
            PaymentKind::CaseMix => {
                let price = money(&mut p, &pay.price_minor, "price_minor", true);
                let frequency = money(
                    &mut p,
                    &pay.frequency_price_minor,
                    "frequency_price_minor",
                    false,
                );
                let cap = money(&mut p, &pay.cap_minor, "cap_minor", false);
                if rc.kind != ComparatorKind::CaseMixAdjusted {
                    p.nowhere(
                        "payment kind \"case-mix\" goes with comparator kind \"case-mix-adjusted\"",
                        None,
                    );
                }
                if pay.basis != PaymentBasis::PerPeriod {
                    p.nowhere("payment kind \"case-mix\" pays each area and period on its own: set basis = \"per-period\"", None);
                }
                if pay.on_miss != OnMiss::Nothing {
                    p.nowhere("payment kind \"case-mix\" says what a rise costs with on_rise: set on_miss = \"nothing\"", Some("on_rise = \"penalty\" or \"nothing\""));
                }
                unused_payment_fields(&mut p, pay, "case-mix", "a case-mix payment is set by price_minor, frequency_price_minor, cap_minor and on_rise");
                let penalty = match &pay.on_rise {
                    Some(r) => *r.get_ref() == OnRise::Penalty,
                    None => {
                        p.nowhere(
                            "payment kind \"case-mix\" needs `on_rise`",
                            Some("on_rise = \"penalty\" (a significant rise is penalised) or \"nothing\""),
                        );
                        false
                    }
                };
                price.map(|price_minor| Mechanism::CaseMix {
                    price_minor,
                    frequency_price_minor: frequency,
                    cap_minor: cap,
                    penalty,
                })
            }
            PaymentKind::AtRisk => {
                let amount = money(&mut p, &pay.at_risk_minor, "at_risk_minor", true);
                for (field, span) in [
                    ("price_minor", pay.price_minor.as_ref().map(|v| v.span())),
                    ("unit", pay.unit.as_ref().map(|v| v.span())),
                    ("cap_minor", pay.cap_minor.as_ref().map(|v| v.span())),
                    ("repay_minor", pay.repay_minor.as_ref().map(|v| v.span())),
                ] {
                    if let Some(span) = span {
                        p.at(
                            span,
                            format!("payment.{field} is not used by kind \"at-risk\""),
                            Some("an at-risk payment is set by at_risk_minor and on_miss alone"),
                        );
                    }
                }
                amount.map(|amount_minor| Mechanism::AtRisk { amount_minor })
            }
            PaymentKind::PerUnit => {
                let price = money(&mut p, &pay.price_minor, "price_minor", true);
                let cap = money(&mut p, &pay.cap_minor, "cap_minor", false);
                if let Some(v) = &pay.at_risk_minor {
                    p.at(
                        v.span(),
                        "payment.at_risk_minor is not used by kind \"per-unit\"",
                        Some("give price_minor and unit"),
                    );
                }
                match &pay.unit {
                    None => p.nowhere(
                        "payment kind \"per-unit\" needs `unit`",
                        Some("unit = \"percentage-point\" or \"outcome-avoided\""),
                    ),
                    Some(u)
                        if *u.get_ref() == PaymentUnit::PercentagePoint
                            && o.measure != Measure::Binary =>
                    {
                        p.at(
                            u.span(),
                            "payment.unit \"percentage-point\" only applies to the binary measure",
                            Some("pay frequencies per outcome avoided: unit = \"outcome-avoided\""),
                        )
                    }
                    Some(_) => {}
                }
                match (price, pay.unit.as_ref().map(|u| *u.get_ref())) {
                    (Some(price_minor), Some(unit)) => Some(Mechanism::PerUnit {
                        price_minor,
                        unit,
                        cap_minor: cap,
                    }),
                    _ => None,
                }
            }
        };
        let mechanism = match (pay.kind, mechanism) {
            (PaymentKind::PerPerson, _) => {
                let pricing = match (&pay.price_minor, &pay.price_bands) {
                    (Some(_), Some(b)) => {
                        p.at(b.span(), "payment.price_bands and payment.price_minor are both set", Some("a per-person payment is priced either by price × probability (price_minor) or by bands (price_bands)"));
                        None
                    }
                    (_, Some(bands)) => check_price_bands(&mut p, bands),
                    (_, None) => money(&mut p, &pay.price_minor, "price_minor", true)
                        .map(|price_minor| PersonPricing::TimesProbability { price_minor }),
                };
                let cap = money(&mut p, &pay.cap_minor, "cap_minor", false);
                if rc.kind != ComparatorKind::None {
                    p.nowhere(
                        "payment kind \"per-person\" goes with comparator kind \"none\"",
                        None,
                    );
                }
                if pay.on_miss != OnMiss::Nothing {
                    p.nowhere("payment kind \"per-person\" pays nothing for a person who reoffends: set on_miss = \"nothing\"", None);
                }
                unused_payment_fields(&mut p, pay, "per-person", "a per-person payment is price_minor × the person's probability (or price_bands), capped by cap_minor");
                pricing.map(|pricing| Mechanism::PerPerson {
                    pricing,
                    cap_minor: cap,
                })
            }
            (_, m) => m,
        };
        let on_miss = match pay.on_miss {
            OnMiss::Nothing => {
                if let Some(v) = &pay.repay_minor {
                    p.at(
                        v.span(),
                        "payment.repay_minor is set but on_miss is \"nothing\"",
                        Some("remove repay_minor or set on_miss = \"repay\""),
                    );
                }
                Some(MissRule::Nothing)
            }
            OnMiss::Repay => match pay.kind {
                PaymentKind::AtRisk => match &mechanism {
                    Some(Mechanism::AtRisk { amount_minor }) => Some(MissRule::Repay {
                        amount_minor: *amount_minor,
                    }),
                    _ => None,
                },
                PaymentKind::PerUnit => money(&mut p, &pay.repay_minor, "repay_minor", true)
                    .map(|amount_minor| MissRule::Repay { amount_minor }),
                PaymentKind::PerPerson | PaymentKind::CaseMix => None,
            },
        };

        // [sensitivity]: each variant is this spec with some fields replaced.
        let sensitivity = raw
            .sensitivity
            .as_ref()
            .and_then(|s| sensitivity::check(&mut p, path, text, s));

        p.finish(path)?;
        // Every Option below is Some once no problem was recorded.
        let missing = |what: &str| SpecError {
            path: path.to_path_buf(),
            problems: vec![SpecProblem {
                line: None,
                column: None,
                message: format!("internal: {what} was not checked"),
                help: None,
            }],
        };
        Ok(AuditSpec {
            path: path.to_path_buf(),
            sha256: Sha256Digest::of_bytes(&bytes),
            bytes,
            contract: Contract {
                id: c.id.get_ref().clone(),
                title: c.title.clone(),
                commissioner: c.commissioner.clone(),
                provider: c.provider.clone(),
                evaluator: c.evaluator.clone(),
                validation_method: c.validation_method,
                data_snapshot,
            },
            people: people.ok_or_else(|| missing("people"))?,
            convictions: convictions.ok_or_else(|| missing("convictions"))?,
            cohort: Cohort {
                periods,
                repeat_index: raw.cohort.repeat_index,
                include,
                exclude,
            },
            outcome: Outcome {
                measure: o.measure,
                unit: o.unit,
                sanctions: o.sanctions.iter().copied().collect(),
                window_months: window_months.ok_or_else(|| missing("window"))?,
                window_end: o.window.end,
                lag_months: lag_months.ok_or_else(|| missing("lag"))?,
                duplicates: o.duplicates,
                sanction_codes,
                exclude: outcome_exclude,
            },
            comparator: comparator.ok_or_else(|| missing("comparator"))?,
            threshold: Threshold {
                kind: t.kind,
                per_period,
                pooled,
                require_significance: t
                    .require_significance
                    .as_ref()
                    .is_some_and(|r| *r.get_ref()),
            },
            inference,
            pool,
            risk,
            risk_model,
            offence_categories,
            claims,
            payment: Payment {
                currency,
                basis: pay.basis,
                mechanism: mechanism.ok_or_else(|| missing("payment"))?,
                on_miss: on_miss.ok_or_else(|| missing("on_miss"))?,
            },
            sensitivity,
        })
    }

    /// The cohort periods, then the historical baseline period if there is one.
    pub fn all_periods(&self) -> Vec<(&Period, GroupRole)> {
        let mut v: Vec<(&Period, GroupRole)> = self
            .cohort
            .periods
            .iter()
            .map(|p| (p, GroupRole::Treated))
            .collect();
        match &self.comparator {
            Comparator::Historical { period } => v.push((period, GroupRole::Baseline)),
            Comparator::CaseMix(c) => v.push((&c.baseline, GroupRole::Baseline)),
            _ => {}
        }
        v
    }

    /// Every input: people, convictions, then the pool, risk model and offence
    /// categories when the spec has them.
    pub fn inputs(&self) -> Vec<&InputSpec> {
        let mut v = vec![&self.people, &self.convictions];
        v.extend(self.pool.as_ref());
        v.extend(self.risk_model.as_ref());
        v.extend(self.offence_categories.as_ref());
        v.extend(self.claims.as_ref());
        v
    }
}

/// Whether a group of people is the audited cohort or a historical baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupRole {
    Treated,
    Baseline,
    /// Eligible people of the comparison pool.
    Pool,
}

/// Reports `value`, `source` and `period` given with a comparator kind that does not
/// use them.
fn baseline_fields_unused(p: &mut Problems, rc: &raw::RawComparator, kind: &str, help: &str) {
    for (field, span) in [
        ("value", rc.value.as_ref().map(|v| v.span())),
        ("source", rc.source.as_ref().map(|v| v.span())),
        ("period", rc.period.as_ref().map(|v| v.name.span())),
    ] {
        if let Some(span) = span {
            p.at(
                span,
                format!("comparator.{field} is not used by kind \"{kind}\""),
                Some(help),
            );
        }
    }
}

/// Reports `at_risk_minor`, `unit` and `repay_minor`, which kinds `per-person` and
/// `case-mix` do not use, at their positions.
fn unused_payment_fields(p: &mut Problems, pay: &raw::RawPayment, kind: &str, help: &str) {
    for (field, span) in [
        (
            "at_risk_minor",
            pay.at_risk_minor.as_ref().map(|v| v.span()),
        ),
        ("unit", pay.unit.as_ref().map(|v| v.span())),
        ("repay_minor", pay.repay_minor.as_ref().map(|v| v.span())),
    ] {
        if let Some(span) = span {
            p.at(
                span,
                format!("payment.{field} is not used by kind \"{kind}\""),
                Some(help),
            );
        }
    }
}

fn check_price_bands(
    p: &mut Problems,
    bands: &Spanned<Vec<raw::RawPriceBand>>,
) -> Option<PersonPricing> {
    if bands.get_ref().is_empty() {
        p.at(
            bands.span(),
            "payment.price_bands is empty",
            Some("price_bands = [{ from = \"0\", price_minor = 100_000 }, { from = \"0.5\", price_minor = 300_000 }]"),
        );
        return None;
    }
    let mut out: Vec<(Ratio, i128)> = Vec::new();
    let mut ok = true;
    for (i, b) in bands.get_ref().iter().enumerate() {
        let Some(from) = p.decimal(&b.from, "payment.price_bands.from") else {
            ok = false;
            continue;
        };
        if i == 0 && from != Ratio::ZERO {
            p.at(
                b.from.span(),
                "the first price band must start at \"0\"",
                Some("every probability must fall in a band"),
            );
            ok = false;
        }
        if from.is_negative() || from >= Ratio::from_int(1) {
            p.at(
                b.from.span(),
                "a price band starts at 0 or more and below 1",
                None,
            );
            ok = false;
        }
        if out.last().is_some_and(|(prev, _)| from <= *prev) {
            p.at(
                b.from.span(),
                "price bands must be in ascending order of `from`, without repeats",
                None,
            );
            ok = false;
        }
        let price = *b.price_minor.get_ref();
        if price < 0 {
            p.at(
                b.price_minor.span(),
                "payment.price_bands.price_minor is negative",
                Some("amounts are written as positive minor units (pence)"),
            );
            ok = false;
        }
        out.push((from, i128::from(price)));
    }
    ok.then_some(PersonPricing::Bands(out))
}

fn check_case_mix(p: &mut Problems, raw: &RawSpec) -> Option<Comparator> {
    let rc = &raw.comparator;
    for (field, span) in [
        ("value", rc.value.as_ref().map(|v| v.span())),
        ("source", rc.source.as_ref().map(|v| v.span())),
    ] {
        if let Some(span) = span {
            p.at(
                span,
                format!("comparator.{field} is not used by kind \"case-mix-adjusted\""),
                Some("each area's baseline is computed from the data; remove it"),
            );
        }
    }
    if raw.risk.is_none() {
        p.nowhere("comparator kind \"case-mix-adjusted\" needs a [risk] section and the inputs risk_model and offence_categories: the baseline is adjusted by mean predicted risk", Some("see docs/spec.md, [risk]"));
    }
    if raw.outcome.measure != Measure::Binary {
        p.nowhere("comparator kind \"case-mix-adjusted\" judges the binary rate first (frequency per reoffender is paid behind the binary hurdle)", Some("set outcome.measure = \"binary\""));
    }
    let area_column = match &rc.area_column {
        Some(a) if a.get_ref().trim().is_empty() => {
            p.at(
                a.span(),
                "comparator.area_column is empty",
                Some("name the people column holding each person's area"),
            );
            None
        }
        Some(a) => Some(a.get_ref().clone()),
        None => {
            p.nowhere(
                "comparator kind \"case-mix-adjusted\" needs `area_column`",
                Some("area_column = \"area\": the people column naming each person's area"),
            );
            None
        }
    };
    let baseline = match &rc.period {
        Some(rp) => check_period(p, rp),
        None => {
            p.nowhere("comparator kind \"case-mix-adjusted\" needs `period`, the baseline period", Some("period = { name = \"baseline-2011\", from = \"2011-01-01\", to = \"2011-12-31\" }"));
            None
        }
    };
    Some(Comparator::CaseMix(CaseMix {
        baseline: baseline?,
        area_column: area_column?,
    }))
}

fn check_matched(p: &mut Problems, rc: &raw::RawComparator, has_pool: bool) -> Option<Comparator> {
    let unused = |p: &mut Problems, field: &str, span: Option<Range<usize>>| {
        if let Some(span) = span {
            p.at(
                span,
                format!("comparator.{field} is not used by kind \"matched\""),
                Some("a matched comparison is computed from the pool input"),
            );
        }
    };
    unused(p, "value", rc.value.as_ref().map(|v| v.span()));
    unused(p, "source", rc.source.as_ref().map(|v| v.span()));
    unused(p, "period", rc.period.as_ref().map(|v| v.name.span()));
    if !has_pool {
        p.nowhere("comparator kind \"matched\" needs an [inputs.pool] table: the national comparison pool", Some("[inputs.pool] path = \"...\", format = \"csv\", with the same columns as people"));
    }
    let mut covariates = Vec::new();
    match &rc.covariates {
        None => p.nowhere(
            "comparator kind \"matched\" needs `covariates`",
            Some("covariates = [{ column = \"age\", kind = \"numeric\" }, ...]"),
        ),
        Some(list) if list.is_empty() => p.nowhere(
            "comparator.covariates is empty",
            Some("name the pre-treatment covariates of the propensity model"),
        ),
        Some(list) => {
            let mut seen = BTreeSet::new();
            for c in list {
                let r = c.get_ref();
                if !seen.insert(r.column.clone()) {
                    p.at(
                        c.span(),
                        format!("covariate {:?} is listed twice", r.column),
                        None,
                    );
                }
                match (r.kind, &r.reference) {
                    (CovariateKind::Categorical, None) => p.at(c.span(), format!("categorical covariate {:?} needs a `reference` level", r.column), Some("the reference level is left out of the model, e.g. reference = \"violence\"")),
                    (CovariateKind::Numeric, Some(_)) => p.at(c.span(), format!("numeric covariate {:?} has a `reference`", r.column), Some("only categorical covariates have a reference level")),
                    _ => {}
                }
                covariates.push(Covariate {
                    column: r.column.clone(),
                    kind: r.kind,
                    reference: r.reference.clone(),
                });
            }
        }
    }
    let caliper_sd = rc.caliper_sd.as_ref().and_then(|c| {
        let r = p.decimal(c, "comparator.caliper_sd")?;
        if r <= Ratio::ZERO {
            p.at(c.span(), "comparator.caliper_sd must be above 0", Some("0.2 standard deviations of the logit is the usual caliper; leave it out for none"));
        }
        Some(r)
    });
    let ratio = match &rc.ratio {
        None => {
            p.nowhere(
                "comparator kind \"matched\" needs `ratio`",
                Some("comparisons per treated person, e.g. ratio = 1"),
            );
            None
        }
        Some(r) if !(1..=10).contains(r.get_ref()) => {
            p.at(
                r.span(),
                format!(
                    "comparator.ratio is {}; it must be between 1 and 10",
                    r.get_ref()
                ),
                None,
            );
            None
        }
        Some(r) => Some(*r.get_ref() as usize),
    };
    if rc.replacement.is_none() {
        p.nowhere(
            "comparator kind \"matched\" needs `replacement`",
            Some("replacement = true lets one comparison serve several treated people"),
        );
    }
    let balance_limit = match &rc.balance_limit {
        None => {
            p.nowhere("comparator kind \"matched\" needs `balance_limit`", Some("the largest acceptable |standardised mean difference| after matching, e.g. \"0.10\""));
            None
        }
        Some(b) => {
            let r = p.decimal(b, "comparator.balance_limit");
            if let Some(r) = r {
                if r <= Ratio::ZERO || r > Ratio::from_int(1) {
                    p.at(
                        b.span(),
                        "comparator.balance_limit must be above 0 and at most 1",
                        Some("0.05 good, 0.10 reasonable"),
                    );
                }
            }
            r
        }
    };
    let mut exact_seen = BTreeSet::new();
    for e in rc.exact.iter().flatten() {
        if e.trim().is_empty() {
            p.nowhere("comparator.exact names an empty column", None);
        } else if !exact_seen.insert(e.as_str()) {
            p.nowhere(format!("comparator.exact lists {e:?} twice"), None);
        } else if covariates.iter().any(|c| c.column == *e) {
            p.nowhere(
                format!("column {e:?} is both a covariate and an exact-matching column"),
                Some("match exactly on it, or model it, not both"),
            );
        }
    }
    let max_iterations = rc.max_iterations.unwrap_or(50);
    if max_iterations == 0 {
        p.nowhere("comparator.max_iterations is 0", Some("the default is 50"));
    }
    Some(Comparator::Matched(Matched {
        covariates,
        exact: rc.exact.clone().unwrap_or_default(),
        caliper_sd,
        ratio: ratio?,
        replacement: rc.replacement?,
        balance_limit: balance_limit?,
        max_iterations,
    }))
}

fn check_months(p: &mut Problems, v: &Spanned<i64>, what: &str, min: i64) -> Option<u32> {
    let m = *v.get_ref();
    if m < min || m > 120 {
        p.at(
            v.span(),
            format!("{what} is {m}; it must be between {min} and 120"),
            Some(if min == 1 {
                "a follow-up window of 0 months counts nothing; proven reoffending uses 12"
            } else {
                "the proven reoffending court lag is 6 months; 0 means none"
            }),
        );
        return None;
    }
    Some(m as u32)
}

fn check_period(p: &mut Problems, rp: &RawPeriod) -> Option<Period> {
    if rp.name.get_ref() == crate::decision::POOLED {
        p.at(
            rp.name.span(),
            "period name \"pooled\" is reserved for the pooled result",
            Some("choose another name, e.g. \"cohort-all\""),
        );
    }
    if !is_kebab_id(rp.name.get_ref()) {
        p.at(
            rp.name.span(),
            format!(
                "period name {:?} is not a kebab-case identifier",
                rp.name.get_ref()
            ),
            Some("e.g. \"cohort-1\" or \"baseline-2009\""),
        );
    }
    let from = p.date(&rp.from, "period start");
    let to = p.date(&rp.to, "period end");
    let (from, to) = (from?, to?);
    if from > to {
        p.at(
            rp.to.span(),
            format!("period {:?} ends before it starts", rp.name.get_ref()),
            Some("`from` and `to` are both inclusive; `to` must not be before `from`"),
        );
        return None;
    }
    Some(Period {
        name: rp.name.get_ref().clone(),
        from,
        to,
    })
}

fn number(p: &mut Problems, span: Range<usize>, n: &Number, what: &str) -> Option<Ratio> {
    match n {
        Number::Int(i) => Some(Ratio::from_int(i128::from(*i))),
        Number::Text(s) => match Ratio::parse_decimal(s) {
            Ok(r) => Some(r),
            Err(e) => {
                p.at(span, format!("{what}: {e}"), None);
                None
            }
        },
    }
}

fn check_rules(
    p: &mut Problems,
    rules: &[Spanned<RawRule>],
    what: &str,
    ids: &mut BTreeSet<String>,
) -> Vec<Rule> {
    let mut out = Vec::new();
    for spanned in rules {
        let span = spanned.span();
        let r = spanned.get_ref();
        if !is_kebab_id(&r.id) {
            p.at(
                span.clone(),
                format!("{what}: rule id {:?} is not a kebab-case identifier", r.id),
                Some("e.g. id = \"deported\""),
            );
        }
        if !ids.insert(r.id.clone()) {
            p.at(
                span.clone(),
                format!("{what}: rule id {:?} is used twice", r.id),
                Some("rule ids must be unique"),
            );
        }
        if r.reason.trim().is_empty() {
            p.at(
                span.clone(),
                format!("{what}: rule {:?} has an empty reason", r.id),
                Some("say why the rule exists: reviewers read it in the exclusion ledger"),
            );
        }
        if r.column.trim().is_empty() {
            p.at(
                span.clone(),
                format!("{what}: rule {:?} names no column", r.id),
                None,
            );
        }
        let mut conditions = Vec::new();
        let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<_>>();
        if let Some(v) = &r.equals {
            conditions.push(Some(Condition::Equals(v.clone())));
        }
        if let Some(v) = &r.not_equals {
            conditions.push(Some(Condition::NotEquals(v.clone())));
        }
        if let Some(v) = &r.in_ {
            conditions.push(Some(Condition::In(set(v))));
        }
        if let Some(v) = &r.not_in {
            conditions.push(Some(Condition::NotIn(set(v))));
        }
        if let Some(n) = &r.less_than {
            conditions.push(number(p, span.clone(), n, what).map(Condition::LessThan));
        }
        if let Some(n) = &r.at_most {
            conditions.push(number(p, span.clone(), n, what).map(Condition::AtMost));
        }
        if let Some(n) = &r.greater_than {
            conditions.push(number(p, span.clone(), n, what).map(Condition::GreaterThan));
        }
        if let Some(n) = &r.at_least {
            conditions.push(number(p, span.clone(), n, what).map(Condition::AtLeast));
        }
        if let Some(b) = r.is_missing {
            conditions.push(Some(Condition::IsMissing(b)));
        }
        if conditions.len() != 1 {
            p.at(
                span.clone(),
                format!("{what}: rule {:?} has {} conditions; it needs exactly one", r.id, conditions.len()),
                Some("use one of equals, not_equals, in, not_in, less_than, at_most, greater_than, at_least, is_missing"),
            );
            continue;
        }
        if let Some(Some(condition)) = conditions.pop() {
            out.push(Rule {
                id: r.id.clone(),
                column: r.column.clone(),
                reason: r.reason.clone(),
                condition,
            });
        }
    }
    out
}

/// JSON Schema of the spec format, as pretty JSON.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RawSpec);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}
