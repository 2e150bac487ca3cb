//! The training engine end to end: loss falls, attention is causal, runs persist, failures
//! are reported.

mod common;

use common::{backends_to_test, collect_events, small_spec};
use hearth_engine::model::{Model, ModelSpec};
use hearth_engine::project::{RunStatus, RunStore};
use hearth_engine::train::{BackendKind, RunEvent, spawn_run};
use std::time::Duration;

fn evals(events: &[RunEvent]) -> Vec<hearth_engine::train::EvalMetrics> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Eval(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn loss_falls_on_generated_text_on_every_backend() {
    let backends = backends_to_test();
    assert!(
        backends.contains(&BackendKind::Flex),
        "Flex is always built in"
    );
    #[cfg(feature = "libtorch")]
    assert!(
        backends.contains(&BackendKind::Libtorch),
        "LibTorch is built in"
    );
    for backend in backends {
        let dir = tempfile::tempdir().unwrap();
        let spec = small_spec(backend, 300);
        let vocab_ln = 40f32.ln();
        let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
        let events = collect_events(&handle, Duration::from_secs(600));
        let Some(RunEvent::Finished(summary)) = events.last() else {
            panic!("{backend:?}: run did not finish: {:?}", events.last());
        };
        let first_step = events
            .iter()
            .find_map(|e| match e {
                RunEvent::Step(m) => Some(m.train_loss),
                _ => None,
            })
            .unwrap();
        // At initialisation the loss is about ln(vocab); generated text is easy to learn.
        assert!(
            first_step > vocab_ln - 0.6,
            "{backend:?}: initial loss {first_step}"
        );
        assert!(
            summary.val_loss < 1.6,
            "{backend:?}: val loss {} after 300 steps should be well under the initial {first_step}",
            summary.val_loss
        );
        let curve = evals(&events);
        assert!(curve.len() >= 6, "an evaluation every 50 steps");
        assert!(curve.last().unwrap().val_loss < curve.first().unwrap().val_loss - 0.8);
        assert!(events.iter().any(|e| matches!(e, RunEvent::Attention(_))));
        assert!(events.iter().any(|e| matches!(e, RunEvent::Sample { .. })));
    }
}

#[test]
fn captured_attention_rows_sum_to_one_and_are_causal() {
    for backend in backends_to_test() {
        let device = backend.device().unwrap();
        let spec = ModelSpec {
            n_layer: 2,
            n_head: 3,
            d_model: 48,
            context: 16,
            ..ModelSpec::default()
        };
        let model = Model::new(&spec, 20, &device);
        let tokens: Vec<u32> = (0..16).map(|i| (i * 7 % 20) as u32).collect();
        let maps = model.capture_attention(
            &tokens,
            hearth_engine::model::AttentionMode::Causal,
            &device,
        );
        assert_eq!((maps.n_layer, maps.n_head, maps.seq), (2, 3, 16));
        for layer in 0..2 {
            for head in 0..3 {
                let map = maps.map(layer, head);
                for q in 0..16 {
                    let row = &map[q * 16..(q + 1) * 16];
                    let sum: f32 = row.iter().sum();
                    assert!(
                        (sum - 1.0).abs() < 1e-4,
                        "{backend:?} L{layer} H{head} row {q} sums to {sum}"
                    );
                    for (k, &w) in row.iter().enumerate().skip(q + 1) {
                        assert_eq!(
                            w, 0.0,
                            "{backend:?} L{layer} H{head}: query {q} sees future key {k}"
                        );
                    }
                    assert!(
                        row[..=q].iter().all(|&w| w > 0.0),
                        "past keys all get weight"
                    );
                }
            }
        }
    }
}

#[test]
fn a_finished_run_reloads_with_identical_history() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let handle = spawn_run(small_spec(BackendKind::Flex, 60), &run_dir, None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(300));
    drop(handle);
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Step(m) => Some(*m),
            _ => None,
        })
        .collect();
    let samples: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Sample { step, text } => Some((*step, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 60);
    let store = RunStore::open(&run_dir).unwrap();
    let history = store.load_history().unwrap();
    assert_eq!(history.steps, steps, "every step's metrics, bit for bit");
    assert_eq!(history.evals, evals(&events));
    assert_eq!(history.samples, samples);
    assert_eq!(store.status().unwrap(), RunStatus::Finished);
    assert_eq!(store.spec().unwrap(), small_spec(BackendKind::Flex, 60));
    let (step, path) = history
        .checkpoints
        .last()
        .expect("final checkpoint recorded");
    assert_eq!(*step, 60);
    assert!(path.exists(), "checkpoint file {} exists", path.display());
}

