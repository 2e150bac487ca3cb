//! The run worker thread.

mod attach;
mod clock;
mod dynamics;
mod failure;
mod gradients;
mod prepare;
mod training;
mod views;

pub use attach::{
    WORKER_LOG, attach_run, launch_worker_process, log_tail, spawn_worker_process, worker_exe,
};
pub use failure::{RunFailure, panic_message};

use super::collective::{Collective, Solo};
use crate::backend::default_threads;
use crate::data::Corpus;
use crate::events::{RunControl, RunEvent};
use crate::model::SpecError;
use crate::objective::{Objective, PairSet, StepData};
use crate::project::live::WorkerLock;
use crate::project::{RunStatus, RunStore, StoreError};
use crate::spec::RunSpec;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// The studio's or CLI's end of a run: a worker thread of this process, or a run followed
/// through its store (trained by a worker process or by any other process).
///
/// Dropping the handle of a worker thread stops the run and waits for the thread, so no
/// thread outlives its owner. Dropping the handle of a followed run only stops following:
/// the run goes on in its own process.
pub struct RunHandle {
    /// The run folder.
    pub dir: PathBuf,
    events: Receiver<RunEvent>,
    control: Sender<RunControl>,
    thread: Option<JoinHandle<()>>,
    /// Set for a followed run: dropping the handle tells the follower to let go.
    detach: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The run's history when the handle was made; events add what comes after.
    history: Option<crate::project::RunHistory>,
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

    /// The run's history as it stood when the handle was made (once): with the events that
    /// follow, the whole history, read once.
    pub fn take_history(&mut self) -> Option<crate::project::RunHistory> {
        self.history.take()
    }

    /// True when the run trains in another process and this handle follows it.
    pub fn is_followed(&self) -> bool {
        self.detach.is_some()
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        match &self.detach {
            Some(detach) => detach.store(true, std::sync::atomic::Ordering::Relaxed),
            None => {
                let _ = self.control.send(RunControl::Stop);
            }
        }
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
    let (spec, objective) = checked(spec, collective.size())?;
    let store = RunStore::create(dir, &spec)?;
    let lock = WorkerLock::acquire(dir)?;
    start(spec, objective, store, lock, dir, None, notify, collective)
}

/// Validates `spec` and creates the run folder `dir` without training it: a worker process
/// ([`spawn_prepared`]) or the project's queue starts it later.
pub fn prepare_run(spec: RunSpec, dir: &Path) -> Result<(), SpawnError> {
    let (spec, _) = checked(spec, 1)?;
    RunStore::create(dir, &spec)?;
    Ok(())
}

/// The spec as it trains on `world_size` processes (the objective's relation classes filled
/// in), validated, with its registered objective.
fn checked(
    mut spec: RunSpec,
    world_size: usize,
) -> Result<(RunSpec, Arc<dyn Objective>), SpawnError> {
    spec.train.world_size = world_size;
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
    Ok((spec, objective))
}

/// Starts training a run folder made by [`prepare_run`] (created or queued, nothing trained
/// yet) in this process.
pub fn spawn_prepared(dir: &Path, notify: Option<Notify>) -> Result<RunHandle, SpawnError> {
    let store = RunStore::open(dir)?;
    let lock = WorkerLock::acquire(dir)?;
    let status = store.status()?;
    if !matches!(status, RunStatus::Created | RunStatus::Queued) || store.last_step()?.is_some() {
        return Err(SpawnError::Store(StoreError::Invalid {
            path: dir.to_path_buf(),
            message: format!(
                "the run has already started (it is {}); resume it instead",
                status.label()
            ),
        }));
    }
    let spec = store.spec()?;
    let objective = objective_of(&spec)?;
    start(
        spec,
        objective,
        store,
        lock,
        dir,
        None,
        notify,
        Arc::new(Solo),
    )
}

/// What the objective reads besides the model, from the run's settings. Its batch is the
/// optimizer step's rows (`batch_size x grad_accum`): evaluations, views and reference
/// figures see the one large batch that micro-batches add up to, so a run with accumulation
/// reports what the same run without it reports; the training loop narrows it to one
/// micro-batch per replica.
pub(super) fn step_data<'a>(
    spec: &'a RunSpec,
    corpus: &'a Corpus,
    pairs: Option<&'a PairSet>,
) -> StepData<'a> {
    StepData {
        objective: &spec.objective,
        context: spec.model.context,
        batch_size: spec.train.batch_size * spec.train.grad_accum.max(1),
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

/// Starts the worker thread on an open store whose worker lock this process holds (`resume`:
/// where a resumed run picks up).
#[allow(clippy::too_many_arguments)]
fn start(
    spec: RunSpec,
    objective: Arc<dyn Objective>,
    store: RunStore,
    lock: WorkerLock,
    dir: &Path,
    resume: Option<ResumePoint>,
    notify: Option<Notify>,
    collective: Arc<dyn Collective>,
) -> Result<RunHandle, SpawnError> {
    let (event_tx, event_rx) = channel();
    let (control_tx, control_rx) = channel();
    let name = format!("hearth-run-{}", spec.name);
    // Controls sent before this worker began were meant for an earlier one.
    let control_seen = store.last_control()?;
    // What the run holds as the thread begins (empty, or kept up to a resume's checkpoint):
    // the caller's starting point, the events adding to it.
    let history = store.load_history()?;
    // From here on, a window that follows the store reads this worker's rows only.
    store.set_worker_ready(std::process::id())?;
    let worker = Worker {
        _lock: lock,
        control_seen,
        snapshot_requested: false,
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
        sts: None,
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
        detach: None,
        history: Some(history),
    })
}

