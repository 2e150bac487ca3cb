//! What an objective's charts are called and show, and the settings it reads, so that the
//! studio draws and edits any registered objective without knowing it by name.
//!
//! An [`Objective`](super::Objective) describes itself through [`Objective::charts`],
//! [`Objective::step_loss_name`], [`Objective::train_curve_note`],
//! [`Objective::metric_note`] and [`Objective::settings`]; each has a default, so an
//! objective registered outside the engine gets sensible charts and adds only what it needs.
//!
//! [`Objective::charts`]: super::Objective::charts
//! [`Objective::step_loss_name`]: super::Objective::step_loss_name
//! [`Objective::train_curve_note`]: super::Objective::train_curve_note
//! [`Objective::metric_note`]: super::Objective::metric_note
//! [`Objective::settings`]: super::Objective::settings

use super::{MetricKey, ObjectiveSpec};
use std::borrow::Cow;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// A measured quantity: curves with the same `key` may share a chart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity {
    /// Equal for curves that measure the same thing.
    pub key: String,
    /// What a chart title or axis calls it ("next-token loss").
    pub label: String,
}

impl Quantity {
    /// A quantity keyed by its label.
    pub fn same(label: impl Into<String>) -> Self {
        let label = label.into();
        Self {
            key: label.clone(),
            label,
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

impl LossQuantities {
    /// Training and validation measure the same loss, called `label`.
    pub fn both(label: impl Into<String>) -> Self {
        let same = Quantity::same(label);
        Self {
            train: same.clone(),
            val: same,
        }
    }
}

/// A term of the step loss drawn as the training curve when a run recorded its terms, because
/// it is the quantity validation measures (a contrastive run's InfoNCE term).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainTerm {
    /// The term as recorded with each step.
    pub key: MetricKey,
    /// The legend of its raw curve.
    pub raw_legend: Cow<'static, str>,
    /// The legend of its smoothed curve.
    pub smoothed_legend: Cow<'static, str>,
}

/// A term of the step loss drawn on a chart of its own (a contrastive run's masked-token term).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermChart {
    /// The term as recorded with each step.
    pub key: MetricKey,
    /// The line above the chart, saying how the term enters the step loss.
    pub caption: String,
    /// What the term measures: the y axis and, with "(raw)" or "(smoothed)", the legends.
    pub label: Cow<'static, str>,
}

/// How the validation values of the training curve's quantity are found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValidationAsTrain {
    /// The validation loss measures what training does.
    ValLoss,
    /// Training sums a validation metric and the weighted validation loss (GRIT's total
    /// `L_emb + lambda * L_gen`): `metric + val_loss_weight * val_loss`.
    Sum {
        /// The metric added to the weighted validation loss.
        metric: MetricKey,
        /// The weight of the validation loss.
        val_loss_weight: f64,
    },
}

/// Where a curve of a combined metrics chart takes its values, one per evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CurveSource {
    /// A metric the objective reports.
    Metric(MetricKey),
    /// The evaluation's training loss times `weight`.
    WeightedTrainLoss {
        /// The factor applied to each value.
        weight: f64,
    },
}

/// One curve of a combined metrics chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartCurve {
    /// Its legend.
    pub legend: &'static str,
    /// Its values.
    pub source: CurveSource,
}

/// What the chart of an objective's metrics shows.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsChart {
    /// One validation metric at a time (accuracy, recall, MRR are different quantities),
    /// chosen above the chart, with its reference lines.
    OneAtATime,
    /// Curves that measure one quantity, drawn together (GRIT's loss balance).
    Together {
        /// The chart's title.
        title: &'static str,
        /// The y axis.
        y_label: &'static str,
        /// The curves, in legend order.
        curves: Vec<ChartCurve>,
    },
}

/// One chart of an objective's health metrics: its title, its axis and the metrics it draws
/// with their legends, all in the axis's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChart {
    /// What the chart measures.
    pub title: &'static str,
    /// The y axis.
    pub y_label: &'static str,
    /// The curves it draws: `(metric, legend)`.
    pub series: &'static [(MetricKey, &'static str)],
}

/// A line of text under a chart's title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartNote {
    /// What it says.
    pub text: String,
    /// Whether it warns (the curve is not what its title says) rather than explains.
    pub warning: bool,
}

