//! `outcome-audit synth`: picks a preset, runs the generator, optionally converts the
//! CSV files to Parquet, and reports the planted truth.

use serde_json::json;

use crate::cli::{outln, SynthArgs, EXIT_BAD_INPUT, EXIT_OK, EXIT_OUTPUT_FAILED};
use crate::synth::{self, ExistingFiles, SynthConfig};

/// Runs `synth` and returns the exit code.
pub fn run(args: &SynthArgs, json: bool) -> u8 {
    let config = match args.preset.as_str() {
        "doncaster" => SynthConfig::doncaster(args.seed),
        "national" => SynthConfig::national(args.seed, args.people),
        "peterborough" => SynthConfig::peterborough_with_pool(args.seed, args.pool),
        "tr" => SynthConfig::transforming_rehabilitation(args.seed),
        other => {
            eprintln!(
                "error: unknown preset {other:?}\n    help: known presets are: doncaster, national, peterborough, tr"
            );
            return EXIT_BAD_INPUT;
        }
    };
    let existing = if args.force {
        ExistingFiles::Overwrite
    } else {
        ExistingFiles::Refuse
    };
    let truth = match synth::generate_into(&config, &args.out, existing) {
        Ok(t) => t,
        Err(e @ synth::SynthError::InvalidConfig { .. }) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_OUTPUT_FAILED;
        }
    };
    if args.parquet {
        let mut names = vec!["people", "convictions"];
        if truth.rows.pool.is_some() {
            names.push("pool");
        }
        for name in names {
            let csv = args.out.join(format!("{name}.csv"));
            let parquet = args.out.join(format!("{name}.parquet"));
            if let Err(e) = crate::data::csv_to_parquet(&csv, &parquet) {
                eprintln!("error: {e}");
                return EXIT_OUTPUT_FAILED;
            }
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "out": args.out.display().to_string(), "truth": truth })
            )
            .unwrap_or_default()
        );
    } else {
        outln!("wrote {} (seed {})", args.out.display(), args.seed);
        outln!(
            "  people rows {}, conviction rows {}",
            truth.rows.people,
            truth.rows.convictions
        );
        for g in &truth.groups {
            outln!(
                "  {:<14} eligible {:>8}  reoffenders {:>8}  counted offences {:>9}  events {:>9}",
                g.name,
                g.eligible,
                g.reoffenders,
                g.counted_offences,
                g.counted_events
            );
        }
        for p in truth.matched.iter().flat_map(|m| &m.periods) {
            outln!(
                "  {:<14} pool eligible {:>8}  pool events {:>9}  treated events without the planted effect (expected) {}",
                p.name, p.pool.eligible, p.pool.counted_events, p.treated_expected_events_without_effect
            );
        }
    }
    EXIT_OK
}
