//! Predicted-versus-actual comparisons: each cohort member is scored by a risk model
//! (OGRS3, read as data), and the cohort's actual binary reoffending rate is compared
//! with its own predicted rate, the mean of its members' probabilities.
//!
//! Exactness: each probability is rounded once, half away from zero, to a whole number
//! of millionths, and the predicted rate is the exact ratio of their integer sum to
//! 1,000,000 × people; the decision is then made in exact arithmetic like any other.
//! People who cannot be scored (a missing or impossible field, an unknown offence code)
//! are reported with the reason and left out of both sides of the comparison — never
//! scored as zero.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::cohort::CohortResult;
use crate::compare::InferenceResult;
use crate::data::{DataError, LoadedInput};
use crate::exact::Ratio;
use crate::outcomes::PersonOutcome;
use crate::risk::{OffenceMap, OgrsInputs, OgrsScore, RiskError, RiskModel, Sex};
use crate::spec::{AuditSpec, GroupRole, InferenceMethod, RiskSpec};

/// Millionths: the fixed precision of a stored probability.
pub const MICRO: i128 = 1_000_000;

/// Errors reading the risk model itself.
#[derive(Debug, thiserror::Error)]
pub enum PredictedError {
    #[error("{path}: {source}")]
    Model {
        path: std::path::PathBuf,
        #[source]
        source: RiskError,
    },
    #[error(transparent)]
    Data(#[from] DataError),
}

/// A cohort member's score, or why there is none.
#[derive(Debug, Clone)]
pub struct PersonRisk {
    pub inputs: Option<OgrsInputs>,
    pub score: Option<OgrsScore>,
    /// The probability used (of the spec's horizon), in millionths.
    pub micro: Option<i128>,
    /// Stable code of why the person could not be scored.
    pub unscored: Option<String>,
}

/// Scores of every cohort member (in cohort member order).
#[derive(Debug, Clone)]
pub struct RiskScores {
    pub model_name: String,
    pub model_version: String,
    pub female_juvenile_sign: &'static str,
    pub horizon_years: u8,
    pub people: Vec<PersonRisk>,
}

fn whole(v: Option<&str>) -> Option<u32> {
    v.map(str::trim_ascii).and_then(|s| s.parse().ok())
}

/// Scores every cohort member from the people input.
pub fn score_cohort(
    spec: &AuditSpec,
    risk: &RiskSpec,
    model_input: &LoadedInput,
    map_input: &LoadedInput,
    people: &LoadedInput,
    cohort: &CohortResult,
) -> Result<RiskScores, PredictedError> {
    let model =
        RiskModel::from_toml(model_input.text.as_deref().unwrap_or("")).map_err(|source| {
            PredictedError::Model {
                path: model_input.path.clone(),
                source,
            }
        })?;
    let map = OffenceMap::from_csv(map_input.text.as_deref().unwrap_or(""), &model).map_err(
        |source| PredictedError::Model {
            path: map_input.path.clone(),
            source,
        },
    )?;
    let col = |c: &str| people.text(spec.people.column(c));
    let (sex, age, age_conv, age_first, previous, offence) = (
        col(&risk.sex)?,
        col(&risk.age)?,
        col(&risk.age_at_conviction)?,
        col(&risk.age_at_first_sanction)?,
        col(&risk.previous_sanctions)?,
        col(&risk.offence)?,
    );
    let mut out = Vec::with_capacity(cohort.members.len());
    for m in &cohort.members {
        let row = m.person;
        let missing = |field: &str| PersonRisk {
            inputs: None,
            score: None,
            micro: None,
            unscored: Some(format!("missing-{field}")),
        };
        let s = sex.get(row).map(str::trim_ascii).unwrap_or("");
        let sex_value = if risk.male.iter().any(|v| v == s) {
            Sex::Male
        } else if risk.female.iter().any(|v| v == s) {
            Sex::Female
        } else {
            out.push(missing("sex"));
            continue;
        };
        let fields = [
            ("age", whole(age.get(row))),
            ("age-at-conviction", whole(age_conv.get(row))),
            ("age-at-first-sanction", whole(age_first.get(row))),
            ("previous-sanctions", whole(previous.get(row))),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, v)| v.is_none()) {
            out.push(missing(field));
            continue;
        }
        let [a, ac, af, prev] = fields.map(|(_, v)| v.unwrap_or(0));
        let code = offence.get(row).map(str::trim_ascii).unwrap_or("");
        let Some(category) = map.category(code) else {
            out.push(PersonRisk {
                inputs: None,
                score: None,
                micro: None,
                unscored: Some("unknown-offence-code".into()),
            });
            continue;
        };
        let inputs = OgrsInputs {
            sex: sex_value,
            age_at_follow_up_start: a,
            total_sanctions: prev.saturating_add(1),
            age_at_current_conviction: ac,
            age_at_first_sanction: af,
            offence_category: category.to_string(),
        };
        match model.score(&inputs) {
            Ok(score) => {
                let p = if risk.horizon_years == 1 {
                    score.p1
                } else {
                    score.p2
                };
                let micro = Ratio::parse_decimal(&crate::risk::fixed(p, 6))
                    .map(|r| r.numer() * (MICRO / r.denom()))
                    .ok();
                out.push(PersonRisk {
                    inputs: Some(inputs),
                    score: Some(score),
                    micro,
                    unscored: micro.is_none().then(|| "not-finite".to_string()),
                });
            }
            Err(e) => out.push(PersonRisk {
                inputs: Some(inputs),
                score: None,
                micro: None,
                unscored: Some(e.code().to_string()),
            }),
        }
    }
    Ok(RiskScores {
        model_name: model.name().to_string(),
        model_version: model.version().to_string(),
        female_juvenile_sign: model.female_juvenile_sign().as_str(),
        horizon_years: risk.horizon_years,
        people: out,
    })
}

