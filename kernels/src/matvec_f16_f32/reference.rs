//! CPU reference: row-major f16 weights as f32.

/// f16 little-endian bytes → f32 values.
pub fn dequant_f16(data: &[u8]) -> Vec<f32> {
    crate::matmul_quant_f32::reference::f16s(data)
}
