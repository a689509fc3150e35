//! What `diff` adds after the people: whose matched comparisons changed, and an exact
//! attribution of the change in the cohort's measure to the steps that caused it.
//!
//! The cohort's measure is a count over people (reoffenders, offences or conviction
//! events) divided by the people counted. Between two bundles, every person counted in
//! either is in exactly one of these groups, so the change in both the count and the
//! people splits exactly, in integers, into:
//! - **cohort**: counted in one bundle only because the other's rules left them out
//!   (grouped by that rule);
//! - **matching**: eligible in both, but matched (so counted) in one only;
//! - **outcomes**: counted in both with different counts: grouped by whether their
//!   window or lag dates moved (a window or lag change) or not (counting rules or
//!   data);
//! - people counted in both with the same count contribute nothing.
//!
//! The comparator's change is reported beside it but not split: a matched comparison
//! group's weighted mean moves with every weight. The payment follows from both; when
//! the comparator is unchanged, the whole payment change follows from the parts.

use std::collections::{BTreeMap, BTreeSet};

/// A cohort member whose matched comparisons differ.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatchChange {
    pub period: String,
    pub treated_id: String,
    /// Comparison ids in A (sorted), or the reason they were unmatched, or empty when
    /// the person is not in A's matching.
    pub a: Vec<String>,
    pub b: Vec<String>,
}

/// One group of people and its share of the change, from A to B.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttributionPart {
    /// `cohort`, `matching` or `outcomes`.
    pub step: &'static str,
    /// Why, in words (the rule, the matching status, the window or lag change).
    pub cause: String,
    /// Their contribution to B − A in people counted.
    pub people_change: i64,
    /// Their contribution to B − A in the counted unit.
    pub count_change: i64,
    /// The people, sorted.
    pub person_ids: Vec<String>,
}

/// The change in one scope's measure, split exactly.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attribution {
    pub scope: String,
    /// `reoffenders`, `offences` or `conviction_events`.
    pub counted: &'static str,
    pub a_people: u64,
    pub b_people: u64,
    pub a_count: u64,
    pub b_count: u64,
    pub parts: Vec<AttributionPart>,
    /// The parts add up to B − A in both people and count.
    pub accounted: bool,
    /// The comparator's value (decimal string) in A and B, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparator: Option<(String, String)>,
    /// The period's payment (decimal strings) in A and B, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<(String, String)>,
}

type Rows = BTreeMap<Vec<String>, BTreeMap<String, String>>;

