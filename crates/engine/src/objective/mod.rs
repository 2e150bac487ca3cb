//! Training objectives behind one trait, one file each, and the settings that choose between
//! them.
//!
//! An [`Objective`] turns a model and the run's data ([`StepData`]) into a training loss, an
//! [`Evaluation`] (losses and named metrics) and the views the studio draws at evaluations. The
//! run worker asks the [`registry`] for the objective a run names and knows nothing else about
//! it; adding an objective is one file here and one line in the registry (or a call to
//! [`register`] at run time).

pub mod contrastive;
pub mod cosent;
pub mod describe;
pub mod grit;
pub mod linkbert;
pub mod masked;
pub mod next_token;
pub mod recipe;
pub mod registry;
pub mod step;

pub use crate::eval::Pooling;
pub use describe::{
    ChartCurve, ChartNote, Charts, CurveSource, HealthChart, LossQuantities, MetricsChart,
    Quantity, Setting, SettingKind, SettingValue, TermChart, TrainTerm, ValidationAsTrain,
};
pub use recipe::Recipe;
pub use registry::{lookup, register};
pub use step::{PairSet, StepData, mean_of_batches};

use crate::data::Corpus;
use crate::events::{ContrastiveBatch, EmbeddingSnapshot, MaskedProbe};
use crate::model::{AttentionMode, Model, SpecError};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A training batch drawn ahead of its computation (see [`Objective::draw`]).
pub type Drawn = Box<dyn std::any::Any + Send>;

/// One training step's loss and, where it sums several terms, each term as it entered the sum
/// (unweighted), named by the metric it is recorded as.
pub struct StepLoss {
    /// The loss the gradients come from.
    pub total: Tensor<1>,
    /// Each term's name and value.
    pub terms: Vec<(MetricKey, Tensor<1>)>,
}

/// What a run learns: a loss per training step, losses and metrics per evaluation, and the
/// views it offers at evaluations. Implementations are stateless; the registry shares one of
/// each between all runs, so they must be `Send + Sync`.
///
/// Randomness comes only from the `rng` arguments, so a run is reproducible from its seed:
/// an implementation must draw from it in the same order every time.
pub trait Objective: Send + Sync {
    /// The name runs choose this objective by.
    fn kind(&self) -> ObjectiveKind;

    /// The attention the objective trains (and the attention probe shows).
    fn attention_mode(&self) -> AttentionMode;

    /// Whether the tokenizer must reserve `[pad] [mask] [cls] [sep]` for a run with `spec`.
    fn needs_specials(&self, _spec: &ObjectiveSpec) -> bool {
        false
    }

    /// Whether the model is trained to embed texts: the run then loads the pairs file of
    /// `positives = pairs`, and the embedding options of [`ObjectiveSpec`] apply.
    fn uses_embeddings(&self) -> bool {
        false
    }

    /// Whether the run's pairs file carries a gold score per pair that the loss reads (the
    /// STS layout or JSONL `{"a", "b", "score"}`): the worker then loads it as scored pairs,
    /// whatever the positives setting.
    fn scored_pairs(&self) -> bool {
        false
    }

    /// Whether the trained model generates text, so the worker writes a sample at each
    /// evaluation.
    fn generates_text(&self) -> bool {
        false
    }

    /// Classes of the sentence-pair relation head the model needs on its first position (0: no
    /// head).
    fn relation_classes(&self) -> usize {
        0
    }

    /// The settings in `spec` this objective cannot train with, each naming its field
    /// (`dropout`: the model's dropout).
    fn validate(&self, _spec: &ObjectiveSpec, _dropout: f64) -> Vec<SpecError> {
        Vec::new()
    }

    /// Checks that the loaded corpus has what the objective trains on.
    fn check_corpus(&self, _corpus: &Corpus) -> Result<(), ObjectiveError> {
        Ok(())
    }

    /// A note for the user when training starts (sent as a warning event), e.g. what the
    /// loss starts near.
    fn start_note(&self, _data: &StepData<'_>) -> Option<String> {
        None
    }

