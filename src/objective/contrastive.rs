//! Embedding similarity: pooled, L2-normalised encodings trained with InfoNCE over in-batch
//! negatives (plus optional hard negatives) at a temperature.

use super::Pooling;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Pools hidden states `[batch, seq, d]` to `[batch, d]`. `keep: [batch, seq]` is 1 for real
/// tokens and 0 for padding (`None`: no padding).
pub fn pool(hidden: Tensor<3>, keep: Option<Tensor<2>>, pooling: Pooling) -> Tensor<2> {
    let [batch, seq, d] = hidden.dims();
    match (pooling, keep) {
        (Pooling::Mean, None) => hidden.mean_dim(1).reshape([batch, d]),
        (Pooling::Mean, Some(keep)) => {
            let weights = keep.clone().reshape([batch, seq, 1]);
            let summed = (hidden * weights).sum_dim(1).reshape([batch, d]);
            summed / keep.sum_dim(1).clamp_min(1.0)
        }
        (Pooling::Cls, _) => hidden.narrow(1, 0, 1).reshape([batch, d]),
        (Pooling::Last, None) => hidden.narrow(1, seq - 1, 1).reshape([batch, d]),
        (Pooling::Last, Some(keep)) => {
            // Index of the last real token of each row.
            let last = (keep.sum_dim(1) - 1.0).clamp_min(0.0).int(); // [batch, 1]
            let index = last.reshape([batch, 1, 1]).expand([batch, 1, d]);
            hidden.gather(1, index).reshape([batch, d])
        }
    }
}

/// Rows scaled to unit length (as `torch.nn.functional.normalize`, eps 1e-12).
pub fn normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// InfoNCE: row `i` of `queries` should pick row `i` of `positives` among all positives (and
/// all hard negatives). Inputs are normalised embeddings `[batch, d]` / `[m, d]`.
pub fn info_nce(
    queries: Tensor<2>,
    positives: Tensor<2>,
    hard_negatives: Option<Tensor<2>>,
    temperature: f64,
) -> Tensor<1> {
    let [batch, _] = queries.dims();
    let candidates = match hard_negatives {
        Some(hard) => Tensor::cat(vec![positives, hard], 0),
        None => positives,
    };
    let logits = queries.matmul(candidates.transpose()) / temperature; // [batch, batch + m]
    let device = logits.device();
    let targets = Tensor::<1, Int>::arange(0..batch as i64, &device).reshape([batch, 1]);
    log_softmax(logits, 1).gather(1, targets).mean().neg()
}

/// Cosine similarities of normalised `a: [n, d]` against `b: [m, d]`, row-major `[n, m]`.
pub fn similarities(a: Tensor<2>, b: Tensor<2>) -> Vec<f32> {
    a.matmul(b.transpose())
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::tensor::{Device, Distribution};

    #[derive(Module, Debug)]
    struct Free {
        q: Param<Tensor<2>>,
        p: Param<Tensor<2>>,
    }

    /// Free vectors trained with InfoNCE separate: the loss falls from about ln(batch).
    #[test]
    fn info_nce_gradients_pull_pairs_together() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let mut model = Free {
            q: Param::from_tensor(Tensor::random(
                [8, 16],
                Distribution::Normal(0.0, 1.0),
                &device,
            )),
            p: Param::from_tensor(Tensor::random(
                [8, 16],
                Distribution::Normal(0.0, 1.0),
                &device,
            )),
        };
        let mut optim = crate::train::AdamW::new(crate::train::OptimSpec {
            weight_decay: 0.0,
            ..crate::train::OptimSpec::default()
        });
        let loss_of = |m: &Free| info_nce(normalize(m.q.val()), normalize(m.p.val()), None, 0.05);
        let first: f32 = loss_of(&model).into_scalar();
        for _ in 0..100 {
            let loss = loss_of(&model);
            let grads = loss.backward();
            model = optim.step(model, &grads, 0.05).0;
        }
        let last: f32 = loss_of(&model).into_scalar();
        assert!(last < 0.1 * first, "InfoNCE {first} -> {last}");
    }
}
