//! Models that leave the studio: `hearth export`, `hearth import`, `hearth generate` and
//! `hearth embed`, checked against real `transformers` through `scripts/hf_parity.py`.
//!
//! The parity tests need a Python with `transformers`, `safetensors` and `torch` (the one
//! `scripts/env.sh` sets up). Without one they print why and pass, unless
//! `HEARTH_REQUIRE_TRANSFORMERS` is set (CI), where a missing Python fails.

use burn::tensor::{Int, Tensor, TensorData};
use hearth_engine::backend::BackendKind;
use hearth_engine::data::Special;
use hearth_engine::export::LoadedRun;
use hearth_engine::model::AttentionMode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

mod support;

use support::{hearth, ok, parity_script, python};

/// Text to train on.
fn story(dir: &Path) -> PathBuf {
    let path = dir.join("story.txt");
    if !path.exists() {
        std::fs::write(&path, hearth_engine::data::generated::story_text(5, 30_000)).unwrap();
    }
    path
}

/// Trains a tiny run into `dir/name` with the tiny settings plus `extra` flags.
fn train(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out_dir = dir.join(name);
    ok(hearth()
        .arg("train")
        .arg("--data")
        .arg(story(dir))
        .args([
            "--layers",
            "1",
            "--heads",
            "2",
            "--width",
            "32",
            "--context",
            "16",
        ])
        .args(["--batch", "4", "--steps", "12", "--eval-interval", "12"])
        .args(["--eval-batches", "1", "--backend", "flex", "--threads", "1"])
        // Hugging Face's GPT-2 and Megatron-BERT have the classic layout, whatever an
        // objective's recipe prefers.
        .args(["--arch", "classic"])
        .args(["--name", name])
        .args(extra)
        .arg("--out")
        .arg(&out_dir));
    out_dir
}

/// A spec file with the model's biases and tying set.
fn model_spec_file(dir: &Path, name: &str, bias: bool, tie: bool) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    let spec = json!({"name": name, "model": {"bias": bias, "tie_weights": tie}});
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

fn export(run: &Path, out: &Path) {
    ok(hearth()
        .args(["export", "--format", "hf", "--run"])
        .arg(run)
        .arg("--out")
        .arg(out));
}

fn rows(tensor: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, cols] = tensor.dims();
    let values = tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    values.chunks(cols).map(<[f32]>::to_vec).collect()
}

const PROBES: [&str; 3] = [
    "Once upon a time, the fox",
    "The cat sat.\nThen it ran away",
    "a b c",
];

/// One case of `hf_parity.py check`: Hearth's ids and outputs for the probe texts.
fn case(name: &str, run_dir: &Path, export_dir: &Path, kind: &str) -> Value {
    let device = BackendKind::preferred().device().unwrap();
    let run = LoadedRun::load(run_dir, &device).unwrap();
    let tok = &run.tokenizer;
    let context = run.model.context();
    let ids: Vec<Vec<u32>> = PROBES.iter().map(|t| tok.encode(t)).collect();
    let decoded: Vec<String> = ids.iter().map(|i| tok.decode(i)).collect();
    let mut case = json!({
        "name": name,
        "dir": export_dir,
        "kind": kind,
        "texts": PROBES,
        "ids": ids,
        "decoded": decoded,
        "tolerance": 1e-4,
    });
    let window = |ids: &[u32]| -> Vec<u32> { ids[..ids.len().min(context)].to_vec() };
    let tensor = |ids: &[u32]| {
        Tensor::<2, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [1, ids.len()]),
            &device,
        )
    };
    match kind {
        "causal-lm" | "masked-lm" => {
            let mut inputs: Vec<Vec<u32>> = ids.iter().map(|i| window(i)).collect();
            if kind == "masked-lm" {
                // Mask every third position, as a masked model reads its inputs.
                let mask = tok.special(Special::Mask).unwrap();
                for row in &mut inputs {
                    for id in row.iter_mut().skip(1).step_by(3) {
                        *id = mask;
                    }
                }
            }
            let logits: Vec<Vec<Vec<f32>>> = inputs
                .iter()
                .map(|row| {
                    let x = tensor(row);
                    let logits = if kind == "causal-lm" {
                        run.model.forward(x)
                    } else {
                        let hidden = run.model.hidden(x, AttentionMode::Bidirectional, None);
                        run.model.logits(hidden)
                    };
                    let [_, seq, vocab] = logits.dims();
                    rows(logits.reshape([seq, vocab]))
                })
                .collect();
            case["inputs"] = json!(inputs);
            case["logits"] = json!(logits);
        }
        "embedding" => {
            let windows: Vec<Vec<u32>> = ids.iter().map(|i| window(i)).collect();
            let embeddings = hearth_engine::eval::embed_all(
                &run.model,
                &windows,
                run.spec.objective.pooling,
                tok,
                &device,
            );
            case["embeddings"] = json!(rows(embeddings));
        }
        other => panic!("unknown kind {other}"),
    }
    case
}

