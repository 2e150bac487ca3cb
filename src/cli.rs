//! The command line: no subcommand opens the studio; `train` and `bench` run headless on the
//! same library code.

use crate::data::{DataSource, TokenizerKind};
use crate::project::{Project, RunSpec};
use crate::train::{BackendKind, RunEvent, spawn_run};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

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
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model headless; the run folder opens in the studio.
    Train(TrainArgs),
    /// Time training steps on each backend against a PyTorch eager reference.
    Bench(crate::bench::BenchArgs),
    /// Evaluate a run's final checkpoint on its whole validation split.
    Eval(EvalArgs),
    /// Build a dataset (sources, mixing, split, tokenizer, transform) and save it in the project.
    Dataset(crate::dataset_cli::DatasetArgs),
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Run folder (as written by `hearth train` or the studio).
    #[arg(long)]
    pub run: PathBuf,
    /// Backend to evaluate on (default: the run's own).
    #[arg(long, value_parser = ["libtorch", "libtorch-cuda", "flex"])]
    pub backend: Option<String>,
    /// Embed these pairs (TSV `text_a<TAB>text_b[<TAB>score]` or JSONL `{"a", "b", "score"}`)
    /// and report retrieval (every `text_b` is a candidate for every `text_a`) and, with
    /// scores, Spearman correlation.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Retrieval-aware runs: exact match on the validation questions with no document, the
    /// right document, distractors only, or an edited right document (a renamed argument).
    #[arg(long, value_parser = ["no-document", "right-document", "distractors-only", "edited"])]
    pub raft: Option<String>,
    /// Symbol-tuning runs: accuracy on the held-out prompts with natural labels, symbols or
    /// flipped labels.
    #[arg(long, value_parser = ["natural", "symbols", "flipped"])]
    pub labels: Option<String>,
    /// Prompts evaluated with `--raft` or `--labels` (at most).
    #[arg(long, default_value_t = 400)]
    pub limit: usize,
}

/// Evaluation prompts of a run's dataset under `--raft` or `--labels`.
fn variant_examples(
    spec: &RunSpec,
    args: &EvalArgs,
    tokenizer: &crate::data::Tokenizer,
) -> Result<Option<(String, Vec<crate::data::record::TextExample>)>> {
    use crate::data::dataset::{Dataset, TransformSpec};
    use crate::data::transforms::{self, RaftEval, SymbolOptions};
    if args.raft.is_none() && args.labels.is_none() {
        return Ok(None);
    }
    let DataSource::Dataset { recipe, .. } = &spec.data.source else {
        bail!("--raft and --labels evaluate runs trained on a dataset recipe");
    };
    let ds = Dataset::build(recipe, Some(tokenizer.clone()), &|_, _| {})?;
    let records = &ds.val_records;
    match (&recipe.transform, &args.raft, &args.labels) {
        (TransformSpec::Raft { options }, Some(cond), _) => {
            let condition = match cond.as_str() {
                "no-document" => RaftEval::NoDocument,
                "right-document" => RaftEval::RightDocument,
                "distractors-only" => RaftEval::DistractorsOnly,
                _ => RaftEval::Edited,
            };
            // At least one distractor, so runs trained without any are scored on the same set.
            let options = transforms::RaftOptions {
                distractors: options.distractors.max(1),
                ..options.clone()
            };
            let examples =
                transforms::raft_eval(records, &options, condition).map_err(anyhow::Error::msg)?;
            Ok(Some((format!("raft={cond}"), examples)))
        }
        (TransformSpec::Symbols { recipe: r }, _, Some(labels)) => {
            let options = SymbolOptions {
                mode: crate::data::transforms::LabelMode::parse(labels)
                    .expect("clap checked the name"),
                seed: r.options.seed ^ 0xe7a1,
                ..r.options.clone()
            };
            let examples = transforms::symbol_prompts(records, &options, args.limit)
                .map_err(anyhow::Error::msg)?;
            Ok(Some((format!("labels={labels}"), examples)))
        }
        (t, _, _) => bail!(
            "this run's dataset uses {}: --raft needs retrieval-aware data, --labels symbol tuning",
            t.label()
        ),
    }
}

