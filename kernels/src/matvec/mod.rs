//! `matvec_f16_f32` / `matvec_f32_f32`: decode matrix–vector products for f16 and f32 weights,
//! 1..=16 columns per invocation. One body (`wgsl/matvec_body.wgsl`); the two kernels differ
//! only in how they declare and read W.
//!
//! Math: `y[c, m] = Σ_k W[m, k] · x[c, k]` + the matmul epilogue (see [`crate::matmul`]),
//! f32 accumulation (pairs of weights per step when K is even). Layout of W: ARCHITECTURE.md
//! "Weight layouts" (one `RowBlock`).
//! Dispatch: one invocation per row (`WG` = 64 rows per workgroup), `gid.y` = chunk of
//! `NCOL = min(T, 16)` columns; every column runs the same arithmetic whatever NCOL, so batched
//! columns are bit-identical to single-column runs. The weight row is read once per chunk.
//! Limits: rows per block ≤ 64 · 65,535. Tolerance: normalised MSE ≤ 5e-4 vs [`reference`].

pub mod reference;
#[cfg(test)]
mod tests;

use crate::matmul::{encode_matvec, MatmulParams};
use crate::matrix::RowBlock;
use crate::{BufferBinding, KernelError, Layout, Recorder};

/// Kernel ids (= file names) and sources, by weight type.
const F16: (&str, &str) = ("matvec_f16_f32", include_str!("matvec_f16_f32.wgsl"));
const F32: (&str, &str) = ("matvec_f32_f32", include_str!("matvec_f32_f32.wgsl"));

/// Records one F16 or F32 row block (bindings: see `wgsl/matmul_common.wgsl`).
pub(crate) fn encode(
    rec: &mut Recorder<'_>,
    layout: Layout,
    block: &RowBlock,
    params: &MatmulParams,
    common: &[BufferBinding<'_>; 4],
    lora_b: &crate::Texels,
) -> Result<(), KernelError> {
    let (id, src) = match layout {
        Layout::F16 => F16,
        Layout::F32 => F32,
        other => {
            return Err(KernelError::Shape(format!(
                "matvec: {other:?} weights are not a plain f16/f32 layout"
            )))
        }
    };
    encode_matvec(rec, id, src, "matvec", block, params, common, lora_b)
}
