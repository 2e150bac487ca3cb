//! Token shards: a built dataset kept on disk as `u16` (or `u32`) token files with an index of
//! documents and, where the transform has one, a loss mask, read back through a memory map.
//!
//! A dataset folder holds `tokens/`: `shards.json` (the manifest: format, version, checksum,
//! the recipe built, its statistics and the list of files) and per split `train-00000.bin` ...
//! (little-endian token ids), `train.docs` (little-endian `u64` start of every document),
//! `train.mask` (one byte per token, 1 where the loss is computed) and, for LinkBERT pairs,
//! `train.pairs` (little-endian `u32` length of segment A and relation class per pair). Runs
//! map the token files; the corpus is never copied into memory.

use super::dataset::{DatasetRecipe, Leak, SourceStats};
use super::tokenizer::Tokenizer;
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The folder of a dataset that holds its token shards.
pub const TOKENS_DIR: &str = "tokens";
/// The manifest inside [`TOKENS_DIR`].
pub const MANIFEST_FILE: &str = "shards.json";
/// Bumped when the layout of the shard files changes.
pub const SHARDS_FORMAT: u32 = 1;
/// Tokens per shard file (the last one of a split holds the rest).
pub const SHARD_TOKENS: usize = 1 << 26;

/// How wide each stored token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenWidth {
    /// Two bytes: vocabularies of up to 65,536 tokens.
    U16,
    /// Four bytes.
    U32,
}

impl TokenWidth {
    /// The narrowest width that holds every id below `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 {
            TokenWidth::U16
        } else {
            TokenWidth::U32
        }
    }

    /// Bytes per token.
    pub fn bytes(self) -> usize {
        match self {
            TokenWidth::U16 => 2,
            TokenWidth::U32 => 4,
        }
    }
}

/// A stable 64-bit checksum of a byte stream (the same bytes give the same value on every
/// machine and Rust version), fed in pieces of any size.
#[derive(Debug, Clone)]
pub struct Checksum {
    state: u64,
    carry: [u8; 8],
    carried: usize,
    bytes: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self {
            state: 0xcbf2_9ce4_8422_2325,
            carry: [0; 8],
            carried: 0,
            bytes: 0,
        }
    }
}

impl Checksum {
    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// Adds `bytes` to the stream.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        if self.carried > 0 {
            let take = (8 - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.carry));
            self.carried = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    /// The checksum of everything added, as 16 hexadecimal digits.
    pub fn hex(&self) -> String {
        let mut c = self.clone();
        let mut tail = [0u8; 8];
        tail[..c.carried].copy_from_slice(&c.carry[..c.carried]);
        c.mix(u64::from_le_bytes(tail) ^ (c.carried as u64) << 56);
        c.mix(c.bytes);
        format!("{:016x}", c.state)
    }
}

/// The checksum of one byte string.
pub fn checksum_of(bytes: &[u8]) -> String {
    let mut c = Checksum::default();
    c.update(bytes);
    c.hex()
}

