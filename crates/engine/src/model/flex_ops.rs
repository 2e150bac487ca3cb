//! Training ops that run as one Flex operation, forward and backward.
//!
//! On Flex, Burn's autodiff records packed attention, layer norm, RMSNorm and softmax
//! cross-entropy as chains of small element-wise ops, most of them on one thread, and its exact
//! GELU evaluates `erf` element by element on one thread. Here each is a
//! single custom autodiff operation with hand-written forward and backward kernels in Rust: rows
//! (or batch rows, for attention) are split over the run's thread pool, and the small per-head
//! matrix products of attention read q, k and v in place from the packed projection
//! (the `gemm` crate Flex itself uses, on strided operands, one thread per batch row), so no head is ever copied out.
//!
//! The kernels compute in f32, as the decomposed ops do; `crates/engine/tests/fused.rs` holds
//! their outputs and gradients against Burn's decomposed ops.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use rayon::prelude::*;

/// Whether `device` is a Flex device (under autodiff or not).
#[allow(deprecated)] // as in `fused::backend_has_fused`
pub fn is_flex(device: &Device) -> bool {
    use burn::backend::DispatchDevice;
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// The fused ops, as a Burn backend extension implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait FlexFusedOps: Backend {
    /// Attention over a packed projection `[batch, seq, 3 * d_model]`, heads merged back
    /// (`[batch, seq, d_model]`), causal when `causal`.
    fn flex_packed_attention(
        qkv: FloatTensor<Self>,
        n_head: usize,
        causal: bool,
    ) -> FloatTensor<Self>;

    /// Layer norm over the last dimension with gain and bias.
    fn flex_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;

    /// RMSNorm over the last dimension.
    fn flex_rms_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;

    /// Mean cross-entropy of `logits: [rows, classes]` against `targets: [rows]`, shape `[1]`.
    fn flex_cross_entropy(logits: FloatTensor<Self>, targets: IntTensor<Self>)
    -> FloatTensor<Self>;

    /// Exact GELU, `x · Φ(x)`.
    fn flex_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

// ---------------------------------------------------------------------------------------------
// Plain buffers in and out of Flex.

/// The tensor's values in row-major order (copied only when its layout is not already so).
fn contiguous(t: FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "Flex fused ops take f32 tensors");
    t.to_contiguous()
}

fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 tensor has a slice")
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
}

fn tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

/// Class indices of an integer tensor, checked against `classes`.
fn indices(t: &FlexTensor, classes: usize) -> Vec<usize> {
    let t = t.to_contiguous();
    let as_usize = |v: i64| -> usize {
        assert!(
            (0..classes as i64).contains(&v),
            "cross-entropy target {v} is outside the {classes} classes"
        );
        v as usize
    };
    match t.dtype() {
        DType::I64 => t
            .as_slice::<i64>()
            .unwrap()
            .iter()
            .map(|&v| as_usize(v))
            .collect(),
        DType::I32 => t
            .as_slice::<i32>()
            .unwrap()
            .iter()
            .map(|&v| as_usize(v as i64))
            .collect(),
        other => panic!("cross-entropy targets must be integers, not {other:?}"),
    }
}

/// Rows handed to one task by the row-wise kernels.
const ROWS_PER_TASK: usize = 32;

/// A matrix inside a slice: the slice from its first cell, its row stride and column stride.
type Strided<'a> = (&'a [f32], usize, usize);

/// The cells a `rows × cols` matrix with these strides spans from its first cell.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        return 0;
    }
    (rows - 1) * rs + (cols - 1) * cs + 1
}

