//! `embedding`: token embedding lookup from a [`Matrix`] table in any layout.
//!
//! Math: `out[t, k] = dequant(table)[ids[t], k]` (W4 `(q−8)·s` or `q·s+min`, W8 `q·s`, F16, F32),
//! `out` is `[T, K]` f32. An id ≥ V (the table's M) yields a zero row — ids live on the GPU so
//! they cannot be validated on the host; the engine validates token ids when tokenizing.
//! Dispatch: one per row block of the table, grid `[ceil(K/64), T, 1]`, one invocation per
//! element (T ≤ 65,535 per call). F16 tables are read as raw words with `unpack2x16float`,
//! which is valid with and without shader-f16. Tolerance: exact vs [`reference`].

pub mod reference;
#[cfg(test)]
mod tests;

use crate::matrix::{BlockData, Layout, Matrix};
use crate::{BufferBinding, KernelError, Recorder};

/// Kernel id = file = entry point.
pub const ID: &str = "embedding";
/// WGSL source.
pub const SRC: &str = include_str!("embedding.wgsl");

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    k: u32,
    t: u32,
    row0: u32,
    rows: u32,
    m_total: u32,
    layout: u32,
    group: u32,
    zero_oob: u32,
}

/// Records `out[t] = table[ids[t]]` for `t` tokens (see the module contract).
pub fn embedding(
    rec: &mut Recorder<'_>,
    table: &Matrix,
    ids: &wgpu::Buffer,
    out: &wgpu::Buffer,
    t: u32,
) -> Result<(), KernelError> {
    if t == 0 {
        return Ok(());
    }
    let (tt, k) = (u64::from(t), u64::from(table.k));
    if ids.size() < tt * 4 || out.size() < tt * k * 4 {
        return Err(KernelError::Shape(format!(
            "ids ({} B) or out ({} B) too small for T={t}, K={k}",
            ids.size(),
            out.size()
        )));
    }
    let (layout, group) = match table.layout {
        Layout::W4 { group_size, asym } => (u32::from(asym), group_size),
        Layout::W8 { group_size } => (2, group_size),
        Layout::F16 => (3, 0),
        Layout::F32 => (4, 0),
    };
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(ID, SRC, ID, &[])?;
    let (dummy, dummy_tex) = (gpu.dummy(), gpu.dummy_texels());
    for (i, block) in table.blocks.iter().enumerate() {
        let (data, textures) = match &block.data {
            BlockData::Buffers { data } => (data, [dummy_tex; 3]),
            BlockData::Quantized { q, scales, mins } => {
                (dummy, [q, scales, mins.as_ref().unwrap_or(scales)])
            }
        };
        let bufs = [BufferBinding::from(ids), out.into(), data.into()];
        let params = Params {
            k: table.k,
            t,
            row0: block.row0,
            rows: block.rows,
            m_total: table.m,
            layout,
            group,
            zero_oob: u32::from(i == 0),
        };
        rec.dispatch_with_texels(
            &pipe,
            &params,
            &bufs,
            6,
            &textures,
            [table.k.div_ceil(64), t, 1],
        )?;
    }
    Ok(())
}
