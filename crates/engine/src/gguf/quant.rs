//! ggml's tensor types decoded to `f32`.
//!
//! A quantized type stores a row as blocks of 32 or 256 weights; each block holds one or two
//! `f16` scales (and, for the K-quants, packed sub-block scales) and then the packed integer
//! values. The layouts are those of `ggml-common.h`, and every formula is evaluated in the same
//! order and precision as gguf-py's `gguf.quants.dequantize` (in `f32`, products before sums,
//! no fused multiply-add), so the results are bit-identical to it.
//!
//! Read here: `F32`, `F16`, `BF16`, `F64`, `I8`, `I16`, `I32`, `I64` (converted with `as`),
//! `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0`, `Q2_K`, `Q3_K`, `Q4_K`, `Q5_K`, `Q6_K`, `IQ4_NL`,
//! `IQ4_XS` and `MXFP4`. The grid-coded `IQ1`–`IQ3` types, the ternary `TQ` types, `NVFP4`,
//! `Q1_0` and the matmul intermediates `Q8_1`/`Q8_K` are not.

use super::GgmlType;
use half::f16;

/// Whether [`dequantize`] reads `ty`.
pub fn supported(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16
            | BF16
            | F64
            | I8
            | I16
            | I32
            | I64
            | Q4_0
            | Q4_1
            | Q5_0
            | Q5_1
            | Q8_0
            | Q2_K
            | Q3_K
            | Q4_K
            | Q5_K
            | Q6_K
            | IQ4_NL
            | IQ4_XS
            | MXFP4
    )
}

/// The bytes `n_elements` weights of type `ty` take, or `None` when `n_elements` is not a
/// whole number of blocks or the size overflows.
pub fn byte_len(ty: GgmlType, n_elements: u64) -> Option<u64> {
    let block = ty.block_size() as u64;
    if !n_elements.is_multiple_of(block) {
        return None;
    }
    (n_elements / block).checked_mul(ty.type_size() as u64)
}

/// Decodes `data`, weights of type `ty` in ggml's layout, into `out`, which holds as many
/// weights as `data` encodes.
///
/// # Panics
///
/// When [`supported`] is false for `ty`, when `out.len()` is not a whole number of blocks, or
/// when `data.len()` is not the size of `out.len()` weights of `ty`.
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) {
    assert!(supported(ty), "dequantize: {ty} is not supported");
    let (block, size) = (ty.block_size(), ty.type_size());
    assert!(
        out.len().is_multiple_of(block) && data.len() == out.len() / block * size,
        "dequantize: {} bytes of {ty} do not hold {} weights",
        data.len(),
        out.len()
    );
    use GgmlType::*;
    match ty {
        F32 => plain::<4>(data, out, f32::from_le_bytes),
        F16 => plain::<2>(data, out, |b| f16::from_le_bytes(b).to_f32()),
        // The upper 16 bits of an f32.
        BF16 => plain::<2>(data, out, |b| {
            f32::from_bits(u32::from(u16::from_le_bytes(b)) << 16)
        }),
        F64 => plain::<8>(data, out, |b| f64::from_le_bytes(b) as f32),
        I8 => plain::<1>(data, out, |b| f32::from(b[0] as i8)),
        I16 => plain::<2>(data, out, |b| f32::from(i16::from_le_bytes(b))),
        I32 => plain::<4>(data, out, |b| i32::from_le_bytes(b) as f32),
        I64 => plain::<8>(data, out, |b| i64::from_le_bytes(b) as f32),
        Q4_0 => blocks::<32>(data, size, out, q4_0),
        Q4_1 => blocks::<32>(data, size, out, q4_1),
        Q5_0 => blocks::<32>(data, size, out, q5_0),
        Q5_1 => blocks::<32>(data, size, out, q5_1),
        Q8_0 => blocks::<32>(data, size, out, q8_0),
        Q2_K => blocks::<256>(data, size, out, q2_k),
        Q3_K => blocks::<256>(data, size, out, q3_k),
        Q4_K => blocks::<256>(data, size, out, q4_k),
        Q5_K => blocks::<256>(data, size, out, q5_k),
        Q6_K => blocks::<256>(data, size, out, q6_k),
        IQ4_NL => blocks::<32>(data, size, out, iq4_nl),
        IQ4_XS => blocks::<256>(data, size, out, iq4_xs),
        MXFP4 => blocks::<32>(data, size, out, mxfp4),
        _ => unreachable!("checked by `supported`"),
    }
}

