//! Sweeps: many runs over a space of settings, the bad ones stopped early, the results ranked.
//!
//! - [`space`]: the parameters (`lr=log:1e-4:1e-2`, `width=32,64,128`, ...);
//! - [`apply`]: which run settings can vary and how a trial's values enter its [`RunSpec`];
//! - [`search`]: grid, random and TPE;
//! - [`scheduler`]: ASHA and the median rule;
//! - [`record`]: the sweep as the project keeps it, beside its runs;
//! - [`driver`]: starts trials through a [`driver::TrialRunner`], feeds their evaluations to
//!   the scheduler, stops the losers, and saves every change;
//! - [`importance`]: which parameters mattered (a random forest's permutation importance).

pub mod apply;
pub mod driver;
pub mod importance;
pub mod record;
pub mod runner;
pub mod scheduler;
pub mod search;
pub mod space;

pub use driver::{Sweep, SweepEvent, TrialEvent, TrialRun, TrialRunner};
pub use record::{Direction, SweepRecord, SweepSpec, SweepSummary, Trial, TrialState};
pub use scheduler::{SchedulerKind, SchedulerSpec};
pub use search::SearchKind;
pub use space::{Domain, Param, ParamValue};

use crate::spec::RunSpec;
use std::path::PathBuf;

/// Why a sweep cannot start or go on. Errors about the user's input name the argument.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A `--param NAME=SPEC` that cannot be used.
    #[error("--param {arg}: {message}")]
    Param {
        /// The argument as given.
        arg: String,
        /// What is wrong with it.
        message: String,
    },
    /// Another argument that cannot be used (`--metric`, `--trials`, ...).
    #[error("{arg}: {message}")]
    Arg {
        /// The argument (`--metric`).
        arg: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A file or folder cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A sweep file does not read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The run store failed.
    #[error("{0}")]
    Store(String),
}

/// Every metric a run of `spec` reports at evaluations: the losses and its objective's own.
pub fn metrics_of(spec: &RunSpec) -> Vec<String> {
    let mut names = vec!["val_loss".to_string(), "train_loss".to_string()];
    if let Ok(objective) = spec.objective.objective() {
        names.extend(objective.metrics().iter().map(|k| k.name().to_string()));
        if spec.objective.sts_file.is_some() && objective.uses_embeddings() {
            names.push(crate::eval::retrieval::STS_SPEARMAN.to_string());
            names.push("val_sts_pearson".to_string());
        }
    }
    names
}

