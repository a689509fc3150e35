//! The audit pipeline, stage by stage: inputs → cohort → outcomes → measures →
//! comparison → decision → payment. Each stage is a function of the previous stages'
//! values; only [`crate::data::load`] reads files.

use crate::cohort::{self, CohortResult};
use crate::data::{self, DataError, LoadedInput};
use crate::decision::{self, DecisionError, Evaluation, PaymentLine, POOLED};
use crate::exact::Ratio;
use crate::measures::{self, Totals};
use crate::outcomes::{self, OutcomesResult};
use crate::spec::{AuditSpec, Comparator, GroupRole, InputSpec};

/// Errors of an audit run, before any evidence is written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Decision(#[from] DecisionError),
    #[error("{path}: cohort period {period:?} has no eligible people ({rows} rows of the people input fall in it)\n    help: check the period dates, the index-date column and the exclusion rules")]
    EmptyGroup {
        path: std::path::PathBuf,
        period: String,
        rows: u64,
    },
}

/// A completed audit: everything the evidence is made from.
pub struct Audit {
    pub spec: AuditSpec,
    pub people: LoadedInput,
    pub convictions: LoadedInput,
    pub cohort: CohortResult,
    pub outcomes: OutcomesResult,
    /// Per group, in group order.
    pub totals: Vec<Totals>,
    /// All cohort periods together.
    pub pooled: Totals,
    pub comparator: Ratio,
    pub evaluations: Vec<Evaluation>,
    pub payments: Vec<PaymentLine>,
    pub total_minor: i128,
}

impl Audit {
    /// Overall: every evaluation met.
    pub fn all_met(&self) -> bool {
        self.evaluations.iter().all(|e| e.met)
    }
}

/// Where to read each input from: normally the spec's own paths; replay substitutes the
/// bundle's copies.
pub fn load_inputs(
    spec: &AuditSpec,
    people: &InputSpec,
    convictions: &InputSpec,
) -> Result<(LoadedInput, LoadedInput), DataError> {
    tracing::info!(input = %people.path.display(), "hashing and reading");
    let people = data::load(people, &cohort::people_columns(spec), false)?;
    tracing::info!(input = %convictions.path.display(), "hashing and reading");
    // Every column of the convictions input is read: exact duplicates are judged on the
    // whole row.
    let convictions = data::load(convictions, &outcomes::conviction_columns(spec), true)?;
    tracing::info!("inputs read");
    Ok((people, convictions))
}

/// Runs every stage after loading.
pub fn audit(
    spec: AuditSpec,
    people: LoadedInput,
    convictions: LoadedInput,
) -> Result<Audit, AuditError> {
    tracing::info!(rows = people.rows(), "building cohort");
    let cohort = cohort::build(&spec, &people)?;
    tracing::info!(
        members = cohort.members.len(),
        rows = convictions.rows(),
        "computing outcomes"
    );
    let outcomes = outcomes::compute(&spec, &cohort, &convictions)?;
    tracing::info!("outcomes computed");
    let totals = measures::group_totals(&cohort, &outcomes);
    for (g, group) in cohort.groups.iter().enumerate() {
        if totals[g].people == 0 {
            let rows = cohort.group_rows(g);
            return Err(AuditError::EmptyGroup {
                path: spec.people.path.clone(),
                period: group.period.name.clone(),
                rows,
            });
        }
    }
    let mut pooled = Totals::default();
    for (g, group) in cohort.groups.iter().enumerate() {
        if group.role == GroupRole::Treated {
            pooled.add(&totals[g]);
        }
    }
    let o = &spec.outcome;
    let name = measures::measure_name(o.measure);
    let undefined = |scope: &str, t: &Totals| DecisionError::Undefined {
        scope: scope.to_string(),
        what: name.to_string(),
        why: format!("{} people, {} reoffenders", t.people, t.reoffenders),
    };
    let comparator = match &spec.comparator {
        Comparator::FixedBaseline { value, .. } => *value,
        Comparator::Historical { period } => {
            let g = cohort
                .groups
                .iter()
                .position(|g| g.role == GroupRole::Baseline)
                .unwrap_or(0);
            totals[g]
                .measure(o.measure, o.unit)
                .ok_or_else(|| undefined(&period.name, &totals[g]))?
        }
    };
    let th = &spec.threshold;
    let mut evaluations = Vec::new();
    if let Some(min) = th.per_period {
        for (g, group) in cohort.groups.iter().enumerate() {
            if group.role != GroupRole::Treated {
                continue;
            }
            let scope = &group.period.name;
            let treated = totals[g]
                .measure(o.measure, o.unit)
                .ok_or_else(|| undefined(scope, &totals[g]))?;
            evaluations.push(decision::evaluate(
                scope,
                totals[g].people,
                o.measure,
                treated,
                comparator,
                th.kind,
                min,
            )?);
        }
    }
    if let Some(min) = th.pooled {
        let treated = pooled
            .measure(o.measure, o.unit)
            .ok_or_else(|| undefined(POOLED, &pooled))?;
        evaluations.push(decision::evaluate(
            POOLED,
            pooled.people,
            o.measure,
            treated,
            comparator,
            th.kind,
            min,
        )?);
    }
    let payments = decision::pay(&spec.payment, &evaluations);
    let total_minor = payments.iter().map(|p| p.amount_minor).sum();
    Ok(Audit {
        spec,
        people,
        convictions,
        cohort,
        outcomes,
        totals,
        pooled,
        comparator,
        evaluations,
        payments,
        total_minor,
    })
}
