//! `hearth import`: a GPT-2 folder from Hugging Face as a new run of the project.

use anyhow::{Context, Result};
use clap::Args;
use hearth_engine::backend::BackendKind;
use hearth_engine::project::{Project, default_project_dir};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// A GPT-2 folder: `config.json`, `model.safetensors` and `tokenizer.json` (as
    /// `save_pretrained` writes them).
    #[arg(long)]
    pub hf: PathBuf,
    /// Run name (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Run folder to create (default: a new folder in the project's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `hearth import`: creates the run; the last line is its folder.
pub fn run(args: &ImportArgs, project: Option<PathBuf>) -> Result<()> {
    let default_name = args
        .hf
        .canonicalize()
        .unwrap_or_else(|_| args.hf.clone())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "imported".to_string());
    let mut name = args.name.clone().unwrap_or(default_name);
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let project = Project::open_or_create(&project.unwrap_or_else(default_project_dir))?;
            if args.name.is_none() {
                name = project.unique_run_name(&name);
            }
            project.new_run_dir(&name)
        }
    };
    let device = BackendKind::Flex.device().map_err(anyhow::Error::msg)?;
    let summary = hearth_engine::export::import_hf(&args.hf, &dir, &name, &device)
        .with_context(|| format!("cannot import {}", args.hf.display()))?;
    let m = &summary.spec.model;
    eprintln!(
        "layers {}, heads {}, width {}, context {}, vocabulary {}, parameters {}",
        m.n_layer, m.n_head, m.d_model, m.context, summary.vocab_size, summary.n_params
    );
    println!("run folder: {}", summary.run_dir.display());
    Ok(())
}
