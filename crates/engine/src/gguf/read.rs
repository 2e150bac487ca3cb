//! Reading a GGUF file: the header, the metadata and the tensor infos are parsed when the file
//! is opened, and every tensor's extent is checked against the file's length then; tensor data
//! is read from the memory map on demand.

use super::{DEFAULT_ALIGNMENT, GGUF_MAGIC, GgmlType, GgufError, GgufValue, GgufValueType, quant};
use memmap2::Mmap;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The most dimensions a tensor has (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// How deep arrays of arrays may nest before a file is refused.
const MAX_ARRAY_DEPTH: usize = 8;

/// One tensor as the file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name (`blk.0.attn_q.weight`, ...).
    pub name: String,
    /// Its dimensions as stored: innermost first, so `dims[0]` is the length of a row.
    pub dims: Vec<u64>,
    /// Its type.
    pub ggml_type: GgmlType,
    /// Where its data starts, counted from the start of the data section.
    pub offset: u64,
    /// The size of its data in bytes.
    pub size: u64,
}

impl TensorInfo {
    /// Its shape in PyTorch's order, outermost first (`dims` reversed): a `[rows, columns]`
    /// matrix has `dims == [columns, rows]`.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// How many weights it holds.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// The bytes of an open file.
enum Bytes {
    /// Memory-mapped (the usual case).
    Mapped(Mmap),
    /// Read into memory, where the file cannot be mapped.
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An open GGUF file: its metadata and tensor infos parsed and checked, its tensor data mapped.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens `path`, parses its header, metadata and tensor infos, and checks that every
    /// tensor lies inside the file.
    ///
    /// Refuses a file that does not start with `GGUF` ([`GgufError::BadMagic`]), a version
    /// other than 2 or 3, a file cut short anywhere ([`GgufError::Truncated`], naming the
    /// metadata key or tensor being read), a tensor type id ggml does not have
    /// ([`GgufError::UnknownType`]) and malformed structure ([`GgufError::Invalid`]).
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is only read through shared slices. Another process truncating or
        // rewriting the file while it is open would change what those slices see (the hazard
        // of every memory-mapped reader, llama.cpp's included); model files are not written
        // while being read.
        #[allow(unsafe_code)]
        let mapped = unsafe { Mmap::map(&file) };
        let bytes = match mapped {
            Ok(m) => Bytes::Mapped(m),
            Err(_) => Bytes::Owned(std::fs::read(path).map_err(io)?),
        };
        Self::parse(path.to_path_buf(), bytes)
    }