/// `c = alpha · a · b` on strided matrices (`m × k` times `k × n`); `c` has row stride `rsc`
/// and unit column stride.
fn gemm(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    (a, rsa, csa): Strided,
    (b, rsb, csb): Strided,
    (c, rsc): (&mut [f32], usize),
) {
    assert!(extent(m, k, rsa, csa) <= a.len(), "gemm: a out of bounds");
    assert!(extent(k, n, rsb, csb) <= b.len(), "gemm: b out of bounds");
    assert!(extent(m, n, rsc, 1) <= c.len(), "gemm: c out of bounds");
    // SAFETY: the asserts keep every cell the strides address inside its slice, and `c` is a
    // unique borrow, so it overlaps neither `a` nor `b`. With `read_dst` false, `c` is only
    // written.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            rsc as isize,
            false,
            a.as_ptr(),
            csa as isize,
            rsa as isize,
            b.as_ptr(),
            csb as isize,
            rsb as isize,
            0.0,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Kernels.

/// Packed attention's shape: batch, sequence, model width, heads.
#[derive(Debug, Clone, Copy)]
struct AttnShape {
    batch: usize,
    seq: usize,
    d: usize,
    heads: usize,
    causal: bool,
}

impl AttnShape {
    fn of(qkv: &FlexTensor, heads: usize, causal: bool) -> Self {
        let shape = dims(qkv);
        assert_eq!(
            shape.len(),
            3,
            "packed attention takes [batch, seq, 3 * d_model]"
        );
        assert_eq!(
            shape[2] % (3 * heads),
            0,
            "3 * d_model must split into the heads"
        );
        Self {
            batch: shape[0],
            seq: shape[1],
            d: shape[2] / 3,
            heads,
            causal,
        }
    }

    fn head_dim(&self) -> usize {
        self.d / self.heads
    }
}

/// Forward: the merged output `[batch, seq, d]` and the attention weights
/// `[batch, head, seq, seq]` (kept for the backward).
fn attention_forward(qkv: &[f32], s: AttnShape) -> (Vec<f32>, Vec<f32>) {
    let (t, d, h, hd) = (s.seq, s.d, s.heads, s.head_dim());
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0.0f32; s.batch * t * d];
    let mut weights = vec![0.0f32; s.batch * h * t * t];
    out.par_chunks_mut(t * d)
        .zip(weights.par_chunks_mut(h * t * t))
        .enumerate()
        .for_each(|(b, (out_b, w_b))| {
            let x = &qkv[b * t * 3 * d..(b + 1) * t * 3 * d];
            for head in 0..h {
                let q = &x[head * hd..];
                let k = &x[d + head * hd..];
                let v = &x[2 * d + head * hd..];
                let w = &mut w_b[head * t * t..(head + 1) * t * t];
                // S = scale · Q Kᵀ (q, k, v are `t × hd` blocks with row stride 3d)
                gemm((t, hd, t), scale, (q, 3 * d, 1), (k, 1, 3 * d), (w, t));
                for (i, row) in w.chunks_exact_mut(t).enumerate() {
                    let keys = if s.causal { i + 1 } else { t };
                    let (live, masked) = row.split_at_mut(keys);
                    let max = live.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0f32;
                    for value in live.iter_mut() {
                        *value = (*value - max).exp();
                        sum += *value;
                    }
                    let inv = 1.0 / sum;
                    live.iter_mut().for_each(|value| *value *= inv);
                    masked.fill(0.0);
                }
                // O = W V, into the head's columns of the merged output
                gemm(
                    (t, t, hd),
                    1.0,
                    (w, t, 1),
                    (v, 3 * d, 1),
                    (&mut out_b[head * hd..], d),
                );
            }
        });
    (out, weights)
}