/// The checksum of a file's bytes, read in blocks of 1 MiB.
fn checksum_of_file(path: &Path) -> Result<String, ShardError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut block = vec![0u8; 1 << 20];
    let mut sum = Checksum::default();
    loop {
        match file.read(&mut block) {
            Ok(0) => return Ok(sum.hex()),
            Ok(n) => sum.update(&block[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
}

/// One token file of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// Its name inside [`TOKENS_DIR`].
    pub file: String,
    /// Tokens it holds.
    pub tokens: usize,
    /// [`Checksum`] of its bytes.
    pub checksum: String,
}

/// The files of one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SplitFiles {
    /// Tokens in the split.
    pub tokens: usize,
    /// Its token files, in order.
    pub shards: Vec<ShardFile>,
    /// Documents (examples, pairs) in the split: entries of the index.
    pub documents: usize,
    /// The document index: `u64` token offset where each document starts.
    pub docs_file: String,
    /// One byte per token, 1 where the loss is computed; `None` when every token is a target.
    pub mask_file: Option<String>,
    /// LinkBERT pairs: `u32` length of segment A and `u32` relation class per document.
    pub pairs_file: Option<String>,
}

/// What a build found, shown by `hearth dataset` and the studio without reading the tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DatasetSummary {
    /// Per-source statistics, in recipe order.
    pub sources: Vec<SourceStats>,
    /// Validation documents also in training; `None` for a contiguous split of text.
    pub leakage: Option<Vec<Leak>>,
    /// Training items: tokens for text, examples or pairs otherwise.
    pub train_items: usize,
    /// Validation items.
    pub val_items: usize,
    /// `tokens`, `examples` or `pairs`.
    pub unit: String,
    /// Tokens in one training epoch.
    pub epoch_tokens: usize,
    /// Bytes of text the BPE tokenizer was trained on (a sample of the sources); `None` when
    /// the tokenizer was not trained in this build.
    pub tokenizer_sample_bytes: Option<u64>,
    /// Bytes of text read from the sources.
    pub source_bytes: u64,
}

/// The manifest of a dataset's token shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardManifest {
    /// [`SHARDS_FORMAT`] when written.
    pub format: u32,
    /// Counts the builds of this dataset folder: 1 for the first.
    pub version: u32,
    /// [`Checksum`] over the checksums of every file: names the exact tokens a run trained on.
    pub checksum: String,
    /// Width of the stored tokens.
    pub width: TokenWidth,
    /// Tokens the model embeds (the tokenizer's vocabulary, reserved tokens included).
    pub vocab_size: usize,
    /// [`checksum_of`] the tokenizer's saved JSON: the tokens only decode with that tokenizer.
    pub tokenizer_checksum: String,
    /// The recipe built.
    pub recipe: DatasetRecipe,
    /// What the build found.
    pub summary: DatasetSummary,
    /// The training split.
    pub train: SplitFiles,
    /// The validation split.
    pub val: SplitFiles,
}

