//! One optimizer update with the checks every training loop makes: the loss and the gradient
//! norm must be numbers. The run worker and the improve stages both step through here.

use super::optim::{AdamW, GradBuffer};
use super::worker::RunFailure;
use crate::dynamics::MatrixRecord;
use crate::model::Model;

/// Applies `grads` (whose batch had mean loss `loss`) to `model` at learning rate `lr` as step
/// `step` (counted from 1); returns the updated model and the gradient norm before clipping.
/// A loss or gradient norm that is not finite fails the step instead: the run has diverged.
pub fn apply(
    optim: &mut AdamW,
    model: Model,
    grads: &GradBuffer,
    lr: f64,
    loss: f32,
    step: usize,
) -> Result<(Model, f32), RunFailure> {
    apply_measured(optim, model, grads, lr, loss, step, false).map(|(m, g, _)| (m, g))
}

/// [`apply`] that, with `measure`, also returns every weight matrix's gradient, update and
/// weight norms ([`AdamW::step_measured`]).
pub fn apply_measured(
    optim: &mut AdamW,
    model: Model,
    grads: &GradBuffer,
    lr: f64,
    loss: f32,
    step: usize,
    measure: bool,
) -> Result<(Model, f32, Vec<MatrixRecord>), RunFailure> {
    if !loss.is_finite() {
        return Err(RunFailure::LossDiverged { loss, step, lr });
    }
    let (model, grad_norm, matrices) = optim.step_inner(model, grads, lr, measure);
    if !grad_norm.is_finite() {
        return Err(RunFailure::GradientDiverged { grad_norm, step });
    }
    Ok((model, grad_norm, matrices))
}
