//! Checkpoints of a model with LoRA adapters: the adapters only (a few MB for a 135M model),
//! as a safetensors file of the `lora_a` / `lora_b` parameters by path; the frozen weights are
//! read from the base checkpoint the spec names.

use super::{Llama, Model, ParamPath};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::store::RecordError;
use burn::tensor::{Tensor, TensorData};
use std::collections::BTreeMap;
use std::path::Path;

/// Adapter values by parameter path: `(shape, row-major values)`.
type AdapterValues = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn is_adapter(path: &str) -> bool {
    path.ends_with("lora_a") || path.ends_with("lora_b")
}

/// Collects the adapters' values by path.
struct Adapters {
    path: ParamPath,
    out: AdapterValues,
}

impl ModuleVisitor for Adapters {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.joined();
        if !is_adapter(&name) {
            return;
        }
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.out.insert(name, (shape, values));
    }
}

/// Writes the adapters of `model` to `path` (safetensors, f32).
pub(super) fn save_adapters(model: &Model, path: &Path) -> Result<(), RecordError> {
    let mut adapters = Adapters {
        path: ParamPath::default(),
        out: BTreeMap::new(),
    };
    model.visit(&mut adapters);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = adapters
        .out
        .into_iter()
        .map(|(name, (shape, values))| {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| RecordError::Io(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let metadata = std::collections::HashMap::from([(
        "format".to_string(),
        "hearth-lora-adapters".to_string(),
    )]);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| RecordError::Io(e.to_string()))?;
    }
    safetensors::serialize_to_file(views, Some(metadata), path)
        .map_err(|e| RecordError::Io(format!("{}: {e}", path.display())))
}

/// The adapters of an adapter checkpoint by path: `(shape, values)`.
fn read_adapters(path: &Path) -> Result<AdapterValues, RecordError> {
    let bytes =
        std::fs::read(path).map_err(|e| RecordError::Io(format!("{}: {e}", path.display())))?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        RecordError::Io(format!(
            "{}: not an adapter checkpoint ({e})",
            path.display()
        ))
    })?;
    let mut values = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 || !is_adapter(&name) {
            return Err(RecordError::Validation(format!(
                "{}: {name} ({:?}) is not an F32 adapter",
                path.display(),
                view.dtype()
            )));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        values.insert(name, (view.shape().to_vec(), data));
    }
    Ok(values)
}

/// Whether `path` is an adapter checkpoint that reads whole.
pub fn adapter_file_reads(path: &Path) -> bool {
    read_adapters(path).is_ok_and(|v| !v.is_empty())
}

/// Replaces the adapters by the file's values and freezes every other parameter.
struct Restore<'a> {
    path: ParamPath,
    values: &'a AdapterValues,
    problems: Vec<String>,
    used: usize,
}

impl ModuleMapper for Restore<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.joined();
        if !is_adapter(&name) {
            return param.set_require_grad(false);
        }
        let Some((shape, values)) = self.values.get(&name) else {
            self.problems.push(format!("no adapter {name}"));
            return param;
        };
        if param.dims().as_slice() != shape.as_slice() {
            self.problems.push(format!(
                "adapter {name} has shape {shape:?}, the model needs {:?}",
                param.dims()
            ));
            return param;
        }
        self.used += 1;
        // Loaded as a checkpoint is: on the parameter's device, still trained.
        let value = Tensor::<D>::from_data(
            TensorData::new(values.clone(), shape.clone()),
            &param.lazy_device(),
        );
        let id = param.id;
        param.transform_for_load(value, id)
    }
}

/// Freezes every parameter but the adapters.
struct FreezeBase {
    path: ParamPath,
}

impl ModuleMapper for FreezeBase {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if is_adapter(&self.path.joined()) {
            param
        } else {
            param.set_require_grad(false)
        }
    }
}

/// `model` (with adapters) with its frozen weights read from its base checkpoint (the
/// adapters as they are).
pub(super) fn load_base(model: Llama) -> Result<Llama, RecordError> {
    let base = model
        .lora_base()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| RecordError::Validation("the adapters name no base checkpoint".into()))?;
    let record = burn::store::ModuleRecord::load(&base)
        .map_err(|e| RecordError::Io(format!("base checkpoint {}: {e}", base.display())))?
        .allow_partial(true);
    Ok(model.try_load_record(record)?.map(&mut FreezeBase {
        path: ParamPath::default(),
    }))
}

/// `model` (with adapters) with its frozen weights from its base checkpoint and its adapters
/// from `path`.
pub(super) fn load_adapters(model: Llama, path: &Path) -> Result<Model, RecordError> {
    let model = load_base(model)?;
    let values = read_adapters(path)?;
    let mut restore = Restore {
        path: ParamPath::default(),
        values: &values,
        problems: Vec::new(),
        used: 0,
    };
    let model = Model::Llama(model).map(&mut restore);
    if restore.used != values.len() {
        restore.problems.push(format!(
            "{} adapters in the file, {} in the model",
            values.len(),
            restore.used
        ));
    }
    if restore.problems.is_empty() {
        Ok(model)
    } else {
        Err(RecordError::Validation(format!(
            "{}: {}",
            path.display(),
            restore.problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, LoraSpec, ModelSpec};
    use burn::tensor::Int;

    /// Names of the parameters that train.
    struct Trainable(ParamPath, Vec<String>);

    impl ModuleVisitor for Trainable {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.0.enter(name, container_type);
        }
        fn exit_module(&mut self, _: &str, container_type: &str) {
            self.0.exit(container_type);
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.val().is_require_grad() {
                self.1.push(self.0.joined());
            }
        }
    }

    fn trainable(model: &Model) -> Vec<String> {
        let mut t = Trainable(ParamPath::default(), Vec::new());
        model.visit(&mut t);
        t.1
    }

    #[test]
    fn adapters_save_alone_and_load_back_trainable_on_their_frozen_base() {
        let dir = tempfile::tempdir().unwrap();
        let device = burn::tensor::Device::flex().autodiff();
        let base_spec = ModelSpec {
            family: Family::Llama,
            n_layer: 2,
            n_head: 4,
            d_model: 32,
            context: 16,
            ..ModelSpec::default()
        };
        let base_path = dir.path().join("base.bpk");
        Model::new(&base_spec, 50, &device)
            .save_file(&base_path)
            .unwrap();
        let spec = ModelSpec {
            lora: Some(LoraSpec {
                rank: 2,
                targets: vec!["q".into(), "down".into()],
                base: base_path.clone(),
                ..LoraSpec::default()
            }),
            ..base_spec.clone()
        };
        let model = Model::new(&spec, 50, &device).load_lora_base().unwrap();
        let names = trainable(&model);
        assert_eq!(names.len(), 8, "{names:?}");
        assert!(names.iter().all(|n| is_adapter(n)), "{names:?}");
        let path = dir.path().join("adapters.bpk");
        model.clone().save_file(&path).unwrap();
        assert!(
            std::fs::metadata(&path).unwrap().len() * 4
                < std::fs::metadata(&base_path).unwrap().len(),
            "the checkpoint holds the adapters alone"
        );
        let loaded = Model::new(&spec, 50, &device).try_load_file(&path).unwrap();
        assert_eq!(
            trainable(&loaded),
            names,
            "the adapters train after loading"
        );
        let x = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [1, 4]), &device);
        let (a, b) = (model.forward(x.clone()), loaded.forward(x.clone()));
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
        // A step's gradients reach the adapters.
        let loss = loaded.forward(x).sum();
        let grads = loss.backward();
        let _ = grads;
    }
}
