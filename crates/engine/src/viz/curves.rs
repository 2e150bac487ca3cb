//! A run's curves as plot-ready columns, appended as metrics arrive (never rebuilt per frame),
//! with the smoothed training curve cached per setting and extended incrementally.

use super::lod::BlockIndex;
use super::smoothing::{EmaState, SmoothingKind, tau_for_weight};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the x axis of loss plots measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum XAxis {
    /// Optimizer steps.
    #[default]
    Step,
    /// Training tokens seen.
    Tokens,
    /// Seconds of training, pauses excluded.
    WallTime,
    /// Passes over the training data: tokens seen / the dataset's training tokens.
    Epochs,
}

impl XAxis {
    /// Every axis, in menu order.
    pub const ALL: [XAxis; 4] = [XAxis::Step, XAxis::Tokens, XAxis::Epochs, XAxis::WallTime];

    /// The axis title.
    pub fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Tokens => "tokens",
            XAxis::WallTime => "seconds",
            XAxis::Epochs => "epochs",
        }
    }
}

/// The smoothing a plot asks for; part of the cache key of smoothed curves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothSettings {
    /// Which moving average.
    pub kind: SmoothingKind,
    /// EMA weight in [0, 1) (0 = raw); for the time-weighted EMA it sets the time constant
    /// `tau = -1 / ln(weight)` steps.
    pub weight: f64,
    /// Smooth `ln(loss)` instead of the loss, so spikes weigh less.
    pub log_space: bool,
}

/// One optimizer step as the curves need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepPoint {
    /// Steps completed, counting from 1.
    pub step: usize,
    /// Training tokens seen up to this step.
    pub tokens_seen: u64,
    /// Seconds of training up to this step.
    pub elapsed_s: f64,
    /// The step's training loss.
    pub loss: f64,
}

/// One evaluation as the curves need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalPoint<'a> {
    /// The step the evaluation ran after.
    pub step: usize,
    /// Training tokens seen up to that step.
    pub tokens_seen: f64,
    /// Seconds of training up to that step.
    pub elapsed_s: f64,
    /// Loss on held-out batches.
    pub val_loss: f64,
    /// Loss estimated on training batches at the same time.
    pub train_loss: f64,
    /// The objective's own metrics by name.
    pub metrics: &'a [(String, f64)],
}

/// A run's curves as columns.
#[derive(Debug, Default, Clone)]
pub struct Curves {
    /// Step of every training point.
    pub step: Vec<f64>,
    /// Tokens seen at every training point.
    pub tokens: Vec<f64>,
    /// Seconds of training at every training point.
    pub secs: Vec<f64>,
    /// Training loss of every step.
    pub train: Vec<f64>,
    /// Epochs at every training point (empty while the epoch size is unknown).
    pub epochs: Vec<f64>,
    /// Step of every evaluation.
    pub val_step: Vec<f64>,
    /// Tokens seen at every evaluation.
    pub val_tokens: Vec<f64>,
    /// Seconds of training at every evaluation.
    pub val_secs: Vec<f64>,
    /// Epochs at every evaluation (empty while the epoch size is unknown).
    pub val_epochs: Vec<f64>,
    /// Validation loss of every evaluation.
    pub val: Vec<f64>,
    /// Training loss estimated at each evaluation.
    pub eval_train: Vec<f64>,
    /// Objective metrics by name, one value per evaluation (aligned with `val_step`).
    pub metrics: BTreeMap<String, Vec<f64>>,
    /// The terms of the steps whose loss sums several, by name (each covers only the steps
    /// that had it: a contrastive run's InfoNCE starts when its masked warm-up ends).
    pub terms: BTreeMap<String, TermCurve>,
    /// Training tokens in one epoch of the run's data, when known.
    epoch_tokens: Option<f64>,
    smooth: SmoothCache,
    train_index: BlockIndex,
}

/// One term of the training loss at the steps that had it.
#[derive(Debug, Default, Clone)]
pub struct TermCurve {
    /// Step of every point.
    pub step: Vec<f64>,
    /// Tokens seen at every point.
    pub tokens: Vec<f64>,
    /// Seconds of training at every point.
    pub secs: Vec<f64>,
    /// Epochs at every point (empty while the epoch size is unknown).
    pub epochs: Vec<f64>,
    /// The term's value at every point.
    pub values: Vec<f64>,
    smooth: SmoothCache,
}

impl TermCurve {
    /// The values smoothed as `settings` says (as [`Curves::smoothed`] smooths the training
    /// curve); computed once per setting and extended as steps arrive.
    pub fn smoothed(&mut self, settings: SmoothSettings) -> &[f64] {
        self.smooth.update(settings, &self.step, &self.values)
    }

