//! The evidence files' bytes: `results.json` and the tables under `tables/`.
//!
//! Everything a bundle says about the audit is serialised here and nowhere else, so the
//! bytes are the same on every run: rows sorted on a total key, counts as integers,
//! rates as exact fractions with a fixed-precision decimal beside them, money as integer
//! minor units, and nothing from the clock, the host or the file system's absolute paths.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::cohort::ExclusionCount;
use crate::dates::{format_day, push_day};
use crate::decision::{Evaluation, POOLED};
use crate::exact::{minor_to_decimal, Ratio};
use crate::measures::{measure_name, Totals};
use crate::outcomes::Disposition;
use crate::pipeline::Audit;
use crate::spec::{
    Comparator, Contract, CountingUnit, DuplicatePolicy, GroupRole, InputFormat, Measure,
    PaymentBasis, Sanction, ThresholdKind, WindowEnd,
};

/// Decimal places of every rate written as a decimal string.
pub const RATE_PLACES: u32 = 6;

/// Version of the results.json layout.
pub const RESULTS_VERSION: u32 = 1;

/// An exact value and its fixed-precision decimal.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Value {
    /// Normalised fraction, e.g. `"523/1000"`, or an integer.
    pub exact: String,
    /// Rounded half away from zero to [`RATE_PLACES`] places.
    pub value: String,
}

impl From<Ratio> for Value {
    fn from(r: Ratio) -> Self {
        Value {
            exact: r.to_string(),
            value: r.to_fixed(RATE_PLACES),
        }
    }
}

/// Path of an input's copy inside a bundle.
pub fn input_bundle_path(name: &str, format: InputFormat) -> String {
    format!("inputs/{name}.{}", format.extension())
}

#[derive(Serialize)]
struct Results<'a> {
    results_version: u32,
    contract: &'a Contract,
    spec: SpecRef,
    inputs: Vec<InputRef>,
    rules: Rules,
    cohort: CohortSummary,
    convictions: ConvictionSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<CohortSummary>,
    measures: Vec<MeasureSet>,
    comparator: ComparatorOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    matching: Option<MatchingOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk: Option<RiskOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    case_mix: Option<CaseMixOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsOut>,
    evaluations: Vec<EvaluationOut>,
    payment: PaymentOut,
    findings: Vec<FindingOut>,
    verdict: Verdict,
    /// The decision over the spec's `[sensitivity]` grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<crate::sensitivity::SensitivityOut>,
}

