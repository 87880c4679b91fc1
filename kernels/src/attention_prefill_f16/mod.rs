//! `attention_prefill_f16`: causal GQA attention of a prompt chunk over the f16 prefix cache.
//!
//! Contract:
//! - Math: for query t (position `past + t`) of head h, kv head `h / G` (G = H / Hkv):
//!   `out[t, h] = softmax_j(q·k_j / sqrt(D)) · v_j` over cache slots `j = 0 ..= past + t`.
//!   Online softmax (running max, sum, accumulator) in f32; K/V are f16, widened to f32.
//! - Layouts: q read from the fused qkv buffer `[T, stride]` at `q_col` (see `crate::heads`);
//!   K/V: the prefix cache `[Hkv, cap, D]` f16 that must already hold slots `0 .. past + T`
//!   (record `rope_kv_append_f16` first — so chunked prefill works); `out: [T, H, D]` f32.
//! - Dispatch: workgroup per (block of 64 queries, head, key split) = `[ceil(T/64), H, splits]`; one invocation
//!   per query; K/V tiles of `min(64, 4096/D)` keys staged in workgroup memory (16 KiB) and
//!   shared by the block.
//! - Limits: [`HeadDims::check_attention`] (D % 16 == 0, D ≤ 256), `past + T ≤ cap`, `T ≥ 1`.
//!   lavapipe (Mesa gallivm) silently stops any invocation after 65,535 loop iterations in
//!   total, so loops run over 16-dim blocks (≈ 2 + D/8 iterations per key) and contexts longer
//!   than one invocation's budget (≈ 3,900 keys at D = 64, ≈ 2,100 at D = 128) are split over
//!   workgroups ([`PrefillPlan`], `wg.z`) into partials merged exactly by
//!   `attention_decode_merge_f32` — [`AttentionPrefill::encode_split`] with scratch; plain
//!   `encode` returns `KernelError::Limit` for them. The plan is the same on every adapter.
//! - Tolerance vs `reference` (f64 softmax on the same f16 K/V): tests assert nMSE ≤ 1e-9
//!   (measured ~1e-13; q is f32 so only summation order and `exp` differ).

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::attention_decode_f16::{AttentionMergeParams, PART_EXTRA};
use crate::heads::{HeadDims, QkvLayout};
use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// Uniform parameters (binding 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionPrefillParams {
    /// T.
    pub t: u32,
    /// H.
    pub h: u32,
    /// Hkv.
    pub hkv: u32,
    /// D.
    pub d: u32,
    /// qkv row stride.
    pub q_stride: u32,
    /// q column.
    pub q_col: u32,
    /// Cached tokens before this chunk.
    pub past: u32,
    /// P_max.
    pub cap: u32,
    /// Keys per tile.
    pub bk: u32,
    /// 1/sqrt(D).
    pub scale: f32,
    /// Keys per split (`u32::MAX` when unsplit).
    pub chunk: u32,
    /// Splits (1 = normalised output straight to `out`).
    pub nsplit: u32,
}

/// How prefill splits the key range (split-K over `wg.z`) so that one invocation stays within
/// lavapipe's loop budget; the splits are merged by `attention_decode_merge_f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefillPlan {
    /// Keys per split (`u32::MAX` when unsplit).
    pub chunk: u32,
    /// Number of splits (1 = one dispatch, no scratch).
    pub nsplit: u32,
}

impl PrefillPlan {
    /// The plan for queries seeing up to `keys` keys at head dim `d` (the same on every adapter,
    /// so results do not depend on the device).
    pub fn new(keys: u32, d: u32) -> Self {
        if loop_iterations(u64::from(keys), d) <= CPU_LOOP_BUDGET {
            return PrefillPlan {
                chunk: u32::MAX,
                nsplit: 1,
            };
        }
        let bk = keys_per_tile(d);
        let mut chunk = keys.div_ceil(bk) * bk;
        while chunk > bk && loop_iterations(u64::from(chunk), d) > CPU_LOOP_BUDGET {
            chunk -= bk;
        }
        PrefillPlan {
            chunk,
            nsplit: keys.div_ceil(chunk),
        }
    }
}

