//! Training ops that run as one operation, forward and backward, on LibTorch and on Flex.
//!
//! Burn's autodiff decomposes attention (`attention_fallback`), layer norm and softmax
//! cross-entropy into chains of small tensor ops, each recorded and differentiated on its own.
//! On LibTorch each of these runs here as a single custom autodiff operation: the forward calls
//! LibTorch's own op (`scaled_dot_product_attention`, `layer_norm`, `cross_entropy_loss`) on
//! leaves that LibTorch's autograd records, and the backward asks LibTorch's autograd for the
//! vector-Jacobian product, so both directions run the kernels PyTorch eager runs (flash
//! attention on the CPU and on CUDA, the fused layer-norm backward). On Flex, packed attention,
//! the norms, cross-entropy and GELU run as Hearth's own Rust kernels ([`super::flex_ops`]).
//!
//! Every other op and backend, and both backends with the fused ops switched off
//! ([`with_decomposed`], `HEARTH_FUSED_OPS=0`), run Burn's decomposed ops, which the parity tests
//! use as the reference.
//!
//! Safety of sharing buffers with Burn: Burn's LibTorch backend writes in place into a tensor
//! whose storage it believes it owns alone. Each operation here keeps Burn clones of its inputs
//! and of its output until its backward has run, so none of the buffers LibTorch's graph saved
//! can be overwritten under it.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Bool, Device, Int, Tensor};
use std::cell::Cell;

use super::flex_ops;

thread_local! {
    static FUSED: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether this thread runs the fused ops where the backend has them: on unless
/// `HEARTH_FUSED_OPS=0` or inside [`with_decomposed`].
pub fn fused_enabled() -> bool {
    FUSED.with(|cell| match cell.get() {
        Some(on) => on,
        None => {
            let on = std::env::var("HEARTH_FUSED_OPS").map_or(true, |v| v.trim() != "0");
            cell.set(Some(on));
            on
        }
    })
}

/// Runs `f` on this thread with the decomposed ops only (the reference of the parity tests and
/// of `hearth bench`'s comparison).
pub fn with_decomposed<T>(f: impl FnOnce() -> T) -> T {
    let before = fused_enabled();
    FUSED.with(|cell| cell.set(Some(false)));
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FUSED.with(|cell| cell.set(Some(self.0)));
        }
    }
    let _restore = Restore(before);
    f()
}

/// Whether the fused ops run for tensors on `device` on this thread.
pub fn fused_on(device: &Device) -> bool {
    fused_enabled() && backend_has_fused(device)
}

#[cfg(feature = "libtorch")]
#[allow(deprecated)] // as in `mod libtorch`
fn backend_has_fused(device: &Device) -> bool {
    use burn::backend::DispatchDevice;
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::LibTorch(_)
    )
}

#[cfg(not(feature = "libtorch"))]
fn backend_has_fused(_device: &Device) -> bool {
    false
}

/// Whether tensors on `device` take Flex's own fused ops (`super::flex_ops`: packed attention,
/// the norms, cross-entropy) on this thread.
pub fn flex_fused_on(device: &Device) -> bool {
    fused_enabled() && flex_ops::is_flex(device)
}

/// Whether `t` takes Flex's fused ops: an f32 tensor where [`flex_fused_on`].
fn flex_fused<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == burn::tensor::DType::F32 && flex_fused_on(&t.device())
}

/// Which keys each query may attend to.
#[derive(Debug, Clone)]
pub enum AttnMask {
    /// Every key.
    None,
    /// Keys at or before the query's position.
    Causal,
    /// A mask `[batch or 1, 1, seq or 1, seq]`, true where a query may not look.
    Masked(Box<Tensor<4, Bool>>),
}

/// Scaled dot-product attention `softmax(q kᵀ / sqrt(head_dim)) v` of `q: [batch, head, seq,
/// head_dim]` and `k, v: [batch, kv_head, keys, head_dim]`, without dropout. With fewer key/value
/// heads than query heads (grouped-query attention), each key/value head serves `head / kv_head`
/// consecutive query heads. One fused op where [`fused_on`] (LibTorch reads the shared key/value
/// heads in place), otherwise Burn's decomposed ops ([`attention_decomposed`]) on repeated heads.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: &AttnMask) -> Tensor<4> {
    if fused_on(&q.device()) {
        return libtorch::attention(q, k, v, mask);
    }
    let group = q.dims()[1] / k.dims()[1];
    attention_decomposed(q, repeat_kv(k, group), repeat_kv(v, group), mask)
}

/// Key/value heads repeated `group` times each so every query head has its own: `[b, kv, s,
/// hd]` to `[b, kv * group, s, hd]`.
pub fn repeat_kv(t: Tensor<4>, group: usize) -> Tensor<4> {
    if group == 1 {
        return t;
    }
    let [b, kv, s, hd] = t.dims();
    t.unsqueeze_dim::<5>(2)
        .expand([b, kv, group, s, hd])
        .reshape([b, kv * group, s, hd])
}

