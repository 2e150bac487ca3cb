//! The sweep loop: picks each trial's values, starts it as an ordinary run of the project
//! through a [`TrialRunner`], feeds its evaluations to the scheduler, stops it when the
//! scheduler says so, and saves the record after every change, so a sweep killed at any point
//! reopens where it was.

use super::record::{SweepRecord, SweepSpec, SweepSummary, Trial, TrialState};
use super::scheduler::{CurveView, Decision, SchedulerKind};
use super::search::{self, Observation, SearchKind};
use super::space::ParamValue;
use super::{SweepError, apply};
use crate::events::EvalMetrics;
use crate::project::Project;
use crate::spec::RunSpec;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a trial's run reports, as a sweep needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum TrialEvent {
    /// An optimizer step finished (steps completed).
    Step(usize),
    /// An evaluation finished.
    Eval(EvalMetrics),
    /// The run ended: trained to its last step, or stopped (`stopped_early`).
    Ended {
        /// Steps completed.
        step: usize,
        /// True when it was stopped before its last step.
        stopped_early: bool,
    },
    /// The run failed.
    Failed {
        /// Steps completed.
        step: usize,
        /// Why.
        reason: String,
    },
}

/// A trial's run while it trains.
pub trait TrialRun: Send {
    /// The events since the last call, waiting up to `timeout` for the first one.
    fn poll(&mut self, timeout: Duration) -> Vec<TrialEvent>;
    /// Asks the run to stop after its current step; it ends with a checkpoint (so it can be
    /// continued) and reports [`TrialEvent::Ended`].
    fn stop(&mut self);
}

/// Starts trial runs: in this process ([`super::runner::InProcess`]), or through the project's
/// run queue as worker processes.
pub trait TrialRunner {
    /// Creates the run folder `dir` for `spec` and starts training it.
    fn start(&mut self, spec: RunSpec, dir: &Path) -> Result<Box<dyn TrialRun>, String>;
    /// Continues the stopped or interrupted run in `dir` from its newest checkpoint.
    fn resume(&mut self, dir: &Path) -> Result<Box<dyn TrialRun>, String>;
    /// How many trials may train at once.
    fn slots(&self) -> usize {
        1
    }
}

/// What happened in a sweep, for progress lines and the studio.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepEvent {
    /// A trial started training (or continued).
    TrialStarted {
        /// The trial.
        index: usize,
    },
    /// A trial was evaluated.
    TrialEval {
        /// The trial.
        index: usize,
        /// Its step.
        step: usize,
        /// The sweep's metric there.
        value: f64,
    },
    /// The scheduler judged a trial.
    Decision(Decision),
    /// A trial ended (see its state in the record).
    TrialEnded {
        /// The trial.
        index: usize,
    },
    /// Something went wrong that does not end the sweep.
    Warning(String),
}

/// A sweep of a project, open for running.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The project folder.
    pub project: PathBuf,
    /// The sweep's folder (`sweeps/<name>`).
    pub folder: PathBuf,
    /// Its record as last saved.
    pub record: SweepRecord,
    /// Why the last trial that could not continue started again instead.
    fallback: Option<String>,
}

/// A trial that trains.
struct Active {
    index: usize,
    run: Box<dyn TrialRun>,
    /// The step of the evaluation after which the scheduler stopped it.
    pruned_at: Option<usize>,
    /// The whole sweep is being stopped: the trial goes back to the queue.
    requeue: bool,
}

impl Sweep {
    /// Checks `spec` against `base` and saves a new sweep in the project folder `project`.
    pub fn create(project: &Path, spec: SweepSpec, base: RunSpec) -> Result<Self, SweepError> {
        super::check(&spec, &base)?;
        let folder = SweepRecord::folder(project, &spec.name);
        if folder.join(SweepRecord::FILE).exists() {
            return Err(SweepError::Arg {
                arg: "--name",
                message: format!(
                    "a sweep called {} exists in this project; continue it with --resume {}",
                    spec.name, spec.name
                ),
            });
        }
        let record = SweepRecord {
            schema_version: super::record::SWEEP_SCHEMA_VERSION,
            spec,
            base,
            trials: Vec::new(),
        };
        record.save(&folder)?;
        Ok(Self {
            project: project.to_path_buf(),
            folder,
            record,
            fallback: None,
        })
    }

