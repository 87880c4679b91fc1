//! `rmsnorm_f32` and `rmsnorm_residual_f32`: RMS normalisation of f32 rows.
//!
//! Contract:
//! - Math: `y[t, k] = x[t, k] / sqrt(mean_k(x[t]²) + eps) · w[k]`, sums of squares in f32.
//!   The residual variant first does `x[t] += r[t]` (the sum is written back into `x`, the
//!   residual stream) and then normalises the sum — one dispatch instead of two per block.
//! - Layouts: `x`, `r`, `y`: `[T, K]` f32 row-major; `w`: `[K]` f32. `y` must not alias `x`.
//! - Dispatch: one 256-invocation workgroup per row, rows folded to 2-D above 65,535.
//! - Limits: `T ≥ 1`, `K ≥ 1`, `T·K < 2³²`.
//! - Tolerance vs `reference` (f64): nMSE ≤ 1e-10 in practice; tests assert ≤ 1e-9.

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Recorder};

/// Uniform parameters (binding 0) of both entry points.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RmsNormParams {
    /// T: rows.
    pub rows: u32,
    /// K: row length.
    pub k: u32,
    /// Added to the mean square before the square root.
    pub eps: f32,
    /// Padding.
    pub _pad: u32,
}

/// The compiled RMSNorm kernels.
pub struct RmsNorm {
    plain: Arc<wgpu::ComputePipeline>,
    residual: Arc<wgpu::ComputePipeline>,
}

impl RmsNorm {
    /// Compiles (or fetches from the cache) both entry points.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        let plain = gpu.pipeline(
            "rmsnorm_f32",
            include_str!("rmsnorm_f32.wgsl"),
            "rmsnorm_f32",
            &[],
        )?;
        let residual = gpu.pipeline(
            "rmsnorm_residual_f32",
            include_str!("rmsnorm_residual_f32.wgsl"),
            "rmsnorm_residual_f32",
            &[],
        )?;
        Ok(Self { plain, residual })
    }

    fn params(rows: u32, k: u32, eps: f32) -> Result<(RmsNormParams, u64), KernelError> {
        ensure(rows > 0 && k > 0, || {
            format!("rmsnorm: rows ({rows}) and k ({k}) must be ≥ 1")
        })?;
        ensure(eps.is_finite() && eps >= 0.0, || {
            format!("rmsnorm: eps must be finite and ≥ 0, got {eps}")
        })?;
        let n = elems("rmsnorm x", &[rows.into(), k.into()])?;
        Ok((
            RmsNormParams {
                rows,
                k,
                eps,
                _pad: 0,
            },
            u64::from(n) * 4,
        ))
    }

    /// Records `y = rmsnorm(x) · w` over `rows` rows of length `k`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode<'a>(
        &self,
        rec: &mut Recorder<'_>,
        x: impl Into<BufferBinding<'a>>,
        w: impl Into<BufferBinding<'a>>,
        y: impl Into<BufferBinding<'a>>,
        rows: u32,
        k: u32,
        eps: f32,
    ) -> Result<(), KernelError> {
        let (params, bytes) = Self::params(rows, k, eps)?;
        let (x, w, y) = (x.into(), w.into(), y.into());
        need_bytes("x", &x, bytes)?;
        need_bytes("w", &w, u64::from(k) * 4)?;
        need_bytes("y", &y, bytes)?;
        let wg = fold_workgroups(rec.gpu(), rows);
        rec.dispatch(&self.plain, &params, &[x, w, y], wg)
    }

    /// Records `x += r; y = rmsnorm(x) · w` (the residual add written back into `x`).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_residual<'a>(
        &self,
        rec: &mut Recorder<'_>,
        x: impl Into<BufferBinding<'a>>,
        r: impl Into<BufferBinding<'a>>,
        w: impl Into<BufferBinding<'a>>,
        y: impl Into<BufferBinding<'a>>,
        rows: u32,
        k: u32,
        eps: f32,
    ) -> Result<(), KernelError> {
        let (params, bytes) = Self::params(rows, k, eps)?;
        let (x, r, w, y) = (x.into(), r.into(), w.into(), y.into());
        need_bytes("x", &x, bytes)?;
        need_bytes("r", &r, bytes)?;
        need_bytes("w", &w, u64::from(k) * 4)?;
        need_bytes("y", &y, bytes)?;
        let wg = fold_workgroups(rec.gpu(), rows);
        rec.dispatch(&self.residual, &params, &[x, r, w, y], wg)
    }
}
