//! The tensor set of a model, derived from its `ModelConfig` (HF names, HF `[M, K]` shapes).
//!
//! Contract: [`model_tensor_specs`] lists, in `.kst` write order, every tensor a model with this
//! config has (ARCHITECTURE.md "Tensor names"): `model.embed_tokens.weight [V, H]`; per layer i
//! `input_layernorm [H]`, `q_proj [Hq·D, H]` (+ bias when `attention_bias`), `k_proj`/`v_proj`
//! `[Hkv·D, H]` (+ bias), `o_proj [H, Hq·D]`, `post_attention_layernorm [H]`, `gate_proj`/`up_proj`
//! `[I, H]`, `down_proj [H, I]`; `model.norm.weight [H]`; `lm_head.weight [V, H]` unless tied.
//! [`check_model_file`] verifies that a `.kst` model holds exactly these names and shapes.

use crate::{FormatError, KstFile, ModelConfig};

/// How a tensor is stored at conversion time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `embed_tokens` / `lm_head`: W8 when linear layers are quantized.
    Embedding,
    /// A projection: W4/W8/F16/F32 per the options.
    Linear,
    /// RMSNorm weights: always f32.
    Norm,
    /// q/k/v biases: always f32.
    Bias,
}

/// One expected tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub role: Role,
}

/// The LoRA-targetable projections: (HF module, parent, out features M, in features K).
pub fn projections(cfg: &ModelConfig) -> [(&'static str, &'static str, usize, usize); 7] {
    let (h, q, kv, i) = (
        cfg.hidden_size,
        cfg.q_dim(),
        cfg.kv_dim(),
        cfg.intermediate_size,
    );
    [
        ("q_proj", "self_attn", q, h),
        ("k_proj", "self_attn", kv, h),
        ("v_proj", "self_attn", kv, h),
        ("o_proj", "self_attn", h, q),
        ("gate_proj", "mlp", i, h),
        ("up_proj", "mlp", i, h),
        ("down_proj", "mlp", h, i),
    ]
}

/// Every tensor of a model with config `cfg`, in write order.
pub fn model_tensor_specs(cfg: &ModelConfig) -> Vec<TensorSpec> {
    let h = cfg.hidden_size;
    let spec = |name: String, shape: Vec<usize>, role| TensorSpec { name, shape, role };
    let mut v = vec![spec(
        "model.embed_tokens.weight".into(),
        vec![cfg.vocab_size, h],
        Role::Embedding,
    )];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        v.push(spec(
            format!("{p}.input_layernorm.weight"),
            vec![h],
            Role::Norm,
        ));
        for (proj, parent, m, k) in projections(cfg) {
            if proj == "gate_proj" {
                v.push(spec(
                    format!("{p}.post_attention_layernorm.weight"),
                    vec![h],
                    Role::Norm,
                ));
            }
            v.push(spec(
                format!("{p}.{parent}.{proj}.weight"),
                vec![m, k],
                Role::Linear,
            ));
            if cfg.attention_bias && matches!(proj, "q_proj" | "k_proj" | "v_proj") {
                v.push(spec(
                    format!("{p}.{parent}.{proj}.bias"),
                    vec![m],
                    Role::Bias,
                ));
            }
        }
    }
    v.push(spec("model.norm.weight".into(), vec![h], Role::Norm));
    if !cfg.tie_word_embeddings {
        v.push(spec(
            "lm_head.weight".into(),
            vec![cfg.vocab_size, h],
            Role::Embedding,
        ));
    }
    v
}

/// Check that a `.kst` model file holds exactly the tensors its config implies.
pub fn check_model_file(f: &KstFile) -> Result<(), FormatError> {
    let cfg = f.config()?;
    let specs = model_tensor_specs(cfg);
    for s in &specs {
        let t = f.tensor(&s.name)?;
        if t.shape != s.shape.as_slice() {
            return Err(FormatError::ShapeMismatch {
                name: s.name.clone(),
                found: t.shape.to_vec(),
                expected: s.shape.clone(),
                what: "the model config".into(),
            });
        }
    }
    if let Some(extra) = f
        .tensor_names()
        .find(|n| !specs.iter().any(|s| s.name == *n))
    {
        return Err(FormatError::Unsupported(format!(
            "unexpected tensor `{extra}` in model file"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kst::tests::tiny_config;

    #[test]
    fn qwen2_tiny_spec_counts_and_shapes() {
        let cfg = tiny_config();
        let s = model_tensor_specs(&cfg);
        // embed + norm + per layer (2 norms + 7 weights + 3 biases); tied → no lm_head.
        assert_eq!(s.len(), 2 + cfg.num_hidden_layers * 12);
        let q = s
            .iter()
            .find(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
            .unwrap();
        assert_eq!(q.shape, vec![32, 32]);
        let k = s
            .iter()
            .find(|t| t.name == "model.layers.0.self_attn.k_proj.bias")
            .unwrap();
        assert_eq!((k.shape.clone(), k.role), (vec![16], Role::Bias));
        let mut untied = cfg.clone();
        untied.tie_word_embeddings = false;
        assert_eq!(
            model_tensor_specs(&untied).last().unwrap().name,
            "lm_head.weight"
        );
    }
}
