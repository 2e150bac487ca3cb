//! Masked-token prediction (BERT): bidirectional attention; a share of each sequence's positions
//! is chosen, of those 80% become `[mask]`, 10% a random token and 10% stay; the loss is the
//! cross-entropy on the chosen positions only. Masks are drawn afresh for every batch.

use crate::data::{Special, Tokenizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use rand::Rng;
use rand::rngs::StdRng;

/// Label of a position that is not predicted.
pub const IGNORE: i64 = -1;

/// Masks `ids` (`[batch, seq]` row-major) in place of a copy; returns `(inputs, labels)` where
/// labels hold the original token at chosen positions and [`IGNORE`] elsewhere. Special tokens
/// are never chosen; every sequence gets at least one chosen position when it has any token.
pub fn mask_tokens(
    ids: &[i64],
    seq: usize,
    tokenizer: &Tokenizer,
    rate: f64,
    rng: &mut StdRng,
) -> (Vec<i64>, Vec<i64>) {
    let mask_id = i64::from(
        tokenizer
            .special(Special::Mask)
            .expect("masked objective reserves [mask]"),
    );
    let base = tokenizer.base_size();
    let mut inputs = ids.to_vec();
    let mut labels = vec![IGNORE; ids.len()];
    for row in 0..ids.len() / seq.max(1) {
        let offset = row * seq;
        let mut candidates: Vec<usize> = (0..seq)
            .filter(|&t| !tokenizer.is_special(ids[offset + t] as u32))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let n = ((rate * candidates.len() as f64).round() as usize).clamp(1, candidates.len());
        // A partial Fisher-Yates shuffle picks `n` distinct positions.
        for k in 0..n {
            let j = rng.random_range(k..candidates.len());
            candidates.swap(k, j);
            let p = offset + candidates[k];
            labels[p] = ids[p];
            let r: f64 = rng.random();
            inputs[p] = if r < 0.8 {
                mask_id
            } else if r < 0.9 {
                rng.random_range(0..base) as i64
            } else {
                ids[p]
            };
        }
    }
    (inputs, labels)
}

/// Mean cross-entropy over the chosen positions. `logits: [batch, seq, vocab]`,
/// `labels: [batch, seq]` with [`IGNORE`] where nothing is predicted.
pub fn loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let [batch, seq, vocab] = logits.dims();
    let labels = labels.reshape([batch * seq, 1]);
    let chosen = labels.clone().greater_equal_elem(0).float(); // [batch * seq, 1]
    let log_probs = log_softmax(logits.reshape([batch * seq, vocab]), 1);
    let picked = log_probs.gather(1, labels.clamp_min(0)) * chosen.clone();
    picked.sum().neg() / chosen.sum().clamp_min(1.0)
}

/// `(correct, chosen)` counts of arg-max predictions at the chosen positions.
pub fn accuracy(logits: Tensor<3>, labels: &[i64]) -> (usize, usize) {
    let [_, _, vocab] = logits.dims();
    let predicted = logits
        .argmax(2)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default();
    let _ = vocab;
    let mut correct = 0;
    let mut chosen = 0;
    for (p, &l) in predicted.iter().zip(labels) {
        if l != IGNORE {
            chosen += 1;
            correct += usize::from(*p == l);
        }
    }
    (correct, chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TokenizerKind;
    use rand::SeedableRng;

    #[test]
    fn bert_proportions_and_no_special_chosen() {
        let tok =
            Tokenizer::fit(TokenizerKind::Char, "abcdefghijklmnopqrstuvwxyz").with_specials(true);
        let cls = i64::from(tok.special(Special::Cls).unwrap());
        let seq = 100;
        let rows = 400;
        let mut ids: Vec<i64> = (0..rows * seq).map(|i| (i % 26) as i64).collect();
        for row in 0..rows {
            ids[row * seq] = cls;
        }
        let mut rng = StdRng::seed_from_u64(3);
        let (inputs, labels) = mask_tokens(&ids, seq, &tok, 0.15, &mut rng);
        let mask_id = i64::from(tok.special(Special::Mask).unwrap());
        let chosen: Vec<usize> = (0..ids.len()).filter(|&i| labels[i] != IGNORE).collect();
        assert_eq!(
            chosen.len(),
            rows * 15,
            "15% of the 99 ordinary tokens, rounded, per row"
        );
        assert!(
            chosen.iter().all(|&i| ids[i] != cls),
            "[cls] is never chosen"
        );
        assert!(
            chosen.iter().all(|&i| labels[i] == ids[i]),
            "labels are the originals"
        );
        let masked =
            chosen.iter().filter(|&&i| inputs[i] == mask_id).count() as f64 / chosen.len() as f64;
        let kept =
            chosen.iter().filter(|&&i| inputs[i] == ids[i]).count() as f64 / chosen.len() as f64;
        assert!((masked - 0.8).abs() < 0.03, "masked share {masked}");
        // Kept: the 10% left alone plus random draws that hit the same token (1/26 of 10%).
        assert!(
            (kept - (0.1 + 0.1 / 26.0)).abs() < 0.03,
            "kept share {kept}"
        );
        let unchosen_changed = (0..ids.len())
            .filter(|&i| labels[i] == IGNORE && inputs[i] != ids[i])
            .count();
        assert_eq!(unchosen_changed, 0, "positions not chosen are untouched");
        let (again, _) = mask_tokens(&ids, seq, &tok, 0.15, &mut rng);
        assert_ne!(again, inputs, "masks are drawn afresh");
    }
}
