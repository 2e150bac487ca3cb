//! Helpers shared by the integration tests.
#![allow(dead_code)]

use hearth_engine::data::{DataSource, DataSpec, TokenizerKind};
use hearth_engine::model::ModelSpec;
use hearth_engine::spec::{RunSpec, TrainSpec};
use hearth_engine::train::{BackendKind, OptimSpec, RunEvent, RunHandle};
use std::time::{Duration, Instant};

/// A small, fast run on built-in generated text.
pub fn small_spec(backend: BackendKind, steps: usize) -> RunSpec {
    RunSpec {
        name: "small".into(),
        data: DataSpec {
            source: DataSource::Generated {
                seed: 3,
                n_chars: 60_000,
            },
            tokenizer: TokenizerKind::Char,
            val_fraction: 0.1,
            shards: None,
        },
        model: ModelSpec {
            n_layer: 2,
            n_head: 2,
            d_model: 64,
            context: 32,
            dropout: 0.0,
            tie_weights: true,
            bias: false,
            relation_classes: 0,
            ..ModelSpec::default()
        },
        optim: OptimSpec {
            lr: 3e-3,
            min_lr: 3e-4,
            warmup_steps: 20,
            ..OptimSpec::default()
        },
        train: TrainSpec {
            batch_size: 16,
            grad_accum: 1,
            devices: String::new(),
            world_size: 1,
            steps,
            eval_interval: 50,
            eval_batches: 4,
            seed: 11,
            backend,
            threads: 1,
            checkpoint_interval: 0,
            attention_interval: 50,
            dynamics_interval: 10,
            sample_tokens: 20,
            probe_text: String::new(),
        },
        ..RunSpec::default()
    }
}

/// Every event of a run until it ends (or `timeout` passes, which fails the test).
pub fn collect_events(handle: &RunHandle, timeout: Duration) -> Vec<RunEvent> {
    let deadline = Instant::now() + timeout;
    let mut events = Vec::new();
    while Instant::now() < deadline {
        match handle.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(event)) => {
                let done = event.is_terminal();
                events.push(event);
                if done {
                    return events;
                }
            }
            Ok(None) => {}
            Err(_gone) => return events,
        }
    }
    panic!(
        "run did not end within {timeout:?}; {} events so far",
        events.len()
    );
}

/// Trains `spec` in a new temporary folder (its run in `run/`) until it ends; fails the test
/// unless it finished. The folder lives as long as the returned guard.
pub fn train_to_end(spec: RunSpec) -> (tempfile::TempDir, Vec<RunEvent>) {
    let dir = tempfile::tempdir().unwrap();
    let handle = hearth_engine::train::spawn_run(spec, &dir.path().join("run"), None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(600));
    assert!(
        matches!(events.last(), Some(RunEvent::Finished(_))),
        "{:?}",
        events.last()
    );
    (dir, events)
}

/// The evaluations among a run's events, in order.
pub fn evals(events: &[RunEvent]) -> Vec<&hearth_engine::events::EvalMetrics> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Eval(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// The backends the engine tests train on: every one available here except CUDA.
pub fn backends_to_test() -> Vec<BackendKind> {
    BackendKind::available()
        .into_iter()
        .filter(|b| *b != BackendKind::LibtorchCuda)
        .collect()
}

/// The four run folders of [`project_with_damaged_runs`].
pub struct DamagedProject {
    /// A run whose files all read.
    pub healthy: std::path::PathBuf,
    /// A run whose `spec.json` is cut off mid-way.
    pub bad_spec: std::path::PathBuf,
    /// A run whose `run.sqlite` is overwritten with other bytes.
    pub bad_db: std::path::PathBuf,
    /// A run whose newest checkpoint is truncated.
    pub bad_checkpoint: std::path::PathBuf,
}

/// A project in `dir` with four finished ten-step runs, three of them then damaged one file
/// each.
pub fn project_with_damaged_runs(dir: &std::path::Path) -> DamagedProject {
    let project = hearth_engine::project::Project::open_or_create(dir).unwrap();
    let run = |name: &str| {
        let mut spec = small_spec(BackendKind::preferred(), 10);
        spec.name = name.to_string();
        spec.model.n_layer = 1;
        let run_dir = project.new_run_dir(name);
        let handle = hearth_engine::train::spawn_run(spec, &run_dir, None).unwrap();
        let events = collect_events(&handle, Duration::from_secs(120));
        assert!(
            matches!(events.last(), Some(RunEvent::Finished(_))),
            "{name}: {:?}",
            events.last()
        );
        run_dir
    };
    let runs = DamagedProject {
        healthy: run("healthy"),
        bad_spec: run("bad-spec"),
        bad_db: run("bad-db"),
        bad_checkpoint: run("bad-checkpoint"),
    };
    let spec = runs.bad_spec.join("spec.json");
    let text = std::fs::read(&spec).unwrap();
    std::fs::write(&spec, &text[..text.len() / 2]).unwrap();
    let db = runs.bad_db.join("run.sqlite");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0x5a_u8; len.max(4096)]).unwrap();
    for extra in ["run.sqlite-wal", "run.sqlite-shm"] {
        let _ = std::fs::remove_file(runs.bad_db.join(extra));
    }
    let checkpoint = runs.bad_checkpoint.join("checkpoints/step-000010.bpk");
    let bytes = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 3]).unwrap();
    runs
}

