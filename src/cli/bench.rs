//! `hearth bench`: training-step speed of each backend against a PyTorch eager reference of the
//! same model, measured in the same run.

use anyhow::{Context, Result, bail};
use clap::Args;
use hearth_engine::data::{Corpus, Split, TokenizerKind};
use hearth_engine::eval::tokens_tensor;
use hearth_engine::model::{Gpt, ModelSpec};
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
    /// Intra-op threads for every backend and for PyTorch.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Python with torch installed (default: `$VIRTUAL_ENV/bin/python`, else `python3`).
    #[arg(long)]
    pub python: Option<PathBuf>,
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
    /// The whole studio, headless, on the monitor and compare pages while two runs train;
    /// ends with `ui_frame_p99_ms=<x>`.
    Ui {
        #[arg(long, default_value_t = 300)]
        frames: usize,
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

/// Times `steps` training steps of the nanoGPT CPU shape on `backend`, in a thread of its own
/// so LibTorch's per-thread thread count applies.
pub fn time_backend(
    backend: BackendKind,
    steps: usize,
    warmup: usize,
    threads: usize,
) -> Result<StepTiming> {
    time_backend_ops(backend, steps, warmup, threads, true)
}

/// As [`time_backend`]; with `fused` false, LibTorch runs Burn's decomposed attention, norms
/// and cross-entropy instead of its fused ops.
pub fn time_backend_ops(
    backend: BackendKind,
    steps: usize,
    warmup: usize,
    threads: usize,
    fused: bool,
) -> Result<StepTiming> {
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                backend.with_threads(threads, || {
                    let run = || time_backend_here(backend, steps, warmup);
                    if fused {
                        run()
                    } else {
                        hearth_engine::model::fused::with_decomposed(run)
                    }
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))?
    })
}

/// The timing loop of [`time_backend_ops`], on the calling thread's settings.
fn time_backend_here(backend: BackendKind, steps: usize, warmup: usize) -> Result<StepTiming> {
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
    let mut model = Gpt::new(&spec, corpus.tokenizer.vocab_size(), &device);
    let mut optim = AdamW::new(OptimSpec::default());
    let mut total = StepTiming::default();
    for i in 0..warmup + steps {
        let batch = corpus.sample_batch(Split::Train, BATCH, spec.context, &mut rng);
        let t0 = Instant::now();
        let x = tokens_tensor(batch.inputs, BATCH, spec.context, &device);
        let y = tokens_tensor(batch.targets, BATCH, spec.context, &device);
        let loss = next_token::loss(model.forward(x), y);
        let _: f32 = loss.clone().into_scalar();
        let t1 = Instant::now();
        let grads = GradBuffer::from_grads(&model, &loss.backward());
        let t2 = Instant::now();
        let (next, _) = optim.step(model, &grads, 1e-3);
        model = next;
        device.sync().ok();
        let t3 = Instant::now();
        if i >= warmup {
            total.forward_ms += (t1 - t0).as_secs_f64() * 1e3;
            total.backward_ms += (t2 - t1).as_secs_f64() * 1e3;
            total.optimizer_ms += (t3 - t2).as_secs_f64() * 1e3;
        }
    }
    let n = steps.max(1) as f64;
    Ok(StepTiming {
        forward_ms: total.forward_ms / n,
        backward_ms: total.backward_ms / n,
        optimizer_ms: total.optimizer_ms / n,
    })
}

fn python(args: &BenchArgs) -> PathBuf {
    args.python.clone().unwrap_or_else(|| {
        std::env::var_os("VIRTUAL_ENV")
            .map(|v| PathBuf::from(v).join("bin").join("python"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("python3"))
    })
}

/// Runs `scripts/bench_pytorch.py` and reads its JSON line.
pub fn time_pytorch(args: &BenchArgs) -> Result<StepTiming> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_pytorch.py");
    let py = python(args);
    let out = Command::new(&py)
        .arg(&script)
        .args(["--steps", &args.steps.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .output()
        .with_context(|| format!("cannot run {}", py.display()))?;
    if !out.status.success() {
        bail!(
            "the PyTorch reference failed ({}): {}",
            py.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("unexpected output from the PyTorch reference: {stdout}"))?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
    Ok(StepTiming {
        forward_ms: get("forward_ms"),
        backward_ms: get("backward_ms"),
        optimizer_ms: get("optimizer_ms"),
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.what {
        None => run_train(args),
        Some(BenchWhat::Dist { steps }) => run_dist(*steps, args.threads),
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
        Some(BenchWhat::Ui { frames }) => {
            let dir = std::env::temp_dir().join(format!("hearth-bench-ui-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            println!(
                "studio at 1280x800, {frames} frames alternating monitor (each run) and compare (both) while two runs train (1 thread each)"
            );
            let result = hearth_studio::bench::ui_benchmark(&dir, *frames);
            let _ = std::fs::remove_dir_all(&dir);
            let bench = result.map_err(anyhow::Error::msg)?;
            println!(
                "backend {}; runs at steps {}->{} and {}->{} while timed",
                bench.backend,
                bench.steps[0].0,
                bench.steps[0].1,
                bench.steps[1].0,
                bench.steps[1].1
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
    println!(
        "nanoGPT CPU shape: vocab 65, block 64, batch {BATCH}, 4 layers, 4 heads, 128 wide; {} threads, {} timed steps after {} warmup",
        args.threads, args.steps, args.warmup
    );
    let reference = time_pytorch(args)?;
    let mut rows = vec![("pytorch eager".to_string(), reference)];
    let backends: Vec<BackendKind> = BackendKind::available()
        .into_iter()
        .filter(|b| *b != BackendKind::LibtorchCuda)
        .collect();
    for backend in &backends {
        rows.push((
            backend.name().to_string(),
            time_backend(*backend, args.steps, args.warmup, args.threads)?,
        ));
        if *backend == BackendKind::Libtorch {
            // The same steps with Burn's decomposed ops, to show what the fused ops buy.
            rows.push((
                "libtorch-decomp".to_string(),
                time_backend_ops(*backend, args.steps, args.warmup, args.threads, false)?,
            ));
        }
    }
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
    for (name, t) in rows
        .iter()
        .skip(1)
        .filter(|(n, _)| n != "libtorch" && n != "libtorch-decomp")
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
