//! Gaming checks of risk-based audits: the risk mix and the exclusion shares of each
//! group, side by side, so that creaming or cherry-picking shows.

use crate::common::*;

#[test]
fn risk_mix_and_exclusion_shares_are_reported_for_the_cohorts_and_their_baseline() {
    let sb = Sandbox::new();
    // The committed historical spec with the OGRS3 model added for the gaming checks only.
    let text = std::fs::read_to_string(committed_spec("doncaster-historical")).expect("spec");
    let text = text
        .replace("path = \"../", &format!("path = \"{}/", repo().display()))
        .replace(
            "[inputs.convictions]",
            &format!(
                "[inputs.risk_model]\npath = \"{0}/audit-specs/models/ogrs3.toml\"\nformat = \"toml\"\n\n[inputs.offence_categories]\npath = \"{0}/audit-specs/models/offence-categories.csv\"\nformat = \"csv\"\n\n[inputs.convictions]",
                repo().display()
            ),
        )
        .replace(
            "[threshold]",
            "[risk]\nhorizon_years = 1\ncolumns = { sex = \"sex\", age = \"age\", age_at_conviction = \"age\", age_at_first_sanction = \"age_first_sanction\", previous_sanctions = \"prior_sanctions\", offence = \"index_offence\" }\nsex_codes = { male = [\"M\"], female = [\"F\"] }\n\n[threshold]",
        );
    let spec = sb.write("gaming.toml", text);
    let b = sb.audit(&spec);
    let r = b.results();
    let mix = r["risk"]["mix"].as_array().expect("risk.mix");
    let periods: Vec<&str> = mix.iter().map(|m| m["period"].as_str().unwrap()).collect();
    assert_eq!(periods, ["cohort-1", "cohort-2", "baseline-2009"]);
    // The decision is unchanged by the risk model: it is only reported.
    assert_eq!(r["payment"]["total_minor"], -100_000_000);
    let risk = b.table("risk");
    for (m, period) in mix.iter().zip(periods) {
        // Every eligible person is scored (the fixtures have no incomplete rows), and
        // the bands add up to the people scored.
        let bands: u64 = m["bands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(bands, m["scored"].as_u64().unwrap());
        assert_eq!(m["scored"], 1000);
        // The mean probability is the mean of tables/risk.csv's probabilities, exactly.
        let sum: i128 = risk
            .records
            .iter()
            .filter(|row| row[risk.column("period")] == period)
            .map(|row| {
                row[risk.column("probability_used")]
                    .replace('.', "")
                    .parse::<i128>()
                    .unwrap()
            })
            .sum();
        let exact = m["mean_probability"]["exact"].as_str().unwrap();
        let (n, d) = exact.split_once('/').unwrap();
        let (n, d): (i128, i128) = (n.parse().unwrap(), d.parse().unwrap());
        assert_eq!(
            n * 1_000 * 1_000_000,
            sum * d,
            "{period}: {exact} vs sum {sum}"
        );
        // 25 deported of the 1080 rows of each period (fixtures/doncaster/truth.json).
        let deported = &m["excluded_share"][0];
        assert_eq!(deported["rule"], "deported");
        assert_eq!(deported["count"], 25);
        assert_eq!(deported["share"]["exact"], "5/216");
    }
}
