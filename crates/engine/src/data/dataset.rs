//! A dataset recipe (sources, mixing weights, de-duplication, split, tokenizer, transform) and
//! the dataset it builds. A recipe is plain serde data saved in the project and in every run
//! that trains on it; building it again gives the same dataset.

use super::record::{Record, RelationPair, TextExample};
use super::sources::{Progress, SourceError, SourceKind, read_source};
use super::tokenizer::{Tokenizer, TokenizerKind};
use super::transforms::{
    self, LinkOptions, RaftOptions, SftOptions, SymbolOptions, TransformError,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Bumped when a saved recipe field changes meaning.
pub const DATASET_SCHEMA_VERSION: u32 = 1;

/// One source and its share of the mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// Where the records come from.
    pub source: SourceKind,
    /// How many times the source is seen per epoch: 1 once, 3 three times, 0.5 its first half.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

impl SourceSpec {
    /// `source` with weight 1 (seen once per epoch).
    pub fn new(source: SourceKind) -> Self {
        Self {
            source,
            weight: 1.0,
        }
    }
}

/// How documents are divided between training and validation; on the command line
/// `contiguous` and `random`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// The end of each source validates (the last tokens of plain text, as nanoGPT splits; the
    /// last records of structured data).
    #[default]
    Contiguous,
    /// A seeded random share of each source's documents validates.
    #[value(name = "random")]
    RandomDocuments,
}

/// The train / validation split of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitSpec {
    /// Which documents validate.
    pub mode: SplitMode,
    /// Share of each source that validates.
    pub val_fraction: f64,
    /// Seed of the random split.
    pub seed: u64,
}

impl Default for SplitSpec {
    fn default() -> Self {
        Self {
            mode: SplitMode::Contiguous,
            val_fraction: 0.1,
            seed: 0,
        }
    }
}

/// Symbol tuning: prompts from every task but the held-out one train; the held-out one
/// validates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SymbolRecipe {
    /// How each prompt is made.
    pub options: SymbolOptions,
    /// The task family kept out of training (empty: records split as the split says).
    pub held_out_task: String,
    /// Prompts drawn from the training records.
    pub train_prompts: usize,
    /// Prompts drawn from the validation records.
    pub val_prompts: usize,
}

impl Default for SymbolRecipe {
    fn default() -> Self {
        Self {
            options: SymbolOptions::default(),
            held_out_task: super::generators::HELD_OUT_TASK.to_string(),
            train_prompts: 4000,
            val_prompts: 400,
        }
    }
}

/// LinkBERT pairs drawn from the documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkRecipe {
    /// How documents are linked and cut into segments.
    pub options: LinkOptions,
    /// Pairs drawn in all; those whose first segment comes from a validation document validate.
    pub pairs: usize,
}

impl Default for LinkRecipe {
    fn default() -> Self {
        Self {
            options: LinkOptions::default(),
            pairs: 6000,
        }
    }
}

/// What the records become.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransformSpec {
    /// Records are documents of a text stream (every token is a target).
    #[default]
    None,
    /// Instruction / SFT formatting: prompt and response fields; loss on the response.
    Sft {
        /// Fields and template.
        options: SftOptions,
    },
    /// Retrieval-aware fine-tuning (RAT / RAFT): documents in the context; loss on the answer.
    Raft {
        /// Fields, oracle probability and distractors.
        options: RaftOptions,
    },
    /// Symbol tuning: k-shot prompts whose labels are arbitrary symbols.
    Symbols {
        /// Prompt options, held-out task and prompt counts.
        recipe: SymbolRecipe,
    },
    /// LinkBERT: `[cls] A [sep] B [sep]` pairs with a 3-way relation label.
    LinkBert {
        /// Link and segment options and the number of pairs.
        recipe: LinkRecipe,
    },
}

/// Which transform a [`TransformSpec`] is, without its options; on the command line `none`,
/// `sft`, `raft`, `symbols` and `linkbert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransformKind {
    /// Records are documents of a text stream.
    None,
    /// Instruction / SFT formatting.
    Sft,
    /// Retrieval-aware fine-tuning.
    Raft,
    /// Symbol tuning.
    Symbols,
    /// LinkBERT pairs.
    #[value(name = "linkbert")]
    LinkBert,
}

