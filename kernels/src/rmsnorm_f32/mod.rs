//! `rmsnorm_f32`: RMS normalisation of f32 rows. (The residual add is fused into the matmul
//! epilogue that produces the residual stream, not into the norm.)
//!
//! Contract:
//! - Math: `y[t, k] = x[t, k] / sqrt(mean_k(x[t]²) + eps) · w[k]`, sums of squares in f32.
//! - Layouts: `x`, `y`: `[T, K]` f32 row-major; `w`: `[K]` f32. `y` must not alias `x`.
//! - Dispatch: one 256-invocation workgroup per row, rows folded to 2-D above 65,535.
//! - Limits: `T ≥ 1`, `K ≥ 1`, `T·K < 2³²`.
//! - Tolerance vs `reference` (f64): nMSE ≤ 1e-10 in practice; tests assert ≤ 1e-9.
//!
//! `rmsnorm_shrink_f32` ([`RmsNorm::encode_lora_shrink`]) fuses the plain variant with the LoRA
//! shrink of its output, for the groups that read a normalised row (q|k|v and gate|up): `y` as
//! above and `h[t, r] = Σ_k y[t, k] · A[r, k]` for a group's [`LoraA`] (`[ΣR, K]` f16), as
//! `lora_shrink` computes it — one dispatch instead of two.
//! - x is read as [`Gpu::x_input`] chooses (`wgsl/x32.wgsl`); `w` through the uniform window
//!   when [`Gpu::uniform_window`] allows (the CPU-driver profile, `w` from
//!   [`Gpu::upload_window`]), else from storage (`#if NORM_UNIFORM`); `y`, `h` are storage.
//! - Dispatch: one A row per lane (`WG` = 8 on CPU adapters, else 64), `workgroup_id.y` = quad of
//!   `NCOL` = 1, 2 or 4 token rows. Every lane computes its token rows' sums of squares and
//!   normalised values itself, reading x and w at the same addresses as the other lanes: no
//!   workgroup memory and no barrier (on lavapipe a storage or workgroup load is a per-lane
//!   loop, a uniform-index uniform load a single one), so a decode row's shrink still spreads
//!   over `ΣR / WG` workgroups. Lane 0 of workgroup 0 stores `y`.
//! - Order: sums of squares over vec4s, `(s.x + s.y) + (s.z + s.w)`; not the tree of
//!   `rmsnorm_f32`, so `y` may differ from it in the last bits. A token's `y` and `h` do not
//!   depend on `T` or `NCOL`.
//! - Limits: `K` a multiple of 4 (vec4 reads), `T ≤ 4 · 65,535`.
//! - Tolerance vs `reference` (f64) and `lora_shrink_ref`: nMSE ≤ 1e-9 for both outputs.

pub mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::lora_shrink::LoraA;
use crate::runtime::recorder::fold_workgroups;
use crate::shape::{elems, ensure, need_bytes};
use crate::{BufferBinding, Gpu, KernelError, Reads, Recorder, UNIFORM_X_BYTES};

const SHRINK_ID: &str = "rmsnorm_shrink_f32";
const SHRINK_SRC: &str = include_str!("rmsnorm_shrink_f32.wgsl");

/// Uniform parameters of `rmsnorm_shrink_f32`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ShrinkParams {
    k: u32,
    t: u32,
    eps: f32,
    rows: u32,
}

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

/// The compiled RMSNorm kernel.
pub struct RmsNorm {
    plain: Arc<wgpu::ComputePipeline>,
}

impl RmsNorm {
    /// Compiles (or fetches from the cache) the kernel.
    pub fn new(gpu: &Gpu) -> Result<Self, KernelError> {
        let plain = gpu.pipeline(
            "rmsnorm_f32",
            include_str!("rmsnorm_f32.wgsl"),
            "rmsnorm_f32",
            &[],
        )?;
        Ok(Self { plain })
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

    /// Records `y = rmsnorm(x) · w` and the LoRA shrink `h = y · Aᵀ` (`h`: `[rows, a.rows]` f32)
    /// in one dispatch (see the module contract). `k` must equal `a.k` and be a multiple of 4;
    /// `w` is read through the uniform window when the profile uses one and `w`
    /// is padded to it ([`Gpu::upload_window`]), else from storage.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_lora_shrink<'a>(
        &self,
        rec: &mut Recorder<'_>,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        y: impl Into<BufferBinding<'a>>,
        a: &LoraA,
        h: impl Into<BufferBinding<'a>>,
        rows: u32,
        k: u32,
        eps: f32,
    ) -> Result<(), KernelError> {
        let (params, bytes) = Self::params(rows, k, eps)?;
        ensure(a.k == k && k.is_multiple_of(4), || {
            format!(
                "rmsnorm_shrink: K ({k}) must equal A's K ({}) and be a multiple of 4",
                a.k
            )
        })?;
        let (y, h) = (y.into(), h.into());
        need_bytes("x", &x.into(), bytes)?;
        let gpu = rec.gpu();
        let norm_uniform = gpu.uniform_window(w, u64::from(k) * 4);
        let w = if norm_uniform {
            BufferBinding::range(w, 0, UNIFORM_X_BYTES)
        } else {
            let w = BufferBinding::from(w);
            need_bytes("w", &w, u64::from(k) * 4)?;
            w
        };
        need_bytes("y", &y, bytes)?;
        need_bytes("h", &h, u64::from(rows) * u64::from(a.rows) * 4)?;
        let wg = gpu.small_grid_workgroup();
        let ncol = rows.min(4).next_power_of_two();
        let xb = gpu.x_input(rec, x, bytes)?;
        let pipe = gpu.pipeline_reads(
            SHRINK_ID,
            SHRINK_SRC,
            SHRINK_ID,
            &[("NCOL", f64::from(ncol)), ("WG", f64::from(wg))],
            Reads {
                x: xb.read(),
                h_uniform: false,
                norm_uniform,
            },
        )?;
        let params = ShrinkParams {
            k,
            t: rows,
            eps: params.eps,
            rows: a.rows,
        };
        rec.dispatch_x(
            &pipe,
            &params,
            &xb,
            &[w, y, h],
            5,
            &[&a.texels],
            [a.rows.div_ceil(wg), rows.div_ceil(ncol), 1],
        )
    }
}
