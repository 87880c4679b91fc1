//! `rope_kv_append_f16`: the fused "RoPE + KV append" step of attention, one dispatch.
//!
//! Contract:
//! - Reads the fused QKV projection output `qkv: [T, stride]` f32 (layout: [`QkvLayout`], see
//!   `crate::heads`), row t at position `positions[t]` (u32).
//! - q heads are rotated in place in `qkv` (RoPE math: `rope_f32`); k heads are rotated and
//!   stored as f16 into the K cache; v heads are stored as f16 into the V cache. The k columns
//!   of `qkv` are left unrotated (attention reads k from the cache). `rope = Some(a)`: cos and
//!   sin are multiplied by the attention factor `a` before rotating (HF's `attention_scaling`,
//!   1 except for YaRN), so q·k scales by a². With `rope = None` nothing
//!   is rotated and q is untouched: a plain KV append.
//! - Cache: a segmented f16 array `[segments, Hkv, cap, D]` ([`KvSegment`]): row t goes to
//!   segment `t / rows_per_segment`, slot `positions[t] − slot_bias`. The prefix cache
//!   `[Hkv, P_max, D]` is [`KvSegment::prefix`]; the per-path suffix cache
//!   `[N_max, Hkv, S_max, D]` is [`KvSegment::suffix`] (rows = N paths × tokens per path,
//!   path-major, slot = position − P). A row whose slot is ≥ cap (or whose position is below
//!   `slot_bias`) is skipped by the GPU — the caller's accounting must prevent that.
//! - f16 stores go through the runtime's `#storage_f16` helpers (shader-f16 or packed u32),
//!   rounding f32 → f16 to nearest (tests check against `half`'s round-to-nearest-even).
//! - Dispatch: one invocation per (row, head of q|kv, pair), 64 per workgroup, folded to 2-D.
//! - Limits: [`HeadDims::check`] (D % 4 == 0), `T·stride < 2³²`.

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::heads::{HeadDims, QkvLayout};
use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// Where rows go in a segmented f16 cache `[segments, Hkv, cap, D]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvSegment {
    /// Segments in the cache buffer (1 for the prefix, N_max for suffixes).
    pub segments: u32,
    /// Slots per segment (P_max or S_max).
    pub cap: u32,
    /// Consecutive rows per segment.
    pub rows_per_segment: u32,
    /// Subtracted from the position to get the slot.
    pub slot_bias: u32,
}

impl KvSegment {
    /// The prefix cache `[Hkv, p_max, D]`: `rows` prompt tokens, slot = position.
    pub fn prefix(p_max: u32, rows: u32) -> Self {
        KvSegment {
            segments: 1,
            cap: p_max,
            rows_per_segment: rows.max(1),
            slot_bias: 0,
        }
    }

    /// The suffix cache `[n_max, Hkv, s_max, D]`: rows are `tokens_per_path` tokens for each of
    /// the paths (path-major), slot = position − `prefix_len`.
    pub fn suffix(n_max: u32, s_max: u32, tokens_per_path: u32, prefix_len: u32) -> Self {
        KvSegment {
            segments: n_max,
            cap: s_max,
            rows_per_segment: tokens_per_path.max(1),
            slot_bias: prefix_len,
        }
    }
}

/// Uniform parameters (binding 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RopeKvAppendParams {
    /// T: rows.
    pub rows: u32,
    /// H.
    pub h: u32,
    /// Hkv.
    pub hkv: u32,
    /// D.
    pub d: u32,
    /// qkv row stride.
    pub stride: u32,
    /// q column.
    pub q_col: u32,
    /// k column.
    pub k_col: u32,
    /// v column.
    pub v_col: u32,
    /// 1 = rotate.
    /// 0: no rotation; else the factor cos and sin are scaled by.
    pub rope: f32,
    /// Slots per segment.
    pub cap: u32,
    /// Rows per segment.
    pub rows_per_seg: u32,
    /// Slot bias.
    pub slot_bias: u32,
}

