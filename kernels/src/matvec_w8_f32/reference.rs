//! CPU reference: W8 dequantisation exactly as ARCHITECTURE.md defines it (`w = q · s`).

use crate::matmul_w4_f32::reference::f16s;

/// Dequantises W8 `[m, k]` (byte i of word j is element 4j + i, two's complement).
pub fn dequant_w8(m: usize, k: usize, group: usize, q: &[u8], scales: &[u8]) -> Vec<f32> {
    let s = f16s(scales);
    let gpr = k / group;
    (0..m * k)
        .map(|i| f32::from(q[i] as i8) * s[(i / k) * gpr + (i % k) / group])
        .collect()
}