#[derive(Serialize)]
struct FindingOut {
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct TermOut {
    term: String,
    coefficient: String,
    std_error: String,
}

#[derive(Serialize)]
struct BalanceOut {
    term: String,
    treated_mean: String,
    pool_mean: String,
    smd_before: String,
    variance_ratio_before: Option<String>,
    comparison_mean: String,
    smd_after: String,
    variance_ratio_after: Option<String>,
    within_limit: bool,
}

#[derive(Serialize)]
struct InferenceOut {
    method: crate::spec::InferenceMethod,
    confidence: String,
    difference: String,
    std_error: String,
    lower: String,
    upper: String,
    p_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    df: Option<String>,
    significant: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    jdl_note: Option<String>,
}

#[derive(Serialize)]
struct MatchedScopeOut {
    scope: String,
    treated_people: u64,
    treated: Option<Value>,
    comparison_people: u64,
    comparison_weight: String,
    comparison: Option<Value>,
    naive_people: u64,
    naive: Option<Value>,
    inference: InferenceOut,
    /// Every measure: cohort, weighted comparison, naive pool.
    all_measures: Vec<ScopeMeasureOut>,
}

#[derive(Serialize)]
struct ScopeMeasureOut {
    measure: Measure,
    treated: Option<Value>,
    comparison: Option<Value>,
    naive: Option<Value>,
    /// treated − comparison.
    difference: Option<Value>,
    /// (comparison − treated) / comparison, for measures where lower is better;
    /// (treated − comparison) / comparison for days to first.
    relative_improvement: Option<Value>,
}

#[derive(Serialize)]
struct MatchingOut {
    outcome_blind: bool,
    model: ModelOut,
    logit_sd: String,
    caliper_sd: Option<String>,
    caliper: Option<String>,
    ratio: usize,
    replacement: bool,
    exact: Vec<String>,
    treated_in_model: u64,
    pool_in_model: u64,
    matched_treated: u64,
    unmatched: BTreeMap<String, u64>,
    controls_used: u64,
    weight_denominator: u64,
    balance_limit: String,
    balance_ok: bool,
    balance: Vec<BalanceOut>,
    scopes: Vec<MatchedScopeOut>,
}

#[derive(Serialize)]
struct ModelOut {
    terms: Vec<TermOut>,
    iterations: u32,
    log_likelihood: String,
    rows: usize,
}

#[derive(Serialize)]
struct ClaimsOut {
    party: String,
    tolerance: String,
    tolerance_minor: i64,
    claimed: usize,
    disputed: usize,
    lines: Vec<ClaimLineOut>,
}

#[derive(Serialize)]
struct ClaimLineOut {
    scope: String,
    field: &'static str,
    claimed: String,
    recomputed: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    difference: Option<String>,
    status: &'static str,
}

fn claims_out(audit: &Audit) -> Option<ClaimsOut> {
    let r = audit.reconciliation.as_ref()?;
    Some(ClaimsOut {
        party: r.party.clone(),
        tolerance: r.tolerance.to_fixed(RATE_PLACES),
        tolerance_minor: r.tolerance_minor,
        claimed: r.lines.len(),
        disputed: r.disputed(),
        lines: r
            .lines
            .iter()
            .map(|l| ClaimLineOut {
                scope: l.scope.clone(),
                field: l.field,
                claimed: l.claimed.clone(),
                recomputed: l.recomputed.clone(),
                difference: l.difference.clone(),
                status: if l.agreed { "agreed" } else { "disputed" },
            })
            .collect(),
    })
}

/// Counts of one area in one period, with the rates made from them.
#[derive(Serialize)]
struct CountsOut {
    people: u64,
    reoffenders: u64,
    reoffences: u64,
    scored: u64,
    rate: Option<Value>,
    mean_risk: Option<Value>,
    reoffences_per_reoffender: Option<Value>,
}

impl From<&crate::casemix::CellCounts> for CountsOut {
    fn from(c: &crate::casemix::CellCounts) -> Self {
        CountsOut {
            people: c.people,
            reoffenders: c.reoffenders,
            reoffences: c.units,
            scored: c.scored,
            rate: c.rate().map(Value::from),
            mean_risk: c.mean_risk().map(Value::from),
            reoffences_per_reoffender: c.frequency().map(Value::from),
        }
    }
}

#[derive(Serialize)]
struct CaseMixCellOut {
    scope: String,
    area: String,
    period: String,
    cohort: CountsOut,
    baseline: CountsOut,
    unscored: u64,
    /// cohort mean risk − baseline mean risk.
    adjustment: Value,
    adjusted_baseline: Value,
    binary_test: Option<InferenceOut>,
    binary_decision: &'static str,
    frequency_test: Option<InferenceOut>,
    frequency_fell: bool,
    reoffenders_avoided: Value,
    reoffences_avoided: Option<Value>,
    binary_minor: i128,
    frequency_minor: i128,
    amount: String,
}

#[derive(Serialize)]
struct CaseMixSummaryOut {
    area: String,
    cohort: CountsOut,
    baseline: CountsOut,
    amount_minor: i128,
    amount: String,
}

#[derive(Serialize)]
struct CaseMixOut {
    area_column: String,
    cells: Vec<CaseMixCellOut>,
    /// Per area over the year, then all areas together.
    annual: Vec<CaseMixSummaryOut>,
    uncapped_minor: i128,
}

fn case_mix_out(audit: &Audit) -> Option<CaseMixOut> {
    let r = audit.case_mix.as_ref()?;
    let e_of = |scope: &str| audit.evaluations.iter().find(|e| e.scope == scope);
    Some(CaseMixOut {
        area_column: r.area_column.clone(),
        cells: r
            .cells
            .iter()
            .map(|c| CaseMixCellOut {
                scope: c.scope.clone(),
                area: c.area.clone(),
                period: c.period.clone(),
                cohort: (&c.cohort).into(),
                baseline: (&c.baseline).into(),
                unscored: c.unscored,
                adjustment: c.adjustment.into(),
                adjusted_baseline: c.adjusted_baseline.into(),
                binary_test: c.binary_inference.as_ref().map(inference_out),
                binary_decision: match e_of(&c.scope) {
                    Some(e) if e.met => "fall-paid",
                    _ if c.binary_rise => "rise",
                    _ => "no-payable-change",
                },
                frequency_test: c.frequency_inference.as_ref().map(inference_out),
                frequency_fell: c.frequency_fell,
                reoffenders_avoided: c.reoffenders_avoided.into(),
                reoffences_avoided: c.reoffences_avoided.map(Value::from),
                binary_minor: c.binary_minor,
                frequency_minor: c.frequency_minor,
                amount: crate::exact::minor_to_decimal(c.binary_minor + c.frequency_minor),
            })
            .collect(),
        annual: r
            .summaries
            .iter()
            .map(|s| CaseMixSummaryOut {
                area: s.area.clone(),
                cohort: (&s.cohort).into(),
                baseline: (&s.baseline).into(),
                amount_minor: s.amount_minor,
                amount: crate::exact::minor_to_decimal(s.amount_minor),
            })
            .collect(),
        uncapped_minor: r.uncapped_minor,
    })
}

/// tables/case_mix.csv: one row per area and cohort period.
pub fn write_case_mix_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let mut out = String::from(
        "area,period,people,reoffenders,reoffences,rate,mean_risk,baseline_people,baseline_reoffenders,baseline_reoffences,baseline_rate,baseline_mean_risk,adjustment,adjusted_baseline,binary_p_value,binary_significant,frequency,baseline_frequency,frequency_p_value,frequency_fell,binary_minor,frequency_minor\n",
    );
    let fixed = |r: Option<Ratio>| r.map(|r| r.to_fixed(RATE_PLACES)).unwrap_or_default();
    if let Some(r) = &audit.case_mix {
        for c in &r.cells {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&c.area),
                csv_field(&c.period),
                c.cohort.people,
                c.cohort.reoffenders,
                c.cohort.units,
                fixed(Some(c.rate)),
                fixed(Some(c.mean_risk)),
                c.baseline.people,
                c.baseline.reoffenders,
                c.baseline.units,
                fixed(Some(c.baseline_rate)),
                fixed(Some(c.baseline_mean_risk)),
                fixed(Some(c.adjustment)),
                fixed(Some(c.adjusted_baseline)),
                c.binary_inference
                    .as_ref()
                    .map(|i| float(i.p_value))
                    .unwrap_or_default(),
                c.binary_inference.as_ref().is_some_and(|i| i.significant),
                fixed(c.frequency),
                fixed(c.baseline_frequency),
                c.frequency_inference
                    .as_ref()
                    .map(|i| float(i.p_value))
                    .unwrap_or_default(),
                c.frequency_fell,
                c.binary_minor,
                c.frequency_minor
            ));
        }
    }
    w.write_all(out.as_bytes())
}

#[derive(Serialize)]
struct RiskOut {
    model: String,
    model_version: String,
    female_juvenile_sign: &'static str,
    horizon_years: u8,
    scored: u64,
    unscored: BTreeMap<String, u64>,
    scopes: Vec<PredictedScopeOut>,
    /// Gaming checks: risk mix and exclusions of each group, side by side.
    mix: Vec<RiskMixOut>,
}

/// Risk mix and exclusion shares of one group, so that a reviewer can see creaming
/// (a cohort of lower risk than its baseline) or exclusions used to drop the likely
/// reoffenders.
#[derive(Serialize)]
struct RiskMixOut {
    period: String,
    role: GroupRole,
    scored: u64,
    mean_probability: Option<Value>,
    /// Scored people by probability band: [0, 0.25), [0.25, 0.5), [0.5, 0.75), [0.75, 1].
    bands: [u64; 4],
    rows_in_period: u64,
    /// Share of the period's rows excluded by each rule, in rule order.
    excluded_share: Vec<ExclusionShareOut>,
}

#[derive(Serialize)]
struct ExclusionShareOut {
    rule: String,
    count: u64,
    share: Option<Value>,
}

#[derive(Serialize)]
struct PredictedScopeOut {
    scope: String,
    people: u64,
    unscored: u64,
    reoffenders: u64,
    predicted: Value,
    actual: Value,
    /// predicted − actual: reoffending avoided against the prediction.
    improvement: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference: Option<InferenceOut>,
}