/// Backward: the gradient of the packed input `[batch, seq, 3d]` given the output's gradient
/// `[batch, seq, d]`.
fn attention_backward(qkv: &[f32], weights: &[f32], grad: &[f32], s: AttnShape) -> Vec<f32> {
    let (t, d, h, hd) = (s.seq, s.d, s.heads, s.head_dim());
    let scale = 1.0 / (hd as f32).sqrt();
    let mut grad_qkv = vec![0.0f32; s.batch * t * 3 * d];
    grad_qkv
        .par_chunks_mut(t * 3 * d)
        .enumerate()
        .for_each(|(b, g_b)| {
            let x = &qkv[b * t * 3 * d..(b + 1) * t * 3 * d];
            let dout = &grad[b * t * d..(b + 1) * t * d];
            let mut ds = vec![0.0f32; t * t];
            for head in 0..h {
                let w = &weights[(b * h + head) * t * t..(b * h + head + 1) * t * t];
                let q = &x[head * hd..];
                let k = &x[d + head * hd..];
                let v = &x[2 * d + head * hd..];
                let dout_h = &dout[head * hd..];
                // The q, k, v blocks and their gradients are `t × hd` with row stride 3d, the
                // output's gradient has row stride d; `w` and `ds` are `t × t`.
                // dV = Wᵀ dO
                gemm(
                    (t, t, hd),
                    1.0,
                    (w, 1, t),
                    (dout_h, d, 1),
                    (&mut g_b[2 * d + head * hd..], 3 * d),
                );
                // dW = dO Vᵀ
                gemm((t, hd, t), 1.0, (dout_h, d, 1), (v, 1, 3 * d), (&mut ds, t));
                // dS = W ∘ (dW − Σⱼ W dW), row by row
                for (w_row, ds_row) in w.chunks_exact(t).zip(ds.chunks_exact_mut(t)) {
                    let dot: f32 = w_row.iter().zip(ds_row.iter()).map(|(a, b)| a * b).sum();
                    for (g, &p) in ds_row.iter_mut().zip(w_row) {
                        *g = p * (*g - dot);
                    }
                }
                // dQ = scale · dS K
                gemm(
                    (t, t, hd),
                    scale,
                    (&ds, t, 1),
                    (k, 3 * d, 1),
                    (&mut g_b[head * hd..], 3 * d),
                );
                // dK = scale · dSᵀ Q
                gemm(
                    (t, t, hd),
                    scale,
                    (&ds, 1, t),
                    (q, 3 * d, 1),
                    (&mut g_b[d + head * hd..], 3 * d),
                );
            }
        });
    grad_qkv
}

/// Row statistics kept by the norms' forward: the mean (zero for RMSNorm) and the reciprocal
/// of the standard deviation (of the root mean square for RMSNorm).
struct RowStats {
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

/// Norm forward over rows of width `w.len()`: `(x − mean) · rstd · w + bias`, centred only when
/// `centre` (layer norm) and shifted only with a bias.
fn norm_forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    eps: f32,
    centre: bool,
) -> (Vec<f32>, RowStats) {
    let d = w.len();
    let rows = x.len() / d;
    let mut out = vec![0.0f32; x.len()];
    let mut mean = vec![0.0f32; rows];
    let mut rstd = vec![0.0f32; rows];
    out.par_chunks_mut(ROWS_PER_TASK * d)
        .zip(mean.par_chunks_mut(ROWS_PER_TASK))
        .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, ((out, mean), rstd))| {
            for (r, y) in out.chunks_exact_mut(d).enumerate() {
                let row = &x[(task * ROWS_PER_TASK + r) * d..][..d];
                let mu = if centre {
                    row.iter().sum::<f32>() / d as f32
                } else {
                    0.0
                };
                let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f32>() / d as f32;
                let inv = 1.0 / (var + eps).sqrt();
                for j in 0..d {
                    y[j] = (row[j] - mu) * inv * w[j] + bias.map_or(0.0, |b| b[j]);
                }
                mean[r] = mu;
                rstd[r] = inv;
            }
        });
    (out, RowStats { mean, rstd })
}

