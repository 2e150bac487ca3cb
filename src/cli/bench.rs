//! `hearth bench`: training-step speed of each backend against a PyTorch eager reference of the
//! same model, measured in the same run.

use anyhow::{Context, Result, bail};
use clap::Args;
use hearth_engine::data::{Corpus, Split, TokenizerKind};
use hearth_engine::eval::tokens_tensor;
use hearth_engine::model::{Model, ModelSpec};
use hearth_engine::objective::next_token;
use hearth_engine::train::{AdamW, BackendKind, GradBuffer, OptimSpec};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// What to measure (default: training-step speed against PyTorch).
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    /// Timed steps per backend.
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Steps each backend takes in turn before the next one's turn (the timed steps are taken
    /// in rounds of this many).
    #[arg(long, default_value_t = 10)]
    pub round: usize,
    /// Intra-op threads for every backend and for PyTorch.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Python with torch installed (default: `$VIRTUAL_ENV/bin/python`, else `python3`).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Time training with and without recording the training dynamics, same run; the last
    /// line is `ratio dynamics/plain=<x>` (1: recording costs nothing).
    #[arg(long, conflicts_with = "what")]
    pub dynamics: bool,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchWhat {
    /// Plot frame time: many runs of many points, zoomed and panned, drawn headless.
    Plot {
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
        #[arg(long, default_value_t = 400)]
        frames: usize,
    },
    /// Data-parallel scaling on this machine: one process with all threads, `mpirun -n 2`
    /// processes with half the threads each, and two replicas in one process, each training
    /// the nanoGPT CPU shape on generated text. Needs a build with the `mpi` feature and
    /// `mpirun`; ends with `scaling 2-rank/1-rank=<x>`.
    Dist {
        #[arg(long, default_value_t = 60)]
        steps: usize,
    },
    /// The whole studio, headless, on the monitor and compare pages while runs train in worker
    /// processes it follows; ends with `ui_frame_p99_ms=<x>`.
    Ui {
        #[arg(long, default_value_t = 300)]
        frames: usize,
        /// Runs training while the frames are timed (one thread each).
        #[arg(long, default_value_t = 4)]
        runs: usize,
    },
    /// The attention heatmap of a long probe, hovered; ends with `attention_frame_p99_ms=<x>`.
    Attention {
        #[arg(long, default_value_t = 1_024)]
        tokens: usize,
        #[arg(long, default_value_t = 300)]
        frames: usize,
    },
    /// The embedding map with many points, zoomed and panned; ends with
    /// `embed_frame_p99_ms=<x>`.
    Embed {
        #[arg(long, default_value_t = 100_000)]
        points: usize,
        #[arg(long, default_value_t = 300)]
        frames: usize,
    },
    /// Embedding an STS file's sentences with an imported sentence encoder on LibTorch's
    /// CPU against sentence-transformers with the same folder, same threads, same run; ends
    /// with `ratio hearth/sentence-transformers=<x>` (above 1: Hearth is faster).
    EmbedSts {
        /// The STS file (tab-separated STS benchmark layout, or JSONL {"a","b","score"}).
        #[arg(long)]
        sts: PathBuf,
        /// The sentence-transformers folder (default: all-MiniLM-L6-v2 in the cache, from
        /// scripts/fetch_fixtures.sh).
        #[arg(long)]
        hf: Option<PathBuf>,
        /// Alternating rounds of both.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// A LoRA training step of an imported decoder (SmolLM2-135M by default) on LibTorch
    /// against PyTorch eager with peft on the same model, shapes and threads, in alternating
    /// rounds; ends with `ratio lora libtorch/pytorch=<x>` (above 1: Hearth is faster).
    Lora {
        /// The decoder's GGUF file (default: SmolLM2-135M-Instruct in the cache, from
        /// scripts/fetch_fixtures.sh).
        #[arg(long)]
        gguf: Option<PathBuf>,
        #[arg(long, default_value_t = 4)]
        batch: usize,
        #[arg(long, default_value_t = 256)]
        context: usize,
        #[arg(long, default_value_t = 8)]
        rank: usize,
        /// Timed steps per round and side.
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Rounds each side takes in turn; the ratio is of the rounds' medians (five: one
        /// round slowed by the machine moves it little).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Preparing a generated text of N MB as `hearth dataset` does against Python with
    /// Hugging Face `tokenizers` (train BPE 4096, batch-encode, write uint16); ends with
    /// `ratio hearth/python=<x> peak_rss_mb=<x>` (above 1: Hearth is faster).
    Data {
        /// Megabytes of generated text.
        #[arg(long, default_value_t = 100.0)]
        mb: f64,
    },
    /// Opening a generated project of many runs, to the first frame.
    Store {
        #[arg(long, default_value_t = 1_000)]
        runs: usize,
        #[arg(long, default_value_t = 500)]
        steps: usize,
    },
}

/// Mean milliseconds per phase of one training step.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTiming {
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
}

impl StepTiming {
    pub fn step_ms(&self) -> f64 {
        self.forward_ms + self.backward_ms + self.optimizer_ms
    }
}

const BATCH: usize = 12;

fn bench_spec() -> ModelSpec {
    ModelSpec::default() // nanoGPT's CPU shape: 4 layers, 4 heads, 128 wide, block 64
}

/// The nanoGPT CPU shape's training loop on one backend, kept between calls so steps can be
/// timed in rounds.
struct Stepper {
    device: burn::tensor::Device,
    corpus: Corpus,
    model: Option<Model>,
    optim: AdamW,
    rng: StdRng,
}

impl Stepper {
    fn new(backend: BackendKind) -> Result<Self> {
        let device = backend.device().map_err(anyhow::Error::msg)?.autodiff();
        device.seed(1337);
        let spec = bench_spec();
        // Random text over a 65-character alphabet, like Tiny Shakespeare's.
        let alphabet: Vec<char> = (0..65u32)
            .map(|i| char::from_u32(0x21 + i).unwrap_or('?'))
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        let text: String = (0..20_000)
            .map(|_| alphabet[rand::Rng::random_range(&mut rng, 0..alphabet.len())])
            .collect();
        let corpus = Corpus::from_text(&text, TokenizerKind::Char, 0.1);
        let model = Model::new(&spec, corpus.tokenizer.vocab_size(), &device);
        Ok(Self {
            device,
            corpus,
            model: Some(model),
            optim: AdamW::new(OptimSpec::default()),
            rng,
        })
    }

    /// Milliseconds spent in each phase over `n` training steps (totals, not means).
    fn steps(&mut self, n: usize) -> StepTiming {
        let context = bench_spec().context;
        let device = &self.device;
        let mut total = StepTiming::default();
        for _ in 0..n {
            let batch = self
                .corpus
                .sample_batch(Split::Train, BATCH, context, &mut self.rng);
            let model = self
                .model
                .take()
                .expect("the model is put back after each step");
            let t0 = Instant::now();
            let x = tokens_tensor(batch.inputs, BATCH, context, device);
            let y = tokens_tensor(batch.targets, BATCH, context, device);
            let loss = next_token::loss(model.forward(x), y);
            let _: f32 = loss.clone().into_scalar();
            let t1 = Instant::now();
            let grads = GradBuffer::from_grads(&model, &loss.backward());
            let t2 = Instant::now();
            let (next, _) = self.optim.step(model, &grads, 1e-3);
            self.model = Some(next);
            device.sync().ok();
            let t3 = Instant::now();
            total.forward_ms += (t1 - t0).as_secs_f64() * 1e3;
            total.backward_ms += (t2 - t1).as_secs_f64() * 1e3;
            total.optimizer_ms += (t3 - t2).as_secs_f64() * 1e3;
        }
        total
    }
}

/// One contender of the interleaved benchmark: asked for `n` steps, it answers with the
/// milliseconds of each phase over them.
trait Contender {
    fn steps(&mut self, n: usize) -> Result<StepTiming>;
}

/// A Hearth backend training in a thread of its own (so LibTorch's per-thread thread count and
/// Flex's thread pool apply), holding one model per mode between rounds. Modes share the
/// thread: LibTorch's OpenMP workers belong to the thread that starts them, and a second team
/// waiting on another thread would take cores from the one being timed.
struct BackendThread {
    ask: Option<std::sync::mpsc::Sender<(usize, usize)>>,
    answer: std::sync::mpsc::Receiver<Result<StepTiming>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl BackendThread {
    /// One model per entry of `fused`; with `false`, the backend runs Burn's decomposed
    /// attention, norms and cross-entropy instead of its fused ops.
    fn spawn(backend: BackendKind, threads: usize, fused: Vec<bool>) -> Self {
        let (ask, asks) = std::sync::mpsc::channel::<(usize, usize)>();
        let (reply, answer) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            backend.with_threads(threads, || {
                let mut steppers = Vec::new();
                for _ in &fused {
                    match Stepper::new(backend) {
                        Ok(s) => steppers.push(s),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            return;
                        }
                    }
                }
                for (mode, n) in asks {
                    let stepper = &mut steppers[mode];
                    let t = if fused[mode] {
                        stepper.steps(n)
                    } else {
                        hearth_engine::model::fused::with_decomposed(|| stepper.steps(n))
                    };
                    if reply.send(Ok(t)).is_err() {
                        return;
                    }
                }
            })
        });
        Self {
            ask: Some(ask),
            answer,
            handle: Some(handle),
        }
    }

    fn steps(&self, mode: usize, n: usize) -> Result<StepTiming> {
        let ask = self
            .ask
            .as_ref()
            .context("the benchmark thread has stopped")?;
        ask.send((mode, n))
            .map_err(|_| anyhow::anyhow!("the benchmark thread has stopped"))?;
        self.answer
            .recv()
            .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))?
    }
}