    /// The settings this objective trains well with, applied where the user has not chosen
    /// (see [`Recipe`]).
    fn recipe(&self) -> Recipe {
        Recipe::default()
    }

    /// Simple models' figures on the run's data (count models, TF-IDF, chance), computed once
    /// when training starts and drawn beside the metrics they compare with.
    fn references(&self, _data: &StepData<'_>) -> Vec<crate::eval::baseline::Reference> {
        Vec::new()
    }

    /// Every metric [`Objective::evaluate`] may report, in the order it reports them.
    fn metrics(&self) -> &'static [MetricKey] {
        &[]
    }

    /// The loss of one training step on a batch it draws from `data` with `rng`; `model` is the
    /// autodiff model, so the loss carries the graph.
    fn train_loss(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Tensor<1>;

    /// [`Objective::train_loss`] with the value of each term where the loss sums several
    /// (a contrastive run's InfoNCE and masked-token terms), so each term can be drawn as its
    /// own curve. The default: the loss alone, no terms.
    fn train_step_loss(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> StepLoss {
        StepLoss {
            total: self.train_loss(model, data, rng, device),
            terms: Vec::new(),
        }
    }

    /// Draws the rows of one training batch with `rng`, computing nothing, for
    /// [`Objective::drawn_loss`]. The replicas of a data-parallel step draw in turn (so their
    /// rows are the rows one large batch would have) and then compute at once. `None` (the
    /// default): this objective draws and computes in one go, and replicas take turns.
    fn draw(&self, _data: &StepData<'_>, _rng: &mut StdRng) -> Option<Drawn> {
        None
    }

    /// The training loss on a batch from [`Objective::draw`] (as [`Objective::train_loss`]
    /// computes it); `None` where `draw` is not supported.
    fn drawn_loss(
        &self,
        _model: &Model,
        _drawn: Drawn,
        _data: &StepData<'_>,
        _device: &Device,
    ) -> Option<Tensor<1>> {
        None
    }

    /// Losses and metrics of an evaluation. `model` is a validation snapshot; `rng` is seeded
    /// the same at every evaluation, so successive estimates differ only by the model.
    fn evaluate(
        &self,
        model: &Model,
        data: &StepData<'_>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Evaluation;

    /// The views offered at an evaluation at `step`, drawn after [`Objective::evaluate`] with
    /// the same `rng`. The worker sends each as an event (and stores embedding maps).
    fn views(
        &self,
        _model: &Model,
        _data: &StepData<'_>,
        _rng: &mut StdRng,
        _device: &Device,
        _step: usize,
    ) -> Vec<EvalView> {
        Vec::new()
    }

    /// The health rule this objective judges its evaluations by: a warning in words when the
    /// metrics of the evaluation at `step` (of a run of `total` steps) show the run has gone
    /// wrong in a way the loss does not show (an embedding objective: its embeddings
    /// collapsed), with what to try. The worker sends it once per run; the studio marks the
    /// run by it. `None` (the default): nothing to judge.
    fn health_warning(
        &self,
        _spec: &ObjectiveSpec,
        _step: usize,
        _total: usize,
        _metric: &dyn Fn(MetricKey) -> Option<f64>,
    ) -> Option<String> {
        None
    }

    /// What the charts of a run with `spec` are called and show (see [`Charts`]). The
    /// default: one loss named after the objective, trained and validated alike.
    fn charts(&self, _spec: &ObjectiveSpec) -> Charts {
        Charts::new(LossQuantities::both(format!("{} loss", self.kind().name())))
    }

    /// What the loss of step `step` (of `total`) of a run with `spec` measures, in a few
    /// words, where one step's loss is printed beside its value (the run list, the Monitor's
    /// progress line). The default: the training loss's label.
    fn step_loss_name(&self, spec: &ObjectiveSpec, _step: usize, _total: usize) -> String {
        self.charts(spec).losses.train.label
    }

    /// A line under the loss chart's title saying what its training curve measures, where
    /// the title alone would mislead; `terms_recorded`: whether the run recorded the terms of
    /// its step loss. The default: none.
    fn train_curve_note(
        &self,
        _spec: &ObjectiveSpec,
        _total_steps: usize,
        _terms_recorded: bool,
    ) -> Option<ChartNote> {
        None
    }

    /// A line above the metrics chart when it shows `metric`, saying what the metric measures
    /// beyond its name. The default: none.
    fn metric_note(&self, _spec: &ObjectiveSpec, _metric: &str) -> Option<String> {
        None
    }

    /// The settings of [`ObjectiveSpec`] this objective reads, in the order Run setup shows
    /// them. The default: none.
    fn settings(&self) -> Vec<Setting> {
        Vec::new()
    }

    /// The objective's own figures of a trained checkpoint for `hearth eval`, as one line of
    /// `key=value` pairs, where it has figures beyond the losses and the evaluations every
    /// objective shares (LinkBERT: the relation head's accuracy, overall and per relation).
    fn checkpoint_report(
        &self,
        _model: &Model,
        _corpus: &Corpus,
        _context: usize,
        _device: &Device,
    ) -> Option<String> {
        None
    }

    /// The first training batch as the model reads it, for the data preview, when it is not
    /// next-token text or instruction data (which the preview shows itself). It must draw from
    /// `rng` exactly as [`Objective::train_loss`] does, and not at all when it returns `None`.
    fn preview_batch(&self, _data: &StepData<'_>, _rng: &mut StdRng) -> Option<PreviewBatch> {
        None
    }
}

/// Losses and metrics of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the evaluation's train batches.
    pub train_loss: f32,
    /// Mean loss over the evaluation's validation batches (the number runs are compared by).
    pub val_loss: f32,
    /// The objective's own metrics, in the order it reports them.
    pub metrics: Vec<(MetricKey, f64)>,
}

impl Evaluation {
    /// The metric `key`, if this evaluation reported it.
    pub fn metric(&self, key: MetricKey) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The metrics as the run history stores them (by name).
    pub fn named_metrics(&self) -> Vec<(String, f64)> {
        self.metrics
            .iter()
            .map(|(key, value)| (key.name().to_string(), *value))
            .collect()
    }
}

/// The name of a metric an objective reports at evaluations (`val_masked_acc`), as stored in
/// the run history and shown by the studio. Built-in objectives declare theirs as associated
/// constants in their own files (`MetricKey::VAL_MASKED_ACC` in `masked.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricKey(&'static str);

impl MetricKey {
    /// A key by name (`val_` or `train_` first, then what it measures).
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The name stored in the run history.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for MetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A view an objective offers at an evaluation: the payload of the run event that carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalView {
    /// The probe set embedded and projected to 2-D; the worker aligns its axes with the
    /// previous map before sending and storing it.
    EmbeddingMap(EmbeddingSnapshot),
    /// Similarities in one validation batch.
    ContrastiveBatch(ContrastiveBatch),
    /// Predictions on a masked probe.
    MaskedProbe(MaskedProbe),
}

/// A training batch as the model reads it, for the data preview.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewBatch {
    /// Row-major `[rows, row_len]` token ids (with masks applied).
    pub inputs: Vec<i64>,
    /// Per position of `inputs`: the loss is computed on this token.
    pub targets: Vec<bool>,
    /// Tokens per row.
    pub row_len: usize,
    /// A class label per row (LinkBERT's relation), or empty.
    pub row_labels: Vec<String>,
}

/// Why an objective cannot train on what it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectiveError {
    /// The loaded data lacks what the objective trains on.
    #[error("the {objective} objective needs {needs}")]
    UnsuitedData {
        /// The objective as the user knows it (`LinkBERT`).
        objective: String,
        /// What the data must have (`a dataset with the LinkBERT transform`).
        needs: String,
    },
}

