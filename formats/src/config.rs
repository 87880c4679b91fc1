//! `ModelConfig`: the transformer hyper-parameters a `.kst` model carries.
//!
//! Field names mirror HF `config.json` (`hidden_size`, `num_key_value_heads`, ...). Two fields are
//! Kestrel's own: `arch` (which block flavour) and `eos_token_ids` (HF's `eos_token_id` may be an
//! integer or a list; it is always a list here).
//!
//! Contract of [`ModelConfig::validate`]: every dimension is non-zero; `hidden_size ==
//! num_attention_heads * head_dim` is NOT required (Qwen/Llama allow otherwise) but
//! `num_attention_heads % num_key_value_heads == 0`, `head_dim` is even (RoPE rotates pairs),
//! `rms_norm_eps > 0` and `rope_theta > 0` and both finite. [`ModelConfig::from_hf_config_json`]
//! accepts `Qwen2ForCausalLM` / `model_type: qwen2` (QKV bias on) and `LlamaForCausalLM` /
//! `model_type: llama` (no biases), reads RoPE in both config forms (legacy `rope_theta` /
//! `rope_scaling`, transformers ≥ 4.56 `rope_parameters`; [`crate::rope`]) and refuses, naming
//! the key, every setting the engine does not compute: sliding-window attention
//! (`use_sliding_window`, `layer_types`), `partial_rotary_factor` ≠ 1, `rope_interleaved`,
//! `hidden_act` ≠ silu, `quantization_config`, Llama `attention_bias` / `mlp_bias`, Qwen2
//! `mlp_bias`, unknown RoPE types and parameters. `formats/FORMAT.md` has the key table.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rope::RopeScaling;
use crate::FormatError;

/// Which decoder-block flavour a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Qwen2 / Qwen2.5: Llama block + q/k/v biases.
    Qwen2,
    /// Llama family (SmolLM2, ...): no biases unless `attention_bias`.
    Llama,
}

/// Transformer hyper-parameters (HF field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// RoPE variant ([`RopeScaling`]); absent from a header (all files written before it
    /// existed, and every default-RoPE model) means `Default`.
    #[serde(default, skip_serializing_if = "RopeScaling::is_default")]
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections carry a bias (always true for Qwen2).
    pub attention_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

/// Every top-level `config.json` key the HF importer knows: honoured, refused when set to what
/// the engine does not compute, or known not to change the math (formats/FORMAT.md's table).
pub const KNOWN_HF_CONFIG_KEYS: &[&str] = &[
    "architectures",
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
    "num_key_value_heads",
    "head_dim",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "original_max_position_embeddings",
    "partial_rotary_factor",
    "rope_interleaved",
    "use_sliding_window",
    "layer_types",
    "sliding_window",
    "max_window_layers",
    "hidden_act",
    "attention_bias",
    "mlp_bias",
    "tie_word_embeddings",
    "quantization_config",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "torch_dtype",
    "dtype",
    "use_cache",
    "initializer_range",
    "attention_dropout",
    "pretraining_tp",
    "is_llama_config",
    "transformers.js_config",
    "transformers_version",
    "tokenizer_class",
    "_name_or_path",
];

