//! Plain CPU reference for `swiglu_f32` (f64 math).

/// `out[t, i] = silu(gu[t, i]) · gu[t, inter + i]` for `gu: [T, 2·inter]`.
pub fn swiglu(gu: &[f32], inter: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(gu.len() / 2);
    for row in gu.chunks(2 * inter) {
        let (g, u) = row.split_at(inter);
        for (&g, &u) in g.iter().zip(u) {
            let g = f64::from(g);
            out.push((g / (1.0 + (-g).exp()) * f64::from(u)) as f32);
        }
    }
    out
}
