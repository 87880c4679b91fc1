//! W4 packing, quantizer and dequantizer (layout and error bounds: see `quant/mod.rs`).

use half::f16;

use super::{check_quant_shape, f16_round_down, f16_round_up, f16s_from_le, non_finite};
use crate::FormatError;

/// A W4 matrix `[m, k]` in the kernel layout (structure of arrays).
#[derive(Debug, Clone, PartialEq)]
pub struct W4Matrix {
    pub m: usize,
    pub k: usize,
    pub group_size: usize,
    /// `[m, k/8]` words, 8 nibbles each, element `8j + i` in bits `4i..4i+4`.
    pub q: Vec<u32>,
    /// `[m, k/group_size]`.
    pub scales: Vec<f16>,
    /// `[m, k/group_size]`, present for the asymmetric scheme only.
    pub mins: Option<Vec<f16>>,
}

impl W4Matrix {
    /// Check that the array lengths agree with `m`, `k`, `group_size`.
    pub fn check(&self) -> Result<(), FormatError> {
        check_quant_shape(
            self.q.len().saturating_mul(8),
            self.m,
            self.k,
            self.group_size,
            8,
        )?;
        let groups = self.m * (self.k / self.group_size);
        let ok =
            self.scales.len() == groups && self.mins.as_ref().is_none_or(|v| v.len() == groups);
        if ok {
            Ok(())
        } else {
            Err(FormatError::Quantize(format!(
                "W4 [{}, {}] G={}: array lengths disagree with the shape",
                self.m, self.k, self.group_size
            )))
        }
    }
}

/// Quantize a row-major `[m, k]` f32 matrix to W4 (symmetric, or asymmetric when `asym`).
pub fn quantize_w4(
    w: &[f32],
    m: usize,
    k: usize,
    group_size: usize,
    asym: bool,
) -> Result<W4Matrix, FormatError> {
    check_quant_shape(w.len(), m, k, group_size, 8)?;
    let n_groups = w.len() / group_size;
    let mut q = vec![0u32; w.len() / 8];
    let mut scales = Vec::with_capacity(n_groups);
    let mut mins = if asym {
        Some(Vec::with_capacity(n_groups))
    } else {
        None
    };
    let mut nib = [0u8; 128];
    for (g, group) in w.chunks_exact(group_size).enumerate() {
        let base = g * group_size;
        if let Some(i) = group.iter().position(|x| !x.is_finite()) {
            return Err(non_finite(base + i, k));
        }
        let overflow = || {
            FormatError::Quantize(format!(
                "group at [{}, {}] overflows f16 scale",
                base / k,
                base % k
            ))
        };
        match mins.as_mut() {
            None => {
                let absmax = group.iter().fold(0f32, |a, x| a.max(x.abs()));
                let s = f16_round_up(absmax / 7.0).ok_or_else(overflow)?;
                let sf = s.to_f32();
                for (dst, &x) in nib.iter_mut().zip(group) {
                    *dst = if sf > 0.0 {
                        ((x / sf).round() + 8.0).clamp(0.0, 15.0) as u8
                    } else {
                        8
                    };
                }
                scales.push(s);
            }
            Some(mins) => {
                let (lo, hi) = group
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                        (l.min(x), h.max(x))
                    });
                let mn = f16_round_down(lo).ok_or_else(overflow)?;
                let mnf = mn.to_f32();
                let s = f16_round_up((hi - mnf) / 15.0).ok_or_else(overflow)?;
                let sf = s.to_f32();
                for (dst, &x) in nib.iter_mut().zip(group) {
                    *dst = if sf > 0.0 {
                        ((x - mnf) / sf).round().clamp(0.0, 15.0) as u8
                    } else {
                        0
                    };
                }
                scales.push(s);
                mins.push(mn);
            }
        }
        for (j, chunk) in nib[..group_size].chunks_exact(8).enumerate() {
            let word = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &v)| acc | (u32::from(v) << (4 * i)));
            q[base / 8 + j] = word;
        }
    }
    Ok(W4Matrix {
        m,
        k,
        group_size,
        q,
        scales,
        mins,
    })
}

/// Dequantize a W4 matrix to row-major `[m, k]` f32 (arrays assumed consistent; see `check`).
pub fn dequantize_w4(w: &W4Matrix) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.q.len() * 8);
    let words_per_group = w.group_size / 8;
    for (g, words) in w.q.chunks_exact(words_per_group.max(1)).enumerate() {
        let s = w.scales.get(g).map_or(0.0, |h| h.to_f32());
        let mn = w
            .mins
            .as_ref()
            .map(|m| m.get(g).map_or(0.0, |h| h.to_f32()));
        for &word in words {
            for i in 0..8 {
                let qv = ((word >> (4 * i)) & 0xF) as f32;
                out.push(match mn {
                    None => (qv - 8.0) * s,
                    Some(mn) => qv * s + mn,
                });
            }
        }
    }
    out
}

/// Dequantize W4 from raw little-endian byte arrays (a `.kst` region view).
///
/// Lengths are checked: `q` = m·k/2 bytes, `scales` (and `mins`) = m·(k/g)·2 bytes.
pub fn dequantize_w4_bytes(
    m: usize,
    k: usize,
    group_size: usize,
    q: &[u8],
    scales: &[u8],
    mins: Option<&[u8]>,
) -> Result<Vec<f32>, FormatError> {
    let n = m
        .checked_mul(k)
        .ok_or_else(|| FormatError::Quantize("shape overflows".into()))?;
    check_quant_shape(n, m, k, group_size, 8)?;
    let sbytes = n / group_size * 2;
    if q.len() != n / 2 || scales.len() != sbytes || mins.is_some_and(|b| b.len() != sbytes) {
        return Err(FormatError::Quantize(format!(
            "W4 [{m}, {k}] G={group_size}: byte lengths disagree"
        )));
    }
    let scales = f16s_from_le(scales);
    let mins = mins.map(f16s_from_le);
    let mut out = Vec::with_capacity(n);
    for (g, gbytes) in q.chunks_exact(group_size / 2).enumerate() {
        let s = scales[g];
        let mn = mins.as_ref().map(|v| v[g]);
        for b in gbytes.chunks_exact(4) {
            let word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for i in 0..8 {
                let qv = ((word >> (4 * i)) & 0xF) as f32;
                out.push(match mn {
                    None => (qv - 8.0) * s,
                    Some(mn) => qv * s + mn,
                });
            }
        }
    }
    Ok(out)
}
