//! What a contrastive run's charts are called and show, and the settings of the objectives
//! that embed (shared with GRIT).

use crate::eval::{LEXICAL_BUCKETS, LEXICAL_NGRAM, Pooling};
use crate::objective::{
    ChartNote, Charts, HealthChart, LossQuantities, MetricKey, ObjectiveSpec, Positives, Quantity,
    Setting, SettingKind, TermChart, TrainTerm,
};
use std::borrow::Cow;

/// The health charts of the objectives that embed (alignment and uniformity after Wang &
/// Isola 2020; effective rank after Roy & Vetterli 2007), one quantity per axis.
pub const EMBEDDING_HEALTH_CHARTS: [HealthChart; 4] = [
    HealthChart {
        title: "Alignment: mean squared distance of held-out positives (lower: closer)",
        y_label: "squared distance",
        series: &[(MetricKey::VAL_ALIGNMENT, "alignment")],
    },
    HealthChart {
        title: "Uniformity: log E exp(-2 squared distance) (near 0: collapsed)",
        y_label: "uniformity",
        series: &[(MetricKey::VAL_UNIFORMITY, "uniformity")],
    },
    HealthChart {
        title: "Pairwise cosine of held-out embeddings",
        y_label: "cosine",
        series: &[
            (MetricKey::VAL_COS_MEAN, "mean"),
            (MetricKey::VAL_COS_STD, "standard deviation"),
        ],
    },
    HealthChart {
        title: "Effective rank of held-out embeddings (near 1: collapsed)",
        y_label: "effective rank",
        series: &[(MetricKey::VAL_EFF_RANK, "effective rank")],
    },
];

/// The title above the health charts of the objectives that embed.
pub const EMBEDDING_HEALTH_TITLE: &str = "Embedding health (held-out embeddings)";

/// A contrastive run's charts: a run that recorded the terms of its step loss draws its
/// InfoNCE term as the training curve (the quantity validation measures) and the masked-token
/// term apart; one that mixed a masked-token loss into its steps without recording terms
/// draws that mix under a name of its own, so it is never overlaid with InfoNCE alone.
pub(super) fn charts(spec: &ObjectiveSpec) -> Charts {
    let mut charts = Charts::new(LossQuantities::both("contrastive loss"));
    charts.train_term = Some(TrainTerm {
        key: MetricKey::STEP_INFONCE,
        raw_legend: Cow::Borrowed("train InfoNCE, each step (raw)"),
        smoothed_legend: Cow::Borrowed("train InfoNCE (smoothed)"),
    });
    let weight = if spec.masked_weight > 0.0 {
        format!(
            "; after the warm-up it enters the step loss x {}",
            spec.masked_weight
        )
    } else {
        String::new()
    };
    charts.term_charts = vec![TermChart {
        key: MetricKey::STEP_MASKED_LOSS,
        caption: format!("Masked-token loss, unweighted{weight}"),
        label: Cow::Borrowed("masked-token loss"),
    }];
    let (warmup, weight) = (spec.masked_warmup, spec.masked_weight);
    if warmup > 0.0 || weight > 0.0 {
        charts.untermed_train = Some(Quantity {
            key: format!(
                "contrastive-mixed-{}-{}",
                warmup.to_bits(),
                weight.to_bits()
            ),
            label: format!(
                "contrastive step loss (masked-token loss for the first {:.0}%, then InfoNCE + {weight} × masked)",
                warmup * 100.0
            ),
        });
    }
    charts.health_charts = &EMBEDDING_HEALTH_CHARTS;
    charts.health_title = EMBEDDING_HEALTH_TITLE;
    charts
}

/// What one contrastive step trained on: the masked warm-up, InfoNCE with a kept masked term,
/// or InfoNCE alone.
pub(super) fn step_loss_name(spec: &ObjectiveSpec, step: usize, total: usize) -> String {
    if spec.in_masked_warmup(step, total) {
        "masked-token loss (warm-up)".to_string()
    } else if spec.masked_weight > 0.0 {
        format!("InfoNCE + {} × masked-token loss", spec.masked_weight)
    } else {
        charts(spec).losses.train.label
    }
}

/// A masked warm-up or a kept masked term trains another loss than validation measures: what
/// the training curve shows.
pub(super) fn train_curve_note(
    o: &ObjectiveSpec,
    total_steps: usize,
    terms: bool,
) -> Option<ChartNote> {
    if o.masked_warmup <= 0.0 && o.masked_weight <= 0.0 {
        return None;
    }
    let until = o.masked_warmup_steps(total_steps);
    let text = if terms {
        let start = if o.masked_warmup > 0.0 {
            format!(" from step {} (after the masked warm-up)", until + 1)
        } else {
            String::new()
        };
        // While halves positives overlap their queries, training pairs share text that
        // validation's (which never overlap) do not.
        let curriculum = if o.positives == Positives::Halves && o.overlap_curriculum > 0.0 {
            let w = o.masked_warmup.clamp(0.0, 0.99);
            let end = w + (1.0 - w) * o.overlap_curriculum.min(1.0);
            let end = (end * total_steps as f64).ceil() as usize;
            format!(
                "; until step {end} its pairs overlap, so it sits below validation's \
                 non-overlapping pairs"
            )
        } else {
            String::new()
        };
        format!(
            "training curve: the InfoNCE term of each step{start}{curriculum}; the \
             masked-token term has its own chart (Training terms)"
        )
    } else {
        // Runs recorded before steps kept their terms: one curve of both.
        let after = if o.masked_weight > 0.0 {
            format!("InfoNCE + {} x masked-token loss", o.masked_weight)
        } else {
            "InfoNCE".to_string()
        };
        if o.masked_warmup > 0.0 {
            format!(
                "training curve: masked-token loss until step {until} (the masked \
                 warm-up), {after} after; validation is InfoNCE throughout"
            )
        } else {
            format!("training curve: {after}; validation is InfoNCE alone")
        }
    };
    Some(ChartNote {
        text,
        warning: !terms,
    })
}

