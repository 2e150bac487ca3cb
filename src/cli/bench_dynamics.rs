//! `hearth bench --dynamics`: the training step of the nanoGPT CPU shape with and without
//! recording the training dynamics (each matrix's gradient, update and weight norms and each
//! block's residual size and attention entropy on a probe at the default interval, written to
//! a run store, and the weight and gradient histograms at the default evaluation interval), on the same backend and threads, in alternating rounds of the
//! same run.

use anyhow::{Result, bail};
use hearth_engine::data::{Corpus, Split, TokenizerKind};
use hearth_engine::dynamics::{DynamicsRecord, HistogramSet};
use hearth_engine::eval::tokens_tensor;
use hearth_engine::model::{Model, ModelSpec};
use hearth_engine::objective::next_token;
use hearth_engine::project::RunStore;
use hearth_engine::spec::{RunSpec, TrainSpec};
use hearth_engine::train::{AdamW, BackendKind, GradBuffer, OptimSpec};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Instant;

const BATCH: usize = 12;

/// One side of the comparison: a model, its optimizer and batches, and where it records (the
/// recording side only).
struct Side {
    device: burn::tensor::Device,
    corpus: Corpus,
    model: Option<Model>,
    optim: AdamW,
    rng: StdRng,
    /// Steps taken (warm-up included), so recording falls on the run's own steps.
    taken: usize,
    store: Option<RunStore>,
}

impl Side {
    fn new(backend: BackendKind, store: Option<RunStore>) -> Result<Self> {
        let device = backend.device().map_err(anyhow::Error::msg)?.autodiff();
        device.seed(1337);
        let alphabet: Vec<char> = (0..65u32)
            .map(|i| char::from_u32(0x21 + i).unwrap_or('?'))
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        let text: String = (0..20_000)
            .map(|_| alphabet[rand::Rng::random_range(&mut rng, 0..alphabet.len())])
            .collect();
        let corpus = Corpus::from_text(&text, TokenizerKind::Char, 0.1);
        let model = Model::new(
            &ModelSpec::default(),
            corpus.tokenizer.vocab_size(),
            &device,
        );
        Ok(Self {
            device,
            corpus,
            model: Some(model),
            optim: AdamW::new(OptimSpec::default()),
            rng,
            taken: 0,
            store,
        })
    }

    /// Milliseconds over `n` steps.
    fn steps(&mut self, n: usize) -> Result<f64> {
        let context = ModelSpec::default().context;
        let defaults = TrainSpec::default();
        let start = Instant::now();
        for _ in 0..n {
            self.taken += 1;
            let step = self.taken;
            let batch = self
                .corpus
                .sample_batch(Split::Train, BATCH, context, &mut self.rng);
            let model = self.model.take().expect("put back after each step");
            let x = tokens_tensor(batch.inputs, BATCH, context, &self.device);
            let y = tokens_tensor(batch.targets, BATCH, context, &self.device);
            let loss = next_token::loss(model.forward(x), y);
            let _: f32 = loss.clone().into_scalar();
            let grads = GradBuffer::from_grads(&model, &loss.backward());
            let next = match &self.store {
                None => self.optim.step(model, &grads, 1e-3).0,
                Some(store) => {
                    if step.is_multiple_of(defaults.eval_interval) {
                        let histograms = hearth_engine::train::optim::histograms(&model, &grads);
                        store.append_histograms(&HistogramSet { step, histograms })?;
                    }
                    if step.is_multiple_of(defaults.dynamics_interval) {
                        let (next, _, matrices) = self.optim.step_measured(model, &grads, 1e-3);
                        store.append_dynamics(&DynamicsRecord { step, matrices })?;
                        let probe = self.corpus.val.to_vec(0..context);
                        if let Some(blocks) = hearth_engine::eval::insight::block_stats(
                            &next,
                            &probe,
                            step,
                            &self.device,
                        ) {
                            store.append_blocks(&blocks)?;
                        }
                        next
                    } else {
                        self.optim.step(model, &grads, 1e-3).0
                    }
                }
            };
            self.model = Some(next);
            self.device.sync().ok();
        }
        Ok(start.elapsed().as_secs_f64() * 1e3)
    }
}

/// Times `steps` steps (at least one evaluation interval) of each side after `warmup`, in
/// rounds of `round`, and prints the ratio of their speeds over all timed steps.
pub fn run(steps: usize, warmup: usize, round: usize, threads: usize) -> Result<()> {
    let backend = BackendKind::preferred();
    let defaults = TrainSpec::default();
    // At least one evaluation interval, so the histograms' cost is in the timed steps too.
    let steps = steps.max(defaults.eval_interval);
    let round = round.clamp(1, steps.max(1));
    let rounds = steps.max(1).div_ceil(round);
    println!(
        "nanoGPT CPU shape on {}: vocab 65, block 64, batch {BATCH}, 4 layers, 4 heads, 128 wide; {threads} threads; recording every {} steps (histograms every {}); {} timed steps after {warmup} warmup, in {rounds} rounds of {round} steps taken by each side in turn",
        backend.name(),
        defaults.dynamics_interval,
        defaults.eval_interval,
        rounds * round,
    );
    let dir = std::env::temp_dir().join(format!("hearth-bench-dynamics-{}", std::process::id()));
    let store = RunStore::create(&dir, &RunSpec::default())?;
    let result = backend.with_threads(threads, || -> Result<()> {
        let mut plain = Side::new(backend, None)?;
        let mut recording = Side::new(backend, Some(store))?;
        plain.steps(warmup)?;
        recording.steps(warmup)?;
        let (mut plain_ms, mut recording_ms) = (0.0, 0.0);
        let mut ratios = Vec::new();
        for _ in 0..rounds {
            let p = plain.steps(round)?;
            let r = recording.steps(round)?;
            plain_ms += p;
            recording_ms += r;
            ratios.push(p / r);
        }
        let records = recording.store.as_ref().map(|s| s.dynamics()).transpose()?;
        if records.is_none_or(|r| r.is_empty()) {
            bail!(
                "the recording side recorded nothing: raise --steps to at least {}",
                defaults.dynamics_interval
            );
        }
        let n = (rounds * round) as f64;
        println!("plain      {:>9.2} ms/step", plain_ms / n);
        println!("dynamics   {:>9.2} ms/step", recording_ms / n);
        ratios.sort_by(f64::total_cmp);
        println!(
            "dynamics/plain by round: lowest {:.3}, median {:.3}, highest {:.3}",
            ratios[0],
            ratios[ratios.len() / 2],
            ratios[ratios.len() - 1]
        );
        println!("ratio dynamics/plain={:.3}", plain_ms / recording_ms);
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