fn risk_out(audit: &Audit) -> Option<RiskOut> {
    let r = audit.risk.as_ref()?;
    let mut unscored = BTreeMap::new();
    for p in &r.people {
        if let Some(code) = &p.unscored {
            *unscored.entry(code.clone()).or_insert(0) += 1;
        }
    }
    Some(RiskOut {
        model: r.model_name.clone(),
        model_version: r.model_version.clone(),
        female_juvenile_sign: r.female_juvenile_sign,
        horizon_years: r.horizon_years,
        scored: r.people.iter().filter(|p| p.micro.is_some()).count() as u64,
        unscored,
        scopes: audit
            .predicted_scopes
            .iter()
            .map(|s| PredictedScopeOut {
                scope: s.scope.clone(),
                people: s.people,
                unscored: s.unscored,
                reoffenders: s.reoffenders,
                predicted: s.predicted.into(),
                actual: s.actual.into(),
                improvement: s.predicted.minus(s.actual).into(),
                inference: s.inference.as_ref().map(inference_out),
            })
            .collect(),
        mix: audit
            .cohort
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let mut scored = 0u64;
                let mut sum = 0i128;
                let mut bands = [0u64; 4];
                for (m, p) in audit.cohort.members.iter().zip(&r.people) {
                    if m.group != g {
                        continue;
                    }
                    if let Some(micro) = p.micro {
                        scored += 1;
                        sum += micro;
                        let band = (micro * 4 / crate::predicted::MICRO).clamp(0, 3) as usize;
                        bands[band] += 1;
                    }
                }
                let rows = audit.cohort.group_rows(g);
                let (_, excluded) = audit.cohort.group_counts(&audit.spec, g);
                RiskMixOut {
                    period: group.period.name.clone(),
                    role: group.role,
                    scored,
                    mean_probability: Ratio::new(sum, i128::from(scored) * crate::predicted::MICRO)
                        .map(Value::from),
                    bands,
                    rows_in_period: rows,
                    excluded_share: excluded
                        .into_iter()
                        .map(|e| ExclusionShareOut {
                            share: Ratio::new(i128::from(e.count), i128::from(rows))
                                .map(Value::from),
                            rule: e.rule,
                            count: e.count,
                        })
                        .collect(),
                }
            })
            .collect(),
    })
}

/// tables/risk.csv: each cohort member's risk-model inputs and score, or why they have none.
pub fn write_risk_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let Some(r) = &audit.risk else {
        return Ok(());
    };
    let mut out = String::from("period,person_id,row,sex,age,total_sanctions,age_at_conviction,age_at_first_sanction,offence_category,copas,y,p1,p2,probability_used,unscored_reason\n");
    for (m, p) in audit.cohort.members.iter().zip(&r.people) {
        let period = &audit.cohort.groups[m.group].period.name;
        let (sex, age, total, conv, first, cat) = match &p.inputs {
            Some(i) => (
                i.sex.as_str().to_string(),
                i.age_at_follow_up_start.to_string(),
                i.total_sanctions.to_string(),
                i.age_at_current_conviction.to_string(),
                i.age_at_first_sanction.to_string(),
                i.offence_category.clone(),
            ),
            None => Default::default(),
        };
        let (copas, y, p1, p2) = match &p.score {
            Some(s) => (s.copas_fixed(6), s.y_fixed(6), s.p1_fixed(6), s.p2_fixed(6)),
            None => Default::default(),
        };
        let used = p
            .micro
            .and_then(|u| Ratio::new(u, crate::predicted::MICRO))
            .map(|r| r.to_fixed(6))
            .unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{sex},{age},{total},{conv},{first},{},{copas},{y},{p1},{p2},{used},{}\n",
            csv_field(period),
            csv_field(audit.cohort.person_id(m)),
            m.person + 1,
            csv_field(&cat),
            p.unscored.as_deref().unwrap_or("")
        ));
    }
    w.write_all(out.as_bytes())
}

/// tables/payments.csv: each cohort member's payment under a per-person mechanism.
pub fn write_payments_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let mut out =
        String::from("period,person_id,row,reoffended,probability,uncapped_minor,paid_minor\n");
    for p in &audit.individual {
        let m = &audit.cohort.members[p.member];
        let probability = p
            .micro
            .and_then(|u| Ratio::new(u, crate::predicted::MICRO))
            .map(|r| r.to_fixed(6))
            .unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{probability},{},{}\n",
            csv_field(&audit.cohort.groups[m.group].period.name),
            csv_field(audit.cohort.person_id(m)),
            m.person + 1,
            u8::from(p.reoffended),
            p.uncapped_minor,
            p.paid_minor
        ));
    }
    w.write_all(out.as_bytes())
}

/// Floats reach the evidence only as fixed-precision strings.
pub fn float(x: f64) -> String {
    format!("{x:.9}")
}

/// A standardised mean difference; ±`f64::MAX` stands for a covariate that is constant
/// within each group but differs between them.
fn smd(x: f64) -> String {
    if x.abs() == f64::MAX {
        "constant-within-groups".into()
    } else {
        float(x)
    }
}

#[derive(Serialize)]
struct SpecRef {
    path: &'static str,
    sha256: String,
}

#[derive(Serialize)]
struct InputRef {
    name: String,
    path: String,
    format: InputFormat,
    sha256: String,
    bytes: u64,
    rows: u64,
}

#[derive(Serialize)]
struct Rules {
    measure: Measure,
    counting_unit: CountingUnit,
    sanctions: Vec<Sanction>,
    window_months: u32,
    window_end: WindowEnd,
    court_lag_months: u32,
    duplicates: DuplicatePolicy,
    threshold_kind: ThresholdKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_per_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_pooled: Option<String>,
    payment_basis: PaymentBasis,
}

#[derive(Serialize)]
struct CohortSummary {
    rows: u64,
    /// Rows in no period, by rule.
    unassigned: BTreeMap<String, u64>,
    groups: Vec<GroupSummary>,
}

#[derive(Serialize)]
struct GroupSummary {
    period: String,
    role: GroupRole,
    from: String,
    to: String,
    rows: u64,
    eligible: u64,
    excluded: Vec<ExclusionOut>,
}

#[derive(Serialize)]
struct ExclusionOut {
    rule: String,
    reason: String,
    count: u64,
}

impl From<ExclusionCount> for ExclusionOut {
    fn from(e: ExclusionCount) -> Self {
        ExclusionOut {
            rule: e.rule,
            reason: e.reason,
            count: e.count,
        }
    }
}

