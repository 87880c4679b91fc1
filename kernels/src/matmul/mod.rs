//! `matmul`: the front-end of the matmul family — `y[T, M] = x[T, K] · Wᵀ` for any [`Matrix`]
//! layout, with a fused epilogue (bias, residual accumulate, LoRA expand).
//!
//! Contract:
//! - `x` is `[T, K]` f32 row-major, `y` is `[T, M]` f32 row-major; accumulation is f32.
//! - Epilogue per element: `v = acc (+ bias[m]) (+ scale · Σ_r h[t, h_offset + r] · B[m, r])`,
//!   then `y = v` or, with `accumulate`, `y += v`. `B` is `[M, R]` f16 ([`LoraB`], a texture), `h` is `[T, h_stride]` f32
//!   (the shrink output; W4/W8 kernels read it through the uniform window when
//!   [`Gpu::uniform_window`](crate::Gpu::uniform_window) allows, else as storage). LoRA on/off and scale are per dispatch; scale 0 leaves the
//!   base result bit for bit.
//! - Kernel choice: W4 and W8 use `matmul_quant_f32` for every T (8-row × 4-column register
//!   tiles over texture weights; see its module). F16/F32 (heads, unquantized checkpoints) use
//!   the matrix–vector kernels `matvec_<w>_f32`: one invocation per row, up to [`DECODE_MAX_T`]
//!   columns from one weight read, larger T in 16-column chunks (`gid.y`). In every kernel a
//!   column's arithmetic does not depend on T, so batched columns equal single-column runs bit
//!   for bit.
//! - One dispatch per row block of `w` (one for every matrix that fits a binding).
//! - Errors: `Shape` for inconsistent sizes; `Limit` when `x`/`y` exceed a binding.
//!   Tolerance vs the CPU reference: normalised MSE ≤ 5e-4 (measured ~1e-12 for f32 weights).

pub mod reference;
#[cfg(test)]
pub(crate) mod tests;

use crate::matrix::{BlockData, Layout, Matrix, RowBlock};
use crate::{BufferBinding, KernelError, Recorder};

/// Columns per invocation of the W8/F16/F32 matrix–vector kernels.
pub const DECODE_MAX_T: u32 = 16;

/// The LoRA expand fused into a matmul's epilogue: `y += scale · h[:, off..off+R] · Bᵀ`.
#[derive(Debug, Clone, Copy)]
pub struct LoraExpand<'a> {
    /// `[T, h_stride]` f32, the shrink output.
    pub h: &'a wgpu::Buffer,
    /// First column of this matrix's rank block in `h`.
    pub h_offset: u32,
    /// Row stride of `h` (ΣR over the matrices sharing the shrink).
    pub h_stride: u32,
    /// `[M, R]` f16 ([`LoraB::upload`]).
    pub b: &'a LoraB,
    /// R.
    pub rank: u32,
    /// Scale (alpha / r, or 0 to switch the adapter off without changing bindings).
    pub scale: f32,
    /// Row segments of a row-concatenated matrix (q|k|v, gate|up) that each have their own
    /// rank block: rows `>= segments[0]` read `h` columns shifted by R, rows `>= segments[1]`
    /// by 2R, and `B` is the row concatenation `[M, R]` of the parts' B. `[u32::MAX; 2]` = one
    /// segment. So one dispatch applies `B_q·A_q`, `B_k·A_k`, `B_v·A_v` without a
    /// block-diagonal (mostly zero) B.
    pub segments: [u32; 2],
}

impl LoraExpand<'_> {
    /// No segmentation: one rank block for every row.
    pub const ONE_SEGMENT: [u32; 2] = [u32::MAX, u32::MAX];
}

/// A LoRA B `[M, R]` f16 on the GPU: a texel array (`crate::Texels`, `#texels` addressing) in
/// which row m holds `ceil(R/8)` texels of 8 f16 values, zero padded — the epilogue reads a row's
/// R values in `ceil(R/8)` fetches instead of R storage loads.
#[derive(Debug)]
pub struct LoraB {
    /// The texels: row m is `ceil(R/8)` texels of 8 f16, zero padded.
    pub texels: crate::Texels,
    /// Rows M.
    pub m: u32,
    /// Rank R.
    pub rank: u32,
}

impl LoraB {
    /// Uploads `[m, rank]` little-endian f16 bytes (row-major).
    pub fn upload(gpu: &crate::Gpu, m: u32, rank: u32, f16: &[u8]) -> Result<LoraB, KernelError> {
        if f16.len() != m as usize * rank as usize * 2 {
            return Err(KernelError::Shape(format!(
                "LoRA B [{m}, {rank}] f16 needs {} B, got {}",
                m as usize * rank as usize * 2,
                f16.len()
            )));
        }
        let (texels, _) = crate::matrix::upload_f16_rows(gpu, "lora_B", rank, &[f16])?;
        Ok(LoraB { texels, m, rank })
    }

