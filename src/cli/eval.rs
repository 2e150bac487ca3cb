//! `hearth eval`: scores a run's newest checkpoint.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use hearth_engine::backend::{BackendKind, available_cores};
use hearth_engine::data::DataSource;
use hearth_engine::data::transforms::{LabelMode, RaftEval};
use hearth_engine::spec::RunSpec;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Run folder (as written by `hearth train` or the studio).
    #[arg(long)]
    pub run: PathBuf,
    /// Backend to evaluate on (default: the run's own).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Intra-op threads (default, or 0: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Embed these pairs (TSV `text_a<TAB>text_b[<TAB>score]` or JSONL `{"a", "b", "score"}`)
    /// and report retrieval (every `text_b` is a candidate for every `text_a`) and, with
    /// scores, Spearman correlation.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Semantic textual similarity: embed both sentences of every scored pair (the STS
    /// benchmark's tab-separated layout, `a<TAB>b<TAB>score`, or JSONL `{"a", "b", "score"}`)
    /// and correlate their cosine with the gold score; the last line is
    /// `pairs=<n> pearson=<x> spearman=<x>`.
    #[arg(long, conflicts_with = "pairs")]
    pub sts: Option<PathBuf>,
    /// With `--sts`: also record the score in the run's history at the checkpoint's step
    /// (`val_sts_spearman`, `val_sts_pearson`), where the studio's charts and Compare show it.
    #[arg(long, requires = "sts")]
    pub record: bool,
    /// Retrieval-aware runs: exact match on the validation questions with no document, the
    /// right document, distractors only, or an edited right document (a renamed argument).
    #[arg(long, value_enum)]
    pub raft: Option<RaftEval>,
    /// Symbol-tuning runs: accuracy on the held-out prompts with natural labels, symbols or
    /// flipped labels.
    #[arg(long, value_enum)]
    pub labels: Option<LabelMode>,
    /// Prompts evaluated with `--raft` or `--labels` (at most).
    #[arg(long, default_value_t = 400)]
    pub limit: usize,
    /// The training dynamics the run recorded: a table of every weight matrix at the last
    /// record (gradient norm, update ratio, weight norm), the rules that fire, in words, and the
    /// last line `update_ratio_median=<x> layers=<n>` (n: the matrices in the table).
    #[arg(long, conflicts_with_all = ["pairs", "sts", "raft", "labels"])]
    pub dynamics: bool,
}