/// Matched sets by (period, treated id): comparison ids, or `unmatched: reason`.
fn matched_sets(matches: &Rows) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in matches.values() {
        let key = (r["period"].clone(), r["treated_id"].clone());
        let entry = out.entry(key).or_default();
        match r.get("unmatched_reason").map(String::as_str) {
            Some(reason) if !reason.is_empty() => entry.push(format!("unmatched: {reason}")),
            _ => entry.push(r["comparison_id"].clone()),
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Treated people whose matched comparisons differ between two `tables/matches.csv`.
pub fn match_changes(a: &Rows, b: &Rows) -> Vec<MatchChange> {
    let (sa, sb) = (matched_sets(a), matched_sets(b));
    let keys: BTreeSet<&(String, String)> = sa.keys().chain(sb.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (sa.get(k), sb.get(k));
            (x != y).then(|| MatchChange {
                period: k.0.clone(),
                treated_id: k.1.clone(),
                a: x.cloned().unwrap_or_default(),
                b: y.cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// One bundle's view for the attribution.
pub struct Side<'a> {
    pub results: &'a serde_json::Value,
    /// tables/cohort.csv keyed by row.
    pub cohort: &'a Rows,
    /// tables/outcomes.csv keyed by (period, role, person id).
    pub outcomes: &'a Rows,
    /// tables/matches.csv keyed by row, for matched comparisons.
    pub matches: Option<&'a Rows>,
}

/// The column of tables/outcomes.csv the measure counts.
fn counted_column(results: &serde_json::Value) -> Option<&'static str> {
    let rules = &results["rules"];
    match (rules["measure"].as_str()?, rules["counting_unit"].as_str()?) {
        ("binary", _) => Some("reoffender"),
        ("frequency_per_offender" | "frequency_per_reoffender", "conviction_event") => {
            Some("conviction_events")
        }
        ("frequency_per_offender" | "frequency_per_reoffender", "offence") => Some("offences"),
        _ => None,
    }
}

/// The people a side counts in one period, with their count and window/lag dates.
fn counted(side: &Side, period: &str, column: &str) -> BTreeMap<String, (i64, String)> {
    let unmatched: BTreeSet<&str> = side
        .matches
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|r| {
            r["period"] == period && r.get("unmatched_reason").is_some_and(|u| !u.is_empty())
        })
        .map(|r| r["treated_id"].as_str())
        .collect();
    side.outcomes
        .iter()
        .filter(|(k, _)| k[0] == period && k[1] == "treated" && !unmatched.contains(k[2].as_str()))
        .map(|(k, r)| {
            let n = r.get(column).and_then(|v| v.parse().ok()).unwrap_or(0);
            let dates = format!(
                "{},{}",
                r.get("window_end").map(String::as_str).unwrap_or(""),
                r.get("lag_end").map(String::as_str).unwrap_or("")
            );
            (k[2].clone(), (n, dates))
        })
        .collect()
}

/// Each person's rule and status in a side's cohort table, by (period, person id), and
/// by person id alone for rows outside any period.
fn statuses(side: &Side) -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for r in side.cohort.values() {
        out.entry(r["person_id"].clone()).or_default().push((
            r.get("period").cloned().unwrap_or_default(),
            r.get("status").cloned().unwrap_or_default(),
            r.get("rule").cloned().unwrap_or_default(),
        ));
    }
    out
}

/// Why a person counted in one side is not counted in the other (`other`).
fn why_not(
    other: &BTreeMap<String, Vec<(String, String, String)>>,
    other_matches: &BTreeMap<(String, String), Vec<String>>,
    period: &str,
    person: &str,
    other_name: &str,
) -> (&'static str, String) {
    let rows = other.get(person).map(Vec::as_slice).unwrap_or(&[]);
    if let Some((_, _, _)) = rows.iter().find(|(p, s, _)| p == period && s == "eligible") {
        let reason = other_matches
            .get(&(period.to_string(), person.to_string()))
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_else(|| "unmatched".into());
        return (
            "matching",
            format!("eligible in both, not matched in {other_name} ({reason})"),
        );
    }
    match rows
        .iter()
        .find(|(p, _, _)| p == period)
        .or_else(|| rows.first())
    {
        Some((_, _, rule)) if !rule.is_empty() => (
            "cohort",
            format!("excluded in {other_name} under rule {rule}"),
        ),
        Some((p, _, _)) if p != period => ("cohort", format!("in another period in {other_name}")),
        Some(_) => ("cohort", format!("not in {other_name}'s cohort")),
        None => ("cohort", format!("absent from {other_name}'s data")),
    }
}

/// Splits the change in each treated period's measure between A and B.
pub fn attribute(a: &Side, b: &Side, outcome_changes: &[String]) -> Vec<Attribution> {
    let (Some(column), Some(column_b)) = (counted_column(a.results), counted_column(b.results))
    else {
        return Vec::new();
    };
    if column != column_b {
        return Vec::new();
    }
    let counted_name = match column {
        "reoffender" => "reoffenders",
        other => other,
    };
    let periods: BTreeSet<String> = a
        .outcomes
        .keys()
        .chain(b.outcomes.keys())
        .filter(|k| k[1] == "treated")
        .map(|k| k[0].clone())
        .collect();
    let (st_a, st_b) = (statuses(a), statuses(b));
    let (ma, mb) = (
        a.matches.map(matched_sets).unwrap_or_default(),
        b.matches.map(matched_sets).unwrap_or_default(),
    );
    let window_or_lag = if outcome_changes.is_empty() {
        "their window or lag end moved".to_string()
    } else {
        format!(
            "{} moves their window or lag end",
            outcome_changes.join(", ")
        )
    };
    let comparator = |r: &serde_json::Value, scope: &str| -> Option<String> {
        r["evaluations"]
            .as_array()?
            .iter()
            .find(|e| e["scope"] == scope)
            .and_then(|e| e["comparator"]["value"].as_str())
            .map(str::to_string)
    };
    let payment = |r: &serde_json::Value, scope: &str| -> Option<String> {
        r["payment"]["lines"]
            .as_array()?
            .iter()
            .find(|l| l["scope"] == scope)
            .and_then(|l| l["amount"].as_str())
            .map(str::to_string)
    };
    let differ = |x: Option<String>, y: Option<String>| match (x, y) {
        (Some(x), Some(y)) if x != y => Some((x, y)),
        _ => None,
    };
    let mut out = Vec::new();
    for period in periods {
        let (ca, cb) = (counted(a, &period, column), counted(b, &period, column));
        // cause → (step, people change, count change, ids)
        let mut parts: BTreeMap<(u8, String), AttributionPart> = BTreeMap::new();
        let mut add = |step: &'static str, cause: String, dp: i64, dc: i64, id: &str| {
            let order = match step {
                "cohort" => 0,
                "matching" => 1,
                _ => 2,
            };
            let e = parts
                .entry((order, cause.clone()))
                .or_insert_with(|| AttributionPart {
                    step,
                    cause,
                    people_change: 0,
                    count_change: 0,
                    person_ids: Vec::new(),
                });
            e.people_change += dp;
            e.count_change += dc;
            e.person_ids.push(id.to_string());
        };
        for (id, (n, _)) in &ca {
            if !cb.contains_key(id) {
                let (step, cause) = why_not(&st_b, &mb, &period, id, "b");
                add(step, format!("counted in a only: {cause}"), -1, -n, id);
            }
        }
        for (id, (n, _)) in &cb {
            if !ca.contains_key(id) {
                let (step, cause) = why_not(&st_a, &ma, &period, id, "a");
                add(step, format!("counted in b only: {cause}"), 1, *n, id);
            }
        }
        for (id, (na, da)) in &ca {
            if let Some((nb, db)) = cb.get(id) {
                if na != nb {
                    let cause = if da != db {
                        window_or_lag.clone()
                    } else {
                        "same window and lag dates: counting rules or data differ".to_string()
                    };
                    add("outcomes", cause, 0, nb - na, id);
                }
            }
        }
        let sum = |m: &BTreeMap<String, (i64, String)>| m.values().map(|(n, _)| *n).sum::<i64>();
        let (a_count, b_count) = (sum(&ca), sum(&cb));
        let parts: Vec<AttributionPart> = parts.into_values().collect();
        let accounted = parts.iter().map(|p| p.people_change).sum::<i64>()
            == cb.len() as i64 - ca.len() as i64
            && parts.iter().map(|p| p.count_change).sum::<i64>() == b_count - a_count;
        let (xa, xb) = (
            comparator(a.results, &period),
            comparator(b.results, &period),
        );
        let (pa, pb) = (payment(a.results, &period), payment(b.results, &period));
        out.push(Attribution {
            scope: period,
            counted: counted_name,
            a_people: ca.len() as u64,
            b_people: cb.len() as u64,
            a_count: a_count as u64,
            b_count: b_count as u64,
            parts,
            accounted,
            comparator: differ(xa, xb),
            payment: differ(pa, pb),
        });
    }
    out
}
