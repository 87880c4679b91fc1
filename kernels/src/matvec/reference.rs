//! CPU reference: row-major f16 / f32 weights as f32.

/// f16 little-endian bytes → f32 values.
pub fn dequant_f16(data: &[u8]) -> Vec<f32> {
    crate::matmul_quant_f32::reference::f16s(data)
}

/// f32 little-endian bytes → f32 values.
pub fn dequant_f32(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