impl TransformKind {
    /// The transform of this kind with default options.
    pub fn default_spec(self) -> TransformSpec {
        match self {
            TransformKind::None => TransformSpec::None,
            TransformKind::Sft => TransformSpec::Sft {
                options: SftOptions::default(),
            },
            TransformKind::Raft => TransformSpec::Raft {
                options: RaftOptions::default(),
            },
            TransformKind::Symbols => TransformSpec::Symbols {
                recipe: SymbolRecipe::default(),
            },
            TransformKind::LinkBert => TransformSpec::LinkBert {
                recipe: LinkRecipe::default(),
            },
        }
    }
}

impl TransformSpec {
    /// Which transform this is.
    pub fn kind(&self) -> TransformKind {
        match self {
            TransformSpec::None => TransformKind::None,
            TransformSpec::Sft { .. } => TransformKind::Sft,
            TransformSpec::Raft { .. } => TransformKind::Raft,
            TransformSpec::Symbols { .. } => TransformKind::Symbols,
            TransformSpec::LinkBert { .. } => TransformKind::LinkBert,
        }
    }

    /// A short human name, shown in reports and the studio.
    pub fn label(&self) -> &'static str {
        match self {
            TransformSpec::None => "none (text)",
            TransformSpec::Sft { .. } => "instructions (SFT)",
            TransformSpec::Raft { .. } => "retrieval-aware (RAFT)",
            TransformSpec::Symbols { .. } => "symbol tuning",
            TransformSpec::LinkBert { .. } => "LinkBERT pairs",
        }
    }

    /// The transforms a user can pick, with default options.
    pub fn all_defaults() -> Vec<TransformSpec> {
        <TransformKind as clap::ValueEnum>::value_variants()
            .iter()
            .map(|k| k.default_spec())
            .collect()
    }
}

/// Everything needed to rebuild a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetRecipe {
    /// [`DATASET_SCHEMA_VERSION`] when the recipe was saved.
    pub schema_version: u32,
    /// The dataset's name (its folder under the project's `datasets/`).
    pub name: String,
    /// The sources and their mixing weights.
    pub sources: Vec<SourceSpec>,
    /// Drop exact duplicate documents (the first occurrence stays).
    pub dedup: bool,
    /// How documents divide into train and validation.
    pub split: SplitSpec,
    /// The tokenizer fitted to the data.
    pub tokenizer: TokenizerKind,
    /// Size of a training epoch: tokens for text, examples for the other transforms; the
    /// weighted sources are scaled to fill it. `None`: each source `weight` times.
    pub epoch_size: Option<usize>,
    /// What the records become.
    pub transform: TransformSpec,
}

impl Default for DatasetRecipe {
    fn default() -> Self {
        Self {
            schema_version: DATASET_SCHEMA_VERSION,
            name: "dataset".to_string(),
            sources: Vec::new(),
            dedup: true,
            split: SplitSpec::default(),
            tokenizer: TokenizerKind::Char,
            epoch_size: None,
            transform: TransformSpec::None,
        }
    }
}