/// Why shards cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The folder has no shards (a dataset saved before they existed, or never built).
    #[error("{dir} holds no token shards; build them once with `hearth dataset --recipe {recipe}`")]
    Missing {
        /// The dataset folder.
        dir: PathBuf,
        /// Its recipe file.
        recipe: PathBuf,
    },
    /// The manifest does not parse, or is of a newer format.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file is shorter or longer than the manifest says, or its bytes do not match.
    #[error(
        "{path} is damaged: {message}; rebuild the dataset with `hearth dataset --recipe {recipe}`"
    )]
    Damaged {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
        /// The dataset's recipe file.
        recipe: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ShardError + '_ {
    move |source| ShardError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes one split's shards, document index and mask as documents arrive.
pub struct SplitWriter {
    dir: PathBuf,
    name: String,
    width: TokenWidth,
    shard_tokens: usize,
    current: Option<(std::io::BufWriter<std::fs::File>, Checksum, usize)>,
    shards: Vec<ShardFile>,
    tokens: usize,
    docs: std::io::BufWriter<std::fs::File>,
    documents: usize,
    mask: Option<std::io::BufWriter<std::fs::File>>,
    pairs: Option<std::io::BufWriter<std::fs::File>>,
    scratch: Vec<u8>,
}

impl SplitWriter {
    /// A writer of split `name` (`train` or `val`) into `dir`, with a loss mask when `masked`
    /// and a pairs file when `pairs`; shards hold `shard_tokens` tokens each.
    pub fn create(
        dir: &Path,
        name: &str,
        width: TokenWidth,
        shard_tokens: usize,
        masked: bool,
        pairs: bool,
    ) -> Result<Self, ShardError> {
        let open = |file: String| -> Result<std::io::BufWriter<std::fs::File>, ShardError> {
            let path = dir.join(file);
            let f = std::fs::File::create(&path).map_err(io_err(&path))?;
            Ok(std::io::BufWriter::with_capacity(1 << 20, f))
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            width,
            shard_tokens: shard_tokens.max(1),
            current: None,
            shards: Vec::new(),
            tokens: 0,
            docs: open(format!("{name}.docs"))?,
            documents: 0,
            mask: if masked {
                Some(open(format!("{name}.mask"))?)
            } else {
                None
            },
            pairs: if pairs {
                Some(open(format!("{name}.pairs"))?)
            } else {
                None
            },
            scratch: Vec::new(),
        })
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Marks the start of a document at the current token.
    pub fn start_document(&mut self) -> Result<(), ShardError> {
        self.docs
            .write_all(&(self.tokens as u64).to_le_bytes())
            .map_err(|source| ShardError::Io {
                path: self.dir.join(format!("{}.docs", self.name)),
                source,
            })?;
        self.documents += 1;
        Ok(())
    }

    /// Records the LinkBERT pair of the current document.
    pub fn pair(&mut self, a_len: u32, relation: u32) -> Result<(), ShardError> {
        if let Some(p) = &mut self.pairs {
            p.write_all(&a_len.to_le_bytes())
                .and_then(|()| p.write_all(&relation.to_le_bytes()))
                .map_err(|source| ShardError::Io {
                    path: self.dir.join(format!("{}.pairs", self.name)),
                    source,
                })?;
        }
        Ok(())
    }

    /// Appends tokens whose loss is computed (every token of plain text).
    pub fn push(&mut self, ids: &[u32]) -> Result<(), ShardError> {
        self.push_masked(ids, None)
    }

    /// Appends tokens; `mask[i]` says whether token `i` is a target (all when `None`).
    pub fn push_masked(
        &mut self,
        mut ids: &[u32],
        mask: Option<&[bool]>,
    ) -> Result<(), ShardError> {
        if let Some(m) = &mut self.mask {
            let bytes: Vec<u8> = match mask {
                Some(mask) => mask.iter().map(|&b| u8::from(b)).collect(),
                None => vec![1; ids.len()],
            };
            m.write_all(&bytes).map_err(|source| ShardError::Io {
                path: self.dir.join(format!("{}.mask", self.name)),
                source,
            })?;
        }
        while !ids.is_empty() {
            if self
                .current
                .as_ref()
                .is_none_or(|(_, _, n)| *n >= self.shard_tokens)
            {
                self.close_shard()?;
                let file = format!("{}-{:05}.bin", self.name, self.shards.len());
                let path = self.dir.join(&file);
                let f = std::fs::File::create(&path).map_err(io_err(&path))?;
                self.current = Some((
                    std::io::BufWriter::with_capacity(1 << 20, f),
                    Checksum::default(),
                    0,
                ));
                self.shards.push(ShardFile {
                    file,
                    tokens: 0,
                    checksum: String::new(),
                });
            }
            let (w, sum, n) = self.current.as_mut().expect("a shard is open");
            let take = (self.shard_tokens - *n).min(ids.len());
            self.scratch.clear();
            match self.width {
                TokenWidth::U16 => {
                    for &id in &ids[..take] {
                        debug_assert!(id <= u32::from(u16::MAX), "token {id} is wider than u16");
                        self.scratch.extend_from_slice(&(id as u16).to_le_bytes());
                    }
                }
                TokenWidth::U32 => {
                    for &id in &ids[..take] {
                        self.scratch.extend_from_slice(&id.to_le_bytes());
                    }
                }
            }
            w.write_all(&self.scratch)
                .map_err(|source| ShardError::Io {
                    path: self
                        .dir
                        .join(&self.shards.last().expect("a shard is open").file),
                    source,
                })?;
            sum.update(&self.scratch);
            *n += take;
            self.tokens += take;
            ids = &ids[take..];
        }
        Ok(())
    }

    fn close_shard(&mut self) -> Result<(), ShardError> {
        if let Some((mut w, sum, n)) = self.current.take() {
            let last = self.shards.last_mut().expect("the open shard is listed");
            let path = self.dir.join(&last.file);
            w.flush().map_err(io_err(&path))?;
            last.tokens = n;
            last.checksum = sum.hex();
        }
        Ok(())
    }

    /// Flushes every file and describes them.
    pub fn finish(mut self) -> Result<SplitFiles, ShardError> {
        self.close_shard()?;
        let flush = |w: &mut std::io::BufWriter<std::fs::File>, file: &str| {
            let path = self.dir.join(file);
            w.flush().map_err(io_err(&path))
        };
        let docs_file = format!("{}.docs", self.name);
        flush(&mut self.docs, &docs_file)?;
        let mask_file = match &mut self.mask {
            Some(m) => {
                let f = format!("{}.mask", self.name);
                flush(m, &f)?;
                Some(f)
            }
            None => None,
        };
        let pairs_file = match &mut self.pairs {
            Some(p) => {
                let f = format!("{}.pairs", self.name);
                flush(p, &f)?;
                Some(f)
            }
            None => None,
        };
        Ok(SplitFiles {
            tokens: self.tokens,
            shards: std::mem::take(&mut self.shards),
            documents: self.documents,
            docs_file,
            mask_file,
            pairs_file,
        })
    }
}

/// The overall checksum of a dataset's files.
pub fn manifest_checksum(train: &SplitFiles, val: &SplitFiles) -> String {
    let mut c = Checksum::default();
    for split in [train, val] {
        for s in &split.shards {
            c.update(s.checksum.as_bytes());
            c.update(&(s.tokens as u64).to_le_bytes());
        }
        c.update(&(split.documents as u64).to_le_bytes());
    }
    c.hex()
}

/// Writes `bytes` to `path` under a temporary name beside it (`path` with `.tmp` added), then
/// renames it into place: a reader finds the old file or the new one, never half of one.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes `manifest` into `tokens_dir` (under a temporary name, then renamed).
pub fn write_manifest(tokens_dir: &Path, manifest: &ShardManifest) -> Result<(), ShardError> {
    let path = tokens_dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(manifest).expect("a manifest serializes");
    write_replacing(&path, text.as_bytes()).map_err(io_err(&path))
}

/// Reads the manifest of the dataset saved in `dir`.
pub fn read_manifest(dir: &Path) -> Result<ShardManifest, ShardError> {
    let path = dir.join(TOKENS_DIR).join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ShardError::Missing {
                dir: dir.to_path_buf(),
                recipe: dir.join(super::dataset::DATASET_FILE),
            });
        }
        Err(e) => return Err(io_err(&path)(e)),
    };
    let manifest: ShardManifest =
        serde_json::from_str(&text).map_err(|e| ShardError::Manifest {
            path: path.clone(),
            message: format!("line {}: {e}", e.line()),
        })?;
    if manifest.format > SHARDS_FORMAT {
        return Err(ShardError::Manifest {
            path,
            message: format!(
                "format {} is newer than this Hearth understands",
                manifest.format
            ),
        });
    }
    Ok(manifest)
}

