//! What the worker records of the training dynamics: each weight matrix's norms at the
//! dynamics interval with each block's residual size and attention entropy on the probe text,
//! weight and gradient histograms with each evaluation's step, and the probe insight
//! (per-token loss, logit lens, block statistics) at evaluations.

use super::Worker;
use crate::data::Corpus;
use crate::dynamics::{BlockRecord, DynamicsRecord, HistogramSet, MatrixRecord, ProbeInsight};
use crate::model::Model;
use crate::train::optim::GradBuffer;
use burn::tensor::Device;

/// What step `step` (counted from 1) records: the matrices' norms, the histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DynamicsDue {
    pub matrices: bool,
    pub histograms: bool,
}

/// Whether step `step` of a run of `steps` steps records matrices (every `interval` steps and
/// the last; never with an interval of 0) and histograms (at the steps that evaluate).
pub(super) fn due(step: usize, steps: usize, interval: usize, eval_interval: usize) -> DynamicsDue {
    let last = step == steps;
    DynamicsDue {
        matrices: interval > 0 && (step.is_multiple_of(interval) || last),
        histograms: interval > 0 && (step.is_multiple_of(eval_interval.max(1)) || last),
    }
}

impl Worker {
    /// What the step about to be taken records.
    pub(super) fn dynamics_due(&self) -> DynamicsDue {
        let t = &self.spec.train;
        due(self.step + 1, t.steps, t.dynamics_interval, t.eval_interval)
    }

    /// Keeps the histograms of `model`'s weights and their gradients `grads` for the step about
    /// to be taken.
    pub(super) fn record_histograms(&mut self, model: &Model, grads: &GradBuffer) {
        let set = HistogramSet {
            step: self.step + 1,
            histograms: crate::train::optim::histograms(model, grads),
        };
        self.record(self.store.append_histograms(&set));
    }

    /// Keeps the matrices' norms of the step just taken.
    pub(super) fn record_matrices(&mut self, matrices: Vec<MatrixRecord>) {
        if matrices.is_empty() {
            return;
        }
        let record = DynamicsRecord {
            step: self.step,
            matrices,
        };
        self.record(self.store.append_dynamics(&record));
    }

    /// Keeps each block's residual size and attention entropy on the probe text after a step
    /// that recorded the matrices (text-generating models: the probe is text). At an
    /// evaluation they are the figures of its probe insight, not computed again.
    pub(super) fn record_blocks(
        &mut self,
        model: &Model,
        probe: &[u32],
        device: &Device,
        insight: Option<&ProbeInsight>,
    ) {
        let t = &self.spec.train;
        if !due(self.step, t.steps, t.dynamics_interval, t.eval_interval).matrices
            || !self.objective.generates_text()
        {
            return;
        }
        let record = match insight {
            Some(i) => Some(BlockRecord {
                step: self.step,
                act_rms: i.act_rms.clone(),
                attn_entropy: i.attn_entropy.clone(),
            }),
            None => crate::eval::insight::block_stats(model, probe, self.step, device),
        };
        if let Some(record) = record {
            self.record(self.store.append_blocks(&record));
        }
    }

    /// Keeps the probe insight of a text-generating model at an evaluation, and gives it back.
    pub(super) fn record_insight(
        &mut self,
        model: &Model,
        corpus: &Corpus,
        probe: &[u32],
        device: &Device,
    ) -> Option<ProbeInsight> {
        if self.spec.train.dynamics_interval == 0 || !self.objective.generates_text() {
            return None;
        }
        let insight =
            crate::eval::insight::probe_insight(model, probe, &corpus.tokenizer, self.step, device);
        if let Some(insight) = &insight {
            self.record(self.store.append_insight(insight));
        }
        insight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_at_the_interval_and_the_last_step_histograms_at_evaluations() {
        let at = |step| due(step, 95, 10, 50);
        assert_eq!(
            at(10),
            DynamicsDue {
                matrices: true,
                histograms: false
            }
        );
        assert!(!at(11).matrices);
        assert!(at(50).histograms && at(50).matrices);
        assert!(at(95).histograms && at(95).matrices);
        assert_eq!(
            due(10, 95, 0, 10),
            DynamicsDue {
                matrices: false,
                histograms: false
            },
            "an interval of 0 records nothing"
        );
    }
}
