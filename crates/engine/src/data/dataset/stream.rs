//! Building a dataset into token shards. Text (no transform) streams: the sources are read in
//! blocks twice, once to drop duplicates, count documents and sample text for the tokenizer,
//! once to tokenize in parallel, so memory does not grow with the corpus. The other transforms
//! build their examples in memory (they are records, not corpora) and write them with their
//! loss masks.

use super::build::{Content, Dataset, Leak, SourceStats, mix_counts};
use super::{DatasetError, DatasetRecipe, SplitMode, TransformSpec};
use crate::data::shards::{
    self, DatasetSummary, MappedTokens, SHARDS_FORMAT, ShardError, ShardManifest, SplitFiles,
    SplitWriter, TOKENS_DIR, TokenWidth, Tokens,
};
use crate::data::sources::{DocSplit, SourceError, SourceKind, folder_files, read_source};
use crate::data::tokenizer::{BpeModel, Tokenizer, TokenizerKind};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hasher;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes of text the BPE tokenizer is trained on unless told otherwise.
pub const DEFAULT_TOKENIZER_SAMPLE: u64 = 32 << 20;

/// How a build into shards runs.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    /// Bytes of text (spread over the sources) a BPE tokenizer is trained on.
    pub tokenizer_sample_bytes: u64,
    /// Tokens per shard file.
    pub shard_tokens: usize,
}

impl Default for ShardOptions {
    fn default() -> Self {
        Self {
            tokenizer_sample_bytes: DEFAULT_TOKENIZER_SAMPLE,
            shard_tokens: shards::SHARD_TOKENS,
        }
    }
}

impl ShardOptions {
    /// The default options with the BPE tokenizer trained on `mb` megabytes of text (the CLI's
    /// `--tokenizer-sample`); refused unless a positive number.
    pub fn with_tokenizer_sample_mb(mb: f64) -> Result<Self, DatasetError> {
        if !(mb > 0.0 && mb.is_finite()) {
            return Err(DatasetError::recipe(
                "tokenizer-sample",
                format!("{mb}: must be a positive number of megabytes"),
            ));
        }
        Ok(Self {
            tokenizer_sample_bytes: (mb * 1e6) as u64,
            ..Self::default()
        })
    }
}

/// Where a build stands: its stage and the bytes of source text done of those to do.
#[derive(Debug, Clone, Copy)]
pub struct BuildStatus<'a> {
    /// What the build is doing.
    pub stage: &'a str,
    /// Bytes done in this stage.
    pub done_bytes: u64,
    /// Bytes this stage does (0 when unknown).
    pub total_bytes: u64,
}

/// Receives the build's status as it goes.
pub type StatusFn<'a> = &'a (dyn Fn(&BuildStatus<'_>) + Sync);

/// A built dataset on disk: its manifest and tokenizer.
#[derive(Debug, Clone)]
pub struct BuiltShards {
    /// The manifest written.
    pub manifest: ShardManifest,
    /// The tokenizer the tokens are ids of.
    pub tokenizer: Tokenizer,
}

fn storage(e: ShardError) -> DatasetError {
    DatasetError::Storage(e.to_string())
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> DatasetError + '_ {
    move |e| DatasetError::Storage(format!("{}: {e}", path.display()))
}

/// Builds `recipe` into the dataset folder `dir`: token shards under `tokens/`, the recipe and
/// the tokenizer beside them. The new shards replace the old ones only once complete, so a
/// failed or cancelled build leaves the folder as it was. `tokenizer`: use this one instead of
/// fitting one.
pub fn build_shards(
    recipe: &DatasetRecipe,
    dir: &Path,
    tokenizer: Option<Tokenizer>,
    options: &ShardOptions,
    status: StatusFn<'_>,
    cancel: &AtomicBool,
) -> Result<BuiltShards, DatasetError> {
    if let Some(first) = recipe.validate().into_iter().next() {
        return Err(first);
    }
    // The outermost folder this build creates, taken away again if the build fails.
    let created = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .last()
        .map(Path::to_path_buf);
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    let building = dir.join("tokens.building");
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(io_at(&building))?;
    }
    std::fs::create_dir_all(&building).map_err(io_at(&building))?;
    let result = match recipe.transform {
        TransformSpec::None => stream_text(recipe, &building, tokenizer, options, status, cancel),
        _ => write_records(recipe, &building, tokenizer, options, status, cancel),
    };
    let (mut manifest, tokenizer) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(created.as_deref().unwrap_or(&building));
            return Err(e);
        }
    };
    manifest.version = shards::read_manifest(dir).map_or(1, |m| m.version + 1);
    shards::write_manifest(&building, &manifest).map_err(storage)?;
    // Swap the complete folder into place.
    let tokens = dir.join(TOKENS_DIR);
    let old = dir.join("tokens.old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_at(&old))?;
    }
    if tokens.exists() {
        std::fs::rename(&tokens, &old).map_err(io_at(&tokens))?;
    }
    std::fs::rename(&building, &tokens).map_err(io_at(&tokens))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_at(&old))?;
    }
    super::save(dir, recipe, &tokenizer).map_err(io_at(dir))?;
    Ok(BuiltShards {
        manifest,
        tokenizer,
    })
}

/// One event of a source read as a stream of documents.
enum Piece<'a> {
    /// A document starts at `line` of `file` (line 0: `file` is the whole origin).
    Start { file: &'a str, line: usize },
    /// Text of the current document.
    Text(&'a str),
    /// The current document ends.
    End,
}

type OnPiece<'f> = dyn FnMut(Piece<'_>) -> Result<(), DatasetError> + 'f;

