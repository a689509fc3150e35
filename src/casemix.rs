//! Case-mix-adjusted baselines with a binary hurdle: the Transforming Rehabilitation
//! payment mechanism.
//!
//! Every person belongs to an area (a people column). Each area's cohort in each cohort
//! period (a quarter, say) is compared with the same area's baseline-period cohort:
//!
//! - **binary**: the cohort's rate `k / n` against the area's baseline rate moved by the
//!   difference in mean predicted risk, `adjusted = k₀ / n₀ + (r̄ − r̄₀)`, where `r̄` is the
//!   mean risk-model probability (in millionths, so exact) of the scored people of the
//!   cohort and `r̄₀` of the baseline cohort. The threshold is judged on
//!   `adjusted − rate`, with Welch's test of the cohort's 0/1 outcomes against the
//!   baseline's outcomes shifted by the same adjustment;
//! - **frequency**: reoffences per reoffender against the area's unadjusted baseline
//!   frequency, with Welch's test over reoffenders' counts. It is paid only where the
//!   binary target is met (the binary hurdle), and only for a fall (significant, when the
//!   threshold requires significance).
//!
//! Money: `price_minor` per reoffender below the adjusted baseline (`(adjusted − rate) ×
//! n`), `frequency_price_minor` per reoffence below the baseline frequency (`(f₀ − f) ×
//! k`), each rounded toward zero; with `on_rise = "penalty"` a binary rise beyond the
//! threshold costs `price_minor` per reoffender above the adjusted baseline. The year's
//! total is the sum over areas and periods; a `cap_minor` limits it, with one line
//! recording the cut.
//!
//! Everyone eligible counts in the rates (whole-cohort measurement); the mean risk is over
//! the scored people, and the unscored are reported per cell.

use std::collections::BTreeMap;

use crate::cohort::CohortResult;
use crate::compare::InferenceResult;
use crate::data::{DataError, LoadedInput};
use crate::decision::{self, DecisionError, Evaluation, PaymentLine};
use crate::exact::{minor_to_decimal, Ratio};
use crate::outcomes::PersonOutcome;
use crate::predicted::{RiskScores, MICRO};
use crate::spec::{AuditSpec, CaseMix, CountingUnit, GroupRole, Measure, Mechanism};

/// Scope name of the line that cuts the year's total to the cap.
pub const CAP_SCOPE: &str = "annual-cap";

/// Each cohort member's area.
#[derive(Debug, Clone)]
pub struct Areas {
    /// Area names, sorted.
    pub names: Vec<String>,
    /// Index into `names` of each cohort member, in member order.
    pub of_member: Vec<usize>,
}

/// Reads every cohort member's area from the people input. A member without an area is
/// an error naming the row: an exclusion rule must say what happens to such people.
pub fn assign_areas(
    spec: &AuditSpec,
    case_mix: &CaseMix,
    people: &LoadedInput,
    cohort: &CohortResult,
) -> Result<Areas, DataError> {
    let column = spec.people.column(&case_mix.area_column);
    let text = people.text(column)?;
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut raw = Vec::with_capacity(cohort.members.len());
    for m in &cohort.members {
        match text.get(m.person).map(str::trim).filter(|v| !v.is_empty()) {
            Some(area) => {
                index.entry(area).or_insert(0);
                raw.push(area);
            }
            None => {
                return Err(people.bad_value(
                    m.person,
                    column,
                    "the area is missing for a person in the cohort".into(),
                    format!(
                        "fill in the area, or exclude such people with a cohort rule {{ column = \"{}\", is_missing = true, reason = \"...\" }}",
                        case_mix.area_column
                    ),
                ))
            }
        }
    }
    for (i, v) in index.values_mut().enumerate() {
        *v = i;
    }
    let of_member = raw.iter().map(|a| index[a]).collect();
    Ok(Areas {
        names: index.keys().map(|s| s.to_string()).collect(),
        of_member,
    })
}

/// Counts of one area in one period (cohort or baseline).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellCounts {
    pub people: u64,
    pub reoffenders: u64,
    /// Counted units (offences or conviction events, as the spec's unit says).
    pub units: u64,
    /// People with a risk score.
    pub scored: u64,
    /// Sum of the scored people's probabilities, in millionths.
    pub risk_sum_micro: i128,
    /// Each reoffender's counted units, in member order (for the frequency test).
    unit_counts: Vec<u64>,
}

impl CellCounts {
    /// reoffenders / people.
    pub fn rate(&self) -> Option<Ratio> {
        Ratio::new(i128::from(self.reoffenders), i128::from(self.people))
    }