/// The name of what a run learns, as written on the command line and in spec files
/// (`"next-token"`). Built-in objectives have constants; [`ObjectiveKind::objective`] finds the
/// implementation in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectiveKind(Cow<'static, str>);

impl ObjectiveKind {
    /// Causal language modelling.
    pub const NEXT_TOKEN: Self = Self(Cow::Borrowed("next-token"));
    /// BERT-style masked-token prediction with bidirectional attention.
    pub const MASKED: Self = Self(Cow::Borrowed("masked"));
    /// Sentence embeddings trained with InfoNCE.
    pub const CONTRASTIVE: Self = Self(Cow::Borrowed("contrastive"));
    /// One model, both: embedding rows (bidirectional, InfoNCE) and generation rows (causal,
    /// next-token) in every step; `L = L_emb + gen_weight * L_gen`.
    pub const GRIT: Self = Self(Cow::Borrowed("grit"));
    /// LinkBERT (Yasunaga et al., 2022): masked tokens over `[cls] A [sep] B [sep]` pairs plus
    /// a 3-way relation head (B follows A, is random, or comes from a document A links to);
    /// `L = L_mlm + L_relation`. Needs a dataset with the LinkBERT transform.
    pub const LINKBERT: Self = Self(Cow::Borrowed("linkbert"));
    /// CoSENT (Su 2022): fine-tuning an encoder on sentence pairs with gold similarity
    /// scores, a ranking loss on their cosines. Needs a scored pairs file.
    pub const COSENT: Self = Self(Cow::Borrowed("cosent"));