/// Buffers of one `rope_kv_append_f16` dispatch.
pub struct RopeKvBuffers<'a> {
    /// `[T, stride]` f32, q rotated in place.
    pub qkv: BufferBinding<'a>,
    /// `[T]` u32.
    pub positions: BufferBinding<'a>,
    /// `[D/2]` f32.
    pub inv_freq: BufferBinding<'a>,
    /// `[segments, Hkv, cap, D]` f16.
    pub k_cache: BufferBinding<'a>,
    /// `[segments, Hkv, cap, D]` f16.
    pub v_cache: BufferBinding<'a>,
}

/// The compiled kernel.
pub struct RopeKvAppend {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl RopeKvAppend {
    /// Compiles (or fetches from the cache) the kernel.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        const SRC: &str = concat!(
            include_str!("../rope_f32/rope_math.wgsl"),
            include_str!("rope_kv_append_f16.wgsl")
        );
        let pipeline = gpu.pipeline("rope_kv_append_f16", SRC, "rope_kv_append_f16", &[])?;
        Ok(Self { pipeline })
    }

    /// Records the step for `rows` rows. `rope = None` makes it a plain KV append; `Some(a)` rotates
    /// with cos and sin scaled by `a` (> 0 and finite).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        rec: &mut Recorder<'_>,
        b: RopeKvBuffers<'_>,
        rows: u32,
        dims: HeadDims,
        layout: QkvLayout,
        dest: KvSegment,
        rope: Option<f32>,
    ) -> Result<(), KernelError> {
        dims.check()?;
        ensure(rope.is_none_or(|a| a.is_finite() && a > 0.0), || {
            format!("rope_kv_append: attention factor {rope:?} must be finite and > 0")
        })?;
        layout.check(dims)?;
        ensure(rows > 0, || "rope_kv_append: rows must be ≥ 1".into())?;
        ensure(dest.cap > 0 && dest.rows_per_segment > 0, || {
            format!("rope_kv_append: bad segment {dest:?}")
        })?;
        ensure(
            rows.div_ceil(dest.rows_per_segment) <= dest.segments,
            || {
                format!(
                    "rope_kv_append: {rows} rows need more than {} segments of {dest:?}",
                    dest.segments
                )
            },
        )?;
        let n_qkv = elems("qkv", &[rows.into(), layout.stride.into()])?;
        let n_cache = elems(
            "kv cache",
            &[
                dest.segments.into(),
                dims.hkv.into(),
                dest.cap.into(),
                dims.d.into(),
            ],
        )?;
        let threads = elems(
            "rope_kv_append threads",
            &[rows.into(), (dims.h + dims.hkv).into(), (dims.d / 2).into()],
        )?;
        need_bytes("qkv", &b.qkv, u64::from(n_qkv) * 4)?;
        need_bytes("positions", &b.positions, u64::from(rows) * 4)?;
        need_bytes("inv_freq", &b.inv_freq, u64::from(dims.d / 2) * 4)?;
        need_bytes("k_cache", &b.k_cache, u64::from(n_cache) * 2)?;
        need_bytes("v_cache", &b.v_cache, u64::from(n_cache) * 2)?;
        let params = RopeKvAppendParams {
            rows,
            h: dims.h,
            hkv: dims.hkv,
            d: dims.d,
            stride: layout.stride,
            q_col: layout.q_col,
            k_col: layout.k_col,
            v_col: layout.v_col,
            rope: rope.unwrap_or(0.0),
            cap: dest.cap,
            rows_per_seg: dest.rows_per_segment,
            slot_bias: dest.slot_bias,
        };
        let wg = fold_workgroups(rec.gpu(), threads.div_ceil(64));
        rec.dispatch(
            &self.pipeline,
            &params,
            &[b.qkv, b.positions, b.inv_freq, b.k_cache, b.v_cache],
            wg,
        )
    }
}