    /// Opens the saved sweep `name` of the project. Trials that were training when its last
    /// process ended go back to the queue: they continue from their newest checkpoint.
    pub fn open(project: &Path, name: &str) -> Result<Self, SweepError> {
        let folder = SweepRecord::folder(project, name);
        if !folder.join(SweepRecord::FILE).exists() {
            let known = SweepRecord::list(project);
            return Err(SweepError::Arg {
                arg: "--resume",
                message: format!(
                    "no sweep called {name} in {}; sweeps here: {}",
                    project.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
        let mut record = SweepRecord::load(&folder)?;
        for trial in &mut record.trials {
            if trial.state == TrialState::Running {
                trial.state = TrialState::Queued;
            }
        }
        Ok(Self {
            project: project.to_path_buf(),
            folder,
            record,
            fallback: None,
        })
    }

    /// Raises the sweep's budget to `trials` in all (never lowers it).
    pub fn extend(&mut self, trials: usize) -> Result<(), SweepError> {
        if trials < self.record.trials.len() {
            return Err(SweepError::Arg {
                arg: "--trials",
                message: format!(
                    "the sweep has {} trials already; ask for more to extend it",
                    self.record.trials.len()
                ),
            });
        }
        self.record.spec.trials = self.record.spec.trials.max(trials);
        self.save()
    }

    /// Queues a pruned or stopped trial to continue to its last step; the scheduler leaves it
    /// alone from then on.
    pub fn continue_trial(&mut self, index: usize) -> Result<(), SweepError> {
        let trial = self
            .record
            .trials
            .get_mut(index)
            .ok_or_else(|| SweepError::Arg {
                arg: "--continue",
                message: format!("the sweep has no trial {index}"),
            })?;
        if !matches!(
            trial.state,
            TrialState::Pruned { .. } | TrialState::Stopped { .. }
        ) {
            return Err(SweepError::Arg {
                arg: "--continue",
                message: format!(
                    "trial {index} is {}; only a pruned or stopped trial continues",
                    trial.state.label()
                ),
            });
        }
        trial.state = TrialState::Queued;
        trial.continued = true;
        self.save()
    }

    fn save(&self) -> Result<(), SweepError> {
        self.record.save(&self.folder)
    }

    /// The run folder of trial `index`.
    pub fn run_dir(&self, index: usize) -> Option<PathBuf> {
        self.record
            .trials
            .get(index)
            .map(|t| SweepRecord::run_dir(&self.project, t))
    }

    /// The values of trial `index`, or `None` when the search has no more (a finished grid).
    fn values_for(&self, index: usize) -> Option<Vec<ParamValue>> {
        let spec = &self.record.spec;
        match spec.search {
            SearchKind::Grid => search::grid_trial(&spec.params, index),
            SearchKind::Random => Some(search::random_trial(&spec.params, spec.seed, index)),
            SearchKind::Tpe => {
                let observed: Vec<Observation> = self
                    .record
                    .trials
                    .iter()
                    .filter(|t| t.state.is_done())
                    .filter_map(|t| {
                        let (step, value) = *t.curve.last()?;
                        value.is_finite().then(|| Observation {
                            values: t.values.clone(),
                            score: self.record.score(value),
                            step,
                        })
                    })
                    .collect();
                Some(search::tpe_trial(&spec.params, spec.seed, index, &observed))
            }
        }
    }

    /// The trials the search would draw next, without training them (the same for every
    /// scheduler; for TPE only the first [`search::TPE_STARTUP`] are known ahead).
    pub fn preview(&self, count: usize) -> Vec<Vec<ParamValue>> {
        (0..count).map_while(|i| self.values_for(i)).collect()
    }

    /// The run settings of a trial with `values`.
    pub fn trial_spec(&self, index: usize, values: &[ParamValue]) -> Result<RunSpec, String> {
        let named: Vec<(String, ParamValue)> = self
            .record
            .spec
            .params
            .iter()
            .map(|p| p.name.clone())
            .zip(values.iter().cloned())
            .collect();
        let mut spec = apply::apply_values(&self.record.base, &named)?;
        spec.name = format!("{}-t{:02}", self.record.spec.name, index + 1);
        let errors = spec.validate();
        if !errors.is_empty() {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return Err(text.join("; "));
        }
        Ok(spec)
    }

    /// Adds the next trial to the record (queued), or `None` when the budget or the grid is
    /// spent.
    fn next_trial(&mut self) -> Result<Option<usize>, SweepError> {
        let index = self.record.trials.len();
        if index >= self.record.spec.trials {
            return Ok(None);
        }
        let Some(values) = self.values_for(index) else {
            return Ok(None);
        };
        let name = format!("{}-t{:02}", self.record.spec.name, index + 1);
        self.record.trials.push(Trial {
            index,
            name,
            run_dir: PathBuf::new(),
            values,
            state: TrialState::Queued,
            curve: Vec::new(),
            steps_trained: 0,
            continued: false,
        });
        self.save()?;
        Ok(Some(index))
    }

    /// Runs the sweep until its budget is spent and every trial has ended, or until `stop` is
    /// set (the training trials then go back to the queue, to continue when the sweep is
    /// opened again). `on_event` hears of every change, with the record as it now stands.
    pub fn run(
        &mut self,
        runner: &mut dyn TrialRunner,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(&SweepEvent, &SweepRecord),
    ) -> Result<SweepSummary, SweepError> {
        let project =
            Project::open_or_create(&self.project).map_err(|e| SweepError::Store(e.to_string()))?;
        let started = Instant::now();
        let mut active: Vec<Active> = Vec::new();
        let mut stopping = false;
        loop {
            if stop.load(Ordering::Relaxed) && !stopping {
                stopping = true;
                for a in active.iter_mut().filter(|a| !a.requeue) {
                    a.requeue = true;
                    a.run.stop();
                }
            }
            let out_of_time = self.record.spec.max_minutes > 0.0
                && started.elapsed().as_secs_f64() > self.record.spec.max_minutes * 60.0;
            // Start trials while there is room.
            while !stopping && active.len() < runner.slots().max(1) {
                let queued = self
                    .record
                    .trials
                    .iter()
                    .find(|t| {
                        t.state == TrialState::Queued && !active.iter().any(|a| a.index == t.index)
                    })
                    .map(|t| t.index);
                let index = match queued {
                    Some(i) => i,
                    None if out_of_time => break,
                    None => match self.next_trial()? {
                        Some(i) => i,
                        None => break,
                    },
                };
                match self.start_trial(index, runner, &project) {
                    Ok(run) => {
                        if let Some(note) = self.fallback.take() {
                            on_event(&SweepEvent::Warning(note), &self.record);
                        }
                        active.push(Active {
                            index,
                            run,
                            pruned_at: None,
                            requeue: false,
                        });
                        self.save()?;
                        on_event(&SweepEvent::TrialStarted { index }, &self.record);
                    }
                    Err(reason) => {
                        self.record.trials[index].state = TrialState::Failed { reason };
                        self.save()?;
                        on_event(&SweepEvent::TrialEnded { index }, &self.record);
                    }
                }
            }
            if active.is_empty() {
                break;
            }
            let wait = Duration::from_millis(100 / active.len() as u64);
            let mut ended = Vec::new();
            for (slot, a) in active.iter_mut().enumerate() {
                for event in a.run.poll(wait) {
                    if self.on_trial_event(a, event, on_event)? {
                        ended.push(slot);
                        break;
                    }
                    // A stop set while an event was heard reaches the trial at once, not
                    // after the rest of what it sent.
                    if stop.load(Ordering::Relaxed) && !a.requeue {
                        a.requeue = true;
                        a.run.stop();
                    }
                }
            }
            for slot in ended.into_iter().rev() {
                let a = active.remove(slot);
                on_event(&SweepEvent::TrialEnded { index: a.index }, &self.record);
            }
        }
        Ok(self.record.summary())
    }

    /// Starts (or continues) trial `index`.
    fn start_trial(
        &mut self,
        index: usize,
        runner: &mut dyn TrialRunner,
        project: &Project,
    ) -> Result<Box<dyn TrialRun>, String> {
        let trial = &self.record.trials[index];
        let continued = trial.continued;
        let existing = (!trial.run_dir.as_os_str().is_empty())
            .then(|| SweepRecord::run_dir(&self.project, trial))
            .filter(|d| d.join(crate::project::RunStore::SPEC_FILE).exists());
        if let Some(dir) = existing {
            match runner.resume(&dir) {
                Ok(run) => {
                    self.record.trials[index].state = TrialState::Running;
                    return Ok(run);
                }
                // A trial interrupted before its first checkpoint starts again, in a new
                // folder; the old one stays as an interrupted run.
                Err(reason) if !continued => {
                    self.fallback = Some(format!(
                        "trial {}: {reason}; it starts again in a new run folder",
                        index + 1
                    ));
                }
                Err(reason) => return Err(format!("cannot continue: {reason}")),
            }
        }
        let values = self.record.trials[index].values.clone();
        let spec = self.trial_spec(index, &values)?;
        let dir = project.new_run_dir(&spec.name);
        let relative = dir
            .strip_prefix(&self.project)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| dir.clone());
        let run = runner.start(spec, &dir)?;
        let trial = &mut self.record.trials[index];
        trial.run_dir = relative;
        trial.state = TrialState::Running;
        trial.curve.clear();
        trial.steps_trained = 0;
        Ok(run)
    }

    /// Takes in one event of a training trial; true when the trial has ended.
    fn on_trial_event(
        &mut self,
        a: &mut Active,
        event: TrialEvent,
        on_event: &mut dyn FnMut(&SweepEvent, &SweepRecord),
    ) -> Result<bool, SweepError> {
        let index = a.index;
        match event {
            TrialEvent::Step(step) => {
                self.record.trials[index].steps_trained = step;
                Ok(false)
            }
            TrialEvent::Eval(e) => {
                let Some(value) = metric_value(&e, &self.record.spec.metric) else {
                    on_event(
                        &SweepEvent::Warning(format!(
                            "trial {index}: the evaluation at step {} has no {}",
                            e.step, self.record.spec.metric
                        )),
                        &self.record,
                    );
                    return Ok(false);
                };
                let trial = &mut self.record.trials[index];
                // A continued run drops what it recorded after its checkpoint.
                trial.curve.retain(|(s, _)| *s < e.step);
                trial.curve.push((e.step, value));
                trial.steps_trained = trial.steps_trained.max(e.step);
                let judged = a.pruned_at.is_none() && !a.requeue && !trial.continued;
                on_event(
                    &SweepEvent::TrialEval {
                        index,
                        step: e.step,
                        value,
                    },
                    &self.record,
                );
                if judged && let Some(decision) = self.judge(index, e.step) {
                    if let Err(err) = SweepRecord::log_decision(&self.folder, &decision) {
                        on_event(&SweepEvent::Warning(err.to_string()), &self.record);
                    }
                    if decision.stop {
                        a.pruned_at = Some(e.step);
                        a.run.stop();
                    }
                    on_event(&SweepEvent::Decision(decision), &self.record);
                }
                self.save()?;
                Ok(false)
            }
            TrialEvent::Ended {
                step,
                stopped_early,
            } => {
                let trial = &mut self.record.trials[index];
                trial.steps_trained = trial.steps_trained.max(step);
                trial.state = if a.requeue {
                    TrialState::Queued
                } else if let Some(at) = a.pruned_at {
                    TrialState::Pruned { step: at }
                } else if stopped_early {
                    TrialState::Stopped { step }
                } else {
                    TrialState::Completed
                };
                self.save()?;
                Ok(true)
            }
            TrialEvent::Failed { step, reason } => {
                let trial = &mut self.record.trials[index];
                trial.steps_trained = trial.steps_trained.max(step);
                trial.state = TrialState::Failed { reason };
                self.save()?;
                Ok(true)
            }
        }
    }

    /// The scheduler's decision on trial `index` after its evaluation at `step`.
    fn judge(&self, index: usize, step: usize) -> Option<Decision> {
        let scheduler = &self.record.spec.scheduler;
        if scheduler.kind == SchedulerKind::None {
            return None;
        }
        let scored: Vec<ScoredTrial> = self
            .record
            .trials
            .iter()
            .map(|t| {
                let curve = t
                    .curve
                    .iter()
                    .map(|(s, v)| (*s, self.record.score(*v)))
                    .collect();
                (t.index, curve, t.state == TrialState::Completed)
            })
            .collect();
        let views: Vec<CurveView<'_>> = scored
            .iter()
            .map(|(i, c, done)| CurveView {
                index: *i,
                curve: c,
                completed: *done,
            })
            .collect();
        let base = &self.record.base.train;
        let mut decision = scheduler.judge(index, step, base.eval_interval, base.steps, &views)?;
        // Reported in the metric's own sign.
        decision.value = self.record.score(decision.value);
        decision.cutoff = self.record.score(decision.cutoff);
        Some(decision)
    }
}

/// A trial as the scheduler reads it: its number, its curve (lower is better), completed.
type ScoredTrial = (usize, Vec<(usize, f64)>, bool);

/// The metric `name` of an evaluation (`val_loss`, `train_loss`, or an objective's own).
pub fn metric_value(e: &EvalMetrics, name: &str) -> Option<f64> {
    match name {
        "val_loss" => Some(f64::from(e.val_loss)),
        "train_loss" => Some(f64::from(e.train_loss)),
        other => e.metric(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::record::Direction;
    use crate::sweep::scheduler::SchedulerSpec;
    use crate::sweep::space::Param;
    use std::sync::{Arc, Mutex};

    /// Synthetic training: trial values give a loss curve `start - rate * ln(1 + step / 50)`
    /// (start from the width, rate from the learning rate), evaluated every 50 of 300 steps.
    /// A stop ends the run after the step it arrives at. Test double of a run worker.
    struct Synthetic {
        started: Arc<Mutex<Vec<String>>>,
        resumed: Arc<Mutex<Vec<PathBuf>>>,
    }

    struct SyntheticRun {
        events: std::collections::VecDeque<TrialEvent>,
        step: usize,
        stopping: bool,
    }

    fn loss(spec: &RunSpec, step: usize) -> f64 {
        let start = 2.5 + 64.0 / spec.model.d_model as f64;
        let rate = (spec.optim.lr.log10() + 5.0) * 0.2;
        start - rate * (1.0 + step as f64 / 50.0).ln()
    }

    fn events_of(spec: &RunSpec, from: usize) -> std::collections::VecDeque<TrialEvent> {
        let mut events = std::collections::VecDeque::new();
        for step in (from + 1)..=spec.train.steps {
            events.push_back(TrialEvent::Step(step));
            if step % spec.train.eval_interval == 0 {
                events.push_back(TrialEvent::Eval(EvalMetrics {
                    step,
                    train_loss: loss(spec, step) as f32,
                    val_loss: loss(spec, step) as f32,
                    elapsed_s: 0.0,
                    extra: Vec::new(),
                }));
            }
        }
        events.push_back(TrialEvent::Ended {
            step: spec.train.steps,
            stopped_early: false,
        });
        events
    }

    impl TrialRunner for Synthetic {
        fn start(&mut self, spec: RunSpec, dir: &Path) -> Result<Box<dyn TrialRun>, String> {
            crate::project::RunStore::create(dir, &spec).map_err(|e| e.to_string())?;
            self.started.lock().unwrap().push(spec.name.clone());
            Ok(Box::new(SyntheticRun {
                events: events_of(&spec, 0),
                step: 0,
                stopping: false,
            }))
        }

        fn resume(&mut self, dir: &Path) -> Result<Box<dyn TrialRun>, String> {
            let spec = crate::project::store::read_spec(dir).map_err(|e| e.to_string())?;
            self.resumed.lock().unwrap().push(dir.to_path_buf());
            // No checkpoint before the interruption: the run trains again from its start and
            // reports its evaluations again.
            Ok(Box::new(SyntheticRun {
                events: events_of(&spec, 0),
                step: 0,
                stopping: false,
            }))
        }
    }

    impl TrialRun for SyntheticRun {
        fn poll(&mut self, _timeout: Duration) -> Vec<TrialEvent> {
            if self.stopping {
                self.events.clear();
                return vec![TrialEvent::Ended {
                    step: self.step,
                    stopped_early: true,
                }];
            }
            let mut out = Vec::new();
            while let Some(e) = self.events.pop_front() {
                if let TrialEvent::Step(s) = e {
                    self.step = s;
                }
                let eval = matches!(e, TrialEvent::Eval(_));
                out.push(e);
                if eval {
                    break;
                }
            }
            out
        }

        fn stop(&mut self) {
            self.stopping = true;
        }
    }

    fn runner() -> Synthetic {
        Synthetic {
            started: Arc::default(),
            resumed: Arc::default(),
        }
    }

    fn sweep_spec(name: &str, scheduler: SchedulerKind, trials: usize) -> SweepSpec {
        SweepSpec {
            name: name.into(),
            params: vec![
                Param::parse("lr=log:1e-4:1e-2").unwrap(),
                Param::parse("width=32,64,128").unwrap(),
            ],
            search: SearchKind::Random,
            scheduler: SchedulerSpec {
                kind: scheduler,
                ..SchedulerSpec::default()
            },
            metric: "val_loss".into(),
            direction: Direction::Min,
            seed: 7,
            trials,
            max_minutes: 0.0,
        }
    }

    fn base() -> RunSpec {
        let mut base = RunSpec::default();
        base.train.steps = 300;
        base.train.eval_interval = 50;
        base.train.backend = crate::backend::BackendKind::Flex;
        base
    }

    fn run_to_end(sweep: &mut Sweep, runner: &mut Synthetic) -> SweepSummary {
        sweep
            .run(runner, &AtomicBool::new(false), &mut |_, _| {})
            .unwrap()
    }

    #[test]
    fn asha_prunes_the_trials_its_rule_says_and_keeps_the_best() {
        let project = tempfile::tempdir().unwrap();
        let mut plain = Sweep::create(
            project.path(),
            sweep_spec("plain", SchedulerKind::None, 8),
            base(),
        )
        .unwrap();
        let mut asha = Sweep::create(
            project.path(),
            sweep_spec("asha", SchedulerKind::Asha, 8),
            base(),
        )
        .unwrap();
        let none = run_to_end(&mut plain, &mut runner());
        let summary = run_to_end(&mut asha, &mut runner());
        let values = |s: &Sweep| -> Vec<Vec<ParamValue>> {
            s.record.trials.iter().map(|t| t.values.clone()).collect()
        };
        assert_eq!(
            values(&plain),
            values(&asha),
            "the same seed draws the same trials"
        );
        assert_eq!((none.trials, none.pruned), (8, 0));
        assert!((none.compute_share - 1.0).abs() < 1e-12);
        // Replay the rule on the full curves of the plain sweep: a trial is pruned at the
        // first rung where it is outside the best third of the trials before it there.
        let full = &plain.record.trials;
        for (i, trial) in asha.record.trials.iter().enumerate() {
            let mut expected = TrialState::Completed;
            for rung in [50usize, 150] {
                let at = |t: &Trial| t.curve.iter().find(|(s, _)| *s == rung).map(|(_, v)| *v);
                let earlier: Vec<f64> = asha.record.trials[..i].iter().filter_map(at).collect();
                let mine = at(&full[i]).unwrap();
                if !earlier.is_empty()
                    && mine > crate::sweep::scheduler::percentile(&earlier, 1.0 / 3.0)
                {
                    expected = TrialState::Pruned { step: rung };
                    break;
                }
            }
            assert_eq!(trial.state, expected, "trial {i}: {:?}", trial.values);
            if let TrialState::Pruned { step } = trial.state {
                assert_eq!(
                    trial.steps_trained, step,
                    "stopped right after its evaluation"
                );
                assert_eq!(trial.curve.last().unwrap().0, step);
            }
        }
        assert!(
            summary.pruned > 0 && summary.compute_share < 0.7,
            "{summary:?}"
        );
        let (best_plain, best_asha) = (none.best.unwrap(), summary.best.unwrap());
        assert_eq!(
            best_plain, best_asha,
            "the best trial is never pruned on these curves"
        );
        let decisions = SweepRecord::decisions(&asha.folder);
        assert_eq!(
            decisions.iter().filter(|d| d.stop).count(),
            summary.pruned,
            "every stop is logged"
        );
        // Every trial is an ordinary run of the project.
        for t in &asha.record.trials {
            assert!(
                SweepRecord::run_dir(project.path(), t)
                    .join("spec.json")
                    .exists()
            );
        }
    }

    #[test]
    fn an_interrupted_sweep_reopens_resumes_its_trial_and_can_be_extended() {
        let project = tempfile::tempdir().unwrap();
        let spec = sweep_spec("s", SchedulerKind::None, 3);
        let mut sweep = Sweep::create(project.path(), spec.clone(), base()).unwrap();
        // The process ends while trial 1 trains: the stop flag is set at its first event.
        let stop = AtomicBool::new(false);
        let mut first = runner();
        sweep
            .run(&mut first, &stop, &mut |event, _| {
                if *event == (SweepEvent::TrialStarted { index: 1 }) {
                    stop.store(true, Ordering::Relaxed);
                }
            })
            .unwrap();
        assert_eq!(sweep.record.trials.len(), 2);
        assert_eq!(sweep.record.trials[1].state, TrialState::Queued);
        // A kill leaves the trial as running in the file.
        let mut killed = SweepRecord::load(&sweep.folder).unwrap();
        killed.trials[1].state = TrialState::Running;
        killed.save(&sweep.folder).unwrap();

        let mut reopened = Sweep::open(project.path(), "s").unwrap();
        assert_eq!(reopened.record.trials[1].state, TrialState::Queued);
        let mut second = runner();
        let summary = run_to_end(&mut reopened, &mut second);
        assert_eq!(summary.trials, 3);
        assert_eq!(
            second.resumed.lock().unwrap().as_slice(),
            [reopened.run_dir(1).unwrap()],
            "the interrupted trial continues in its own run folder"
        );
        assert_eq!(second.started.lock().unwrap().as_slice(), ["s-t03"]);
        assert!(
            reopened
                .record
                .trials
                .iter()
                .all(|t| t.state == TrialState::Completed)
        );
        let steps: Vec<usize> = reopened.record.trials[1]
            .curve
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(steps, [50, 100, 150, 200, 250, 300], "no evaluation twice");

        // Extended: the first three trials stay, two more are drawn as the seed says.
        reopened.extend(5).unwrap();
        run_to_end(&mut reopened, &mut runner());
        let mut fresh = Sweep::create(
            project.path(),
            SweepSpec {
                name: "fresh".into(),
                trials: 5,
                ..spec
            },
            base(),
        )
        .unwrap();
        run_to_end(&mut fresh, &mut runner());
        // The same values (JSON keeps a real to its last bit or the one next to it).
        assert_eq!(reopened.record.trials.len(), fresh.record.trials.len());
        for (a, b) in reopened.record.trials.iter().zip(&fresh.record.trials) {
            for (x, y) in a.values.iter().zip(&b.values) {
                match (x, y) {
                    (ParamValue::Real(x), ParamValue::Real(y)) => {
                        assert!((x - y).abs() <= 1e-12 * x.abs(), "{x} {y}")
                    }
                    _ => assert_eq!(x, y),
                }
            }
        }
        assert!(reopened.extend(2).is_err(), "a sweep is never shrunk");
        let err = Sweep::open(project.path(), "nope").unwrap_err().to_string();
        assert!(
            err.contains("--resume") && err.contains("fresh, s"),
            "{err}"
        );
    }

    #[test]
    fn a_pruned_trial_continues_to_its_last_step_unjudged() {
        let project = tempfile::tempdir().unwrap();
        let mut sweep = Sweep::create(
            project.path(),
            sweep_spec("c", SchedulerKind::Asha, 8),
            base(),
        )
        .unwrap();
        run_to_end(&mut sweep, &mut runner());
        let pruned = sweep
            .record
            .trials
            .iter()
            .find(|t| matches!(t.state, TrialState::Pruned { .. }))
            .map(|t| t.index)
            .expect("some trial is pruned");
        assert!(
            sweep.continue_trial(0).is_err(),
            "a completed trial has nothing to continue"
        );
        sweep.continue_trial(pruned).unwrap();
        let mut again = runner();
        run_to_end(&mut sweep, &mut again);
        assert_eq!(again.resumed.lock().unwrap().len(), 1);
        assert_eq!(sweep.record.trials[pruned].state, TrialState::Completed);
    }

    #[test]
    fn a_trial_whose_values_do_not_fit_together_fails_without_training() {
        let project = tempfile::tempdir().unwrap();
        let mut spec = sweep_spec("h", SchedulerKind::None, 4);
        // Each value fits the base (40 wide, 4 heads) alone; 48 wide over 5 heads does not.
        spec.params = vec![
            Param::parse("width=40,48").unwrap(),
            Param::parse("heads=4,5").unwrap(),
        ];
        spec.search = SearchKind::Grid;
        let mut b = base();
        b.model.d_model = 40;
        b.model.n_head = 4;
        let mut sweep = Sweep::create(project.path(), spec, b).unwrap();
        let mut r = runner();
        let summary = run_to_end(&mut sweep, &mut r);
        let states: Vec<String> = sweep
            .record
            .trials
            .iter()
            .map(|t| t.state.label())
            .collect();
        assert_eq!(states, ["completed", "completed", "completed", "failed"]);
        match &sweep.record.trials[3].state {
            TrialState::Failed { reason } => assert!(reason.contains("model."), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.started.lock().unwrap().len(),
            3,
            "the misfit never trained"
        );
        assert_eq!(summary.trials, 3);
    }

    #[test]
    fn a_sweep_stopped_mid_trial_continues_that_run_from_its_checkpoint() {
        use crate::data::{DataSource, DataSpec};
        let project = tempfile::tempdir().unwrap();
        let mut b = base();
        b.data = DataSpec {
            source: DataSource::Generated {
                seed: 1,
                n_chars: 20_000,
            },
            ..DataSpec::default()
        };
        b.model.n_layer = 1;
        b.model.n_head = 1;
        b.model.d_model = 16;
        b.model.context = 8;
        b.train.batch_size = 2;
        // Far more steps than can pass before the stop set at the first evaluation lands.
        let steps_total = 2000;
        b.train.steps = steps_total;
        b.train.eval_interval = 4;
        b.train.eval_batches = 1;
        b.train.sample_tokens = 4;
        b.train.threads = 1;
        let mut spec = sweep_spec("real", SchedulerKind::None, 1);
        spec.params = vec![Param::parse("lr=1e-3").unwrap()];
        let mut sweep = Sweep::create(project.path(), spec, b).unwrap();
        // Stopped after the trial's first evaluation, as when the studio closes.
        let stop = AtomicBool::new(false);
        sweep
            .run(
                &mut super::super::runner::InProcess::default(),
                &stop,
                &mut |e, _| {
                    if matches!(e, SweepEvent::TrialEval { .. }) {
                        stop.store(true, Ordering::Relaxed);
                    }
                },
            )
            .unwrap();
        let trial = &sweep.record.trials[0];
        assert_eq!(trial.state, TrialState::Queued, "back in the queue");
        let dir = sweep.run_dir(0).unwrap();
        let store = crate::project::RunStore::open(&dir).unwrap();
        assert!(
            store.newest_checkpoint().unwrap().is_some(),
            "stopped with a checkpoint"
        );
        drop(store);

        let mut reopened = Sweep::open(project.path(), "real").unwrap();
        let summary = reopened
            .run(
                &mut super::super::runner::InProcess::default(),
                &AtomicBool::new(false),
                &mut |e, _| assert!(!matches!(e, SweepEvent::Warning(_)), "{e:?}"),
            )
            .unwrap();
        let trial = &reopened.record.trials[0];
        assert_eq!(trial.state, TrialState::Completed);
        assert_eq!(reopened.run_dir(0).unwrap(), dir, "the same run folder");
        let steps: Vec<usize> = trial.curve.iter().map(|p| p.0).collect();
        // The stop's own final evaluation (at the step it reached) may sit between 4 and 8.
        assert!(
            steps.windows(2).all(|w| w[0] < w[1]),
            "each step once: {steps:?}"
        );
        assert_eq!(
            (steps[0], steps.last().copied()),
            (4, Some(steps_total)),
            "{steps:?}"
        );
        assert!(steps.contains(&8), "{steps:?}");
        assert_eq!(trial.steps_trained, steps_total);
        assert_eq!(summary.trials, 1);
    }
}
