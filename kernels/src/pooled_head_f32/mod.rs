//! `pooled_head_f32`: the pooled linear heads (switcher, verifier).
//!
//! Contract:
//! - Math: for each batch item b of `x: [B, T, hidden]` f32, `pooled = mean_{t ∈ [start, end)}
//!   x[b, t]` ([`Pooling::Mean`]) or `x[b, end − 1]` ([`Pooling::Last`]); then
//!   `out[b, c] = W[c] · pooled + bias[c]` with `W: [C, hidden]`, `bias: [C]` f32 (the head's
//!   `weight` and `bias` tensors); `out: [B, C]` f32 logits. f32 accumulation.
//!   Switcher: B = 1, T = prompt length, mean over the prompt. Verifier: the N paths' final
//!   hidden states as `[N, 1, hidden]`, `Last { end: 1 }`.
//! - Dispatch: workgroup per (class, batch item) = `[C, B, 1]`, 256 invocations over hidden.
//! - Limits: `1 ≤ start < end ≤ T`, `C, B ≤ 65,535`; on lavapipe (65,535 loop iterations per
//!   invocation) `ceil(hidden/256) · (end − start)/4 ≤ 40,000`.
//! - Tolerance vs `reference` (f64): nMSE ≤ 1e-10 asserted.

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// Which hidden states are pooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over tokens `start .. end`.
    Mean {
        /// First token.
        start: u32,
        /// One past the last token.
        end: u32,
    },
    /// The token `end − 1`.
    Last {
        /// One past the pooled token.
        end: u32,
    },
}

/// Uniform parameters (binding 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PooledHeadParams {
    /// T.
    pub t: u32,
    /// hidden.
    pub hidden: u32,
    /// C.
    pub c: u32,
    /// First pooled token.
    pub t0: u32,
    /// One past the last pooled token.
    pub t1: u32,
    /// 1 = last-token pooling.
    pub last: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Shape of one head evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadShape {
    /// B batch items.
    pub batch: u32,
    /// T tokens per item.
    pub t: u32,
    /// hidden size.
    pub hidden: u32,
    /// C classes.
    pub classes: u32,
}

/// The compiled kernel.
pub struct PooledHead {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl PooledHead {
    /// Compiles (or fetches from the cache) the kernel.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        let pipeline = gpu.pipeline(
            "pooled_head_f32",
            include_str!("pooled_head_f32.wgsl"),
            "pooled_head_f32",
            &[],
        )?;
        Ok(Self { pipeline })
    }

    /// Records `out = W · pool(x) + bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode<'a>(
        &self,
        rec: &mut Recorder<'_>,
        x: impl Into<BufferBinding<'a>>,
        w: impl Into<BufferBinding<'a>>,
        bias: impl Into<BufferBinding<'a>>,
        out: impl Into<BufferBinding<'a>>,
        shape: HeadShape,
        pooling: Pooling,
    ) -> Result<(), KernelError> {
        let HeadShape {
            batch,
            t,
            hidden,
            classes,
        } = shape;
        let (t0, t1, last) = match pooling {
            Pooling::Mean { start, end } => (start, end, 0),
            Pooling::Last { end } => (end.saturating_sub(1), end, 1),
        };
        ensure(batch >= 1 && hidden >= 1 && classes >= 1, || {
            format!("pooled_head: empty shape {shape:?}")
        })?;
        ensure(t0 < t1 && t1 <= t, || {
            format!("pooled_head: token range {pooling:?} outside 0..{t}")
        })?;
        ensure(batch <= 65_535 && classes <= 65_535, || {
            format!("pooled_head: {shape:?} exceeds 65,535 workgroups")
        })?;
        let iters = u64::from(hidden.div_ceil(256)) * (u64::from(t1 - t0) / 4 + 4);
        if rec.gpu().adapter_info().device_type == wgpu::DeviceType::Cpu && iters > 40_000 {
            return Err(KernelError::Limit(format!(
                "pooled_head over {} tokens × {hidden} needs {iters} loop iterations; lavapipe stops at 65,535",
                t1 - t0
            )));
        }
        let n_x = elems("x", &[batch.into(), t.into(), hidden.into()])?;
        let n_w = elems("w", &[classes.into(), hidden.into()])?;
        let (x, w, bias, out) = (x.into(), w.into(), bias.into(), out.into());
        need_bytes("x", &x, u64::from(n_x) * 4)?;
        need_bytes("w", &w, u64::from(n_w) * 4)?;
        need_bytes("bias", &bias, u64::from(classes) * 4)?;
        need_bytes("out", &out, u64::from(batch) * u64::from(classes) * 4)?;
        let params = PooledHeadParams {
            t,
            hidden,
            c: classes,
            t0,
            t1,
            last,
            _pad: [0; 2],
        };
        rec.dispatch(
            &self.pipeline,
            &params,
            &[x, w, bias, out],
            [classes, batch, 1],
        )
    }
}