const BLOCK: usize = 1 << 20;

/// Reads a UTF-8 file in blocks that end at a line end (a byte order mark dropped); `f` gets
/// each block and the line it starts on. Invalid UTF-8 and empty files are errors naming the
/// file and line.
fn for_each_block(
    path: &Path,
    f: &mut dyn FnMut(&str, usize) -> Result<(), DatasetError>,
) -> Result<(), DatasetError> {
    let fail =
        |line: Option<usize>, m: String| DatasetError::Source(SourceError::at(path, line, m));
    let mut file =
        std::fs::File::open(path).map_err(|e| fail(None, format!("cannot read: {e}")))?;
    let mut block = vec![0u8; BLOCK];
    let mut carry: Vec<u8> = Vec::with_capacity(2 * BLOCK);
    let (mut at_start, mut line, mut any_text) = (true, 1usize, false);
    loop {
        let n = file
            .read(&mut block)
            .map_err(|e| fail(None, format!("cannot read: {e}")))?;
        let eof = n == 0;
        carry.extend_from_slice(&block[..n]);
        if at_start {
            if carry.starts_with(crate::data::sources::UTF8_BOM) {
                carry.drain(..3);
                at_start = false;
            } else if !crate::data::sources::UTF8_BOM.starts_with(&carry) || eof {
                at_start = false;
            }
        }
        let valid = match std::str::from_utf8(&carry) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() && !eof => e.valid_up_to(),
            Err(e) => {
                let at = line
                    + carry[..e.valid_up_to()]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count();
                let m = if e.error_len().is_none() {
                    "invalid UTF-8: the file ends inside a character"
                } else {
                    "invalid UTF-8 (the file must be UTF-8 text)"
                };
                return Err(fail(Some(at), m.to_string()));
            }
        };
        let cut = if eof {
            valid
        } else {
            match carry[..valid].iter().rposition(|&b| b == b'\n') {
                Some(p) => p + 1,
                None if valid > 4 * BLOCK => valid,
                None => 0,
            }
        };
        if cut > 0 {
            let s = std::str::from_utf8(&carry[..cut]).expect("checked above");
            any_text |= !s.trim().is_empty();
            f(s, line)?;
            line += s.bytes().filter(|&b| b == b'\n').count();
            carry.drain(..cut);
        }
        if eof {
            break;
        }
    }
    if !any_text {
        return Err(fail(None, "the file is empty".into()));
    }
    Ok(())
}

/// Streams one text file as documents cut by `split` (a folder's whole-file document starts
/// with its `title`).
fn stream_file(
    path: &Path,
    split: DocSplit,
    title: Option<&str>,
    on: &mut OnPiece<'_>,
) -> Result<(), DatasetError> {
    let file = path.display().to_string();
    match split {
        DocSplit::Whole => {
            on(Piece::Start {
                file: &file,
                line: 1,
            })?;
            if let Some(t) = title {
                on(Piece::Text(t))?;
                on(Piece::Text("\n"))?;
            }
            for_each_block(path, &mut |s, _| on(Piece::Text(s)))?;
            on(Piece::End)
        }
        DocSplit::Lines => for_each_block(path, &mut |s, first| {
            for (i, l) in s.lines().enumerate() {
                if !l.trim().is_empty() {
                    on(Piece::Start {
                        file: &file,
                        line: first + i,
                    })?;
                    on(Piece::Text(l))?;
                    on(Piece::End)?;
                }
            }
            Ok(())
        }),
        DocSplit::Paragraphs => {
            let mut open = false;
            for_each_block(path, &mut |s, first| {
                for (i, l) in s.lines().enumerate() {
                    if l.trim().is_empty() {
                        if open {
                            on(Piece::End)?;
                            open = false;
                        }
                    } else {
                        if !open {
                            on(Piece::Start {
                                file: &file,
                                line: first + i,
                            })?;
                            open = true;
                        }
                        on(Piece::Text(l))?;
                        on(Piece::Text("\n"))?;
                    }
                }
                Ok(())
            })?;
            if open {
                on(Piece::End)?;
            }
            Ok(())
        }
    }
}

/// Streams the documents of one source: text files and folders in blocks, other kinds record
/// by record.
fn stream_source(source: &SourceKind, on: &mut OnPiece<'_>) -> Result<(), DatasetError> {
    match source {
        SourceKind::Text { path, documents } => stream_file(path, *documents, None, on),
        SourceKind::Folder {
            path,
            glob,
            documents,
        } => {
            for file in folder_files(path, glob)? {
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let title = (*documents == DocSplit::Whole).then_some(stem.as_str());
                stream_file(&file, *documents, title, on)?;
            }
            Ok(())
        }
        other => {
            for r in read_source(other, &|_, _| {})? {
                on(Piece::Start {
                    file: &r.origin,
                    line: 0,
                })?;
                on(Piece::Text(&r.text_ref()))?;
                on(Piece::End)?;
            }
            Ok(())
        }
    }
}

/// Bytes of the files a source reads (0 when not known before reading).
fn source_size(source: &SourceKind) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    match source {
        SourceKind::Text { path, .. }
        | SourceKind::Jsonl { path, .. }
        | SourceKind::Table { path, .. }
        | SourceKind::Pairs { path } => size(path),
        SourceKind::Folder { path, glob, .. } => folder_files(path, glob)
            .map(|files| files.iter().map(|f| size(f)).sum())
            .unwrap_or(0),
        SourceKind::Generated { .. } => 0,
    }
}

