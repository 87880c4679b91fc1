//! `swiglu_f32`: the SwiGLU activation of the fused gate|up projection.
//!
//! Contract:
//! - Math: `out[t, i] = silu(gate[t, i]) · up[t, i]`, `silu(g) = g / (1 + e^(−g))`, in f32.
//! - Layouts: `gu: [T, 2·I]` f32, row t = `gate (I) | up (I)` (the output of the fused gate_up
//!   matmul); `out: [T, I]` f32.
//! - Dispatch: one invocation per output element, 256 per workgroup, folded to 2-D.
//! - Limits: `T, I ≥ 1`, `2·T·I < 2³²`.
//! - Tolerance vs `reference` (f64): GPU `exp` is a few ulp; tests assert nMSE ≤ 1e-10.

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// Uniform parameters (binding 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SwigluParams {
    /// T: rows.
    pub rows: u32,
    /// I: intermediate size (half the `gu` row).
    pub inter: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// The compiled SwiGLU kernel.
pub struct Swiglu {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl Swiglu {
    /// Compiles (or fetches from the cache) the kernel.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        let pipeline = gpu.pipeline(
            "swiglu_f32",
            include_str!("swiglu_f32.wgsl"),
            "swiglu_f32",
            &[],
        )?;
        Ok(Self { pipeline })
    }

    /// Records `out = silu(gate) · up` for `rows` rows of `inter` outputs.
    pub fn encode<'a>(
        &self,
        rec: &mut Recorder<'_>,
        gu: impl Into<BufferBinding<'a>>,
        out: impl Into<BufferBinding<'a>>,
        rows: u32,
        inter: u32,
    ) -> Result<(), KernelError> {
        ensure(rows > 0 && inter > 0, || {
            format!("swiglu: rows ({rows}) and inter ({inter}) must be ≥ 1")
        })?;
        let n_in = elems("swiglu gu", &[rows.into(), 2 * u64::from(inter)])?;
        let n_out = n_in / 2;
        let (gu, out) = (gu.into(), out.into());
        need_bytes("gu", &gu, u64::from(n_in) * 4)?;
        need_bytes("out", &out, u64::from(n_out) * 4)?;
        let params = SwigluParams {
            rows,
            inter,
            _pad: [0; 2],
        };
        let wg = fold_workgroups(rec.gpu(), n_out.div_ceil(256));
        rec.dispatch(&self.pipeline, &params, &[gu, out], wg)
    }
}
