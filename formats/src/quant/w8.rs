//! W8 packing, quantizer and dequantizer (layout and error bound: see `quant/mod.rs`).

use half::f16;

use super::{check_quant_shape, f16_round_up, f16s_from_le, non_finite};
use crate::FormatError;

/// A W8 matrix `[m, k]` in the kernel layout.
#[derive(Debug, Clone, PartialEq)]
pub struct W8Matrix {
    pub m: usize,
    pub k: usize,
    pub group_size: usize,
    /// `[m, k/4]` words; element `4j + i` is byte i (i8) of word j.
    pub q: Vec<u32>,
    /// `[m, k/group_size]`.
    pub scales: Vec<f16>,
}

impl W8Matrix {
    /// Check that the array lengths agree with `m`, `k`, `group_size`.
    pub fn check(&self) -> Result<(), FormatError> {
        check_quant_shape(
            self.q.len().saturating_mul(4),
            self.m,
            self.k,
            self.group_size,
            4,
        )?;
        if self.scales.len() == self.m * (self.k / self.group_size) {
            Ok(())
        } else {
            Err(FormatError::Quantize(format!(
                "W8 [{}, {}] G={}: array lengths disagree with the shape",
                self.m, self.k, self.group_size
            )))
        }
    }
}

/// Quantize a row-major `[m, k]` f32 matrix to W8 (symmetric, `s = absmax/127`).
pub fn quantize_w8(
    w: &[f32],
    m: usize,
    k: usize,
    group_size: usize,
) -> Result<W8Matrix, FormatError> {
    check_quant_shape(w.len(), m, k, group_size, 4)?;
    let mut q = vec![0u32; w.len() / 4];
    let mut scales = Vec::with_capacity(w.len() / group_size);
    for (g, group) in w.chunks_exact(group_size).enumerate() {
        let base = g * group_size;
        if let Some(i) = group.iter().position(|x| !x.is_finite()) {
            return Err(non_finite(base + i, k));
        }
        let absmax = group.iter().fold(0f32, |a, x| a.max(x.abs()));
        let s = f16_round_up(absmax / 127.0).ok_or_else(|| {
            FormatError::Quantize(format!(
                "group at [{}, {}] overflows f16 scale",
                base / k,
                base % k
            ))
        })?;
        let sf = s.to_f32();
        for (j, chunk) in group.chunks_exact(4).enumerate() {
            let mut word = 0u32;
            for (i, &x) in chunk.iter().enumerate() {
                let v = if sf > 0.0 {
                    (x / sf).round().clamp(-127.0, 127.0) as i8
                } else {
                    0
                };
                word |= u32::from(v as u8) << (8 * i);
            }
            q[base / 4 + j] = word;
        }
        scales.push(s);
    }
    Ok(W8Matrix {
        m,
        k,
        group_size,
        q,
        scales,
    })
}

/// Dequantize a W8 matrix to row-major `[m, k]` f32.
pub fn dequantize_w8(w: &W8Matrix) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.q.len() * 4);
    for (g, words) in w.q.chunks_exact((w.group_size / 4).max(1)).enumerate() {
        let s = w.scales.get(g).map_or(0.0, |h| h.to_f32());
        for &word in words {
            for b in word.to_le_bytes() {
                out.push(f32::from(b as i8) * s);
            }
        }
    }
    out
}

/// Dequantize W8 from raw little-endian byte arrays (`q` = m·k bytes, `scales` = m·(k/g)·2).
pub fn dequantize_w8_bytes(
    m: usize,
    k: usize,
    group_size: usize,
    q: &[u8],
    scales: &[u8],
) -> Result<Vec<f32>, FormatError> {
    let n = m
        .checked_mul(k)
        .ok_or_else(|| FormatError::Quantize("shape overflows".into()))?;
    check_quant_shape(n, m, k, group_size, 4)?;
    if q.len() != n || scales.len() != n / group_size * 2 {
        return Err(FormatError::Quantize(format!(
            "W8 [{m}, {k}] G={group_size}: byte lengths disagree"
        )));
    }
    let scales = f16s_from_le(scales);
    let mut out = Vec::with_capacity(n);
    for (g, gbytes) in q.chunks_exact(group_size).enumerate() {
        let s = scales[g];
        out.extend(gbytes.iter().map(|&b| f32::from(b as i8) * s));
    }
    Ok(out)
}