/// Norm backward: the input's gradient, the gain's and the bias's (the bias's is the column sum
/// of `grad`).
fn norm_backward(
    x: &[f32],
    w: &[f32],
    (mean, rstd): (&[f32], &[f32]),
    grad: &[f32],
    centre: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = w.len();
    let mut dx = vec![0.0f32; x.len()];
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(ROWS_PER_TASK * d)
        .enumerate()
        .map(|(task, dx)| {
            let mut dw = vec![0.0f32; d];
            let mut db = vec![0.0f32; d];
            for (r, dx_row) in dx.chunks_exact_mut(d).enumerate() {
                let row = task * ROWS_PER_TASK + r;
                let (x_row, g_row) = (&x[row * d..][..d], &grad[row * d..][..d]);
                let (mu, inv) = (mean[row], rstd[row]);
                let (mut sum_g, mut sum_gx) = (0.0f32, 0.0f32);
                for j in 0..d {
                    let xhat = (x_row[j] - mu) * inv;
                    let gx = g_row[j] * w[j];
                    sum_g += gx;
                    sum_gx += gx * xhat;
                    dw[j] += g_row[j] * xhat;
                    db[j] += g_row[j];
                }
                let mean_g = if centre { sum_g / d as f32 } else { 0.0 };
                let mean_gx = sum_gx / d as f32;
                for j in 0..d {
                    let xhat = (x_row[j] - mu) * inv;
                    dx_row[j] = inv * (g_row[j] * w[j] - mean_g - xhat * mean_gx);
                }
            }
            (dw, db)
        })
        .collect();
    let mut dw = vec![0.0f32; d];
    let mut db = vec![0.0f32; d];
    for (pw, pb) in partials {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (dx, dw, db)
}

/// Cross-entropy forward: the mean loss and each row's log-sum-exp.
fn cross_entropy_forward(logits: &[f32], targets: &[usize]) -> (f32, Vec<f32>) {
    let rows = targets.len();
    let classes = logits.len() / rows.max(1);
    let lse: Vec<f32> = logits
        .par_chunks(classes)
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
        })
        .collect();
    let total: f64 = (0..rows)
        .map(|r| (lse[r] - logits[r * classes + targets[r]]) as f64)
        .sum();
    ((total / rows as f64) as f32, lse)
}

/// Cross-entropy backward: `(softmax − one-hot) · grad / rows`.
fn cross_entropy_backward(logits: &[f32], targets: &[usize], lse: &[f32], grad: f32) -> Vec<f32> {
    let rows = targets.len();
    let classes = logits.len() / rows.max(1);
    let scale = grad / rows as f32;
    let mut out = vec![0.0f32; logits.len()];
    out.par_chunks_mut(classes).enumerate().for_each(|(r, g)| {
        let row = &logits[r * classes..][..classes];
        for (gj, &v) in g.iter_mut().zip(row) {
            *gj = (v - lse[r]).exp() * scale;
        }
        g[targets[r]] -= scale;
    });
    out
}

/// Elements handed to one task by the element-wise kernels.
const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// erf(x) within 1.5e-7 (Abramowitz & Stegun 1964, formula 7.1.26).
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-a * a).exp();
    if x < 0.0 { -y } else { y }
}

/// GELU forward: `x · Φ(x)` with `Φ(x) = (1 + erf(x / √2)) / 2`.
fn gelu_forward(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .for_each(|(out, x)| {
            for (y, &v) in out.iter_mut().zip(x) {
                *y = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            }
        });
    out
}

/// GELU backward: `grad · (Φ(x) + x · φ(x))`.
fn gelu_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let inv_sqrt_2pi = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(
            x.par_chunks(ELEMENTS_PER_TASK)
                .zip(grad.par_chunks(ELEMENTS_PER_TASK)),
        )
        .for_each(|(out, (x, grad))| {
            for ((o, &v), &g) in out.iter_mut().zip(x).zip(grad) {
                let cdf = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = inv_sqrt_2pi * (-0.5 * v * v).exp();
                *o = g * (cdf + v * pdf);
            }
        });
    out
}

// ---------------------------------------------------------------------------------------------
// The ops on plain Flex tensors.

fn attention_op(qkv: FlexTensor, n_head: usize, causal: bool) -> (FlexTensor, FlexTensor) {
    let qkv = contiguous(qkv);
    let s = AttnShape::of(&qkv, n_head, causal);
    let (out, weights) = attention_forward(values(&qkv), s);
    (
        tensor(out, vec![s.batch, s.seq, s.d]),
        tensor(weights, vec![s.batch, s.heads, s.seq, s.seq]),
    )
}

