//! Claims reconciliation: what a party says the figures are, set against what the audit
//! recomputed, figure by figure.
//!
//! A claims file is an input like any other (TOML, hashed and embedded in the bundle).
//! Each claimed rate or value agrees when it is within the file's stated `tolerance`
//! of the recomputed one (compared exactly, as decimals); decisions must be equal; money
//! must be equal to the penny unless `tolerance_minor` says otherwise. Any disagreement is
//! a `claim-disputed` finding and makes `run` exit with the disputed-claims code.

use serde::Deserialize;

use crate::exact::{minor_to_decimal, Ratio};
use crate::pipeline::Audit;

/// A claims file, as written.
///
/// ```toml
/// claims_version = 1
/// party = "Provider"
/// tolerance = "0.0005"          # for rates and values
/// tolerance_minor = 0           # for money
///
/// [[scope]]
/// scope = "cohort-1"
/// treated = "0.523"
/// comparator = "0.580"
/// improvement = "0.057"
/// decision = "met"
/// payment_minor = 0
///
/// [total]
/// payment_minor = 0
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    pub claims_version: u32,
    /// Who makes the claims.
    pub party: String,
    /// Largest difference in a rate or value still counted as agreement (decimal string).
    pub tolerance: String,
    /// Largest difference in money, in minor units, still counted as agreement.
    #[serde(default)]
    pub tolerance_minor: i64,
    /// Claims per evaluated scope (a period name or `pooled`).
    #[serde(default)]
    pub scope: Vec<ScopeClaims>,
    #[serde(default)]
    pub total: Option<TotalClaims>,
}

/// Claimed figures of one scope; every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeClaims {
    pub scope: String,
    #[serde(default)]
    pub treated: Option<String>,
    #[serde(default)]
    pub comparator: Option<String>,
    #[serde(default)]
    pub improvement: Option<String>,
    /// `met` or `missed`.
    #[serde(default)]
    pub decision: Option<String>,
    #[serde(default)]
    pub payment_minor: Option<i64>,
}

/// Claimed totals.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalClaims {
    #[serde(default)]
    pub payment_minor: Option<i64>,
}

/// Why a claims file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    #[error("{path}: {message}\n    help: see docs/spec.md, claims files")]
    Invalid {
        path: std::path::PathBuf,
        message: String,
    },
}

/// One claimed figure set against the recomputed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub scope: String,
    pub field: &'static str,
    pub claimed: String,
    pub recomputed: String,
    /// claimed − recomputed, where the figure is a number.
    pub difference: Option<String>,
    pub agreed: bool,
}

/// All reconciled claims of one file.
#[derive(Debug, Clone)]
pub struct Reconciliation {
    pub party: String,
    pub tolerance: Ratio,
    pub tolerance_minor: i64,
    pub lines: Vec<Reconciled>,
}

impl Reconciliation {
    /// Number of claims that disagree with the recomputation.
    pub fn disputed(&self) -> usize {
        self.lines.iter().filter(|l| !l.agreed).count()
    }
}

/// Reads and checks a claims file's text.
pub fn parse(path: &std::path::Path, text: &str) -> Result<ClaimsFile, ClaimsError> {
    let invalid = |message: String| ClaimsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let file: ClaimsFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if file.claims_version != 1 {
        return Err(invalid(format!(
            "unsupported claims_version {}; this build reads 1",
            file.claims_version
        )));
    }
    let tolerance = Ratio::parse_decimal(&file.tolerance).map_err(|e| invalid(e.to_string()))?;
    if tolerance.is_negative() || file.tolerance_minor < 0 {
        return Err(invalid("tolerances cannot be negative".into()));
    }
    Ok(file)
}

