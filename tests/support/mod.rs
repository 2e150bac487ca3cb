//! Helpers of the command-line test files: the `hearth` binary, commands that must succeed,
//! and the Python environment with `transformers` the parity tests compare against.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The output of a command that must succeed.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A Python that imports `transformers`, `safetensors` and `torch`: `$HEARTH_PYTHON`, the
/// active virtual environment's, the LibTorch environment `scripts/env.sh` makes, or
/// `python3`. `None` (with the reason printed) when there is none, unless
/// `HEARTH_REQUIRE_TRANSFORMERS` is set.
pub fn python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("HEARTH_PYTHON") {
        candidates.push(p.into());
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        candidates.push(PathBuf::from(venv).join("bin/python"));
    }
    let cache = std::env::var_os("HEARTH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hearth")));
    if let Some(cache) = cache {
        candidates.push(cache.join("torch-venv/bin/python"));
    }
    candidates.push("python3".into());
    let mut tried = Vec::new();
    for candidate in candidates {
        let works = Command::new(&candidate)
            .args(["-c", "import transformers, safetensors, torch"])
            .output()
            .is_ok_and(|o| o.status.success());
        if works {
            return Some(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    let reason = format!(
        "no Python with transformers, safetensors and torch (tried {}); run `source scripts/env.sh`",
        tried.join(", ")
    );
    if std::env::var_os("HEARTH_REQUIRE_TRANSFORMERS").is_some() {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// Runs `scripts/hf_parity.py` with `args`; returns its stdout lines (each a JSON result).
pub fn parity_script(python: &Path, args: &[&str]) -> Vec<Value> {
    script(python, "hf_parity.py", args)
}

/// Runs `scripts/<name>` with `args`; returns its stdout lines that are JSON.
pub fn script(python: &Path, name: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new(python)
        .arg(repo().join("scripts").join(name))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in stdout.lines() {
        eprintln!("{line}");
    }
    assert!(
        out.status.success(),
        "{name} {args:?} failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Imports `folder` into the project `project` as run `name`; returns the run folder.
pub fn import(project: &Path, folder: &Path, name: &str) -> PathBuf {
    let out = ok(hearth()
        .arg("--project")
        .arg(project)
        .args(["import", "--hf"])
        .arg(folder)
        .args(["--name", name]));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("run folder: "))
        .unwrap_or_else(|| panic!("no run folder in the import's output:\n{text}"));
    PathBuf::from(line.trim())
}

/// The largest absolute difference between two sets of rows of the same shape.
pub fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "rows");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "width");
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

/// `$HEARTH_CACHE/fixtures/<dir>/<file>` as `scripts/fetch_fixtures.sh` leaves it (`file` ""
/// for the folder itself), or `None` (said why) where tests may skip; with
/// `HEARTH_REQUIRE_FIXTURES` set, a missing fixture fails the test.
pub fn fixture(dir: &str, file: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("HEARTH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hearth")))?;
    let folder = cache.join("fixtures").join(dir);
    if folder.join(".ok").exists() {
        return Some(if file.is_empty() || file == dir {
            folder
        } else {
            folder.join(file)
        });
    }
    let reason = format!(
        "no {dir} in {} (run `bash scripts/fetch_fixtures.sh` with scripts/env.sh sourced)",
        folder.display()
    );
    if std::env::var_os("HEARTH_REQUIRE_FIXTURES").is_some() {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// A run small enough to take hundreds of steps a second: one thin layer on generated text, on
/// the pure-Rust backend and one thread, `steps` steps.
pub fn tiny_spec(name: &str, steps: usize) -> hearth_engine::spec::RunSpec {
    hearth_engine::spec::RunSpec {
        name: name.into(),
        model: hearth_engine::model::ModelSpec {
            n_layer: 1,
            n_head: 1,
            d_model: 16,
            context: 16,
            ..Default::default()
        },
        train: hearth_engine::train::TrainSpec {
            batch_size: 2,
            eval_batches: 1,
            steps,
            threads: 1,
            backend: hearth_engine::train::BackendKind::Flex,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// `hearth train` flags of [`tiny_spec`]'s run.
pub fn tiny_flags(steps: usize) -> Vec<String> {
    [
        "--layers",
        "1",
        "--heads",
        "1",
        "--width",
        "16",
        "--context",
        "16",
        "--batch",
        "2",
        "--eval-batches",
        "1",
        "--backend",
        "flex",
        "--threads",
        "1",
        "--steps",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([steps.to_string()])
    .collect()
}

/// Kills, when dropped, every other process still training a run of the project at `.0` (each
/// run folder's worker lock names it). Declared after the project's temporary folder, it drops
/// first: a test that fails half-way leaves no worker writing checkpoints into a deleted folder.
pub struct KillWorkersOnDrop(pub PathBuf);

impl Drop for KillWorkersOnDrop {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.0.join("runs")) else {
            return;
        };
        for dir in entries.flatten().map(|e| e.path()) {
            if !hearth_engine::project::live::worker_alive(&dir) {
                continue;
            }
            let Some(worker) = hearth_engine::project::live::worker_process(&dir) else {
                continue;
            };
            // A run trained on a thread of this test holds the lock in this process.
            if worker.pid != std::process::id() {
                let _ = Command::new("kill")
                    .args(["-KILL", &worker.pid.to_string()])
                    .status();
            }
        }
    }
}
