//! The headless CLI: `hearth train` prints the final line, refuses bad files cleanly.

use std::process::Command;

fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

#[test]
fn train_prints_the_final_line_and_writes_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("text.txt");
    std::fs::write(&data, hearth_engine::data::generated::story_text(5, 30_000)).unwrap();
    let out_dir = dir.path().join("run");
    let out = hearth()
        .args(["train", "--data"])
        .arg(&data)
        .args([
            "--layers",
            "1",
            "--heads",
            "2",
            "--width",
            "32",
            "--context",
            "16",
            "--batch",
            "8",
        ])
        .args([
            "--steps",
            "30",
            "--eval-interval",
            "10",
            "--eval-batches",
            "2",
            "--backend",
            "flex",
            "--threads",
            "1",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(fields[0], "final", "last line: {last}");
    let keys: Vec<&str> = fields[1..]
        .iter()
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "step",
            "train_loss",
            "val_loss",
            "tokens_per_s",
            "elapsed_s"
        ]
    );
    assert_eq!(fields[1], "step=30");
    let val: f64 = fields[3].trim_start_matches("val_loss=").parse().unwrap();
    assert!(val.is_finite() && val > 0.0);
    let entry = hearth_engine::project::RunEntry::load(&out_dir).unwrap();
    assert_eq!(entry.last_step.map(|(s, _)| s), Some(30));

    // The run's final checkpoint evaluates headless on the whole validation split.
    let out = hearth()
        .args(["eval", "--backend", "flex", "--threads", "1", "--run"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("val_loss=") && last.contains(" windows="),
        "last line: {last}"
    );
}

#[test]
fn a_headless_run_uses_every_core_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = hearth()
        .args(["train", "--layers", "1", "--heads", "2", "--width", "16"])
        .args(["--context", "8", "--batch", "2", "--steps", "2"])
        .args(["--eval-batches", "1", "--backend", "flex", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = hearth_engine::project::RunEntry::load(&out_dir).unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert_eq!(
        entry.spec.train.threads, cores,
        "all cores, not all but one"
    );
}

#[test]
fn choices_are_listed_and_checked_by_the_parser() {
    let out = hearth().args(["train", "-h"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let objectives: Vec<String> = hearth_engine::objective::ObjectiveKind::all()
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    assert!(
        help.contains(&format!("[possible values: {}]", objectives.join(", "))),
        "every registered objective is listed: {help}"
    );
    assert!(
        help.contains("[possible values: libtorch, libtorch-cuda, flex]"),
        "{help}"
    );
    let out = hearth()
        .args(["train", "--objective", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'nope'") && stderr.contains("next-token"),
        "{stderr}"
    );
    let out = hearth().args(["eval", "-h"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("[possible values: no-document, right-document, distractors-only, edited]")
            && help.contains("[possible values: natural, symbols, flipped]"),
        "{help}"
    );
    let out = hearth().args(["dataset", "-h"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("[possible values: none, sft, raft, symbols, linkbert]")
            && help.contains("[possible values: contiguous, random]"),
        "{help}"
    );
}

#[test]
fn a_bad_file_fails_naming_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"fine\nalso fine\nbroken \xc3\x28 here\n").unwrap();
    let out_dir = dir.path().join("run");
    let out = hearth()
        .args(["train", "--steps", "5", "--backend", "flex", "--data"])
        .arg(&bad)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.txt:3"),
        "message names file and line: {stderr}"
    );
    assert!(!out_dir.exists(), "no run folder for a refused run");
}

#[test]
fn impossible_settings_exit_non_zero_naming_the_field() {
    let out = hearth()
        .args([
            "train",
            "--width",
            "130",
            "--heads",
            "4",
            "--backend",
            "flex",
            "--steps",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("model.d_model") && stderr.contains("not divisible by 4 heads"),
        "{stderr}"
    );
}

/// Every file under `dir` with its bytes.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dataset_builds_headless_trains_and_a_bad_source_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, hearth_engine::data::generated::story_text(2, 4_000)).unwrap();
    let out = hearth()
        .arg("--project")
        .arg(&project)
        .args(["dataset", "--name", "zoo", "--source", "gen:api_zoo#60#1"])
        .arg("--source")
        .arg(format!("text:{}#paragraphs", notes.display()))
        .args(["--weight", "3", "--weight", "1", "--transform", "raft"])
        .args(["--split", "random", "--context", "200", "--batch", "4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The text source has none of RAFT's fields: the message names the record and the field.
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("notes.txt:1: no field \"document\""),
        "{stderr}"
    );
    assert!(!project.join("datasets").exists(), "nothing saved");

    let out = hearth()
        .arg("--project")
        .arg(&project)
        .args(["dataset", "--name", "zoo", "--source", "gen:api_zoo#60#1"])
        .args([
            "--transform",
            "raft",
            "--split",
            "random",
            "--context",
            "200",
        ])
        .args(["--batch", "4", "--p-oracle", "0.8", "--distractors", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("retrieval-aware (RAFT)"), "{stdout}");
    assert!(
        stdout.contains("leakage: no validation document"),
        "{stdout}"
    );
    assert!(
        stdout.contains("a: «"),
        "the answer is marked as the target: {stdout}"
    );
    let saved = project.join("datasets/zoo");
    assert!(saved.join("dataset.json").exists() && saved.join("tokenizer.json").exists());

    // A bad source later: the message names file and line; the project is untouched.
    let before = files(&project);
    let bad = dir.path().join("cut.jsonl");
    std::fs::write(
        &bad,
        "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q2\", \"ans",
    )
    .unwrap();
    let out = hearth()
        .arg("--project")
        .arg(&project)
        .args([
            "dataset",
            "--name",
            "zoo",
            "--transform",
            "raft",
            "--source",
        ])
        .arg(format!("jsonl:{}", bad.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.jsonl:2: not a JSON object"),
        "{stderr}"
    );
    assert_eq!(files(&project), before, "nothing in the project changed");

    // The saved dataset trains headless; exact match is reported at each evaluation.
    let out = hearth()
        .arg("--project")
        .arg(&project)
        .args(["train", "--dataset"])
        .arg(&saved)
        .args([
            "--layers",
            "1",
            "--heads",
            "2",
            "--width",
            "32",
            "--context",
            "200",
        ])
        .args([
            "--batch",
            "4",
            "--steps",
            "6",
            "--eval-interval",
            "3",
            "--eval-batches",
            "1",
        ])
        .args(["--backend", "flex", "--threads", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("final step=6") && last.contains("val_exact_match="),
        "{last}"
    );
}