/// What the charts of a run are called and show.
#[derive(Debug, Clone, PartialEq)]
pub struct Charts {
    /// What the training and validation losses measure.
    pub losses: LossQuantities,
    /// The step-loss term drawn as the training curve when the run recorded its terms.
    pub train_term: Option<TrainTerm>,
    /// What the training curve measures in a run that recorded no terms, where that differs
    /// from [`Charts::losses`]' `train` (a weighted mix of terms).
    pub untermed_train: Option<Quantity>,
    /// How the validation values of the training curve's quantity are found.
    pub validation: ValidationAsTrain,
    /// Whether the reference lines of the validation loss (count models, which measure the
    /// next-token loss) belong on the loss chart.
    pub loss_references: bool,
    /// The step-loss terms drawn on charts of their own.
    pub term_charts: Vec<TermChart>,
    /// The metric name the validation loss goes by beside the evaluation's other metrics,
    /// when it is one part of what the run trains (GRIT: `val_gen_loss`).
    pub val_loss_metric: Option<&'static str>,
    /// What the metrics chart shows.
    pub metrics_chart: MetricsChart,
    /// Charts of health metrics, one quantity each, drawn when the run reported them.
    pub health_charts: &'static [HealthChart],
    /// The title above the health charts.
    pub health_title: &'static str,
    /// What the embedding map's two groups of points are (group 0, group 1).
    pub map_groups: [&'static str; 2],
}

impl Charts {
    /// A run that trains and validates `losses`, with no terms, one metric at a time and no
    /// health charts.
    pub fn new(losses: LossQuantities) -> Self {
        Self {
            losses,
            train_term: None,
            untermed_train: None,
            validation: ValidationAsTrain::ValLoss,
            loss_references: true,
            term_charts: Vec::new(),
            val_loss_metric: None,
            metrics_chart: MetricsChart::OneAtATime,
            health_charts: &[],
            health_title: "Health (held-out data)",
            map_groups: ["query halves", "positive halves"],
        }
    }

    /// Every step-loss term the charts draw.
    pub fn term_keys(&self) -> impl Iterator<Item = MetricKey> + '_ {
        self.train_term
            .iter()
            .map(|t| t.key)
            .chain(self.term_charts.iter().map(|t| t.key))
    }

    /// Whether `name` is drawn on a health chart rather than with the objective's metrics.
    pub fn is_health_metric(&self, name: &str) -> bool {
        self.health_charts
            .iter()
            .any(|c| c.series.iter().any(|(metric, _)| metric.name() == name))
    }

    /// The validation values of the training curve's quantity, one per evaluation, from the
    /// validation losses `val` and the evaluations' metrics (`metric`); `None` when a part
    /// they are rebuilt from was not recorded.
    pub fn validation_as_train<'a>(
        &self,
        val: &'a [f64],
        metric: impl Fn(MetricKey) -> Option<&'a [f64]>,
    ) -> Option<Cow<'a, [f64]>> {
        match self.validation {
            ValidationAsTrain::ValLoss => Some(Cow::Borrowed(val)),
            ValidationAsTrain::Sum {
                metric: key,
                val_loss_weight,
            } => {
                let parts = metric(key)?;
                Some(Cow::Owned(
                    parts
                        .iter()
                        .zip(val)
                        .map(|(part, v)| part + val_loss_weight * v)
                        .collect(),
                ))
            }
        }
    }
}

/// How a setting is edited.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingKind {
    /// A number in `range`, dragged by `speed` per point.
    Number {
        /// The values allowed.
        range: RangeInclusive<f64>,
        /// Change per point dragged.
        speed: f64,
    },
    /// A positive number in `range` on a logarithmic slider.
    LogNumber {
        /// The values allowed (both ends positive).
        range: RangeInclusive<f64>,
    },
    /// A whole number in `range`.
    Integer {
        /// The values allowed.
        range: RangeInclusive<i64>,
    },
    /// On or off, with `text` beside the box.
    Flag {
        /// The words beside the check box.
        text: &'static str,
    },
    /// One of `options`.
    Choice {
        /// The names offered, in order.
        options: Vec<&'static str>,
    },
    /// Free text (a file name), with `hint` shown while it is empty.
    Text {
        /// The greyed text of an empty field.
        hint: &'static str,
    },
    /// A path to an existing file, typed or chosen in a file dialog; `hint` is shown while it
    /// is empty.
    File {
        /// The greyed text of an empty field.
        hint: &'static str,
    },
}

/// A setting's value as Run setup edits it.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    /// [`SettingKind::Number`], [`SettingKind::LogNumber`] and [`SettingKind::Integer`].
    Number(f64),
    /// [`SettingKind::Flag`].
    Flag(bool),
    /// [`SettingKind::Choice`] and [`SettingKind::Text`].
    Text(String),
}