/// `hearth eval`: loads the newest checkpoint and prints the loss over every validation window;
/// the last line is `val_loss=<x> val_ppl=<x> windows=<n>`.
pub fn eval(args: &EvalArgs) -> Result<()> {
    use crate::data::{Corpus, Split};
    use crate::project::RunStore;
    use burn::module::Module;
    let store = RunStore::open(&args.run)?;
    let spec = store.spec()?;
    let history = store.load_history()?;
    let (step, checkpoint) = history
        .checkpoints
        .last()
        .cloned()
        .with_context(|| format!("{}: the run has no checkpoint", args.run.display()))?;
    let backend = match &args.backend {
        Some(b) => BackendKind::parse(b).expect("clap checked the name"),
        None => spec.train.backend,
    };
    backend.set_threads(crate::train::backend::default_threads());
    let device = backend.device().map_err(anyhow::Error::msg)?;
    // The run's own tokenizer: the one its checkpoints were trained with.
    let corpus = match crate::project::store::read_tokenizer(&args.run) {
        Some(tokenizer) => Corpus::load_with(&spec.data, tokenizer)?,
        None => Corpus::load_for(&spec.data, spec.objective.needs_specials())?,
    };
    let model = crate::model::Gpt::new(&spec.model, corpus.tokenizer.vocab_size(), &device)
        .try_load_file(&checkpoint)
        .with_context(|| format!("cannot load {}", checkpoint.display()))?;
    if spec.objective.kind == crate::objective::ObjectiveKind::LinkBert {
        let (acc, per, n) =
            crate::train::steps::relation_accuracy(&model, &corpus, spec.model.context, &device);
        eprintln!("checkpoint of step {step}: {}", checkpoint.display());
        println!(
            "relation_acc={acc:.4} next_acc={:.4} random_acc={:.4} linked_acc={:.4} pairs={n}",
            per[0], per[1], per[2]
        );
        return Ok(());
    }
    if let Some((what, examples)) = variant_examples(&spec, args, &corpus.tokenizer)? {
        let encoded: Vec<crate::data::corpus::Example> = examples
            .iter()
            .take(args.limit)
            .map(|e| crate::data::corpus::Example::encode(&corpus.tokenizer, &e.prompt, &e.answer))
            .collect();
        let em =
            crate::train::steps::exact_match(&model, &corpus, &encoded, encoded.len(), &device);
        eprintln!("checkpoint of step {step}: {}", checkpoint.display());
        println!("{what} exact_match={em:.4} examples={}", encoded.len());
        return Ok(());
    }
    if let Some(path) = &args.pairs {
        let pairs = crate::data::pairs::read_pairs(path)?;
        let encode = |texts: Vec<&str>| -> Vec<Vec<u32>> {
            texts
                .into_iter()
                .map(|t| corpus.tokenizer.encode(t))
                .collect()
        };
        let a = encode(pairs.iter().map(|p| p.a.as_str()).collect());
        let b = encode(pairs.iter().map(|p| p.b.as_str()).collect());
        let embed_all = |texts: &[Vec<u32>]| {
            crate::train::steps::embed_all(
                &model,
                texts,
                &spec.objective,
                &corpus.tokenizer,
                &device,
            )
        };
        let (ea, eb) = (embed_all(&a), embed_all(&b));
        let sims = crate::objective::contrastive::similarities(ea, eb);
        let n = pairs.len();
        let r = crate::objective::metrics::retrieval(&sims, n, n);
        let mut line = format!(
            "pairs={n} recall_at_1={:.4} recall_at_10={:.4} mrr={:.4}",
            r.recall_at_1, r.recall_at_10, r.mrr
        );
        let scored: Vec<(f64, f64)> = pairs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.score.map(|s| (f64::from(sims[i * n + i]), s)))
            .collect();
        if scored.len() >= 2 {
            let (cos, gold): (Vec<f64>, Vec<f64>) = scored.into_iter().unzip();
            line.push_str(&format!(
                " spearman={:.4}",
                crate::objective::metrics::spearman(&cos, &gold)
            ));
        }
        eprintln!("checkpoint of step {step}: {}", checkpoint.display());
        println!("{line}");
        return Ok(());
    }
    let windows = corpus.val.len().saturating_sub(spec.model.context + 1) / spec.model.context;
    let loss = crate::eval::full_split_loss(&model, &corpus, Split::Val, 64, &device);
    eprintln!("checkpoint of step {step}: {}", checkpoint.display());
    println!(
        "val_loss={loss:.4} val_ppl={:.3} windows={windows}",
        f64::from(loss).exp()
    );
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// A spec file (JSON, as saved in a run folder); flags given as well override it.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Text file to train on (default: built-in generated text).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A dataset saved by `hearth dataset` or the studio (its folder or `dataset.json`).
    #[arg(long, conflicts_with_all = ["data", "prompt_response"])]
    pub dataset: Option<PathBuf>,
    /// Instruction data to fine-tune on: JSONL `{"prompt", "response"}` or TSV
    /// `prompt<TAB>response`; the loss covers the responses only.
    #[arg(long, conflicts_with = "data")]
    pub prompt_response: Option<PathBuf>,
    /// `char`, `byte`, `bpe` or `bpe:N` (a BPE vocabulary of N tokens trained on the data).
    #[arg(long)]
    pub tokenizer: Option<String>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    #[arg(long)]
    pub width: Option<usize>,
    #[arg(long)]
    pub context: Option<usize>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub min_lr: Option<f64>,
    #[arg(long)]
    pub warmup: Option<usize>,
    #[arg(long)]
    pub dropout: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[arg(long)]
    pub grad_clip: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub eval_interval: Option<usize>,
    #[arg(long)]
    pub eval_batches: Option<usize>,
    #[arg(long, value_parser = ["libtorch", "libtorch-cuda", "flex"])]
    pub backend: Option<String>,
    /// Intra-op threads (default: all cores but one).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run name.
    #[arg(long)]
    pub name: Option<String>,
    /// What to learn.
    #[arg(long, value_parser = ["next-token", "masked", "contrastive", "grit", "linkbert"])]
    pub objective: Option<String>,
    /// Masked: share of positions predicted per sequence.
    #[arg(long)]
    pub mask_rate: Option<f64>,
    /// Contrastive / GRIT: where positives come from.
    #[arg(long, value_parser = ["halves", "dropout", "pairs"])]
    pub positives: Option<String>,
    /// Contrastive / GRIT: the labelled pairs file (TSV or JSONL) for `--positives pairs`.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Contrastive / GRIT: InfoNCE temperature.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Contrastive / GRIT: pooling of token states.
    #[arg(long, value_parser = ["mean", "cls", "last"])]
    pub pooling: Option<String>,
    /// GRIT: weight of the generation loss (lambda).
    #[arg(long)]
    pub gen_weight: Option<f64>,
    /// Fine-tune: start from this run's newest checkpoint (same model shape; its tokenizer).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Fine-tune: multiply the learning rate and its minimum by this.
    #[arg(long, default_value_t = 0.1)]
    pub lr_multiplier: f64,
    /// Fine-tune: keep the token and position embeddings fixed.
    #[arg(long)]
    pub freeze_embeddings: bool,
    /// Fine-tune: keep this many of the lowest blocks fixed.
    #[arg(long, default_value_t = 0)]
    pub freeze_layers: usize,
    /// Run folder to create (default: a new folder in the project's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl TrainArgs {
    /// The spec these flags describe.
    pub fn to_spec(&self) -> Result<RunSpec> {
        let mut spec = match &self.spec {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read spec file {}", path.display()))?;
                RunSpec::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => RunSpec::default(),
        };
        if let Some(path) = &self.data {
            spec.data.source = DataSource::TextFile { path: path.clone() };
            if self.name.is_none() && self.spec.is_none() {
                spec.name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "run".into());
            }
        }
        if let Some(path) = &self.prompt_response {
            spec.data.source = DataSource::PromptResponse { path: path.clone() };
        }
        if let Some(path) = &self.dataset {
            spec.data.source = crate::dataset_cli::dataset_source(path)?;
            if self.name.is_none() && self.spec.is_none() {
                spec.name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "run".into());
            }
        }
        if let Some(t) = &self.tokenizer {
            spec.data.tokenizer = TokenizerKind::parse(t).map_err(anyhow::Error::msg)?;
        }
        let m = &mut spec.model;
        set(&mut m.n_layer, self.layers);
        set(&mut m.n_head, self.heads);
        set(&mut m.d_model, self.width);
        set(&mut m.context, self.context);
        set(&mut m.dropout, self.dropout);
        let o = &mut spec.optim;
        set(&mut o.lr, self.lr);
        set(&mut o.min_lr, self.min_lr);
        set(&mut o.warmup_steps, self.warmup);
        set(&mut o.weight_decay, self.weight_decay);
        set(&mut o.grad_clip, self.grad_clip);
        let t = &mut spec.train;
        set(&mut t.batch_size, self.batch);
        set(&mut t.steps, self.steps);
        set(&mut t.seed, self.seed);
        set(&mut t.eval_interval, self.eval_interval);
        set(&mut t.eval_batches, self.eval_batches);
        set(&mut t.threads, self.threads);
        if let Some(b) = &self.backend {
            t.backend = BackendKind::parse(b).expect("clap checked the name");
        }
        if let Some(name) = &self.name {
            spec.name = name.clone();
        }
        let o = &mut spec.objective;
        if let Some(kind) = &self.objective {
            o.kind = crate::objective::ObjectiveKind::parse(kind).expect("clap checked the name");
        }
        set(&mut o.mask_rate, self.mask_rate);
        set(&mut o.temperature, self.temperature);
        set(&mut o.gen_weight, self.gen_weight);
        if let Some(p) = &self.positives {
            o.positives = crate::objective::Positives::parse(p).expect("clap checked the name");
        }
        if let Some(p) = &self.pooling {
            o.pooling = crate::objective::Pooling::parse(p).expect("clap checked the name");
        }
        if let Some(path) = &self.pairs {
            o.pairs_file = Some(path.clone());
        }
        if let Some(from) = &self.init_from {
            // The base run's shape unless flags say otherwise.
            if let Ok(base) = crate::project::store::read_spec(from) {
                if self.layers.is_none()
                    && self.heads.is_none()
                    && self.width.is_none()
                    && self.context.is_none()
                {
                    spec.model = crate::model::ModelSpec {
                        dropout: spec.model.dropout,
                        ..base.model
                    };
                }
            }
            spec.init = Some(crate::project::spec::InitSpec {
                from_run: from.clone(),
                lr_multiplier: self.lr_multiplier,
                freeze_embeddings: self.freeze_embeddings,
                freeze_layers: self.freeze_layers,
            });
        }
        Ok(spec)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// The project the studio and `train` use when none is given: `$HEARTH_PROJECT`, or