impl Drop for BackendThread {
    fn drop(&mut self) {
        self.ask.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One mode of a [`BackendThread`].
struct BackendMode {
    thread: std::rc::Rc<BackendThread>,
    mode: usize,
}

impl Contender for BackendMode {
    fn steps(&mut self, n: usize) -> Result<StepTiming> {
        self.thread.steps(self.mode, n)
    }
}

/// `scripts/bench_pytorch.py --serve`: the PyTorch eager reference, kept running between
/// rounds.
struct PyTorchProcess {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    python: PathBuf,
}

impl PyTorchProcess {
    fn spawn(args: &BenchArgs) -> Result<Self> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_pytorch.py");
        let python = python(args);
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--serve")
            .args(["--threads", &args.threads.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", python.display()))?;
        let stdin = child.stdin.take();
        let stdout = std::io::BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
            python,
        })
    }

    /// Why the reference stopped answering: its exit status and error output.
    fn failure(&mut self, what: &str) -> anyhow::Error {
        self.stdin.take();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
        anyhow::anyhow!(
            "the PyTorch reference ({}) {what} ({status}): {}",
            self.python.display(),
            err.trim()
        )
    }
}

impl Contender for PyTorchProcess {
    fn steps(&mut self, n: usize) -> Result<StepTiming> {
        use std::io::{BufRead, Write};
        let sent = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{n}").and_then(|_| stdin.flush()).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.failure("stopped"));
        }
        let mut line = String::new();
        if self.stdout.read_line(&mut line).unwrap_or(0) == 0 {
            return Err(self.failure("stopped"));
        }
        let v: serde_json::Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(_) => return Err(self.failure(&format!("answered `{}`", line.trim()))),
        };
        let get = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        Ok(StepTiming {
            forward_ms: get("forward_ms"),
            backward_ms: get("backward_ms"),
            optimizer_ms: get("optimizer_ms"),
        })
    }
}

