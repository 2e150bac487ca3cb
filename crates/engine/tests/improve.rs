//! Improving a run from its own checked samples: the DPO loss and its gradient against TRL's
//! formula in PyTorch (`scripts/dpo_fixture.py`), a STaR round that trains on verified answers
//! only, self-correction end to end, and a failing or panicking sampler that fails the stage
//! and leaves the base run byte for byte as it was.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use hearth_engine::backend::BackendKind;
use hearth_engine::data::dataset::Dataset;
use hearth_engine::data::{DataSource, Tokenizer, TokenizerKind};
use hearth_engine::eval::Sampling;
use hearth_engine::export::LoadedRun;
use hearth_engine::improve::loss::{dpo_loss, sequence_logps, to_vec};
use hearth_engine::improve::stage::ImproveRecord;
use hearth_engine::improve::{
    BatchedSampler, CheckedSample, ImproveError, ImproveEvent, ImproveSpec, Method, Sampler,
    TaskKind, run_improve,
};
use hearth_engine::model::Model;
use hearth_engine::project::store::{RunStatus, RunStore};
use rand::rngs::StdRng;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{what}: differs by up to {worst:e}");
}

#[test]
fn dpo_loss_and_gradient_match_trl_in_pytorch() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/dpo_reference.json")).unwrap();
    let dims = |k: &str| fixture[k].as_u64().unwrap() as usize;
    let (pairs, len, vocab) = (dims("pairs"), dims("len"), dims("vocab"));
    for device in [
        Device::flex().autodiff(),
        BackendKind::preferred().device().unwrap().autodiff(),
    ] {
        for case in fixture["cases"].as_array().unwrap() {
            let logits = |k: &str| {
                Tensor::<3>::from_data(
                    TensorData::new(floats(&case[k]), [pairs, len, vocab]),
                    &device,
                )
                .require_grad()
            };
            let labels = |k: &str| {
                Tensor::<2, Int>::from_data(TensorData::new(ints(&case[k]), [pairs, len]), &device)
            };
            let vector = |k: &str| {
                Tensor::<1>::from_data(TensorData::new(floats(&case[k]), [pairs]), &device)
            };
            let (chosen, rejected) = (logits("chosen_logits"), logits("rejected_logits"));
            let pc = sequence_logps(chosen.clone(), labels("chosen_labels"));
            let pr = sequence_logps(rejected.clone(), labels("rejected_labels"));
            assert_close(
                &to_vec(pc.clone()),
                &floats(&case["policy_chosen_logps"]),
                "answer log-probabilities",
            );
            let beta = case["beta"].as_f64().unwrap();
            let terms = dpo_loss(pc, pr, vector("ref_chosen"), vector("ref_rejected"), beta);
            let loss: f32 = terms.loss.clone().into_scalar();
            assert_close(&[loss], &[case["loss"].as_f64().unwrap() as f32], "loss");
            assert_close(
                &to_vec(terms.chosen_rewards.clone()),
                &floats(&case["chosen_rewards"]),
                "chosen rewards",
            );
            assert_close(
                &to_vec(terms.rejected_rewards.clone()),
                &floats(&case["rejected_rewards"]),
                "rejected rewards",
            );
            let grads = terms.loss.backward();
            let flat = |t: Tensor<3>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            assert_close(
                &flat(chosen.grad(&grads).unwrap()),
                &floats(&case["grad_chosen"]),
                &format!("gradient of the chosen logits (beta {beta})"),
            );
            assert_close(
                &flat(rejected.grad(&grads).unwrap()),
                &floats(&case["grad_rejected"]),
                &format!("gradient of the rejected logits (beta {beta})"),
            );
        }
    }
}

