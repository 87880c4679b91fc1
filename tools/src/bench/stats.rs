//! Summary statistics over repeated measurements: median and spread.
//!
//! Contract: `Summary::of(samples)` needs at least one finite sample (else `None`); `median` is
//! the middle value (mean of the two middle values for an even count), `min`/`max` the extremes,
//! `spread` the relative range `(max − min) / median` (0 for one sample). Ratios between runs
//! should be taken of medians, which hold on a noisy machine where means do not.

use serde::Serialize;

/// Median and spread of `n` samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// `(max − min) / median`.
    pub spread: f64,
    pub n: usize,
}

impl Summary {
    /// Summary of the finite samples; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let (min, max) = (v[0], v[n - 1]);
        let spread = if median != 0.0 {
            (max - min) / median.abs()
        } else {
            0.0
        };
        Some(Summary {
            median,
            min,
            max,
            spread,
            n,
        })
    }

    /// `median unit ±half-range%` for tables, with `digits` decimals.
    pub fn show(&self, digits: usize, unit: &str) -> String {
        format!(
            "{:.*} {unit} ±{:.0}%",
            digits,
            self.median,
            self.spread * 50.0
        )
    }
}

/// The order of `n` interleaved measurements in round `round`: forward in even rounds, reversed
/// in odd ones, so a linear drift during a round favours no variant over the rounds.
pub fn round_order(n: usize, round: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_direction() {
        assert_eq!(round_order(3, 0), [0, 1, 2]);
        assert_eq!(round_order(3, 1), [2, 1, 0]);
        assert_eq!(round_order(1, 5), [0]);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 5.0, 3));
        assert!((s.spread - 4.0 / 3.0).abs() < 1e-12);
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
    }

    #[test]
    fn non_finite_samples_are_dropped_and_empty_is_none() {
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN, f64::INFINITY]).is_none());
        let s = Summary::of(&[2.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.spread, s.n), (2.0, 0.0, 1));
    }
}