    /// The objectives Hearth ships, in the order the studio lists them.
    pub const BUILT_IN: [ObjectiveKind; 6] = [
        Self::NEXT_TOKEN,
        Self::MASKED,
        Self::CONTRASTIVE,
        Self::GRIT,
        Self::LINKBERT,
        Self::COSENT,
    ];

    /// A kind by name (not checked against the registry: see [`ObjectiveKind::parse`]).
    pub fn new(name: impl Into<String>) -> Self {
        Self(Cow::Owned(name.into()))
    }

    /// The name used on the command line and in spec files.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The kind of that name, if such an objective is registered.
    pub fn parse(name: &str) -> Option<Self> {
        Self::all().into_iter().find(|k| k.name() == name)
    }

    /// Every registered objective, in the order the studio lists them (built-in ones first).
    pub fn all() -> Vec<ObjectiveKind> {
        registry::kinds()
    }

    /// The implementation registered under this name.
    pub fn objective(&self) -> Option<Arc<dyn Objective>> {
        lookup(self)
    }
}

impl Default for ObjectiveKind {
    fn default() -> Self {
        Self::NEXT_TOKEN
    }
}

impl std::fmt::Display for ObjectiveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a contrastive positive comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
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
    /// Every source of positives, in the order the studio lists them.
    pub const ALL: [Positives; 3] = [Positives::Halves, Positives::Dropout, Positives::Pairs];

    /// The name used on the command line and in spec files.
    pub fn name(self) -> &'static str {
        match self {
            Positives::Halves => "halves",
            Positives::Dropout => "dropout",
            Positives::Pairs => "pairs",
        }
    }

    /// The source of that name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The objective and its options (only those of the chosen kind apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectiveSpec {
    /// Which objective trains the run.
    pub kind: ObjectiveKind,
    /// Masked: share of positions chosen per sequence (BERT: 0.15).
    pub mask_rate: f64,
    /// Contrastive / GRIT: InfoNCE temperature.
    pub temperature: f64,
    /// Contrastive / GRIT: how token states become one embedding.
    pub pooling: Pooling,
    /// Contrastive / GRIT: where a query's positive comes from.
    pub positives: Positives,
    /// Contrastive / GRIT with pairs: the labelled pairs file.
    pub pairs_file: Option<PathBuf>,
    /// Use the pairs' negatives (third column) as hard negatives.
    pub hard_negatives: bool,
    /// GRIT: lambda, the weight of the generation loss.
    pub gen_weight: f64,
    /// Contrastive / GRIT: weight of the uniformity loss (Wang & Isola 2020) added to
    /// InfoNCE on the batch's embeddings; it keeps texts apart while the model has not yet
    /// found what a query shares with its positive, so the encoder does not collapse.
    pub uniformity_weight: f64,
    /// Contrastive / GRIT with `halves`: the share of the run during which a positive
    /// overlaps its query (by three quarters of a half at the start, shrinking to none), so
    /// the encoder first learns to recognise shared text; 0 trains on plain halves
    /// throughout. Evaluations always use plain halves.
    pub overlap_curriculum: f64,
    /// Contrastive: the share of the run spent on masked-token prediction (bidirectional,
    /// at `mask_rate`) before InfoNCE starts, so the encoder first learns the text; 0 starts
    /// with InfoNCE. The overlap curriculum counts from its end.
    pub masked_warmup: f64,
    /// Contrastive: weight of a masked-token loss kept beside InfoNCE after the warm-up, so
    /// the encoder keeps what it learned of the text; 0 trains InfoNCE alone.
    pub masked_weight: f64,
    /// Contrastive / GRIT: share of the similarity carried by the lexical channel (hashed
    /// character n-gram counts beside the pooled states, see [`crate::eval::EmbedSpec`]); 0
    /// embeds the pooled states alone.
    pub lexical: f64,
    /// Embedding objectives: an STS file (tab-separated STS benchmark layout, or JSONL
    /// `{"a", "b", "score"}`) every evaluation also scores: Spearman and Pearson of the
    /// cosine against the gold score, as `val_sts_spearman` and `val_sts_pearson`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_file: Option<PathBuf>,
    /// Settings of objectives that have no field of their own here (see
    /// [`Setting::option`]), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, f64>,
}