/// Checks a sweep before anything trains: the metric is one every trial's objective reports,
/// the trial budget is usable for the search, and each parameter's values (a list's values, a
/// range's ends) fit the base settings. Errors name the argument.
pub fn check(spec: &SweepSpec, base: &RunSpec) -> Result<(), SweepError> {
    if spec.name.trim().is_empty()
        || spec
            .name
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(SweepError::Arg {
            arg: "--name",
            message: format!(
                "`{}`: a sweep name is letters, digits, `-` and `_`",
                spec.name
            ),
        });
    }
    if spec.params.is_empty() {
        return Err(SweepError::Arg {
            arg: "--param",
            message: "a sweep varies at least one setting (--param NAME=SPEC)".into(),
        });
    }
    for (i, p) in spec.params.iter().enumerate() {
        if spec.params[..i].iter().any(|q| q.name == p.name) {
            return Err(SweepError::Param {
                arg: p.to_string(),
                message: format!("`{}` is given twice", p.name),
            });
        }
    }
    if spec.trials == 0 {
        return Err(SweepError::Arg {
            arg: "--trials",
            message: "must be at least 1".into(),
        });
    }
    if spec.search == SearchKind::Grid
        && let Some(p) = spec
            .params
            .iter()
            .find(|p| p.domain.grid_values().is_none())
    {
        return Err(SweepError::Param {
            arg: p.to_string(),
            message:
                "a grid needs a list or an int range (use --search random or tpe for real ranges)"
                    .into(),
        });
    }
    if !(spec.scheduler.reduction.is_finite() && spec.scheduler.reduction > 1.0) {
        return Err(SweepError::Arg {
            arg: "--reduction",
            message: format!("must be above 1, not {}", spec.scheduler.reduction),
        });
    }
    if spec.scheduler.grace_steps >= base.train.steps && spec.scheduler.kind != SchedulerKind::None
    {
        return Err(SweepError::Arg {
            arg: "--grace",
            message: format!(
                "{} steps leaves nothing to stop in a run of {} steps",
                spec.scheduler.grace_steps, base.train.steps
            ),
        });
    }
    // Each value on its own in the base settings.
    for p in &spec.params {
        for value in p.domain.corner_values() {
            let trial = apply::apply_values(base, &[(p.name.clone(), value.clone())]).map_err(
                |message| SweepError::Param {
                    arg: p.to_string(),
                    message,
                },
            )?;
            let errors = trial.validate();
            if let Some(e) = errors.first() {
                return Err(SweepError::Param {
                    arg: p.to_string(),
                    message: format!("with {}={value}: {e}", p.name),
                });
            }
        }
    }
    // The metric, for every objective a trial may train.
    let objectives: Vec<RunSpec> = match spec.params.iter().find(|p| p.name == "objective") {
        Some(p) => p
            .domain
            .corner_values()
            .into_iter()
            .filter_map(|v| apply::apply_values(base, &[("objective".into(), v)]).ok())
            .collect(),
        None => vec![base.clone()],
    };
    for trial in &objectives {
        let known = metrics_of(trial);
        if !known.contains(&spec.metric) {
            return Err(SweepError::Arg {
                arg: "--metric",
                message: format!(
                    "the {} objective does not report `{}`; it reports {}",
                    trial.objective.kind,
                    spec.metric,
                    known.join(", ")
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(params: &[&str]) -> SweepSpec {
        SweepSpec {
            name: "s".into(),
            params: params.iter().map(|p| Param::parse(p).unwrap()).collect(),
            search: SearchKind::Random,
            scheduler: SchedulerSpec::default(),
            metric: "val_loss".into(),
            direction: Direction::Min,
            seed: 1,
            trials: 4,
            max_minutes: 0.0,
        }
    }

    #[test]
    fn a_sweep_that_cannot_train_is_refused_naming_the_argument() {
        let base = RunSpec::default();
        assert!(check(&spec(&["lr=log:1e-4:1e-2", "width=32,64,128"]), &base).is_ok());
        let cases: Vec<(SweepSpec, &str)> = vec![
            (
                SweepSpec {
                    metric: "val_mrr".into(),
                    ..spec(&["lr=log:1e-4:1e-2"])
                },
                "--metric: the next-token objective does not report `val_mrr`",
            ),
            (
                SweepSpec {
                    search: SearchKind::Grid,
                    ..spec(&["lr=log:1e-4:1e-2"])
                },
                "--param lr=log:1e-4:1e-2: a grid needs a list",
            ),
            (
                SweepSpec {
                    trials: 0,
                    ..spec(&["lr=1e-3"])
                },
                "--trials",
            ),
            (
                spec(&["dropout=real:0:1.5"]),
                "--param dropout=real:0:1.5: with dropout=1.5",
            ),
            (spec(&["heads=3,4"]), "--param heads=3,4: with heads=3"),
            (spec(&["lr=1e-3", "lr=1e-2"]), "given twice"),
            (
                SweepSpec {
                    name: "a b".into(),
                    ..spec(&["lr=1e-3"])
                },
                "--name",
            ),
            (spec(&[]), "--param"),
        ];
        for (s, expected) in cases {
            let err = check(&s, &base).expect_err(expected).to_string();
            assert!(err.contains(expected), "expected `{expected}` in: {err}");
        }
        // A metric the masked objective reports, for a sweep that trains it.
        let mut masked = base.clone();
        masked.objective.kind = crate::objective::ObjectiveKind::MASKED;
        let s = SweepSpec {
            metric: "val_masked_acc".into(),
            ..spec(&["mask_rate=real:0.1:0.3"])
        };
        assert!(check(&s, &masked).is_ok());
        assert!(check(&s, &base).is_err());
    }
}
