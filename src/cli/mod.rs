//! The command line, one file per subcommand. No subcommand opens the studio (when the `studio`
//! feature is built); every subcommand runs headless on the engine.

pub mod bench;
pub mod bench_data;
pub mod bench_dynamics;
pub mod bench_lora;
pub mod bench_sts;
pub mod dataset;
pub mod embed;
pub mod eval;
pub mod export;
pub mod generate;
pub mod import;
pub mod improve;
pub mod queue;
pub mod resume;
pub mod runs;
pub mod sweep;
pub mod train;
pub mod worker;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `hearth`'s arguments.
#[derive(Parser, Debug)]
#[command(
    name = "hearth",
    version,
    about = "A desktop studio for training small language models"
)]
pub struct Cli {
    /// Project folder the studio opens (default: the last one, or the default project).
    #[arg(long, global = true)]
    pub project: Option<PathBuf>,
    /// What to do; none opens the studio.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
// Parsed once at start-up and matched once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model headless; the run folder opens in the studio.
    Train(train::TrainArgs),
    /// Continue a stopped, failed or killed run from its newest checkpoint.
    Resume(resume::ResumeArgs),
    /// List the project's runs: name, objective, status, step, best validation loss, folder.
    Runs(runs::RunsArgs),
    /// Time training steps on each backend against a PyTorch eager reference.
    Bench(bench::BenchArgs),
    /// Evaluate a run's final checkpoint on its whole validation split.
    Eval(eval::EvalArgs),
    /// Build a dataset (sources, mixing, split, tokenizer, transform) and save it in the project.
    Dataset(dataset::DatasetArgs),
    /// Write a run's newest checkpoint as a Hugging Face folder (`transformers`, no custom code).
    Export(export::ExportArgs),
    /// Import a GPT-2 folder from Hugging Face as a new run (to fine-tune and compare).
    Import(import::ImportArgs),
    /// Continue a prompt with a run's newest checkpoint.
    Generate(generate::GenerateArgs),
    /// Embed texts with a run's newest checkpoint (one JSON line per text).
    Embed(embed::EmbedArgs),
    /// Improve a finished run from its own checked samples (STaR, DPO, self-correction).
    Improve(improve::ImproveArgs),
    /// Train many runs over a space of settings (grid, random, TPE), stop the bad ones early
    /// (ASHA, median), and name the best.
    Sweep(sweep::SweepArgs),
    /// The project's run queue: waiting and training runs; limit, order, cancel, start now.
    Queue(queue::QueueArgs),
    /// Train one prepared run folder in this process (the studio and the queue start runs
    /// this way, so they outlive the window).
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

impl Cli {
    /// Runs the chosen subcommand, or opens the studio when none is given.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            None => open_studio(self.project),
            Some(Command::Train(args)) => train::run(&args, self.project),
            Some(Command::Resume(args)) => resume::run(&args),
            Some(Command::Runs(args)) => runs::run(&args, self.project),
            Some(Command::Bench(args)) => bench::run(&args),
            Some(Command::Eval(args)) => eval::run(&args),
            Some(Command::Dataset(args)) => dataset::run(&args, self.project),
            Some(Command::Export(args)) => export::run(&args),
            Some(Command::Import(args)) => import::run(&args, self.project),
            Some(Command::Generate(args)) => generate::run(&args),
            Some(Command::Embed(args)) => embed::run(&args),
            Some(Command::Improve(args)) => improve::run(&args),
            Some(Command::Sweep(args)) => sweep::run(&args, self.project),
            Some(Command::Queue(args)) => queue::run(&args, self.project),
            Some(Command::Worker(args)) => worker::run(&args, self.project),
        }
    }
}

#[cfg(feature = "studio")]
fn open_studio(project: Option<PathBuf>) -> anyhow::Result<()> {
    hearth_studio::run_studio(project)
}

#[cfg(not(feature = "studio"))]
fn open_studio(_project: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::bail!(
        "this hearth was built without the studio (the `studio` feature); run a subcommand such as `hearth train`, or see `hearth --help`"
    )
}
