//! `attention_prefill_f16`: causal GQA attention of a prompt chunk over the f16 prefix cache.
//!
//! Contract:
//! - Math: for query t (position `past + t`) of head h, kv head `h / G` (G = H / Hkv):
//!   `out[t, h] = softmax_j(q·k_j / sqrt(D)) · v_j` over cache slots `j = 0 ..= past + t`.
//!   Online softmax (running max, sum, accumulator) in f32; K/V are f16, widened to f32.
//! - Layouts: q read from the fused qkv buffer `[T, stride]` at `q_col` (see `crate::heads`);
//!   K/V: the prefix cache `[Hkv, cap, D]` f16 that must already hold slots `0 .. past + T`
//!   (record `rope_kv_append_f16` first — so chunked prefill works); `out: [T, H, D]` f32.
//! - Dispatch: workgroup per (block of 64 queries, head) = `[ceil(T/64), H, 1]`; one invocation
//!   per query; K/V tiles of `min(64, 4096/D)` keys staged in workgroup memory (16 KiB) and
//!   shared by the block.
//! - Limits: [`HeadDims::check_attention`] (D % 16 == 0, D ≤ 256), `past + T ≤ cap`, `T ≥ 1`.
//!   lavapipe (Mesa gallivm) silently stops any invocation after 65,535 loop iterations in
//!   total, so loops run over 16-dim blocks (≈ 2 + D/8 iterations per key): one query can see
//!   up to ≈ 6,000 keys at D = 64 and ≈ 3,500 at D = 128 on lavapipe (no limit on real GPUs).
//!   The wrapper rejects longer contexts on a CPU adapter with `KernelError::Limit`.
//! - Tolerance vs `reference` (f64 softmax on the same f16 K/V): tests assert nMSE ≤ 1e-9
//!   (measured ~1e-13; q is f32 so only summation order and `exp` differ).

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::heads::{HeadDims, QkvLayout};
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
    /// Padding.
    pub _pad: [u32; 2],
}

/// Keys per workgroup-memory tile for head dim `d` (tile = 2048 packed f16 pairs).
pub(crate) fn keys_per_tile(d: u32) -> u32 {
    (4096 / d.max(1)).min(64)
}

/// lavapipe stops an invocation after this many loop iterations in total (Mesa gallivm's loop
/// limiter, 65,535), leaving a margin.
pub(crate) const CPU_LOOP_BUDGET: u64 = 60_000;

/// Loop iterations one invocation runs to attend over `keys` keys of head dim `d` (the WGSL's
/// block loops: 2 per key + 2·D/16 per key, loader and rescale per tile, q load and store).
pub(crate) fn loop_iterations(keys: u64, d: u32) -> u64 {
    let bk = u64::from(keys_per_tile(d));
    let d = u64::from(d);
    keys * (2 + d / 8) + keys.div_ceil(bk) * (10 + d / 16) + d / 2
}

/// `Err(Limit)` when a CPU (lavapipe) adapter would silently truncate the kernel's loops.
pub(crate) fn check_cpu_loop_budget(gpu: &Gpu, keys: u64, d: u32) -> Result<(), KernelError> {
    let its = loop_iterations(keys, d);
    if gpu.adapter_info().device_type == wgpu::DeviceType::Cpu && its > CPU_LOOP_BUDGET {
        return Err(KernelError::Limit(format!(
            "attention over {keys} keys at D = {d} needs {its} loop iterations per invocation; \
             CPU adapters (lavapipe) stop at 65,535"
        )));
    }
    Ok(())
}

/// The compiled kernel.
pub struct AttentionPrefill {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl AttentionPrefill {
    /// Compiles (or fetches from the cache) the kernel.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        const SRC: &str = concat!(
            include_str!("attn_blocks.wgsl"),
            include_str!("attention_prefill_f16.wgsl")
        );
        let pipeline = gpu.pipeline("attention_prefill_f16", SRC, "attention_prefill_f16", &[])?;
        Ok(Self { pipeline })
    }

    /// Records attention for `t` queries at positions `past .. past + t` over a prefix cache
    /// of `cap` slots per kv head.
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
        dims.check_attention()?;
        layout.check(dims)?;
        ensure(t >= 1, || "attention_prefill: T must be ≥ 1".into())?;
        ensure(u64::from(past) + u64::from(t) <= u64::from(cap), || {
            format!("attention_prefill: past ({past}) + T ({t}) exceeds the cache ({cap} slots)")
        })?;
        check_cpu_loop_budget(rec.gpu(), u64::from(past) + u64::from(t), dims.d)?;
        let (qkv, k_cache, v_cache, out) = (qkv.into(), k_cache.into(), v_cache.into(), out.into());
        let n_q = elems("qkv", &[t.into(), layout.stride.into()])?;
        let n_cache = elems("kv cache", &[dims.hkv.into(), cap.into(), dims.d.into()])?;
        let n_out = elems("out", &[t.into(), dims.h.into(), dims.d.into()])?;
        need_bytes("qkv", &qkv, u64::from(n_q) * 4)?;
        need_bytes("k_cache", &k_cache, u64::from(n_cache) * 2)?;
        need_bytes("v_cache", &v_cache, u64::from(n_cache) * 2)?;
        need_bytes("out", &out, u64::from(n_out) * 4)?;
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
            _pad: [0; 2],
        };
        rec.dispatch(
            &self.pipeline,
            &params,
            &[qkv, k_cache, v_cache, out],
            [t.div_ceil(64), dims.h, 1],
        )
    }
}
