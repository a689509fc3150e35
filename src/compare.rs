//! Matched comparison groups: a propensity model of cohort membership, nearest-neighbour
//! matching on its logit, balance before and after, and the weighted comparison that the
//! cohort's outcome is judged against.
//!
//! The matching stage is **outcome-blind**: [`match_pool`] sees only the covariates, the
//! periods and the exact-matching columns of the cohort and the pool — it runs before any
//! conviction is read — and the provenance records that. Outcomes are attached afterwards
//! by [`weighted_totals`] and [`inference`].
//!
//! Everything a decision depends on stays exact: matching weights are integers over the
//! common denominator lcm(1..=k), so the comparison group's weighted counts, and the
//! comparator built from them, are exact ratios. The propensity model, balance and
//! confidence intervals are floating point, computed sequentially in a fixed order so
//! that they are bit-for-bit the same on every run and thread count.

use std::collections::{BTreeSet, HashMap};

use crate::cohort::{CohortResult, Member};
use crate::data::{DataError, LoadedInput};
use crate::exact::Ratio;
use crate::matching::{self, MatchOptions, Matching, Unit};
use crate::measures::Totals;
use crate::outcomes::PersonOutcome;
use crate::spec::{AuditSpec, CovariateKind, GroupRole, InputSpec, Matched, Measure};
use crate::stats::{self, LogitFit, LogitOptions};

/// Name of the intercept term.
pub const INTERCEPT: &str = "(intercept)";

/// Errors of the matching stage.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("propensity model: {0}")]
    Fit(String),
    #[error("matching: {0}")]
    Match(String),
    #[error("{input}: covariate {column:?} is categorical with reference level {reference:?}, which does not occur among eligible people; levels are: {levels}")]
    MissingReference {
        input: String,
        column: String,
        reference: String,
        levels: String,
    },
    #[error("inference: {0}")]
    Inference(String),
}

/// One row of the balance table.
#[derive(Debug, Clone)]
pub struct BalanceRow {
    pub term: String,
    pub treated_mean: f64,
    pub pool_mean: f64,
    pub smd_before: f64,
    pub variance_ratio_before: Option<f64>,
    pub comparison_mean: f64,
    pub smd_after: f64,
    pub variance_ratio_after: Option<f64>,
    pub within_limit: bool,
}

/// The outcome-blind part of a matched comparison.
#[derive(Debug, Clone)]
pub struct MatchedAnalysis {
    /// Model terms: the intercept, numeric covariates, and one indicator per
    /// non-reference level of each categorical covariate.
    pub terms: Vec<String>,
    pub fit: LogitFit,
    /// Logit of the score of each cohort member (`None` for members not in a cohort
    /// period, such as a historical baseline).
    pub treated_logit: Vec<Option<f64>>,
    /// Logit of the score of each eligible pool member.
    pub pool_logit: Vec<f64>,
    /// Standard deviation of the logit over everyone in the model.
    pub logit_sd: f64,
    /// Caliper on the logit scale, if any.
    pub caliper: Option<f64>,
    pub matching: Matching,
    /// Matching weight of each pool member, as a numerator over [`Self::denominator`].
    pub weights: Vec<u64>,
    pub denominator: u64,
    /// Whether each cohort member was matched.
    pub matched_treated: Vec<bool>,
    pub balance: Vec<BalanceRow>,
    /// Every |SMD| after matching within the spec's limit.
    pub balance_ok: bool,
}

/// Values of the model's terms for every unit of the model, the treated first: one
/// matrix, which the fit reads whole and each side reads its part of.
struct Design {
    /// Row-major, one row per unit, `width` columns.
    x: Vec<f64>,
    width: usize,
    /// Stratum (period and exact-matching values) of each unit, as an index into
    /// `names`: a few distinct strings, not one per unit.
    strata: Vec<u32>,
    names: Vec<String>,
    /// `names` by value, to number a new stratum; looked up only, never iterated.
    numbers: HashMap<String, u32>,
}

