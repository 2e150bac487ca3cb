//! Count-model baselines against an independent Python computation
//! (`scripts/ngram_reference.py`) on a fixed text.

use hearth_engine::eval::baseline::{
    chance_retrieval, masked_count_accuracy, ngram_baselines, tfidf_retrieval,
};
use serde_json::Value;

#[test]
fn ngram_cross_entropies_match_the_reference() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/ngram_reference.json")).unwrap();
    let vocab: Vec<char> = fixture["vocab"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().chars().next().unwrap())
        .collect();
    let ids: Vec<u32> = fixture["text"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| vocab.iter().position(|&v| v == c).unwrap() as u32)
        .collect();
    let n_val = fixture["n_val"].as_u64().unwrap() as usize;
    let (train, val) = ids.split_at(ids.len() - n_val);
    let got = ngram_baselines(train, val, vocab.len(), 5);
    let want = fixture["baselines"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.order as u64, w["order"].as_u64().unwrap());
        assert_eq!(g.k, w["k"].as_f64().unwrap(), "order {}", g.order);
        let diff = (g.val_loss - w["val_loss"].as_f64().unwrap()).abs();
        assert!(diff < 1e-9, "order {}: {} against {w}", g.order, g.val_loss);
    }
    // Longer contexts predict this repetitive text better.
    assert!(got.windows(2).all(|p| p[1].val_loss < p[0].val_loss));
}

/// The fixture's text as char ids, and its validation length.
fn fixture_tokens(fixture: &Value) -> (Vec<u32>, usize) {
    let vocab: Vec<char> = fixture["vocab"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().chars().next().unwrap())
        .collect();
    let ids = fixture["text"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| vocab.iter().position(|&v| v == c).unwrap() as u32)
        .collect();
    (ids, fixture["n_val"].as_u64().unwrap() as usize)
}

#[test]
fn masked_count_accuracies_match_the_reference() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/ngram_reference.json")).unwrap();
    let (ids, n_val) = fixture_tokens(&fixture);
    let (train, val) = ids.split_at(ids.len() - n_val);
    for width in [1usize, 2] {
        let want = fixture["masked_accuracy"][width.to_string()]
            .as_f64()
            .unwrap();
        let got = masked_count_accuracy(train, val, width);
        assert!(
            (got - want).abs() < 1e-12,
            "+-{width}: {got} against {want}"
        );
    }
}

#[test]
fn tfidf_retrieval_matches_the_reference() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/ngram_reference.json")).unwrap();
    let texts = |key: &str| -> Vec<String> {
        fixture["pairs"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    let got = tfidf_retrieval(&texts("queries"), &texts("candidates"));
    let want = &fixture["pairs"]["tfidf"];
    for (name, value) in [
        ("recall_at_1", got.recall_at_1),
        ("recall_at_10", got.recall_at_10),
        ("mrr", got.mrr),
    ] {
        let w = want[name].as_f64().unwrap();
        assert!((value - w).abs() < 1e-6, "{name}: {value} against {w}");
    }
    // Chance on the same number of pairs is the mean reciprocal of the ranks.
    let n = texts("queries").len();
    let chance = chance_retrieval(n);
    let mean_rr = (1..=n).map(|r| 1.0 / r as f64).sum::<f64>() / n as f64;
    assert!((chance.mrr - mean_rr).abs() < 1e-12 && chance.recall_at_1 == 1.0 / n as f64);
}
