//! What a run worker tells the world, and what it can be told.

use crate::model::AttentionMaps;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Metrics of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Steps completed, counting from 1.
    pub step: usize,
    /// Loss of this step's batch.
    pub train_loss: f32,
    /// Learning rate the step used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Training throughput over the recent steps.
    pub tokens_per_s: f64,
    /// Seconds of training since the run started, pauses excluded.
    pub elapsed_s: f64,
    /// Training tokens read since the run started.
    pub tokens_seen: u64,
}

/// Loss estimated on held-out batches, and the objective's own metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Steps completed when the estimate was made.
    pub step: usize,
    /// Mean loss over `eval_batches` train batches.
    pub train_loss: f32,
    /// Mean loss over `eval_batches` validation batches (the generation loss for GRIT).
    pub val_loss: f32,
    /// Seconds of training when the estimate was made, pauses excluded.
    pub elapsed_s: f64,
    /// Objective metrics by name: `val_masked_acc`, `val_recall_at_1`, `val_mrr`, ...
    #[serde(default)]
    pub extra: Vec<(String, f64)>,
}

impl EvalMetrics {
    /// The objective metric called `name`, if this evaluation has it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.extra.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// How a run ended well (finished or stopped by the user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Steps completed.
    pub step: usize,
    /// Train loss of the final evaluation.
    pub train_loss: f32,
    /// Validation loss of the final evaluation.
    pub val_loss: f32,
    /// Mean training throughput.
    pub tokens_per_s: f64,
    /// Seconds of training, pauses excluded.
    pub elapsed_s: f64,
    /// True when the user stopped the run before its last step.
    pub stopped_early: bool,
    /// Seconds spent summing gradients and losses across processes (0 in one process).
    #[serde(default)]
    pub allreduce_s: f64,
}

/// Attention maps on the run's probe text at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionSnapshot {
    /// Steps completed when the maps were captured.
    pub step: usize,
    /// The probe's tokens as text, one label per position.
    pub tokens: Vec<String>,
    /// Attention weights of every layer and head.
    pub maps: AttentionMaps,
}

/// A fixed probe set of texts embedded and projected to 2-D (PCA, axes aligned with the
/// previous snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingSnapshot {
    /// Steps completed when the probe set was embedded.
    pub step: usize,
    /// The 2-D position of each probe text.
    pub points: Vec<[f32; 2]>,
    /// 0 for a query, 1 for its positive.
    pub groups: Vec<u8>,
    /// The probe texts, in point order.
    pub texts: Vec<String>,
}

/// One validation batch of a contrastive objective: query-by-candidate cosine similarities and,
/// per query, the margin between its positive and its hardest negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContrastiveBatch {
    /// Steps completed when the batch was scored.
    pub step: usize,
    /// Row-major `[n, n]`: row = query, column = candidate; the diagonal holds the positives.
    pub sims: Vec<f32>,
    /// Queries (and candidates) in the batch.
    pub n: usize,
    /// `sim(q_i, p_i) - max_{j != i} sim(q_i, p_j)`; positive means the positive wins.
    pub margins: Vec<f32>,
}

/// A probe text with masked positions and the model's top predictions there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskedProbe {
    /// Steps completed when the probe was predicted.
    pub step: usize,
    /// The original tokens as text.
    pub tokens: Vec<String>,
    /// Positions that were masked.
    pub masked: Vec<usize>,
    /// For each masked position, the top predictions with their probabilities.
    pub predictions: Vec<Vec<(String, f32)>>,
}

