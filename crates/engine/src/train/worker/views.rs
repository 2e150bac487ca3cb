//! What the worker records besides steps: evaluations (with the objective's views and health
//! rule), samples, attention snapshots and checkpoints.

use super::clock::ActiveClock;
use super::{Worker, moment_paths, step_data};
use crate::data::Corpus;
use crate::eval::generate;
use crate::events::{AttentionSnapshot, EvalMetrics, RunEvent};
use crate::model::Model;
use crate::objective::{EvalView, PairSet};
use crate::project::live::LiveView;
use crate::train::optim::AdamW;
use burn::module::Module;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;
use std::sync::Arc;

impl Worker {
    /// Evaluates the model, judges the objective's health rule, records and sends the
    /// evaluation and the views the objective offers.
    pub(super) fn evaluate(
        &mut self,
        model: &Model,
        corpus: &Corpus,
        pairs: Option<&PairSet>,
        device: &Device,
        active: &ActiveClock,
    ) -> EvalMetrics {
        let spec = self.spec.clone();
        let snapshot = model.valid();
        // The same batches (and masks) at every evaluation, so successive estimates differ only
        // by the model.
        let mut rng = StdRng::seed_from_u64(spec.train.seed ^ 0x5eed_e7a1);
        let data = step_data(&spec, corpus, pairs);
        let objective = Arc::clone(&self.objective);
        let evaluation = objective.evaluate(&snapshot, &data, &mut rng, device);
        debug_assert!(
            evaluation
                .metrics
                .iter()
                .all(|(key, _)| objective.metrics().contains(key)),
            "{} reported a metric it does not declare: {:?}",
            spec.objective.kind,
            evaluation.metrics
        );
        if !self.collapse_told
            && let Some(message) =
                objective.health_warning(&spec.objective, self.step, spec.train.steps, &|key| {
                    evaluation.metric(key)
                })
        {
            self.collapse_told = true;
            let step = self.step;
            self.record(self.store.append_message(step, "warning", &message));
            self.send(RunEvent::Warning { step, message });
        }
        let mut extra = evaluation.named_metrics();
        if let Some(sts) = &self.sts {
            let score = crate::eval::retrieval::sts_score(
                &snapshot,
                sts,
                spec.objective.embed_spec(),
                &corpus.tokenizer,
                device,
            );
            extra.extend(crate::eval::retrieval::sts_metrics(&score));
        }
        let eval = EvalMetrics {
            step: self.step,
            train_loss: evaluation.train_loss,
            val_loss: evaluation.val_loss,
            elapsed_s: active.elapsed_s(),
            extra,
        };
        self.record(self.store.append_eval(&eval));
        self.send(RunEvent::Eval(eval.clone()));
        for view in objective.views(&snapshot, &data, &mut rng, device, self.step) {
            match view {
                EvalView::EmbeddingMap(mut map) => {
                    if let Some(previous) = &self.last_map {
                        crate::viz::pca::align(previous, &mut map.points);
                    }
                    self.last_map = Some(map.points.clone());
                    self.record(self.store.append_embedding_map(&map));
                    self.send(RunEvent::EmbeddingMap(map));
                }
                EvalView::ContrastiveBatch(batch) => {
                    self.record(
                        self.store
                            .set_live_view(&LiveView::ContrastiveBatch(batch.clone())),
                    );
                    self.send(RunEvent::ContrastiveBatch(batch));
                }
                EvalView::MaskedProbe(probe) => {
                    self.record(
                        self.store
                            .set_live_view(&LiveView::MaskedProbe(probe.clone())),
                    );
                    self.send(RunEvent::MaskedProbe(probe));
                }
            }
        }
        eval
    }

    /// Writes a sample of generated text, when the objective generates text.
    pub(super) fn sample(&mut self, model: &Model, corpus: &Corpus, device: &Device) {
        let n = self.spec.train.sample_tokens;
        if n == 0 || !self.objective.generates_text() {
            return;
        }
        let snapshot = model.valid();
        let mut rng = StdRng::seed_from_u64(self.spec.train.seed.wrapping_add(self.step as u64));
        // Instruction data: continue the first validation prompt; else the validation text.
        let first = corpus.val.to_vec(0..1);
        let prompt = match corpus.examples_val.first() {
            Some(ex) => &ex.ids[..ex.prompt_len],
            None => &first[..],
        };
        let ids = generate(&snapshot, prompt, n, 1.0, &mut rng, device);
        let text = corpus.tokenizer.decode(&[prompt, ids.as_slice()].concat());
        let step = self.step;
        self.record(self.store.append_sample(step, &text));
        self.send(RunEvent::Sample { step, text });
    }

    /// Sends the attention maps of the probe text (stored when `keep`).
    pub(super) fn attention(
        &mut self,
        model: &Model,
        corpus: &Corpus,
        probe: &[u32],
        device: &Device,
        keep: bool,
    ) {
        if probe.is_empty() {
            return;
        }
        let maps = model.capture_attention(probe, self.spec.objective.attention_mode(), device);
        let shown = &probe[probe.len() - maps.seq..];
        let tokens = shown
            .iter()
            .map(|&id| corpus.tokenizer.token_label(id))
            .collect();
        let step = self.step;
        let snapshot = AttentionSnapshot { step, tokens, maps };
        if keep {
            self.record(self.store.append_attention(&snapshot));
        }
        // The newest one, for windows attached from other processes.
        self.record(
            self.store
                .set_live_view(&LiveView::Attention(snapshot.clone())),
        );
        self.send(RunEvent::Attention(snapshot));
    }

    /// Writes the weights and the optimizer moments (so the run can resume exactly here).
    pub(super) fn checkpoint(&mut self, model: &Model, optim: &AdamW) {
        let step = self.step;
        let path = self
            .store
            .dir()
            .join("checkpoints")
            .join(format!("step-{step:06}.bpk"));
        let (m_path, v_path) = moment_paths(&path);
        // Moments first, weights last, each through a rename: a run killed while saving
        // leaves no half-written file, and resume takes only weights that have their moments.
        let saved = match optim.moments_as_modules(model) {
            Some((m, v)) => save_atomic(&m_path, |p| m.save_file(p))
                .and_then(|()| save_atomic(&v_path, |p| v.save_file(p))),
            None => Ok(()),
        }
        .and_then(|()| save_atomic(&path, |p| model.valid().save_file(p)));
        match saved {
            Ok(()) => {
                self.record(self.store.append_checkpoint(step, &path));
                self.send(RunEvent::Checkpoint { step, path });
            }
            Err(err) => self.send(RunEvent::Warning {
                step,
                message: format!("checkpoint {} not written: {err}", path.display()),
            }),
        }
    }
}

/// Writes a file through `write` into a temporary name, then renames it into place.
fn save_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), burn::store::RecordError>,
) -> Result<(), SaveError> {
    let tmp = path.with_extension("partial");
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|source| SaveError::Rename {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a checkpoint file was not written.
#[derive(Debug, thiserror::Error)]
enum SaveError {
    /// The recorder could not write the temporary file.
    #[error(transparent)]
    Record(#[from] burn::store::RecordError),
    /// The temporary file could not be renamed into place.
    #[error("cannot rename into {}: {source}", path.display())]
    Rename {
        /// The checkpoint's final path.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}
