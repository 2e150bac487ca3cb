//! `hearth bench data --mb N`: preparing a generated text of N MB as `hearth dataset` does
//! (stream, BPE on a sample, parallel tokenization, `u16` shards) against the same preparation
//! in Python with Hugging Face `tokenizers` (train BPE, batch-encode, write `uint16`), same
//! file, same vocabulary, same run. Prints bytes/s and peak resident memory of each and ends
//! with `ratio hearth/python=<x> peak_rss_mb=<x>` (ratio above 1: Hearth is faster).

use anyhow::{Context, Result, bail};
use hearth_engine::data::dataset::{DatasetRecipe, SourceSpec};
use hearth_engine::data::sources::{DocSplit, SourceKind};
use hearth_engine::data::tokenizer::TokenizerKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The vocabulary both sides train.
const VOCAB: usize = 4096;

/// The Python side: train, batch-encode in pieces of lines, write `uint16`; prints one JSON
/// line with its time, tokens and peak resident memory.
const PYTHON: &str = r#"
import json, resource, sys, time
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
path, out, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.time()
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, show_progress=False,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train([path], trainer)
tokens = 0
with open(path, encoding="utf-8") as f, open(out, "wb") as o:
    batch = []
    def flush():
        global tokens
        for e in tok.encode_batch(batch):
            np.asarray(e.ids, dtype=np.uint16).tofile(o)
            tokens += len(e.ids)
        batch.clear()
    for line in f:
        batch.append(line)
        if len(batch) == 20000:
            flush()
    flush()
secs = time.time() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import tokenizers
print(json.dumps({"secs": secs, "tokens": tokens, "peak_mb": peak, "version": tokenizers.__version__}))
"#;

/// Writes `mb` megabytes of generated text to `path`: lines of Zipf-distributed invented
/// words (a vocabulary with frequent and rare words, as natural text has).
pub fn generate_text(path: &Path, mb: f64, seed: u64) -> Result<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let words: Vec<String> = (0..20_000)
        .map(|_| {
            let len = rng.random_range(2..10);
            (0..len)
                .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                .collect()
        })
        .collect();
    // Cumulative Zipf weights 1/(i+1).
    let mut cumulative = Vec::with_capacity(words.len());
    let mut total = 0.0f64;
    for i in 0..words.len() {
        total += 1.0 / (i + 1) as f64;
        cumulative.push(total);
    }
    let target = (mb * 1e6) as u64;
    let file = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    let mut line = String::new();
    while written < target {
        line.clear();
        for k in 0..rng.random_range(5..21) {
            if k > 0 {
                line.push(' ');
            }
            let x = rng.random::<f64>() * total;
            line.push_str(&words[cumulative.partition_point(|&c| c < x).min(words.len() - 1)]);
        }
        line.push_str(".\n");
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

/// Peak resident memory of this process so far, in megabytes.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `hearth bench data`.
pub fn run(mb: f64, python: &Path) -> Result<()> {
    if !(mb > 0.0 && mb.is_finite()) {
        bail!("--mb {mb}: must be a positive number of megabytes");
    }
    let scratch = std::env::temp_dir().join(format!("hearth-bench-data-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = compare(mb, python, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn compare(mb: f64, python: &Path, scratch: &Path) -> Result<()> {
    let text = scratch.join("corpus.txt");
    let bytes = generate_text(&text, mb, 1)?;
    let check = Command::new(python)
        .args(["-c", "import tokenizers, numpy"])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !check.status.success() {
        bail!(
            "{} cannot import tokenizers and numpy; `source scripts/env.sh` installs them (or pass --python)",
            python.display()
        );
    }
    println!(
        "data: {:.1} MB of generated text, BPE vocabulary {VOCAB}, {} threads",
        bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, usize::from)
    );

    // Python first: this process's peak memory then measures Hearth's side alone.
    let script = scratch.join("prepare.py");
    std::fs::write(&script, PYTHON)?;
    let out = Command::new(python)
        .arg(&script)
        .arg(&text)
        .arg(scratch.join("python.bin"))
        .arg(VOCAB.to_string())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the Python preparation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .with_context(|| format!("unexpected output of the Python side: {stdout}"))?;
    let py_secs = report["secs"].as_f64().unwrap_or(f64::NAN);
    let py_tokens = report["tokens"].as_u64().unwrap_or(0);
    let py_peak = report["peak_mb"].as_f64().unwrap_or(f64::NAN);
    let _ = std::fs::remove_file(scratch.join("python.bin"));

    let recipe = DatasetRecipe {
        name: "bench".into(),
        sources: vec![SourceSpec::new(SourceKind::Text {
            path: text.clone(),
            documents: DocSplit::Whole,
        })],
        tokenizer: TokenizerKind::Bpe { vocab_size: VOCAB },
        ..DatasetRecipe::default()
    };
    let started = std::time::Instant::now();
    let built = super::dataset::build_into(
        &recipe,
        &scratch.join("dataset"),
        hearth_engine::data::dataset::DEFAULT_TOKENIZER_SAMPLE as f64 / 1e6,
    )?;
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    let m = &built.manifest;
    let tokens = m.train.tokens + m.val.tokens;

    let rate = |s: f64| bytes as f64 / 1e6 / s;
    println!(
        "hearth: {secs:.1} s, {:.2} MB/s, peak RSS {peak:.0} MB, {tokens} tokens as {:?} (BPE trained on a {:.1} MB sample)",
        rate(secs),
        m.width,
        m.summary.tokenizer_sample_bytes.unwrap_or(0) as f64 / 1e6
    );
    println!(
        "python: {py_secs:.1} s, {:.2} MB/s, peak RSS {py_peak:.0} MB, {py_tokens} tokens as uint16 (tokenizers {}, BPE trained on the whole file)",
        rate(py_secs),
        report["version"].as_str().unwrap_or("?")
    );
    println!(
        "ratio hearth/python={:.2} peak_rss_mb={peak:.0}",
        py_secs / secs
    );
    Ok(())
}
