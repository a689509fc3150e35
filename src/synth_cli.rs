//! `outcome-audit synth`: picks a preset, runs the generator, optionally converts the
//! CSV files to Parquet, and reports the planted truth.

use serde_json::json;

use crate::cli::{SynthArgs, EXIT_BAD_INPUT, EXIT_OK, EXIT_OUTPUT_FAILED};
use crate::synth::{self, ExistingFiles, SynthConfig};

/// Runs `synth` and returns the exit code.
pub fn run(args: &SynthArgs, json: bool) -> u8 {
    let config = match args.preset.as_str() {
        "doncaster" => SynthConfig::doncaster(args.seed),
        "national" => SynthConfig::national(args.seed, args.people),
        other => {
            eprintln!(
                "error: unknown preset {other:?}\n    help: known presets are: doncaster, national"
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
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_OUTPUT_FAILED;
        }
    };
    if args.parquet {
        for name in ["people", "convictions"] {
            let csv = args.out.join(format!("{name}.csv"));
            let parquet = args.out.join(format!("{name}.parquet"));
            if let Err(e) = crate::data::csv_to_parquet(&csv, &parquet) {
                eprintln!("error: {e}");
                return EXIT_OUTPUT_FAILED;
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "out": args.out.display().to_string(), "truth": truth })
            )
            .unwrap_or_default()
        );
    } else {
        println!("wrote {} (seed {})", args.out.display(), args.seed);
        println!(
            "  people rows {}, conviction rows {}",
            truth.rows.people, truth.rows.convictions
        );
        for g in &truth.groups {
            println!(
                "  {:<14} eligible {:>8}  reoffenders {:>8}  counted offences {:>9}  events {:>9}",
                g.name, g.eligible, g.reoffenders, g.counted_offences, g.counted_events
            );
        }
    }
    EXIT_OK
}