#[derive(Serialize)]
struct ConvictionSummary {
    rows: u64,
    not_in_audit: u64,
    groups: Vec<DispositionSummary>,
}

#[derive(Serialize)]
struct DispositionSummary {
    period: String,
    role: GroupRole,
    dispositions: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct MeasureSet {
    scope: String,
    role: GroupRole,
    people: u64,
    reoffenders: u64,
    offences: u64,
    /// `null` when the input has no court appearance ids.
    conviction_events: Option<u64>,
    days_to_first_sum: u64,
    binary: Option<Value>,
    frequency_per_offender: Option<Value>,
    frequency_per_reoffender: Option<Value>,
    days_to_first: Option<Value>,
}

#[derive(Serialize)]
struct ComparatorOut {
    kind: &'static str,
    measure: Measure,
    value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_as_written: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<String>,
}

#[derive(Serialize)]
struct EvaluationOut {
    scope: String,
    code: &'static str,
    met: bool,
    people: u64,
    treated: Value,
    comparator: Value,
    difference: Value,
    improvement: Value,
    relative_improvement: Option<Value>,
    threshold_kind: ThresholdKind,
    minimum: Value,
    required_improvement: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    significant: Option<bool>,
}

#[derive(Serialize)]
struct PaymentOut {
    currency: String,
    basis: PaymentBasis,
    lines: Vec<PaymentLineOut>,
    total_minor: i64,
    total: String,
    direction: &'static str,
}

#[derive(Serialize)]
struct PaymentLineOut {
    scope: String,
    met: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    units: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uncapped_minor: Option<i64>,
    amount_minor: i64,
    amount: String,
    explanation: String,
}

#[derive(Serialize)]
struct Verdict {
    code: &'static str,
    summary: String,
}

/// Money in minor units as a JSON integer (saturating: no contract comes near).
pub(crate) fn money(m: i128) -> i64 {
    i64::try_from(m).unwrap_or(if m < 0 { i64::MIN } else { i64::MAX })
}

fn measure_set(
    scope: &str,
    role: GroupRole,
    t: &Totals,
    unit: CountingUnit,
    events: bool,
) -> MeasureSet {
    MeasureSet {
        scope: scope.to_string(),
        role,
        people: t.people,
        reoffenders: t.reoffenders,
        offences: t.offences,
        conviction_events: events.then_some(t.events),
        days_to_first_sum: t.days_to_first_sum,
        binary: t.measure(Measure::Binary, unit).map(Value::from),
        frequency_per_offender: t
            .measure(Measure::FrequencyPerOffender, unit)
            .map(Value::from),
        frequency_per_reoffender: t
            .measure(Measure::FrequencyPerReoffender, unit)
            .map(Value::from),
        days_to_first: t.measure(Measure::DaysToFirst, unit).map(Value::from),
    }
}

fn evaluation_out(e: &Evaluation) -> EvaluationOut {
    EvaluationOut {
        scope: e.scope.clone(),
        code: e.code(),
        met: e.met,
        people: e.people,
        treated: e.treated.into(),
        comparator: e.comparator.into(),
        difference: e.difference.into(),
        improvement: e.improvement.into(),
        relative_improvement: e.relative_improvement.map(Value::from),
        threshold_kind: e.threshold_kind,
        minimum: e.minimum.into(),
        required_improvement: e.required.into(),
        significant: e.significant,
    }
}

/// Overall verdict code: `threshold-met` when every evaluation is met; `paid-per-person`
/// when there is no threshold (each person is paid on their own outcome).
pub fn verdict_code(audit: &Audit) -> &'static str {
    if audit.evaluations.is_empty() {
        "paid-per-person"
    } else if audit.all_met() {
        crate::decision::THRESHOLD_MET
    } else {
        crate::decision::THRESHOLD_NOT_MET
    }
}

/// One-sentence summary of the decision and payment.
pub fn verdict_summary(audit: &Audit) -> String {
    let o = &audit.spec.outcome;
    let parts: Vec<String> = audit
        .evaluations
        .iter()
        .map(|e| {
            format!(
                "{}: {} {} against {} ({})",
                e.scope,
                measure_name(o.measure),
                e.treated.to_fixed(4),
                e.comparator.to_fixed(4),
                if e.met { "target met" } else { "target missed" }
            )
        })
        .collect();
    let money = if audit.total_minor == 0 {
        "no money moves".to_string()
    } else {
        format!(
            "{} {} {}",
            audit.spec.payment.currency,
            minor_to_decimal(audit.total_minor.abs()),
            direction(audit.total_minor)
        )
    };
    if parts.is_empty() {
        money
    } else {
        format!("{}; {money}", parts.join("; "))
    }
}

/// Who pays whom, in words.
pub fn direction(total_minor: i128) -> &'static str {
    match total_minor {
        t if t > 0 => "owed to the provider",
        t if t < 0 => "repaid by the provider",
        _ => "nothing owed",
    }
}

fn cohort_summary(spec: &crate::spec::AuditSpec, c: &crate::cohort::CohortResult) -> CohortSummary {
    CohortSummary {
        rows: c.ledger.len() as u64,
        unassigned: c.unassigned_counts(),
        groups: c
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let (eligible, excluded) = c.group_counts(spec, g);
                GroupSummary {
                    period: group.period.name.clone(),
                    role: group.role,
                    from: format_day(group.period.from),
                    to: format_day(group.period.to),
                    rows: c.group_rows(g),
                    eligible,
                    excluded: excluded.into_iter().map(ExclusionOut::from).collect(),
                }
            })
            .collect(),
    }
}

