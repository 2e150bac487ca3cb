//! `hearth improve`: improves a finished run from its own checked samples (STaR, DPO or
//! self-correction) into a new run linked to it.

use anyhow::{Result, bail};
use clap::Args;
use hearth_engine::improve::{
    BatchedSampler, ImproveEvent, ImproveSpec, Method, Phase, TaskKind, run_improve,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Args, Debug, Clone)]
pub struct ImproveArgs {
    /// The finished run to improve (its folder); it is only read.
    #[arg(long)]
    pub run: PathBuf,
    /// The task whose checker judges the answers; the base must have trained on its records
    /// (a dataset with `--source gen:TASK... --transform sft`).
    #[arg(long, value_enum)]
    pub task: TaskKind,
    /// `star` (fine-tune on verified samples), `dpo` (preference pairs against the frozen
    /// base) or `self-correct` (a second attempt after a check marker).
    #[arg(long, value_enum, default_value = "star")]
    pub method: Method,
    /// Rounds of sampling, checking and training.
    #[arg(long, default_value_t = ImproveSpec::default().rounds)]
    pub rounds: usize,
    /// Answers sampled per prompt.
    #[arg(long, default_value_t = ImproveSpec::default().samples)]
    pub samples: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = ImproveSpec::default().temperature, value_parser = crate::cli::train::finite)]
    pub temperature: f64,
    /// Draw among the K most likely tokens only (0: among all).
    #[arg(long, default_value_t = ImproveSpec::default().top_k)]
    pub top_k: usize,
    /// DPO: the beta of the loss (how far the model may move from the base).
    #[arg(long, default_value_t = ImproveSpec::default().beta, value_parser = crate::cli::train::finite)]
    pub beta: f64,
    /// DPO: weight of the verified answers' negative log-likelihood added to the DPO loss (RPO;
    /// 0: plain DPO).
    #[arg(long, default_value_t = ImproveSpec::default().nll_weight, value_parser = crate::cli::train::finite)]
    pub nll_weight: f64,
    /// Training prompts sampled per round (keeps a round short on a CPU).
    #[arg(long, default_value_t = ImproveSpec::default().prompts_per_round)]
    pub prompts_per_round: usize,
    /// Held-out prompts (the base's validation records of the task) the accuracy is measured on.
    #[arg(long, default_value_t = ImproveSpec::default().eval_prompts)]
    pub eval_prompts: usize,
    /// Optimizer steps per round.
    #[arg(long, default_value_t = ImproveSpec::default().steps_per_round)]
    pub steps_per_round: usize,
    /// Examples (DPO: pairs) per optimizer step.
    #[arg(long, default_value_t = ImproveSpec::default().batch_size)]
    pub batch: usize,
    /// Learning rate (constant).
    #[arg(long, default_value_t = ImproveSpec::default().lr, value_parser = crate::cli::train::finite)]
    pub lr: f64,
    /// DPO and self-correct: pairs taken from one prompt's samples, at most.
    #[arg(long, default_value_t = ImproveSpec::default().pairs_per_prompt)]
    pub pairs_per_prompt: usize,
    /// Seed of the prompts, the sampling and the batches.
    #[arg(long, default_value_t = ImproveSpec::default().seed)]
    pub seed: u64,
    /// Intra-op threads (default, or 0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The new run folder (default: beside the base, named after it and the method).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ImproveArgs {
    /// The stage's settings.
    pub fn to_spec(&self) -> ImproveSpec {
        ImproveSpec {
            task: self.task,
            method: self.method,
            rounds: self.rounds,
            samples: self.samples,
            temperature: self.temperature,
            top_k: self.top_k,
            beta: self.beta,
            nll_weight: self.nll_weight,
            prompts_per_round: self.prompts_per_round,
            eval_prompts: self.eval_prompts,
            steps_per_round: self.steps_per_round,
            batch_size: self.batch,
            lr: self.lr,
            pairs_per_prompt: self.pairs_per_prompt,
            seed: self.seed,
            threads: self.threads,
        }
    }
}