/// Why a recipe does not build.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatasetError {
    /// A source (or the recipe file) cannot be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A setting that cannot build.
    #[error("{field}: {message}")]
    Recipe {
        /// The setting's path in the recipe (`split.val_fraction`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The records do not suit the transform.
    #[error(transparent)]
    Transform(#[from] TransformError),
}

impl DatasetError {
    fn recipe(field: impl Into<String>, message: impl Into<String>) -> Self {
        DatasetError::Recipe {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl DatasetRecipe {
    /// Each source's mixing weight, in recipe order.
    pub fn weights(&self) -> Vec<f64> {
        self.sources.iter().map(|s| s.weight).collect()
    }

    /// Settings that cannot build, each naming its field.
    pub fn validate(&self) -> Vec<DatasetError> {
        let mut errors = Vec::new();
        if self.sources.is_empty() {
            errors.push(DatasetError::recipe("sources", "add at least one source"));
        }
        for (i, s) in self.sources.iter().enumerate() {
            if !(s.weight > 0.0 && s.weight.is_finite()) {
                errors.push(DatasetError::recipe(
                    format!("sources[{i}].weight"),
                    "must be a positive number",
                ));
            }
        }
        let v = self.split.val_fraction;
        if !(v > 0.0 && v <= 0.5) {
            errors.push(DatasetError::recipe(
                "split.val_fraction",
                "must be in (0, 0.5]",
            ));
        }
        if self.epoch_size == Some(0) {
            errors.push(DatasetError::recipe("epoch_size", "must be at least 1"));
        }
        if let TransformSpec::Raft { options } = &self.transform
            && !(0.0..=1.0).contains(&options.p_oracle)
        {
            errors.push(DatasetError::recipe(
                "transform.options.p_oracle",
                "must be in [0, 1]",
            ));
        }
        errors
    }

    /// Parses a saved recipe (a leading byte order mark is dropped); errors name `origin` and
    /// the line.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self, DatasetError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let recipe: DatasetRecipe = serde_json::from_str(text).map_err(|e| {
            DatasetError::Source(SourceError::at(
                origin,
                (e.line() > 0).then_some(e.line()),
                e.to_string(),
            ))
        })?;
        if recipe.schema_version > DATASET_SCHEMA_VERSION {
            return Err(DatasetError::Source(SourceError::at(
                origin,
                None,
                format!(
                    "schema_version {} is newer than this Hearth understands",
                    recipe.schema_version
                ),
            )));
        }
        Ok(recipe)
    }

    /// Reads `dataset.json` in a dataset folder (or a recipe file given directly).
    pub fn load(path: &Path) -> Result<Self, DatasetError> {
        let file = if path.is_dir() {
            path.join(DATASET_FILE)
        } else {
            path.to_path_buf()
        };
        let bytes = std::fs::read(&file)
            .map_err(|e| SourceError::at(&file, None, format!("cannot read: {e}")))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            SourceError::at(
                &file,
                Some(line),
                "invalid UTF-8 (the file must be UTF-8 text)",
            )
        })?;
        Self::from_json(text, &file)
    }
}

/// The recipe file in a dataset folder.
pub const DATASET_FILE: &str = "dataset.json";
/// The tokenizer file in a dataset folder (runs reuse it, so a BPE vocabulary is trained once).
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// What one source contributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    /// The source's short name ([`SourceKind::describe`]).
    pub label: String,
    /// Its mixing weight.
    pub weight: f64,
    /// Records read (duplicates included).
    pub records: usize,
    /// Exact duplicates dropped (of an earlier record of any source).
    pub duplicates: usize,
    /// Kept records that train.
    pub train_records: usize,
    /// Kept records that validate.
    pub val_records: usize,
    /// Characters of the source's kept records.
    pub chars: usize,
    /// Training tokens of the source before mixing.
    pub train_tokens: usize,
    /// Tokens the source contributes to one training epoch after mixing.
    pub epoch_tokens: usize,
}

/// A validation document also found (up to case and spacing) in training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leak {
    /// Origin of the validation record.
    pub val_origin: String,
    /// Origin of the training record with the same text.
    pub train_origin: String,
}

/// What the records became.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A token stream (no transform).
    Text {
        /// Training tokens, sources mixed.
        train: Vec<u32>,
        /// Validation tokens.
        val: Vec<u32>,
    },
    /// Prompt / answer examples (SFT, RAFT, symbol tuning).
    Examples {
        /// Training examples, sources mixed.
        train: Vec<TextExample>,
        /// Validation examples.
        val: Vec<TextExample>,
    },
    /// LinkBERT segment pairs.
    Relations {
        /// Pairs whose segment A comes from a training document.
        train: Vec<RelationPair>,
        /// Pairs whose segment A comes from a validation document.
        val: Vec<RelationPair>,
    },
}

/// A built dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The recipe it was built from.
    pub recipe: DatasetRecipe,
    /// The fitted (or given) tokenizer, with specials when the content is not plain text.
    pub tokenizer: Tokenizer,
    /// What the records became.
    pub content: Content,
    /// Per-source statistics, in recipe order.
    pub sources: Vec<SourceStats>,
    /// `None` when the split is not by document (a contiguous text split has no documents to
    /// compare).
    pub leakage: Option<Vec<Leak>>,
    /// The validation records (evaluation variants rebuild their prompts from them).
    pub val_records: Vec<Record>,
}

