//! `matvec_f32_f32`: decode matrix–vector product for f32 weights, 1..=16 columns per invocation.
//!
//! Math: `y[c, m] = Σ_k W[m, k] · x[c, k]` + the matmul epilogue (see [`crate::matmul`]),
//! f32 accumulation. Layout of W: ARCHITECTURE.md "Weight layouts" (one `RowBlock`).
//! Dispatch: one invocation per row (`WG` = 64 rows per workgroup), `gid.y` = chunk of
//! `NCOL = min(T, 16)` columns; every column runs the same arithmetic whatever NCOL, so batched
//! columns are bit-identical to single-column runs. The weight row is read once per chunk.
//! Limits: rows per block ≤ 64 · 65,535. Tolerance: normalised MSE ≤ 5e-4 vs [`reference`].

pub mod reference;
#[cfg(test)]
mod tests;

use crate::matmul::{encode_matvec, MatmulParams};
use crate::matrix::RowBlock;
use crate::{BufferBinding, KernelError, Recorder};

/// Kernel id = file = entry point.
pub const ID: &str = "matvec_f32_f32";
/// WGSL source (preprocessed by the runtime).
pub const SRC: &str = include_str!("matvec_f32_f32.wgsl");

/// Records one row block (bindings: see `wgsl/matmul_common.wgsl`).
pub(crate) fn encode(
    rec: &mut Recorder<'_>,
    block: &RowBlock,
    params: &MatmulParams,
    common: &[BufferBinding<'_>; 4],
    lora_b: &wgpu::TextureView,
) -> Result<(), KernelError> {
    encode_matvec(rec, ID, SRC, block, params, common, lora_b)
}