/// The command-line name of a choice, as `--help` lists it.
fn value_name(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Evaluation prompts of a run's dataset under `--raft` or `--labels`.
fn variant_examples(
    spec: &RunSpec,
    args: &EvalArgs,
    tokenizer: &hearth_engine::data::Tokenizer,
) -> Result<Option<(String, Vec<hearth_engine::data::record::TextExample>)>> {
    use hearth_engine::data::dataset::{Dataset, TransformSpec};
    use hearth_engine::data::transforms::{self, SymbolOptions};
    if args.raft.is_none() && args.labels.is_none() {
        return Ok(None);
    }
    let DataSource::Dataset { recipe, .. } = &spec.data.source else {
        bail!("--raft and --labels evaluate runs trained on a dataset recipe");
    };
    let ds = Dataset::build(recipe, Some(tokenizer.clone()), &|_, _| {})?;
    let records = &ds.val_records;
    match (&recipe.transform, args.raft, args.labels) {
        (TransformSpec::Raft { options }, Some(condition), _) => {
            // At least one distractor, so runs trained without any are scored on the same set.
            let options = transforms::RaftOptions {
                distractors: options.distractors.max(1),
                ..options.clone()
            };
            let examples = transforms::raft_eval(records, &options, condition)?;
            Ok(Some((format!("raft={}", value_name(&condition)), examples)))
        }
        (TransformSpec::Symbols { recipe: r }, _, Some(labels)) => {
            let options = SymbolOptions {
                mode: labels,
                seed: r.options.seed ^ 0xe7a1,
                ..r.options.clone()
            };
            let examples = transforms::symbol_prompts(records, &options, args.limit)?;
            Ok(Some((format!("labels={}", value_name(&labels)), examples)))
        }
        (t, _, _) => bail!(
            "this run's dataset uses {}: --raft needs retrieval-aware data, --labels symbol tuning",
            t.label()
        ),
    }
}

/// `hearth eval`: loads the newest checkpoint and prints the loss over every validation window;
/// the last line is `val_loss=<x> val_ppl=<x> windows=<n>`.
pub fn run(args: &EvalArgs) -> Result<()> {
    use hearth_engine::data::{Corpus, Split};
    use hearth_engine::project::RunStore;
    let store = RunStore::open(&args.run)?;
    let spec = store.spec()?;
    let history = store.load_history()?;
    if args.dynamics {
        return dynamics_report(args, &store, &spec, &history);
    }
    let (step, checkpoint) = history
        .checkpoints
        .last()
        .cloned()
        .with_context(|| format!("{}: the run has no checkpoint", args.run.display()))?;
    let backend = args.backend.unwrap_or(spec.train.backend);
    // Headless: the machine is the evaluation's alone.
    backend.set_threads(
        args.threads
            .filter(|&n| n > 0)
            .unwrap_or_else(available_cores),
    );
    let device = backend.device().map_err(anyhow::Error::msg)?;
    // The run's own tokenizer: the one its checkpoints were trained with.
    let corpus = match hearth_engine::project::store::read_tokenizer(&args.run) {
        Some(tokenizer) => Corpus::load_with(&spec.data, tokenizer)?,
        None => Corpus::load_for(&spec.data, spec.objective.needs_specials())?,
    };
    let model =
        hearth_engine::model::Model::new(&spec.model, corpus.tokenizer.vocab_size(), &device)
            .try_load_file(&checkpoint)
            .with_context(|| format!("cannot load {}", checkpoint.display()))?;
    let objective = spec.objective.objective()?;
    if let Some(report) = objective.checkpoint_report(&model, &corpus, spec.model.context, &device)
    {
        eprintln!("checkpoint of step {step}: {}", checkpoint.display());
        println!("{report}");
        return Ok(());
    }
    if let Some((what, examples)) = variant_examples(&spec, args, &corpus.tokenizer)? {
        let encoded: Vec<hearth_engine::data::corpus::Example> = examples
            .iter()
            .take(args.limit)
            .map(|e| {
                hearth_engine::data::corpus::Example::encode(
                    &corpus.tokenizer,
                    &e.prompt,
                    &e.answer,
                )
            })
            .collect();
        let em =
            hearth_engine::eval::exact_match(&model, &corpus, &encoded, encoded.len(), &device);
        eprintln!("checkpoint of step {step}: {}", checkpoint.display());
        println!("{what} exact_match={em:.4} examples={}", encoded.len());
        return Ok(());
    }
    if let Some(path) = &args.sts {
        if !objective.uses_embeddings() {
            bail!(
                "--sts scores embeddings; the {} objective does not train the model to embed",
                spec.objective.kind
            );
        }
        let pairs = hearth_engine::data::pairs::read_scored_pairs(path)?;
        let score = hearth_engine::eval::sts_score(
            &model,
            &pairs,
            spec.objective.embed_spec(),
            &corpus.tokenizer,
            &device,
        );
        eprintln!("checkpoint of step {step}: {}", checkpoint.display());
        if args.record {
            hearth_engine::project::RunStore::open(&args.run)?
                .append_eval_metrics(step, &hearth_engine::eval::retrieval::sts_metrics(&score))?;
            eprintln!("recorded in the run's history at step {step}");
        }
        println!(
            "pairs={} pearson={:.4} spearman={:.4}",
            score.pairs, score.pearson, score.spearman
        );
        return Ok(());
    }
    if let Some(path) = &args.pairs {
        let pairs = hearth_engine::data::pairs::read_pairs(path)?;
        let encode = |texts: Vec<&str>| -> Vec<Vec<u32>> {
            texts
                .into_iter()
                .map(|t| corpus.tokenizer.encode_text(t))
                .collect()
        };
        let a = encode(pairs.iter().map(|p| p.a.as_str()).collect());
        let b = encode(pairs.iter().map(|p| p.b.as_str()).collect());
        let embed_all = |texts: &[Vec<u32>]| {
            hearth_engine::eval::embed_all(
                &model,
                texts,
                spec.objective.embed_spec(),
                &corpus.tokenizer,
                &device,
            )
        };
        let (ea, eb) = (embed_all(&a), embed_all(&b));
        let sims = hearth_engine::eval::similarities(ea, eb);
        let n = pairs.len();
        let r = hearth_engine::eval::retrieval(&sims, n, n);
        let mut line = format!(
            "pairs={n} recall_at_1={:.4} recall_at_10={:.4} mrr={:.4}",
            r.recall_at_1, r.recall_at_10, r.mrr
        );
        let scored: Vec<(f64, f64)> = pairs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.score.map(|s| (f64::from(sims[i * n + i]), s)))
            .collect();
        if scored.len() >= 2 {
            let (cos, gold): (Vec<f64>, Vec<f64>) = scored.into_iter().unzip();
            line.push_str(&format!(
                " spearman={:.4}",
                hearth_engine::eval::spearman(&cos, &gold)
            ));
        }
        eprintln!("checkpoint of step {step}: {}", checkpoint.display());
        // What the model must beat on the same pairs, before its own line.
        use hearth_engine::eval::baseline::{chance_retrieval, tfidf_retrieval};
        let texts = |f: fn(&hearth_engine::data::pairs::Pair) -> &str| -> Vec<String> {
            pairs.iter().map(|p| f(p).to_string()).collect()
        };
        for (name, r) in [
            ("tfidf", tfidf_retrieval(&texts(|p| &p.a), &texts(|p| &p.b))),
            ("chance", chance_retrieval(n)),
        ] {
            println!(
                "baseline={name} pairs={n} recall_at_1={:.4} recall_at_10={:.4} mrr={:.4}",
                r.recall_at_1, r.recall_at_10, r.mrr
            );
        }
        println!("{line}");
        return Ok(());
    }
    let windows = corpus.val.len().saturating_sub(spec.model.context + 1) / spec.model.context;
    let loss = hearth_engine::eval::full_split_loss(&model, &corpus, Split::Val, 64, &device);
    eprintln!("checkpoint of step {step}: {}", checkpoint.display());
    println!(
        "val_loss={loss:.4} val_ppl={:.3} windows={windows}",
        f64::from(loss).exp()
    );
    Ok(())
}

