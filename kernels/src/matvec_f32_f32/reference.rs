//! CPU reference: row-major f32 weights.

/// f32 little-endian bytes → f32 values.
pub fn dequant_f32(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