/// The SwiGLU gate `silu(gate) · up` (Shazeer 2020), elementwise: one fused op forward and
/// backward where [`fused_on`] (LibTorch's `silu` and `silu_backward` kernels), otherwise Burn's
/// ops.
pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    if fused_on(&gate.device()) {
        return libtorch::swiglu(gate, up);
    }
    burn::tensor::activation::silu(gate) * up
}

/// Rotary position embedding in the "rotate half" layout of `x: [batch, head, seq, head_dim]`:
/// each pair `(x_i, x_{i + head_dim / 2})` turned by the angle whose cosine and sine are
/// `cos, sin: [seq, head_dim / 2]`. One fused op forward and backward where [`fused_on`]
/// (the backward turns the gradient back by the opposite angle), otherwise Burn's ops.
pub fn rope(x: Tensor<4>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<4> {
    if fused_on(&x.device()) {
        return libtorch::rope(x, cos.clone(), sin.clone());
    }
    rope_decomposed(x, cos, sin)
}

/// [`rope`] from Burn's own ops.
pub fn rope_decomposed(x: Tensor<4>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<4> {
    let half = x.dims()[3] / 2;
    let [seq, _] = cos.dims();
    let cos = cos.clone().reshape([1, 1, seq, half]);
    let sin = sin.clone().reshape([1, 1, seq, half]);
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    Tensor::cat(
        vec![
            x1.clone() * cos.clone() - x2.clone() * sin.clone(),
            x1 * sin + x2 * cos,
        ],
        3,
    )
}

/// Attention over a packed projection `qkv: [batch, seq, 3 * d_model]` (queries, keys, values
/// side by side, each `n_head` heads wide, as nanoGPT's `c_attn`), returning the heads merged
/// back, `[batch, seq, d_model]`: one fused op where [`fused_on`], otherwise Burn's ops.
pub fn packed_attention(qkv: Tensor<3>, n_head: usize, mask: &AttnMask) -> Tensor<3> {
    if flex_fused(&qkv) && !matches!(mask, AttnMask::Masked(_)) {
        return flex_ops::packed_attention(qkv, n_head, matches!(mask, AttnMask::Causal));
    }
    if fused_on(&qkv.device()) {
        return libtorch::packed_attention(qkv, n_head, mask);
    }
    let [batch, seq, _] = qkv.dims();
    let (q, k, v) = split_heads(qkv, n_head);
    merge_heads(attention_decomposed(q, k, v, mask), batch, seq)
}

/// Queries, keys and values `[batch, head, seq, head_dim]` of a packed projection
/// `[batch, seq, 3 * d_model]`.
pub fn split_heads(qkv: Tensor<3>, n_head: usize) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
    let [batch, seq, three_d] = qkv.dims();
    let head_dim = three_d / 3 / n_head;
    // [batch, seq, 3, head, head_dim] -> [3, batch, head, seq, head_dim]
    let qkv = qkv
        .reshape([batch, seq, 3, n_head, head_dim])
        .permute([2, 0, 3, 1, 4]);
    let q: Tensor<4> = qkv.clone().narrow(0, 0, 1).squeeze_dim(0);
    let k: Tensor<4> = qkv.clone().narrow(0, 1, 1).squeeze_dim(0);
    let v: Tensor<4> = qkv.narrow(0, 2, 1).squeeze_dim(0);
    (q, k, v)
}

/// `[batch, head, seq, head_dim]` -> `[batch, seq, head * head_dim]`.
pub fn merge_heads(y: Tensor<4>, batch: usize, seq: usize) -> Tensor<3> {
    let [_, heads, _, head_dim] = y.dims();
    y.swap_dims(1, 2).reshape([batch, seq, heads * head_dim])
}

/// Attention from Burn's own ops.
pub fn attention_decomposed(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: &AttnMask,
) -> Tensor<4> {
    attention_weights(q, k, mask).matmul(v)
}

/// The attention weights `softmax(q kᵀ / sqrt(head_dim))` `[batch, head, seq, seq]` from Burn's
/// own ops, each row a distribution over the keys the query may attend to.
pub fn attention_weights(q: Tensor<4>, k: Tensor<4>, mask: &AttnMask) -> Tensor<4> {
    let [batch, heads, seq, head_dim] = q.dims();
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
    let mask = match mask {
        AttnMask::None => None,
        AttnMask::Causal => {
            let device = scores.device();
            Some(Tensor::<2, Bool>::tril_mask([seq, seq], 0, &device).reshape([1, 1, seq, seq]))
        }
        AttnMask::Masked(mask) => Some((**mask).clone()),
    };
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask.expand([batch, heads, seq, seq]), f32::NEG_INFINITY),
        None => scores,
    };
    softmax(scores, 3)
}

/// Layer norm over the last dimension with gain `weight` and optional `bias`: fused where
/// [`fused_on`], otherwise Burn's `layer_norm`.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Option<Tensor<1>>,
    eps: f64,
) -> Tensor<D> {
    if flex_fused(&x) {
        return flex_ops::layer_norm(x, weight, bias, eps);
    }
    if fused_on(&x.device()) {
        return libtorch::layer_norm(x, weight, bias, eps);
    }
    burn::tensor::module::layer_norm(x, weight, bias, eps)
}

