//! `hearth`: the studio (no subcommand) and the headless command line.

mod cli;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    cli::Cli::parse().run()
}
