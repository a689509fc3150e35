//! `[sensitivity]`, checked: reasonable alternatives to some of the spec's own choices,
//! and the grid of variants they make.
//!
//! Each key is the TOML path of a field the spec sets (`"comparator.caliper_sd"`), each
//! value a list of alternatives. A variant is the spec with one alternative chosen for
//! every listed field: the full grid is the cartesian product, the spec's own value
//! always among the choices (added first when the list leaves it out). Every variant is
//! checked here exactly as a spec file is, so a value that would not be accepted in
//! the field itself is reported at its own `line:column` in `[sensitivity]`, and the
//! audit never meets an unchecked variant.

use std::collections::BTreeSet;
use std::path::Path;

use super::raw::RawSensitivity;
use super::{AuditSpec, Problems};
use crate::exact::Ratio;

/// Most variants one grid may have: each is a whole audit (matching included), and
/// a grid this size already takes 64 times as long as the audit itself.
pub const MAX_VARIANTS: usize = 64;

/// Top-level parts of a spec that a sensitivity grid cannot vary, and why.
const FIXED: &[(&str, &str)] = &[
    ("version", "the spec format version is not a contract choice"),
    ("contract", "the contract's parties and identity are not a choice"),
    (
        "inputs",
        "variants run on the inputs already read and hashed; audit other data with a second spec and compare the bundles with `diff`",
    ),
    ("sensitivity", "a grid cannot vary itself"),
];

/// A checked `[sensitivity]` section.
#[derive(Debug, Clone)]
pub struct Sensitivity {
    /// The fields varied, in the order written.
    pub fields: Vec<Field>,
    /// Every combination, the last field varying fastest.
    pub variants: Vec<Variant>,
    /// Index of the variant that is the spec's own choice of every field.
    pub own: usize,
}

/// One field varied, and the values it takes.
#[derive(Debug, Clone)]
pub struct Field {
    /// TOML path, as written in `[sensitivity]`.
    pub path: String,
    /// The values, in the order written; the spec's own value first when not listed.
    pub values: Vec<toml::Value>,
    /// Index of the spec's own value in `values`.
    pub own: usize,
}

/// One variant of the spec.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Index into each field's `values`, in field order.
    pub choice: Vec<usize>,
    /// The spec with those values, without `[sensitivity]` and without claims (claims
    /// are reconciled with the spec's own result only).
    pub spec: Box<AuditSpec>,
}

impl Sensitivity {
    /// `path = value` of each field of a variant, for messages.
    pub fn describe(&self, choice: &[usize]) -> String {
        describe(&self.fields, choice)
    }
}

