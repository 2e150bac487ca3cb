//! The training loop: prepare, start (fresh, fine-tune or resume), step until the last step or
//! a stop, finish with a final evaluation and checkpoint.

use super::gradients::{same_weights_on_every_rank, step_gradients};
use super::prepare::{Prepared, Session};
use super::{RunFailure, Worker, step_data};
use crate::events::{EvalMetrics, RunEvent, RunSummary, StepMetrics};
use crate::project::RunStatus;
use crate::spec::{RunSpec, TrainSpec};
use crate::train::schedule::warmup_cosine;
use burn::module::Module;
use burn::tensor::Device;
use std::time::Duration;

/// What stays fixed while the loop runs.
struct LoopSetup {
    /// The device evaluations and snapshots run on (without autodiff).
    device: Device,
    /// One autodiff device per replica; the first is the run's own.
    replicas: Vec<Device>,
    /// Intra-op threads of the run.
    threads: usize,
    /// The text whose attention maps are shown.
    probe: Vec<u32>,
    /// Tokens of one optimizer step (all micro-batches).
    tokens_per_step: u64,
}

/// How the loop ended.
struct LoopEnd {
    /// The latest evaluation, if one was made.
    last_eval: Option<EvalMetrics>,
    /// Stopped by a control before the last step.
    stopped_early: bool,
    /// Time spent summing gradients across processes.
    allreduce: Duration,
}

impl Worker {
    /// Trains the run on `threads` intra-op threads (set by the caller).
    pub(super) fn train(&mut self, threads: usize) -> Result<RunSummary, RunFailure> {
        self.record(self.store.set_status(&RunStatus::Running));
        let prepared = self.prepare()?;
        let t = &self.spec.train;
        let device = t
            .backend
            .device()
            .map_err(|e| RunFailure::Backend(e.to_string()))?;
        device.seed(t.seed);
        let session = self.start_session(&prepared, &device)?;
        let setup = self.loop_setup(&prepared, device, threads)?;
        let start = crate::project::live::WorkerStart {
            n_params: session.model.num_params(),
            vocab: prepared.corpus.tokenizer.vocab_size(),
            device: format!(
                "{} ({threads} thread{})",
                self.spec.train.backend.label(),
                if threads == 1 { "" } else { "s" }
            ),
            threads,
            total_steps: self.spec.train.steps,
        };
        self.record(self.store.set_worker_start(&start));
        self.send(RunEvent::Started {
            n_params: start.n_params,
            vocab: start.vocab,
            device: start.device,
            threads,
            total_steps: start.total_steps,
        });
        let first_step = self.step;
        let (session, end) = self.train_loop(&prepared, &setup, session)?;
        Ok(self.finish(&prepared, &setup, &session, end, first_step))
    }

    /// The replicas, the probe text and the step's size.
    fn loop_setup(
        &self,
        prepared: &Prepared,
        device: Device,
        threads: usize,
    ) -> Result<LoopSetup, RunFailure> {
        let t = &self.spec.train;
        let context = self.spec.model.context;
        let corpus = &prepared.corpus;
        let probe: Vec<u32> = if t.probe_text.is_empty() {
            corpus.val.to_vec(0..context)
        } else {
            corpus.tokenizer.encode(&t.probe_text)
        };
        let train_device = device.clone().autodiff();
        let replicas: Vec<Device> = match t.backend.replica_devices(&t.devices) {
            Ok(devices) if devices.len() > 1 => {
                let mut all = vec![train_device];
                all.extend(devices[1..].iter().map(|d| d.clone().autodiff()));
                all
            }
            Ok(_) => vec![train_device],
            Err(message) => return Err(RunFailure::Backend(message.to_string())),
        };
        Ok(LoopSetup {
            device,
            replicas,
            threads,
            probe,
            tokens_per_step: (t.batch_size * t.grad_accum.max(1) * context) as u64,
        })
    }

    /// Steps until the last step or a stop, evaluating, sampling, snapshotting and
    /// checkpointing at their intervals.
    fn train_loop(
        &mut self,
        prepared: &Prepared,
        setup: &LoopSetup,
        mut session: Session,
    ) -> Result<(Session, LoopEnd), RunFailure> {
        let spec = self.spec.clone();
        let t = &spec.train;
        let mut throughput = super::clock::Throughput::default();
        let mut end = LoopEnd {
            last_eval: None,
            stopped_early: false,
            allreduce: Duration::ZERO,
        };
        while self.step < t.steps {
            if self.poll_controls(&mut session.active) {
                end.stopped_early = true;
                break;
            }
            let (next, metrics) =
                self.one_step(&spec, prepared, setup, session, &mut end.allreduce)?;
            session = next;
            let metrics = StepMetrics {
                tokens_per_s: throughput.record(setup.tokens_per_step),
                ..metrics
            };
            self.record(self.store.append_step(&metrics));
            self.send(RunEvent::Step(metrics));
            self.after_step(t, prepared, setup, &session, &mut end);
        }
        Ok((session, end))
    }

