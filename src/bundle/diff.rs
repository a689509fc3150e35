//! `diff`: why two audits of one contract differ, from cause to consequence.
//!
//! Both bundles are verified first. Then, in order: the spec fields that differ (by
//! TOML path), the inputs that differ (by name and digest), the people who are in one
//! cohort and not the other (with the rule that left them out of the other), the people
//! whose outcome differs (with both windows and counts, so a different window, lag or
//! counting unit shows; people whose counts are unchanged are only counted), the
//! results (measures, decisions and payments) with the share of the change in each
//! measure that the people above account for, and finally, for per-person payments,
//! everyone whose payment differs.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::bundle::verify;
use crate::exact::minor_to_decimal as minor;

/// Why two bundles cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("bundle {path} failed verification:\n{failure}")]
    Verify {
        path: std::path::PathBuf,
        failure: verify::VerifyFailure,
    },
    #[error("{path}: {message}")]
    Read {
        path: std::path::PathBuf,
        message: String,
    },
}

/// A person in one cohort and not the other.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CohortChange {
    pub period: String,
    pub person_id: String,
    /// `a` or `b`: the bundle whose cohort has the person.
    pub only_in: &'static str,
    /// The other bundle's rule for that person's row (empty when the row is absent).
    pub other_rule: String,
    pub other_reason: String,
}

/// A person whose outcome differs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutcomeChange {
    pub period: String,
    pub role: String,
    pub person_id: String,
    /// `window_end,lag_end,reoffender,offences,conviction_events` in A and in B.
    pub a: String,
    pub b: String,
}

/// A person whose individual payment differs (per-person payments,
/// `tables/payments.csv`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaymentChange {
    pub period: String,
    pub person_id: String,
    /// `paid_minor` in A and in B; `None` where the person has no payment row there.
    pub a_minor: Option<i128>,
    pub b_minor: Option<i128>,
    /// Whether the person reoffended in A and in B (`reoffended`); when both are the
    /// same, the payment moved for another reason (a price, a probability, the cap's
    /// pro-rata share).
    pub a_reoffended: Option<bool>,
    pub b_reoffended: Option<bool>,
}

/// A field of the spec or the results that differs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldChange {
    pub path: String,
    pub a: String,
    pub b: String,
}

/// Everything that differs, in cause-to-consequence order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleDiff {
    pub spec: Vec<FieldChange>,
    pub inputs: Vec<FieldChange>,
    pub cohort: Vec<CohortChange>,
    pub outcomes: Vec<OutcomeChange>,
    /// People whose window or lag dates differ (whether or not their counts do).
    pub dates_changed: u64,
    /// People who reoffend in A but not B, and in B but not A.
    pub reoffenders_only_in_a: u64,
    pub reoffenders_only_in_b: u64,
    /// Cohort members whose matched comparisons differ (matched comparisons).
    pub matches: Vec<crate::bundle::attribution::MatchChange>,
    pub results: Vec<FieldChange>,
    /// The change in each period's measure, split exactly between the steps above.
    pub attribution: Vec<crate::bundle::attribution::Attribution>,
    /// People whose individual payment differs, when both bundles pay per person.
    pub payments: Vec<PaymentChange>,
}

impl BundleDiff {
    /// True when nothing differs.
    pub fn identical(&self) -> bool {
        self.spec.is_empty()
            && self.inputs.is_empty()
            && self.cohort.is_empty()
            && self.outcomes.is_empty()
            && self.matches.is_empty()
            && self.results.is_empty()
            && self.payments.is_empty()
    }
}

fn read(dir: &Path, rel: &str) -> Result<String, DiffError> {
    std::fs::read_to_string(dir.join(rel)).map_err(|e| DiffError::Read {
        path: dir.join(rel),
        message: e.to_string(),
    })
}

