//! Decision and payment: compare each cohort period (and the pooled cohort) with the
//! comparator, test the threshold exactly, and work out what is owed.
//!
//! - improvement = comparator − treated for measures where lower is better (all but
//!   days to first), treated − comparator otherwise;
//! - `points`: the target is met when improvement ≥ minimum;
//! - `relative`: met when improvement ≥ minimum × comparator (the comparator must be
//!   above zero);
//! - a target exactly on the line is met.
//!
//! Money is integer minor units, and every amount is what moves *after* the audit:
//! positive is owed to the provider, negative is repaid by the provider.
//! - `at-risk` with `on_miss = "repay"`: the amount at risk was paid in advance; a met
//!   target moves nothing (full payment: the provider keeps it), a missed one repays it.
//! - `at-risk` with `on_miss = "nothing"`: the amount is withheld until the target is
//!   met; met pays it, missed pays nothing.
//! - `per-unit`: met pays price × units of improvement, rounded toward zero to a whole
//!   minor unit, then capped (per line); missed pays nothing or repays `repay_minor`.

use crate::exact::Ratio;
use crate::measures::lower_is_better;
use crate::spec::{
    Measure, Mechanism, MissRule, Payment, PaymentBasis, PaymentUnit, ThresholdKind,
};

/// Stable finding codes for decisions.
pub const THRESHOLD_MET: &str = "threshold-met";
/// The target was missed.
pub const THRESHOLD_NOT_MET: &str = "threshold-not-met";
/// The improvement is large enough but not statistically significant, and the spec
/// requires significance.
pub const NOT_SIGNIFICANT: &str = "not-significant";

/// One comparison of a treated measure with the comparator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// A period name, or `pooled`.
    pub scope: String,
    pub people: u64,
    pub treated: Ratio,
    pub comparator: Ratio,
    /// treated − comparator.
    pub difference: Ratio,
    /// Improvement in the contract's direction.
    pub improvement: Ratio,
    /// improvement / comparator, when the comparator is not zero.
    pub relative_improvement: Option<Ratio>,
    pub threshold_kind: ThresholdKind,
    /// The minimum as written in the spec.
    pub minimum: Ratio,
    /// The improvement needed, in the measure's units.
    pub required: Ratio,
    /// Whether the difference is statistically significant, when inference was made.
    pub significant: Option<bool>,
    /// The target is met: the improvement reaches the threshold (and, when the spec
    /// requires it, the difference is significant).
    pub met: bool,
}

impl Evaluation {
    /// `threshold-met`; `not-significant` when the size of the improvement reaches the
    /// threshold but the required significance does not hold; else `threshold-not-met`.
    pub fn code(&self) -> &'static str {
        if self.met {
            THRESHOLD_MET
        } else if self.improvement >= self.required && self.significant == Some(false) {
            NOT_SIGNIFICANT
        } else {
            THRESHOLD_NOT_MET
        }
    }
}

/// Why an evaluation cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("{scope}: the {what} is undefined because its denominator is zero ({why})")]
    Undefined {
        scope: String,
        what: String,
        why: String,
    },
    #[error("{scope}: a relative threshold needs a comparator above zero, but it is {value}")]
    ZeroComparator { scope: String, value: String },
}

/// Compares one treated value with the comparator under a minimum.
pub fn evaluate(
    scope: &str,
    people: u64,
    measure: Measure,
    treated: Ratio,
    comparator: Ratio,
    kind: ThresholdKind,
    minimum: Ratio,
) -> Result<Evaluation, DecisionError> {
    let difference = treated.minus(comparator);
    let improvement = if lower_is_better(measure) {
        comparator.minus(treated)
    } else {
        treated.minus(comparator)
    };
    let relative_improvement = improvement.checked_div(comparator);
    let required = match kind {
        ThresholdKind::Points => minimum,
        ThresholdKind::Relative => {
            if comparator <= Ratio::ZERO {
                return Err(DecisionError::ZeroComparator {
                    scope: scope.to_string(),
                    value: comparator.to_fixed(6),
                });
            }
            minimum.times(comparator)
        }
    };
    Ok(Evaluation {
        scope: scope.to_string(),
        people,
        treated,
        comparator,
        difference,
        improvement,
        relative_improvement,
        threshold_kind: kind,
        minimum,
        required,
        significant: None,
        met: improvement >= required,
    })
}

/// What is owed on one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLine {
    pub scope: String,
    pub met: bool,
    /// Units of improvement paid for (per-unit payments), exact.
    pub units: Option<Ratio>,
    /// Before the cap (per-unit payments).
    pub uncapped_minor: Option<i128>,
    /// Owed to the provider (negative: repaid by the provider).
    pub amount_minor: i128,
    /// Plain-words explanation.
    pub explanation: String,
}

