//! Parameters as plain numbers: read out of a model by name, put back into one, and written to
//! or read from safetensors files.

use super::HfError;
use crate::model::Model;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// A float tensor as row-major `f32` values and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl Array {
    /// An array of `shape` from row-major `values` (their count must be the shape's product).
    pub fn new(shape: Vec<usize>, values: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Self { shape, values }
    }

    /// Zeros of `shape`.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self::new(shape, vec![0.0; n])
    }

    /// Rows and columns of a matrix (`None` for other ranks).
    fn matrix(&self) -> Option<(usize, usize)> {
        match self.shape[..] {
            [rows, cols] => Some((rows, cols)),
            _ => None,
        }
    }

    /// The transpose of a matrix.
    pub fn transpose(&self) -> Self {
        let (rows, cols) = self.matrix().expect("transpose takes a matrix");
        let mut values = vec![0.0; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                values[c * rows + r] = self.values[r * cols + c];
            }
        }
        Self::new(vec![cols, rows], values)
    }

    /// Columns `start..start + len` of a matrix.
    pub fn columns(&self, start: usize, len: usize) -> Self {
        let (rows, cols) = self.matrix().expect("columns of a matrix");
        let mut values = Vec::with_capacity(rows * len);
        for r in 0..rows {
            values.extend_from_slice(&self.values[r * cols + start..r * cols + start + len]);
        }
        Self::new(vec![rows, len], values)
    }

    /// Elements `start..start + len` of a vector.
    pub fn range(&self, start: usize, len: usize) -> Self {
        Self::new(vec![len], self.values[start..start + len].to_vec())
    }

    /// Matrices side by side (same rows): `[a | b | ...]`.
    pub fn hstack(parts: &[Array]) -> Self {
        let rows = parts[0].shape[0];
        let cols: usize = parts.iter().map(|p| p.shape[1]).sum();
        let mut values = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for p in parts {
                let c = p.shape[1];
                values.extend_from_slice(&p.values[r * c..(r + 1) * c]);
            }
        }
        Self::new(vec![rows, cols], values)
    }

    /// Vectors end to end.
    pub fn concat(parts: &[Array]) -> Self {
        let values: Vec<f32> = parts
            .iter()
            .flat_map(|p| p.values.iter().copied())
            .collect();
        Self::new(vec![values.len()], values)
    }

    /// The values as little-endian bytes.
    fn le_bytes(&self) -> Vec<u8> {
        self.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// Collects every float parameter with its path.
struct Collect {
    path: crate::model::ParamPath,
    out: BTreeMap<String, Array>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("converted to f32");
        self.out
            .insert(self.path.joined(), Array::new(shape, values));
    }
}

/// Every float parameter of `model` by its path in the module tree
/// (`blocks.0.attn.qkv.weight`, `ln_f.gamma`). Linear weights are `[in, out]`, as Burn keeps
/// them.
pub fn model_params(model: &Model) -> BTreeMap<String, Array> {
    let mut collect = Collect {
        path: crate::model::ParamPath::default(),
        out: BTreeMap::new(),
    };
    model.visit(&mut collect);
    collect.out
}

/// Replaces every float parameter by the array of the same path.
struct Replace<'a> {
    path: crate::model::ParamPath,
    params: &'a BTreeMap<String, Array>,
    used: BTreeSet<String>,
    problems: Vec<String>,
}

impl ModuleMapper for Replace<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.joined();
        let Some(array) = self.params.get(&name) else {
            self.problems.push(format!("no value for {name}"));
            return param;
        };
        self.used.insert(name.clone());
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims().to_vec();
        if dims != array.shape {
            self.problems.push(format!(
                "{name} has shape {:?}, the model needs {dims:?}",
                array.shape
            ));
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let device = tensor.device();
        let value = Tensor::<D>::from_data(
            TensorData::new(array.values.clone(), array.shape.clone()),
            &device,
        );
        Param::from_mapped_value(id, value, mapper)
    }
}

/// `model` with every parameter taken from `params` (by [`model_params`] path). Fails naming
/// each parameter with no value or a different shape, and each value the model has no place
/// for.
pub fn load_params(model: Model, params: &BTreeMap<String, Array>) -> Result<Model, Vec<String>> {
    let mut replace = Replace {
        path: crate::model::ParamPath::default(),
        params,
        used: BTreeSet::new(),
        problems: Vec::new(),
    };
    let model = model.map(&mut replace);
    let mut problems = replace.problems;
    problems.extend(
        params
            .keys()
            .filter(|k| !replace.used.contains(*k))
            .map(|k| format!("the model has no parameter {k}")),
    );
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(problems)
    }
}

