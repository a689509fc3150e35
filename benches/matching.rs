//! Matching benchmark: `cargo bench --bench matching`.
//!
//! 3,000 treated people against a pool of 1,000,000 with 10 covariates (6 numeric, one
//! 5-level categorical), generated in memory with a fixed seed: the time of the
//! propensity fit, of nearest-neighbour matching (1:5 with replacement, caliper 0.2 SD of
//! the logit, within 2 periods), of the balance table, and of 100 bootstrap replicates.
//! Environment: `BENCH_POOL` (default 1000000), `BENCH_TREATED` (default 3000).

use std::time::Instant;

use outcome_audit::matching::{self, MatchOptions, Unit};
use outcome_audit::stats::{self, LogitOptions, MatchedSet};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let pool = env_usize("BENCH_POOL", 1_000_000);
    let treated = env_usize("BENCH_TREATED", 3_000);
    let n = pool + treated;
    let p = 1 + 6 + 4;
    let mut rng = Rng(2010);
    let mut x = Vec::with_capacity(n * p);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let is_treated = i < treated;
        let shift = if is_treated { 0.4 } else { 0.0 };
        x.push(1.0);
        for _ in 0..6 {
            x.push(rng.uniform() * 2.0 + shift * rng.uniform());
        }
        let level = (rng.next() % 5) as usize;
        for l in 1..5 {
            x.push(if level == l { 1.0 } else { 0.0 });
        }
        y.push(is_treated);
    }
    let names: Vec<String> = (0..p).map(|j| format!("x{j}")).collect();

    let t = Instant::now();
    let fit = stats::fit_logistic(
        &x,
        n,
        p,
        &y,
        &names,
        &LogitOptions {
            max_iterations: 50,
            tolerance: 1e-10,
        },
    )
    .expect("fit");
    let fit_time = t.elapsed();

    let t = Instant::now();
    let logits: Vec<f64> = x.chunks(p).map(|r| fit.linear_predictor(r)).collect();
    let (_, var) = stats::weighted_mean_var(&logits, &vec![1.0; n]).expect("var");
    let caliper = 0.2 * var.sqrt();
    let ids: Vec<String> = (0..n).map(|i| format!("{i:08}")).collect();
    let unit = |i: usize| Unit {
        index: i,
        id: &ids[i],
        logit: logits[i],
        stratum: if i % 2 == 0 { "cohort-1" } else { "cohort-2" },
    };
    let t_units: Vec<Unit> = (0..treated).map(unit).collect();
    let c_units: Vec<Unit> = (treated..n).map(unit).collect();
    let prep_time = t.elapsed();

    let t = Instant::now();
    let m = matching::match_nearest(
        &t_units,
        &c_units,
        &MatchOptions {
            ratio: 5,
            caliper: Some(caliper),
            replacement: true,
        },
    )
    .expect("match");
    let match_time = t.elapsed();

    let t = Instant::now();
    let mut weights = vec![0.0; pool];
    for (idx, w) in &m.control_weights {
        weights[*idx - treated] = w.0 as f64;
    }
    let ones = vec![1.0; treated];
    for j in 1..p {
        let tv: Vec<f64> = x.chunks(p).take(treated).map(|r| r[j]).collect();
        let cv: Vec<f64> = x.chunks(p).skip(treated).map(|r| r[j]).collect();
        let (tm, tvar) = stats::weighted_mean_var(&tv, &ones).expect("t");
        let (cm, cvar) = stats::weighted_mean_var(&cv, &weights).expect("c");
        std::hint::black_box(stats::standardised_mean_difference(tm, tvar, cm, cvar));
    }
    let balance_time = t.elapsed();

    let mut sets: Vec<MatchedSet> = Vec::new();
    let mut rng = Rng(7);
    let mut current: Option<(usize, MatchedSet)> = None;
    for pair in &m.pairs {
        if current.as_ref().map(|(t, _)| *t) != Some(pair.treated) {
            if let Some((_, s)) = current.take() {
                sets.push(s);
            }
            current = Some((
                pair.treated,
                MatchedSet {
                    treated: (rng.next() % 3) as f64,
                    comparisons: Vec::new(),
                },
            ));
        }
        if let Some((_, s)) = current.as_mut() {
            s.comparisons.push(((rng.next() % 3) as f64, 0.0));
        }
    }
    if let Some((_, s)) = current.take() {
        sets.push(s);
    }
    for s in &mut sets {
        let w = 1.0 / s.comparisons.len() as f64;
        for c in &mut s.comparisons {
            c.1 = w;
        }
    }
    let t = Instant::now();
    stats::bootstrap_difference(&sets, 100, 1, 0.95).expect("bootstrap");
    let boot_time = t.elapsed();

    let model_and_matching = fit_time + prep_time + match_time + balance_time;
    println!(
        "{treated} treated, {pool} pool, {p} model terms; {} iterations",
        fit.iterations
    );
    println!("propensity fit:          {:>8.3} s", fit_time.as_secs_f64());
    println!(
        "logits and units:        {:>8.3} s",
        prep_time.as_secs_f64()
    );
    println!(
        "matching (1:5, caliper): {:>8.3} s  ({} pairs, {} unmatched)",
        match_time.as_secs_f64(),
        m.pairs.len(),
        m.unmatched.len()
    );
    println!(
        "balance ({} terms):      {:>8.3} s",
        p - 1,
        balance_time.as_secs_f64()
    );
    println!(
        "model + matching total:  {:>8.3} s  (target <= 2 s)",
        model_and_matching.as_secs_f64()
    );
    println!(
        "bootstrap, 100 replicates: {:>6.3} s",
        boot_time.as_secs_f64()
    );
}