fn norm_op(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    eps: f64,
    centre: bool,
) -> (FlexTensor, FlexTensor, FlexTensor, RowStats) {
    let (x, weight) = (contiguous(x), contiguous(weight));
    let bias = bias.map(contiguous);
    let (out, stats) = norm_forward(
        values(&x),
        values(&weight),
        bias.as_ref().map(values),
        eps as f32,
        centre,
    );
    (tensor(out, dims(&x)), x, weight, stats)
}

fn cross_entropy_op(
    logits: FlexTensor,
    targets: &FlexTensor,
) -> (FlexTensor, FlexTensor, Vec<usize>, Vec<f32>) {
    let logits = contiguous(logits);
    let shape = dims(&logits);
    assert_eq!(shape.len(), 2, "cross-entropy takes logits [rows, classes]");
    let targets = indices(targets, shape[1]);
    assert_eq!(targets.len(), shape[0], "one cross-entropy target per row");
    let (loss, lse) = cross_entropy_forward(values(&logits), &targets);
    (tensor(vec![loss], vec![1]), logits, targets, lse)
}

impl FlexFusedOps for Flex {
    fn flex_packed_attention(qkv: FlexTensor, n_head: usize, causal: bool) -> FlexTensor {
        attention_op(qkv, n_head, causal).0
    }

    fn flex_layer_norm(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        eps: f64,
    ) -> FlexTensor {
        norm_op(x, weight, Some(bias), eps, true).0
    }

    fn flex_rms_norm(x: FlexTensor, weight: FlexTensor, eps: f64) -> FlexTensor {
        norm_op(x, weight, None, eps, false).0
    }

    fn flex_cross_entropy(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
        cross_entropy_op(logits, &targets).0
    }

    fn flex_gelu(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        tensor(gelu_forward(values(&x)), dims(&x))
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiff.

/// The backward of a one-input op: `input_grad(state, output gradient)` is its input's
/// gradient, computed only when the input is tracked.
fn one_input_backward<S>(
    ops: Ops<S, 1>,
    grads: &mut Gradients,
    input_grad: impl FnOnce(S, &FlexTensor) -> FlexTensor,
) {
    let grad = contiguous(grads.consume::<Flex>(&ops.node));
    let [parent] = ops.parents;
    let Some(node) = parent else { return };
    grads.register::<Flex>(node.id, input_grad(ops.state, &grad));
}

#[derive(Debug, Clone)]
struct AttnState {
    qkv: FlexTensor,
    weights: FlexTensor,
    shape: AttnShape,
}

#[derive(Debug)]
struct AttnBackward;

impl Backward<Flex, 1> for AttnBackward {
    type State = AttnState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        one_input_backward(ops, grads, |s, grad| {
            let g = attention_backward(values(&s.qkv), values(&s.weights), values(grad), s.shape);
            tensor(g, vec![s.shape.batch, s.shape.seq, 3 * s.shape.d])
        });
    }
}

#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    weight: FlexTensor,
    mean: std::sync::Arc<Vec<f32>>,
    rstd: std::sync::Arc<Vec<f32>>,
    centre: bool,
}

#[derive(Debug)]
struct NormBackward;

impl<const N: usize> Backward<Flex, N> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let (dx, dw, db) = norm_backward(
            values(&s.x),
            values(&s.weight),
            (&s.mean, &s.rstd),
            values(&grad),
            s.centre,
        );
        let d = dw.len();
        let mut outs = [
            tensor(dx, dims(&s.x)),
            tensor(dw, vec![d]),
            tensor(db, vec![d]),
        ]
        .into_iter();
        for parent in ops.parents {
            let out = outs.next().expect("a norm has at most three inputs");
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, out);
            }
        }
    }
}

#[derive(Debug, Clone)]
struct CrossEntropyState {
    logits: FlexTensor,
    targets: std::sync::Arc<Vec<usize>>,
    lse: std::sync::Arc<Vec<f32>>,
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    type State = CrossEntropyState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        one_input_backward(ops, grads, |s, grad| {
            let g = cross_entropy_backward(values(&s.logits), &s.targets, &s.lse, values(grad)[0]);
            tensor(g, dims(&s.logits))
        });
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        one_input_backward(ops, grads, |x, grad| {
            tensor(gelu_backward(values(&x), values(grad)), dims(&x))
        });
    }
}

