//! A text source turned into a tokenized train/val split, and the random batches drawn from it.

use super::generated;
use super::shards::{OpenShards, Tokens};
use super::tokenizer::{Tokenizer, TokenizerKind};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Label of a position that is not predicted (no loss, not counted in accuracy).
pub const IGNORE: i64 = -1;

/// Where a dataset's text comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// Built-in generated sentences (see [`generated::story_text`]).
    Generated {
        /// Seed of the generator.
        seed: u64,
        /// Characters generated.
        n_chars: usize,
    },
    /// A UTF-8 text file.
    TextFile {
        /// The file.
        path: PathBuf,
    },
    /// Instruction data: JSONL `{"prompt": .., "response": ..}` or TSV `prompt<TAB>response`.
    /// Each example is `prompt \n response \n`; the loss covers the response only.
    PromptResponse {
        /// The file.
        path: PathBuf,
    },
    /// Chat data: JSONL of `{"messages": [{"role": .., "content": ..}, ..]}`, each
    /// conversation rendered with the model's chat template; the loss covers the assistant's
    /// turns only. Needs a model whose tokenizer brought a template (a fine-tune of an
    /// imported chat model).
    Chat {
        /// The file.
        path: PathBuf,
    },
    /// A dataset recipe (see [`super::dataset`]), kept whole so the run can rebuild it.
    Dataset {
        /// The recipe.
        recipe: Box<super::DatasetRecipe>,
        /// The project folder it was saved in; its tokenizer is reused from there while the
        /// recipe is the one saved, and its token shards are mapped from there.
        #[serde(default)]
        folder: Option<PathBuf>,
    },
}

impl Default for DataSource {
    fn default() -> Self {
        DataSource::Generated {
            seed: 1,
            n_chars: 200_000,
        }
    }
}

impl DataSource {
    /// A one-line description for run lists and logs.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Generated { seed, n_chars } => {
                format!("generated stories ({n_chars} chars, seed {seed})")
            }
            DataSource::TextFile { path } => path.display().to_string(),
            DataSource::PromptResponse { path } => {
                format!("prompt/response pairs in {}", path.display())
            }
            DataSource::Chat { path } => format!("chat conversations in {}", path.display()),
            DataSource::Dataset { recipe, .. } => format!(
                "dataset {} ({} source{}, {})",
                recipe.name,
                recipe.sources.len(),
                if recipe.sources.len() == 1 { "" } else { "s" },
                recipe.transform.label()
            ),
        }
    }
}

/// Which build of a dataset's token shards a run trains on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardsIdentity {
    /// The dataset folder's build count.
    pub version: u32,
    /// The checksum of its tokens.
    pub checksum: String,
    /// Tokens in its training split (for epochs).
    #[serde(default)]
    pub train_tokens: usize,
}

/// The file in a run's folder that records which dataset tokens it trains on.
pub const RUN_SHARDS_FILE: &str = "dataset-shards.json";

