//! Sampling parameters, their validation, and the CPU sampler.
//!
//! Decode steps choose their tokens on the device, in the step's own submit
//! (`kestrel_kernels::sampling`: `argmax_f32` for greedy, `sample_f32` otherwise), and read back
//! only the chosen ids. The CPU sampler here is the same decision written plainly (the kernels'
//! references): it picks a request's first token from the prompt's logits, and it is what the
//! device is tested against. Both draw from one counter-based RNG keyed by `(seed, step, path)`,
//! so a seed gives the same tokens on either.

use kestrel_kernels::sampling::sample_f32::reference;
use kestrel_kernels::sampling::{SampleConfig, SampleParams};

use crate::error::{EngineError, Result};

/// How the next token is chosen. `temperature == 0` means greedy (argmax).
#[derive(Debug, Clone, Copy, PartialEq)]
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

    /// The kernels' settings for decode step `step` (the RNG counter).
    pub(crate) fn kernel_config(&self, step: usize) -> SampleConfig {
        SampleConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            // Steps are bounded by the context (< 2^32); the counter wraps rather than fails.
            step: step as u32,
        }
    }
}

/// Pick path `path`'s token at `step` from one row of logits on the CPU, with its logprob; a
/// NaN/Inf row is an error, never a silent token 0.
pub(crate) fn pick(row: &[f32], s: &Sampling, step: usize, path: usize) -> Result<(u32, f32)> {
    if !all_finite(row) {
        return Err(EngineError::NonFiniteLogits { step });
    }
    sample_cpu(row, s, step, path)
}

/// Lanes of the vectorisable scans below (the compiler turns each lane array into registers).
const LANES: usize = 16;

/// Whether every value is finite, scanned in lanes without an early exit so it vectorises
/// (a per-element `any` does not, and costs ~10× more on a vocabulary-sized row).
fn all_finite(row: &[f32]) -> bool {
    let mut bad = [false; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            bad[i] |= !c[i].is_finite();
        }
    }
    !(bad.iter().any(|&b| b) || tail.iter().any(|x| !x.is_finite()))
}

/// The first index of the largest value, NaN ignored (0 when there is none): a lane-wise max,
/// then the first position holding it. Equals a left-to-right scan keeping the first strict
/// maximum, for every input.
fn argmax(row: &[f32]) -> u32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            lanes[i] = lanes[i].max(c[i]);
        }
    }
    let max = lanes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    row.iter().position(|&x| x == max).unwrap_or(0) as u32
}

/// Pick a token from one row of finite logits, exactly as the device does. Greedy = the lowest
/// index of the largest value (`argmax_f32`). Otherwise `sample_f32`'s contract: integer weights
/// `≈ 2^30·e^((x − max)/T)`, the top-k, then the shortest prefix reaching top-p, then a draw by
/// the RNG of `(seed, step, path)` (the path is the RNG stream). Returns the token and its
/// log-probability under the distribution it was drawn from (0 when greedy).
pub fn sample_cpu(logits: &[f32], s: &Sampling, step: usize, path: usize) -> Result<(u32, f32)> {
    if s.is_greedy() {
        return Ok((argmax(logits), 0.0));
    }
    let v = u32::try_from(logits.len()).unwrap_or(u32::MAX);
    let params = SampleParams::new(&s.kernel_config(step), 1, v)
        .map_err(|e| EngineError::BadParameter(e.to_string()))?;
    let (token, _, logprob) = reference::sample_row(logits, &params, path as u32);
    Ok((token, logprob))
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

    /// The scan every earlier version used: the first strict maximum, NaN never replacing one.
    fn argmax_reference(row: &[f32]) -> u32 {
        row.iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 {
                    (i, v)
                } else {
                    best
                }
            })
            .0 as u32
    }

    #[test]
    fn argmax_and_finiteness_match_the_plain_scans() {
        let mut rows: Vec<Vec<f32>> = vec![
            vec![],
            vec![f32::NAN; 40],
            vec![f32::NEG_INFINITY; 33],
            vec![-0.0, 0.0, 0.0],
            vec![0.0; 100],
        ];
        // Ties inside and across lanes, maxima in the tail, NaN and infinities at every offset.
        let mut z = 7u64;
        for len in [1usize, 15, 16, 17, 31, 32, 33, 100, 1000] {
            for _ in 0..20 {
                let row: Vec<f32> = (0..len)
                    .map(|_| {
                        z = z
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        match z >> 58 {
                            0 => f32::NAN,
                            1 => f32::INFINITY,
                            2 => f32::NEG_INFINITY,
                            k => (k % 7) as f32 - 3.0,
                        }
                    })
                    .collect();
                rows.push(row);
            }
        }
        for row in &rows {
            assert_eq!(argmax(row), argmax_reference(row), "{row:?}");
            assert_eq!(
                all_finite(row),
                row.iter().all(|x| x.is_finite()),
                "{row:?}"
            );
        }
    }
}
