//! The run worker thread.

use super::collective::{Collective, Solo};
use super::optim::{AdamW, GradBuffer, flatten_params, unflatten_params};
use super::schedule::warmup_cosine;
use crate::backend::default_threads;
use crate::data::Corpus;
use crate::data::pairs::read_pairs;
use crate::eval::generate;
use crate::events::{
    AttentionSnapshot, EvalMetrics, RunControl, RunEvent, RunSummary, StepMetrics,
};
use crate::model::{Gpt, SpecError};
use crate::objective::{EvalView, Objective, PairSet, Positives, StepData};
use crate::project::{RunStatus, RunStore, StoreError};
use crate::spec::RunSpec;
use burn::module::Module;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::spec::TrainSpec;

/// Called after the worker sends events, so a UI can schedule a repaint.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Settings that cannot train, each naming its field.
    #[error("invalid settings: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<SpecError>),
    /// The run folder could not be created or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system refused the worker thread.
    #[error("cannot start the training thread: {0}")]
    Thread(std::io::Error),
}

/// The worker of a run has ended and sends nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run's worker has ended")]
pub struct WorkerGone;

/// The studio's or CLI's end of a running worker. Dropping it stops the run and waits for the
/// thread, so no run outlives its owner.
pub struct RunHandle {
    /// The run folder.
    pub dir: PathBuf,
    events: Receiver<RunEvent>,
    control: Sender<RunControl>,
    thread: Option<JoinHandle<()>>,
}

impl RunHandle {
    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<RunEvent> {
        self.events.try_recv().ok()
    }

    /// Waits up to `timeout` for the next event (`None` when none came); [`WorkerGone`] once
    /// the worker has ended and every event was received.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<RunEvent>, WorkerGone> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => Ok(Some(event)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(WorkerGone),
        }
    }

    /// Sends a control to the worker.
    pub fn send(&self, control: RunControl) {
        // A worker that has already ended has nothing left to control.
        let _ = self.control.send(control);
    }

    /// True once the thread has returned.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        let _ = self.control.send(RunControl::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Validates `spec`, creates the run folder `dir` and starts training in a named thread.
pub fn spawn_run(
    spec: RunSpec,
    dir: &Path,
    notify: Option<Notify>,
) -> Result<RunHandle, SpawnError> {
    spawn_run_with(spec, dir, notify, Arc::new(Solo))
}

/// Like [`spawn_run`], as one rank of a run trained by several processes (`collective`): rank
/// 0's initial weights are broadcast, each rank computes its share of every batch, gradients
/// and losses are summed across ranks, and the weights are compared every 100 steps.
pub fn spawn_run_with(
    spec: RunSpec,
    dir: &Path,
    notify: Option<Notify>,
    collective: Arc<dyn Collective>,
) -> Result<RunHandle, SpawnError> {
    let mut spec = spec;
    spec.train.world_size = collective.size();
    spec.model.relation_classes = spec
        .objective
        .kind
        .objective()
        .map_or(0, |o| o.relation_classes());
    let errors = spec.validate();
    if !errors.is_empty() {
        return Err(SpawnError::Invalid(errors));
    }
    let objective = objective_of(&spec)?;
    let store = RunStore::create(dir, &spec)?;
    start(spec, objective, store, dir, None, notify, collective)
}

/// What the objective reads besides the model, from the run's settings.
fn step_data<'a>(
    spec: &'a RunSpec,
    corpus: &'a Corpus,
    pairs: Option<&'a PairSet>,
) -> StepData<'a> {
    StepData {
        objective: &spec.objective,
        context: spec.model.context,
        batch_size: spec.train.batch_size,
        eval_batches: spec.train.eval_batches,
        corpus,
        pairs,
        progress: 1.0,
    }
}

/// The registered objective a run names.
fn objective_of(spec: &RunSpec) -> Result<Arc<dyn Objective>, SpawnError> {
    spec.objective
        .objective()
        .map_err(|unknown| SpawnError::Invalid(vec![unknown]))
}

