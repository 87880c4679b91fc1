//! CPU reference for `lora_shrink` (f64 accumulation).

/// `h[T, ΣR]` from `x [T, K]` and the f32 values of each `A_i [R_i, K]`.
pub fn lora_shrink_ref(x: &[f32], a: &[&[f32]], ranks: &[usize], t: usize, k: usize) -> Vec<f32> {
    let rtot: usize = ranks.iter().sum();
    let mut h = vec![0f32; t * rtot];
    for c in 0..t {
        let mut off = 0;
        for (ai, &r) in a.iter().zip(ranks) {
            for i in 0..r {
                let d: f64 = (0..k)
                    .map(|kk| f64::from(x[c * k + kk]) * f64::from(ai[i * k + kk]))
                    .sum();
                h[c * rtot + off + i] = d as f32;
            }
            off += r;
        }
    }
    h
}
