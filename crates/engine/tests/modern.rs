//! The modern architecture (`model.arch = "modern"`: rotary embeddings, RMSNorm, SwiGLU,
//! QK-norm, no biases) against PyTorch: on the same weights and batch, the causal logits, the
//! next-token loss and every parameter gradient, the logits of bidirectional attention over
//! padded rows, and every parameter after one Muon step match `scripts/modern_fixture.py`
//! (float64) within 1e-5. Also: causality, padding and attention capture of the modern model.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Gradients, Int, Tensor, TensorData};
use hearth_engine::export::weights::{Array, load_params, model_params};
use hearth_engine::model::{Arch, AttentionMode, Model, ModelSpec};
use hearth_engine::objective::next_token;
use hearth_engine::train::{AdamW, GradBuffer, OptimSpec, OptimizerKind};
use serde_json::Value;
use std::collections::BTreeMap;

/// Largest difference allowed, relative to the largest reference value (at least 1); the
/// differences measured are below 1e-6, float32 against float64.
const TOLERANCE: f64 = 1e-5;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/modern_reference.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The fixture's model shape.
fn spec(fixture: &Value) -> ModelSpec {
    let cfg = &fixture["config"];
    let get = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let spec = ModelSpec {
        n_layer: get("layers"),
        n_head: get("heads"),
        d_model: get("width"),
        context: get("context"),
        dropout: 0.0,
        tie_weights: true,
        bias: false,
        relation_classes: 0,
        arch: Arch::Modern,
        ..ModelSpec::default()
    };
    assert_eq!(spec.mlp_hidden(), get("hidden"));
    assert!(spec.validate().is_empty());
    spec
}

/// The fixture's weight formula (see the script), by Hearth parameter path.
fn weight_values(name: &str, n: usize) -> Vec<f32> {
    let phase = (name.chars().map(|c| c as u32).sum::<u32>() % 17) as f64 * 0.1;
    (0..n)
        .map(|k| {
            let s = (0.37 * k as f64 + phase).sin();
            (if name.ends_with(".gamma") {
                1.0 + 0.1 * s
            } else {
                0.2 * s
            }) as f32
        })
        .collect()
}

/// A modern model holding the fixture's weights; fails if a path or shape differs.
fn model(fixture: &Value, device: &Device) -> Model {
    let spec = spec(fixture);
    let vocab = fixture["config"]["vocab"].as_u64().unwrap() as usize;
    let shapes = fixture["shapes"].as_object().unwrap();
    let params: BTreeMap<String, Array> = shapes
        .iter()
        .map(|(name, shape)| {
            let shape: Vec<usize> = shape
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            let values = weight_values(name, shape.iter().product());
            (name.clone(), Array::new(shape, values))
        })
        .collect();
    let model = Model::new(&spec, vocab, device);
    assert_eq!(model.arch(), Arch::Modern);
    let model = load_params(model, &params)
        .unwrap_or_else(|p| panic!("{p:?}"))
        .set_require_grad(true);
    assert_eq!(model_params(&model).len(), shapes.len());
    model
}

fn int_rows(v: &Value, device: &Device) -> Tensor<2, Int> {
    let rows = v.as_array().unwrap();
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
        .collect();
    let cols = rows[0].as_array().unwrap().len();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Fails where `got` is further from `want` than `TOLERANCE` times the largest reference value
/// (at least 1).
fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: size");
    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() <= TOLERANCE * scale,
            "{what}[{i}] = {g}, PyTorch {w}"
        );
    }
}

/// Every parameter's gradient (or, without `grads`, value) by path.
struct Read<'a> {
    path: hearth_engine::model::ParamPath,
    grads: Option<&'a Gradients>,
    out: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for Read<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _: &str, container_type: &str) {
        self.path.exit(container_type);
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.joined();
        let value = match self.grads {
            Some(grads) => param
                .val()
                .grad(grads)
                .unwrap_or_else(|| panic!("{name} has no gradient")),
            None => param.val(),
        };
        self.out.push((name, values(value)));
    }
}

fn read(model: &Model, grads: Option<&Gradients>) -> Vec<(String, Vec<f32>)> {
    let mut reader = Read {
        path: hearth_engine::model::ParamPath::default(),
        grads,
        out: Vec::new(),
    };
    model.visit(&mut reader);
    reader.out
}

