//! HF checkpoint directory → `.kst` model.
//!
//! Input (a directory): `config.json` (Qwen2ForCausalLM or LlamaForCausalLM), weights as
//! `model.safetensors`, or `model.safetensors.index.json` + the shards it names (confined to the
//! directory, see `index.rs`), F32/F16/BF16; optional `tokenizer.json` (embedded verbatim once it loads) and
//! `tokenizer_config.json` (its `chat_template`, string or `[{name, template}]` list → `default`).
//!
//! Contract of [`convert_hf`]: everything is validated before the first byte is written — every
//! tensor the config implies exists with the implied shape (else `MissingTensor` /
//! `ShapeMismatch` naming it), no unexpected tensors (`rotary_emb.inv_freq` and a tied
//! `lm_head.weight` are ignored), float input dtypes. Tensors are then converted one at a time
//! from the memory-mapped shards (memory bounded by one encoded tensor), in
//! `layout::model_tensor_specs` order; `progress(done, total)` counts source bytes.

pub mod encode;
pub mod index;

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::layout::model_tensor_specs;
use crate::st::{float_size, StFile};
use crate::{ConvertOptions, FormatError, Kind, KstWriter, ModelConfig, Progress};
pub use index::{parse_shard_index, ShardIndex};

/// All tensors of an HF checkpoint, across shards.
pub struct HfSource {
    files: Vec<StFile>,
    index: HashMap<String, usize>,
}

impl HfSource {
    /// Open `model.safetensors`, or the shards of `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Self, FormatError> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let (files, weight_map) = if single.is_file() {
            (vec![StFile::open(&single)?], None)
        } else if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| FormatError::io(&index_path, e))?;
            let idx = parse_shard_index(&text)?;
            let paths = index::resolve_shards(dir, &idx)?;
            let files = paths
                .iter()
                .map(|p| StFile::open(p))
                .collect::<Result<Vec<_>, _>>()?;
            (files, Some(idx))
        } else {
            return Err(FormatError::UnknownInput(format!(
                "{}: no model.safetensors or model.safetensors.index.json",
                dir.display()
            )));
        };
        let mut index = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            for n in f.names() {
                if index.insert(n.clone(), i).is_some() {
                    return Err(FormatError::DuplicateTensor(n));
                }
            }
        }
        if let Some(idx) = weight_map {
            for (t, shard) in &idx.weight_map {
                let in_shard = index.get(t).map(|&i| files[i].path().ends_with(shard));
                if in_shard != Some(true) {
                    return Err(FormatError::SafeTensors {
                        path: index_path.clone(),
                        reason: format!(
                            "weight_map says `{t}` is in `{shard}`, which does not hold it"
                        ),
                    });
                }
            }
        }
        Ok(HfSource { files, index })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    pub fn file_of(&self, name: &str) -> Result<&StFile, FormatError> {
        self.index
            .get(name)
            .map(|&i| &self.files[i])
            .ok_or_else(|| FormatError::MissingTensor(name.to_string()))
    }
}

/// The chat template of a `tokenizer_config.json`, if it has one.
pub fn chat_template_from_tokenizer_config(json: &str) -> Result<Option<String>, FormatError> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| FormatError::BadConfig(format!("tokenizer_config.json: {e}")))?;
    Ok(match v.get("chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(list)) => {
            let named = |n: &str| {
                list.iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(n))
            };
            named("default")
                .or(list.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        _ => None,
    })
}

