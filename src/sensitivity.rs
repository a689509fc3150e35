//! Sensitivity of the decision: the audit recomputed under reasonable alternatives to
//! some of the spec's choices (`[sensitivity]`), so a reviewer sees whether the verdict
//! depends on them.
//!
//! Disputed contracts were disputed over definitions more than arithmetic: a caliper, a
//! matching ratio, a court lag, "relative" against "points". Each variant of the grid
//! (see [`crate::spec::sensitivity`]) runs through the same pipeline on the inputs
//! already read and hashed — never read again — and is summarised by its effect, its
//! decision and its payment. The decision is **robust** when every variant reaches the
//! spec's own decision, else **fragile**, and the single changes from the spec's own
//! choices that flip it are named.
//!
//! Variants run in parallel, one contiguous range of the grid per thread
//! ([`crate::par`]), and are joined in grid order: each variant is a pure function of
//! the spec and the inputs, so the results are the same whatever the thread count.

use crate::decision::Evaluation;
use crate::pipeline::{self, Audit, AuditError, Inputs};
use crate::spec::sensitivity::Sensitivity;

/// What one variant decided.
#[derive(Debug, Clone, Default)]
pub struct VariantOutcome {
    /// Index into each field's values.
    pub choice: Vec<usize>,
    /// Every evaluation (scope, effect, decision), in the audit's order.
    pub evaluations: Vec<Evaluation>,
    /// The overall verdict code.
    pub verdict: &'static str,
    /// Total owed, in minor units (positive to the provider).
    pub total_minor: i128,
}

impl VariantOutcome {
    /// The decision: the verdict and every evaluation's code, by scope.
    pub fn decision(&self) -> Vec<(&str, &'static str)> {
        let mut d = vec![("verdict", self.verdict)];
        d.extend(
            self.evaluations
                .iter()
                .map(|e| (e.scope.as_str(), e.code())),
        );
        d
    }
}

/// One change from the spec's own choices that, alone, changes the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    /// Index of the field changed.
    pub field: usize,
    /// Index of its value.
    pub value: usize,
    /// The variant that differs from the spec's own in that field only.
    pub variant: usize,
}

/// The grid's results.
#[derive(Debug, Clone)]
pub struct SensitivityResult {
    /// In grid order (the last field varying fastest).
    pub variants: Vec<VariantOutcome>,
    /// Index of the spec's own variant.
    pub own: usize,
}

impl SensitivityResult {
    /// True when variant `i` decides differently from the spec's own choices.
    pub fn flips(&self, i: usize) -> bool {
        self.variants[i].decision() != self.variants[self.own].decision()
    }

    /// Every variant reaches the spec's own decision.
    pub fn robust(&self) -> bool {
        (0..self.variants.len()).all(|i| !self.flips(i))
    }

    /// Variants whose decision differs from the spec's own, in grid order.
    pub fn flipping(&self) -> Vec<usize> {
        (0..self.variants.len())
            .filter(|&i| self.flips(i))
            .collect()
    }

    /// The single changes from the spec's own choices that flip the decision, in field
    /// then value order.
    pub fn single_flips(&self) -> Vec<Flip> {
        let own = &self.variants[self.own].choice;
        let mut out = Vec::new();
        for (i, v) in self.variants.iter().enumerate() {
            let changed: Vec<usize> = (0..own.len()).filter(|&k| v.choice[k] != own[k]).collect();
            if let [field] = changed[..] {
                if self.flips(i) {
                    out.push(Flip {
                        field,
                        value: v.choice[field],
                        variant: i,
                    });
                }
            }
        }
        out.sort_by_key(|f| (f.field, f.value));
        out
    }

    /// Smallest and largest total payment over the grid, in minor units.
    pub fn payment_range(&self) -> (i128, i128) {
        let totals = self.variants.iter().map(|v| v.total_minor);
        (totals.clone().min().unwrap_or(0), totals.max().unwrap_or(0))
    }
}

/// The inputs again, sharing the parsed columns (no copy, no re-reading), without the
/// claims: claims are reconciled with the spec's own result only.
pub fn share(inputs: &Inputs) -> Inputs {
    Inputs {
        people: inputs.people.clone(),
        convictions: inputs.convictions.clone(),
        pool: inputs.pool.clone(),
        risk_model: inputs.risk_model.clone(),
        offence_categories: inputs.offence_categories.clone(),
        claims: None,
    }
}

fn summarise(audit: &Audit, choice: &[usize]) -> VariantOutcome {
    VariantOutcome {
        choice: choice.to_vec(),
        evaluations: audit.evaluations.clone(),
        verdict: crate::evidence::verdict_code(audit),
        total_minor: audit.total_minor,
    }
}