/// The spec of a small next-token run (1 layer, 2 heads, 32 wide, context 64) on an SFT
/// dataset of 300 generated arithmetic problems in `tokenizer`'s tokens, named `base`.
pub fn arithmetic_sft_spec(tokenizer: TokenizerKind) -> RunSpec {
    use hearth_engine::data::dataset::{DatasetRecipe, SourceSpec, TransformKind};
    use hearth_engine::data::sources::{Generator, SourceKind};
    let recipe = DatasetRecipe {
        name: "arith".into(),
        sources: vec![SourceSpec::new(SourceKind::Generated {
            generator: Generator::Arithmetic,
            seed: 1,
            size: 300,
        })],
        tokenizer,
        transform: TransformKind::Sft.default_spec(),
        ..DatasetRecipe::default()
    };
    RunSpec {
        name: "base".into(),
        data: DataSpec {
            source: DataSource::Dataset {
                recipe: Box::new(recipe),
                folder: None,
            },
            ..DataSpec::default()
        },
        model: ModelSpec {
            n_layer: 1,
            n_head: 2,
            d_model: 32,
            context: 64,
            ..ModelSpec::default()
        },
        ..RunSpec::default()
    }
}

/// Next-token training whose loss is not a number from a run's third step on (`progress` at
/// least 0.04, which is step 3 of a 50-step run): a run that diverges by construction,
/// whatever the machine.
struct DivergesAtStep3;

impl hearth_engine::objective::Objective for DivergesAtStep3 {
    fn kind(&self) -> hearth_engine::objective::ObjectiveKind {
        hearth_engine::objective::ObjectiveKind::new("test-diverges-at-step-3")
    }
    fn attention_mode(&self) -> hearth_engine::model::AttentionMode {
        hearth_engine::model::AttentionMode::Causal
    }
    fn train_loss(
        &self,
        model: &hearth_engine::model::Model,
        data: &hearth_engine::objective::StepData<'_>,
        rng: &mut rand::rngs::StdRng,
        device: &burn::tensor::Device,
    ) -> burn::tensor::Tensor<1> {
        use hearth_engine::objective::next_token::NextToken;
        let loss = NextToken.train_loss(model, data, rng, device);
        if data.progress >= 0.04 {
            loss.mul_scalar(f32::NAN)
        } else {
            loss
        }
    }
    fn evaluate(
        &self,
        model: &hearth_engine::model::Model,
        data: &hearth_engine::objective::StepData<'_>,
        rng: &mut rand::rngs::StdRng,
        device: &burn::tensor::Device,
    ) -> hearth_engine::objective::Evaluation {
        hearth_engine::objective::next_token::NextToken.evaluate(model, data, rng, device)
    }
}

/// Registers the objective of a run that diverges at its third step (50 steps) and returns
/// its name.
pub fn diverges_at_step_3() -> hearth_engine::objective::ObjectiveKind {
    use hearth_engine::objective::Objective;
    hearth_engine::objective::register(std::sync::Arc::new(DivergesAtStep3));
    DivergesAtStep3.kind()
}
