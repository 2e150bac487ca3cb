//! Writing a GGUF version 3 file: metadata, then tensor infos, then each tensor's data at a
//! multiple of the alignment (32, or `general.alignment` when set).
//!
//! Tensors are collected first (borrowed, owned, or produced on demand by a closure) and
//! converted a chunk at a time while the file is written; a tensor produced on demand is in
//! memory only while it is being written, so an exporter can hand over a whole model without
//! holding a second copy of it.

use super::{DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GgmlType, GgufError, GgufValue, quant};
use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

/// The longest tensor name llama.cpp accepts, in bytes (`GGML_MAX_NAME` less the final NUL).
pub const MAX_NAME_BYTES: usize = 63;

/// How a tensor given as `f32`s is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorDtype {
    /// As `f32`s.
    F32,
    /// Rounded to IEEE half floats (to nearest, ties to even, as NumPy's `astype(float16)`).
    F16,
}

impl TensorDtype {
    fn ggml_type(self) -> GgmlType {
        match self {
            TensorDtype::F32 => GgmlType::F32,
            TensorDtype::F16 => GgmlType::F16,
        }
    }
}

/// A tensor's values as handed to the writer.
enum Data<'a> {
    /// `f32`s to store as `dtype`.
    Floats(TensorDtype, Cow<'a, [f32]>),
    /// `f32`s produced while the file is written.
    Lazy(TensorDtype, Box<dyn FnOnce() -> Vec<f32> + 'a>),
    /// Bytes already in the tensor's ggml type.
    Raw(Cow<'a, [u8]>),
}

struct Pending<'a> {
    name: String,
    /// Innermost first, as stored.
    dims: Vec<u64>,
    ggml_type: GgmlType,
    n_elements: u64,
    data: Data<'a>,
}

/// Collects metadata and tensors, then writes them as a GGUF version 3 file with
/// [`GgufWriter::write`].
///
/// ```no_run
/// # use std::path::Path;
/// # use hearth_engine::gguf::{GgufWriter, TensorDtype};
/// let weights = vec![0.5f32; 6];
/// let mut w = GgufWriter::new();
/// w.set_str("general.architecture", "llama");
/// w.set_u32("llama.block_count", 1);
/// w.add_tensor("output_norm.weight", &[2, 3], TensorDtype::F16, &weights[..])?;
/// w.write(Path::new("model.gguf"))?;
/// # Ok::<(), hearth_engine::gguf::GgufError>(())
/// ```
#[derive(Default)]
pub struct GgufWriter<'a> {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<Pending<'a>>,
}

impl<'a> GgufWriter<'a> {
    /// A writer with no metadata and no tensors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing an earlier value in place. Keys are written in the
    /// order they were first set.
    pub fn set(&mut self, key: impl Into<String>, value: GgufValue) {
        let key = key.into();
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// The value set for `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets a string.
    pub fn set_str(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.set(key, GgufValue::String(value.into()));
    }

    /// Sets a `u32`.
    pub fn set_u32(&mut self, key: impl Into<String>, value: u32) {
        self.set(key, GgufValue::U32(value));
    }

    /// Sets an `i32`.
    pub fn set_i32(&mut self, key: impl Into<String>, value: i32) {
        self.set(key, GgufValue::I32(value));
    }

    /// Sets a `u64`.
    pub fn set_u64(&mut self, key: impl Into<String>, value: u64) {
        self.set(key, GgufValue::U64(value));
    }

    /// Sets an `f32`.
    pub fn set_f32(&mut self, key: impl Into<String>, value: f32) {
        self.set(key, GgufValue::F32(value));
    }

    /// Sets a boolean.
    pub fn set_bool(&mut self, key: impl Into<String>, value: bool) {
        self.set(key, GgufValue::Bool(value));
    }

    /// Sets an array of strings.
    pub fn set_str_array<S: Into<String>>(
        &mut self,
        key: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) {
        self.set(key, GgufValue::string_array(values));
    }

    /// Sets an array of `i32`s.
    pub fn set_i32_array(&mut self, key: impl Into<String>, values: impl IntoIterator<Item = i32>) {
        self.set(key, GgufValue::i32_array(values));
    }

    /// Sets an array of `f32`s.
    pub fn set_f32_array(&mut self, key: impl Into<String>, values: impl IntoIterator<Item = f32>) {
        self.set(key, GgufValue::f32_array(values));
    }

    /// Adds a tensor of PyTorch shape `shape` (outermost first) whose row-major values are
    /// `data`, stored as `dtype`. `data` may be borrowed (`&[f32]`) or owned (`Vec<f32>`).
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        dtype: TensorDtype,
        data: impl Into<Cow<'a, [f32]>>,
    ) -> Result<(), GgufError> {
        let name = name.into();
        let data = data.into();
        let (dims, n) = self.check(&name, shape, dtype.ggml_type())?;
        if data.len() as u64 != n {
            return Err(bad(
                &name,
                format!("shape {shape:?} holds {n} values, the data {}", data.len()),
            ));
        }
        self.push(name, dims, dtype.ggml_type(), n, Data::Floats(dtype, data));
        Ok(())
    }

