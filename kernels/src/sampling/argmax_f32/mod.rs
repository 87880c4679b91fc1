//! `argmax_f32`: greedy token choice over logits rows, with a non-finite flag.
//!
//! Contract:
//! - For each row n of `logits: [N, V]` f32: `out[n] = (token, flags, logprob, 0)` (u32 words,
//!   `[N, 4]`; logprob is f32 0.0, the log-probability of a greedy choice):
//!   token = the lowest index of the largest finite value; flags = [`ARGMAX_NON_FINITE`] when
//!   the row contains any NaN or ±Inf (tested by exponent bits, immune to fast-math). Non-finite
//!   values never win; a row with no finite value yields token 0 with the flag set. The engine
//!   must treat the flag as an error (a NaN model must not emit token 0 forever).
//! - Exact: comparisons only, so GPU == CPU reference bit for bit (`-0.0 == 0.0` is a tie).
//! - Dispatch: one 256-invocation workgroup per row (strided loop, tree reduction), folded 2-D.
//! - Limits: `N, V ≥ 1`, `N·V < 2³²`, `V ≤ 16,000,000` (lavapipe loop budget: V/256 iterations).

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// `flags` bit: the row held NaN or ±Inf.
pub const ARGMAX_NON_FINITE: u32 = 1;

/// Uniform parameters (binding 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ArgmaxParams {
    /// N rows.
    pub n: u32,
    /// V columns.
    pub v: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// The compiled kernel.
pub struct Argmax {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl Argmax {
    /// Compiles (or fetches from the cache) the kernel.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        let pipeline = gpu.pipeline(
            "argmax_f32",
            include_str!("argmax_f32.wgsl"),
            "argmax_f32",
            &[],
        )?;
        Ok(Self { pipeline })
    }

    /// Records `out[n] = (argmax, flags, 0.0, 0)` for `n` rows of `v` logits.
    pub fn encode<'a>(
        &self,
        rec: &mut Recorder<'_>,
        logits: impl Into<BufferBinding<'a>>,
        out: impl Into<BufferBinding<'a>>,
        n: u32,
        v: u32,
    ) -> Result<(), KernelError> {
        ensure(n >= 1 && (1..=16_000_000).contains(&v), || {
            format!("argmax: bad shape N = {n}, V = {v}")
        })?;
        let count = elems("logits", &[n.into(), v.into()])?;
        let (logits, out) = (logits.into(), out.into());
        need_bytes("logits", &logits, u64::from(count) * 4)?;
        need_bytes("out", &out, u64::from(n) * 16)?;
        let wg = fold_workgroups(rec.gpu(), n);
        rec.dispatch(
            &self.pipeline,
            &ArgmaxParams { n, v, _pad: [0; 2] },
            &[logits, out],
            wg,
        )
    }
}