/// Stable codes for what a reviewer must not miss.
fn findings(audit: &Audit) -> Vec<FindingOut> {
    let mut f = Vec::new();
    if let Some(m) = &audit.matched {
        if !m.balance_ok {
            let bad: Vec<&str> = m
                .balance
                .iter()
                .filter(|b| !b.within_limit)
                .map(|b| b.term.as_str())
                .collect();
            f.push(FindingOut {
                code: "balance-outside-limit",
                message: format!(
                    "after matching, the standardised mean difference of {} is outside the limit",
                    bad.join(", ")
                ),
            });
        }
        if !m.matching.partial.is_empty() {
            f.push(FindingOut {
                code: "treated-partially-matched",
                message: format!(
                    "cohort members with fewer comparisons than the ratio asks for: {} (their comparisons carry more weight each)",
                    m.matching.partial.len()
                ),
            });
        }
        if !m.matching.unmatched.is_empty() {
            f.push(FindingOut {
                code: "treated-unmatched",
                message: format!(
                    "cohort members without a match: {} (left out of the comparison; tables/matches.csv lists them)",
                    m.matching.unmatched.len()
                ),
            });
        }
    }
    if let Some(r) = &audit.risk {
        let n = r.people.iter().filter(|p| p.unscored.is_some()).count();
        if n > 0 {
            f.push(FindingOut {
                code: "risk-unscored",
                message: format!(
                    "cohort members the risk model could not score: {n} (left out of any predicted rate and paid nothing per person; tables/risk.csv gives each reason)"
                ),
            });
        }
    }
    if let Some(r) = &audit.reconciliation {
        for l in r.lines.iter().filter(|l| !l.agreed) {
            f.push(FindingOut {
                code: "claim-disputed",
                message: format!(
                    "{} claims {} {} = {}; recomputed {}",
                    r.party, l.scope, l.field, l.claimed, l.recomputed
                ),
            });
        }
    }
    if let Some(r) = audit.sensitivity.as_ref().filter(|r| !r.robust()) {
        f.push(FindingOut {
            code: "decision-fragile",
            message: format!(
                "{} of {} sensitivity variants reach a different decision from the spec's own choices (sensitivity.flipping_variants)",
                r.flipping().len(),
                r.variants.len()
            ),
        });
    }
    for e in &audit.evaluations {
        if e.significant == Some(false) {
            f.push(FindingOut {
                code: "not-significant",
                message: format!(
                    "{}: the difference is not statistically significant",
                    e.scope
                ),
            });
        }
    }
    if let Some(r) = &audit.case_mix {
        for c in &r.cells {
            if c.binary_rise {
                f.push(FindingOut {
                    code: "binary-rise",
                    message: format!(
                        "{}: the binary rate rose above the adjusted baseline ({} against {}){}",
                        c.scope,
                        c.rate.to_fixed(RATE_PLACES),
                        c.adjusted_baseline.to_fixed(RATE_PLACES),
                        if c.binary_minor < 0 {
                            "; penalised"
                        } else {
                            ""
                        }
                    ),
                });
            }
            let met = audit
                .evaluations
                .iter()
                .any(|e| e.scope == c.scope && e.met);
            if c.frequency_fell && !met {
                f.push(FindingOut {
                    code: "hurdle-blocks-frequency",
                    message: format!(
                        "{}: reoffences per reoffender fell ({} against {}), but the binary target is not met, so the fall is not paid",
                        c.scope,
                        c.frequency.map(|r| r.to_fixed(RATE_PLACES)).unwrap_or_default(),
                        c.baseline_frequency.map(|r| r.to_fixed(RATE_PLACES)).unwrap_or_default()
                    ),
                });
            }
        }
    }
    f
}

fn inference_out(i: &crate::compare::InferenceResult) -> InferenceOut {
    InferenceOut {
        method: i.method,
        confidence: float(i.confidence),
        difference: float(i.difference),
        std_error: float(i.std_error),
        lower: float(i.lower),
        upper: float(i.upper),
        p_value: float(i.p_value),
        df: i.df.map(float),
        significant: i.significant,
        jdl_note: i.jdl_note.clone(),
    }
}

fn matching_out(audit: &Audit) -> Option<MatchingOut> {
    let m = audit.matched.as_ref()?;
    let crate::spec::Comparator::Matched(cfg) = &audit.spec.comparator else {
        return None;
    };
    let o = &audit.spec.outcome;
    let mut unmatched = BTreeMap::new();
    for u in &m.matching.unmatched {
        *unmatched
            .entry(unmatched_code(&u.reason).to_string())
            .or_insert(0) += 1;
    }
    Some(MatchingOut {
        outcome_blind: true,
        model: ModelOut {
            terms: m
                .terms
                .iter()
                .zip(m.fit.coefficients.iter().zip(&m.fit.std_errors))
                .map(|(t, (c, se))| TermOut {
                    term: t.clone(),
                    coefficient: float(*c),
                    std_error: float(*se),
                })
                .collect(),
            iterations: m.fit.iterations,
            log_likelihood: float(m.fit.log_likelihood),
            rows: m.fit.n,
        },
        logit_sd: float(m.logit_sd),
        caliper_sd: cfg.caliper_sd.map(|r| r.to_fixed(RATE_PLACES)),
        caliper: m.caliper.map(float),
        ratio: cfg.ratio,
        replacement: cfg.replacement,
        exact: cfg.exact.clone(),
        treated_in_model: m.treated_logit.iter().filter(|l| l.is_some()).count() as u64,
        pool_in_model: m.pool_logit.len() as u64,
        matched_treated: m.matched_treated.iter().filter(|b| **b).count() as u64,
        unmatched,
        controls_used: m.weights.iter().filter(|w| **w > 0).count() as u64,
        weight_denominator: m.denominator,
        balance_limit: cfg.balance_limit.to_fixed(RATE_PLACES),
        balance_ok: m.balance_ok,
        balance: m
            .balance
            .iter()
            .map(|b| BalanceOut {
                term: b.term.clone(),
                treated_mean: float(b.treated_mean),
                pool_mean: float(b.pool_mean),
                smd_before: smd(b.smd_before),
                variance_ratio_before: b.variance_ratio_before.map(float),
                comparison_mean: float(b.comparison_mean),
                smd_after: smd(b.smd_after),
                variance_ratio_after: b.variance_ratio_after.map(float),
                within_limit: b.within_limit,
            })
            .collect(),
        scopes: audit
            .matched_scopes
            .iter()
            .map(|s| MatchedScopeOut {
                scope: s.scope.clone(),
                treated_people: s.treated.people,
                treated: s.treated.measure(o.measure, o.unit).map(Value::from),
                comparison_people: s.comparison.people,
                comparison_weight: Ratio::new(
                    i128::try_from(s.comparison.weight).unwrap_or(0),
                    i128::from(m.denominator.max(1)),
                )
                .map(|r| r.to_string())
                .unwrap_or_default(),
                comparison: s.comparison.measure(o.measure, o.unit).map(Value::from),
                naive_people: s.naive.people,
                naive: s.naive.measure(o.measure, o.unit).map(Value::from),
                inference: inference_out(&s.inference),
                all_measures: [
                    Measure::Binary,
                    Measure::FrequencyPerOffender,
                    Measure::FrequencyPerReoffender,
                    Measure::DaysToFirst,
                ]
                .into_iter()
                .map(|measure| {
                    let t = s.treated.measure(measure, o.unit);
                    let c = s.comparison.measure(measure, o.unit);
                    let difference = t.zip(c).map(|(t, c)| t.minus(c));
                    let relative = t.zip(c).and_then(|(t, c)| {
                        let improvement = if crate::measures::lower_is_better(measure) {
                            c.minus(t)
                        } else {
                            t.minus(c)
                        };
                        improvement.checked_div(c)
                    });
                    ScopeMeasureOut {
                        measure,
                        treated: t.map(Value::from),
                        comparison: c.map(Value::from),
                        naive: s.naive.measure(measure, o.unit).map(Value::from),
                        difference: difference.map(Value::from),
                        relative_improvement: relative.map(Value::from),
                    }
                })
                .collect(),
            })
            .collect(),
    })
}

