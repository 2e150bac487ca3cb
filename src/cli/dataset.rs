//! `hearth dataset`: builds a dataset headless from a recipe file or from flags, prints its
//! statistics, leakage report and first batch, and saves it into the project.

use anyhow::{Result, bail};
use clap::Args;
use hearth_engine::data::dataset::{
    self, BuiltShards, DatasetRecipe, ShardOptions, SourceSpec, SplitMode, TransformKind,
    TransformSpec,
};
use hearth_engine::data::shards::{DatasetSummary, OpenShards};
use hearth_engine::data::sources::{SourceArgError, SourceKind};
use hearth_engine::data::transforms::{DistractorMode, LabelMode, RaftOptions, SftOptions};
use hearth_engine::data::{Corpus, DataSource, TokenizerKind};
use hearth_engine::spec::RunSpec;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Args, Debug, Clone, Default)]
pub struct DatasetArgs {
    /// A recipe file (JSON, as saved in `datasets/<name>/dataset.json`); flags given as well
    /// override it.
    #[arg(long)]
    pub recipe: Option<PathBuf>,
    /// A source; repeat for several. `text:FILE[#whole|paragraphs|lines]`,
    /// `folder:DIR[#GLOB]`, `jsonl:FILE[#field,field]`, `csv:FILE[#col,col]` (`.tsv` is
    /// tab-separated), `pairs:FILE`, `gen:stories|api_zoo|class_tasks|linked_docs[#SIZE[#SEED]]`,
    /// or a bare file path (kind from its extension).
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// Mixing weight of each source, in order (missing weights are 1).
    #[arg(long = "weight")]
    pub weights: Vec<f64>,
    /// Dataset name (the folder under the project's `datasets/`).
    #[arg(long)]
    pub name: Option<String>,
    /// `char`, `byte`, `bpe` (512 tokens) or `bpe:N`.
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// How documents split into train and validation.
    #[arg(long, value_enum)]
    pub split: Option<SplitMode>,
    /// Validation share.
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Seed of the random split and of the transforms.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep exact duplicate documents.
    #[arg(long)]
    pub keep_duplicates: bool,
    /// Epoch size: tokens (text) or examples (other transforms).
    #[arg(long)]
    pub epoch_size: Option<usize>,
    /// What the records become.
    #[arg(long, value_enum)]
    pub transform: Option<TransformKind>,
    /// SFT: the prompt field.
    #[arg(long)]
    pub prompt_field: Option<String>,
    /// SFT: the response field.
    #[arg(long)]
    pub response_field: Option<String>,
    /// SFT: the template; `{prompt}` is replaced by the prompt.
    #[arg(long)]
    pub template: Option<String>,
    /// RAFT: probability that the right document is in the context.
    #[arg(long)]
    pub p_oracle: Option<f64>,
    /// RAFT: distractor documents per example.
    #[arg(long)]
    pub distractors: Option<usize>,
    /// RAFT: the hardest distractors by BM25 instead of random ones.
    #[arg(long)]
    pub bm25: bool,
    /// Symbol tuning: examples shown before the query.
    #[arg(long)]
    pub k_shot: Option<usize>,
    /// Symbol tuning: labels as they are (a control) instead of symbols.
    #[arg(long, value_enum)]
    pub labels: Option<LabelMode>,
    /// Symbol tuning: the task family held out for validation.
    #[arg(long)]
    pub held_out: Option<String>,
    /// Symbol tuning: training prompts. LinkBERT: pairs.
    #[arg(long)]
    pub count: Option<usize>,
    /// Context length for the preview and steps per epoch.
    #[arg(long, default_value_t = 256)]
    pub context: usize,
    /// Batch size for the preview and steps per epoch.
    #[arg(long, default_value_t = 12)]
    pub batch: usize,
    /// Rows of the first batch to print.
    #[arg(long, default_value_t = 3)]
    pub preview: usize,
    /// Build and report only; save nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Megabytes of text (spread evenly over the sources) the BPE tokenizer is trained on.
    #[arg(long, value_name = "MB", default_value_t = 32.0)]
    pub tokenizer_sample: f64,
    /// Read every token file back and compare it with its checksum after building.
    #[arg(long)]
    pub verify: bool,
}

