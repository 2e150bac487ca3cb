//! `hearth bench embed-sts`: embedding the sentences of an STS file with an imported
//! sentence encoder on LibTorch's CPU, against sentence-transformers embedding the same file
//! with the same folder in the same run, both at the same thread count.

use anyhow::{Context, Result, bail};
use hearth_engine::data::pairs::read_scored_pairs;
use hearth_engine::export::{LoadedRun, import_hf};
use hearth_engine::train::BackendKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The default encoder: all-MiniLM-L6-v2 where `scripts/fetch_fixtures.sh` puts it.
pub fn default_folder() -> PathBuf {
    let cache = std::env::var_os("HEARTH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hearth")))
        .unwrap_or_else(|| PathBuf::from(".cache/hearth"));
    cache.join("fixtures/all-MiniLM-L6-v2")
}

/// sentence-transformers' seconds to embed `file`'s sentences with `folder`, and its Spearman.
fn reference(python: &Path, folder: &Path, file: &Path, threads: usize) -> Result<(f64, f64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bert_parity.py");
    let out = Command::new(python)
        .arg(&script)
        .args(["sts"])
        .arg(folder)
        .arg(file)
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .context("sentence-transformers printed no result")?;
    Ok((
        line["seconds"].as_f64().context("no seconds")?,
        line["spearman"].as_f64().context("no spearman")?,
    ))
}

/// Imports `folder`, then times Hearth and sentence-transformers embedding `file` in
/// `rounds` alternating rounds; prints each round and `ratio hearth/sentence-transformers=<x>`
/// (sentence-transformers' seconds over Hearth's, median of the rounds: above 1 is faster).
pub fn run(folder: &Path, file: &Path, rounds: usize, threads: usize, python: &Path) -> Result<()> {
    let pairs = read_scored_pairs(file)?;
    let backend = BackendKind::Libtorch;
    backend.set_threads(threads);
    let device = backend.device()?;
    let tmp = std::env::temp_dir().join(format!("hearth-bench-sts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    import_hf(folder, &tmp.join("run"), "encoder", &device)?;
    let run = LoadedRun::load(&tmp.join("run"), &device)?;
    let how = run.spec.objective.embed_spec();
    println!(
        "{} pairs of {}, {} on {threads} threads, {rounds} rounds",
        pairs.len(),
        file.display(),
        folder.display()
    );
    let mut ratios = Vec::new();
    for round in 1..=rounds.max(1) {
        let start = Instant::now();
        let score = hearth_engine::eval::retrieval::sts_score(
            &run.model,
            &pairs,
            how,
            &run.tokenizer,
            &device,
        );
        let ours = start.elapsed().as_secs_f64();
        let (theirs, their_spearman) = reference(python, folder, file, threads)?;
        println!(
            "round {round}: hearth {ours:.2} s (spearman {:.4}), sentence-transformers {theirs:.2} s (spearman {their_spearman:.4})",
            score.spearman
        );
        ratios.push(theirs / ours);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio hearth/sentence-transformers={:.3}",
        ratios[ratios.len() / 2]
    );
    Ok(())
}