/// One weight per `N` bytes.
fn plain<const N: usize>(data: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(N)) {
        *o = f(b.try_into().expect("chunks of N"));
    }
}

/// Blocks of `N` weights in `size` bytes each.
fn blocks<const N: usize>(data: &[u8], size: usize, out: &mut [f32], f: fn(&[u8], &mut [f32; N])) {
    for (b, o) in data.chunks_exact(size).zip(out.chunks_exact_mut(N)) {
        f(b, o.try_into().expect("chunks of N"));
    }
}

/// The little-endian `f16` at `b[i..i + 2]`, as `f32`.
#[inline(always)]
fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// `d`, then 16 bytes: weight `j < 16` in the low nibble of byte `j`, weight `16 + j` in its
/// high nibble; value `d * (q - 8)`.
fn q4_0(b: &[u8], o: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        o[j] = d * f32::from((qs[j] & 0x0F) as i8 - 8);
        o[j + 16] = d * f32::from((qs[j] >> 4) as i8 - 8);
    }
}

/// `d`, `m`, then nibbles as in `Q4_0`; value `d * q + m`.
fn q4_1(b: &[u8], o: &mut [f32; 32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    let qs = &b[4..20];
    for j in 0..16 {
        o[j] = d * f32::from(qs[j] & 0x0F) + m;
        o[j + 16] = d * f32::from(qs[j] >> 4) + m;
    }
}

/// The fifth bits: weight `j`'s is bit `j` of the little-endian `u32` at `b[i..i + 4]`.
#[inline(always)]
fn high_bits(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// `d`, the fifth bits, nibbles as in `Q4_0`; value `d * (q - 16)`.
fn q5_0(b: &[u8], o: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let qh = high_bits(b, 2);
    let qs = &b[6..22];
    for j in 0..16 {
        let lo = (qs[j] & 0x0F) | (((qh >> j) & 1) as u8) << 4;
        let hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) as u8) << 4;
        o[j] = d * f32::from(lo as i8 - 16);
        o[j + 16] = d * f32::from(hi as i8 - 16);
    }
}

/// `d`, `m`, the fifth bits, nibbles as in `Q4_0`; value `d * q + m`.
fn q5_1(b: &[u8], o: &mut [f32; 32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    let qh = high_bits(b, 4);
    let qs = &b[8..24];
    for j in 0..16 {
        let lo = (qs[j] & 0x0F) | (((qh >> j) & 1) as u8) << 4;
        let hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) as u8) << 4;
        o[j] = d * f32::from(lo) + m;
        o[j + 16] = d * f32::from(hi) + m;
    }
}

/// `d`, then 32 `i8`s; value `q * d`.
fn q8_0(b: &[u8], o: &mut [f32; 32]) {
    let d = half_at(b, 0);
    for (o, &q) in o.iter_mut().zip(&b[2..34]) {
        *o = f32::from(q as i8) * d;
    }
}

/// 16 scale bytes (low nibble: scale, high: minimum, per 16 weights), 64 bytes of 2-bit values,
/// `d`, `dmin`. Weight `j`: half `j / 128`, bit pair `(j % 128) / 32` of byte `j % 32` of that
/// half; value `(d * sc) * q - dmin * m`.
fn q2_k(b: &[u8], o: &mut [f32; 256]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (half_at(b, 80), half_at(b, 82));
    for (g, out) in o.chunks_exact_mut(16).enumerate() {
        let dl = d * f32::from(scales[g] & 0x0F);
        let ml = dmin * f32::from(scales[g] >> 4);
        let (half, shift) = (g / 8, 2 * ((g % 8) / 2));
        let base = half * 32 + (g % 2) * 16;
        for (l, o) in out.iter_mut().enumerate() {
            let q = (qs[base + l] >> shift) & 3;
            *o = dl * f32::from(q) - ml;
        }
    }
}

