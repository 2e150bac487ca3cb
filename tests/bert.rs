//! Pretrained sentence encoders: `hearth import --hf` of BERT and sentence-transformers folders,
//! checked against sentence-transformers itself through `scripts/bert_parity.py`; and the
//! folders an import must refuse.
//!
//! The parity tests need a Python with sentence-transformers (the one `scripts/env.sh` sets
//! up); the all-MiniLM-L6-v2 test needs the weights `scripts/fetch_fixtures.sh` puts in the
//! cache. Without them they print why and pass, unless `HEARTH_REQUIRE_TRANSFORMERS` /
//! `HEARTH_REQUIRE_FIXTURES` is set (`make test`), where they fail.

mod support;

use hearth_engine::backend::BackendKind;
use hearth_engine::eval::embed_all;
use hearth_engine::export::LoadedRun;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::{hearth, import, max_abs_diff, ok, python, script};

/// Sentences of the kind STS pairs hold, with punctuation, capitals, digits and a word no
/// small vocabulary has.
const SENTENCES: [&str; 32] = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The child rides a red horse on the beach.",
    "Two dogs are running through a field.",
    "A cat is sleeping on the sofa.",
    "Someone is eating a big green apple!",
    "The stock market fell 3 percent on Monday.",
    "Is the train late again?",
    "A man is riding a bicycle down the street.",
    "The woman is playing the violin.",
    "Kids are playing in the snow.",
    "A dog is eating food from a bowl.",
    "The sun sets behind the mountains.",
    "He said he would come back tomorrow.",
    "Three men are playing chess.",
    "A small boat sails across the lake.",
    "The president spoke to reporters in Washington.",
    "Rain is expected for most of the week.",
    "A woman is dancing in the rain.",
    "The chef adds salt to the soup.",
    "Students are studying in the library.",
    "A bird is flying over the ocean.",
    "Xylophonists rarely sleepwalk.",
    "The man wasn't wearing a hat.",
    "A plane is taking off.",
    "A girl is brushing her hair.",
    "Police arrested two suspects after the robbery.",
    "The cat chased the mouse around the house.",
    "An old man is reading a newspaper on a bench.",
    "Children were singing songs at the party.",
    "A man plays the guitar.",
    "a MAN is Playing a Guitar",
];

/// A Python with sentence-transformers, or `None` (said why) where tests may skip.
fn st_python() -> Option<PathBuf> {
    let python = python()?;
    let works = std::process::Command::new(&python)
        .args(["-c", "import sentence_transformers, scipy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    let reason = format!(
        "{} has no sentence_transformers; run `source scripts/env.sh`",
        python.display()
    );
    if std::env::var_os("HEARTH_REQUIRE_TRANSFORMERS").is_some() {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// all-MiniLM-L6-v2 as `scripts/fetch_fixtures.sh` unpacks it, or `None` (said why) where
/// tests may skip.
fn minilm() -> Option<PathBuf> {
    support::fixture("all-MiniLM-L6-v2", "all-MiniLM-L6-v2")
}

/// Hearth's embeddings of `texts` by the run in `run_dir`, as rows.
fn hearth_embeddings(run_dir: &Path, texts: &[&str]) -> Vec<Vec<f32>> {
    let device = BackendKind::preferred().device().unwrap();
    let run = LoadedRun::load(run_dir, &device).unwrap();
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| run.tokenizer.encode_text(t)).collect();
    let how = run.spec.objective.embed_spec();
    let x = embed_all(&run.model, &ids, how, &run.tokenizer, &device);
    let [n, d] = x.dims();
    let values = x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    (0..n)
        .map(|i| values[i * d..(i + 1) * d].to_vec())
        .collect()
}

/// sentence-transformers' embeddings of `texts` by the folder `dir`.
fn reference_embeddings(python: &Path, dir: &Path, texts: &[&str], tmp: &Path) -> Vec<Vec<f32>> {
    let file = tmp.join("texts.json");
    std::fs::write(&file, json!(texts).to_string()).unwrap();
    let out = script(
        python,
        "bert_parity.py",
        &["embed", dir.to_str().unwrap(), file.to_str().unwrap()],
    );
    let rows: Vec<Vec<f32>> = serde_json::from_value(out.last().cloned().unwrap()).unwrap();
    rows
}

#[test]
fn tiny_sentence_encoders_embed_as_sentence_transformers_for_each_pooling() {
    let Some(python) = st_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    for pooling in ["mean", "cls", "max"] {
        let folder = tmp.path().join(format!("tiny-{pooling}"));
        script(
            &python,
            "bert_parity.py",
            &["tiny", folder.to_str().unwrap(), pooling],
        );
        let run = import(&project, &folder, &format!("tiny-{pooling}"));
        let spec: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("spec.json")).unwrap()).unwrap();
        assert_eq!(spec["model"]["family"], "bert");
        assert_eq!(spec["objective"]["pooling"], pooling);
        assert_eq!(spec["model"]["context"], 48, "max_seq_length of the folder");
        let ours = hearth_embeddings(&run, &SENTENCES);
        let theirs = reference_embeddings(&python, &folder, &SENTENCES, tmp.path());
        let diff = max_abs_diff(&ours, &theirs);
        assert!(
            diff < 1e-5,
            "{pooling}: embeddings differ by {diff} from sentence-transformers"
        );
    }
}