impl Design {
    fn with_capacity(units: usize, width: usize) -> Design {
        Design {
            x: Vec::with_capacity(units * width),
            width,
            strata: Vec::with_capacity(units),
            names: Vec::new(),
            numbers: HashMap::new(),
        }
    }

    /// Rows `range` of the matrix.
    fn rows(&self, range: std::ops::Range<usize>) -> &[f64] {
        &self.x[range.start * self.width..range.end * self.width]
    }

    fn stratum(&self, unit: usize) -> &str {
        &self.names[self.strata[unit] as usize]
    }

    fn push_stratum(&mut self, key: &str) {
        let number = match self.numbers.get(key) {
            Some(&n) => n,
            None => {
                let n = self.names.len() as u32;
                self.names.push(key.to_string());
                self.numbers.insert(key.to_string(), n);
                n
            }
        };
        self.strata.push(number);
    }
}

fn numeric_value(
    input: &LoadedInput,
    column: &str,
    row: usize,
    value: Option<&str>,
) -> Result<f64, DataError> {
    let text = value.map(str::trim_ascii).unwrap_or("");
    let parsed = Ratio::parse_decimal(text).ok().map(|r| r.to_f64());
    match parsed {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(input.bad_value(
            row,
            column,
            if text.is_empty() {
                "covariate value is missing".into()
            } else {
                format!("{text:?} is not a number")
            },
            "covariates must be present and numeric for every eligible person; exclude incomplete rows with an is_missing rule".into(),
        )),
    }
}

/// Levels of each categorical covariate among the eligible people of both inputs.
fn categorical_levels(
    m: &Matched,
    sides: &[(&InputSpec, &LoadedInput, &[usize])],
) -> Result<Vec<Vec<String>>, CompareError> {
    let mut all = Vec::new();
    for cov in &m.covariates {
        let mut levels = BTreeSet::new();
        if cov.kind == CovariateKind::Categorical {
            for (spec_input, input, rows) in sides {
                let col = input.text(spec_input.column(&cov.column))?;
                for &r in rows.iter() {
                    match col.get(r).map(str::trim_ascii).filter(|v| !v.is_empty()) {
                        Some(v) => {
                            levels.insert(v.to_string());
                        }
                        None => {
                            return Err(input
                                .bad_value(
                                    r,
                                    spec_input.column(&cov.column),
                                    "covariate value is missing".into(),
                                    "exclude incomplete rows with an is_missing rule".into(),
                                )
                                .into())
                        }
                    }
                }
            }
            let reference = cov.reference.clone().unwrap_or_default();
            if !levels.contains(&reference) {
                return Err(CompareError::MissingReference {
                    input: "people and pool".into(),
                    column: cov.column.clone(),
                    reference,
                    levels: levels.iter().cloned().collect::<Vec<_>>().join(", "),
                });
            }
            levels.remove(&reference);
        }
        all.push(levels.into_iter().collect());
    }
    Ok(all)
}

fn terms(m: &Matched, levels: &[Vec<String>]) -> Vec<String> {
    let mut t = vec![INTERCEPT.to_string()];
    for (cov, lv) in m.covariates.iter().zip(levels) {
        match cov.kind {
            CovariateKind::Numeric => t.push(cov.column.clone()),
            CovariateKind::Categorical => {
                for l in lv {
                    t.push(format!("{}={l}", cov.column));
                }
            }
        }
    }
    t
}

