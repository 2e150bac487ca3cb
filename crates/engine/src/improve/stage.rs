//! A stage: load the base, create the new run, then rounds of sampling, checking and training.

use super::loss::{
    DpoTerms, Rows, answer_loss, correction_example, dpo_loss, reward_stats, sequence_logps,
    to_vec, token_logps,
};
use super::sample::{BatchedSampler, Sampler};
use super::task::{TaskItem, TaskSet};
use super::{
    Accuracy, CHECK_MARKER, CheckedSample, IMPROVE_FILE, ImproveError, ImproveEvent, ImproveSpec,
    ImproveSummary, Method, Phase, RoundResult,
};
use crate::backend::available_cores;
use crate::data::Tokenizer;
use crate::data::corpus::Example;
use crate::eval::Sampling;
use crate::events::{EvalMetrics, RunSummary, StepMetrics};
use crate::export::LoadedRun;
use crate::model::Model;
use crate::project::store::{RunStatus, RunStore, write_atomic};
use crate::spec::{InitSpec, OptimSpec};
use crate::train::{AdamW, GradBuffer};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::Instant;

/// Rows sampled per call of the sampler (between progress reports and cancel checks).
const SAMPLE_CHUNK: usize = 512;

/// What `improve.json` holds: the link to the base, the settings and, once done, the results.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImproveRecord {
    /// The base run folder.
    pub base: PathBuf,
    /// The base checkpoint the stage started from.
    pub base_checkpoint: PathBuf,
    /// That checkpoint's step.
    pub base_step: usize,
    /// The stage's settings.
    pub spec: ImproveSpec,
    /// Every round so far, the base as round 0.
    pub rounds: Vec<RoundResult>,
    /// The summary once the stage finished.
    pub summary: Option<ImproveSummary>,
    /// Why the stage failed, when it did.
    pub error: Option<String>,
}

