//! Plain CPU reference for RoPE (HF Qwen2/Llama "rotate_half" layout).

/// `inv_freq[i] = 1 / theta^(2i / D)` for `i < D/2`, computed like HF: the exponent as an f32
/// division, the power rounded to f32, then an f32 reciprocal. Models whose RoPE scaling only
/// rewrites `inv_freq` (e.g. Llama-3 "llama3" scaling) pass their own table to the kernels.
pub fn inv_freq(theta: f32, d: usize) -> Vec<f32> {
    (0..d / 2)
        .map(|i| {
            let e = (2 * i) as f32 / d as f32;
            let pw = f64::from(theta).powf(f64::from(e)) as f32;
            1.0 / pw
        })
        .collect()
}

/// `(cos, sin)` of the angle `f32(pos) · inv_freq` (the f32 product, as HF), evaluated in f64.
pub fn cos_sin(pos: u32, inv_freq: f32) -> (f32, f32) {
    let a = f64::from(pos as f32 * inv_freq);
    (a.cos() as f32, a.sin() as f32)
}

/// Rotates one head `x: [D]` in place: `(x_i, x_{i+D/2}) ← (x_i c − x_{i+D/2} s, x_{i+D/2} c + x_i s)`.
pub fn rope_head(x: &mut [f32], pos: u32, inv_freq: &[f32]) {
    rope_head_scaled(x, pos, inv_freq, 1.0);
}

/// [`rope_head`] with `c` and `s` multiplied by `factor` first (HF's `attention_scaling`).
pub fn rope_head_scaled(x: &mut [f32], pos: u32, inv_freq: &[f32], factor: f32) {
    let half = x.len() / 2;
    for i in 0..half {
        let (c, s) = cos_sin(pos, inv_freq[i]);
        let (c, s) = (c * factor, s * factor);
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

/// Applies RoPE in place to `heads` heads of dim `d` starting at column `col` of each row of
/// `x: [T, stride]`, row t at position `positions[t]`.
pub fn rope(
    x: &mut [f32],
    positions: &[u32],
    inv_freq: &[f32],
    heads: usize,
    d: usize,
    stride: usize,
    col: usize,
) {
    for (t, &pos) in positions.iter().enumerate() {
        for j in 0..heads {
            let start = t * stride + col + j * d;
            rope_head(&mut x[start..start + d], pos, inv_freq);
        }
    }
}
