//! GGUF metadata → [`ModelConfig`].
//!
//! Keys (`{a}` = `general.architecture`, `qwen2` or `llama`): `{a}.block_count`,
//! `{a}.embedding_length`, `{a}.feed_forward_length`, `{a}.attention.head_count`,
//! `{a}.attention.head_count_kv` (default: head_count), `{a}.attention.key_length` (default:
//! embedding_length / head_count; must equal `value_length` when both exist),
//! `{a}.attention.layer_norm_rms_epsilon`, `{a}.rope.freq_base` (default 10000),
//! `{a}.context_length`, `tokenizer.ggml.bos_token_id` / `eos_token_id`.
//! `vocab_size` is the row count of `token_embd.weight` (a GGUF's `{a}.vocab_size` is optional
//! and must agree when present). Tied embeddings ⇔ no `output.weight`. Qwen2 ⇒ attention bias;
//! Llama ⇒ bias iff `blk.0.attn_q.bias` exists.
//!
//! RoPE (llama.cpp's keys): `{a}.rope.scaling.type` `none` (or absent) → default, `linear` with
//! `{a}.rope.scaling.factor` (or the older `{a}.rope.scale_linear`) → linear, `yarn` with
//! `factor` and `{a}.rope.scaling.original_context_length` → HF's yarn with its defaults
//! (beta_fast 32, beta_slow 1, attention factor 0.1·ln(factor) + 1, which is llama.cpp's too).
//! A `rope_freqs.weight` F32 `[D/2]` tensor (llama.cpp's Llama 3.1+ frequency divisors) → the
//! `freq_factors` variant. Refused by key name: any other scaling type, any other
//! `{a}.rope.scaling.*` key (`yarn_*`, `attn_factor`, ... would change the math),
//! `rope_freqs.weight` together with a scaling type, `{a}.rope.dimension_count` ≠ head_dim
//! (partial rotary), `{a}.attention.sliding_window`.

use super::blocks::float_to_f32;
use super::error::GgufError;
use super::parse::GgufFile;
use super::types::GgmlType;
use super::value::MetaLookup;
use crate::{Arch, ModelConfig, RopeScaling};

