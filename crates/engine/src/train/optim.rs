//! AdamW with decoupled weight decay on matrices only and clipping by the global gradient norm,
//! as nanoGPT configures `torch.optim.AdamW` and `clip_grad_norm_`.

use crate::dynamics::{Histogram, HistogramKind, MatrixRecord};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Gradients, Tensor};
use std::any::Any;
use std::collections::HashMap;

pub use crate::spec::{OptimSpec, OptimizerKind};

/// The two moment estimates of one parameter, of the parameter's own rank.
struct Moments<const D: usize> {
    m: Tensor<D>,
    v: Tensor<D>,
}

/// Gradients of a module's parameters as plain tensors (outside the autodiff graph): one
/// backward pass's, or the sum of several (the micro-batches of an accumulated step, the
/// replicas of a data-parallel step), which is what an optimizer step applies.
#[derive(Default)]
pub struct GradBuffer {
    grads: HashMap<ParamId, Box<dyn Any + Send>>,
}

impl GradBuffer {
    /// The gradients `grads` (from `loss.backward()`) of `module`'s parameters.
    pub fn from_grads<M: Module>(module: &M, grads: &Gradients) -> Self {
        let mut buffer = Self::default();
        buffer.add(module, grads);
        buffer
    }

    /// Adds the gradients `grads` of `module`'s parameters to the buffer.
    pub fn add<M: Module>(&mut self, module: &M, grads: &Gradients) {
        module.visit(&mut Accumulate {
            buffer: self,
            grads,
        });
    }

    /// Adds another buffer of `module`'s gradients (for example a replica's, on another
    /// device), moving each onto the device of `module`'s parameter.
    pub fn absorb<M: Module>(&mut self, module: &M, other: GradBuffer) {
        module.visit(&mut Absorb {
            buffer: self,
            other,
        });
    }

    /// The gradients of every trainable parameter of `module` in visit order, as one flat
    /// buffer (zeros where a parameter got none), for summing across processes.
    pub fn to_flat<M: Module>(&self, module: &M) -> Vec<f32> {
        let mut flat = Flatten {
            grads: Some(self),
            out: Vec::new(),
        };
        module.visit(&mut flat);
        flat.out
    }

    /// The gradients laid out by [`GradBuffer::to_flat`], on the devices of `module`'s
    /// parameters.
    pub fn from_flat<M: Module>(module: &M, flat: &[f32]) -> Self {
        let mut fill = FillGrads {
            buffer: Self::default(),
            flat,
            at: 0,
        };
        module.visit(&mut fill);
        fill.buffer
    }

    /// Whether no parameter has a gradient.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    fn get<const D: usize>(&self, id: &ParamId) -> Option<Tensor<D>> {
        self.grads
            .get(id)
            .and_then(|g| g.downcast_ref::<Tensor<D>>())
            .cloned()
    }
}

/// Histograms of the weights of `module` and of their gradients `grads`, one pair per layer
/// ([`crate::dynamics::layer_of`]), in the model's order. Parameters without a gradient
/// (frozen ones) are left out.
pub fn histograms<M: Module>(module: &M, grads: &GradBuffer) -> Vec<Histogram> {
    let mut collect = LayerValues {
        path: crate::model::ParamPath::default(),
        grads,
        layers: Vec::new(),
    };
    module.visit(&mut collect);
    collect
        .layers
        .into_iter()
        .flat_map(|(layer, weights, grads)| {
            [
                Histogram::of(layer.clone(), HistogramKind::Weight, &weights),
                Histogram::of(layer, HistogramKind::Grad, &grads),
            ]
        })
        .collect()
}

struct LayerValues<'a> {
    path: crate::model::ParamPath,
    grads: &'a GradBuffer,
    /// Per layer: its name, weights and gradients.
    layers: Vec<(String, Vec<f32>, Vec<f32>)>,
}

impl ModuleVisitor for LayerValues<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.get::<D>(&param.id) else {
            return;
        };
        let layer = crate::dynamics::layer_of(&self.path.joined());
        let at = match self.layers.iter().position(|(l, ..)| *l == layer) {
            Some(at) => at,
            None => {
                self.layers.push((layer, Vec::new(), Vec::new()));
                self.layers.len() - 1
            }
        };
        self.layers[at].1.extend(to_values(param.val()));
        self.layers[at].2.extend(to_values(grad));
    }
}

