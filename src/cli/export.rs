//! `hearth export`: a run's newest checkpoint as a Hugging Face folder.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use hearth_engine::backend::BackendKind;
use std::path::PathBuf;

/// Formats `hearth export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A folder `transformers` loads with no custom code (safetensors, config, tokenizer,
    /// model card; sentence-transformers modules for embedding runs).
    Hf,
    /// A LoRA fine-tune's adapters alone, as a PEFT folder (`adapter_config.json`,
    /// `adapter_model.safetensors`) that `peft.PeftModel.from_pretrained` loads on the base.
    Peft,
    /// A Llama-family model as one GGUF file (llama.cpp's format; adapters merged), its
    /// matrices in F16 (`--f32` for F32); `--out` names the file.
    Gguf,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Run folder (as written by `hearth train`, `hearth import` or the studio).
    #[arg(long)]
    pub run: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value = "hf")]
    pub format: ExportFormat,
    /// Folder to write (created; an existing one must be empty unless `--force`).
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a folder that already has files, replacing those of the same name.
    #[arg(long)]
    pub force: bool,
    /// GGUF: write the matrices as F32 instead of F16.
    #[arg(long)]
    pub f32: bool,
}

/// `hearth export`: writes the folder and lists the models in it.
pub fn run(args: &ExportArgs) -> Result<()> {
    if args.format == ExportFormat::Gguf && args.out.is_file() && !args.force {
        bail!(
            "{} already exists; choose another file or pass --force",
            args.out.display()
        );
    }
    let occupied = std::fs::read_dir(&args.out).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !args.force {
        bail!(
            "{} already has files; choose an empty folder or pass --force",
            args.out.display()
        );
    }
    // The weights are only read and written: the pure-Rust backend needs no set-up.
    let device = BackendKind::Flex.device().map_err(anyhow::Error::msg)?;
    let format = match args.format {
        ExportFormat::Hf => hearth_engine::export::ExportFormat::Hf,
        ExportFormat::Peft => hearth_engine::export::ExportFormat::Peft,
        ExportFormat::Gguf => hearth_engine::export::ExportFormat::Gguf { f16: !args.f32 },
    };
    let summary = hearth_engine::export::export_as(&args.run, &args.out, format, &device)
        .with_context(|| format!("cannot export {}", args.run.display()))?;
    for (dir, class) in &summary.models {
        eprintln!("{class}: {}", dir.display());
    }
    println!(
        "exported step {} to {}",
        summary.step,
        summary.dir.display()
    );
    Ok(())
}