#[test]
fn a_diverging_run_fails_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut spec = small_spec(BackendKind::Flex, 50);
    spec.objective.kind = common::diverges_at_step_3();
    let handle = spawn_run(spec, &run_dir, None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(120));
    match events.last() {
        Some(RunEvent::Failed { reason, step }) => {
            assert!(
                reason.contains("became NaN at step 3") && reason.contains("diverged"),
                "reason: {reason}"
            );
            assert_eq!(*step, 2, "two steps were taken");
        }
        other => panic!("expected a failed run, got {other:?}"),
    }
    let store = RunStore::open(&run_dir).unwrap();
    let status = store.status().unwrap();
    assert!(
        matches!(status, RunStatus::Failed { .. }),
        "store says {status:?}"
    );
    assert_eq!(
        store.load_history().unwrap().steps.len(),
        2,
        "the steps before the divergence are kept"
    );
}

#[test]
fn pause_resume_and_stop_are_obeyed() {
    use hearth_engine::train::RunControl;
    let dir = tempfile::tempdir().unwrap();
    let handle = spawn_run(
        small_spec(BackendKind::Flex, 100_000),
        &dir.path().join("run"),
        None,
    )
    .unwrap();
    // Wait for training to be under way.
    loop {
        match handle.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(RunEvent::Step(_))) => break,
            Ok(_) => {}
            Err(gone) => panic!("{gone} early"),
        }
    }
    handle.send(RunControl::Pause);
    handle.send(RunControl::Resume);
    handle.send(RunControl::Stop);
    let events = collect_events(&handle, Duration::from_secs(120));
    assert!(events.iter().any(|e| matches!(e, RunEvent::Paused { .. })));
    assert!(events.iter().any(|e| matches!(e, RunEvent::Resumed { .. })));
    match events.last() {
        Some(RunEvent::Finished(summary)) => {
            assert!(summary.stopped_early);
            assert!(summary.step < 100, "stopped after {} steps", summary.step);
        }
        other => panic!("expected a stopped run, got {other:?}"),
    }
}

#[test]
fn impossible_settings_are_refused_before_any_folder_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut spec = small_spec(BackendKind::Flex, 10);
    spec.model.d_model = 65;
    spec.model.context = 0;
    let err = spawn_run(spec, &run_dir, None)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("model.d_model") && err.contains("not divisible"),
        "{err}"
    );
    assert!(err.contains("model.context"), "{err}");
    assert!(!run_dir.exists(), "nothing written for a refused run");
}