/// A `--source` argument that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("--source {0}")]
pub struct SourceFlagError(pub SourceArgError);

/// Parses one `--source` argument.
pub fn parse_source(arg: &str) -> Result<SourceKind, SourceFlagError> {
    SourceKind::parse_arg(arg).map_err(SourceFlagError)
}

impl DatasetArgs {
    /// The recipe these flags describe.
    pub fn to_recipe(&self) -> Result<DatasetRecipe> {
        let mut recipe = match &self.recipe {
            Some(path) => DatasetRecipe::load(path)?,
            None => DatasetRecipe::default(),
        };
        if !self.sources.is_empty() {
            recipe.sources = self
                .sources
                .iter()
                .map(|s| parse_source(s).map(SourceSpec::new))
                .collect::<Result<_, _>>()?;
        }
        if self.weights.len() > recipe.sources.len() {
            bail!(
                "{} weights for {} sources",
                self.weights.len(),
                recipe.sources.len()
            );
        }
        for (s, &w) in recipe.sources.iter_mut().zip(&self.weights) {
            s.weight = w;
        }
        if let Some(name) = &self.name {
            recipe.name = name.clone();
        }
        if let Some(t) = &self.tokenizer {
            recipe.tokenizer = TokenizerKind::parse(t)?;
        }
        if let Some(mode) = self.split {
            recipe.split.mode = mode;
        }
        if let Some(v) = self.val_fraction {
            recipe.split.val_fraction = v;
        }
        if let Some(seed) = self.seed {
            recipe.split.seed = seed;
        }
        if self.keep_duplicates {
            recipe.dedup = false;
        }
        if self.epoch_size.is_some() {
            recipe.epoch_size = self.epoch_size;
        }
        // A different transform starts from its defaults; the same one keeps the recipe's.
        if let Some(kind) = self.transform
            && recipe.transform.kind() != kind
        {
            recipe.transform = kind.default_spec();
        }
        let seed = self.seed;
        match &mut recipe.transform {
            TransformSpec::None => {}
            TransformSpec::Sft { options } => {
                let SftOptions {
                    prompt_field,
                    response_field,
                    template,
                } = options;
                set(prompt_field, self.prompt_field.clone());
                set(response_field, self.response_field.clone());
                set(template, self.template.clone());
            }
            TransformSpec::Raft { options } => {
                let o: &mut RaftOptions = options;
                set(&mut o.p_oracle, self.p_oracle);
                set(&mut o.distractors, self.distractors);
                set(&mut o.seed, seed);
                if self.bm25 {
                    o.mode = DistractorMode::Bm25;
                }
            }
            TransformSpec::Symbols { recipe: r } => {
                set(&mut r.options.k_shot, self.k_shot);
                set(&mut r.options.seed, seed);
                set(&mut r.held_out_task, self.held_out.clone());
                set(&mut r.train_prompts, self.count);
                set(&mut r.options.mode, self.labels);
            }
            TransformSpec::LinkBert { recipe: r } => {
                set(&mut r.pairs, self.count);
                set(&mut r.options.seed, seed);
            }
        }
        Ok(recipe)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// The report of a dataset build (its vocabulary, splits, sources and leakage) from what a
/// build into shards recorded.
pub fn report_summary(recipe: &DatasetRecipe, vocab: usize, s: &DatasetSummary) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "dataset {}: {} ({}), vocabulary {} tokens\n",
        recipe.name,
        recipe.transform.label(),
        recipe.tokenizer.label(),
        vocab
    ));
    out.push_str(&format!(
        "train {} {unit}, validation {} {unit}; {} tokens per epoch\n",
        s.train_items,
        s.val_items,
        s.epoch_tokens,
        unit = s.unit
    ));
    for s in &s.sources {
        out.push_str(&format!(
            "  {:<28} weight {:>4} records {:>7} (duplicates dropped {}) train/val {}/{} tokens {} -> epoch {}\n",
            s.label,
            s.weight,
            s.records,
            s.duplicates,
            s.train_records,
            s.val_records,
            s.train_tokens,
            s.epoch_tokens
        ));
    }
    match &s.leakage {
        None => out.push_str("leakage: not applicable (contiguous split of text)\n"),
        Some(leaks) if leaks.is_empty() => {
            out.push_str("leakage: no validation document is also in train\n")
        }
        Some(leaks) => {
            out.push_str(&format!(
                "leakage: {} validation documents also in train\n",
                leaks.len()
            ));
            for l in leaks.iter().take(10) {
                out.push_str(&format!("  {} = {}\n", l.val_origin, l.train_origin));
            }
        }
    }
    out
}