/// Retrieval ranks by the whole embedding: what that holds besides the pooled states, when
/// the lexical channel is on and `metric` is a retrieval metric.
pub fn lexical_note(o: &ObjectiveSpec, metric: &str) -> Option<String> {
    let retrieval = metric.contains("recall") || metric.contains("mrr");
    (retrieval && o.lexical > 0.0).then(|| {
        format!(
            "ranked by the whole embedding: the pooled states ({:.2} of the similarity) and the \
             lexical channel's hashed character {LEXICAL_NGRAM}-grams ({:.2}); validation \
             InfoNCE scores the states alone",
            1.0 - o.lexical,
            o.lexical
        )
    })
}

/// A number edited by dragging in `range`, `speed` per point.
fn number(range: std::ops::RangeInclusive<f64>, speed: f64) -> SettingKind {
    SettingKind::Number { range, speed }
}

/// The settings of the objectives that embed, in the order Run setup shows them; with
/// `masked_terms`, the masked warm-up and the kept masked-token weight (contrastive only).
pub fn embedding_settings(masked_terms: bool) -> Vec<Setting> {
    let pairs = |o: &ObjectiveSpec| o.positives == Positives::Pairs;
    let mut settings = vec![
        Setting::choice(
            "positives",
            "Positives",
            Positives::ALL.iter().map(|p| p.name()).collect(),
            |o| o.positives.name(),
            |o, name| o.positives = Positives::parse(name).unwrap_or(o.positives),
        ),
        Setting::file(
            "pairs_file",
            "Pairs file",
            "pairs.tsv or pairs.jsonl",
            |o| o.pairs_file.as_deref(),
            |o, path| o.pairs_file = path,
        )
        .shown_when(pairs),
        Setting::flag(
            "hard_negatives",
            "Hard negatives",
            "use the third column",
            |o| o.hard_negatives,
            |o, on| o.hard_negatives = on,
        )
        .shown_when(pairs),
        Setting::number(
            "uniformity_weight",
            "Uniformity weight",
            number(0.0..=100.0, 0.05),
            |o| o.uniformity_weight,
            |o, v| o.uniformity_weight = v,
        )
        .with_help("Weight of the uniformity loss (Wang & Isola 2020) that keeps texts apart"),
        Setting::number(
            "overlap_curriculum",
            "Overlapping positives",
            number(0.0..=1.0, 0.01),
            |o| o.overlap_curriculum,
            |o, v| o.overlap_curriculum = v,
        )
        .with_help("Share of the run during which a positive overlaps its query, shrinking to none")
        .shown_when(|o| o.positives == Positives::Halves),
    ];
    if masked_terms {
        settings.push(
            Setting::number(
                "masked_warmup",
                "Masked warm-up",
                number(0.0..=0.95, 0.01),
                |o| o.masked_warmup,
                |o, v| o.masked_warmup = v,
            )
            .with_help("Share of the run spent on masked-token prediction before InfoNCE starts"),
        );
        settings.push(
            Setting::number(
                "masked_weight",
                "Masked-token weight",
                number(0.0..=10.0, 0.05),
                |o| o.masked_weight,
                |o, v| o.masked_weight = v,
            )
            .with_help(
                "Weight of a masked-token loss kept beside InfoNCE after the warm-up (0: InfoNCE alone)",
            ),
        );
    }
    settings.extend([
        Setting::number(
            "temperature",
            "Temperature",
            number(0.001..=1.0, 0.005),
            |o| o.temperature,
            |o, v| o.temperature = v,
        ),
        Setting::choice(
            "pooling",
            "Pooling",
            Pooling::ALL.iter().map(|p| p.name()).collect(),
            |o| o.pooling.name(),
            |o, name| o.pooling = Pooling::parse(name).unwrap_or(o.pooling),
        ),
        Setting::number(
            "lexical",
            "Lexical channel",
            number(0.0..=0.95, 0.01),
            |o| o.lexical,
            |o, v| o.lexical = v,
        )
        .with_help(format!(
            "Share of the similarity carried by the texts' shared spellings: counts of \
             lowercased {LEXICAL_NGRAM}-character strings, hashed into {LEXICAL_BUCKETS} \
             columns after the pooled states. 0 embeds the pooled states alone."
        )),
        Setting::sts_file(),
    ]);
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::ObjectiveKind;

    #[test]
    fn only_a_mixed_step_loss_is_named_apart_from_infonce() {
        let plain = ObjectiveSpec {
            kind: ObjectiveKind::CONTRASTIVE,
            ..ObjectiveSpec::default()
        };
        assert!(charts(&plain).untermed_train.is_none());
        assert!(train_curve_note(&plain, 100, true).is_none());
        let mixed = ObjectiveSpec {
            masked_warmup: 0.5,
            ..plain
        };
        assert!(charts(&mixed).untermed_train.is_some());
        let note = train_curve_note(&mixed, 10, false).expect("a mixed curve is explained");
        assert!(note.warning, "{}", note.text);
        assert!(note.text.contains("until step 5"), "{}", note.text);
    }
}
