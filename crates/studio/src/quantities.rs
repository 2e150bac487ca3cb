//! What a run's curves measure, as its objective describes them
//! ([`hearth_engine::objective::Charts`]), so every chart and legend says it and only like is
//! drawn with like. Most objectives train and validate the same loss; some train on a sum
//! whose validation loss is one part (GRIT's `L_emb + lambda * L_gen`), which the objective's
//! description says.

use hearth_engine::objective::{MetricKey, ObjectiveSpec, TrainTerm};
use hearth_engine::spec::RunSpec;
use hearth_engine::viz::curves::{Curves, XAxis};
use hearth_engine::viz::lod::BlockIndex;
use std::borrow::Cow;

pub use hearth_engine::objective::{LossQuantities, Quantity};

/// What the training and validation losses of a run with `objective` measure.
pub fn loss_quantities(objective: &ObjectiveSpec) -> LossQuantities {
    objective.charts().losses
}

/// What the loss of step `step` (of `total`) of a run with `objective` measures, in a few
/// words, for the places that print one step's loss beside its value (the run list, the
/// Monitor's progress line): some objectives train on weighted sums, which are not the
/// quantity of their validation loss.
pub fn step_loss_name(objective: &ObjectiveSpec, step: usize, total: usize) -> String {
    objective.step_loss_name(step, total)
}

/// A run's training curve as the Monitor and Compare draw it, with what it measures.
pub struct TrainCurve<'a> {
    /// What the curve measures (curves of equal keys share a chart).
    pub quantity: Quantity,
    /// The x values on the chosen axis.
    pub xs: &'a [f64],
    /// The value of each step, unsmoothed.
    pub raw: &'a [f64],
    /// The min/max index of `raw`, when the curves keep one.
    pub raw_index: Option<&'a BlockIndex>,
    /// The smoothed values (as last prepared by `Curves::smoothed` / `smooth_terms`).
    pub ys: &'a [f64],
    /// The min/max index of `ys`, when the curves keep one.
    pub index: Option<&'a BlockIndex>,
    /// The step-loss term the curve draws, when the run recorded its terms (empty while no
    /// step has trained that term yet, as during a masked warm-up).
    pub term: Option<TrainTerm>,
}

/// The training curve of a run with `objective`: a run that recorded the terms of its step
/// loss draws the term its objective names (the quantity its validation loss measures); one
/// that recorded no terms draws its step loss, under the name its objective gives a step loss
/// without terms, so a mix is never overlaid with one of its terms alone.
pub fn train_curve<'a>(
    objective: &ObjectiveSpec,
    curves: &'a Curves,
    axis: XAxis,
) -> TrainCurve<'a> {
    let charts = objective.charts();
    let recorded_terms = charts
        .term_keys()
        .any(|k| curves.terms.contains_key(k.name()));
    if recorded_terms && let Some(term) = charts.train_term {
        let values = curves.terms.get(term.key.name());
        return TrainCurve {
            quantity: charts.losses.train,
            xs: values.map_or(&[], |t| t.xs(axis)),
            raw: values.map_or(&[], |t| t.values.as_slice()),
            raw_index: None,
            ys: values.map_or(&[], |t| t.smoothed_values()),
            index: None,
            term: Some(term),
        };
    }
    TrainCurve {
        quantity: charts.untermed_train.unwrap_or(charts.losses.train),
        xs: curves.xs(axis),
        raw: &curves.train,
        raw_index: Some(curves.train_index_ref()),
        ys: curves.smoothed_values(),
        index: Some(curves.smoothed_index()),
        term: None,
    }
}

/// The validation values of the training curve's own quantity, one per evaluation: the
/// validation loss itself, or a sum rebuilt from its recorded parts (`None` when the run did
/// not record them).
pub fn val_like_train<'a>(objective: &ObjectiveSpec, curves: &'a Curves) -> Option<Cow<'a, [f64]>> {
    objective
        .charts()
        .validation_as_train(&curves.val, |key: MetricKey| curves.metric(key.name()))
}

/// What the metrics `extra` of the evaluation at `step` of a run of `spec` say of its health,
/// as the run's objective judges it ([`hearth_engine::objective::Objective::health_warning`]):
/// the sentence with what to try, or `None`.
pub fn collapse_in(spec: &RunSpec, step: usize, extra: &[(String, f64)]) -> Option<String> {
    let objective = spec.objective.kind.objective()?;
    objective.health_warning(&spec.objective, step, spec.train.steps, &|key| {
        extra
            .iter()
            .find(|(name, _)| name == key.name())
            .map(|(_, v)| *v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_engine::objective::ObjectiveKind;

    #[test]
    fn collapse_is_read_from_an_evaluations_metrics() {
        let eval = |u: f64, r: f64| {
            vec![
                ("val_recall_at_1".to_string(), 0.01),
                (MetricKey::VAL_UNIFORMITY.name().to_string(), u),
                (MetricKey::VAL_EFF_RANK.name().to_string(), r),
            ]
        };
        let mut run = RunSpec::default();
        run.train.steps = 100;
        assert!(
            collapse_in(&run, 50, &eval(-0.02, 1.1)).is_none(),
            "an objective that does not embed judges no embeddings"
        );
        run.objective.kind = ObjectiveKind::all()
            .into_iter()
            .find(|k| k.objective().is_some_and(|o| o.uses_embeddings()))
            .expect("an objective embeds");
        let text = collapse_in(&run, 50, &eval(-0.02, 1.1)).expect("collapsed");
        assert!(text.contains("collapsed"), "{text}");
        assert!(
            collapse_in(&run, 50, &eval(-2.8, 1.2)).is_some(),
            "one direction left"
        );
        assert!(collapse_in(&run, 50, &eval(-2.8, 20.0)).is_none());
        assert!(collapse_in(&run, 50, &[]).is_none(), "not measured");
        assert!(
            collapse_in(&run, 0, &eval(-0.02, 1.1)).is_none(),
            "nothing trained before the first evaluation"
        );
        // A masked warm-up trains no embeddings: not judged until the embedding loss has
        // trained a step.
        run.objective = ObjectiveKind::all()
            .into_iter()
            .map(|kind| ObjectiveSpec {
                kind,
                masked_warmup: 0.4,
                ..ObjectiveSpec::default()
            })
            .find(|o| o.masked_warmup_steps(100) > 0)
            .expect("an objective warms up with masked tokens");
        assert!(
            collapse_in(&run, 40, &eval(-0.02, 1.1)).is_none(),
            "warm-up"
        );
        assert!(collapse_in(&run, 41, &eval(-0.02, 1.1)).is_some());
    }
}
