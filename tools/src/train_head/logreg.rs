//! L2-regularised, class-weighted logistic regression, fitted by IRLS (Newton's method with
//! step halving).
//!
//! Why our own: the problems are small (hundreds to thousands of rows, `hidden + 1` ≤ ~2k
//! parameters), Newton converges in ~10 steps to machine precision on this strictly convex
//! objective, and the whole solver is ~100 lines with no dependency; the Rust crates that fit
//! logistic regressions (linfa-logistic and its ndarray / argmin stack) would add dozens of
//! crates for it.
//!
//! Features are standardised (mean 0, sd 1; constant columns left centred) for conditioning, and
//! the fit is folded back so the result applies to raw features: `p = σ(w·x + b)`. Objective on
//! the standardised `z`: `(1/n) Σ cᵢ ℓ(yᵢ, v·zᵢ + c) + (λ/2)‖v‖²` with balanced class weights
//! `cᵢ = n / (2 n_{yᵢ})` (the bias is not penalised).

use anyhow::bail;

/// A fitted model over raw features.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub w: Vec<f64>,
    pub b: f64,
}

impl Model {
    pub fn logit(&self, x: &[f32]) -> f64 {
        self.w
            .iter()
            .zip(x)
            .map(|(w, x)| w * f64::from(*x))
            .sum::<f64>()
            + self.b
    }

    pub fn prob(&self, x: &[f32]) -> f64 {
        sigmoid(self.logit(x))
    }
}

