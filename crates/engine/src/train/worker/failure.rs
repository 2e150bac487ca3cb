//! Why a run ended early, as the run's history and the `Failed` event say it.

use crate::data::DataError;
use crate::data::pairs::PairsError;
use crate::objective::ObjectiveError;
use std::any::Any;
use std::path::PathBuf;

/// Why a run stopped before its last step (other than being stopped by the user).
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// The run's data could not be loaded or does not fit the model.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The labelled pairs file could not be read.
    #[error(transparent)]
    Pairs(#[from] PairsError),
    /// The labelled pairs file holds too few pairs to contrast.
    #[error("{}: needs at least 2 pairs", .0.display())]
    TooFewPairs(PathBuf),
    /// The objective cannot train on the loaded data.
    #[error(transparent)]
    Objective(#[from] ObjectiveError),
    /// The backend or its devices are not available.
    #[error("{0}")]
    Backend(String),
    /// The base run of a fine-tune cannot be started from.
    #[error("{}: {message}", path.display())]
    Base {
        /// The base run's folder.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A checkpoint could not be read into the model.
    #[error("cannot {action} {}: {message}", path.display())]
    Checkpoint {
        /// `load` (a fine-tune's base) or `resume from`.
        action: &'static str,
        /// The checkpoint file.
        path: PathBuf,
        /// The recorder's error.
        message: String,
    },
    /// The training loss stopped being a number.
    #[error(
        "training loss became {loss} at step {step}: the run diverged (try a lower learning rate, currently {lr:.2e})"
    )]
    LossDiverged {
        /// The loss value (infinite or NaN).
        loss: f32,
        /// The step that produced it (counted from 1).
        step: usize,
        /// The learning rate of that step.
        lr: f64,
    },
    /// The gradient norm stopped being a number.
    #[error("gradient norm became {grad_norm} at step {step}: the run diverged")]
    GradientDiverged {
        /// The norm (infinite or NaN).
        grad_norm: f32,
        /// The step that produced it (counted from 1).
        step: usize,
    },
    /// The processes of a multi-process run hold different weights.
    #[error(
        "rank {rank} of {ranks}: the ranks' weights differ at step {step} (checksums {low} to {high}); the run stops rather than train diverged copies"
    )]
    RanksDiffer {
        /// This process's rank.
        rank: usize,
        /// Processes in the run.
        ranks: usize,
        /// The step of the comparison.
        step: usize,
        /// The smallest checksum of any rank.
        low: f64,
        /// The largest checksum of any rank.
        high: f64,
    },
    /// The training code panicked (caught, so only this run fails).
    #[error("the training thread panicked: {0}")]
    Panicked(String),
}

/// The message a caught panic carries (`"unknown panic"` when it carries no text).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string())
}
