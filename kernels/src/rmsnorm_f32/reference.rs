//! Plain CPU reference for `rmsnorm_f32` (accumulates in f64).

/// `y[t] = x[t] / sqrt(mean(x[t]²) + eps) · w` for rows of length `k`.
pub fn rmsnorm(x: &[f32], w: &[f32], k: usize, eps: f32) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for (xr, yr) in x.chunks(k).zip(y.chunks_mut(k)) {
        let ss: f64 = xr.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let inv = 1.0 / (ss / k as f64 + f64::from(eps)).sqrt();
        for ((yo, &xv), &wv) in yr.iter_mut().zip(xr).zip(w) {
            *yo = (f64::from(xv) * inv * f64::from(wv)) as f32;
        }
    }
    y
}
