//! The fused training ops against Burn's decomposed ops on the same inputs: attention (causal,
//! bidirectional, padded, packed q/k/v), layer norm (with and without bias), RMSNorm, softmax
//! cross-entropy and GELU, forward values and every input gradient within 1e-5; then a whole
//! classic and modern model's loss and parameter gradients, fused against decomposed. On Flex
//! (Hearth's Rust kernels: packed attention, the norms, cross-entropy, GELU) and on LibTorch
//! (every op but GELU, which Burn already runs as LibTorch's own), on the CPU by default;
//! `HEARTH_TEST_CUDA=1` runs the LibTorch ones on the first GPU.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Gradients, Int, Tensor, TensorData};
use hearth_engine::backend::BackendKind;
use hearth_engine::model::fused::{self, AttnMask};
use hearth_engine::model::{Arch, Model, ModelSpec};
use hearth_engine::objective::next_token;

const TOLERANCE: f32 = 1e-5;

/// LibTorch on the CPU, or on the first GPU with `HEARTH_TEST_CUDA=1` (`scripts/gpu_check.sh`).
#[cfg(feature = "libtorch")]
fn libtorch() -> Device {
    if std::env::var("HEARTH_TEST_CUDA").is_ok_and(|v| v == "1") {
        return BackendKind::LibtorchCuda
            .device()
            .expect("HEARTH_TEST_CUDA=1 needs a CUDA device")
            .autodiff();
    }
    BackendKind::Libtorch.device().unwrap().autodiff()
}

fn flex() -> Device {
    BackendKind::Flex.device().unwrap().autodiff()
}

/// Every backend with fused ops of its own in this build.
fn devices() -> Vec<Device> {
    #[allow(unused_mut)]
    let mut all = vec![flex()];
    #[cfg(feature = "libtorch")]
    all.push(libtorch());
    all
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(what: &str, fused: &[f32], reference: &[f32]) {
    assert_eq!(fused.len(), reference.len(), "{what}: lengths");
    let scale = reference.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = fused
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= TOLERANCE * scale,
        "{what}: largest difference {worst:e} (scale {scale})"
    );
    assert!(fused.iter().all(|v| v.is_finite()), "{what}: not finite");
}

/// Fixed pseudo-random values of unit scale (LibTorch's generator is shared by the tests that
/// run at once, so inputs come from a formula).
fn random(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let cells: Vec<f32> = (0..n)
        .map(|i| {
            let x = (i as f64 * 12.9898 + seed as f64 * 78.233).sin() * 43_758.545_3;
            ((x - x.floor()) * 2.0 - 1.0) as f32 * 1.7
        })
        .collect();
    Tensor::<1>::from_data(TensorData::new(cells, [n]), device).reshape(shape)
}

/// A padding mask `[batch, 1, 1, seq]`: the last `pad[b]` keys of row `b` are padding.
fn padding(batch: usize, seq: usize, pad: &[usize], device: &Device) -> Tensor<4, Bool> {
    let cells: Vec<bool> = pad[..batch]
        .iter()
        .flat_map(|&p| (0..seq).map(move |s| s >= seq - p))
        .collect();
    Tensor::<1, Bool>::from_data(TensorData::new(cells, [batch * seq]), device)
        .reshape([batch, 1, 1, seq])
}