/// Columns of a people-shaped input (`people` or `pool`) that the spec or any of its
/// variants reads, so the inputs are read once for the whole grid.
pub fn people_columns(
    spec: &crate::spec::AuditSpec,
    input: &crate::spec::InputSpec,
) -> Vec<(String, String)> {
    let mut cols = crate::cohort::people_columns(spec, input);
    for v in spec.sensitivity.iter().flat_map(|s| &s.variants) {
        let same_input = match input.name.as_str() {
            "pool" => v.spec.pool.as_ref(),
            _ => Some(&v.spec.people),
        };
        if let Some(i) = same_input {
            for c in crate::cohort::people_columns(&v.spec, i) {
                if !cols.iter().any(|(f, _)| *f == c.0) {
                    cols.push(c);
                }
            }
        }
    }
    cols
}

/// Runs every variant of the grid but the spec's own, whose result is `own`.
pub fn run(
    grid: &Sensitivity,
    inputs: &Inputs,
    own: &Audit,
) -> Result<SensitivityResult, AuditError> {
    let own_outcome = summarise(own, &grid.variants[grid.own].choice);
    let n = grid.variants.len();
    tracing::info!(variants = n, "sensitivity: recomputing the grid");
    let variants = crate::par::fill_ranges_of(n, 1, |range, out: &mut [VariantOutcome]| {
        for (i, slot) in range.zip(out) {
            let v = &grid.variants[i];
            *slot = if i == grid.own {
                own_outcome.clone()
            } else {
                let audit = pipeline::audit((*v.spec).clone(), share(inputs)).map_err(|e| {
                    AuditError::Sensitivity {
                        variant: grid.describe(&v.choice),
                        source: Box::new(e),
                    }
                })?;
                tracing::debug!(variant = i, "sensitivity variant done");
                summarise(&audit, &v.choice)
            };
        }
        Ok::<(), AuditError>(())
    })?;
    Ok(SensitivityResult {
        variants,
        own: grid.own,
    })
}

/// `results.json` → `sensitivity`: the grid, each variant's effect, decision and
/// payment, and whether the decision is robust.
#[derive(Debug, serde::Serialize)]
pub struct SensitivityOut {
    /// Most variants a grid may have.
    pub max_variants: usize,
    pub fields: Vec<FieldOut>,
    /// Index of the spec's own variant in `variants`.
    pub spec_variant: usize,
    /// The spec's own verdict code.
    pub decision: &'static str,
    /// Every variant reaches the spec's own decision (verdict and every evaluation).
    pub robust: bool,
    /// Single changes from the spec's own choices that flip the decision.
    pub flips: Vec<FlipOut>,
    /// Every variant whose decision differs from the spec's own.
    pub flipping_variants: Vec<usize>,
    pub payment_min_minor: i64,
    pub payment_min: String,
    pub payment_max_minor: i64,
    pub payment_max: String,
    pub variants: Vec<VariantOut>,
}

/// One field varied.
#[derive(Debug, serde::Serialize)]
pub struct FieldOut {
    pub path: String,
    pub values: Vec<serde_json::Value>,
    pub spec_value: serde_json::Value,
}

/// One change that flips the decision.
#[derive(Debug, serde::Serialize)]
pub struct FlipOut {
    pub path: String,
    pub spec_value: serde_json::Value,
    pub value: serde_json::Value,
    pub variant: usize,
    pub decision: &'static str,
}

/// One variant.
#[derive(Debug, serde::Serialize)]
pub struct VariantOut {
    pub variant: usize,
    /// Path → value, in field order.
    pub values: serde_json::Map<String, serde_json::Value>,
    pub as_specified: bool,
    pub decision: &'static str,
    /// The decision (verdict and every evaluation's code) is the spec's own.
    pub same_decision: bool,
    pub evaluations: Vec<VariantEvaluationOut>,
    pub payment_total_minor: i64,
    pub payment_total: String,
}

/// The effect and decision of one evaluation of a variant.
#[derive(Debug, serde::Serialize)]
pub struct VariantEvaluationOut {
    pub scope: String,
    pub people: u64,
    pub treated: crate::evidence::Value,
    pub comparator: crate::evidence::Value,
    pub improvement: crate::evidence::Value,
    pub relative_improvement: Option<crate::evidence::Value>,
    pub required_improvement: crate::evidence::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub significant: Option<bool>,
    pub code: &'static str,
}