/// Convert the HF checkpoint directory `dir` into the `.kst` model `out`.
pub fn convert_hf(
    dir: &Path,
    out: &Path,
    opts: &ConvertOptions,
    progress: Progress,
) -> Result<(), FormatError> {
    opts.validate()?;
    let cfg_path = dir.join("config.json");
    let cfg_text = std::fs::read_to_string(&cfg_path).map_err(|e| FormatError::io(&cfg_path, e))?;
    let cfg = ModelConfig::from_hf_config_json(&cfg_text)?;
    let src = HfSource::open(dir)?;

    // Validate everything before writing.
    let specs = model_tensor_specs(&cfg);
    let mut total = 0u64;
    for s in &specs {
        let f = src.file_of(&s.name)?;
        let (dtype, shape) = f
            .info(&s.name)
            .ok_or_else(|| FormatError::MissingTensor(s.name.clone()))?;
        if shape != s.shape.as_slice() {
            return Err(FormatError::ShapeMismatch {
                name: s.name.clone(),
                found: shape.to_vec(),
                expected: s.shape.clone(),
                what: if s.name.contains(".self_attn.") {
                    format!(
                        "config.json: head_dim {} × {} heads / {} kv heads",
                        cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
                    )
                } else {
                    "config.json".into()
                },
            });
        }
        if float_size(dtype).is_none() {
            return Err(FormatError::UnknownDType(format!(
                "{dtype:?} (tensor `{}`; expected F32, F16 or BF16)",
                s.name
            )));
        }
        total += f.bytes(&s.name)?.len() as u64;
    }
    if cfg.tie_word_embeddings && src.names().any(|n| n == "lm_head.weight") {
        // A tied model computes logits with embed_tokens; a different lm_head would be dropped.
        let same = |n: &str| -> Result<Vec<f32>, FormatError> {
            let f = src.file_of(n)?;
            let v = f.to_f32(n);
            f.release(n);
            v
        };
        if same("lm_head.weight")? != same("model.embed_tokens.weight")? {
            return Err(FormatError::Unsupported(
                "tie_word_embeddings = true but lm_head.weight differs from \
                 model.embed_tokens.weight (set tie_word_embeddings = false to use it)"
                    .into(),
            ));
        }
    }
    let mut extra: Vec<&str> = src
        .names()
        .filter(|n| !specs.iter().any(|s| s.name == *n))
        .filter(|n| {
            !n.ends_with("rotary_emb.inv_freq")
                && (!cfg.tie_word_embeddings || *n != "lm_head.weight")
        })
        .collect();
    extra.sort_unstable();
    if let Some(n) = extra.first() {
        return Err(FormatError::Unsupported(format!(
            "unexpected tensor `{n}` for a {:?} model",
            cfg.arch
        )));
    }

    let mut w = KstWriter::create(out, Kind::Model)?;
    let tok = dir.join("tokenizer.json");
    if tok.is_file() {
        let text = std::fs::read_to_string(&tok).map_err(|e| FormatError::io(&tok, e))?;
        serde_json::from_str::<Value>(&text)
            .map_err(|e| FormatError::BadConfig(format!("tokenizer.json: {e}")))?;
        // Built once as the engine will build it, so a tokenizer that cannot load is refused
        // here rather than converting to a model that fails at load.
        text.parse::<tokenizers::Tokenizer>().map_err(|e| {
            FormatError::BadConfig(format!("tokenizer.json is not a usable tokenizer: {e}"))
        })?;
        w.set_tokenizer_json(text);
    }
    let tc = dir.join("tokenizer_config.json");
    if tc.is_file() {
        let text = std::fs::read_to_string(&tc).map_err(|e| FormatError::io(&tc, e))?;
        if let Some(t) = chat_template_from_tokenizer_config(&text)? {
            w.set_chat_template(t);
        }
    }
    w.set_meta("quantization", opts.to_meta());
    w.set_meta(
        "source",
        json!({"format": "hf-safetensors", "files": src.files.len()}),
    );
    w.set_config(cfg);

    let mut done = 0u64;
    progress(done, total);
    for s in &specs {
        let f = src.file_of(&s.name)?;
        let (dtype, _) = f
            .info(&s.name)
            .ok_or_else(|| FormatError::MissingTensor(s.name.clone()))?;
        let bytes = f.bytes(&s.name)?;
        let target = encode::target_dtype(s.role, opts);
        encode::write_tensor(&mut w, &s.name, dtype, bytes, &s.shape, target, opts)?;
        f.release(&s.name);
        done += bytes.len() as u64;
        progress(done, total);
    }
    w.finish()
}