/// Output and q/k/v gradients of `attn` under a fixed weighting of its output.
fn attention_run(
    attn: impl Fn(Tensor<4>, Tensor<4>, Tensor<4>) -> Tensor<4>,
    shape: [usize; 4],
    device: &Device,
) -> Vec<Vec<f32>> {
    let device = device.clone();
    let q = random(shape, 1, &device).require_grad();
    let k = random(shape, 2, &device).require_grad();
    let v = random(shape, 3, &device).require_grad();
    let weighting = random(shape, 4, &device);
    let out = attn(q.clone(), k.clone(), v.clone());
    let grads = (out.clone() * weighting).sum().backward();
    let grad = |t: &Tensor<4>| {
        t.grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    vec![values(out), grad(&q), grad(&k), grad(&v)]
}

/// Attention with separate q, k and v is fused on LibTorch only.
#[cfg(feature = "libtorch")]
fn check_attention(what: &str, mask: impl Fn(&Device) -> AttnMask) {
    let device = libtorch();
    let shape = [3, 4, 16, 8];
    let run = |fused_ops: bool| {
        let go = || {
            attention_run(
                |q, k, v| {
                    let m = mask(&q.device());
                    assert_eq!(fused::fused_on(&q.device()), fused_ops);
                    fused::attention(q, k, v, &m)
                },
                shape,
                &device,
            )
        };
        if fused_ops {
            go()
        } else {
            fused::with_decomposed(go)
        }
    };
    let (fast, reference) = (run(true), run(false));
    for (name, (a, b)) in ["output", "grad q", "grad k", "grad v"]
        .iter()
        .zip(fast.iter().zip(&reference))
    {
        assert_close(&format!("{what} {name}"), a, b);
    }
}

#[cfg(feature = "libtorch")]
#[test]
fn causal_attention_matches_the_decomposed_ops() {
    check_attention("causal", |_| AttnMask::Causal);
}

#[cfg(feature = "libtorch")]
#[test]
fn bidirectional_attention_matches_the_decomposed_ops() {
    check_attention("bidirectional", |_| AttnMask::None);
}

#[cfg(feature = "libtorch")]
#[test]
fn padded_attention_matches_the_decomposed_ops() {
    check_attention("padded", |d| {
        AttnMask::Masked(Box::new(padding(3, 16, &[0, 5, 11], d)))
    });
}

#[cfg(feature = "libtorch")]
#[test]
fn causal_padded_attention_matches_the_decomposed_ops() {
    check_attention("causal padded", |d| {
        let causal = Tensor::<2, Bool>::tril_mask([16, 16], 0, d)
            .reshape([1, 1, 16, 16])
            .expand([3, 1, 16, 16]);
        AttnMask::Masked(Box::new(
            causal.bool_or(padding(3, 16, &[0, 5, 11], d).expand([3, 1, 16, 16])),
        ))
    });
}

#[test]
fn packed_attention_matches_the_decomposed_ops() {
    for (device, padded) in devices()
        .into_iter()
        .flat_map(|d| [(d.clone(), false), (d, true)])
    {
        let run = || {
            let device = device.clone();
            let qkv = random([1, 2, 16, 3 * 32], 5, &device)
                .reshape([2, 16, 96])
                .require_grad();
            let weighting = random([1, 2, 16, 32], 6, &device).reshape([2, 16, 32]);
            let mask = if padded {
                AttnMask::Masked(Box::new(padding(2, 16, &[3, 0], &device)))
            } else {
                AttnMask::Causal
            };
            let out = fused::packed_attention(qkv.clone(), 4, &mask);
            let grads = (out.clone() * weighting).sum().backward();
            let g = qkv
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            (out.into_data().try_to_vec::<f32>().unwrap(), g)
        };
        let (out, grad) = run();
        let (out_ref, grad_ref) = fused::with_decomposed(run);
        assert_close(
            &format!("{device:?} packed output (padded {padded})"),
            &out,
            &out_ref,
        );
        assert_close(
            &format!("{device:?} packed grad qkv (padded {padded})"),
            &grad,
            &grad_ref,
        );
    }
}

/// Output and gradients of a norm of `x: [2, 5, 24]` with gain (and bias) parameters.
fn norm_run(with_bias: bool, rms: bool, device: &Device) -> Vec<Vec<f32>> {
    let device = device.clone();
    let x = random([1, 2, 5, 24], 7, &device)
        .reshape([2, 5, 24])
        .require_grad();
    let w = (random([1, 1, 1, 24], 8, &device).reshape([24]) * 0.1 + 1.0).require_grad();
    let b = (random([1, 1, 1, 24], 9, &device).reshape([24]) * 0.1).require_grad();
    let weighting = random([1, 2, 5, 24], 10, &device).reshape([2, 5, 24]);
    let out = if rms {
        fused::rms_norm(x.clone(), w.clone(), 1e-5)
    } else {
        fused::layer_norm(x.clone(), w.clone(), with_bias.then(|| b.clone()), 1e-5)
    };
    let grads = (out.clone() * weighting).sum().backward();
    let mut all = vec![
        out.into_data().try_to_vec::<f32>().unwrap(),
        x.grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        w.grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
    ];
    if with_bias && !rms {
        all.push(
            b.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
    }
    all
}

#[test]
fn layer_norm_and_rms_norm_match_the_decomposed_ops() {
    for device in devices() {
        for (what, with_bias, rms) in [
            ("layer norm", false, false),
            ("layer norm with bias", true, false),
            ("rms norm", false, true),
        ] {
            let what = format!("{device:?} {what}");
            let fast = norm_run(with_bias, rms, &device);
            let reference = fused::with_decomposed(|| norm_run(with_bias, rms, &device));
            assert_eq!(fast.len(), reference.len());
            for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
                assert_close(&format!("{what} #{i}"), a, b);
            }
        }
    }
}

#[test]
fn cross_entropy_matches_the_decomposed_ops() {
    for device in devices() {
        let run = || {
            let device = device.clone();
            let logits =
                (random([1, 1, 40, 65], 11, &device).reshape([40, 65]) * 3.0).require_grad();
            let targets = Tensor::<1, Int>::from_data(
                TensorData::new((0..40i64).map(|i| (i * 7) % 65).collect(), [40]),
                &device,
            );
            let loss = fused::cross_entropy(logits.clone(), targets);
            let grads = loss.clone().backward();
            (
                loss.into_data().try_to_vec::<f32>().unwrap(),
                logits
                    .grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
            )
        };
        let (loss, grad) = run();
        let (loss_ref, grad_ref) = fused::with_decomposed(run);
        assert_eq!(loss.len(), 1);
        assert_close("cross-entropy", &loss, &loss_ref);
        assert_close("cross-entropy grad", &grad, &grad_ref);
    }
}

#[test]
fn gelu_matches_the_decomposed_ops() {
    {
        let device = flex();
        let run = || {
            let x = (random([2, 3, 16, 40], 12, &device) * 3.0).require_grad();
            let weighting = random([2, 3, 16, 40], 13, &device);
            let out = fused::gelu(x.clone(), burn::tensor::activation::gelu);
            let grads = (out.clone() * weighting).sum().backward();
            (
                values(out),
                x.grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
            )
        };
        let (out, grad) = run();
        let (out_ref, grad_ref) = fused::with_decomposed(run);
        assert_close(&format!("{device:?} gelu"), &out, &out_ref);
        assert_close(&format!("{device:?} gelu grad"), &grad, &grad_ref);
    }
}

/// Every parameter gradient of `model`, by path.
struct Collect<'a> {
    grads: &'a Gradients,
    out: Vec<(String, Vec<f32>)>,
    path: hearth_engine::model::ParamPath,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            self.out.push((
                self.path.joined(),
                g.into_data().try_to_vec::<f32>().unwrap(),
            ));
        }
    }
}

