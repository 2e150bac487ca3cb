//! An objective registered from outside the engine and the studio gets its own chart labels
//! and its own setting in the studio: the studio draws what the objective describes, and no
//! line of studio code names it.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
mod harness;

use burn::tensor::{Device, Tensor};
use common::small_spec;
use egui_kittest::kittest::Queryable;
use hearth_engine::model::{AttentionMode, Model};
use hearth_engine::objective::{
    ChartCurve, Charts, CurveSource, Evaluation, LossQuantities, MetricKey, MetricsChart,
    Objective, ObjectiveKind, ObjectiveSpec, Setting, SettingKind, StepData, register,
};
use hearth_engine::project::{RunStatus, RunStore};
use hearth_engine::train::{BackendKind, EvalMetrics, StepMetrics};
use hearth_studio::{Action, StudioApp, Tab};
use rand::rngs::StdRng;
use std::path::Path;
use std::sync::Arc;

/// The test objective's name.
const KIND: &str = "studio-toy";

/// The share of tokens the toy gets right, as its evaluations report it.
const VAL_TOY_SHARE: MetricKey = MetricKey::new("val_toy_share");

/// An objective the studio has never heard of; the test only draws its stored runs.
struct Toy;

impl Objective for Toy {
    fn kind(&self) -> ObjectiveKind {
        ObjectiveKind::new(KIND)
    }

    fn attention_mode(&self) -> AttentionMode {
        AttentionMode::Causal
    }

    fn metrics(&self) -> &'static [MetricKey] {
        &[VAL_TOY_SHARE]
    }

    fn charts(&self, spec: &ObjectiveSpec) -> Charts {
        let mut charts = Charts::new(LossQuantities::both("toy sharpened loss"));
        charts.metrics_chart = MetricsChart::Together {
            title: "Toy balance: the share and the sharpened train loss",
            y_label: "toy units",
            curves: vec![
                ChartCurve {
                    legend: "toy share",
                    source: CurveSource::Metric(VAL_TOY_SHARE),
                },
                ChartCurve {
                    legend: "sharpness x train loss",
                    source: CurveSource::WeightedTrainLoss {
                        weight: spec.option("sharpness", 2.0),
                    },
                },
            ],
        };
        charts
    }

    fn step_loss_name(&self, spec: &ObjectiveSpec, _step: usize, _total: usize) -> String {
        format!("toy loss at sharpness {}", spec.option("sharpness", 2.0))
    }

    fn settings(&self) -> Vec<Setting> {
        vec![
            Setting::option(
                "sharpness",
                "Toy sharpness",
                2.0,
                SettingKind::Number {
                    range: 0.0..=10.0,
                    speed: 0.1,
                },
            )
            .with_help("How sharply the toy weighs its loss"),
        ]
    }

    fn train_loss(
        &self,
        _model: &Model,
        _data: &StepData<'_>,
        _rng: &mut StdRng,
        _device: &Device,
    ) -> Tensor<1> {
        unreachable!("the studio test draws stored runs and trains none")
    }

    fn evaluate(
        &self,
        _model: &Model,
        _data: &StepData<'_>,
        _rng: &mut StdRng,
        _device: &Device,
    ) -> Evaluation {
        unreachable!("the studio test draws stored runs and trains none")
    }
}

/// A finished run of the toy objective at sharpness 3, with two evaluations.
fn stored_run(project: &Path) {
    let mut spec = small_spec(BackendKind::preferred(), 10);
    spec.name = "toy-run".to_string();
    spec.objective.kind = ObjectiveKind::new(KIND);
    spec.objective.options.insert("sharpness".to_string(), 3.0);
    let store = RunStore::create(&project.join("runs").join("toy-run"), &spec).unwrap();
    for step in 1..=10usize {
        store
            .append_step(&StepMetrics {
                step,
                train_loss: 3.0 - 0.1 * step as f32,
                lr: 1e-3,
                grad_norm: 1.0,
                tokens_per_s: 1000.0,
                elapsed_s: step as f64,
                tokens_seen: 64 * step as u64,
            })
            .unwrap();
    }
    for (step, share) in [(5, 0.2), (10, 0.4)] {
        store
            .append_eval(&EvalMetrics {
                step,
                train_loss: 2.5,
                val_loss: 2.6,
                elapsed_s: step as f64,
                extra: vec![(VAL_TOY_SHARE.name().to_string(), share)],
            })
            .unwrap();
    }
    store.set_status(&RunStatus::Finished).unwrap();
}

/// The studio on a project holding the toy run, and the run's place in the list.
fn toy_run_open() -> (
    tempfile::TempDir,
    egui_kittest::Harness<'static, StudioApp>,
    usize,
) {
    register(Arc::new(Toy));
    let dir = tempfile::tempdir().unwrap();
    stored_run(dir.path());
    let mut harness = harness::studio(dir.path());
    harness.run_steps(2);
    let index = harness
        .state()
        .runs()
        .iter()
        .position(|r| r.spec.name == "toy-run")
        .expect("the toy run is listed");
    (dir, harness, index)
}

#[test]
fn the_monitor_names_the_charts_as_the_objective_describes_them() {
    let (_dir, mut harness, index) = toy_run_open();
    harness.state_mut().apply(Action::Monitor(index));
    harness.run_steps(3);
    harness.get_by_label("Toy sharpened loss");
    harness.get_by_label("Toy balance: the share and the sharpened train loss");
    assert!(
        harness
            .query_by_label("Objective metric (validation)")
            .is_none(),
        "the toy draws its metrics together, not one at a time"
    );
    // The step's loss is named as the objective says, in the run list and on the Monitor.
    let named = harness
        .query_all_by_label_contains("toy loss at sharpness 3")
        .count();
    assert!(named >= 2, "named in {named} places");
}

#[test]
fn run_setup_shows_the_objectives_own_setting() {
    let (_dir, mut harness, index) = toy_run_open();
    harness.state_mut().apply(Action::CloneSettings(index));
    harness.run_steps(3);
    assert_eq!(harness.state().prefs().tab, Tab::Setup);
    harness.get_by_label("Toy sharpness");
    assert!(
        harness.query_by_label("Mask rate").is_none(),
        "only the toy's own settings are shown"
    );
    let draft = &harness.state().project().file.draft.objective;
    assert_eq!(draft.option("sharpness", 2.0), 3.0);
}
