//! OGRS-weighted individual payments (the Lewisham design): each person who does not
//! reoffend earns price × their risk-model probability; totals above the budget cap are
//! scaled pro rata. Checked against the tables by an independent recomputation.

use crate::common::*;

/// Reads a CSV table of a bundle into rows of (header → value).
fn rows(b: &Bundle, name: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let t = b.table(name);
    t.records
        .iter()
        .map(|r| t.header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

fn committed_spec_with_cap(sb: &Sandbox, cap: &str) -> std::path::PathBuf {
    let spec = repo().join("audit-specs/lewisham-ogrs-weighted.toml");
    let text = std::fs::read_to_string(&spec).expect("committed spec");
    let text = text
        .replace("cap_minor = 100_000_000", &format!("cap_minor = {cap}"))
        .replace(
            "path = \"../fixtures/",
            &format!("path = \"{}/fixtures/", repo().display()),
        )
        .replace(
            "path = \"models/",
            &format!("path = \"{}/audit-specs/models/", repo().display()),
        );
    let path = sb.join("lewisham.toml");
    std::fs::write(&path, text).expect("write spec");
    path
}

#[test]
fn each_person_who_does_not_reoffend_earns_price_times_probability() {
    let sb = Sandbox::new();
    let b = sb.audit(committed_spec_with_cap(&sb, "1_000_000_000"));
    let payments = rows(&b, "payments");
    let risk = rows(&b, "risk");
    assert_eq!(payments.len(), 1000, "one row per cohort member");
    let mut total = 0i128;
    for (p, r) in payments.iter().zip(&risk) {
        assert_eq!(p["person_id"], r["person_id"]);
        let micro: i128 = r["probability_used"]
            .replace('.', "")
            .parse()
            .expect("6 places");
        // GBP 5,000.00 = 500,000 pence × probability, rounded toward zero.
        let expected = if p["reoffended"] == "1" {
            0
        } else {
            500_000 * micro / 1_000_000
        };
        assert_eq!(
            p["uncapped_minor"].parse::<i128>().unwrap(),
            expected,
            "{p:?}"
        );
        assert_eq!(
            p["paid_minor"], p["uncapped_minor"],
            "no scaling under a high cap"
        );
        total += expected;
    }
    let r = b.results();
    assert_eq!(r["payment"]["total_minor"].as_i64().unwrap() as i128, total);
    assert_eq!(r["verdict"]["code"], "paid-per-person");
    // 523 of the 1000 reoffend (fixtures/doncaster/truth.json), so 477 earn.
    assert_eq!(
        payments.iter().filter(|p| p["reoffended"] == "0").count(),
        477
    );
}

#[test]
fn a_total_above_the_cap_is_scaled_pro_rata_and_never_exceeds_it() {
    let sb = Sandbox::new();
    let cap: i128 = 50_000_000; // GBP 500,000.00, below the uncapped total of about 728,857
    let b = sb.audit(committed_spec_with_cap(&sb, "50_000_000"));
    let payments = rows(&b, "payments");
    let uncapped: Vec<i128> = payments
        .iter()
        .map(|p| p["uncapped_minor"].parse().unwrap())
        .collect();
    let total_uncapped: i128 = uncapped.iter().sum();
    assert!(total_uncapped > cap);
    let mut paid_total = 0;
    for (p, u) in payments.iter().zip(&uncapped) {
        let paid: i128 = p["paid_minor"].parse().unwrap();
        assert_eq!(
            paid,
            u * cap / total_uncapped,
            "pro rata, rounded toward zero: {p:?}"
        );
        paid_total += paid;
    }
    assert!(paid_total <= cap);
    // Rounding each of 477 amounts down loses less than a penny each.
    assert!(cap - paid_total < 477);
    assert_eq!(
        b.results()["payment"]["total_minor"].as_i64().unwrap() as i128,
        paid_total
    );
    assert!(b.stdout.contains("scaled pro rata"), "{}", b.stdout);
}

#[test]
fn a_threshold_with_no_comparator_is_refused() {
    let sb = Sandbox::new();
    let spec = committed_spec_with_cap(&sb, "1_000");
    let text = std::fs::read_to_string(&spec).unwrap()
        + "\n[threshold]\nkind = \"points\"\nper_period = \"0.05\"\n";
    std::fs::write(&spec, text).unwrap();
    let out = sb.cmd(["check"]).arg(&spec).assert(EXIT_BAD_INPUT);
    assert!(
        out.stderr
            .contains("[threshold] is not used with comparator kind \"none\""),
        "{}",
        out.stderr
    );
}

#[test]
fn price_bands_pay_each_person_the_price_of_their_band() {
    // Bands: [0, 0.3) GBP 1,000; [0.3, 0.5) GBP 2,500; [0.5, 1] GBP 4,000. A band's lower
    // bound is inclusive: a probability of exactly 0.3 is in the middle band.
    let sb = Sandbox::new();
    let spec = committed_spec_with_cap(&sb, "1_000_000_000");
    edit_file(
        &spec,
        "price_minor = 500_000",
        "price_bands = [\n  { from = \"0\", price_minor = 100_000 },\n  { from = \"0.3\", price_minor = 250_000 },\n  { from = \"0.5\", price_minor = 400_000 },\n]",
    );
    let b = sb.audit(&spec);
    let payments = rows(&b, "payments");
    let risk = rows(&b, "risk");
    let mut total = 0i128;
    let mut per_band = [0usize; 3];
    for (p, r) in payments.iter().zip(&risk) {
        let micro: i128 = r["probability_used"]
            .replace('.', "")
            .parse()
            .expect("6 places");
        let band = match micro {
            m if m < 300_000 => 0,
            m if m < 500_000 => 1,
            _ => 2,
        };
        let expected = if p["reoffended"] == "1" {
            0
        } else {
            per_band[band] += 1;
            [100_000, 250_000, 400_000][band]
        };
        assert_eq!(
            p["uncapped_minor"].parse::<i128>().unwrap(),
            expected,
            "{p:?}"
        );
        total += expected;
    }
    assert!(
        per_band.iter().all(|&n| n > 0),
        "every band has earners: {per_band:?}"
    );
    let r = b.results();
    assert_eq!(r["payment"]["total_minor"].as_i64().unwrap() as i128, total);
    assert!(r["payment"]["lines"][0]["explanation"]
        .as_str()
        .unwrap()
        .contains("price band of the probability"));
}

#[test]
fn bad_price_bands_are_refused_at_their_position() {
    let sb = Sandbox::new();
    let spec = committed_spec_with_cap(&sb, "1_000_000_000");
    edit_file(
        &spec,
        "price_minor = 500_000",
        "price_bands = [\n  { from = \"0.1\", price_minor = 100_000 },\n  { from = \"0.05\", price_minor = -1 },\n]",
    );
    sb.cmd(["check"])
        .arg(&spec)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&[
            "the first price band must start at \"0\"",
            "ascending order",
            "price_bands.price_minor is negative",
        ]);
    edit_file(
        &spec,
        "price_bands = [",
        "price_minor = 500_000\nprice_bands = [",
    );
    sb.cmd(["check"])
        .arg(&spec)
        .assert(EXIT_BAD_INPUT)
        .stderr_has(&["price_bands and payment.price_minor are both set"]);
}
