//! `Matrix`: a linear weight `[M, K]` on the GPU in one of the ARCHITECTURE.md layouts.
//!
//! Contract:
//! - `HostMatrix` borrows raw little-endian bytes exactly as stored in a `.kst` file:
//!   W4 `q [M, K/8] u32`, `scales [M, K/G] f16`, optional `mins [M, K/G] f16`;
//!   W8 `q [M, K/4] u32` (i8 bytes), `scales [M, K/G] f16`; F16/F32 row-major `[M, K]`.
//!   Sizes are checked exactly (`KernelError::Shape`); K % G == 0 and G % 32 == 0 for W4 and W8
//!   (the `.kst` format allows G ∈ {32, 64, 128}).
//! - F16/F32 upload into storage buffers without repacking. A matrix whose arrays exceed the
//!   device's `max_storage_buffer_binding_size` is split by rows into `RowBlock`s (each array of a
//!   block is its own buffer); kernels dispatch once per block. `Matrix::upload_rows`
//!   concatenates several host matrices with equal K and layout along M (e.g. q|k|v into one QKV
//!   weight).
//! - W4 and W8 upload into [`Texels`] arrays of 16-byte texels (`BlockData::Quantized`), as the
//!   device profile stores them: `Rgba32Uint` textures 4096 texels wide (texel `e` at
//!   `(e % 4096, e / 4096)`) or storage buffers (texel `e` at byte `16 e`), in one order:
//!   - `q`: the `.kst` bytes in order (no repacking): texel `r · K/32 + j` holds the 32 weights
//!     of chunk `j` of block row `r` for W4; texels `r · K/16 + 2j` and `+ 1` for W8;
//!   - `scales` (and `mins`): `S = ceil(K/G / 8)` texels per row; texel `r · S + b` holds the f16
//!     values of groups `8b .. 8b+7` (group `g` in half `g % 2` of word `(g % 8) / 2`), zero
//!     padded;
//!   - a block holds at most [`Gpu::max_array_texels`] texels per array (`4096 ·
//!     max_texture_dimension_2d` in textures, the storage binding limit in buffers).
//! - Why textures on the CPU-driver profile: on Mesa lavapipe a texel fetch is a vector gather,
//!   while every storage-buffer load runs a scalar loop over the SIMD lanes with a bounds check
//!   per lane — measured 0.86 vs 3.6 ns per 32-bit word (`kernels/examples/load_probe.rs`). The
//!   GPU profile keeps weights in storage buffers, the plain path of every GPU stack.

use crate::{Gpu, KernelError, Texels};

/// A weight matrix in host memory (raw bytes, e.g. slices of the `.kst` mmap).
#[derive(Debug, Clone, Copy)]
pub enum HostMatrix<'a> {
    /// Group-wise 4-bit; symmetric without `mins`, asymmetric with.
    W4 {
        m: u32,
        k: u32,
        group_size: u32,
        q: &'a [u8],
        scales: &'a [u8],
        mins: Option<&'a [u8]>,
    },
    /// Group-wise int8, `w = q · s`.
    W8 {
        m: u32,
        k: u32,
        group_size: u32,
        q: &'a [u8],
        scales: &'a [u8],
    },
    /// Row-major f16.
    F16 { m: u32, k: u32, data: &'a [u8] },
    /// Row-major f32.
    F32 { m: u32, k: u32, data: &'a [u8] },
}

/// The storage layout of a matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 4-bit; `asym` when mins are present.
    W4 { group_size: u32, asym: bool },
    /// 8-bit.
    W8 { group_size: u32 },
    /// f16.
    F16,
    /// f32.
    F32,
}

/// Where a row block's arrays live.
#[derive(Debug)]
pub enum BlockData {
    /// F16/F32: row-major values in a storage buffer.
    Buffers {
        /// The values.
        data: wgpu::Buffer,
    },
    /// W4/W8: texel arrays in the module contract's layout.
    Quantized {
        /// Quantized words, 32 (W4) or 16 (W8) weights per texel.
        q: Texels,
        /// Group scales, 8 groups per texel.
        scales: Texels,
        /// Group mins (asymmetric), laid out as `scales`.
        mins: Option<Texels>,
    },
}

/// Rows `row0 .. row0 + rows` of a matrix.
#[derive(Debug)]
pub struct RowBlock {
    /// First row of the block within the matrix.
    pub row0: u32,
    /// Rows in the block.
    pub rows: u32,
    /// The block's arrays.
    pub data: BlockData,
}