/// Text taken for training the tokenizer: runs of `RUN` bytes spread evenly over the stream.
struct Sampler {
    budget: u64,
    window: u64,
    next_at: u64,
    left: usize,
    runs: Vec<String>,
    taken: u64,
}

const RUN: usize = 64 << 10;

impl Sampler {
    fn new(budget: u64, total: u64) -> Self {
        let window = if total > budget && budget > 0 {
            (total / budget.div_ceil(RUN as u64)).max(RUN as u64)
        } else {
            RUN as u64
        };
        Self {
            budget,
            window,
            next_at: 0,
            left: 0,
            runs: Vec::new(),
            taken: 0,
        }
    }

    /// Offers `text`, found at byte `pos` of the stream.
    fn offer(&mut self, pos: u64, text: &str) {
        let mut at = 0usize;
        while at < text.len() && self.taken < self.budget {
            if self.left == 0 {
                let end_pos = pos + text.len() as u64;
                if self.next_at >= end_pos {
                    return;
                }
                let mut start = (self.next_at.max(pos + at as u64) - pos) as usize;
                while !text.is_char_boundary(start) {
                    start += 1;
                }
                at = start;
                self.left = RUN;
                self.next_at = pos + start as u64 + self.window;
                self.runs.push(String::new());
            }
            let mut end = (at + self.left).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if end <= at {
                self.left = 0;
                continue;
            }
            if let Some(run) = self.runs.last_mut() {
                run.push_str(&text[at..end]);
            }
            self.taken += (end - at) as u64;
            self.left -= end - at;
            at = end;
        }
    }
}

/// What the first pass learns about one source.
#[derive(Default)]
struct SourceScan {
    records: usize,
    duplicates: usize,
    kept: usize,
    bytes_kept: usize,
    /// Normalized-text hash and origin of each kept document (random splits only).
    norm: Vec<(u64, u32, u32)>,
}

fn normalized_words(h: &mut impl Hasher, text: &str, first: &mut bool) {
    for w in text.split_whitespace() {
        if !*first {
            h.write(b" ");
        }
        *first = false;
        h.write(w.to_lowercase().as_bytes());
    }
}

/// A piece of text to tokenize: of source `source`, with documents starting at byte `marks`.
struct Chunk {
    source: usize,
    text: String,
    marks: Vec<usize>,
}

/// Tokenizes a chunk: its ids and the token index where each marked document starts.
fn encode_chunk(tokenizer: &Tokenizer, chunk: &Chunk) -> (Vec<u32>, Vec<usize>) {
    if let Tokenizer::Bpe { model, .. } | Tokenizer::Pretrained { model, .. } = tokenizer {
        return model.encode_marked(&chunk.text, &chunk.marks);
    }
    let mut ids = Vec::with_capacity(chunk.text.len());
    let mut positions = Vec::with_capacity(chunk.marks.len());
    let mut from = 0;
    for &m in &chunk.marks {
        ids.extend(tokenizer.encode(&chunk.text[from..m]));
        positions.push(ids.len());
        from = m;
    }
    ids.extend(tokenizer.encode(&chunk.text[from..]));
    (ids, positions)
}

/// Which of `n` documents validate, as [`super::build`]'s record split chooses them.
fn val_documents(n: usize, split: &super::SplitSpec, salt: u64) -> Vec<bool> {
    let n_val = if n < 2 {
        0
    } else {
        ((n as f64 * split.val_fraction).round() as usize).clamp(1, n - 1)
    };
    let mut order: Vec<usize> = (0..n).collect();
    if split.mode == SplitMode::RandomDocuments {
        order.shuffle(&mut StdRng::seed_from_u64(split.seed ^ (salt << 32)));
    }
    let mut val = vec![false; n];
    for &i in &order[n - n_val..] {
        val[i] = true;
    }
    val
}

/// One source stream's tokens with the ranges of its train and validation documents.
type Part = (Tokens, Vec<Range<usize>>, Vec<Range<usize>>);

