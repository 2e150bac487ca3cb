//! `hearth bench --dynamics`: the training step of the nanoGPT CPU shape with and without
//! recording the training dynamics (each matrix's gradient, update and weight norms and each
//! block's residual size and attention entropy on a probe at the default interval, written to
//! a run store, and the weight and gradient histograms at the default evaluation interval), on
//! the same backend and threads, in alternating rounds of the same run. The ratio is the median
//! of the rounds' ratios; the total-time ratio and the histograms' share print above it.

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
    /// Milliseconds each set of histograms took (the recording side only).
    histogram_ms: Vec<f64>,
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
            histogram_ms: Vec::new(),
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
                        let start = Instant::now();
                        let histograms = hearth_engine::train::optim::histograms(&model, &grads);
                        store.append_histograms(&HistogramSet { step, histograms })?;
                        self.histogram_ms.push(start.elapsed().as_secs_f64() * 1e3);
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

/// Times `steps` steps (at least two evaluation intervals) of each side after `warmup`, in
/// rounds of `round`, and prints the ratio of their speeds over all timed steps.
pub fn run(steps: usize, warmup: usize, round: usize, threads: usize) -> Result<()> {
    let backend = BackendKind::preferred();
    let defaults = TrainSpec::default();
    // At least two evaluation intervals, so the histograms' cost is in the timed steps too
    // and the total is long enough that a passing stall of the machine moves it little.
    let steps = steps.max(2 * defaults.eval_interval);
    // Every round holds the same number of records: a whole number of intervals.
    let interval = defaults.dynamics_interval.max(1);
    let round = round.max(1).div_ceil(interval) * interval;
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
        for i in 0..rounds {
            // Which side goes first alternates, so neither gains from its place in the round.
            let (p, r) = if i % 2 == 0 {
                let p = plain.steps(round)?;
                (p, recording.steps(round)?)
            } else {
                let r = recording.steps(round)?;
                (plain.steps(round)?, r)
            };
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
        let histograms: f64 = recording.histogram_ms.iter().sum();
        println!(
            "histograms {:>9.2} ms per evaluation ({} in the timed and warm-up steps: {:.2}% of the recording side's time)",
            histograms / recording.histogram_ms.len().max(1) as f64,
            recording.histogram_ms.len(),
            100.0 * histograms / recording_ms
        );
        println!(
            "total time, plain over dynamics: {:.3} (every stall of the machine counted on the side it hit)",
            plain_ms / recording_ms
        );
        ratios.sort_by(f64::total_cmp);
        println!(
            "dynamics/plain by round: lowest {:.3}, median {:.3}, highest {:.3}",
            ratios[0],
            ratios[ratios.len() / 2],
            ratios[ratios.len() - 1]
        );
        // The median of the paired rounds: a stall of the machine moves one round, not the
        // result. Each round of `round` steps holds its records, so the median is the cost of
        // recording at the interval; the histograms' share is printed above.
        println!("ratio dynamics/plain={:.3}", ratios[ratios.len() / 2]);
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
