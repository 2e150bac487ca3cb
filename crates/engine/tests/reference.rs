//! Hearth's GPT against PyTorch: the same weights and batch give the same next-token loss and
//! the same gradient for every parameter. Fixture: `scripts/reference_fixtures.py` (float64).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};
use hearth_engine::model::{Model, ModelSpec};
use hearth_engine::objective::next_token;
use hearth_engine::train::{AdamW, GradBuffer, OptimSpec};
use serde_json::Value;

/// PyTorch's name for a Hearth parameter path, and whether Hearth stores it transposed
/// (Burn's `Linear` keeps `[d_in, d_out]`, PyTorch `[d_out, d_in]`).
fn torch_name(path: &str) -> (String, bool) {
    let p = path.replace("blocks.", "h.");
    let (name, transposed) = match p.as_str() {
        "tok_emb.weight" => ("wte.weight".to_string(), false),
        "pos_emb.weight" => ("wpe.weight".to_string(), false),
        "ln_f.gamma" => ("ln_f.weight".to_string(), false),
        other => {
            let other = other
                .replace("ln_1.gamma", "ln_1.weight")
                .replace("ln_2.gamma", "ln_2.weight")
                .replace("attn.qkv.weight", "attn.c_attn.weight")
                .replace("attn.proj.weight", "attn.c_proj.weight")
                .replace("mlp.fc.weight", "c_fc.weight")
                .replace("mlp.proj.weight", "c_proj.weight");
            let transposed = other.ends_with("c_attn.weight")
                || other.ends_with("c_proj.weight")
                || other.ends_with("c_fc.weight");
            (other, transposed)
        }
    };
    (name, transposed)
}

fn is_gain(name: &str) -> bool {
    name.ends_with("ln_1.weight") || name.ends_with("ln_2.weight") || name == "ln_f.weight"
}

/// The fixture's weight formula (see the script).
fn weight_values(name: &str, n: usize) -> Vec<f32> {
    let phase = (name.chars().map(|c| c as u32).sum::<u32>() % 17) as f64 * 0.1;
    let scale = if is_gain(name) { 0.1 } else { 0.2 };
    (0..n)
        .map(|k| {
            let v = scale * (0.37 * k as f64 + phase).sin();
            (if is_gain(name) { 1.0 + v } else { v }) as f32
        })
        .collect()
}

#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn leaf(&self) -> String {
        self.0.join(".")
    }
}

struct SetWeights {
    path: Path,
    shapes: serde_json::Map<String, Value>,
    seen: Vec<String>,
}

impl ModuleMapper for SetWeights {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if hearth_engine::model::is_family_level(container_type) {
            return;
        }
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, container_type: &str) {
        if hearth_engine::model::is_family_level(container_type) {
            return;
        }
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let (name, transposed) = torch_name(&self.path.leaf());
        let shape: Vec<usize> = self.shapes[&name]
            .as_array()
            .unwrap_or_else(|| panic!("no fixture tensor {name} (path {})", self.path.leaf()))
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let values = weight_values(&name, shape.iter().product());
        let device = tensor.device();
        let mut value = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
        if transposed {
            value = value.transpose();
        }
        assert_eq!(value.dims(), tensor.dims(), "{name}: shape");
        self.seen.push(name);
        Param::from_mapped_value(id, value.require_grad(), mapper)
    }
}

/// Reads every parameter (or, with `grads`, its gradient) in PyTorch's name and layout.
struct Read<'a> {
    path: Path,
    grads: Option<&'a Gradients>,
    out: Vec<(String, Vec<f32>)>,
}

impl<'a> Read<'a> {
    fn new(grads: Option<&'a Gradients>) -> Self {
        Self {
            path: Path::default(),
            grads,
            out: Vec::new(),
        }
    }
}

impl ModuleVisitor for Read<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if hearth_engine::model::is_family_level(container_type) {
            return;
        }
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, container_type: &str) {
        if hearth_engine::model::is_family_level(container_type) {
            return;
        }
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (name, transposed) = torch_name(&self.path.leaf());
        let mut value = match self.grads {
            Some(grads) => param
                .val()
                .grad(grads)
                .unwrap_or_else(|| panic!("{name} has no gradient")),
            None => param.val(),
        };
        if transposed {
            value = value.transpose();
        }
        let values = value
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        self.out.push((name, values));
    }
}