impl ImproveRecord {
    /// Reads `improve.json` in an improved run's folder; `None` for other runs.
    pub fn load(run_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(run_dir.join(IMPROVE_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn save(&self, dir: &Path) {
        let text = serde_json::to_string_pretty(self).expect("serializes");
        // The history holds the same numbers; a lost summary file is not worth failing for.
        let _ = write_atomic(&dir.join(IMPROVE_FILE), text.as_bytes());
    }
}

/// Runs a stage on the calling thread: improves the run `base` into the new run folder `out`
/// (which must not hold a run), reporting through `events`; `cancel` stops it between batches.
/// The base is only read. Once the new run exists, any error or panic marks it failed (and
/// sends [`ImproveEvent::Failed`]).
pub fn run_improve(
    base: &Path,
    out: &Path,
    spec: &ImproveSpec,
    sampler: &dyn Sampler,
    cancel: &AtomicBool,
    events: &mut dyn FnMut(ImproveEvent),
) -> Result<ImproveSummary, ImproveError> {
    let (loaded, device, tasks) = open_base(base, spec)?;
    let (store, mut record) = create_run(base, out, spec, &loaded)?;
    let tokenizer_json = serde_json::to_string(&loaded.tokenizer).expect("serializes");
    let started = store
        .set_status(&RunStatus::Running)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            std::fs::write(out.join("tokenizer.json"), tokenizer_json)
                .map_err(|e| format!("{}: {e}", out.join("tokenizer.json").display()))
        });
    let outcome = match started {
        Err(reason) => Ok(Err(ImproveError::Failed(reason))),
        Ok(()) => {
            events(ImproveEvent::Started {
                out: out.to_path_buf(),
                held_out: tasks.held_out.len(),
                rounds: spec.rounds,
            });
            catch_unwind(AssertUnwindSafe(|| {
                Stage::new(
                    spec,
                    &tasks,
                    &loaded,
                    sampler,
                    device.clone(),
                    &store,
                    cancel,
                    &mut *events,
                    &mut record,
                )?
                .run()
            }))
        }
    };
    let outcome = outcome.unwrap_or_else(|panic| {
        Err(ImproveError::Failed(format!(
            "the stage panicked: {}",
            crate::train::panic_message(panic.as_ref())
        )))
    });
    conclude(outcome, spec, out, &store, &mut record, events)
}

/// Checks the settings and opens the base run: its weights on the stage's device, and the
/// task's prompts.
fn open_base(
    base: &Path,
    spec: &ImproveSpec,
) -> Result<(LoadedRun, Device, TaskSet), ImproveError> {
    let errors = spec.validate();
    if !errors.is_empty() {
        return Err(ImproveError::Invalid(errors.join("; ")));
    }
    let base_err = |message: String| ImproveError::Base {
        path: base.to_path_buf(),
        message,
    };
    let base_spec = crate::project::store::read_spec(base).map_err(|e| base_err(e.to_string()))?;
    let backend = base_spec.train.backend;
    backend.set_threads(if spec.threads == 0 {
        available_cores()
    } else {
        spec.threads
    });
    let device = backend.device().map_err(|e| base_err(e.to_string()))?;
    device.seed(spec.seed);
    let loaded = LoadedRun::load(base, &device).map_err(|e| base_err(e.to_string()))?;
    if !loaded.layout().decoder {
        return Err(base_err(format!(
            "the {} objective does not generate text",
            loaded.spec.objective.kind
        )));
    }
    let tasks = TaskSet::for_base(
        spec.task,
        &loaded.spec,
        &loaded.tokenizer,
        spec.eval_prompts,
        spec.rounds * spec.prompts_per_round,
        spec.seed,
    )
    .map_err(|e| ImproveError::Base {
        path: base.join(RunStore::SPEC_FILE),
        message: e.to_string(),
    })?;
    if spec.method == Method::SelfCorrect {
        let tok = &loaded.tokenizer;
        if tok.decode(&tok.encode(CHECK_MARKER)) != CHECK_MARKER {
            return Err(base_err(format!(
                "the run's tokenizer cannot write the check marker {CHECK_MARKER:?} (a char vocabulary lacks some of its characters); build the base's dataset with --tokenizer byte"
            )));
        }
    }
    Ok((loaded, device, tasks))
}

/// Creates the new run in `out`: the base's spec as a fine-tune of it with the stage's
/// optimizer, steps and seed, and the stage's record linking it to its base.
fn create_run(
    base: &Path,
    out: &Path,
    spec: &ImproveSpec,
    loaded: &LoadedRun,
) -> Result<(RunStore, ImproveRecord), ImproveError> {
    let base_dir = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let mut run_spec = loaded.spec.clone();
    run_spec.name = format!("{}-{}", loaded.spec.name, spec.method.name());
    run_spec.init = Some(InitSpec {
        from_run: base_dir.clone(),
        lr_multiplier: 1.0,
        ..InitSpec::default()
    });
    run_spec.train.steps = spec.rounds * spec.steps_per_round;
    run_spec.train.batch_size = spec.batch_size;
    run_spec.train.seed = spec.seed;
    run_spec.optim = optim_spec(spec);
    let store =
        RunStore::create(out, &run_spec).map_err(|e| ImproveError::Invalid(e.to_string()))?;
    let record = ImproveRecord {
        base: base_dir,
        base_checkpoint: loaded.checkpoint.clone(),
        base_step: loaded.step,
        spec: spec.clone(),
        rounds: Vec::new(),
        summary: None,
        error: None,
    };
    record.save(out);
    Ok((store, record))
}

/// Records how the stage ended in the new run (status, summary or error) and sends the last
/// event.
fn conclude(
    outcome: Result<ImproveSummary, ImproveError>,
    spec: &ImproveSpec,
    out: &Path,
    store: &RunStore,
    record: &mut ImproveRecord,
    events: &mut dyn FnMut(ImproveEvent),
) -> Result<ImproveSummary, ImproveError> {
    let failure = match outcome {
        Ok(summary) => {
            let _ = store.set_summary(&RunSummary {
                step: spec.rounds * spec.steps_per_round,
                train_loss: summary
                    .history
                    .last()
                    .and_then(|r| r.train_loss)
                    .unwrap_or(0.0) as f32,
                val_loss: 0.0,
                tokens_per_s: 0.0,
                elapsed_s: summary.elapsed_s,
                stopped_early: false,
                allreduce_s: 0.0,
            });
            let _ = store.set_status(&RunStatus::Finished);
            record.summary = Some(summary.clone());
            record.save(out);
            events(ImproveEvent::Finished(summary.clone()));
            return Ok(summary);
        }
        Err(ImproveError::Cancelled) => {
            let _ = store.set_status(&RunStatus::Stopped);
            return Err(ImproveError::Cancelled);
        }
        Err(e) => e.to_string(),
    };
    let _ = store.append_message(0, "error", &failure);
    let _ = store.set_status(&RunStatus::Failed {
        reason: failure.clone(),
    });
    record.error = Some(failure.clone());
    record.save(out);
    events(ImproveEvent::Failed {
        reason: failure.clone(),
    });
    Err(ImproveError::Failed(failure))
}

/// A stage running on a background thread: its events, and a flag that stops it.
pub struct ImproveHandle {
    /// The stage's events, in order; the last is `Finished` or `Failed` (nothing follows a
    /// cancel or an error before the new run exists).
    pub events: Receiver<ImproveEvent>,
    /// Set to stop the stage between batches (the new run is then marked stopped).
    pub cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<ImproveSummary, ImproveError>>>,
}

impl ImproveHandle {
    /// True once the thread has returned.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the stage and returns how it ended.
    pub fn join(mut self) -> Result<ImproveSummary, ImproveError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => Err(ImproveError::Failed(format!(
                "the stage's thread panicked: {}",
                crate::train::panic_message(panic.as_ref())
            ))),
            None => Err(ImproveError::Failed("already joined".to_string())),
        }
    }
}

