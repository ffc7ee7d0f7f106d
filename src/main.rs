//! The `flowd` command: parses the arguments, runs the command, maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = flowd::cli::Args::parse();
    flowd::cli::init_logging(&args);
    match flowd::cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flowd: {error:#}");
            ExitCode::FAILURE
        }
    }
}