impl Default for ObjectiveSpec {
    fn default() -> Self {
        Self {
            kind: ObjectiveKind::NEXT_TOKEN,
            mask_rate: 0.15,
            temperature: 0.05,
            pooling: Pooling::Mean,
            positives: Positives::Halves,
            pairs_file: None,
            hard_negatives: true,
            gen_weight: 1.0,
            uniformity_weight: 0.0,
            overlap_curriculum: 0.0,
            masked_warmup: 0.0,
            masked_weight: 0.0,
            lexical: 0.0,
            sts_file: None,
            options: BTreeMap::new(),
        }
    }
}

impl ObjectiveSpec {
    /// How the run turns a text into an embedding.
    pub fn embed_spec(&self) -> crate::eval::EmbedSpec {
        crate::eval::EmbedSpec {
            pooling: self.pooling,
            lexical: self.lexical,
        }
    }

    /// Whether step `step` (counted from 0) of a run of `total` steps trains the masked
    /// warm-up of a contrastive run rather than InfoNCE.
    pub fn in_masked_warmup(&self, step: usize, total: usize) -> bool {
        step < self.masked_warmup_steps(total)
    }

    /// Steps of a run of `total` steps that train the masked warm-up of a contrastive run
    /// (the first `ceil(masked_warmup * total)`; the worker's `progress = step / total` is
    /// below `masked_warmup` for exactly these); 0 for other objectives.
    pub fn masked_warmup_steps(&self, total: usize) -> usize {
        if self.kind == ObjectiveKind::CONTRASTIVE && self.masked_warmup > 0.0 {
            (self.masked_warmup * total as f64).ceil() as usize
        } else {
            0
        }
    }

    /// Whether an evaluation at `step` (after `step` steps) comes after at least one step
    /// trained the embeddings: before that, a pooled encoder's statistics say how an untrained
    /// or masked-only encoder looks, and are not judged for collapse.
    pub fn embeddings_trained_by(&self, step: usize, total: usize) -> bool {
        step > 0 && !self.in_masked_warmup(step - 1, total)
    }

    /// The registered implementation of [`ObjectiveSpec::kind`], or the error shown at
    /// `objective.kind` naming the known objectives.
    pub fn objective(&self) -> Result<Arc<dyn Objective>, SpecError> {
        self.kind.objective().ok_or_else(|| {
            let known: Vec<String> = ObjectiveKind::all()
                .iter()
                .map(|k| k.name().to_string())
                .collect();
            SpecError::new(
                "objective.kind",
                format!(
                    "unknown objective \"{}\" (known: {})",
                    self.kind.name(),
                    known.join(", ")
                ),
            )
        })
    }

