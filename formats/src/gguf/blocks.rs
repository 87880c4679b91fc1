//! GGML block decoding: Q4_0 / Q4_1 / Q8_0 → W4 / W8 by moving bits only, and GGML's own
//! dequantization formulas (the reference the mapping is tested against).
//!
//! GGML blocks (32 elements along ne0 = K):
//! - Q4_0: `f16 d, u8 qs[16]`; element j (< 16) is the low nibble of `qs[j]`, element j+16 the
//!   high nibble; `w = (q - 8) · d`.
//! - Q4_1: `f16 d, f16 m, u8 qs[16]`, same nibble order; `w = q · d + m`.
//! - Q8_0: `f16 d, i8 qs[32]`; `w = q · d`.
//!
//! Kestrel layouts (ARCHITECTURE.md): W4 element `k = 8j + i` of a row is bits `4i..4i+4` of
//! word j, one f16 scale (and for Q4_1 one f16 min) per group of 32; W8 element `k = 4j + i` is
//! byte i of word j. So a block's `d` becomes the group scale, `m` the group min, and only the
//! nibble order changes: the dequantized values are bit-identical.

use half::{bf16, f16};

use super::error::GgufError;
use super::types::{GgmlType, Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};
use crate::quant::{W4Matrix, W8Matrix};

fn f16_at(b: &[u8], i: usize) -> f16 {
    f16::from_le_bytes([b[i], b[i + 1]])
}

/// Number of blocks of a `[m, k]` matrix, checking that `data` holds exactly them.
fn check_len(
    ty: GgmlType,
    data: &[u8],
    m: usize,
    k: usize,
    block_bytes: usize,
) -> Result<usize, GgufError> {
    let n_blocks = m.checked_mul(k / QK);
    if !k.is_multiple_of(QK)
        || n_blocks.and_then(|n| n.checked_mul(block_bytes)) != Some(data.len())
    {
        return Err(GgufError::Convert(format!(
            "{ty} data of {} bytes does not hold a [{m}, {k}] matrix",
            data.len()
        )));
    }
    Ok(n_blocks.unwrap_or(0))
}

/// Nibbles of one 16-byte Q4 block payload, as the 4 W4 words of its group.
fn q4_block_words(qs: &[u8]) -> [u32; 4] {
    let mut words = [0u32; 4];
    for e in 0..QK {
        let nib = if e < 16 {
            qs[e] & 0x0f
        } else {
            qs[e - 16] >> 4
        };
        words[e / 8] |= u32::from(nib) << (4 * (e % 8));
    }
    words
}

/// Map Q4_0 (`asym = false`) or Q4_1 (`asym = true`) data of a `[m, k]` matrix (GGML
/// `ne = [k, m]`) onto W4 with group size 32.
pub fn q4_to_w4(data: &[u8], m: usize, k: usize, asym: bool) -> Result<W4Matrix, GgufError> {
    let (ty, bb, qs_at) = if asym {
        (GgmlType::Q4_1, Q4_1_BLOCK_BYTES, 4)
    } else {
        (GgmlType::Q4_0, Q4_0_BLOCK_BYTES, 2)
    };
    let n_blocks = check_len(ty, data, m, k, bb)?;
    let mut q = Vec::with_capacity(n_blocks * 4);
    let mut scales = Vec::with_capacity(n_blocks);
    let mut mins = Vec::with_capacity(if asym { n_blocks } else { 0 });
    for block in data.chunks_exact(bb) {
        scales.push(f16_at(block, 0));
        if asym {
            mins.push(f16_at(block, 2));
        }
        q.extend_from_slice(&q4_block_words(&block[qs_at..qs_at + QK / 2]));
    }
    Ok(W4Matrix {
        m,
        k,
        group_size: QK,
        q,
        scales,
        mins: asym.then_some(mins),
    })
}

/// Map Q8_0 data of a `[m, k]` matrix onto W8 with group size 32.
pub fn q8_0_to_w8(data: &[u8], m: usize, k: usize) -> Result<W8Matrix, GgufError> {
    let n_blocks = check_len(GgmlType::Q8_0, data, m, k, Q8_0_BLOCK_BYTES)?;
    let mut q = Vec::with_capacity(n_blocks * QK / 4);
    let mut scales = Vec::with_capacity(n_blocks);
    for block in data.chunks_exact(Q8_0_BLOCK_BYTES) {
        scales.push(f16_at(block, 0));
        q.extend(
            block[2..]
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    Ok(W8Matrix {
        m,
        k,
        group_size: QK,
        q,
        scales,
    })
}

/// Decode F32 / F16 / BF16 data to f32 (exact widening).
pub fn float_to_f32(ty: GgmlType, data: &[u8], n_elements: usize) -> Result<Vec<f32>, GgufError> {
    let width = match ty {
        GgmlType::F32 => 4,
        GgmlType::F16 | GgmlType::BF16 => 2,
        _ => return Err(GgufError::Convert(format!("{ty} is not a float type"))),
    };
    if Some(data.len()) != n_elements.checked_mul(width) {
        return Err(GgufError::Convert(format!(
            "{ty} data of {} bytes does not hold {n_elements} elements",
            data.len()
        )));
    }
    Ok(match ty {
        GgmlType::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        GgmlType::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    })
}

/// GGML's own dequantization (`dequantize_row_*` in ggml-quants.c) of F32 / F16 / BF16 /
/// Q4_0 / Q4_1 / Q8_0 data; the reference that the W4/W8 mapping must reproduce bit for bit.
pub fn ggml_dequantize(
    ty: GgmlType,
    data: &[u8],
    n_elements: usize,
) -> Result<Vec<f32>, GgufError> {
    let (block_bytes, qs_at) = match ty {
        GgmlType::Q4_0 => (Q4_0_BLOCK_BYTES, 2),
        GgmlType::Q4_1 => (Q4_1_BLOCK_BYTES, 4),
        GgmlType::Q8_0 => (Q8_0_BLOCK_BYTES, 2),
        _ => return float_to_f32(ty, data, n_elements),
    };
    check_len(ty, data, 1, n_elements, block_bytes)?;
    let mut y = vec![0f32; n_elements];
    for (b, out) in data.chunks_exact(block_bytes).zip(y.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0).to_f32();
        let qs = &b[qs_at..];
        match ty {
            GgmlType::Q8_0 => {
                for j in 0..QK {
                    out[j] = f32::from(qs[j] as i8) * d;
                }
            }
            GgmlType::Q4_1 => {
                let m = f16_at(b, 2).to_f32();
                for j in 0..QK / 2 {
                    out[j] = f32::from(qs[j] & 0x0f) * d + m;
                    out[j + QK / 2] = f32::from(qs[j] >> 4) * d + m;
                }
            }
            _ => {
                for j in 0..QK / 2 {
                    out[j] = (i32::from(qs[j] & 0x0f) - 8) as f32 * d;
                    out[j + QK / 2] = (i32::from(qs[j] >> 4) - 8) as f32 * d;
                }
            }
        }
    }
    Ok(y)
}