/// Predicted against actual, for one scope.
#[derive(Debug, Clone)]
pub struct PredictedScope {
    pub scope: String,
    /// Scored people in scope.
    pub people: u64,
    /// Cohort members in scope who could not be scored.
    pub unscored: u64,
    pub reoffenders: u64,
    /// Σ probabilities, in millionths.
    pub predicted_micro: i128,
    pub predicted: Ratio,
    pub actual: Ratio,
    pub inference: Option<InferenceResult>,
}

/// Compares the scored members in scope: actual binary rate against mean predicted
/// probability, with a normal-approximation interval for actual − predicted (the
/// variance of a sum of independent Bernoulli trials with the predicted
/// probabilities, Σ p(1 − p) / n²).
pub fn compare_scope(
    spec: &AuditSpec,
    scope: &str,
    scores: &RiskScores,
    cohort: &CohortResult,
    outcomes: &[PersonOutcome],
    in_scope: impl Fn(usize) -> bool,
) -> Option<PredictedScope> {
    let mut people = 0u64;
    let mut unscored = 0u64;
    let mut reoffenders = 0u64;
    let mut sum = 0i128;
    let mut variance = 0.0f64;
    for ((m, o), r) in cohort.members.iter().zip(outcomes).zip(&scores.people) {
        if cohort.groups[m.group].role != GroupRole::Treated || !in_scope(m.group) {
            continue;
        }
        let Some(micro) = r.micro else {
            unscored += 1;
            continue;
        };
        people += 1;
        sum += micro;
        let p = micro as f64 / MICRO as f64;
        variance += p * (1.0 - p);
        if o.reoffended() {
            reoffenders += 1;
        }
    }
    let n = i128::from(people);
    let predicted = Ratio::new(sum, n * MICRO)?;
    let actual = Ratio::new(i128::from(reoffenders), n)?;
    let inference = spec.inference.as_ref().and_then(|inf| {
        let confidence = inf.confidence.to_f64();
        let alpha = 1.0 - confidence;
        let se = variance.sqrt() / people as f64;
        let normal = Normal::new(0.0, 1.0).ok()?;
        let z = normal.inverse_cdf(1.0 - alpha / 2.0);
        let d = actual.minus(predicted).to_f64();
        let p_value = if se > 0.0 {
            (2.0 * (1.0 - normal.cdf(d.abs() / se))).min(1.0)
        } else {
            1.0
        };
        Some(InferenceResult {
            method: InferenceMethod::Welch,
            confidence,
            difference: d,
            std_error: se,
            lower: d - z * se,
            upper: d + z * se,
            p_value,
            df: None,
            significant: p_value <= alpha,
            jdl_note: None,
        })
    });
    Some(PredictedScope {
        scope: scope.to_string(),
        people,
        unscored,
        reoffenders,
        predicted_micro: sum,
        predicted,
        actual,
        inference,
    })
}

/// One person's payment under a per-person (risk-weighted) mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonPayment {
    /// Index into the cohort's members.
    pub member: usize,
    pub reoffended: bool,
    /// The person's probability in millionths (`None`: unscored, paid nothing).
    pub micro: Option<i128>,
    /// price × probability, rounded toward zero (0 for reoffenders and the unscored).
    pub uncapped_minor: i128,
    /// After pro-rata scaling to the cap.
    pub paid_minor: i128,
}

/// Per-person payments (Lewisham): each cohort member in a cohort period who does not
/// reoffend earns price × their probability, rounded toward zero to a minor unit; when
/// the total exceeds the cap, every amount is scaled by cap / total and rounded toward
/// zero again (so the total never exceeds the cap; the pennies left by rounding are
/// not paid).
pub fn individual_payments(
    pricing: &crate::spec::PersonPricing,
    cap_minor: Option<i128>,
    scores: &RiskScores,
    cohort: &CohortResult,
    outcomes: &[PersonOutcome],
) -> Vec<PersonPayment> {
    let mut out = Vec::new();
    for (k, ((m, o), r)) in cohort
        .members
        .iter()
        .zip(outcomes)
        .zip(&scores.people)
        .enumerate()
    {
        if cohort.groups[m.group].role != GroupRole::Treated {
            continue;
        }
        let reoffended = o.reoffended();
        let uncapped = match (reoffended, r.micro) {
            (false, Some(micro)) => pricing.uncapped_minor(micro),
            _ => 0,
        };
        out.push(PersonPayment {
            member: k,
            reoffended,
            micro: r.micro,
            uncapped_minor: uncapped,
            paid_minor: uncapped,
        });
    }
    let total: i128 = out.iter().map(|p| p.uncapped_minor).sum();
    if let Some(cap) = cap_minor {
        if total > cap && total > 0 {
            for p in &mut out {
                p.paid_minor = p.uncapped_minor * cap / total;
            }
        }
    }
    out
}