pub fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + e^t)`, stable.
fn softplus(t: f64) -> f64 {
    t.max(0.0) + (-t.abs()).exp().ln_1p()
}

/// Fits `y ~ x` (rows of equal length) with L2 strength `l2` ≥ 0.
pub fn fit(x: &[Vec<f32>], y: &[bool], l2: f64) -> anyhow::Result<Model> {
    let n = x.len();
    let pos = y.iter().filter(|&&v| v).count();
    if n != y.len() || pos == 0 || pos == n {
        bail!("training needs examples of both classes ({pos} positive of {n})");
    }
    if !(l2 >= 0.0 && l2.is_finite()) {
        bail!("--l2 must be a finite number ≥ 0");
    }
    let d = x[0].len();
    if x.iter().any(|r| r.len() != d) {
        bail!("feature rows differ in length");
    }
    let mean: Vec<f64> = (0..d)
        .map(|j| x.iter().map(|r| f64::from(r[j])).sum::<f64>() / n as f64)
        .collect();
    let sd: Vec<f64> = (0..d)
        .map(|j| {
            let v = x
                .iter()
                .map(|r| (f64::from(r[j]) - mean[j]).powi(2))
                .sum::<f64>()
                / n as f64;
            if v > 1e-24 {
                v.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    // Standardised rows with a trailing 1 for the bias.
    let z: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            let mut z: Vec<f64> = (0..d)
                .map(|j| (f64::from(r[j]) - mean[j]) / sd[j])
                .collect();
            z.push(1.0);
            z
        })
        .collect();
    let cw = [
        n as f64 / (2.0 * (n - pos) as f64),
        n as f64 / (2.0 * pos as f64),
    ];
    let c = |i: usize| cw[usize::from(y[i])];
    let objective = |v: &[f64]| -> f64 {
        let loss: f64 = (0..n)
            .map(|i| {
                let t = dot(&z[i], v);
                c(i) * if y[i] { softplus(-t) } else { softplus(t) }
            })
            .sum();
        loss / n as f64 + 0.5 * l2 * v[..d].iter().map(|a| a * a).sum::<f64>()
    };
    let k = d + 1;
    let mut v = vec![0.0; k];
    let mut f = objective(&v);
    for _ in 0..100 {
        let mut g = vec![0.0; k];
        let mut h = vec![0.0; k * k];
        for i in 0..n {
            let p = sigmoid(dot(&z[i], &v));
            let r = c(i) * (p - f64::from(u8::from(y[i]))) / n as f64;
            let s = c(i) * p * (1.0 - p) / n as f64;
            for a in 0..k {
                g[a] += r * z[i][a];
                let sa = s * z[i][a];
                for b in 0..=a {
                    h[a * k + b] += sa * z[i][b];
                }
            }
        }
        for a in 0..d {
            g[a] += l2 * v[a];
            h[a * k + a] += l2;
        }
        // A floor on the diagonal keeps the Cholesky factor defined when l2 = 0 and the
        // data are separable (the weights then grow until the gradient test passes).
        for a in 0..k {
            h[a * k + a] += 1e-12;
        }
        if g.iter().map(|x| x.abs()).fold(0.0, f64::max) < 1e-10 {
            break;
        }
        let step = cholesky_solve(&mut h, &g, k)?;
        let mut t = 1.0;
        loop {
            let cand: Vec<f64> = v.iter().zip(&step).map(|(v, s)| v - t * s).collect();
            let fc = objective(&cand);
            if fc <= f || t < 1e-10 {
                v = cand;
                f = fc;
                break;
            }
            t *= 0.5;
        }
    }
    let w: Vec<f64> = (0..d).map(|j| v[j] / sd[j]).collect();
    let b = v[d] - (0..d).map(|j| w[j] * mean[j]).sum::<f64>();
    Ok(Model { w, b })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Solves `H s = g` for the symmetric positive definite `H` (lower triangle filled, `k × k`,
/// overwritten by its Cholesky factor).
fn cholesky_solve(h: &mut [f64], g: &[f64], k: usize) -> anyhow::Result<Vec<f64>> {
    for j in 0..k {
        let mut s = h[j * k + j] - (0..j).map(|p| h[j * k + p].powi(2)).sum::<f64>();
        if s <= 0.0 || !s.is_finite() {
            bail!("the Hessian is not positive definite (raise --l2)");
        }
        s = s.sqrt();
        h[j * k + j] = s;
        for i in j + 1..k {
            let dotp: f64 = (0..j).map(|p| h[i * k + p] * h[j * k + p]).sum();
            h[i * k + j] = (h[i * k + j] - dotp) / s;
        }
    }
    let mut y = vec![0.0; k];
    for i in 0..k {
        y[i] = (g[i] - (0..i).map(|p| h[i * k + p] * y[p]).sum::<f64>()) / h[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        x[i] = (y[i] - (i + 1..k).map(|p| h[p * k + i] * x[p]).sum::<f64>()) / h[i * k + i];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (splitmix64), uniform in [0, 1).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.next().max(1e-300), self.next());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    #[test]
    fn recovers_a_planted_direction() {
        let (d, n) = (8, 4000);
        let mut rng = Rng(1);
        let planted: Vec<f64> = (0..d)
            .map(|j| if j < 3 { [2.0, -1.5, 1.0][j] } else { 0.0 })
            .collect();
        let b0 = 0.5;
        // Features with offsets and scales, so the standardisation is folded back for real.
        let x: Vec<Vec<f32>> = (0..n)
            .map(|_| {
                (0..d)
                    .map(|j| (rng.normal() + j as f64 * 0.3) as f32)
                    .collect()
            })
            .collect();
        let y: Vec<bool> = x
            .iter()
            .map(|r| {
                let t: f64 = planted
                    .iter()
                    .zip(r)
                    .map(|(w, x)| w * f64::from(*x))
                    .sum::<f64>()
                    + b0;
                rng.next() < sigmoid(t)
            })
            .collect();
        let m = fit(&x, &y, 1e-4).unwrap();
        let cos = dot(&m.w, &planted) / (dot(&m.w, &m.w).sqrt() * dot(&planted, &planted).sqrt());
        assert!(cos > 0.99, "cosine {cos}: {:?}", m.w);
        let norm = dot(&m.w, &m.w).sqrt() / dot(&planted, &planted).sqrt();
        // Balanced class weights shift the bias; the direction and scale stay.
        assert!((0.85..1.15).contains(&norm), "scale {norm}");
    }

    #[test]
    fn the_optimum_has_zero_gradient_and_l2_shrinks() {
        let mut rng = Rng(2);
        let x: Vec<Vec<f32>> = (0..200)
            .map(|_| vec![rng.normal() as f32, rng.normal() as f32])
            .collect();
        let y: Vec<bool> = x
            .iter()
            .map(|r| r[0] + 0.3 * r[1] > 0.2 * rng.normal() as f32)
            .collect();
        let loose = fit(&x, &y, 1e-3).unwrap();
        let tight = fit(&x, &y, 10.0).unwrap();
        assert!(dot(&tight.w, &tight.w) < 0.1 * dot(&loose.w, &loose.w));
        // The class-weighted score residuals sum to zero at the optimum (the bias's gradient).
        let pos = y.iter().filter(|&&v| v).count() as f64;
        let cw = [200.0 / (2.0 * (200.0 - pos)), 200.0 / (2.0 * pos)];
        let g: f64 = x
            .iter()
            .zip(&y)
            .map(|(r, &t)| cw[usize::from(t)] * (loose.prob(r) - f64::from(u8::from(t))))
            .sum();
        assert!(g.abs() < 1e-6, "{g}");
        assert!(fit(&x, &[true; 200], 1.0).is_err());
    }
}