type ReadFn = Arc<dyn Fn(&ObjectiveSpec) -> SettingValue + Send + Sync>;
type WriteFn = Arc<dyn Fn(&mut ObjectiveSpec, SettingValue) + Send + Sync>;

/// One setting of an objective: what Run setup calls it, explains and edits, and how it is
/// read from and written to the run's [`ObjectiveSpec`].
#[derive(Clone)]
pub struct Setting {
    /// Its name in the spec: errors about it are reported at `objective.<key>`.
    pub key: Cow<'static, str>,
    /// The row's label.
    pub label: Cow<'static, str>,
    /// What it does, shown on hover (empty: nothing shown).
    pub help: Cow<'static, str>,
    /// How it is edited.
    pub kind: SettingKind,
    read: ReadFn,
    write: WriteFn,
    shown: fn(&ObjectiveSpec) -> bool,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("label", &self.label)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Setting {
    fn with(
        key: impl Into<Cow<'static, str>>,
        label: impl Into<Cow<'static, str>>,
        kind: SettingKind,
        read: ReadFn,
        write: WriteFn,
    ) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            help: Cow::Borrowed(""),
            kind,
            read,
            write,
            shown: |_| true,
        }
    }

    /// A number kept in a field of the spec.
    pub fn number(
        key: &'static str,
        label: &'static str,
        kind: SettingKind,
        read: fn(&ObjectiveSpec) -> f64,
        write: fn(&mut ObjectiveSpec, f64),
    ) -> Self {
        Self::with(
            key,
            label,
            kind,
            Arc::new(move |spec: &ObjectiveSpec| SettingValue::Number(read(spec))),
            Arc::new(move |spec: &mut ObjectiveSpec, value: SettingValue| {
                if let SettingValue::Number(v) = value {
                    write(spec, v);
                }
            }),
        )
    }

    /// An on/off setting kept in a field of the spec.
    pub fn flag(
        key: &'static str,
        label: &'static str,
        text: &'static str,
        read: fn(&ObjectiveSpec) -> bool,
        write: fn(&mut ObjectiveSpec, bool),
    ) -> Self {
        Self::with(
            key,
            label,
            SettingKind::Flag { text },
            Arc::new(move |spec: &ObjectiveSpec| SettingValue::Flag(read(spec))),
            Arc::new(move |spec: &mut ObjectiveSpec, value: SettingValue| {
                if let SettingValue::Flag(v) = value {
                    write(spec, v);
                }
            }),
        )
    }

    /// A choice among `options` kept in a field of the spec; `write` ignores names it does
    /// not know.
    pub fn choice(
        key: &'static str,
        label: &'static str,
        options: Vec<&'static str>,
        read: fn(&ObjectiveSpec) -> &'static str,
        write: fn(&mut ObjectiveSpec, &str),
    ) -> Self {
        Self::with(
            key,
            label,
            SettingKind::Choice { options },
            Arc::new(move |spec: &ObjectiveSpec| SettingValue::Text(read(spec).to_string())),
            Arc::new(move |spec: &mut ObjectiveSpec, value: SettingValue| {
                if let SettingValue::Text(v) = value {
                    write(spec, &v);
                }
            }),
        )
    }

    /// Free text kept in a field of the spec.
    pub fn text(
        key: &'static str,
        label: &'static str,
        hint: &'static str,
        read: fn(&ObjectiveSpec) -> String,
        write: fn(&mut ObjectiveSpec, String),
    ) -> Self {
        Self::with(
            key,
            label,
            SettingKind::Text { hint },
            Arc::new(move |spec: &ObjectiveSpec| SettingValue::Text(read(spec))),
            Arc::new(move |spec: &mut ObjectiveSpec, value: SettingValue| {
                if let SettingValue::Text(v) = value {
                    write(spec, v);
                }
            }),
        )
    }

    /// A file path ([`SettingKind::File`]): read and written as text, empty for none.
    pub fn file(
        key: &'static str,
        label: &'static str,
        hint: &'static str,
        read: fn(&ObjectiveSpec) -> Option<&std::path::Path>,
        write: fn(&mut ObjectiveSpec, Option<std::path::PathBuf>),
    ) -> Self {
        Self::with(
            key,
            label,
            SettingKind::File { hint },
            Arc::new(move |spec: &ObjectiveSpec| {
                SettingValue::Text(
                    read(spec)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                )
            }),
            Arc::new(move |spec: &mut ObjectiveSpec, value: SettingValue| {
                if let SettingValue::Text(v) = value {
                    write(spec, (!v.is_empty()).then(|| std::path::PathBuf::from(v)));
                }
            }),
        )
    }

    /// The STS file setting of embedding objectives ([`ObjectiveSpec::sts_file`]).
    pub fn sts_file() -> Self {
        Self::file(
            "sts_file",
            "STS file",
            "sts.tsv or sts.jsonl (optional)",
            |o| o.sts_file.as_deref(),
            |o, path| o.sts_file = path,
        )
        .with_help(
            "Scored sentence pairs (STS benchmark tab-separated, or JSONL a, b, score) every \
             evaluation embeds; their Spearman and Pearson go on the metrics chart",
        )
    }

    /// A number kept in the spec's [`ObjectiveSpec::options`] under `key` (`default` while
    /// unset), for objectives whose settings have no field of their own. `kind` is a number
    /// kind or [`SettingKind::Flag`] (stored as 0 or 1).
    pub fn option(
        key: impl Into<Cow<'static, str>>,
        label: impl Into<Cow<'static, str>>,
        default: f64,
        kind: SettingKind,
    ) -> Self {
        let key: Cow<'static, str> = key.into();
        let flag = matches!(kind, SettingKind::Flag { .. });
        let read_key = key.to_string();
        let write_key = key.to_string();
        Self::with(
            key,
            label,
            kind,
            Arc::new(move |spec: &ObjectiveSpec| {
                let value = spec.option(&read_key, default);
                if flag {
                    SettingValue::Flag(value != 0.0)
                } else {
                    SettingValue::Number(value)
                }
            }),
            Arc::new(move |spec: &mut ObjectiveSpec, value: SettingValue| {
                let number = match value {
                    SettingValue::Number(v) => v,
                    SettingValue::Flag(on) => f64::from(u8::from(on)),
                    SettingValue::Text(_) => return,
                };
                spec.options.insert(write_key.clone(), number);
            }),
        )
    }

    /// This setting with `help` shown on hover.
    pub fn with_help(mut self, help: impl Into<Cow<'static, str>>) -> Self {
        self.help = help.into();
        self
    }

    /// This setting shown only for specs where `shown` holds (the pairs file only with
    /// labelled pairs).
    pub fn shown_when(mut self, shown: fn(&ObjectiveSpec) -> bool) -> Self {
        self.shown = shown;
        self
    }

    /// The field errors about this setting are reported at (`objective.mask_rate`).
    pub fn field(&self) -> String {
        format!("objective.{}", self.key)
    }

    /// Whether Run setup shows this setting for `spec`.
    pub fn is_shown(&self, spec: &ObjectiveSpec) -> bool {
        (self.shown)(spec)
    }

    /// The setting's value in `spec`.
    pub fn read(&self, spec: &ObjectiveSpec) -> SettingValue {
        (self.read)(spec)
    }

    /// Sets the setting in `spec` to `value` (a value of another kind is ignored).
    pub fn write(&self, spec: &mut ObjectiveSpec, value: SettingValue) {
        (self.write)(spec, value)
    }
}

