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
        },
        optim: OptimSpec {
            lr: 3e-3,
            min_lr: 3e-4,
            warmup_steps: 20,
            ..OptimSpec::default()
        },
        train: TrainSpec {
            batch_size: 16,
            steps,
            eval_interval: 50,
            eval_batches: 4,
            seed: 11,
            backend,
            threads: 1,
            checkpoint_interval: 0,
            attention_interval: 50,
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

/// The backends the engine tests train on: every one available here except CUDA.
pub fn backends_to_test() -> Vec<BackendKind> {
    BackendKind::available()
        .into_iter()
        .filter(|b| *b != BackendKind::LibtorchCuda)
        .collect()
}