    /// One optimizer step: the gradients of every micro-batch, replica and rank, checks that
    /// the run has not diverged, the update, and the step's loss terms.
    fn one_step(
        &mut self,
        spec: &RunSpec,
        prepared: &Prepared,
        setup: &LoopSetup,
        mut session: Session,
        allreduce: &mut Duration,
    ) -> Result<(Session, StepMetrics), RunFailure> {
        let (t, total_steps) = (&spec.train, spec.train.steps);
        let lr_scale = spec.init.as_ref().map_or(1.0, |i| i.lr_multiplier);
        let lr = warmup_cosine(
            self.step,
            spec.optim.lr * lr_scale,
            spec.optim.min_lr * lr_scale,
            spec.optim.warmup_steps,
            total_steps,
        );
        let mut data = step_data(spec, &prepared.corpus, prepared.pairs.as_ref());
        data.progress = self.step as f64 / total_steps.max(1) as f64;
        data.batch_size = t.batch_size / (setup.replicas.len() * self.collective.size());
        let (grads, loss, terms, reduce) = step_gradients(
            self.objective.as_ref(),
            &session.model,
            &setup.replicas,
            self.collective.as_ref(),
            &data,
            &mut session.rng,
            t.grad_accum.max(1),
            setup.threads,
            t.backend,
        );
        *allreduce += reduce;
        let due = self.dynamics_due();
        if due.histograms {
            self.record_histograms(&session.model, &grads);
        }
        let (model, grad_norm, matrices) = crate::train::update::apply_measured(
            &mut session.optim,
            session.model,
            &grads,
            lr,
            loss,
            self.step + 1,
            due.matrices,
        )?;
        session.model = model;
        self.step += 1;
        self.record_matrices(matrices);
        if self.collective.size() > 1 && self.step.is_multiple_of(100) {
            same_weights_on_every_rank(&session.model, self.collective.as_ref(), self.step)?;
        }
        if !terms.is_empty() {
            self.record(self.store.append_step_terms(self.step, &terms));
            self.send(RunEvent::StepTerms {
                step: self.step,
                terms,
            });
        }
        let metrics = StepMetrics {
            step: self.step,
            train_loss: loss,
            lr,
            grad_norm,
            tokens_per_s: 0.0,
            elapsed_s: session.active.elapsed_s(),
            tokens_seen: self.step as u64 * setup.tokens_per_step,
        };
        Ok((session, metrics))
    }

    /// Evaluations (with a sample), attention snapshots and checkpoints due after a step.
    fn after_step(
        &mut self,
        t: &TrainSpec,
        prepared: &Prepared,
        setup: &LoopSetup,
        session: &Session,
        end: &mut LoopEnd,
    ) {
        let (corpus, model) = (&prepared.corpus, &session.model);
        let last = self.step == t.steps;
        let eval_now = self.step.is_multiple_of(t.eval_interval) || last;
        if eval_now {
            let pairs = prepared.pairs.as_ref();
            end.last_eval =
                Some(self.evaluate(model, corpus, pairs, &setup.device, &session.active));
            self.sample(model, corpus, &setup.device);
        }
        let insight = eval_now
            .then(|| self.record_insight(model, corpus, &setup.probe, &setup.device))
            .flatten();
        self.record_blocks(model, &setup.probe, &setup.device, insight.as_ref());
        // Snapshots at evaluations are kept in the store for comparing runs later.
        let periodic = t.attention_interval > 0
            && (self.step.is_multiple_of(t.attention_interval) || self.step == 1);
        let asked = std::mem::take(&mut self.snapshot_requested);
        if eval_now || periodic || asked {
            self.attention(model, corpus, &setup.probe, &setup.device, eval_now);
        }
        if t.checkpoint_interval > 0 && self.step.is_multiple_of(t.checkpoint_interval) && !last {
            self.checkpoint(model, &session.optim);
        }
    }

    /// The final evaluation (unless the last step made one) and checkpoint, and the summary.
    fn finish(
        &mut self,
        prepared: &Prepared,
        setup: &LoopSetup,
        session: &Session,
        end: LoopEnd,
        first_step: usize,
    ) -> RunSummary {
        let eval = match end.last_eval {
            Some(eval) if eval.step == self.step => eval,
            _ => self.evaluate(
                &session.model,
                &prepared.corpus,
                prepared.pairs.as_ref(),
                &setup.device,
                &session.active,
            ),
        };
        self.checkpoint(&session.model, &session.optim);
        let elapsed_s = session.active.elapsed_s();
        // Throughput of this session's steps (a resumed run started at `first_step`).
        let earlier_s = self.resume.as_ref().map_or(0.0, |p| p.elapsed_s);
        RunSummary {
            step: self.step,
            train_loss: eval.train_loss,
            val_loss: eval.val_loss,
            tokens_per_s: ((self.step - first_step) as u64 * setup.tokens_per_step) as f64
                / (elapsed_s - earlier_s).max(1e-9),
            elapsed_s,
            stopped_early: end.stopped_early,
            allreduce_s: end.allreduce.as_secs_f64(),
        }
    }
}