/// Every parameter's values in visit order, as one flat buffer (to broadcast the initial
/// weights, or checksum them, across processes).
pub fn flatten_params<M: Module>(module: &M) -> Vec<f32> {
    let mut flat = Flatten {
        grads: None,
        out: Vec::new(),
    };
    module.visit(&mut flat);
    flat.out
}

/// `module` with its parameters replaced by the values of `flat`, laid out as
/// [`flatten_params`] lays them out.
pub fn unflatten_params<M: Module>(module: M, flat: &[f32]) -> M {
    module.map(&mut Unflatten { flat, at: 0 })
}

fn to_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float data")
}

struct Flatten<'a> {
    grads: Option<&'a GradBuffer>,
    out: Vec<f32>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        match self.grads {
            None => self.out.extend(to_values(value)),
            Some(_) if !value.is_require_grad() => {}
            Some(grads) => match grads.get::<D>(&param.id) {
                Some(grad) => self.out.extend(to_values(grad)),
                None => self
                    .out
                    .extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
            },
        }
    }
}

struct FillGrads<'a> {
    buffer: GradBuffer,
    flat: &'a [f32],
    at: usize,
}

impl ModuleVisitor for FillGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let shape = value.shape();
        let n = shape.num_elements();
        let data = burn::tensor::TensorData::new(self.flat[self.at..self.at + n].to_vec(), shape);
        self.at += n;
        let grad = Tensor::<D>::from_data(data, &value.device().without_autodiff());
        self.buffer.grads.insert(param.id, Box::new(grad));
    }
}

struct Unflatten<'a> {
    flat: &'a [f32],
    at: usize,
}

impl ModuleMapper for Unflatten<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let data = burn::tensor::TensorData::new(self.flat[self.at..self.at + n].to_vec(), shape);
        self.at += n;
        let mut value = Tensor::<D>::from_data(data, &tensor.device());
        if require_grad {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}

struct Absorb<'a> {
    buffer: &'a mut GradBuffer,
    other: GradBuffer,
}

impl ModuleVisitor for Absorb<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.other.get::<D>(&param.id) else {
            return;
        };
        let grad = grad.to_device(&param.val().device().without_autodiff());
        let sum = match self.buffer.get::<D>(&param.id) {
            Some(previous) => previous.add(grad),
            None => grad,
        };
        self.buffer.grads.insert(param.id, Box::new(sum));
    }
}

struct Accumulate<'a> {
    buffer: &'a mut GradBuffer,
    grads: &'a Gradients,
}

impl ModuleVisitor for Accumulate<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = param.val().grad(self.grads) else {
            return;
        };
        let sum = match self.buffer.get::<D>(&param.id) {
            Some(previous) => previous.add(grad),
            None => grad,
        };
        self.buffer.grads.insert(param.id, Box::new(sum));
    }
}

/// AdamW state over a module's parameters.
pub struct AdamW {
    spec: OptimSpec,
    /// Completed optimizer steps (Adam's `t`).
    steps: i32,
    moments: HashMap<ParamId, Box<dyn Any + Send>>,
}

impl AdamW {
    /// An optimizer with `spec`'s settings and no moments yet.
    pub fn new(spec: OptimSpec) -> Self {
        Self {
            spec,
            steps: 0,
            moments: HashMap::new(),
        }
    }

    /// Applies one update with learning rate `lr` and returns the updated module and the
    /// global gradient norm before clipping.
    pub fn step<M: Module>(&mut self, module: M, grads: &GradBuffer, lr: f64) -> (M, f32) {
        let (module, grad_norm, _) = self.step_inner(module, grads, lr, false);
        (module, grad_norm)
    }

    /// [`AdamW::step`] that also measures every weight matrix it updates: the norm of its
    /// gradient before clipping, of the change the step made (weight decay included) and of
    /// the weights before the step. The norms are summed on the device and read back at once.
    pub fn step_measured<M: Module>(
        &mut self,
        module: M,
        grads: &GradBuffer,
        lr: f64,
    ) -> (M, f32, Vec<MatrixRecord>) {
        self.step_inner(module, grads, lr, true)
    }