#[test]
fn a_resumed_run_continues_its_history_without_gaps_or_duplicates() {
    use hearth_engine::train::{RunControl, spawn_resume};
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut spec = small_spec(BackendKind::Flex, 60);
    spec.train.checkpoint_interval = 20;
    spec.train.eval_interval = 20;
    let handle = spawn_run(spec, &run_dir, None).unwrap();
    // Stop part way, after the checkpoint at step 20.
    let mut events = Vec::new();
    loop {
        match handle.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(event)) => {
                let stop = matches!(event, RunEvent::Step(m) if m.step == 27);
                events.push(event);
                if stop {
                    handle.send(RunControl::Stop);
                    break;
                }
            }
            Ok(None) => {}
            Err(gone) => panic!("{gone} early"),
        }
    }
    events.extend(collect_events(&handle, Duration::from_secs(120)));
    drop(handle);
    let store = RunStore::open(&run_dir).unwrap();
    let before = store.load_history().unwrap();
    let stopped_at = before.steps.last().unwrap().step;
    assert!((27..60).contains(&stopped_at), "stopped at {stopped_at}");
    assert_eq!(store.status().unwrap(), RunStatus::Stopped);
    // Lose the checkpoint written at the stop, as a crash would: resuming must fall back to
    // step 20 and drop the steps after it.
    let (last_ckpt_step, last_ckpt) = before.checkpoints.last().unwrap().clone();
    assert_eq!(last_ckpt_step, stopped_at);
    std::fs::remove_file(&last_ckpt).unwrap();

    let handle = spawn_resume(&run_dir, None).unwrap();
    let resumed = collect_events(&handle, Duration::from_secs(300));
    drop(handle);
    let Some(RunEvent::Finished(summary)) = resumed.last() else {
        panic!("resumed run did not finish: {:?}", resumed.last());
    };
    assert_eq!(summary.step, 60);
    let first_resumed = resumed.iter().find_map(|e| match e {
        RunEvent::Step(m) => Some(m.step),
        _ => None,
    });
    assert_eq!(
        first_resumed,
        Some(21),
        "continues right after the checkpoint at step 20"
    );

    let after = RunStore::open(&run_dir).unwrap().load_history().unwrap();
    let steps: Vec<usize> = after.steps.iter().map(|m| m.step).collect();
    assert_eq!(
        steps,
        (1..=60).collect::<Vec<_>>(),
        "every step once, in order"
    );
    assert_eq!(
        &after.steps[..20],
        &before.steps[..20],
        "the history before the checkpoint is kept as it was"
    );
    let eval_steps: Vec<usize> = after.evals.iter().map(|e| e.step).collect();
    assert_eq!(eval_steps, vec![20, 40, 60]);
    assert!(
        after.steps[20].elapsed_s >= before.steps[19].elapsed_s,
        "time continues"
    );
    assert!(
        summary.val_loss < after.evals[0].val_loss,
        "training went on improving"
    );
}

#[test]
fn a_complete_checkpoint_the_store_never_listed_is_resumed_from() {
    use hearth_engine::train::{RunControl, spawn_resume};
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut spec = small_spec(BackendKind::Flex, 40);
    spec.train.checkpoint_interval = 10;
    spec.train.eval_interval = 20;
    let handle = spawn_run(spec, &run_dir, None).unwrap();
    loop {
        match handle.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(RunEvent::Step(m))) if m.step == 15 => {
                handle.send(RunControl::Stop);
                break;
            }
            Ok(_) => {}
            Err(gone) => panic!("{gone} early"),
        }
    }
    collect_events(&handle, Duration::from_secs(120));
    drop(handle);
    let before = RunStore::open(&run_dir).unwrap().load_history().unwrap();
    let (stopped_at, _) = *before.checkpoints.last().unwrap();
    assert!((15..40).contains(&stopped_at), "stopped at {stopped_at}");
    // As a run killed between the rename of its checkpoint into place and the store's row:
    // the files are complete, the row is missing.
    let db = rusqlite::Connection::open(run_dir.join("run.sqlite")).unwrap();
    db.execute(
        "DELETE FROM checkpoints WHERE step = ?1",
        [stopped_at as i64],
    )
    .unwrap();
    drop(db);

    let handle = spawn_resume(&run_dir, None).unwrap();
    let resumed = collect_events(&handle, Duration::from_secs(300));
    drop(handle);
    let first_resumed = resumed.iter().find_map(|e| match e {
        RunEvent::Step(m) => Some(m.step),
        _ => None,
    });
    assert_eq!(
        first_resumed,
        Some(stopped_at + 1),
        "continues from the checkpoint on disk, not the listed one at step 10"
    );
    let after = RunStore::open(&run_dir).unwrap().load_history().unwrap();
    let steps: Vec<usize> = after.steps.iter().map(|m| m.step).collect();
    assert_eq!(steps, (1..=40).collect::<Vec<_>>(), "every step once");
    assert!(
        after
            .checkpoints
            .iter()
            .any(|(step, _)| *step == stopped_at),
        "the store lists the checkpoint it resumed from"
    );
}