impl ObjectiveSpec {
    /// The value of the generic option `key`, or `default` while it is unset.
    pub fn option(&self, key: &str, default: f64) -> f64 {
        self.options.get(key).copied().unwrap_or(default)
    }

    /// What the charts of a run with this spec are called and show; for an objective that is
    /// not registered, one loss named after it.
    pub fn charts(&self) -> Charts {
        match self.kind.objective() {
            Some(objective) => objective.charts(self),
            None => Charts::new(LossQuantities::both(format!("{} loss", self.kind.name()))),
        }
    }

    /// What the loss of step `step` (of `total`) measures, in a few words, for the places
    /// that print one step's loss beside its value.
    pub fn step_loss_name(&self, step: usize, total: usize) -> String {
        match self.kind.objective() {
            Some(objective) => objective.step_loss_name(self, step, total),
            None => self.charts().losses.train.label,
        }
    }

    /// A line under the loss chart's title saying what its training curve measures (see
    /// [`Objective::train_curve_note`](super::Objective::train_curve_note)).
    pub fn train_curve_note(&self, total_steps: usize, terms_recorded: bool) -> Option<ChartNote> {
        self.kind
            .objective()
            .and_then(|o| o.train_curve_note(self, total_steps, terms_recorded))
    }

    /// A line above the metrics chart when it shows `metric` (see
    /// [`Objective::metric_note`](super::Objective::metric_note)).
    pub fn metric_note(&self, metric: &str) -> Option<String> {
        self.kind
            .objective()
            .and_then(|o| o.metric_note(self, metric))
    }