/// A run's spec with `batch` and `context` (and the LinkBERT objective for LinkBERT pairs).
fn preview_spec(corpus: &Corpus, batch: usize, context: usize) -> RunSpec {
    let mut spec = RunSpec::default();
    spec.train.batch_size = batch;
    spec.model.context = context;
    if corpus.is_relations() {
        spec.objective.kind = hearth_engine::objective::ObjectiveKind::LINKBERT;
    }
    spec
}

/// A progress bar over bytes with their rate and the time left.
pub fn bytes_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg}\n{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .expect("valid template"),
    );
    bar
}

/// Builds `recipe` into the dataset folder `dir` with a progress bar; prints what the
/// tokenizer was trained on.
pub fn build_into(
    recipe: &DatasetRecipe,
    dir: &Path,
    tokenizer_sample_mb: f64,
) -> Result<BuiltShards> {
    let options = ShardOptions::with_tokenizer_sample_mb(tokenizer_sample_mb)
        .map_err(|e| anyhow::anyhow!("--{e}"))?;
    let bar = bytes_bar();
    let stage = std::sync::Mutex::new(String::new());
    let cancel = AtomicBool::new(false);
    let built = dataset::build_shards(
        recipe,
        dir,
        None,
        &options,
        &|status| {
            if let Ok(mut s) = stage.lock()
                && *s != status.stage
            {
                *s = status.stage.to_string();
                bar.reset();
                bar.set_message(status.stage.to_string());
            }
            bar.set_length(status.total_bytes.max(status.done_bytes));
            bar.set_position(status.done_bytes);
        },
        &cancel,
    )?;
    bar.finish_and_clear();
    if let Some(bytes) = built.manifest.summary.tokenizer_sample_bytes {
        println!(
            "tokenizer: BPE trained on a sample of {:.1} MB of the {:.1} MB read (--tokenizer-sample to change)",
            bytes as f64 / 1e6,
            built.manifest.summary.source_bytes as f64 / 1e6
        );
    }
    Ok(built)
}

/// `hearth dataset`.
pub fn run(args: &DatasetArgs, project: Option<PathBuf>) -> Result<()> {
    let recipe = args.to_recipe()?;
    let started = std::time::Instant::now();
    // A dry run builds into a temporary folder, removed at the end.
    let scratch = args
        .dry_run
        .then(|| std::env::temp_dir().join(format!("hearth-dry-run-{}", std::process::id())));
    let dir = match &scratch {
        Some(t) => t.join("dataset"),
        None => {
            let project = project.unwrap_or_else(hearth_engine::project::default_project_dir);
            dataset::dataset_dir(&project, &recipe.name)
        }
    };
    let result = report_built(args, &recipe, &dir, started, scratch.is_none());
    if let Some(t) = &scratch {
        let _ = std::fs::remove_dir_all(t);
    }
    result
}