/// RMSNorm over the last dimension with gain `weight`: `x / sqrt(mean(x²) + eps) · weight`.
/// Fused where [`fused_on`], otherwise Burn's ops ([`rms_norm_decomposed`]).
pub fn rms_norm<const D: usize>(x: Tensor<D>, weight: Tensor<1>, eps: f64) -> Tensor<D> {
    if flex_fused(&x) {
        return flex_ops::rms_norm(x, weight, eps);
    }
    if fused_on(&x.device()) {
        return libtorch::rms_norm(x, weight, eps);
    }
    rms_norm_decomposed(x, weight, eps)
}

/// RMSNorm from Burn's own ops, as Burn's `RmsNorm` module computes it.
pub fn rms_norm_decomposed<const D: usize>(x: Tensor<D>, weight: Tensor<1>, eps: f64) -> Tensor<D> {
    let rms = (x.clone().square().mean_dim(D - 1) + eps).sqrt();
    (x / rms) * weight.unsqueeze()
}

/// Exact GELU: Flex's fused op where [`flex_fused_on`], otherwise `decomposed` (Burn's).
pub fn gelu<const D: usize>(
    x: Tensor<D>,
    decomposed: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    if flex_fused(&x) {
        return flex_ops::gelu(x);
    }
    decomposed(x)
}

/// Mean softmax cross-entropy in nats of `logits: [rows, classes]` against `targets: [rows]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    if flex_fused(&logits) {
        return flex_ops::cross_entropy(logits, targets);
    }
    if fused_on(&logits.device()) {
        return libtorch::cross_entropy(logits, targets);
    }
    cross_entropy_decomposed(logits, targets)
}

/// Cross-entropy from Burn's own ops: log-softmax, gather, mean.
pub fn cross_entropy_decomposed(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, _] = logits.dims();
    let log_probs = log_softmax(logits, 1);
    log_probs.gather(1, targets.reshape([rows, 1])).mean().neg()
}

#[cfg(not(feature = "libtorch"))]
mod libtorch {
    //! Without LibTorch in the build `fused_on` is always false: the callers take Burn's ops.
    use super::*;

    const NEVER: &str = "fused ops are only called where fused_on, which needs LibTorch";

    pub fn attention(_: Tensor<4>, _: Tensor<4>, _: Tensor<4>, _: &AttnMask) -> Tensor<4> {
        unreachable!("{NEVER}")
    }

    pub fn packed_attention(_: Tensor<3>, _: usize, _: &AttnMask) -> Tensor<3> {
        unreachable!("{NEVER}")
    }

    pub fn layer_norm<const D: usize>(
        _: Tensor<D>,
        _: Tensor<1>,
        _: Option<Tensor<1>>,
        _: f64,
    ) -> Tensor<D> {
        unreachable!("{NEVER}")
    }

    pub fn rms_norm<const D: usize>(_: Tensor<D>, _: Tensor<1>, _: f64) -> Tensor<D> {
        unreachable!("{NEVER}")
    }

    pub fn cross_entropy(_: Tensor<2>, _: Tensor<1, Int>) -> Tensor<1> {
        unreachable!("{NEVER}")
    }

    pub fn swiglu<const D: usize>(_: Tensor<D>, _: Tensor<D>) -> Tensor<D> {
        unreachable!("{NEVER}")
    }

    pub fn rope(_: Tensor<4>, _: Tensor<2>, _: Tensor<2>) -> Tensor<4> {
        unreachable!("{NEVER}")
    }
}

#[cfg(feature = "libtorch")]
#[allow(deprecated)] // burn marks its LibTorch backend deprecated; it remains the fastest CPU path here.
mod libtorch {
    use super::AttnMask;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::libtorch::TchTensor;
    use burn::backend::tensor::{FloatTensor, IntTensor};
    use burn::backend::{Autodiff, Backend, LibTorch, backend_extension};
    use burn::tensor::{Bool, Int, Tensor};

    /// The fused ops, as a Burn backend extension implemented for LibTorch and for autodiff
    /// over LibTorch.
    #[backend_extension(LibTorch, Autodiff)]
    pub trait FusedOps: Backend {
        /// Attention over `[batch, head, seq, head_dim]`, causal when `causal`.
        fn fused_attention(
            q: FloatTensor<Self>,
            k: FloatTensor<Self>,
            v: FloatTensor<Self>,
            causal: bool,
        ) -> FloatTensor<Self>;

        /// Attention with an additive mask (0 or −∞) broadcast to `[batch, head, seq, seq]`.
        fn fused_attention_biased(
            q: FloatTensor<Self>,
            k: FloatTensor<Self>,
            v: FloatTensor<Self>,
            bias: FloatTensor<Self>,
        ) -> FloatTensor<Self>;

        /// Attention over a packed projection `[batch, seq, 3 * d_model]`, heads merged back
        /// (`[batch, seq, d_model]`), causal when `causal`.
        fn fused_packed_attention(
            qkv: FloatTensor<Self>,
            n_head: usize,
            causal: bool,
        ) -> FloatTensor<Self>;