/// An [`Array`] as safetensors writes it: `F32`, little-endian.
struct F32View {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &F32View {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `tensors` as an `F32` safetensors file with `metadata` (PyTorch's loaders want
/// `format: pt`).
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, Array>,
    metadata: &[(&str, &str)],
) -> Result<(), HfError> {
    let views: Vec<(String, F32View)> = tensors
        .iter()
        .map(|(name, a)| {
            (
                name.clone(),
                F32View {
                    shape: a.shape.clone(),
                    bytes: a.le_bytes(),
                },
            )
        })
        .collect();
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let bytes = safetensors::serialize(views.iter().map(|(n, v)| (n.as_str(), v)), Some(metadata))
        .map_err(|e| HfError::invalid(path, e.to_string()))?;
    super::write_file(path, &bytes)
}

/// Every tensor of a safetensors file as `f32` (F32, F16, BF16 and F64 are read; an integer
/// `position_ids` buffer is left out).
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, Array>, HfError> {
    let bytes = std::fs::read(path).map_err(|e| HfError::io(path, e))?;
    let file =
        SafeTensors::deserialize(&bytes).map_err(|e| HfError::invalid(path, e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            // BERT's `embeddings.position_ids` is an int64 buffer of 0..n, not a weight.
            _ if name.ends_with("position_ids") => continue,
            other => {
                return Err(HfError::invalid(
                    path,
                    format!("tensor {name} has dtype {other:?}; Hearth reads float tensors"),
                ));
            }
        };
        out.insert(name, Array::new(view.shape().to_vec(), values));
    }
    Ok(out)
}

/// An IEEE half-precision number as `f32` (exact: every half is an `f32`).
fn f16_to_f32(bits: u16) -> f32 {
    let exponent = (bits >> 10) & 0x1f;
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match exponent {
        // Zero and subnormals: mantissa * 2^-24.
        0 => mantissa as f32 * 2f32.powi(-24),
        0x1f if mantissa == 0 => f32::INFINITY,
        0x1f => f32::NAN,
        e => f32::from_bits(((u32::from(e) + 127 - 15) << 23) | (mantissa << 13)),
    };
    if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelSpec;
    use burn::tensor::Device;

    #[test]
    fn half_precision_reads_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn matrix_helpers_by_hand() {
        let a = Array::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(a.transpose().values, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(a.columns(1, 2).values, [2.0, 3.0, 5.0, 6.0]);
        let b = Array::hstack(&[a.columns(0, 1), a.columns(1, 2)]);
        assert_eq!(b, a);
    }

    #[test]
    fn parameters_are_named_by_path_and_load_back() {
        let device = Device::flex();
        let spec = ModelSpec {
            n_layer: 1,
            n_head: 2,
            d_model: 8,
            context: 4,
            bias: true,
            tie_weights: false,
            ..ModelSpec::default()
        };
        let model = Model::new(&spec, 5, &device);
        let params = model_params(&model);
        for name in [
            "tok_emb.weight",
            "pos_emb.weight",
            "blocks.0.ln_1.gamma",
            "blocks.0.ln_1.beta",
            "blocks.0.attn.qkv.weight",
            "blocks.0.attn.qkv.bias",
            "blocks.0.mlp.fc.weight",
            "ln_f.gamma",
            "lm_head.weight",
        ] {
            assert!(params.contains_key(name), "{name} in {:?}", params.keys());
        }
        assert_eq!(params["blocks.0.attn.qkv.weight"].shape, [8, 24]);
        let other = Model::new(&spec, 5, &device);
        let loaded = load_params(other, &params).unwrap();
        assert_eq!(model_params(&loaded), params);
        let mut extra = params.clone();
        extra.insert("nowhere.weight".into(), Array::zeros(vec![1]));
        let problems = load_params(Model::new(&spec, 5, &device), &extra).unwrap_err();
        assert_eq!(problems, ["the model has no parameter nowhere.weight"]);
    }

    #[test]
    fn safetensors_round_trip_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "a.weight".to_string(),
            Array::new(vec![2, 2], vec![1.0, -2.5, 3.0, 1e-8]),
        );
        tensors.insert("b".to_string(), Array::zeros(vec![3]));
        write_safetensors(&path, &tensors, &[("format", "pt")]).unwrap();
        assert_eq!(read_safetensors(&path).unwrap(), tensors);
        let bytes = std::fs::read(&path).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(
            meta.metadata().as_ref().unwrap().get("format").unwrap(),
            "pt"
        );
    }
}