/// Text (no transform) into shards, streaming.
fn stream_text(
    recipe: &DatasetRecipe,
    out: &Path,
    tokenizer: Option<Tokenizer>,
    options: &ShardOptions,
    status: StatusFn<'_>,
    cancel: &AtomicBool,
) -> Result<(ShardManifest, Tokenizer), DatasetError> {
    let cancelled = || {
        if cancel.load(Ordering::Relaxed) {
            Err(DatasetError::Cancelled)
        } else {
            Ok(())
        }
    };
    let token_split = recipe.split.mode == SplitMode::Contiguous;
    let sizes: Vec<u64> = recipe
        .sources
        .iter()
        .map(|s| source_size(&s.source))
        .collect();
    let known: u64 = sizes.iter().sum();

    // Pass 1: duplicates, documents, the tokenizer's sample and characters.
    let fit_bpe = tokenizer.is_none() && matches!(recipe.tokenizer, TokenizerKind::Bpe { .. });
    let fit_chars = tokenizer.is_none() && recipe.tokenizer == TokenizerKind::Char;
    let mut sampler = Sampler::new(
        if fit_bpe {
            options.tokenizer_sample_bytes
        } else {
            0
        },
        known,
    );
    let mut ascii = [false; 128];
    let mut other_chars: BTreeSet<char> = BTreeSet::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut keep: Vec<bool> = Vec::new();
    let mut files: Vec<String> = Vec::new();
    let mut scans: Vec<SourceScan> = Vec::new();
    let mut pos = 0u64;
    let mut last_report = 0u64;
    for s in &recipe.sources {
        let mut scan = SourceScan::default();
        let mut content = std::collections::hash_map::DefaultHasher::new();
        let mut norm = std::collections::hash_map::DefaultHasher::new();
        let (mut first_word, mut doc_bytes, mut origin) = (true, 0usize, (0u32, 0u32));
        stream_source(&s.source, &mut |piece| {
            match piece {
                Piece::Start { file, line } => {
                    content = Default::default();
                    norm = Default::default();
                    first_word = true;
                    doc_bytes = 0;
                    if !token_split {
                        if files.last().is_none_or(|f| f != file) {
                            files.push(file.to_string());
                        }
                        origin = ((files.len() - 1) as u32, line as u32);
                    }
                }
                Piece::Text(t) => {
                    content.write(t.as_bytes());
                    if !token_split {
                        normalized_words(&mut norm, t, &mut first_word);
                    }
                    doc_bytes += t.len();
                    sampler.offer(pos, t);
                    if fit_chars {
                        for c in t.chars() {
                            match ascii.get_mut(c as usize) {
                                Some(seen) => *seen = true,
                                None => {
                                    other_chars.insert(c);
                                }
                            }
                        }
                    }
                    pos += t.len() as u64;
                    if pos - last_report >= 4 * BLOCK as u64 {
                        last_report = pos;
                        cancelled()?;
                        status(&BuildStatus {
                            stage: "reading: duplicates, documents and the tokenizer's sample",
                            done_bytes: pos,
                            total_bytes: known,
                        });
                    }
                }
                Piece::End => {
                    scan.records += 1;
                    let kept = !recipe.dedup || seen.insert(content.finish());
                    keep.push(kept);
                    if kept {
                        scan.kept += 1;
                        scan.bytes_kept += doc_bytes;
                        if !token_split {
                            scan.norm.push((norm.finish(), origin.0, origin.1));
                        }
                    } else {
                        scan.duplicates += 1;
                    }
                }
            }
            Ok(())
        })?;
        scans.push(scan);
    }
    drop(seen);
    let total_bytes = pos;

    // The tokenizer.
    let mut sample_bytes = None;
    let tokenizer = match tokenizer {
        Some(t) => t,
        None => match recipe.tokenizer {
            TokenizerKind::Bpe { vocab_size } => {
                status(&BuildStatus {
                    stage: &format!(
                        "training the BPE tokenizer on a sample of {:.1} MB",
                        sampler.taken as f64 / 1e6
                    ),
                    done_bytes: 0,
                    total_bytes: 0,
                });
                sample_bytes = Some(sampler.taken);
                let runs = std::mem::take(&mut sampler.runs);
                Tokenizer::Bpe {
                    model: BpeModel::train(runs.iter().map(String::as_str), vocab_size),
                    specials: false,
                }
            }
            TokenizerKind::Char => {
                let mut chars: BTreeSet<char> = other_chars;
                chars.extend((0..128u8).filter(|&b| ascii[b as usize]).map(char::from));
                if scans.iter().any(|s| s.kept > 1) {
                    chars.insert('\n');
                }
                Tokenizer::Char {
                    chars: chars.into_iter().collect(),
                    specials: false,
                }
            }
            kind => Tokenizer::fit_texts(kind, &[]),
        },
    };
    drop(sampler);
    // Stored ids are the tokenizer's plain encodings, all below its base size.
    let width = TokenWidth::for_vocab(tokenizer.base_size());

    // Which documents validate (a random split), and the last kept document of each part of
    // each source: documents of a part are separated by a newline, as the text of the part is
    // joined.
    let val_flags: Vec<Vec<bool>> = scans
        .iter()
        .enumerate()
        .map(|(i, scan)| {
            if token_split {
                Vec::new()
            } else {
                val_documents(scan.kept, &recipe.split, i as u64)
            }
        })
        .collect();
    let last_of_part: Vec<[Option<usize>; 2]> = scans
        .iter()
        .zip(&val_flags)
        .map(|(scan, flags)| {
            let mut last = [None, None];
            for k in 0..scan.kept {
                last[usize::from(flags.get(k).copied().unwrap_or(false))] = Some(k);
            }
            last
        })
        .collect();

    // Pass 2: tokenize in parallel into one temporary stream per source.
    let tmp = out.join("sources");
    std::fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
    let mut writers: Vec<SplitWriter> = (0..recipe.sources.len())
        .map(|i| {
            SplitWriter::create(
                &tmp,
                &format!("source-{i}"),
                width,
                usize::MAX,
                false,
                false,
            )
        })
        .collect::<Result<_, _>>()
        .map_err(storage)?;
    let threads = rayon::current_num_threads().max(1);
    let mut batch: Vec<Chunk> = Vec::new();
    let mut done = 0u64;
    let flush = |batch: &mut Vec<Chunk>,
                 writers: &mut Vec<SplitWriter>,
                 done: &mut u64|
     -> Result<(), DatasetError> {
        let encoded: Vec<(Vec<u32>, Vec<usize>)> = batch
            .par_iter()
            .map(|c| encode_chunk(&tokenizer, c))
            .collect();
        for (chunk, (ids, positions)) in batch.iter().zip(encoded) {
            let w = &mut writers[chunk.source];
            let mut from = 0;
            for &p in &positions {
                w.push(&ids[from..p]).map_err(storage)?;
                w.start_document().map_err(storage)?;
                from = p;
            }
            w.push(&ids[from..]).map_err(storage)?;
            *done += chunk.text.len() as u64;
        }
        batch.clear();
        cancelled()?;
        status(&BuildStatus {
            stage: "tokenizing",
            done_bytes: *done,
            total_bytes,
        });
        Ok(())
    };
    let mut doc = 0usize;
    for (i, s) in recipe.sources.iter().enumerate() {
        let mut kept_index = 0usize;
        let mut kept_doc = false;
        let mut current = Chunk {
            source: i,
            text: String::with_capacity(BLOCK + 4096),
            marks: Vec::new(),
        };
        stream_source(&s.source, &mut |piece| {
            match piece {
                Piece::Start { .. } => {
                    kept_doc = keep[doc];
                    doc += 1;
                    if kept_doc {
                        current.marks.push(current.text.len());
                    }
                }
                Piece::Text(t) if kept_doc => current.text.push_str(t),
                Piece::Text(_) => {}
                Piece::End => {
                    if kept_doc {
                        let part =
                            usize::from(val_flags[i].get(kept_index).copied().unwrap_or(false));
                        if last_of_part[i][part] != Some(kept_index) {
                            current.text.push('\n');
                        }
                        kept_index += 1;
                    }
                }
            }
            if current.text.len() >= BLOCK {
                batch.push(std::mem::replace(
                    &mut current,
                    Chunk {
                        source: i,
                        text: String::with_capacity(BLOCK + 4096),
                        marks: Vec::new(),
                    },
                ));
                if batch.len() >= 2 * threads {
                    flush(&mut batch, &mut writers, &mut done)?;
                }
            }
            Ok(())
        })?;
        if !current.text.is_empty() || !current.marks.is_empty() {
            batch.push(current);
        }
        flush(&mut batch, &mut writers, &mut done)?;
    }
    drop(keep);
    let streams: Vec<SplitFiles> = writers
        .into_iter()
        .map(SplitWriter::finish)
        .collect::<Result<_, _>>()
        .map_err(storage)?;

    // Split, mix and write the shards.
    status(&BuildStatus {
        stage: "writing shards",
        done_bytes: 0,
        total_bytes: 0,
    });
    let mut parts: Vec<Part> = Vec::new();
    let mut leak_index: HashMap<u64, (u32, u32)> = HashMap::new();
    let mut val_norms: Vec<(u64, u32, u32)> = Vec::new();
    for (i, stream) in streams.iter().enumerate() {
        let tokens = MappedTokens::open_split(&tmp, stream, width, &out.join(super::DATASET_FILE))
            .map_err(storage)?;
        let tokens = Tokens::Mapped(std::sync::Arc::new(tokens));
        let starts = read_u64s(&tmp.join(&stream.docs_file))?;
        let len = stream.tokens;
        let docs: Vec<Range<usize>> = (0..starts.len())
            .map(|k| starts[k]..starts.get(k + 1).copied().unwrap_or(len))
            .collect();
        let (mut train, mut val) = (Vec::new(), Vec::new());
        if token_split {
            let n_train = ((len as f64) * (1.0 - recipe.split.val_fraction)).round() as usize;
            for d in docs {
                if d.start < n_train {
                    train.push(d.start..d.end.min(n_train));
                }
                if d.end > n_train {
                    val.push(d.start.max(n_train)..d.end);
                }
            }
        } else {
            let is_val = &val_flags[i];
            for (k, d) in docs.into_iter().enumerate() {
                let norm = scans[i].norm[k];
                if is_val[k] {
                    val.push(d);
                    val_norms.push(norm);
                } else {
                    train.push(d);
                    leak_index.entry(norm.0).or_insert((norm.1, norm.2));
                }
            }
        }
        parts.push((tokens, train, val));
    }
    let leakage = (!token_split).then(|| {
        let origin = |(f, l): (u32, u32)| {
            let file = &files[f as usize];
            if l == 0 {
                file.clone()
            } else {
                format!("{file}:{l}")
            }
        };
        val_norms
            .iter()
            .filter_map(|&(h, f, l)| {
                leak_index.get(&h).map(|&t| Leak {
                    val_origin: origin((f, l)),
                    train_origin: origin(t),
                })
            })
            .collect::<Vec<Leak>>()
    });
    let natural: Vec<usize> = parts
        .iter()
        .map(|(_, t, _)| t.iter().map(|r| r.len()).sum())
        .collect();
    let counts = mix_counts(&recipe.weights(), &natural, recipe.epoch_size);
    let mut train_w = SplitWriter::create(out, "train", width, options.shard_tokens, false, false)
        .map_err(storage)?;
    let mut val_w = SplitWriter::create(out, "val", width, options.shard_tokens, false, false)
        .map_err(storage)?;
    let mut stats = Vec::with_capacity(parts.len());
    for (i, (tokens, train, val)) in parts.iter().enumerate() {
        let mut left = counts[i];
        if natural[i] > 0 {
            'cycle: loop {
                for r in train {
                    if left == 0 {
                        break 'cycle;
                    }
                    let take = r.len().min(left);
                    copy_range(tokens, r.start..r.start + take, &mut train_w)?;
                    left -= take;
                }
            }
        }
        for r in val {
            copy_range(tokens, r.clone(), &mut val_w)?;
        }
        cancelled()?;
        let scan = &scans[i];
        stats.push(SourceStats {
            label: recipe.sources[i].source.describe(),
            weight: recipe.sources[i].weight,
            records: scan.records,
            duplicates: scan.duplicates,
            train_records: if token_split { scan.kept } else { train.len() },
            val_records: if token_split { 0 } else { val.len() },
            chars: scan.bytes_kept,
            train_tokens: natural[i],
            epoch_tokens: counts[i],
        });
    }
    drop(parts);
    let train = train_w.finish().map_err(storage)?;
    let val = val_w.finish().map_err(storage)?;
    std::fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
    let summary = DatasetSummary {
        epoch_tokens: stats.iter().map(|s| s.epoch_tokens).sum(),
        sources: stats,
        leakage,
        train_items: train.tokens,
        val_items: val.tokens,
        unit: "tokens".into(),
        tokenizer_sample_bytes: sample_bytes,
        source_bytes: total_bytes,
    };
    Ok((
        manifest_for(recipe, &tokenizer, width, summary, train, val),
        tokenizer,
    ))
}

