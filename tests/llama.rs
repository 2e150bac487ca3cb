//! The Llama family against transformers: tiny random llama, mistral, qwen2 and qwen3 folders
//! import with the same logits (full forward and token by token through the key/value cache)
//! and greedy text; a LoRA fine-tune trains its adapters only and exports both as merged
//! weights and as a PEFT adapter whose greedy text is Hearth's; folders the family cannot
//! compute are refused naming the key. The reference side is `scripts/llama_parity.py`.

mod support;

use burn::tensor::{Int, Tensor, TensorData};
use hearth_engine::backend::BackendKind;
use hearth_engine::export::LoadedRun;
use hearth_engine::model::KvCache;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{hearth, import, max_abs_diff, ok, python, script};

/// Python with `peft` as well as transformers (None, with the reason, when there is none).
fn peft_python() -> Option<PathBuf> {
    let python = python()?;
    let works = std::process::Command::new(&python)
        .args(["-c", "import peft"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    let reason = format!(
        "{} has no peft; run `source scripts/env.sh`",
        python.display()
    );
    if std::env::var_os("HEARTH_REQUIRE_TRANSFORMERS").is_some() {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

fn parity(python: &Path, args: &[&str]) -> Value {
    script(python, "llama_parity.py", args)
        .pop()
        .expect("llama_parity.py printed a result")
}

/// A tiny random model of `kind` saved by transformers into `dir`.
fn tiny(python: &Path, dir: &Path, kind: &str) {
    parity(python, &["tiny", dir.to_str().unwrap(), "--type", kind]);
}

fn as_rows(value: &Value) -> Vec<Vec<f32>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn rows_of(logits: Tensor<3>) -> Vec<Vec<f32>> {
    let [_, seq, vocab] = logits.dims();
    let values = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    (0..seq)
        .map(|i| values[i * vocab..(i + 1) * vocab].to_vec())
        .collect()
}

/// `hearth generate` greedy text of `prompt`.
fn greedy_text(run: &Path, prompt: &str, tokens: usize) -> String {
    let out = ok(hearth()
        .args(["generate", "--run"])
        .arg(run)
        .args(["--prompt", prompt, "--temperature", "0", "--max-tokens"])
        .arg(tokens.to_string()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

const PROMPT: &str = "The quick brown";

#[test]
fn tiny_llama_family_folders_import_with_transformers_logits() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let device = BackendKind::preferred().device().unwrap();
    let kinds = ["llama", "mistral", "qwen2", "qwen3"];
    // One Python start makes the four folders, one scores them all (each start costs seconds).
    let root = tmp.path().join("tiny");
    let mut args = vec!["tinies", root.to_str().unwrap()];
    args.extend(kinds);
    script(&python, "llama_parity.py", &args);
    let imported: Vec<(PathBuf, LoadedRun, Vec<u32>)> = kinds
        .iter()
        .map(|kind| {
            let run_dir = import(&project, &root.join(kind), kind);
            let run = LoadedRun::load(&run_dir, &device).unwrap();
            let ids = run.tokenizer.encode(PROMPT);
            assert!(ids.len() >= 3, "{kind}: {ids:?}");
            (run_dir, run, ids)
        })
        .collect();
    let request: Vec<Value> = kinds
        .iter()
        .zip(&imported)
        .map(|(kind, (_, _, ids))| serde_json::json!({"folder": root.join(kind), "ids": ids}))
        .collect();
    let answers = script(
        &python,
        "llama_parity.py",
        &["check", &serde_json::to_string(&request).unwrap(), "12"],
    );
    assert_eq!(answers.len(), kinds.len(), "one answer per model");
    for ((kind, (run_dir, run, ids)), answer) in kinds.iter().zip(&imported).zip(&answers) {
        let theirs = as_rows(&answer["logits"]);
        let input = Tensor::<2, Int>::from_data(
            TensorData::new(ids.iter().map(|&t| i64::from(t)).collect(), [1, ids.len()]),
            &device,
        );
        let ours = rows_of(run.model.forward(input.clone()));
        let diff = max_abs_diff(&ours, &theirs);
        assert!(diff < 1e-5, "{kind}: logits differ by {diff}");
        // Token by token through the cache: the same logits at every position.
        let mut cache = KvCache::new();
        let mut cached = Vec::new();
        for i in 0..ids.len() {
            let one = input.clone().narrow(1, i, 1);
            cached.extend(rows_of(run.model.forward_cached(one, &mut cache).unwrap()));
        }
        let diff = max_abs_diff(&cached, &theirs);
        assert!(diff < 1e-5, "{kind}: cached logits differ by {diff}");
        // A prompt in two pieces (the second several tokens against the cache).
        let mut cache = KvCache::new();
        let mut split = rows_of(
            run.model
                .forward_cached(input.clone().narrow(1, 0, 1), &mut cache)
                .unwrap(),
        );
        split.extend(rows_of(
            run.model
                .forward_cached(input.clone().narrow(1, 1, ids.len() - 1), &mut cache)
                .unwrap(),
        ));
        let diff = max_abs_diff(&split, &theirs);
        assert!(
            diff < 1e-5,
            "{kind}: logits after a cached prefix differ by {diff}"
        );
        // Greedy generation (through the cache) writes transformers' text.
        let want: Vec<u32> = serde_json::from_value(answer["greedy"].clone()).unwrap();
        assert_eq!(
            greedy_text(run_dir, PROMPT, 12),
            run.tokenizer.decode(&want),
            "{kind}: greedy text"
        );
    }
}

fn training_text(dir: &Path) -> PathBuf {
    let lines = [
        "The quick brown fox jumps over the lazy dog.",
        "Colours: red, green, blue.",
        "Hello world! How are you today?",
    ];
    let text: Vec<&str> = (0..600).map(|i| lines[(i * 7 + i / 3) % 3]).collect();
    let path = dir.join("train.txt");
    std::fs::write(&path, text.join("\n")).unwrap();
    path
}

#[test]
fn a_lora_fine_tune_trains_its_adapters_and_exports_as_peft_and_merged_weights() {
    let Some(python) = peft_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let folder = tmp.path().join("base");
    tiny(&python, &folder, "llama");
    let base = import(&project, &folder, "base");
    let data = training_text(tmp.path());
    let tuned = project.join("runs").join("lora");
    let out = ok(hearth()
        .arg("--project")
        .arg(&project)
        .args(["train", "--init-from"])
        .arg(&base)
        .args(["--lora-rank", "8", "--lora-alpha", "16", "--data"])
        .arg(&data)
        .args([
            "--context",
            "64",
            "--batch",
            "4",
            "--steps",
            "30",
            "--lr",
            "1e-2",
            "--eval-interval",
            "10",
            "--out",
        ])
        .arg(&tuned));
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // The loss falls from step 10 to step 30.
    let vals: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split("val loss ").nth(1))
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    assert!(vals.len() >= 3, "{log}");
    assert!(
        vals[vals.len() - 1] < vals[0] - 0.05,
        "val losses {vals:?}\n{log}"
    );
    // The checkpoint holds the adapters only: a small fraction of the base's.
    let size = |dir: &Path| -> u64 {
        std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with("0.bpk"))
            .map(|e| e.metadata().unwrap().len())
            .max()
            .unwrap()
    };
    assert!(
        size(&tuned) * 5 < size(&base),
        "adapters {} bytes, base {} bytes",
        size(&tuned),
        size(&base)
    );
    // The base run is untouched, and the fine-tune generates differently from it.
    let mine = greedy_text(&tuned, "The quick", 16);
    assert_ne!(mine, greedy_text(&base, "The quick", 16));
    // PEFT adapters on the base folder, and the merged folder, decode the same text.
    let device = BackendKind::preferred().device().unwrap();
    let run = LoadedRun::load(&tuned, &device).unwrap();
    let ids = serde_json::to_string(&run.tokenizer.encode("The quick")).unwrap();
    let peft = tmp.path().join("peft");
    ok(hearth()
        .args(["export", "--format", "peft", "--run"])
        .arg(&tuned)
        .arg("--out")
        .arg(&peft));
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(peft.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["r"], 8);
    assert_eq!(config["lora_alpha"], 16.0);
    let theirs = parity(
        &python,
        &[
            "peft",
            folder.to_str().unwrap(),
            peft.to_str().unwrap(),
            &ids,
            "16",
        ],
    );
    let want: Vec<u32> = serde_json::from_value(theirs["greedy"].clone()).unwrap();
    assert_eq!(run.tokenizer.decode(&want), mine, "PEFT greedy text");
    let merged = tmp.path().join("merged");
    ok(hearth()
        .args(["export", "--format", "hf", "--run"])
        .arg(&tuned)
        .arg("--out")
        .arg(&merged));
    let theirs = parity(&python, &["greedy", merged.to_str().unwrap(), &ids, "16"]);
    let want: Vec<u32> = serde_json::from_value(theirs["greedy"].clone()).unwrap();
    assert_eq!(run.tokenizer.decode(&want), mine, "merged greedy text");
    // As one GGUF file (F32), which transformers reads with its tokenizer.
    let gguf = tmp.path().join("tuned.gguf");
    ok(hearth()
        .args(["export", "--format", "gguf", "--f32", "--run"])
        .arg(&tuned)
        .arg("--out")
        .arg(&gguf));
    let theirs = parity(
        &python,
        &["gguf", gguf.to_str().unwrap(), "The quick", "16"],
    );
    assert_eq!(theirs["text"].as_str().unwrap(), mine, "GGUF greedy text");
    // A run without adapters has nothing to export as PEFT, and says so.
    let refused = hearth()
        .args(["export", "--format", "peft", "--run"])
        .arg(&base)
        .arg("--out")
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no LoRA adapters"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn decoder_folders_the_family_cannot_compute_are_refused_naming_the_key() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("base");
    tiny(&python, &folder, "llama");
    let config_path = folder.join("config.json");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    for (key, value, needle) in [
        (
            "rope_parameters",
            serde_json::json!({"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}),
            "rope_parameters.rope_type",
        ),
        ("hidden_act", serde_json::json!("gelu"), "hidden_act"),
        ("num_key_value_heads", serde_json::json!(3), "n_kv_head"),
    ] {
        let mut changed = config.clone();
        changed[key] = value;
        std::fs::write(&config_path, changed.to_string()).unwrap();
        let project = tmp.path().join(format!("p-{key}"));
        let out = hearth()
            .arg("--project")
            .arg(&project)
            .args(["import", "--hf"])
            .arg(&folder)
            .args(["--name", "x"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}: imported");
        assert!(
            err.contains(needle) && err.contains("config.json"),
            "{key}: {err}"
        );
        assert!(
            !project.join("runs").exists()
                || std::fs::read_dir(project.join("runs"))
                    .unwrap()
                    .next()
                    .is_none(),
            "{key}: a run was written"
        );
    }
}

#[test]
fn smollm2_gguf_continues_and_scores_as_transformers_reading_the_same_file() {
    let Some(file) = support::fixture("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let out = ok(hearth()
        .arg("--project")
        .arg(&project)
        .args(["import", "--gguf"])
        .arg(&file)
        .args(["--name", "smol"]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let run_dir = PathBuf::from(
        text.lines()
            .find_map(|l| l.strip_prefix("run folder: "))
            .unwrap()
            .trim(),
    );
    let prompt = "The three primary colors are";
    let theirs = parity(&python, &["gguf", file.to_str().unwrap(), prompt, "24"]);
    let greedy = greedy_text(&run_dir, prompt, 24);
    assert_eq!(greedy, theirs["text"].as_str().unwrap());
    assert!(greedy.contains("red, blue, and green"), "{greedy}");
    let device = BackendKind::preferred().device().unwrap();
    let run = LoadedRun::load(&run_dir, &device).unwrap();
    let ids = run.tokenizer.encode(prompt);
    let want: Vec<u32> = serde_json::from_value(theirs["ids"].clone()).unwrap();
    assert_eq!(ids, want, "prompt ids");
    let input = Tensor::<2, Int>::from_data(
        TensorData::new(ids.iter().map(|&t| i64::from(t)).collect(), [1, ids.len()]),
        &device,
    );
    let ours = rows_of(run.model.forward(input));
    let last: Vec<f32> = serde_json::from_value(theirs["last_logits"].clone()).unwrap();
    let diff = max_abs_diff(&ours[ours.len() - 1..], &[last]);
    assert!(diff < 1e-3, "last-position logits differ by {diff}");
    // The chat template comes with the file: a chat answer ends at the end of the turn.
    let out = ok(hearth()
        .args([
            "generate",
            "--chat",
            "--temperature",
            "0",
            "--max-tokens",
            "40",
            "--run",
        ])
        .arg(&run_dir)
        .args(["--prompt", "What is the capital of France?"]));
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("Paris"), "{answer}");
    assert!(!answer.contains("<|im_end|>"), "{answer}");
}

#[test]
fn broken_gguf_files_are_refused_naming_the_problem_and_nothing_is_written() {
    use hearth_engine::gguf::{GgufWriter, TensorDtype};
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.gguf");
    let mut writer = GgufWriter::new();
    writer.set_str("general.architecture", "llama");
    let values: Vec<f32> = (0..64).map(|i| i as f32).collect();
    writer
        .add_tensor("token_embd.weight", &[8, 8], TensorDtype::F32, values)
        .unwrap();
    writer.write(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let wrong_magic = tmp.path().join("magic.gguf");
    let mut b = bytes.clone();
    b[..4].copy_from_slice(b"GGML");
    std::fs::write(&wrong_magic, b).unwrap();
    let cut = tmp.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    // The tensor's type id follows its name, its rank and its two dimensions.
    let unknown = tmp.path().join("quant.gguf");
    let mut b = bytes.clone();
    let at = b
        .windows(17)
        .position(|w| w == b"token_embd.weight")
        .unwrap()
        + 17
        + 4
        + 16;
    b[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&unknown, b).unwrap();
    for (file, needle) in [
        (&wrong_magic, "magic"),
        (&cut, "token_embd.weight"),
        (&unknown, "99"),
        (&good, "attention.head_count"),
    ] {
        let project = tmp.path().join("project");
        let out = hearth()
            .arg("--project")
            .arg(&project)
            .args(["import", "--gguf"])
            .arg(file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: imported", file.display());
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            err.contains(name) && err.to_lowercase().contains(needle),
            "{name}: {err}"
        );
        let runs = project.join("runs");
        assert!(
            !runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none(),
            "{name}: a run was written"
        );
    }
}
