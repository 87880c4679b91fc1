//! `attention_decode_f16` (+ `attention_decode_merge_f32`): one decode step of N paths over a
//! shared prefix and per-path suffixes, split-K ("flash-decoding") with an exact merge.
//!
//! Contract:
//! - Math: path n, head h (kv head `h / G`): `out[n, h] = softmax_j(q·k_j / sqrt(D)) · v_j` over
//!   the prefix slots `0 .. P` followed by path n's suffix slots `0 .. s_len[n]` (identical to
//!   attention over the concatenation). No keys at all (P = 0, s_len = 0) gives 0.
//! - Layouts: q from rows of `[N, stride]` f32 at `q_col` (the fused qkv buffer, see
//!   `crate::heads`); prefix `K_pre, V_pre: [Hkv, P_max, D]` f16; suffixes
//!   `K_suf, V_suf: [N_max, Hkv, S_max, D]` f16 (path n = segment n); `s_len: [N]` u32 valid
//!   slots per path INCLUDING the token appended this step (record `rope_kv_append_f16` first);
//!   `out: [N, H, D]` f32; `scratch`: ≥ [`AttentionDecode::scratch_bytes`].
//! - Pass 1 (`attention_decode_f16`): keys are cut into chunks of C keys; a workgroup per
//!   (prefix chunk, kv head) stages the chunk's K/V once in workgroup memory and serves ALL
//!   N·G queries of that kv head (the prefix is read once per step, not once per path); a
//!   workgroup per (path, suffix chunk, kv head) serves that path's G queries. Each writes
//!   (acc, max m, sum l, 2 unused) per query to `scratch: [N, H, np + ns, D + 4]` f32 (whole
//!   16-byte quads: the merge reads 4 values per load).
//!   Pass 2 (`attention_decode_merge_f32`): `M = max m_c`, `out = Σ acc_c e^(m_c − M) /
//!   Σ l_c e^(m_c − M)` — exact, so the split never changes the result beyond rounding.
//!   Two dispatches per layer.
//! - Chunking ([`DecodePlan`]): C = the multiple of the tile size nearest to (P + S)/16, at most
//!   what one lavapipe invocation can loop over (see `attention_prefill_f16`); `s_max` bounds
//!   every `s_len[n]` (it sizes the suffix chunk grid; larger `s_len` values are clamped).
//! - Limits: [`HeadDims::check_attention`], `1 ≤ N ≤ N_max`, `N·G ≤ 128`, `P ≤ P_max`,
//!   `s_max ≤ S_max`.
//! - Tolerance vs `reference`: nMSE ≤ 1e-9 asserted (measured ~1e-13).

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::attention_prefill_f16::{keys_per_tile, loop_iterations, CPU_LOOP_BUDGET};
use crate::heads::{HeadDims, QkvLayout};
use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// Floats after a partial's D accumulators: m, l and 2 unused (a partial is whole quads).
pub(crate) const PART_EXTRA: u32 = 4;

/// Sizes of one decode step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeShape {
    /// N: paths decoded this step (rows of q, entries of `s_len`).
    pub n: u32,
    /// P: shared prefix length.
    pub p_len: u32,
    /// P_max: prefix cache capacity.
    pub p_cap: u32,
    /// N_max: suffix segments in the cache.
    pub n_max: u32,
    /// S_max: suffix cache capacity per path.
    pub s_cap: u32,
    /// Upper bound on `s_len[n]` this step (≤ S_max).
    pub s_max: u32,
}

/// How pass 1 splits the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodePlan {
    /// C: keys per chunk.
    pub chunk: u32,
    /// Prefix chunks.
    pub np: u32,
    /// Suffix chunks per path.
    pub ns: u32,
}

impl DecodePlan {
    /// The split for `shape` at head dim `d`.
    pub fn new(shape: &DecodeShape, d: u32) -> Self {
        let bk = keys_per_tile(d);
        let total = shape.p_len + shape.s_max;
        let mut chunk = total.div_ceil(16).div_ceil(bk).max(1) * bk;
        while chunk > bk && loop_iterations(u64::from(chunk), d) > CPU_LOOP_BUDGET {
            chunk -= bk;
        }
        DecodePlan {
            chunk,
            np: shape.p_len.div_ceil(chunk),
            ns: shape.s_max.div_ceil(chunk),
        }
    }
}

/// Uniform parameters of pass 1.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionDecodeParams {
    /// N.
    pub n: u32,
    /// H.
    pub h: u32,
    /// Hkv.
    pub hkv: u32,
    /// D.
    pub d: u32,
    /// q row stride.
    pub q_stride: u32,
    /// q column.
    pub q_col: u32,
    /// P.
    pub p_len: u32,
    /// P_max.
    pub p_cap: u32,
    /// S_max.
    pub s_cap: u32,
    /// C.
    pub chunk: u32,
    /// Prefix chunks.
    pub np: u32,
    /// Suffix chunks per path.
    pub ns: u32,
    /// Keys per tile.
    pub bk: u32,
    /// 1/sqrt(D).
    pub scale: f32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Uniform parameters of pass 2.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionMergeParams {
    /// N·H.
    pub rows: u32,
    /// D.
    pub d: u32,
    /// Partials per row.
    pub nc: u32,
    /// Padding.
    pub _pad: u32,
}

/// Buffers of one decode attention step.
pub struct DecodeBuffers<'a> {
    /// `[N, stride]` f32 (the fused qkv buffer).
    pub q: BufferBinding<'a>,
    /// `[Hkv, P_max, D]` f16.
    pub k_pre: BufferBinding<'a>,
    /// `[Hkv, P_max, D]` f16.
    pub v_pre: BufferBinding<'a>,
    /// `[N_max, Hkv, S_max, D]` f16.
    pub k_suf: BufferBinding<'a>,
    /// `[N_max, Hkv, S_max, D]` f16.
    pub v_suf: BufferBinding<'a>,
    /// `[N]` u32.
    pub s_len: BufferBinding<'a>,
    /// Partials, ≥ `scratch_bytes`.
    pub scratch: BufferBinding<'a>,
    /// `[N, H, D]` f32.
    pub out: BufferBinding<'a>,
}