/// The loss and parameter gradients of `model` on a fixed batch.
fn model_run(model: &Model, device: &Device) -> (f32, Vec<(String, Vec<f32>)>) {
    let device = device.clone();
    let tokens: Vec<i64> = (0..2 * 17).map(|i| (i * 5 + 3) % 20).collect();
    let x: Vec<i64> = (0..2)
        .flat_map(|r| tokens[r * 17..r * 17 + 16].to_vec())
        .collect();
    let y: Vec<i64> = (0..2)
        .flat_map(|r| tokens[r * 17 + 1..r * 17 + 17].to_vec())
        .collect();
    let x = Tensor::<2, Int>::from_data(TensorData::new(x, [2, 16]), &device);
    let y = Tensor::<2, Int>::from_data(TensorData::new(y, [2, 16]), &device);
    let loss = next_token::loss(model.forward(x), y);
    let grads = loss.backward();
    let mut collect = Collect {
        grads: &grads,
        out: Vec::new(),
        path: hearth_engine::model::ParamPath::default(),
    };
    model.visit(&mut collect);
    (loss.into_scalar(), collect.out)
}

#[test]
fn a_whole_model_step_matches_with_and_without_the_fused_ops() {
    for (device, arch) in devices()
        .into_iter()
        .flat_map(|d| [(d.clone(), Arch::Classic), (d, Arch::Modern)])
    {
        let spec = ModelSpec {
            n_layer: 2,
            n_head: 4,
            d_model: 32,
            context: 16,
            arch,
            ..ModelSpec::default()
        };
        let model = Model::new(&spec, 20, &device);
        let (loss, grads) = model_run(&model, &device);
        let (loss_ref, grads_ref) = fused::with_decomposed(|| model_run(&model, &device));
        assert!(
            (loss - loss_ref).abs() <= TOLERANCE,
            "{device:?} {arch:?} loss {loss} vs {loss_ref}"
        );
        assert_eq!(grads.len(), grads_ref.len());
        assert!(!grads.is_empty());
        for ((name, a), (name_ref, b)) in grads.iter().zip(&grads_ref) {
            assert_eq!(name, name_ref);
            assert_close(&format!("{device:?} {arch:?} {name}"), a, b);
        }
    }
}