/// `hearth eval --dynamics`: the last recorded step's matrices, the rules, the median ratio.
fn dynamics_report(
    args: &EvalArgs,
    store: &hearth_engine::project::RunStore,
    spec: &RunSpec,
    history: &hearth_engine::project::RunHistory,
) -> Result<()> {
    use hearth_engine::dynamics;
    let records = store.dynamics()?;
    let Some(last) = records.last() else {
        bail!(
            "{}: the run recorded no training dynamics (train it with train.dynamics_interval above 0)",
            args.run.display()
        );
    };
    println!(
        "step {} of {} records; update ratio = |change| / |weights| per step, healthy near 1e-3",
        last.step,
        records.len()
    );
    let width = last
        .matrices
        .iter()
        .map(|m| dynamics::matrix_label(&m.name).len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<width$} {:>11} {:>12} {:>9} {:>11}",
        "matrix", "grad norm", "update ratio", "log10", "weight norm"
    );
    for m in &last.matrices {
        let ratio = m.update_ratio();
        println!(
            "{:<width$} {:>11.3e} {:>12.3e} {:>9.2} {:>11.3e}",
            dynamics::matrix_label(&m.name),
            m.grad_norm,
            ratio,
            f64::from(ratio).log10(),
            m.weight_norm
        );
    }
    if let Some(blocks) = store.blocks()?.last() {
        let list = |v: &[f32], precision: usize| {
            v.iter()
                .map(|x| format!("{x:.precision$}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "blocks at step {} (probe text): residual RMS {}; attention entropy {} nats",
            blocks.step,
            list(&blocks.act_rms, 3),
            list(&blocks.attn_entropy, 2)
        );
    }
    let norms: Vec<f32> = history.steps.iter().map(|s| s.grad_norm).collect();
    if let Some(rate) = dynamics::clip_rate(&norms, spec.optim.grad_clip, norms.len()) {
        println!(
            "clipping fired on {:.1}% of {} steps (limit {})",
            rate * 100.0,
            norms.len(),
            spec.optim.grad_clip
        );
    }
    for finding in dynamics::findings(&records, &norms, spec.optim.grad_clip) {
        println!("{}", finding.text);
    }
    let median = last.update_ratio_median().unwrap_or(f64::NAN);
    println!(
        "update_ratio_median={median:.3e} layers={}",
        last.matrices.len()
    );
    Ok(())
}