/// Stable code of an unmatched treated person's reason.
pub fn unmatched_code(reason: &crate::matching::UnmatchedReason) -> &'static str {
    match reason {
        crate::matching::UnmatchedReason::NoControlInStratum => "no-control-in-stratum",
        crate::matching::UnmatchedReason::OutsideCaliper { .. } => "outside-caliper",
        crate::matching::UnmatchedReason::PoolExhausted => "pool-exhausted",
    }
}

/// results.json: pretty JSON with a trailing newline.
pub fn results_json(audit: &Audit) -> Vec<u8> {
    let spec = &audit.spec;
    let o = &spec.outcome;
    let groups = &audit.cohort.groups;
    let events = audit.outcomes.has_appearances;
    let results = Results {
        results_version: RESULTS_VERSION,
        contract: &spec.contract,
        spec: SpecRef {
            path: "spec.toml",
            sha256: spec.sha256.to_hex(),
        },
        inputs: audit
            .inputs()
            .iter()
            .map(|i| InputRef {
                name: i.name.clone(),
                path: input_bundle_path(&i.name, i.format),
                format: i.format,
                sha256: i.sha256.to_hex(),
                bytes: i.bytes,
                rows: i.rows() as u64,
            })
            .collect(),
        rules: Rules {
            measure: o.measure,
            counting_unit: o.unit,
            sanctions: o.sanctions.iter().copied().collect(),
            window_months: o.window_months,
            window_end: o.window_end,
            court_lag_months: o.lag_months,
            duplicates: o.duplicates,
            threshold_kind: spec.threshold.kind,
            threshold_per_period: spec.threshold.per_period.map(|r| r.to_fixed(RATE_PLACES)),
            threshold_pooled: spec.threshold.pooled.map(|r| r.to_fixed(RATE_PLACES)),
            payment_basis: spec.payment.basis,
        },
        cohort: cohort_summary(spec, &audit.cohort),
        pool: audit.pool_cohort.as_ref().map(|p| cohort_summary(spec, p)),
        matching: matching_out(audit),
        risk: risk_out(audit),
        case_mix: case_mix_out(audit),
        claims: claims_out(audit),
        findings: findings(audit),
        convictions: ConvictionSummary {
            rows: audit.outcomes.rows_total,
            not_in_audit: audit.outcomes.rows_not_in_audit,
            groups: {
                let n = audit.cohort_members();
                let mut v: Vec<DispositionSummary> = groups
                    .iter()
                    .enumerate()
                    .map(|(g, group)| DispositionSummary {
                        period: group.period.name.clone(),
                        role: group.role,
                        dispositions: audit.outcomes.disposition_counts(spec, |k| {
                            k < n && audit.cohort.members[k].group == g
                        }),
                    })
                    .collect();
                if let Some(pc) = &audit.pool_cohort {
                    v.extend(pc.groups.iter().enumerate().map(|(g, group)| DispositionSummary {
                        period: group.period.name.clone(),
                        role: group.role,
                        dispositions: audit.outcomes.disposition_counts(spec, |k| {
                            k >= n && pc.members[k - n].group == g
                        }),
                    }));
                }
                v
            },
        },
        measures: {
            let mut v: Vec<MeasureSet> = groups
                .iter()
                .enumerate()
                .map(|(g, group)| {
                    measure_set(
                        &group.period.name,
                        group.role,
                        &audit.totals[g],
                        o.unit,
                        events,
                    )
                })
                .collect();
            v.push(measure_set(
                POOLED,
                GroupRole::Treated,
                &audit.pooled,
                o.unit,
                events,
            ));
            v
        },
        comparator: match &spec.comparator {
            Comparator::FixedBaseline {
                value_as_written,
                source,
                ..
            } => ComparatorOut {
                kind: "fixed-baseline",
                measure: o.measure,
                value: audit.comparator.into(),
                value_as_written: Some(value_as_written.clone()),
                source: Some(source.clone()),
                period: None,
            },
            Comparator::Historical { period } => ComparatorOut {
                kind: "historical",
                measure: o.measure,
                value: audit.comparator.into(),
                value_as_written: None,
                source: None,
                period: Some(period.name.clone()),
            },
            Comparator::Predicted => ComparatorOut {
                kind: "predicted",
                measure: o.measure,
                value: audit.comparator.into(),
                value_as_written: None,
                source: Some("mean risk-model probability of the scored cohort members of the first evaluation; see risk.scopes for each".into()),
                period: None,
            },
            Comparator::None => ComparatorOut {
                kind: "none",
                measure: o.measure,
                value: audit.comparator.into(),
                value_as_written: None,
                source: Some("no comparator: each person is paid on their own outcome".into()),
                period: None,
            },
            Comparator::CaseMix(c) => ComparatorOut {
                kind: "case-mix-adjusted",
                measure: o.measure,
                value: audit.comparator.into(),
                value_as_written: None,
                source: Some("binary rate of the baseline period over all areas, unadjusted; each area and period is compared with its own adjusted baseline, see case_mix.cells".into()),
                period: Some(c.baseline.name.clone()),
            },
            Comparator::Matched(_) => ComparatorOut {
                kind: "matched",
                measure: o.measure,
                value: audit.comparator.into(),
                value_as_written: None,
                source: Some("weighted matched comparison group of the first evaluation; see matching.scopes for each".into()),
                period: None,
            },
        },
        evaluations: audit.evaluations.iter().map(evaluation_out).collect(),
        payment: PaymentOut {
            currency: spec.payment.currency.clone(),
            basis: spec.payment.basis,
            lines: audit
                .payments
                .iter()
                .map(|p| PaymentLineOut {
                    scope: p.scope.clone(),
                    met: p.met,
                    units: p.units.map(Value::from),
                    uncapped_minor: p.uncapped_minor.map(money),
                    amount_minor: money(p.amount_minor),
                    amount: minor_to_decimal(p.amount_minor),
                    explanation: p.explanation.clone(),
                })
                .collect(),
            total_minor: money(audit.total_minor),
            total: minor_to_decimal(audit.total_minor),
            direction: direction(audit.total_minor),
        },
        verdict: Verdict {
            code: verdict_code(audit),
            summary: verdict_summary(audit),
        },
        sensitivity: crate::sensitivity::results_out(audit),
    };
    let mut out = serde_json::to_vec_pretty(&results).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn push_field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.extend_from_slice(csv_field(s).as_bytes());
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn push_num(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_opt_day(out: &mut Vec<u8>, day: Option<crate::dates::Day>) {
    if let Some(d) = day {
        push_day(out, d);
    }
}

/// Buffered rows are flushed to the writer in blocks of this size.
const FLUSH_AT: usize = 1 << 20;

fn flush_if_full(out: &mut Vec<u8>, w: &mut dyn Write) -> std::io::Result<()> {
    if out.len() >= FLUSH_AT {
        w.write_all(out)?;
        out.clear();
    }
    Ok(())
}

fn role_name(role: GroupRole) -> &'static str {
    match role {
        GroupRole::Treated => "treated",
        GroupRole::Baseline => "baseline",
        GroupRole::Pool => "pool",
    }
}

/// tables/cohort.csv (and tables/pool_cohort.csv): every row of the input, in file
/// order, with its status and rule.
pub fn write_ledger_csv(
    spec: &crate::spec::AuditSpec,
    cohort: &crate::cohort::CohortResult,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(FLUSH_AT + 4096);
    out.extend_from_slice(b"row,person_id,index_date,period,status,rule,reason\n");
    for (i, e) in cohort.ledger.iter().enumerate() {
        push_num(&mut out, i as u64 + 1);
        out.push(b',');
        push_field(&mut out, cohort.ids.get(i));
        out.push(b',');
        push_opt_day(&mut out, e.index_date);
        out.push(b',');
        if let Some(g) = e.group {
            push_field(&mut out, &cohort.groups[g as usize].period.name);
        }
        match e.excluded {
            None => out.extend_from_slice(b",eligible,,\n"),
            Some(x) => {
                let (rule, reason) = x.describe(spec);
                out.extend_from_slice(b",excluded,");
                push_field(&mut out, rule);
                out.push(b',');
                push_field(&mut out, reason);
                out.push(b'\n');
            }
        }
        flush_if_full(&mut out, w)?;
    }
    w.write_all(&out)
}

/// tables/outcomes.csv: one row per eligible person — cohort members by period then
/// people row, then eligible pool members likewise.
pub fn write_outcomes_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(FLUSH_AT + 4096);
    out.extend_from_slice(b"period,role,person_id,index_date,window_end,lag_end,reoffender,offences,conviction_events,first_offence_date,days_to_first\n");
    let n = audit.cohort_members();
    let pool_members = audit
        .pool_cohort
        .as_ref()
        .map(|p| p.members.as_slice())
        .unwrap_or(&[]);
    let members = audit.cohort.members.iter().chain(pool_members);
    for (k, (m, p)) in members.zip(&audit.outcomes.people).enumerate() {
        let (period, role, person) = audit.member_label(k);
        debug_assert!(k < n || role == GroupRole::Pool);
        push_field(&mut out, period);
        out.push(b',');
        out.extend_from_slice(role_name(role).as_bytes());
        out.push(b',');
        push_field(&mut out, person);
        out.push(b',');
        push_day(&mut out, m.index_date);
        out.push(b',');
        push_day(&mut out, p.window_end);
        out.push(b',');
        push_day(&mut out, p.lag_end);
        out.extend_from_slice(if p.reoffended() { b",1," } else { b",0," });
        push_num(&mut out, p.offences);
        out.push(b',');
        if audit.outcomes.has_appearances {
            push_num(&mut out, p.events);
        }
        out.push(b',');
        push_opt_day(&mut out, p.first_offence);
        out.push(b',');
        if let Some(first) = p.first_offence {
            push_num(&mut out, u64::try_from(first - m.index_date).unwrap_or(0));
        }
        out.push(b'\n');
        flush_if_full(&mut out, w)?;
    }
    w.write_all(&out)
}