/// Decoders (char / byte / BPE tokenizers, tied and untied, with and without biases),
/// trained and exported, as parity cases.
fn decoder_cases(d: &Path, exp: &Path) -> Vec<Value> {
    let mut cases = Vec::new();
    // Decoders: char / byte / BPE tokenizers, tied and untied, with and without biases.
    let untied_bias = model_spec_file(d, "byte-untied-bias", true, false);
    let tied_bias = model_spec_file(d, "bpe-tied-bias", true, true);
    let decoders = [
        ("char-tied-nobias", train(d, "char-tied-nobias", &[])),
        (
            "byte-untied-bias",
            train(
                d,
                "byte-untied-bias",
                &[
                    "--tokenizer",
                    "byte",
                    "--spec",
                    untied_bias.to_str().unwrap(),
                ],
            ),
        ),
        (
            "bpe-tied-bias",
            train(
                d,
                "bpe-tied-bias",
                &[
                    "--tokenizer",
                    "bpe:300",
                    "--spec",
                    tied_bias.to_str().unwrap(),
                ],
            ),
        ),
    ];
    for (name, run) in &decoders {
        export(run, &exp.join(name));
        cases.push(case(name, run, &exp.join(name), "causal-lm"));
    }

    cases
}

/// Masked encoders (untied with biases, tied without), trained and exported, as parity cases.
fn masked_cases(d: &Path, exp: &Path) -> Vec<Value> {
    let mut cases = Vec::new();
    // Masked encoders: untied with biases, tied without.
    let masked_spec = model_spec_file(d, "masked-untied-bias", true, false);
    for (name, extra) in [
        (
            "masked-untied-bias",
            vec!["--spec", masked_spec.to_str().unwrap()],
        ),
        ("masked-tied-nobias", vec!["--tokenizer", "byte"]),
    ] {
        let mut flags = vec!["--objective", "masked"];
        flags.extend(extra);
        let run = train(d, name, &flags);
        export(&run, &exp.join(name));
        cases.push(case(name, &run, &exp.join(name), "masked-lm"));
    }

    cases
}

