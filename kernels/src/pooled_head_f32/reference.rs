//! Plain CPU reference for `pooled_head_f32` (f64).

use super::Pooling;

/// `out[b, c] = W[c] · pool(x[b]) + bias[c]` for `x: [B, T, hidden]`, `w: [C, hidden]`.
pub fn pooled_head(
    x: &[f32],
    t: usize,
    hidden: usize,
    w: &[f32],
    bias: &[f32],
    pooling: Pooling,
) -> Vec<f32> {
    let (lo, hi) = match pooling {
        Pooling::Mean { start, end } => (start as usize, end as usize),
        Pooling::Last { end } => (end as usize - 1, end as usize),
    };
    let mut out = Vec::new();
    for item in x.chunks(t * hidden) {
        let pooled: Vec<f64> = (0..hidden)
            .map(|k| {
                (lo..hi)
                    .map(|ti| f64::from(item[ti * hidden + k]))
                    .sum::<f64>()
                    / (hi - lo) as f64
            })
            .collect();
        for (row, &bc) in w.chunks(hidden).zip(bias) {
            let dot: f64 = row
                .iter()
                .zip(&pooled)
                .map(|(&a, b)| f64::from(a) * b)
                .sum();
            out.push((dot + f64::from(bc)) as f32);
        }
    }
    out
}