    fn parse(path: PathBuf, bytes: Bytes) -> Result<Self, GgufError> {
        let mut r = Reader {
            bytes: &bytes,
            pos: 0,
            path: &path,
        };
        let header = || "the header".to_string();
        if bytes.len() >= 4 && bytes[..4] != GGUF_MAGIC {
            return Err(GgufError::BadMagic { path: path.clone() });
        }
        r.take(4, header)?;
        let version = r.u32(header)?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion {
                path: path.clone(),
                version,
            });
        }
        let n_tensors = r.u64(header)?;
        let n_kv = r.u64(header)?;

        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = r.string(|| format!("the key of metadata entry {i}"))?;
            let what = || format!("metadata key {key}");
            let ty = r.u32(what)?;
            let value = r.value(ty, &key, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(r.invalid(format!("metadata key {key} appears twice")));
            }
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a.is_power_of_two() => a,
                _ => {
                    return Err(GgufError::Metadata {
                        path: path.clone(),
                        key: "general.alignment".into(),
                        message: format!("{v:?} is not a power of two"),
                    });
                }
            },
        };

        // Each tensor info takes at least 8 (name length) + 4 (dimensions) + 4 (type) + 8
        // (offset) bytes.
        if n_tensors > (bytes.len() as u64) / 24 {
            return Err(GgufError::Truncated {
                path: path.clone(),
                what: format!("the tensor infos (the header promises {n_tensors} tensors)"),
            });
        }
        let mut infos = Vec::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = r.string(|| format!("the name of tensor {i}"))?;
            let what = || format!("the info of tensor {name}");
            let n_dims = r.u32(what)?;
            if n_dims > MAX_DIMS {
                return Err(r.invalid(format!(
                    "tensor {name} has {n_dims} dimensions; GGUF allows at most {MAX_DIMS}"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(what)?);
            }
            let type_id = r.u32(what)?;
            let offset = r.u64(what)?;
            infos.push((name, dims, type_id, offset));
        }
        let data_offset = r.pos.next_multiple_of(alignment as usize) as u64;

        let mut tensors = Vec::with_capacity(infos.len());
        let mut by_name = HashMap::with_capacity(infos.len());
        for (name, dims, type_id, offset) in infos {
            let Some(ggml_type) = GgmlType::from_id(type_id) else {
                return Err(GgufError::UnknownType {
                    path: path.clone(),
                    tensor: name,
                    type_id,
                });
            };
            let n_elements = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n <= isize::MAX as u64 / 4);
            let Some(n_elements) = n_elements else {
                return Err(r.invalid(format!("tensor {name} has dimensions {dims:?}, too large")));
            };
            if dims
                .first()
                .is_some_and(|&row| !row.is_multiple_of(ggml_type.block_size() as u64))
            {
                return Err(r.invalid(format!(
                    "tensor {name} has rows of {} weights, not a whole number of {ggml_type} \
                     blocks of {}",
                    dims[0],
                    ggml_type.block_size()
                )));
            }
            let size = quant::byte_len(ggml_type, n_elements).ok_or_else(|| {
                r.invalid(format!(
                    "tensor {name} holds {n_elements} weights of {ggml_type}, which do not \
                     fill whole blocks"
                ))
            })?;
            let end = data_offset
                .checked_add(offset)
                .and_then(|start| start.checked_add(size));
            if end.is_none_or(|end| end > bytes.len() as u64) {
                return Err(GgufError::Truncated {
                    path: path.clone(),
                    what: format!("the data of tensor {name}"),
                });
            }
            if by_name.insert(name.clone(), tensors.len()).is_some() {
                return Err(r.invalid(format!("tensor {name} appears twice")));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                size,
            });
        }

        Ok(Self {
            path,
            bytes,
            version,
            metadata,
            tensors,
            by_name,
            alignment,
            data_offset,
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the tensor data (`general.alignment`, 32 by default).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Where the data section starts, in bytes from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Every metadata entry, by key.
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// The string at `key`; `None` if absent or not a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// The integer at `key`, of any integer type; `None` if absent, not an integer or
    /// negative.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// The number at `key`, float or integer; `None` if absent or not a number.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// The boolean at `key`; `None` if absent or not a boolean.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// The array of strings at `key`; `None` if absent or not an array of strings.
    pub fn get_str_array(&self, key: &str) -> Option<Vec<&str>> {
        self.get(key)?
            .as_array()?
            .iter()
            .map(|v| v.as_str())
            .collect()
    }

    /// The array of numbers at `key` as `f32`s (`f64` and integer elements converted); `None`
    /// if absent or not an array of numbers.
    pub fn get_f32_array(&self, key: &str) -> Option<Vec<f32>> {
        self.get(key)?
            .as_array()?
            .iter()
            .map(|v| match *v {
                GgufValue::F32(x) => Some(x),
                _ => v.as_f64().map(|x| x as f32),
            })
            .collect()
    }

    /// The array of integers at `key` as `i32`s; `None` if absent, not an array of integers,
    /// or holding one outside `i32`.
    pub fn get_i32_array(&self, key: &str) -> Option<Vec<i32>> {
        self.get(key)?
            .as_array()?
            .iter()
            .map(|v| v.as_i64().and_then(|x| i32::try_from(x).ok()))
            .collect()
    }

    /// Every tensor, in the file's order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of tensor `name`, in its ggml type.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self.tensor(name).ok_or_else(|| GgufError::NoTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        Ok(self.data_of(info))
    }

    fn data_of(&self, info: &TensorInfo) -> &[u8] {
        // In bounds: checked against the file's length when it was opened.
        let start = (self.data_offset + info.offset) as usize;
        &self.bytes[start..start + info.size as usize]
    }

    /// Tensor `name` as `f32`s in PyTorch's row-major order for [`TensorInfo::shape`],
    /// dequantized as gguf-py's `gguf.quants.dequantize` does. Refuses a type [`quant`] does
    /// not read ([`GgufError::UnsupportedType`]).
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        let info = self.tensor(name).ok_or_else(|| GgufError::NoTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        self.info_f32(info)
    }

    /// [`GgufFile::tensor_f32`] for a tensor info of this file.
    pub fn info_f32(&self, info: &TensorInfo) -> Result<Vec<f32>, GgufError> {
        if !quant::supported(info.ggml_type) {
            return Err(GgufError::UnsupportedType {
                path: self.path.clone(),
                tensor: info.name.clone(),
                ggml_type: info.ggml_type,
            });
        }
        let mut out = vec![0f32; info.n_elements() as usize];
        quant::dequantize(info.ggml_type, self.data_of(info), &mut out);
        Ok(out)
    }
}