fn describe(fields: &[Field], choice: &[usize]) -> String {
    fields
        .iter()
        .zip(choice)
        .map(|(f, &i)| format!("{} = {}", f.path, f.values[i]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Equality of two TOML values as the spec reads them: decimal strings by value
/// (`"0.20"` is `"0.2"`), tables and arrays element by element.
fn same(a: &toml::Value, b: &toml::Value) -> bool {
    use toml::Value as V;
    match (a, b) {
        (V::String(x), V::String(y)) => {
            x == y
                || matches!(
                    (Ratio::parse_decimal(x), Ratio::parse_decimal(y)),
                    (Ok(p), Ok(q)) if p == q
                )
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (V::Table(x), V::Table(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The value at a dotted path of a document, if every step exists.
fn get<'a>(doc: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut table = doc;
    for step in parents {
        table = table.get(*step)?.as_table()?;
    }
    table.get(*last)
}

/// Sets the value at `path`: a table given for a table replaces only the fields it names.
fn set(doc: &mut toml::Table, path: &[&str], value: &toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty path".into());
    };
    let mut table = doc;
    for step in parents {
        table = table
            .get_mut(*step)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| format!("no table {step:?}"))?;
    }
    match (table.get_mut(*last), value) {
        (Some(toml::Value::Table(existing)), toml::Value::Table(changes)) => {
            for (k, v) in changes {
                existing.insert(k.clone(), v.clone());
            }
            Ok(())
        }
        (Some(toml::Value::Table(_)), _) => Err(format!(
            "{} is a table: give each alternative as an inline table of the fields it changes, e.g. {{ kind = \"points\", per_period = \"0.05\" }}",
            path.join(".")
        )),
        (Some(slot), v) => {
            *slot = v.clone();
            Ok(())
        }
        (None, _) => Err(format!("no field {last:?}")),
    }
}

/// The problems of a spec text, as one line each (positions dropped: they point into
/// the variant, not the file).
fn messages(e: &super::SpecError) -> String {
    e.problems
        .iter()
        .map(|p| p.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks `[sensitivity]` and builds every variant. Problems are added to `p`; `None`
/// is returned when there are any. Variants are only built when the rest of the spec
/// has no problem (else every variant would repeat them).
pub(super) fn check(
    p: &mut Problems,
    path: &Path,
    text: &str,
    raw: &RawSensitivity,
) -> Option<Sensitivity> {
    let clean = p.list.is_empty();
    let before = p.list.len();
    let mut doc: toml::Table = match toml::from_str(text) {
        Ok(d) => d,
        Err(_) => return None,
    };
    doc.remove("sensitivity");
    // Claims are reconciled with the spec's own result, never with a variant.
    if let Some(inputs) = doc.get_mut("inputs").and_then(toml::Value::as_table_mut) {
        inputs.remove("claims");
    }
    // Fields in the order written.
    let mut entries: Vec<_> = raw.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    if entries.is_empty() {
        p.nowhere(
            "[sensitivity] lists no field",
            Some("add `\"TOML.path\" = [alternatives]`, e.g. \"comparator.caliper_sd\" = [\"0.1\", \"0.25\"], or remove the section"),
        );
        return None;
    }

    let mut fields = Vec::new();
    let mut first_span = None;
    for (key, values) in entries {
        first_span.get_or_insert(key.span());
        let steps: Vec<&str> = key.get_ref().split('.').collect();
        if steps.iter().any(|s| s.is_empty()) {
            p.at(
                key.span(),
                format!("sensitivity path {:?} is not a dotted TOML path", key.get_ref()),
                Some("write the field's path from the top of the spec, e.g. \"outcome.court_lag.months\""),
            );
            continue;
        }
        if let Some((_, why)) = FIXED.iter().find(|(root, _)| *root == steps[0]) {
            p.at(
                key.span(),
                format!("sensitivity cannot vary {:?}: {why}", key.get_ref()),
                None,
            );
            continue;
        }
        let Some(own) = get(&doc, &steps) else {
            let parent = &steps[..steps.len() - 1];
            let known = if parent.is_empty() {
                Some(&doc)
            } else {
                get(&doc, parent).and_then(toml::Value::as_table)
            };
            let help = match known {
                Some(t) => format!(
                    "name a field this spec sets; {} has: {}",
                    if parent.is_empty() {
                        "the spec".to_string()
                    } else {
                        format!("[{}]", parent.join("."))
                    },
                    t.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                None => "name a field this spec sets, by its path from the top of the spec".into(),
            };
            p.at(
                key.span(),
                format!(
                    "sensitivity path {:?} names no field of this spec",
                    key.get_ref()
                ),
                Some(&help),
            );
            continue;
        };
        let own = own.clone();
        if values.get_ref().is_empty() {
            p.at(
                values.span(),
                format!("{}: no alternatives listed", key.get_ref()),
                Some("list at least one value besides the spec's own, or remove the line"),
            );
            continue;
        }
        // Each alternative on its own: the spec with only this value changed must check.
        let mut list: Vec<toml::Value> = Vec::new();
        let mut own_index = None;
        for v in values.get_ref() {
            let mut changed = doc.clone();
            if let Err(e) = set(&mut changed, &steps, v.get_ref()) {
                p.at(
                    v.span(),
                    format!("{} = {}: {e}", key.get_ref(), v.get_ref()),
                    None,
                );
                continue;
            }
            if let Some(i) = list.iter().position(|w| {
                let mut other = doc.clone();
                set(&mut other, &steps, w).is_ok()
                    && same(
                        &toml::Value::Table(other),
                        &toml::Value::Table(changed.clone()),
                    )
            }) {
                p.at(
                    v.span(),
                    format!(
                        "{} = {} is listed twice (the same as {})",
                        key.get_ref(),
                        v.get_ref(),
                        list[i]
                    ),
                    Some("list each alternative once"),
                );
                continue;
            }
            if same(
                &toml::Value::Table(changed.clone()),
                &toml::Value::Table(doc.clone()),
            ) {
                own_index = Some(list.len());
            } else if clean {
                if let Err(e) = variant_spec(path, &changed) {
                    p.at(
                        v.span(),
                        format!(
                            "{} = {} does not make a valid spec: {}",
                            key.get_ref(),
                            v.get_ref(),
                            messages(&e)
                        ),
                        Some("each alternative must be a value the field itself accepts (see docs/spec.md)"),
                    );
                }
            }
            list.push(v.get_ref().clone());
        }
        let own_index = match own_index {
            Some(i) => i,
            None => {
                list.insert(0, own);
                0
            }
        };
        fields.push(Field {
            path: key.get_ref().clone(),
            values: list,
            own: own_index,
        });
    }
    let paths: BTreeSet<&str> = fields.iter().map(|f| f.path.as_str()).collect();
    for f in &fields {
        // "threshold" and "threshold.kind" together would set one field twice.
        if let Some(inner) = paths
            .iter()
            .find(|q| q.starts_with(&format!("{}.", f.path)))
        {
            p.nowhere(
                format!(
                    "sensitivity varies both {:?} and {inner:?}, which is inside it",
                    f.path
                ),
                Some("vary the table with inline tables, or its fields one by one, not both"),
            );
        }
    }
    let count = fields
        .iter()
        .try_fold(1usize, |n, f| n.checked_mul(f.values.len()))
        .unwrap_or(usize::MAX);
    if count > MAX_VARIANTS {
        p.at(
            first_span.clone().unwrap_or(0..0),
            format!(
                "[sensitivity] makes {count} variants ({}), more than the {MAX_VARIANTS} allowed",
                fields
                    .iter()
                    .map(|f| f.values.len().to_string())
                    .collect::<Vec<_>>()
                    .join(" × ")
            ),
            Some("list fewer alternatives, or split the grid over several specs"),
        );
    }
    if !clean || p.list.len() > before {
        return None;
    }

    // The full grid, the last field varying fastest.
    let mut variants = Vec::with_capacity(count);
    let mut failed = 0;
    for n in 0..count {
        let mut choice = vec![0usize; fields.len()];
        let mut rest = n;
        for (k, f) in fields.iter().enumerate().rev() {
            choice[k] = rest % f.values.len();
            rest /= f.values.len();
        }
        let mut changed = doc.clone();
        for (f, &i) in fields.iter().zip(&choice) {
            let steps: Vec<&str> = f.path.split('.').collect();
            // Each value was set on its own above: it sets here too.
            let _ = set(&mut changed, &steps, &f.values[i]);
        }
        match variant_spec(path, &changed) {
            Ok(spec) => variants.push(Variant {
                choice,
                spec: Box::new(spec),
            }),
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    let described = describe(&fields, &choice);
                    p.at(
                        first_span.clone().unwrap_or(0..0),
                        format!(
                            "the variant {described} does not make a valid spec: {}",
                            messages(&e)
                        ),
                        Some("each combination of alternatives must be a valid spec; drop the alternative that cannot combine"),
                    );
                }
            }
        }
    }
    if failed > 3 {
        p.nowhere(
            format!(
                "… and {} more variants that do not make a valid spec",
                failed - 3
            ),
            None,
        );
    }
    if failed > 0 {
        return None;
    }
    let own_choice: Vec<usize> = fields.iter().map(|f| f.own).collect();
    let own = variants.iter().position(|v| v.choice == own_choice)?;
    Some(Sensitivity {
        fields,
        variants,
        own,
    })
}

/// A variant's spec, checked as a file would be (same path, so inputs resolve alike).
fn variant_spec(path: &Path, doc: &toml::Table) -> Result<AuditSpec, super::SpecError> {
    let text = toml::to_string(doc).map_err(|e| super::SpecError {
        path: path.to_path_buf(),
        problems: vec![super::SpecProblem {
            line: None,
            column: None,
            message: format!("cannot write the variant as TOML: {e}"),
            help: None,
        }],
    })?;
    AuditSpec::from_bytes(path, text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_by_value_and_tables_by_field() {
        let v = |s: &str| -> toml::Value {
            toml::from_str::<toml::Table>(&format!("x = {s}")).unwrap()["x"].clone()
        };
        assert!(same(&v("\"0.20\""), &v("\"0.2\"")));
        assert!(!same(&v("\"0.2\""), &v("\"0.25\"")));
        assert!(!same(&v("\"0.2\""), &v("2")));
        assert!(same(
            &v("{ a = 1, b = \"0.10\" }"),
            &v("{ b = \"0.1\", a = 1 }")
        ));
        assert!(!same(&v("{ a = 1 }"), &v("{ a = 1, b = 2 }")));
    }

    #[test]
    fn a_table_alternative_changes_only_the_fields_it_names() {
        let mut doc: toml::Table =
            toml::from_str("[threshold]\nkind = \"relative\"\nper_period = \"0.10\"\n").unwrap();
        set(
            &mut doc,
            &["threshold"],
            &toml::from_str::<toml::Table>("x = { kind = \"points\" }").unwrap()["x"],
        )
        .unwrap();
        assert_eq!(doc["threshold"]["kind"].as_str(), Some("points"));
        assert_eq!(doc["threshold"]["per_period"].as_str(), Some("0.10"));
        assert!(set(&mut doc, &["threshold"], &toml::Value::Integer(1)).is_err());
        assert!(get(&doc, &["threshold", "pooled"]).is_none());
    }
}