    /// Mean probability of the scored people.
    pub fn mean_risk(&self) -> Option<Ratio> {
        Ratio::new(self.risk_sum_micro, i128::from(self.scored) * MICRO)
    }

    /// Counted units per reoffender.
    pub fn frequency(&self) -> Option<Ratio> {
        Ratio::new(i128::from(self.units), i128::from(self.reoffenders))
    }

    /// The 0/1 outcomes, reoffenders first, each moved by `shift`.
    fn binary_values(&self, shift: f64) -> Vec<f64> {
        let k = self.reoffenders as usize;
        let n = self.people as usize;
        let mut v = vec![1.0 + shift; k];
        v.resize(n, shift);
        v
    }
}

/// One area in one cohort period, compared with the area's baseline.
#[derive(Debug, Clone)]
pub struct Cell {
    pub area: String,
    pub period: String,
    /// `area/period`: the scope of the evaluation and the payment line.
    pub scope: String,
    pub cohort: CellCounts,
    pub baseline: CellCounts,
    /// Cohort people without a risk score (measured, but not in the mean risk).
    pub unscored: u64,
    pub rate: Ratio,
    pub baseline_rate: Ratio,
    pub mean_risk: Ratio,
    pub baseline_mean_risk: Ratio,
    /// mean_risk − baseline_mean_risk.
    pub adjustment: Ratio,
    /// baseline_rate + adjustment.
    pub adjusted_baseline: Ratio,
    /// Welch's test of the binary outcomes; `None` when it is undefined (e.g. no
    /// variation in either group), which counts as not significant.
    pub binary_inference: Option<InferenceResult>,
    /// A binary rise beyond the threshold (and significant, when required).
    pub binary_rise: bool,
    pub frequency: Option<Ratio>,
    pub baseline_frequency: Option<Ratio>,
    pub frequency_inference: Option<InferenceResult>,
    /// The frequency fell (significantly, when required): paid if the hurdle is passed.
    pub frequency_fell: bool,
    /// Reoffenders below (positive) or above the adjusted baseline: (adjusted − rate) × n.
    pub reoffenders_avoided: Ratio,
    /// Reoffences below (positive) or above the baseline frequency: (f₀ − f) × k.
    pub reoffences_avoided: Option<Ratio>,
    pub binary_minor: i128,
    pub frequency_minor: i128,
}

/// Totals of one area, or of all areas, over the year (all cohort periods).
#[derive(Debug, Clone)]
pub struct Summary {
    /// An area name, or `all areas`.
    pub area: String,
    pub cohort: CellCounts,
    pub baseline: CellCounts,
    pub amount_minor: i128,
}

/// The whole case-mix comparison.
#[derive(Debug, Clone)]
pub struct CaseMixResult {
    pub area_column: String,
    pub cells: Vec<Cell>,
    /// Per area, then all areas together.
    pub summaries: Vec<Summary>,
    /// The year's total before the cap.
    pub uncapped_minor: i128,
}

fn undefined(scope: &str, what: &str, why: String) -> DecisionError {
    DecisionError::Undefined {
        scope: scope.to_string(),
        what: what.to_string(),
        why,
    }
}

/// Welch's test of `treated` against equally weighted `baseline`, as an inference result.
fn welch(
    scope: &str,
    what: &str,
    treated: &[f64],
    baseline: &[f64],
    confidence: f64,
) -> Result<InferenceResult, DecisionError> {
    let weights = vec![1.0; baseline.len()];
    let w = crate::stats::welch(treated, baseline, &weights, confidence)
        .map_err(|e| undefined(scope, what, e.to_string()))?;
    Ok(InferenceResult {
        method: crate::spec::InferenceMethod::Welch,
        confidence,
        difference: w.difference,
        std_error: w.std_error,
        lower: w.lower,
        upper: w.upper,
        p_value: w.p_value,
        df: Some(w.df),
        significant: w.p_value <= 1.0 - confidence,
        jdl_note: None,
    })
}

/// Counts per (area, group) over the cohort's members.
fn count_cells(
    areas: &Areas,
    cohort: &CohortResult,
    outcomes: &[PersonOutcome],
    scores: &RiskScores,
    unit: CountingUnit,
) -> BTreeMap<(usize, usize), CellCounts> {
    let mut cells: BTreeMap<(usize, usize), CellCounts> = BTreeMap::new();
    for (i, m) in cohort.members.iter().enumerate() {
        let c = cells.entry((areas.of_member[i], m.group)).or_default();
        let o = &outcomes[i];
        c.people += 1;
        if o.reoffended() {
            let units = match unit {
                CountingUnit::Offence => o.offences,
                CountingUnit::ConvictionEvent => o.events,
            };
            c.reoffenders += 1;
            c.units += units;
            c.unit_counts.push(units);
        }
        if let Some(micro) = scores.people.get(i).and_then(|r| r.micro) {
            c.scored += 1;
            c.risk_sum_micro += micro;
        }
    }
    cells
}