/// tables/convictions.csv: every conviction row of an eligible person and its
/// disposition, in the order of tables/outcomes.csv, then conviction row. Other columns
/// of the row are in the input at that row number.
pub fn write_convictions_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let rules = &audit.spec.outcome.exclude;
    let codes: Vec<String> = (0..rules.len())
        .map(|i| Disposition::Rule(i as u16).code(rules))
        .collect();
    let mut out = Vec::with_capacity(FLUSH_AT + 4096);
    out.extend_from_slice(b"period,role,person_id,row,offence_date,sanction_date,disposition\n");
    for r in &audit.outcomes.rows {
        let (period, role, person) = audit.member_label(r.member as usize);
        push_field(&mut out, period);
        out.push(b',');
        out.extend_from_slice(role_name(role).as_bytes());
        out.push(b',');
        push_field(&mut out, person);
        out.push(b',');
        push_num(&mut out, u64::from(r.row) + 1);
        out.push(b',');
        push_opt_day(&mut out, r.offence_date());
        out.push(b',');
        push_opt_day(&mut out, r.sanction_date());
        out.push(b',');
        match (r.disposition, r.disposition.fixed_code()) {
            (_, Some(code)) => out.extend_from_slice(code.as_bytes()),
            (Disposition::Rule(i), None) => push_field(&mut out, &codes[usize::from(i)]),
            (_, None) => {}
        }
        out.push(b'\n');
        flush_if_full(&mut out, w)?;
    }
    w.write_all(&out)
}

