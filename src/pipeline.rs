//! The audit pipeline, stage by stage: inputs → cohort (and pool) → matching (outcome-
//! blind) → outcomes → measures → comparison → decision → payment. Each stage is a
//! function of the previous stages' values; only [`crate::data::load`] reads files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cohort::{self, CohortResult};
use crate::compare::{self, CompareError, InferenceResult, MatchedAnalysis, WeightedTotals};
use crate::data::{self, DataError, LoadOptions, LoadedInput};
use crate::decision::{self, DecisionError, Evaluation, PaymentLine, POOLED};
use crate::exact::Ratio;
use crate::measures::{self, Totals};
use crate::outcomes::{self, MemberRef, OutcomesResult};
use crate::spec::{AuditSpec, Comparator, GroupRole, InputSpec};

/// Errors of an audit run, before any evidence is written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Decision(#[from] DecisionError),
    #[error(transparent)]
    Compare(#[from] CompareError),
    #[error(transparent)]
    Predicted(#[from] crate::predicted::PredictedError),
    #[error(transparent)]
    Claims(#[from] crate::claims::ClaimsError),
    #[error("sensitivity variant {variant}: {source}")]
    Sensitivity {
        variant: String,
        source: Box<AuditError>,
    },
    #[error("{path}: cohort period {period:?} has no eligible people ({rows} rows of the input fall in it)\n    help: check the period dates, the index-date column and the exclusion rules")]
    EmptyGroup {
        path: std::path::PathBuf,
        period: String,
        rows: u64,
    },
}

/// The inputs of one audit, hashed and parsed (the convictions possibly later: see
/// [`Convictions`]).
pub struct Inputs {
    pub people: LoadedInput,
    pub convictions: Convictions,
    pub pool: Option<LoadedInput>,
    pub risk_model: Option<LoadedInput>,
    pub offence_categories: Option<LoadedInput>,
    pub claims: Option<LoadedInput>,
}

/// The convictions input. With a comparison pool (and no sensitivity grid, whose
/// variants share every input as read) it is read only once the cohort, the pool's
/// eligible members and the comparison group are settled and the people and pool
/// columns freed: the pool and the convictions, the two largest inputs, are then never
/// held at once, and the comparison group is chosen before any conviction is read.
/// Without a pool it is read with the others: the people columns are small beside the
/// convictions, and freeing them first was measured to leave the allocator holding more
/// at the peak, not less.
#[derive(Clone)]
pub enum Convictions {
    Read(LoadedInput),
    /// To be read by [`Convictions::read`]: the input (its path as it will be read) and
    /// where its bundle copy goes.
    Later {
        input: InputSpec,
        copy_to: Option<PathBuf>,
    },
}

impl Convictions {
    /// The input, hashed and parsed (now, if it was left for later).
    pub fn read(self, spec: &AuditSpec) -> Result<LoadedInput, DataError> {
        match self {
            Convictions::Read(loaded) => Ok(loaded),
            Convictions::Later { input, copy_to } => {
                read_convictions(spec, &input, copy_to.as_deref())
            }
        }
    }
}

/// Hashes and reads the convictions input. Every column is read: exact duplicates are
/// judged on the whole row.
fn read_convictions(
    spec: &AuditSpec,
    input: &InputSpec,
    copy_to: Option<&Path>,
) -> Result<LoadedInput, DataError> {
    tracing::info!(input = %input.path.display(), rss_mb = resident_mb(), "hashing and reading");
    let loaded = data::load_with(
        input,
        &outcomes::conviction_columns(spec),
        &LoadOptions {
            all_columns: true,
            date_columns: &outcomes::dates_parsed_on_read(spec),
            copy_to,
        },
    )?;
    tracing::info!(
        rss_mb = resident_mb(),
        peak_mb = peak_mb(),
        "convictions read"
    );
    Ok(loaded)
}

/// The matched comparison of one scope (a period, or all periods pooled).
#[derive(Debug, Clone)]
pub struct MatchedScope {
    pub scope: String,
    /// Matched cohort members.
    pub treated: Totals,
    /// The weighted comparison group.
    pub comparison: WeightedTotals,
    /// Every eligible pool member, unweighted: the naive comparison.
    pub naive: Totals,
    pub inference: InferenceResult,
}

/// A completed audit: everything the evidence is made from.
pub struct Audit {
    pub spec: AuditSpec,
    pub people: LoadedInput,
    pub convictions: LoadedInput,
    pub pool: Option<LoadedInput>,
    pub risk_model: Option<LoadedInput>,
    pub offence_categories: Option<LoadedInput>,
    pub claims: Option<LoadedInput>,
    /// The claims file's figures set against the recomputation.
    pub reconciliation: Option<crate::claims::Reconciliation>,
    pub cohort: CohortResult,
    /// Risk scores of the cohort's members (predicted comparisons).
    pub risk: Option<crate::predicted::RiskScores>,
    pub predicted_scopes: Vec<crate::predicted::PredictedScope>,
    /// Per-person payments (payment kind "per-person").
    pub individual: Vec<crate::predicted::PersonPayment>,
    /// Areas × cohort periods against case-mix-adjusted baselines.
    pub case_mix: Option<crate::casemix::CaseMixResult>,
    /// Eligible comparison pool (matched comparisons only).
    pub pool_cohort: Option<CohortResult>,
    /// Outcomes of the cohort's members, then of the pool's eligible members.
    pub outcomes: OutcomesResult,
    /// Per cohort group, in group order.
    pub totals: Vec<Totals>,
    /// All cohort periods together.
    pub pooled: Totals,
    /// The comparator's value for each evaluation's scope, in evaluation order.
    pub comparator: Ratio,
    pub matched: Option<MatchedAnalysis>,
    pub matched_scopes: Vec<MatchedScope>,
    pub evaluations: Vec<Evaluation>,
    pub payments: Vec<PaymentLine>,
    pub total_minor: i128,
    /// The decision over the `[sensitivity]` grid, when the spec has one.
    pub sensitivity: Option<crate::sensitivity::SensitivityResult>,
}

impl Audit {
    /// Overall: every evaluation met.
    pub fn all_met(&self) -> bool {
        self.evaluations.iter().all(|e| e.met)
    }

    /// Number of cohort members; outcome members at and after this index are pool members.
    pub fn cohort_members(&self) -> usize {
        self.cohort.members.len()
    }

    /// Group (period) name, role and person id of an outcome member.
    pub fn member_label(&self, k: usize) -> (&str, GroupRole, &str) {
        let n = self.cohort.members.len();
        let (c, m) = match (&self.pool_cohort, k >= n) {
            (Some(p), true) => (p, &p.members[k - n]),
            _ => (
                &self.cohort,
                &self.cohort.members[k.min(n.saturating_sub(1))],
            ),
        };
        let g = &c.groups[m.group];
        (g.period.name.as_str(), g.role, c.person_id(m))
    }

    /// Every input, in the order of [`AuditSpec::inputs`].
    pub fn inputs(&self) -> Vec<&LoadedInput> {
        let mut v = vec![&self.people, &self.convictions];
        v.extend(self.pool.as_ref());
        v.extend(self.risk_model.as_ref());
        v.extend(self.offence_categories.as_ref());
        v.extend(self.claims.as_ref());
        v
    }
}

/// Resident memory of this process in MB (Linux), for progress logs; 0 elsewhere.
pub fn resident_mb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096 / 1_000_000)
        .unwrap_or(0)
}

