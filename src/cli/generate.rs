//! `hearth generate`: continues a prompt with a run's newest checkpoint.

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use hearth_engine::backend::{BackendKind, available_cores};
use hearth_engine::eval::{Sampling, generate_streaming};
use hearth_engine::export::LoadedRun;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// The text to continue.
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    pub max_tokens: usize,
    /// Softmax temperature (1: the model's own distribution; 0: always the most likely token).
    #[arg(long, default_value_t = 1.0, value_parser = crate::cli::train::finite)]
    pub temperature: f64,
    /// Draw among the K most likely tokens only (0: among all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Draw among the most likely tokens that together hold this probability (1: among all).
    #[arg(long, default_value_t = 1.0, value_parser = crate::cli::train::finite)]
    pub top_p: f64,
    /// Read the prompt as a user's turn and render it with the model's chat template (the
    /// answer stops at the end of the assistant's turn); without it the prompt is raw text.
    #[arg(long)]
    pub chat: bool,
    /// Seed of the sampling (default: a new one each time); the same seed gives the same text.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Backend to run on (default: the run's own).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Intra-op threads (default, or 0: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The run's newest checkpoint on `backend` (default: the run's own) with `threads` intra-op
/// threads (default, or 0: all cores), and the device it is on.
pub fn load_run(
    dir: &std::path::Path,
    backend: Option<BackendKind>,
    threads: Option<usize>,
) -> Result<(LoadedRun, Device)> {
    let spec = hearth_engine::project::store::read_spec(dir)?;
    let backend = backend.unwrap_or(spec.train.backend);
    backend.set_threads(threads.filter(|&n| n > 0).unwrap_or_else(available_cores));
    let device = backend.device().map_err(anyhow::Error::msg)?;
    let run =
        LoadedRun::load(dir, &device).with_context(|| format!("cannot load {}", dir.display()))?;
    Ok((run, device))
}

/// `hearth generate`: prints the continuation (the prompt not repeated).
pub fn run(args: &GenerateArgs) -> Result<()> {
    let (run, device) = load_run(&args.run, args.backend, args.threads)?;
    if !run.layout().decoder {
        eprintln!(
            "note: the {} objective does not train generation; the continuation reads the model causally",
            run.spec.objective.kind
        );
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let text = if args.chat {
        let messages = [hearth_engine::data::chat::Message::new(
            "user",
            &args.prompt,
        )];
        run.tokenizer
            .render_chat(&messages, true)
            .with_context(|| format!("--chat: {}", args.run.display()))?
    } else {
        args.prompt.clone()
    };
    let prompt = run.tokenizer.encode(&text);
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
    };
    let stop = run.tokenizer.stop_tokens().to_vec();
    // Tokens are printed as they are picked (whole characters only); the stop token is not.
    let mut shown = 0;
    let mut picked: Vec<u32> = Vec::new();
    let tokenizer = &run.tokenizer;
    let mut out = std::io::stdout().lock();
    generate_streaming(
        &run.model,
        &prompt,
        args.max_tokens,
        sampling,
        &stop,
        &mut rng,
        &device,
        |token| {
            if !stop.contains(&token) {
                picked.push(token);
                let text = tokenizer.decode(&picked);
                if let Some(new) = text.get(shown..).filter(|_| !text.ends_with('\u{FFFD}')) {
                    let _ = write!(out, "{new}");
                    let _ = out.flush();
                    shown = text.len();
                }
            }
            true
        },
    );
    let text = tokenizer.decode(&picked);
    if let Some(rest) = text.get(shown..) {
        let _ = write!(out, "{rest}");
    }
    let _ = writeln!(out);
    eprintln!("checkpoint of step {}, seed {seed}", run.step);
    Ok(())
}