/// Build and validate the model config of a parsed GGUF file.
pub fn model_config(g: &GgufFile<'_>) -> Result<ModelConfig, GgufError> {
    let arch_name = g.req_str("general.architecture")?;
    let arch = match arch_name {
        "qwen2" => Arch::Qwen2,
        "llama" => Arch::Llama,
        other => return Err(GgufError::UnsupportedArch(other.to_owned())),
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let bad = |k: &str, why: String| GgufError::BadValue {
        key: k.to_owned(),
        why,
    };

    let hidden_size = g.req_usize(&key("embedding_length"))?;
    let num_attention_heads = g.req_usize(&key("attention.head_count"))?;
    let num_key_value_heads = match g.opt_u64(&key("attention.head_count_kv"))? {
        Some(n) => usize::try_from(n)
            .map_err(|_| bad(&key("attention.head_count_kv"), "too large".into()))?,
        None => num_attention_heads,
    };
    let head_dim = match g.opt_u64(&key("attention.key_length"))? {
        Some(d) => {
            usize::try_from(d).map_err(|_| bad(&key("attention.key_length"), "too large".into()))?
        }
        None if num_attention_heads > 0 && hidden_size % num_attention_heads == 0 => {
            hidden_size / num_attention_heads
        }
        None => {
            return Err(bad(
                &key("attention.head_count"),
                "does not divide embedding_length".into(),
            ))
        }
    };
    if let Some(v) = g.opt_u64(&key("attention.value_length"))? {
        if v != head_dim as u64 {
            return Err(bad(
                &key("attention.value_length"),
                format!("{v} != key_length {head_dim}"),
            ));
        }
    }

    if let Some(w) = g.opt_u64(&key("attention.sliding_window"))? {
        return Err(bad(
            &key("attention.sliding_window"),
            format!("{w}: sliding-window attention is not implemented"),
        ));
    }
    if let Some(n) = g.opt_u64(&key("rope.dimension_count"))? {
        if n != head_dim as u64 {
            return Err(bad(
                &key("rope.dimension_count"),
                format!(
                    "{n} != head_dim {head_dim}: partial rotary embeddings are not implemented"
                ),
            ));
        }
    }
    let rope_scaling = rope_scaling(g, arch_name, head_dim)?;
    let embd = g
        .tensor("token_embd.weight")
        .ok_or_else(|| GgufError::MissingTensor("token_embd.weight".into()))?;
    if embd.dims.len() != 2 {
        return Err(GgufError::ShapeMismatch {
            tensor: "token_embd.weight".into(),
            dims: embd.dims.clone(),
            expected: vec![hidden_size as u64, 0],
        });
    }
    let vocab_size = usize::try_from(embd.dims[1])
        .map_err(|_| bad("token_embd.weight", "too many rows".into()))?;
    if let Some(v) = g.opt_u64(&key("vocab_size"))? {
        if v != vocab_size as u64 {
            return Err(bad(
                &key("vocab_size"),
                format!("{v} != token_embd rows {vocab_size}"),
            ));
        }
    }
    let token_id = |k: &str| -> Result<Option<u32>, GgufError> {
        g.opt_u64(k)?
            .map(|v| u32::try_from(v).map_err(|_| bad(k, format!("{v} is not a token id"))))
            .transpose()
    };

    let cfg = ModelConfig {
        arch,
        vocab_size,
        hidden_size,
        intermediate_size: g.req_usize(&key("feed_forward_length"))?,
        num_hidden_layers: g.req_usize(&key("block_count"))?,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        max_position_embeddings: g.req_usize(&key("context_length"))?,
        rms_norm_eps: g.req_f64(&key("attention.layer_norm_rms_epsilon"))?,
        rope_theta: g.opt_f64(&key("rope.freq_base"))?.unwrap_or(10000.0),
        rope_scaling,
        tie_word_embeddings: g.tensor("output.weight").is_none(),
        attention_bias: arch == Arch::Qwen2 || g.tensor("blk.0.attn_q.bias").is_some(),
        bos_token_id: token_id("tokenizer.ggml.bos_token_id")?,
        eos_token_ids: token_id("tokenizer.ggml.eos_token_id")?
            .into_iter()
            .collect(),
    };
    cfg.validate().map_err(|e| GgufError::BadValue {
        key: "model config".into(),
        why: e.to_string(),
    })?;
    Ok(cfg)
}

/// The RoPE scaling of a GGUF file (module docs).
fn rope_scaling(
    g: &GgufFile<'_>,
    arch_name: &str,
    head_dim: usize,
) -> Result<RopeScaling, GgufError> {
    let key = |k: &str| format!("{arch_name}.{k}");
    let bad = |k: &str, why: String| GgufError::BadValue {
        key: k.to_owned(),
        why,
    };
    let prefix = key("rope.scaling.");
    let ty = g.opt_str(&key("rope.scaling.type"))?.unwrap_or("none");
    let allowed: &[&str] = match ty {
        "none" => &["type", "finetuned"],
        "linear" => &["type", "factor", "finetuned"],
        "yarn" => &["type", "factor", "original_context_length", "finetuned"],
        other => {
            return Err(bad(
                &key("rope.scaling.type"),
                format!("rope scaling {other:?} is not implemented (none, linear, yarn)"),
            ))
        }
    };
    if let Some((k, _)) = g.metadata.iter().find(|(k, _)| {
        k.strip_prefix(prefix.as_str())
            .is_some_and(|rest| !allowed.contains(&rest))
    }) {
        return Err(bad(
            k,
            format!("not implemented with rope scaling type {ty:?}"),
        ));
    }
    let factor_key = key("rope.scaling.factor");
    let scaling = match ty {
        "linear" => RopeScaling::Linear {
            factor: g
                .opt_f64(&factor_key)?
                .ok_or_else(|| bad(&factor_key, "missing for linear scaling".into()))?,
        },
        "yarn" => {
            let factor = g
                .opt_f64(&factor_key)?
                .ok_or_else(|| bad(&factor_key, "missing for yarn".into()))?;
            let orig_key = key("rope.scaling.original_context_length");
            let original = g
                .opt_u64(&orig_key)?
                .ok_or_else(|| bad(&orig_key, "missing for yarn".into()))?;
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings: usize::try_from(original)
                    .map_err(|_| bad(&orig_key, "too large".into()))?,
                attention_factor: if factor <= 1.0 {
                    1.0
                } else {
                    0.1 * factor.ln() + 1.0
                },
                beta_fast: 32.0,
                beta_slow: 1.0,
                truncate: true,
            }
        }
        _ => match g.opt_f64(&key("rope.scale_linear"))? {
            Some(f) if f != 1.0 => RopeScaling::Linear { factor: f },
            _ => RopeScaling::Default,
        },
    };
    if let Some(t) = g.tensor("rope_freqs.weight") {
        if scaling != RopeScaling::Default {
            return Err(bad(
                "rope_freqs.weight",
                format!("together with rope scaling {:?}", scaling.name()),
            ));
        }
        if t.ty != GgmlType::F32 || t.dims != [head_dim as u64 / 2] {
            return Err(GgufError::ShapeMismatch {
                tensor: "rope_freqs.weight".into(),
                dims: t.dims.clone(),
                expected: vec![head_dim as u64 / 2],
            });
        }
        let freq_factors = float_to_f32(t.ty, g.data(t), head_dim / 2)?;
        return Ok(RopeScaling::FreqFactors { freq_factors });
    }
    Ok(scaling)
}
