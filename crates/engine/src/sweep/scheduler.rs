//! Early stopping: after each evaluation of a trial, a scheduler decides from every trial's
//! curve whether it trains on. Decisions are pure functions of the curves, so a sweep read back
//! after a restart judges exactly as before.

use serde::{Deserialize, Serialize};

/// Which early-stopping rule a sweep uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// Every trial trains to its last step.
    #[default]
    None,
    /// Asynchronous successive halving (Li et al. 2020, "A System for Massively Parallel
    /// Hyperparameter Tuning", MLSys): rungs at `grace x reduction^k` steps; a trial that
    /// reaches a rung and is not in the best `1 / reduction` of the trials recorded there
    /// stops. The stopping form, as Ray Tune's `ASHAScheduler`.
    Asha,
    /// The median stopping rule (Golovin et al. 2017, "Google Vizier"; Optuna's
    /// `MedianPruner`): a trial whose best value so far is worse than the median of the
    /// completed trials' values at the same step stops.
    Median,
}

impl SchedulerKind {
    /// The name on the command line and in the sweep file.
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::None => "none",
            SchedulerKind::Asha => "asha",
            SchedulerKind::Median => "median",
        }
    }
}

/// A scheduler and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerSpec {
    /// The rule.
    pub kind: SchedulerKind,
    /// No trial stops before this step (ASHA's first rung); 0 means the first evaluation.
    pub grace_steps: usize,
    /// ASHA: rungs are `reduction` times apart and keep the best `1 / reduction`.
    pub reduction: f64,
    /// Median: completed trials needed before any trial is stopped.
    pub startup_trials: usize,
}

impl Default for SchedulerSpec {
    fn default() -> Self {
        Self {
            kind: SchedulerKind::None,
            grace_steps: 0,
            // Hyperband's eta (Li et al. 2018).
            reduction: 3.0,
            startup_trials: 2,
        }
    }
}

/// One trial as a scheduler sees it.
#[derive(Debug, Clone, Copy)]
pub struct CurveView<'a> {
    /// The trial's number.
    pub index: usize,
    /// Its evaluations: (step, value oriented so that lower is better), by step.
    pub curve: &'a [(usize, f64)],
    /// True when it trained to its last step.
    pub completed: bool,
}

/// What a scheduler decided after an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The trial judged.
    pub trial: usize,
    /// The step of its evaluation.
    pub step: usize,
    /// Its value there (lower is better).
    pub value: f64,
    /// The rung step it was judged at (ASHA) or the step compared (median).
    pub rung: usize,
    /// The value it had to beat.
    pub cutoff: f64,
    /// Trials compared with.
    pub compared: usize,
    /// True when the trial stops here.
    pub stop: bool,
}

impl SchedulerSpec {
    /// The first step a trial may stop at, for a run evaluating every `eval_interval` steps.
    pub fn grace(&self, eval_interval: usize) -> usize {
        if self.grace_steps == 0 {
            eval_interval.max(1)
        } else {
            self.grace_steps
        }
    }

    /// ASHA's rung steps below `total_steps` (a rung at the last step would stop nothing).
    pub fn rungs(&self, eval_interval: usize, total_steps: usize) -> Vec<usize> {
        let grace = self.grace(eval_interval) as f64;
        let reduction = self.reduction.max(1.0 + 1e-9);
        (0..)
            .map(|k| (grace * reduction.powi(k)).round() as usize)
            .take_while(|&r| r < total_steps)
            .collect()
    }