fn check(device: Device, label: &str) {
    let fixture = fixture();
    let model = model(&fixture, &device);
    let x = int_rows(&fixture["inputs"], &device);
    let y = int_rows(&fixture["targets"], &device);

    let logits = model.forward(x.clone());
    assert_close(
        &values(logits.clone()),
        &floats(&fixture["logits"]),
        &format!("{label}: causal logits"),
    );
    let loss = next_token::loss(logits, y);
    let loss_value: f32 = loss.clone().into_scalar();
    let want = fixture["loss"].as_f64().unwrap();
    assert!(
        (f64::from(loss_value) - want).abs() < TOLERANCE,
        "{label}: loss {loss_value} vs PyTorch {want}"
    );
    let grads = loss.backward();
    let read_grads = read(&model, Some(&grads));
    assert_eq!(
        read_grads.len(),
        fixture["grads"].as_object().unwrap().len()
    );
    for (name, got) in &read_grads {
        assert_close(
            got,
            &floats(&fixture["grads"][name]),
            &format!("{label}: d loss / d {name}"),
        );
    }

    // Bidirectional attention over right-padded rows.
    let pad = fixture["padding"].as_array().unwrap();
    let flat: Vec<bool> = pad
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_bool().unwrap()))
        .collect();
    let [b, t] = x.dims();
    let padding = Tensor::<2, Bool>::from_data(TensorData::new(flat, [b, t]), &device);
    let hidden = model.hidden(x.clone(), AttentionMode::Bidirectional, Some(padding));
    assert_close(
        &values(model.logits(hidden)),
        &floats(&fixture["bidirectional_logits"]),
        &format!("{label}: bidirectional padded logits"),
    );

    // One optimizer step with Muon: the block matrices (q, k, v, proj, gate, up, down) take
    // Muon's update, the embedding and the norm gains AdamW's.
    let muon = &fixture["muon"];
    let mut optim = AdamW::new(OptimSpec {
        optimizer: OptimizerKind::Muon,
        ..OptimSpec::default()
    });
    let (stepped, norm) = optim.step(
        model.clone(),
        &GradBuffer::from_grads(&model, &grads),
        muon["lr"].as_f64().unwrap(),
    );
    let want_norm = muon["grad_norm"].as_f64().unwrap();
    assert!(
        (f64::from(norm) - want_norm).abs() < TOLERANCE * want_norm,
        "{label}: grad norm {norm} vs {want_norm}"
    );
    for (name, got) in read(&stepped, None) {
        assert_close(
            &got,
            &floats(&muon["params"][&name]),
            &format!("{label}: {name} after one Muon step"),
        );
    }
}

#[test]
fn modern_matches_pytorch_on_flex() {
    check(Device::flex().autodiff(), "flex");
}

#[cfg(feature = "libtorch")]
#[test]
fn modern_matches_pytorch_on_libtorch() {
    #[allow(deprecated)]
    check(Device::libtorch().autodiff(), "libtorch");
}

fn tokens(ids: &[i64], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), device)
}

#[test]
fn causal_modern_logits_do_not_see_the_future_and_padding_is_not_attended() {
    let device = Device::flex();
    let fixture = fixture();
    let model = model(&fixture, &device);
    let vocab = model.vocab();
    let a = [1, 2, 3, 4, 5, 6];
    let b = [1, 2, 3, 9, 9, 9];
    let la = values(model.forward(tokens(&a, &device)));
    let lb = values(model.forward(tokens(&b, &device)));
    // Positions 0..3 agree; position 3 differs (its own token changed).
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
    assert!(close(&la[..3 * vocab], &lb[..3 * vocab]));
    assert!(!close(&la[3 * vocab..4 * vocab], &lb[3 * vocab..4 * vocab]));

    // Bidirectional: what padded keys hold does not change the other positions' states.
    let padding = Tensor::<2, Bool>::from_data(
        TensorData::new(vec![false, false, false, true, true, true], [1, 6]),
        &device,
    );
    let hidden = |ids: &[i64]| {
        values(model.hidden(
            tokens(ids, &device),
            AttentionMode::Bidirectional,
            Some(padding.clone()),
        ))
    };
    let width = model.token_embedding().dims()[1];
    assert!(close(&hidden(&a)[..3 * width], &hidden(&b)[..3 * width]));
    // Without padding, bidirectional attention does see the later tokens.
    let full = |ids: &[i64]| {
        values(model.hidden(tokens(ids, &device), AttentionMode::Bidirectional, None))
    };
    assert!(!close(&full(&a)[..width], &full(&b)[..width]));
}

#[test]
fn modern_attention_maps_are_distributions_over_allowed_positions() {
    let device = Device::flex();
    let model = model(&fixture(), &device);
    let maps = model.capture_attention(&[1, 2, 3, 4, 5], AttentionMode::Causal, &device);
    assert_eq!((maps.n_layer, maps.n_head, maps.seq), (2, 2, 5));
    for layer in 0..2 {
        for head in 0..2 {
            let map = maps.map(layer, head);
            for q in 0..5 {
                let row = &map[q * 5..q * 5 + 5];
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                assert!(row[q + 1..].iter().all(|&w| w == 0.0), "causal row {q}");
            }
        }
    }
}

#[test]
fn a_fresh_modern_model_has_the_counted_parameters_and_no_classic_parts() {
    let device = Device::flex();
    let spec = ModelSpec {
        arch: Arch::Modern,
        ..ModelSpec::default()
    };
    let model = Model::new(&spec, 65, &device);
    let params = model_params(&model);
    let total: usize = params.values().map(|a| a.values.len()).sum();
    assert_eq!(total, spec.n_params(65));
    assert!(!params.keys().any(|k| k.contains("pos_emb")
        || k.contains("ln_")
        || k.ends_with(".bias")
        || k.contains("qkv")));
    // Norm gains start at one.
    assert!(params["rms_f.gamma"].values.iter().all(|&g| g == 1.0));
    // The classic model keeps its own parameter names (checkpoints and exports rely on them).
    let classic = model_params(&Model::new(&ModelSpec::default(), 65, &device));
    let total: usize = classic.values().map(|a| a.values.len()).sum();
    assert_eq!(total, ModelSpec::default().n_params(65));
    for name in [
        "pos_emb.weight",
        "blocks.0.ln_1.gamma",
        "blocks.0.attn.qkv.weight",
        "blocks.0.mlp.fc.weight",
        "ln_f.gamma",
    ] {
        assert!(classic.contains_key(name), "{name}");
    }
}