        /// Packed attention with an additive mask broadcast to `[batch, head, seq, seq]`.
        fn fused_packed_attention_biased(
            qkv: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            n_head: usize,
        ) -> FloatTensor<Self>;

        /// Layer norm over the last dimension, without a bias.
        fn fused_layer_norm(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self>;

        /// Layer norm over the last dimension, with a bias.
        fn fused_layer_norm_biased(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self>;

        /// RMSNorm over the last dimension.
        fn fused_rms_norm(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self>;

        /// Mean cross-entropy of `logits: [rows, classes]` against `targets: [rows]`, shape `[1]`.
        fn fused_cross_entropy(
            logits: FloatTensor<Self>,
            targets: IntTensor<Self>,
        ) -> FloatTensor<Self>;

        /// `silu(gate) · up`, elementwise.
        fn fused_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;

        /// Rotary embedding of `x: [batch, head, seq, head_dim]` by the angles of `cos, sin:
        /// [seq, head_dim / 2]` (constants).
        fn fused_rope(
            x: FloatTensor<Self>,
            cos: FloatTensor<Self>,
            sin: FloatTensor<Self>,
        ) -> FloatTensor<Self>;
    }

    /// The LibTorch computation of each op, on plain tensors; `bias` of attention is additive.
    fn attention_tch(
        q: &tch::Tensor,
        k: &tch::Tensor,
        v: &tch::Tensor,
        bias: Option<&tch::Tensor>,
        causal: bool,
    ) -> tch::Tensor {
        // Fewer key/value heads than query heads: LibTorch's kernels read them shared.
        let grouped = q.size()[1] != k.size()[1];
        tch::Tensor::scaled_dot_product_attention(q, k, v, bias, 0.0, causal, None, grouped)
    }

    /// `x` turned by the angles of `cos, sin: [seq, half]` in the rotate-half layout:
    /// `(x1 cos - x2 sin, x2 cos + x1 sin)` for the halves `x1, x2` of the last dimension
    /// (`sin` negated gives the inverse turn, the backward). Written half by half into one
    /// output, without the intermediate tensors of the decomposed form.
    fn rope_tch(x: &tch::Tensor, cos: &tch::Tensor, sin: &tch::Tensor) -> tch::Tensor {
        if cos.kind() != x.kind() {
            return rope_tch(x, &cos.to_kind(x.kind()), &sin.to_kind(x.kind()));
        }
        let half = cos.size()[1];
        let (x1, x2) = (x.narrow(3, 0, half), x.narrow(3, half, half));
        let out = tch::Tensor::empty(x.size(), (x.kind(), x.device()));
        let (mut o1, mut o2) = (out.narrow(3, 0, half), out.narrow(3, half, half));
        let neg_sin = -sin;
        let _ = x1.mul_out(&o1, cos);
        let _ = o1.addcmul_(&x2, &neg_sin);
        let _ = x2.mul_out(&o2, cos);
        let _ = o2.addcmul_(&x1, sin);
        out
    }

    fn swiglu_tch(gate: &tch::Tensor, up: &tch::Tensor) -> (tch::Tensor, tch::Tensor) {
        let act = gate.silu();
        let out = &act * up;
        (act, out)
    }

    fn packed_attention_tch(
        qkv: &tch::Tensor,
        n_head: usize,
        bias: Option<&tch::Tensor>,
        causal: bool,
    ) -> tch::Tensor {
        let size = qkv.size();
        let (batch, seq, d) = (size[0], size[1], size[2] / 3);
        let parts = packed_views(qkv, n_head);
        attention_tch(&parts[0], &parts[1], &parts[2], bias, causal)
            .transpose(1, 2)
            .reshape([batch, seq, d])
    }

    fn layer_norm_tch(
        x: &tch::Tensor,
        weight: &tch::Tensor,
        bias: Option<&tch::Tensor>,
        eps: f64,
    ) -> tch::Tensor {
        let d = weight.size()[0];
        x.layer_norm([d], Some(weight), bias, eps, true)
    }

    fn rms_norm_tch(x: &tch::Tensor, weight: &tch::Tensor, eps: f64) -> tch::Tensor {
        let d = weight.size()[0];
        x.rms_norm([d], Some(weight), eps)
    }

    fn cross_entropy_tch(logits: &tch::Tensor, targets: &tch::Tensor) -> tch::Tensor {
        logits
            .cross_entropy_loss::<tch::Tensor>(targets, None, tch::Reduction::Mean, -100, 0.0)
            .reshape([1])
    }

    impl FusedOps for LibTorch {
        fn fused_attention(q: TchTensor, k: TchTensor, v: TchTensor, causal: bool) -> TchTensor {
            TchTensor::new(attention_tch(&q.tensor, &k.tensor, &v.tensor, None, causal))
        }

        fn fused_attention_biased(
            q: TchTensor,
            k: TchTensor,
            v: TchTensor,
            bias: TchTensor,
        ) -> TchTensor {
            TchTensor::new(attention_tch(
                &q.tensor,
                &k.tensor,
                &v.tensor,
                Some(&bias.tensor),
                false,
            ))
        }

        fn fused_packed_attention(qkv: TchTensor, n_head: usize, causal: bool) -> TchTensor {
            TchTensor::new(packed_attention_tch(&qkv.tensor, n_head, None, causal))
        }

        fn fused_packed_attention_biased(
            qkv: TchTensor,
            bias: TchTensor,
            n_head: usize,
        ) -> TchTensor {
            TchTensor::new(packed_attention_tch(
                &qkv.tensor,
                n_head,
                Some(&bias.tensor),
                false,
            ))
        }

        fn fused_layer_norm(x: TchTensor, weight: TchTensor, eps: f64) -> TchTensor {
            TchTensor::new(layer_norm_tch(&x.tensor, &weight.tensor, None, eps))
        }

        fn fused_layer_norm_biased(
            x: TchTensor,
            weight: TchTensor,
            bias: TchTensor,
            eps: f64,
        ) -> TchTensor {
            TchTensor::new(layer_norm_tch(
                &x.tensor,
                &weight.tensor,
                Some(&bias.tensor),
                eps,
            ))
        }

        fn fused_rms_norm(x: TchTensor, weight: TchTensor, eps: f64) -> TchTensor {
            TchTensor::new(rms_norm_tch(&x.tensor, &weight.tensor, eps))
        }

        fn fused_cross_entropy(logits: TchTensor, targets: TchTensor) -> TchTensor {
            TchTensor::new(cross_entropy_tch(&logits.tensor, &targets.tensor))
        }

        fn fused_swiglu(gate: TchTensor, up: TchTensor) -> TchTensor {
            TchTensor::new(swiglu_tch(&gate.tensor, &up.tensor).1)
        }

        fn fused_rope(x: TchTensor, cos: TchTensor, sin: TchTensor) -> TchTensor {
            TchTensor::new(rope_tch(&x.tensor, &cos.tensor, &sin.tensor))
        }
    }

    /// What the backward of a fused op needs: LibTorch's graph from `leaves` to `output`, and
    /// Burn clones of the op's inputs and output so Burn writes into none of the buffers the
    /// graph saved.
    #[derive(Debug, Clone)]
    struct TorchGraph {
        output: TchTensor,
        /// One per differentiable input: its leaf where Burn tracks it, `None` where the input
        /// takes no gradient (a frozen weight), so LibTorch computes none for it.
        leaves: Vec<Option<TchTensor>>,
        _held: Vec<TchTensor>,
    }

    impl TorchGraph {
        /// Runs `f` on graph leaves that share the buffers of `inputs`; the first
        /// `tracked.len()` inputs are differentiated where `tracked` says so, the rest are
        /// constants. Returns the graph and the output for Burn, which shares the graph output's
        /// buffer (and its storage count).
        fn record(
            inputs: Vec<TchTensor>,
            tracked: &[bool],
            f: impl FnOnce(&[tch::Tensor]) -> tch::Tensor,
        ) -> (Self, TchTensor) {
            let leaves: Vec<tch::Tensor> = inputs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let leaf = t.tensor.detach();
                    if tracked.get(i).copied().unwrap_or(false) {
                        leaf.set_requires_grad(true)
                    } else {
                        leaf
                    }
                })
                .collect();
            let output = f(&leaves);
            let for_burn =
                TchTensor::from_existing(output.detach(), burn_storage_of(&output, &inputs));
            let graph = Self {
                output: TchTensor {
                    tensor: output,
                    storage: for_burn.storage.clone(),
                },
                leaves: leaves
                    .into_iter()
                    .zip(tracked)
                    .map(|(leaf, &on)| on.then(|| TchTensor::new(leaf)))
                    .collect(),
                _held: inputs,
            };
            (graph, for_burn)
        }

        /// The gradients of the tracked leaves given the output's gradient `grad` (`None` for
        /// the inputs that take none).
        fn backward(self, grad: &TchTensor) -> Vec<Option<TchTensor>> {
            // <output, grad> as one dot product: its gradient with respect to the output is
            // `grad`, so the graph's backward from it is the vector-Jacobian product.
            let seed = self
                .output
                .tensor
                .reshape([-1])
                .dot(&grad.tensor.reshape([-1]));
            let leaves: Vec<&tch::Tensor> =
                self.leaves.iter().flatten().map(|l| &l.tensor).collect();
            let mut computed = tch::Tensor::run_backward(&[seed], &leaves, false, false)
                .into_iter()
                .map(TchTensor::new);
            self.leaves
                .iter()
                .map(|leaf| leaf.as_ref().and_then(|_| computed.next()))
                .collect()
        }
    }

