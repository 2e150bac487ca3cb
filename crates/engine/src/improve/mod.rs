//! Improving a finished run from its own attempts, on tasks whose answers a program checks.
//!
//! A stage starts from a run's newest checkpoint and tokenizer, samples answers to task prompts
//! on the run's backend (batched), checks every answer with the task's checker, trains on what
//! the checks select, and writes the result as a new run folder linked to its base (the base
//! run is only read). Three methods:
//!
//! - [`Method::Star`]: rejection-sampling fine-tuning (STaR, Zelikman et al. 2022, "STaR:
//!   Bootstrapping Reasoning With Reasoning"): per round, sample K answers per prompt, keep
//!   the verified ones (deduplicated), fine-tune on them with the loss on the answer only, and
//!   sample the next round from the improved model;
//! - [`Method::Dpo`]: direct preference optimisation (DPO, Rafailov et al. 2023, "Direct
//!   Preference Optimization: Your Language Model is Secretly a Reward Model") on pairs of a
//!   verified and a failed answer to the same prompt, against the frozen base as the
//!   reference model ([`loss::dpo_loss`], the sigmoid loss as TRL computes it);
//! - [`Method::SelfCorrect`]: a two-attempt format (prompt, first answer, the fixed
//!   [`CHECK_MARKER`], second answer) trained on pairs the checker builds from samples (wrong
//!   then right, right then right) with the loss on the second answer only; reported as
//!   accuracy at both attempts and the shares of problems that flip, Delta(i->c) and
//!   Delta(c->i), as SCoRe does (Kumar et al. 2024, "Training Language Models to
//!   Self-Correct via Reinforcement Learning").
//!
//! Accuracy is measured on held-out prompts the base never trained on (its dataset's
//! validation records of the task), with greedy decoding; round 0 is the base.
//!
//! [`run_improve`] runs a stage on the calling thread and reports [`ImproveEvent`]s through a
//! callback; [`spawn_improve`] runs it on a background thread with an event channel and a
//! cancel flag (what the studio drives).

pub mod loss;
pub mod sample;
pub mod stage;
pub mod task;

pub use sample::{BatchedSampler, Sampler};
pub use stage::{run_improve, spawn_improve};
pub use task::{TaskItem, TaskKind, TaskSet};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a self-correcting model reads between its first and its second attempt.
pub const CHECK_MARKER: &str = "### Check:\n";

/// The file in an improved run's folder that links it to its base and holds the stage's
/// settings and results.
pub const IMPROVE_FILE: &str = "improve.json";

/// How a stage learns from the checked samples; on the command line `star`, `dpo` and
/// `self-correct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Fine-tune on verified samples (STaR).
    Star,
    /// Preference pairs (verified, failed) with the DPO loss against the frozen base.
    Dpo,
    /// Two attempts: learn to answer again after the check marker (SCoRe's format).
    SelfCorrect,
}

impl Method {
    /// Every method, in the order a studio lists them.
    pub const ALL: [Method; 3] = [Method::Star, Method::Dpo, Method::SelfCorrect];

    /// The name on the command line and in run names.
    pub fn name(self) -> &'static str {
        match self {
            Method::Star => "star",
            Method::Dpo => "dpo",
            Method::SelfCorrect => "self-correct",
        }
    }
}