/// The compiled decode attention kernels.
pub struct AttentionDecode {
    partial: Arc<wgpu::ComputePipeline>,
    merge: Arc<wgpu::ComputePipeline>,
}

impl AttentionDecode {
    /// Compiles (or fetches from the cache) both passes.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        let partial = Self::partial_for(gpu, 64)?;
        let merge = gpu.pipeline(
            "attention_decode_merge_f32",
            include_str!("attention_decode_merge_f32.wgsl"),
            "attention_decode_merge_f32",
            &[],
        )?;
        Ok(Self { partial, merge })
    }

    /// Pass 1 specialised for head dim `d` (pipeline constant `D`; cached by the runtime).
    fn partial_for(gpu: &Gpu, d: u32) -> Result<Arc<wgpu::ComputePipeline>, KernelError> {
        const SRC: &str = concat!(
            include_str!("../attention_prefill_f16/attn_blocks.wgsl"),
            include_str!("attention_decode_f16.wgsl")
        );
        gpu.pipeline(
            "attention_decode_f16",
            SRC,
            "attention_decode_f16",
            &[("D", f64::from(d))],
        )
    }

    /// Bytes of scratch one step of `shape` needs.
    pub fn scratch_bytes(dims: HeadDims, shape: &DecodeShape) -> u64 {
        let plan = DecodePlan::new(shape, dims.d);
        // At least one quad: the pass binds the scratch as `array<vec4<u32>>` even when there
        // is nothing to split (no keys at all), and a binding must hold one element.
        (u64::from(shape.n)
            * u64::from(dims.h)
            * u64::from(plan.np + plan.ns)
            * u64::from(dims.d + PART_EXTRA)
            * 4)
        .max(16)
    }

    /// Records both passes.
    pub fn encode(
        &self,
        rec: &mut Recorder<'_>,
        b: DecodeBuffers<'_>,
        dims: HeadDims,
        layout: QkvLayout,
        shape: DecodeShape,
    ) -> Result<(), KernelError> {
        dims.check_attention()?;
        layout.check(dims)?;
        let DecodeShape {
            n,
            p_len,
            p_cap,
            n_max,
            s_cap,
            s_max,
        } = shape;
        ensure(n >= 1 && n <= n_max, || {
            format!("attention_decode: N ({n}) must be in 1..=N_max ({n_max})")
        })?;
        ensure(n * dims.group() <= 128, || {
            format!("attention_decode: N·G = {} exceeds 128", n * dims.group())
        })?;
        ensure(p_len <= p_cap && s_max <= s_cap, || {
            format!("attention_decode: lengths exceed the cache: {shape:?}")
        })?;
        let plan = DecodePlan::new(&shape, dims.d);
        let n_q = elems("q", &[n.into(), layout.stride.into()])?;
        let n_pre = elems(
            "prefix cache",
            &[dims.hkv.into(), p_cap.into(), dims.d.into()],
        )?;
        let n_suf = elems(
            "suffix cache",
            &[n_max.into(), dims.hkv.into(), s_cap.into(), dims.d.into()],
        )?;
        let n_part = elems(
            "scratch",
            &[
                n.into(),
                dims.h.into(),
                (plan.np + plan.ns).into(),
                (dims.d + PART_EXTRA).into(),
            ],
        )?;
        let n_out = elems("out", &[n.into(), dims.h.into(), dims.d.into()])?;
        need_bytes("q", &b.q, u64::from(n_q) * 4)?;
        need_bytes("k_pre", &b.k_pre, u64::from(n_pre) * 2)?;
        need_bytes("v_pre", &b.v_pre, u64::from(n_pre) * 2)?;
        need_bytes("k_suf", &b.k_suf, u64::from(n_suf) * 2)?;
        need_bytes("v_suf", &b.v_suf, u64::from(n_suf) * 2)?;
        need_bytes("s_len", &b.s_len, u64::from(n) * 4)?;
        need_bytes("scratch", &b.scratch, u64::from(n_part) * 4)?;
        need_bytes("out", &b.out, u64::from(n_out) * 4)?;
        let params = AttentionDecodeParams {
            n,
            h: dims.h,
            hkv: dims.hkv,
            d: dims.d,
            q_stride: layout.stride,
            q_col: layout.q_col,
            p_len,
            p_cap,
            s_cap,
            chunk: plan.chunk,
            np: plan.np,
            ns: plan.ns,
            bk: keys_per_tile(dims.d),
            scale: 1.0 / (dims.d as f32).sqrt(),
            _pad: [0; 2],
        };
        let groups = plan.np + n * plan.ns;
        let partial = if dims.d == 64 {
            Arc::clone(&self.partial)
        } else {
            Self::partial_for(rec.gpu(), dims.d)?
        };
        let scratch = b.scratch;
        rec.dispatch(
            &partial,
            &params,
            &[b.q, b.k_pre, b.v_pre, b.k_suf, b.v_suf, b.s_len, scratch],
            [groups, dims.hkv, 1],
        )?;
        let rows = n * dims.h;
        let merge = AttentionMergeParams {
            rows,
            d: dims.d,
            nc: plan.np + plan.ns,
            _pad: 0,
        };
        let wg = fold_workgroups(rec.gpu(), rows);
        rec.dispatch(&self.merge, &merge, &[scratch, b.out], wg)
    }
}