/// A finished run trained (here: freshly initialised) on an sft dataset of arithmetic problems.
fn base_run(dir: &Path, tokenizer: TokenizerKind) -> PathBuf {
    let mut spec = common::arithmetic_sft_spec(tokenizer);
    let DataSource::Dataset { recipe, .. } = &spec.data.source else {
        unreachable!("an SFT dataset")
    };
    let tok: Tokenizer = Dataset::build(recipe, None, &|_, _| {}).unwrap().tokenizer;
    spec.train.backend = BackendKind::Flex;
    let run = dir.join("base");
    let store = RunStore::create(&run, &spec).unwrap();
    std::fs::write(
        run.join("tokenizer.json"),
        serde_json::to_string(&tok).unwrap(),
    )
    .unwrap();
    let device = Device::flex();
    device.seed(7);
    let path = run.join("checkpoints/step-000010.bpk");
    Model::new(&spec.model, tok.vocab_size(), &device)
        .save_file(&path)
        .unwrap();
    store.append_checkpoint(10, &path).unwrap();
    store.set_status(&RunStatus::Finished).unwrap();
    run
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn small_spec(method: Method) -> ImproveSpec {
    ImproveSpec {
        task: TaskKind::Arithmetic,
        method,
        rounds: 1,
        samples: 4,
        prompts_per_round: 12,
        eval_prompts: 10,
        steps_per_round: 2,
        batch_size: 4,
        lr: 1e-3,
        threads: 1,
        ..ImproveSpec::default()
    }
}

/// The instruction inside a prompt as the sft template writes it.
fn instruction(text: &str) -> String {
    text.split("### Instruction:\n")
        .nth(1)
        .and_then(|t| t.split('\n').next())
        .unwrap_or_default()
        .to_string()
}

fn solve(problem: &str) -> i64 {
    let at = problem.find(['+', '-']).unwrap();
    let (a, b): (i64, i64) = (
        problem[..at].parse().unwrap(),
        problem[at + 1..].parse().unwrap(),
    );
    if problem.as_bytes()[at] == b'+' {
        a + b
    } else {
        a - b
    }
}

/// Answers in a fixed cycle: right, wrong, right again, not a number.
struct Scripted {
    calls: AtomicUsize,
}

impl Sampler for Scripted {
    fn sample(
        &self,
        _: &Model,
        tokenizer: &Tokenizer,
        prompts: &[Vec<u32>],
        _: usize,
        _: Sampling,
        _: &mut StdRng,
        _: &Device,
    ) -> Result<Vec<String>, String> {
        Ok(prompts
            .iter()
            .map(|p| {
                let right = solve(&instruction(&tokenizer.decode(p)));
                match self.calls.fetch_add(1, Ordering::Relaxed) % 4 {
                    0 | 2 => right.to_string(),
                    1 => (right + 1).to_string(),
                    _ => "x".to_string(),
                }
            })
            .collect())
    }
}

fn round_samples(run: &Path, round: usize) -> Vec<CheckedSample> {
    std::fs::read_to_string(run.join(format!("rounds/round-{round}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_star_round_trains_on_verified_answers_only() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_run(dir.path(), TokenizerKind::Char);
    let out = dir.path().join("improved");
    let sampler = Scripted {
        calls: AtomicUsize::new(0),
    };
    let events = Mutex::new(Vec::new());
    let summary = run_improve(
        &base,
        &out,
        &small_spec(Method::Star),
        &sampler,
        &AtomicBool::new(false),
        &mut |e| events.lock().unwrap().push(e),
    )
    .unwrap();
    let samples = round_samples(&out, 1);
    assert_eq!(samples.len(), 12 * 4, "K samples per prompt");
    let failed = samples.iter().filter(|s| !s.pass).count();
    assert_eq!(failed, 12 * 2, "the wrong and the non-numeric answers fail");
    let trained: Vec<&CheckedSample> = samples.iter().filter(|s| s.trained).collect();
    assert!(
        trained.iter().all(|s| s.pass),
        "only verified answers train"
    );
    let distinct: HashSet<(&str, &str)> = trained
        .iter()
        .map(|s| (s.prompt.as_str(), s.answer.as_str()))
        .collect();
    assert_eq!(distinct.len(), trained.len(), "deduplicated");
    assert_eq!(trained.len(), 12, "one distinct right answer per prompt");
    for s in &samples {
        assert_eq!(s.pass, s.answer == solve(&s.prompt).to_string(), "{s:?}");
        if !s.pass {
            assert!(!s.reason.is_empty());
        }
    }
    // Accuracy: the scripted sampler is right on every other row, so about half.
    assert_eq!(summary.history.len(), 2);
    assert!(summary.accuracy_before > 0.0 && summary.accuracy_before < 1.0);
    // The new run: finished, linked to its base, with a checkpoint that loads.
    let store = RunStore::open(&out).unwrap();
    assert_eq!(store.status().unwrap(), RunStatus::Finished);
    let spec = store.spec().unwrap();
    let init = spec.init.expect("linked to its base");
    assert_eq!(init.from_run, std::fs::canonicalize(&base).unwrap());
    let record = ImproveRecord::load(&out).unwrap();
    assert_eq!(record.rounds.len(), 2);
    assert!(record.summary.is_some());
    let history = store.load_history().unwrap();
    assert_eq!(history.steps.len(), 2);
    assert_eq!(history.evals.len(), 2, "the base as round 0, then round 1");
    assert!(history.evals[0].metric("heldout_accuracy").is_some());
    let loaded = LoadedRun::load(&out, &Device::flex()).unwrap();
    assert_eq!(loaded.step, 2);
    let events = events.into_inner().unwrap();
    assert!(matches!(events.first(), Some(ImproveEvent::Started { .. })));
    assert!(matches!(events.last(), Some(ImproveEvent::Finished(_))));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ImproveEvent::Step { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ImproveEvent::Samples { samples, .. } if samples.len() == 48))
    );
}

/// A sampler that errs or panics.
struct Broken {
    panic: bool,
}

impl Sampler for Broken {
    fn sample(
        &self,
        _: &Model,
        _: &Tokenizer,
        _: &[Vec<u32>],
        _: usize,
        _: Sampling,
        _: &mut StdRng,
        _: &Device,
    ) -> Result<Vec<String>, String> {
        if self.panic {
            panic!("the sampler broke");
        }
        Err("the device went away".to_string())
    }
}

#[test]
fn a_failing_or_panicking_sampler_fails_the_stage_and_leaves_the_base_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_run(dir.path(), TokenizerKind::Char);
    let before = files(&base);
    for (i, panic) in [false, true].into_iter().enumerate() {
        let out = dir.path().join(format!("improved-{i}"));
        let mut failed = None;
        let err = run_improve(
            &base,
            &out,
            &small_spec(Method::Star),
            &Broken { panic },
            &AtomicBool::new(false),
            &mut |e| {
                if let ImproveEvent::Failed { reason } = e {
                    failed = Some(reason);
                }
            },
        )
        .unwrap_err();
        let want = if panic {
            "the sampler broke"
        } else {
            "the device went away"
        };
        assert!(matches!(err, ImproveError::Failed(_)), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert!(failed.unwrap().contains(want));
        let status = RunStore::open(&out).unwrap().status().unwrap();
        assert!(
            matches!(&status, RunStatus::Failed { reason } if reason.contains(want)),
            "{status:?}"
        );
        assert!(ImproveRecord::load(&out).unwrap().error.is_some());
        assert_eq!(files(&base), before, "the base run is untouched");
    }
    // The base folder itself cannot be the new run.
    let err = run_improve(
        &base,
        &base,
        &small_spec(Method::Star),
        &BatchedSampler::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("already holds a run"), "{err}");
    assert_eq!(files(&base), before);
}

#[test]
fn dpo_and_self_correct_run_end_to_end_on_the_batched_sampler() {
    let dir = tempfile::tempdir().unwrap();
    // A char vocabulary fitted to arithmetic cannot write the check marker: a clear refusal.
    let char_base = base_run(dir.path(), TokenizerKind::Char);
    let err = run_improve(
        &char_base,
        &dir.path().join("refused"),
        &small_spec(Method::SelfCorrect),
        &BatchedSampler::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("check marker"), "{err}");
    assert!(!dir.path().join("refused").exists());

    let byte_dir = tempfile::tempdir().unwrap();
    let base = base_run(byte_dir.path(), TokenizerKind::Byte);
    let mut spec = small_spec(Method::Dpo);
    spec.temperature = 2.0;
    let mut dpo_steps = Vec::new();
    let summary = run_improve(
        &base,
        &byte_dir.path().join("dpo"),
        &spec,
        &BatchedSampler::default(),
        &AtomicBool::new(false),
        &mut |e| {
            if let ImproveEvent::Step {
                reward_accuracy,
                reward_margin,
                ..
            } = e
            {
                dpo_steps.push((reward_accuracy, reward_margin));
            }
        },
    )
    .unwrap();
    assert_eq!(summary.history.len(), 2);
    // An untrained model rarely answers right: a round may have no pair, and then no step.
    for (acc, margin) in dpo_steps {
        assert!(acc.is_some_and(|a| (0.0..=1.0).contains(&a)));
        assert!(margin.is_some_and(f64::is_finite));
    }

    let summary = run_improve(
        &base,
        &byte_dir.path().join("sc"),
        &small_spec(Method::SelfCorrect),
        &Scripted {
            calls: AtomicUsize::new(0),
        },
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    let last = summary.history.last().unwrap().accuracy;
    let (a1, ic, ci) = (
        last.attempt1.unwrap(),
        last.delta_i_to_c.unwrap(),
        last.delta_c_to_i.unwrap(),
    );
    // Accuracy at attempt 2 is attempt 1 plus the fixes minus the breaks.
    assert!((last.accuracy - (a1 + ic - ci)).abs() < 1e-9);
    assert!(summary.delta_i_to_c.is_some() && summary.delta_c_to_i.is_some());
    let samples = round_samples(&byte_dir.path().join("sc"), 1);
    assert!(
        samples.iter().any(|s| s.trained && !s.pass),
        "wrong then right"
    );
    assert!(samples.iter().filter(|s| s.trained).any(|s| s.pass));
}