fn check(device: Device, label: &str) {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/next_token_reference.json")).unwrap();
    let cfg = &fixture["config"];
    let get = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let spec = ModelSpec {
        n_layer: get("layers"),
        n_head: get("heads"),
        d_model: get("width"),
        context: get("block"),
        dropout: 0.0,
        tie_weights: true,
        bias: false,
        relation_classes: 0,
        ..ModelSpec::default()
    };
    let model = Model::new(&spec, get("vocab"), &device);
    let mut setter = SetWeights {
        path: Path::default(),
        shapes: fixture["shapes"].as_object().unwrap().clone(),
        seen: Vec::new(),
    };
    let model = model.map(&mut setter);
    assert_eq!(
        setter.seen.len(),
        fixture["shapes"].as_object().unwrap().len(),
        "every tensor set once"
    );

    let rows = |k: &str| -> (Vec<i64>, usize, usize) {
        let rows = fixture[k].as_array().unwrap();
        let flat: Vec<i64> = rows
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
            .collect();
        (flat, rows.len(), rows[0].as_array().unwrap().len())
    };
    let (x, b, t) = rows("inputs");
    let (y, _, _) = rows("targets");
    let x = Tensor::<2, Int>::from_data(TensorData::new(x, [b, t]), &device);
    let y = Tensor::<2, Int>::from_data(TensorData::new(y, [b, t]), &device);
    let loss = next_token::loss(model.forward(x.clone()), y.clone());
    let loss_value: f32 = loss.clone().into_scalar();
    let expected = fixture["loss"].as_f64().unwrap() as f32;
    assert!(
        (loss_value - expected).abs() < 1e-5,
        "{label}: loss {loss_value} vs PyTorch {expected}"
    );

    let grads = loss.backward();
    check_grads(&model, &grads, &fixture, label);

    // Two optimizer steps: clipping to norm 1, decoupled decay on matrices, bias correction.
    let adamw = &fixture["adamw"];
    let mut optim = AdamW::new(OptimSpec {
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        grad_clip: 1.0,
        ..OptimSpec::default()
    });
    let lr = adamw["lr"].as_f64().unwrap();
    let (model, norm_1) = optim.step(model.clone(), &GradBuffer::from_grads(&model, &grads), lr);
    let loss = next_token::loss(model.forward(x.clone()), y.clone());
    let grads = GradBuffer::from_grads(&model, &loss.backward());
    let (model, norm_2) = optim.step(model, &grads, lr);
    for (got, want) in [norm_1, norm_2]
        .iter()
        .zip(adamw["grad_norms"].as_array().unwrap())
    {
        let want = want.as_f64().unwrap();
        assert!(
            (f64::from(*got) - want).abs() < 1e-4 * want,
            "{label}: grad norm {got} vs {want}"
        );
    }
    let mut reader = Read::new(None);
    model.visit(&mut reader);
    for (name, got) in reader.out {
        let want = adamw["params"][&name].as_array().unwrap();
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let w = w.as_f64().unwrap();
            assert!(
                (f64::from(*g) - w).abs() < 2e-5,
                "{label}: {name}[{i}] after two steps = {g}, PyTorch {w}"
            );
        }
    }
}

fn check_grads(model: &Model, grads: &Gradients, fixture: &Value, label: &str) {
    let mut reader = Read::new(Some(grads));
    model.visit(&mut reader);
    for (name, got) in reader.out {
        let want: Vec<f64> = fixture["grads"][&name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "{label}: {name} size");
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-4 * scale + 1e-6,
                "{label}: d loss / d {name}[{i}] = {g}, PyTorch {w}"
            );
        }
    }
}

#[test]
fn loss_and_gradients_match_pytorch_on_flex() {
    check(Device::flex().autodiff(), "flex");
}

#[cfg(feature = "libtorch")]
#[test]
fn loss_and_gradients_match_pytorch_on_libtorch() {
    #[allow(deprecated)]
    check(Device::libtorch().autodiff(), "libtorch");
}
