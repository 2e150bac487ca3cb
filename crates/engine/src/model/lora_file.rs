//! Checkpoints of a model with LoRA adapters: the adapters only (a few MB for a 135M model),
//! as a safetensors file of the `lora_a` / `lora_b` parameters by path; the frozen weights are
//! read from the base checkpoint the spec names.

use super::{Llama, Model, ParamPath};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::store::RecordError;
use burn::tensor::{Tensor, TensorData};
use std::collections::BTreeMap;
use std::path::Path;

fn is_adapter(path: &str) -> bool {
    path.ends_with("lora_a") || path.ends_with("lora_b")
}

/// Collects the adapters' values by path.
struct Adapters {
    path: ParamPath,
    out: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
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

/// Replaces the adapters by the file's values and freezes every other parameter.
struct Restore<'a> {
    path: ParamPath,
    values: &'a BTreeMap<String, (Vec<usize>, Vec<f32>)>,
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
        let (id, tensor, mapper) = param.consume();
        if tensor.dims().as_slice() != shape.as_slice() {
            self.problems.push(format!(
                "adapter {name} has shape {shape:?}, the model needs {:?}",
                tensor.dims()
            ));
            return Param::from_mapped_value(id, tensor, mapper);
        }
        self.used += 1;
        let device = tensor.device();
        let value = Tensor::<D>::from_data(TensorData::new(values.clone(), shape.clone()), &device);
        Param::from_mapped_value(id, value, mapper)
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
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(RecordError::Validation(format!(
                "{}: adapter {name} is {:?}, not F32",
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
