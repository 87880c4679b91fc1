//! CPU reference for `matmul`: dense f64 accumulation over the dequantised weights, then the
//! epilogue in the kernel's order (bias, LoRA, accumulate).

use crate::matrix::HostMatrix;

/// The dense f32 `[M, K]` values of any host matrix.
pub fn dequant(h: &HostMatrix<'_>) -> Vec<f32> {
    match *h {
        HostMatrix::W4 {
            m,
            k,
            group_size,
            q,
            scales,
            mins,
        } => crate::matmul_quant_f32::reference::dequant_w4(
            m as usize,
            k as usize,
            group_size as usize,
            q,
            scales,
            mins,
        ),
        HostMatrix::W8 {
            m,
            k,
            group_size,
            q,
            scales,
        } => crate::matmul_quant_f32::reference::dequant_w8(
            m as usize,
            k as usize,
            group_size as usize,
            q,
            scales,
        ),
        HostMatrix::F16 { data, .. } => crate::matvec::reference::dequant_f16(data),
        HostMatrix::F32 { data, .. } => crate::matvec::reference::dequant_f32(data),
    }
}

/// Host-side LoRA expand arguments (B as f32 `[M, R]`, h as `[T, h_stride]`).
pub struct RefLora<'a> {
    pub h: &'a [f32],
    pub h_offset: usize,
    pub h_stride: usize,
    pub b: &'a [f32],
    pub rank: usize,
    pub scale: f32,
    /// Rows `>= segments[0]` read h shifted by R, rows `>= segments[1]` by 2R
    /// (`LoraExpand::segments`; `usize::MAX` = none).
    pub segments: [usize; 2],
}

/// `y[T, M]` = x · Wᵀ (+ bias) (+ LoRA) (+ y0 when accumulating).
pub fn matmul_ref(
    w: &[f32],
    m: usize,
    k: usize,
    x: &[f32],
    t: usize,
    bias: Option<&[f32]>,
    lora: Option<&RefLora<'_>>,
    y0: Option<&[f32]>,
) -> Vec<f32> {
    let mut y = vec![0f32; t * m];
    for c in 0..t {
        for r in 0..m {
            let mut acc = 0f64;
            for kk in 0..k {
                acc += f64::from(w[r * k + kk]) * f64::from(x[c * k + kk]);
            }
            if let Some(b) = bias {
                acc += f64::from(b[r]);
            }
            if let Some(l) = lora {
                let mut d = 0f64;
                let seg = l.segments.iter().filter(|&&s| r >= s).count();
                for i in 0..l.rank {
                    d += f64::from(l.h[c * l.h_stride + l.h_offset + seg * l.rank + i])
                        * f64::from(l.b[r * l.rank + i]);
                }
                acc += f64::from(l.scale) * d;
            }
            if let Some(y0) = y0 {
                acc += f64::from(y0[c * m + r]);
            }
            y[c * m + r] = acc as f32;
        }
    }
    y
}