/// The settings of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImproveSpec {
    /// The task whose checker judges the samples.
    pub task: TaskKind,
    /// How the checked samples are learned from.
    pub method: Method,
    /// Rounds of sampling, checking and training.
    pub rounds: usize,
    /// Answers sampled per prompt (K).
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Draw among the `top_k` most likely tokens only (0: among all).
    pub top_k: usize,
    /// DPO: how far the policy may move from the reference (the beta of the loss).
    pub beta: f64,
    /// DPO: weight of the negative log-likelihood of the verified answers added to the DPO
    /// loss (0: plain DPO). The DPO loss alone may lower the verified answers' likelihood as
    /// well as the failed ones', spreading it over tokens no answer uses; the added term keeps
    /// it up (RPO, Pang et al. 2024, "Iterative Reasoning Preference Optimization"; TRL's
    /// `rpo_alpha`).
    pub nll_weight: f64,
    /// Training prompts sampled per round (the cap that keeps a round short).
    pub prompts_per_round: usize,
    /// Held-out prompts the accuracy is measured on (at most the base's validation records).
    pub eval_prompts: usize,
    /// Optimizer steps per round.
    pub steps_per_round: usize,
    /// Examples (DPO: pairs) per optimizer step.
    pub batch_size: usize,
    /// Learning rate (constant; AdamW without weight decay, gradients clipped at 1).
    pub lr: f64,
    /// Preference or correction pairs taken from one prompt's samples, at most.
    pub pairs_per_prompt: usize,
    /// Seed of the prompts, the sampling and the batches.
    pub seed: u64,
    /// Intra-op threads (0: all cores).
    pub threads: usize,
}

impl Default for ImproveSpec {
    fn default() -> Self {
        Self {
            task: TaskKind::Arithmetic,
            method: Method::Star,
            rounds: 3,
            samples: 4,
            temperature: 1.0,
            top_k: 0,
            beta: 0.1,
            nll_weight: 1.0,
            prompts_per_round: 2048,
            eval_prompts: 600,
            steps_per_round: 60,
            batch_size: 32,
            lr: 1e-4,
            pairs_per_prompt: 2,
            seed: 1,
            threads: 0,
        }
    }
}

impl ImproveSpec {
    /// Settings that cannot run, each as `field: message`.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut need = |ok: bool, field: &str, message: &str| {
            if !ok {
                errors.push(format!("{field}: {message}"));
            }
        };
        need(self.rounds >= 1, "rounds", "at least 1");
        need(self.samples >= 1, "samples", "at least 1 per prompt");
        need(
            self.temperature.is_finite() && self.temperature > 0.0,
            "temperature",
            "must be a positive number",
        );
        need(
            self.beta.is_finite() && self.beta > 0.0,
            "beta",
            "must be a positive number",
        );
        need(
            self.nll_weight.is_finite() && self.nll_weight >= 0.0,
            "nll_weight",
            "must be 0 or a positive number",
        );
        need(
            self.prompts_per_round >= 1,
            "prompts_per_round",
            "at least 1",
        );
        need(self.eval_prompts >= 1, "eval_prompts", "at least 1");
        need(self.steps_per_round >= 1, "steps_per_round", "at least 1");
        need(self.batch_size >= 1, "batch_size", "at least 1");
        need(
            self.lr.is_finite() && self.lr > 0.0,
            "lr",
            "must be a positive number",
        );
        need(self.pairs_per_prompt >= 1, "pairs_per_prompt", "at least 1");
        if self.method != Method::Star && self.samples < 2 {
            errors.push(format!(
                "samples: {} needs at least 2 samples per prompt to pair a right and a wrong answer",
                self.method.name()
            ));
        }
        errors
    }
}

/// What a stage is doing, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Greedy answers to the held-out prompts.
    Evaluating,
    /// Sampling answers to the round's prompts.
    Sampling,
    /// Checking the sampled answers.
    Checking,
    /// Optimizer steps on what the checks selected.
    Training,
}

impl Phase {
    /// The phase as one word.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Evaluating => "evaluating",
            Phase::Sampling => "sampling",
            Phase::Checking => "checking",
            Phase::Training => "training",
        }
    }
}

/// One sampled answer and the checker's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedSample {
    /// The task instruction (without the template).
    pub prompt: String,
    /// The first answer, for a second attempt (self-correct); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// The sampled answer (up to its newline).
    pub answer: String,
    /// Whether the checker passed it.
    pub pass: bool,
    /// The checker's reason.
    pub reason: String,
    /// Whether the round trained on it (kept by STaR, in a DPO or correction pair).
    pub trained: bool,
}