    /// A storage record for a new output: fresh, unless LibTorch returned a view of an input.
    fn burn_storage_of(
        output: &tch::Tensor,
        inputs: &[TchTensor],
    ) -> burn::backend::libtorch::Storage {
        let ptr = output.data_ptr();
        inputs
            .iter()
            .find(|t| *t.storage.buffer_ref().as_ref() == ptr)
            .map(|t| t.storage.clone())
            .unwrap_or_else(|| TchTensor::new(output.shallow_clone()).storage)
    }

    /// The backward step of every fused op: LibTorch's vector-Jacobian product through the
    /// recorded graph, one gradient per tracked parent.
    #[derive(Debug)]
    struct TorchBackward;

    impl<const N: usize> Backward<LibTorch, N> for TorchBackward {
        type State = TorchGraph;

        fn backward(
            self,
            ops: Ops<Self::State, N>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<LibTorch>(&ops.node);
            let leaf_grads = ops.state.backward(&grad);
            for (parent, leaf_grad) in ops.parents.into_iter().zip(leaf_grads) {
                if let (Some(node), Some(leaf_grad)) = (parent, leaf_grad) {
                    grads.register::<LibTorch>(node.id, leaf_grad);
                }
            }
        }
    }

    /// Runs a fused op under autodiff: `tracked` are the differentiable inputs (their gradients
    /// come back in order), `constants` the rest.
    fn autodiff_op<C: CheckpointStrategy, const N: usize>(
        tracked: [FloatTensor<Autodiff<LibTorch, C>>; N],
        constants: Vec<TchTensor>,
        f: impl FnOnce(&[tch::Tensor]) -> tch::Tensor,
    ) -> FloatTensor<Autodiff<LibTorch, C>> {
        let nodes = tracked.each_ref().map(|t| t.node());
        let differentiated = tracked.each_ref().map(|t| t.is_tracked());
        match TorchBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let mut inputs: Vec<TchTensor> =
                    tracked.into_iter().map(|t| t.into_primitive()).collect();
                inputs.extend(constants);
                let (graph, output) = TorchGraph::record(inputs, &differentiated, f);
                prep.finish(graph, output)
            }
            OpsKind::UnTracked(prep) => {
                let mut inputs: Vec<tch::Tensor> = tracked
                    .into_iter()
                    .map(|t| t.into_primitive().tensor)
                    .collect();
                inputs.extend(constants.into_iter().map(|t| t.tensor));
                let output = tch::no_grad(|| f(&inputs));
                prep.finish(TchTensor::new(output))
            }
        }
    }

    /// What the backward of packed attention on the CPU keeps: the packed input (a Burn clone,
    /// so its buffer stays as it was), the flash kernel's output and log-sum-exp.
    #[derive(Debug, Clone)]
    struct FlashState {
        qkv: TchTensor,
        out: TchTensor,
        lse: TchTensor,
        bias: Option<TchTensor>,
        n_head: usize,
        causal: bool,
    }

    /// Packed attention on the CPU, forward and backward straight through LibTorch's flash
    /// attention kernels (the ones its autograd would pick), without a graph of its own.
    #[derive(Debug)]
    struct PackedFlashBackward;

    /// `[batch, seq, 3 * d]` -> q, k, v views `[batch, head, seq, head_dim]`.
    fn packed_views(qkv: &tch::Tensor, n_head: usize) -> Vec<tch::Tensor> {
        let size = qkv.size();
        let (batch, seq, d) = (size[0], size[1], size[2] / 3);
        let heads = n_head as i64;
        qkv.view([batch, seq, 3, heads, d / heads])
            .permute([2, 0, 3, 1, 4])
            .unbind(0)
    }

    impl Backward<LibTorch, 1> for PackedFlashBackward {
        type State = FlashState;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<LibTorch>(&ops.node);
            let [parent] = ops.parents;
            let Some(node) = parent else { return };
            let s = ops.state;
            let size = s.qkv.tensor.size();
            let (batch, seq, d) = (size[0], size[1], size[2] / 3);
            let heads = s.n_head as i64;
            let qkv = packed_views(&s.qkv.tensor, s.n_head);
            let grad_out = grad
                .tensor
                .reshape([batch, seq, heads, d / heads])
                .transpose(1, 2);
            let (gq, gk, gv) =
                tch::Tensor::internal_scaled_dot_product_flash_attention_for_cpu_backward(
                    &grad_out,
                    &qkv[0],
                    &qkv[1],
                    &qkv[2],
                    &s.out.tensor,
                    &s.lse.tensor,
                    0.0,
                    s.causal,
                    s.bias.as_ref().map(|b| &b.tensor),
                    None,
                );
            let packed = tch::Tensor::stack(&[gq, gk, gv], 0)
                .permute([1, 3, 0, 2, 4])
                .reshape([batch, seq, 3 * d]);
            grads.register::<LibTorch>(node.id, TchTensor::new(packed));
        }
    }

    /// Packed attention on the CPU under autodiff, through the flash kernels directly.
    fn packed_flash<C: CheckpointStrategy>(
        qkv: FloatTensor<Autodiff<LibTorch, C>>,
        bias: Option<TchTensor>,
        n_head: usize,
        causal: bool,
    ) -> FloatTensor<Autodiff<LibTorch, C>> {
        let node = qkv.node();
        match PackedFlashBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let qkv = qkv.into_primitive();
                let size = qkv.tensor.size();
                let (batch, seq, d) = (size[0], size[1], size[2] / 3);
                let views = packed_views(&qkv.tensor, n_head);
                let (out, lse) = tch::Tensor::internal_scaled_dot_product_flash_attention_for_cpu(
                    &views[0],
                    &views[1],
                    &views[2],
                    0.0,
                    causal,
                    bias.as_ref().map(|b| &b.tensor),
                    None,
                );
                let merged = out.transpose(1, 2).reshape([batch, seq, d]);
                let out = TchTensor::new(out);
                // When the merge is a view of the kernel's output, Burn shares its storage
                // count and so never writes into the saved output.
                let merged = TchTensor::from_existing(merged, out.storage.clone());
                let state = FlashState {
                    qkv,
                    out,
                    lse: TchTensor::new(lse),
                    bias,
                    n_head,
                    causal,
                };
                prep.finish(state, merged)
            }
            OpsKind::UnTracked(prep) => {
                let qkv = qkv.into_primitive();
                let out = tch::no_grad(|| {
                    packed_attention_tch(
                        &qkv.tensor,
                        n_head,
                        bias.as_ref().map(|b| &b.tensor),
                        causal,
                    )
                });
                prep.finish(TchTensor::new(out))
            }
        }
    }

    /// What the backward of SwiGLU keeps: Burn clones of both inputs (so Burn writes into
    /// neither) and `silu(gate)`.
    #[derive(Debug, Clone)]
    struct SwigluState {
        gate: TchTensor,
        up: TchTensor,
        act: TchTensor,
    }

    /// SwiGLU's backward: `d up = g · silu(gate)`, `d gate = silu'(gate) · g · up`.
    #[derive(Debug)]
    struct SwigluBackward;

    impl Backward<LibTorch, 2> for SwigluBackward {
        type State = SwigluState;

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<LibTorch>(&ops.node);
            let [gate_node, up_node] = ops.parents;
            let s = ops.state;
            if let Some(node) = up_node {
                grads.register::<LibTorch>(node.id, TchTensor::new(&grad.tensor * &s.act.tensor));
            }
            if let Some(node) = gate_node {
                let through_up = &grad.tensor * &s.up.tensor;
                let grad_gate = s.gate.tensor.silu_backward(&through_up);
                grads.register::<LibTorch>(node.id, TchTensor::new(grad_gate));
            }
        }
    }

    /// What the backward of the rotary embedding keeps: the tables of its angles.
    #[derive(Debug, Clone)]
    struct RopeState {
        cos: TchTensor,
        sin: TchTensor,
    }

    /// The rotary embedding's backward: the gradient turned back by the opposite angle.
    #[derive(Debug)]
    struct RopeBackward;

    impl Backward<LibTorch, 1> for RopeBackward {
        type State = RopeState;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let grad = grads.consume::<LibTorch>(&ops.node);
            let [parent] = ops.parents;
            let Some(node) = parent else { return };
            let s = ops.state;
            let back = rope_tch(&grad.tensor, &s.cos.tensor, &(-&s.sin.tensor));
            grads.register::<LibTorch>(node.id, TchTensor::new(back));
        }
    }

    fn on_cpu<C: CheckpointStrategy>(t: &FloatTensor<Autodiff<LibTorch, C>>) -> bool {
        t.primitive().tensor.device() == tch::Device::Cpu
    }

    impl<C: CheckpointStrategy> FusedOps for Autodiff<LibTorch, C> {
        fn fused_attention(
            q: FloatTensor<Self>,
            k: FloatTensor<Self>,
            v: FloatTensor<Self>,
            causal: bool,
        ) -> FloatTensor<Self> {
            autodiff_op::<C, 3>([q, k, v], Vec::new(), |t| {
                attention_tch(&t[0], &t[1], &t[2], None, causal)
            })
        }

        fn fused_attention_biased(
            q: FloatTensor<Self>,
            k: FloatTensor<Self>,
            v: FloatTensor<Self>,
            bias: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            autodiff_op::<C, 3>([q, k, v], vec![bias.into_primitive()], |t| {
                attention_tch(&t[0], &t[1], &t[2], Some(&t[3]), false)
            })
        }

        fn fused_packed_attention(
            qkv: FloatTensor<Self>,
            n_head: usize,
            causal: bool,
        ) -> FloatTensor<Self> {
            if on_cpu::<C>(&qkv) {
                return packed_flash::<C>(qkv, None, n_head, causal);
            }
            autodiff_op::<C, 1>([qkv], Vec::new(), |t| {
                packed_attention_tch(&t[0], n_head, None, causal)
            })
        }

        fn fused_packed_attention_biased(
            qkv: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            n_head: usize,
        ) -> FloatTensor<Self> {
            if on_cpu::<C>(&qkv) {
                return packed_flash::<C>(qkv, Some(bias.into_primitive()), n_head, false);
            }
            autodiff_op::<C, 1>([qkv], vec![bias.into_primitive()], |t| {
                packed_attention_tch(&t[0], n_head, Some(&t[1]), false)
            })
        }

        fn fused_layer_norm(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self> {
            autodiff_op::<C, 2>([x, weight], Vec::new(), |t| {
                layer_norm_tch(&t[0], &t[1], None, eps)
            })
        }

        fn fused_layer_norm_biased(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self> {
            autodiff_op::<C, 3>([x, weight, bias], Vec::new(), |t| {
                layer_norm_tch(&t[0], &t[1], Some(&t[2]), eps)
            })
        }

        fn fused_rms_norm(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self> {
            autodiff_op::<C, 2>([x, weight], Vec::new(), |t| rms_norm_tch(&t[0], &t[1], eps))
        }

        fn fused_cross_entropy(
            logits: FloatTensor<Self>,
            targets: IntTensor<Self>,
        ) -> FloatTensor<Self> {
            autodiff_op::<C, 1>([logits], vec![targets], |t| cross_entropy_tch(&t[0], &t[1]))
        }

        fn fused_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
            let nodes = [gate.node(), up.node()];
            match SwigluBackward
                .prepare::<C>(nodes)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (gate, up) = (gate.into_primitive(), up.into_primitive());
                    let (act, out) = swiglu_tch(&gate.tensor, &up.tensor);
                    let state = SwigluState {
                        gate,
                        up,
                        act: TchTensor::new(act),
                    };
                    prep.finish(state, TchTensor::new(out))
                }
                OpsKind::UnTracked(prep) => {
                    let (gate, up) = (gate.into_primitive(), up.into_primitive());
                    prep.finish(TchTensor::new(swiglu_tch(&gate.tensor, &up.tensor).1))
                }
            }
        }

        fn fused_rope(
            x: FloatTensor<Self>,
            cos: FloatTensor<Self>,
            sin: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            let (cos, sin) = (cos.into_primitive(), sin.into_primitive());
            match RopeBackward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let x = x.into_primitive();
                    let out = rope_tch(&x.tensor, &cos.tensor, &sin.tensor);
                    prep.finish(RopeState { cos, sin }, TchTensor::new(out))
                }
                OpsKind::UnTracked(prep) => {
                    let x = x.into_primitive();
                    prep.finish(TchTensor::new(rope_tch(
                        &x.tensor,
                        &cos.tensor,
                        &sin.tensor,
                    )))
                }
            }
        }
    }

    fn dispatch<const D: usize>(t: Tensor<D>) -> burn::backend::DispatchTensor {
        t.into_dispatch()
    }

    /// The additive form (0 or −∞) of a boolean mask, a constant of the graph.
    fn additive(mask: &Tensor<4, Bool>) -> Tensor<4> {
        let [batch, _, rows, seq] = mask.dims();
        Tensor::<4>::zeros([batch, 1, rows, seq], &mask.device())
            .mask_fill(mask.clone(), f32::NEG_INFINITY)
            .detach()
    }

    pub fn packed_attention(qkv: Tensor<3>, n_head: usize, mask: &AttnMask) -> Tensor<3> {
        use burn::backend::Dispatch;
        let out = match mask {
            AttnMask::None | AttnMask::Causal => <Dispatch as FusedOps>::fused_packed_attention(
                dispatch(qkv),
                n_head,
                matches!(mask, AttnMask::Causal),
            ),
            AttnMask::Masked(mask) => <Dispatch as FusedOps>::fused_packed_attention_biased(
                dispatch(qkv),
                dispatch(additive(mask)),
                n_head,
            ),
        };
        Tensor::from_dispatch(out)
    }

    pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: &AttnMask) -> Tensor<4> {
        use burn::backend::Dispatch;
        let out = match mask {
            AttnMask::None | AttnMask::Causal => <Dispatch as FusedOps>::fused_attention(
                dispatch(q),
                dispatch(k),
                dispatch(v),
                matches!(mask, AttnMask::Causal),
            ),
            AttnMask::Masked(mask) => <Dispatch as FusedOps>::fused_attention_biased(
                dispatch(q),
                dispatch(k),
                dispatch(v),
                dispatch(additive(mask)),
            ),
        };
        Tensor::from_dispatch(out)
    }

    pub fn layer_norm<const D: usize>(
        x: Tensor<D>,
        weight: Tensor<1>,
        bias: Option<Tensor<1>>,
        eps: f64,
    ) -> Tensor<D> {
        use burn::backend::Dispatch;
        let out = match bias {
            None => <Dispatch as FusedOps>::fused_layer_norm(dispatch(x), dispatch(weight), eps),
            Some(bias) => <Dispatch as FusedOps>::fused_layer_norm_biased(
                dispatch(x),
                dispatch(weight),
                dispatch(bias),
                eps,
            ),
        };
        Tensor::from_dispatch(out)
    }

    pub fn rms_norm<const D: usize>(x: Tensor<D>, weight: Tensor<1>, eps: f64) -> Tensor<D> {
        use burn::backend::Dispatch;
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_rms_norm(
            dispatch(x),
            dispatch(weight),
            eps,
        ))
    }

    pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        use burn::backend::Dispatch;
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_cross_entropy(
            dispatch(logits),
            targets.into_dispatch(),
        ))
    }

    pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
        use burn::backend::Dispatch;
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_swiglu(
            dispatch(gate),
            dispatch(up),
        ))
    }

    pub fn rope(x: Tensor<4>, cos: Tensor<2>, sin: Tensor<2>) -> Tensor<4> {
        use burn::backend::Dispatch;
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_rope(
            dispatch(x),
            dispatch(cos.detach()),
            dispatch(sin.detach()),
        ))
    }
}
