//! The `outcome-audit` binary: a thin shell over the library's command line.

fn main() -> std::process::ExitCode {
    outcome_audit::cli::main()
}