    /// The last smoothed values computed by [`TermCurve::smoothed`] (empty before the first).
    pub fn smoothed_values(&self) -> &[f64] {
        &self.smooth.values
    }

    /// The x values on `axis`.
    pub fn xs(&self, axis: XAxis) -> &[f64] {
        match axis {
            XAxis::Step => &self.step,
            XAxis::Tokens => &self.tokens,
            XAxis::WallTime => &self.secs,
            XAxis::Epochs => &self.epochs,
        }
    }
}

/// Appends `ys` (at steps `xs`) smoothed as `settings` says to `out`, continuing `state`.
fn smooth_into(
    state: &mut EmaState,
    xs: &[f64],
    ys: &[f64],
    settings: SmoothSettings,
    out: &mut Vec<f64>,
) {
    let from = out.len();
    let ys: Vec<f64> = if settings.log_space {
        ys.iter().map(|y| y.max(1e-12).ln()).collect()
    } else {
        ys.to_vec()
    };
    match settings.kind {
        SmoothingKind::DebiasedEma => state.extend_debiased(&ys, settings.weight, out),
        SmoothingKind::TimeWeightedEma => {
            state.extend_time_weighted(xs, &ys, tau_for_weight(settings.weight), out)
        }
    }
    if settings.log_space {
        out[from..].iter_mut().for_each(|v| *v = v.exp());
    }
}

/// A smoothed curve for one setting, extended incrementally while a run trains.
#[derive(Debug, Default, Clone)]
struct SmoothCache {
    key: Option<(u8, u64, bool)>,
    state: EmaState,
    values: Vec<f64>,
    index: BlockIndex,
}

impl SmoothCache {
    /// `ys` (at steps `xs`) smoothed as `settings` says: starts afresh when the setting changed
    /// or the curve shrank, else smooths only the points added since the last call.
    fn update(&mut self, settings: SmoothSettings, xs: &[f64], ys: &[f64]) -> &[f64] {
        let kind = match settings.kind {
            SmoothingKind::DebiasedEma => 0,
            SmoothingKind::TimeWeightedEma => 1,
        };
        let key = (kind, settings.weight.to_bits(), settings.log_space);
        if self.key != Some(key) || self.values.len() > ys.len() {
            *self = SmoothCache {
                key: Some(key),
                ..SmoothCache::default()
            };
        }
        let from = self.values.len();
        if from < ys.len() {
            let mut out = Vec::with_capacity(ys.len() - from);
            smooth_into(
                &mut self.state,
                &xs[from..],
                &ys[from..],
                settings,
                &mut out,
            );
            self.values.extend(out);
            self.index.extend(&self.values);
        }
        &self.values
    }
}

impl Curves {
    /// Appends one training step.
    pub fn push_step(&mut self, point: StepPoint) {
        self.step.push(point.step as f64);
        self.tokens.push(point.tokens_seen as f64);
        self.secs.push(point.elapsed_s);
        self.train.push(point.loss);
        if let Some(per_epoch) = self.epoch_tokens {
            self.epochs.push(point.tokens_seen as f64 / per_epoch);
        }
    }

    /// Training tokens in one epoch of the run's data, when known.
    pub fn epoch_tokens(&self) -> Option<f64> {
        self.epoch_tokens
    }

    /// Sets the epoch size (training tokens of the run's data; `None`: unknown) and derives
    /// the epochs columns from the tokens columns.
    pub fn set_epoch_tokens(&mut self, tokens: Option<usize>) {
        let per_epoch = tokens.filter(|&t| t > 0).map(|t| t as f64);
        self.epoch_tokens = per_epoch;
        let scaled = |xs: &[f64]| match per_epoch {
            Some(e) => xs.iter().map(|t| t / e).collect(),
            None => Vec::new(),
        };
        self.epochs = scaled(&self.tokens);
        self.val_epochs = scaled(&self.val_tokens);
        for term in self.terms.values_mut() {
            term.epochs = scaled(&term.tokens);
        }
    }

    /// Appends the terms of step `step`'s loss, after [`Curves::push_step`] of that step
    /// (a term of a step never pushed is dropped).
    pub fn push_terms(&mut self, step: usize, terms: &[(String, f64)]) {
        let at = step as f64;
        // Steps arrive in order: the newest is the usual match.
        let i = match self.step.last() {
            Some(&last) if last == at => self.step.len() - 1,
            _ => match self.step.binary_search_by(|s| s.total_cmp(&at)) {
                Ok(i) => i,
                Err(_) => return,
            },
        };
        for (name, value) in terms {
            let curve = self.terms.entry(name.clone()).or_default();
            curve.step.push(at);
            curve.tokens.push(self.tokens[i]);
            curve.secs.push(self.secs[i]);
            if let Some(&e) = self.epochs.get(i) {
                curve.epochs.push(e);
            }
            curve.values.push(*value);
        }
    }