/// Builds into `dir` and prints the report, the baselines and the first batch.
fn report_built(
    args: &DatasetArgs,
    recipe: &DatasetRecipe,
    dir: &Path,
    started: std::time::Instant,
    saved: bool,
) -> Result<()> {
    let built = build_into(recipe, dir, args.tokenizer_sample)?;
    let secs = started.elapsed().as_secs_f64();
    let m = &built.manifest;
    print!("{}", report_summary(&m.recipe, m.vocab_size, &m.summary));
    let bytes: u64 = [&m.train, &m.val]
        .iter()
        .map(|s| (s.tokens * m.width.bytes()) as u64)
        .sum();
    println!(
        "built in {secs:.1} s ({:.2} MB/s of text); tokens stored as {:?} in {} shard files, {:.1} MB",
        m.summary.source_bytes as f64 / 1e6 / secs.max(1e-9),
        m.width,
        m.train.shards.len() + m.val.shards.len(),
        bytes as f64 / 1e6
    );
    let open = OpenShards::open(dir)?;
    if args.verify {
        open.verify()?;
        println!("every token file matches its checksum");
    }
    if saved {
        println!(
            "saved {} (version {}, checksum {})",
            dir.display(),
            m.version,
            m.checksum
        );
    }
    let corpus = Corpus::from_shards(open, built.tokenizer.clone(), false)?;
    let spec = preview_spec(&corpus, args.batch, args.context);
    let corpus = if spec.objective.needs_specials() {
        Corpus::from_shards(OpenShards::open(dir)?, built.tokenizer, true)?
    } else {
        corpus
    };
    println!(
        "{} steps per epoch at batch {}, context {}",
        corpus.steps_per_epoch(args.batch, args.context),
        args.batch,
        args.context
    );
    if !corpus.is_instructions()
        && let Some(line) = baseline_line(&corpus)
    {
        println!("{line}");
        // What a masked objective must beat on the same split.
        let masked = hearth_engine::eval::baseline::masked_references(&corpus, "val_masked_acc");
        if !masked.is_empty() {
            let parts: Vec<String> = masked
                .iter()
                .map(|r| format!("{} {:.4}", r.label, r.value))
                .collect();
            println!(
                "masked-token count models on the validation split (accuracy): {}",
                parts.join(" · ")
            );
        }
    }
    if args.preview > 0 {
        println!("first batch («» marks the tokens the loss is computed on):");
        for row in hearth_engine::preview::first_batch(&corpus, &spec, args.preview) {
            println!("  {}", row.marked_text().replace('\n', "\\n"));
        }
    }
    Ok(())
}

/// The validation cross-entropy of add-k count models (unigram to 5-gram) in the corpus's
/// tokens, as one line; `None` when a split is too small.
pub fn baseline_line(corpus: &Corpus) -> Option<String> {
    use hearth_engine::eval::baseline::{baseline_splits, describe, ngram_baselines};
    let (train, val, sampled) = baseline_splits(corpus);
    let baselines = ngram_baselines(&train, &val, corpus.tokenizer.vocab_size(), 5);
    (!baselines.is_empty()).then(|| {
        let sample = if sampled {
            format!(
                " (on a sample: {} training and {} validation tokens)",
                train.len(),
                val.len()
            )
        } else {
            String::new()
        };
        format!(
            "count models on the validation split (nats/token, add-k){sample}: {}",
            describe(&baselines)
        )
    })
}

/// The data source of a run that trains on the dataset saved at `path` (its folder or recipe
/// file).
pub fn dataset_source(path: &Path) -> Result<DataSource> {
    let recipe = DatasetRecipe::load(path)?;
    let folder = if path.is_dir() {
        Some(path.to_path_buf())
    } else {
        path.parent().map(Path::to_path_buf)
    };
    Ok(DataSource::Dataset {
        recipe: Box::new(recipe),
        folder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_engine::data::sources::Generator;

    #[test]
    fn source_arguments_parse() {
        assert_eq!(
            parse_source("jsonl:data/x.jsonl#prompt, response").unwrap(),
            SourceKind::Jsonl {
                path: "data/x.jsonl".into(),
                fields: vec!["prompt".into(), "response".into()]
            }
        );
        assert_eq!(
            parse_source("gen:api_zoo#50#3").unwrap(),
            SourceKind::Generated {
                generator: Generator::ApiZoo,
                seed: 3,
                size: 50
            }
        );
        assert!(matches!(
            parse_source("notes.csv").unwrap(),
            SourceKind::Table { .. }
        ));
        assert!(
            parse_source("gen:nope")
                .unwrap_err()
                .to_string()
                .contains("no generator")
        );
        assert!(parse_source("text:a.txt#pages").is_err());
    }
}