/// 32 bytes of high-bit mask, 64 bytes of 2-bit values, 12 bytes of 6-bit scales (per 16
/// weights, offset by 32), `d`. A value's third bit *clear* subtracts 4; value `(d * sc) * q`.
fn q3_k(b: &[u8], o: &mut [f32; 256]) {
    let (hmask, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = half_at(b, 108);
    let mut scales = [0f32; 16];
    for (i, s) in scales.iter_mut().enumerate() {
        let low = (sc[i % 8] >> (4 * (i / 8))) & 0x0F;
        let high = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        *s = f32::from((low | high << 4) as i8 - 32);
    }
    for (g, out) in o.chunks_exact_mut(16).enumerate() {
        let dl = d * scales[g];
        for (l16, o) in out.iter_mut().enumerate() {
            let j = g * 16 + l16;
            let (half, shift, l) = (j / 128, 2 * ((j % 128) / 32), j % 32);
            let low = ((qs[half * 32 + l] >> shift) & 3) as i8;
            let high = ((hmask[l] >> (j / 32)) & 1) ^ 1;
            *o = dl * f32::from(low - ((high << 2) as i8));
        }
    }
}

/// The 8 six-bit scales and minima of `Q4_K`/`Q5_K`, packed in 12 bytes.
#[inline(always)]
fn scale_min_k4(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for i in 0..4 {
        sc[i] = s[i] & 0x3F;
        mn[i] = s[4 + i] & 0x3F;
        sc[4 + i] = (s[8 + i] & 0x0F) | ((s[i] >> 2) & 0x30);
        mn[4 + i] = (s[8 + i] >> 4) | ((s[4 + i] >> 2) & 0x30);
    }
    (sc, mn)
}

/// `d`, `dmin`, 12 bytes of scales and minima (per 32 weights), 128 bytes of nibbles: sub-block
/// `g` is the low (`g` even) or high nibbles of bytes `32 * (g / 2)..`; value
/// `(d * sc) * q - dmin * m`.
fn q4_k(b: &[u8], o: &mut [f32; 256]) {
    let (d, dmin) = (half_at(b, 0), half_at(b, 2));
    let (sc, mn) = scale_min_k4(&b[4..16]);
    let qs = &b[16..144];
    for (g, out) in o.chunks_exact_mut(32).enumerate() {
        let dl = d * f32::from(sc[g]);
        let ml = dmin * f32::from(mn[g]);
        let (bytes, shift) = (&qs[32 * (g / 2)..32 * (g / 2) + 32], 4 * (g % 2));
        for (o, &q) in out.iter_mut().zip(bytes) {
            *o = dl * f32::from((q >> shift) & 0x0F) - ml;
        }
    }
}

/// `Q4_K` with a fifth bit per weight: bit `g` of byte `l` of the 32-byte mask for weight `l`
/// of sub-block `g`.
fn q5_k(b: &[u8], o: &mut [f32; 256]) {
    let (d, dmin) = (half_at(b, 0), half_at(b, 2));
    let (sc, mn) = scale_min_k4(&b[4..16]);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    for (g, out) in o.chunks_exact_mut(32).enumerate() {
        let dl = d * f32::from(sc[g]);
        let ml = dmin * f32::from(mn[g]);
        let (bytes, shift) = (&qs[32 * (g / 2)..32 * (g / 2) + 32], 4 * (g % 2));
        for (l, o) in out.iter_mut().enumerate() {
            let q = ((bytes[l] >> shift) & 0x0F) | ((qh[l] >> g) & 1) << 4;
            *o = dl * f32::from(q) - ml;
        }
    }
}

/// 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 `i8` scales (per 16 weights), `d`.
/// Weight `j`: half `h = j / 128`; low nibble from byte `64 h + j % 64` (high nibble when
/// `j % 128 >= 64`), high pair `(j % 128) / 32` of byte `32 h + j % 32`; value
/// `(d * sc) * (q - 32)`.
fn q6_k(b: &[u8], o: &mut [f32; 256]) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = half_at(b, 208);
    for (g, out) in o.chunks_exact_mut(16).enumerate() {
        let dl = d * f32::from(sc[g] as i8);
        for (l16, o) in out.iter_mut().enumerate() {
            let j = g * 16 + l16;
            let (h, r) = (j / 128, j % 128);
            let low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
            let high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
            *o = dl * f32::from((low | high << 4) as i8 - 32);
        }
    }
}