    /// [`AdamW::step`] when not `measure`, [`AdamW::step_measured`] when `measure` (no
    /// records when not).
    pub(crate) fn step_inner<M: Module>(
        &mut self,
        module: M,
        grads: &GradBuffer,
        lr: f64,
        measure: bool,
    ) -> (M, f32, Vec<MatrixRecord>) {
        let mut norm = GradNorm {
            grads,
            squares: Vec::new(),
        };
        module.visit(&mut norm);
        let grad_norm = if norm.squares.is_empty() {
            0.0
        } else {
            Tensor::cat(norm.squares, 0)
                .sum()
                .sqrt()
                .into_scalar::<f32>()
        };
        let clip_scale = if self.spec.grad_clip > 0.0 && f64::from(grad_norm) > self.spec.grad_clip
        {
            self.spec.grad_clip / (f64::from(grad_norm) + 1e-6)
        } else {
            1.0
        };
        self.steps += 1;
        let mut update = Update {
            path: crate::model::ParamPath::default(),
            optim: self,
            grads,
            lr,
            clip_scale,
            measured: measure.then(Vec::new),
        };
        let module = module.map(&mut update);
        let records = update.measured.map(read_measures).unwrap_or_default();
        (module, grad_norm, records)
    }
}

impl AdamW {
    /// Optimizer steps taken so far.
    pub fn steps(&self) -> i32 {
        self.steps
    }

    /// The moment estimates laid out as two copies of `model` (first and second moment), so
    /// they are saved with the same recorder as the weights. `None` before the first step.
    pub fn moments_as_modules<M: Module + Clone>(&self, model: &M) -> Option<(M, M)> {
        if self.moments.is_empty() {
            return None;
        }
        let m = model.clone().map(&mut MomentsOut {
            optim: self,
            second: false,
        });
        let v = model.clone().map(&mut MomentsOut {
            optim: self,
            second: true,
        });
        Some((m, v))
    }

    /// Restores the moments saved by [`AdamW::moments_as_modules`] for `model`, matching
    /// parameters by position, after `steps` completed steps.
    pub fn restore<M: Module>(&mut self, model: &M, first: &M, second: &M, steps: i32) {
        let mut collect_m = Collect::default();
        first.visit(&mut collect_m);
        let mut collect_v = Collect::default();
        second.visit(&mut collect_v);
        let mut assign = Assign {
            optim: self,
            m: collect_m.tensors.into_iter(),
            v: collect_v.tensors.into_iter(),
        };
        model.visit(&mut assign);
        self.steps = steps;
    }
}

struct MomentsOut<'a> {
    optim: &'a AdamW,
    second: bool,
}

impl ModuleMapper for MomentsOut<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let value = match self
            .optim
            .moments
            .get(&id)
            .and_then(|s| s.downcast_ref::<Moments<D>>())
        {
            Some(state) if self.second => state.v.clone(),
            Some(state) => state.m.clone(),
            None => tensor.inner().zeros_like(),
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

#[derive(Default)]
struct Collect {
    tensors: Vec<Box<dyn Any + Send>>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.tensors.push(Box::new(param.val().inner()));
    }
}

struct Assign<'a, I: Iterator<Item = Box<dyn Any + Send>>> {
    optim: &'a mut AdamW,
    m: I,
    v: I,
}

impl<I: Iterator<Item = Box<dyn Any + Send>>> ModuleVisitor for Assign<'_, I> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (Some(m), Some(v)) = (self.m.next(), self.v.next()) else {
            return;
        };
        if let (Ok(m), Ok(v)) = (m.downcast::<Tensor<D>>(), v.downcast::<Tensor<D>>()) {
            let device = param.val().device().without_autodiff();
            let state = Moments {
                m: m.to_device(&device),
                v: v.to_device(&device),
            };
            self.optim.moments.insert(param.id, Box::new(state));
        }
    }
}

struct GradNorm<'a> {
    grads: &'a GradBuffer,
    squares: Vec<Tensor<1>>,
}

impl ModuleVisitor for GradNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(&param.id) {
            self.squares.push(grad.square().sum());
        }
    }
}