    /// Adds a tensor whose values `produce` returns while the file is written, so that only
    /// one such tensor is in memory at a time. A length that does not fit `shape` fails
    /// [`GgufWriter::write`].
    pub fn add_tensor_with(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        dtype: TensorDtype,
        produce: impl FnOnce() -> Vec<f32> + 'a,
    ) -> Result<(), GgufError> {
        let name = name.into();
        let (dims, n) = self.check(&name, shape, dtype.ggml_type())?;
        self.push(
            name,
            dims,
            dtype.ggml_type(),
            n,
            Data::Lazy(dtype, Box::new(produce)),
        );
        Ok(())
    }

    /// Adds a tensor already encoded in ggml type `ggml_type` (for example blocks copied
    /// from another GGUF file). `shape` is in PyTorch order; its last dimension must be a
    /// whole number of blocks.
    pub fn add_raw_tensor(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        ggml_type: GgmlType,
        bytes: impl Into<Cow<'a, [u8]>>,
    ) -> Result<(), GgufError> {
        let name = name.into();
        let bytes = bytes.into();
        let (dims, n) = self.check(&name, shape, ggml_type)?;
        let want = quant::byte_len(ggml_type, n).unwrap_or(u64::MAX);
        if bytes.len() as u64 != want {
            return Err(bad(
                &name,
                format!(
                    "shape {shape:?} of {ggml_type} takes {want} bytes, the data {}",
                    bytes.len()
                ),
            ));
        }
        self.push(name, dims, ggml_type, n, Data::Raw(bytes));
        Ok(())
    }

    fn push(&mut self, name: String, dims: Vec<u64>, ggml_type: GgmlType, n: u64, data: Data<'a>) {
        self.tensors.push(Pending {
            name,
            dims,
            ggml_type,
            n_elements: n,
            data,
        });
    }