/// Appends the rows of `members` (of `cohort`, read from `input`) to the design.
fn design_rows(
    design: &mut Design,
    m: &Matched,
    levels: &[Vec<String>],
    spec_input: &InputSpec,
    input: &LoadedInput,
    cohort: &CohortResult,
    members: &[usize],
) -> Result<(), CompareError> {
    let mut columns = Vec::new();
    for cov in &m.covariates {
        columns.push(input.text(spec_input.column(&cov.column))?);
    }
    let mut exact = Vec::new();
    for e in &m.exact {
        exact.push((spec_input.column(e), input.text(spec_input.column(e))?));
    }
    let mut stratum = String::new();
    for &k in members {
        let member: &Member = &cohort.members[k];
        let row = member.person;
        let x = &mut design.x;
        x.push(1.0);
        for ((cov, col), lv) in m.covariates.iter().zip(&columns).zip(levels) {
            let value = col.get(row);
            match cov.kind {
                CovariateKind::Numeric => x.push(numeric_value(
                    input,
                    spec_input.column(&cov.column),
                    row,
                    value,
                )?),
                CovariateKind::Categorical => {
                    let v = value.map(str::trim_ascii).unwrap_or("");
                    for l in lv {
                        x.push(if l == v { 1.0 } else { 0.0 });
                    }
                }
            }
        }
        stratum.clear();
        stratum.push_str(&cohort.groups[member.group].period.name);
        for (name, col) in &exact {
            let v = col.get(row).map(str::trim_ascii).unwrap_or("");
            if v.is_empty() {
                return Err(input
                    .bad_value(
                        row,
                        name,
                        "exact-matching value is missing".into(),
                        "exclude incomplete rows with an is_missing rule".into(),
                    )
                    .into());
            }
            stratum.push('\u{1f}');
            stratum.push_str(v);
        }
        design.push_stratum(&stratum);
    }
    debug_assert_eq!(design.x.len(), design.strata.len() * design.width);
    Ok(())
}

fn column(x: &[f64], width: usize, j: usize) -> Vec<f64> {
    x.chunks(width).map(|r| r[j]).collect()
}