    /// The settings of the objective, in the order Run setup shows them.
    pub fn settings(&self) -> Vec<Setting> {
        self.kind
            .objective()
            .map(|o| o.settings())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::ObjectiveKind;
    use super::*;

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
            grit.step_loss_name(10, 100),
            "total loss (L_emb + 16·L_gen)"
        );
        let contrastive = ObjectiveSpec {
            masked_warmup: 0.4,
            masked_weight: 2.0,
            ..spec(ObjectiveKind::CONTRASTIVE)
        };
        assert_eq!(
            contrastive.step_loss_name(39, 100),
            "masked-token loss (warm-up)"
        );
        assert_eq!(
            contrastive.step_loss_name(40, 100),
            "InfoNCE + 2 × masked-token loss"
        );
        assert_eq!(
            spec(ObjectiveKind::NEXT_TOKEN).step_loss_name(5, 100),
            "next-token loss"
        );
    }

    #[test]
    fn grit_trains_a_total_and_validates_a_next_token_loss() {
        let next = spec(ObjectiveKind::NEXT_TOKEN).charts().losses;
        let grit = spec(ObjectiveKind::GRIT).charts().losses;
        assert_eq!(next.train, next.val, "next-token trains what it validates");
        assert_ne!(grit.train, grit.val, "GRIT's step loss is the total");
        assert_eq!(grit.val, next.val, "GRIT's validation loss is comparable");
        assert_ne!(grit.train, next.train, "but its training loss is not");
        assert!(grit.train.label.contains("L_emb"), "{}", grit.train.label);
        let mut heavier = spec(ObjectiveKind::GRIT);
        heavier.gen_weight *= 2.0;
        assert_ne!(
            heavier.charts().losses.train.key,
            grit.train.key,
            "another lambda is another total"
        );
    }

    #[test]
    fn grit_validation_total_is_rebuilt_from_its_parts() {
        let mut grit = spec(ObjectiveKind::GRIT);
        grit.gen_weight = 0.5;
        let emb = [1.0];
        let val = [3.0];
        let parts = |key: MetricKey| (key == MetricKey::VAL_EMB_LOSS).then_some(&emb[..]);
        let total = grit
            .charts()
            .validation_as_train(&val, parts)
            .expect("the parts were recorded");
        assert_eq!(total.as_ref(), &[1.0 + 0.5 * 3.0]);
        assert!(grit.charts().validation_as_train(&val, |_| None).is_none());
        let next = spec(ObjectiveKind::NEXT_TOKEN).charts();
        assert_eq!(
            next.validation_as_train(&val, parts).as_deref(),
            Some(&[3.0][..]),
            "other objectives validate their training loss"
        );
    }

    #[test]
    fn built_in_settings_read_and_write_their_fields() {
        for kind in ObjectiveKind::BUILT_IN {
            let mut o = spec(kind.clone());
            for setting in o.settings() {
                let value = setting.read(&o);
                setting.write(&mut o, value.clone());
                assert_eq!(setting.read(&o), value, "{kind} {}", setting.key);
            }
        }
        let mut masked = spec(ObjectiveKind::MASKED);
        let rate = masked
            .settings()
            .into_iter()
            .find(|s| s.key == "mask_rate")
            .expect("masked objectives set their mask rate");
        rate.write(&mut masked, SettingValue::Number(0.3));
        assert_eq!(masked.mask_rate, 0.3);
        assert_eq!(rate.field(), "objective.mask_rate");
    }

    #[test]
    fn generic_options_are_kept_by_name_and_saved_only_when_set() {
        let mut o = spec(ObjectiveKind::NEXT_TOKEN);
        let setting = Setting::option(
            "sharpness",
            "Sharpness",
            2.0,
            SettingKind::Number {
                range: 0.0..=10.0,
                speed: 0.1,
            },
        );
        assert_eq!(setting.read(&o), SettingValue::Number(2.0), "the default");
        let saved = serde_json::to_string(&o).expect("serializes");
        assert!(!saved.contains("options"), "{saved}");
        setting.write(&mut o, SettingValue::Number(4.5));
        assert_eq!(o.option("sharpness", 2.0), 4.5);
        let saved = serde_json::to_string(&o).expect("serializes");
        let loaded: ObjectiveSpec = serde_json::from_str(&saved).expect("loads");
        assert_eq!(loaded, o);
    }
}
