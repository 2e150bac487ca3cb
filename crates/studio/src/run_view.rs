//! A run as the studio shows it: what the store says about it, its curves, and for a run
//! trained in this session the worker's handle and latest views.

use hearth_engine::events::{
    AttentionSnapshot, ContrastiveBatch, EmbeddingSnapshot, EvalMetrics, MaskedProbe, RunEvent,
    StepMetrics,
};
use hearth_engine::project::{Annotations, RunEntry, RunHistory, RunStatus, RunStore};
use hearth_engine::spec::{InitSpec, RunSpec};
use hearth_engine::train::worker::Notify;
use hearth_engine::train::{
    RunHandle, SpawnError, attach_run, spawn_prepared, spawn_resume, spawn_worker_process,
};
use hearth_engine::viz::curves::{Curves, EvalPoint, StepPoint};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the studio starts runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Launcher {
    /// Each run in its own worker process (`exe worker --run DIR`): closing, hanging or
    /// crashing the studio never stops a run. What the studio does.
    Processes {
        /// The `hearth` executable.
        exe: PathBuf,
        /// The project folder (the worker starts the queue's next run when it ends).
        project: PathBuf,
    },
    /// Each run on a thread of the studio's process: runs end with the window. For tests.
    Threads,
}

impl Launcher {
    /// Starts training the prepared run folder `dir` (or resumes it), giving its handle.
    pub fn start(&self, dir: &Path, resume: bool, notify: Notify) -> Result<RunHandle, SpawnError> {
        match self {
            Launcher::Processes { exe, project } => {
                spawn_worker_process(exe, Some(project), dir, resume, Some(notify))
            }
            Launcher::Threads if resume => spawn_resume(dir, Some(notify)),
            Launcher::Threads => spawn_prepared(dir, Some(notify)),
        }
    }
}

/// The worker side of a run training now: a worker this studio started, or any process's
/// run the studio follows through its store.
pub struct LiveRun {
    /// The channels to the worker, or to the follower of its store.
    pub handle: RunHandle,
    /// Steps the run will take.
    pub total_steps: usize,
    /// Model size (known once the worker has started).
    pub n_params: usize,
    /// Where it computes, as the worker describes it.
    pub device: String,
    /// The newest attention maps on the probe text.
    pub attention: Option<AttentionSnapshot>,
    /// When the studio started it.
    pub started: Instant,
}

impl LiveRun {
    /// A run just started: its size and device arrive with the `Started` event.
    fn new(handle: RunHandle, total_steps: usize) -> Self {
        Self {
            handle,
            total_steps,
            n_params: 0,
            device: String::new(),
            attention: None,
            started: Instant::now(),
        }
    }
}

/// A run as the studio shows it.
pub struct RunView {
    /// The run folder.
    pub dir: PathBuf,
    /// What the run trains.
    pub spec: RunSpec,
    /// Where it stands.
    pub status: RunStatus,
    /// Last step and its training loss.
    pub last_step: Option<(usize, f32)>,
    /// Embedding objectives: the latest evaluation's step and metrics as listed, for the run
    /// list before the history is loaded.
    pub last_eval: Option<hearth_engine::project::store::LastEval>,
    /// Loaded when first shown; appended to while the run trains.
    pub history: Option<RunHistory>,
    /// The history as plot columns.
    pub curves: Curves,
    /// The worker, for a run training in this session.
    pub live: Option<LiveRun>,
    /// Ticked for the comparison page.
    pub checked: bool,
    /// Why the history could not be read.
    pub error: Option<String>,
    /// The user's name, tags and notes.
    pub annotations: Annotations,
    /// The latest contrastive batch view (runs training in this session).
    pub contrastive_view: Option<ContrastiveBatch>,
    /// The latest masked probe (runs training in this session).
    pub masked_view: Option<MaskedProbe>,
    /// Embedding maps of the probe set, in step order.
    pub embedding_maps: Vec<EmbeddingSnapshot>,
    /// Simple models' figures on the run's data, drawn as reference lines.
    pub references: Vec<hearth_engine::eval::baseline::Reference>,
    /// Attention snapshot read from the store: `(requested step, snapshot at or before it)`.
    pub stored_attention: Option<(usize, Option<AttentionSnapshot>)>,
}

/// One step as the curves take it.
fn step_point(m: &StepMetrics) -> StepPoint {
    StepPoint {
        step: m.step,
        tokens_seen: m.tokens_seen,
        elapsed_s: m.elapsed_s,
        loss: f64::from(m.train_loss),
    }
}

/// One evaluation as the curves take it.
fn eval_point(e: &EvalMetrics, tokens_per_step: f64) -> EvalPoint<'_> {
    EvalPoint {
        step: e.step,
        tokens_seen: e.step as f64 * tokens_per_step,
        elapsed_s: e.elapsed_s,
        val_loss: f64::from(e.val_loss),
        train_loss: f64::from(e.train_loss),
        metrics: &e.extra,
    }
}

