//! `matmul_quant_f32`: the W4/W8 matrix product for decode (T ≤ 16) and prefill (any T).
//!
//! Math: `y[c, m] = Σ_k W[m, k] · x[c, k]` + the matmul epilogue (see [`crate::matmul`]),
//! f32 accumulation, per group `s · Σ q·x + o · Σ x` (W4: o = −8s symmetric, o = min
//! asymmetric; W8: o = 0).
//! Weights: the texel layout of [`crate::matrix`] (`BlockData::Quantized`); a 32-weight chunk
//! is one texel (W4) or two (W8), so G % 32 == 0. `BITS` (4 or 8) is a pipeline constant.
//! Dispatch: register tiles of 8 rows × `NCOL` columns per invocation, `NCOL` = `min(T, 4)`
//! rounded up to 1, 2 or 4 (fewer pipeline variants; a clamped extra column is computed and not
//! stored), `WG` lanes per workgroup (8 on CPU adapters so that small matrices still spread
//! over every core, else 64), the column tile from `workgroup_id.y` → grid
//! `[ceil(rows / 8·WG), ceil(T / NCOL), 1]`. One weight read and dequantisation serves NCOL
//! columns; each x value serves 8 rows (with subgroups a chunk's 32 values are loaded once per 8
//! lanes and broadcast; on CPU adapters x of ≤ 64 KiB is read through the uniform window,
//! larger ones from the scratch x texture: `Gpu::x_input`, `wgsl/x32.wgsl`). A column's
//! arithmetic does not depend on NCOL, on its tile or on the subgroup mode, so batched columns
//! equal single-column runs bit for bit and prefill equals decode (tested).
//! `GLU` (pipeline constant, [`crate::matmul::matmul_swiglu`]): x is `[T, 2K]` gate | up and
//! the kernel reads `silu(gate) · up` (the `swiglu_f32` formula; equal up to f32 rounding).
//! Tuned for CPU adapters (lavapipe), where each lane is a SIMD lane and 8 rows per lane keep x
//! reuse high. On discrete GPUs the same tiling gives only M/8 threads per matrix; a K-split
//! variant (lanes across K, subgroup reduction) is the known next step there (not measured: no
//! GPU in this project's CI).
//! Limits: T ≤ 262,140 (65,535 tiles of 4); rows per block ≤ 8 · WG · 65,535.
//! Tolerance: normalised MSE ≤ 5e-4 vs [`reference`].

pub mod reference;
#[cfg(test)]
mod tests;

use crate::matmul::MatmulParams;
use crate::matrix::{BlockData, RowBlock};
use crate::{BufferBinding, KernelError, Reads, Recorder, Texels};

/// Kernel id = file = entry point.
pub const ID: &str = "matmul_quant_f32";
/// WGSL source (preprocessed by the runtime).
pub const SRC: &str = include_str!("matmul_quant_f32.wgsl");

/// Which pipeline variant a dispatch needs besides its tile width and x input.
pub(crate) struct Variant {
    /// 4 (W4) or 8 (W8).
    pub bits: u32,
    /// x is `[T, 2K]` gate | up and the input is `silu(gate) · up`.
    pub swiglu: bool,
    /// LoRA h is bound as the uniform window (`#if H_UNIFORM`).
    pub h_uniform: bool,
}

/// Records one row block (bindings: `wgsl/matmul_common.wgsl`, texel arrays 6..=9).
pub(crate) fn encode(
    rec: &mut Recorder<'_>,
    block: &RowBlock,
    params: &MatmulParams,
    common: &[BufferBinding<'_>; 4],
    lora_b: &Texels,
    Variant {
        bits,
        swiglu,
        h_uniform,
    }: Variant,
) -> Result<(), KernelError> {
    let BlockData::Quantized { q, scales, mins } = &block.data else {
        return Err(KernelError::Shape(
            "matmul_quant_f32 needs a quantized (texel) block".into(),
        ));
    };
    let gpu = rec.gpu();
    let wg = gpu.small_grid_workgroup();
    // Column tiles of 1, 2 or 4 (T = 3 computes one clamped, unstored column): one pipeline
    // variant fewer to compile, ~5 s each in lavapipe's LLVM.
    let ncol = params.t.min(4).next_power_of_two();
    // x rows read by this dispatch: T × K (GLU: T × 2K) f32 — the uniform window if it fits.
    let x_bytes = u64::from(params.t) * u64::from(params.k) * 4 * if swiglu { 2 } else { 1 };
    let x = gpu.x_input(rec, common[0].buffer, x_bytes)?;
    let pipe = gpu.pipeline_reads(
        ID,
        SRC,
        ID,
        &[
            ("NCOL", f64::from(ncol)),
            ("WG", f64::from(wg)),
            ("BITS", f64::from(bits)),
            ("GLU", f64::from(u8::from(swiglu))),
        ],
        Reads {
            x: x.read(),
            h_uniform,
            norm_uniform: false,
        },
    )?;
    rec.dispatch_x(
        &pipe,
        params,
        &x,
        &common[1..],
        6,
        &[q, scales, mins.as_ref().unwrap_or(scales), lora_b],
        [block.rows.div_ceil(8 * wg), params.t.div_ceil(ncol), 1],
    )
}