#[test]
fn each_backend_takes_its_own_fused_path_unless_switched_off() {
    let flex = flex();
    assert!(fused::flex_fused_on(&flex));
    assert!(!fused::fused_on(&flex), "Flex never takes the LibTorch ops");
    assert!(!fused::with_decomposed(|| fused::flex_fused_on(&flex)));
    #[cfg(feature = "libtorch")]
    {
        assert!(fused::fused_on(&libtorch()));
        assert!(!fused::flex_fused_on(&libtorch()));
        assert!(!fused::with_decomposed(|| fused::fused_on(&libtorch())));
    }
}

/// Output and input gradients of `op` on inputs of `shapes` (under a fixed weighting of its
/// output), fused against decomposed on LibTorch.
#[cfg(feature = "libtorch")]
fn check_op(what: &str, shapes: &[[usize; 4]], op: impl Fn(Vec<Tensor<4>>) -> Tensor<4>) {
    let device = libtorch();
    let run = |fused_ops: bool| {
        let go = || {
            let inputs: Vec<Tensor<4>> = shapes
                .iter()
                .enumerate()
                .map(|(i, &s)| random(s, 20 + i as u64, &device).require_grad())
                .collect();
            assert_eq!(fused::fused_on(&device), fused_ops);
            let out = op(inputs.clone());
            let weighting = random(out.dims(), 40, &device);
            let grads = (out.clone() * weighting).sum().backward();
            let mut all = vec![values(out)];
            all.extend(inputs.iter().map(|t| {
                t.grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            }));
            all
        };
        if fused_ops {
            go()
        } else {
            fused::with_decomposed(go)
        }
    };
    let (fast, reference) = (run(true), run(false));
    for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
        assert_close(&format!("{what} #{i}"), a, b);
    }
}

/// Grouped-query attention (fewer key/value heads than query heads), causal and padded: the
/// fused op reads the shared heads in place, the reference repeats them.
#[cfg(feature = "libtorch")]
#[test]
fn grouped_query_attention_matches_decomposed() {
    let q = [2, 6, 16, 8];
    let kv = [2, 2, 16, 8];
    check_op("grouped causal", &[q, kv, kv], |t| {
        fused::attention(t[0].clone(), t[1].clone(), t[2].clone(), &AttnMask::Causal)
    });
    check_op("grouped padded", &[q, kv, kv], |t| {
        let mask = AttnMask::Masked(Box::new(padding(2, 16, &[0, 5], &t[0].device())));
        fused::attention(t[0].clone(), t[1].clone(), t[2].clone(), &mask)
    });
}

/// SwiGLU and the rotary embedding (on a transposed view, as the decoder feeds it).
#[cfg(feature = "libtorch")]
#[test]
fn swiglu_and_rope_match_decomposed() {
    check_op("swiglu", &[[2, 3, 5, 24], [2, 3, 5, 24]], |t| {
        fused::swiglu(t[0].clone(), t[1].clone())
    });
    check_op("rope", &[[2, 7, 3, 16]], |t| {
        let device = t[0].device();
        let (seq, half) = (7, 8);
        let angles: Vec<f32> = (0..seq * half)
            .map(|i| (i / half) as f32 * 0.37 / (1 + i % half) as f32)
            .collect();
        let table = |f: fn(f32) -> f32| {
            Tensor::<2>::from_data(
                TensorData::new(angles.iter().map(|&a| f(a)).collect(), [seq, half]),
                &device,
            )
        };
        let x = t[0].clone().swap_dims(1, 2);
        fused::rope(x, &table(f32::cos), &table(f32::sin))
    });
}