impl Drop for PyTorchProcess {
    fn drop(&mut self) {
        self.stdin.take(); // an ended input stops it
        let _ = self.child.wait();
    }
}

fn python(args: &BenchArgs) -> PathBuf {
    args.python.clone().unwrap_or_else(|| {
        std::env::var_os("VIRTUAL_ENV")
            .map(|v| PathBuf::from(v).join("bin").join("python"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("python3"))
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.dynamics {
        return super::bench_dynamics::run(args.steps, args.warmup, args.round, args.threads);
    }
    match &args.what {
        None => run_train(args),
        Some(BenchWhat::Dist { steps }) => run_dist(*steps, args.threads),
        Some(BenchWhat::Data { mb }) => super::bench_data::run(*mb, &python(args)),
        Some(BenchWhat::Lora {
            gguf,
            batch,
            context,
            rank,
            steps,
            rounds,
        }) => super::bench_lora::run(
            &super::bench_lora::LoraBench {
                gguf: gguf.clone().unwrap_or_else(super::bench_lora::default_gguf),
                batch: *batch,
                context: *context,
                rank: *rank,
                steps: *steps,
                rounds: *rounds,
                threads: args.threads,
            },
            &python(args),
        ),
        Some(BenchWhat::EmbedSts { sts, hf, rounds }) => super::bench_sts::run(
            &hf.clone().unwrap_or_else(super::bench_sts::default_folder),
            sts,
            *rounds,
            args.threads,
            &python(args),
        ),
        #[cfg(not(feature = "studio"))]
        Some(
            BenchWhat::Plot { .. }
            | BenchWhat::Store { .. }
            | BenchWhat::Ui { .. }
            | BenchWhat::Attention { .. }
            | BenchWhat::Embed { .. },
        ) => bail!(
            "`hearth bench plot`, `store`, `ui`, `attention` and `embed` draw the studio: this hearth was built without the `studio` feature"
        ),
        #[cfg(feature = "studio")]
        Some(BenchWhat::Plot {
            runs,
            points,
            frames,
        }) => {
            println!(
                "{runs} runs x {points} points, {frames} frames of zoom, pan and zoom out at 1280x800"
            );
            let (build_ms, stats) = hearth_studio::bench::plot_benchmark(*runs, *points, *frames);
            println!(
                "min/max block index built in {build_ms:.1} ms (once per curve, extended as points arrive)"
            );
            println!(
                "frame CPU time: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} frames",
                stats.p50_ms, stats.p99_ms, stats.max_ms, stats.frames
            );
            println!("plot_frame_p99_ms={:.3}", stats.p99_ms);
            Ok(())
        }
        #[cfg(feature = "studio")]
        Some(BenchWhat::Ui { frames, runs }) => {
            let dir = std::env::temp_dir().join(format!("hearth-bench-ui-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let worker = hearth_engine::train::worker_exe();
            println!(
                "studio at 1280x800, {frames} frames alternating monitor and compare while {runs} runs train (1 thread each, {})",
                if worker.is_some() {
                    "worker processes the studio follows"
                } else {
                    "threads of the studio"
                }
            );
            let result = hearth_studio::bench::ui_benchmark(&dir, *frames, *runs, worker);
            let _ = std::fs::remove_dir_all(&dir);
            let bench = result.map_err(anyhow::Error::msg)?;
            let steps: Vec<String> = bench
                .steps
                .iter()
                .map(|(a, b)| format!("{a}->{b}"))
                .collect();
            println!(
                "backend {}; runs at steps {} while timed",
                bench.backend,
                steps.join(", ")
            );
            print_frames(&bench.stats);
            println!("ui_frame_p99_ms={:.3}", bench.stats.p99_ms);
            Ok(())
        }
        #[cfg(feature = "studio")]
        Some(BenchWhat::Attention { tokens, frames }) => {
            println!(
                "attention heatmap of a {tokens}-token probe, hovered, a new snapshot every 100 frames, {frames} frames at 1280x800"
            );
            let stats = hearth_studio::bench::attention_benchmark(*tokens, *frames);
            print_frames(&stats);
            println!("attention_frame_p99_ms={:.3}", stats.p99_ms);
            Ok(())
        }
        #[cfg(feature = "studio")]
        Some(BenchWhat::Embed { points, frames }) => {
            println!(
                "embedding map of {points} points, {frames} frames of zoom, pan and zoom out at 1280x800, hovered"
            );
            let (build_ms, stats) = hearth_studio::bench::embed_benchmark(*points, *frames);
            println!("first frame (index built): {build_ms:.1} ms");
            print_frames(&stats);
            println!("embed_frame_p99_ms={:.3}", stats.p99_ms);
            Ok(())
        }
        #[cfg(feature = "studio")]
        Some(BenchWhat::Store { runs, steps }) => {
            let dir =
                std::env::temp_dir().join(format!("hearth-bench-store-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let t = Instant::now();
            hearth_studio::bench::generate_project(&dir, *runs, *steps)?;
            println!(
                "generated {runs} runs of {steps} steps in {:.1} s at {}",
                t.elapsed().as_secs_f64(),
                dir.display()
            );
            let secs = hearth_studio::bench::open_project_seconds(&dir);
            let again = hearth_studio::bench::open_project_seconds(&dir);
            println!("open to first frame: {secs:.3} s (second open {again:.3} s)");
            let _ = std::fs::remove_dir_all(&dir);
            println!("open_1000_runs_s={secs:.3}");
            Ok(())
        }
    }
}

#[cfg(feature = "studio")]
fn print_frames(stats: &hearth_studio::bench::FrameStats) {
    println!(
        "frame CPU time: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} frames",
        stats.p50_ms, stats.p99_ms, stats.max_ms, stats.frames
    );
}

fn run_train(args: &BenchArgs) -> Result<()> {
    let tokens = (BATCH * bench_spec().context) as f64;
    let round = args.round.clamp(1, args.steps.max(1));
    let rounds = args.steps.max(1).div_ceil(round);
    println!(
        "nanoGPT CPU shape: vocab 65, block 64, batch {BATCH}, 4 layers, 4 heads, 128 wide; {} threads, {} timed steps after {} warmup, in {rounds} rounds of {round} steps taken by each backend in turn",
        args.threads,
        rounds * round,
        args.warmup
    );
    let mut contenders: Vec<(String, Box<dyn Contender>)> = vec![(
        "pytorch eager".to_string(),
        Box::new(PyTorchProcess::spawn(args)?),
    )];
    for backend in BackendKind::available()
        .into_iter()
        .filter(|b| *b != BackendKind::LibtorchCuda)
    {
        // The same steps with Burn's decomposed ops, to show what the fused ops buy.
        let decomposed = matches!(backend, BackendKind::Libtorch | BackendKind::Flex);
        let modes = if decomposed {
            vec![true, false]
        } else {
            vec![true]
        };
        let thread = std::rc::Rc::new(BackendThread::spawn(backend, args.threads, modes));
        contenders.push((
            backend.name().to_string(),
            Box::new(BackendMode {
                thread: thread.clone(),
                mode: 0,
            }),
        ));
        if decomposed {
            contenders.push((
                format!("{}-decomp", backend.name()),
                Box::new(BackendMode { thread, mode: 1 }),
            ));
        }
    }
    for (_, c) in contenders.iter_mut() {
        c.steps(args.warmup)?;
    }
    // Each round gives every contender the same minutes of this machine, so a slower or
    // faster spell (other load, clock changes) falls on all of them alike.
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut totals = vec![StepTiming::default(); contenders.len()];
    for _ in 0..rounds {
        for (i, (_, c)) in contenders.iter_mut().enumerate() {
            let t = c.steps(round)?;
            per_round[i].push(t.step_ms());
            totals[i].forward_ms += t.forward_ms;
            totals[i].backward_ms += t.backward_ms;
            totals[i].optimizer_ms += t.optimizer_ms;
        }
    }
    let n = (rounds * round) as f64;
    let rows: Vec<(String, StepTiming)> = contenders
        .iter()
        .zip(&totals)
        .map(|((name, _), t)| {
            (
                name.clone(),
                StepTiming {
                    forward_ms: t.forward_ms / n,
                    backward_ms: t.backward_ms / n,
                    optimizer_ms: t.optimizer_ms / n,
                },
            )
        })
        .collect();
    drop(contenders);
    let reference = rows[0].1;
    println!(
        "{:<14} {:>9} {:>10} {:>11} {:>11} {:>12} {:>16}",
        "backend",
        "ms/step",
        "tokens/s",
        "forward ms",
        "backward ms",
        "optimizer ms",
        "hearth/pytorch"
    );
    for (name, t) in &rows {
        let ratio = reference.step_ms() / t.step_ms();
        println!(
            "{:<14} {:>9.2} {:>10.0} {:>11.2} {:>11.2} {:>12.2} {:>16.3}",
            name,
            t.step_ms(),
            tokens / t.step_ms() * 1e3,
            t.forward_ms,
            t.backward_ms,
            t.optimizer_ms,
            ratio
        );
    }
    for (i, (name, _)) in rows.iter().enumerate().skip(1) {
        let mut ratios: Vec<f64> = per_round[0]
            .iter()
            .zip(&per_round[i])
            .map(|(py, own)| py / own)
            .collect();
        ratios.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
            println!(
                "{name}/pytorch by round: lowest {lo:.3}, median {:.3}, highest {hi:.3}",
                ratios[ratios.len() / 2]
            );
        }
    }
    for (name, t) in rows
        .iter()
        .skip(1)
        .filter(|(n, _)| n != "libtorch" && !n.ends_with("-decomp"))
    {
        println!(
            "ratio {name}/pytorch={:.3}",
            reference.step_ms() / t.step_ms()
        );
    }
    match rows.iter().find(|(n, _)| n == "libtorch") {
        Some((_, t)) => println!(
            "ratio libtorch/pytorch={:.3}",
            reference.step_ms() / t.step_ms()
        ),
        None => bail!("LibTorch is not built in (build with the default `libtorch` feature)"),
    }
    Ok(())
}

/// One `hearth train` launch of the scaling benchmark: its tokens/s and all-reduce seconds.
fn launch(prefix: &[&str], extra: &[&str], steps: usize, threads: usize) -> Result<(f64, f64)> {
    let exe = std::env::current_exe().context("cannot find the hearth binary")?;
    let out_dir = tempfile_dir()?;
    let (program, pre_args) = match prefix.split_first() {
        Some((program, rest)) => (program.to_string(), rest.to_vec()),
        None => (exe.to_string_lossy().into_owned(), Vec::new()),
    };
    let mut cmd = Command::new(&program);
    cmd.args(&pre_args);
    if !prefix.is_empty() {
        cmd.arg(&exe);
    }
    let steps = steps.to_string();
    let threads = threads.to_string();
    cmd.args([
        "train",
        "--steps",
        &steps,
        "--threads",
        &threads,
        "--batch",
        "12",
    ])
    .args([
        "--eval-interval",
        "100000",
        "--dropout",
        "0",
        "--seed",
        "1337",
    ])
    .args(extra)
    .arg("--out")
    .arg(out_dir.join("run"));
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {program}"))?;
    let _ = std::fs::remove_dir_all(&out_dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{program} {}: {}", extra.join(" "), stderr.trim());
    }
    let field = |text: &str, key: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    let last = stdout.lines().last().unwrap_or_default();
    let tokens_per_s = field(last, "tokens_per_s=")
        .with_context(|| format!("no final line from {program}: {stdout}"))?;
    let allreduce = stderr
        .lines()
        .find_map(|l| l.strip_prefix("all-reduce: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Ok((tokens_per_s, allreduce))
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "hearth-bench-dist-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `hearth bench dist`: 1 process x all threads against 2 processes x half the threads (MPI)
/// and 2 replicas in one process.
fn run_dist(steps: usize, threads: usize) -> Result<()> {
    if !cfg!(feature = "mpi") {
        bail!(
            "`hearth bench dist` launches `hearth train --distributed`: build with `--features mpi`"
        );
    }
    let half = (threads / 2).max(1);
    println!(
        "nanoGPT CPU shape, batch 12 x 64 tokens, {steps} steps, generated text; {threads} threads in all"
    );
    let (one, _) = launch(&[], &[], steps, threads)?;
    println!("1 process x {threads} threads: {one:.0} tokens/s");
    let (replicas, _) = launch(&[], &["--devices", "cpu:2"], steps, threads)?;
    println!(
        "2 replicas in 1 process ({half} thread each): {replicas:.0} tokens/s ({:.2}x)",
        replicas / one
    );
    let mpirun = [
        "mpirun",
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
        "-n",
        "2",
    ];
    let (ranks, allreduce) = launch(&mpirun, &["--distributed"], steps, half)?;
    println!(
        "2 processes x {half} thread (mpirun): {ranks:.0} tokens/s; all-reduce {:.3} s in {steps} steps ({:.2} ms per step, waiting for the slower rank included)",
        allreduce,
        allreduce * 1e3 / steps as f64
    );
    println!("scaling 2-rank/1-rank={:.3}", ranks / one);
    Ok(())
}