/// `~/.local/share/hearth/default`.
pub fn default_project_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEARTH_PROJECT") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("hearth").join("default")
}

/// `hearth train`: trains with a progress bar; the last line is the `final ...` summary.
pub fn train(args: &TrainArgs, project: Option<PathBuf>) -> Result<()> {
    let spec = args.to_spec()?;
    let errors = spec.validate();
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        bail!("invalid settings:\n{}", lines.join("\n"));
    }
    // Read the data up front so a bad file fails before any run folder is created.
    let corpus = crate::data::Corpus::load_for(&spec.data, spec.objective.needs_specials())?;
    corpus.check_context(spec.model.context)?;
    drop(corpus);
    if let (Some(path), true) = (&spec.objective.pairs_file, spec.objective.uses_embeddings()) {
        crate::data::pairs::read_pairs(path)?;
    }
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let project = Project::open_or_create(&project.unwrap_or_else(default_project_dir))?;
            project.new_run_dir(&spec.name)
        }
    };
    let steps = spec.train.steps as u64;
    let handle = spawn_run(spec, &dir, None)?;
    eprintln!("run folder: {}", dir.display());
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .expect("valid template"),
    );
    let mut val = String::from("-");
    let mut last_extra: Vec<(String, f64)> = Vec::new();
    loop {
        let event = match handle.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(()) => bail!("the training thread ended without a result"),
        };
        match event {
            RunEvent::Started {
                n_params, device, ..
            } => {
                bar.println(format!("{n_params} parameters on {device}"));
            }
            RunEvent::Step(m) => {
                bar.set_position(m.step as u64);
                bar.set_message(format!(
                    "loss {:.4} val {val} {:.0} tok/s lr {:.2e}",
                    m.train_loss, m.tokens_per_s, m.lr
                ));
            }
            RunEvent::Eval(e) => {
                val = format!("{:.4}", e.val_loss);
                last_extra = e.extra.clone();
                let mut line = format!(
                    "step {:>6}: train loss {:.4}, val loss {:.4}",
                    e.step, e.train_loss, e.val_loss
                );
                for (k, v) in &e.extra {
                    line.push_str(&format!(", {k} {v:.4}"));
                }
                // A hidden bar (output not a terminal) swallows println: write the line anyway.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            RunEvent::Warning { step, message } => {
                bar.println(format!("warning at step {step}: {message}"))
            }
            RunEvent::Failed { step, reason } => {
                bar.abandon();
                bail!("run failed at step {step}: {reason}");
            }
            RunEvent::Finished(s) => {
                bar.finish();
                let mut line = format!(
                    "final step={} train_loss={:.4} val_loss={:.4} tokens_per_s={:.1} elapsed_s={:.1}",
                    s.step, s.train_loss, s.val_loss, s.tokens_per_s, s.elapsed_s
                );
                for (k, v) in &last_extra {
                    line.push_str(&format!(" {k}={v:.4}"));
                }
                println!("{line}");
                return Ok(());
            }
            RunEvent::Attention(_)
            | RunEvent::EmbeddingMap(_)
            | RunEvent::ContrastiveBatch(_)
            | RunEvent::MaskedProbe(_)
            | RunEvent::Sample { .. }
            | RunEvent::Checkpoint { .. }
            | RunEvent::Paused { .. }
            | RunEvent::Resumed { .. } => {}
        }
    }
}
