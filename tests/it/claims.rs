//! Claims reconciliation: a party's claimed figures set against the recomputation.

use crate::common::*;

/// Exit code of a run whose claims disagree with the recomputation.
const EXIT_CLAIM_DISPUTED: i32 = 3;

#[test]
fn a_favourably_rounded_claim_is_disputed_and_the_run_exits_3_with_a_bundle() {
    let sb = Sandbox::new();
    let out_dir = sb.join("bundle");
    let out = sb
        .cmd(["run"])
        .arg(committed_spec("peterborough-cohort-1-claims"))
        .arg("--out")
        .arg(&out_dir)
        .assert(EXIT_CLAIM_DISPUTED);
    assert!(
        out.stdout
            .contains("3 of 6 figures claimed by Provider disputed [claim-disputed]"),
        "{}",
        out.stdout
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    let lines = results["claims"]["lines"].as_array().unwrap();
    let status = |field: &str, scope: &str| {
        lines
            .iter()
            .find(|l| l["field"] == field && l["scope"] == scope)
            .map(|l| l["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    // Recomputed: 1355 events / 999 matched men = 1.356356 (claimed 1.3564: within
    // 0.0005); improvement 0.212257 against the claimed 0.22 (0.0077 apart: disputed).
    assert_eq!(status("treated", "cohort-1"), "agreed");
    assert_eq!(status("comparator", "cohort-1"), "agreed");
    assert_eq!(status("improvement", "cohort-1"), "disputed");
    assert_eq!(status("decision", "cohort-1"), "agreed");
    assert_eq!(status("payment", "cohort-1"), "disputed");
    assert_eq!(status("payment", "total"), "disputed");
    assert_eq!(results["claims"]["disputed"], 3);
    let findings: Vec<&str> = results["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        findings.iter().filter(|c| **c == "claim-disputed").count(),
        3
    );
    // The claims file is evidence: embedded, and replay reproduces the reconciliation.
    assert!(out_dir.join("inputs/claims.toml").is_file());
    sb.cmd(["verify"]).arg(&out_dir).assert(EXIT_OK);
    sb.cmd(["replay"]).arg(&out_dir).assert(EXIT_OK);
}

#[test]
fn claims_that_agree_exit_0() {
    let sb = Sandbox::new();
    let claims = "claims_version = 1\nparty = \"Provider\"\ntolerance = \"0.0005\"\n\n[[scope]]\nscope = \"cohort-1\"\nimprovement = \"0.2123\"\ndecision = \"met\"\npayment_minor = 31_806_666\n";
    sb.write("agree.toml", claims);
    let text = std::fs::read_to_string(committed_spec("peterborough-cohort-1-claims")).unwrap();
    let text = text
        .replace("path = \"../", &format!("path = \"{}/", repo().display()))
        .replace(
            "path = \"claims/peterborough-cohort-1-provider.toml\"",
            &format!("path = \"{}\"", sb.join("agree.toml").display()),
        );
    let spec = sb.write("spec.toml", text);
    let b = sb.audit(&spec);
    assert!(
        b.stdout
            .contains("0 of 3 figures claimed by Provider disputed"),
        "{}",
        b.stdout
    );
    assert_eq!(b.results()["claims"]["disputed"], 0);
}

#[test]
fn a_claim_for_a_scope_that_was_not_evaluated_is_bad_input() {
    let sb = Sandbox::new();
    sb.write(
        "bad.toml",
        "claims_version = 1\nparty = \"P\"\ntolerance = \"0\"\n[[scope]]\nscope = \"cohort-9\"\ndecision = \"met\"\n",
    );
    let text = std::fs::read_to_string(committed_spec("peterborough-cohort-1-claims")).unwrap();
    let text = text
        .replace("path = \"../", &format!("path = \"{}/", repo().display()))
        .replace(
            "path = \"claims/peterborough-cohort-1-provider.toml\"",
            &format!("path = \"{}\"", sb.join("bad.toml").display()),
        );
    let spec = sb.write("spec.toml", text);
    let out = sb
        .cmd(["run"])
        .arg(&spec)
        .arg("--out")
        .arg(sb.join("b"))
        .assert(EXIT_BAD_INPUT);
    assert!(
        out.stderr.contains("no evaluation \"cohort-9\""),
        "{}",
        out.stderr
    );
    assert!(!sb.join("b").exists());
}