/// A cursor over the file's bytes that turns running out of them into
/// [`GgufError::Truncated`].
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn invalid(&self, message: String) -> GgufError {
        GgufError::Invalid {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn truncated(&self, what: String) -> GgufError {
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            what,
        }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.left() {
            return Err(self.truncated(what()));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A `u64` length, then that many bytes.
    fn raw_string(&mut self, what: impl Fn() -> String) -> Result<&'a [u8], GgufError> {
        let len = self.u64(&what)?;
        if len > self.left() as u64 {
            return Err(self.truncated(what()));
        }
        self.take(len as usize, what)
    }

    /// A string that must be UTF-8 (keys and tensor names).
    fn string(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let raw = self.raw_string(&what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| self.invalid(format!("{} is not UTF-8", what())))
    }

    /// A value of type id `ty` under `key`, arrays nested `depth` deep.
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<GgufValue, GgufError> {
        let what = || format!("metadata key {key}");
        let Some(ty) = GgufValueType::from_id(ty) else {
            return Err(self.invalid(format!(
                "metadata key {key} has value type {ty}, which GGUF does not define"
            )));
        };
        Ok(match ty {
            GgufValueType::U8 => GgufValue::U8(self.array::<1>(what)?[0]),
            GgufValueType::I8 => GgufValue::I8(self.array::<1>(what)?[0] as i8),
            GgufValueType::U16 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            GgufValueType::I16 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            GgufValueType::U32 => GgufValue::U32(u32::from_le_bytes(self.array(what)?)),
            GgufValueType::I32 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            GgufValueType::F32 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            GgufValueType::Bool => GgufValue::Bool(self.array::<1>(what)?[0] != 0),
            GgufValueType::String => {
                GgufValue::String(String::from_utf8_lossy(self.raw_string(what)?).into_owned())
            }
            GgufValueType::U64 => GgufValue::U64(u64::from_le_bytes(self.array(what)?)),
            GgufValueType::I64 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            GgufValueType::F64 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
            GgufValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.invalid(format!(
                        "metadata key {key} nests arrays more than {MAX_ARRAY_DEPTH} deep"
                    )));
                }
                let elem = self.u32(what)?;
                let Some(elem_type) = GgufValueType::from_id(elem) else {
                    return Err(self.invalid(format!(
                        "metadata key {key} is an array of value type {elem}, which GGUF does \
                         not define"
                    )));
                };
                let count = self.u64(what)?;
                // The smallest element: one byte; a string or array takes at least 8 or 12.
                let min_size = match elem_type {
                    GgufValueType::U8 | GgufValueType::I8 | GgufValueType::Bool => 1,
                    GgufValueType::U16 | GgufValueType::I16 => 2,
                    GgufValueType::U32 | GgufValueType::I32 | GgufValueType::F32 => 4,
                    GgufValueType::String
                    | GgufValueType::U64
                    | GgufValueType::I64
                    | GgufValueType::F64 => 8,
                    GgufValueType::Array => 12,
                };
                if count > (self.left() / min_size) as u64 {
                    return Err(self.truncated(what()));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                GgufValue::Array(elem_type, items)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_bits_eq, has_gguf_py, python, smollm2};
    use super::super::{GgufWriter, TensorDtype};
    use super::*;
    use std::time::Instant;

    /// gguf-py writes one key of every value type, arrays of several element types and a
    /// nested array.
    const METADATA_FIXTURE: &str = r#"
import sys, numpy as np, gguf
from gguf import GGUFValueType as V
w = gguf.GGUFWriter(sys.argv[1], "test")
w.add_uint8("t.u8", 200); w.add_int8("t.i8", -100)
w.add_uint16("t.u16", 60000); w.add_int16("t.i16", -30000)
w.add_uint32("t.u32", 4000000000); w.add_int32("t.i32", -2000000000)
w.add_float32("t.f32", 1.5); w.add_bool("t.bool", True); w.add_bool("t.false", False)
w.add_string("t.str", "h\u00e9llo \u2603")
w.add_uint64("t.u64", 2**63 + 5); w.add_int64("t.i64", -2**62); w.add_float64("t.f64", 3.141592653589793)
w.add_array("t.arr_str", ["a", "bc", ""]); w.add_array("t.arr_i32", [1, -2, 3])
w.add_array("t.arr_f32", [0.5, -1.25]); w.add_array("t.nested", [[1, 2], [3]])
w.add_key_value("t.arr_u8", [1, 2, 255], V.ARRAY, V.UINT8)
w.add_key_value("t.arr_bool", [True, False], V.ARRAY, V.BOOL)
w.add_key_value("t.arr_u64", [2**40], V.ARRAY, V.UINT64)
w.add_key_value("t.arr_f64", [0.1], V.ARRAY, V.FLOAT64)
w.add_tensor("x", np.arange(6, dtype=np.float32).reshape(2, 3))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
"#;

    #[test]
    fn reads_every_value_type_gguf_py_writes() {
        if !has_gguf_py("reads_every_value_type_gguf_py_writes") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.gguf");
        python(METADATA_FIXTURE, &[path.to_str().unwrap()]);
        let f = GgufFile::open(&path).unwrap();
        use GgufValue as V;
        let m = f.metadata();
        assert_eq!(m["t.u8"], V::U8(200));
        assert_eq!(m["t.i8"], V::I8(-100));
        assert_eq!(m["t.u16"], V::U16(60000));
        assert_eq!(m["t.i16"], V::I16(-30000));
        assert_eq!(m["t.u32"], V::U32(4_000_000_000));
        assert_eq!(m["t.i32"], V::I32(-2_000_000_000));
        assert_eq!(m["t.f32"], V::F32(1.5));
        assert_eq!(m["t.bool"], V::Bool(true));
        assert_eq!(m["t.false"], V::Bool(false));
        assert_eq!(f.get_str("t.str"), Some("h\u{e9}llo \u{2603}"));
        assert_eq!(m["t.u64"], V::U64((1 << 63) + 5));
        assert_eq!(m["t.i64"], V::I64(-(1 << 62)));
        assert_eq!(m["t.f64"], V::F64(std::f64::consts::PI));
        assert_eq!(f.get_str_array("t.arr_str"), Some(vec!["a", "bc", ""]));
        assert_eq!(f.get_i32_array("t.arr_i32"), Some(vec![1, -2, 3]));
        assert_eq!(f.get_f32_array("t.arr_f32"), Some(vec![0.5, -1.25]));
        assert_eq!(
            m["t.nested"],
            V::Array(
                GgufValueType::Array,
                vec![
                    V::Array(GgufValueType::I32, vec![V::I32(1), V::I32(2)]),
                    V::Array(GgufValueType::I32, vec![V::I32(3)]),
                ]
            )
        );
        assert_eq!(
            m["t.arr_u8"],
            V::Array(GgufValueType::U8, vec![V::U8(1), V::U8(2), V::U8(255)])
        );
        assert_eq!(
            m["t.arr_bool"],
            V::Array(GgufValueType::Bool, vec![V::Bool(true), V::Bool(false)])
        );
        assert_eq!(
            m["t.arr_u64"],
            V::Array(GgufValueType::U64, vec![V::U64(1 << 40)])
        );
        assert_eq!(
            m["t.arr_f64"],
            V::Array(GgufValueType::F64, vec![V::F64(0.1)])
        );
        assert_eq!(f.get_str("general.architecture"), Some("test"));
        // The helpers accept any integer or number type.
        assert_eq!(f.get_u64("t.u8"), Some(200));
        assert_eq!(f.get_u64("t.i8"), None);
        assert_eq!(f.get_f64("t.i32"), Some(-2e9));
        assert_eq!(f.get_f64("t.str"), None);
        let x = f.tensor("x").unwrap();
        assert_eq!((x.shape(), x.dims.clone()), (vec![2, 3], vec![3, 2]));
        assert_eq!(
            f.tensor_f32("x").unwrap(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
        assert_eq!((f.version(), f.alignment()), (3, 32));
    }

    /// A file of two metadata keys and two tensors, written here; returns its bytes.
    fn sample(dir: &Path) -> (PathBuf, Vec<u8>) {
        let path = dir.join("model.gguf");
        let mut w = GgufWriter::new();
        w.set_str("general.architecture", "llama");
        w.set_str_array(
            "tokenizer.ggml.tokens",
            (0..100).map(|i| format!("token{i}")),
        );
        let a: Vec<f32> = (0..512).map(|i| i as f32).collect();
        w.add_tensor(
            "blk.0.attn_q.weight",
            &[2, 256],
            TensorDtype::F32,
            a.clone(),
        )
        .unwrap();
        w.add_tensor(
            "output_norm.weight",
            &[64],
            TensorDtype::F16,
            a[..64].to_vec(),
        )
        .unwrap();
        w.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    /// Where tensor `name`'s type id sits in `bytes`.
    fn type_field(bytes: &[u8], name: &str, n_dims: usize) -> usize {
        let at = bytes
            .windows(name.len())
            .position(|w| w == name.as_bytes())
            .unwrap();
        at + name.len() + 4 + 8 * n_dims
    }

    fn open_bytes(path: &Path, bytes: &[u8]) -> Result<GgufFile, GgufError> {
        std::fs::write(path, bytes).unwrap();
        GgufFile::open(path)
    }

    #[test]
    fn refuses_a_file_that_is_not_gguf() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = sample(dir.path());
        bytes[..4].copy_from_slice(b"GGML");
        let err = open_bytes(&path, &bytes).unwrap_err();
        assert!(matches!(err, GgufError::BadMagic { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("model.gguf") && msg.contains("not a GGUF file"),
            "{msg}"
        );
    }

    #[test]
    fn refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = sample(dir.path());
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        let err = open_bytes(&path, &bytes).unwrap_err();
        assert!(matches!(
            err,
            GgufError::UnsupportedVersion { version: 1, .. }
        ));
        assert!(err.to_string().contains("GGUF version 1"), "{err}");
        bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(open_bytes(&path, &bytes).unwrap().version(), 2);
    }

    #[test]
    fn a_file_cut_in_the_metadata_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = sample(dir.path());
        let key = b"tokenizer.ggml.tokens";
        let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
        // Cut inside the array of tokens, then inside the key's own name.
        for cut in [at + key.len() + 200, at + 5] {
            let err = open_bytes(&path, &bytes[..cut]).unwrap_err();
            assert!(matches!(err, GgufError::Truncated { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains("model.gguf") && msg.contains("cut short"),
                "{msg}"
            );
            if cut > at + key.len() {
                assert!(msg.contains("metadata key tokenizer.ggml.tokens"), "{msg}");
            } else {
                assert!(msg.contains("metadata entry 1"), "{msg}");
            }
        }
        let err = open_bytes(&path, &bytes[..10]).unwrap_err();
        assert!(err.to_string().contains("the header"), "{err}");
        let err = open_bytes(&path, b"").unwrap_err();
        assert!(matches!(err, GgufError::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn a_file_cut_in_the_tensor_data_names_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = sample(dir.path());
        let err = open_bytes(&path, &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(err, GgufError::Truncated { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("model.gguf") && msg.contains("the data of tensor output_norm.weight"),
            "{msg}"
        );
        // Cut inside the tensor infos.
        let at = type_field(&bytes, "output_norm.weight", 1);
        let err = open_bytes(&path, &bytes[..at + 2]).unwrap_err();
        assert!(
            err.to_string()
                .contains("the info of tensor output_norm.weight"),
            "{err}"
        );
    }

    #[test]
    fn refuses_an_unknown_type_and_names_an_unsupported_one() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = sample(dir.path());
        let at = type_field(&bytes, "blk.0.attn_q.weight", 2);
        assert_eq!(bytes[at..at + 4], 0u32.to_le_bytes());
        bytes[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
        let err = open_bytes(&path, &bytes).unwrap_err();
        assert!(
            matches!(err, GgufError::UnknownType { type_id: 99, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("model.gguf")
                && msg.contains("tensor blk.0.attn_q.weight")
                && msg.contains("99"),
            "{msg}"
        );
        // IQ2_XXS: 512 weights take 132 bytes, inside the F32 tensor's 2048.
        bytes[at..at + 4].copy_from_slice(&16u32.to_le_bytes());
        let f = open_bytes(&path, &bytes).unwrap();
        let err = f.tensor_f32("blk.0.attn_q.weight").unwrap_err();
        assert!(matches!(err, GgufError::UnsupportedType { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: tensor blk.0.attn_q.weight has quantization type IQ2_XXS (16), which \
                 Hearth does not read",
                path.display()
            )
        );
        let err = f.tensor_f32("missing").unwrap_err();
        assert!(err.to_string().contains("no tensor named missing"), "{err}");
    }

    #[test]
    fn refuses_rows_that_are_not_whole_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = sample(dir.path());
        let at = type_field(&bytes, "output_norm.weight", 1);
        bytes[at..at + 4].copy_from_slice(&12u32.to_le_bytes()); // Q4_K: rows of 64 < 256
        let err = open_bytes(&path, &bytes).unwrap_err();
        assert!(matches!(err, GgufError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("output_norm.weight"), "{err}");
    }

    #[test]
    fn reads_the_tensors_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = sample(dir.path());
        let f = GgufFile::open(&path).unwrap();
        assert_eq!(f.tensors().len(), 2);
        let q = f.tensor("blk.0.attn_q.weight").unwrap();
        assert_eq!(
            (q.shape(), q.ggml_type, q.offset),
            (vec![2, 256], GgmlType::F32, 0)
        );
        assert_eq!(q.dims, vec![256, 2]);
        let norm = f.tensor("output_norm.weight").unwrap();
        assert_eq!((norm.offset, norm.size), (2048, 128));
        assert_eq!(f.data_offset() % 32, 0);
        let want: Vec<f32> = (0..512).map(|i| i as f32).collect();
        assert_eq!(f.tensor_f32("blk.0.attn_q.weight").unwrap(), want);
        assert_eq!(f.tensor_f32("output_norm.weight").unwrap(), want[..64]);
        assert_eq!(
            f.get_str_array("tokenizer.ggml.tokens").unwrap()[99],
            "token99"
        );
    }

    /// Dequantizes a few tensors of a file with gguf-py into `<dir>/<name>.f32`.
    const DEQUANT_REFERENCE: &str = r#"
import sys, os, gguf
from gguf.quants import dequantize
r = gguf.GGUFReader(sys.argv[1])
want = set(sys.argv[3:])
for t in r.tensors:
    if t.name in want:
        dequantize(t.data, t.tensor_type).astype("float32").tofile(os.path.join(sys.argv[2], t.name + ".f32"))
"#;

    #[test]
    fn real_smollm2_file_dequantizes_like_gguf_py() {
        let Some(path) = smollm2("real_smollm2_file_dequantizes_like_gguf_py") else {
            return;
        };
        let f = GgufFile::open(path).unwrap();
        assert_eq!(f.get_str("general.architecture"), Some("llama"));
        assert_eq!(f.get_u64("llama.block_count"), Some(30));
        assert_eq!(f.get_u64("llama.embedding_length"), Some(576));
        assert_eq!(f.get_u64("llama.attention.head_count"), Some(9));
        assert_eq!(f.get_u64("llama.attention.head_count_kv"), Some(3));
        assert_eq!(f.tensors().len(), 272);
        let embd = f.tensor("token_embd.weight").unwrap();
        assert_eq!(
            (embd.shape(), embd.ggml_type),
            (vec![49152, 576], GgmlType::Q8_0)
        );
        let k = f.tensor("blk.0.attn_k.weight").unwrap();
        assert_eq!((k.shape(), k.ggml_type), (vec![192, 576], GgmlType::Q4_1));

        let mut elapsed = std::time::Duration::ZERO;
        let mut weights = 0usize;
        for info in f.tensors() {
            let start = Instant::now();
            let v = f.info_f32(info).unwrap();
            elapsed += start.elapsed();
            assert!(v.iter().all(|x| x.is_finite()), "{}", info.name);
            weights += v.len();
        }
        let secs = elapsed.as_secs_f64();
        let bytes = std::fs::metadata(path).unwrap().len();
        eprintln!(
            "dequantized all {} tensors of {} ({:.1} MB, {weights} weights) in {secs:.3} s",
            f.tensors().len(),
            path.display(),
            bytes as f64 / 1e6
        );

        if !has_gguf_py("real_smollm2_file_dequantizes_like_gguf_py (gguf-py comparison)") {
            return;
        }
        let names = [
            "token_embd.weight",
            "blk.0.attn_q.weight",
            "blk.29.ffn_down.weight",
            "blk.0.attn_norm.weight",
            "output_norm.weight",
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![path.to_str().unwrap(), dir.path().to_str().unwrap()];
        args.extend(names);
        python(DEQUANT_REFERENCE, &args);
        for name in names {
            let raw = std::fs::read(dir.path().join(format!("{name}.f32"))).unwrap();
            let theirs: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            assert_bits_eq(name, &f.tensor_f32(name).unwrap(), &theirs);
        }
    }
}