/// Starts the worker thread on an open store (`resume`: where a resumed run picks up).
fn start(
    spec: RunSpec,
    objective: Arc<dyn Objective>,
    store: RunStore,
    dir: &Path,
    resume: Option<ResumePoint>,
    notify: Option<Notify>,
    collective: Arc<dyn Collective>,
) -> Result<RunHandle, SpawnError> {
    let (event_tx, event_rx) = channel();
    let (control_tx, control_rx) = channel();
    let name = format!("hearth-run-{}", spec.name);
    let worker = Worker {
        spec,
        objective,
        store,
        events: event_tx,
        control: control_rx,
        notify,
        step: resume.as_ref().map_or(0, |p| p.step),
        receiver_gone: false,
        resume,
        last_map: None,
        collapse_told: false,
        collective,
    };
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || worker.run())
        .map_err(SpawnError::Thread)?;
    Ok(RunHandle {
        dir: dir.to_path_buf(),
        events: event_rx,
        control: control_tx,
        thread: Some(thread),
    })
}

/// Where a resumed run picks up.
#[derive(Debug, Clone)]
struct ResumePoint {
    step: usize,
    weights: PathBuf,
    moments: (PathBuf, PathBuf),
    elapsed_s: f64,
}

/// Paths of the optimizer moments saved beside a weights checkpoint.
fn moment_paths(weights: &Path) -> (PathBuf, PathBuf) {
    let [_, m, v] = crate::project::health::checkpoint_files(weights);
    (m, v)
}

/// Continues a stopped, failed or interrupted run from its newest checkpoint that has optimizer
/// state. Everything recorded after that step is dropped, so the history has no gaps or
/// duplicates; training then runs to the spec's last step.
pub fn spawn_resume(dir: &Path, notify: Option<Notify>) -> Result<RunHandle, SpawnError> {
    let store = RunStore::open(dir)?;
    let spec = store.spec()?;
    let history = store.load_history()?;
    let point = history
        .checkpoints
        .iter()
        .rev()
        .map(|(step, path)| (step, crate::project::health::in_folder(dir, path)))
        .find(|(_, path)| {
            let (m, v) = moment_paths(path);
            path.exists() && m.exists() && v.exists()
        })
        .map(|(step, path)| ResumePoint {
            step: *step,
            moments: moment_paths(&path),
            weights: path,
            elapsed_s: history
                .steps
                .iter()
                .find(|m| m.step == *step)
                .map_or(0.0, |m| m.elapsed_s),
        })
        .ok_or_else(|| {
            SpawnError::Store(StoreError::Invalid {
                path: dir.to_path_buf(),
                message: "no checkpoint with optimizer state to resume from".to_string(),
            })
        })?;
    if point.step >= spec.train.steps {
        return Err(SpawnError::Store(StoreError::Invalid {
            path: dir.to_path_buf(),
            message: format!(
                "the run already reached its last step ({})",
                spec.train.steps
            ),
        }));
    }
    // Before anything is dropped from the history: a run whose objective is not registered
    // here cannot continue.
    let objective = objective_of(&spec)?;
    store.truncate_after(point.step)?;
    start(
        spec,
        objective,
        store,
        dir,
        Some(point),
        notify,
        Arc::new(Solo),
    )
}

struct Worker {
    resume: Option<ResumePoint>,
    /// The previous embedding map, to keep the projection's orientation.
    last_map: Option<Vec<[f32; 2]>>,
    /// The embeddings' collapse was reported (once per run).
    collapse_told: bool,
    spec: RunSpec,
    /// What the run learns (the registered implementation of `spec.objective.kind`).
    objective: Arc<dyn Objective>,
    store: RunStore,
    events: Sender<RunEvent>,
    control: Receiver<RunControl>,
    notify: Option<Notify>,
    /// Steps completed.
    step: usize,
    receiver_gone: bool,
    /// The processes training this run together (one, unless launched by MPI).
    collective: Arc<dyn Collective>,
}

/// Why the loop ended early.
enum Halt {
    Failed(String),
}

