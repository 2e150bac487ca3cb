//! `hearth import`: a Hugging Face folder or a GGUF file as a new run of the project.

use anyhow::{Context, Result};
use clap::Args;
use hearth_engine::backend::BackendKind;
use hearth_engine::project::{Project, default_project_dir};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// A Hugging Face folder (`config.json`, `model.safetensors` or shards, `tokenizer.json`,
    /// as `save_pretrained` writes them) of GPT-2, BERT (sentence-transformers folders too),
    /// Llama, Mistral, Qwen2 or Qwen3.
    #[arg(long, required_unless_present = "gguf", conflicts_with = "gguf")]
    pub hf: Option<PathBuf>,
    /// A GGUF file (llama.cpp's format) of a Llama-family model: its tensors dequantized to
    /// f32, its tokenizer and chat template rebuilt.
    #[arg(long)]
    pub gguf: Option<PathBuf>,
    /// Run name (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Run folder to create (default: a new folder in the project's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `hearth import`: creates the run; the last line is its folder.
pub fn run(args: &ImportArgs, project: Option<PathBuf>) -> Result<()> {
    let source = args
        .hf
        .as_ref()
        .or(args.gguf.as_ref())
        .context("--hf or --gguf")?;
    let default_name = source
        .canonicalize()
        .unwrap_or_else(|_| source.clone())
        .file_stem()
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
    let summary = match &args.gguf {
        Some(file) => hearth_engine::export::import_gguf(file, &dir, &name, &device),
        None => hearth_engine::export::import_hf(source, &dir, &name, &device),
    }
    .with_context(|| format!("cannot import {}", source.display()))?;
    let m = &summary.spec.model;
    eprintln!(
        "layers {}, heads {}, width {}, context {}, vocabulary {}, parameters {}",
        m.n_layer, m.n_head, m.d_model, m.context, summary.vocab_size, summary.n_params
    );
    println!("run folder: {}", summary.run_dir.display());
    Ok(())
}
