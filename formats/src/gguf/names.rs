//! GGUF tensor names → HF names, with each tensor's role and expected shape.
//!
//! | GGUF                         | HF                                                  |
//! |------------------------------|-----------------------------------------------------|
//! | `token_embd.weight`          | `model.embed_tokens.weight`                         |
//! | `output_norm.weight`         | `model.norm.weight`                                 |
//! | `output.weight`              | `lm_head.weight` (absent ⇒ tied embeddings)         |
//! | `blk.N.attn_norm.weight`     | `model.layers.N.input_layernorm.weight`             |
//! | `blk.N.ffn_norm.weight`      | `model.layers.N.post_attention_layernorm.weight`    |
//! | `blk.N.attn_{q,k,v}.{weight,bias}` | `model.layers.N.self_attn.{q,k,v}_proj.{weight,bias}` |
//! | `blk.N.attn_output.weight`   | `model.layers.N.self_attn.o_proj.weight`            |
//! | `blk.N.ffn_{gate,up,down}.weight` | `model.layers.N.mlp.{gate,up,down}_proj.weight` |
//!
//! Any other name (e.g. `rope_freqs.weight`, `blk.N.attn_q_norm.weight`) is
//! `GgufError::UnknownTensorName`: such a model needs features the engine does not have.

use super::error::GgufError;
use crate::ModelConfig;

/// What a tensor is, which decides how it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Embedding,
    LmHead,
    Norm,
    /// A linear weight `[M, K]`; `rope` is set for q/k (whose rows llama.cpp permutes).
    Linear {
        rope: Option<RopeProj>,
    },
    /// A projection bias `[M]`.
    Bias {
        rope: Option<RopeProj>,
    },
}

/// q or k: the projections whose rows llama.cpp permutes for Llama-arch files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeProj {
    Q,
    K,
}

/// A GGUF tensor's HF identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    pub hf_name: String,
    pub role: Role,
    /// HF shape (`[M, K]` or `[M]`) expected from the config.
    pub shape: Vec<usize>,
}

/// Map a GGUF tensor name to its HF name, role and expected HF shape.
pub fn map_name(gguf: &str, c: &ModelConfig) -> Result<Mapped, GgufError> {
    let unknown = || GgufError::UnknownTensorName(gguf.to_owned());
    let (h, v, f) = (c.hidden_size, c.vocab_size, c.intermediate_size);
    let top = |hf: &str, role, shape: Vec<usize>| {
        Ok(Mapped {
            hf_name: hf.to_owned(),
            role,
            shape,
        })
    };
    match gguf {
        "token_embd.weight" => {
            return top("model.embed_tokens.weight", Role::Embedding, vec![v, h])
        }
        "output_norm.weight" => return top("model.norm.weight", Role::Norm, vec![h]),
        "output.weight" => return top("lm_head.weight", Role::LmHead, vec![v, h]),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.").ok_or_else(unknown)?;
    let (layer, leaf) = rest.split_once('.').ok_or_else(unknown)?;
    // Canonical decimal only ("01" or "+1" would alias another layer's name).
    let n: usize = layer
        .parse()
        .ok()
        .filter(|n: &usize| n.to_string() == layer)
        .ok_or_else(unknown)?;
    if n >= c.num_hidden_layers {
        return Err(unknown());
    }
    let (q, kv) = (c.q_dim(), c.kv_dim());
    let lin = |rope| Role::Linear { rope };
    let bias = |rope| Role::Bias { rope };
    let (hf_leaf, role, shape) = match leaf {
        "attn_norm.weight" => ("input_layernorm.weight", Role::Norm, vec![h]),
        "ffn_norm.weight" => ("post_attention_layernorm.weight", Role::Norm, vec![h]),
        "attn_q.weight" => (
            "self_attn.q_proj.weight",
            lin(Some(RopeProj::Q)),
            vec![q, h],
        ),
        "attn_k.weight" => (
            "self_attn.k_proj.weight",
            lin(Some(RopeProj::K)),
            vec![kv, h],
        ),
        "attn_v.weight" => ("self_attn.v_proj.weight", lin(None), vec![kv, h]),
        "attn_q.bias" => ("self_attn.q_proj.bias", bias(Some(RopeProj::Q)), vec![q]),
        "attn_k.bias" => ("self_attn.k_proj.bias", bias(Some(RopeProj::K)), vec![kv]),
        "attn_v.bias" => ("self_attn.v_proj.bias", bias(None), vec![kv]),
        "attn_output.weight" => ("self_attn.o_proj.weight", lin(None), vec![h, q]),
        "ffn_gate.weight" => ("mlp.gate_proj.weight", lin(None), vec![f, h]),
        "ffn_up.weight" => ("mlp.up_proj.weight", lin(None), vec![f, h]),
        "ffn_down.weight" => ("mlp.down_proj.weight", lin(None), vec![h, f]),
        _ => return Err(unknown()),
    };
    Ok(Mapped {
        hf_name: format!("model.layers.{n}.{hf_leaf}"),
        role,
        shape,
    })
}

/// Every HF tensor a model with this config must have (to detect missing GGUF tensors).
pub fn required_hf_names(c: &ModelConfig) -> Vec<String> {
    let mut names = vec![
        "model.embed_tokens.weight".to_owned(),
        "model.norm.weight".to_owned(),
    ];
    if !c.tie_word_embeddings {
        names.push("lm_head.weight".to_owned());
    }
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        for leaf in [
            "input_layernorm.weight",
            "post_attention_layernorm.weight",
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
            "self_attn.o_proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ] {
            names.push(format!("{p}.{leaf}"));
        }
        if c.attention_bias {
            for b in ["q", "k", "v"] {
                names.push(format!("{p}.self_attn.{b}_proj.bias"));
            }
        }
    }
    names
}