/// One split's tokens mapped from its shard files.
pub struct MappedTokens {
    maps: Vec<Mmap>,
    /// Token offset where each shard starts.
    starts: Vec<usize>,
    width: TokenWidth,
    len: usize,
}

impl std::fmt::Debug for MappedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MappedTokens({} tokens in {} shards, {:?})",
            self.len,
            self.maps.len(),
            self.width
        )
    }
}

/// Maps `path` read-only; an empty file maps to nothing.
fn map_file(path: &Path) -> Result<Option<Mmap>, ShardError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    if file.metadata().map_err(io_err(path))?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the map is only read through shared slices. A dataset's shards are written once,
    // under a new folder renamed into place; another process truncating a file while it is
    // mapped would change what those slices see (the hazard of every memory-mapped reader,
    // numpy's memmap included).
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
    #[cfg(unix)]
    {
        // Batches read windows at random offsets: read-ahead would only fill memory.
        let _ = map.advise(memmap2::Advice::Random);
    }
    Ok(Some(map))
}

fn expect_len(path: &Path, expected: u64, recipe: &Path) -> Result<(), ShardError> {
    let found = std::fs::metadata(path).map_err(io_err(path))?.len();
    if found != expected {
        return Err(ShardError::Damaged {
            path: path.to_path_buf(),
            message: format!("{found} bytes where the manifest says {expected}"),
            recipe: recipe.to_path_buf(),
        });
    }
    Ok(())
}

