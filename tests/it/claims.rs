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

/// SHA-256 of a file, as lowercase hex.
fn sha256_hex(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn claim_status(results: &serde_json::Value) -> Vec<(String, String, String)> {
    results["claims"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["scope"].as_str().unwrap().to_string(),
                l["field"].as_str().unwrap().to_string(),
                l["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn claims_given_on_the_command_line_become_evidence_that_replay_reconciles_again() {
    let sb = Sandbox::new();
    let claims = repo()
        .join("audit-specs")
        .join("claims")
        .join("peterborough-cohort-1-provider-lag3.toml");
    let dir = sb.join("standard");
    sb.cmd(["run"])
        .arg(committed_spec("peterborough-cohort-1"))
        .arg("--claims")
        .arg(&claims)
        .arg("--out")
        .arg(&dir)
        .assert(EXIT_CLAIM_DISPUTED)
        .stdout_has(&["5 of 6 figures claimed by Provider disputed [claim-disputed]"]);
    // The bundle's spec names the claims, pinned by their digest, and holds a copy.
    let spec = std::fs::read_to_string(dir.join("spec.toml")).unwrap();
    let original = std::fs::read_to_string(committed_spec("peterborough-cohort-1")).unwrap();
    assert!(
        spec.starts_with(&original),
        "the spec as written comes first"
    );
    assert!(spec.contains(&format!(
        "[inputs.claims]\npath = \"peterborough-cohort-1-provider-lag3.toml\"\nformat = \"toml\"\nsha256 = \"{}\"\n",
        sha256_hex(&claims)
    )));
    assert_eq!(
        std::fs::read(dir.join("inputs/claims.toml")).unwrap(),
        std::fs::read(&claims).unwrap()
    );
    let results = read_json(&dir.join("results.json"));
    assert_eq!(
        results["spec"]["sha256"],
        sha256_hex(&dir.join("spec.toml"))
    );
    // Under the standard 6-month lag the provider's lag-3 rates are all off by more than
    // the 0.0005 tolerance (1.3483 against 1.356356, 1.5597 against 1.568613, 0.2114
    // against 0.212257); the decision agrees; the money does not (318000.00 against
    // 318066.66).
    let s = |scope: &str, field: &str, status: &str| {
        (scope.to_string(), field.to_string(), status.to_string())
    };
    assert_eq!(
        claim_status(&results),
        [
            s("cohort-1", "treated", "disputed"),
            s("cohort-1", "comparator", "disputed"),
            s("cohort-1", "improvement", "disputed"),
            s("cohort-1", "decision", "agreed"),
            s("cohort-1", "payment", "disputed"),
            s("total", "payment", "disputed"),
        ]
    );
    sb.cmd(["verify"]).arg(&dir).assert(EXIT_OK);
    sb.cmd(["replay"])
        .arg(&dir)
        .assert(EXIT_OK)
        .stdout_has(&["identical"]);

    // Under the provider's own 3-month lag only the rounding is disputed: 211.1444
    // events avoided priced exactly give 316716.66, not the 212 × 1500.00 claimed.
    let lag3 = sb.join("lag3");
    sb.cmd(["run"])
        .arg(committed_spec("peterborough-cohort-1-lag3"))
        .arg("--claims")
        .arg(&claims)
        .arg("--out")
        .arg(&lag3)
        .assert(EXIT_CLAIM_DISPUTED);
    let r = read_json(&lag3.join("results.json"));
    assert_eq!(
        claim_status(&r),
        [
            s("cohort-1", "treated", "agreed"),
            s("cohort-1", "comparator", "agreed"),
            s("cohort-1", "improvement", "agreed"),
            s("cohort-1", "decision", "agreed"),
            s("cohort-1", "payment", "disputed"),
            s("total", "payment", "disputed"),
        ]
    );
    assert_eq!(r["payment"]["total_minor"], 31_671_666);
}

#[test]
fn claims_on_the_command_line_are_refused_when_the_spec_has_claims_or_several_specs_run() {
    let sb = Sandbox::new();
    let claims = repo()
        .join("audit-specs")
        .join("claims")
        .join("peterborough-cohort-1-provider-lag3.toml");
    let out = sb.join("refused");
    sb.cmd(["run"])
        .arg(committed_spec("peterborough-cohort-1-claims"))
        .arg("--claims")
        .arg(&claims)
        .arg("--out")
        .arg(&out)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["already names a claims file", "not both"]);
    assert!(!out.exists());
    sb.cmd(["run"])
        .arg(committed_spec("doncaster-cohort-1"))
        .arg(committed_spec("doncaster-cohort-2"))
        .arg("--claims")
        .arg(&claims)
        .arg("--out")
        .arg(&out)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["--claims takes exactly one spec"]);
    assert!(!out.exists());
}