#[test]
fn bidirectional_attention_sees_both_ways_and_ignores_padding() {
    use burn::tensor::{Bool, Tensor, TensorData};
    use hearth_engine::model::AttentionMode;
    let device = BackendKind::Flex.device().unwrap();
    let spec = ModelSpec {
        n_layer: 1,
        n_head: 2,
        d_model: 16,
        context: 6,
        ..ModelSpec::default()
    };
    let model = Model::new(&spec, 11, &device);
    let maps = model.capture_attention(&[1, 2, 3, 4, 5, 6], AttentionMode::Bidirectional, &device);
    let map = maps.map(0, 1);
    assert!(map[5] > 0.0, "the first query sees the last key");
    // Padding: changing a padded token changes nothing for the others.
    let tokens = |last: i64| {
        Tensor::<2, burn::tensor::Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, last], [1, 4]),
            &device,
        )
    };
    let pad = || {
        Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, false, false, true], [1, 4]),
            &device,
        )
    };
    let a = model
        .hidden(tokens(7), AttentionMode::Bidirectional, Some(pad()))
        .narrow(1, 0, 3);
    let b = model
        .hidden(tokens(9), AttentionMode::Bidirectional, Some(pad()))
        .narrow(1, 0, 3);
    let diff: f32 = (a - b).abs().max().into_scalar();
    assert!(
        diff < 1e-6,
        "padded key leaked into other positions: {diff}"
    );
}

fn run_objective(kind: hearth_engine::objective::ObjectiveKind, steps: usize) -> Vec<RunEvent> {
    run_objective_with(kind, steps, |_| {})
}

fn run_objective_with(
    kind: hearth_engine::objective::ObjectiveKind,
    steps: usize,
    adjust: impl FnOnce(&mut hearth_engine::spec::RunSpec),
) -> Vec<RunEvent> {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = small_spec(BackendKind::preferred(), steps);
    spec.objective.kind = kind.clone();
    adjust(&mut spec);
    spec.train.eval_interval = steps / 3;
    spec.optim.lr = 2e-3;
    let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(600));
    assert!(
        matches!(events.last(), Some(RunEvent::Finished(_))),
        "{kind:?}: {:?}",
        events.last()
    );
    events
}

#[test]
fn masked_objective_learns_to_fill_in_characters() {
    let events = run_objective(hearth_engine::objective::ObjectiveKind::MASKED, 900);
    let curve = evals(&events);
    let (first, last) = (&curve[0], curve.last().unwrap());
    assert!(
        last.val_loss < first.val_loss - 0.5,
        "masked val loss {} -> {}",
        first.val_loss,
        last.val_loss
    );
    let acc = last
        .metric("val_masked_acc")
        .expect("masked accuracy reported");
    assert!(
        acc > 0.4,
        "masked-character accuracy {acc} on easy generated text"
    );
    assert!(
        !events.iter().any(|e| matches!(e, RunEvent::Sample { .. })),
        "a bidirectional model does not generate"
    );
}

/// A BPE vocabulary is trained once, saved with the dataset, and the run (and so its
/// checkpoints) uses exactly that tokenizer.
#[test]
fn a_saved_bpe_tokenizer_is_reused_by_runs() {
    use hearth_engine::data::dataset::{self, Dataset, DatasetRecipe, SourceSpec};
    use hearth_engine::data::sources::{Generator, SourceKind};
    let dir = tempfile::tempdir().unwrap();
    let recipe = DatasetRecipe {
        sources: vec![SourceSpec::new(SourceKind::Generated {
            generator: Generator::Stories,
            seed: 5,
            size: 30_000,
        })],
        tokenizer: hearth_engine::data::TokenizerKind::Bpe { vocab_size: 320 },
        ..DatasetRecipe::default()
    };
    let built = Dataset::build(&recipe, None, &|_, _| {}).unwrap();
    let folder = dir.path().join("datasets/stories");
    dataset::save(&folder, &built.recipe, &built.tokenizer).unwrap();
    let mut spec = small_spec(BackendKind::Flex, 4);
    spec.data.source = hearth_engine::data::DataSource::Dataset {
        recipe: Box::new(recipe),
        folder: Some(folder.clone()),
    };
    let run = dir.path().join("run");
    let handle = spawn_run(spec, &run, None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(120));
    assert!(
        matches!(events.last(), Some(RunEvent::Finished(_))),
        "{:?}",
        events.last()
    );
    let saved = hearth_engine::data::dataset::saved_tokenizer(&folder).unwrap();
    let used = hearth_engine::project::store::read_tokenizer(&run).unwrap();
    assert_eq!(used, saved, "the run trained with the dataset's tokenizer");
    assert_eq!(used.base_size(), 320);
    // A recipe edited since it was saved fits its own tokenizer.
    let mut edited = built.recipe.clone();
    edited.tokenizer = hearth_engine::data::TokenizerKind::Bpe { vocab_size: 300 };
    let data = hearth_engine::data::DataSpec {
        source: hearth_engine::data::DataSource::Dataset {
            recipe: Box::new(edited),
            folder: Some(folder.clone()),
        },
        ..hearth_engine::data::DataSpec::default()
    };
    let corpus = hearth_engine::data::Corpus::load(&data).unwrap();
    assert_eq!(corpus.tokenizer.base_size(), 300);
}

