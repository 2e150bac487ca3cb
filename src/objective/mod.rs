//! Training objectives, one file each, and the settings that choose between them.

pub mod contrastive;
pub mod masked;
pub mod metrics;
pub mod next_token;

use crate::model::{AttentionMode, SpecError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a run learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// Causal language modelling.
    #[default]
    NextToken,
    /// BERT-style masked-token prediction with bidirectional attention.
    Masked,
    /// Sentence embeddings trained with InfoNCE.
    Contrastive,
    /// One model, both: embedding rows (bidirectional, InfoNCE) and generation rows (causal,
    /// next-token) in every step; `L = L_emb + gen_weight * L_gen`.
    Grit,
    /// LinkBERT (Yasunaga et al., 2022): masked tokens over `[cls] A [sep] B [sep]` pairs plus
    /// a 3-way relation head (B follows A, is random, or comes from a document A links to);
    /// `L = L_mlm + L_relation`. Needs a dataset with the LinkBERT transform.
    #[serde(rename = "linkbert")]
    LinkBert,
}

impl ObjectiveKind {
    pub const ALL: [ObjectiveKind; 5] = [
        ObjectiveKind::NextToken,
        ObjectiveKind::Masked,
        ObjectiveKind::Contrastive,
        ObjectiveKind::Grit,
        ObjectiveKind::LinkBert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ObjectiveKind::NextToken => "next-token",
            ObjectiveKind::Masked => "masked",
            ObjectiveKind::Contrastive => "contrastive",
            ObjectiveKind::Grit => "grit",
            ObjectiveKind::LinkBert => "linkbert",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Where a contrastive positive comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Positives {
    /// The first half of a window of text is the query, the second half its positive.
    #[default]
    Halves,
    /// The same text twice; dropout makes the two encodings differ (SimCSE).
    Dropout,
    /// Labelled pairs from `pairs_file` (TSV `query<TAB>positive[<TAB>negative]` or JSONL).
    Pairs,
}

impl Positives {
    pub const ALL: [Positives; 3] = [Positives::Halves, Positives::Dropout, Positives::Pairs];

    pub fn name(self) -> &'static str {
        match self {
            Positives::Halves => "halves",
            Positives::Dropout => "dropout",
            Positives::Pairs => "pairs",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// How token states become one embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    #[default]
    Mean,
    /// The first position (a `[cls]` token when the text starts with one).
    Cls,
    /// The last non-padding position.
    Last,
}

impl Pooling {
    pub const ALL: [Pooling; 3] = [Pooling::Mean, Pooling::Cls, Pooling::Last];

    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The objective and its options (only those of the chosen kind apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectiveSpec {
    pub kind: ObjectiveKind,
    /// Masked: share of positions chosen per sequence (BERT: 0.15).
    pub mask_rate: f64,
    /// Contrastive / GRIT: InfoNCE temperature.
    pub temperature: f64,
    pub pooling: Pooling,
    pub positives: Positives,
    /// Contrastive / GRIT with pairs: the labelled pairs file.
    pub pairs_file: Option<PathBuf>,
    /// Use the pairs' negatives (third column) as hard negatives.
    pub hard_negatives: bool,
    /// GRIT: lambda, the weight of the generation loss.
    pub gen_weight: f64,
}

impl Default for ObjectiveSpec {
    fn default() -> Self {
        Self {
            kind: ObjectiveKind::NextToken,
            mask_rate: 0.15,
            temperature: 0.05,
            pooling: Pooling::Mean,
            positives: Positives::Halves,
            pairs_file: None,
            hard_negatives: true,
            gen_weight: 1.0,
        }
    }
}

impl ObjectiveSpec {
    /// The attention the objective trains (and shows on the probe).
    pub fn attention_mode(&self) -> AttentionMode {
        match self.kind {
            ObjectiveKind::NextToken => AttentionMode::Causal,
            ObjectiveKind::Masked
            | ObjectiveKind::Contrastive
            | ObjectiveKind::Grit
            | ObjectiveKind::LinkBert => AttentionMode::Bidirectional,
        }
    }

    /// Whether the tokenizer must reserve `[pad] [mask] [cls] [sep]`: masking needs `[mask]`,
    /// labelled pairs need `[pad]`; windows of text need neither, so a contrastive or GRIT run on
    /// text can start from a next-token run's checkpoint.
    pub fn needs_specials(&self) -> bool {
        match self.kind {
            ObjectiveKind::NextToken => false,
            ObjectiveKind::Masked | ObjectiveKind::LinkBert => true,
            ObjectiveKind::Contrastive | ObjectiveKind::Grit => self.positives == Positives::Pairs,
        }
    }

    pub fn uses_embeddings(&self) -> bool {
        matches!(self.kind, ObjectiveKind::Contrastive | ObjectiveKind::Grit)
    }

    pub fn validate(&self, dropout: f64) -> Vec<SpecError> {
        let mut errors = Vec::new();
        if matches!(self.kind, ObjectiveKind::Masked | ObjectiveKind::LinkBert)
            && !(self.mask_rate > 0.0 && self.mask_rate < 1.0)
        {
            errors.push(SpecError::new(
                "objective.mask_rate",
                "must be between 0 and 1",
            ));
        }
        if self.uses_embeddings() {
            if !(self.temperature > 0.0 && self.temperature.is_finite()) {
                errors.push(SpecError::new("objective.temperature", "must be positive"));
            }
            if self.positives == Positives::Pairs && self.pairs_file.is_none() {
                errors.push(SpecError::new(
                    "objective.pairs_file",
                    "pairs positives need a pairs file",
                ));
            }
            if self.positives == Positives::Dropout && dropout == 0.0 {
                errors.push(SpecError::new(
                    "objective.positives",
                    "dropout twins need dropout above 0 (model.dropout), or the two views are identical",
                ));
            }
        }
        if self.kind == ObjectiveKind::Grit && !(self.gen_weight >= 0.0) {
            errors.push(SpecError::new("objective.gen_weight", "must be at least 0"));
        }
        errors
    }
}