/// The curves of a stored history.
fn curves_of(history: &RunHistory, tokens_per_step: f64) -> Curves {
    let mut curves = Curves::default();
    for m in &history.steps {
        curves.push_step(step_point(m));
    }
    for e in &history.evals {
        curves.push_eval(eval_point(e, tokens_per_step));
    }
    for chunk in history.step_terms.chunk_by(|a, b| a.0 == b.0) {
        let terms: Vec<(String, f64)> = chunk.iter().map(|(_, k, v)| (k.clone(), *v)).collect();
        curves.push_terms(chunk[0].0, &terms);
    }
    curves
}

impl RunView {
    /// A run listed by the project.
    pub fn from_entry(entry: RunEntry) -> Self {
        // A run left "running" by a process that died shows as interrupted; one whose worker
        // lives stays running (the app attaches to it).
        let status = hearth_engine::project::live::effective_status(&entry.dir, entry.status);
        Self {
            dir: entry.dir,
            spec: entry.spec,
            status,
            last_step: entry.last_step,
            last_eval: entry.last_eval,
            history: None,
            curves: Curves::default(),
            live: None,
            checked: false,
            error: None,
            annotations: entry.annotations,
            stored_attention: None,
            embedding_maps: Vec::new(),
            references: Vec::new(),
            contrastive_view: None,
            masked_view: None,
        }
    }

    /// A run folder just made for `spec`, waiting in the queue for its worker.
    pub fn queued(spec: RunSpec, dir: PathBuf) -> Self {
        Self {
            history: Some(RunHistory::default()),
            ..Self::from_entry(RunEntry {
                dir,
                spec,
                status: RunStatus::Queued,
                last_step: None,
                last_eval: None,
                annotations: Annotations::default(),
            })
        }
    }

    /// Takes over `handle`, the worker or follower of this run, with the history it started
    /// from (its events add the rest).
    pub fn adopt(&mut self, mut handle: RunHandle) {
        self.status = RunStatus::Running;
        let history = handle.take_history();
        self.live = Some(LiveRun::new(handle, self.spec.train.steps));
        match history {
            Some(history) => {
                // The views stored so far; later ones arrive as events.
                if let Ok(store) = RunStore::open(&self.dir) {
                    self.embedding_maps = store.embedding_maps().unwrap_or_default();
                    self.references = store.references().ok().flatten().unwrap_or_default();
                }
                self.curves = curves_of(&history, self.tokens_per_step());
                self.resolve_epochs();
                self.history = Some(history);
            }
            None => {
                self.history = None;
                self.ensure_history();
            }
        }
    }

    /// Follows this run, trained by another process, through its store.
    pub fn attach(&mut self, notify: Notify) -> Result<(), SpawnError> {
        let handle = attach_run(&self.dir, Some(notify))?;
        let status = self.status.clone();
        self.adopt(handle);
        self.status = status;
        Ok(())
    }

    /// Continues a stopped, failed or interrupted run from its last checkpoint.
    pub fn resume(&mut self, launcher: &Launcher, notify: Notify) -> Result<(), SpawnError> {
        let handle = launcher.start(&self.dir, true, notify)?;
        // The store dropped what came after the checkpoint; the handle holds what is left.
        self.adopt(handle);
        Ok(())
    }

    /// The settings of a new variant of this run.
    pub fn variant_spec(&self) -> RunSpec {
        let mut spec = self.spec.clone();
        spec.name = format!("{}-variant", self.name());
        spec
    }

    /// A fine-tune of this run: same shape, its newest checkpoint as the starting point, a
    /// tenth of the learning rate.
    pub fn fine_tune_spec(&self) -> RunSpec {
        let mut spec = self.spec.clone();
        spec.name = format!("{}-fine-tune", self.name());
        spec.init = Some(InitSpec {
            from_run: self.dir.clone(),
            ..Default::default()
        });
        spec
    }

    /// The stored attention snapshot at or before `step` (cached per requested step).
    pub fn attention_near(&mut self, step: usize) -> Option<&AttentionSnapshot> {
        if self.stored_attention.as_ref().map(|(s, _)| *s) != Some(step) {
            let found = RunStore::open(&self.dir).ok().and_then(|store| {
                let steps = store.attention_steps().ok()?;
                let at = steps.iter().rev().find(|&&s| s <= step).or(steps.first())?;
                store.attention_at(*at).ok().flatten()
            });
            self.stored_attention = Some((step, found));
        }
        self.stored_attention_snapshot()
    }

    /// The attention snapshot last read by [`RunView::attention_near`].
    pub fn stored_attention_snapshot(&self) -> Option<&AttentionSnapshot> {
        self.stored_attention.as_ref().and_then(|(_, s)| s.as_ref())
    }

    /// Training tokens per optimizer step.
    pub fn tokens_per_step(&self) -> f64 {
        (self.spec.train.batch_size * self.spec.model.context) as f64
    }

