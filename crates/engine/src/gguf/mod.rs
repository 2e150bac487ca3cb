//! GGUF files: llama.cpp's single-file model format, read and written.
//!
//! A GGUF file (specified in ggml's `docs/gguf.md`,
//! <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>) is, all little-endian:
//!
//! 1. a header: the magic `GGUF`, a format version (2 or 3 here; version 1 used 32-bit counts
//!    and is long gone), the number of tensors and the number of metadata entries (`u64`s);
//! 2. the metadata: key/value pairs, a key being a length-prefixed UTF-8 string and a value one
//!    of thirteen types ([`GgufValueType`]), arrays (of any type, arrays included) among them.
//!    The model's settings (`llama.block_count`, ...), its tokenizer (`tokenizer.ggml.*`) and
//!    its chat template live here;
//! 3. the tensor infos: per tensor its name, its dimensions innermost first (`ne[0]` is the
//!    length of a row), its [`GgmlType`] and the offset of its data from the start of the data
//!    section;
//! 4. padding up to `general.alignment` (32 unless the metadata says otherwise), then the data
//!    section, each tensor starting at a multiple of the alignment.
//!
//! Tensors are stored in ggml's types: plain floats and integers, or quantized *blocks* of
//! 32 or 256 weights sharing one or two scales (`Q8_0`, `Q4_K`, ...). The block layouts of
//! [`quant`] follow ggml's `ggml-quants.c` and give the same floats as gguf-py's
//! `gguf.quants.dequantize`.
//!
//! - [`GgufFile`] maps a file and checks every offset and size against its length; its
//!   tensors come out as `f32` in PyTorch's row-major order ([`GgufFile::tensor_f32`]);
//! - [`GgufWriter`] writes a version 3 file with `F32`/`F16` tensors (or raw blocks);
//! - [`tokenizer()`] turns a byte-level BPE vocabulary (`tokenizer.ggml.model` = `gpt2`) into
//!   a Hugging Face `tokenizer.json` that encodes like the one `transformers` builds from the
//!   same file, and [`write_tokenizer_metadata`] goes the other way.

pub mod quant;
pub mod read;
pub mod tokenizer;
pub mod write;

pub use quant::dequantize;
pub use read::{GgufFile, TensorInfo};
pub use tokenizer::{GgufTokenizer, tokenizer, write_tokenizer_metadata};
pub use write::{GgufWriter, TensorDtype};

use std::path::PathBuf;

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// The version [`GgufWriter`] writes.
pub const GGUF_VERSION: u32 = 3;

/// The alignment of the data section and of each tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Weights per block of the K-quants (`Q2_K` to `Q8_K`) and of the 256-weight `IQ` types.
pub const QK_K: usize = 256;