fn normalized(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn hash_of(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// How many items each source contributes to an epoch: `weight` times its own size (1: once,
/// 0.5: half of it, 3: three times), all scaled so the epoch holds `total` items when given.
pub fn mix_counts(weights: &[f64], natural: &[usize], total: Option<usize>) -> Vec<usize> {
    let weighted: Vec<f64> = weights
        .iter()
        .zip(natural)
        .map(|(w, &n)| w * n as f64)
        .collect();
    let sum: f64 = weighted.iter().sum();
    let scale = match total {
        Some(t) if sum > 0.0 => t as f64 / sum,
        _ => 1.0,
    };
    weighted
        .iter()
        .map(|x| (x * scale).round() as usize)
        .collect()
}

/// Takes `count` items from `items`, in order, starting over when they run out.
fn cycle_take<T: Clone>(items: &[T], count: usize) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    items.iter().cycle().take(count).cloned().collect()
}

/// Progress of a build: the stage and its fraction.
pub type BuildProgress<'a> = &'a (dyn Fn(&str, f64) + Sync);

/// The records of every source after the split: `train[i]` and `val[i]` are source `i`'s.
struct SplitSources {
    train: Vec<Vec<Record>>,
    val: Vec<Vec<Record>>,
}

impl Dataset {
    /// Builds `recipe`: reads every source, drops duplicates, splits, transforms, fits the
    /// tokenizer (or uses `tokenizer`), mixes.
    pub fn build(
        recipe: &DatasetRecipe,
        tokenizer: Option<Tokenizer>,
        progress: BuildProgress<'_>,
    ) -> Result<Self, DatasetError> {
        if let Some(first) = recipe.validate().into_iter().next() {
            return Err(first);
        }
        // 1. Read.
        let mut per_source = read_sources(recipe, progress)?;
        progress("assembling", 1.0);
        // 2. De-duplicate across sources.
        let mut stats = dedup_sources(recipe, &mut per_source);
        // 3. Split by document (a contiguous text split happens on tokens, in `text_content`).
        let token_split = matches!(recipe.transform, TransformSpec::None)
            && recipe.split.mode == SplitMode::Contiguous;
        let split = split_sources(recipe, per_source, token_split, &mut stats);
        let leakage = (!token_split).then(|| leaks(&split.train, &split.val));
        let val_records: Vec<Record> = split.val.iter().flatten().cloned().collect();
        // 4. Transform, tokenize, mix.
        let (tokenizer, content) = match &recipe.transform {
            TransformSpec::None => {
                text_content(recipe, split, tokenizer, token_split, &mut stats, progress)
            }
            TransformSpec::LinkBert { recipe: link } => {
                relation_content(recipe, link, &split, tokenizer, &mut stats)?
            }
            transform => example_content(recipe, transform, &split, tokenizer, &mut stats)?,
        };
        let needs_specials = !matches!(content, Content::Text { .. });
        let tokenizer = if needs_specials && !tokenizer.has_specials() {
            tokenizer.with_specials(true)
        } else {
            tokenizer
        };
        Ok(Self {
            recipe: recipe.clone(),
            tokenizer,
            content,
            sources: stats,
            leakage,
            val_records,
        })
    }

    /// Tokens in one training epoch.
    pub fn epoch_tokens(&self) -> usize {
        self.sources.iter().map(|s| s.epoch_tokens).sum()
    }

    /// Training and validation sizes: `(train, val, unit)` with unit `tokens`, `examples` or
    /// `pairs`.
    pub fn sizes(&self) -> (usize, usize, &'static str) {
        match &self.content {
            Content::Text { train, val } => (train.len(), val.len(), "tokens"),
            Content::Examples { train, val } => (train.len(), val.len(), "examples"),
            Content::Relations { train, val } => (train.len(), val.len(), "pairs"),
        }
    }
}

/// Reads every source of `recipe`, reporting each one's share of the progress.
fn read_sources(
    recipe: &DatasetRecipe,
    progress: BuildProgress<'_>,
) -> Result<Vec<Vec<Record>>, DatasetError> {
    let n_sources = recipe.sources.len();
    let mut per_source: Vec<Vec<Record>> = Vec::with_capacity(n_sources);
    for (i, s) in recipe.sources.iter().enumerate() {
        let stage = format!("reading {}", s.source.describe());
        let report: Progress<'_> = &|done, total| {
            let frac = if total == 0 {
                1.0
            } else {
                done as f64 / total as f64
            };
            progress(&stage, (i as f64 + frac) / n_sources as f64);
        };
        per_source.push(read_source(&s.source, report)?);
    }
    Ok(per_source)
}