/// What is owed on each paid evaluation.
pub fn pay(payment: &Payment, evaluations: &[Evaluation]) -> Vec<PaymentLine> {
    let paid: Vec<&Evaluation> = evaluations
        .iter()
        .filter(|e| match payment.basis {
            PaymentBasis::PerPeriod => e.scope != POOLED,
            PaymentBasis::Pooled => e.scope == POOLED,
        })
        .collect();
    let cur = &payment.currency;
    paid.into_iter()
        .map(|e| {
            if !e.met {
                return match payment.on_miss {
                    MissRule::Nothing => PaymentLine {
                        scope: e.scope.clone(),
                        met: false,
                        units: None,
                        uncapped_minor: None,
                        amount_minor: 0,
                        explanation: "target missed: nothing is paid".into(),
                    },
                    MissRule::Repay { amount_minor } => PaymentLine {
                        scope: e.scope.clone(),
                        met: false,
                        units: None,
                        uncapped_minor: None,
                        amount_minor: -amount_minor,
                        explanation: format!(
                            "target missed: the provider repays {cur} {}",
                            crate::exact::minor_to_decimal(amount_minor)
                        ),
                    },
                };
            }
            match &payment.mechanism {
                // Paid person by person (see `crate::predicted::individual_payments`).
                Mechanism::PerPerson { .. } => PaymentLine {
                    scope: e.scope.clone(),
                    met: true,
                    units: None,
                    uncapped_minor: None,
                    amount_minor: 0,
                    explanation: "paid person by person".into(),
                },
                // Paid area by area (see `crate::casemix::compare`).
                Mechanism::CaseMix { .. } => PaymentLine {
                    scope: e.scope.clone(),
                    met: true,
                    units: None,
                    uncapped_minor: None,
                    amount_minor: 0,
                    explanation: "paid area by area".into(),
                },
                // Paid in advance and repaid on a miss: meeting the target moves no money.
                Mechanism::AtRisk { amount_minor } if payment.on_miss != MissRule::Nothing => {
                    PaymentLine {
                        scope: e.scope.clone(),
                        met: true,
                        units: None,
                        uncapped_minor: None,
                        amount_minor: 0,
                        explanation: format!(
                            "target met: full payment, the provider keeps the {cur} {} at risk",
                            crate::exact::minor_to_decimal(*amount_minor)
                        ),
                    }
                }
                // Withheld until the target is met.
                Mechanism::AtRisk { amount_minor } => PaymentLine {
                    scope: e.scope.clone(),
                    met: true,
                    units: None,
                    uncapped_minor: None,
                    amount_minor: *amount_minor,
                    explanation: format!(
                        "target met: the {cur} {} at risk is paid",
                        crate::exact::minor_to_decimal(*amount_minor)
                    ),
                },
                Mechanism::PerUnit {
                    price_minor,
                    unit,
                    cap_minor,
                } => {
                    let units = match unit {
                        PaymentUnit::PercentagePoint => e.improvement.times(Ratio::from_int(100)),
                        PaymentUnit::OutcomeAvoided => {
                            e.improvement.times(Ratio::from_int(i128::from(e.people)))
                        }
                    };
                    let uncapped = units.times(Ratio::from_int(*price_minor)).trunc().max(0);
                    let amount = match cap_minor {
                        Some(cap) => uncapped.min(*cap),
                        None => uncapped,
                    };
                    let capped = if amount < uncapped { ", capped" } else { "" };
                    PaymentLine {
                        scope: e.scope.clone(),
                        met: true,
                        units: Some(units),
                        uncapped_minor: Some(uncapped),
                        amount_minor: amount,
                        explanation: format!(
                            "target met: {} units × {cur} {} = {cur} {}{capped}",
                            units.to_fixed(4),
                            crate::exact::minor_to_decimal(*price_minor),
                            crate::exact::minor_to_decimal(amount)
                        ),
                    }
                }
            }
        })
        .collect()
}