impl Worker {
    fn run(mut self) {
        let (backend, threads) = (self.spec.train.backend, self.spec.train.threads);
        let threads = if threads == 0 {
            default_threads()
        } else {
            threads
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            backend.with_threads(threads, || self.train(threads))
        }));
        let (status, event) = match outcome {
            Ok(Ok(summary)) => {
                let status = if summary.stopped_early {
                    RunStatus::Stopped
                } else {
                    RunStatus::Finished
                };
                self.record(self.store.set_summary(&summary));
                (status, RunEvent::Finished(summary))
            }
            Ok(Err(Halt::Failed(reason))) => (
                RunStatus::Failed {
                    reason: reason.clone(),
                },
                RunEvent::Failed {
                    step: self.step,
                    reason,
                },
            ),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".to_string());
                let reason = format!("the training thread panicked: {message}");
                (
                    RunStatus::Failed {
                        reason: reason.clone(),
                    },
                    RunEvent::Failed {
                        step: self.step,
                        reason,
                    },
                )
            }
        };
        if let RunEvent::Failed { reason, .. } = &event {
            let step = self.step;
            self.record(self.store.append_message(step, "error", reason));
        }
        self.record(self.store.set_status(&status));
        self.send(event);
    }

    /// Sends an event and pokes the UI. A dropped receiver stops the run.
    fn send(&mut self, event: RunEvent) {
        if self.events.send(event).is_err() {
            self.receiver_gone = true;
        }
        if let Some(notify) = &self.notify {
            notify();
        }
    }

    /// A store write that failed is reported as a warning; training goes on.
    fn record(&mut self, result: Result<(), StoreError>) {
        if let Err(err) = result {
            let step = self.step;
            self.send(RunEvent::Warning {
                step,
                message: format!("could not save: {err}"),
            });
        }
    }

    /// Applies waiting controls; blocks while paused. Returns true when the run must stop.
    fn poll_controls(&mut self, active: &mut ActiveClock) -> bool {
        let mut paused = false;
        loop {
            let control = if paused {
                self.control.recv().ok()
            } else {
                match self.control.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => return self.receiver_gone,
                    Err(TryRecvError::Disconnected) => None,
                }
            };
            match control {
                None | Some(RunControl::Stop) => return true,
                Some(RunControl::Pause) if !paused => {
                    paused = true;
                    active.pause();
                    let step = self.step;
                    self.record(self.store.set_status(&RunStatus::Paused));
                    self.send(RunEvent::Paused { step });
                }
                Some(RunControl::Resume) if paused => {
                    paused = false;
                    active.resume();
                    let step = self.step;
                    self.record(self.store.set_status(&RunStatus::Running));
                    self.send(RunEvent::Resumed { step });
                }
                Some(_) => {}
            }
        }
    }

    /// The training loop, on `threads` intra-op threads (set by the caller).
    fn train(&mut self, threads: usize) -> Result<RunSummary, Halt> {
        let spec = self.spec.clone();
        let t = &spec.train;
        self.record(self.store.set_status(&RunStatus::Running));

        let base = match &spec.init {
            Some(init) => Some(load_base(init, &spec)?),
            None => None,
        };
        // A resumed run keeps the tokenizer it was saved with (a BPE vocabulary is not trained
        // again); a fine-tune takes its base run's.
        let saved = self
            .resume
            .as_ref()
            .and_then(|_| crate::project::store::read_tokenizer(self.store.dir()));
        let corpus = match (&base, saved) {
            (Some(base), _) => Corpus::load_with(&spec.data, base.tokenizer.clone()),
            (None, Some(tokenizer)) => Corpus::load_with(&spec.data, tokenizer),
            (None, None) => Corpus::load_for(&spec.data, spec.objective.needs_specials()),
        }
        .map_err(|e| Halt::Failed(e.to_string()))?;
        let objective = Arc::clone(&self.objective);
        objective
            .check_corpus(&corpus)
            .map_err(|e| Halt::Failed(e.to_string()))?;
        let pairs = match (&spec.objective.pairs_file, spec.objective.positives) {
            (Some(path), Positives::Pairs) if objective.uses_embeddings() => {
                let pairs = read_pairs(path).map_err(|e| Halt::Failed(e.to_string()))?;
                if pairs.len() < 2 {
                    return Err(Halt::Failed(format!(
                        "{}: needs at least 2 pairs",
                        path.display()
                    )));
                }
                Some(PairSet::new(
                    &pairs,
                    &corpus.tokenizer.clone().with_specials(true),
                ))
            }
            _ => None,
        };
        let data = step_data(&spec, &corpus, pairs.as_ref());
        if let Some(message) = objective.start_note(&data) {
            let step = self.step;
            self.send(RunEvent::Warning { step, message });
        }
        // Count-model, TF-IDF and chance figures on this data, once per run (a resumed run
        // reads them back).
        let references = match self.store.references() {
            Ok(Some(stored)) => stored,
            _ => {
                let computed = objective.references(&data);
                self.record(self.store.set_references(&computed));
                computed
            }
        };
        if !references.is_empty() {
            self.send(RunEvent::References(references));
        }
        corpus
            .check_context(spec.model.context)
            .map_err(|e| Halt::Failed(e.to_string()))?;
        let tokenizer_json = serde_json::to_string(&corpus.tokenizer).expect("serializes");
        self.record(
            std::fs::write(self.store.dir().join("tokenizer.json"), tokenizer_json).map_err(
                |source| StoreError::Io {
                    path: self.store.dir().join("tokenizer.json"),
                    source,
                },
            ),
        );

        let device = t.backend.device().map_err(Halt::Failed)?;
        device.seed(t.seed);
        let train_device = device.clone().autodiff();
        let vocab = corpus.tokenizer.vocab_size();
        let mut model = Gpt::new(&spec.model, vocab, &train_device);
        if let (Some(base), Some(init)) = (&base, &spec.init) {
            model = model.try_load_file(&base.checkpoint).map_err(|e| {
                Halt::Failed(format!("cannot load {}: {e}", base.checkpoint.display()))
            })?;
            model = model.map(&mut Freeze {
                path: Vec::new(),
                embeddings: init.freeze_embeddings,
                layers: init.freeze_layers,
            });
            let step = self.step;
            self.record(self.store.append_message(
                step,
                "info",
                &format!("initialised from {}", base.checkpoint.display()),
            ));
        }
        // Every rank starts from rank 0's weights.
        let collective = Arc::clone(&self.collective);
        if collective.size() > 1 {
            let mut flat = flatten_params(&model);
            collective.broadcast(&mut flat);
            model = unflatten_params(model, &flat);
        }
        let lr_scale = spec.init.as_ref().map_or(1.0, |i| i.lr_multiplier);
        let mut optim = AdamW::new(spec.optim.clone());
        let mut active = ActiveClock::start();
        let mut rng = StdRng::seed_from_u64(t.seed);
        if let Some(point) = self.resume.clone() {
            let load = |path: &Path, device: &Device| {
                Gpt::new(&spec.model, vocab, device)
                    .try_load_file(path)
                    .map_err(|e| {
                        Halt::Failed(format!("cannot resume from {}: {e}", path.display()))
                    })
            };
            model = load(&point.weights, &train_device)?;
            let first = load(&point.moments.0, &device)?;
            let second = load(&point.moments.1, &device)?;
            optim.restore(&model, &first, &second, point.step as i32);
            active.banked = Duration::from_secs_f64(point.elapsed_s);
            // A fresh batch stream for the continuation, still determined by seed and step.
            rng = StdRng::seed_from_u64(
                t.seed ^ (point.step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            let step = self.step;
            self.record(self.store.append_message(
                step,
                "info",
                &format!("resumed from step {step}"),
            ));
        }
        let total_steps = t.steps;
        self.send(RunEvent::Started {
            n_params: model.num_params(),
            vocab,
            device: format!(
                "{} ({threads} thread{})",
                t.backend.label(),
                if threads == 1 { "" } else { "s" }
            ),
            threads,
            total_steps,
        });

        let probe: Vec<u32> = if t.probe_text.is_empty() {
            corpus.val[..spec.model.context.min(corpus.val.len())].to_vec()
        } else {
            corpus.tokenizer.encode(&t.probe_text)
        };
        let mut throughput = Throughput::default();
        let accum = t.grad_accum.max(1);
        let mut allreduce = Duration::ZERO;
        // One replica per device; the first computes on the run's own model.
        let replicas: Vec<Device> = match t.backend.replica_devices(&t.devices) {
            Ok(devices) if devices.len() > 1 => {
                let mut all = vec![train_device.clone()];
                all.extend(devices[1..].iter().map(|d| d.clone().autodiff()));
                all
            }
            Ok(_) => vec![train_device.clone()],
            Err(message) => return Err(Halt::Failed(message)),
        };
        let tokens_per_step = (t.batch_size * accum * spec.model.context) as u64;
        let first_step = self.step;
        let mut last_eval: Option<EvalMetrics> = None;
        let mut stopped_early = false;

        while self.step < total_steps {
            if self.poll_controls(&mut active) {
                stopped_early = true;
                break;
            }
            let lr = warmup_cosine(
                self.step,
                spec.optim.lr * lr_scale,
                spec.optim.min_lr * lr_scale,
                spec.optim.warmup_steps,
                total_steps,
            );
            let data = step_data(&spec, &corpus, pairs.as_ref());
            let mut replica_data = data;
            replica_data.progress = self.step as f64 / total_steps.max(1) as f64;
            replica_data.batch_size = t.batch_size / (replicas.len() * collective.size());
            let (grads, loss_value, terms, reduce) = step_gradients(
                objective.as_ref(),
                &model,
                &replicas,
                collective.as_ref(),
                &replica_data,
                &mut rng,
                accum,
                threads,
                t.backend,
            );
            allreduce += reduce;
            if !loss_value.is_finite() {
                return Err(Halt::Failed(format!(
                    "training loss became {loss_value} at step {}: the run diverged (try a lower learning rate, currently {lr:.2e})",
                    self.step + 1
                )));
            }
            let (next, grad_norm) = optim.step(model, &grads, lr);
            model = next;
            if !grad_norm.is_finite() {
                return Err(Halt::Failed(format!(
                    "gradient norm became {grad_norm} at step {}: the run diverged",
                    self.step + 1
                )));
            }
            self.step += 1;
            if collective.size() > 1 && self.step.is_multiple_of(100) {
                same_weights_on_every_rank(&model, collective.as_ref(), self.step)?;
            }
            #[cfg(test)]
            if spec.name == tests::PANIC_AT_STEP_3 && self.step == 3 {
                panic!("injected fault");
            }
            let metrics = StepMetrics {
                step: self.step,
                train_loss: loss_value,
                lr,
                grad_norm,
                tokens_per_s: throughput.record(tokens_per_step),
                elapsed_s: active.elapsed_s(),
                tokens_seen: self.step as u64 * tokens_per_step,
            };
            self.record(self.store.append_step(&metrics));
            self.send(RunEvent::Step(metrics));
            if !terms.is_empty() {
                self.record(self.store.append_step_terms(self.step, &terms));
                self.send(RunEvent::StepTerms {
                    step: self.step,
                    terms,
                });
            }

            let last = self.step == total_steps;
            let eval_now = self.step.is_multiple_of(t.eval_interval) || last;
            if eval_now {
                let eval = self.evaluate(&model, &corpus, pairs.as_ref(), &device, &active);
                last_eval = Some(eval);
                self.sample(&model, &corpus, &device);
            }
            // Snapshots at evaluations are kept in the store for comparing runs later.
            let periodic = t.attention_interval > 0
                && (self.step.is_multiple_of(t.attention_interval) || self.step == 1);
            if eval_now || periodic {
                self.attention(&model, &corpus, &probe, &device, eval_now);
            }
            if t.checkpoint_interval > 0 && self.step.is_multiple_of(t.checkpoint_interval) && !last
            {
                self.checkpoint(&model, &optim);
            }
        }

        let eval = match last_eval {
            Some(eval) if eval.step == self.step => eval,
            _ => self.evaluate(&model, &corpus, pairs.as_ref(), &device, &active),
        };
        self.checkpoint(&model, &optim);
        Ok(RunSummary {
            step: self.step,
            train_loss: eval.train_loss,
            val_loss: eval.val_loss,
            // Throughput of this session's steps (a resumed run started at `first_step`).
            tokens_per_s: ((self.step - first_step) as u64 * tokens_per_step) as f64
                / (active.elapsed_s() - self.resume.as_ref().map_or(0.0, |p| p.elapsed_s))
                    .max(1e-9),
            elapsed_s: active.elapsed_s(),
            stopped_early,
            allreduce_s: allreduce.as_secs_f64(),
        })
    }

    fn evaluate(
        &mut self,
        model: &Gpt,
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
            && let Some(message) = crate::objective::contrastive::collapse_at(
                &spec.objective,
                self.step,
                spec.train.steps,
                |key| evaluation.metric(key),
            )
        {
            self.collapse_told = true;
            let step = self.step;
            self.record(self.store.append_message(step, "warning", &message));
            self.send(RunEvent::Warning { step, message });
        }
        let eval = EvalMetrics {
            step: self.step,
            train_loss: evaluation.train_loss,
            val_loss: evaluation.val_loss,
            elapsed_s: active.elapsed_s(),
            extra: evaluation.named_metrics(),
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
                EvalView::ContrastiveBatch(batch) => self.send(RunEvent::ContrastiveBatch(batch)),
                EvalView::MaskedProbe(probe) => self.send(RunEvent::MaskedProbe(probe)),
            }
        }
        eval
    }

    fn sample(&mut self, model: &Gpt, corpus: &Corpus, device: &Device) {
        let n = self.spec.train.sample_tokens;
        if n == 0 || !self.objective.generates_text() {
            return;
        }
        let snapshot = model.valid();
        let mut rng = StdRng::seed_from_u64(self.spec.train.seed.wrapping_add(self.step as u64));
        // Instruction data: continue the first validation prompt; else the validation text.
        let prompt = match corpus.examples_val.first() {
            Some(ex) => &ex.ids[..ex.prompt_len],
            None => &corpus.val[..1],
        };
        let ids = generate(&snapshot, prompt, n, 1.0, &mut rng, device);
        let text = corpus.tokenizer.decode(&[prompt, ids.as_slice()].concat());
        let step = self.step;
        self.record(self.store.append_sample(step, &text));
        self.send(RunEvent::Sample { step, text });
    }

    fn attention(
        &mut self,
        model: &Gpt,
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
        self.send(RunEvent::Attention(snapshot));
    }

    /// Writes the weights and the optimizer moments (so the run can resume exactly here).
    fn checkpoint(&mut self, model: &Gpt, optim: &AdamW) {
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

/// The gradients of one optimizer step and its mean training loss: `accum` rounds, each of
/// one micro-batch per replica. Replicas draw their rows in turn from `rng` (so the rows are
/// those of one batch of `replicas x batch_size` rows) and compute at once, each on its own
/// thread and device with a copy of `model`; every loss is scaled by `1 / (accum x replicas)`
/// and the gradients are summed on the first replica's device. Objectives that cannot draw
/// ahead compute their replicas in turn. Also returns the mean of each term of a loss that
/// sums several (see [`crate::objective::StepLoss`]) over this process's micro-batches.
#[allow(clippy::too_many_arguments)]
fn step_gradients(
    objective: &dyn Objective,
    model: &Gpt,
    replicas: &[Device],
    collective: &dyn Collective,
    data: &StepData<'_>,
    rng: &mut StdRng,
    accum: usize,
    threads: usize,
    backend: crate::backend::BackendKind,
) -> (GradBuffer, f32, Vec<(String, f64)>, Duration) {
    let (rank, ranks) = (collective.rank(), collective.size());
    let parts = (accum * replicas.len() * ranks) as f64;
    let scale = |loss: burn::tensor::Tensor<1>| {
        if parts > 1.0 {
            loss.div_scalar(parts)
        } else {
            loss
        }
    };
    let mut grads = GradBuffer::default();
    let mut loss_sum = 0.0f64;
    let mut terms = TermSums::default();
    for _ in 0..accum {
        if replicas.len() == 1 && ranks == 1 {
            let loss = objective.train_step_loss(model, data, rng, &replicas[0]);
            terms.add(loss.terms);
            let loss = loss.total;
            loss_sum += f64::from(loss.clone().into_scalar::<f32>());
            grads.add(model, &scale(loss).backward());
            continue;
        }
        // Every rank draws the rows of every replica of every rank, in order, and keeps its
        // own: together the ranks compute the rows of one batch.
        let local = replicas.len();
        let drawn: Option<Vec<_>> = (0..local * ranks)
            .map(|_| objective.draw(data, rng))
            .collect::<Option<Vec<_>>>()
            .map(|all| all.into_iter().skip(rank * local).take(local).collect());
        // An objective that cannot draw ahead takes each rank's rows from a stream of its own
        // (the same for every rank's generator, so the ranks stay in step).
        let mut own_rng;
        let rng: &mut StdRng = if drawn.is_none() && ranks > 1 {
            own_rng = StdRng::seed_from_u64(
                rand::Rng::random::<u64>(rng) ^ (rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            &mut own_rng
        } else {
            &mut *rng
        };
        let results: Vec<(f32, GradBuffer)> = match drawn {
            Some(drawn) => std::thread::scope(|scope| {
                let per_replica = (threads / replicas.len()).max(1);
                let handles: Vec<_> = replicas
                    .iter()
                    .zip(drawn)
                    .enumerate()
                    .map(|(r, (device, rows))| {
                        let replica = if r == 0 {
                            model.clone()
                        } else {
                            model.clone().fork(device)
                        };
                        let scale = &scale;
                        scope.spawn(move || {
                            backend.set_threads(per_replica);
                            let loss = objective
                                .drawn_loss(&replica, rows, data, device)
                                .expect("drawn by the same objective");
                            let value: f32 = loss.clone().into_scalar();
                            (
                                value,
                                GradBuffer::from_grads(&replica, &scale(loss).backward()),
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            }),
            None => replicas
                .iter()
                .enumerate()
                .map(|(r, device)| {
                    let replica = if r == 0 {
                        model.clone()
                    } else {
                        model.clone().fork(device)
                    };
                    let loss = objective.train_step_loss(&replica, data, rng, device);
                    terms.add(loss.terms);
                    let loss = loss.total;
                    let value: f32 = loss.clone().into_scalar();
                    (
                        value,
                        GradBuffer::from_grads(&replica, &scale(loss).backward()),
                    )
                })
                .collect(),
        };
        for (value, replica_grads) in results {
            loss_sum += f64::from(value);
            grads.absorb(model, replica_grads);
        }
    }
    let mut reduce = Duration::ZERO;
    if ranks > 1 {
        let mut flat = grads.to_flat(model);
        flat.push(loss_sum as f32);
        let start = Instant::now();
        collective.all_reduce_sum(&mut flat);
        reduce = start.elapsed();
        loss_sum = f64::from(flat.pop().unwrap_or(f32::NAN));
        grads = GradBuffer::from_flat(model, &flat);
    }
    (grads, (loss_sum / parts) as f32, terms.means(), reduce)
}

/// Running sums of a step's loss terms, by name in the order first seen.
#[derive(Default)]
struct TermSums(Vec<(String, f64, usize)>);

impl TermSums {
    fn add(&mut self, terms: Vec<(crate::objective::MetricKey, burn::tensor::Tensor<1>)>) {
        for (key, value) in terms {
            let value = f64::from(value.into_scalar::<f32>());
            match self.0.iter_mut().find(|(name, ..)| name == key.name()) {
                Some((_, sum, n)) => {
                    *sum += value;
                    *n += 1;
                }
                None => self.0.push((key.name().to_string(), value, 1)),
            }
        }
    }

    fn means(self) -> Vec<(String, f64)> {
        self.0
            .into_iter()
            .map(|(name, sum, n)| (name, sum / n.max(1) as f64))
            .collect()
    }
}

/// Fails the run when the ranks' weights have drifted apart (a lost update, or ranks that
/// compute differently).
fn same_weights_on_every_rank(
    model: &Gpt,
    collective: &dyn Collective,
    step: usize,
) -> Result<(), Halt> {
    let checksum: f64 = flatten_params(model).iter().map(|&x| f64::from(x)).sum();
    let mut extremes = [checksum, -checksum];
    collective.all_reduce_max(&mut extremes);
    if extremes[0] != -extremes[1] {
        return Err(Halt::Failed(format!(
            "rank {} of {}: the ranks' weights differ at step {step} (checksums {} to {}); the run stops rather than train diverged copies",
            collective.rank(),
            collective.size(),
            -extremes[1],
            extremes[0]
        )));
    }
    Ok(())
}

/// Writes a file through `write` into a temporary name, then renames it into place.
fn save_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), burn::store::RecordError>,
) -> Result<(), String> {
    let tmp = path.with_extension("partial");
    write(&tmp).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// What a fine-tuning run starts from.
struct Base {
    tokenizer: crate::data::Tokenizer,
    checkpoint: PathBuf,
}

/// Reads the base run of a fine-tune and checks that it fits `spec`.
fn load_base(init: &crate::spec::InitSpec, spec: &RunSpec) -> Result<Base, Halt> {
    let fail = |message: String| Halt::Failed(format!("{}: {message}", init.from_run.display()));
    let store = RunStore::open(&init.from_run).map_err(|e| Halt::Failed(e.to_string()))?;
    let base_spec = store.spec().map_err(|e| Halt::Failed(e.to_string()))?;
    if base_spec.model.n_layer != spec.model.n_layer
        || base_spec.model.n_head != spec.model.n_head
        || base_spec.model.d_model != spec.model.d_model
        || base_spec.model.context != spec.model.context
        || base_spec.model.tie_weights != spec.model.tie_weights
        || base_spec.model.bias != spec.model.bias
        || base_spec.model.arch != spec.model.arch
    {
        return Err(fail(format!(
            "its model ({} {} layers, {} heads, width {}, context {}) differs from this run's ({} {} layers, {} heads, width {}, context {})",
            base_spec.model.arch.name(),
            base_spec.model.n_layer,
            base_spec.model.n_head,
            base_spec.model.d_model,
            base_spec.model.context,
            spec.model.arch.name(),
            spec.model.n_layer,
            spec.model.n_head,
            spec.model.d_model,
            spec.model.context
        )));
    }
    let text = std::fs::read_to_string(init.from_run.join("tokenizer.json"))
        .map_err(|e| fail(format!("no tokenizer.json ({e})")))?;
    let tokenizer: crate::data::Tokenizer =
        serde_json::from_str(&text).map_err(|e| fail(format!("tokenizer.json: {e}")))?;
    if spec.objective.needs_specials() && !tokenizer.has_specials() {
        return Err(fail(format!(
            "its vocabulary has no special tokens, which the {} objective needs",
            spec.objective.kind.name()
        )));
    }
    let history = store
        .load_history()
        .map_err(|e| Halt::Failed(e.to_string()))?;
    let checkpoint = history
        .checkpoints
        .last()
        .map(|(_, p)| p.clone())
        .filter(|p| p.exists())
        .ok_or_else(|| fail("no checkpoint to start from".to_string()))?;
    Ok(Base {
        tokenizer,
        checkpoint,
    })
}

/// Marks embeddings and the lowest blocks as not trained.
struct Freeze {
    path: Vec<String>,
    embeddings: bool,
    layers: usize,
}

impl burn::module::ModuleMapper for Freeze {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<D>> {
        let top = self.path.first().map(String::as_str);
        let embedding = matches!(top, Some("tok_emb" | "pos_emb"));
        let low_block = top == Some("blocks")
            && self
                .path
                .get(1)
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < self.layers);
        if (self.embeddings && embedding) || low_block {
            param.set_require_grad(false)
        } else {
            param
        }
    }
}

/// Wall time that excludes pauses.
struct ActiveClock {
    /// Active time before the current stretch (including a resumed run's earlier time).
    banked: Duration,
    since: Option<Instant>,
}

impl ActiveClock {
    fn start() -> Self {
        Self {
            banked: Duration::ZERO,
            since: Some(Instant::now()),
        }
    }
    fn pause(&mut self) {
        if let Some(since) = self.since.take() {
            self.banked += since.elapsed();
        }
    }
    fn resume(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }
    fn elapsed_s(&self) -> f64 {
        (self.banked + self.since.map(|s| s.elapsed()).unwrap_or_default()).as_secs_f64()
    }
}

/// Tokens per second over the last steps.
#[derive(Default)]
struct Throughput {
    window: VecDeque<(Instant, u64)>,
}

impl Throughput {
    const WINDOW: usize = 20;

    fn record(&mut self, tokens: u64) -> f64 {
        let now = Instant::now();
        self.window.push_back((now, tokens));
        if self.window.len() > Self::WINDOW + 1 {
            self.window.pop_front();
        }
        let (first, _) = self.window[0];
        let secs = now.duration_since(first).as_secs_f64();
        let counted: u64 = self.window.iter().skip(1).map(|(_, n)| n).sum();
        if secs > 0.0 && counted > 0 {
            counted as f64 / secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataSource, DataSpec};
    use crate::model::ModelSpec;
    use crate::train::BackendKind;

    /// A run with this name panics at its third step (test-only fault injection).
    pub const PANIC_AT_STEP_3: &str = "__test_panic_at_step_3__";

    #[test]
    fn a_panic_in_the_worker_becomes_a_failed_event() {
        let dir = tempfile::tempdir().unwrap();
        let spec = RunSpec {
            name: PANIC_AT_STEP_3.to_string(),
            data: DataSpec {
                source: DataSource::Generated {
                    seed: 1,
                    n_chars: 20_000,
                },
                ..DataSpec::default()
            },
            model: ModelSpec {
                n_layer: 1,
                n_head: 1,
                d_model: 16,
                context: 8,
                ..ModelSpec::default()
            },
            train: TrainSpec {
                batch_size: 2,
                grad_accum: 1,
                devices: String::new(),
                world_size: 1,
                steps: 10,
                backend: BackendKind::Flex,
                threads: 1,
                ..TrainSpec::default()
            },
            ..RunSpec::default()
        };
        let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
        let mut last = None;
        while let Ok(event) = handle.events.recv_timeout(Duration::from_secs(60)) {
            last = Some(event);
        }
        match last {
            Some(RunEvent::Failed { step, reason }) => {
                assert_eq!(step, 3);
                assert!(
                    reason.contains("panicked") && reason.contains("injected fault"),
                    "{reason}"
                );
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        let status = RunStore::open(&dir.path().join("run"))
            .unwrap()
            .status()
            .unwrap();
        assert!(matches!(status, RunStatus::Failed { .. }));
    }
}