impl MappedTokens {
    /// Maps the shards of `split` in `tokens_dir`, refusing a file whose size is not the one the
    /// manifest gives.
    pub(crate) fn open_split(
        tokens_dir: &Path,
        split: &SplitFiles,
        width: TokenWidth,
        recipe: &Path,
    ) -> Result<Self, ShardError> {
        let mut maps = Vec::with_capacity(split.shards.len());
        let mut starts = Vec::with_capacity(split.shards.len());
        let mut len = 0usize;
        for s in &split.shards {
            let path = tokens_dir.join(&s.file);
            if !path.is_file() {
                return Err(ShardError::Damaged {
                    path,
                    message: "the file is missing".into(),
                    recipe: recipe.to_path_buf(),
                });
            }
            expect_len(&path, (s.tokens * width.bytes()) as u64, recipe)?;
            if let Some(map) = map_file(&path)? {
                starts.push(len);
                maps.push(map);
                len += s.tokens;
            }
        }
        if len != split.tokens {
            return Err(ShardError::Manifest {
                path: tokens_dir.join(MANIFEST_FILE),
                message: format!(
                    "its shards hold {len} tokens where the split says {}",
                    split.tokens
                ),
            });
        }
        Ok(Self {
            maps,
            starts,
            width,
            len,
        })
    }

    /// The shard holding token `i` and the position of `i` in it.
    fn locate(&self, i: usize) -> (usize, usize) {
        let shard = self.starts.partition_point(|&s| s <= i) - 1;
        (shard, i - self.starts[shard])
    }

    fn shard_len(&self, shard: usize) -> usize {
        self.maps[shard].len() / self.width.bytes()
    }

    /// Calls `f` with each id of `range`, in order.
    fn for_each(&self, range: Range<usize>, mut f: impl FnMut(u32)) {
        let mut i = range.start;
        while i < range.end {
            let (shard, at) = self.locate(i);
            let n = (self.shard_len(shard) - at).min(range.end - i);
            let bytes = &self.maps[shard][at * self.width.bytes()..(at + n) * self.width.bytes()];
            match self.width {
                TokenWidth::U16 => {
                    for b in bytes.chunks_exact(2) {
                        f(u32::from(u16::from_le_bytes([b[0], b[1]])));
                    }
                }
                TokenWidth::U32 => {
                    for b in bytes.chunks_exact(4) {
                        f(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    }
                }
            }
            i += n;
        }
    }
}

/// The tokens of one split: in memory, or mapped from shard files.
#[derive(Clone)]
pub enum Tokens {
    /// Ids held in memory.
    Memory(Arc<Vec<u32>>),
    /// Ids read from shard files through a memory map.
    Mapped(Arc<MappedTokens>),
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::Memory(Arc::new(Vec::new()))
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokens::Memory(v) => write!(f, "Tokens({} in memory)", v.len()),
            Tokens::Mapped(m) => m.fmt(f),
        }
    }
}

impl From<Vec<u32>> for Tokens {
    fn from(ids: Vec<u32>) -> Self {
        Tokens::Memory(Arc::new(ids))
    }
}

impl Tokens {
    /// Tokens in the split.
    pub fn len(&self) -> usize {
        match self {
            Tokens::Memory(v) => v.len(),
            Tokens::Mapped(m) => m.len,
        }
    }

