//! Measures: integer totals per group, and the four reoffending measures as exact ratios
//! of those totals.
//!
//! - binary rate = reoffenders / people;
//! - frequency per offender = counted units / people;
//! - frequency per reoffender = counted units / reoffenders;
//! - days to first = mean days from index date to first counted offence, over reoffenders.
//!
//! "Counted units" are offences or conviction events, as the spec's counting unit says.

use crate::cohort::CohortResult;
use crate::exact::Ratio;
use crate::outcomes::PersonOutcome;
use crate::spec::{CountingUnit, Measure};

/// Integer totals for one group (or several pooled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub people: u64,
    pub reoffenders: u64,
    pub offences: u64,
    pub events: u64,
    /// Sum over reoffenders of days from index date to first counted offence.
    pub days_to_first_sum: u64,
}

impl Totals {
    /// Adds another group's totals (pooling).
    pub fn add(&mut self, other: &Totals) {
        self.people += other.people;
        self.reoffenders += other.reoffenders;
        self.offences += other.offences;
        self.events += other.events;
        self.days_to_first_sum += other.days_to_first_sum;
    }

    /// Counted units under a counting unit.
    pub fn units(&self, unit: CountingUnit) -> u64 {
        match unit {
            CountingUnit::Offence => self.offences,
            CountingUnit::ConvictionEvent => self.events,
        }
    }

    /// A measure as an exact ratio; `None` when its denominator is zero (no people, or
    /// no reoffenders for the per-reoffender measures).
    pub fn measure(&self, measure: Measure, unit: CountingUnit) -> Option<Ratio> {
        let r = |n: u64, d: u64| Ratio::new(i128::from(n), i128::from(d));
        match measure {
            Measure::Binary => r(self.reoffenders, self.people),
            Measure::FrequencyPerOffender => r(self.units(unit), self.people),
            Measure::FrequencyPerReoffender => r(self.units(unit), self.reoffenders),
            Measure::DaysToFirst => r(self.days_to_first_sum, self.reoffenders),
        }
    }
}

/// Whether a lower value of the measure is the improvement the contract pays for.
pub fn lower_is_better(measure: Measure) -> bool {
    !matches!(measure, Measure::DaysToFirst)
}

/// Human name of a measure.
pub fn measure_name(measure: Measure) -> &'static str {
    match measure {
        Measure::Binary => "binary reoffending rate",
        Measure::FrequencyPerOffender => "reoffences per offender",
        Measure::FrequencyPerReoffender => "reoffences per reoffender",
        Measure::DaysToFirst => "mean days to first reoffence",
    }
}

/// Totals of every group, in group order.
pub fn group_totals(cohort: &CohortResult, outcomes: &[PersonOutcome]) -> Vec<Totals> {
    let mut totals = vec![Totals::default(); cohort.groups.len()];
    for (member, outcome) in cohort.members.iter().zip(outcomes) {
        let t = &mut totals[member.group];
        t.people += 1;
        t.offences += outcome.offences;
        t.events += outcome.events;
        if let Some(first) = outcome.first_offence {
            t.reoffenders += 1;
            t.days_to_first_sum += u64::try_from(first - member.index_date).unwrap_or(0);
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_divide_the_documented_totals() {
        let t = Totals {
            people: 1000,
            reoffenders: 523,
            offences: 1203,
            events: 950,
            days_to_first_sum: 523 * 120,
        };
        assert_eq!(
            t.measure(Measure::Binary, CountingUnit::Offence),
            Ratio::new(523, 1000)
        );
        assert_eq!(
            t.measure(Measure::FrequencyPerOffender, CountingUnit::ConvictionEvent),
            Ratio::new(950, 1000)
        );
        assert_eq!(
            t.measure(Measure::FrequencyPerReoffender, CountingUnit::Offence),
            Ratio::new(1203, 523)
        );
        assert_eq!(
            t.measure(Measure::DaysToFirst, CountingUnit::Offence),
            Ratio::new(120, 1)
        );
        let empty = Totals::default();
        assert_eq!(empty.measure(Measure::Binary, CountingUnit::Offence), None);
        assert_eq!(
            empty.measure(Measure::FrequencyPerReoffender, CountingUnit::Offence),
            None
        );
    }
}
