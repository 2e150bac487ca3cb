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
fn the_dynamics_interval_flag_sets_how_often_a_run_records() {
    let dir = tempfile::tempdir().unwrap();
    let train = |name: &str, interval: &str| {
        let out_dir = dir.path().join(name);
        let out = hearth()
            .args(["train", "--layers", "1", "--heads", "2", "--width", "16"])
            .args(["--context", "8", "--batch", "2", "--steps", "6"])
            .args(["--eval-batches", "1", "--backend", "flex"])
            .args(["--dynamics-interval", interval, "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entry = hearth_engine::project::RunEntry::load(&out_dir).unwrap();
        let store = hearth_engine::project::RunStore::open(&out_dir).unwrap();
        let steps: Vec<usize> = store.dynamics().unwrap().iter().map(|r| r.step).collect();
        (entry.spec.train.dynamics_interval, steps)
    };
    let (interval, steps) = train("every-2", "2");
    assert_eq!(interval, 2);
    assert_eq!(steps, vec![2, 4, 6], "recorded at every second step");
    let (interval, steps) = train("none", "0");
    assert_eq!(interval, 0);
    assert!(steps.is_empty(), "0 records nothing, got {steps:?}");
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

/// Train flags for a tiny, fast model.
const TINY: [&str; 12] = [
    "--layers",
    "1",
    "--heads",
    "1",
    "--width",
    "16",
    "--context",
    "16",
    "--batch",
    "4",
    "--threads",
    "1",
];

#[test]
fn a_killed_run_resumes_to_its_end_with_no_gap_or_duplicate_step() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let steps = 4000;
    let mut child = hearth()
        .args([
            "train",
            "--steps",
            &steps.to_string(),
            "--eval-interval",
            "500",
        ])
        .args(TINY)
        .arg("--out")
        .arg(&run)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed (SIGKILL) once the first checkpoint is on disk, well before the last step.
    let first = run.join("checkpoints/step-000500.bpk");
    let start = std::time::Instant::now();
    while !first.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "no checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let store = hearth_engine::project::RunStore::open(&run).unwrap();
    let killed_at = store.last_step().unwrap().unwrap().0;
    assert!(killed_at < steps, "killed after the end: {killed_at}");
    drop(store);

    let out = hearth()
        .args(["resume", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with(&format!("final step={steps} ")),
        "{stdout}"
    );
    let history = hearth_engine::project::RunStore::open(&run)
        .unwrap()
        .load_history()
        .unwrap();
    let logged: Vec<usize> = history.steps.iter().map(|m| m.step).collect();
    assert_eq!(logged, (1..=steps).collect::<Vec<_>>(), "gap or duplicate");
    let evals: Vec<usize> = history.evals.iter().map(|e| e.step).collect();
    assert_eq!(evals, (1..=8).map(|i| i * 500).collect::<Vec<_>>());
}

#[test]
fn runs_lists_each_run_and_names_the_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    for (name, steps) in [("alpha", "6"), ("beta", "8")] {
        let out = hearth()
            .arg("--project")
            .arg(&project)
            .args([
                "train",
                "--name",
                name,
                "--steps",
                steps,
                "--eval-interval",
                "4",
            ])
            .args(TINY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runs = |json: bool| {
        let mut cmd = hearth();
        cmd.arg("--project").arg(&project).arg("runs");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = runs(false);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("BEST VAL LOSS"),
        "{table}"
    );
    let alpha = lines
        .iter()
        .find(|l| l.starts_with("alpha"))
        .expect("alpha listed");
    assert!(
        alpha.contains("next-token") && alpha.contains("finished") && alpha.contains(" 6 "),
        "{alpha}"
    );

    // Damage beta's history: it is listed as damaged, alpha as before.
    let listed: serde_json::Value = serde_json::from_str(&runs(true)).unwrap();
    let beta_dir = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "beta")
        .unwrap()["dir"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        listed[0]["best_val_loss"].as_f64().unwrap() > 0.0,
        "{listed}"
    );
    let db = std::path::Path::new(&beta_dir).join("run.sqlite");
    std::fs::write(&db, b"not a database at all, just some bytes".repeat(200)).unwrap();
    for extra in ["run.sqlite-wal", "run.sqlite-shm"] {
        let _ = std::fs::remove_file(std::path::Path::new(&beta_dir).join(extra));
    }
    let listed: serde_json::Value = serde_json::from_str(&runs(true)).unwrap();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    let beta = rows
        .iter()
        .find(|r| r["name"] == "beta")
        .expect("beta listed");
    assert_eq!(beta["status"], "damaged");
    let files = beta["damaged"]["files"].as_array().unwrap();
    let bad: Vec<&str> = files
        .iter()
        .filter(|f| f["reads"] == false)
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(bad, ["run.sqlite"], "{beta}");
    assert!(
        files
            .iter()
            .any(|f| f["file"] == "spec.json" && f["reads"] == true)
    );
    let alpha = rows.iter().find(|r| r["name"] == "alpha").unwrap();
    assert_eq!(alpha["status"], "finished");
    let table = runs(false);
    assert!(
        table.contains("run.sqlite is damaged") && table.contains("spec.json"),
        "{table}"
    );
}

#[test]
fn number_flags_refuse_nan_naming_the_flag() {
    let out = hearth().args(["train", "--lr", "nan"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'--lr <LR>'") && stderr.contains("finite"),
        "{stderr}"
    );
}

#[test]
fn a_jsonl_data_file_is_read_as_records_not_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("notes.jsonl");
    let lines: String = (0..300)
        .map(|i| format!("{{\"text\": \"note {i}: the quick brown fox\"}}\n"))
        .collect();
    std::fs::write(&data, lines).unwrap();
    let out = hearth()
        .args(["train", "--steps", "3", "--data"])
        .arg(&data)
        .args(TINY)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("as JSON Lines records"), "{stderr}");
    // The tokenizer saw the records' text, not the JSON syntax around it.
    let tokenizer = std::fs::read_to_string(dir.path().join("run/tokenizer.json")).unwrap();
    assert!(
        !tokenizer.contains("\"{\""),
        "JSON braces in the vocabulary: {tokenizer}"
    );
}

#[test]
fn train_reports_the_count_models_it_must_beat() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("text.txt");
    std::fs::write(&data, hearth_engine::data::generated::story_text(7, 20_000)).unwrap();
    let out = hearth()
        .args(["train", "--steps", "2", "--data"])
        .arg(&data)
        .args(TINY)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("count models on the validation split"))
        .unwrap_or_else(|| panic!("no baseline line: {stderr}"));
    let losses: Vec<f64> = line
        .split(" · ")
        .map(|part| part.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(losses.len(), 5, "{line}");
    // A longer context never does much worse on this text; a unigram is far from the 5-gram.
    assert!(losses[4] < losses[0] - 0.5, "{line}");
}

#[test]
fn eval_pairs_prints_tfidf_and_chance_before_the_models_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("text.txt");
    let text = hearth_engine::data::generated::story_text(3, 20_000);
    std::fs::write(&data, &text).unwrap();
    let out = hearth()
        .args([
            "train",
            "--steps",
            "2",
            "--objective",
            "contrastive",
            "--data",
        ])
        .arg(&data)
        .args(TINY)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The objective's recipe is announced, and the retrieval references at start.
    assert!(stderr.contains("contrastive recipe"), "{stderr}");
    assert!(
        stderr.contains("reference val_mrr: word TF-IDF"),
        "{stderr}"
    );
    // Half-window pairs of the text (64 characters each side).
    let chars: Vec<char> = text.chars().collect();
    let pairs: String = chars
        .chunks_exact(128)
        .take(40)
        .map(|w| {
            let a: String = w[..64].iter().collect();
            let b: String = w[64..].iter().collect();
            format!("{}\n", serde_json::json!({"a": a, "b": b}))
        })
        .collect();
    let pairs_file = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs_file, pairs).unwrap();
    let out = hearth()
        .args(["eval", "--run"])
        .arg(dir.path().join("run"))
        .arg("--pairs")
        .arg(&pairs_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("baseline=tfidf pairs=40 recall_at_1="),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("baseline=chance pairs=40 recall_at_1=0.0250"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("pairs=40 recall_at_1="), "{stdout}");
    // Chance on 40 pairs: MRR is the mean of 1/rank over ranks 1..=40.
    let mrr = |line: &str| -> f64 { line.rsplit("mrr=").next().unwrap().parse().unwrap() };
    let chance: f64 = (1..=40).map(|r| 1.0 / f64::from(r)).sum::<f64>() / 40.0;
    assert!((mrr(lines[1]) - chance).abs() < 1e-4, "{stdout}");
    assert!((0.0..=1.0).contains(&mrr(lines[0])), "{stdout}");

    // STS: a sentence paired with itself (gold 5) has cosine 1, above every pair of two
    // different windows (gold 0), whatever the weights: the ranks separate the two halves.
    let windows: Vec<String> = chars
        .chunks_exact(64)
        .take(41)
        .map(|w| w.iter().collect::<String>().replace(['\t', '\n'], " "))
        .collect();
    let sts: String = (0..40)
        .map(|i| {
            let (b, score) = if i % 2 == 0 {
                (&windows[i], "5.000")
            } else {
                (&windows[i + 1], "0.000")
            };
            format!(
                "main-test\tgen\t2026\t{i:04}\t{score}\t{}\t{b}\n",
                windows[i]
            )
        })
        .collect();
    let sts_file = dir.path().join("sts.csv");
    std::fs::write(&sts_file, sts).unwrap();
    let out = hearth()
        .args(["eval", "--run"])
        .arg(dir.path().join("run"))
        .arg("--sts")
        .arg(&sts_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("pairs=40 pearson="), "{stdout}");
    let field = |name: &str| -> f64 {
        last.split(' ')
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    // Gold scores in two tied halves, perfectly separated by the cosines: Spearman from
    // sqrt(3) / 2 (the identical pairs' cosines all distinct) to 0.926 (all exactly 1, tied).
    let spearman = field("spearman=");
    assert!((0.8655..=0.927).contains(&spearman), "{stdout}");
    assert!(field("pearson=") > 0.0, "{stdout}");
}

#[test]
fn dataset_lists_the_count_models_of_next_token_and_masked_objectives() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(
        &notes,
        hearth_engine::data::generated::story_text(5, 20_000),
    )
    .unwrap();
    let out = hearth()
        .arg("--project")
        .arg(dir.path().join("project"))
        .args(["dataset", "--name", "notes", "--source"])
        .arg(format!("text:{}", notes.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("count models on the validation split (nats/token, add-k): 1-gram"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("masked-token count models on the validation split (accuracy): "))
        .unwrap_or_else(|| panic!("no masked line: {stdout}"));
    let values: Vec<f64> = line
        .split(" · ")
        .map(|part| part.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(values.len(), 2, "{line}");
    assert!(
        line.contains("±1 tokens") && line.contains("±2 tokens"),
        "{line}"
    );
    // Two neighbours on each side pin a character down at least as well as one on this text.
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "{line}");
    assert!(values[1] >= values[0] - 0.05, "{line}");
}
