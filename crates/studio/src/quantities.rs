//! What a run's loss curves measure, so every chart and legend says it and only like is drawn
//! with like. Most objectives train and validate the same loss; GRIT trains on the total
//! `L_emb + lambda * L_gen` and reports its generation loss as the validation loss, which is
//! what makes it comparable with next-token runs.

use hearth_engine::objective::{MetricKey, ObjectiveKind, ObjectiveSpec};
use hearth_engine::spec::RunSpec;
use hearth_engine::viz::curves::{Curves, XAxis};
use hearth_engine::viz::lod::BlockIndex;
use std::borrow::Cow;

/// A measured quantity: curves with the same `key` may share a chart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity {
    /// Equal for curves that measure the same thing.
    pub key: String,
    /// What a chart title or axis calls it ("next-token loss").
    pub label: String,
}

impl Quantity {
    fn same(label: &str) -> Self {
        Self {
            key: label.to_string(),
            label: label.to_string(),
        }
    }
}

/// The quantities of a run's two loss curves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossQuantities {
    /// The loss of every training step.
    pub train: Quantity,
    /// The validation loss of every evaluation.
    pub val: Quantity,
}

/// What the training and validation losses of a run with `objective` measure.
pub fn loss_quantities(objective: &ObjectiveSpec) -> LossQuantities {
    let both = |label: &str| LossQuantities {
        train: Quantity::same(label),
        val: Quantity::same(label),
    };
    match objective.kind.name() {
        "next-token" => both("next-token loss"),
        "masked" => both("masked-token loss"),
        "contrastive" => both("contrastive loss"),
        "linkbert" => both("LinkBERT loss (masked tokens + relation)"),
        "grit" => {
            let lambda = objective.gen_weight;
            LossQuantities {
                train: Quantity {
                    // Totals with different weights are different quantities.
                    key: format!("grit-total-{}", lambda.to_bits()),
                    label: format!("GRIT total loss (L_emb + {lambda}·L_gen)"),
                },
                val: Quantity::same("next-token loss"),
            }
        }
        other => both(&format!("{other} loss")),
    }
}

/// What the loss of step `step` (of `total`) of a run with `objective` measures, in a few
/// words, for the places that print one step's loss beside its value (the run list, the
/// Monitor's progress line): GRIT and a contrastive run that keeps a masked-token loss train on
/// weighted sums, which are not the quantity of their validation loss.
pub fn step_loss_name(objective: &ObjectiveSpec, step: usize, total: usize) -> String {
    let contrastive = objective.kind == ObjectiveKind::CONTRASTIVE;
    if objective.kind == ObjectiveKind::GRIT {
        format!("total loss (L_emb + {}·L_gen)", objective.gen_weight)
    } else if objective.in_masked_warmup(step, total) {
        "masked-token loss (warm-up)".to_string()
    } else if contrastive && objective.masked_weight > 0.0 {
        format!("InfoNCE + {} × masked-token loss", objective.masked_weight)
    } else {
        loss_quantities(objective).train.label
    }
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
    /// Whether the curve is the InfoNCE term of steps that recorded their terms (empty while
    /// a masked warm-up runs).
    pub infonce_term: bool,
}