    /// Checks a new tensor's name and shape; returns its stored dims and element count.
    fn check(
        &self,
        name: &str,
        shape: &[usize],
        ggml_type: GgmlType,
    ) -> Result<(Vec<u64>, u64), GgufError> {
        if name.len() > MAX_NAME_BYTES {
            return Err(bad(
                name,
                format!("the name is longer than {MAX_NAME_BYTES} bytes, which llama.cpp refuses"),
            ));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(bad(name, "a tensor of that name was already added".into()));
        }
        if shape.len() > 4 {
            return Err(bad(
                name,
                format!("shape {shape:?} has more than the 4 dimensions GGUF allows"),
            ));
        }
        // A scalar is stored as one dimension of 1.
        let dims: Vec<u64> = if shape.is_empty() {
            vec![1]
        } else {
            shape.iter().rev().map(|&d| d as u64).collect()
        };
        let n = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(name, format!("shape {shape:?} overflows")))?;
        if !dims[0].is_multiple_of(ggml_type.block_size() as u64) {
            return Err(bad(
                name,
                format!(
                    "rows of {} values are not a whole number of {ggml_type} blocks of {}",
                    dims[0],
                    ggml_type.block_size()
                ),
            ));
        }
        Ok((dims, n))
    }

    /// Writes the file at `path` (replacing it), converting each tensor as it goes.
    pub fn write(self, path: &Path) -> Result<(), GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |message: String| GgufError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let alignment = match self.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v {
                GgufValue::U32(a) if a.is_power_of_two() => u64::from(*a),
                _ => {
                    return Err(invalid(format!(
                        "general.alignment must be a u32 power of two, not {v:?}"
                    )));
                }
            },
        };

        let mut header = Vec::new();
        header.extend_from_slice(&GGUF_MAGIC);
        header.extend_from_slice(&GGUF_VERSION.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut header, key);
            header.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut header, value)
                .map_err(|m| invalid(format!("metadata key {key}: {m}")))?;
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            put_string(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            let size = quant::byte_len(t.ggml_type, t.n_elements).expect("checked when added");
            offset = (offset + size).next_multiple_of(alignment);
        }
        header.resize(
            (header.len() as u64).next_multiple_of(alignment) as usize,
            0,
        );

        let file = std::fs::File::create(path).map_err(io)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        w.write_all(&header).map_err(io)?;
        let mut written = 0u64;
        let mut buf = Vec::new();
        for (t, start) in self.tensors.into_iter().zip(offsets) {
            let pad = start - written;
            w.write_all(&vec![0u8; pad as usize]).map_err(io)?;
            written = start;
            let size = match t.data {
                Data::Raw(bytes) => {
                    w.write_all(&bytes).map_err(io)?;
                    bytes.len() as u64
                }
                Data::Floats(dtype, values) => {
                    write_floats(&mut w, &mut buf, dtype, &values).map_err(io)?
                }
                Data::Lazy(dtype, produce) => {
                    let values = produce();
                    if values.len() as u64 != t.n_elements {
                        return Err(bad(
                            &t.name,
                            format!(
                                "shape {:?} holds {} values, the data {}",
                                t.dims.iter().rev().collect::<Vec<_>>(),
                                t.n_elements,
                                values.len()
                            ),
                        ));
                    }
                    write_floats(&mut w, &mut buf, dtype, &values).map_err(io)?
                }
            };
            written += size;
        }
        w.flush().map_err(io)?;
        Ok(())
    }
}

fn bad(name: &str, message: String) -> GgufError {
    GgufError::BadTensor {
        name: name.to_string(),
        message,
    }
}

