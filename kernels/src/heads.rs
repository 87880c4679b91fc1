//! Attention geometry shared by the RoPE, KV-cache and attention kernels (K2).
//!
//! - `HeadDims`: H query heads, Hkv kv heads (Hkv divides H; GQA group G = H / Hkv), head dim D.
//! - `QkvLayout`: where q, k and v live inside a row of the fused QKV projection output.
//!   The engine's QKV matmul writes `qkv: [T, (H + 2·Hkv)·D]` f32 with row t =
//!   `q (H·D) | k (Hkv·D) | v (Hkv·D)` — [`QkvLayout::fused`]. Head j of q is columns
//!   `q_col + j·D .. q_col + (j+1)·D` of a row; likewise k and v. Separate q/k/v buffers are the
//!   special case `stride = heads·D, col = 0`.
//! - KV cache (f16, per layer; the engine allocates, the kernels read/write it):
//!   prefix `K_pre, V_pre: [Hkv, P_max, D]` (the shared prompt, slot = absolute position) and
//!   suffix `K_suf, V_suf: [N_max, Hkv, S_max, D]` (path n's generated tokens, slot = position − P).
//!   Both are "segmented" arrays `[segments, Hkv, cap, D]`: element (seg, h, slot, d) is at
//!   `((seg·Hkv + h)·cap + slot)·D + d`.

use crate::shape::ensure;
use crate::KernelError;

/// Head counts and head dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadDims {
    /// H: query heads.
    pub h: u32,
    /// Hkv: key/value heads (divides H).
    pub hkv: u32,
    /// D: head dimension.
    pub d: u32,
}

impl HeadDims {
    /// G = H / Hkv.
    pub fn group(&self) -> u32 {
        self.h / self.hkv.max(1)
    }

    /// `Err(Shape)` unless `H, Hkv ≥ 1`, Hkv divides H, `4 ≤ D ≤ 256` and `D % 4 == 0`
    /// (the f16 cache is written in pairs that must not straddle the rotate-half split).
    pub fn check(&self) -> Result<(), KernelError> {
        let HeadDims { h, hkv, d } = *self;
        ensure(h >= 1 && hkv >= 1 && h % hkv == 0, || {
            format!("heads: Hkv ({hkv}) must divide H ({h})")
        })?;
        ensure((4..=256).contains(&d) && d % 4 == 0, || {
            format!("heads: D ({d}) must be a multiple of 4 in 4..=256")
        })
    }

    /// [`Self::check`] plus `D % 16 == 0` (the attention kernels work in 16-dim blocks).
    pub fn check_attention(&self) -> Result<(), KernelError> {
        self.check()?;
        ensure(self.d.is_multiple_of(16), || {
            format!("attention: D ({}) must be a multiple of 16", self.d)
        })
    }
}

/// Column layout of q, k, v inside the rows of one f32 buffer (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QkvLayout {
    /// Elements between consecutive rows.
    pub stride: u32,
    /// First column of q head 0.
    pub q_col: u32,
    /// First column of k head 0.
    pub k_col: u32,
    /// First column of v head 0.
    pub v_col: u32,
}

impl QkvLayout {
    /// The fused QKV projection output `[T, (H + 2·Hkv)·D]`: q, then k, then v.
    pub fn fused(dims: HeadDims) -> Self {
        let HeadDims { h, hkv, d } = dims;
        QkvLayout {
            stride: (h + 2 * hkv) * d,
            q_col: 0,
            k_col: h * d,
            v_col: (h + hkv) * d,
        }
    }

    /// `Err(Shape)` unless each of q, k, v fits inside a row.
    pub fn check(&self, dims: HeadDims) -> Result<(), KernelError> {
        let (q_end, kv_span) = (
            u64::from(dims.h) * u64::from(dims.d),
            u64::from(dims.hkv) * u64::from(dims.d),
        );
        let s = u64::from(self.stride);
        ensure(
            u64::from(self.q_col) + q_end <= s
                && u64::from(self.k_col) + kv_span <= s
                && u64::from(self.v_col) + kv_span <= s,
            || format!("qkv layout {self:?} does not fit {dims:?}"),
        )
    }
}