/// The training curve of a run with `objective`: a contrastive run that recorded the terms of
/// its step loss draws its InfoNCE term, the quantity its validation loss measures (no points
/// yet during a masked warm-up); one that mixed a masked-token loss into its steps without
/// recording terms draws that mix under a name of its own, so it is never overlaid with
/// InfoNCE alone.
pub fn train_curve<'a>(
    objective: &ObjectiveSpec,
    curves: &'a Curves,
    axis: XAxis,
) -> TrainCurve<'a> {
    let quantity = loss_quantities(objective).train;
    let recorded_terms = [MetricKey::STEP_INFONCE, MetricKey::STEP_MASKED_LOSS]
        .iter()
        .any(|k| curves.terms.contains_key(k.name()));
    if recorded_terms {
        let infonce = curves.terms.get(MetricKey::STEP_INFONCE.name());
        return TrainCurve {
            quantity,
            xs: infonce.map_or(&[], |t| t.xs(axis)),
            raw: infonce.map_or(&[], |t| t.values.as_slice()),
            raw_index: None,
            ys: infonce.map_or(&[], |t| t.smoothed_values()),
            index: None,
            infonce_term: true,
        };
    }
    let mixed = objective.kind == ObjectiveKind::CONTRASTIVE
        && (objective.masked_warmup > 0.0 || objective.masked_weight > 0.0);
    let quantity = if mixed {
        let (warmup, weight) = (objective.masked_warmup, objective.masked_weight);
        Quantity {
            key: format!(
                "contrastive-mixed-{}-{}",
                warmup.to_bits(),
                weight.to_bits()
            ),
            label: format!(
                "contrastive step loss (masked-token loss for the first {:.0}%, then InfoNCE + {weight} × masked)",
                warmup * 100.0
            ),
        }
    } else {
        quantity
    };
    TrainCurve {
        quantity,
        xs: curves.xs(axis),
        raw: &curves.train,
        raw_index: Some(curves.train_index_ref()),
        ys: curves.smoothed_values(),
        index: Some(curves.smoothed_index()),
        infonce_term: false,
    }
}

/// The validation values of the training curve's own quantity, one per evaluation: the
/// validation loss itself, or for GRIT the total rebuilt from its parts (`None` when the run
/// did not record them).
pub fn val_like_train<'a>(objective: &ObjectiveSpec, curves: &'a Curves) -> Option<Cow<'a, [f64]>> {
    if objective.kind != ObjectiveKind::GRIT {
        return Some(Cow::Borrowed(curves.val.as_slice()));
    }
    let emb = curves.metric(MetricKey::VAL_EMB_LOSS.name())?;
    let lambda = objective.gen_weight;
    Some(Cow::Owned(
        emb.iter()
            .zip(&curves.val)
            .map(|(emb, generation)| emb + lambda * generation)
            .collect(),
    ))
}

/// One chart of an embedding objective's health: its title, its axis and the metrics it draws
/// (`(metric name, legend)`), all in the axis's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChart {
    /// What the chart measures.
    pub title: &'static str,
    /// The y axis.
    pub y_label: &'static str,
    /// The curves it draws.
    pub series: &'static [(&'static str, &'static str)],
}

/// The health charts of the embedding objectives (alignment and uniformity after Wang & Isola
/// 2020; effective rank after Roy & Vetterli 2007), one quantity per axis.
pub const HEALTH_CHARTS: [HealthChart; 4] = [
    HealthChart {
        title: "Alignment: mean squared distance of held-out positives (lower: closer)",
        y_label: "squared distance",
        series: &[("val_alignment", "alignment")],
    },
    HealthChart {
        title: "Uniformity: log E exp(-2 squared distance) (near 0: collapsed)",
        y_label: "uniformity",
        series: &[("val_uniformity", "uniformity")],
    },
    HealthChart {
        title: "Pairwise cosine of held-out embeddings",
        y_label: "cosine",
        series: &[
            ("val_cos_mean", "mean"),
            ("val_cos_std", "standard deviation"),
        ],
    },
    HealthChart {
        title: "Effective rank of held-out embeddings (near 1: collapsed)",
        y_label: "effective rank",
        series: &[("val_eff_rank", "effective rank")],
    },
];

/// True for a metric drawn on the health charts rather than with the objective's metrics.
pub fn is_health_metric(name: &str) -> bool {
    HEALTH_CHARTS
        .iter()
        .any(|c| c.series.iter().any(|(metric, _)| *metric == name))
}

