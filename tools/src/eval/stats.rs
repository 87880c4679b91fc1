//! Small statistics for the eval table: Wilson intervals and percentiles.

use serde::Serialize;

/// The 95% Wilson score interval of `k` successes in `n` trials (`(0, 1)` when `n = 0`).
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, 1.959_963_984_540_054);
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let d = 1.0 + z2 / n;
    (
        ((centre - spread) / d).max(0.0),
        ((centre + spread) / d).min(1.0),
    )
}

/// The `q` quantile (0..=1) of `values`, linearly interpolated between order statistics (numpy's
/// default); 0 for no values.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Mean, median and 90th percentile of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let mean = if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        };
        Summary {
            mean,
            p50: quantile(values, 0.5),
            p90: quantile(values, 0.9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // Reference values from statsmodels' proportion_confint(method="wilson").
        let (lo, hi) = wilson(8, 10);
        assert!(
            (lo - 0.490_162).abs() < 1e-6 && (hi - 0.943_318).abs() < 1e-6,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 5);
        assert!(lo == 0.0 && (hi - 0.434_482).abs() < 1e-6, "{hi}");
        let (lo, hi) = wilson(5, 5);
        assert!((lo - 0.565_518).abs() < 1e-6 && hi == 1.0, "{lo}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert!((quantile(&v, 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
        assert_eq!(
            Summary::of(&v),
            Summary {
                mean: 2.5,
                p50: 2.5,
                p90: quantile(&v, 0.9)
            }
        );
        assert_eq!(Summary::of(&[]).mean, 0.0);
    }
}