/// Differences between two TOML or JSON trees, by path.
fn tree_changes(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
    out: &mut Vec<FieldChange>,
) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => tree_changes(&p, va, vb, out),
                    (va, vb) => out.push(FieldChange {
                        path: p,
                        a: va
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "(absent)".into()),
                        b: vb
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "(absent)".into()),
                    }),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                tree_changes(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a == b => {}
        _ => out.push(FieldChange {
            path: path.to_string(),
            a: a.to_string(),
            b: b.to_string(),
        }),
    }
}

/// Rows of a CSV table keyed by some columns (simple CSV: the tool's own tables).
fn table(text: &str, key: &[&str]) -> BTreeMap<Vec<String>, BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .map(crate::data::split_csv_line)
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in lines {
        let values = crate::data::split_csv_line(line);
        let row: BTreeMap<String, String> = header.iter().cloned().zip(values).collect();
        let k = key
            .iter()
            .map(|c| row.get(*c).cloned().unwrap_or_default())
            .collect();
        out.insert(k, row);
    }
    out
}

/// Verifies both bundles and explains how they differ.
pub fn diff(a: &Path, b: &Path, pinned: Option<&VerifyingKey>) -> Result<BundleDiff, DiffError> {
    for dir in [a, b] {
        verify::verify_bundle(dir, pinned).map_err(|failure| DiffError::Verify {
            path: dir.to_path_buf(),
            failure,
        })?;
    }
    let toml_json = |dir: &Path| -> Result<serde_json::Value, DiffError> {
        let text = read(dir, "spec.toml")?;
        let value: toml::Value = toml::from_str(&text).map_err(|e| DiffError::Read {
            path: dir.join("spec.toml"),
            message: e.to_string(),
        })?;
        serde_json::to_value(value).map_err(|e| DiffError::Read {
            path: dir.join("spec.toml"),
            message: e.to_string(),
        })
    };
    let json = |dir: &Path| -> Result<serde_json::Value, DiffError> {
        serde_json::from_str(&read(dir, "results.json")?).map_err(|e| DiffError::Read {
            path: dir.join("results.json"),
            message: e.to_string(),
        })
    };
    let mut spec = Vec::new();
    tree_changes("", &toml_json(a)?, &toml_json(b)?, &mut spec);
    let (ra, rb) = (json(a)?, json(b)?);

    let mut inputs = Vec::new();
    let digests = |r: &serde_json::Value| -> BTreeMap<String, String> {
        r["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["name"].as_str().unwrap_or("").to_string(),
                    i["sha256"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let (da, db) = (digests(&ra), digests(&rb));
    for name in da
        .keys()
        .chain(db.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (x, y) = (da.get(name), db.get(name));
        if x != y {
            inputs.push(FieldChange {
                path: format!("inputs.{name}.sha256"),
                a: x.cloned().unwrap_or_else(|| "(absent)".into()),
                b: y.cloned().unwrap_or_else(|| "(absent)".into()),
            });
        }
    }

    // Cohort membership, by (period, person id).
    let eligible =
        |t: &BTreeMap<Vec<String>, BTreeMap<String, String>>| -> std::collections::BTreeSet<(String, String)> {
            t.values()
                .filter(|r| r.get("status").map(String::as_str) == Some("eligible"))
                .map(|r| (r["period"].clone(), r["person_id"].clone()))
                .collect()
        };
    let (ca, cb) = (
        table(&read(a, "tables/cohort.csv")?, &["row"]),
        table(&read(b, "tables/cohort.csv")?, &["row"]),
    );
    let by_person = |t: &BTreeMap<Vec<String>, BTreeMap<String, String>>| -> BTreeMap<String, (String, String)> {
        t.values()
            .map(|r| (r["person_id"].clone(), (r["rule"].clone(), r["reason"].clone())))
            .collect()
    };
    let (ea, eb) = (eligible(&ca), eligible(&cb));
    let (pa, pb) = (by_person(&ca), by_person(&cb));
    let mut cohort = Vec::new();
    for (period, person) in &ea {
        if !eb.contains(&(period.clone(), person.clone())) {
            let (rule, reason) = pb.get(person).cloned().unwrap_or_default();
            cohort.push(CohortChange {
                period: period.clone(),
                person_id: person.clone(),
                only_in: "a",
                other_rule: rule,
                other_reason: reason,
            });
        }
    }
    for (period, person) in &eb {
        if !ea.contains(&(period.clone(), person.clone())) {
            let (rule, reason) = pa.get(person).cloned().unwrap_or_default();
            cohort.push(CohortChange {
                period: period.clone(),
                person_id: person.clone(),
                only_in: "b",
                other_rule: rule,
                other_reason: reason,
            });
        }
    }

    // Outcomes of people in both.
    let key = ["period", "role", "person_id"];
    let (oa, ob) = (
        table(&read(a, "tables/outcomes.csv")?, &key),
        table(&read(b, "tables/outcomes.csv")?, &key),
    );
    let fields = [
        "window_end",
        "lag_end",
        "reoffender",
        "offences",
        "conviction_events",
    ];
    let summary = |r: &BTreeMap<String, String>| {
        fields
            .iter()
            .map(|f| r.get(*f).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut outcomes = Vec::new();
    let (mut only_a, mut only_b, mut dates_changed) = (0u64, 0u64, 0u64);
    let counts = |r: &BTreeMap<String, String>| {
        ["reoffender", "offences", "conviction_events"]
            .map(|f| r.get(f).cloned().unwrap_or_default())
    };
    for (k, x) in &oa {
        let Some(y) = ob.get(k) else { continue };
        if x.get("window_end") != y.get("window_end") || x.get("lag_end") != y.get("lag_end") {
            dates_changed += 1;
        }
        let (sx, sy) = (summary(x), summary(y));
        if counts(x) != counts(y) {
            match (x["reoffender"].as_str(), y["reoffender"].as_str()) {
                ("1", "0") => only_a += 1,
                ("0", "1") => only_b += 1,
                _ => {}
            }
            outcomes.push(OutcomeChange {
                period: k[0].clone(),
                role: k[1].clone(),
                person_id: k[2].clone(),
                a: sx,
                b: sy,
            });
        }
    }

    // Matched sets, when both bundles matched.
    let matches_table = |dir: &Path| -> Result<Option<_>, DiffError> {
        let rel = "tables/matches.csv";
        if dir.join(rel).is_file() {
            Ok(Some(table(
                &read(dir, rel)?,
                &["period", "treated_id", "rank", "comparison_id"],
            )))
        } else {
            Ok(None)
        }
    };
    let (ta, tb) = (matches_table(a)?, matches_table(b)?);
    let matches = match (&ta, &tb) {
        (Some(x), Some(y)) => crate::bundle::attribution::match_changes(x, y),
        _ => Vec::new(),
    };

    // Results: measures, evaluations, payment.
    let mut results = Vec::new();
    for part in ["measures", "evaluations", "payment", "verdict"] {
        tree_changes(part, &ra[part], &rb[part], &mut results);
    }

    // The change in each period's measure, split between the steps.
    let window_or_lag: Vec<String> = spec
        .iter()
        .filter(|c| c.path.starts_with("outcome.window") || c.path.starts_with("outcome.court_lag"))
        .map(|c| format!("{}: {} -> {}", c.path, c.a, c.b))
        .collect();
    let side = |results, cohort, outcomes, matches| crate::bundle::attribution::Side {
        results,
        cohort,
        outcomes,
        matches,
    };
    let attribution = crate::bundle::attribution::attribute(
        &side(&ra, &ca, &oa, ta.as_ref()),
        &side(&rb, &cb, &ob, tb.as_ref()),
        &window_or_lag,
    );
    let payments = payment_changes(a, b)?;
    Ok(BundleDiff {
        spec,
        inputs,
        cohort,
        outcomes,
        dates_changed,
        reoffenders_only_in_a: only_a,
        reoffenders_only_in_b: only_b,
        matches,
        results,
        attribution,
        payments,
    })
}

/// People whose `paid_minor` differs between the two bundles' `tables/payments.csv`
/// (per-person payments; none when either bundle has no such table), by period and id.
fn payment_changes(a: &Path, b: &Path) -> Result<Vec<PaymentChange>, DiffError> {
    let rel = "tables/payments.csv";
    if !(a.join(rel).is_file() && b.join(rel).is_file()) {
        return Ok(Vec::new());
    }
    type Paid = BTreeMap<Vec<String>, (Option<i128>, Option<bool>)>;
    let paid = |dir: &Path| -> Result<Paid, DiffError> {
        Ok(table(&read(dir, rel)?, &["period", "person_id"])
            .into_iter()
            .map(|(k, row)| {
                let minor = row.get("paid_minor").and_then(|v| v.parse().ok());
                let reoffended = row.get("reoffended").and_then(|v| match v.as_str() {
                    "1" => Some(true),
                    "0" => Some(false),
                    _ => None,
                });
                (k, (minor, reoffended))
            })
            .collect())
    };
    let (pa, pb) = (paid(a)?, paid(b)?);
    let keys: std::collections::BTreeSet<&Vec<String>> = pa.keys().chain(pb.keys()).collect();
    Ok(keys
        .into_iter()
        .filter_map(|k| {
            let (x, rx) = pa.get(k).copied().unwrap_or_default();
            let (y, ry) = pb.get(k).copied().unwrap_or_default();
            (x != y).then(|| PaymentChange {
                period: k[0].clone(),
                person_id: k[1].clone(),
                a_minor: x,
                b_minor: y,
                a_reoffended: rx,
                b_reoffended: ry,
            })
        })
        .collect())
}

/// The difference as text for a reviewer, cause first.
pub fn render(d: &BundleDiff, a: &Path, b: &Path) -> String {
    let mut s = format!("a: {}\nb: {}\n", a.display(), b.display());
    if d.identical() {
        s += "no differences in spec, inputs, cohort, outcomes or results\n";
        return s;
    }
    s += &format!("1. spec fields that differ: {}\n", d.spec.len());
    for c in &d.spec {
        s += &format!("   {}: {} -> {}\n", c.path, c.a, c.b);
    }
    s += &format!("2. inputs that differ: {}\n", d.inputs.len());
    for c in &d.inputs {
        s += &format!("   {}: {} -> {}\n", c.path, c.a, c.b);
    }
    s += &format!("3. people in one cohort only: {}\n", d.cohort.len());
    for c in d.cohort.iter().take(20) {
        s += &format!(
            "   {} {} only in {} (the other: {})\n",
            c.period,
            c.person_id,
            c.only_in,
            if c.other_rule.is_empty() {
                "no such row"
            } else {
                &c.other_rule
            }
        );
    }
    if d.cohort.len() > 20 {
        s += &format!("   … and {} more\n", d.cohort.len() - 20);
    }
    s += &format!(
        "4. people whose counted outcome differs: {} ({} reoffend only in a, {} only in b); window or lag dates differ for {}; fields window_end,lag_end,reoffender,offences,conviction_events\n",
        d.outcomes.len(),
        d.reoffenders_only_in_a,
        d.reoffenders_only_in_b,
        d.dates_changed
    );
    for c in d.outcomes.iter().take(20) {
        s += &format!(
            "   {} {} {}: {} -> {}\n",
            c.period, c.role, c.person_id, c.a, c.b
        );
    }
    if d.outcomes.len() > 20 {
        s += &format!("   … and {} more\n", d.outcomes.len() - 20);
    }
    s += &format!(
        "5. cohort members whose matched comparisons differ: {}\n",
        d.matches.len()
    );
    for c in d.matches.iter().take(20) {
        let set = |v: &[String]| {
            if v.is_empty() {
                "(not matched)".to_string()
            } else {
                v.join(" ")
            }
        };
        s += &format!(
            "   {} {}: a [{}] -> b [{}]\n",
            c.period,
            c.treated_id,
            set(&c.a),
            set(&c.b)
        );
    }
    if d.matches.len() > 20 {
        s += &format!("   … and {} more\n", d.matches.len() - 20);
    }
    s += &format!("6. results that differ: {}\n", d.results.len());
    for c in &d.results {
        s += &format!("   {}: {} -> {}\n", c.path, c.a, c.b);
    }
    s += "7. attribution of the change in each period's measure (b − a)\n";
    for at in &d.attribution {
        s += &format!(
            "   {}: {} {} of {} people in a, {} of {} in b ({:+} {}, {:+} people){}\n",
            at.scope,
            at.counted,
            at.a_count,
            at.a_people,
            at.b_count,
            at.b_people,
            at.b_count as i64 - at.a_count as i64,
            at.counted,
            at.b_people as i64 - at.a_people as i64,
            if at.accounted {
                ", accounted for exactly by:"
            } else {
                ", NOT fully accounted for by:"
            }
        );
        for p in &at.parts {
            let shown: Vec<&str> = p.person_ids.iter().take(10).map(String::as_str).collect();
            s += &format!(
                "     {} ({}): {} people, {:+} {}, {:+} people counted: {}{}\n",
                p.step,
                p.cause,
                p.person_ids.len(),
                p.count_change,
                at.counted,
                p.people_change,
                shown.join(" "),
                if p.person_ids.len() > 10 {
                    format!(" … and {} more", p.person_ids.len() - 10)
                } else {
                    String::new()
                }
            );
        }
        if let Some((x, y)) = &at.comparator {
            s += &format!("     the comparator also moves: {x} -> {y} (not split by person)\n");
        }
        if let Some((x, y)) = &at.payment {
            s += &format!(
                "     so the payment moves: {x} -> {y}{}\n",
                if at.comparator.is_none() {
                    " (the comparator is unchanged: all of it follows from the parts above)"
                } else {
                    ""
                }
            );
        }
    }
    if !d.payments.is_empty() {
        let total = |side: fn(&PaymentChange) -> Option<i128>| -> i128 {
            d.payments.iter().filter_map(side).sum()
        };
        let (ta, tb) = (total(|c| c.a_minor), total(|c| c.b_minor));
        let outcome_moved = |c: &PaymentChange| c.a_reoffended != c.b_reoffended;
        s += &format!(
            "8. people whose payment differs: {} (their payments {} -> {}, {} in all); {} of them because whether they reoffended differs\n",
            d.payments.len(),
            minor(ta),
            minor(tb),
            signed_minor(tb - ta),
            d.payments.iter().filter(|c| outcome_moved(c)).count()
        );
        let shown = |v: Option<i128>| v.map_or_else(|| "(no payment row)".to_string(), minor);
        let flag = |v: Option<bool>| match v {
            Some(true) => "1",
            Some(false) => "0",
            None => "-",
        };
        for c in d.payments.iter().take(20) {
            s += &format!(
                "   {} {}: {} -> {}{}\n",
                c.period,
                c.person_id,
                shown(c.a_minor),
                shown(c.b_minor),
                if outcome_moved(c) {
                    format!(
                        " (reoffended {} -> {})",
                        flag(c.a_reoffended),
                        flag(c.b_reoffended)
                    )
                } else {
                    String::new()
                }
            );
        }
        if d.payments.len() > 20 {
            s += &format!("   … and {} more\n", d.payments.len() - 20);
        }
    }
    s
}

fn signed_minor(v: i128) -> String {
    let amount = minor(v);
    if v >= 0 {
        format!("+{amount}")
    } else {
        amount
    }
}