/// Contrastive runs and a GRIT run (decoder and embedding side), trained and exported, as
/// parity cases; the GRIT export carries its sentence-transformers files and card.
fn embedding_cases(d: &Path, exp: &Path) -> Vec<Value> {
    let mut cases = Vec::new();
    // Contrastive runs (mean and max pooling, no padding token in their vocabulary) and a GRIT run
    // (last-token pooling; decoder in the folder, the embedding side in embedding/).
    for pooling in ["mean", "max"] {
        let name = format!("contrastive-{pooling}");
        let run = train(
            d,
            &name,
            &[
                "--objective",
                "contrastive",
                "--masked-warmup",
                "0",
                "--pooling",
                pooling,
                // sentence-transformers cannot compute the recipe's lexical channel.
                "--lexical",
                "0",
            ],
        );
        export(&run, &exp.join(&name));
        cases.push(case(&name, &run, &exp.join(&name), "embedding"));
    }
    let grit = train(
        d,
        "grit",
        &[
            "--objective",
            "grit",
            "--pooling",
            "last",
            "--tokenizer",
            "byte",
        ],
    );
    export(&grit, &exp.join("grit"));
    cases.push(case("grit-decoder", &grit, &exp.join("grit"), "causal-lm"));
    cases.push(case(
        "grit-embedding-last",
        &grit,
        &exp.join("grit/embedding"),
        "embedding",
    ));
    for file in [
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
    ] {
        assert!(exp.join("grit/embedding").join(file).is_file(), "{file}");
    }
    let card = std::fs::read_to_string(exp.join("grit/README.md")).unwrap();
    assert!(
        card.contains("objective: `grit`") && card.contains("`last` pooling"),
        "{card}"
    );

    cases
}

/// Imports the tiny GPT-2s transformers made in `made` and checks their logits against
/// transformers' own.
fn import_gpt2s(d: &Path, made: &Path) {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(made.join("expected.json")).unwrap())
            .unwrap();
    let device = BackendKind::preferred().device().unwrap();
    for model in expected["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let run_dir = d.join("runs").join(name);
        ok(hearth()
            .args([
                "import",
                "--name",
                name,
                "--hf",
                model["dir"].as_str().unwrap(),
            ])
            .arg("--out")
            .arg(&run_dir));
        let run = LoadedRun::load(&run_dir, &device).unwrap();
        assert_eq!(run.spec.model.tie_weights, model["tied"].as_bool().unwrap());
        let mut worst = 0f32;
        for probe in model["probes"].as_array().unwrap() {
            let ids: Vec<u32> = serde_json::from_value(probe["ids"].clone()).unwrap();
            assert_eq!(run.tokenizer.encode(probe["text"].as_str().unwrap()), ids);
            let want: Vec<Vec<f32>> = serde_json::from_value(probe["logits"].clone()).unwrap();
            let x = Tensor::<2, Int>::from_data(
                TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [1, ids.len()]),
                &device,
            );
            let logits = run.model.forward(x);
            let [_, seq, vocab] = logits.dims();
            for (got, want) in rows(logits.reshape([seq, vocab])).iter().zip(&want) {
                for (g, w) in got.iter().zip(want) {
                    worst = worst.max((g - w).abs());
                }
            }
        }
        eprintln!("{{\"name\": \"import-{name}\", \"max_abs_diff\": {worst}}}");
        assert!(worst <= 1e-4, "{name}: max |difference| {worst}");
    }
}

/// Fine-tunes the imported tied GPT-2 for three steps and exports it back, as a parity case.
fn fine_tuned_gpt2_case(d: &Path, exp: &Path) -> Value {
    let base = d.join("runs/gpt2-tied");
    let tuned = d.join("runs/gpt2-tuned");
    ok(hearth()
        .arg("train")
        .arg("--init-from")
        .arg(&base)
        .arg("--data")
        .arg(story(d))
        .args(["--steps", "3", "--batch", "2", "--eval-interval", "3"])
        .args(["--eval-batches", "1", "--backend", "flex", "--threads", "1"])
        .arg("--out")
        .arg(&tuned));
    let tuned_entry = hearth_engine::project::RunEntry::load(&tuned).unwrap();
    assert_eq!(tuned_entry.last_step.map(|(s, _)| s), Some(3));
    export(&tuned, &exp.join("gpt2-tuned"));
    case(
        "imported-gpt2-fine-tuned",
        &tuned,
        &exp.join("gpt2-tuned"),
        "causal-lm",
    )
}

