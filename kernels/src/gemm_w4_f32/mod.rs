//! `gemm_w4_f32`: prefill matrix–matrix product for W4 weights (T > 16 columns).
//!
//! Math: `y[c, m] = Σ_k W4[m, k] · x[c, k]` + the matmul epilogue (see [`crate::matmul`]),
//! f32 accumulation, per group `s · Σ q·x + o · Σ x` (o = −8s symmetric, o = min asymmetric).
//! Dispatch: register tiles of 4 rows × 4 columns per invocation, 64 row tiles per workgroup,
//! the column tile from `workgroup_id.y` (uniform x addresses) → grid
//! `[ceil(M_block / 256), ceil(T / 4), 1]` (T ≤ 262,140). Weights are read as `vec4<u32>`
//! (32 weights per load; hence G % 32 == 0).
//! Tolerance: normalised MSE ≤ 5e-4 vs `matvec_w4_f32::reference`.

#[cfg(test)]
mod tests;

use crate::matmul::{block_bindings, MatmulParams};
use crate::matrix::RowBlock;
use crate::{BufferBinding, KernelError, Recorder};

/// Kernel id = file = entry point.
pub const ID: &str = "gemm_w4_f32";
/// WGSL source (preprocessed by the runtime).
pub const SRC: &str = include_str!("gemm_w4_f32.wgsl");

/// Records one row block.
pub(crate) fn encode(
    rec: &mut Recorder<'_>,
    block: &RowBlock,
    params: &MatmulParams,
    common: &[BufferBinding<'_>; 5],
) -> Result<(), KernelError> {
    let pipe = rec.gpu().pipeline(ID, SRC, ID, &[])?;
    let bufs = block_bindings(block, common, 3)?;
    rec.dispatch(
        &pipe,
        params,
        &bufs,
        [block.rows.div_ceil(256), params.t.div_ceil(4), 1],
    )
}