/// Peak resident memory so far in MB (Linux `VmHWM`), for progress logs; 0 elsewhere.
pub fn peak_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024 / 1_000_000)
        .unwrap_or(0)
}

/// Hashes and reads every input. `paths` replaces the path of inputs by name (replay
/// reads the bundle's copies).
pub fn load_inputs(
    spec: &AuditSpec,
    paths: &BTreeMap<String, PathBuf>,
) -> Result<Inputs, DataError> {
    load_inputs_copying(spec, paths, None)
}

/// [`load_inputs`], writing each table input's bundle copy under `copy_root` (a
/// bundle being assembled, [`crate::bundle::Staging::inputs_root`]) on the pass that
/// hashes it.
pub fn load_inputs_copying(
    spec: &AuditSpec,
    paths: &BTreeMap<String, PathBuf>,
    copy_root: Option<&Path>,
) -> Result<Inputs, DataError> {
    let copy_of = |input: &InputSpec| {
        copy_root.map(|root| {
            root.join(crate::evidence::input_bundle_path(
                &input.name,
                input.format,
            ))
        })
    };
    let with_path = |input: &InputSpec| -> InputSpec {
        let mut i = input.clone();
        if let Some(p) = paths.get(&input.name) {
            i.path = p.clone();
        }
        i
    };
    tracing::info!(input = %spec.people.path.display(), "hashing and reading");
    let people_spec = with_path(&spec.people);
    let people_copy = copy_of(&people_spec);
    let people = data::load_with(
        &people_spec,
        &crate::sensitivity::people_columns(spec, &people_spec),
        &LoadOptions {
            copy_to: people_copy.as_deref(),
            ..LoadOptions::default()
        },
    )?;
    let pool = match &spec.pool {
        Some(p) => {
            let pool_spec = with_path(p);
            tracing::info!(input = %pool_spec.path.display(), "hashing and reading");
            let pool_copy = copy_of(&pool_spec);
            Some(data::load_with(
                &pool_spec,
                &crate::sensitivity::people_columns(spec, &pool_spec),
                &LoadOptions {
                    copy_to: pool_copy.as_deref(),
                    ..LoadOptions::default()
                },
            )?)
        }
        None => None,
    };
    let convictions_spec = with_path(&spec.convictions);
    let convictions_copy = copy_of(&convictions_spec);
    let convictions = if spec.pool.is_none() || spec.sensitivity.is_some() {
        Convictions::Read(read_convictions(
            spec,
            &convictions_spec,
            convictions_copy.as_deref(),
        )?)
    } else {
        Convictions::Later {
            input: convictions_spec,
            copy_to: convictions_copy,
        }
    };
    let document = |input: &Option<InputSpec>| -> Result<Option<LoadedInput>, DataError> {
        input
            .as_ref()
            .map(|i| data::load_document(&with_path(i)))
            .transpose()
    };
    let risk_model = document(&spec.risk_model)?;
    let offence_categories = document(&spec.offence_categories)?;
    let claims = document(&spec.claims)?;
    tracing::info!(rss_mb = resident_mb(), peak_mb = peak_mb(), "inputs read");
    Ok(Inputs {
        people,
        convictions,
        pool,
        risk_model,
        offence_categories,
        claims,
    })
}

