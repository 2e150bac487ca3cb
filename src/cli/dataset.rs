//! `hearth dataset`: builds a dataset headless from a recipe file or from flags, prints its
//! statistics, leakage report and first batch, and saves it into the project.

use anyhow::{Context, Result, bail};
use clap::Args;
use hearth_engine::data::dataset::{
    self, Content, Dataset, DatasetRecipe, SourceSpec, SplitMode, TransformKind, TransformSpec,
};
use hearth_engine::data::sources::{SourceArgError, SourceKind};
use hearth_engine::data::transforms::{DistractorMode, LabelMode, RaftOptions, SftOptions};
use hearth_engine::data::{Corpus, DataSource, TokenizerKind};
use hearth_engine::spec::RunSpec;
use std::path::{Path, PathBuf};

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

/// A multi-line report of a built dataset: sizes, per-source statistics, leakage.
pub fn report(ds: &Dataset) -> String {
    let mut out = String::new();
    let (train, val, unit) = ds.sizes();
    out.push_str(&format!(
        "dataset {}: {} ({}), vocabulary {} tokens\n",
        ds.recipe.name,
        ds.recipe.transform.label(),
        ds.recipe.tokenizer.label(),
        ds.tokenizer.vocab_size()
    ));
    out.push_str(&format!(
        "train {train} {unit}, validation {val} {unit}; {} tokens per epoch\n",
        ds.epoch_tokens()
    ));
    for s in &ds.sources {
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
    match &ds.leakage {
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

/// The corpus a run with this dataset trains on, and a spec with `batch` and `context` (and
/// the LinkBERT objective for LinkBERT pairs).
fn run_view(ds: Dataset, batch: usize, context: usize) -> (Corpus, RunSpec) {
    let mut spec = RunSpec::default();
    spec.train.batch_size = batch;
    spec.model.context = context;
    if matches!(ds.content, Content::Relations { .. }) {
        spec.objective.kind = hearth_engine::objective::ObjectiveKind::LINKBERT;
    }
    (
        Corpus::from_dataset(ds, spec.objective.needs_specials()),
        spec,
    )
}

/// `hearth dataset`.
pub fn run(args: &DatasetArgs, project: Option<PathBuf>) -> Result<()> {
    let recipe = args.to_recipe()?;
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {msg}").expect("valid template"),
    );
    let ds = Dataset::build(&recipe, None, &|stage, frac| {
        bar.set_position((frac * 1000.0) as u64);
        bar.set_message(stage.to_string());
    })?;
    bar.finish_and_clear();
    print!("{}", report(&ds));
    if !args.dry_run {
        let project = project.unwrap_or_else(hearth_engine::project::default_project_dir);
        let dir = dataset::dataset_dir(&project, &recipe.name);
        dataset::save(&dir, &ds.recipe, &ds.tokenizer)
            .with_context(|| format!("cannot save {}", dir.display()))?;
        println!("saved {}", dir.display());
    }
    let (corpus, spec) = run_view(ds, args.batch, args.context);
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
    use hearth_engine::data::Split;
    use hearth_engine::eval::baseline::{describe, ngram_baselines};
    let baselines = ngram_baselines(
        corpus.split(Split::Train),
        corpus.split(Split::Val),
        corpus.tokenizer.vocab_size(),
        5,
    );
    (!baselines.is_empty()).then(|| {
        format!(
            "count models on the validation split (nats/token, add-k): {}",
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