/// Events a run worker sends, in order. Big payloads are plain vectors, never tensors.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The model is built and training begins.
    Started {
        /// Trainable parameters of the model.
        n_params: usize,
        /// Tokens in the vocabulary.
        vocab: usize,
        /// Where it computes, with its thread count (`LibTorch CPU (4 threads)`).
        device: String,
        /// Intra-op threads the run uses.
        threads: usize,
        /// Steps the run will take.
        total_steps: usize,
    },
    /// Simple models' figures on the run's data (count models, TF-IDF, chance), sent once
    /// when training starts.
    References(Vec<Reference>),
    /// One optimizer step finished.
    Step(StepMetrics),
    /// The terms of that step's loss, where it sums several (contrastive: `step_infonce`,
    /// `step_masked_loss`), each unweighted; sent right after its [`RunEvent::Step`].
    StepTerms {
        /// The step.
        step: usize,
        /// Each term's name and value.
        terms: Vec<(String, f64)>,
    },
    /// A validation estimate finished.
    Eval(EvalMetrics),
    /// Attention weights on the probe text.
    Attention(AttentionSnapshot),
    /// The embedding map of the probe set (embedding objectives, at each evaluation).
    EmbeddingMap(EmbeddingSnapshot),
    /// Similarities in one validation batch (contrastive and GRIT, at each evaluation).
    ContrastiveBatch(ContrastiveBatch),
    /// Predictions on a masked probe (masked objective, at each evaluation).
    MaskedProbe(MaskedProbe),
    /// Text generated by the model.
    Sample {
        /// Steps completed when it was generated.
        step: usize,
        /// The generated text.
        text: String,
    },
    /// Weights were written.
    Checkpoint {
        /// Steps completed in the weights.
        step: usize,
        /// The checkpoint file.
        path: PathBuf,
    },
    /// Something recoverable went wrong; training continues.
    Warning {
        /// Steps completed when it happened.
        step: usize,
        /// What went wrong.
        message: String,
    },
    /// The run paused after a step.
    Paused {
        /// Steps completed.
        step: usize,
    },
    /// The run resumed after a pause.
    Resumed {
        /// Steps completed.
        step: usize,
    },
    /// The run ended normally or was stopped.
    Finished(RunSummary),
    /// The run cannot continue: non-finite loss, a panic, bad data. The studio keeps working.
    Failed {
        /// Steps completed.
        step: usize,
        /// Why the run cannot continue.
        reason: String,
    },
}

impl RunEvent {
    /// True for the last event a run sends.
    pub fn is_terminal(&self) -> bool {
        matches!(self, RunEvent::Finished(_) | RunEvent::Failed { .. })
    }
}

/// Commands to a running worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunControl {
    /// Hold after the current step until `Resume` or `Stop`.
    Pause,
    /// Continue a paused run.
    Resume,
    /// Finish after the current step: final evaluation and checkpoint, then `Finished`.
    Stop,
    /// Take the attention snapshot (and embedding map, where the objective draws one) after
    /// the current step, whatever the intervals say.
    Snapshot,
}

impl RunControl {
    /// The control as one word, as the run store keeps it.
    pub fn word(self) -> &'static str {
        match self {
            RunControl::Pause => "pause",
            RunControl::Resume => "resume",
            RunControl::Stop => "stop",
            RunControl::Snapshot => "snapshot",
        }
    }

    /// The control a word names.
    pub fn from_word(word: &str) -> Option<Self> {
        [
            RunControl::Pause,
            RunControl::Resume,
            RunControl::Stop,
            RunControl::Snapshot,
        ]
        .into_iter()
        .find(|c| c.word() == word)
    }
}

/// A simple model's figure on the run's own data, drawn as a labelled horizontal line beside
/// the run's metric so a user sees at once whether the model beats it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The metric it compares with (`val_loss`, `val_masked_acc`, `val_mrr`, ...).
    pub metric: String,
    /// What it is (`5-gram count model`, `word TF-IDF`, `chance`).
    pub label: String,
    /// Its value, in the metric's units.
    pub value: f64,
}

impl Reference {
    /// A reference for `metric`.
    pub fn new(metric: &str, label: impl Into<String>, value: f64) -> Self {
        Self {
            metric: metric.to_string(),
            label: label.into(),
            value,
        }
    }
}
