//! RoPE frequency scaling: which variant a model uses, parsed from HF configs (legacy
//! `rope_theta` / `rope_scaling` and transformers ≥ 4.56's `rope_parameters`) and GGUF metadata,
//! and the one inverse-frequency table + attention factor every rotating kernel uses.
//!
//! Contract of [`RopeScaling::tables`]: returns `(inv_freq [D/2] f32, attention_factor)` computed
//! exactly as transformers' `ROPE_INIT_FUNCTIONS` (transformers 5.x `modeling_rope_utils.py`):
//! every tensor op in f32 in the same order, Python scalars rounded to f32 where torch rounds
//! them, the scalar-only parts (YaRN correction range, dynamic base) in f64 as Python does.
//! RoPE rotates `q` and `k` with `cos(p·inv_freq)·a` and `sin(p·inv_freq)·a` (`a` = the attention
//! factor, 1 except for YaRN), so `q·k` scales by `a²`.
//!
//! `dynamic` (NTK) recomputes `inv_freq` in transformers only once the sequence grows past
//! `max_position_embeddings`; below that it equals `default`. The engine never runs a position ≥
//! `max_position_embeddings` (its context is capped there), so the default table is exact across
//! every context it accepts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::FormatError;

/// A RoPE variant and its own parameters (HF names). Serialized in the `.kst` config as
/// `rope_scaling: {"rope_type": ..., ...}`; absent means `Default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "rope_type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RopeScaling {
    /// `inv_freq[i] = 1 / θ^(2i/D)`.
    #[default]
    Default,
    /// Position interpolation: the default table divided by `factor`.
    Linear { factor: f64 },
    /// Dynamic NTK: equal to the default table for positions < `max_position_embeddings` (module
    /// docs); `factor` is kept for identity.
    Dynamic { factor: f64 },
    /// Llama 3.1/3.2 smooth interpolation between `low_freq_factor` and `high_freq_factor`.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
    /// YaRN (Qwen2.5 long context). `attention_factor` is resolved at parse time (from `mscale`
    /// / `mscale_all_dim` or `0.1·ln(factor) + 1` when the config does not give it).
    Yarn {
        factor: f64,
        original_max_position_embeddings: usize,
        attention_factor: f64,
        beta_fast: f64,
        beta_slow: f64,
        truncate: bool,
    },
    /// llama.cpp's per-pair divisors (GGUF `rope_freqs.weight`, written for Llama 3.1+):
    /// `inv_freq[i] = default[i] / freq_factors[i]`.
    FreqFactors { freq_factors: Vec<f32> },
}

impl RopeScaling {
    /// Whether this is the plain default variant (kept out of the `.kst` header then).
    pub fn is_default(&self) -> bool {
        *self == RopeScaling::Default
    }