/// Scope name of the pooled evaluation.
pub const POOLED: &str = "pooled";

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Ratio {
        Ratio::parse_decimal(s).unwrap()
    }

    #[test]
    fn points_threshold_on_the_line_is_met_and_just_below_is_not() {
        let t = |treated: &str| {
            evaluate(
                "c",
                1000,
                Measure::Binary,
                r(treated),
                r("0.580"),
                ThresholdKind::Points,
                r("0.05"),
            )
            .unwrap()
        };
        assert!(t("0.523").met);
        assert!(t("0.530").met);
        assert!(!t("0.531").met);
        assert!(!t("0.547").met);
        assert_eq!(t("0.523").improvement, r("0.057"));
        assert_eq!(t("0.547").difference, r("-0.033"));
    }

    #[test]
    fn relative_threshold_scales_with_the_comparator() {
        // Peterborough: 142 vs 155 per 100 is an 8.4% reduction, short of 10%. The line
        // is exactly 139.5 per 100: 140 is a 9.68% reduction and misses, although it is
        // often quoted as enough (the published figures are rounded).
        let t = |treated: &str| {
            evaluate(
                "c",
                1000,
                Measure::FrequencyPerOffender,
                r(treated),
                r("1.55"),
                ThresholdKind::Relative,
                r("0.10"),
            )
            .unwrap()
        };
        assert!(!t("1.42").met);
        assert_eq!(t("1.42").relative_improvement.unwrap().to_fixed(3), "0.084");
        assert!(!t("1.40").met);
        assert!(t("1.39").met);
        assert!(t("1.395").met);
        assert!(!t("1.396").met);
        assert_eq!(t("1.42").required, r("0.155"));
        assert!(evaluate(
            "c",
            1,
            Measure::Binary,
            r("0.1"),
            Ratio::ZERO,
            ThresholdKind::Relative,
            r("0.1")
        )
        .is_err());
    }

    fn payment(mechanism: Mechanism, on_miss: MissRule, basis: PaymentBasis) -> Payment {
        Payment {
            currency: "GBP".into(),
            basis,
            mechanism,
            on_miss,
        }
    }

    fn eval(scope: &str, people: u64, treated: &str, comparator: &str, min: &str) -> Evaluation {
        evaluate(
            scope,
            people,
            Measure::Binary,
            r(treated),
            r(comparator),
            ThresholdKind::Points,
            r(min),
        )
        .unwrap()
    }

    #[test]
    fn at_risk_amount_is_earned_when_met_and_repaid_when_missed() {
        let p = payment(
            Mechanism::AtRisk {
                amount_minor: 100_000_000,
            },
            MissRule::Repay {
                amount_minor: 100_000_000,
            },
            PaymentBasis::PerPeriod,
        );
        // Doncaster: paid in advance, so cohort 1 (met) moves nothing and cohort 2
        // (missed) repays the GBP 1m at risk.
        let lines = pay(
            &p,
            &[
                eval("cohort-1", 1000, "0.523", "0.580", "0.05"),
                eval("cohort-2", 1000, "0.547", "0.580", "0.05"),
            ],
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].amount_minor, 0);
        assert!(lines[0].explanation.contains("keeps"));
        assert_eq!(lines[1].amount_minor, -100_000_000);
        // Withheld until met: met pays it, missed pays nothing.
        let withheld = payment(
            Mechanism::AtRisk { amount_minor: 5 },
            MissRule::Nothing,
            PaymentBasis::PerPeriod,
        );
        assert_eq!(
            pay(&withheld, &[eval("c", 10, "0.6", "0.58", "0.05")])[0].amount_minor,
            0
        );
        assert_eq!(
            pay(&withheld, &[eval("c", 10, "0.5", "0.58", "0.05")])[0].amount_minor,
            5
        );
    }

    #[test]
    fn per_unit_payment_truncates_to_minor_units_then_caps() {
        // 1000 people, 5.7 points better: 57 reoffenders avoided at GBP 1,234.56 each
        // = 7,036,992 pence before the cap.
        let uncapped = payment(
            Mechanism::PerUnit {
                price_minor: 123_456,
                unit: PaymentUnit::OutcomeAvoided,
                cap_minor: None,
            },
            MissRule::Nothing,
            PaymentBasis::PerPeriod,
        );
        let line = &pay(&uncapped, &[eval("c", 1000, "0.523", "0.580", "0.05")])[0];
        assert_eq!(line.units, Some(r("57")));
        assert_eq!(line.amount_minor, 7_036_992);
        let capped = payment(
            Mechanism::PerUnit {
                price_minor: 123_456,
                unit: PaymentUnit::OutcomeAvoided,
                cap_minor: Some(5_000_000),
            },
            MissRule::Nothing,
            PaymentBasis::PerPeriod,
        );
        let line = &pay(&capped, &[eval("c", 1000, "0.523", "0.580", "0.05")])[0];
        assert_eq!(
            (line.uncapped_minor, line.amount_minor),
            (Some(7_036_992), 5_000_000)
        );
        // 5.7 points at GBP 100.01 a point = 570.057 -> 57,005 pence (rounded toward zero).
        let points = payment(
            Mechanism::PerUnit {
                price_minor: 10_001,
                unit: PaymentUnit::PercentagePoint,
                cap_minor: None,
            },
            MissRule::Repay { amount_minor: 42 },
            PaymentBasis::Pooled,
        );
        let lines = pay(
            &points,
            &[
                eval("c", 1000, "0.523", "0.580", "0.05"),
                eval(POOLED, 1000, "0.523", "0.580", "0.05"),
            ],
        );
        assert_eq!(
            lines.len(),
            1,
            "pooled basis pays only the pooled evaluation"
        );
        assert_eq!(lines[0].amount_minor, 57_005);
        let missed = pay(&points, &[eval(POOLED, 1000, "0.547", "0.580", "0.05")]);
        assert_eq!(missed[0].amount_minor, -42);
    }

    #[test]
    fn days_to_first_improves_upward() {
        let e = evaluate(
            "c",
            10,
            Measure::DaysToFirst,
            r("150"),
            r("120"),
            ThresholdKind::Points,
            r("20"),
        )
        .unwrap();
        assert_eq!(e.improvement, r("30"));
        assert!(e.met);
    }
}