/// Why a GGUF file cannot be read or written. Every variant names the file, and the tensor or
/// metadata key it is about where there is one.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file cannot be opened, mapped, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The file does not start with `GGUF`.
    #[error("{}: not a GGUF file (it does not start with the bytes \"GGUF\")", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The header states a format version other than 2 or 3.
    #[error(
        "{}: GGUF version {version}, which Hearth does not read (only versions 2 and 3)",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version the header states.
        version: u32,
    },
    /// The file ends before something its header promises: a cut download or copy.
    #[error("{}: the file is cut short: it ends inside {what}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read: the header, a metadata key, a tensor's info or its data.
        what: String,
    },
    /// The file's structure is broken: a value type that does not exist, a tensor name that
    /// is not UTF-8, dimensions that overflow, ...
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key or tensor.
        message: String,
    },
    /// A tensor's type id is not one of ggml's types, so its size is unknown.
    #[error(
        "{}: tensor {tensor} has quantization type id {type_id}, which is not a ggml type",
        path.display()
    )]
    UnknownType {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The id the file gives.
        type_id: u32,
    },
    /// A tensor's type is a ggml type this module does not dequantize.
    #[error(
        "{}: tensor {tensor} has quantization type {} ({}), which Hearth does not read",
        path.display(),
        ggml_type.name(),
        ggml_type.id()
    )]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// Its type.
        ggml_type: GgmlType,
    },
    /// The file has no tensor of that name.
    #[error("{}: no tensor named {name}", path.display())]
    NoTensor {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
    },
    /// A metadata key is missing or does not hold what it should.
    #[error("{}: metadata key {key}: {message}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The tokenizer the file describes cannot be built, or a tokenizer cannot be written.
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer {
        /// The file (for [`write_tokenizer_metadata`], `tokenizer.json`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor handed to [`GgufWriter`] does not fit its shape or type.
    #[error("tensor {name}: {message}")]
    BadTensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The type of a metadata value, with its id in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgufValueType {
    /// `u8` (id 0).
    U8 = 0,
    /// `i8` (id 1).
    I8 = 1,
    /// `u16` (id 2).
    U16 = 2,
    /// `i16` (id 3).
    I16 = 3,
    /// `u32` (id 4).
    U32 = 4,
    /// `i32` (id 5).
    I32 = 5,
    /// `f32` (id 6).
    F32 = 6,
    /// A one-byte boolean (id 7).
    Bool = 7,
    /// A `u64`-length-prefixed UTF-8 string (id 8).
    String = 8,
    /// An array: element type, `u64` count, elements (id 9).
    Array = 9,
    /// `u64` (id 10).
    U64 = 10,
    /// `i64` (id 11).
    I64 = 11,
    /// `f64` (id 12).
    F64 = 12,
}

impl GgufValueType {
    /// The type with this id, if there is one.
    pub fn from_id(id: u32) -> Option<Self> {
        use GgufValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Its id in the file.
    pub fn id(self) -> u32 {
        self as u32
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// A boolean.
    Bool(bool),
    /// A string. Bytes that are not UTF-8 are read as U+FFFD.
    String(String),
    /// An array with its element type (kept so that an empty array says what it holds). Every
    /// element has that type.
    Array(GgufValueType, Vec<GgufValue>),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

impl GgufValue {
    /// The value's type.
    pub fn value_type(&self) -> GgufValueType {
        match self {
            GgufValue::U8(_) => GgufValueType::U8,
            GgufValue::I8(_) => GgufValueType::I8,
            GgufValue::U16(_) => GgufValueType::U16,
            GgufValue::I16(_) => GgufValueType::I16,
            GgufValue::U32(_) => GgufValueType::U32,
            GgufValue::I32(_) => GgufValueType::I32,
            GgufValue::F32(_) => GgufValueType::F32,
            GgufValue::Bool(_) => GgufValueType::Bool,
            GgufValue::String(_) => GgufValueType::String,
            GgufValue::Array(..) => GgufValueType::Array,
            GgufValue::U64(_) => GgufValueType::U64,
            GgufValue::I64(_) => GgufValueType::I64,
            GgufValue::F64(_) => GgufValueType::F64,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a `u64`, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an `i64`, if it is an integer of any width that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            GgufValue::U64(v) => i64::try_from(v).ok(),
            GgufValue::I8(v) => Some(v.into()),
            GgufValue::I16(v) => Some(v.into()),
            GgufValue::I32(v) => Some(v.into()),
            GgufValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as an `f64`, if it is a float or an integer (large 64-bit integers round).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            GgufValue::U64(v) => Some(v as f64),
            GgufValue::I64(v) => Some(v as f64),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if the value is an array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(_, items) => Some(items),
            _ => None,
        }
    }

    /// An array of strings.
    pub fn string_array<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        GgufValue::Array(
            GgufValueType::String,
            items
                .into_iter()
                .map(|s| GgufValue::String(s.into()))
                .collect(),
        )
    }

    /// An array of `i32`s.
    pub fn i32_array(items: impl IntoIterator<Item = i32>) -> Self {
        GgufValue::Array(
            GgufValueType::I32,
            items.into_iter().map(GgufValue::I32).collect(),
        )
    }

    /// An array of `f32`s.
    pub fn f32_array(items: impl IntoIterator<Item = f32>) -> Self {
        GgufValue::Array(
            GgufValueType::F32,
            items.into_iter().map(GgufValue::F32).collect(),
        )
    }
}

/// ggml's tensor types, with llama.cpp's ids (`enum ggml_type` in `ggml.h`) and names. Only
/// the ids gguf-py knows are listed; ids 4, 5 and 31 to 33, 36 to 38 were removed from ggml.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float.
    F32 = 0,
    /// IEEE half float.
    F16 = 1,
    /// 32 weights: an `f16` scale and 4-bit values centred on 8.
    Q4_0 = 2,
    /// 32 weights: `f16` scale and minimum, 4-bit values.
    Q4_1 = 3,
    /// 32 weights: an `f16` scale and 5-bit values centred on 16.
    Q5_0 = 6,
    /// 32 weights: `f16` scale and minimum, 5-bit values.
    Q5_1 = 7,
    /// 32 weights: an `f16` scale and `i8` values.
    Q8_0 = 8,
    /// 32 weights: `Q8_0` with the block sum (a matmul intermediate).
    Q8_1 = 9,
    /// 256 weights: 2-bit values, 4-bit scales and minima per 16.
    Q2_K = 10,
    /// 256 weights: 3-bit values, 6-bit scales per 16.
    Q3_K = 11,
    /// 256 weights: 4-bit values, 6-bit scales and minima per 32.
    Q4_K = 12,
    /// 256 weights: 5-bit values, 6-bit scales and minima per 32.
    Q5_K = 13,
    /// 256 weights: 6-bit values, `i8` scales per 16.
    Q6_K = 14,
    /// 256 weights: `f32` scale, `i8` values and sums (a matmul intermediate).
    Q8_K = 15,
    /// Importance-matrix 2-bit, grid-coded.
    IQ2_XXS = 16,
    /// Importance-matrix 2-bit, grid-coded.
    IQ2_XS = 17,
    /// Importance-matrix 3-bit, grid-coded.
    IQ3_XXS = 18,
    /// Importance-matrix 1-bit, grid-coded.
    IQ1_S = 19,
    /// 32 weights: an `f16` scale and 4-bit indices into a non-linear table.
    IQ4_NL = 20,
    /// Importance-matrix 3-bit, grid-coded.
    IQ3_S = 21,
    /// Importance-matrix 2-bit, grid-coded.
    IQ2_S = 22,
    /// 256 weights: `IQ4_NL` values with 6-bit scales per 32.
    IQ4_XS = 23,
    /// 8-bit integer.
    I8 = 24,
    /// 16-bit integer.
    I16 = 25,
    /// 32-bit integer.
    I32 = 26,
    /// 64-bit integer.
    I64 = 27,
    /// 64-bit float.
    F64 = 28,
    /// Importance-matrix 1-bit, grid-coded.
    IQ1_M = 29,
    /// bfloat16: the upper half of an `f32`.
    BF16 = 30,
    /// Ternary, base-3 packed.
    TQ1_0 = 34,
    /// Ternary, 2 bits each.
    TQ2_0 = 35,
    /// 32 weights: an E8M0 scale and E2M1 values (OCP microscaling).
    MXFP4 = 39,
    /// 64 weights: four UE4M3 scales and E2M1 values.
    NVFP4 = 40,
    /// 128 weights: an `f16` scale and 1-bit values.
    Q1_0 = 41,
}

impl GgmlType {
    /// The type with this id, if ggml has one.
    pub fn from_id(id: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => IQ1_M,
            30 => BF16,
            34 => TQ1_0,
            35 => TQ2_0,
            39 => MXFP4,
            40 => NVFP4,
            41 => Q1_0,
            _ => return None,
        })
    }

    /// Its id in the file.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Its name as llama.cpp spells it (`Q4_K`, `BF16`, ...).
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            Q8_K => "Q8_K",
            IQ2_XXS => "IQ2_XXS",
            IQ2_XS => "IQ2_XS",
            IQ3_XXS => "IQ3_XXS",
            IQ1_S => "IQ1_S",
            IQ4_NL => "IQ4_NL",
            IQ3_S => "IQ3_S",
            IQ2_S => "IQ2_S",
            IQ4_XS => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            IQ1_M => "IQ1_M",
            BF16 => "BF16",
            TQ1_0 => "TQ1_0",
            TQ2_0 => "TQ2_0",
            MXFP4 => "MXFP4",
            NVFP4 => "NVFP4",
            Q1_0 => "Q1_0",
        }
    }

    /// Weights per block (1 for the plain types).
    pub fn block_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | IQ4_NL | MXFP4 => 32,
            NVFP4 => 64,
            Q1_0 => 128,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K | IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S
            | IQ3_S | IQ2_S | IQ4_XS | IQ1_M | TQ1_0 | TQ2_0 => QK_K,
        }
    }

    /// Bytes per block (`GGML_QUANT_SIZES` in gguf-py).
    pub fn type_size(self) -> usize {
        use GgmlType::*;
        const K: usize = QK_K;
        match self {
            F32 => 4,
            F16 | BF16 => 2,
            F64 | I64 => 8,
            I8 => 1,
            I16 => 2,
            I32 => 4,
            Q4_0 => 2 + 16,
            Q4_1 => 2 + 2 + 16,
            Q5_0 => 2 + 4 + 16,
            Q5_1 => 2 + 2 + 4 + 16,
            Q8_0 => 2 + 32,
            Q8_1 => 4 + 4 + 32,
            Q2_K => 2 + 2 + K / 16 + K / 4,
            Q3_K => 2 + K / 4 + K / 8 + 12,
            Q4_K => 2 + 2 + K / 2 + 12,
            Q5_K => 2 + 2 + K / 2 + K / 8 + 12,
            Q6_K => 2 + K / 2 + K / 4 + K / 16,
            Q8_K => 4 + K + K / 8,
            IQ2_XXS => 2 + K / 4,
            IQ2_XS => 2 + K / 4 + K / 32,
            IQ3_XXS => 2 + K / 4 + K / 8,
            IQ1_S => 2 + K / 8 + K / 16,
            IQ4_NL => 2 + 16,
            IQ3_S => 2 + K / 4 + K / 8 + K / 32 + 4,
            IQ2_S => 2 + K / 4 + K / 16,
            IQ4_XS => 2 + 2 + K / 2 + K / 64,
            IQ1_M => K / 8 + K / 16 + K / 32,
            TQ1_0 => 2 + 4 * 13,
            TQ2_0 => 2 + 64,
            MXFP4 => 1 + 16,
            NVFP4 => 4 + 32,
            Q1_0 => 2 + 16,
        }
    }

    /// Whether [`dequantize`] reads this type.
    pub fn can_dequantize(self) -> bool {
        quant::supported(self)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the tests share: running gguf-py and transformers, which are optional (a test that
/// needs them prints why it is skipped and passes).
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::Path;
    use std::process::Command;
    use std::sync::OnceLock;

    /// The SmolLM2 file the real-file tests read when it is present.
    pub const SMOLLM2: &str =
        "/root/.cache/hearth/fixtures/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

    fn works(imports: &str) -> bool {
        Command::new("python")
            .args(["-c", &format!("import {imports}")])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Whether `python` on the PATH imports gguf-py and NumPy; prints a skip message for
    /// `test` when it does not.
    pub fn has_gguf_py(test: &str) -> bool {
        static OK: OnceLock<bool> = OnceLock::new();
        let ok = *OK.get_or_init(|| works("gguf, gguf.quants, numpy"));
        if !ok {
            eprintln!("skipping {test}: `python -c \"import gguf\"` fails (gguf-py not installed)");
        }
        ok
    }

    /// Whether `python` also imports transformers (and torch); prints a skip message when not.
    pub fn has_transformers(test: &str) -> bool {
        static OK: OnceLock<bool> = OnceLock::new();
        if !has_gguf_py(test) {
            return false;
        }
        let ok = *OK.get_or_init(|| works("transformers, torch"));
        if !ok {
            eprintln!("skipping {test}: `python -c \"import transformers\"` fails");
        }
        ok
    }

    /// The real SmolLM2 file, or `None` (with a skip message) when it is absent.
    pub fn smollm2(test: &str) -> Option<&'static Path> {
        let path = Path::new(SMOLLM2);
        if path.is_file() {
            Some(path)
        } else {
            eprintln!("skipping {test}: {SMOLLM2} is absent");
            None
        }
    }

    /// Runs `script` with `python -c`, passing `args` as `sys.argv[1:]`; returns its standard
    /// output, panicking with its standard error when it fails.
    pub fn python(script: &str, args: &[&str]) -> String {
        let out = Command::new("python")
            .arg("-c")
            .arg(script)
            .args(args)
            .env("TRANSFORMERS_VERBOSITY", "error")
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "python failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("python prints UTF-8")
    }

    /// `a` and `b` hold the same floats bit for bit (any NaN equals any NaN).
    pub fn assert_bits_eq(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}: lengths differ");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                "{what}: element {i} is {x:e} here and {y:e} in gguf-py"
            );
        }
    }

    /// A byte-level BPE tokenizer trained on a few lines, with `<|im_start|>` and
    /// `<|im_end|>` as special added tokens and `<think>` as a plain one, as `tokenizer.json`
    /// text (the way Hearth trains its BPE tokenizers).
    pub fn trained_bpe_json() -> String {
        use tokenizers::models::TrainerWrapper;
        use tokenizers::models::bpe::{BPE, BpeTrainer};
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        use tokenizers::{AddedToken, Tokenizer};
        let texts = [
            "The quick brown fox jumps over the lazy dog.",
            "def main():\n    print('hello, world')\n    return 42\n",
            "Numbers like 12345 and 2024-06-01, prices $3.99.",
            "Ünïcödé text: café, naïve, 日本語, emoji 🙂.",
            "hello hello hello world world the the the",
        ];
        let byte_level = ByteLevel::new(false, false, true);
        let mut trainer: TrainerWrapper = BpeTrainer::builder()
            .vocab_size(400)
            .min_frequency(1)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut tok = Tokenizer::new(BPE::default());
        tok.with_pre_tokenizer(Some(byte_level));
        tok.with_decoder(Some(byte_level));
        tok.train(&mut trainer, texts.iter().copied()).unwrap();
        tok.add_special_tokens([
            AddedToken::from("<|im_start|>", true),
            AddedToken::from("<|im_end|>", true),
        ])
        .unwrap();
        tok.add_tokens([AddedToken::from("<think>", false)])
            .unwrap();
        tok.to_string(false).unwrap()
    }
}