/// Keys per workgroup-memory tile for head dim `d` (tile = 2048 packed f16 pairs, held as 512
/// quads).
pub(crate) fn keys_per_tile(d: u32) -> u32 {
    (4096 / d.max(1)).min(64)
}

/// Loop-iteration budget per invocation. lavapipe stops an invocation after 65,535 loop
/// iterations in total (Mesa gallivm's loop limiter); [`loop_iterations`] undercounts the
/// compiled loops by a few percent (measured: 3,200 keys at D = 128 already lost keys), so the
/// budget keeps a wide margin.
pub(crate) const CPU_LOOP_BUDGET: u64 = 40_000;

/// Loop iterations one invocation runs to attend over `keys` keys of head dim `d` (the WGSL's
/// block loops: 2 per key + 2·D/16 per key, loader and rescale per tile, q load and store).
pub(crate) fn loop_iterations(keys: u64, d: u32) -> u64 {
    let bk = u64::from(keys_per_tile(d));
    let d = u64::from(d);
    keys * (2 + d / 8) + keys.div_ceil(bk) * (10 + d / 16) + d / 2
}

/// The compiled kernel.
pub struct AttentionPrefill {
    pipeline: Arc<wgpu::ComputePipeline>,
    merge: Arc<wgpu::ComputePipeline>,
}