#[test]
fn exports_match_transformers_and_a_gpt2_imports_fine_tunes_and_exports_back() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A tiny random GPT-2 from transformers, tied and untied, with its expected logits.
    let made = d.join("made");
    std::fs::create_dir_all(&made).unwrap();
    parity_script(&python, &["make-gpt2", made.to_str().unwrap()]);

    let exp = d.join("exports");
    let mut cases = decoder_cases(d, &exp);
    cases.extend(masked_cases(d, &exp));
    cases.extend(embedding_cases(d, &exp));
    // The GPT-2s import with transformers' logits, and one fine-tunes and exports back.
    import_gpt2s(d, &made);
    cases.push(fine_tuned_gpt2_case(d, &exp));

    let cases_path = d.join("cases.json");
    std::fs::write(&cases_path, json!({ "cases": cases }).to_string()).unwrap();
    let results = parity_script(&python, &["check", cases_path.to_str().unwrap()]);
    assert_eq!(results.len(), cases.len(), "one result per case");
    for result in &results {
        assert_eq!(result["failures"], json!([]), "{result}");
    }
}

#[test]
fn an_imported_gpt2_is_listed_with_the_project_runs() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made");
    std::fs::create_dir_all(&made).unwrap();
    parity_script(&python, &["make-gpt2", made.to_str().unwrap()]);
    let project = dir.path().join("project");
    let out = ok(hearth()
        .arg("--project")
        .arg(&project)
        .arg("import")
        .arg("--hf")
        .arg(made.join("gpt2-untied")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("run folder:"), "{stdout}");
    let out = ok(hearth()
        .arg("--project")
        .arg(&project)
        .args(["runs", "--json"]));
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["name"], "gpt2-untied");
    assert_eq!(runs[0]["objective"], "next-token");
    assert_eq!(runs[0]["damaged"], Value::Null);
    // The imported weights generate.
    let run_dir = PathBuf::from(runs[0]["dir"].as_str().unwrap());
    ok(hearth()
        .args([
            "generate",
            "--prompt",
            "Once",
            "--max-tokens",
            "5",
            "--seed",
            "1",
        ])
        .args(["--backend", "flex", "--threads", "1", "--run"])
        .arg(&run_dir));
}

/// A GPT-2 folder whose `config.json` sets `key` to `value`.
fn refused_config(dir: &Path, key: &str, value: Value) -> PathBuf {
    let folder = dir.join(key);
    std::fs::create_dir_all(&folder).unwrap();
    let mut config = json!({
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "activation_function": "gelu", "n_embd": 32, "n_head": 2, "n_layer": 1,
        "n_positions": 16, "vocab_size": 40,
    });
    config[key] = value;
    std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
    folder
}

#[test]
fn unsupported_gpt2_settings_are_refused_naming_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, shown) in [
        ("activation_function", json!("gelu_new"), "\"gelu_new\""),
        ("scale_attn_by_inverse_layer_idx", json!(true), "true"),
        ("reorder_and_upcast_attn", json!(true), "true"),
        ("n_inner", json!(100), "100"),
        ("model_type", json!("t5"), "\"t5\""),
    ] {
        let folder = refused_config(dir.path(), key, value);
        let run_dir = dir.path().join(format!("run-{key}"));
        let out = hearth()
            .arg("import")
            .arg("--hf")
            .arg(&folder)
            .arg("--out")
            .arg(&run_dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{key} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("config.json") && stderr.contains(&format!("{key} = {shown}")),
            "{key}: {stderr}"
        );
        assert!(!run_dir.exists(), "no run folder for a refused import");
    }
}