/// The dataset tokens a run recorded in its folder `run_dir`, if any.
pub fn read_recorded_shards(run_dir: &Path) -> Option<ShardsIdentity> {
    let text = std::fs::read_to_string(run_dir.join(RUN_SHARDS_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records in the run folder `run_dir` which dataset tokens the run trains on (under a
/// temporary name, then renamed).
pub fn record_shards(run_dir: &Path, shards: &ShardsIdentity) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(shards).expect("an identity serializes");
    super::shards::write_replacing(&run_dir.join(RUN_SHARDS_FILE), text.as_bytes())
}

/// The file in a run's folder that records the tokens one epoch of its data takes, written
/// when the run starts (`{"epoch_tokens": N}`).
pub const RUN_EPOCH_FILE: &str = "epoch.json";

/// Records in the run folder `run_dir` that one epoch of its data is `epoch_tokens` tokens as
/// its steps count them (see [`Corpus::epoch_tokens`]).
pub fn record_epoch_tokens(run_dir: &Path, epoch_tokens: usize) -> std::io::Result<()> {
    let text = serde_json::json!({ "epoch_tokens": epoch_tokens }).to_string();
    super::shards::write_replacing(&run_dir.join(RUN_EPOCH_FILE), text.as_bytes())
}

fn read_recorded_epoch(run_dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(run_dir.join(RUN_EPOCH_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["epoch_tokens"].as_u64().map(|n| n as usize)
}

/// Bytes of text at most that [`run_epoch_tokens`] tokenizes again with a character or byte
/// tokenizer (an eighth of it with BPE) when the run recorded no dataset tokens.
const EPOCH_RECOUNT_MAX_BYTES: usize = 16 << 20;

/// Training tokens in one epoch of the data of the run in `run_dir` that trains on `data`:
/// what the run recorded when it started ([`RUN_EPOCH_FILE`]), else (runs from before it did)
/// the dataset tokens it recorded ([`RUN_SHARDS_FILE`]), else those of its dataset folder's
/// shards when they were built from its recipe, else, for generated text or a text file of
/// modest size, the training split tokenized again with the run's tokenizer. `None`: unknown.
pub fn run_epoch_tokens(run_dir: &Path, data: &DataSpec) -> Option<usize> {
    if let Some(tokens) = read_recorded_epoch(run_dir).filter(|&t| t > 0) {
        return Some(tokens);
    }
    let recorded = read_recorded_shards(run_dir).or_else(|| data.shards.clone());
    if let Some(shards) = recorded.filter(|s| s.train_tokens > 0) {
        return Some(shards.train_tokens);
    }
    let text = match &data.source {
        DataSource::Dataset { recipe, folder } => {
            let m = super::shards::read_manifest(folder.as_deref()?).ok()?;
            return (m.recipe == **recipe && m.train.tokens > 0).then_some(m.train.tokens);
        }
        DataSource::Generated { .. } | DataSource::TextFile { .. } => &data.source,
        _ => return None,
    };
    // The run folder's `tokenizer.json`, as the run store writes it.
    let tokenizer: Tokenizer = std::fs::read_to_string(run_dir.join("tokenizer.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())?;
    let limit = match tokenizer.kind() {
        TokenizerKind::Char | TokenizerKind::Byte => EPOCH_RECOUNT_MAX_BYTES,
        _ => EPOCH_RECOUNT_MAX_BYTES / 8,
    };
    let text = match text {
        DataSource::Generated { seed, n_chars } if *n_chars <= limit => {
            generated::story_text(*seed, *n_chars)
        }
        DataSource::TextFile { path }
            if std::fs::metadata(path).is_ok_and(|m| m.len() <= limit as u64) =>
        {
            read_text_file(path).ok()?
        }
        _ => return None,
    };
    // As `Corpus::with_tokenizer` splits.
    let n = tokenizer.encode(&text).len() as f64;
    Some((n * (1.0 - data.val_fraction.clamp(0.0, 0.5))).round() as usize)
}

/// `n` tokens in a few characters: `950`, `56k`, `1.2M`.
pub fn short_count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.0}k", n / 1e3)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// How many epochs `steps` steps of `tokens_per_step` tokens cover of data with `epoch_tokens`
/// training tokens, as the run's summaries say it: `300 steps = 2.4 epochs of 1.2M tokens`;
/// `300 steps (epochs unknown)` without an epoch size.
pub fn describe_epochs(steps: usize, tokens_per_step: f64, epoch_tokens: Option<usize>) -> String {
    match epoch_tokens.filter(|&t| t > 0) {
        Some(t) => {
            let epochs = steps as f64 * tokens_per_step / t as f64;
            let digits = if epochs < 0.1 {
                3
            } else if epochs < 10.0 {
                1
            } else {
                0
            };
            format!(
                "{steps} steps = {epochs:.digits$} epochs of {} tokens",
                short_count(t as f64)
            )
        }
        None => format!("{steps} steps (epochs unknown)"),
    }
}

/// What a run trains on: a source, a tokenizer and the validation share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataSpec {
    /// Where the text comes from.
    pub source: DataSource,
    /// The tokenizer fitted to it (a dataset source uses its recipe's instead).
    pub tokenizer: TokenizerKind,
    /// The last `val_fraction` of the text is validation (contiguous, as nanoGPT splits).
    pub val_fraction: f64,
    /// For a dataset source: the version and checksum of the token shards the run trains on,
    /// recorded when the run is set up; a run resumed after the dataset was rebuilt with other
    /// tokens is refused.
    pub shards: Option<ShardsIdentity>,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            source: DataSource::default(),
            tokenizer: TokenizerKind::Char,
            val_fraction: 0.1,
            shards: None,
        }
    }
}

/// One LinkBERT pair: segment tokens and the relation class (see
/// [`super::record::Relation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RelationExample {
    /// Tokens of segment A.
    pub a: Vec<u32>,
    /// Tokens of segment B.
    pub b: Vec<u32>,
    /// The relation's class id.
    pub relation: u8,
}

/// One instruction example: its tokens and how many of them are prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Prompt tokens, then answer tokens.
    pub ids: Vec<u32>,
    /// How many of `ids` are prompt (not trained on).
    pub prompt_len: usize,
}

impl Example {
    /// Tokenizes a prompt and the answer that follows it.
    pub fn encode(tokenizer: &Tokenizer, prompt: &str, answer: &str) -> Self {
        let mut ids = tokenizer.encode(prompt);
        let prompt_len = ids.len();
        ids.extend(tokenizer.encode(answer));
        Self { ids, prompt_len }
    }
}

/// Why a run's data cannot load.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The spec names a pretrained tokenizer, which only comes with its model.
    #[error(
        "data.tokenizer: a pretrained tokenizer comes with its imported model and cannot be \
         fitted to a corpus; start from that run (--init-from) or pick char, byte or bpe"
    )]
    PretrainedTokenizer,
    /// A pairs file (prompt/response data) is unreadable or malformed.
    #[error(transparent)]
    Pairs(#[from] super::pairs::PairsError),
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A text file is not UTF-8.
    #[error("{path}:{line}: invalid UTF-8 at byte {byte_offset}")]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Line of the first invalid byte (from 1).
        line: usize,
        /// Offset of the first invalid byte.
        byte_offset: usize,
    },
    /// A text file has no bytes.
    #[error("{path}: the file is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A dataset recipe does not build.
    #[error(transparent)]
    Dataset(#[from] super::dataset::DatasetError),
    /// A chat file is malformed, or its conversations do not render.
    #[error("{path}:{line}: {message}")]
    Chat {
        /// The file.
        path: PathBuf,
        /// The line of the conversation (from 1; 0 for the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A dataset's token shards are missing, damaged or not the ones the run recorded.
    #[error(transparent)]
    Shards(#[from] super::shards::ShardError),
    /// The dataset was rebuilt since the run recorded it.
    #[error(
        "{folder}: the dataset's tokens are version {found} (checksum {found_checksum}), not the \
         version {recorded} (checksum {recorded_checksum}) this run trained on; it was rebuilt \
         since. Start a new run on it"
    )]
    ShardsChanged {
        /// The dataset folder.
        folder: PathBuf,
        /// The version the run recorded.
        recorded: u32,
        /// Its checksum.
        recorded_checksum: String,
        /// The version in the folder now.
        found: u32,
        /// Its checksum.
        found_checksum: String,
    },
    /// A split holds fewer tokens than one window of the context.
    #[error("{what}: {tokens} tokens is too short for context {context} (needs at least {needed})")]
    TooShort {
        /// Which split (`train split`, `validation split`).
        what: String,
        /// Tokens it holds.
        tokens: usize,
        /// The model's context length.
        context: usize,
        /// Tokens one window needs.
        needed: usize,
    },
}