struct Update<'a> {
    /// Names of the modules entered, outermost first.
    path: crate::model::ParamPath,
    optim: &'a mut AdamW,
    grads: &'a GradBuffer,
    lr: f64,
    clip_scale: f64,
    /// With measuring on: each matrix's path and its squared norms (gradient, change,
    /// weights before), still on the device.
    measured: Option<Vec<(String, Tensor<1>)>>,
}

/// Reads the squared norms [`Update`] kept back from the device at once.
fn read_measures(measured: Vec<(String, Tensor<1>)>) -> Vec<MatrixRecord> {
    if measured.is_empty() {
        return Vec::new();
    }
    let (names, squares): (Vec<String>, Vec<Tensor<1>>) = measured.into_iter().unzip();
    let values = to_values(Tensor::cat(squares, 0));
    names
        .into_iter()
        .zip(values.chunks(3))
        .map(|(name, s)| MatrixRecord {
            name,
            grad_norm: s[0].sqrt(),
            update_norm: s[1].sqrt(),
            weight_norm: s[2].sqrt(),
        })
        .collect()
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let grad = match &self.measured {
            Some(_) if D == 2 => self.grads.get::<D>(&param.id),
            _ => None,
        };
        let Some(grad) = grad else {
            return self.update(param);
        };
        let before = param.val().inner();
        let name = self.path.joined();
        let after = self.update(param);
        let change = after.val().inner() - before.clone();
        let squares = Tensor::cat(
            vec![
                grad.square().sum(),
                change.square().sum(),
                before.square().sum(),
            ],
            0,
        );
        if let Some(measured) = &mut self.measured {
            measured.push((name, squares));
        }
        after
    }
}