    /// Whether the split holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the tokens are read from shard files.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Tokens::Mapped(_))
    }

    /// Appends the ids of `range` to `out` as `i64` (what batches hold). Panics when the range
    /// runs past the end, as slice indexing does.
    pub fn extend_i64(&self, range: Range<usize>, out: &mut Vec<i64>) {
        assert!(
            range.start <= range.end && range.end <= self.len(),
            "range {range:?} of {} tokens",
            self.len()
        );
        match self {
            Tokens::Memory(v) => out.extend(v[range].iter().map(|&i| i64::from(i))),
            Tokens::Mapped(m) => m.for_each(range, |id| out.push(i64::from(id))),
        }
    }

    /// The ids of `range` (clamped to the split).
    pub fn to_vec(&self, range: Range<usize>) -> Vec<u32> {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        match self {
            Tokens::Memory(v) => v[start..end].to_vec(),
            Tokens::Mapped(m) => {
                let mut out = Vec::with_capacity(end - start);
                m.for_each(start..end, |id| out.push(id));
                out
            }
        }
    }

    /// At most `max` tokens: the whole split when it fits, otherwise evenly spaced runs of it
    /// (for statistics on a large corpus). The flag says whether it is a sample.
    pub fn sample(&self, max: usize) -> (Vec<u32>, bool) {
        let n = self.len();
        if n <= max {
            return (self.to_vec(0..n), false);
        }
        const RUN: usize = 1 << 16;
        let runs = max.div_ceil(RUN).max(1);
        let run = max / runs;
        let stride = n / runs;
        let mut out = Vec::with_capacity(runs * run);
        for r in 0..runs {
            let start = r * stride;
            out.extend(self.to_vec(start..start + run));
        }
        (out, true)
    }
}

/// A dataset's shards opened for reading.
#[derive(Debug, Clone)]
pub struct OpenShards {
    /// The manifest.
    pub manifest: ShardManifest,
    /// Training tokens.
    pub train: Tokens,
    /// Validation tokens.
    pub val: Tokens,
    /// The folder holding the files.
    pub tokens_dir: PathBuf,
}

/// One document of a split read back: its tokens, loss mask and LinkBERT pair.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    /// Its tokens.
    pub ids: Vec<u32>,
    /// Whether each token is a target (`None`: all are).
    pub mask: Option<Vec<bool>>,
    /// LinkBERT: length of segment A and the relation class.
    pub pair: Option<(u32, u32)>,
}

impl OpenShards {
    /// Opens the shards saved in the dataset folder `dir`, mapping the token files.
    pub fn open(dir: &Path) -> Result<Self, ShardError> {
        let manifest = read_manifest(dir)?;
        let tokens_dir = dir.join(TOKENS_DIR);
        let recipe = dir.join(super::dataset::DATASET_FILE);
        let train = Tokens::Mapped(Arc::new(MappedTokens::open_split(
            &tokens_dir,
            &manifest.train,
            manifest.width,
            &recipe,
        )?));
        let val = Tokens::Mapped(Arc::new(MappedTokens::open_split(
            &tokens_dir,
            &manifest.val,
            manifest.width,
            &recipe,
        )?));
        for split in [&manifest.train, &manifest.val] {
            let docs = tokens_dir.join(&split.docs_file);
            expect_len(&docs, split.documents as u64 * 8, &recipe)?;
            if let Some(mask) = &split.mask_file {
                expect_len(&tokens_dir.join(mask), split.tokens as u64, &recipe)?;
            }
            if let Some(pairs) = &split.pairs_file {
                expect_len(&tokens_dir.join(pairs), split.documents as u64 * 8, &recipe)?;
            }
        }
        Ok(Self {
            manifest,
            train,
            val,
            tokens_dir,
        })
    }