/// A TOML value as JSON (dates as their TOML text).
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => J::String(f.to_string()),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// The `sensitivity` object of results.json, when the spec has a grid.
pub fn results_out(audit: &Audit) -> Option<SensitivityOut> {
    let grid = audit.spec.sensitivity.as_ref()?;
    let r = audit.sensitivity.as_ref()?;
    let money = crate::evidence::money;
    let own = &r.variants[r.own];
    let (min, max) = r.payment_range();
    Some(SensitivityOut {
        max_variants: crate::spec::sensitivity::MAX_VARIANTS,
        fields: grid
            .fields
            .iter()
            .map(|f| FieldOut {
                path: f.path.clone(),
                values: f.values.iter().map(toml_to_json).collect(),
                spec_value: toml_to_json(&f.values[f.own]),
            })
            .collect(),
        spec_variant: r.own,
        decision: own.verdict,
        robust: r.robust(),
        flips: r
            .single_flips()
            .into_iter()
            .map(|f| {
                let field = &grid.fields[f.field];
                FlipOut {
                    path: field.path.clone(),
                    spec_value: toml_to_json(&field.values[field.own]),
                    value: toml_to_json(&field.values[f.value]),
                    variant: f.variant,
                    decision: r.variants[f.variant].verdict,
                }
            })
            .collect(),
        flipping_variants: r.flipping(),
        payment_min_minor: money(min),
        payment_min: crate::exact::minor_to_decimal(min),
        payment_max_minor: money(max),
        payment_max: crate::exact::minor_to_decimal(max),
        variants: r
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| VariantOut {
                variant: i,
                values: grid
                    .fields
                    .iter()
                    .zip(&v.choice)
                    .map(|(f, &k)| (f.path.clone(), toml_to_json(&f.values[k])))
                    .collect(),
                as_specified: i == r.own,
                decision: v.verdict,
                same_decision: !r.flips(i),
                evaluations: v
                    .evaluations
                    .iter()
                    .map(|e| VariantEvaluationOut {
                        scope: e.scope.clone(),
                        people: e.people,
                        treated: e.treated.into(),
                        comparator: e.comparator.into(),
                        improvement: e.improvement.into(),
                        relative_improvement: e.relative_improvement.map(Into::into),
                        required_improvement: e.required.into(),
                        significant: e.significant,
                        code: e.code(),
                    })
                    .collect(),
                payment_total_minor: money(v.total_minor),
                payment_total: crate::exact::minor_to_decimal(v.total_minor),
            })
            .collect(),
    })
}

/// A value as a person reads it: strings without quotes, the rest as TOML.
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The verdict lines of `run` about the grid.
pub fn summary_lines(audit: &Audit) -> String {
    let (Some(grid), Some(r)) = (&audit.spec.sensitivity, &audit.sensitivity) else {
        return String::new();
    };
    let currency = &audit.spec.payment.currency;
    let (min, max) = r.payment_range();
    let n = r.variants.len();
    let flipping = r.flipping();
    let mut s = if flipping.is_empty() {
        format!(
            "  sensitivity robust: {} in all {n} variants of {} fields (payment {currency} {} to {})\n",
            r.variants[r.own].verdict,
            grid.fields.len(),
            crate::exact::minor_to_decimal(min),
            crate::exact::minor_to_decimal(max)
        )
    } else {
        format!(
            "  sensitivity FRAGILE: {} of {n} variants reach a different decision from the spec's own choices [decision-fragile]\n",
            flipping.len()
        )
    };
    for f in r.single_flips() {
        let field = &grid.fields[f.field];
        s += &format!(
            "              {} = {} instead of {} alone gives {}\n",
            field.path,
            show(&field.values[f.value]),
            show(&field.values[field.own]),
            r.variants[f.variant].verdict
        );
    }
    s
}

/// The whole grid as a text table (`outcome-audit sensitivity SPEC`).
pub fn render_grid(audit: &Audit) -> String {
    let (Some(grid), Some(r)) = (&audit.spec.sensitivity, &audit.sensitivity) else {
        return String::new();
    };
    let mut header: Vec<String> = vec!["variant".into()];
    header.extend(grid.fields.iter().map(|f| f.path.clone()));
    for e in &r.variants[r.own].evaluations {
        header.push(format!("{} improvement", e.scope));
        header.push(format!("{} decision", e.scope));
    }
    header.push(format!("payment {}", audit.spec.payment.currency));
    let mut rows = vec![header];
    for (i, v) in r.variants.iter().enumerate() {
        let mut row = vec![format!(
            "{i}{}{}",
            if i == r.own { " (spec)" } else { "" },
            if r.flips(i) { " *" } else { "" }
        )];
        row.extend(
            grid.fields
                .iter()
                .zip(&v.choice)
                .map(|(f, &k)| show(&f.values[k])),
        );
        for e in &v.evaluations {
            row.push(format!(
                "{}{}",
                e.improvement.to_fixed(crate::evidence::RATE_PLACES),
                e.relative_improvement
                    .map(|r| format!(
                        " ({}%)",
                        r.times(crate::exact::Ratio::from_int(100)).to_fixed(2)
                    ))
                    .unwrap_or_default()
            ));
            row.push(e.code().to_string());
        }
        row.push(crate::exact::minor_to_decimal(v.total_minor));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = format!(
        "{}: {} variants of {} fields; the spec's own choices are variant {}; * marks a different decision\n",
        audit.spec.contract.id,
        r.variants.len(),
        grid.fields.len(),
        r.own
    );
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        s += cells.join("  ").trim_end();
        s += "\n";
    }
    s += &summary_lines(audit);
    s
}