    /// Bytes of the texel array's payload (padded rows).
    pub fn bytes(&self) -> u64 {
        u64::from(self.m) * u64::from(self.rank.div_ceil(8)) * 16
    }
}

/// What happens after the dot products.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// `[M]` f32 added to every column.
    pub bias: Option<&'a wgpu::Buffer>,
    /// `y += result` (residual add) instead of `y = result`.
    pub accumulate: bool,
    /// Fused LoRA expand.
    pub lora: Option<LoraExpand<'a>>,
}

/// Uniform params shared by the matmul kernels (`wgsl/matmul_common.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub k: u32,
    pub t: u32,
    pub group: u32,
    pub row0: u32,
    pub y_stride: u32,
    pub flags: u32,
    pub lora_rank: u32,
    pub lora_scale: f32,
    pub h_offset: u32,
    pub h_stride: u32,
    /// First row of LoRA segment 1 and 2 (`u32::MAX` = none).
    pub seg1: u32,
    pub seg2: u32,
    pub _pad: [u32; 3],
}

const FLAG_ASYM: u32 = 1;
const FLAG_BIAS: u32 = 2;
const FLAG_ACCUMULATE: u32 = 4;
const FLAG_LORA: u32 = 8;

fn need(buf: &wgpu::Buffer, bytes: u64, what: &str) -> Result<(), KernelError> {
    if buf.size() < bytes {
        return Err(KernelError::Shape(format!(
            "{what} holds {} B, needs {bytes} B",
            buf.size()
        )));
    }
    Ok(())
}

/// Records `y = x · Wᵀ` (+ epilogue) for `t` columns; see the module contract.
pub fn matmul(
    rec: &mut Recorder<'_>,
    w: &Matrix,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    t: u32,
    ep: &Epilogue<'_>,
) -> Result<(), KernelError> {
    record(rec, w, x, y, t, ep, false)
}

/// Records `y = swiglu(gu) · Wᵀ` (+ epilogue) with `swiglu(gu)[t, k] = silu(gu[t, k]) ·
/// gu[t, K + k]` computed as the kernel reads its input (`gu` is `[T, 2K]`, gate | up, as the
/// fused gate_up projection writes it): the MLP's down projection without a separate SwiGLU
/// pass. W4/W8 only (`Shape` error otherwise); equals `swiglu_f32` then [`matmul`] up to f32
/// rounding of the SiLU (nMSE ≤ 1e-12 tested).
pub fn matmul_swiglu(
    rec: &mut Recorder<'_>,
    w: &Matrix,
    gu: &wgpu::Buffer,
    y: &wgpu::Buffer,
    t: u32,
    ep: &Epilogue<'_>,
) -> Result<(), KernelError> {
    record(rec, w, gu, y, t, ep, true)
}