#[test]
fn generate_with_a_seed_repeats_and_embed_matches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = train(
        d,
        "contrastive",
        &[
            "--objective",
            "contrastive",
            "--pooling",
            "mean",
            "--masked-warmup",
            "0",
            // The channel is opt-in; `hearth embed` writes it out where a run has one.
            "--lexical",
            "0.6",
        ],
    );
    let generate = |seed: &str, extra: &[&str]| {
        let out = ok(hearth()
            .args(["generate", "--prompt", "Once upon", "--max-tokens", "24"])
            .args(["--seed", seed, "--backend", "flex", "--threads", "1"])
            .args(extra)
            .arg("--run")
            .arg(&run));
        String::from_utf8(out.stdout).unwrap()
    };
    let first = generate("7", &[]);
    assert!(!first.trim().is_empty());
    assert_eq!(first, generate("7", &[]), "the same seed, the same text");
    assert_eq!(
        generate("1", &["--top-k", "1"]),
        generate("2", &["--temperature", "0"]),
        "top-1 sampling is greedy"
    );

    let texts = [
        "The fox ran.",
        "Once upon a time, a cat sat by the fire.",
        "a",
    ];
    std::fs::write(d.join("texts.txt"), texts.join("\n") + "\n").unwrap();
    let jsonl: Vec<String> = texts
        .iter()
        .map(|t| json!({"text": t, "id": 1}).to_string())
        .collect();
    std::fs::write(d.join("texts.jsonl"), jsonl.join("\n")).unwrap();
    // Each line: the text and its full embedding (the sparse lexical channel, where the run
    // has one, written out in its columns after the pooled states).
    let embed = |input: &str, out: &str| -> Vec<(String, Vec<f32>)> {
        ok(hearth()
            .args(["embed", "--backend", "flex", "--threads", "1", "--run"])
            .arg(&run)
            .arg("--input")
            .arg(d.join(input))
            .arg("--out")
            .arg(d.join(out)));
        std::fs::read_to_string(d.join(out))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let mut full: Vec<f32> = serde_json::from_value(v["embedding"].clone()).unwrap();
                if let Some(lexical) = v.get("lexical") {
                    let size = lexical["size"].as_u64().unwrap() as usize;
                    let start = full.len();
                    full.resize(start + size, 0.0);
                    let indices: Vec<usize> =
                        serde_json::from_value(lexical["indices"].clone()).unwrap();
                    let values: Vec<f32> =
                        serde_json::from_value(lexical["values"].clone()).unwrap();
                    assert_eq!(indices.len(), values.len());
                    for (i, x) in indices.into_iter().zip(values) {
                        full[start + i] = x;
                    }
                }
                (v["text"].as_str().unwrap().to_string(), full)
            })
            .collect()
    };
    let from_txt = embed("texts.txt", "a.jsonl");
    assert_eq!(from_txt, embed("texts.jsonl", "b.jsonl"));
    assert_eq!(
        from_txt.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        texts
    );
    // What the engine computes for the run (`hearth eval --pairs` embeds the same way).
    let device = BackendKind::Flex.device().unwrap();
    let loaded = LoadedRun::load(&run, &device).unwrap();
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| loaded.tokenizer.encode(t)).collect();
    let engine = rows(hearth_engine::eval::embed_all(
        &loaded.model,
        &ids,
        loaded.spec.objective.embed_spec(),
        &loaded.tokenizer,
        &device,
    ));
    // The lexical channel follows the 32 pooled dimensions; "a" is shorter than one of its
    // n-grams.
    let lexical = hearth_engine::eval::LEXICAL_BUCKETS;
    assert!(
        loaded.spec.objective.lexical > 0.0,
        "the run has the channel"
    );
    for ((text, got), want) in from_txt.iter().zip(&engine) {
        assert_eq!(got.len(), 32 + lexical);
        let channel: f32 = got[32..].iter().map(|v| v * v).sum();
        let expected = if text.len() >= hearth_engine::eval::LEXICAL_NGRAM {
            loaded.spec.objective.lexical as f32
        } else {
            0.0
        };
        assert!((channel - expected).abs() < 1e-4, "{text}: {channel}");
        let diff = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-6, "embed differs from the engine by {diff}");
    }
}