/// The non-linear 4-bit table of `IQ4_NL` and `IQ4_XS`.
const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// `d`, then nibbles as in `Q4_0` indexing [`KVALUES_IQ4NL`]; value `d * k`.
fn iq4_nl(b: &[u8], o: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        o[j] = d * f32::from(KVALUES_IQ4NL[usize::from(qs[j] & 0x0F)]);
        o[j + 16] = d * f32::from(KVALUES_IQ4NL[usize::from(qs[j] >> 4)]);
    }
}

/// `d`, the scales' high bit pairs (a `u16`), their low nibbles (4 bytes), then per 32 weights
/// 16 bytes of nibbles as in `IQ4_NL`; value `(d * (sc - 32)) * k`.
fn iq4_xs(b: &[u8], o: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let scales_h = u16::from_le_bytes([b[2], b[3]]);
    let (scales_l, qs) = (&b[4..8], &b[8..136]);
    for (g, out) in o.chunks_exact_mut(32).enumerate() {
        let low = (scales_l[g / 2] >> (4 * (g % 2))) & 0x0F;
        let high = ((scales_h >> (2 * g)) & 0x03) as u8;
        let dl = d * f32::from((low | high << 4) as i8 - 32);
        let bytes = &qs[16 * g..16 * g + 16];
        for j in 0..16 {
            out[j] = dl * f32::from(KVALUES_IQ4NL[usize::from(bytes[j] & 0x0F)]);
            out[j + 16] = dl * f32::from(KVALUES_IQ4NL[usize::from(bytes[j] >> 4)]);
        }
    }
}