impl Drop for ImproveHandle {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts [`run_improve`] with the [`BatchedSampler`] on a named background thread; `notify`
/// is called after each event (a UI schedules a repaint).
pub fn spawn_improve(
    base: PathBuf,
    out: PathBuf,
    spec: ImproveSpec,
    notify: Option<Arc<dyn Fn() + Send + Sync>>,
) -> std::io::Result<ImproveHandle> {
    let (tx, rx) = channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let thread = std::thread::Builder::new()
        .name("hearth-improve".to_string())
        .spawn(move || {
            let mut send = |event: ImproveEvent| {
                let _ = tx.send(event);
                if let Some(notify) = &notify {
                    notify();
                }
            };
            let sampler = BatchedSampler::default();
            let result = run_improve(&base, &out, &spec, &sampler, &flag, &mut send);
            if let Err(e) = &result
                && !matches!(e, ImproveError::Failed(_))
            {
                // Failures after the new run exists were already sent.
                send(ImproveEvent::Failed {
                    reason: e.to_string(),
                });
            }
            result
        })?;
    Ok(ImproveHandle {
        events: rx,
        cancel,
        thread: Some(thread),
    })
}

/// The optimizer settings of a stage: a constant learning rate, no weight decay.
fn optim_spec(spec: &ImproveSpec) -> OptimSpec {
    OptimSpec {
        lr: spec.lr,
        min_lr: spec.lr,
        warmup_steps: 0,
        weight_decay: 0.0,
        grad_clip: 1.0,
        ..OptimSpec::default()
    }
}

/// Indices of the samples STaR trains on: the verified ones, each distinct answer to a prompt
/// once.
pub fn star_selection(samples: &[CheckedSample]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    (0..samples.len())
        .filter(|&i| {
            let s = &samples[i];
            s.pass && seen.insert((s.prompt.as_str(), s.answer.as_str()))
        })
        .collect()
}

/// Distinct passing and failing answers of each prompt, prompts in order of first appearance:
/// `(passing sample indices, failing sample indices)`.
fn by_prompt(samples: &[CheckedSample]) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, s) in samples.iter().enumerate() {
        if !seen.insert((s.prompt.as_str(), s.answer.as_str())) {
            continue;
        }
        let g = *index.entry(s.prompt.as_str()).or_insert_with(|| {
            groups.push((Vec::new(), Vec::new()));
            groups.len() - 1
        });
        if s.pass {
            groups[g].0.push(i);
        } else {
            groups[g].1.push(i);
        }
    }
    groups
}

