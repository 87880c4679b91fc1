//! `sample_f32`: temperature / top-k / top-p sampling, deterministic and bit-identical to its
//! CPU [`reference`].
//!
//! Contract (per row of `logits: [N, V]` f32; `out: [N, 4]` u32 = (token, flags, logprob as f32
//! bits, 0)):
//! - Order: finite logits ranked by value descending, ties by lower index (the ordinal
//!   `(ord_hi(x), index)`, `ord_hi` an order-reversing map of the f32 bits; `+0.0` ranks before
//!   `−0.0`). NaN/±Inf never win and set `flags = 1` (the engine raises an error); a row with
//!   no finite value gives token 0.
//! - Weights are integers, so no `exp` enters the decision: with `m` the row maximum and
//!   `c = f32(4096·log2(e)/τ)`, `z = (m − x)·c` (two correctly rounded f32 ops), `a = ⌊z⌋`,
//!   `w = T1[(a mod 4096) >> 6] · T2[a mod 64] >> (a >> 12)` (0 when z ≥ 2^17) where
//!   `T1[j] = round(2^15·2^(−j/64))`, `T2[j] = round(2^15·2^(−j/4096))` — i.e. `w ≈ 2^30 ·
//!   e^((x−m)/τ)` with ~3e-5 relative error, tokens below 2^-32 of the max dropped. Weight sums
//!   are exact u64 (V ≤ 2^18 keeps them < 2^48).
//! - top-k (k > 0): keep the first k of the order. top-p (`p_fx = round(top_p·65536)` < 65536):
//!   then keep the shortest prefix whose weight sum reaches `max(1, ⌊W·p_fx/65536⌋)`.
//!   Greedy (τ = 0, or τ so small that c overflows) is top-k = 1.
//! - Draw: `r = pcg(pcg(pcg(pcg(seed_lo) ^ seed_hi) ^ step) ^ stream[n])` (PCG output hash),
//!   `u = ⌊W_f·r / 2^32⌋`; the token is the first kept element whose running weight sum
//!   exceeds `u` (in the same order). Same (seed, step, stream, logits) → same token, on any
//!   adapter; the stream per row lets paths keep their randomness when rows are reordered.
//! - logprob = `ln(f32(w_token)) − ln(f32(W_f))` (W_f as `f32(hi)·2^32 + f32(lo)`): the token's
//!   log-probability under the distribution it was drawn from, 0 when only one token is kept.
//!   Not bit-exact across adapters (`ln` is not correctly rounded); within 1e-5 of the
//!   reference.
//! - Dispatch: one 256-invocation workgroup per row; each selection is a 7-pass radix select
//!   (8-bit digits of the 56-bit ordinal) with workgroup histograms of u64 sums; ≤ 24 passes
//!   over the row (≈ 20k loop iterations per invocation at V = 152,064, within lavapipe's
//!   65,535 budget).
//! - Limits: `1 ≤ V ≤ 2^18`, `N ≥ 1`, `N·V < 2³²`.

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// Entries of the weight table buffer (T1 then T2).
pub const TABLE_LEN: usize = 128;

/// User-level sampling settings of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleConfig {
    /// τ ≥ 0; 0 = greedy.
    pub temperature: f32,
    /// 0 = off.
    pub top_k: u32,
    /// In (0, 1]; 1 = off.
    pub top_p: f32,
    /// RNG seed.
    pub seed: u64,
    /// Decode step (RNG counter).
    pub step: u32,
}

/// Uniform parameters (binding 0), derived from a [`SampleConfig`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SampleParams {
    /// N rows.
    pub n: u32,
    /// V columns.
    pub v: u32,
    /// top-k (0 = off).
    pub top_k: u32,
    /// round(top_p · 65536), 65536 = off.
    pub p_fx: u32,
    /// 4096 · log2(e) / τ.
    pub c: f32,
    /// Seed, low word.
    pub seed_lo: u32,
    /// Seed, high word.
    pub seed_hi: u32,
    /// Step.
    pub step: u32,
}

impl SampleParams {
    /// Checks `cfg` and derives the kernel parameters for `n` rows of `v` logits.
    pub fn new(cfg: &SampleConfig, n: u32, v: u32) -> Result<Self, KernelError> {
        ensure(
            cfg.temperature.is_finite() && cfg.temperature >= 0.0,
            || {
                format!(
                    "sample: temperature must be finite and ≥ 0, got {}",
                    cfg.temperature
                )
            },
        )?;
        ensure(cfg.top_p > 0.0 && cfg.top_p <= 1.0, || {
            format!("sample: top_p must be in (0, 1], got {}", cfg.top_p)
        })?;
        ensure(n >= 1 && (1..=1 << 18).contains(&v), || {
            format!("sample: bad shape N = {n}, V = {v}")
        })?;
        let c = (4096.0 * std::f64::consts::LOG2_E / f64::from(cfg.temperature)) as f32;
        let greedy = cfg.temperature == 0.0 || !c.is_finite() || c > 1e30;
        Ok(SampleParams {
            n,
            v,
            top_k: if greedy { 1 } else { cfg.top_k },
            p_fx: ((f64::from(cfg.top_p) * 65536.0).round() as u32).clamp(1, 65536),
            c: if greedy { 1.0 } else { c },
            seed_lo: cfg.seed as u32,
            seed_hi: (cfg.seed >> 32) as u32,
            step: cfg.step,
        })
    }
}

/// The compiled kernel and its weight tables.
pub struct Sample {
    pipeline: Arc<wgpu::ComputePipeline>,
    tables: wgpu::Buffer,
}

impl Sample {
    /// Compiles the kernel and uploads the weight tables (computed by [`reference::tables`],
    /// so GPU and CPU use the same integers).
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        let pipeline = gpu.pipeline(
            "sample_f32",
            include_str!("sample_f32.wgsl"),
            "sample_f32",
            &[],
        )?;
        let tables = gpu.upload(
            "sample_f32.tables",
            bytemuck::cast_slice(&reference::tables()),
        )?;
        Ok(Self { pipeline, tables })
    }

    /// Records sampling of `n` rows of `v` logits; row n uses RNG stream `streams[n]`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode<'a>(
        &self,
        rec: &mut Recorder<'_>,
        logits: impl Into<BufferBinding<'a>>,
        streams: impl Into<BufferBinding<'a>>,
        out: impl Into<BufferBinding<'a>>,
        n: u32,
        v: u32,
        cfg: &SampleConfig,
    ) -> Result<(), KernelError> {
        let params = SampleParams::new(cfg, n, v)?;
        let count = elems("logits", &[n.into(), v.into()])?;
        let (logits, streams, out) = (logits.into(), streams.into(), out.into());
        need_bytes("logits", &logits, u64::from(count) * 4)?;
        need_bytes("streams", &streams, u64::from(n) * 4)?;
        need_bytes("out", &out, u64::from(n) * 16)?;
        let wg = fold_workgroups(rec.gpu(), n);
        rec.dispatch(
            &self.pipeline,
            &params,
            &[logits, (&self.tables).into(), streams, out],
            wg,
        )
    }
}