/// Compares every area in every cohort period with the area's baseline, evaluates the
/// binary target and prices each cell. Returns the result, one binary evaluation per
/// cell, and the payment lines (one per cell, then the cap line when the cap binds).
pub fn compare(
    spec: &AuditSpec,
    areas: &Areas,
    cohort: &CohortResult,
    outcomes: &[PersonOutcome],
    scores: &RiskScores,
) -> Result<(CaseMixResult, Vec<Evaluation>, Vec<PaymentLine>), DecisionError> {
    let crate::spec::Comparator::CaseMix(case_mix) = &spec.comparator else {
        return Err(undefined(
            "case-mix",
            "comparison",
            "the spec's comparator is not case-mix-adjusted".into(),
        ));
    };
    let Mechanism::CaseMix {
        price_minor,
        frequency_price_minor,
        cap_minor,
        penalty,
    } = spec.payment.mechanism
    else {
        return Err(undefined(
            "case-mix",
            "payment",
            "the spec's payment is not kind \"case-mix\"".into(),
        ));
    };
    let th = &spec.threshold;
    let minimum = th.per_period.unwrap_or(Ratio::ZERO);
    let confidence = spec
        .inference
        .as_ref()
        .map(|i| i.confidence.to_f64())
        .unwrap_or(0.95);
    let cur = &spec.payment.currency;
    let counts = count_cells(areas, cohort, outcomes, scores, spec.outcome.unit);
    let baseline_group = cohort
        .groups
        .iter()
        .position(|g| g.role == GroupRole::Baseline)
        .unwrap_or(usize::MAX);
    let empty = CellCounts::default();

    let mut cells = Vec::new();
    let mut evaluations = Vec::new();
    let mut lines = Vec::new();
    for (a, area) in areas.names.iter().enumerate() {
        let base = counts.get(&(a, baseline_group)).unwrap_or(&empty);
        for (g, group) in cohort.groups.iter().enumerate() {
            if group.role != GroupRole::Treated {
                continue;
            }
            let Some(c) = counts.get(&(a, g)) else {
                continue;
            };
            let scope = format!("{area}/{}", group.period.name);
            let base_name = format!("{area}/{}", case_mix.baseline.name);
            let rate = c
                .rate()
                .ok_or_else(|| undefined(&scope, "binary reoffending rate", "no people".into()))?;
            let baseline_rate = base.rate().ok_or_else(|| {
                undefined(
                    &base_name,
                    "baseline binary reoffending rate",
                    format!(
                        "area {area:?} has no eligible people in the baseline period: it cannot be compared"
                    ),
                )
            })?;
            let mean_risk = c.mean_risk().ok_or_else(|| {
                undefined(
                    &scope,
                    "mean predicted risk",
                    "nobody could be scored".into(),
                )
            })?;
            let baseline_mean_risk = base.mean_risk().ok_or_else(|| {
                undefined(
                    &base_name,
                    "baseline mean predicted risk",
                    "nobody could be scored".into(),
                )
            })?;
            let adjustment = mean_risk.minus(baseline_mean_risk);
            let adjusted_baseline = baseline_rate.plus(adjustment);
            let shift = adjustment.to_f64();
            let binary_inference = welch(
                &scope,
                "binary test",
                &c.binary_values(0.0),
                &base.binary_values(shift),
                confidence,
            )
            .ok();
            let significant = binary_inference.as_ref().is_some_and(|i| i.significant);
            let mut e = decision::evaluate(
                &scope,
                c.people,
                Measure::Binary,
                rate,
                adjusted_baseline,
                th.kind,
                minimum,
            )?;
            e.significant = Some(significant);
            if th.require_significance && !significant {
                e.met = false;
            }
            let significant_enough = !th.require_significance || significant;
            let rise = Ratio::ZERO.minus(e.improvement);
            let binary_rise = rise > Ratio::ZERO && rise >= e.required && significant_enough;
            let people = Ratio::from_int(i128::from(c.people));
            let reoffenders_avoided = e.improvement.times(people);

            let frequency = c.frequency();
            let baseline_frequency = base.frequency();
            let values =
                |x: &CellCounts| -> Vec<f64> { x.unit_counts.iter().map(|&u| u as f64).collect() };
            let frequency_inference = match (frequency, baseline_frequency) {
                (Some(_), Some(_)) if c.reoffenders >= 2 && base.reoffenders >= 2 => welch(
                    &scope,
                    "frequency test",
                    &values(c),
                    &values(base),
                    confidence,
                )
                .ok(),
                _ => None,
            };
            let reoffences_avoided = match (frequency, baseline_frequency) {
                (Some(f), Some(f0)) => Some(
                    f0.minus(f)
                        .times(Ratio::from_int(i128::from(c.reoffenders))),
                ),
                _ => None,
            };
            let frequency_fell = reoffences_avoided.is_some_and(|r| r > Ratio::ZERO)
                && (!th.require_significance
                    || frequency_inference.as_ref().is_some_and(|i| i.significant));

            let price = Ratio::from_int(price_minor);
            let binary_minor = if e.met {
                reoffenders_avoided.times(price).trunc().max(0)
            } else if binary_rise && penalty {
                -rise.times(people).times(price).trunc().max(0)
            } else {
                0
            };
            let frequency_minor = match (frequency_price_minor, reoffences_avoided) {
                (Some(fp), Some(r)) if e.met && frequency_fell => {
                    r.times(Ratio::from_int(fp)).trunc().max(0)
                }
                _ => 0,
            };
            lines.push(PaymentLine {
                scope: scope.clone(),
                met: e.met,
                units: Some(reoffenders_avoided),
                uncapped_minor: None,
                amount_minor: binary_minor + frequency_minor,
                explanation: explain(
                    cur,
                    &e,
                    binary_rise,
                    penalty,
                    reoffenders_avoided,
                    binary_minor,
                    frequency_price_minor,
                    reoffences_avoided,
                    frequency_fell,
                    frequency_minor,
                ),
            });
            evaluations.push(e);
            cells.push(Cell {
                area: area.clone(),
                period: group.period.name.clone(),
                scope,
                cohort: c.clone(),
                baseline: base.clone(),
                unscored: c.people - c.scored,
                rate,
                baseline_rate,
                mean_risk,
                baseline_mean_risk,
                adjustment,
                adjusted_baseline,
                binary_inference,
                binary_rise,
                frequency,
                baseline_frequency,
                frequency_inference,
                frequency_fell,
                reoffenders_avoided,
                reoffences_avoided,
                binary_minor,
                frequency_minor,
            });
        }
    }

    let uncapped_minor: i128 = lines.iter().map(|l| l.amount_minor).sum();
    if let Some(cap) = cap_minor {
        if uncapped_minor > cap {
            lines.push(PaymentLine {
                scope: CAP_SCOPE.to_string(),
                met: true,
                units: None,
                uncapped_minor: Some(uncapped_minor),
                amount_minor: cap - uncapped_minor,
                explanation: format!(
                    "the year's total of {cur} {} is cut to the cap of {cur} {}",
                    minor_to_decimal(uncapped_minor),
                    minor_to_decimal(cap)
                ),
            });
        }
    }

    let mut summaries = Vec::new();
    let mut all = Summary {
        area: "all areas".into(),
        cohort: CellCounts::default(),
        baseline: CellCounts::default(),
        amount_minor: lines.iter().map(|l| l.amount_minor).sum(),
    };
    for (a, area) in areas.names.iter().enumerate() {
        let mut s = Summary {
            area: area.clone(),
            cohort: CellCounts::default(),
            baseline: counts
                .get(&(a, baseline_group))
                .cloned()
                .unwrap_or_default(),
            amount_minor: 0,
        };
        s.baseline.unit_counts.clear();
        for cell in cells.iter().filter(|c| c.area == *area) {
            add(&mut s.cohort, &cell.cohort);
            s.amount_minor += cell.binary_minor + cell.frequency_minor;
        }
        add(&mut all.cohort, &s.cohort);
        add(&mut all.baseline, &s.baseline);
        summaries.push(s);
    }
    summaries.push(all);
    Ok((
        CaseMixResult {
            area_column: case_mix.area_column.clone(),
            cells,
            summaries,
            uncapped_minor,
        },
        evaluations,
        lines,
    ))
}

