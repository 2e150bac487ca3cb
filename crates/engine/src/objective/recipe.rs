//! Recommended settings per objective: what a run of that objective starts from when the user
//! has not chosen a value (`hearth train` without the flag, the studio's "Reset to the
//! objective's recipe").

use super::{ObjectiveKind, Pooling};
use crate::model::Arch;

/// The settings an objective trains well with at the nanoGPT CPU shape (4 layers, 128 wide,
/// context 64); `None` leaves the run's value as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The transformer the objective trains best with.
    pub arch: Arch,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: usize,
    /// Masked: share of positions chosen per sequence.
    pub mask_rate: Option<f64>,
    /// Embedding objectives: InfoNCE temperature.
    pub temperature: Option<f64>,
    /// Embedding objectives: pooling.
    pub pooling: Option<Pooling>,
    /// Embedding objectives: weight of the uniformity loss.
    pub uniformity_weight: Option<f64>,
    /// Embedding objectives with `halves`: share of the run with overlapping positives.
    pub overlap_curriculum: Option<f64>,
    /// Contrastive: share of the run spent on masked-token prediction first.
    pub masked_warmup: Option<f64>,
    /// Contrastive: weight of the masked-token loss kept beside InfoNCE after the warm-up.
    pub masked_weight: Option<f64>,
    /// GRIT: weight of the generation loss.
    pub gen_weight: Option<f64>,
    /// Embedding objectives: share of the similarity carried by the lexical channel.
    pub lexical: Option<f64>,
    /// Sequences per batch the recipe was measured with (a hint; the run's batch is kept).
    pub batch_hint: usize,
    /// Rows per batch the recipe sets (`None`: the run's batch is kept).
    pub batch: Option<usize>,
    /// Training steps the recipe sets (`None`: the run's steps are kept).
    pub steps: Option<usize>,
    /// Steps between evaluations the recipe sets (`None`: the run's interval is kept).
    pub eval_interval: Option<usize>,
    /// Whether the learning rates are meant for pretrained weights, so a run started from
    /// another (`--init-from`) uses them as they are instead of a tenth of them.
    pub pretrained_lr: bool,
    /// Why these values, in one or two sentences (shown in the studio and the README).
    pub why: &'static str,
}

impl Default for Recipe {
    /// nanoGPT's `train_shakespeare_char` optimizer settings.
    fn default() -> Self {
        Self {
            arch: Arch::Classic,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 100,
            mask_rate: None,
            temperature: None,
            pooling: None,
            uniformity_weight: None,
            overlap_curriculum: None,
            masked_warmup: None,
            masked_weight: None,
            gen_weight: None,
            lexical: None,
            batch_hint: 12,
            batch: None,
            steps: None,
            eval_interval: None,
            pretrained_lr: false,
            why: "nanoGPT's Tiny Shakespeare settings: AdamW at 1e-3 decayed to 1e-4 over the \
                  run after 100 warmup steps.",
        }
    }
}

impl Recipe {
    /// The recipe of `kind`; objectives registered at run time get [`Recipe::default`].
    pub fn of(kind: &ObjectiveKind) -> Recipe {
        kind.objective()
            .map_or_else(Recipe::default, |o| o.recipe())
    }

    /// The recipe's values in one line: `lr 1e-3 -> 1e-4, warmup 100, mask rate 0.3`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} architecture", self.arch.name())];
        parts.extend([
            format!("lr {} -> {}", self.lr, self.min_lr),
            format!("warmup {}", self.warmup_steps),
        ]);
        if let Some(m) = self.mask_rate {
            parts.push(format!("mask rate {m}"));
        }
        if let Some(t) = self.temperature {
            parts.push(format!("temperature {t}"));
        }
        if let Some(p) = self.pooling {
            parts.push(format!("{} pooling", p.name()));
        }
        if let Some(u) = self.uniformity_weight {
            parts.push(format!("uniformity weight {u}"));
        }
        if let Some(c) = self.overlap_curriculum.filter(|c| *c > 0.0) {
            parts.push(format!(
                "overlapping positives for the first {:.0}%",
                c * 100.0
            ));
        }
        if let Some(w) = self.masked_warmup {
            parts.push(format!("masked warm-up for the first {:.0}%", w * 100.0));
        }
        if let Some(w) = self.masked_weight {
            parts.push(format!("masked-token weight {w} beside InfoNCE"));
        }
        if let Some(l) = self.lexical.filter(|l| *l > 0.0) {
            parts.push(format!("lexical channel {l}"));
        }
        if let Some(g) = self.gen_weight {
            parts.push(format!("generation weight {g}"));
        }
        match self.batch {
            Some(batch) => parts.push(format!("batch {batch}")),
            None => parts.push(format!("batch {} (hint)", self.batch_hint)),
        }
        if let Some(steps) = self.steps {
            parts.push(format!("{steps} steps"));
        }
        parts.join(", ")
    }
}