    /// Reads how many training tokens make one epoch of the run's data (see
    /// [`hearth_engine::data::corpus::run_epoch_tokens`]) into its curves.
    pub fn resolve_epochs(&mut self) {
        let tokens = hearth_engine::data::corpus::run_epoch_tokens(&self.dir, &self.spec.data);
        self.curves.set_epoch_tokens(tokens);
    }

    /// Loads the history from the store if it is not loaded yet.
    pub fn ensure_history(&mut self) {
        if self.history.is_some() {
            return;
        }
        // One open of the store for both reads.
        let loaded = RunStore::open(&self.dir).and_then(|store| {
            self.embedding_maps = store.embedding_maps()?;
            self.references = store.references()?.unwrap_or_default();
            store.load_history()
        });
        match loaded {
            Ok(history) => {
                self.curves = curves_of(&history, self.tokens_per_step());
                self.resolve_epochs();
                self.history = Some(history);
            }
            Err(err) => {
                self.error = Some(err.to_string());
                self.history = Some(RunHistory::default());
            }
        }
    }

    /// The name the user gave it, else the spec's.
    pub fn name(&self) -> &str {
        self.annotations
            .display_name
            .as_deref()
            .unwrap_or(&self.spec.name)
    }

    /// What tells runs of the same name apart in a list: objective and backend.
    pub fn recipe_label(&self) -> String {
        format!(
            "{} · {}",
            self.spec.objective.kind.name(),
            self.spec.train.backend.label()
        )
    }

    /// True while a worker trains it in this session.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Applies one worker event. Returns true when the run ended.
    fn apply(&mut self, event: RunEvent) -> bool {
        let history = self.history.get_or_insert_with(RunHistory::default);
        match event {
            RunEvent::Started {
                n_params,
                device,
                total_steps,
                ..
            } => {
                if let Some(live) = &mut self.live {
                    live.n_params = n_params;
                    live.device = device;
                    live.total_steps = total_steps;
                }
                self.status = RunStatus::Running;
            }
            RunEvent::Step(m) => {
                // The run records its data's size as it sets up, before its first step.
                if self.curves.step.is_empty() && self.curves.epoch_tokens().is_none() {
                    let tokens =
                        hearth_engine::data::corpus::run_epoch_tokens(&self.dir, &self.spec.data);
                    self.curves.set_epoch_tokens(tokens);
                }
                self.curves.push_step(step_point(&m));
                self.last_step = Some((m.step, m.train_loss));
                history.steps.push(m);
            }
            RunEvent::StepTerms { step, terms } => {
                self.curves.push_terms(step, &terms);
                history
                    .step_terms
                    .extend(terms.into_iter().map(|(k, v)| (step, k, v)));
            }
            RunEvent::Eval(e) => {
                let tokens_per_step = (self.spec.train.batch_size * self.spec.model.context) as f64;
                self.curves.push_eval(eval_point(&e, tokens_per_step));
                history.evals.push(e);
            }
            RunEvent::Attention(snapshot) => {
                if let Some(live) = &mut self.live {
                    live.attention = Some(snapshot);
                }
            }
            RunEvent::EmbeddingMap(map) => self.embedding_maps.push(map),
            RunEvent::References(references) => self.references = references,
            RunEvent::ContrastiveBatch(view) => self.contrastive_view = Some(view),
            RunEvent::MaskedProbe(view) => self.masked_view = Some(view),
            RunEvent::Sample { step, text } => history.samples.push((step, text)),
            RunEvent::Checkpoint { step, path } => history.checkpoints.push((step, path)),
            RunEvent::Warning { step, message } => {
                history
                    .messages
                    .push((step, "warning".to_string(), message));
            }
            RunEvent::Paused { .. } => self.status = RunStatus::Paused,
            RunEvent::Resumed { .. } => self.status = RunStatus::Running,
            RunEvent::Finished(summary) => {
                self.status = if summary.stopped_early {
                    RunStatus::Stopped
                } else {
                    RunStatus::Finished
                };
                return true;
            }
            RunEvent::Failed { reason, .. }
                if reason == hearth_engine::project::follow::INTERRUPTED =>
            {
                self.status = RunStatus::Interrupted;
                return true;
            }
            RunEvent::Failed { step, reason } => {
                history
                    .messages
                    .push((step, "error".to_string(), reason.clone()));
                self.status = RunStatus::Failed { reason };
                return true;
            }
        }
        false
    }
}

/// Drains the live runs' events for at most `budget`; returns true if events are left.
pub fn drain_events(runs: &mut [RunView], budget: Duration) -> bool {
    let deadline = Instant::now() + budget;
    let mut left = false;
    for run in runs {
        let mut ended = false;
        while let Some(live) = &run.live {
            if Instant::now() >= deadline {
                left = true;
                break;
            }
            match live.handle.try_recv() {
                Some(event) => {
                    if run.apply(event) {
                        ended = true;
                        break;
                    }
                }
                None => {
                    // A thread that ended without a final event (it cannot, but be safe).
                    if live.handle.is_finished() {
                        ended = true;
                    }
                    break;
                }
            }
        }
        if ended {
            // Joins the finished thread.
            run.live = None;
        }
    }
    left
}