/// The text of a source, and for instruction data its (prompt, response) pairs.
#[allow(clippy::type_complexity)]
fn source_text(source: &DataSource) -> Result<(String, Option<Vec<(String, String)>>), DataError> {
    Ok(match source {
        DataSource::Generated { seed, n_chars } => (generated::story_text(*seed, *n_chars), None),
        DataSource::TextFile { path } => (read_text_file(path)?, None),
        DataSource::Dataset { .. } => unreachable!("datasets load through Corpus::from_dataset"),
        DataSource::Chat { .. } => unreachable!("chat data loads through Corpus::load_chat"),
        DataSource::PromptResponse { path } => {
            let pairs: Vec<(String, String)> = super::pairs::read_pairs(path)?
                .into_iter()
                .map(|p| (p.a, p.b))
                .collect();
            let text: String = pairs.iter().map(|(p, r)| format!("{p}\n{r}\n")).collect();
            (text, Some(pairs))
        }
    })
}

/// Reads a UTF-8 text file; a leading byte order mark is dropped, and an invalid byte is
/// reported with its line number.
pub fn read_text_file(path: &Path) -> Result<String, DataError> {
    let mut bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bom = if bytes.starts_with(super::sources::UTF8_BOM) {
        bytes.drain(..super::sources::UTF8_BOM.len());
        super::sources::UTF8_BOM.len()
    } else {
        0
    };
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|err| {
        let byte_offset = err.utf8_error().valid_up_to();
        let line = 1 + err.as_bytes()[..byte_offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        DataError::InvalidUtf8 {
            path: path.to_path_buf(),
            line,
            byte_offset: bom + byte_offset,
        }
    })
}

/// A train or validation split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training split.
    Train,
    /// The validation split.
    Val,
}

/// A tokenized corpus, split into train and validation.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The tokenizer the tokens were encoded with.
    pub tokenizer: Tokenizer,
    /// Training tokens (in memory, or mapped from a dataset's shards).
    pub train: Tokens,
    /// Validation tokens.
    pub val: Tokens,
    /// The shards the tokens are mapped from, when they are.
    pub shards: Option<ShardsIdentity>,
    /// Characters in the source text.
    pub n_chars: usize,
    /// The first characters of the text, for previews.
    pub preview: String,
    /// Instruction examples (prompt/response sources), split like the text.
    pub examples_train: Vec<Example>,
    /// Validation instruction examples.
    pub examples_val: Vec<Example>,
    /// LinkBERT pairs (datasets with the LinkBERT transform).
    pub relations_train: Vec<RelationExample>,
    /// Validation LinkBERT pairs.
    pub relations_val: Vec<RelationExample>,
}

/// One batch of next-token examples: `inputs[b][t]` predicts `targets[b][t]`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Rows.
    pub batch_size: usize,
    /// Positions per row.
    pub context: usize,
    /// Row-major `[batch_size, context]`.
    pub inputs: Vec<i64>,
    /// Row-major `[batch_size, context]`.
    pub targets: Vec<i64>,
}

impl Corpus {
    /// Loads the text of `spec.source`, fits the tokenizer and splits.
    pub fn load(spec: &DataSpec) -> Result<Self, DataError> {
        Self::load_for(spec, false)
    }