/// LinkBERT on generated linked documents: the joint loss falls and the relation accuracy is
/// reported from the relation head.
#[test]
fn linkbert_objective_trains_on_linked_documents() {
    use hearth_engine::data::dataset::{DatasetRecipe, LinkRecipe, SourceSpec, TransformSpec};
    use hearth_engine::data::sources::{Generator, SourceKind};
    let recipe = DatasetRecipe {
        sources: vec![SourceSpec::new(SourceKind::Generated {
            generator: Generator::LinkedDocs,
            seed: 3,
            size: 60,
        })],
        transform: TransformSpec::LinkBert {
            recipe: LinkRecipe {
                pairs: 2000,
                ..LinkRecipe::default()
            },
        },
        ..DatasetRecipe::default()
    };
    let events = run_objective_with(
        hearth_engine::objective::ObjectiveKind::LINKBERT,
        600,
        |spec| {
            spec.data.source = hearth_engine::data::DataSource::Dataset {
                recipe: Box::new(recipe),
                folder: None,
            };
            spec.model.context = 96;
        },
    );
    let vocab = events
        .iter()
        .find_map(|e| match e {
            RunEvent::Started { vocab, .. } => Some(*vocab),
            _ => None,
        })
        .unwrap();
    // Untrained: ln(vocab) for the masked tokens plus ln(3) for the relation.
    let untrained = (vocab as f32).ln() + 3f32.ln();
    let curve = evals(&events);
    let (first, last) = (&curve[0], curve.last().unwrap());
    assert!(
        last.val_loss < first.val_loss && last.val_loss < untrained - 1.0,
        "LinkBERT val loss {} -> {} (untrained {untrained})",
        first.val_loss,
        last.val_loss
    );
    let acc = last
        .metric("val_relation_acc")
        .expect("relation accuracy reported");
    assert!((0.0..=1.0).contains(&acc), "{acc}");
}

/// Dropout twins (SimCSE): the two views of a text must find each other among the batch.
/// (Half-window positives of generated sentences share almost nothing, so they cannot show
/// learning; their loss is checked against PyTorch in `tests/objectives.rs`.)
#[test]
fn contrastive_objective_learns_dropout_twins_and_reports_retrieval() {
    let events = run_objective_with(
        hearth_engine::objective::ObjectiveKind::CONTRASTIVE,
        240,
        |spec| {
            spec.objective.positives = hearth_engine::objective::Positives::Dropout;
            spec.model.dropout = 0.1;
        },
    );
    assert!(
        events.iter().any(
            |e| matches!(e, RunEvent::Warning { message, .. } if message.contains("ln(batch)"))
        ),
        "the initial-loss hint is shown"
    );
    let curve = evals(&events);
    let (first, last) = (&curve[0], curve.last().unwrap());
    assert!(
        last.train_loss < 0.5 * 16f32.ln(),
        "InfoNCE {} -> {} should fall well below ln(batch)",
        first.train_loss,
        last.train_loss
    );
    let r1 = last.metric("val_recall_at_1").unwrap();
    let r10 = last.metric("val_recall_at_10").unwrap();
    let mrr = last.metric("val_mrr").unwrap();
    assert!(
        r10 >= r1 && mrr >= r1 && mrr <= 1.0,
        "r1 {r1} r10 {r10} mrr {mrr}"
    );
}