/// Scale texels per row of a W4/W8 matrix (8 groups per texel).
pub fn scale_texels_per_row(k: u32, group_size: u32) -> u32 {
    (k / group_size).div_ceil(8)
}

/// Rows of `row_bytes` bytes (from the concatenation of `parts`), each zero-padded to
/// `texels_per_row` texels: the scale/min layout, and LoRA B's.
pub(crate) fn pad_rows(parts: &[&[u8]], row_bytes: usize, texels_per_row: usize) -> Vec<u8> {
    let padded = texels_per_row * 16;
    let rows: usize = parts.iter().map(|p| p.len() / row_bytes).sum();
    let mut out = vec![0u8; rows * padded];
    let src = parts.iter().flat_map(|p| p.chunks_exact(row_bytes));
    for (dst, row) in out.chunks_exact_mut(padded).zip(src) {
        dst[..row_bytes].copy_from_slice(row);
    }
    out
}

/// Uploads the row concatenation of `parts` (each `[rows_i, cols]` little-endian f16,
/// row-major) as a texel array of `ceil(cols/8)` texels per row, zero padded (LoRA A and B).
/// Returns the array and the row count.
pub(crate) fn upload_f16_rows(
    gpu: &Gpu,
    label: &str,
    cols: u32,
    parts: &[&[u8]],
) -> Result<(Texels, u32), KernelError> {
    let row = cols as usize * 2;
    let bytes: usize = parts.iter().map(|p| p.len()).sum();
    if cols == 0 || bytes == 0 || parts.iter().any(|p| p.len() % row != 0) {
        return Err(KernelError::Shape(format!(
            "{label}: f16 rows of {cols} columns need a multiple of {row} B per part, got {:?}",
            parts.iter().map(|p| p.len()).collect::<Vec<_>>()
        )));
    }
    let texels = pad_rows(parts, row, cols.div_ceil(8) as usize);
    Ok((
        gpu.upload_texel_array(label, &[&texels])?,
        (bytes / row) as u32,
    ))
}

/// A weight matrix `[M, K]` on the GPU, split into row blocks that each fit one binding.
#[derive(Debug)]
pub struct Matrix {
    /// Output features M.
    pub m: u32,
    /// Input features K.
    pub k: u32,
    /// Storage layout.
    pub layout: Layout,
    /// Row blocks covering rows 0..M in order.
    pub blocks: Vec<RowBlock>,
}

/// Per-row byte sizes of (data, scales, mins) for a layout.
fn row_bytes(layout: Layout, k: u32) -> (u64, u64, u64) {
    let k = u64::from(k);
    match layout {
        Layout::W4 { group_size, asym } => {
            let s = k / u64::from(group_size) * 2;
            (k / 2, s, if asym { s } else { 0 })
        }
        Layout::W8 { group_size } => (k, k / u64::from(group_size) * 2, 0),
        Layout::F16 => (2 * k, 0, 0),
        Layout::F32 => (4 * k, 0, 0),
    }
}

fn shape(msg: String) -> KernelError {
    KernelError::Shape(msg)
}

impl<'a> HostMatrix<'a> {
    /// (M, K, layout, data, scales, mins), after checking every size.
    fn parts(&self) -> Result<(u32, u32, Layout, &'a [u8], &'a [u8], &'a [u8]), KernelError> {
        let (m, k, layout, d, s, mn): (u32, u32, Layout, &[u8], &[u8], &[u8]) = match *self {
            HostMatrix::W4 {
                m,
                k,
                group_size,
                q,
                scales,
                mins,
            } => {
                if group_size == 0 || group_size % 32 != 0 || k % group_size != 0 {
                    return Err(shape(format!(
                        "W4 needs G % 32 == 0 and K % G == 0 (K={k}, G={group_size})"
                    )));
                }
                (
                    m,
                    k,
                    Layout::W4 {
                        group_size,
                        asym: mins.is_some(),
                    },
                    q,
                    scales,
                    mins.unwrap_or(&[]),
                )
            }
            HostMatrix::W8 {
                m,
                k,
                group_size,
                q,
                scales,
            } => {
                if group_size == 0 || group_size % 32 != 0 || k % group_size != 0 {
                    return Err(shape(format!(
                        "W8 needs G % 32 == 0 and K % G == 0 (K={k}, G={group_size})"
                    )));
                }
                (m, k, Layout::W8 { group_size }, q, scales, &[])
            }
            HostMatrix::F16 { m, k, data } => (m, k, Layout::F16, data, &[], &[]),
            HostMatrix::F32 { m, k, data } => (m, k, Layout::F32, data, &[], &[]),
        };
        if m == 0 || k == 0 {
            return Err(shape(format!("empty matrix [{m}, {k}]")));
        }
        let (rd, rs, rm) = row_bytes(layout, k);
        let mm = u64::from(m);
        for (name, arr, per_row) in [("data", d, rd), ("scales", s, rs), ("mins", mn, rm)] {
            if arr.len() as u64 != mm * per_row {
                return Err(shape(format!(
                    "{layout:?} [{m}, {k}]: `{name}` has {} B, expected {} B",
                    arr.len(),
                    mm * per_row
                )));
            }
        }
        Ok((m, k, layout, d, s, mn))
    }
}