fn record(
    rec: &mut Recorder<'_>,
    w: &Matrix,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    t: u32,
    ep: &Epilogue<'_>,
    swiglu: bool,
) -> Result<(), KernelError> {
    if t == 0 {
        return Ok(());
    }
    let (m, k, tt) = (u64::from(w.m), u64::from(w.k), u64::from(t));
    if swiglu {
        if !matches!(w.layout, Layout::W4 { .. } | Layout::W8 { .. }) {
            return Err(KernelError::Shape(format!(
                "the fused SwiGLU input needs a W4/W8 matrix, not {:?}",
                w.layout
            )));
        }
        need(x, tt * 2 * k * 4, "gate|up [T, 2K] f32")?;
    } else {
        need(x, tt * k * 4, "x [T, K] f32")?;
    }
    need(y, tt * m * 4, "y [T, M] f32")?;
    let mut flags = 0;
    if let Some(b) = ep.bias {
        need(b, m * 4, "bias [M] f32")?;
        flags |= FLAG_BIAS;
    }
    if ep.accumulate {
        flags |= FLAG_ACCUMULATE;
    }
    if let Some(l) = &ep.lora {
        let blocks = 1 + l.segments.iter().filter(|&&s| s != u32::MAX).count() as u64;
        if l.rank == 0 || u64::from(l.h_offset) + blocks * u64::from(l.rank) > u64::from(l.h_stride)
        {
            return Err(KernelError::Shape(format!(
                "LoRA: {blocks} rank block(s) of {} at column {} do not fit h_stride {}",
                l.rank, l.h_offset, l.h_stride
            )));
        }
        need(
            l.h,
            tt * u64::from(l.h_stride) * 4,
            "LoRA h [T, h_stride] f32",
        )?;
        if l.b.m != w.m || l.b.rank != l.rank {
            return Err(KernelError::Shape(format!(
                "LoRA B is [{}, {}], the matmul needs [{}, {}]",
                l.b.m, l.b.rank, w.m, l.rank
            )));
        }
        flags |= FLAG_LORA;
    }
    let group = match w.layout {
        Layout::W4 { group_size, asym } => {
            if asym {
                flags |= FLAG_ASYM;
            }
            group_size
        }
        Layout::W8 { group_size } => group_size,
        Layout::F16 | Layout::F32 => 0,
    };
    let gpu = rec.gpu();
    let dummy = gpu.dummy();
    // The W4/W8 kernel reads h through the uniform window where it can (`#if H_UNIFORM`).
    let quantized = matches!(w.layout, Layout::W4 { .. } | Layout::W8 { .. });
    let h_uniform = quantized
        && ep
            .lora
            .is_some_and(|l| gpu.uniform_window(l.h, tt * u64::from(l.h_stride) * 4));
    let h_binding = match ep.lora {
        Some(l) if h_uniform => BufferBinding::range(l.h, 0, crate::UNIFORM_X_BYTES),
        Some(l) => l.h.into(),
        None => dummy.into(),
    };
    for block in &w.blocks {
        let params = MatmulParams {
            m: block.rows,
            k: w.k,
            t,
            group,
            row0: block.row0,
            y_stride: w.m,
            flags,
            lora_rank: ep.lora.map_or(0, |l| l.rank),
            lora_scale: ep.lora.map_or(0.0, |l| l.scale),
            h_offset: ep.lora.map_or(0, |l| l.h_offset),
            h_stride: ep.lora.map_or(0, |l| l.h_stride),
            seg1: ep.lora.map_or(u32::MAX, |l| l.segments[0]),
            seg2: ep.lora.map_or(u32::MAX, |l| l.segments[1]),
            _pad: [0; 3],
        };
        let common = [
            BufferBinding::from(x),
            y.into(),
            ep.bias.unwrap_or(dummy).into(),
            h_binding,
        ];
        let lora_b = ep.lora.map_or(gpu.dummy_texels(), |l| &l.b.texels);
        match w.layout {
            Layout::W4 { .. } | Layout::W8 { .. } => {
                let variant = crate::matmul_quant_f32::Variant {
                    bits: if matches!(w.layout, Layout::W4 { .. }) {
                        4
                    } else {
                        8
                    },
                    swiglu,
                    h_uniform,
                };
                crate::matmul_quant_f32::encode(rec, block, &params, &common, lora_b, variant)?
            }
            l @ (Layout::F16 | Layout::F32) => {
                crate::matvec::encode(rec, l, block, &params, &common, lora_b)?
            }
        }
    }
    Ok(())
}

/// Shared by the F16/F32 matvec kernels: bindings `common ++ [data]` (1..=5), LoRA B at 9, grid
/// `[ceil(rows / 64), ceil(T / NCOL), 1]` with `NCOL = min(T, 16)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_matvec(
    rec: &mut Recorder<'_>,
    id: &'static str,
    src: &'static str,
    entry: &str,
    block: &RowBlock,
    params: &MatmulParams,
    common: &[BufferBinding<'_>; 4],
    lora_b: &crate::Texels,
) -> Result<(), KernelError> {
    let ncol = params.t.min(DECODE_MAX_T);
    let pipe = rec
        .gpu()
        .pipeline(id, src, entry, &[("NCOL", f64::from(ncol)), ("WG", 64.0)])?;
    let bufs = block_bindings(block, common)?;
    rec.dispatch_with_texels(
        &pipe,
        params,
        &bufs,
        9,
        &[lora_b],
        [block.rows.div_ceil(64), params.t.div_ceil(ncol), 1],
    )
}

/// `common ++ [data]` for an F16/F32 (storage buffer) block.
pub(crate) fn block_bindings<'b>(
    block: &'b RowBlock,
    common: &[BufferBinding<'b>; 4],
) -> Result<Vec<BufferBinding<'b>>, KernelError> {
    let BlockData::Buffers { data } = &block.data else {
        return Err(KernelError::Shape(
            "a quantized block has no storage buffers".into(),
        ));
    };
    let mut v = common.to_vec();
    v.push(data.into());
    Ok(v)
}
