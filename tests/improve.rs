//! `hearth improve`: a run trained on a verifiable task is improved into a new run linked to
//! it; the last line is the final one; bad input is refused naming what is wrong.

use std::path::Path;
use std::process::{Command, Output};

fn hearth(project: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.env("HEARTH_PROJECT", project);
    c
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `key=value` pairs of the last line, after its first word.
fn final_line(stdout: &str) -> (String, Vec<(String, f64)>) {
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let mut words = last.split_whitespace();
    let first = words.next().unwrap_or_default().to_string();
    let pairs = words
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap_or_else(|| panic!("{last}"));
            (
                k.to_string(),
                v.parse().unwrap_or_else(|_| panic!("{last}")),
            )
        })
        .collect();
    (first, pairs)
}

#[test]
fn improve_ends_with_the_final_line_and_writes_a_linked_run() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    ok(&hearth(&project)
        .args(["dataset", "--name", "arith", "--tokenizer", "byte"])
        .args(["--source", "gen:arithmetic#400#1", "--transform", "sft"])
        .output()
        .unwrap());
    let base = dir.path().join("base");
    ok(&hearth(&project)
        .arg("train")
        .arg("--dataset")
        .arg(project.join("datasets/arith"))
        .args(["--layers", "1", "--heads", "2", "--width", "32"])
        .args(["--context", "64", "--batch", "8", "--steps", "4"])
        .args(["--eval-interval", "4", "--eval-batches", "1"])
        .args(["--backend", "flex", "--threads", "1", "--out"])
        .arg(&base)
        .output()
        .unwrap());
    let small = [
        "--rounds",
        "1",
        "--samples",
        "2",
        "--prompts-per-round",
        "8",
        "--eval-prompts",
        "8",
        "--steps-per-round",
        "1",
        "--batch",
        "2",
        "--threads",
        "1",
    ];
    for (method, keys) in [
        ("star", vec!["round", "accuracy_before", "accuracy_after"]),
        (
            "self-correct",
            vec![
                "round",
                "accuracy_before",
                "accuracy_after",
                "delta_i_to_c",
                "delta_c_to_i",
            ],
        ),
    ] {
        let out_dir = dir.path().join(method);
        let stdout = ok(&hearth(&project)
            .arg("improve")
            .arg("--run")
            .arg(&base)
            .args(["--task", "arithmetic", "--method", method])
            .args(small)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap());
        let (first, pairs) = final_line(&stdout);
        assert_eq!(first, "final", "{stdout}");
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, keys, "{stdout}");
        assert_eq!(pairs[0].1, 1.0, "one round");
        for (k, v) in &pairs[1..] {
            assert!((0.0..=1.0).contains(v), "{k}={v}");
        }
        let spec = std::fs::read_to_string(out_dir.join("spec.json")).unwrap();
        assert!(spec.contains("\"from_run\""), "linked to its base");
        assert!(out_dir.join("improve.json").is_file());
        assert!(out_dir.join("rounds/round-1.jsonl").is_file());
    }

    // Without --out the new run goes beside the base, named after it and the method.
    ok(&hearth(&project)
        .arg("improve")
        .arg("--run")
        .arg(&base)
        .args(["--task", "arithmetic", "--method", "dpo"])
        .args(small)
        .output()
        .unwrap());
    assert!(dir.path().join("base-dpo/spec.json").is_file());

    // A task the base never trained on is refused, naming the dataset; nothing is written.
    let refused = hearth(&project)
        .arg("improve")
        .arg("--run")
        .arg(&base)
        .args(["--task", "sort_letters", "--out"])
        .arg(dir.path().join("refused"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("arith") && stderr.contains("sort_letters"),
        "{stderr}"
    );
    assert!(!dir.path().join("refused").exists());

    // Settings that cannot run name the flag's field.
    let bad = hearth(&project)
        .arg("improve")
        .arg("--run")
        .arg(&base)
        .args(["--task", "arithmetic", "--samples", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("samples"));

    let missing = hearth(&project)
        .args(["improve", "--task", "arithmetic", "--run"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not a run folder"));
}