/// `<base folder>-<method>`, or with `-2`, `-3`, ... the first that does not exist.
fn default_out(base: &Path, method: Method) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_string());
    let parent = base.parent().unwrap_or(Path::new("."));
    let first = parent.join(format!("{name}-{}", method.name()));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| parent.join(format!("{name}-{}-{n}", method.name())))
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

fn fmt(x: f64) -> String {
    format!("{x:.4}")
}

/// `hearth improve`: runs the stage, reports each round on stderr and ends with
/// `final round=<n> accuracy_before=<x> accuracy_after=<x>` (self-correct adds
/// `delta_i_to_c=<x> delta_c_to_i=<x>`).
pub fn run(args: &ImproveArgs) -> Result<()> {
    if !args.run.join("spec.json").is_file() {
        bail!(
            "--run {}: not a run folder (no spec.json)",
            args.run.display()
        );
    }
    let spec = args.to_spec();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.run, spec.method));
    let cancel = AtomicBool::new(false);
    let sampler = BatchedSampler::default();
    let mut last_phase: Option<(usize, Phase)> = None;
    let mut report = |event: ImproveEvent| match event {
        ImproveEvent::Started {
            out,
            held_out,
            rounds,
        } => eprintln!(
            "improving {} with {} on {} ({rounds} round{}, {held_out} held-out prompts) into {}",
            args.run.display(),
            spec.method.name(),
            spec.task.name(),
            if rounds == 1 { "" } else { "s" },
            out.display()
        ),
        ImproveEvent::Progress {
            round,
            phase,
            done,
            total,
        } => {
            if done == total && last_phase != Some((round, phase)) {
                last_phase = Some((round, phase));
                eprintln!("round {round}: {} done ({total})", phase.label());
            }
        }
        ImproveEvent::Round(r) => {
            let mut line = format!(
                "round {}: held-out accuracy {}",
                r.round,
                fmt(r.accuracy.accuracy)
            );
            if let (Some(a1), Some(ic), Some(ci)) = (
                r.accuracy.attempt1,
                r.accuracy.delta_i_to_c,
                r.accuracy.delta_c_to_i,
            ) {
                line.push_str(&format!(
                    " (attempt 1 {}, delta_i_to_c {}, delta_c_to_i {})",
                    fmt(a1),
                    fmt(ic),
                    fmt(ci)
                ));
            }
            if r.round > 0 {
                line.push_str(&format!(
                    "; samples passed {}/{}, trained on {}",
                    (r.sample_pass_rate * r.samples as f64).round(),
                    r.samples,
                    r.trained_on
                ));
                if let Some(loss) = r.train_loss {
                    line.push_str(&format!(", mean loss {}", fmt(loss)));
                }
                if let (Some(acc), Some(margin)) = (r.reward_accuracy, r.reward_margin) {
                    line.push_str(&format!(
                        ", reward accuracy {}, reward margin {}",
                        fmt(acc),
                        fmt(margin)
                    ));
                }
            }
            line.push_str(&format!(" [{:.0}s]", r.elapsed_s));
            eprintln!("{line}");
        }
        ImproveEvent::Warning(message) => eprintln!("warning: {message}"),
        ImproveEvent::Failed { reason } => eprintln!("failed: {reason}"),
        ImproveEvent::Samples { .. } | ImproveEvent::Step { .. } | ImproveEvent::Finished(_) => {}
    };
    let summary = run_improve(&args.run, &out, &spec, &sampler, &cancel, &mut report)?;
    eprintln!(
        "improved run: {} ({:.0}s)",
        out.display(),
        summary.elapsed_s
    );
    let mut line = format!(
        "final round={} accuracy_before={} accuracy_after={}",
        summary.rounds,
        fmt(summary.accuracy_before),
        fmt(summary.accuracy_after)
    );
    if let (Some(ic), Some(ci)) = (summary.delta_i_to_c, summary.delta_c_to_i) {
        line.push_str(&format!(
            " delta_i_to_c={} delta_c_to_i={}",
            fmt(ic),
            fmt(ci)
        ));
    }
    println!("{line}");
    Ok(())
}