fn norm_autodiff<C: CheckpointStrategy, const N: usize>(
    tracked: [FloatTensor<Autodiff<Flex, C>>; N],
    eps: f64,
    centre: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = tracked.each_ref().map(|t| t.node());
    let mut inputs = tracked.into_iter().map(|t| t.into_primitive());
    let x = inputs.next().expect("a norm's input");
    let weight = inputs.next().expect("a norm's gain");
    let bias = inputs.next();
    match NormBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (out, x, weight, stats) = norm_op(x, weight, bias, eps, centre);
            let state = NormState {
                x,
                weight,
                mean: std::sync::Arc::new(stats.mean),
                rstd: std::sync::Arc::new(stats.rstd),
                centre,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(norm_op(x, weight, bias, eps, centre).0),
    }
}

impl<C: CheckpointStrategy> FlexFusedOps for Autodiff<Flex, C> {
    fn flex_packed_attention(
        qkv: FloatTensor<Self>,
        n_head: usize,
        causal: bool,
    ) -> FloatTensor<Self> {
        let node = qkv.node();
        match AttnBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let qkv = contiguous(qkv.into_primitive());
                let shape = AttnShape::of(&qkv, n_head, causal);
                let (out, weights) = attention_op(qkv.clone(), n_head, causal);
                prep.finish(
                    AttnState {
                        qkv,
                        weights,
                        shape,
                    },
                    out,
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(attention_op(qkv.into_primitive(), n_head, causal).0)
            }
        }
    }

    fn flex_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        norm_autodiff::<C, 3>([x, weight, bias], eps, true)
    }

    fn flex_rms_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        norm_autodiff::<C, 2>([x, weight], eps, false)
    }

    fn flex_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        let node = logits.node();
        match CrossEntropyBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (loss, logits, targets, lse) =
                    cross_entropy_op(logits.into_primitive(), &targets);
                let state = CrossEntropyState {
                    logits,
                    targets: std::sync::Arc::new(targets),
                    lse: std::sync::Arc::new(lse),
                };
                prep.finish(state, loss)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(cross_entropy_op(logits.into_primitive(), &targets).0)
            }
        }
    }

    fn flex_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let node = x.node();
        match GeluBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let x = contiguous(x.into_primitive());
                let out = tensor(gelu_forward(values(&x)), dims(&x));
                prep.finish(x, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::flex_gelu(x.into_primitive())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points on Burn tensors.

fn dispatch<const D: usize>(t: Tensor<D>) -> burn::backend::DispatchTensor {
    t.into_dispatch()
}

/// Packed attention without a padding mask.
pub fn packed_attention(qkv: Tensor<3>, n_head: usize, causal: bool) -> Tensor<3> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as FlexFusedOps>::flex_packed_attention(
        dispatch(qkv),
        n_head,
        causal,
    ))
}

/// Layer norm over the last dimension; a missing bias is a zero constant.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Option<Tensor<1>>,
    eps: f64,
) -> Tensor<D> {
    use burn::backend::Dispatch;
    let bias = bias.unwrap_or_else(|| weight.zeros_like().detach());
    Tensor::from_dispatch(<Dispatch as FlexFusedOps>::flex_layer_norm(
        dispatch(x),
        dispatch(weight),
        dispatch(bias),
        eps,
    ))
}

/// RMSNorm over the last dimension.
pub fn rms_norm<const D: usize>(x: Tensor<D>, weight: Tensor<1>, eps: f64) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as FlexFusedOps>::flex_rms_norm(
        dispatch(x),
        dispatch(weight),
        eps,
    ))
}

/// Mean cross-entropy in nats.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as FlexFusedOps>::flex_cross_entropy(
        dispatch(logits),
        targets.into_dispatch(),
    ))
}

/// Exact GELU.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as FlexFusedOps>::flex_gelu(dispatch(x)))
}