/// A contrastive step that sums InfoNCE and a masked-token loss records each term, and the
/// run's history gives them back: the masked warm-up has only the masked term, the rest both,
/// and the step's loss is their sum at the masked weight.
#[test]
fn a_contrastive_run_records_the_terms_of_its_step_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = small_spec(BackendKind::preferred(), 40);
    spec.objective.kind = hearth_engine::objective::ObjectiveKind::CONTRASTIVE;
    spec.objective.positives = hearth_engine::objective::Positives::Halves;
    spec.objective.masked_warmup = 0.5;
    spec.objective.masked_weight = 0.5;
    spec.train.eval_interval = 20;
    let run_dir = dir.path().join("run");
    let handle = spawn_run(spec, &run_dir, None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(600));
    assert!(matches!(events.last(), Some(RunEvent::Finished(_))));
    let losses: std::collections::BTreeMap<usize, f32> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Step(m) => Some((m.step, m.train_loss)),
            _ => None,
        })
        .collect();
    let terms: Vec<(usize, Vec<(String, f64)>)> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepTerms { step, terms } => Some((*step, terms.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(terms.len(), 40, "every step sends its terms");
    let names = |t: &[(String, f64)]| t.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&terms[0].1),
        ["step_masked_loss"],
        "the warm-up is masked only"
    );
    assert_eq!(
        names(&terms[39].1),
        ["step_infonce", "step_masked_loss"],
        "after the warm-up both terms"
    );
    let first_infonce = terms
        .iter()
        .position(|(_, t)| t.iter().any(|(k, _)| k == "step_infonce"))
        .unwrap();
    assert!(
        (15..=25).contains(&first_infonce),
        "InfoNCE starts near the middle, not at step {first_infonce}"
    );
    for (step, t) in &terms[first_infonce..] {
        assert_eq!(t.len(), 2, "step {step}: both terms until the end");
        let sum = t[0].1 + 0.5 * t[1].1;
        let loss = f64::from(losses[step]);
        assert!(
            (sum - loss).abs() < 1e-3 * loss.max(1.0),
            "step {step}: InfoNCE {} + 0.5 x masked {} = {sum}, step loss {loss}",
            t[0].1,
            t[1].1
        );
    }
    for (step, t) in &terms[..first_infonce] {
        assert!(
            (t[0].1 - f64::from(losses[step])).abs() < 1e-4,
            "step {step}: the warm-up's loss is its masked term"
        );
    }
    let history = RunStore::open(&run_dir).unwrap().load_history().unwrap();
    let stored: Vec<(usize, Vec<(String, f64)>)> = history
        .step_terms
        .chunk_by(|a, b| a.0 == b.0)
        .map(|c| (c[0].0, c.iter().map(|(_, k, v)| (k.clone(), *v)).collect()))
        .collect();
    assert_eq!(stored, terms, "the history gives the terms back as sent");
}

#[test]
fn grit_trains_both_losses_at_once() {
    let events = run_objective(hearth_engine::objective::ObjectiveKind::GRIT, 240);
    let curve = evals(&events);
    let (first, last) = (&curve[0], curve.last().unwrap());
    assert!(
        last.val_loss < first.val_loss - 0.3,
        "generation loss {} -> {}",
        first.val_loss,
        last.val_loss
    );
    let emb = |e: &hearth_engine::train::EvalMetrics| e.metric("train_emb_loss").unwrap();
    // At these small settings the embedding side sits near chance, ln(batch), and LibTorch's
    // thread scheduling decides whether it ends a hair above or below its start; it must not
    // rise above chance.
    let chance = (16f64).ln();
    assert!(
        emb(last) < chance + 0.02,
        "embedding loss {} -> {} rose above chance {chance}",
        emb(first),
        emb(last)
    );
    let total = last.metric("train_total_loss").unwrap();
    assert!(
        (total - (emb(last) + f64::from(last.train_loss))).abs() < 1e-4,
        "L = L_emb + 1.0 * L_gen"
    );
    assert!(
        events.iter().any(|e| matches!(e, RunEvent::Sample { .. })),
        "GRIT still generates"
    );
}