#[test]
fn minilm_embeds_as_sentence_transformers() {
    let Some(folder) = minilm() else { return };
    let Some(python) = st_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = import(&tmp.path().join("project"), &folder, "minilm");
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("spec.json")).unwrap()).unwrap();
    assert_eq!(spec["model"]["n_layer"], 6);
    assert_eq!(spec["model"]["d_model"], 384);
    assert_eq!(spec["model"]["context"], 256);
    let ours = hearth_embeddings(&run, &SENTENCES);
    let theirs = reference_embeddings(&python, &folder, &SENTENCES, tmp.path());
    let diff = max_abs_diff(&ours, &theirs);
    eprintln!(
        "all-MiniLM-L6-v2 on {} sentences: max |diff| {diff:e}",
        SENTENCES.len()
    );
    assert!(
        diff < 1e-4,
        "embeddings differ by {diff} from sentence-transformers"
    );
}

#[test]
fn a_fine_tuned_encoder_exports_to_sentence_transformers_with_the_same_embeddings() {
    let Some(python) = st_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let folder = tmp.path().join("tiny");
    script(
        &python,
        "bert_parity.py",
        &["tiny", folder.to_str().unwrap(), "mean"],
    );
    let base = import(&project, &folder, "tiny");
    // Scored pairs: a sentence with itself (5) or with another (0 to 4).
    let mut pairs = String::new();
    for (i, a) in SENTENCES.iter().enumerate() {
        let b = SENTENCES[(i * 7 + 3) % SENTENCES.len()];
        pairs.push_str(&format!("{}\n", json!({"a": a, "b": a, "score": 5.0})));
        pairs.push_str(&format!(
            "{}\n",
            json!({"a": a, "b": b, "score": (i % 5) as f64})
        ));
    }
    let pairs_file = tmp.path().join("pairs.jsonl");
    std::fs::write(&pairs_file, &pairs).unwrap();
    // The same pairs in the STS benchmark's layout, scored by the base and at every
    // evaluation of the fine-tune.
    let sts_file = tmp.path().join("sts.tsv");
    let sts: String = pairs
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line).unwrap();
            format!(
                "main\tgen\t2024\t{i:04}\t{}\t{}\t{}\n",
                v["score"],
                v["a"].as_str().unwrap(),
                v["b"].as_str().unwrap()
            )
        })
        .collect();
    std::fs::write(&sts_file, sts).unwrap();
    let out = ok(hearth()
        .args(["eval", "--record", "--run"])
        .arg(&base)
        .arg("--sts")
        .arg(&sts_file));
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    assert!(last.starts_with("pairs=64 pearson="), "{last}");
    let history = hearth_engine::project::RunStore::open(&base)
        .unwrap()
        .load_history()
        .unwrap();
    let recorded = history
        .evals
        .iter()
        .find(|e| e.step == 0)
        .expect("recorded at step 0");
    assert!(
        recorded.metric("val_sts_spearman").is_some(),
        "{recorded:?}"
    );
    assert!(recorded.val_loss.is_nan(), "no loss was measured");
    let ft = tmp.path().join("ft");
    ok(hearth()
        .arg("--project")
        .arg(&project)
        .args(["train", "--init-from"])
        .arg(&base)
        .args(["--objective", "cosent", "--pairs"])
        .arg(&pairs_file)
        .args([
            "--steps",
            "6",
            "--eval-interval",
            "3",
            "--batch",
            "8",
            "--threads",
            "1",
        ])
        .args(["--lr", "1e-3", "--name", "ft", "--sts"])
        .arg(&sts_file)
        .arg("--out")
        .arg(&ft));
    let history = hearth_engine::project::RunStore::open(&ft)
        .unwrap()
        .load_history()
        .unwrap();
    assert!(
        history
            .evals
            .iter()
            .all(|e| e.metric("val_sts_spearman").is_some() && e.metric("val_spearman").is_some()),
        "every evaluation scores the STS file and the held-out pairs: {:?}",
        history.evals
    );
    let export = tmp.path().join("export");
    ok(hearth()
        .args(["export", "--run"])
        .arg(&ft)
        .arg("--out")
        .arg(&export));
    let keys = script(
        &python,
        "bert_parity.py",
        &["keys", export.to_str().unwrap()],
    );
    let keys = keys.last().unwrap();
    for kind in ["missing_keys", "unexpected_keys", "mismatched_keys"] {
        assert_eq!(keys[kind], json!([]), "{kind} loading the export: {keys}");
    }
    let ours = hearth_embeddings(&ft, &SENTENCES);
    let base_rows = hearth_embeddings(&base, &SENTENCES);
    assert!(
        max_abs_diff(&ours, &base_rows) > 1e-4,
        "fine-tuning changed nothing, so the check would not tell an export of the base apart"
    );
    let theirs = reference_embeddings(&python, &export, &SENTENCES, tmp.path());
    let diff = max_abs_diff(&ours, &theirs);
    assert!(diff < 1e-5, "the export embeds {diff} away from the run");
}