impl Matrix {
    /// Uploads one host matrix (see the module contract).
    pub fn upload(gpu: &Gpu, host: &HostMatrix<'_>) -> Result<Matrix, KernelError> {
        Self::upload_rows(gpu, std::slice::from_ref(host))
    }

    /// Uploads the row-concatenation of `parts` (equal K and layout), e.g. q|k|v.
    pub fn upload_rows(gpu: &Gpu, parts: &[HostMatrix<'_>]) -> Result<Matrix, KernelError> {
        let mut split = Vec::with_capacity(parts.len());
        for p in parts {
            split.push(p.parts()?);
        }
        let Some(&(_, k, layout, ..)) = split.first() else {
            return Err(shape("upload_rows needs at least one part".into()));
        };
        if let Some(bad) = split.iter().find(|s| s.1 != k || s.2 != layout) {
            return Err(shape(format!(
                "cannot concatenate {:?} K={} with {layout:?} K={k}",
                bad.2, bad.1
            )));
        }
        let m_total: u64 = split.iter().map(|s| u64::from(s.0)).sum();
        let m =
            u32::try_from(m_total).map_err(|_| shape(format!("M = {m_total} overflows u32")))?;
        let (rd, rs, rm) = row_bytes(layout, k);
        let rows_per_block = match layout {
            Layout::W4 { group_size, .. } | Layout::W8 { group_size } => {
                let cap = gpu.max_array_texels();
                let widest = (rd / 16).max(u64::from(scale_texels_per_row(k, group_size)));
                cap / widest
            }
            _ => gpu.limits().max_storage_buffer_binding_size / rd,
        }
        .min(u64::from(u32::MAX));
        if rows_per_block == 0 {
            return Err(KernelError::Limit(format!(
                "one row of {layout:?} K={k} exceeds a binding or texture"
            )));
        }
        let mut blocks = Vec::new();
        let mut row0 = 0u64;
        while row0 < m_total {
            let rows = rows_per_block.min(m_total - row0);
            let gather = |which: usize, per_row: u64| -> Vec<&[u8]> {
                let mut out = Vec::new();
                let mut base = 0u64;
                for s in &split {
                    let (lo, hi) = (base, base + u64::from(s.0));
                    base = hi;
                    let (a, b) = (lo.max(row0), hi.min(row0 + rows));
                    if a >= b {
                        continue;
                    }
                    let arr = match which {
                        0 => s.3,
                        1 => s.4,
                        _ => s.5,
                    };
                    out.push(&arr[((a - lo) * per_row) as usize..((b - lo) * per_row) as usize]);
                }
                out
            };
            let data = match layout {
                Layout::W4 { group_size, .. } | Layout::W8 { group_size } => {
                    let spr = scale_texels_per_row(k, group_size) as usize;
                    let packed = |arr: Vec<&[u8]>| pad_rows(&arr, rs as usize, spr);
                    BlockData::Quantized {
                        q: gpu.upload_texel_array("matrix.q", &gather(0, rd))?,
                        scales: gpu
                            .upload_texel_array("matrix.scales", &[&packed(gather(1, rs))])?,
                        mins: if rm > 0 {
                            Some(gpu.upload_texel_array("matrix.mins", &[&packed(gather(2, rm))])?)
                        } else {
                            None
                        },
                    }
                }
                Layout::F16 | Layout::F32 => BlockData::Buffers {
                    data: gpu.upload_parts("matrix.data", &gather(0, rd))?,
                },
            };
            blocks.push(RowBlock {
                row0: row0 as u32,
                rows: rows as u32,
                data,
            });
            row0 += rows;
        }
        Ok(Matrix {
            m,
            k,
            layout,
            blocks,
        })
    }

    /// Bytes of weight data read by one full pass over the matrix (data + scales + mins).
    pub fn weight_bytes(&self) -> u64 {
        let (rd, rs, rm) = row_bytes(self.layout, self.k);
        u64::from(self.m) * (rd + rs + rm)
    }
}