/// What the metrics `extra` of the evaluation at `step` of a run of `spec` say of collapse, as
/// the run itself judges it ([`hearth_engine::objective::contrastive::collapse_at`]): the
/// sentence with what to try, or `None`.
pub fn collapse_in(spec: &RunSpec, step: usize, extra: &[(String, f64)]) -> Option<String> {
    hearth_engine::objective::contrastive::collapse_at(
        &spec.objective,
        step,
        spec.train.steps,
        |key| {
            extra
                .iter()
                .find(|(name, _)| name == key.name())
                .map(|(_, v)| *v)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_engine::viz::curves::EvalPoint;

    fn spec(kind: ObjectiveKind) -> ObjectiveSpec {
        ObjectiveSpec {
            kind,
            ..ObjectiveSpec::default()
        }
    }

    #[test]
    fn a_step_loss_is_named_by_what_its_step_trained_on() {
        let grit = ObjectiveSpec {
            gen_weight: 16.0,
            ..spec(ObjectiveKind::GRIT)
        };
        assert_eq!(
            step_loss_name(&grit, 10, 100),
            "total loss (L_emb + 16·L_gen)"
        );
        let contrastive = ObjectiveSpec {
            masked_warmup: 0.4,
            masked_weight: 2.0,
            ..spec(ObjectiveKind::CONTRASTIVE)
        };
        assert_eq!(
            step_loss_name(&contrastive, 39, 100),
            "masked-token loss (warm-up)"
        );
        assert_eq!(
            step_loss_name(&contrastive, 40, 100),
            "InfoNCE + 2 × masked-token loss"
        );
        assert_eq!(
            step_loss_name(&spec(ObjectiveKind::NEXT_TOKEN), 5, 100),
            "next-token loss"
        );
    }

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
        // A contrastive run's masked warm-up trains no embeddings: not judged until InfoNCE
        // has trained a step.
        run.objective = ObjectiveSpec {
            masked_warmup: 0.4,
            ..spec(ObjectiveKind::CONTRASTIVE)
        };
        assert!(
            collapse_in(&run, 40, &eval(-0.02, 1.1)).is_none(),
            "warm-up"
        );
        assert!(collapse_in(&run, 41, &eval(-0.02, 1.1)).is_some());
        for chart in HEALTH_CHARTS {
            for (metric, _) in chart.series {
                assert!(is_health_metric(metric));
            }
        }
        assert!(!is_health_metric("val_mrr"));
    }

    #[test]
    fn grit_trains_a_total_and_validates_a_next_token_loss() {
        let next = loss_quantities(&spec(ObjectiveKind::NEXT_TOKEN));
        let grit = loss_quantities(&spec(ObjectiveKind::GRIT));
        assert_eq!(next.train, next.val, "next-token trains what it validates");
        assert_ne!(grit.train, grit.val, "GRIT's step loss is the total");
        assert_eq!(grit.val, next.val, "GRIT's validation loss is comparable");
        assert_ne!(grit.train, next.train, "but its training loss is not");
        assert!(grit.train.label.contains("L_emb"), "{}", grit.train.label);
        let mut heavier = spec(ObjectiveKind::GRIT);
        heavier.gen_weight *= 2.0;
        assert_ne!(
            loss_quantities(&heavier).train.key,
            grit.train.key,
            "another lambda is another total"
        );
    }

    #[test]
    fn grit_validation_total_is_rebuilt_from_its_parts() {
        let mut objective = spec(ObjectiveKind::GRIT);
        objective.gen_weight = 0.5;
        let mut curves = Curves::default();
        let metrics = [(MetricKey::VAL_EMB_LOSS.name().to_string(), 1.0)];
        curves.push_eval(EvalPoint {
            step: 10,
            tokens_seen: 0.0,
            elapsed_s: 0.0,
            val_loss: 3.0,
            train_loss: 3.2,
            metrics: &metrics,
        });
        let total = val_like_train(&objective, &curves).expect("the parts were recorded");
        assert_eq!(total.as_ref(), &[1.0 + 0.5 * 3.0]);
        let next = spec(ObjectiveKind::NEXT_TOKEN);
        assert_eq!(
            val_like_train(&next, &curves).as_deref(),
            Some(&[3.0][..]),
            "other objectives validate their training loss"
        );
    }
}