    /// Appends one evaluation.
    pub fn push_eval(&mut self, point: EvalPoint<'_>) {
        self.val_step.push(point.step as f64);
        self.val_tokens.push(point.tokens_seen);
        self.val_secs.push(point.elapsed_s);
        if let Some(per_epoch) = self.epoch_tokens {
            self.val_epochs.push(point.tokens_seen / per_epoch);
        }
        self.val.push(point.val_loss);
        self.eval_train.push(point.train_loss);
        let n = self.val.len();
        for (key, value) in point.metrics {
            let column = self.metrics.entry(key.clone()).or_default();
            // A metric missing at earlier evaluations is NaN there (not drawn).
            column.resize(n - 1, f64::NAN);
            column.push(*value);
        }
    }

    /// The x values of the training points on `axis`.
    pub fn xs(&self, axis: XAxis) -> &[f64] {
        match axis {
            XAxis::Step => &self.step,
            XAxis::Tokens => &self.tokens,
            XAxis::WallTime => &self.secs,
            XAxis::Epochs => &self.epochs,
        }
    }

    /// The x values of the evaluations on `axis`.
    pub fn val_xs(&self, axis: XAxis) -> &[f64] {
        match axis {
            XAxis::Step => &self.val_step,
            XAxis::Tokens => &self.val_tokens,
            XAxis::WallTime => &self.val_secs,
            XAxis::Epochs => &self.val_epochs,
        }
    }

    /// A metric's column, one value per evaluation, padded with NaN to the evaluations so far
    /// (a metric can stop being reported).
    pub fn metric(&self, name: &str) -> Option<&[f64]> {
        self.metrics.get(name).map(Vec::as_slice)
    }

    /// The last smoothed curve computed by [`Curves::smoothed`].
    pub fn smoothed_values(&self) -> &[f64] {
        &self.smooth.values
    }

    /// The training curve smoothed at full resolution (before any down-sampling); computed
    /// once per setting and extended as steps arrive.
    pub fn smoothed(&mut self, settings: SmoothSettings) -> &[f64] {
        self.smooth.update(settings, &self.step, &self.train)
    }

    /// Brings the smoothed curve of every step term up to date (read back with
    /// [`TermCurve::smoothed_values`]).
    pub fn smooth_terms(&mut self, settings: SmoothSettings) {
        for curve in self.terms.values_mut() {
            curve.smoothed(settings);
        }
    }

    /// The min/max block index of the smoothed curve (as of the last [`Curves::smoothed`]).
    pub fn smoothed_index(&self) -> &BlockIndex {
        &self.smooth.index
    }

    /// The min/max block index of the raw training curve, brought up to date.
    pub fn train_index(&mut self) -> &BlockIndex {
        self.train_index.extend(&self.train);
        &self.train_index
    }

