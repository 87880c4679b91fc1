//! Group-wise W4 / W8 quantization: packing layouts and round-to-nearest quantizers.
//!
//! Layouts are exactly ARCHITECTURE.md "Weight layouts" (a weight is HF `[M, K]`, groups of G
//! consecutive elements along K, G ∈ {32, 64, 128}):
//! - W4: `q: [M, K/8] u32`, element `k = 8j + i` of row m in bits `4i..4i+4` of `q[m*K/8 + j]`;
//!   `scales: [M, K/G] f16`; symmetric `w = (q - 8)·s`; asymmetric (`mins` present) `w = q·s + min`.
//! - W8: `q: [M, K/4] u32`, element `k = 4j + i` is byte i (two's-complement i8) of word j;
//!   `scales: [M, K/G] f16`; `w = q·s`.
//!
//! Quantizers (round to nearest, per group), with the f16 rounding of scales accounted for so the
//! per-element error bound holds against the *stored* scale `s`:
//! - W4 symmetric: `s = absmax/7` rounded *up* to f16, `q = clamp(round(w/s) + 8, 0, 15)`;
//!   `|dequant - w| ≤ s/2` (plus f32 rounding).
//! - W4 asymmetric: `min` = group min rounded *down* to f16, `s = (max - min)/15` rounded up,
//!   `q = clamp(round((w - min)/s), 0, 15)`; `|dequant - w| ≤ s/2`.
//! - W8: `s = absmax/127` rounded up, `q = clamp(round(w/s), -127, 127)`; `|error| ≤ s/2`.
//!
//! A zero group (or one whose scale underflows f16) stores `s = 0` and dequantizes to exactly 0
//! (sym / W8) or `min` (asym) — never NaN. Non-finite inputs, or groups whose scale would overflow
//! f16, are [`FormatError::Quantize`] errors.

mod w4;
mod w8;

pub use w4::{dequantize_w4, dequantize_w4_bytes, quantize_w4, W4Matrix};
pub use w8::{dequantize_w8, dequantize_w8_bytes, quantize_w8, W8Matrix};

use half::f16;

use crate::FormatError;

/// Group sizes the kernels implement.
pub const GROUP_SIZES: [usize; 3] = [32, 64, 128];

/// Check `m`, `k`, `group_size` and the input length for a quantizer (`pack` = elements per u32).
pub(crate) fn check_quant_shape(
    len: usize,
    m: usize,
    k: usize,
    group_size: usize,
    pack: usize,
) -> Result<(), FormatError> {
    if !GROUP_SIZES.contains(&group_size) {
        return Err(FormatError::Quantize(format!(
            "group size {group_size} not in {GROUP_SIZES:?}"
        )));
    }
    if m == 0 || k == 0 || !k.is_multiple_of(group_size) || !k.is_multiple_of(pack) {
        return Err(FormatError::Quantize(format!(
            "shape [{m}, {k}]: K must be a non-zero multiple of the group size {group_size}"
        )));
    }
    match m.checked_mul(k) {
        Some(n) if n == len => Ok(()),
        _ => Err(FormatError::Quantize(format!(
            "shape [{m}, {k}] does not match {len} input values"
        ))),
    }
}

/// Smallest f16 ≥ x (x finite, ≥ 0). `None` if it overflows f16.
pub(crate) fn f16_round_up(x: f32) -> Option<f16> {
    let h = f16::from_f32(x);
    let h = if h.to_f32() < x {
        f16::from_bits(h.to_bits() + 1)
    } else {
        h
    };
    h.is_finite().then_some(h)
}

/// Largest f16 ≤ x (x finite). `None` if it overflows f16.
pub(crate) fn f16_round_down(x: f32) -> Option<f16> {
    let h = f16::from_f32(x);
    let h = if h.to_f32() > x {
        let b = h.to_bits();
        if b == 0 {
            f16::from_bits(0x8001) // +0 → smallest negative subnormal
        } else if b & 0x8000 == 0 {
            f16::from_bits(b - 1)
        } else {
            f16::from_bits(b + 1)
        }
    } else {
        h
    };
    h.is_finite().then_some(h)
}

/// Error for a non-finite input value at flat index `idx` of a `[m, k]` matrix.
pub(crate) fn non_finite(idx: usize, k: usize) -> FormatError {
    FormatError::Quantize(format!("non-finite value at [{}, {}]", idx / k, idx % k))
}

/// Read little-endian f16 values from bytes (length must be even; checked by callers).
pub(crate) fn f16s_from_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

#[cfg(test)]
mod tests;