/// DPO pairs `(verified, failed)` of sample indices: up to `per_prompt` per prompt, from its
/// distinct answers.
pub fn preference_pairs(samples: &[CheckedSample], per_prompt: usize) -> Vec<(usize, usize)> {
    by_prompt(samples)
        .into_iter()
        .flat_map(|(pass, fail)| {
            pass.into_iter()
                .zip(fail)
                .take(per_prompt)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Self-correction pairs `(first answer, second answer)` of sample indices: a failed answer
/// then a verified one (up to `per_prompt` per prompt), and a verified answer kept as it is
/// (up to `per_prompt` per prompt, and no more in all than the first kind or 8), so that the
/// model learns both to fix and to keep.
pub fn correction_pairs(samples: &[CheckedSample], per_prompt: usize) -> Vec<(usize, usize)> {
    let groups = by_prompt(samples);
    let mut fix = Vec::new();
    let mut keep = Vec::new();
    for (pass, fail) in &groups {
        if pass.is_empty() {
            continue;
        }
        for (k, &f) in fail.iter().take(per_prompt).enumerate() {
            fix.push((f, pass[k % pass.len()]));
        }
        for &p in pass.iter().take(per_prompt) {
            keep.push((p, p));
        }
    }
    keep.truncate(fix.len().max(8));
    fix.extend(keep);
    fix
}

/// One training example of a round, or one preference pair.
enum Train {
    Examples(Vec<Example>),
    Pairs {
        chosen: Vec<Example>,
        rejected: Vec<Example>,
        ref_chosen: Vec<f32>,
        ref_rejected: Vec<f32>,
    },
}

struct Stage<'a> {
    spec: &'a ImproveSpec,
    tasks: &'a TaskSet,
    tokenizer: &'a Tokenizer,
    reference: &'a Model,
    sampler: &'a dyn Sampler,
    device: Device,
    store: &'a RunStore,
    cancel: &'a AtomicBool,
    events: &'a mut dyn FnMut(ImproveEvent),
    record: &'a mut ImproveRecord,
    /// The policy being trained (taken by the optimizer during a step).
    model: Option<Model>,
    train_device: Device,
    optim: AdamW,
    rng: StdRng,
    step: usize,
    tokens_seen: u64,
    start: Instant,
    max_new: usize,
    context: usize,
}

impl<'a> Stage<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        spec: &'a ImproveSpec,
        tasks: &'a TaskSet,
        base: &'a LoadedRun,
        sampler: &'a dyn Sampler,
        device: Device,
        store: &'a RunStore,
        cancel: &'a AtomicBool,
        events: &'a mut dyn FnMut(ImproveEvent),
        record: &'a mut ImproveRecord,
    ) -> Result<Self, ImproveError> {
        let train_device = device.clone().autodiff();
        let model = Model::new(&base.spec.model, base.tokenizer.vocab_size(), &train_device)
            .try_load_file(&base.checkpoint)
            .map_err(|e| {
                ImproveError::Failed(format!("cannot load {}: {e}", base.checkpoint.display()))
            })?;
        let max_new = tasks
            .held_out
            .iter()
            .map(|i| base.tokenizer.encode(&i.reference).len())
            .max()
            .unwrap_or(8)
            + 4;
        Ok(Self {
            spec,
            tasks,
            tokenizer: &base.tokenizer,
            reference: &base.model,
            sampler,
            device,
            store,
            cancel,
            events,
            record,
            model: Some(model),
            train_device,
            optim: AdamW::new(optim_spec(spec)),
            rng: StdRng::seed_from_u64(spec.seed),
            step: 0,
            tokens_seen: 0,
            start: Instant::now(),
            max_new,
            context: base.spec.model.context,
        })
    }

    fn model(&self) -> &Model {
        self.model
            .as_ref()
            .expect("the model is back after each step")
    }

    fn emit(&mut self, event: ImproveEvent) {
        (self.events)(event);
    }

    fn check_cancel(&self) -> Result<(), ImproveError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(ImproveError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn run(&mut self) -> Result<ImproveSummary, ImproveError> {
        let (accuracy, val_loss) = self.evaluate(0)?;
        let mut history =
            vec![self.finish_round(0, accuracy, val_loss, RoundStats::default(), Vec::new())?];
        for round in 1..=self.spec.rounds {
            let items = self
                .tasks
                .training_prompts(round, self.spec.prompts_per_round);
            let mut samples = self.sample(round, &items)?;
            let train = self.select(&items, &mut samples)?;
            self.emit(ImproveEvent::Samples {
                round,
                samples: samples.clone(),
            });
            let stats = self.train(round, train, &samples)?;
            let (accuracy, val_loss) = self.evaluate(round)?;
            history.push(self.finish_round(round, accuracy, val_loss, stats, samples)?);
        }
        let first = &history[0].accuracy;
        let last = &history[history.len() - 1].accuracy;
        Ok(ImproveSummary {
            out: self.store.dir().to_path_buf(),
            rounds: self.spec.rounds,
            accuracy_before: first.attempt1.unwrap_or(first.accuracy),
            accuracy_after: last.accuracy,
            delta_i_to_c: last.delta_i_to_c,
            delta_c_to_i: last.delta_c_to_i,
            history,
            elapsed_s: self.elapsed(),
        })
    }

    /// Answers from `model` to `prompts` (text), `sampling` as given, in chunks with progress.
    fn answer(
        &mut self,
        model: &Model,
        round: usize,
        phase: Phase,
        prompts: &[String],
        sampling: Sampling,
    ) -> Result<Vec<String>, ImproveError> {
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| self.tokenizer.encode(p)).collect();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SAMPLE_CHUNK) {
            self.check_cancel()?;
            let answers = self
                .sampler
                .sample(
                    model,
                    self.tokenizer,
                    chunk,
                    self.max_new,
                    sampling,
                    &mut self.rng,
                    &self.device,
                )
                .map_err(|e| ImproveError::Failed(format!("sampling failed: {e}")))?;
            if answers.len() != chunk.len() {
                return Err(ImproveError::Failed(format!(
                    "sampling failed: {} answers for {} prompts",
                    answers.len(),
                    chunk.len()
                )));
            }
            out.extend(answers);
            self.emit(ImproveEvent::Progress {
                round,
                phase,
                done: out.len(),
                total: ids.len(),
            });
        }
        Ok(out)
    }

    /// Greedy accuracy on the held-out prompts (self-correct: both attempts) and the loss of
    /// the reference answers.
    fn evaluate(&mut self, round: usize) -> Result<(Accuracy, f64), ImproveError> {
        let model = self.model().valid();
        let greedy = Sampling {
            temperature: 0.0,
            top_k: 0,
            ..Sampling::default()
        };
        let tasks = self.tasks;
        let held = &tasks.held_out;
        let prompts: Vec<String> = held.iter().map(|i| i.prompt.clone()).collect();
        let first = self.answer(&model, round, Phase::Evaluating, &prompts, greedy)?;
        let right1: Vec<bool> = held
            .iter()
            .zip(&first)
            .map(|(i, a)| tasks.check(&i.instruction, a).pass)
            .collect();
        let share = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len().max(1) as f64;
        let accuracy = if self.spec.method == Method::SelfCorrect {
            let second_prompts: Vec<String> = held
                .iter()
                .zip(&first)
                .map(|(i, a)| format!("{}{a}\n{CHECK_MARKER}", i.prompt))
                .collect();
            let second = self.answer(&model, round, Phase::Evaluating, &second_prompts, greedy)?;
            let right2: Vec<bool> = held
                .iter()
                .zip(&second)
                .map(|(i, a)| tasks.check(&i.instruction, a).pass)
                .collect();
            let n = held.len().max(1) as f64;
            let flips = |from: bool| {
                right1
                    .iter()
                    .zip(&right2)
                    .filter(|&(&a, &b)| a == from && b != from)
                    .count() as f64
                    / n
            };
            Accuracy {
                accuracy: share(&right2),
                attempt1: Some(share(&right1)),
                delta_i_to_c: Some(flips(false)),
                delta_c_to_i: Some(flips(true)),
            }
        } else {
            Accuracy {
                accuracy: share(&right1),
                attempt1: None,
                delta_i_to_c: None,
                delta_c_to_i: None,
            }
        };
        let examples: Vec<Example> = held
            .iter()
            .map(|i| Example::encode(self.tokenizer, &i.prompt, &format!("{}\n", i.reference)))
            .collect();
        let mut total = 0.0;
        for chunk in examples.chunks(128) {
            let refs: Vec<&Example> = chunk.iter().collect();
            let rows = Rows::new(&refs, self.tokenizer, self.context);
            let (x, y) = rows.tensors(&self.device);
            let loss: f32 = answer_loss(model.forward(x), y).into_scalar();
            total += f64::from(loss) * chunk.len() as f64;
        }
        Ok((accuracy, total / examples.len().max(1) as f64))
    }

    /// K samples per prompt from the current model, checked.
    fn sample(
        &mut self,
        round: usize,
        items: &[TaskItem],
    ) -> Result<Vec<CheckedSample>, ImproveError> {
        let k = self.spec.samples;
        let sampling = Sampling {
            temperature: self.spec.temperature,
            top_k: self.spec.top_k,
            ..Sampling::default()
        };
        let prompts: Vec<String> = items
            .iter()
            .flat_map(|i| std::iter::repeat_n(i.prompt.clone(), k))
            .collect();
        let model = self.model().valid();
        let answers = self.answer(&model, round, Phase::Sampling, &prompts, sampling)?;
        let total = answers.len();
        let mut samples = Vec::with_capacity(total);
        for (n, answer) in answers.into_iter().enumerate() {
            let item = &items[n / k];
            let verdict = self.tasks.check(&item.instruction, &answer);
            samples.push(CheckedSample {
                prompt: item.instruction.clone(),
                first: None,
                answer,
                pass: verdict.pass,
                reason: verdict.reason,
                trained: false,
            });
            if (n + 1) % SAMPLE_CHUNK == 0 || n + 1 == total {
                self.emit(ImproveEvent::Progress {
                    round,
                    phase: Phase::Checking,
                    done: n + 1,
                    total,
                });
            }
        }
        Ok(samples)
    }

    /// What the round trains on, marking the samples used.
    fn select(
        &mut self,
        items: &[TaskItem],
        samples: &mut [CheckedSample],
    ) -> Result<Train, ImproveError> {
        let prompt_of: HashMap<&str, &str> = items
            .iter()
            .map(|i| (i.instruction.as_str(), i.prompt.as_str()))
            .collect();
        let tok = self.tokenizer;
        let encode = |s: &CheckedSample, answer: &str| {
            Example::encode(tok, prompt_of[s.prompt.as_str()], &format!("{answer}\n"))
        };
        Ok(match self.spec.method {
            Method::Star => {
                let kept = star_selection(samples);
                let examples = kept
                    .iter()
                    .map(|&i| encode(&samples[i], &samples[i].answer))
                    .collect();
                for i in kept {
                    samples[i].trained = true;
                }
                Train::Examples(examples)
            }
            Method::Dpo => {
                let pairs = preference_pairs(samples, self.spec.pairs_per_prompt);
                let chosen: Vec<Example> = pairs
                    .iter()
                    .map(|&(c, _)| encode(&samples[c], &samples[c].answer))
                    .collect();
                let rejected: Vec<Example> = pairs
                    .iter()
                    .map(|&(_, r)| encode(&samples[r], &samples[r].answer))
                    .collect();
                for (c, r) in pairs {
                    samples[c].trained = true;
                    samples[r].trained = true;
                }
                let ref_chosen = self.reference_logps(&chosen);
                let ref_rejected = self.reference_logps(&rejected);
                Train::Pairs {
                    chosen,
                    rejected,
                    ref_chosen,
                    ref_rejected,
                }
            }
            Method::SelfCorrect => {
                let pairs = correction_pairs(samples, self.spec.pairs_per_prompt);
                let examples = pairs
                    .iter()
                    .map(|&(first, second)| {
                        correction_example(
                            tok,
                            prompt_of[samples[first].prompt.as_str()],
                            &samples[first].answer,
                            CHECK_MARKER,
                            &samples[second].answer,
                        )
                    })
                    .collect();
                for (first, second) in pairs {
                    samples[first].trained = true;
                    samples[second].trained = true;
                }
                Train::Examples(examples)
            }
        })
    }

    /// Summed log-probabilities of the examples' answers under the frozen base.
    fn reference_logps(&self, examples: &[Example]) -> Vec<f32> {
        let mut out = Vec::with_capacity(examples.len());
        for chunk in examples.chunks(128) {
            let refs: Vec<&Example> = chunk.iter().collect();
            let rows = Rows::new(&refs, self.tokenizer, self.context);
            let (x, y) = rows.tensors(&self.device);
            out.extend(to_vec(sequence_logps(self.reference.forward(x), y)));
        }
        out
    }

    /// The round's optimizer steps.
    fn train(
        &mut self,
        round: usize,
        train: Train,
        samples: &[CheckedSample],
    ) -> Result<RoundStats, ImproveError> {
        let mut stats = RoundStats {
            samples: samples.len(),
            passed: samples.iter().filter(|s| s.pass).count(),
            ..RoundStats::default()
        };
        let n = match &train {
            Train::Examples(e) => e.len(),
            Train::Pairs { chosen, .. } => chosen.len(),
        };
        stats.trained_on = n;
        if n == 0 {
            let message = format!(
                "round {round}: nothing to train on ({} of {} samples passed); the model is unchanged this round",
                stats.passed, stats.samples
            );
            let _ = self.store.append_message(self.step, "warning", &message);
            self.emit(ImproveEvent::Warning(message));
            self.step += self.spec.steps_per_round;
            return Ok(stats);
        }
        let device = self.train_device.clone();
        let b = self.spec.batch_size;
        let mut metrics = Vec::with_capacity(self.spec.steps_per_round);
        let (mut loss_sum, mut acc_sum, mut margin_sum) = (0.0, 0.0, 0.0);
        let lr = self.spec.lr;
        for s in 0..self.spec.steps_per_round {
            self.check_cancel()?;
            let picks: Vec<usize> = (0..b.min(n)).map(|_| self.rng.random_range(0..n)).collect();
            let (loss, rewards) = match &train {
                Train::Examples(examples) => {
                    let batch: Vec<&Example> = picks.iter().map(|&i| &examples[i]).collect();
                    let rows = Rows::new(&batch, self.tokenizer, self.context);
                    self.tokens_seen += (rows.rows * rows.len) as u64;
                    let (x, y) = rows.tensors(&device);
                    (answer_loss(self.model().forward(x), y), None)
                }
                Train::Pairs {
                    chosen,
                    rejected,
                    ref_chosen,
                    ref_rejected,
                } => {
                    let mut batch: Vec<&Example> = picks.iter().map(|&i| &chosen[i]).collect();
                    batch.extend(picks.iter().map(|&i| &rejected[i]));
                    let rows = Rows::new(&batch, self.tokenizer, self.context);
                    self.tokens_seen += (rows.rows * rows.len) as u64;
                    let (x, y) = rows.tensors(&device);
                    let k = picks.len();
                    let tokens = token_logps(self.model().forward(x), y.clone());
                    let logps = tokens.clone().sum_dim(1).reshape([2 * k]);
                    // The verified answers' mean token NLL (RPO's term), when weighted.
                    let nll = (self.spec.nll_weight > 0.0).then(|| {
                        let count = y
                            .narrow(0, 0, k)
                            .greater_equal_elem(0)
                            .float()
                            .sum()
                            .clamp_min(1.0);
                        tokens.narrow(0, 0, k).sum().neg() / count
                    });
                    let values = |v: &[f32]| {
                        Tensor::<1>::from_data(
                            TensorData::new(picks.iter().map(|&i| v[i]).collect(), [k]),
                            &device,
                        )
                    };
                    let terms: DpoTerms = dpo_loss(
                        logps.clone().narrow(0, 0, k),
                        logps.narrow(0, k, k),
                        values(ref_chosen),
                        values(ref_rejected),
                        self.spec.beta,
                    );
                    let rewards = reward_stats(&terms);
                    let loss = match nll {
                        Some(nll) => terms.loss + nll * self.spec.nll_weight,
                        None => terms.loss,
                    };
                    (loss, Some(rewards))
                }
            };
            let value: f32 = loss.clone().into_scalar();
            let grads = GradBuffer::from_grads(self.model(), &loss.backward());
            let model = self
                .model
                .take()
                .expect("the model is back after each step");
            let (model, grad_norm) = crate::train::update::apply(
                &mut self.optim,
                model,
                &grads,
                lr,
                value,
                self.step + 1,
            )
            .map_err(|source| ImproveError::Diverged { round, source })?;
            self.model = Some(model);
            self.step += 1;
            loss_sum += f64::from(value);
            if let Some((acc, margin)) = rewards {
                acc_sum += acc;
                margin_sum += margin;
            }
            metrics.push(StepMetrics {
                step: self.step,
                train_loss: value,
                lr,
                grad_norm,
                tokens_per_s: self.tokens_seen as f64 / self.elapsed().max(1e-9),
                elapsed_s: self.elapsed(),
                tokens_seen: self.tokens_seen,
            });
            self.emit(ImproveEvent::Step {
                round,
                step: self.step,
                loss: f64::from(value),
                reward_accuracy: rewards.map(|r| r.0),
                reward_margin: rewards.map(|r| r.1),
            });
            self.emit(ImproveEvent::Progress {
                round,
                phase: Phase::Training,
                done: s + 1,
                total: self.spec.steps_per_round,
            });
        }
        let _ = self.store.append_steps(&metrics);
        let steps = self.spec.steps_per_round as f64;
        stats.train_loss = Some(loss_sum / steps);
        if matches!(train, Train::Pairs { .. }) {
            stats.reward_accuracy = Some(acc_sum / steps);
            stats.reward_margin = Some(margin_sum / steps);
        }
        Ok(stats)
    }

    /// Records a round: evaluation, checkpoint, samples, event.
    fn finish_round(
        &mut self,
        round: usize,
        accuracy: Accuracy,
        val_loss: f64,
        stats: RoundStats,
        samples: Vec<CheckedSample>,
    ) -> Result<RoundResult, ImproveError> {
        let result = RoundResult {
            round,
            step: self.step,
            accuracy,
            sample_pass_rate: stats.passed as f64 / stats.samples.max(1) as f64,
            samples: stats.samples,
            trained_on: stats.trained_on,
            train_loss: stats.train_loss,
            reward_accuracy: stats.reward_accuracy,
            reward_margin: stats.reward_margin,
            elapsed_s: self.elapsed(),
        };
        let mut extra = vec![("heldout_accuracy".to_string(), accuracy.accuracy)];
        let optional = [
            ("attempt1_accuracy", accuracy.attempt1),
            ("delta_i_to_c", accuracy.delta_i_to_c),
            ("delta_c_to_i", accuracy.delta_c_to_i),
            ("reward_accuracy", result.reward_accuracy),
            ("reward_margin", result.reward_margin),
        ];
        extra.extend(
            optional
                .iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
        );
        if round > 0 {
            extra.push(("sample_pass_rate".to_string(), result.sample_pass_rate));
            extra.push(("trained_on".to_string(), result.trained_on as f64));
        }
        let eval = EvalMetrics {
            step: self.step,
            train_loss: result.train_loss.unwrap_or(val_loss) as f32,
            val_loss: val_loss as f32,
            elapsed_s: self.elapsed(),
            extra,
        };
        let _ = self.store.append_eval(&eval);
        let dir = self.store.dir().to_path_buf();
        if round > 0 {
            self.checkpoint(&dir)?;
            let lines: Vec<String> = samples
                .iter()
                .map(|s| serde_json::to_string(s).expect("serializes"))
                .collect();
            let rounds = dir.join("rounds");
            let path = rounds.join(format!("round-{round}.jsonl"));
            std::fs::create_dir_all(&rounds)
                .and_then(|()| std::fs::write(&path, lines.join("\n") + "\n"))
                .map_err(|e| ImproveError::Failed(format!("{}: {e}", path.display())))?;
            let shown: Vec<String> = samples
                .iter()
                .take(12)
                .map(|s| {
                    format!(
                        "{} -> {} [{}{}]",
                        s.prompt,
                        s.answer,
                        if s.pass { "pass" } else { "fail: " },
                        if s.pass { "" } else { s.reason.as_str() }
                    )
                })
                .collect();
            let _ = self.store.append_sample(self.step, &shown.join("\n"));
        }
        self.record.rounds.push(result.clone());
        self.record.save(&dir);
        self.emit(ImproveEvent::Round(result.clone()));
        Ok(result)
    }

    fn checkpoint(&mut self, dir: &Path) -> Result<(), ImproveError> {
        let path = dir
            .join("checkpoints")
            .join(format!("step-{:06}.bpk", self.step));
        let tmp = path.with_extension("partial");
        self.model()
            .valid()
            .save_file(&tmp)
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()))
            .map_err(|e| ImproveError::Failed(format!("{}: {e}", path.display())))?;
        self.store
            .append_checkpoint(self.step, &path)
            .map_err(|e| ImproveError::Failed(e.to_string()))
    }
}