/// Sets every claimed figure against the audit's.
pub fn reconcile(
    path: &std::path::Path,
    file: &ClaimsFile,
    audit: &Audit,
) -> Result<Reconciliation, ClaimsError> {
    let invalid = |message: String| ClaimsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let tolerance = Ratio::parse_decimal(&file.tolerance).map_err(|e| invalid(e.to_string()))?;
    let mut lines = Vec::new();
    let number = |scope: &str,
                  field: &'static str,
                  claimed: &str,
                  recomputed: Ratio|
     -> Result<Reconciled, ClaimsError> {
        let c = Ratio::parse_decimal(claimed)
            .map_err(|e| invalid(format!("scope {scope:?}, {field}: {e}")))?;
        let diff = c.minus(recomputed);
        Ok(Reconciled {
            scope: scope.to_string(),
            field,
            claimed: claimed.to_string(),
            recomputed: recomputed.to_fixed(crate::evidence::RATE_PLACES),
            difference: Some(diff.to_fixed(crate::evidence::RATE_PLACES)),
            agreed: diff.abs_value() <= tolerance,
        })
    };
    let money = |scope: &str, field: &'static str, claimed: i64, recomputed: i128| Reconciled {
        scope: scope.to_string(),
        field,
        claimed: minor_to_decimal(i128::from(claimed)),
        recomputed: minor_to_decimal(recomputed),
        difference: Some(minor_to_decimal(i128::from(claimed) - recomputed)),
        agreed: (i128::from(claimed) - recomputed).abs() <= i128::from(file.tolerance_minor),
    };
    for s in &file.scope {
        let e = audit
            .evaluations
            .iter()
            .find(|e| e.scope == s.scope)
            .ok_or_else(|| {
                invalid(format!(
                    "no evaluation {:?} in this audit; evaluated scopes are: {}",
                    s.scope,
                    audit
                        .evaluations
                        .iter()
                        .map(|e| e.scope.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        if let Some(v) = &s.treated {
            lines.push(number(&s.scope, "treated", v, e.treated)?);
        }
        if let Some(v) = &s.comparator {
            lines.push(number(&s.scope, "comparator", v, e.comparator)?);
        }
        if let Some(v) = &s.improvement {
            lines.push(number(&s.scope, "improvement", v, e.improvement)?);
        }
        if let Some(v) = &s.decision {
            let claimed_met = match v.as_str() {
                "met" => true,
                "missed" => false,
                other => {
                    return Err(invalid(format!(
                        "scope {:?}: decision {other:?} is neither \"met\" nor \"missed\"",
                        s.scope
                    )))
                }
            };
            lines.push(Reconciled {
                scope: s.scope.clone(),
                field: "decision",
                claimed: v.clone(),
                recomputed: if e.met { "met" } else { "missed" }.to_string(),
                difference: None,
                agreed: claimed_met == e.met,
            });
        }
        if let Some(v) = s.payment_minor {
            let paid = audit
                .payments
                .iter()
                .filter(|p| p.scope == s.scope)
                .map(|p| p.amount_minor)
                .sum();
            lines.push(money(&s.scope, "payment", v, paid));
        }
    }
    if let Some(v) = file.total.as_ref().and_then(|t| t.payment_minor) {
        lines.push(money("total", "payment", v, audit.total_minor));
    }
    Ok(Reconciliation {
        party: file.party.clone(),
        tolerance,
        tolerance_minor: file.tolerance_minor,
        lines,
    })
}

/// The spec with a claims file given on the command line (`run --claims FILE`) added as
/// `[inputs.claims]`, pinned by its SHA-256, so that the spec in the bundle names the
/// claims like any input and `replay` reconciles them again. The line added is
/// `path = "<file name>"`: the bundle holds its own copy, and `replay --data DIR`
/// looks for that name. Refused when the spec already names a claims file.
pub fn attach(
    spec: crate::spec::AuditSpec,
    file: &std::path::Path,
) -> Result<crate::spec::AuditSpec, String> {
    if let Some(c) = &spec.claims {
        return Err(format!(
            "{} already names a claims file ({}) in [inputs.claims]\n    help: give the claims either in the spec or with --claims, not both",
            spec.path.display(),
            c.path_as_written
        ));
    }
    let (digest, _) = crate::data::hash_file(file).map_err(|e| e.to_string())?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("--claims {}: not a file name", file.display()))?;
    let mut text = String::from_utf8_lossy(&spec.bytes).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text += &format!(
        "\n# Added by `outcome-audit run --claims`: the claims file given on the command line,\n# pinned by its digest (the bundle holds a copy as inputs/claims.toml).\n[inputs.claims]\npath = {}\nformat = \"toml\"\nsha256 = \"{}\"\n",
        toml::Value::String(name),
        digest.to_hex()
    );
    let mut out = crate::spec::AuditSpec::from_bytes(&spec.path, text.into_bytes())
        .map_err(|e| format!("--claims: {e}"))?;
    if let Some(c) = out.claims.as_mut() {
        c.path = file.to_path_buf();
    }
    Ok(out)
}
