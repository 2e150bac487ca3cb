//! `hearth`: the studio (no subcommand) and the headless command line.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match cli::Cli::parse().run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The reason and its causes, without a backtrace: these are a user's errors.
            eprintln!("Error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