    /// The HF `rope_type` name.
    pub fn name(&self) -> &'static str {
        match self {
            RopeScaling::Default => "default",
            RopeScaling::Linear { .. } => "linear",
            RopeScaling::Dynamic { .. } => "dynamic",
            RopeScaling::Llama3 { .. } => "llama3",
            RopeScaling::Yarn { .. } => "yarn",
            RopeScaling::FreqFactors { .. } => "freq_factors",
        }
    }

    /// Check parameters: factors finite and ≥ 1 (where HF requires it), positive lengths,
    /// `high_freq_factor > low_freq_factor`, one positive finite divisor per rotated pair.
    pub fn validate(&self, head_dim: usize) -> Result<(), FormatError> {
        let bad = |what: String| Err(FormatError::BadConfig(format!("rope_scaling: {what}")));
        let factor_ok = |f: f64| f.is_finite() && f >= 1.0;
        match self {
            RopeScaling::Default => {}
            RopeScaling::Linear { factor } | RopeScaling::Dynamic { factor } => {
                if !factor_ok(*factor) {
                    return bad(format!("factor {factor} must be finite and >= 1"));
                }
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                if !factor_ok(*factor) {
                    return bad(format!("factor {factor} must be finite and >= 1"));
                }
                if !(low_freq_factor.is_finite()
                    && high_freq_factor.is_finite()
                    && *low_freq_factor > 0.0
                    && high_freq_factor > low_freq_factor)
                {
                    return bad(format!(
                        "llama3 needs 0 < low_freq_factor ({low_freq_factor}) < high_freq_factor ({high_freq_factor})"
                    ));
                }
                if *original_max_position_embeddings == 0 {
                    return bad("original_max_position_embeddings must be > 0".into());
                }
            }
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings,
                attention_factor,
                beta_fast,
                beta_slow,
                ..
            } => {
                if !(factor.is_finite() && *factor > 0.0) {
                    return bad(format!("factor {factor} must be finite and > 0"));
                }
                if *original_max_position_embeddings == 0 {
                    return bad("original_max_position_embeddings must be > 0".into());
                }
                if !(attention_factor.is_finite() && *attention_factor > 0.0) {
                    return bad(format!("attention_factor {attention_factor} must be > 0"));
                }
                if !(beta_fast.is_finite() && beta_slow.is_finite() && *beta_slow > 0.0) {
                    return bad(format!(
                        "beta_fast {beta_fast} / beta_slow {beta_slow} must be finite and beta_slow > 0"
                    ));
                }
            }
            RopeScaling::FreqFactors { freq_factors } => {
                if freq_factors.len() != head_dim / 2 {
                    return bad(format!(
                        "{} freq_factors for head_dim {head_dim} (need {})",
                        freq_factors.len(),
                        head_dim / 2
                    ));
                }
                if let Some(f) = freq_factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                    return bad(format!("freq_factor {f} must be finite and > 0"));
                }
            }
        }
        Ok(())
    }

    /// `(inv_freq [head_dim/2], attention_factor)` for base `theta` (module docs).
    pub fn tables(&self, theta: f64, head_dim: usize) -> (Vec<f32>, f32) {
        let dim = head_dim;
        match self {
            RopeScaling::Default | RopeScaling::Dynamic { .. } => {
                // Dynamic's base at seq_len = max_position_embeddings is θ·1^(D/(D−2)) = θ.
                (default_inv_freq(theta, dim), 1.0)
            }
            RopeScaling::Linear { factor } => {
                let f = *factor as f32;
                (
                    default_inv_freq(theta, dim)
                        .into_iter()
                        .map(|x| x / f)
                        .collect(),
                    1.0,
                )
            }
            RopeScaling::FreqFactors { freq_factors } => (
                default_inv_freq(theta, dim)
                    .into_iter()
                    .zip(freq_factors)
                    .map(|(x, f)| x / f)
                    .collect(),
                1.0,
            ),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let old = *original_max_position_embeddings as f64;
                let low_wl = (old / low_freq_factor) as f32;
                let high_wl = (old / high_freq_factor) as f32;
                let (factor, low) = (*factor as f32, *low_freq_factor as f32);
                let span = (high_freq_factor - low_freq_factor) as f32;
                let two_pi = (2.0 * std::f64::consts::PI) as f32;
                let inv = default_inv_freq(theta, dim)
                    .into_iter()
                    .map(|x| {
                        // torch's `scalar / t` is `t.reciprocal() * scalar`.
                        let wavelen = (1.0 / x) * two_pi;
                        let llama = if wavelen > low_wl { x / factor } else { x };
                        let smooth = ((1.0 / wavelen) * old as f32 - low) / span;
                        let smoothed = (1.0 - smooth) * llama / factor + smooth * llama;
                        // transformers' `~(wavelen < high) * ~(wavelen > low)`, kept literally.
                        #[allow(clippy::neg_cmp_op_on_partial_ord)]
                        let medium = !(wavelen < high_wl) && !(wavelen > low_wl);
                        if medium {
                            smoothed
                        } else {
                            llama
                        }
                    })
                    .collect();
                (inv, 1.0)
            }
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings,
                attention_factor,
                beta_fast,
                beta_slow,
                truncate,
            } => {
                let orig = *original_max_position_embeddings as f64;
                let d = dim as f64;
                let correction = |rot: f64| {
                    d * (orig / (rot * 2.0 * std::f64::consts::PI)).ln() / (2.0 * theta.ln())
                };
                let (mut low, mut high) = (correction(*beta_fast), correction(*beta_slow));
                if *truncate {
                    low = low.floor();
                    high = high.ceil();
                }
                let low = low.max(0.0);
                let mut high = high.min(d - 1.0);
                if low == high {
                    high += 0.001;
                }
                let (low_f, span) = (low as f32, (high - low) as f32);
                let f = *factor as f32;
                let inv = pos_freqs(theta, dim)
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let extrapolation = 1.0 / p;
                        let interpolation = 1.0 / (f * p);
                        let ramp = ((i as f32 - low_f) / span).clamp(0.0, 1.0);
                        let extra_factor = 1.0 - ramp;
                        interpolation * (1.0 - extra_factor) + extrapolation * extra_factor
                    })
                    .collect();
                (inv, *attention_factor as f32)
            }
        }
    }

    /// Parse an HF RoPE parameter dict (`source`: `rope_parameters`, or legacy `rope_scaling`, with
    /// `rope_type` or legacy `type`). `max_position_embeddings` and the config's top-level
    /// `original_max_position_embeddings` fill `original_max_position_embeddings` as
    /// transformers' `standardize_rope_params` does. Unknown types and keys are refused by name;
    /// `partial_rotary_factor` ≠ 1 is refused.
    pub fn from_hf_dict(
        source: &str,
        d: &Map<String, Value>,
        max_position_embeddings: usize,
        top_level_original_max: Option<usize>,
    ) -> Result<Self, FormatError> {
        let unsupported = |what: String| FormatError::Unsupported(format!("{source}: {what}"));
        let bad = |what: String| FormatError::BadConfig(format!("{source}: {what}"));
        let get = |k: &str| d.get(k).filter(|v| !v.is_null());
        let rope_type = match (get("rope_type"), get("type")) {
            (Some(t), _) | (None, Some(t)) => t
                .as_str()
                .ok_or_else(|| bad(format!("rope_type {t} is not a string")))?,
            (None, None) => "default",
        };
        let num = |k: &str| -> Result<Option<f64>, FormatError> {
            get(k)
                .map(|v| {
                    v.as_f64()
                        .ok_or_else(|| bad(format!("`{k}` = {v} is not a number")))
                })
                .transpose()
        };
        let req = |k: &str| -> Result<f64, FormatError> {
            num(k)?.ok_or_else(|| bad(format!("rope_type `{rope_type}` needs `{k}`")))
        };
        if let Some(p) = num("partial_rotary_factor")? {
            if p != 1.0 {
                return Err(unsupported(format!(
                    "partial_rotary_factor = {p} (only full rotary dimensions are implemented)"
                )));
            }
        }
        let original_max = || -> Result<usize, FormatError> {
            if let Some(o) = top_level_original_max {
                return Ok(o);
            }
            match get("original_max_position_embeddings") {
                None => Ok(max_position_embeddings),
                Some(v) => v
                    .as_u64()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(|| bad(format!("original_max_position_embeddings = {v}"))),
            }
        };
        let (allowed, scaling): (&[&str], RopeScaling) = match rope_type {
            "default" => (&[], RopeScaling::Default),
            "linear" => (
                &["factor"],
                RopeScaling::Linear {
                    factor: req("factor")?,
                },
            ),
            "dynamic" => (
                &["factor"],
                RopeScaling::Dynamic {
                    factor: req("factor")?,
                },
            ),
            "llama3" => (
                &[
                    "factor",
                    "low_freq_factor",
                    "high_freq_factor",
                    "original_max_position_embeddings",
                ],
                RopeScaling::Llama3 {
                    factor: req("factor")?,
                    low_freq_factor: req("low_freq_factor")?,
                    high_freq_factor: req("high_freq_factor")?,
                    original_max_position_embeddings: original_max()?,
                },
            ),
            "yarn" => {
                let original = original_max()?;
                let factor = req("factor")?;
                let mscale = |scale: f64, m: f64| {
                    if scale <= 1.0 {
                        1.0
                    } else {
                        0.1 * m * scale.ln() + 1.0
                    }
                };
                let attention_factor = match num("attention_factor")? {
                    Some(a) => a,
                    None => match (num("mscale")?, num("mscale_all_dim")?) {
                        (Some(m), Some(ma)) if m != 0.0 && ma != 0.0 => {
                            mscale(factor, m) / mscale(factor, ma)
                        }
                        _ => mscale(factor, 1.0),
                    },
                };
                let truncate = match get("truncate") {
                    None => true,
                    Some(v) => v
                        .as_bool()
                        .ok_or_else(|| bad(format!("`truncate` = {v} is not a boolean")))?,
                };
                // Python's `x or default`: 0 and null both fall back.
                let or = |v: Option<f64>, default: f64| v.filter(|x| *x != 0.0).unwrap_or(default);
                (
                    &[
                        "factor",
                        "original_max_position_embeddings",
                        "attention_factor",
                        "beta_fast",
                        "beta_slow",
                        "mscale",
                        "mscale_all_dim",
                        "truncate",
                    ],
                    RopeScaling::Yarn {
                        factor,
                        original_max_position_embeddings: original,
                        attention_factor,
                        beta_fast: or(num("beta_fast")?, 32.0),
                        beta_slow: or(num("beta_slow")?, 1.0),
                        truncate,
                    },
                )
            }
            other => {
                return Err(unsupported(format!(
                    "rope_type `{other}` (implemented: default, linear, dynamic, llama3, yarn)"
                )))
            }
        };
        const ALWAYS: [&str; 4] = ["rope_type", "type", "rope_theta", "partial_rotary_factor"];
        if let Some(k) = d
            .keys()
            .find(|k| !ALWAYS.contains(&k.as_str()) && !allowed.contains(&k.as_str()))
        {
            return Err(unsupported(format!(
                "key `{k}` = {} is not used by rope_type `{rope_type}`",
                d[k.as_str()]
            )));
        }
        Ok(scaling)
    }
}

/// `base ** (arange(0, D, 2) / D)` in f32, as torch computes it.
fn pos_freqs(theta: f64, dim: usize) -> Vec<f32> {
    let base = theta as f32;
    (0..dim / 2)
        .map(|i| base.powf((2 * i) as f32 / dim as f32))
        .collect()
}

/// HF's default table: `1 / θ^(2i/D)` in f32.
pub fn default_inv_freq(theta: f64, dim: usize) -> Vec<f32> {
    pos_freqs(theta, dim).into_iter().map(|p| 1.0 / p).collect()
}