    /// Reads every byte of every file and compares it with the manifest's checksums; the first
    /// file that differs is named.
    pub fn verify(&self) -> Result<(), ShardError> {
        let recipe = self
            .tokens_dir
            .parent()
            .unwrap_or(&self.tokens_dir)
            .join(super::dataset::DATASET_FILE);
        for split in [&self.manifest.train, &self.manifest.val] {
            for s in &split.shards {
                let path = self.tokens_dir.join(&s.file);
                if checksum_of_file(&path)? != s.checksum {
                    return Err(ShardError::Damaged {
                        path,
                        message: "its bytes do not match the checksum written with it".into(),
                        recipe,
                    });
                }
            }
        }
        Ok(())
    }

    /// The start offsets of the documents of `split` (`val` when `val`).
    fn doc_starts(&self, val: bool) -> Result<Vec<usize>, ShardError> {
        let split = if val {
            &self.manifest.val
        } else {
            &self.manifest.train
        };
        let path = self.tokens_dir.join(&split.docs_file);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes")) as usize)
            .collect())
    }

    /// Every document of a split with its mask and pair (for examples and pairs, which are
    /// few; a text corpus is read through [`OpenShards::train`] instead).
    pub fn documents(&self, val: bool) -> Result<Vec<StoredDocument>, ShardError> {
        let (split, tokens) = if val {
            (&self.manifest.val, &self.val)
        } else {
            (&self.manifest.train, &self.train)
        };
        let starts = self.doc_starts(val)?;
        let read = |file: &Option<String>| -> Result<Option<Vec<u8>>, ShardError> {
            file.as_ref()
                .map(|f| {
                    let path = self.tokens_dir.join(f);
                    std::fs::read(&path).map_err(io_err(&path))
                })
                .transpose()
        };
        let mask = read(&split.mask_file)?;
        let pairs = read(&split.pairs_file)?;
        let mut out = Vec::with_capacity(starts.len());
        for (d, &start) in starts.iter().enumerate() {
            let end = starts.get(d + 1).copied().unwrap_or(split.tokens);
            if start > end || end > tokens.len() {
                return Err(ShardError::Damaged {
                    path: self.tokens_dir.join(&split.docs_file),
                    message: format!("document {d} spans {start}..{end}"),
                    recipe: self
                        .tokens_dir
                        .join("..")
                        .join(super::dataset::DATASET_FILE),
                });
            }
            out.push(StoredDocument {
                ids: tokens.to_vec(start..end),
                mask: mask
                    .as_ref()
                    .map(|m| m[start..end].iter().map(|&b| b != 0).collect()),
                pair: pairs.as_ref().map(|p| {
                    let at = d * 8;
                    let word =
                        |o: usize| u32::from_le_bytes(p[o..o + 4].try_into().expect("four bytes"));
                    (word(at), word(at + 4))
                }),
            });
        }
        Ok(out)
    }
}

/// The tokenizer's checksum as a manifest records it.
pub fn tokenizer_checksum(tokenizer: &Tokenizer) -> String {
    checksum_of(
        serde_json::to_string(tokenizer)
            .expect("a tokenizer serializes")
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bytes_hold_ids_up_to_65535() {
        // Ids run from 0 to vocab_size - 1: 65,536 tokens fit in u16, one more does not.
        assert_eq!(TokenWidth::for_vocab(65_536), TokenWidth::U16);
        assert_eq!(TokenWidth::for_vocab(65_537), TokenWidth::U32);
    }

    #[test]
    fn a_file_read_in_blocks_has_the_checksum_of_its_bytes() {
        // Over two blocks, with a length that is not a multiple of eight.
        let bytes: Vec<u8> = (0..(2 << 20) + 13).map(|i| (i * 31 % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-00000.bin");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(checksum_of_file(&path).unwrap(), checksum_of(&bytes));
        let missing = dir.path().join("missing.bin");
        let err = checksum_of_file(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.bin"), "{err}");
    }
}