/// E2M1 values, doubled.
const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// An E8M0 exponent byte, then nibbles as in `Q4_0` indexing [`KVALUES_MXFP4`]; value
/// `2^(e - 128) * k` (half the E8M0 scale, as the table is doubled).
fn mxfp4(b: &[u8], o: &mut [f32; 32]) {
    let e = u32::from(b[0]);
    let d = f32::from_bits(if e < 2 {
        0x0020_0000 << e
    } else {
        (e - 1) << 23
    });
    let qs = &b[1..17];
    for j in 0..16 {
        o[j] = d * f32::from(KVALUES_MXFP4[usize::from(qs[j] & 0x0F)]);
        o[j + 16] = d * f32::from(KVALUES_MXFP4[usize::from(qs[j] >> 4)]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_bits_eq, has_gguf_py, python};
    use super::super::{GgmlType, GgufFile};
    use super::*;

    /// Writes, for each type, a tensor `<TYPE>` of random blocks (quantized by gguf-py where it
    /// quantizes the type, random bytes with finite scales otherwise) and `<TYPE>.ref`, its
    /// dequantization by `gguf.quants.dequantize` (NumPy's conversion for the integer types).
    const FIXTURE: &str = r#"
import sys, numpy as np, gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize
rng = np.random.default_rng(7)
w = gguf.GGUFWriter(sys.argv[1], "test")
def half(shape):
    return rng.normal(0, 0.05, size=shape).astype(np.float16).view(np.uint8).reshape(*shape[:-1], -1)
def raw(n_blocks, size, fills):
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for start in fills:
        b[:, start:start + 2] = half((n_blocks, 1))
    return b
def add(name, qtype, blocks, rows, ref=None):
    data = blocks if rows is None else blocks.reshape(rows, -1)
    w.add_tensor(name, data, raw_dtype=qtype)
    if ref is None:
        ref = dequantize(data, qtype)
    w.add_tensor(name + ".ref", np.ascontiguousarray(ref, dtype=np.float32))
x = rng.normal(0, 1, size=(3, 512)).astype(np.float32)
x[0, :32] = 0.0  # an all-zero block
for t in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.BF16):
    add(t.name, t, quantize(x, t), 3)
w.add_tensor("F32", x); w.add_tensor("F32.ref", x)
h = x.astype(np.float16); w.add_tensor("F16", h); w.add_tensor("F16.ref", h.astype(np.float32))
for name, dt in (("F64", np.float64), ("I8", np.int8), ("I16", np.int16), ("I32", np.int32), ("I64", np.int64)):
    v = (x * (1 if dt in (np.float64,) else 50)).astype(dt)
    w.add_tensor(name, v); w.add_tensor(name + ".ref", v.astype(np.float32))
nb = 6  # 3 rows of 512 weights: 6 blocks of 256, 48 of 32
add("Q2_K", T.Q2_K, raw(nb, 84, [80, 82]), 3)
add("Q3_K", T.Q3_K, raw(nb, 110, [108]), 3)
add("Q4_K", T.Q4_K, raw(nb, 144, [0, 2]), 3)
add("Q5_K", T.Q5_K, raw(nb, 176, [0, 2]), 3)
add("Q6_K", T.Q6_K, raw(nb, 210, [208]), 3)
add("IQ4_NL", T.IQ4_NL, raw(48, 18, [0]), 3)
add("IQ4_XS", T.IQ4_XS, raw(nb, 136, [0]), 3)
mx = raw(48, 17, []); mx[:, 0] = rng.integers(0, 255, size=48); mx[:3, 0] = [0, 1, 2]
add("MXFP4", T.MXFP4, mx, 3)
# A 3-D tensor: (2, 3, 64) in PyTorch order.
y = rng.normal(0, 1, size=(2, 3, 64)).astype(np.float32)
add("Q8_0.3d", T.Q8_0, quantize(y, T.Q8_0), None)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
"#;

    #[test]
    fn every_supported_type_matches_gguf_py_bit_for_bit() {
        if !has_gguf_py("every_supported_type_matches_gguf_py_bit_for_bit") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quants.gguf");
        python(FIXTURE, &[path.to_str().unwrap()]);
        let file = GgufFile::open(&path).unwrap();
        let mut seen = Vec::new();
        for info in file.tensors().iter().filter(|t| !t.name.ends_with(".ref")) {
            let reference = file.tensor(&format!("{}.ref", info.name)).unwrap();
            let ours = file.tensor_f32(&info.name).unwrap();
            let theirs = file.tensor_f32(&reference.name).unwrap();
            assert_eq!(info.shape(), reference.shape(), "{}", info.name);
            assert_bits_eq(&info.name, &ours, &theirs);
            seen.push(info.ggml_type);
        }
        let q83d = file.tensor("Q8_0.3d").unwrap();
        assert_eq!(q83d.shape(), vec![2, 3, 64]);
        assert_eq!(q83d.dims, vec![64, 3, 2]);
        for id in 0..64 {
            if let Some(ty) = GgmlType::from_id(id).filter(|t| supported(*t)) {
                assert!(seen.contains(&ty), "{ty} has no gguf-py comparison");
            }
        }
    }

    #[test]
    fn q8_0_block_by_hand() {
        let mut block = vec![0u8; 34];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        for j in 0..32 {
            block[2 + j] = (j as i8 - 16) as u8;
        }
        let mut out = [0f32; 32];
        dequantize(GgmlType::Q8_0, &block, &mut out);
        for (j, v) in out.iter().enumerate() {
            assert_eq!(*v, (j as f32 - 16.0) * 0.5);
        }
    }

    #[test]
    fn q4_0_nibble_order() {
        // Low nibbles are weights 0..16, high nibbles 16..32.
        let mut block = vec![0u8; 18];
        block[..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        block[2] = 0x9A; // weight 0: 0xA - 8 = 2, weight 16: 0x9 - 8 = 1
        let mut out = [0f32; 32];
        dequantize(GgmlType::Q4_0, &block, &mut out);
        assert_eq!((out[0], out[16], out[1]), (2.0, 1.0, -8.0));
    }

    #[test]
    fn sizes_follow_blocks() {
        assert_eq!(byte_len(GgmlType::Q4_K, 512), Some(288));
        assert_eq!(byte_len(GgmlType::Q8_0, 48), None);
        assert_eq!(byte_len(GgmlType::F16, 3), Some(6));
        assert!(!supported(GgmlType::IQ2_XXS));
    }

    #[test]
    #[should_panic(expected = "not supported")]
    fn unsupported_type_panics() {
        dequantize(GgmlType::IQ2_XXS, &[0; 66], &mut [0.0; 256]);
    }
}
