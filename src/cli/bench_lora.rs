//! `hearth bench lora`: one LoRA training step of an imported decoder (SmolLM2-135M by
//! default: batch 4, context 256, rank 8 on q, k, v, o) on LibTorch's CPU, against PyTorch
//! eager with peft on the same model (exported as a Hugging Face folder), the same shapes and
//! threads, in alternating rounds of the same run.

use anyhow::{Context, Result, bail};
use hearth_engine::eval::tokens_tensor;
use hearth_engine::export::{LoadedRun, export_run, import_gguf};
use hearth_engine::model::{LoraSpec, Model};
use hearth_engine::objective::next_token;
use hearth_engine::train::{AdamW, BackendKind, GradBuffer, OptimSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What `hearth bench lora` times.
#[derive(Debug, Clone)]
pub struct LoraBench {
    /// The GGUF file of the decoder.
    pub gguf: PathBuf,
    /// Rows per step.
    pub batch: usize,
    /// Tokens per row.
    pub context: usize,
    /// Adapter rank (alpha is twice it).
    pub rank: usize,
    /// Timed steps per round and side.
    pub steps: usize,
    /// Alternating rounds.
    pub rounds: usize,
    /// Intra-op threads of both sides.
    pub threads: usize,
}

/// SmolLM2-135M-Instruct where `scripts/fetch_fixtures.sh` puts it.
pub fn default_gguf() -> PathBuf {
    let cache = std::env::var_os("HEARTH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hearth")))
        .unwrap_or_else(|| PathBuf::from(".cache/hearth"));
    cache.join("fixtures/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Hearth's side: the adapters' training loop on LibTorch, kept between rounds.
struct HearthSide {
    model: Option<Model>,
    optim: AdamW,
    rng: StdRng,
    device: burn::tensor::Device,
    vocab: usize,
    /// Seconds of forward, backward and optimizer over the last round.
    phases: [f64; 3],
    /// CPU seconds of the process over the last round (all threads), where readable.
    cpu: Option<f64>,
}

/// CPU seconds this process has used so far, all threads (user and system, from
/// `/proc/self/stat`), where the system has it.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which ends at the last ')': state is field 3, utime 14,
    // stime 15 (clock ticks of 1/100 s on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

impl HearthSide {
    fn new(run: &Path, bench: &LoraBench) -> Result<Self> {
        let device = BackendKind::Libtorch
            .device()
            .map_err(anyhow::Error::msg)?
            .autodiff();
        let loaded = LoadedRun::load(
            run,
            &BackendKind::Flex.device().map_err(anyhow::Error::msg)?,
        )?;
        let base = hearth_engine::project::store::lora_on_run(bench.rank, run)
            .map_err(anyhow::Error::msg)?;
        let spec = hearth_engine::model::ModelSpec {
            context: bench.context,
            lora: Some(LoraSpec {
                targets: ["q", "k", "v", "o"].map(String::from).to_vec(),
                ..base
            }),
            ..loaded.spec.model.clone()
        };
        let vocab = loaded.model.vocab();
        let model = Model::new(&spec, vocab, &device).load_lora_base()?;
        Ok(Self {
            model: Some(model),
            optim: AdamW::new(OptimSpec::default()),
            rng: StdRng::seed_from_u64(0),
            device,
            vocab,
            phases: [0.0; 3],
            cpu: None,
        })
    }

    /// Seconds over `n` steps, and the last loss; the seconds of forward, backward and
    /// optimizer in `self.phases`.
    fn steps(&mut self, n: usize, bench: &LoraBench) -> (f64, f32) {
        let (b, t) = (bench.batch, bench.context);
        let t0 = Instant::now();
        let cpu0 = process_cpu_seconds();
        let mut last = f32::NAN;
        self.phases = [0.0; 3];
        for _ in 0..n {
            let tokens: Vec<i64> = (0..b * (t + 1))
                .map(|_| self.rng.random_range(0..self.vocab as i64))
                .collect();
            let x: Vec<i64> = tokens.chunks(t + 1).flat_map(|r| r[..t].to_vec()).collect();
            let y: Vec<i64> = tokens.chunks(t + 1).flat_map(|r| r[1..].to_vec()).collect();
            let model = self
                .model
                .take()
                .expect("the model is put back after each step");
            let p0 = Instant::now();
            let loss = next_token::loss(
                model.forward(tokens_tensor(x, b, t, &self.device)),
                tokens_tensor(y, b, t, &self.device),
            );
            last = loss.clone().into_scalar();
            let p1 = Instant::now();
            let grads = GradBuffer::from_grads(&model, &loss.backward());
            let p2 = Instant::now();
            let (next, _) = self.optim.step(model, &grads, 1e-4);
            self.model = Some(next);
            self.device.sync().ok();
            let p3 = Instant::now();
            for (phase, d) in self.phases.iter_mut().zip([p1 - p0, p2 - p1, p3 - p2]) {
                *phase += d.as_secs_f64();
            }
        }
        self.device.sync().ok();
        self.cpu = cpu0.zip(process_cpu_seconds()).map(|(a, b)| b - a);
        (t0.elapsed().as_secs_f64(), last)
    }
}

/// PyTorch's side: `scripts/lora_bench.py` serving rounds on stdin.
struct PythonSide {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PythonSide {
    fn spawn(python: &Path, folder: &Path, bench: &LoraBench) -> Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lora_bench.py");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(folder)
            .args(["--batch", &bench.batch.to_string()])
            .args(["--context", &bench.context.to_string()])
            .args(["--rank", &bench.rank.to_string()])
            .args(["--alpha", &(2 * bench.rank).to_string()])
            .args(["--threads", &bench.threads.to_string()])
            .env("OMP_NUM_THREADS", bench.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", python.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().context("no stdout")?);
        let mut side = Self {
            child,
            stdin,
            stdout,
        };
        side.answer()?;
        Ok(side)
    }

    fn answer(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("scripts/lora_bench.py stopped (is peft installed? source scripts/env.sh)");
        }
        serde_json::from_str(&line).with_context(|| format!("scripts/lora_bench.py said {line:?}"))
    }

    /// Seconds over `n` steps, the last loss and the CPU seconds of the process.
    fn steps(&mut self, n: usize) -> Result<(f64, f32, Option<f64>)> {
        writeln!(self.stdin, "{n}")?;
        self.stdin.flush()?;
        let v = self.answer()?;
        Ok((
            v["seconds"].as_f64().context("no seconds")?,
            v["loss"].as_f64().unwrap_or(f64::NAN) as f32,
            v["cpu"].as_f64(),
        ))
    }
}

impl Drop for PythonSide {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Imports the GGUF file, exports it for PyTorch, then times both sides in alternating rounds;
/// prints each round and `ratio lora libtorch/pytorch=<x>` (PyTorch's seconds per step over
/// Hearth's, median of the rounds: above 1 is faster).
pub fn run(bench: &LoraBench, python: &Path) -> Result<()> {
    if !bench.gguf.exists() {
        bail!(
            "{} not found (run `bash scripts/fetch_fixtures.sh` with scripts/env.sh sourced, or pass --gguf)",
            bench.gguf.display()
        );
    }
    let tmp = std::env::temp_dir().join(format!("hearth-bench-lora-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let flex = BackendKind::Flex.device().map_err(anyhow::Error::msg)?;
    let run = tmp.join("run");
    import_gguf(&bench.gguf, &run, "bench", &flex)?;
    let folder = tmp.join("hf");
    export_run(&run, &folder, &flex)?;
    println!(
        "LoRA step of {} (rank {} on q,k,v,o), batch {} x context {}, {} threads",
        bench.gguf.display(),
        bench.rank,
        bench.batch,
        bench.context,
        bench.threads
    );
    BackendKind::Libtorch.set_threads(bench.threads);
    let result = (|| -> Result<()> {
        let mut ours = HearthSide::new(&run, bench)?;
        let mut theirs = PythonSide::spawn(python, &folder, bench)?;
        // One untimed step each.
        ours.steps(1, bench);
        theirs.steps(1)?;
        let (mut mine, mut refs) = (Vec::new(), Vec::new());
        for round in 1..=bench.rounds {
            let (s, loss) = ours.steps(bench.steps, bench);
            let (r, ref_loss, ref_cpu) = theirs.steps(bench.steps)?;
            let (s, r) = (s / bench.steps as f64, r / bench.steps as f64);
            let [f, b, o] = ours.phases.map(|p| p * 1e3 / bench.steps as f64);
            // CPU time per step: on a loaded machine it moves less than the wall time.
            let cpu = |c: Option<f64>| match c {
                Some(c) => format!("cpu {:.0}; ", c * 1e3 / bench.steps as f64),
                None => String::new(),
            };
            println!(
                "round {round}: libtorch {:.0} ms/step (forward {f:.0}, backward {b:.0}, optimizer {o:.0}; {}loss {loss:.3}), pytorch+peft {:.0} ms/step ({}loss {ref_loss:.3}), ratio {:.3}",
                s * 1e3,
                cpu(ours.cpu),
                r * 1e3,
                cpu(ref_cpu),
                r / s
            );
            mine.push(s);
            refs.push(r);
        }
        println!(
            "ratio lora libtorch/pytorch={:.3}",
            median(refs) / median(mine)
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