impl AttentionPrefill {
    /// Compiles (or fetches from the cache) the kernel.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        const SRC: &str = concat!(
            include_str!("attn_blocks.wgsl"),
            include_str!("attention_prefill_f16.wgsl")
        );
        let pipeline = gpu.pipeline("attention_prefill_f16", SRC, "attention_prefill_f16", &[])?;
        let merge = gpu.pipeline(
            "attention_decode_merge_f32",
            include_str!("../attention_decode_f16/attention_decode_merge_f32.wgsl"),
            "attention_decode_merge_f32",
            &[],
        )?;
        Ok(Self { pipeline, merge })
    }

    /// The pipeline specialised for head dim `d` (pipeline constant `D`; cached by the runtime).
    fn pipeline_for(gpu: &Gpu, d: u32) -> Result<Arc<wgpu::ComputePipeline>, KernelError> {
        const SRC: &str = concat!(
            include_str!("attn_blocks.wgsl"),
            include_str!("attention_prefill_f16.wgsl")
        );
        gpu.pipeline(
            "attention_prefill_f16",
            SRC,
            "attention_prefill_f16",
            &[("D", f64::from(d))],
        )
    }

    /// Scratch bytes [`Self::encode_split`] needs for `t` queries after `past` cached tokens
    /// (0 when the key range is not split).
    pub fn scratch_bytes(dims: HeadDims, t: u32, past: u32) -> u64 {
        let plan = PrefillPlan::new(past.saturating_add(t), dims.d);
        if plan.nsplit == 1 {
            return 0;
        }
        u64::from(t)
            * u64::from(dims.h)
            * u64::from(plan.nsplit)
            * u64::from(dims.d + PART_EXTRA)
            * 4
    }

    /// Records attention for `t` queries at positions `past .. past + t` over a prefix cache
    /// of `cap` slots per kv head — one dispatch. Contexts long enough to need a key split
    /// ([`Self::scratch_bytes`] > 0) are `KernelError::Limit`: use [`Self::encode_split`].
    #[allow(clippy::too_many_arguments)]
    pub fn encode<'a>(
        &self,
        rec: &mut Recorder<'_>,
        qkv: impl Into<BufferBinding<'a>>,
        k_cache: impl Into<BufferBinding<'a>>,
        v_cache: impl Into<BufferBinding<'a>>,
        out: impl Into<BufferBinding<'a>>,
        dims: HeadDims,
        layout: QkvLayout,
        t: u32,
        past: u32,
        cap: u32,
    ) -> Result<(), KernelError> {
        self.encode_split(
            rec, qkv, k_cache, v_cache, out, None, dims, layout, t, past, cap,
        )
    }

    /// [`Self::encode`] with a scratch buffer of ≥ [`Self::scratch_bytes`] for long contexts:
    /// the key range is split across workgroups (partials in `scratch`) and merged exactly by
    /// a second dispatch.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_split<'a>(
        &self,
        rec: &mut Recorder<'_>,
        qkv: impl Into<BufferBinding<'a>>,
        k_cache: impl Into<BufferBinding<'a>>,
        v_cache: impl Into<BufferBinding<'a>>,
        out: impl Into<BufferBinding<'a>>,
        scratch: Option<BufferBinding<'a>>,
        dims: HeadDims,
        layout: QkvLayout,
        t: u32,
        past: u32,
        cap: u32,
    ) -> Result<(), KernelError> {
        dims.check_attention()?;
        layout.check(dims)?;
        ensure(t >= 1, || "attention_prefill: T must be ≥ 1".into())?;
        ensure(u64::from(past) + u64::from(t) <= u64::from(cap), || {
            format!("attention_prefill: past ({past}) + T ({t}) exceeds the cache ({cap} slots)")
        })?;
        let (qkv, k_cache, v_cache, out) = (qkv.into(), k_cache.into(), v_cache.into(), out.into());
        let n_q = elems("qkv", &[t.into(), layout.stride.into()])?;
        let n_cache = elems("kv cache", &[dims.hkv.into(), cap.into(), dims.d.into()])?;
        let n_out = elems("out", &[t.into(), dims.h.into(), dims.d.into()])?;
        need_bytes("qkv", &qkv, u64::from(n_q) * 4)?;
        need_bytes("k_cache", &k_cache, u64::from(n_cache) * 2)?;
        need_bytes("v_cache", &v_cache, u64::from(n_cache) * 2)?;
        need_bytes("out", &out, u64::from(n_out) * 4)?;
        let plan = PrefillPlan::new(past + t, dims.d);
        let params = AttentionPrefillParams {
            t,
            h: dims.h,
            hkv: dims.hkv,
            d: dims.d,
            q_stride: layout.stride,
            q_col: layout.q_col,
            past,
            cap,
            bk: keys_per_tile(dims.d),
            scale: 1.0 / (dims.d as f32).sqrt(),
            chunk: plan.chunk,
            nsplit: plan.nsplit,
        };
        let groups = [t.div_ceil(64), dims.h, plan.nsplit];
        let pipeline = if dims.d == 64 {
            Arc::clone(&self.pipeline)
        } else {
            Self::pipeline_for(rec.gpu(), dims.d)?
        };
        if plan.nsplit == 1 {
            return rec.dispatch(&pipeline, &params, &[qkv, k_cache, v_cache, out], groups);
        }
        let need = Self::scratch_bytes(dims, t, past);
        let scratch = scratch.ok_or_else(|| {
            KernelError::Limit(format!(
                "attention_prefill over {} keys at D = {} needs a key split: use encode_split with {need} B of scratch",
                past + t,
                dims.d
            ))
        })?;
        need_bytes("scratch", &scratch, need)?;
        rec.dispatch(
            &pipeline,
            &params,
            &[qkv, k_cache, v_cache, scratch],
            groups,
        )?;
        let rows = t * dims.h;
        let merge = AttentionMergeParams {
            rows,
            d: dims.d,
            nc: plan.nsplit,
            _pad: 0,
        };
        let wg = fold_workgroups(rec.gpu(), rows);
        rec.dispatch(&self.merge, &merge, &[scratch, out], wg)
    }
}
