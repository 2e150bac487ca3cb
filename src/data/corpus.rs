//! A text source turned into a tokenized train/val split, and the random batches drawn from it.

use super::generated;
use super::tokenizer::{Tokenizer, TokenizerKind};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a dataset's text comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// Built-in generated sentences (see [`generated::story_text`]).
    Generated { seed: u64, n_chars: usize },
    /// A UTF-8 text file.
    TextFile { path: PathBuf },
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
    pub fn describe(&self) -> String {
        match self {
            DataSource::Generated { seed, n_chars } => {
                format!("generated stories ({n_chars} chars, seed {seed})")
            }
            DataSource::TextFile { path } => path.display().to_string(),
        }
    }
}

/// What a run trains on: a source, a tokenizer and the validation share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataSpec {
    pub source: DataSource,
    pub tokenizer: TokenizerKind,
    /// The last `val_fraction` of the text is validation (contiguous, as nanoGPT splits).
    pub val_fraction: f64,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            source: DataSource::default(),
            tokenizer: TokenizerKind::Char,
            val_fraction: 0.1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid UTF-8 at byte {byte_offset}")]
    InvalidUtf8 {
        path: PathBuf,
        line: usize,
        byte_offset: usize,
    },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{what}: {tokens} tokens is too short for context {context} (needs at least {needed})")]
    TooShort {
        what: String,
        tokens: usize,
        context: usize,
        needed: usize,
    },
}

/// Reads a UTF-8 text file; an invalid byte is reported with its line number.
pub fn read_text_file(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
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
            byte_offset,
        }
    })
}

/// A train or validation split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

/// A tokenized corpus, split into train and validation.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub tokenizer: Tokenizer,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    /// Characters in the source text.
    pub n_chars: usize,
    /// The first characters of the text, for previews.
    pub preview: String,
}

/// One batch of next-token examples: `inputs[b][t]` predicts `targets[b][t]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub batch_size: usize,
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
        let text = match &spec.source {
            DataSource::Generated { seed, n_chars } => generated::story_text(*seed, *n_chars),
            DataSource::TextFile { path } => read_text_file(path)?,
        };
        let mut corpus = Self::from_text(&text, spec.tokenizer, spec.val_fraction);
        corpus.tokenizer = corpus.tokenizer.with_specials(specials);
        Ok(corpus)
    }

    /// Tokenizes `text` and splits it: the first `1 - val_fraction` of the tokens train.
    pub fn from_text(text: &str, kind: TokenizerKind, val_fraction: f64) -> Self {
        Self::with_tokenizer(text, Tokenizer::fit(kind, text), val_fraction)
    }

    /// Loads `spec`'s text with an existing tokenizer (fine-tuning keeps its base run's).
    pub fn load_with(spec: &DataSpec, tokenizer: Tokenizer) -> Result<Self, DataError> {
        let text = match &spec.source {
            DataSource::Generated { seed, n_chars } => generated::story_text(*seed, *n_chars),
            DataSource::TextFile { path } => read_text_file(path)?,
        };
        Ok(Self::with_tokenizer(&text, tokenizer, spec.val_fraction))
    }

    fn with_tokenizer(text: &str, tokenizer: Tokenizer, val_fraction: f64) -> Self {
        let ids = tokenizer.encode(text);
        let n_train = ((ids.len() as f64) * (1.0 - val_fraction.clamp(0.0, 0.5))).round() as usize;
        let val = ids[n_train..].to_vec();
        let mut train = ids;
        train.truncate(n_train);
        Self {
            tokenizer,
            train,
            val,
            n_chars: text.chars().count(),
            preview: text.chars().take(2_000).collect(),
        }
    }

    pub fn split(&self, split: Split) -> &[u32] {
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
            out.extend(ids[start..start + len].iter().map(|&i| i64::from(i)));
        }
        out
    }

    /// Consecutive non-overlapping windows of `len` tokens of `split` (at most `limit`).
    pub fn windows(&self, split: Split, len: usize, limit: usize) -> Vec<Vec<u32>> {
        self.split(split)
            .chunks_exact(len)
            .take(limit)
            .map(<[u32]>::to_vec)
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
            inputs.extend(ids[start..start + context].iter().map(|&i| i64::from(i)));
            targets.extend(
                ids[start + 1..start + context + 1]
                    .iter()
                    .map(|&i| i64::from(i)),
            );
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
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn split_is_contiguous_ninety_ten() {
        let text: String = (0..1000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let corpus = Corpus::from_text(&text, TokenizerKind::Char, 0.1);
        assert_eq!(corpus.train.len(), 900);
        assert_eq!(corpus.val.len(), 100);
        assert_eq!(corpus.tokenizer.decode(&corpus.val), &text[900..]);
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
}
