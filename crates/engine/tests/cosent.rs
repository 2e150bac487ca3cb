//! CoSENT on scored pairs with the BERT family: the loss goes down on pairs it trains on, and
//! the held-out pairs' cosines follow their gold scores.

mod common;

use hearth_engine::model::{Family, ModelSpec};
use hearth_engine::objective::{ObjectiveKind, ObjectiveSpec};
use hearth_engine::train::BackendKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write;

/// Scored pairs of word sequences: the second sentence keeps `5 - k` of the first's five
/// words and replaces `k`; the gold score is `5 - k`, so the score is the overlap.
fn scored_pairs(n: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    // Distinct four-letter words, so a word's bytes are its own.
    let words: Vec<String> = (0..40)
        .map(|_| {
            (0..4)
                .map(|_| rng.random_range(b'a'..=b'z') as char)
                .collect()
        })
        .collect();
    let mut out = String::new();
    for _ in 0..n {
        let a: Vec<&str> = (0..5)
            .map(|_| words[rng.random_range(0..words.len())].as_str())
            .collect();
        let k = rng.random_range(0..=5usize);
        let mut b = a.clone();
        for slot in b.iter_mut().take(k) {
            *slot = words[rng.random_range(0..words.len())].as_str();
        }
        writeln!(
            out,
            "{}",
            serde_json::json!({"a": a.join(" "), "b": b.join(" "), "score": (5 - k) as f64})
        )
        .unwrap();
    }
    out
}

#[test]
fn cosent_trains_a_bert_encoder_on_scored_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, scored_pairs(600, 5)).unwrap();
    let mut spec = common::small_spec(BackendKind::preferred(), 150);
    spec.data.tokenizer = hearth_engine::data::TokenizerKind::Byte;
    spec.model = ModelSpec {
        family: Family::Bert,
        bias: true,
        ..spec.model
    };
    spec.objective = ObjectiveSpec {
        kind: ObjectiveKind::COSENT,
        pairs_file: Some(pairs),
        ..ObjectiveSpec::default()
    };
    spec.optim.lr = 3e-3;
    spec.optim.min_lr = 3e-4;
    spec.train.eval_interval = 50;
    let (_dir, events) = common::train_to_end(spec);
    let evals = common::evals(&events);
    let (first, last) = (evals.first().unwrap(), evals.last().unwrap());
    assert_eq!(last.step, 150);
    assert!(
        last.train_loss < 0.95 * first.train_loss,
        "CoSENT loss on training pairs {} -> {}",
        first.train_loss,
        last.train_loss
    );
    let spearman = last.metric("val_spearman").expect("val_spearman reported");
    let pearson = last.metric("val_pearson").expect("val_pearson reported");
    eprintln!(
        "loss {} -> {}, held-out Spearman {:?} -> {spearman}",
        first.train_loss,
        last.train_loss,
        first.metric("val_spearman")
    );
    let before = first.metric("val_spearman").expect("val_spearman reported");
    assert!(
        spearman > before,
        "held-out Spearman fell from {before} to {spearman}"
    );
    assert!(
        spearman > 0.5 && pearson > 0.4,
        "held-out correlation: Spearman {spearman}, Pearson {pearson}"
    );
}

#[test]
fn cosent_without_a_pairs_file_is_refused_naming_the_field() {
    let mut spec = common::small_spec(BackendKind::preferred(), 10);
    spec.objective.kind = ObjectiveKind::COSENT;
    let errors = spec.validate();
    assert!(
        errors.iter().any(|e| e.field == "objective.pairs_file"),
        "{errors:?}"
    );
}