/// Writes `values` as `dtype`, a chunk at a time; returns the bytes written.
fn write_floats(
    w: &mut impl Write,
    buf: &mut Vec<u8>,
    dtype: TensorDtype,
    values: &[f32],
) -> std::io::Result<u64> {
    let mut total = 0u64;
    for chunk in values.chunks(1 << 16) {
        buf.clear();
        match dtype {
            TensorDtype::F32 => chunk
                .iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes())),
            TensorDtype::F16 => chunk
                .iter()
                .for_each(|v| buf.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
        }
        w.write_all(buf)?;
        total += buf.len() as u64;
    }
    Ok(total)
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends `value` (without its type id); fails on an array whose elements are not all of its
/// element type.
fn put_value(out: &mut Vec<u8>, value: &GgufValue) -> Result<(), String> {
    match value {
        GgufValue::U8(v) => out.push(*v),
        GgufValue::I8(v) => out.push(*v as u8),
        GgufValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::Bool(v) => out.push(u8::from(*v)),
        GgufValue::String(s) => put_string(out, s),
        GgufValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::Array(elem, items) => {
            out.extend_from_slice(&elem.id().to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for (i, item) in items.iter().enumerate() {
                if item.value_type() != *elem {
                    return Err(format!(
                        "array of {elem:?} has element {i} of type {:?}",
                        item.value_type()
                    ));
                }
                put_value(out, item)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{has_gguf_py, has_transformers, python, trained_bpe_json};
    use super::super::{GgufFile, GgufValueType, write_tokenizer_metadata};
    use super::*;

    /// One key of every value type, a nested and an empty array, and tensors of each kind.
    fn everything(w: &mut GgufWriter<'_>) {
        w.set_str("general.architecture", "test");
        w.set("t.u8", GgufValue::U8(200));
        w.set("t.i8", GgufValue::I8(-100));
        w.set("t.u16", GgufValue::U16(60000));
        w.set("t.i16", GgufValue::I16(-30000));
        w.set_u32("t.u32", 4_000_000_000);
        w.set_i32("t.i32", -2_000_000_000);
        w.set_f32("t.f32", 1.5);
        w.set_bool("t.bool", true);
        w.set_str("t.str", "h\u{e9}llo \u{2603}");
        w.set_u64("t.u64", (1 << 63) + 5);
        w.set("t.i64", GgufValue::I64(-(1 << 62)));
        w.set("t.f64", GgufValue::F64(std::f64::consts::PI));
        w.set_str_array("t.arr_str", ["a", "bc", ""]);
        w.set_i32_array("t.arr_i32", [1, -2, 3]);
        w.set_f32_array("t.arr_f32", [0.5, -1.25]);
        w.set(
            "t.nested",
            GgufValue::Array(
                GgufValueType::Array,
                vec![GgufValue::i32_array([1, 2]), GgufValue::i32_array([3])],
            ),
        );
        w.set("t.empty", GgufValue::Array(GgufValueType::U32, vec![]));
    }

    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 - 7.0) / 3.0).collect()
    }

    fn write_everything(path: &Path) {
        let data = ramp(2 * 3 * 64);
        let mut w = GgufWriter::new();
        everything(&mut w);
        w.add_tensor("a", &[2, 3, 64], TensorDtype::F32, &data[..])
            .unwrap();
        w.add_tensor(
            "b",
            &[5],
            TensorDtype::F16,
            vec![1.0, -2.5, 1e-3, 65504.0, 0.1],
        )
        .unwrap();
        w.add_tensor_with("c", &[3, 32], TensorDtype::F16, || ramp(96))
            .unwrap();
        let mut q8 = vec![0u8; 34];
        q8[..2].copy_from_slice(&half::f16::from_f32(0.25).to_le_bytes());
        q8[2] = 4;
        w.add_raw_tensor("d", &[32], GgmlType::Q8_0, q8).unwrap();
        w.write(path).unwrap();
    }

    #[test]
    fn reads_back_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gguf");
        write_everything(&path);
        let f = GgufFile::open(&path).unwrap();
        let mut w = GgufWriter::new();
        everything(&mut w);
        assert_eq!(f.metadata().len(), w.metadata.len());
        for (key, value) in &w.metadata {
            assert_eq!(&f.metadata()[key], value, "{key}");
        }
        assert_eq!(f.version(), 3);
        assert_eq!(f.tensor("a").unwrap().dims, vec![64, 3, 2]);
        assert_eq!(f.tensor_f32("a").unwrap(), ramp(384));
        let b = f.tensor_f32("b").unwrap();
        assert_eq!(b[..2], [1.0, -2.5]);
        assert_eq!(b[2], half::f16::from_f32(1e-3).to_f32());
        let c = f.tensor_f32("c").unwrap();
        assert!(
            ramp(96)
                .iter()
                .zip(&c)
                .all(|(x, y)| (x - y).abs() <= x.abs() / 1024.0)
        );
        let d = f.tensor_f32("d").unwrap();
        assert_eq!((d[0], d[1]), (1.0, 0.0));
        for t in f.tensors() {
            assert_eq!((f.data_offset() + t.offset) % 32, 0, "{}", t.name);
        }
    }

    #[test]
    fn refuses_tensors_that_do_not_fit() {
        let mut w = GgufWriter::new();
        let err = w
            .add_tensor("x", &[2, 3], TensorDtype::F32, vec![0.0; 5])
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tensor x: shape [2, 3] holds 6"),
            "{err}"
        );
        w.add_tensor("x", &[1], TensorDtype::F32, vec![0.0])
            .unwrap();
        let err = w
            .add_tensor("x", &[1], TensorDtype::F32, vec![0.0])
            .unwrap_err();
        assert!(err.to_string().contains("already"), "{err}");
        let err = w
            .add_raw_tensor("q", &[16], GgmlType::Q8_0, vec![0u8; 17])
            .unwrap_err();
        assert!(err.to_string().contains("Q8_0"), "{err}");
        let long = "x".repeat(64);
        assert!(
            w.add_tensor(long, &[1], TensorDtype::F32, vec![0.0])
                .is_err()
        );
        w.add_tensor_with("lazy", &[4], TensorDtype::F32, || vec![0.0; 3])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = w.write(&dir.path().join("bad.gguf")).unwrap_err();
        assert!(err.to_string().starts_with("tensor lazy:"), "{err}");
    }

    /// Prints what gguf-py's `GGUFReader` reads: every field's types and contents, and every
    /// tensor's name, type, PyTorch shape and values.
    const GGUF_PY_DUMP: &str = r#"
