//! A sweep as the project keeps it: `sweeps/<name>/sweep.json` (its settings, the base run
//! spec and every trial with its values, state and curve) and `sweeps/<name>/decisions.jsonl`
//! (each scheduler decision, one JSON line, appended). Trials are ordinary runs in `runs/`.

use super::SweepError;
use super::scheduler::{Decision, SchedulerSpec};
use super::search::SearchKind;
use super::space::{Param, ParamValue};
use crate::project::store::write_atomic;
use crate::spec::RunSpec;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bumped when a saved field changes meaning.
pub const SWEEP_SCHEMA_VERSION: u32 = 1;

/// Whether the metric is better low or high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Lower is better (losses, perplexity).
    #[default]
    Min,
    /// Higher is better (accuracy, recall, MRR, Spearman).
    Max,
}

impl Direction {
    /// Losses and perplexities are minimised, every other metric maximised.
    pub fn for_metric(metric: &str) -> Self {
        if metric.contains("loss") || metric.contains("ppl") {
            Direction::Min
        } else {
            Direction::Max
        }
    }

    /// `value` oriented so that lower is better.
    pub fn score(self, value: f64) -> f64 {
        match self {
            Direction::Min => value,
            Direction::Max => -value,
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Min => "min",
            Direction::Max => "max",
        }
    }
}

/// What a sweep explores and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// The sweep's name (its folder under `sweeps/`, and the start of its trials' run names).
    pub name: String,
    /// The settings varied.
    pub params: Vec<Param>,
    /// How values are picked.
    pub search: SearchKind,
    /// Early stopping.
    pub scheduler: SchedulerSpec,
    /// The metric judged (`val_loss`, or one the objective reports).
    pub metric: String,
    /// Whether it is better low or high.
    pub direction: Direction,
    /// Seed of the search (trial `i`'s random values depend on it and `i` only).
    pub seed: u64,
    /// Trials to run in all.
    pub trials: usize,
    /// No trial starts after this many minutes of the sweep (0: no limit).
    #[serde(default)]
    pub max_minutes: f64,
}

/// Where a trial stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TrialState {
    /// Waiting to start.
    Queued,
    /// Training.
    Running,
    /// Trained to its last step.
    Completed,
    /// Stopped by the scheduler after its evaluation at `step`; its run ends as stopped, with
    /// a checkpoint, and can be continued.
    Pruned {
        /// The step of the evaluation that stopped it.
        step: usize,
    },
    /// Stopped by the user.
    Stopped {
        /// Steps trained.
        step: usize,
    },
    /// Could not train: settings that do not fit together, or a failed run.
    Failed {
        /// Why.
        reason: String,
    },
}

impl TrialState {
    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            TrialState::Queued => "queued".into(),
            TrialState::Running => "running".into(),
            TrialState::Completed => "completed".into(),
            TrialState::Pruned { step } => format!("pruned at step {step}"),
            TrialState::Stopped { step } => format!("stopped at step {step}"),
            TrialState::Failed { .. } => "failed".into(),
        }
    }

    /// True once the trial will not train any more (unless continued).
    pub fn is_done(&self) -> bool {
        !matches!(self, TrialState::Queued | TrialState::Running)
    }
}

/// One trial: a run with the sweep's values written into the base spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Its number, from 0.
    pub index: usize,
    /// The run's name.
    pub name: String,
    /// The run folder, relative to the project folder (absolute when outside it).
    pub run_dir: PathBuf,
    /// Its values, in the order of [`SweepSpec::params`].
    pub values: Vec<ParamValue>,
    /// Where it stands.
    pub state: TrialState,
    /// The metric at each evaluation: (step, value as reported).
    pub curve: Vec<(usize, f64)>,
    /// Optimizer steps trained.
    pub steps_trained: usize,
    /// Set when a pruned trial was continued: the scheduler leaves it alone.
    #[serde(default)]
    pub continued: bool,
}

impl Trial {
    /// The metric at its last evaluation.
    pub fn last_value(&self) -> Option<f64> {
        self.curve.last().map(|(_, v)| *v)
    }

    /// The value of parameter `name` of `spec`.
    pub fn value_of(&self, spec: &SweepSpec, name: &str) -> Option<&ParamValue> {
        let i = spec.params.iter().position(|p| p.name == name)?;
        self.values.get(i)
    }
}

