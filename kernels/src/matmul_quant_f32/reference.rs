//! CPU reference: W4 and W8 dequantisation exactly as ARCHITECTURE.md defines it.

/// f16 little-endian bytes → f32 values.
pub fn f16s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect()
}

/// Dequantises W4 `[m, k]`: symmetric `(q − 8) · s`, asymmetric `q · s + min`.
pub fn dequant_w4(
    m: usize,
    k: usize,
    group: usize,
    q: &[u8],
    scales: &[u8],
    mins: Option<&[u8]>,
) -> Vec<f32> {
    let s = f16s(scales);
    let mn = mins.map(f16s);
    let gpr = k / group;
    let mut out = vec![0f32; m * k];
    for r in 0..m {
        for kk in 0..k {
            let word_at = (r * (k / 8) + kk / 8) * 4;
            let word =
                u32::from_le_bytes([q[word_at], q[word_at + 1], q[word_at + 2], q[word_at + 3]]);
            let nib = ((word >> (4 * (kk % 8))) & 15) as f32;
            let gi = r * gpr + kk / group;
            out[r * k + kk] = match &mn {
                Some(mn) => nib * s[gi] + mn[gi],
                None => (nib - 8.0) * s[gi],
            };
        }
    }
    out
}

/// Dequantises W8 `[m, k]` (byte i of word j is element 4j + i, two's complement).
pub fn dequant_w8(m: usize, k: usize, group: usize, q: &[u8], scales: &[u8]) -> Vec<f32> {
    let s = f16s(scales);
    let gpr = k / group;
    (0..m * k)
        .map(|i| f32::from(q[i] as i8) * s[(i / k) * gpr + (i % k) / group])
        .collect()
}