    /// The raw training curve's index as last refreshed by [`Curves::train_index`].
    pub fn train_index_ref(&self) -> &BlockIndex {
        &self.train_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::smoothing::debiased_ema;

    fn step(s: usize, loss: f64) -> StepPoint {
        StepPoint {
            step: s,
            tokens_seen: s as u64,
            elapsed_s: s as f64,
            loss,
        }
    }

    #[test]
    fn step_terms_sit_at_their_steps_and_cover_only_the_steps_that_had_them() {
        let mut curves = Curves::default();
        let term = |k: &str, v: f64| (k.to_string(), v);
        for s in 1..=4 {
            curves.push_step(step(s, 3.0));
            let mut terms = vec![term("masked", s as f64)];
            if s > 2 {
                terms.insert(0, term("infonce", 10.0 * s as f64));
            }
            curves.push_terms(s, &terms);
        }
        // A term of a step the curves never had is dropped.
        curves.push_terms(9, &[term("masked", 1.0)]);
        let masked = &curves.terms["masked"];
        assert_eq!(masked.step, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(masked.values, [1.0, 2.0, 3.0, 4.0]);
        let infonce = &curves.terms["infonce"];
        assert_eq!(infonce.xs(XAxis::Step), [3.0, 4.0]);
        assert_eq!(infonce.xs(XAxis::Tokens), [3.0, 4.0]);
        assert_eq!(infonce.values, [30.0, 40.0]);
        let smooth = SmoothSettings {
            kind: SmoothingKind::DebiasedEma,
            weight: 0.5,
            log_space: false,
        };
        curves.smooth_terms(smooth);
        let smoothed = curves.terms["masked"].smoothed_values().to_vec();
        assert_eq!(smoothed.len(), 4);
        assert_eq!(smoothed[0], 1.0, "a debiased EMA starts at the first value");
        assert!(smoothed[3] < 4.0 && smoothed[3] > 3.0, "{smoothed:?}");
        // Steps arriving later extend the smoothed term as smoothing it afresh would.
        curves.push_step(step(5, 3.0));
        curves.push_terms(5, &[term("masked", 5.0)]);
        curves.smooth_terms(smooth);
        let mut fresh = curves.terms["masked"].clone();
        fresh.smooth = SmoothCache::default();
        assert_eq!(
            curves.terms["masked"].smoothed_values(),
            fresh.smoothed(smooth)
        );
        assert_eq!(curves.terms["masked"].smoothed_values().len(), 5);
    }

    #[test]
    fn smoothed_curves_extend_as_steps_arrive() {
        let mut curves = Curves::default();
        let settings = SmoothSettings {
            kind: SmoothingKind::DebiasedEma,
            weight: 0.6,
            log_space: false,
        };
        curves.push_step(step(1, 4.0));
        curves.push_step(step(2, 3.0));
        curves.smoothed(settings);
        curves.push_step(step(3, 3.5));
        let incremental = curves.smoothed(settings).to_vec();
        let full = debiased_ema(&[4.0, 3.0, 3.5], 0.6);
        assert_eq!(
            incremental, full,
            "extending the cache gives the full computation"
        );
        let log_space = curves
            .smoothed(SmoothSettings {
                log_space: true,
                ..settings
            })
            .to_vec();
        let expected: Vec<f64> = debiased_ema(&[4f64.ln(), 3f64.ln(), 3.5f64.ln()], 0.6)
            .into_iter()
            .map(f64::exp)
            .collect();
        for (a, b) in log_space.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "log-space smoothing: {a} vs {b}");
        }
    }

    fn eval(step: usize, metrics: &[(String, f64)]) -> EvalPoint<'_> {
        EvalPoint {
            step,
            tokens_seen: step as f64 * 10.0,
            elapsed_s: step as f64,
            val_loss: 2.0,
            train_loss: 2.5,
            metrics,
        }
    }

    #[test]
    fn a_metric_missing_at_first_is_nan_there() {
        let mut curves = Curves::default();
        curves.push_eval(eval(10, &[]));
        curves.push_eval(eval(20, &[("acc".to_string(), 0.5)]));
        let acc = curves.metric("acc").expect("the metric has a column");
        assert_eq!(acc.len(), 2, "one value per evaluation");
        assert!(acc[0].is_nan(), "not reported at the first evaluation");
        assert_eq!(acc[1], 0.5);
        assert_eq!(curves.val_xs(XAxis::Tokens), &[100.0, 200.0]);
    }

    #[test]
    fn epochs_are_tokens_seen_over_the_epoch_size_before_and_after_it_is_known() {
        let mut curves = Curves::default();
        curves.push_step(step(100, 3.0));
        curves.push_eval(eval(10, &[]));
        curves.push_terms(100, &[("mlm".to_string(), 1.0)]);
        assert!(curves.xs(XAxis::Epochs).is_empty(), "unknown: no epochs");
        curves.set_epoch_tokens(Some(40));
        assert_eq!(curves.epoch_tokens(), Some(40.0));
        assert_eq!(curves.xs(XAxis::Epochs), &[2.5]);
        assert_eq!(curves.val_xs(XAxis::Epochs), &[2.5]);
        assert_eq!(curves.terms["mlm"].xs(XAxis::Epochs), &[2.5]);
        curves.push_step(step(200, 2.0));
        curves.push_terms(200, &[("mlm".to_string(), 0.5)]);
        curves.push_eval(eval(20, &[]));
        assert_eq!(curves.xs(XAxis::Epochs), &[2.5, 5.0]);
        assert_eq!(curves.val_xs(XAxis::Epochs), &[2.5, 5.0]);
        assert_eq!(curves.terms["mlm"].xs(XAxis::Epochs), &[2.5, 5.0]);
        curves.set_epoch_tokens(None);
        assert!(curves.xs(XAxis::Epochs).is_empty());
        assert_eq!(XAxis::Epochs.label(), "epochs");
    }
}