/// The top-level keys of a `config.json` that [`KNOWN_HF_CONFIG_KEYS`] does not list, sorted.
/// The importer assumes they do not change the math; `kestrel convert` names them, so a key that
/// does is never passed over in silence.
pub fn unrecognised_hf_config_keys(json: &str) -> Vec<String> {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = obj
        .keys()
        .filter(|k| !KNOWN_HF_CONFIG_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    keys.sort();
    keys
}

impl ModelConfig {
    /// Check internal consistency (see the module docs for the exact rules).
    pub fn validate(&self) -> Result<(), FormatError> {
        let dims = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (name, v) in dims {
            if v == 0 {
                return Err(FormatError::BadConfig(format!("{name} must be > 0")));
            }
            // Keeps every derived product (e.g. vocab × hidden) far from usize overflow.
            if v > (1 << 24) {
                return Err(FormatError::BadConfig(format!(
                    "{name} = {v} is implausibly large"
                )));
            }
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(FormatError::BadConfig(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(FormatError::BadConfig(format!(
                "head_dim {} must be even",
                self.head_dim
            )));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(FormatError::BadConfig(
                "rms_norm_eps must be finite and > 0".into(),
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(FormatError::BadConfig(
                "rope_theta must be finite and > 0".into(),
            ));
        }
        self.rope_scaling.validate(self.head_dim)?;
        if self.arch == Arch::Qwen2 && !self.attention_bias {
            return Err(FormatError::BadConfig(
                "qwen2 requires attention_bias = true".into(),
            ));
        }
        for &id in self.eos_token_ids.iter().chain(self.bos_token_id.iter()) {
            if id as usize >= self.vocab_size {
                return Err(FormatError::BadConfig(format!(
                    "special token id {id} >= vocab_size {}",
                    self.vocab_size
                )));
            }
        }
        Ok(())
    }

    /// The RoPE inverse-frequency table `[head_dim/2]` and attention factor (cos and sin are
    /// scaled by it), computed as transformers does ([`RopeScaling::tables`]).
    pub fn rope_tables(&self) -> (Vec<f32>, f32) {
        self.rope_scaling.tables(self.rope_theta, self.head_dim)
    }

    /// q_proj output size: `num_attention_heads * head_dim`.
    pub fn q_dim(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// k_proj / v_proj output size: `num_key_value_heads * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// Parse an HF `config.json` (Qwen2 or Llama) and validate it.
    pub fn from_hf_config_json(json: &str) -> Result<Self, FormatError> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| FormatError::BadConfig(format!("config.json is not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| FormatError::BadConfig("config.json is not an object".into()))?;
        let model_type = obj.get("model_type").and_then(Value::as_str).unwrap_or("");
        let archs: Vec<&str> = obj
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let arch = if model_type == "qwen2" || archs.contains(&"Qwen2ForCausalLM") {
            Arch::Qwen2
        } else if model_type == "llama" || archs.contains(&"LlamaForCausalLM") {
            Arch::Llama
        } else {
            return Err(FormatError::Unsupported(format!(
                "model_type `{model_type}` / architectures {archs:?} (supported: qwen2, llama)"
            )));
        };
        let get_usize = |k: &str| -> Result<usize, FormatError> {
            obj.get(k)
                .and_then(Value::as_u64)
                .and_then(|x| usize::try_from(x).ok())
                .ok_or_else(|| FormatError::BadConfig(format!("missing or non-integer `{k}`")))
        };
        let opt_f64 = |k: &str, default: f64| -> Result<f64, FormatError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(x) => x
                    .as_f64()
                    .ok_or_else(|| FormatError::BadConfig(format!("`{k}` is not a number"))),
            }
        };
        let opt_bool = |k: &str, default: bool| -> Result<bool, FormatError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(x) => x
                    .as_bool()
                    .ok_or_else(|| FormatError::BadConfig(format!("`{k}` is not a boolean"))),
            }
        };
        if opt_bool("use_sliding_window", false)? {
            return Err(FormatError::Unsupported(
                "use_sliding_window = true (sliding-window attention is not implemented)".into(),
            ));
        }
        if let Some(types) = obj.get("layer_types").filter(|v| !v.is_null()) {
            let list = types
                .as_array()
                .ok_or_else(|| FormatError::BadConfig("`layer_types` is not a list".into()))?;
            if let Some(t) = list.iter().find(|t| t.as_str() != Some("full_attention")) {
                return Err(FormatError::Unsupported(format!(
                    "layer_types contains {t} (only full_attention is implemented)"
                )));
            }
        }
        if opt_bool("rope_interleaved", false)? {
            return Err(FormatError::Unsupported(
                "rope_interleaved = true (the engine rotates HF's half-split pairs)".into(),
            ));
        }
        if let Some(p) = obj.get("partial_rotary_factor").filter(|v| !v.is_null()) {
            if p.as_f64() != Some(1.0) {
                return Err(FormatError::Unsupported(format!(
                    "partial_rotary_factor = {p} (only full rotary dimensions are implemented)"
                )));
            }
        }
        match obj.get("hidden_act") {
            None | Some(Value::Null) => {}
            Some(Value::String(a)) if a == "silu" => {}
            Some(act) => {
                return Err(FormatError::Unsupported(format!(
                    "hidden_act = {act} (only silu is implemented)"
                )))
            }
        }
        if let Some(q) = obj.get("quantization_config").filter(|v| !v.is_null()) {
            let method = q.get("quant_method").unwrap_or(&Value::Null);
            return Err(FormatError::Unsupported(format!(
                "quantization_config (quant_method = {method}): pre-quantized HF checkpoints are not \
                 imported; convert the unquantized checkpoint or a GGUF"
            )));
        }
        for k in ["attention_bias", "mlp_bias"] {
            if arch == Arch::Llama && opt_bool(k, false)? {
                return Err(FormatError::Unsupported(format!(
                    "{k} = true for llama (o_proj and MLP biases are not implemented)"
                )));
            }
        }
        if arch == Arch::Qwen2 && opt_bool("mlp_bias", false)? {
            return Err(FormatError::Unsupported(
                "mlp_bias = true (MLP biases are not implemented)".into(),
            ));
        }
        let hidden_size = get_usize("hidden_size")?;
        let num_attention_heads = get_usize("num_attention_heads")?;
        let num_key_value_heads = match obj.get("num_key_value_heads") {
            None | Some(Value::Null) => num_attention_heads,
            Some(_) => get_usize("num_key_value_heads")?,
        };
        let head_dim = match obj.get("head_dim") {
            None | Some(Value::Null) => {
                if num_attention_heads == 0 || hidden_size % num_attention_heads != 0 {
                    return Err(FormatError::BadConfig(
                        "hidden_size is not a multiple of num_attention_heads and no head_dim"
                            .into(),
                    ));
                }
                hidden_size / num_attention_heads
            }
            Some(_) => get_usize("head_dim")?,
        };
        let max_position_embeddings = get_usize("max_position_embeddings")?;
        let (rope_theta, rope_scaling) = hf_rope(obj, max_position_embeddings)?;
        let token_ids = |k: &str| -> Result<Vec<u32>, FormatError> {
            let bad = || FormatError::BadConfig(format!("`{k}` is not a token id or list of ids"));
            let one = |x: &Value| {
                x.as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(bad)
            };
            match obj.get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a.iter().map(one).collect(),
                Some(x) => Ok(vec![one(x)?]),
            }
        };
        let cfg = ModelConfig {
            arch,
            vocab_size: get_usize("vocab_size")?,
            hidden_size,
            intermediate_size: get_usize("intermediate_size")?,
            num_hidden_layers: get_usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            max_position_embeddings,
            rms_norm_eps: opt_f64("rms_norm_eps", 1e-6)?,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: opt_bool("tie_word_embeddings", false)?,
            attention_bias: arch == Arch::Qwen2,
            bos_token_id: token_ids("bos_token_id")?.first().copied(),
            eos_token_ids: token_ids("eos_token_id")?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The HF `config.json` object for this config (used by `kestrel export`).
    pub fn to_hf_config_json(&self) -> Value {
        let (arch_name, model_type) = match self.arch {
            Arch::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
            Arch::Llama => ("LlamaForCausalLM", "llama"),
        };
        let eos: Value = match self.eos_token_ids.as_slice() {
            [] => Value::Null,
            [one] => (*one).into(),
            many => many.to_vec().into(),
        };
        let mut v = serde_json::json!({
            "architectures": [arch_name],
            "model_type": model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
            "torch_dtype": "float32",
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
        });
        if self.arch == Arch::Llama {
            v["attention_bias"] = self.attention_bias.into();
        }
        if !self.rope_scaling.is_default() {
            // The header's own form is HF's legacy `rope_scaling` dict (tagged by `rope_type`);
            // `freq_factors` (from GGUF) has no transformers type and is refused by it.
            v["rope_scaling"] = serde_json::to_value(&self.rope_scaling).unwrap_or(Value::Null);
        }
        v
    }
}

/// RoPE of an HF config: `(theta, scaling)`. Mirrors transformers' `convert_rope_params_to_dict`:
/// the parameter dict is the legacy `rope_scaling` when set, else `rope_parameters` (flat, or
/// one dict per layer type: every declared type must carry the same settings, and only
/// `full_attention` layers exist here); theta is the dict's `rope_theta`, else the top-level
/// `rope_theta`, else 10000.
fn hf_rope(
    obj: &serde_json::Map<String, Value>,
    max_position_embeddings: usize,
) -> Result<(f64, RopeScaling), FormatError> {
    let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let as_dict = |k: &str, v: &Value| {
        v.as_object()
            .cloned()
            .ok_or_else(|| FormatError::BadConfig(format!("`{k}` is not an object")))
    };
    let empty = |v: &Value| v.as_object().is_some_and(|o| o.is_empty());
    let (source, mut dict) = match (get("rope_scaling"), get("rope_parameters")) {
        (Some(v), _) if !empty(v) => ("rope_scaling", as_dict("rope_scaling", v)?),
        (_, Some(v)) => ("rope_parameters", as_dict("rope_parameters", v)?),
        _ => ("rope_parameters", serde_json::Map::new()),
    };
    const LAYER_TYPES: [&str; 2] = ["full_attention", "sliding_attention"];
    let nested: Vec<&String> = dict
        .keys()
        .filter(|k| LAYER_TYPES.contains(&k.as_str()))
        .collect();
    if !nested.is_empty() {
        if let Some(k) = nested.iter().find(|k| k.as_str() != "full_attention") {
            return Err(FormatError::Unsupported(format!(
                "rope_parameters for `{k}` layers (sliding-window attention is not implemented)"
            )));
        }
        if dict.len() != 1 {
            return Err(FormatError::BadConfig(
                "rope_parameters mixes per-layer-type dicts and flat keys".into(),
            ));
        }
        dict = as_dict("rope_parameters.full_attention", &dict["full_attention"])?;
    }
    let num = |v: &Value, k: &str| {
        v.as_f64()
            .ok_or_else(|| FormatError::BadConfig(format!("`{k}` = {v} is not a number")))
    };
    let theta = match (
        dict.get("rope_theta").filter(|v| !v.is_null()),
        get("rope_theta"),
    ) {
        (Some(v), _) => num(v, "rope_parameters.rope_theta")?,
        (None, Some(v)) => num(v, "rope_theta")?,
        (None, None) => 10000.0,
    };
    let top_original = match get("original_max_position_embeddings") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .ok_or_else(|| {
                    FormatError::BadConfig(format!("original_max_position_embeddings = {v}"))
                })?,
        ),
    };
    let scaling = RopeScaling::from_hf_dict(source, &dict, max_position_embeddings, top_original)?;
    Ok((theta, scaling))
}