impl Update<'_> {
    /// The update of one parameter.
    fn update<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(mut grad) = self.grads.get::<D>(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let spec = &self.optim.spec;
        if self.clip_scale != 1.0 {
            grad = grad.mul_scalar(self.clip_scale);
        }
        // Muon takes the matrices inside the blocks; the embeddings, the head, biases and
        // gains stay with AdamW (as in the reference setup).
        if spec.optimizer == OptimizerKind::Muon
            && D == 2
            && self.path.parts().iter().any(|p| p == "blocks")
        {
            let dims = tensor.shape().dims::<D>();
            let shape2 = [dims[0], dims[1]];
            let momentum: Tensor<2> = match self.optim.moments.remove(&id) {
                Some(state) => match state.downcast::<Moments<D>>() {
                    Ok(state) => state.m.reshape(shape2),
                    Err(_) => unreachable!("a parameter keeps its rank"),
                },
                None => grad.clone().reshape(shape2).zeros_like(),
            };
            let lr = spec.muon_lr * self.lr / spec.lr;
            let (value, momentum) = muon_step(
                tensor.inner().reshape(shape2),
                grad.reshape(shape2),
                momentum,
                lr,
                spec.weight_decay,
                spec.muon_momentum,
            );
            let m: Tensor<D> = momentum.reshape(dims);
            self.optim.moments.insert(
                id,
                Box::new(Moments {
                    v: m.clone().zeros_like(),
                    m,
                }),
            );
            let mut value = Tensor::from_inner(value.reshape(dims));
            if require_grad {
                value = value.require_grad();
            }
            return Param::from_mapped_value(id, value, mapper);
        }
        let (b1, b2) = (spec.beta1, spec.beta2);
        let moments = match self.optim.moments.remove(&id) {
            Some(state) => match state.downcast::<Moments<D>>() {
                Ok(state) => Moments {
                    m: state
                        .m
                        .mul_scalar(b1)
                        .add(grad.clone().mul_scalar(1.0 - b1)),
                    v: state
                        .v
                        .mul_scalar(b2)
                        .add(grad.square().mul_scalar(1.0 - b2)),
                },
                Err(_) => unreachable!("a parameter keeps its rank"),
            },
            None => Moments {
                m: grad.clone().mul_scalar(1.0 - b1),
                v: grad.square().mul_scalar(1.0 - b2),
            },
        };
        let t = self.optim.steps;
        let bias_correction1 = 1.0 - b1.powi(t);
        let bias_correction2 = 1.0 - b2.powi(t);
        let step_size = self.lr / bias_correction1;
        let denom = moments
            .v
            .clone()
            .sqrt()
            .mul_scalar(1.0 / bias_correction2.sqrt())
            .add_scalar(spec.eps);
        let mut value = tensor.inner();
        // Decay matrices and embeddings only; biases and norm gains are left alone (nanoGPT).
        if D >= 2 && spec.weight_decay > 0.0 {
            value = value.mul_scalar(1.0 - self.lr * spec.weight_decay);
        }
        let value = value - moments.m.clone().div(denom).mul_scalar(step_size);
        self.optim.moments.insert(id, Box::new(moments));
        let mut value = Tensor::from_inner(value);
        if require_grad {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}

/// The orthogonal factor of `g` (its singular values pushed towards 1) by `steps` quintic
/// Newton-Schulz iterations with (a, b, c) = (3.4445, -4.7750, 2.0315), on `g` scaled to unit
/// Frobenius norm (Jordan et al. 2024).
pub fn newton_schulz(g: Tensor<2>, steps: usize) -> Tensor<2> {
    let [rows, cols] = g.shape().dims::<2>();
    let (a, b, c) = (3.4445, -4.7750, 2.0315);
    // Iterate on the wide orientation, so X Xᵀ is the smaller Gram matrix.
    let tall = rows > cols;
    let mut x = if tall { g.transpose() } else { g };
    let norm = x.clone().powf_scalar(2.0).sum().sqrt().add_scalar(1e-7);
    x = x.div(norm.reshape([1, 1]));
    for _ in 0..steps {
        let gram = x.clone().matmul(x.clone().transpose());
        let poly = gram.clone().mul_scalar(b) + gram.clone().matmul(gram).mul_scalar(c);
        x = x.clone().mul_scalar(a) + poly.matmul(x);
    }
    if tall { x.transpose() } else { x }
}

/// One Muon step of the weight matrix `w` in Burn's `[inputs, outputs]` layout, with gradient
/// `g` and momentum `m`: `m <- lerp(m, g, 1 - beta)`, Nesterov `u = lerp(g, m, beta)`,
/// `w <- w (1 - lr wd) - lr sqrt(max(1, outputs / inputs)) NS5(u)`. Returns the new weights
/// and momentum.
pub fn muon_step(
    w: Tensor<2>,
    g: Tensor<2>,
    m: Tensor<2>,
    lr: f64,
    weight_decay: f64,
    beta: f64,
) -> (Tensor<2>, Tensor<2>) {
    let [inputs, outputs] = w.shape().dims::<2>();
    let m = m.mul_scalar(beta) + g.clone().mul_scalar(1.0 - beta);
    let u = g.mul_scalar(1.0 - beta) + m.clone().mul_scalar(beta);
    let scale = (outputs as f64 / inputs as f64).max(1.0).sqrt();
    let update = newton_schulz(u, 5).mul_scalar(scale);
    let w = w.mul_scalar(1.0 - lr * weight_decay) - update.mul_scalar(lr);
    (w, m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[derive(Module, Debug)]
    struct Quadratic {
        w: Param<Tensor<1>>,
    }

    /// One AdamW step by hand: with m = (1-b1) g and v = (1-b2) g^2, the bias-corrected update
    /// is lr * g / (|g| + eps), i.e. about lr in the direction of -g.
    #[test]
    fn first_step_moves_each_weight_by_about_lr() {
        let device = Device::flex().autodiff();
        let model = Quadratic {
            w: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![1.0f32, -2.0], [2]),
                &device,
            )),
        };
        let loss = model.w.val().square().sum();
        let grads = GradBuffer::from_grads(&model, &loss.backward());
        let mut optim = AdamW::new(OptimSpec {
            weight_decay: 0.0,
            grad_clip: 0.0,
            ..OptimSpec::default()
        });
        let (model, norm) = optim.step(model, &grads, 0.1);
        let expected_norm = (2.0f32 * 2.0 + 4.0 * 4.0).sqrt();
        assert!((norm - expected_norm).abs() < 1e-5, "grad norm {norm}");
        let w = model.w.val().into_data().try_to_vec::<f32>().unwrap();
        assert!((w[0] - 0.9).abs() < 1e-5, "w0 {}", w[0]);
        assert!((w[1] + 1.9).abs() < 1e-5, "w1 {}", w[1]);
    }
}