/// A sweep: its settings, the run spec every trial starts from, and its trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// [`SWEEP_SCHEMA_VERSION`] when saved.
    pub schema_version: u32,
    /// What it explores.
    pub spec: SweepSpec,
    /// The settings every trial starts from.
    pub base: RunSpec,
    /// Every trial so far.
    pub trials: Vec<Trial>,
}

/// Figures of a sweep, as the last line of `hearth sweep` gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSummary {
    /// The best completed trial (or, if none completed, the best trial), with its last value.
    pub best: Option<(usize, f64)>,
    /// Trials that trained (started at all).
    pub trials: usize,
    /// Trials stopped by the scheduler.
    pub pruned: usize,
    /// Steps trained over trials times the base run's steps.
    pub compute_share: f64,
}

impl SweepRecord {
    /// The file name of the record in a sweep folder.
    pub const FILE: &'static str = "sweep.json";
    /// The file name of the decision log in a sweep folder.
    pub const DECISIONS: &'static str = "decisions.jsonl";

    /// The folder of sweep `name` in the project folder `project`.
    pub fn folder(project: &Path, name: &str) -> PathBuf {
        project.join("sweeps").join(name)
    }

    /// Every sweep saved in the project folder, by name.
    pub fn list(project: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(project.join("sweeps"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().join(Self::FILE).exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Reads the sweep in `folder`.
    pub fn load(folder: &Path) -> Result<Self, SweepError> {
        let path = folder.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| SweepError::Io {
            path: path.clone(),
            source,
        })?;
        let record: SweepRecord = serde_json::from_str(&text).map_err(|e| SweepError::File {
            path: path.clone(),
            message: format!("line {}, column {}: {e}", e.line(), e.column()),
        })?;
        if record.schema_version > SWEEP_SCHEMA_VERSION {
            return Err(SweepError::File {
                path,
                message: format!(
                    "schema_version {} is newer than this Hearth understands ({SWEEP_SCHEMA_VERSION})",
                    record.schema_version
                ),
            });
        }
        Ok(record)
    }

    /// Writes the record into `folder` (atomically; the folder is created).
    pub fn save(&self, folder: &Path) -> Result<(), SweepError> {
        std::fs::create_dir_all(folder).map_err(|source| SweepError::Io {
            path: folder.to_path_buf(),
            source,
        })?;
        let json = serde_json::to_string_pretty(self).expect("a sweep serializes");
        write_atomic(&folder.join(Self::FILE), json.as_bytes())
            .map_err(|e| SweepError::Store(e.to_string()))
    }

    /// Appends a decision to the folder's log.
    pub fn log_decision(folder: &Path, decision: &Decision) -> Result<(), SweepError> {
        let path = folder.join(Self::DECISIONS);
        let io = |source| SweepError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let line = serde_json::to_string(decision).expect("a decision serializes");
        writeln!(file, "{line}").map_err(io)
    }

    /// The decisions logged in `folder`, oldest first (lines that do not read are skipped: a
    /// line cut by a crash is the only kind).
    pub fn decisions(folder: &Path) -> Vec<Decision> {
        std::fs::read_to_string(folder.join(Self::DECISIONS))
            .map(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A trial's value oriented so that lower is better.
    pub fn score(&self, value: f64) -> f64 {
        self.spec.direction.score(value)
    }

    /// The best trial: the best last value among completed trials, or among all trials with a
    /// value when none has completed.
    pub fn best(&self) -> Option<(usize, f64)> {
        let pick = |completed_only: bool| {
            self.trials
                .iter()
                .filter(|t| !completed_only || t.state == TrialState::Completed)
                .filter_map(|t| {
                    t.last_value()
                        .filter(|v| v.is_finite())
                        .map(|v| (t.index, v))
                })
                .min_by(|a, b| self.score(a.1).total_cmp(&self.score(b.1)))
        };
        pick(true).or_else(|| pick(false))
    }

    /// Trials ordered best first (those without a value last).
    pub fn ranking(&self) -> Vec<usize> {
        let mut order: Vec<(usize, f64, bool)> = self
            .trials
            .iter()
            .map(|t| {
                let value = t.last_value().filter(|v| v.is_finite());
                (
                    t.index,
                    value.map_or(f64::INFINITY, |v| self.score(v)),
                    t.state == TrialState::Completed,
                )
            })
            .collect();
        order.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.total_cmp(&b.1)));
        order.into_iter().map(|(i, _, _)| i).collect()
    }

    /// The sweep's figures.
    pub fn summary(&self) -> SweepSummary {
        let started: Vec<&Trial> = self
            .trials
            .iter()
            .filter(|t| t.steps_trained > 0 || !matches!(t.state, TrialState::Failed { .. }))
            .filter(|t| t.state != TrialState::Queued)
            .collect();
        let steps: usize = started.iter().map(|t| t.steps_trained).sum();
        let full = started.len() * self.base.train.steps.max(1);
        SweepSummary {
            best: self.best(),
            trials: started.len(),
            pruned: self
                .trials
                .iter()
                .filter(|t| matches!(t.state, TrialState::Pruned { .. }))
                .count(),
            compute_share: if full == 0 {
                0.0
            } else {
                steps as f64 / full as f64
            },
        }
    }

    /// The run folder of a trial, for a sweep of the project in `project`.
    pub fn run_dir(project: &Path, trial: &Trial) -> PathBuf {
        if trial.run_dir.is_absolute() {
            trial.run_dir.clone()
        } else {
            project.join(&trial.run_dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(index: usize, state: TrialState, curve: Vec<(usize, f64)>, steps: usize) -> Trial {
        Trial {
            index,
            name: format!("t{index}"),
            run_dir: PathBuf::from(format!("runs/t{index}")),
            values: vec![ParamValue::Real(1e-3)],
            state,
            curve,
            steps_trained: steps,
            continued: false,
        }
    }

    fn record(direction: Direction) -> SweepRecord {
        let mut base = RunSpec::default();
        base.train.steps = 100;
        SweepRecord {
            schema_version: SWEEP_SCHEMA_VERSION,
            spec: SweepSpec {
                name: "s".into(),
                params: vec![Param::parse("lr=log:1e-4:1e-2").unwrap()],
                search: SearchKind::Random,
                scheduler: SchedulerSpec::default(),
                metric: "val_loss".into(),
                direction,
                seed: 1,
                trials: 4,
                max_minutes: 0.0,
            },
            base,
            trials: vec![
                trial(0, TrialState::Completed, vec![(50, 2.0), (100, 1.5)], 100),
                trial(1, TrialState::Pruned { step: 50 }, vec![(50, 1.2)], 51),
                trial(2, TrialState::Completed, vec![(50, 2.5), (100, 1.8)], 100),
                trial(3, TrialState::Failed { reason: "x".into() }, vec![], 0),
            ],
        }
    }

    #[test]
    fn the_best_is_the_best_completed_trial_and_the_share_counts_steps_trained() {
        let r = record(Direction::Min);
        assert_eq!(
            r.best(),
            Some((0, 1.5)),
            "a pruned trial's early value does not count"
        );
        let s = r.summary();
        assert_eq!(
            (s.trials, s.pruned),
            (3, 1),
            "a trial that never trained is not counted"
        );
        assert!((s.compute_share - 251.0 / 300.0).abs() < 1e-12);
        assert_eq!(record(Direction::Max).best(), Some((2, 1.8)));
        assert_eq!(r.ranking(), [0, 2, 1, 3]);
    }

    #[test]
    fn a_record_round_trips_through_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = SweepRecord::folder(dir.path(), "s");
        let r = record(Direction::Min);
        r.save(&folder).unwrap();
        assert_eq!(SweepRecord::load(&folder).unwrap(), r);
        assert_eq!(SweepRecord::list(dir.path()), ["s"]);
        let d = Decision {
            trial: 1,
            step: 50,
            value: 1.2,
            rung: 50,
            cutoff: 1.0,
            compared: 1,
            stop: true,
        };
        SweepRecord::log_decision(&folder, &d).unwrap();
        SweepRecord::log_decision(&folder, &d).unwrap();
        assert_eq!(SweepRecord::decisions(&folder), [d.clone(), d]);
        std::fs::write(folder.join(SweepRecord::FILE), "{ not json").unwrap();
        let err = SweepRecord::load(&folder).unwrap_err().to_string();
        assert!(
            err.contains("sweep.json") && err.contains("line 1"),
            "{err}"
        );
    }
}