/// tables/propensity.csv: the model's logit and score for everyone in it.
pub fn write_propensity_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let (Some(m), Some(pc)) = (&audit.matched, &audit.pool_cohort) else {
        return Ok(());
    };
    let mut out = Vec::with_capacity(FLUSH_AT + 4096);
    out.extend_from_slice(b"period,role,person_id,row,logit,score,matched\n");
    let line = |out: &mut Vec<u8>,
                period: &str,
                role: &str,
                id: &str,
                row: usize,
                logit: f64,
                matched: bool| {
        push_field(out, period);
        out.push(b',');
        out.extend_from_slice(role.as_bytes());
        out.push(b',');
        push_field(out, id);
        out.push(b',');
        push_num(out, row as u64 + 1);
        out.push(b',');
        out.extend_from_slice(float(logit).as_bytes());
        out.push(b',');
        out.extend_from_slice(float(crate::stats::logistic(logit)).as_bytes());
        out.extend_from_slice(if matched { b",1\n" } else { b",0\n" });
    };
    for (k, member) in audit.cohort.members.iter().enumerate() {
        if let Some(logit) = m.treated_logit[k] {
            let period = &audit.cohort.groups[member.group].period.name;
            line(
                &mut out,
                period,
                "treated",
                audit.cohort.person_id(member),
                member.person,
                logit,
                m.matched_treated[k],
            );
            flush_if_full(&mut out, w)?;
        }
    }
    for (k, member) in pc.members.iter().enumerate() {
        let period = &pc.groups[member.group].period.name;
        line(
            &mut out,
            period,
            "pool",
            pc.person_id(member),
            member.person,
            m.pool_logit[k],
            m.weights[k] > 0,
        );
        flush_if_full(&mut out, w)?;
    }
    w.write_all(&out)
}

/// tables/matches.csv: each matched pair, and each treated person left unmatched.
pub fn write_matches_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let (Some(m), Some(pc)) = (&audit.matched, &audit.pool_cohort) else {
        return Ok(());
    };
    let mut out = Vec::with_capacity(FLUSH_AT + 4096);
    out.extend_from_slice(
        b"period,treated_id,comparison_id,rank,distance,weight,unmatched_reason\n",
    );
    let c = &audit.cohort;
    let mut counts = std::collections::BTreeMap::new();
    for p in &m.matching.pairs {
        *counts.entry(p.treated).or_insert(0u64) += 1;
    }
    for p in &m.matching.pairs {
        let t = &c.members[p.treated];
        push_field(&mut out, &c.groups[t.group].period.name);
        out.push(b',');
        push_field(&mut out, c.person_id(t));
        out.push(b',');
        push_field(&mut out, pc.person_id(&pc.members[p.control]));
        out.push(b',');
        push_num(&mut out, p.rank as u64);
        out.push(b',');
        out.extend_from_slice(float(p.distance).as_bytes());
        out.extend_from_slice(b",1/");
        push_num(&mut out, counts.get(&p.treated).copied().unwrap_or(1));
        out.extend_from_slice(b",\n");
        flush_if_full(&mut out, w)?;
    }
    for u in &m.matching.unmatched {
        let t = &c.members[u.treated];
        push_field(&mut out, &c.groups[t.group].period.name);
        out.push(b',');
        push_field(&mut out, c.person_id(t));
        out.extend_from_slice(b",,,,,");
        out.extend_from_slice(unmatched_code(&u.reason).as_bytes());
        out.push(b'\n');
    }
    w.write_all(&out)
}

/// tables/balance.csv: every model term, before and after matching.
pub fn write_balance_csv(audit: &Audit, w: &mut dyn Write) -> std::io::Result<()> {
    let Some(m) = &audit.matched else {
        return Ok(());
    };
    let mut out = String::from("term,treated_mean,pool_mean,smd_before,variance_ratio_before,comparison_mean,smd_after,variance_ratio_after,within_limit\n");
    for b in &m.balance {
        let vr = |v: Option<f64>| v.map(float).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            csv_field(&b.term),
            float(b.treated_mean),
            float(b.pool_mean),
            smd(b.smd_before),
            vr(b.variance_ratio_before),
            float(b.comparison_mean),
            smd(b.smd_after),
            vr(b.variance_ratio_after),
            b.within_limit
        ));
    }
    w.write_all(out.as_bytes())
}

/// Bundle paths of the computed evidence files of this audit, in path order.
pub fn evidence_files(audit: &Audit) -> Vec<&'static str> {
    let mut v = vec![
        "report.html",
        "results.json",
        "tables/cohort.csv",
        "tables/convictions.csv",
        "tables/outcomes.csv",
    ];
    if audit.pool_cohort.is_some() {
        v.push("tables/pool_cohort.csv");
    }
    if audit.matched.is_some() {
        v.extend([
            "tables/balance.csv",
            "tables/matches.csv",
            "tables/propensity.csv",
        ]);
    }
    if audit.risk.is_some() {
        v.push("tables/risk.csv");
    }
    if !audit.individual.is_empty() {
        v.push("tables/payments.csv");
    }
    if audit.case_mix.is_some() {
        v.push("tables/case_mix.csv");
    }
    v.sort_unstable();
    v
}

/// Writes one evidence file (named as in [`evidence_files`]).
pub fn write_evidence(audit: &Audit, path: &str, w: &mut dyn Write) -> std::io::Result<()> {
    match path {
        "results.json" => w.write_all(&results_json(audit)),
        "report.html" => w.write_all(&crate::report::report_html(audit)),
        "tables/cohort.csv" => write_ledger_csv(&audit.spec, &audit.cohort, w),
        "tables/pool_cohort.csv" => match &audit.pool_cohort {
            Some(p) => write_ledger_csv(&audit.spec, p, w),
            None => Ok(()),
        },
        "tables/convictions.csv" => write_convictions_csv(audit, w),
        "tables/outcomes.csv" => write_outcomes_csv(audit, w),
        "tables/propensity.csv" => write_propensity_csv(audit, w),
        "tables/matches.csv" => write_matches_csv(audit, w),
        "tables/balance.csv" => write_balance_csv(audit, w),
        "tables/risk.csv" => write_risk_csv(audit, w),
        "tables/payments.csv" => write_payments_csv(audit, w),
        "tables/case_mix.csv" => write_case_mix_csv(audit, w),
        other => Err(std::io::Error::other(format!("no evidence file {other}"))),
    }
}

/// One evidence file's bytes, in memory.
pub fn evidence_bytes(audit: &Audit, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_evidence(audit, path, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"no\""), "\"say \"\"no\"\"\"");
    }
}