/// Where a resumed run picks up.
#[derive(Debug, Clone)]
struct ResumePoint {
    /// The step of the checkpoint.
    step: usize,
    /// Its weights.
    weights: PathBuf,
    /// Its optimizer moments (first, second).
    moments: (PathBuf, PathBuf),
    /// Active time up to that step.
    elapsed_s: f64,
}

/// Paths of the optimizer moments saved beside a weights checkpoint.
pub(super) fn moment_paths(weights: &Path) -> (PathBuf, PathBuf) {
    let [_, m, v] = crate::project::health::checkpoint_files(weights);
    (m, v)
}

/// Continues a stopped, failed or interrupted run from its newest checkpoint that has optimizer
/// state. Everything recorded after that step is dropped, so the history has no gaps or
/// duplicates; training then runs to the spec's last step.
pub fn spawn_resume(dir: &Path, notify: Option<Notify>) -> Result<RunHandle, SpawnError> {
    let store = RunStore::open(dir)?;
    // Before anything changes: no other process may be training it.
    let lock = WorkerLock::acquire(dir)?;
    let spec = store.spec()?;
    let history = store.load_history()?;
    // The checkpoints the store lists, and any complete one on disk it does not: a run killed
    // between a checkpoint's rename into place and its row in the store keeps that checkpoint
    // (its step's metrics are logged before it is written).
    let last_logged = history.steps.last().map_or(0, |m| m.step);
    let mut candidates: Vec<(usize, PathBuf)> = history
        .checkpoints
        .iter()
        .map(|(step, path)| (*step, crate::project::health::in_folder(dir, path)))
        .collect();
    for (step, path) in crate::project::health::weights_on_disk(dir) {
        if step <= last_logged && !candidates.iter().any(|(s, _)| *s == step) {
            candidates.push((step, path));
        }
    }
    candidates.sort_by_key(|(step, _)| *step);
    let point = candidates
        .into_iter()
        .rev()
        .find(|(_, path)| {
            let (m, v) = moment_paths(path);
            path.exists() && m.exists() && v.exists()
        })
        .map(|(step, path)| ResumePoint {
            step,
            moments: moment_paths(&path),
            weights: path,
            elapsed_s: history
                .steps
                .iter()
                .find(|m| m.step == step)
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
    if !history
        .checkpoints
        .iter()
        .any(|(step, _)| *step == point.step)
    {
        store.append_checkpoint(point.step, &point.weights)?;
    }
    start(
        spec,
        objective,
        store,
        lock,
        dir,
        Some(point),
        notify,
        Arc::new(Solo),
    )
}

struct Worker {
    /// Held for the worker's life: how other processes tell that the run is trained.
    _lock: WorkerLock,
    /// The newest control read from the store.
    control_seen: i64,
    /// A snapshot of the views was asked for.
    snapshot_requested: bool,
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
    /// The pairs of the spec's STS file, read before the first step (embedding objectives).
    sts: Option<Arc<Vec<crate::data::pairs::ScoredPair>>>,
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
            Ok(Err(failure)) => self.failed(failure),
            Err(panic) => self.failed(RunFailure::Panicked(panic_message(panic.as_ref()))),
        };
        if let RunEvent::Failed { reason, .. } = &event {
            let step = self.step;
            self.record(self.store.append_message(step, "error", reason));
        }
        self.record(self.store.set_status(&status));
        self.send(event);
    }

    /// The status and event of a run that failed.
    fn failed(&self, failure: RunFailure) -> (RunStatus, RunEvent) {
        let reason = failure.to_string();
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

    /// The next control, from this process's handle or from the run store (sent by any
    /// process); waits up to `wait` for one. `Err` when the handle is gone.
    fn next_control(&mut self, wait: Duration) -> Result<Option<RunControl>, ()> {
        let from_handle = if wait.is_zero() {
            match self.control.try_recv() {
                Ok(c) => Some(c),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return Err(()),
            }
        } else {
            None
        };
        if from_handle.is_some() {
            return Ok(from_handle);
        }
        match self.store.controls_after(self.control_seen) {
            Ok(sent) => {
                if let Some(&(id, control)) = sent.first() {
                    self.control_seen = id;
                    return Ok(Some(control));
                }
            }
            Err(err) => {
                let step = self.step;
                self.send(RunEvent::Warning {
                    step,
                    message: format!("could not read controls: {err}"),
                });
            }
        }
        if wait.is_zero() {
            return Ok(None);
        }
        match self.control.recv_timeout(wait) {
            Ok(c) => Ok(Some(c)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        }
    }

    /// Applies waiting controls; blocks while paused. Returns true when the run must stop.
    fn poll_controls(&mut self, active: &mut clock::ActiveClock) -> bool {
        let mut paused = false;
        loop {
            let wait = if paused {
                Duration::from_millis(200)
            } else {
                Duration::ZERO
            };
            let control = match self.next_control(wait) {
                Ok(Some(c)) => c,
                Ok(None) if paused => continue,
                Ok(None) => return self.receiver_gone,
                Err(()) => return true,
            };
            match control {
                RunControl::Stop => return true,
                RunControl::Pause if !paused => {
                    paused = true;
                    active.pause();
                    let step = self.step;
                    self.record(self.store.set_status(&RunStatus::Paused));
                    self.send(RunEvent::Paused { step });
                }
                RunControl::Resume if paused => {
                    paused = false;
                    active.resume();
                    let step = self.step;
                    self.record(self.store.set_status(&RunStatus::Running));
                    self.send(RunEvent::Resumed { step });
                }
                RunControl::Snapshot => self.snapshot_requested = true,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataSource, DataSpec};
    use crate::model::{AttentionMode, Model, ModelSpec};
    use crate::objective::{Evaluation, ObjectiveKind};
    use crate::train::{BackendKind, TrainSpec};
    use burn::tensor::{Device, Tensor};
    use rand::rngs::StdRng;

    /// Next-token training that panics at its third step (`progress` 2 / 10).
    struct PanicsAtStep3;

    impl Objective for PanicsAtStep3 {
        fn kind(&self) -> ObjectiveKind {
            ObjectiveKind::new("test-panics-at-step-3")
        }
        fn attention_mode(&self) -> AttentionMode {
            AttentionMode::Causal
        }
        fn train_loss(
            &self,
            model: &Model,
            data: &StepData<'_>,
            rng: &mut StdRng,
            device: &Device,
        ) -> Tensor<1> {
            assert!(data.progress < 0.15, "injected fault");
            crate::objective::next_token::NextToken.train_loss(model, data, rng, device)
        }
        fn evaluate(
            &self,
            model: &Model,
            data: &StepData<'_>,
            rng: &mut StdRng,
            device: &Device,
        ) -> Evaluation {
            crate::objective::next_token::NextToken.evaluate(model, data, rng, device)
        }
    }

    #[test]
    fn a_panic_in_the_worker_becomes_a_failed_event() {
        crate::objective::register(Arc::new(PanicsAtStep3));
        let dir = tempfile::tempdir().unwrap();
        let mut spec = RunSpec {
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
        spec.objective.kind = PanicsAtStep3.kind();
        let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
        let mut last = None;
        while let Ok(event) = handle.events.recv_timeout(Duration::from_secs(60)) {
            last = Some(event);
        }
        match last {
            Some(RunEvent::Failed { step, reason }) => {
                assert_eq!(step, 2, "two steps completed before the third panicked");
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
