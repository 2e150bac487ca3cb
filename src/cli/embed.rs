//! `hearth embed`: one embedding per text with a run's newest checkpoint.

use anyhow::{Context, Result, bail};
use clap::Args;
use hearth_engine::backend::BackendKind;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct EmbedArgs {
    /// Run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// Texts: `.txt` (one per line; empty lines skipped) or `.jsonl` (a `text` field per line).
    #[arg(long)]
    pub input: PathBuf,
    /// JSON Lines to write: `{"text": ..., "embedding": [...]}` per text, in input order.
    #[arg(long)]
    pub out: PathBuf,
    /// Backend to run on (default: the run's own).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Intra-op threads (default, or 0: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The texts of `path`: JSON Lines with a `text` field, or plain lines.
pub fn read_texts(path: &Path) -> Result<Vec<String>> {
    let content =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let jsonl = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    let mut texts = Vec::new();
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if jsonl {
            let value: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
            let Some(text) = value.get("text").and_then(|t| t.as_str()) else {
                bail!(
                    "{} line {}: no \"text\" field holding a string",
                    path.display(),
                    i + 1
                );
            };
            texts.push(text.to_string());
        } else {
            texts.push(line.to_string());
        }
    }
    if texts.is_empty() {
        bail!("{}: no texts", path.display());
    }
    Ok(texts)
}

/// `hearth embed`: writes the embeddings (normalised, pooled as the run pools) and prints how
/// many.
pub fn run(args: &EmbedArgs) -> Result<()> {
    let texts = read_texts(&args.input)?;
    let (run, device) = super::generate::load_run(&args.run, args.backend, args.threads)?;
    if run.layout().embedding.is_none() {
        eprintln!(
            "note: the {} objective does not train embeddings; pooling its states anyway",
            run.spec.objective.kind
        );
    }
    let how = run.spec.objective.embed_spec();
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| run.tokenizer.encode(t)).collect();
    let embeddings = hearth_engine::eval::embed_all(&run.model, &ids, how, &run.tokenizer, &device);
    let [n, d] = embeddings.dims();
    let values = embeddings
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    // The lexical channel's columns are mostly zero: written as its non-zero entries.
    let states = if how.has_lexical() {
        d - hearth_engine::eval::LEXICAL_BUCKETS
    } else {
        d
    };
    for (text, row) in texts.iter().zip(values.chunks(d)) {
        // `f32`s as `f32`s: the shortest text that reads back to the same number.
        let mut line = format!(
            "{{\"text\":{},\"embedding\":{}",
            serde_json::to_string(text)?,
            serde_json::to_string(&row[..states])?
        );
        if how.has_lexical() {
            let (indices, weights): (Vec<usize>, Vec<f32>) = row[states..]
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(i, v)| (i, *v))
                .unzip();
            line.push_str(&format!(
                ",\"lexical\":{{\"size\":{},\"indices\":{},\"values\":{}}}",
                d - states,
                serde_json::to_string(&indices)?,
                serde_json::to_string(&weights)?
            ));
        }
        line.push('}');
        writeln!(out, "{line}").with_context(|| format!("cannot write {}", args.out.display()))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if how.has_lexical() {
        println!(
            "embedded {n} texts ({states} dimensions, {} pooling, and the lexical channel at \
             {}: {} columns, written sparse as \"lexical\"; a similarity is the dot product of \
             the embeddings plus that of the channels) to {}",
            how.pooling.name(),
            how.lexical,
            d - states,
            args.out.display()
        );
    } else {
        println!(
            "embedded {n} texts ({d} dimensions, {} pooling) to {}",
            how.pooling.name(),
            args.out.display()
        );
    }
    Ok(())
}