    /// [`Corpus::load`], with the tokenizer's reserved special tokens when `specials`.
    pub fn load_for(spec: &DataSpec, specials: bool) -> Result<Self, DataError> {
        if let crate::data::TokenizerKind::Pretrained { .. } = spec.tokenizer {
            return Err(DataError::PretrainedTokenizer);
        }
        Self::load_inner(spec, None, specials)
    }

    /// Loads `spec` with `tokenizer`, or fits one (with specials when `specials`).
    fn load_inner(
        spec: &DataSpec,
        tokenizer: Option<Tokenizer>,
        specials: bool,
    ) -> Result<Self, DataError> {
        if let DataSource::Dataset { recipe, folder } = &spec.source {
            if let Some(dir) = folder.as_deref()
                && let Some(corpus) = Self::mapped_dataset(
                    dir,
                    recipe,
                    spec.shards.as_ref(),
                    tokenizer.as_ref(),
                    specials,
                )?
            {
                return Ok(corpus);
            }
            // A given tokenizer wins over the one saved with the dataset.
            let tokenizer = tokenizer.or_else(|| {
                folder
                    .as_deref()
                    .and_then(|dir| super::dataset::saved_tokenizer_for(dir, recipe))
            });
            let ds = super::Dataset::build(recipe, tokenizer, &|_, _| {})?;
            return Ok(Self::from_dataset(ds, specials));
        }
        if let DataSource::Chat { path } = &spec.source {
            return Self::load_chat(path, tokenizer, spec.val_fraction);
        }
        let (text, examples) = source_text(&spec.source)?;
        let tokenizer = tokenizer.unwrap_or_else(|| {
            Tokenizer::fit(spec.tokenizer, &text).with_specials(specials || examples.is_some())
        });
        let mut corpus = Self::with_tokenizer(&text, tokenizer, spec.val_fraction);
        if let Some(examples) = examples {
            corpus.set_examples(&examples, spec.val_fraction);
        }
        Ok(corpus)
    }