/// Fits the propensity model, matches, and checks balance. Reads no outcome.
pub fn match_pool(
    spec: &AuditSpec,
    m: &Matched,
    people: &LoadedInput,
    cohort: &CohortResult,
    pool_input: &InputSpec,
    pool: &LoadedInput,
    pool_cohort: &CohortResult,
) -> Result<MatchedAnalysis, CompareError> {
    let treated: Vec<usize> = (0..cohort.members.len())
        .filter(|&k| cohort.groups[cohort.members[k].group].role == GroupRole::Treated)
        .collect();
    let controls: Vec<usize> = (0..pool_cohort.members.len()).collect();
    let treated_rows: Vec<usize> = treated.iter().map(|&k| cohort.members[k].person).collect();
    let control_rows: Vec<usize> = controls
        .iter()
        .map(|&k| pool_cohort.members[k].person)
        .collect();
    let levels = categorical_levels(
        m,
        &[
            (&spec.people, people, &treated_rows),
            (pool_input, pool, &control_rows),
        ],
    )?;
    let terms = terms(m, &levels);
    let width = terms.len();
    let n = treated.len() + controls.len();
    let mut design = Design::with_capacity(n, width);
    design_rows(
        &mut design,
        m,
        &levels,
        &spec.people,
        people,
        cohort,
        &treated,
    )?;
    design_rows(
        &mut design,
        m,
        &levels,
        pool_input,
        pool,
        pool_cohort,
        &controls,
    )?;
    let (t_rows, c_rows) = (0..treated.len(), treated.len()..n);

    let mut y = vec![true; treated.len()];
    y.extend(std::iter::repeat_n(false, controls.len()));
    let fit = stats::fit_logistic(
        &design.x,
        n,
        width,
        &y,
        &terms,
        &LogitOptions {
            max_iterations: m.max_iterations,
            tolerance: 1e-10,
        },
    )
    .map_err(|e| CompareError::Fit(e.to_string()))?;
    drop(y);

    // Everyone's logit, the treated first; then split between the two sides.
    let mut logits_t: Vec<f64> = design
        .x
        .chunks(width)
        .map(|r| fit.linear_predictor(r))
        .collect();
    let (_, var) = stats::weighted_mean_var(&logits_t, &vec![1.0; n])
        .map_err(|e| CompareError::Fit(e.to_string()))?;
    let logits_c = logits_t.split_off(treated.len());
    let logit_sd = var.sqrt();
    let caliper = m.caliper_sd.map(|c| c.to_f64() * logit_sd);

    let t_units: Vec<Unit<'_>> = treated
        .iter()
        .enumerate()
        .map(|(i, &k)| Unit {
            index: k,
            id: cohort.person_id(&cohort.members[k]),
            logit: logits_t[i],
            stratum: design.stratum(i),
        })
        .collect();
    let c_units: Vec<Unit<'_>> = controls
        .iter()
        .enumerate()
        .map(|(i, &k)| Unit {
            index: k,
            id: pool_cohort.person_id(&pool_cohort.members[k]),
            logit: logits_c[i],
            stratum: design.stratum(treated.len() + i),
        })
        .collect();
    let matching = matching::match_nearest(
        &t_units,
        &c_units,
        &MatchOptions {
            ratio: m.ratio,
            caliper,
            replacement: m.replacement,
        },
    )
    .map_err(|e| CompareError::Match(e.to_string()))?;
    if matching.pairs.is_empty() {
        return Err(CompareError::Match(format!(
            "no cohort member has a comparison: {} of {} have none ({}); check the exact-matching columns, the caliper and the pool's periods",
            matching.unmatched.len(),
            treated.len(),
            matching
                .unmatched
                .iter()
                .map(|u| crate::evidence::unmatched_code(&u.reason))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let denominator = matching.weight_denominator;
    let mut weights = vec![0u64; pool_cohort.members.len()];
    for (idx, w) in &matching.control_weights {
        weights[*idx] = weight_numerator(w);
    }
    let mut matched_treated = vec![false; cohort.members.len()];
    for p in &matching.pairs {
        matched_treated[p.treated] = true;
    }
    let mut treated_logit = vec![None; cohort.members.len()];
    for (i, &k) in treated.iter().enumerate() {
        treated_logit[k] = Some(logits_t[i]);
    }

    // Balance of every model term, before (all eligible) and after (matched, weighted).
    let limit = m.balance_limit.to_f64();
    let mut balance = Vec::new();
    let t_matched: Vec<f64> = treated
        .iter()
        .map(|&k| if matched_treated[k] { 1.0 } else { 0.0 })
        .collect();
    let c_weights: Vec<f64> = controls.iter().map(|&k| weights[k] as f64).collect();
    let ones_t = vec![1.0; treated.len()];
    let ones_c = vec![1.0; controls.len()];
    let stat_err = |e: stats::StatsError| CompareError::Fit(e.to_string());
    for (j, term) in terms.iter().enumerate().skip(1) {
        let tv = column(design.rows(t_rows.clone()), width, j);
        let cv = column(design.rows(c_rows.clone()), width, j);
        let (tm, tvar) = stats::weighted_mean_var(&tv, &ones_t).map_err(stat_err)?;
        let (pm, pvar) = stats::weighted_mean_var(&cv, &ones_c).map_err(stat_err)?;
        let (tm2, tvar2) = stats::weighted_mean_var(&tv, &t_matched).map_err(stat_err)?;
        let (cm, cvar) = stats::weighted_mean_var(&cv, &c_weights).map_err(stat_err)?;
        let smd_after = stats::standardised_mean_difference(tm2, tvar2, cm, cvar);
        balance.push(BalanceRow {
            term: term.clone(),
            treated_mean: tm,
            pool_mean: pm,
            smd_before: stats::standardised_mean_difference(tm, tvar, pm, pvar),
            variance_ratio_before: stats::variance_ratio(tvar, pvar),
            comparison_mean: cm,
            smd_after,
            variance_ratio_after: stats::variance_ratio(tvar2, cvar),
            within_limit: smd_after.abs() <= limit,
        });
    }
    let balance_ok = balance.iter().all(|b| b.within_limit);
    Ok(MatchedAnalysis {
        terms,
        fit,
        treated_logit,
        pool_logit: logits_c,
        logit_sd,
        caliper,
        matching,
        weights,
        denominator,
        matched_treated,
        balance,
        balance_ok,
    })
}

fn weight_numerator(w: &matching::Weight) -> u64 {
    w.0
}

/// Weighted counts of the matched comparison group of one period (or all periods).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeightedTotals {
    /// Σ weights (numerators over the common denominator).
    pub weight: u128,
    pub reoffenders: u128,
    pub offences: u128,
    pub events: u128,
    pub days_to_first_sum: u128,
    /// Comparison people with a positive weight.
    pub people: u64,
}

impl WeightedTotals {
    /// The weighted measure as an exact ratio.
    pub fn measure(&self, measure: Measure, unit: crate::spec::CountingUnit) -> Option<Ratio> {
        let units = match unit {
            crate::spec::CountingUnit::Offence => self.offences,
            crate::spec::CountingUnit::ConvictionEvent => self.events,
        };
        let r = |n: u128, d: u128| Ratio::new(i128::try_from(n).ok()?, i128::try_from(d).ok()?);
        match measure {
            Measure::Binary => r(self.reoffenders, self.weight),
            Measure::FrequencyPerOffender => r(units, self.weight),
            Measure::FrequencyPerReoffender => r(units, self.reoffenders),
            Measure::DaysToFirst => r(self.days_to_first_sum, self.reoffenders),
        }
    }
}

/// Weighted totals of the comparison group for the pool members `in_scope` selects.
pub fn weighted_totals(
    analysis: &MatchedAnalysis,
    pool_cohort: &CohortResult,
    pool_outcomes: &[PersonOutcome],
    in_scope: impl Fn(usize) -> bool,
) -> WeightedTotals {
    let mut t = WeightedTotals::default();
    for (k, (member, outcome)) in pool_cohort.members.iter().zip(pool_outcomes).enumerate() {
        let w = u128::from(analysis.weights[k]);
        if w == 0 || !in_scope(member.group) {
            continue;
        }
        t.weight += w;
        t.people += 1;
        t.offences += w * u128::from(outcome.offences);
        t.events += w * u128::from(outcome.events);
        if let Some(first) = outcome.first_offence {
            t.reoffenders += w;
            t.days_to_first_sum +=
                w * u128::from(u64::try_from(first - member.index_date).unwrap_or(0));
        }
    }
    t
}

/// Totals of the matched cohort members in scope (treated people without a match are
/// left out of the comparison, and reported).
pub fn matched_treated_totals(
    analysis: &MatchedAnalysis,
    cohort: &CohortResult,
    outcomes: &[PersonOutcome],
    in_scope: impl Fn(usize) -> bool,
) -> Totals {
    let mut t = Totals::default();
    for (k, (member, outcome)) in cohort.members.iter().zip(outcomes).enumerate() {
        if !analysis.matched_treated[k] || !in_scope(member.group) {
            continue;
        }
        t.people += 1;
        t.offences += outcome.offences;
        t.events += outcome.events;
        if let Some(first) = outcome.first_offence {
            t.reoffenders += 1;
            t.days_to_first_sum += u64::try_from(first - member.index_date).unwrap_or(0);
        }
    }
    t
}

/// Uncertainty of one treated-versus-comparison difference.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceResult {
    pub method: crate::spec::InferenceMethod,
    pub confidence: f64,
    pub difference: f64,
    pub std_error: f64,
    pub lower: f64,
    pub upper: f64,
    pub p_value: f64,
    /// Welch degrees of freedom.
    pub df: Option<f64>,
    /// p ≤ 1 − confidence (and the Justice Data Lab conditions, when asked for).
    pub significant: bool,
    /// Why a difference is not significant under the Justice Data Lab rule, if it is not.
    pub jdl_note: Option<String>,
}

/// Per-person value of the measure, and whether the person enters that measure's mean
/// (per-reoffender measures use reoffenders only).
fn person_value(
    measure: Measure,
    unit: crate::spec::CountingUnit,
    o: &PersonOutcome,
    index: crate::dates::Day,
) -> Option<f64> {
    match measure {
        Measure::Binary => Some(if o.reoffended() { 1.0 } else { 0.0 }),
        Measure::FrequencyPerOffender => Some(o.units(unit) as f64),
        Measure::FrequencyPerReoffender => o.reoffended().then_some(o.units(unit) as f64),
        Measure::DaysToFirst => o.first_offence.map(|d| f64::from(d - index)),
    }
}

/// Confidence interval, p-value and significance of one scope's difference.
#[allow(clippy::too_many_arguments)]
pub fn inference(
    spec: &AuditSpec,
    analysis: &MatchedAnalysis,
    cohort: &CohortResult,
    outcomes: &[PersonOutcome],
    pool_cohort: &CohortResult,
    pool_outcomes: &[PersonOutcome],
    in_scope: impl Fn(usize) -> bool + Copy,
    in_pool_scope: impl Fn(usize) -> bool + Copy,
    treated_rate: f64,
) -> Result<InferenceResult, CompareError> {
    let inf = spec
        .inference
        .as_ref()
        .ok_or_else(|| CompareError::Inference("no [inference] section".into()))?;
    let o = &spec.outcome;
    let confidence = inf.confidence.to_f64();
    let alpha = 1.0 - confidence;
    let err = |e: stats::StatsError| CompareError::Inference(e.to_string());
    let mut treated_values = Vec::new();
    let mut treated_n = 0usize;
    for (k, (member, outcome)) in cohort.members.iter().zip(outcomes).enumerate() {
        if analysis.matched_treated[k] && in_scope(member.group) {
            treated_n += 1;
            if let Some(v) = person_value(o.measure, o.unit, outcome, member.index_date) {
                treated_values.push(v);
            }
        }
    }
    let mut comparison = Vec::new();
    let mut weights = Vec::new();
    for (k, (member, outcome)) in pool_cohort.members.iter().zip(pool_outcomes).enumerate() {
        let w = analysis.weights[k];
        if w > 0 && in_pool_scope(member.group) {
            if let Some(v) = person_value(o.measure, o.unit, outcome, member.index_date) {
                comparison.push(v);
                weights.push(w as f64 / analysis.denominator as f64);
            }
        }
    }
    let (difference, std_error, lower, upper, p_value, df) = match inf.method {
        crate::spec::InferenceMethod::Welch => {
            let w =
                stats::welch(&treated_values, &comparison, &weights, confidence).map_err(err)?;
            (
                w.difference,
                w.std_error,
                w.lower,
                w.upper,
                w.p_value,
                Some(w.df),
            )
        }
        crate::spec::InferenceMethod::Bootstrap => {
            // Each matched treated person with their matched set, in member order.
            let mut by_treated: std::collections::BTreeMap<usize, Vec<(f64, f64)>> =
                std::collections::BTreeMap::new();
            for pair in &analysis.matching.pairs {
                let member = &cohort.members[pair.treated];
                if !in_scope(member.group) {
                    continue;
                }
                let c = &pool_cohort.members[pair.control];
                let v = person_value(
                    o.measure,
                    o.unit,
                    &pool_outcomes[pair.control],
                    c.index_date,
                )
                .unwrap_or(0.0);
                by_treated.entry(pair.treated).or_default().push((v, 1.0));
            }
            let sets: Vec<stats::MatchedSet> = by_treated
                .into_iter()
                .map(|(t, comps)| {
                    let m = comps.len() as f64;
                    let member = &cohort.members[t];
                    stats::MatchedSet {
                        treated: person_value(o.measure, o.unit, &outcomes[t], member.index_date)
                            .unwrap_or(0.0),
                        comparisons: comps.into_iter().map(|(v, _)| (v, 1.0 / m)).collect(),
                    }
                })
                .collect();
            let b = stats::bootstrap_difference(&sets, inf.replicates, inf.seed, confidence)
                .map_err(err)?;
            (b.estimate, b.std_error, b.lower, b.upper, b.p_value, None)
        }
    };
    let mut significant = p_value <= alpha;
    let mut jdl_note = None;
    if inf.jdl_rule {
        let v = stats::jdl_significant(p_value, alpha, treated_n, treated_rate);
        significant = v.significant;
        jdl_note = v.note;
    }
    Ok(InferenceResult {
        method: inf.method,
        confidence,
        difference,
        std_error,
        lower,
        upper,
        p_value,
        df,
        significant,
        jdl_note,
    })
}