/// Accuracy of a model on the held-out prompts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Share of held-out prompts answered right (self-correct: at the second attempt).
    pub accuracy: f64,
    /// Self-correct: share right at the first attempt.
    pub attempt1: Option<f64>,
    /// Self-correct: share wrong at the first attempt and right at the second.
    pub delta_i_to_c: Option<f64>,
    /// Self-correct: share right at the first attempt and wrong at the second.
    pub delta_c_to_i: Option<f64>,
}

/// What one round did (round 0: the base, evaluated only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    /// The round, from 0 (the base).
    pub round: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Held-out accuracy after the round.
    pub accuracy: Accuracy,
    /// Share of the round's samples the checker passed.
    pub sample_pass_rate: f64,
    /// Samples checked this round.
    pub samples: usize,
    /// Training examples (STaR), preference pairs (DPO) or correction pairs (self-correct).
    pub trained_on: usize,
    /// Mean training loss of the round's steps.
    pub train_loss: Option<f64>,
    /// DPO: share of the round's pairs whose verified answer has the larger implicit reward.
    pub reward_accuracy: Option<f64>,
    /// DPO: mean implicit reward of the verified answer minus that of the failed one.
    pub reward_margin: Option<f64>,
    /// Seconds since the stage started.
    pub elapsed_s: f64,
}

/// How a stage ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImproveSummary {
    /// The new run folder.
    pub out: PathBuf,
    /// Rounds completed.
    pub rounds: usize,
    /// Held-out accuracy of the base (greedy; self-correct: its first attempt).
    pub accuracy_before: f64,
    /// Held-out accuracy of the improved model (self-correct: at the second attempt).
    pub accuracy_after: f64,
    /// Self-correct: the improved model's Delta(i->c).
    pub delta_i_to_c: Option<f64>,
    /// Self-correct: the improved model's Delta(c->i).
    pub delta_c_to_i: Option<f64>,
    /// Every round, the base as round 0.
    pub history: Vec<RoundResult>,
    /// Seconds the stage took.
    pub elapsed_s: f64,
}

/// What a stage reports, in order.
#[derive(Debug, Clone)]
pub enum ImproveEvent {
    /// The base is loaded and the new run folder written.
    Started {
        /// The new run folder.
        out: PathBuf,
        /// Held-out prompts.
        held_out: usize,
        /// Rounds to run.
        rounds: usize,
    },
    /// Progress within a phase of a round.
    Progress {
        /// The round (0: the base's evaluation).
        round: usize,
        /// What is being done.
        phase: Phase,
        /// Units done (prompts, samples or steps).
        done: usize,
        /// Units in the phase.
        total: usize,
    },
    /// The round's samples, checked.
    Samples {
        /// The round.
        round: usize,
        /// Every sample with its verdict.
        samples: Vec<CheckedSample>,
    },
    /// One optimizer step.
    Step {
        /// The round.
        round: usize,
        /// Steps so far in the stage.
        step: usize,
        /// The step's loss.
        loss: f64,
        /// DPO: share of the batch's pairs ranked right by the implicit reward.
        reward_accuracy: Option<f64>,
        /// DPO: mean reward margin of the batch.
        reward_margin: Option<f64>,
    },
    /// A round finished (round 0: the base evaluated).
    Round(RoundResult),
    /// Something recoverable: the stage goes on.
    Warning(String),
    /// The stage finished.
    Finished(ImproveSummary),
    /// The stage failed; the new run is marked failed and the base is as it was.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Why a stage cannot start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ImproveError {
    /// A setting that cannot run, naming its field.
    #[error("{0}")]
    Invalid(String),
    /// The base run cannot be read or does not suit the task.
    #[error("{path}: {message}")]
    Base {
        /// The base run folder (or its file).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The stage started and failed (the new run is marked failed).
    #[error("{0}")]
    Failed(String),
    /// A training step of a round diverged (the new run is marked failed).
    #[error("round {round}: {source}")]
    Diverged {
        /// The round (counted from 1).
        round: usize,
        /// Which number stopped being finite, at which step.
        source: crate::train::RunFailure,
    },
    /// Stopped by its cancel flag (the new run is marked stopped).
    #[error("stopped")]
    Cancelled,
}