fn manifest_for(
    recipe: &DatasetRecipe,
    tokenizer: &Tokenizer,
    width: TokenWidth,
    summary: DatasetSummary,
    train: SplitFiles,
    val: SplitFiles,
) -> ShardManifest {
    ShardManifest {
        format: SHARDS_FORMAT,
        version: 1,
        checksum: shards::manifest_checksum(&train, &val),
        width,
        vocab_size: tokenizer.vocab_size(),
        tokenizer_checksum: shards::tokenizer_checksum(tokenizer),
        recipe: recipe.clone(),
        summary,
        train,
        val,
    }
}

/// Copies `range` of `tokens` into `w` as one document, a million tokens at a time.
fn copy_range(
    tokens: &Tokens,
    range: Range<usize>,
    w: &mut SplitWriter,
) -> Result<(), DatasetError> {
    w.start_document().map_err(storage)?;
    let mut at = range.start;
    while at < range.end {
        let end = (at + (1 << 20)).min(range.end);
        w.push(&tokens.to_vec(at..end)).map_err(storage)?;
        at = end;
    }
    Ok(())
}

fn read_u64s(path: &Path) -> Result<Vec<usize>, DatasetError> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes")) as usize)
        .collect())
}

/// A dataset of examples or pairs (any transform but none), built in memory and written with
/// its loss masks.
fn write_records(
    recipe: &DatasetRecipe,
    out: &Path,
    tokenizer: Option<Tokenizer>,
    options: &ShardOptions,
    status: StatusFn<'_>,
    cancel: &AtomicBool,
) -> Result<(ShardManifest, Tokenizer), DatasetError> {
    let ds = Dataset::build(recipe, tokenizer, &|stage, frac| {
        status(&BuildStatus {
            stage,
            done_bytes: (frac * 1000.0) as u64,
            total_bytes: 1000,
        });
    })?;
    if cancel.load(Ordering::Relaxed) {
        return Err(DatasetError::Cancelled);
    }
    status(&BuildStatus {
        stage: "writing shards",
        done_bytes: 0,
        total_bytes: 0,
    });
    let tok = ds.tokenizer.clone();
    // Stored ids are the tokenizer's plain encodings, all below its base size.
    let width = TokenWidth::for_vocab(tok.base_size());
    let relations = matches!(ds.content, Content::Relations { .. });
    let examples = matches!(ds.content, Content::Examples { .. });
    let mut writers = ["train", "val"].map(|name| {
        SplitWriter::create(out, name, width, options.shard_tokens, examples, relations)
    });
    let [train_w, val_w] = &mut writers;
    let (train_w, val_w) = (
        train_w
            .as_mut()
            .map_err(|e| DatasetError::Storage(e.to_string()))?,
        val_w
            .as_mut()
            .map_err(|e| DatasetError::Storage(e.to_string()))?,
    );
    match &ds.content {
        Content::Text { train, val } => {
            for (w, ids) in [(&mut *train_w, train), (&mut *val_w, val)] {
                w.start_document().map_err(storage)?;
                w.push(ids).map_err(storage)?;
            }
        }
        Content::Examples { train, val } => {
            for (w, list) in [(&mut *train_w, train), (&mut *val_w, val)] {
                for e in list {
                    let ex = crate::data::corpus::Example::encode(&tok, &e.prompt, &e.answer);
                    let mask: Vec<bool> = (0..ex.ids.len()).map(|t| t >= ex.prompt_len).collect();
                    w.start_document().map_err(storage)?;
                    w.push_masked(&ex.ids, Some(&mask)).map_err(storage)?;
                }
            }
        }
        Content::Relations { train, val } => {
            for (w, list) in [(&mut *train_w, train), (&mut *val_w, val)] {
                for p in list {
                    let a = tok.encode(&p.a);
                    let b = tok.encode(&p.b);
                    w.start_document().map_err(storage)?;
                    w.pair(a.len() as u32, p.relation as u32).map_err(storage)?;
                    w.push(&a).map_err(storage)?;
                    w.push(&b).map_err(storage)?;
                }
            }
        }
    }
    let [train_w, val_w] = writers;
    let train = train_w.and_then(SplitWriter::finish).map_err(storage)?;
    let val = val_w.and_then(SplitWriter::finish).map_err(storage)?;
    let (train_items, val_items, unit) = ds.sizes();
    let summary = DatasetSummary {
        sources: ds.sources.clone(),
        leakage: ds.leakage.clone(),
        train_items,
        val_items,
        unit: unit.into(),
        epoch_tokens: ds.epoch_tokens(),
        tokenizer_sample_bytes: None,
        source_bytes: ds.sources.iter().map(|s| s.chars as u64).sum(),
    };
    Ok((manifest_for(recipe, &tok, width, summary, train, val), tok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::corpus::{Corpus, Split};
    use crate::data::dataset::{SourceSpec, SplitSpec};
    use crate::data::shards::OpenShards;
    use crate::data::transforms::SftOptions;

    fn build(recipe: &DatasetRecipe, dir: &Path, shard_tokens: usize) -> BuiltShards {
        let options = ShardOptions {
            shard_tokens,
            ..ShardOptions::default()
        };
        build_shards(
            recipe,
            dir,
            None,
            &options,
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap()
    }

    fn lines_recipe(dir: &Path) -> DatasetRecipe {
        let a: String = (0..300)
            .map(|i| format!("alpha line {i} of the first\n"))
            .collect();
        let b: String = (0..120)
            .map(|i| format!("beta {i}\n"))
            .chain(["alpha line 3 of the first\n".to_string()])
            .collect();
        std::fs::write(dir.join("a.txt"), a).unwrap();
        std::fs::write(dir.join("b.txt"), b).unwrap();
        let text = |name: &str| SourceKind::Text {
            path: dir.join(name),
            documents: DocSplit::Lines,
        };
        let mut recipe = DatasetRecipe {
            sources: vec![
                SourceSpec::new(text("a.txt")),
                SourceSpec::new(text("b.txt")),
            ],
            split: SplitSpec {
                mode: SplitMode::RandomDocuments,
                val_fraction: 0.2,
                seed: 5,
            },
            ..DatasetRecipe::default()
        };
        recipe.sources[1].weight = 2.5;
        recipe
    }

    #[test]
    fn text_shards_hold_the_tokens_documents_and_statistics_of_the_memory_build() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [SplitMode::RandomDocuments, SplitMode::Contiguous] {
            let mut recipe = lines_recipe(dir.path());
            recipe.split.mode = mode;
            let out = dir.path().join(format!("ds-{mode:?}"));
            // Shards of 50 tokens: documents and batches cross shard files.
            let built = build(&recipe, &out, 50);
            let memory = Dataset::build(&recipe, None, &|_, _| {}).unwrap();
            let Content::Text { train, val } = &memory.content else {
                panic!("text content")
            };
            assert_eq!(
                built.tokenizer, memory.tokenizer,
                "{mode:?}: same vocabulary"
            );
            let open = OpenShards::open(&out).unwrap();
            assert!(open.manifest.train.shards.len() > 10, "many shard files");
            assert_eq!(open.manifest.width, TokenWidth::U16);
            assert_eq!(
                &open.train.to_vec(0..usize::MAX),
                train,
                "{mode:?}: train tokens"
            );
            assert_eq!(&open.val.to_vec(0..usize::MAX), val, "{mode:?}: val tokens");
            assert_eq!(built.manifest.summary.sources, memory.sources, "{mode:?}");
            assert_eq!(built.manifest.summary.leakage, memory.leakage, "{mode:?}");
            // Document boundaries: every training document of source a is one line.
            let docs = open.documents(false).unwrap();
            let first = built.tokenizer.decode(&docs[0].ids);
            assert!(
                first.starts_with("alpha line") && first.ends_with('\n'),
                "{first:?}"
            );
            assert!(docs.iter().all(|d| d.mask.is_none()), "text has no mask");
            // Every document is one line (a newline only at its end).
            for d in &docs {
                let text = built.tokenizer.decode(&d.ids);
                let inner = text.strip_suffix('\n').unwrap_or(&text);
                assert!(
                    !inner.is_empty() && !inner.contains('\n'),
                    "{mode:?}: {text:?}"
                );
            }
            assert!(
                docs.len() >= memory.sources[0].train_records + memory.sources[1].train_records
            );
        }
    }

    #[test]
    fn a_batch_drawn_from_the_map_equals_one_drawn_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = lines_recipe(dir.path());
        let out = dir.path().join("ds");
        build(&recipe, &out, 64);
        let mapped = Corpus::from_shards(
            OpenShards::open(&out).unwrap(),
            crate::data::dataset::saved_tokenizer(&out).unwrap(),
            false,
        )
        .unwrap();
        assert!(mapped.train.is_mapped());
        let memory =
            Corpus::from_dataset(Dataset::build(&recipe, None, &|_, _| {}).unwrap(), false);
        for split in [Split::Train, Split::Val] {
            let mut a = StdRng::seed_from_u64(9);
            let mut b = StdRng::seed_from_u64(9);
            for _ in 0..5 {
                let x = mapped.sample_batch(split, 6, 16, &mut a);
                let y = memory.sample_batch(split, 6, 16, &mut b);
                assert_eq!(x.inputs, y.inputs, "{split:?} inputs");
                assert_eq!(x.targets, y.targets, "{split:?} targets");
            }
        }
        assert_eq!(
            mapped.steps_per_epoch(4, 8),
            memory.steps_per_epoch(4, 8),
            "epochs count the same tokens"
        );
    }

    #[test]
    fn examples_keep_their_loss_mask_through_the_shards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sft.jsonl");
        let lines: String = (0..40)
            .map(|i| format!("{{\"prompt\": \"say {i}\", \"response\": \"it is {i}\"}}\n"))
            .collect();
        std::fs::write(&path, lines).unwrap();
        let recipe = DatasetRecipe {
            sources: vec![SourceSpec::new(SourceKind::Jsonl {
                path,
                fields: vec![],
            })],
            split: SplitSpec {
                mode: SplitMode::RandomDocuments,
                ..SplitSpec::default()
            },
            transform: TransformSpec::Sft {
                options: SftOptions::default(),
            },
            ..DatasetRecipe::default()
        };
        let out = dir.path().join("ds");
        let built = build(&recipe, &out, 1000);
        assert!(built.manifest.train.mask_file.is_some());
        let mapped = Corpus::from_shards(
            OpenShards::open(&out).unwrap(),
            built.tokenizer.clone(),
            false,
        )
        .unwrap();
        let memory =
            Corpus::from_dataset(Dataset::build(&recipe, None, &|_, _| {}).unwrap(), false);
        assert_eq!(mapped.examples_train, memory.examples_train);
        assert_eq!(mapped.examples_val, memory.examples_val);
        assert!(mapped.examples_train.iter().all(|e| e.prompt_len > 0));
    }

    #[test]
    fn a_cut_shard_is_reported_as_damaged_by_name_and_a_failed_build_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = lines_recipe(dir.path());
        let out = dir.path().join("ds");
        let built = build(&recipe, &out, 100);
        assert_eq!(built.manifest.version, 1);
        let shard = out.join(TOKENS_DIR).join("train-00002.bin");
        let bytes = std::fs::read(&shard).unwrap();
        std::fs::write(&shard, &bytes[..bytes.len() - 3]).unwrap();
        let err = OpenShards::open(&out).unwrap_err().to_string();
        assert!(
            err.contains("train-00002.bin is damaged") && err.contains("hearth dataset --recipe"),
            "{err}"
        );
        // Same length, other bytes: the checksum finds it.
        let mut changed = bytes.clone();
        changed[0] ^= 1;
        std::fs::write(&shard, &changed).unwrap();
        let open = OpenShards::open(&out).unwrap();
        let err = open.verify().unwrap_err().to_string();
        assert!(err.contains("train-00002.bin is damaged"), "{err}");
        // A build that fails leaves the folder as it was; a rebuild counts a new version.
        let mut broken = recipe.clone();
        broken.sources[0].source = SourceKind::Text {
            path: dir.path().join("missing.txt"),
            documents: DocSplit::Lines,
        };
        assert!(
            build_shards(
                &broken,
                &out,
                None,
                &ShardOptions::default(),
                &|_| {},
                &AtomicBool::new(false)
            )
            .is_err()
        );
        assert_eq!(shards::read_manifest(&out).unwrap().version, 1);
        let cancelled = build_shards(
            &recipe,
            &out,
            None,
            &ShardOptions::default(),
            &|_| {},
            &AtomicBool::new(true),
        );
        assert!(matches!(cancelled, Err(DatasetError::Cancelled)));
        assert_eq!(build(&recipe, &out, 100).manifest.version, 2);
        OpenShards::open(&out).unwrap().verify().unwrap();
    }

    #[test]
    fn a_run_resumes_on_a_rebuild_with_the_same_tokens_and_is_refused_on_other_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = lines_recipe(dir.path());
        let out = dir.path().join("ds");
        build(&recipe, &out, 100);
        let spec = |shards| crate::data::DataSpec {
            source: crate::data::DataSource::Dataset {
                recipe: Box::new(recipe.clone()),
                folder: Some(out.clone()),
            },
            shards,
            ..crate::data::DataSpec::default()
        };
        let first = Corpus::load(&spec(None)).unwrap();
        let recorded = first.shards.clone().expect("mapped from the shards");
        assert_eq!(recorded.version, 1);
        // The same recipe built again: a new version of the same tokens.
        assert_eq!(build(&recipe, &out, 100).manifest.version, 2);
        let resumed = Corpus::load(&spec(Some(recorded.clone()))).unwrap();
        assert_eq!(resumed.shards.as_ref().map(|s| s.version), Some(2));
        assert_eq!(
            resumed.train.to_vec(0..usize::MAX),
            first.train.to_vec(0..usize::MAX)
        );
        // Other tokens under the recorded version number are refused, naming both builds.
        let other = crate::data::corpus::ShardsIdentity {
            checksum: "0000000000000000".into(),
            ..recorded
        };
        let err = Corpus::load(&spec(Some(other))).unwrap_err().to_string();
        assert!(
            err.contains("version 2") && err.contains("version 1") && err.contains("rebuilt"),
            "{err}"
        );
    }

    #[test]
    fn the_bpe_tokenizer_trains_on_a_bounded_sample() {
        let dir = tempfile::tempdir().unwrap();
        let text = crate::data::generated::story_text(4, 400_000);
        std::fs::write(dir.path().join("s.txt"), &text).unwrap();
        let recipe = DatasetRecipe {
            sources: vec![SourceSpec::new(SourceKind::Text {
                path: dir.path().join("s.txt"),
                documents: DocSplit::Whole,
            })],
            tokenizer: TokenizerKind::Bpe { vocab_size: 300 },
            ..DatasetRecipe::default()
        };
        let options = ShardOptions {
            tokenizer_sample_bytes: 100_000,
            ..ShardOptions::default()
        };
        let out = dir.path().join("ds");
        let built = build_shards(
            &recipe,
            &out,
            None,
            &options,
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        let sample = built.manifest.summary.tokenizer_sample_bytes.unwrap();
        assert!(
            (90_000..=140_000).contains(&sample),
            "sample of {sample} bytes"
        );
        let open = OpenShards::open(&out).unwrap();
        let all: Vec<u32> = open
            .train
            .to_vec(0..usize::MAX)
            .into_iter()
            .chain(open.val.to_vec(0..usize::MAX))
            .collect();
        assert_eq!(
            built.tokenizer.decode(&all),
            text,
            "the whole text round-trips"
        );
    }
}
