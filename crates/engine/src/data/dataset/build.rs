//! Building a dataset from its recipe: read, de-duplicate, split, transform, tokenize, mix.

use super::{DatasetError, DatasetRecipe, LinkRecipe, SplitMode, SplitSpec, TransformSpec};
use crate::data::record::{Record, RelationPair, TextExample};
use crate::data::sources::{Progress, read_source};
use crate::data::tokenizer::{Tokenizer, TokenizerKind};
use crate::data::transforms::{self, RaftOptions, SymbolOptions};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