/// Counts of a round's samples and training.
#[derive(Default)]
struct RoundStats {
    samples: usize,
    passed: usize,
    trained_on: usize,
    train_loss: Option<f64>,
    reward_accuracy: Option<f64>,
    reward_margin: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(prompt: &str, answer: &str, pass: bool) -> CheckedSample {
        CheckedSample {
            prompt: prompt.to_string(),
            first: None,
            answer: answer.to_string(),
            pass,
            reason: String::new(),
            trained: false,
        }
    }

    #[test]
    fn star_keeps_distinct_verified_answers_only() {
        let samples = vec![
            sample("1+1", "2", true),
            sample("1+1", "3", false),
            sample("1+1", "2", true),
            sample("2+2", "4", true),
            sample("2+2", "04", true),
            sample("2+2", "5", false),
        ];
        assert_eq!(star_selection(&samples), vec![0, 3, 4]);
    }

    #[test]
    fn pairs_match_a_verified_and_a_failed_answer_of_one_prompt() {
        let samples = vec![
            sample("a", "x", false),
            sample("a", "ok", true),
            sample("a", "y", false),
            sample("a", "ok", true),
            sample("b", "z", false),
            sample("c", "ok", true),
        ];
        assert_eq!(preference_pairs(&samples, 2), vec![(1, 0)]);
        let pairs = correction_pairs(&samples, 2);
        assert_eq!(&pairs[..2], &[(0, 1), (2, 1)], "wrong then right");
        assert!(pairs[2..].contains(&(1, 1)) && pairs[2..].contains(&(5, 5)));
        for (first, second) in pairs {
            assert!(samples[second].pass);
            assert_eq!(samples[first].prompt, samples[second].prompt);
        }
    }
}
