//! A dataset recipe (sources, mixing weights, de-duplication, split, tokenizer, transform) and
//! the dataset it builds. A recipe is plain serde data saved in the project and in every run
//! that trains on it; building it again gives the same dataset.

mod build;
mod stream;

pub use build::{BuildProgress, Content, Dataset, Leak, SourceStats, mix_counts};
pub use stream::{
    BuildStatus, BuiltShards, DEFAULT_TOKENIZER_SAMPLE, ShardOptions, StatusFn, build_shards,
};

use super::sources::{SourceError, SourceKind};
use super::tokenizer::{Tokenizer, TokenizerKind};
use super::transforms::{LinkOptions, RaftOptions, SftOptions, SymbolOptions, TransformError};
use serde::{Deserialize, Serialize};
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
    /// The token shards cannot be written.
    #[error("{0}")]
    Storage(String),
    /// The build was cancelled; the dataset folder is as it was.
    #[error("cancelled; the dataset folder is as it was")]
    Cancelled,
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
