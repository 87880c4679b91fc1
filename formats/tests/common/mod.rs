//! Test helpers: unique temp dirs and tiny HF checkpoint directories written with `safetensors`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "kestrel-formats-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Encode f32 values as `dtype` bytes.
pub fn encode(dtype: Dtype, v: &[f32]) -> Vec<u8> {
    match dtype {
        Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::F16 => v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect(),
        Dtype::BF16 => v
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect(),
        Dtype::I64 => v.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect(),
        other => panic!("test helper: no encoding for safetensors dtype {other:?}"),
    }
}

/// Write a safetensors file from (name, dtype, shape, f32 values).
pub fn write_st(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, d, _, v)| encode(*d, v)).collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, d, s, _), b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Tiny HF config (hidden 64, inter 128, 2 layers, 4 heads, 2 kv heads, head_dim 16, vocab 96).
pub fn hf_config(arch: &str, tied: bool) -> serde_json::Value {
    let (a, mt) = if arch == "qwen2" {
        ("Qwen2ForCausalLM", "qwen2")
    } else {
        ("LlamaForCausalLM", "llama")
    };
    json!({
        "architectures": [a], "model_type": mt, "vocab_size": 96, "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "tie_word_embeddings": tied, "hidden_act": "silu",
        "bos_token_id": 1, "eos_token_id": [2, 3], "torch_dtype": "bfloat16"
    })
}

/// The tensors of the tiny model (HF names and shapes), with values.
pub fn hf_tensors(
    cfg: &serde_json::Value,
    dtype: Dtype,
) -> Vec<(String, Dtype, Vec<usize>, Vec<f32>)> {
    let c = kestrel_formats::ModelConfig::from_hf_config_json(&cfg.to_string()).unwrap();
    kestrel_formats::layout::model_tensor_specs(&c)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.shape.iter().product();
            (s.name, dtype, s.shape, values(i as u64, n))
        })
        .collect()
}

/// Write a complete tiny HF dir; `shards` > 1 splits weights round-robin with an index.
pub fn write_hf_dir(
    dir: &Path,
    cfg: &serde_json::Value,
    tensors: &[(String, Dtype, Vec<usize>, Vec<f32>)],
    shards: usize,
) {
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        r#"{"version":"1.0","model":{"type":"BPE","vocab":{},"merges":[]}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"chat_template":"{% for m in messages %}{{ m.content }}{% endfor %}"}"#,
    )
    .unwrap();
    if shards <= 1 {
        write_st(&dir.join("model.safetensors"), tensors);
        return;
    }
    let mut map = serde_json::Map::new();
    for k in 0..shards {
        let name = format!("model-{:05}-of-{:05}.safetensors", k + 1, shards);
        let part: Vec<_> = tensors
            .iter()
            .enumerate()
            .filter(|(i, _)| i % shards == k)
            .map(|(_, t)| t.clone())
            .collect();
        for t in &part {
            map.insert(t.0.clone(), name.clone().into());
        }
        write_st(&dir.join(&name), &part);
    }
    let idx = json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), idx.to_string()).unwrap();
}
