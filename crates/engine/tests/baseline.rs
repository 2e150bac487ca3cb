//! Count-model baselines against an independent Python computation
//! (`scripts/ngram_reference.py`) on a fixed text.

use hearth_engine::eval::baseline::ngram_baselines;
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
