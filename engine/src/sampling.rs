//! Sampling parameters and their validation. The sampling itself runs on the GPU
//! (`kestrel_kernels::sampling`); this module turns user input into checked kernel parameters.

use crate::error::{EngineError, Result};

/// How the next token is chosen. `temperature == 0` means greedy (argmax).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 = greedy; otherwise logits are divided by it (must be finite, > 0).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = no limit).
    pub top_k: u32,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (1.0 = no limit).
    pub top_p: f32,
    /// RNG seed: the same seed, prompt and parameters give the same tokens.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

impl Sampling {
    pub fn greedy() -> Self {
        Self::default()
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }

    /// Reject values that would make sampling meaningless or produce NaNs.
    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(EngineError::BadParameter(format!(
                "temperature must be finite and >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(EngineError::BadParameter(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(Sampling::default().validate().is_ok());
        for bad in [f32::NAN, -1.0, f32::INFINITY] {
            assert!(Sampling {
                temperature: bad,
                ..Default::default()
            }
            .validate()
            .is_err());
        }
        for bad in [0.0, 1.5, f32::NAN] {
            assert!(Sampling {
                top_p: bad,
                ..Default::default()
            }
            .validate()
            .is_err());
        }
        assert!(Sampling {
            temperature: 0.7,
            top_k: 1,
            ..Default::default()
        }
        .is_greedy());
    }
}

/// Pick path `path`'s token at `step` from one row of logits; a NaN/Inf row is an error, never a
/// silent token 0.
pub(crate) fn pick(row: &[f32], s: &Sampling, step: usize, path: usize) -> crate::Result<u32> {
    if row.iter().any(|x| !x.is_finite()) {
        return Err(EngineError::NonFiniteLogits { step });
    }
    Ok(sample_cpu(row, s, step as u64, path as u64))
}

/// splitmix64: a counter-based hash so sample `(seed, step, path)` is reproducible.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform f64 in [0, 1) for `(seed, step, path)`.
pub fn uniform(seed: u64, step: u64, path: u64) -> f64 {
    let h = mix(mix(mix(seed) ^ step) ^ path.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Pick a token from one row of finite logits. Greedy = argmax (first on ties). Otherwise:
/// softmax(logits / T) → keep the top-k → keep the smallest prefix (by descending probability,
/// ties by index) reaching top-p → draw with `uniform(seed, step, path)` by cumulative sum.
pub fn sample_cpu(logits: &[f32], s: &Sampling, step: u64, path: u64) -> u32 {
    let argmax = logits
        .iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0 as u32;
    if s.is_greedy() {
        return argmax;
    }
    let max = logits[argmax as usize];
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as u32, (((v - max) / s.temperature) as f64).exp()))
        .collect();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if s.top_k > 0 {
        probs.truncate(s.top_k as usize);
    }
    let total: f64 = probs.iter().map(|p| p.1).sum();
    if s.top_p < 1.0 {
        let mut acc = 0.0;
        let keep = probs
            .iter()
            .position(|p| {
                acc += p.1 / total;
                acc >= s.top_p as f64
            })
            .map_or(probs.len(), |i| i + 1);
        probs.truncate(keep);
    }
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let target = uniform(s.seed, step, path) * total;
    let mut acc = 0.0;
    for &(id, p) in &probs {
        acc += p;
        if acc > target {
            return id;
        }
    }
    probs.last().map_or(argmax, |p| p.0)
}
