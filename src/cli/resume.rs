//! `hearth resume`: continues a stopped, failed or killed run from its newest checkpoint, as
//! the studio's Resume does.

use anyhow::{Context, Result};
use clap::Args;
use hearth_engine::project::store::read_spec;
use hearth_engine::train::spawn_resume;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ResumeArgs {
    /// The run folder.
    #[arg(long)]
    pub run: PathBuf,
}

/// Resumes the run and shows its progress; the last line is the `final ...` summary.
pub fn run(args: &ResumeArgs) -> Result<()> {
    let spec = read_spec(&args.run)?;
    let handle = spawn_resume(&args.run, None)
        .with_context(|| format!("cannot resume {}", args.run.display()))?;
    eprintln!("run folder: {}", args.run.display());
    super::train::follow(&handle, spec.train.steps as u64)
}