/// A plain BERT folder by hand: its config (with `overrides`), a WordPiece tokenizer of
/// `tokens` and no weights.
fn hand_folder(dir: &Path, overrides: Value, tokens: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut config = json!({
        "model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
        "vocab_size": 7, "hidden_act": "gelu", "layer_norm_eps": 1e-12
    });
    for (k, v) in overrides.as_object().unwrap() {
        config[k] = v.clone();
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let names = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d",
    ];
    let vocab: serde_json::Map<String, Value> = names[..tokens]
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
            "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]",
            "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
            "vocab": vocab}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
}

#[test]
fn folders_an_import_cannot_represent_are_refused_naming_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let refuse = |folder: &Path| -> String {
        let out = hearth()
            .arg("--project")
            .arg(&project)
            .args(["import", "--hf"])
            .arg(folder)
            .args(["--name", "bad"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{} was imported", folder.display());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let message = refuse(&empty);
    assert!(message.contains("config.json"), "{message}");

    let roberta = tmp.path().join("roberta");
    hand_folder(&roberta, json!({"model_type": "roberta"}), 7);
    let message = refuse(&roberta);
    assert!(
        message.contains("config.json")
            && message.contains("model_type")
            && message.contains("roberta"),
        "{message}"
    );

    let act = tmp.path().join("act");
    hand_folder(&act, json!({"hidden_act": "relu"}), 7);
    let message = refuse(&act);
    assert!(
        message.contains("hidden_act") && message.contains("relu"),
        "{message}"
    );

    let mismatch = tmp.path().join("mismatch");
    hand_folder(&mismatch, json!({"vocab_size": 9}), 7);
    let message = refuse(&mismatch);
    assert!(
        message.contains("config.json")
            && message.contains("vocab_size")
            && message.contains("tokenizer.json has 7 tokens"),
        "{message}"
    );

    let bin_only = tmp.path().join("bin-only");
    hand_folder(&bin_only, json!({}), 7);
    std::fs::write(bin_only.join("pytorch_model.bin"), b"not read").unwrap();
    let message = refuse(&bin_only);
    assert!(
        message.contains("pytorch_model.bin") && message.contains("safetensors"),
        "{message}"
    );

    let dense = tmp.path().join("dense");
    hand_folder(&dense, json!({}), 7);
    std::fs::write(
        dense.join("modules.json"),
        json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
        ])
        .to_string(),
    )
    .unwrap();
    let message = refuse(&dense);
    assert!(
        message.contains("modules.json") && message.contains("Dense"),
        "{message}"
    );

    // Nothing was written for any of them.
    let runs = project.join("runs");
    let written = std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        written,
        0,
        "refused imports left run folders in {}",
        runs.display()
    );
}