    /// The corpus mapped from the shards saved in `dir`, when they were built from `recipe`
    /// with the tokenizer the run uses; `None` when the folder has no shards for it (a dataset
    /// saved before shards existed, an edited recipe, or a fine-tune with its base's tokenizer),
    /// which then builds in memory. Damaged shards, or shards rebuilt with other tokens since
    /// the run recorded them, are errors.
    fn mapped_dataset(
        dir: &Path,
        recipe: &super::DatasetRecipe,
        recorded: Option<&ShardsIdentity>,
        tokenizer: Option<&Tokenizer>,
        specials: bool,
    ) -> Result<Option<Self>, DataError> {
        let manifest = match super::shards::read_manifest(dir) {
            Ok(m) => m,
            Err(super::shards::ShardError::Missing { .. }) if recorded.is_none() => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        // The checksum says which tokens these are; a rebuild that gives the same tokens (a new
        // version number) still resumes.
        if let Some(r) = recorded
            && r.checksum != manifest.checksum
        {
            return Err(DataError::ShardsChanged {
                folder: dir.to_path_buf(),
                recorded: r.version,
                recorded_checksum: r.checksum.clone(),
                found: manifest.version,
                found_checksum: manifest.checksum,
            });
        }
        if manifest.recipe != *recipe {
            return Ok(None);
        }
        let Some(saved) = super::dataset::saved_tokenizer(dir) else {
            return Ok(None);
        };
        if super::shards::tokenizer_checksum(&saved) != manifest.tokenizer_checksum {
            return Ok(None);
        }
        if let Some(t) = tokenizer
            && t.clone().with_specials(false) != saved.clone().with_specials(false)
        {
            return Ok(None);
        }
        let open = OpenShards::open(dir)?;
        let tokenizer = tokenizer.cloned().unwrap_or(saved);
        Ok(Some(Self::from_shards(open, tokenizer, specials)?))
    }

    /// The corpus of opened shards, read with `tokenizer` (the one they were built with):
    /// text is mapped; examples and pairs (few) are read into memory.
    pub fn from_shards(
        open: OpenShards,
        tokenizer: Tokenizer,
        specials: bool,
    ) -> Result<Self, DataError> {
        let m = &open.manifest;
        let needs_specials =
            specials || m.train.mask_file.is_some() || m.train.pairs_file.is_some();
        let tokenizer = if needs_specials && !tokenizer.has_specials() {
            tokenizer.with_specials(true)
        } else {
            tokenizer
        };
        let mut corpus = Self {
            tokenizer,
            train: open.train.clone(),
            val: open.val.clone(),
            shards: Some(ShardsIdentity {
                version: m.version,
                checksum: m.checksum.clone(),
                train_tokens: m.train.tokens,
            }),
            n_chars: m.summary.sources.iter().map(|s| s.chars).sum(),
            preview: String::new(),
            examples_train: Vec::new(),
            examples_val: Vec::new(),
            relations_train: Vec::new(),
            relations_val: Vec::new(),
        };
        if m.train.mask_file.is_some() {
            for (val, out) in [
                (false, &mut corpus.examples_train),
                (true, &mut corpus.examples_val),
            ] {
                *out = open
                    .documents(val)?
                    .into_iter()
                    .map(|d| {
                        let prompt_len = d
                            .mask
                            .as_ref()
                            .and_then(|m| m.iter().position(|&b| b))
                            .unwrap_or(d.ids.len());
                        Example {
                            ids: d.ids,
                            prompt_len,
                        }
                    })
                    .collect();
            }
        } else if m.train.pairs_file.is_some() {
            for (val, out) in [
                (false, &mut corpus.relations_train),
                (true, &mut corpus.relations_val),
            ] {
                *out = open
                    .documents(val)?
                    .into_iter()
                    .map(|d| {
                        let (a_len, relation) = d.pair.unwrap_or((0, 0));
                        let a_len = (a_len as usize).min(d.ids.len());
                        RelationExample {
                            a: d.ids[..a_len].to_vec(),
                            b: d.ids[a_len..].to_vec(),
                            relation: relation as u8,
                        }
                    })
                    .collect();
            }
        }
        let head = corpus.train.to_vec(0..2_000);
        corpus.preview = corpus.tokenizer.decode(&head);
        Ok(corpus)
    }

    /// Chat conversations rendered with `tokenizer`'s template: one example per assistant
    /// turn (the conversation before it as the prompt, the turn as the answer).
    fn load_chat(
        path: &Path,
        tokenizer: Option<Tokenizer>,
        val_fraction: f64,
    ) -> Result<Self, DataError> {
        let fail = |line: usize, message: String| DataError::Chat {
            path: path.to_path_buf(),
            line,
            message,
        };
        let tokenizer = tokenizer.filter(|t| t.chat_template().is_some()).ok_or_else(|| {
            fail(
                0,
                "chat data is rendered with the model's chat template; fine-tune a model that has one (an imported chat model, --init-from)".into(),
            )
        })?;
        let template = tokenizer.chat_template().unwrap_or_default().to_string();
        let tokens = tokenizer.template_tokens();
        let conversations = super::chat::read_chat_file(path).map_err(|(line, m)| fail(line, m))?;
        let mut text = String::new();
        let mut examples = Vec::new();
        for (line, messages) in &conversations {
            let spans = super::chat::assistant_spans(&template, messages, &tokens)
                .map_err(|e| fail(*line, e.to_string()))?;
            let mut before = String::new();
            for (piece, learned) in spans {
                if learned {
                    examples.push(Example::encode(&tokenizer, &before, &piece));
                }
                before.push_str(&piece);
            }
            text.push_str(&before);
        }
        if examples.len() < 2 {
            return Err(fail(
                0,
                format!(
                    "{} assistant turns; training and validation need at least 2",
                    examples.len()
                ),
            ));
        }
        let mut corpus = Self::with_tokenizer(&text, tokenizer, val_fraction);
        corpus.set_encoded_examples(examples, val_fraction);
        Ok(corpus)
    }

    /// Tokenizes prompt/response pairs; the last `val_fraction` of them (at least one) validate.
    fn set_examples(&mut self, pairs: &[(String, String)], val_fraction: f64) {
        let examples: Vec<Example> = pairs
            .iter()
            .map(|(prompt, response)| {
                Example::encode(
                    &self.tokenizer,
                    &format!("{prompt}\n"),
                    &format!("{response}\n"),
                )
            })
            .collect();
        self.set_encoded_examples(examples, val_fraction);
    }

    /// Keeps `examples`; the last `val_fraction` of them (at least one) validate.
    fn set_encoded_examples(&mut self, examples: Vec<Example>, val_fraction: f64) {
        let n_val = ((examples.len() as f64 * val_fraction).round() as usize)
            .clamp(1, examples.len().saturating_sub(1).max(1));
        let split = examples.len() - n_val;
        self.examples_val = examples[split..].to_vec();
        self.examples_train = examples[..split.max(1)].to_vec();
    }

    /// The corpus of a built dataset: its token streams, and its examples or pairs.
    pub fn from_dataset(ds: super::Dataset, specials: bool) -> Self {
        use super::dataset::Content;
        let tokenizer = if specials && !ds.tokenizer.has_specials() {
            ds.tokenizer.clone().with_specials(true)
        } else {
            ds.tokenizer.clone()
        };
        let mut corpus = Self {
            tokenizer,
            train: Tokens::default(),
            val: Tokens::default(),
            shards: None,
            n_chars: ds.sources.iter().map(|s| s.chars).sum(),
            preview: String::new(),
            examples_train: Vec::new(),
            examples_val: Vec::new(),
            relations_train: Vec::new(),
            relations_val: Vec::new(),
        };
        match &ds.content {
            Content::Text { .. } => {
                if let Content::Text { train, val } = ds.content {
                    corpus.train = train.into();
                    corpus.val = val.into();
                }
            }
            Content::Examples { train, val } => {
                let encode = |examples: &[super::record::TextExample]| -> Vec<Example> {
                    examples
                        .iter()
                        .map(|e| Example::encode(&corpus.tokenizer, &e.prompt, &e.answer))
                        .collect()
                };
                corpus.examples_train = encode(train);
                corpus.examples_val = encode(val);
                corpus.train = corpus
                    .examples_train
                    .iter()
                    .flat_map(|e| e.ids.clone())
                    .collect::<Vec<u32>>()
                    .into();
                corpus.val = corpus
                    .examples_val
                    .iter()
                    .flat_map(|e| e.ids.clone())
                    .collect::<Vec<u32>>()
                    .into();
            }
            Content::Relations { train, val } => {
                let encode = |pairs: &[super::record::RelationPair]| -> Vec<RelationExample> {
                    pairs
                        .iter()
                        .map(|p| RelationExample {
                            a: corpus.tokenizer.encode(&p.a),
                            b: corpus.tokenizer.encode(&p.b),
                            relation: p.relation as u8,
                        })
                        .collect()
                };
                corpus.relations_train = encode(train);
                corpus.relations_val = encode(val);
                let stream = |r: &[RelationExample]| -> Vec<u32> {
                    r.iter()
                        .flat_map(|p| p.a.iter().chain(&p.b).copied())
                        .collect()
                };
                corpus.train = stream(&corpus.relations_train).into();
                corpus.val = stream(&corpus.relations_val).into();
            }
        }
        let head = corpus.train.to_vec(0..2_000);
        corpus.preview = corpus.tokenizer.decode(&head);
        corpus
    }

    /// Tokens one epoch of the training split takes as a run's steps count them (batch size
    /// times `context` a step): the training tokens of text, one row of `context` tokens per
    /// example (or pair) otherwise.
    pub fn epoch_tokens(&self, context: usize) -> usize {
        if self.is_relations() {
            self.relations_train.len() * context
        } else if self.is_instructions() {
            self.examples_train.len() * context
        } else {
            self.train.len()
        }
    }

    /// Optimizer steps in one epoch of the training split: examples (or pairs) over the batch
    /// size, or tokens over batch size times context for text.
    pub fn steps_per_epoch(&self, batch_size: usize, context: usize) -> usize {
        let (items, per_step) = if self.is_relations() {
            (self.relations_train.len(), batch_size)
        } else if self.is_instructions() {
            (self.examples_train.len(), batch_size)
        } else {
            (self.train.len(), batch_size * context)
        };
        items.div_ceil(per_step.max(1))
    }

    /// Whether the corpus holds LinkBERT pairs.
    pub fn is_relations(&self) -> bool {
        !self.relations_train.is_empty()
    }

    /// Whether the corpus holds prompt / answer examples.
    pub fn is_instructions(&self) -> bool {
        !self.examples_train.is_empty()
    }

    /// Instruction batches: inputs `[batch, context]` (padded) and next-token labels that are
    /// [`IGNORE`] except on response tokens.
    pub fn sample_instruction_batch(
        &self,
        split: Split,
        batch_size: usize,
        context: usize,
        rng: &mut StdRng,
    ) -> (Vec<i64>, Vec<i64>) {
        let examples = match split {
            Split::Train => &self.examples_train,
            Split::Val => &self.examples_val,
        };
        let pad = i64::from(self.tokenizer.special(super::Special::Pad).unwrap_or(0));
        let mut inputs = Vec::with_capacity(batch_size * context);
        let mut labels = Vec::with_capacity(batch_size * context);
        for _ in 0..batch_size {
            let ex = &examples[rng.random_range(0..examples.len())];
            // A long example keeps its end (the answer), dropping the start of the prompt.
            let start = ex
                .ids
                .len()
                .saturating_sub(context + 1)
                .min(ex.prompt_len.saturating_sub(1));
            for t in start..start + context {
                inputs.push(ex.ids.get(t).map_or(pad, |&i| i64::from(i)));
                let next = t + 1;
                labels.push(match ex.ids.get(next) {
                    Some(&id) if next >= ex.prompt_len => i64::from(id),
                    _ => IGNORE,
                });
            }
        }
        (inputs, labels)
    }

    /// Tokenizes `text` and splits it: the first `1 - val_fraction` of the tokens train.
    pub fn from_text(text: &str, kind: TokenizerKind, val_fraction: f64) -> Self {
        Self::with_tokenizer(text, Tokenizer::fit(kind, text), val_fraction)
    }

    /// Loads `spec`'s text with an existing tokenizer (fine-tuning keeps its base run's).
    pub fn load_with(spec: &DataSpec, tokenizer: Tokenizer) -> Result<Self, DataError> {
        let specials = tokenizer.has_specials();
        Self::load_inner(spec, Some(tokenizer), specials)
    }

    fn with_tokenizer(text: &str, tokenizer: Tokenizer, val_fraction: f64) -> Self {
        let ids = tokenizer.encode(text);
        let n_train = ((ids.len() as f64) * (1.0 - val_fraction.clamp(0.0, 0.5))).round() as usize;
        let val = ids[n_train..].to_vec();
        let mut train = ids;
        train.truncate(n_train);
        Self {
            tokenizer,
            train: train.into(),
            val: val.into(),
            shards: None,
            n_chars: text.chars().count(),
            preview: text.chars().take(2_000).collect(),
            examples_train: Vec::new(),
            examples_val: Vec::new(),
            relations_train: Vec::new(),
            relations_val: Vec::new(),
        }
    }

    /// The tokens of one split.
    pub fn split(&self, split: Split) -> &Tokens {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }

    /// Fails when either split cannot hold one example of `context + 1` tokens.
    pub fn check_context(&self, context: usize) -> Result<(), DataError> {
        for (what, ids) in [
            ("train split", &self.train),
            ("validation split", &self.val),
        ] {
            if ids.len() < context + 2 {
                return Err(DataError::TooShort {
                    what: what.to_string(),
                    tokens: ids.len(),
                    context,
                    needed: context + 2,
                });
            }
        }
        Ok(())
    }

    /// `batch_size` windows of `len` tokens at uniform random offsets, row-major.
    pub fn sample_windows(
        &self,
        split: Split,
        batch_size: usize,
        len: usize,
        rng: &mut StdRng,
    ) -> Vec<i64> {
        let ids = self.split(split);
        let max_start = ids.len().saturating_sub(len);
        let mut out = Vec::with_capacity(batch_size * len);
        for _ in 0..batch_size {
            let start = rng.random_range(0..=max_start);
            ids.extend_i64(start..start + len, &mut out);
        }
        out
    }

    /// Consecutive non-overlapping windows of `len` tokens of `split` (at most `limit`).
    pub fn windows(&self, split: Split, len: usize, limit: usize) -> Vec<Vec<u32>> {
        let ids = self.split(split);
        (0..(ids.len() / len.max(1)).min(limit))
            .map(|w| ids.to_vec(w * len..(w + 1) * len))
            .collect()
    }

    /// Draws `batch_size` windows at uniform random offsets, as nanoGPT's `get_batch` does.
    pub fn sample_batch(
        &self,
        split: Split,
        batch_size: usize,
        context: usize,
        rng: &mut StdRng,
    ) -> Batch {
        let ids = self.split(split);
        let max_start = ids.len() - context - 1;
        let mut inputs = Vec::with_capacity(batch_size * context);
        let mut targets = Vec::with_capacity(batch_size * context);
        for _ in 0..batch_size {
            let start = rng.random_range(0..=max_start);
            ids.extend_i64(start..start + context, &mut inputs);
            ids.extend_i64(start + 1..start + context + 1, &mut targets);
        }
        Batch {
            batch_size,
            context,
            inputs,
            targets,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A pretrained tokenizer with ChatML's template and special tokens.
    pub(crate) fn chat_tokenizer() -> Tokenizer {
        let text = "user assistant system Hello there! What is two plus two? It is four.";
        let json = crate::data::tokenizer::BpeModel::train(std::iter::once(text), 300).json;
        let mut hf: tokenizers::Tokenizer = json.parse().unwrap();
        hf.add_special_tokens([
            tokenizers::AddedToken::from("<|im_start|>", true),
            tokenizers::AddedToken::from("<|im_end|>", true),
        ])
        .unwrap();
        let end = hf.token_to_id("<|im_end|>").unwrap();
        let model =
            crate::data::tokenizer::BpeModel::from_json(hf.to_string(false).unwrap()).unwrap();
        Tokenizer::Pretrained {
            model,
            specials: crate::data::tokenizer::PretrainedSpecials {
                eos: vec![end],
                chat_template: Some(
                    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}".into(),
                ),
                ..Default::default()
            },
        }
    }

    #[test]
    fn chat_data_learns_the_assistant_turns_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.jsonl");
        let line = r#"{"messages": [{"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "It is four."}, {"role": "user", "content": "Hello there!"}, {"role": "assistant", "content": "Hello!"}]}"#;
        std::fs::write(&path, format!("{line}\n\n{line}\n")).unwrap();
        let spec = DataSpec {
            source: DataSource::Chat { path: path.clone() },
            val_fraction: 0.25,
            ..DataSpec::default()
        };
        let corpus = Corpus::load_with(&spec, chat_tokenizer()).unwrap();
        let all: Vec<&Example> = corpus
            .examples_train
            .iter()
            .chain(&corpus.examples_val)
            .collect();
        assert_eq!(all.len(), 4, "one example per assistant turn");
        let tok = &corpus.tokenizer;
        let answer = |e: &Example| tok.decode(&e.ids[e.prompt_len..]);
        let prompt = |e: &Example| tok.decode(&e.ids[..e.prompt_len]);
        assert_eq!(answer(all[0]), "It is four.<|im_end|>\n");
        assert_eq!(
            prompt(all[0]),
            "<|im_start|>user\nWhat is two plus two?<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(answer(all[1]), "Hello!<|im_end|>\n");
        assert!(
            prompt(all[1]).contains("It is four.<|im_end|>"),
            "{}",
            prompt(all[1])
        );

        // A tokenizer without a template, and a malformed line, are refused naming the cause.
        let err = Corpus::load_with(&spec, Tokenizer::Byte { specials: false })
            .unwrap_err()
            .to_string();
        assert!(err.contains("chat template"), "{err}");
        std::fs::write(&path, format!("{line}\n{{\"text\": \"x\"}}\n")).unwrap();
        let err = Corpus::load_with(&spec, chat_tokenizer())
            .unwrap_err()
            .to_string();
        assert!(err.contains("chat.jsonl:2"), "{err}");
    }

    #[test]
    fn split_is_contiguous_ninety_ten() {
        let text: String = (0..1000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let corpus = Corpus::from_text(&text, TokenizerKind::Char, 0.1);
        assert_eq!(corpus.train.len(), 900);
        assert_eq!(corpus.val.len(), 100);
        assert_eq!(
            corpus.tokenizer.decode(&corpus.val.to_vec(0..100)),
            &text[900..]
        );
    }

    #[test]
    fn batch_targets_are_inputs_shifted_by_one() {
        let corpus = Corpus::from_text(&generated::story_text(1, 5_000), TokenizerKind::Char, 0.1);
        let mut rng = StdRng::seed_from_u64(0);
        let batch = corpus.sample_batch(Split::Train, 4, 16, &mut rng);
        for row in 0..4 {
            let x = &batch.inputs[row * 16..(row + 1) * 16];
            let y = &batch.targets[row * 16..(row + 1) * 16];
            assert_eq!(
                &x[1..],
                &y[..15],
                "row {row}: targets are inputs shifted left"
            );
        }
    }

    #[test]
    fn instruction_batches_train_on_responses_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sft.tsv");
        std::fs::write(&path, "hi\tyo\nab\tcd\nxy\tzz\n").unwrap();
        let spec = DataSpec {
            source: DataSource::PromptResponse { path },
            tokenizer: TokenizerKind::Char,
            val_fraction: 0.34,
            shards: None,
        };
        let corpus = Corpus::load(&spec).unwrap();
        assert_eq!(
            (corpus.examples_train.len(), corpus.examples_val.len()),
            (2, 1)
        );
        let mut rng = StdRng::seed_from_u64(1);
        let (inputs, labels) = corpus.sample_instruction_batch(Split::Train, 8, 8, &mut rng);
        let tok = &corpus.tokenizer;
        let pad = i64::from(tok.special(crate::data::Special::Pad).unwrap());
        for row in 0..8 {
            let x = &inputs[row * 8..(row + 1) * 8];
            let y = &labels[row * 8..(row + 1) * 8];
            // "ab\ncd\n": prompt is 3 tokens; targets of positions 2..5 are "c", "d", "\n".
            let predicted: Vec<usize> = (0..8).filter(|&t| y[t] != IGNORE).collect();
            assert_eq!(
                predicted,
                vec![2, 3, 4],
                "only the response tokens are targets"
            );
            assert_eq!(&x[6..], &[pad, pad], "padded past the example");
            let text = tok.decode(&predicted.iter().map(|&t| y[t] as u32).collect::<Vec<_>>());
            assert!(text == "yo\n" || text == "cd\n", "{text:?}");
        }
        // An epoch is one row of the context per example.
        assert_eq!(corpus.epoch_tokens(8), corpus.examples_train.len() * 8);
        assert_eq!(
            corpus.steps_per_epoch(4, 8) * 4 * 8,
            corpus.epoch_tokens(8).div_ceil(4 * 8) * 4 * 8
        );
    }

    #[test]
    fn invalid_utf8_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.txt");
        std::fs::write(&path, b"line one\nline two\nbad \xff byte\n").unwrap();
        let err = read_text_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.txt:3:"),
            "message names file and line: {err}"
        );
    }