#[test]
fn a_fine_tune_starts_from_the_base_checkpoint_and_keeps_frozen_weights() {
    use hearth_engine::data::DataSource;
    use hearth_engine::spec::InitSpec;
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().join("base");
    let base = spawn_run(small_spec(BackendKind::Flex, 150), &base_dir, None).unwrap();
    let base_events = collect_events(&base, Duration::from_secs(300));
    let Some(RunEvent::Finished(base_summary)) = base_events.last() else {
        panic!("base did not finish")
    };
    drop(base);

    let mut spec = small_spec(BackendKind::Flex, 30);
    spec.name = "fine-tune".into();
    spec.data.source = DataSource::Generated {
        seed: 99,
        n_chars: 30_000,
    };
    spec.init = Some(InitSpec {
        from_run: base_dir.clone(),
        lr_multiplier: 0.1,
        freeze_embeddings: true,
        freeze_layers: 1,
    });
    let tuned_dir = dir.path().join("tuned");
    let tuned = spawn_run(spec.clone(), &tuned_dir, None).unwrap();
    let events = collect_events(&tuned, Duration::from_secs(300));
    drop(tuned);
    let first_loss = events
        .iter()
        .find_map(|e| match e {
            RunEvent::Step(m) => Some(m.train_loss),
            _ => None,
        })
        .unwrap();
    assert!(
        first_loss < base_summary.train_loss + 0.5,
        "the first fine-tuning step ({first_loss}) starts near where the base ended ({}), not from scratch",
        base_summary.train_loss
    );
    let load = |run: &std::path::Path| {
        let store = RunStore::open(run).unwrap();
        let ckpt = store
            .load_history()
            .unwrap()
            .checkpoints
            .last()
            .unwrap()
            .1
            .clone();
        let tokenizer: hearth_engine::data::Tokenizer =
            serde_json::from_str(&std::fs::read_to_string(run.join("tokenizer.json")).unwrap())
                .unwrap();
        let device = BackendKind::Flex.device().unwrap();
        Model::new(&spec.model, tokenizer.vocab_size(), &device).load_file(ckpt)
    };
    let before: Vec<f32> = load(&base_dir)
        .token_embedding()
        .into_data()
        .try_to_vec()
        .unwrap();
    let after: Vec<f32> = load(&tuned_dir)
        .token_embedding()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(before, after, "frozen embeddings are unchanged");

    let mut bad = spec.clone();
    bad.model.d_model = 32;
    bad.model.n_head = 2;
    let failed = spawn_run(bad, &dir.path().join("bad"), None).unwrap();
    let events = collect_events(&failed, Duration::from_secs(60));
    match events.last() {
        Some(RunEvent::Failed { reason, .. }) => assert!(reason.contains("differs"), "{reason}"),
        other => panic!("an incompatible base must be refused: {other:?}"),
    }
}

#[test]
fn supervised_fine_tuning_learns_the_responses() {
    use hearth_engine::data::DataSource;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sums.jsonl");
    let lines: Vec<String> = (0..400)
        .map(|i| {
            let (a, b) = (i % 10, (i * 7) % 10);
            format!("{{\"prompt\": \"{a}+{b}=\", \"response\": \"{}\"}}", a + b)
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let mut spec = small_spec(BackendKind::preferred(), 300);
    spec.data.source = DataSource::PromptResponse { path };
    spec.model.context = 8;
    spec.train.eval_interval = 100;
    let handle = spawn_run(spec, &dir.path().join("run"), None).unwrap();
    let events = collect_events(&handle, Duration::from_secs(300));
    let curve = evals(&events);
    let (first, last) = (&curve[0], curve.last().unwrap());
    assert!(
        last.val_loss < 0.5 * first.val_loss,
        "response loss {} -> {}",
        first.val_loss,
        last.val_loss
    );
    assert!(last.metric("val_response_loss").is_some());
    let sample = events.iter().rev().find_map(|e| match e {
        RunEvent::Sample { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert!(
        sample.is_some_and(|s| s.contains('=')),
        "the sample continues a validation prompt"
    );
}