    /// The attention the objective trains (and shows on the probe); causal for an unknown
    /// objective, which cannot train anyway.
    pub fn attention_mode(&self) -> AttentionMode {
        self.kind
            .objective()
            .map_or(AttentionMode::Causal, |o| o.attention_mode())
    }

    /// Whether the tokenizer must reserve `[pad] [mask] [cls] [sep]`: masking needs `[mask]`,
    /// labelled pairs need `[pad]`; windows of text need neither, so a contrastive or GRIT run on
    /// text can start from a next-token run's checkpoint.
    pub fn needs_specials(&self) -> bool {
        self.kind
            .objective()
            .is_some_and(|o| o.needs_specials(self))
    }

    /// Whether the objective trains the model to embed texts.
    pub fn uses_embeddings(&self) -> bool {
        self.kind.objective().is_some_and(|o| o.uses_embeddings())
    }

    /// Every setting the objective cannot train with, each naming its field (`dropout`: the
    /// model's dropout).
    pub fn validate(&self, dropout: f64) -> Vec<SpecError> {
        match self.objective() {
            Ok(objective) => objective.validate(self, dropout),
            Err(unknown) => vec![unknown],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_warm_up_is_the_steps_whose_progress_is_below_its_share() {
        for (share, total) in [
            (0.4, 1500),
            (0.4, 10),
            (0.5, 10),
            (0.33, 7),
            (0.9, 60),
            (0.0, 20),
        ] {
            let spec = ObjectiveSpec {
                kind: ObjectiveKind::CONTRASTIVE,
                masked_warmup: share,
                ..ObjectiveSpec::default()
            };
            // The worker trains the warm-up while `step / total` is below the share.
            let by_progress = (0..total)
                .filter(|&s| (s as f64 / total as f64) < share)
                .count();
            let judged = (0..total)
                .filter(|&s| spec.in_masked_warmup(s, total))
                .count();
            assert_eq!(
                spec.masked_warmup_steps(total),
                by_progress,
                "{share} of {total}"
            );
            assert_eq!(judged, by_progress, "{share} of {total}");
        }
        let grit = ObjectiveSpec {
            kind: ObjectiveKind::GRIT,
            masked_warmup: 0.4,
            ..ObjectiveSpec::default()
        };
        assert_eq!(
            grit.masked_warmup_steps(100),
            0,
            "only contrastive warms up"
        );
    }

    #[test]
    fn an_unknown_objective_is_refused_naming_the_known_ones() {
        let spec = ObjectiveSpec {
            kind: ObjectiveKind::new("no-such-objective"),
            ..ObjectiveSpec::default()
        };
        let errors = spec.validate(0.0);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "objective.kind");
        for kind in ObjectiveKind::BUILT_IN {
            assert!(
                errors[0].message.contains(kind.name()),
                "{} names {kind}",
                errors[0].message
            );
        }
    }

    #[test]
    fn option_names_match_their_value_enum_names() {
        use clap::ValueEnum;
        for p in Positives::ALL {
            let value = p.to_possible_value().expect("no variant is skipped");
            assert_eq!(value.get_name(), p.name());
            assert_eq!(Positives::parse(p.name()), Some(p));
        }
        for p in Pooling::ALL {
            let value = p.to_possible_value().expect("no variant is skipped");
            assert_eq!(value.get_name(), p.name());
            assert_eq!(Pooling::parse(p.name()), Some(p));
        }
        assert_eq!(
            Positives::value_variants().to_vec(),
            Positives::ALL.to_vec()
        );
        assert_eq!(Pooling::value_variants().to_vec(), Pooling::ALL.to_vec());
    }

    #[test]
    fn built_in_objectives_are_registered_in_order() {
        let all = ObjectiveKind::all();
        assert_eq!(
            &all[..ObjectiveKind::BUILT_IN.len()],
            ObjectiveKind::BUILT_IN
        );
        for kind in ObjectiveKind::BUILT_IN {
            let objective = kind.objective().expect("built in");
            assert_eq!(objective.kind(), kind);
        }
    }
}