    #[test]
    fn a_runs_epoch_is_its_recorded_dataset_tokens_or_its_text_counted_again() {
        let dir = tempfile::tempdir().unwrap();
        let spec = DataSpec {
            source: DataSource::Generated {
                seed: 4,
                n_chars: 5_000,
            },
            ..DataSpec::default()
        };
        assert_eq!(
            run_epoch_tokens(dir.path(), &spec),
            None,
            "no tokenizer yet"
        );
        let corpus = Corpus::load(&spec).unwrap();
        std::fs::write(
            dir.path().join("tokenizer.json"),
            serde_json::to_string(&corpus.tokenizer).unwrap(),
        )
        .unwrap();
        assert_eq!(
            run_epoch_tokens(dir.path(), &spec),
            Some(corpus.train.len()),
            "the training split the run trained on"
        );
        let recorded = ShardsIdentity {
            version: 2,
            checksum: "abc".into(),
            train_tokens: 1_200_000,
        };
        record_shards(dir.path(), &recorded).unwrap();
        assert_eq!(run_epoch_tokens(dir.path(), &spec), Some(1_200_000));
        // What a run records when it starts comes first.
        record_epoch_tokens(dir.path(), 4_096).unwrap();
        assert_eq!(run_epoch_tokens(dir.path(), &spec), Some(4_096));
        assert_eq!(
            describe_epochs(300, 9_600.0, Some(1_200_000)),
            "300 steps = 2.4 epochs of 1.2M tokens"
        );
        assert_eq!(describe_epochs(5, 8.0, None), "5 steps (epochs unknown)");
    }
}