/// Runs every stage after loading.
pub fn audit(spec: AuditSpec, inputs: Inputs) -> Result<Audit, AuditError> {
    // The sensitivity grid reuses the inputs as read (their columns are shared).
    let shared = spec
        .sensitivity
        .as_ref()
        .map(|_| crate::sensitivity::share(&inputs));
    let Inputs {
        mut people,
        convictions,
        mut pool,
        risk_model,
        offence_categories,
        claims,
    } = inputs;
    tracing::info!(rows = people.rows(), "building cohort");
    let cohort = cohort::build(&spec, &people)?;
    tracing::debug!(rss_mb = resident_mb(), "cohort built");
    let pool_cohort = match (&spec.pool, &pool) {
        (Some(pool_spec), Some(pool)) => Some(cohort::build_pool(&spec, pool_spec, pool)?),
        _ => None,
    };
    for (g, group) in cohort.groups.iter().enumerate() {
        if !cohort.members.iter().any(|m| m.group == g) {
            return Err(AuditError::EmptyGroup {
                path: spec.people.path.clone(),
                period: group.period.name.clone(),
                rows: cohort.group_rows(g),
            });
        }
    }

    // Matching runs before any outcome exists: it cannot look at them.
    if pool_cohort.is_some() {
        tracing::debug!(
            rss_mb = resident_mb(),
            peak_mb = peak_mb(),
            "pool cohort built"
        );
    }
    let matched = match (&spec.comparator, &spec.pool, &pool, &pool_cohort) {
        (Comparator::Matched(m), Some(pool_spec), Some(pool), Some(pool_cohort)) => {
            tracing::info!(
                pool = pool_cohort.members.len(),
                "fitting the propensity model and matching"
            );
            Some(compare::match_pool(
                &spec,
                m,
                &people,
                &cohort,
                pool_spec,
                pool,
                pool_cohort,
            )?)
        }
        _ => None,
    };

    if matched.is_some() {
        tracing::debug!(
            rss_mb = resident_mb(),
            peak_mb = peak_mb(),
            "comparison group chosen"
        );
    }
    let risk = match (&spec.risk, &risk_model, &offence_categories) {
        (Some(r), Some(model), Some(map)) => Some(crate::predicted::score_cohort(
            &spec, r, model, map, &people, &cohort,
        )?),
        _ => None,
    };

    let areas = match &spec.comparator {
        Comparator::CaseMix(c) => Some(crate::casemix::assign_areas(&spec, c, &people, &cohort)?),
        _ => None,
    };

    // The people and pool columns are not needed any more: free them before the
    // convictions are read (see [`Convictions`]).
    people.release_frame();
    if let Some(p) = pool.as_mut() {
        p.release_frame();
    }
    tracing::debug!(
        rss_mb = resident_mb(),
        peak_mb = peak_mb(),
        "people and pool columns freed"
    );
    let mut convictions = convictions.read(&spec)?;
    let mut members: Vec<MemberRef<'_>> = cohort
        .members
        .iter()
        .map(|m| MemberRef {
            person_id: cohort.person_id(m),
            index_date: m.index_date,
        })
        .collect();
    if let Some(pc) = &pool_cohort {
        members.extend(pc.members.iter().map(|m| MemberRef {
            person_id: pc.person_id(m),
            index_date: m.index_date,
        }));
    }
    tracing::info!(
        members = members.len(),
        rows = convictions.rows(),
        rss_mb = resident_mb(),
        peak_mb = peak_mb(),
        "computing outcomes"
    );
    let outcomes = outcomes::compute(&spec, &members, &mut convictions)?;
    convictions.release_frame();
    drop(members);
    tracing::info!(
        rss_mb = resident_mb(),
        peak_mb = peak_mb(),
        "outcomes computed"
    );
    let n_cohort = cohort.members.len();
    let cohort_outcomes = &outcomes.people[..n_cohort];
    let pool_outcomes = &outcomes.people[n_cohort..];
    let totals = measures::group_totals(&cohort, cohort_outcomes);
    let mut pooled = Totals::default();
    for (g, group) in cohort.groups.iter().enumerate() {
        if group.role == GroupRole::Treated {
            pooled.add(&totals[g]);
        }
    }
    let o = &spec.outcome;
    let name = measures::measure_name(o.measure);
    let undefined = |scope: &str, people: u64, reoffenders: u64| DecisionError::Undefined {
        scope: scope.to_string(),
        what: name.to_string(),
        why: format!("{people} people, {reoffenders} reoffenders"),
    };

    // Scopes evaluated: each cohort period (per-period threshold), then all pooled.
    let th = &spec.threshold;
    let mut scopes: Vec<(String, Option<usize>, Ratio)> = Vec::new();
    let is_case_mix = matches!(spec.comparator, Comparator::CaseMix(_));
    if let (Some(min), false) = (th.per_period, is_case_mix) {
        for (g, group) in cohort.groups.iter().enumerate() {
            if group.role == GroupRole::Treated {
                scopes.push((group.period.name.clone(), Some(g), min));
            }
        }
    }
    if let Some(min) = th.pooled {
        scopes.push((POOLED.to_string(), None, min));
    }

    let mut evaluations = Vec::new();
    let mut matched_scopes = Vec::new();
    let mut predicted_scopes = Vec::new();
    let mut headline_comparator = None;
    for (scope, group, min) in scopes {
        let period_name = group.map(|g| cohort.groups[g].period.name.clone());
        let in_cohort_scope = |g: usize| match group {
            Some(sg) => g == sg,
            None => cohort.groups[g].role == GroupRole::Treated,
        };
        let (treated_totals, comparator, inference) =
            match (&spec.comparator, &matched, &pool_cohort) {
                (Comparator::FixedBaseline { value, .. }, _, _) => {
                    (group.map(|g| totals[g]).unwrap_or(pooled), *value, None)
                }
                (Comparator::Historical { period }, _, _) => {
                    let g = cohort
                        .groups
                        .iter()
                        .position(|g| g.role == GroupRole::Baseline)
                        .unwrap_or(0);
                    let value = totals[g].measure(o.measure, o.unit).ok_or_else(|| {
                        undefined(&period.name, totals[g].people, totals[g].reoffenders)
                    })?;
                    (group.map(|g| totals[g]).unwrap_or(pooled), value, None)
                }
                (Comparator::Matched(_), Some(analysis), Some(pc)) => {
                    // Pool groups carry the same period names as the cohort's.
                    let in_pool_scope = |g: usize| match &period_name {
                        Some(name) => pc.groups[g].period.name == *name,
                        None => true,
                    };
                    let treated = compare::matched_treated_totals(
                        analysis,
                        &cohort,
                        cohort_outcomes,
                        in_cohort_scope,
                    );
                    let comparison =
                        compare::weighted_totals(analysis, pc, pool_outcomes, in_pool_scope);
                    let mut naive = Totals::default();
                    let pool_totals = measures::group_totals(pc, pool_outcomes);
                    for (g, t) in pool_totals.iter().enumerate() {
                        if in_pool_scope(g) {
                            naive.add(t);
                        }
                    }
                    let value = comparison.measure(o.measure, o.unit).ok_or_else(|| {
                        undefined(&format!("{scope} (comparison)"), comparison.people, 0)
                    })?;
                    let rate = treated
                        .measure(crate::spec::Measure::Binary, o.unit)
                        .map(|r| r.to_f64())
                        .unwrap_or(0.0);
                    let inference = compare::inference(
                        &spec,
                        analysis,
                        &cohort,
                        cohort_outcomes,
                        pc,
                        pool_outcomes,
                        in_cohort_scope,
                        in_pool_scope,
                        rate,
                    )?;
                    matched_scopes.push(MatchedScope {
                        scope: scope.clone(),
                        treated,
                        comparison,
                        naive,
                        inference: inference.clone(),
                    });
                    (treated, value, Some(inference))
                }
                (Comparator::Matched(_), _, _) => {
                    return Err(AuditError::Compare(CompareError::Match(
                        "a matched comparison needs the pool input".into(),
                    )))
                }
                (Comparator::None, _, _) => {
                    return Err(AuditError::Compare(CompareError::Inference(
                        "comparator kind \"none\" has no evaluation".into(),
                    )))
                }
                (Comparator::CaseMix(_), _, _) => {
                    return Err(AuditError::Compare(CompareError::Inference(
                        "comparator kind \"case-mix-adjusted\" is evaluated per area and period"
                            .into(),
                    )))
                }
                (Comparator::Predicted, _, _) => {
                    let scores = risk.as_ref().ok_or_else(|| {
                        CompareError::Inference("a predicted comparison needs risk scores".into())
                    })?;
                    let ps = crate::predicted::compare_scope(
                        &spec,
                        &scope,
                        scores,
                        &cohort,
                        cohort_outcomes,
                        in_cohort_scope,
                    )
                    .ok_or_else(|| undefined(&scope, 0, 0))?;
                    let t = Totals {
                        people: ps.people,
                        reoffenders: ps.reoffenders,
                        ..Totals::default()
                    };
                    let (value, inference) = (ps.predicted, ps.inference.clone());
                    predicted_scopes.push(ps);
                    (t, value, inference)
                }
            };
        let treated = treated_totals
            .measure(o.measure, o.unit)
            .ok_or_else(|| undefined(&scope, treated_totals.people, treated_totals.reoffenders))?;
        let mut e = decision::evaluate(
            &scope,
            treated_totals.people,
            o.measure,
            treated,
            comparator,
            th.kind,
            min,
        )?;
        if let Some(inf) = &inference {
            e.significant = Some(inf.significant);
            if th.require_significance && !inf.significant {
                e.met = false;
            }
        }
        headline_comparator.get_or_insert(comparator);
        evaluations.push(e);
    }
    let mut comparator = match (&spec.comparator, headline_comparator) {
        (Comparator::FixedBaseline { value, .. }, _) => *value,
        (_, Some(c)) => c,
        (_, None) => Ratio::ZERO,
    };
    // Case-mix comparisons evaluate and price each area and period themselves.
    let (mut payments, case_mix) = match (&areas, &risk) {
        (Some(areas), Some(scores)) => {
            let (result, e, lines) =
                crate::casemix::compare(&spec, areas, &cohort, cohort_outcomes, scores)?;
            evaluations = e;
            if let Some(rate) = result.summaries.last().and_then(|s| s.baseline.rate()) {
                comparator = rate;
            }
            (lines, Some(result))
        }
        _ => (decision::pay(&spec.payment, &evaluations), None),
    };
    let mut individual = Vec::new();
    if let (crate::spec::Mechanism::PerPerson { pricing, cap_minor }, Some(scores)) =
        (&spec.payment.mechanism, &risk)
    {
        individual = crate::predicted::individual_payments(
            pricing,
            *cap_minor,
            scores,
            &cohort,
            cohort_outcomes,
        );
        let uncapped: i128 = individual.iter().map(|p| p.uncapped_minor).sum();
        for (g, group) in cohort.groups.iter().enumerate() {
            if group.role != GroupRole::Treated {
                continue;
            }
            let mine = individual
                .iter()
                .filter(|p| cohort.members[p.member].group == g);
            let (mut paid, mut earners, mut before) = (0i128, 0u64, 0i128);
            for p in mine {
                paid += p.paid_minor;
                before += p.uncapped_minor;
                earners += u64::from(p.uncapped_minor > 0);
            }
            let capped = uncapped > cap_minor.unwrap_or(i128::MAX);
            payments.push(PaymentLine {
                scope: group.period.name.clone(),
                met: true,
                units: None,
                uncapped_minor: Some(before),
                amount_minor: paid,
                explanation: format!(
                    "{earners} people who did not reoffend earn {} {} in all ({}){}",
                    spec.payment.currency,
                    crate::exact::minor_to_decimal(paid),
                    pricing.describe(),
                    if capped {
                        format!(
                            ", scaled pro rata from {} to fit the cap",
                            crate::exact::minor_to_decimal(before)
                        )
                    } else {
                        String::new()
                    }
                ),
            });
        }
    }
    let total_minor = payments.iter().map(|p| p.amount_minor).sum();
    let mut audit = Audit {
        spec,
        people,
        convictions,
        pool,
        risk_model,
        offence_categories,
        claims,
        reconciliation: None,
        cohort,
        risk,
        predicted_scopes,
        individual,
        case_mix,
        pool_cohort,
        outcomes,
        totals,
        pooled,
        comparator,
        matched,
        matched_scopes,
        evaluations,
        payments,
        total_minor,
        sensitivity: None,
    };
    if let Some(c) = &audit.claims {
        let file = crate::claims::parse(&c.path, c.text.as_deref().unwrap_or(""))?;
        audit.reconciliation = Some(crate::claims::reconcile(&c.path, &file, &audit)?);
    }
    if let (Some(grid), Some(shared)) = (&audit.spec.sensitivity, &shared) {
        audit.sensitivity = Some(crate::sensitivity::run(grid, shared, &audit)?);
    }
    Ok(audit)
}