fn pct(r: Ratio) -> String {
    format!("{}%", r.times(Ratio::from_int(100)).to_fixed(1))
}

impl CaseMixResult {
    /// The verdict's table: one line per area and period, then the year per area and
    /// over all areas.
    pub fn table(&self, currency: &str) -> String {
        let mut s = format!(
            "  {:<20} {:>6} {:>6} {:>9} {:>7} {:>7} {:>8}  {:<17} {:>11} {:>7}  {currency}\n",
            "area/period",
            "people",
            "rate",
            "baseline",
            "risk",
            "adj.",
            "p",
            "binary",
            "per reoff.",
            "(base)"
        );
        for c in &self.cells {
            let decision = if c.binary_minor > 0 {
                "fall, paid"
            } else if c.binary_rise {
                "rise"
            } else {
                "no payable change"
            };
            let f = |r: Option<Ratio>| r.map(|r| r.to_fixed(2)).unwrap_or_else(|| "-".into());
            let p = c
                .binary_inference
                .as_ref()
                .map(|i| format!("{:.4}", i.p_value))
                .unwrap_or_else(|| "-".into());
            s += &format!(
                "  {:<20} {:>6} {:>6} {:>9} {:>7} {:>7} {:>8}  {:<17} {:>11} {:>7}  {}\n",
                c.scope,
                c.cohort.people,
                pct(c.rate),
                pct(c.baseline_rate),
                format!(
                    "{}{}",
                    if c.adjustment.is_negative() { "" } else { "+" },
                    c.adjustment.times(Ratio::from_int(100)).to_fixed(1)
                ),
                pct(c.adjusted_baseline),
                p,
                decision,
                format!(
                    "{}{}",
                    f(c.frequency),
                    if c.frequency_fell { "*" } else { " " }
                ),
                f(c.baseline_frequency),
                minor_to_decimal(c.binary_minor + c.frequency_minor)
            );
        }
        s += "  (* frequency fell, significantly where the threshold requires it; paid only behind the binary hurdle)\n";
        for y in &self.summaries {
            let f = |x: &CellCounts| {
                x.frequency()
                    .map(|r| r.to_fixed(1))
                    .unwrap_or_else(|| "-".into())
            };
            s += &format!(
                "  year, {:<14} {:>6} {:>6} {:>9}   reoffences per reoffender {} (baseline {})  {}\n",
                y.area,
                y.cohort.people,
                y.cohort.rate().map(pct).unwrap_or_default(),
                y.baseline.rate().map(pct).unwrap_or_default(),
                f(&y.cohort),
                f(&y.baseline),
                minor_to_decimal(y.amount_minor)
            );
        }
        s
    }
}

