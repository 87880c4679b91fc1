//! `lora_shrink`: the first half of a LoRA delta for every adapter matrix sharing one input.
//!
//! Math: for matrices `A_i: [R_i, K]` f16 (i < 4, e.g. q/k/v or gate/up),
//! `h[t, off_i + r] = Σ_k x[t, k] · A_i[r, k]` with `off_i = Σ_{j<i} R_j`; `h` is `[T, ΣR]` f32
//! and feeds [`crate::LoraExpand`] (`h_offset = off_i`, `h_stride = ΣR`) in the base matmuls.
//! Dispatch: ONE dispatch for all matrices; one invocation per row of ΣR (64 per workgroup),
//! `gid.y` = chunk of `NCOL = min(T, 16)` columns. f32 accumulation.
//! Limits: 1..=4 matrices, each rank 1..=128, K even (pairs of f16), T ≤ 16 · 65,535.
//! Tolerance: normalised MSE ≤ 5e-4 vs [`reference::lora_shrink_ref`] (typically ~1e-13).

pub mod reference;
#[cfg(test)]
mod tests;

use crate::{BufferBinding, KernelError, Recorder};

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
    r: [u32; 4],
    rtot: u32,
    _pad: u32,
}

/// Records `h = x · [A_0; A_1; ...]ᵀ` (see the module contract).
pub fn lora_shrink(
    rec: &mut Recorder<'_>,
    x: &wgpu::Buffer,
    a: &[&wgpu::Buffer],
    ranks: &[u32],
    h: &wgpu::Buffer,
    t: u32,
    k: u32,
) -> Result<(), KernelError> {
    if a.is_empty() || a.len() > 4 || a.len() != ranks.len() {
        return Err(KernelError::Shape(format!(
            "lora_shrink takes 1..=4 matrices with one rank each (got {} and {})",
            a.len(),
            ranks.len()
        )));
    }
    if k == 0 || k % 2 != 0 {
        return Err(KernelError::Shape(format!(
            "lora_shrink needs an even K > 0, got {k}"
        )));
    }
    let mut r = [0u32; 4];
    for (i, (&buf, &rank)) in a.iter().zip(ranks).enumerate() {
        if rank == 0 || rank > MAX_RANK {
            return Err(KernelError::Shape(format!(
                "rank {rank} of matrix {i} is outside 1..={MAX_RANK}"
            )));
        }
        let need = u64::from(rank) * u64::from(k) * 2;
        if buf.size() < need {
            return Err(KernelError::Shape(format!(
                "A_{i} holds {} B, needs {need} B",
                buf.size()
            )));
        }
        r[i] = rank;
    }
    let rtot: u32 = r.iter().sum();
    if t == 0 {
        return Ok(());
    }
    let (tt, kk) = (u64::from(t), u64::from(k));
    if x.size() < tt * kk * 4 || h.size() < tt * u64::from(rtot) * 4 {
        return Err(KernelError::Shape(format!(
            "x ({} B) or h ({} B) too small for T={t}, K={k}, ΣR={rtot}",
            x.size(),
            h.size()
        )));
    }
    let gpu = rec.gpu();
    let ncol = t.min(16);
    let pipe = gpu.pipeline(ID, SRC, ID, &[("NCOL", f64::from(ncol)), ("WG", 64.0)])?;
    let dummy = gpu.dummy();
    let mut bufs = vec![BufferBinding::from(x), h.into()];
    for i in 0..4 {
        bufs.push(a.get(i).copied().unwrap_or(dummy).into());
    }
    let params = Params {
        k,
        t,
        r,
        rtot,
        _pad: 0,
    };
    rec.dispatch(
        &pipe,
        &params,
        &bufs,
        [rtot.div_ceil(64), t.div_ceil(ncol), 1],
    )
}