    /// Judges `trial` after its evaluation at `step` (its curve in `trials` already holds
    /// it). `None` when this scheduler has nothing to decide there.
    pub fn judge(
        &self,
        trial: usize,
        step: usize,
        eval_interval: usize,
        total_steps: usize,
        trials: &[CurveView<'_>],
    ) -> Option<Decision> {
        let own = trials.iter().find(|t| t.index == trial)?;
        let at = own.curve.iter().position(|(s, _)| *s == step)?;
        let value = own.curve[at].1;
        if step >= total_steps || step < self.grace(eval_interval) {
            return None;
        }
        match self.kind {
            SchedulerKind::None => None,
            SchedulerKind::Asha => {
                let previous = if at == 0 { 0 } else { own.curve[at - 1].0 };
                // The highest rung passed since the previous evaluation (Ray Tune's order).
                let rung = self
                    .rungs(eval_interval, total_steps)
                    .into_iter()
                    .rev()
                    .find(|&r| previous < r && r <= step)?;
                // Each other trial's value at its first evaluation at or past the rung.
                let recorded: Vec<f64> = trials
                    .iter()
                    .filter(|t| t.index != trial)
                    .filter_map(|t| t.curve.iter().find(|(s, _)| *s >= rung).map(|(_, v)| *v))
                    .filter(|v| v.is_finite())
                    .collect();
                if recorded.is_empty() {
                    return Some(Decision {
                        trial,
                        step,
                        value,
                        rung,
                        cutoff: f64::NAN,
                        compared: 0,
                        stop: false,
                    });
                }
                let cutoff = percentile(&recorded, 1.0 / self.reduction.max(1.0));
                Some(Decision {
                    trial,
                    step,
                    value,
                    rung,
                    cutoff,
                    compared: recorded.len(),
                    stop: !within(value, cutoff),
                })
            }
            SchedulerKind::Median => {
                let completed: Vec<f64> = trials
                    .iter()
                    .filter(|t| t.index != trial && t.completed)
                    .filter_map(|t| {
                        t.curve
                            .iter()
                            .rev()
                            .find(|(s, _)| *s <= step)
                            .map(|(_, v)| *v)
                    })
                    .filter(|v| v.is_finite())
                    .collect();
                if completed.len() < self.startup_trials.max(1) {
                    return None;
                }
                let cutoff = percentile(&completed, 0.5);
                let best = own.curve[..=at]
                    .iter()
                    .map(|(_, v)| *v)
                    .fold(f64::INFINITY, f64::min);
                Some(Decision {
                    trial,
                    step,
                    value: best,
                    rung: step,
                    cutoff,
                    compared: completed.len(),
                    stop: !within(best, cutoff),
                })
            }
        }
    }
}

/// True when `value` is at or below `cutoff` (a NaN value never is).
fn within(value: f64, cutoff: f64) -> bool {
    matches!(
        value.partial_cmp(&cutoff),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

/// The `q` quantile (0..=1) with linear interpolation between order statistics (NumPy's
/// default).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss curves `start - rate * ln(1 + step / 50)` evaluated every 50 of 300 steps.
    fn curve(start: f64, rate: f64) -> Vec<(usize, f64)> {
        (1..=6)
            .map(|k| {
                let step = 50 * k;
                (step, start - rate * (1.0 + step as f64 / 50.0).ln())
            })
            .collect()
    }

    /// Plays trials one after another through `spec`, as a sweep running one trial at a time
    /// does: returns the step each trial stopped at (300 = trained to the end).
    fn play(spec: &SchedulerSpec, curves: &[Vec<(usize, f64)>]) -> Vec<usize> {
        let mut seen: Vec<(Vec<(usize, f64)>, bool)> = Vec::new();
        let mut stopped_at = Vec::new();
        for (index, full) in curves.iter().enumerate() {
            seen.push((Vec::new(), false));
            let mut end = 300;
            for point in full {
                seen[index].0.push(*point);
                let views: Vec<CurveView<'_>> = seen
                    .iter()
                    .enumerate()
                    .map(|(i, (c, done))| CurveView {
                        index: i,
                        curve: c,
                        completed: *done,
                    })
                    .collect();
                if let Some(d) = spec.judge(index, point.0, 50, 300, &views)
                    && d.stop
                {
                    end = point.0;
                    break;
                }
            }
            seen[index].1 = end == 300;
            stopped_at.push(end);
        }
        stopped_at
    }

    #[test]
    fn asha_rungs_grow_by_the_reduction_factor_below_the_last_step() {
        let spec = SchedulerSpec {
            kind: SchedulerKind::Asha,
            ..SchedulerSpec::default()
        };
        assert_eq!(spec.rungs(50, 300), [50, 150]);
        let spec = SchedulerSpec {
            grace_steps: 10,
            reduction: 2.0,
            ..spec
        };
        assert_eq!(spec.rungs(50, 100), [10, 20, 40, 80]);
    }

    #[test]
    fn asha_stops_the_trials_outside_the_best_third_at_each_rung() {
        let spec = SchedulerSpec {
            kind: SchedulerKind::Asha,
            ..SchedulerSpec::default()
        };
        // 0: a good first trial; 1: clearly worse from the start; 2: better than 0;
        // 3: starts among the best but stalls, so falls behind by the second rung;
        // 4: best of all.
        let curves = [
            curve(3.0, 0.5),
            curve(3.6, 0.3),
            curve(2.9, 0.6),
            curve(2.6, 0.05),
            curve(2.5, 0.7),
        ];
        let stops = play(&spec, &curves);
        assert_eq!(
            stops[0], 300,
            "alone at every rung, the first trial trains on"
        );
        assert_eq!(
            stops[1], 50,
            "worse than the only trial recorded at rung 50"
        );
        assert_eq!(stops[2], 300, "better than every trial before it");
        assert_eq!(
            stops[3], 150,
            "in the best third at rung 50 ({:?}) but not at rung 150",
            curves[3][0]
        );
        assert_eq!(stops[4], 300);
        // The best trial is never stopped, and the stopped ones stop at rungs.
        for s in &stops {
            assert!([50, 150, 300].contains(s), "{stops:?}");
        }
    }

    #[test]
    fn median_stops_a_trial_worse_than_the_completed_ones_median_once_enough_have_completed() {
        let spec = SchedulerSpec {
            kind: SchedulerKind::Median,
            ..SchedulerSpec::default()
        };
        let curves = [
            curve(3.0, 0.5),
            curve(3.2, 0.5),  // worse than 0, but only one trial has completed
            curve(3.08, 0.5), // a little better than the median of 0 and 1
            curve(3.15, 0.5),
            curve(2.0, 0.5),
            curve(2.6, 0.0), // flat: fine at step 50, worse from step 100 on
        ];
        let stops = play(&spec, &curves);
        assert_eq!(&stops[..3], [300, 300, 300]);
        assert_eq!(
            stops[3], 50,
            "worse than the median of three completed trials (trial 2)"
        );
        assert_eq!(stops[4], 300);
        assert_eq!(stops[5], 100, "{:?}", curves[5]);
    }

    #[test]
    fn no_scheduler_stops_nothing() {
        let stops = play(
            &SchedulerSpec::default(),
            &[curve(3.0, 0.5), curve(9.0, 0.0), curve(9.0, 0.0)],
        );
        assert_eq!(stops, [300, 300, 300]);
    }

    #[test]
    fn percentiles_interpolate_as_numpy_does() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 1.0 / 3.0) - 2.0).abs() < 1e-12);
        assert_eq!(percentile(&[5.0], 0.25), 5.0);
    }
}