/// Adds the counts of `b` to `a` (not the per-reoffender list).
fn add(a: &mut CellCounts, b: &CellCounts) {
    a.people += b.people;
    a.reoffenders += b.reoffenders;
    a.units += b.units;
    a.scored += b.scored;
    a.risk_sum_micro += b.risk_sum_micro;
}

#[allow(clippy::too_many_arguments)]
fn explain(
    cur: &str,
    e: &Evaluation,
    rise: bool,
    penalty: bool,
    reoffenders_avoided: Ratio,
    binary_minor: i128,
    frequency_price: Option<i128>,
    reoffences_avoided: Option<Ratio>,
    frequency_fell: bool,
    frequency_minor: i128,
) -> String {
    let money = |m: i128| format!("{cur} {}", minor_to_decimal(m));
    let binary = if e.met {
        format!(
            "binary target met: {} reoffenders below the adjusted baseline earn {}",
            reoffenders_avoided.to_fixed(4),
            money(binary_minor)
        )
    } else if rise && penalty {
        format!(
            "binary rate rose: {} reoffenders above the adjusted baseline cost {}",
            Ratio::ZERO.minus(reoffenders_avoided).to_fixed(4),
            money(-binary_minor)
        )
    } else if rise {
        "binary rate rose; no penalty under this contract".to_string()
    } else {
        "binary target not met: nothing is paid".to_string()
    };
    let frequency = match (frequency_price, reoffences_avoided) {
        (None, _) => String::new(),
        (Some(_), None) => "; no frequency (no reoffenders)".to_string(),
        (Some(_), Some(r)) if e.met && frequency_fell => format!(
            "; frequency fell: {} reoffences avoided earn {}",
            r.to_fixed(4),
            money(frequency_minor)
        ),
        (Some(_), Some(_)) if !e.met && frequency_fell => {
            "; frequency fell, but the binary hurdle is not passed: not paid".to_string()
        }
        (Some(_), Some(_)) => "; frequency did not fall (significantly): not paid".to_string(),
    };
    format!("{binary}{frequency}")
}
