use clap::Parser;
use hearth::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match &cli.command {
        None => hearth::ui::run_studio(cli.project.clone()),
        Some(Command::Train(args)) => hearth::cli::train(args, cli.project.clone()),
        Some(Command::Bench(args)) => hearth::bench::run(args),
        Some(Command::Eval(args)) => hearth::cli::eval(args),
        Some(Command::Dataset(args)) => hearth::dataset_cli::run(args, cli.project.clone()),
    }
}
