//! `matvec_w4_f32`: decode matrix–vector product for W4 weights, 1..=16 columns.
//!
//! Math: `y[c, m] = Σ_k W4[m, k] · x[c, k]` + the matmul epilogue (see [`crate::matmul`]),
//! f32 accumulation, per group `s · Σ q·x + o · Σ x` (o = −8s symmetric, o = min asymmetric).
//! Layout of W: ARCHITECTURE.md "Weight layouts" (one `RowBlock`), read as `vec4<u32>`
//! (32 weights per load, so G % 32 == 0).
//! Dispatch: one invocation per row (`WG` = 64 rows per workgroup); `workgroup_id.y` = quad of
//! `NCOL = min(T, 4)` columns held in vec4 components (lavapipe spills private arrays, so
//! columns are not kept in an array). One weight read serves 4 columns; T = 8 or 16 reads the
//! weights 2 or 4 times (from cache). A column's arithmetic does not depend on NCOL or on its
//! quad, so batched columns are bit-identical to single-column runs (tested).
//! Limits: rows per block ≤ 64 · 65,535. Tolerance: normalised MSE ≤ 5e-4 vs [`reference`].

pub mod reference;
#[cfg(test)]
mod tests;

use crate::matmul::{encode_matvec, MatmulParams};
use crate::matrix::RowBlock;
use crate::{BufferBinding, KernelError, Recorder};

/// Kernel id = file = entry point.
pub const ID: &str = "matvec_w4_f32";
/// WGSL source (preprocessed by the runtime).
pub const SRC: &str = include_str!("matvec_w4_f32.wgsl");

/// Records one row block (bindings: see `wgsl/matmul_common.wgsl`).
pub(crate) fn encode(
    rec: &mut Recorder<'_>,
    block: &RowBlock,
    params: &MatmulParams,
    common: &[BufferBinding<'_>; 5],
) -> Result<(), KernelError> {
    encode_matvec(rec, ID, SRC, block, params, common, 3)
}