/// Drops exact duplicates across sources (when the recipe asks) and starts each source's
/// statistics: records read, duplicates dropped, characters kept.
fn dedup_sources(recipe: &DatasetRecipe, per_source: &mut [Vec<Record>]) -> Vec<SourceStats> {
    let mut stats: Vec<SourceStats> = recipe
        .sources
        .iter()
        .zip(per_source.iter())
        .map(|(s, recs)| SourceStats {
            label: s.source.describe(),
            weight: s.weight,
            records: recs.len(),
            duplicates: 0,
            train_records: 0,
            val_records: 0,
            chars: 0,
            train_tokens: 0,
            epoch_tokens: 0,
        })
        .collect();
    if recipe.dedup {
        let mut seen = std::collections::HashSet::new();
        for (recs, st) in per_source.iter_mut().zip(&mut stats) {
            let before = recs.len();
            recs.retain(|r| seen.insert(hash_of(&r.text_ref())));
            st.duplicates = before - recs.len();
        }
    }
    for (recs, st) in per_source.iter().zip(&mut stats) {
        st.chars = recs.iter().map(|r| r.text_ref().len()).sum();
    }
    stats
}

/// Splits each source's records into training and validation: all to training when the
/// split happens later on tokens (`token_split`), by task when symbol tuning holds one out,
/// by the recipe's split otherwise.
fn split_sources(
    recipe: &DatasetRecipe,
    per_source: Vec<Vec<Record>>,
    token_split: bool,
    stats: &mut [SourceStats],
) -> SplitSources {
    let held_out = match &recipe.transform {
        TransformSpec::Symbols { recipe: r } if !r.held_out_task.is_empty() => {
            Some((r.options.task_field.clone(), r.held_out_task.clone()))
        }
        _ => None,
    };
    let mut split = SplitSources {
        train: Vec::with_capacity(per_source.len()),
        val: Vec::with_capacity(per_source.len()),
    };
    for (i, recs) in per_source.into_iter().enumerate() {
        let (train, val) = if token_split {
            (recs, Vec::new())
        } else if let Some((field, task)) = &held_out {
            transforms::split_by_task(&recs, field, task)
        } else {
            split_records(&recs, &recipe.split, i as u64)
        };
        stats[i].train_records = train.len();
        stats[i].val_records = val.len();
        split.train.push(train);
        split.val.push(val);
    }
    split
}

/// The text of one source's records: documents separated by a newline (paragraphs end in
/// one, so a blank line separates them). Records are consumed: a large file is not copied.
fn documents_text(recs: Vec<Record>) -> String {
    if recs.len() == 1 {
        return recs
            .into_iter()
            .next()
            .map(Record::into_text)
            .unwrap_or_default();
    }
    let mut s = String::new();
    for r in recs {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&r.text_ref());
    }
    s
}

/// A token stream (no transform): fits the tokenizer unless given, tokenizes each source,
/// splits on tokens when `token_split`, and mixes the training tokens by weight.
fn text_content(
    recipe: &DatasetRecipe,
    split: SplitSources,
    tokenizer: Option<Tokenizer>,
    token_split: bool,
    stats: &mut [SourceStats],
    progress: BuildProgress<'_>,
) -> (Tokenizer, Content) {
    let train_text: Vec<String> = split.train.into_iter().map(documents_text).collect();
    let val_text: Vec<String> = split.val.into_iter().map(documents_text).collect();
    progress("fitting the tokenizer", 1.0);
    let tokenizer = tokenizer.unwrap_or_else(|| {
        let texts: Vec<&str> = train_text
            .iter()
            .chain(&val_text)
            .map(String::as_str)
            .collect();
        Tokenizer::fit_texts(recipe.tokenizer, &texts)
    });
    progress("tokenizing", 1.0);
    let mut train_ids: Vec<Vec<u32>> = Vec::with_capacity(train_text.len());
    let mut val = Vec::new();
    for (t, v) in train_text.into_iter().zip(&val_text) {
        let mut ids = encode_chunked(&tokenizer, &t);
        drop(t);
        if token_split {
            let n_train = ((ids.len() as f64) * (1.0 - recipe.split.val_fraction)).round() as usize;
            val.extend_from_slice(&ids[n_train..]);
            ids.truncate(n_train);
        } else {
            val.extend(encode_chunked(&tokenizer, v));
        }
        train_ids.push(ids);
    }
    let natural: Vec<usize> = train_ids.iter().map(Vec::len).collect();
    let counts = mix_counts(&recipe.weights(), &natural, recipe.epoch_size);
    let mut train: Vec<u32> = Vec::new();
    for ((ids, &count), st) in train_ids.into_iter().zip(&counts).zip(stats) {
        st.train_tokens = ids.len();
        st.epoch_tokens = count;
        if train.is_empty() && count == ids.len() {
            // A source seen once is used as it is, not copied.
            train = ids;
        } else {
            train.extend(cycle_take(&ids, count));
        }
    }
    (tokenizer, Content::Text { train, val })
}

