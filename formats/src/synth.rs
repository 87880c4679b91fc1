//! Random-weight `.kst` models with real models' shapes (benchmarks, memory/throughput tests).
//!
//! Contract: [`preset`] gives the exact configs of Qwen2.5-0.5B/1.5B/7B and SmolLM2-135M.
//! [`synth_model`] streams every tensor of [`crate::layout::model_tensor_specs`] in the layout
//! `opts` asks for, generating packed nibbles/bytes and plausible f16 scales directly (no float
//! quantization, so a 7B file takes seconds): W4 `q` uniform random words, scales uniform in
//! [0.004, 0.012] (≈ weights of std 0.02), asym mins = −8·s; W8 `q` random bytes, scales in
//! [0.0004, 0.0012]; F16/F32 uniform in ±0.05; norms 1.0; biases uniform in ±0.1.
//! Deterministic for a given seed. The file embeds a minimal byte-level BPE `tokenizer.json`
//! (256 byte tokens, no merges, specials `<|endoftext|>` = 256, `<|im_start|>` = 257,
//! `<|im_end|>` = 258) and a ChatML template, so text commands run; `eos_token_ids` are set to
//! [258, 256] to match that tokenizer.

use half::f16;
use serde_json::{json, Map, Value};

use crate::layout::{model_tensor_specs, Role};
use crate::{
    Arch, ConvertOptions, DType, FormatError, Kind, KstWriter, ModelConfig, Progress, Scheme,
};

/// Names accepted by [`preset`].
pub const PRESETS: [&str; 4] = ["qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b", "smollm2-135m"];

/// The config of a named real model (see [`PRESETS`]).
pub fn preset(name: &str) -> Result<ModelConfig, FormatError> {
    let qwen = |v, h, i, l, heads, kv, d, tied| ModelConfig {
        arch: Arch::Qwen2,
        vocab_size: v,
        hidden_size: h,
        intermediate_size: i,
        num_hidden_layers: l,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        head_dim: d,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-6,
        rope_theta: 1_000_000.0,
        rope_scaling: Default::default(),
        tie_word_embeddings: tied,
        attention_bias: true,
        bos_token_id: None,
        eos_token_ids: vec![151645, 151643],
    };
    Ok(match name {
        "qwen2.5-0.5b" => qwen(151936, 896, 4864, 24, 14, 2, 64, true),
        "qwen2.5-1.5b" => qwen(151936, 1536, 8960, 28, 12, 2, 128, true),
        "qwen2.5-7b" => qwen(152064, 3584, 18944, 28, 28, 4, 128, false),
        "smollm2-135m" => ModelConfig {
            arch: Arch::Llama,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            attention_bias: false,
            max_position_embeddings: 8192,
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
            ..qwen(49152, 576, 1536, 30, 9, 3, 64, true)
        },
        other => {
            return Err(FormatError::Unsupported(format!(
                "synth preset `{other}` (one of {})",
                PRESETS.join(", ")
            )))
        }
    })
}

/// A minimal byte-level BPE tokenizer.json (see the module docs).
pub fn byte_level_tokenizer_json() -> String {
    let mut vocab = Map::new();
    for (i, c) in crate::gguf::byte_alphabet().iter().enumerate() {
        vocab.insert(c.to_string(), i.into());
    }
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vocab.insert(s.to_string(), (256 + i).into());
            json!({"id": 256 + i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": []}
    })
    .to_string()
}

/// The ChatML template embedded in synthetic models.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// xorshift64* — fast, deterministic, good enough for filler weights.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn words(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n * 4);
        for _ in 0..n.div_ceil(2) {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n * 4);
        v
    }
    fn f16s(&mut self, n: usize, lo: f32, hi: f32) -> Vec<u8> {
        (0..n)
            .flat_map(|_| f16::from_f32(lo + (hi - lo) * self.unit()).to_le_bytes())
            .collect()
    }
}

/// Write a random-weight model with config `cfg` to `out` (see the module docs).
pub fn synth_model(
    cfg: &ModelConfig,
    out: &std::path::Path,
    opts: &ConvertOptions,
    seed: u64,
    progress: Progress,
) -> Result<(), FormatError> {
    opts.validate()?;
    cfg.validate()?;
    let mut cfg = cfg.clone();
    cfg.eos_token_ids = vec![258, 256];
    cfg.bos_token_id = None;
    let specs = model_tensor_specs(&cfg);
    let mut w = KstWriter::create(out, Kind::Model)?;
    w.set_tokenizer_json(byte_level_tokenizer_json());
    w.set_chat_template(CHATML_TEMPLATE.to_string());
    w.set_meta("quantization", opts.to_meta());
    w.set_meta("source", json!({"format": "synth", "seed": seed}));
    w.set_config(cfg);
    let group = opts.group_size;
    let asym = opts.scheme == Scheme::Asym;
    let mut total = 0u64;
    for s in &specs {
        let target = crate::hf::encode::target_dtype(s.role, opts);
        let gs = target.is_quantized().then_some(group);
        let l = crate::kst::expected_lengths(&s.name, target, &s.shape, gs)?;
        let mins = if asym && target == DType::W4 {
            l.scales.unwrap_or(0)
        } else {
            0
        };
        total += l.data + l.scales.unwrap_or(0) + mins;
    }
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    progress(0, total);
    for s in &specs {
        let n: usize = s.shape.iter().product();
        let target = crate::hf::encode::target_dtype(s.role, opts);
        let g = opts.group_size;
        if target.is_quantized() && s.shape[1] % g != 0 {
            return Err(FormatError::bad_tensor(
                &s.name,
                format!("K = {} is not a multiple of group size {g}", s.shape[1]),
            ));
        }
        match (target, s.role) {
            (DType::W4, _) => {
                let scales = rng.f16s(n / g, 0.004, 0.012);
                let mins = (opts.scheme == Scheme::Asym).then(|| {
                    scales
                        .chunks_exact(2)
                        .flat_map(|c| {
                            f16::from_f32(-8.0 * f16::from_le_bytes([c[0], c[1]]).to_f32())
                                .to_le_bytes()
                        })
                        .collect::<Vec<u8>>()
                });
                w.add_raw(
                    &s.name,
                    DType::W4,
                    &s.shape,
                    Some(g),
                    &rng.words(n / 8),
                    Some(&scales),
                    mins.as_deref(),
                )?;
            }
            (DType::W8, _) => {
                let scales = rng.f16s(n / g, 0.0004, 0.0012);
                w.add_raw(
                    &s.name,
                    DType::W8,
                    &s.shape,
                    Some(g),
                    &rng.words(n / 4),
                    Some(&scales),
                    None,
                )?;
            }
            (DType::F32, Role::Norm) => w.add_f32(&s.name, &s.shape, &vec![1.0; n])?,
            (DType::F32, Role::Bias) => w.add_f32(
                &s.name,
                &s.shape,
                &(0..n).map(|_| 0.2 * rng.unit() - 0.1).collect::<Vec<_>>(),
            )?,
            (DType::F32, _) => w.add_f32(
                &s.name,
                &s.shape,
                &(0..n).map(|_| 0.1 * rng.unit() - 0.05).collect::<Vec<_>>(),
            )?,
            (DType::F16, _) => w.add_f16(
                &s.name,
                &s.shape,
                &(0..n)
                    .map(|_| f16::from_f32(0.1 * rng.unit() - 0.05))
                    .collect::<Vec<_>>(),
            )?,
            (DType::BF16, _) => return Err(FormatError::Unsupported("bf16 synth".into())),
        }
        progress(w.bytes_written().min(total), total);
    }
    w.finish()
}
