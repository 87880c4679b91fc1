//! `lora_shrink`: the first half of a LoRA delta for every adapter matrix sharing one input.
//!
//! Math: for a group's matrices `A_i: [R_i, K]` f16 (e.g. q/k/v or gate/up) uploaded as ONE
//! row concatenation `A = [A_0; A_1; ..]` ([`LoraA`], `[ΣR, K]`),
//! `h[t, row] = Σ_k x[t, k] · A[row, k]`, so `A_i`'s block of h starts at column
//! `off_i = Σ_{j<i} R_j`; `h` is `[T, ΣR]` f32 and feeds [`crate::LoraExpand`]
//! (`h_offset = off_i`, `h_stride = ΣR`) in the base matmuls.
//! Weights: `A` lives in an `Rgba32Uint` texture, row `r` = `ceil(K/8)` texels of 8 f16 (zero
//! padded), read with `wgsl/qtex.wgsl` addressing — a texel fetch is ~4× cheaper than a storage
//! load on lavapipe (`examples/load_probe.rs`).
//! Dispatch: ONE dispatch per group; one row per lane (`WG` = 8 lanes on CPU adapters so a
//! group's few rows still spread over the cores, else 64), `workgroup_id.y` = quad of
//! `NCOL = min(T, 4)` columns. Each 32-value x chunk is loaded once per 8 lanes and broadcast
//! with subgroups (`wgsl/x32.wgsl`, as in `matmul_quant_f32`). f32 accumulation.
//! [`lora_shrink_swiglu`]: the same with `x = [T, 2K]` gate | up rows, reading
//! `silu(gate) · up` (the `swiglu_f32` formula, equal up to f32 rounding) — the down
//! projection's shrink without a SwiGLU pass.
//! Limits: K a multiple of 4 (x is read as vec4), T ≤ 4 · 65,535.
//! Tolerance: normalised MSE ≤ 5e-4 vs [`reference::lora_shrink_ref`] (typically ~1e-13).

pub mod reference;
#[cfg(test)]
mod tests;

use crate::{KernelError, Recorder};

/// Kernel id = file = entry point.
pub const ID: &str = "lora_shrink";
/// WGSL source.
pub const SRC: &str = include_str!("lora_shrink.wgsl");
/// Largest rank per matrix.
pub const MAX_RANK: u32 = 128;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    k: u32,
    t: u32,
    rows: u32,
    _pad: u32,
}

/// A group's LoRA A matrices on the GPU: the row concatenation `[ΣR, K]` f16 in a texel array.
#[derive(Debug)]
pub struct LoraA {
    /// The texels: row r is `ceil(K/8)` texels of 8 f16, zero padded.
    pub texels: crate::Texels,
    /// Rows ΣR.
    pub rows: u32,
    /// Input features K.
    pub k: u32,
}

impl LoraA {
    /// Uploads the row concatenation of `parts`, each `[R_i, k]` little-endian f16 bytes
    /// (row-major).
    pub fn upload(gpu: &crate::Gpu, k: u32, parts: &[&[u8]]) -> Result<LoraA, KernelError> {
        let (texels, rows) = crate::matrix::upload_f16_rows(gpu, "lora_A", k, parts)?;
        Ok(LoraA { texels, rows, k })
    }

    /// Bytes of the texel array's payload (padded rows).
    pub fn bytes(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.k.div_ceil(8)) * 16
    }
}

/// Records `h = x · Aᵀ` (see the module contract).
pub fn lora_shrink(
    rec: &mut Recorder<'_>,
    x: &wgpu::Buffer,
    a: &LoraA,
    h: &wgpu::Buffer,
    t: u32,
) -> Result<(), KernelError> {
    record(rec, x, a, h, t, false)
}

/// Records `h = swiglu(gu) · Aᵀ` for `gu = [T, 2K]` gate | up (see the module contract).
pub fn lora_shrink_swiglu(
    rec: &mut Recorder<'_>,
    gu: &wgpu::Buffer,
    a: &LoraA,
    h: &wgpu::Buffer,
    t: u32,
) -> Result<(), KernelError> {
    record(rec, gu, a, h, t, true)
}

fn record(
    rec: &mut Recorder<'_>,
    x: &wgpu::Buffer,
    a: &LoraA,
    h: &wgpu::Buffer,
    t: u32,
    glu: bool,
) -> Result<(), KernelError> {
    let k = a.k;
    if !k.is_multiple_of(4) {
        return Err(KernelError::Shape(format!(
            "lora_shrink needs K a multiple of 4, got {k}"
        )));
    }
    if t == 0 {
        return Ok(());
    }
    let (tt, kk) = (u64::from(t), u64::from(k) * if glu { 2 } else { 1 });
    if x.size() < tt * kk * 4 || h.size() < tt * u64::from(a.rows) * 4 {
        return Err(KernelError::Shape(format!(
            "x ({} B) or h ({} B) too small for T={t}, K={k}, ΣR={}",
            x.size(),
            h.size(),
            a.rows
        )));
    }
    let gpu = rec.gpu();
    let wg = gpu.small_grid_workgroup();
    let ncol = t.min(4);
    let xb = gpu.x_input(rec, x, tt * kk * 4)?;
    let pipe = gpu.pipeline_x(
        ID,
        SRC,
        ID,
        &[
            ("NCOL", f64::from(ncol)),
            ("WG", f64::from(wg)),
            ("GLU", f64::from(u8::from(glu))),
        ],
        xb.read(),
    )?;
    let params = Params {
        k,
        t,
        rows: a.rows,
        _pad: 0,
    };
    rec.dispatch_x(
        &pipe,
        &params,
        &xb,
        &[h.into()],
        3,
        &[&a.texels],
        [a.rows.div_ceil(wg), t.div_ceil(ncol), 1],
    )
}