/// LinkBERT segment pairs over all documents; a pair validates when its segment A comes
/// from a validation document.
fn relation_content(
    recipe: &DatasetRecipe,
    link: &LinkRecipe,
    split: &SplitSources,
    tokenizer: Option<Tokenizer>,
    stats: &mut [SourceStats],
) -> Result<(Tokenizer, Content), DatasetError> {
    let docs: Vec<Record> = split
        .train
        .iter()
        .flatten()
        .chain(split.val.iter().flatten())
        .cloned()
        .collect();
    let n_train_docs: usize = split.train.iter().map(Vec::len).sum();
    let pairs = transforms::linkbert_pairs(&docs, &link.options, link.pairs)?;
    let (val, train): (Vec<RelationPair>, Vec<RelationPair>) =
        pairs.into_iter().partition(|p| p.a_doc >= n_train_docs);
    let tokenizer = tokenizer.unwrap_or_else(|| {
        let texts: Vec<String> = docs.iter().map(Record::text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Tokenizer::fit_texts(recipe.tokenizer, &refs)
    });
    let pair_tokens: usize = train
        .iter()
        .map(|p| tokenizer.encode(&p.a).len() + tokenizer.encode(&p.b).len() + 3)
        .sum();
    let n_sources = stats.len();
    for st in stats.iter_mut() {
        st.train_tokens = pair_tokens / n_sources.max(1);
        st.epoch_tokens = st.train_tokens;
    }
    Ok((tokenizer, Content::Relations { train, val }))
}

/// Prompt / answer examples made by `transform` from each source, the training ones mixed by
/// weight.
fn example_content(
    recipe: &DatasetRecipe,
    transform: &TransformSpec,
    split: &SplitSources,
    tokenizer: Option<Tokenizer>,
    stats: &mut [SourceStats],
) -> Result<(Tokenizer, Content), DatasetError> {
    let mut train_ex: Vec<Vec<TextExample>> = Vec::with_capacity(split.train.len());
    let mut val = Vec::new();
    for (i, (t, v)) in split.train.iter().zip(&split.val).enumerate() {
        train_ex.push(transform_examples(transform, t, true, i)?);
        if !v.is_empty() {
            val.extend(transform_examples(transform, v, false, i)?);
        }
    }
    let tokenizer = tokenizer.unwrap_or_else(|| {
        let texts: Vec<String> = train_ex
            .iter()
            .flatten()
            .chain(&val)
            .map(|e| format!("{}{}", e.prompt, e.answer))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Tokenizer::fit_texts(recipe.tokenizer, &refs)
    });
    let natural: Vec<usize> = train_ex.iter().map(Vec::len).collect();
    let counts = mix_counts(&recipe.weights(), &natural, recipe.epoch_size);
    let mut train = Vec::new();
    for ((ex, &count), st) in train_ex.iter().zip(&counts).zip(stats) {
        let tokens =
            |e: &TextExample| tokenizer.encode(&e.prompt).len() + tokenizer.encode(&e.answer).len();
        st.train_tokens = ex.iter().map(tokens).sum();
        let taken = cycle_take(ex, count);
        st.epoch_tokens = taken.iter().map(tokens).sum();
        train.extend(taken);
    }
    Ok((tokenizer, Content::Examples { train, val }))
}

/// Encodes a long text in line-aligned pieces (bounded working memory for BPE).
fn encode_chunked(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    const PIECE: usize = 1 << 20;
    // Reserved once: growing by doubling would hold two copies of a large corpus at once.
    let mut out = Vec::with_capacity(match tokenizer.kind() {
        TokenizerKind::Bpe { .. } => text.len() / 3,
        _ => text.len(),
    });
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(PIECE);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        if end < rest.len()
            && let Some(nl) = rest[..end].rfind('\n')
        {
            end = nl + 1;
        }
        out.extend(tokenizer.encode(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

/// A seeded random (or the last) `val_fraction` of the records validates; at least one
/// record trains and, when there are two or more, one validates.
fn split_records(recs: &[Record], split: &SplitSpec, salt: u64) -> (Vec<Record>, Vec<Record>) {
    let n = recs.len();
    let n_val = if n < 2 {
        0
    } else {
        ((n as f64 * split.val_fraction).round() as usize).clamp(1, n - 1)
    };
    let mut order: Vec<usize> = (0..n).collect();
    if split.mode == SplitMode::RandomDocuments {
        order.shuffle(&mut StdRng::seed_from_u64(split.seed ^ (salt << 32)));
        // Each side keeps the source's order.
        let (t, v) = order.split_at_mut(n - n_val);
        t.sort_unstable();
        v.sort_unstable();
    }
    let (t, v) = order.split_at(n - n_val);
    (
        t.iter().map(|&i| recs[i].clone()).collect(),
        v.iter().map(|&i| recs[i].clone()).collect(),
    )
}

/// Validation records whose text (up to case and spacing) is also a training record.
fn leaks(train: &[Vec<Record>], val: &[Vec<Record>]) -> Vec<Leak> {
    let mut index: HashMap<u64, &str> = HashMap::new();
    for r in train.iter().flatten() {
        index
            .entry(hash_of(&normalized(&r.text())))
            .or_insert(&r.origin);
    }
    val.iter()
        .flatten()
        .filter_map(|r| {
            index
                .get(&hash_of(&normalized(&r.text())))
                .map(|origin| Leak {
                    val_origin: r.origin.clone(),
                    train_origin: origin.to_string(),
                })
        })
        .collect()
}

/// Applies an example-making transform to one source's records of one split.
fn transform_examples(
    transform: &TransformSpec,
    recs: &[Record],
    train: bool,
    source: usize,
) -> Result<Vec<TextExample>, DatasetError> {
    let salt = source as u64 * 7919 + u64::from(!train);
    let out = match transform {
        TransformSpec::Sft { options } => transforms::sft(recs, options),
        TransformSpec::Raft { options } => transforms::raft(
            recs,
            &RaftOptions {
                seed: options.seed ^ salt,
                ..options.clone()
            },
        ),
        TransformSpec::Symbols { recipe } => {
            let n = if train {
                recipe.train_prompts
            } else {
                recipe.val_prompts
            };
            transforms::symbol_prompts(
                recs,
                &SymbolOptions {
                    seed: recipe.options.seed ^ salt,
                    ..recipe.options.clone()
                },
                n,
            )
        }
        TransformSpec::None | TransformSpec::LinkBert { .. } => {
            unreachable!("handled by the caller")
        }
    };
    out.map_err(DatasetError::from)
}

/// Saves a built dataset's recipe and tokenizer into `dir` (created); files are written under
/// temporary names and renamed, so a failed save leaves what was there.
pub fn save(dir: &Path, recipe: &DatasetRecipe, tokenizer: &Tokenizer) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_json(&dir.join(TOKENIZER_FILE), tokenizer)?;
    write_json(&dir.join(DATASET_FILE), recipe)
}

/// Writes pretty JSON under a temporary name, then renames it into place.
fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).expect("saved values serialize");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Loads a dataset folder's saved tokenizer, if any.
pub fn saved_tokenizer(dir: &Path) -> Option<Tokenizer> {
    let text = std::fs::read_to_string(dir.join(TOKENIZER_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The tokenizer saved in `dir` when `dir` holds exactly `recipe` (a recipe edited since it was
/// saved fits its own tokenizer).
pub fn saved_tokenizer_for(dir: &Path, recipe: &DatasetRecipe) -> Option<Tokenizer> {
    let saved = DatasetRecipe::load(dir).ok()?;
    (saved == *recipe).then(|| saved_tokenizer(dir)).flatten()
}

/// Where a dataset named `name` is saved in a project.
pub fn dataset_dir(project: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    project.join("datasets").join(safe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sources::{DocSplit, Generator};

    fn text_source(dir: &Path, name: &str, text: &str) -> SourceSpec {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        SourceSpec::new(SourceKind::Text {
            path,
            documents: DocSplit::Lines,
        })
    }

    #[test]
    fn dedup_split_leakage_and_mixing() {
        let dir = tempfile::tempdir().unwrap();
        let a: String = (0..100).map(|i| format!("alpha line {i}\n")).collect();
        // Source b repeats one line of a exactly and one up to case.
        let b: String = (0..50)
            .map(|i| format!("beta line {i}\n"))
            .chain(["alpha line 3\n".to_string(), "ALPHA  LINE 4\n".to_string()])
            .collect();
        let mut recipe = DatasetRecipe {
            sources: vec![
                text_source(dir.path(), "a.txt", &a),
                text_source(dir.path(), "b.txt", &b),
            ],
            split: SplitSpec {
                mode: SplitMode::RandomDocuments,
                val_fraction: 0.2,
                seed: 7,
            },
            ..DatasetRecipe::default()
        };
        recipe.sources[1].weight = 3.0;
        let ds = Dataset::build(&recipe, None, &|_, _| {}).unwrap();
        assert_eq!(ds.sources[1].duplicates, 1, "the exact copy is dropped");
        assert_eq!(ds.sources[1].records, 52);
        assert_eq!(ds.sources[0].train_records + ds.sources[0].val_records, 100);
        assert_eq!(ds.sources[1].val_records, 10, "20% of 51 kept records");
        // The case-changed copy leaks exactly when it and its original are on different sides.
        let leaks = ds.leakage.clone().unwrap();
        assert!(leaks.len() <= 1);
        for leak in &leaks {
            assert!(leak.val_origin.contains(".txt:"), "{leak:?}");
        }
        // Source b is seen three times per epoch, a once.
        let (e0, e1) = (ds.sources[0].epoch_tokens, ds.sources[1].epoch_tokens);
        assert_eq!(e0, ds.sources[0].train_tokens);
        assert_eq!(e1, 3 * ds.sources[1].train_tokens);
        assert_eq!(
            mix_counts(&[1.0, 3.0], &[100, 50], Some(500)),
            vec![200, 300],
            "a fixed epoch keeps the weighted proportions"
        );
        let Content::Text { train, .. } = &ds.content else {
            panic!("text content")
        };
        assert_eq!(train.len(), e0 + e1);
        // Rebuilding the recipe gives the same dataset.
        let again = Dataset::build(&recipe, None, &|_, _| {}).unwrap();
        assert_eq!(again.content, ds.content);
        let steps = crate::data::Corpus::from_dataset(ds.clone(), false).steps_per_epoch(4, 8);
        assert_eq!(steps, train.len().div_ceil(32));
    }

    #[test]
    fn contiguous_text_split_matches_nanogpt() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..1000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let mut src = text_source(dir.path(), "t.txt", &text);
        src.source = SourceKind::Text {
            path: dir.path().join("t.txt"),
            documents: DocSplit::Whole,
        };
        let recipe = DatasetRecipe {
            sources: vec![src],
            ..DatasetRecipe::default()
        };
        let ds = Dataset::build(&recipe, None, &|_, _| {}).unwrap();
        let Content::Text { train, val } = &ds.content else {
            panic!()
        };
        assert_eq!((train.len(), val.len()), (900, 100));
        assert_eq!(ds.tokenizer.decode(val), &text[900..]);
        assert!(ds.leakage.is_none());
    }

    #[test]
    fn bad_source_fails_with_its_location_and_recipe_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let good = text_source(dir.path(), "good.txt", "fine\n");
        let bad_path = dir.path().join("bad.jsonl");
        std::fs::write(&bad_path, "{\"a\": 1}\n{\"a\": \n").unwrap();
        let recipe = DatasetRecipe {
            sources: vec![
                good,
                SourceSpec::new(SourceKind::Jsonl {
                    path: bad_path,
                    fields: vec![],
                }),
                SourceSpec::new(SourceKind::Generated {
                    generator: Generator::Stories,
                    seed: 1,
                    size: 1000,
                }),
            ],
            tokenizer: TokenizerKind::Bpe { vocab_size: 300 },
            transform: TransformSpec::Raft {
                options: RaftOptions::default(),
            },
            ..DatasetRecipe::default()
        };
        let err = Dataset::build(&recipe, None, &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.jsonl:2: not a JSON object"), "{err}");
        let json = serde_json::to_string(&recipe).unwrap();
        let back = DatasetRecipe::from_json(&json, Path::new("r.json")).unwrap();
        assert_eq!(back, recipe);
    }
}