import sys, json, gguf
from gguf.quants import dequantize
r = gguf.GGUFReader(sys.argv[1])
fields = {}
for k, f in r.fields.items():
    if k.startswith("GGUF."):
        continue
    fields[k] = [[int(t) for t in f.types], f.contents()]
tensors = [[t.name, t.tensor_type.name, [int(d) for d in reversed(t.shape)],
            [float(v) for v in dequantize(t.data, t.tensor_type).ravel()]] for t in r.tensors]
print(json.dumps({"fields": fields, "tensors": tensors, "alignment": r.alignment}))
"#;

    #[test]
    fn gguf_py_reads_what_it_writes() {
        if !has_gguf_py("gguf_py_reads_what_it_writes") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gguf");
        write_everything(&path);
        let out = python(GGUF_PY_DUMP, &[path.to_str().unwrap()]);
        let dump: serde_json::Value = serde_json::from_str(&out).unwrap();
        let fields = &dump["fields"];
        let ty = |k: &str| fields[k][0].clone();
        let val = |k: &str| fields[k][1].clone();
        use serde_json::json;
        assert_eq!((ty("t.u8"), val("t.u8")), (json!([0]), json!(200)));
        assert_eq!((ty("t.i8"), val("t.i8")), (json!([1]), json!(-100)));
        assert_eq!((ty("t.u16"), val("t.u16")), (json!([2]), json!(60000)));
        assert_eq!((ty("t.i16"), val("t.i16")), (json!([3]), json!(-30000)));
        assert_eq!(
            (ty("t.u32"), val("t.u32")),
            (json!([4]), json!(4_000_000_000u32))
        );
        assert_eq!(
            (ty("t.i32"), val("t.i32")),
            (json!([5]), json!(-2_000_000_000))
        );
        assert_eq!((ty("t.f32"), val("t.f32")), (json!([6]), json!(1.5)));
        assert_eq!((ty("t.bool"), val("t.bool")), (json!([7]), json!(true)));
        assert_eq!(
            (ty("t.str"), val("t.str")),
            (json!([8]), json!("h\u{e9}llo \u{2603}"))
        );
        assert_eq!(
            (ty("t.u64"), val("t.u64")),
            (json!([10]), json!((1u64 << 63) + 5))
        );
        assert_eq!(
            (ty("t.i64"), val("t.i64")),
            (json!([11]), json!(-(1i64 << 62)))
        );
        assert_eq!(
            (ty("t.f64"), val("t.f64")),
            (json!([12]), json!(std::f64::consts::PI))
        );
        assert_eq!(
            (ty("t.arr_str"), val("t.arr_str")),
            (json!([9, 8]), json!(["a", "bc", ""]))
        );
        assert_eq!(
            (ty("t.arr_i32"), val("t.arr_i32")),
            (json!([9, 5]), json!([1, -2, 3]))
        );
        assert_eq!(
            (ty("t.arr_f32"), val("t.arr_f32")),
            (json!([9, 6]), json!([0.5, -1.25]))
        );
        assert_eq!(ty("t.nested"), json!([9, 9, 5]));
        assert_eq!((ty("t.empty"), val("t.empty")), (json!([9]), json!([])));
        assert_eq!(val("general.architecture"), json!("test"));
        assert_eq!(dump["alignment"], json!(32));

        let tensors = dump["tensors"].as_array().unwrap();
        let names: Vec<_> = tensors.iter().map(|t| t[0].as_str().unwrap()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(tensors[0][1], "F32");
        assert_eq!(tensors[0][2], json!([2, 3, 64]));
        let a: Vec<f32> = serde_json::from_value(tensors[0][3].clone()).unwrap();
        assert_eq!(a, ramp(384));
        assert_eq!(
            (tensors[1][1].as_str(), &tensors[1][2]),
            (Some("F16"), &json!([5]))
        );
        let b: Vec<f32> = serde_json::from_value(tensors[1][3].clone()).unwrap();
        let f = GgufFile::open(&path).unwrap();
        assert_eq!(b, f.tensor_f32("b").unwrap());
        assert_eq!(tensors[2][2], json!([3, 32]));
        assert_eq!(
            (tensors[3][1].as_str(), &tensors[3][3][0]),
            (Some("Q8_0"), &json!(1.0))
        );
    }

    /// Loads a GGUF with transformers; prints its config, a few weights (as lists), the logits'
    /// finiteness and the ids its tokenizer gives `sys.argv[3:]`.
    const TRANSFORMERS_LOAD: &str = r#"
import sys, json, os, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, name = os.path.split(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
sd = model.state_dict()
pick = ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.v_proj.weight",
        "model.layers.0.input_layernorm.weight"]
with torch.no_grad():
    logits = model(torch.tensor([tok(sys.argv[2])["input_ids"]])).logits
print(json.dumps({
    "config": {k: getattr(model.config, k) for k in ["num_hidden_layers", "hidden_size",
               "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size"]},
    "weights": {k: sd[k].flatten().tolist() for k in pick},
    "finite": bool(torch.isfinite(logits).all()),
    "ids": [tok(s)["input_ids"] for s in sys.argv[2:]],
}))
"#;

    #[test]
    fn transformers_loads_a_written_llama() {
        if !has_transformers("transformers_loads_a_written_llama") {
            return;
        }
        let json = trained_bpe_json();
        let hf: tokenizers::Tokenizer = json.parse().unwrap();
        let vocab = hf.get_vocab_size(true);
        let (d, ff, layers, heads, kv_heads) = (64usize, 96usize, 2usize, 4u32, 2u32);
        let kv = d / heads as usize * kv_heads as usize;
        let weight = |n: usize, seed: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 1000.0 - 0.5) * 0.2)
                .collect()
        };
        let embed = weight(vocab * d, 1);
        let down = weight(d * ff, 2);
        let norm: Vec<f32> = (0..d).map(|i| 1.0 + i as f32 / 100.0).collect();
        let mut w = GgufWriter::new();
        w.set_str("general.architecture", "llama");
        w.set_str("general.name", "tiny");
        w.set_u32("llama.context_length", 128);
        w.set_u32("llama.embedding_length", d as u32);
        w.set_u32("llama.block_count", layers as u32);
        w.set_u32("llama.feed_forward_length", ff as u32);
        w.set_u32("llama.rope.dimension_count", d as u32 / heads);
        w.set_u32("llama.attention.head_count", heads);
        w.set_u32("llama.attention.head_count_kv", kv_heads);
        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
        w.set_f32("llama.rope.freq_base", 10000.0);
        w.set_u32("llama.vocab_size", vocab as u32);
        let im_end = hf.token_to_id("<|im_end|>");
        write_tokenizer_metadata(&mut w, &json, None, im_end, im_end, Some("{{ messages }}"))
            .unwrap();
        w.add_tensor(
            "token_embd.weight",
            &[vocab, d],
            TensorDtype::F32,
            &embed[..],
        )
        .unwrap();
        w.add_tensor("output_norm.weight", &[d], TensorDtype::F32, &norm[..])
            .unwrap();
        w.add_tensor(
            "output.weight",
            &[vocab, d],
            TensorDtype::F16,
            weight(vocab * d, 3),
        )
        .unwrap();
        for l in 0..layers {
            let shapes: [(&str, [usize; 2]); 7] = [
                ("attn_q", [d, d]),
                ("attn_k", [kv, d]),
                ("attn_v", [kv, d]),
                ("attn_output", [d, d]),
                ("ffn_gate", [ff, d]),
                ("ffn_up", [ff, d]),
                ("ffn_down", [d, ff]),
            ];
            for (k, (name, shape)) in shapes.into_iter().enumerate() {
                let data = if name == "ffn_down" {
                    down.clone()
                } else {
                    weight(shape[0] * shape[1], 10 + 10 * l + k)
                };
                w.add_tensor(
                    format!("blk.{l}.{name}.weight"),
                    &shape,
                    TensorDtype::F16,
                    data,
                )
                .unwrap();
            }
            for name in ["attn_norm", "ffn_norm"] {
                w.add_tensor(
                    format!("blk.{l}.{name}.weight"),
                    &[d],
                    TensorDtype::F32,
                    &norm[..],
                )
                .unwrap();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        w.write(&path).unwrap();

        let texts = [
            "The quick brown fox",
            "<|im_start|>user\nhello<|im_end|>\n",
            "café 12345 <think>",
        ];
        let mut args = vec![path.to_str().unwrap()];
        args.extend(texts);
        let out: serde_json::Value =
            serde_json::from_str(&python(TRANSFORMERS_LOAD, &args)).unwrap();
        assert_eq!(
            out["config"],
            serde_json::json!({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": vocab})
        );
        assert_eq!(out["finite"], true);
        let weights =
            |k: &str| -> Vec<f32> { serde_json::from_value(out["weights"][k].clone()).unwrap() };
        let f16 = |v: Vec<f32>| -> Vec<f32> {
            v.into_iter()
                .map(|x| half::f16::from_f32(x).to_f32())
                .collect()
        };
        assert_eq!(weights("model.embed_tokens.weight"), embed);
        assert_eq!(weights("lm_head.weight"), f16(weight(vocab * d, 3)));
        assert_eq!(weights("model.norm.weight"), norm);
        assert_eq!(weights("model.layers.0.input_layernorm.weight"), norm);
        assert_eq!(weights("model.layers.1.mlp.down_proj.weight"), f16(down));
        assert_eq!(
            weights("model.layers.0.self_attn.v_proj.weight"),
            f16(weight(kv * d, 12))
        );
        for (text, ids) in texts.iter().zip(out["ids"].as_array().unwrap()) {
            let ours = hf.encode(*text, false).unwrap().get_ids().to_vec();
            let theirs: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
            assert_eq!(ours, theirs, "{text:?}");
        }
    }
}
