//! Config fidelity: both HF config forms (legacy `rope_theta`/`rope_scaling`, transformers-5
//! `rope_parameters`), real checkpoints' published configs parse to the expected `ModelConfig`
//! with transformers' inverse frequencies (`tests/fixtures/rope`, gen_rope_fixtures.py), and
//! every key that changes the math but is not computed is refused by name.

mod common;

use std::path::{Path, PathBuf};

use kestrel_formats::{Arch, FormatError, ModelConfig, RopeScaling};
use serde_json::{json, Value};

fn rope_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rope")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Largest distance in units in the last place (f32) between two tables.
fn max_ulps(a: &[f32], b: &[f32]) -> u32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.to_bits() as i64 - y.to_bits() as i64).unsigned_abs() as u32)
        .max()
        .unwrap_or(0)
}

/// One f32 ulp: transformers' `base ** exponent` (torch's vectorised powf) and Rust's `powf`
/// may round the last bit differently; every other step is the same f32 op sequence.
const INV_FREQ_ULPS: u32 = 1;

fn check_tables(name: &str, c: &ModelConfig, entry: &Value) {
    let (inv, a) = c.rope_tables();
    let want = floats(&entry["inv_freq"]);
    let ulps = max_ulps(&inv, &want);
    eprintln!("{name}: inv_freq max {ulps} ulp, attention factor {a}");
    assert!(
        ulps <= INV_FREQ_ULPS,
        "{name}: inv_freq differs by {ulps} ulp"
    );
    let want_a = entry["attention_scaling"].as_f64().unwrap() as f32;
    assert_eq!(a, want_a, "{name}: attention factor");
}

fn qwen(
    hidden: usize,
    inter: usize,
    layers: usize,
    heads: usize,
    kv: usize,
    tied: bool,
    vocab: usize,
) -> ModelConfig {
    ModelConfig {
        arch: Arch::Qwen2,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: inter,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        head_dim: hidden / heads,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-6,
        rope_theta: 1e6,
        rope_scaling: RopeScaling::Default,
        tie_word_embeddings: tied,
        attention_bias: true,
        bos_token_id: Some(151643),
        eos_token_ids: vec![151645],
    }
}

fn smollm(hidden: usize, inter: usize, layers: usize, heads: usize, kv: usize) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        vocab_size: 49152,
        hidden_size: hidden,
        intermediate_size: inter,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        head_dim: 64,
        max_position_embeddings: 8192,
        rms_norm_eps: 1e-5,
        rope_theta: 100000.0,
        rope_scaling: RopeScaling::Default,
        tie_word_embeddings: true,
        attention_bias: false,
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
    }
}

#[test]
fn real_checkpoint_configs_parse_with_transformers_inv_freq() {
    let real = read_json(&rope_fixtures().join("real_configs.json"));
    let qwen7 = qwen(3584, 18944, 28, 28, 4, false, 152064);
    let expected: Vec<(&str, ModelConfig)> = vec![
        (
            "Qwen2.5-0.5B-Instruct",
            qwen(896, 4864, 24, 14, 2, true, 151936),
        ),
        (
            "Qwen2.5-1.5B-Instruct",
            qwen(1536, 8960, 28, 12, 2, true, 151936),
        ),
        ("Qwen2.5-7B-Instruct", qwen7.clone()),
        (
            "Qwen2.5-7B-Instruct-YaRN",
            ModelConfig {
                rope_scaling: RopeScaling::Yarn {
                    factor: 4.0,
                    original_max_position_embeddings: 32768,
                    attention_factor: 0.1 * 4f64.ln() + 1.0,
                    beta_fast: 32.0,
                    beta_slow: 1.0,
                    truncate: true,
                },
                ..qwen7
            },
        ),
        ("SmolLM2-135M-Instruct", smollm(576, 1536, 30, 9, 3)),
        ("SmolLM2-360M-Instruct", smollm(960, 2560, 32, 15, 5)),
        (
            "SmolLM2-1.7B-Instruct",
            ModelConfig {
                rope_theta: 130000.0,
                ..smollm(2048, 8192, 24, 32, 32)
            },
        ),
        (
            "Llama-3.2-1B",
            ModelConfig {
                vocab_size: 128256,
                num_hidden_layers: 16,
                num_key_value_heads: 8,
                max_position_embeddings: 131072,
                rope_theta: 500000.0,
                rope_scaling: RopeScaling::Llama3 {
                    factor: 32.0,
                    low_freq_factor: 1.0,
                    high_freq_factor: 4.0,
                    original_max_position_embeddings: 8192,
                },
                bos_token_id: Some(128000),
                eos_token_ids: vec![128001],
                ..smollm(2048, 8192, 16, 32, 8)
            },
        ),
    ];
    assert_eq!(real.as_object().unwrap().len(), expected.len());
    for (name, want) in expected {
        let entry = &real[name];
        let c = ModelConfig::from_hf_config_json(&entry["config"].to_string())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c, want, "{name}");
        check_tables(name, &c, entry);
    }
}

/// The transformers-5 config of a fixture case rewritten into the legacy form: `rope_theta` at
/// the top level, the rest under `rope_scaling` with the legacy `type` key.
fn legacy(cfg: &Value) -> Value {
    let mut c = cfg.as_object().unwrap().clone();
    let mut rp = c
        .remove("rope_parameters")
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    c.insert("rope_theta".into(), rp.remove("rope_theta").unwrap());
    let ty = rp.remove("rope_type").unwrap();
    if ty != "default" {
        rp.insert("type".into(), ty);
        c.insert("rope_scaling".into(), Value::Object(rp));
    }
    Value::Object(c)
}

#[test]
fn fixture_cases_parse_in_both_forms_with_transformers_inv_freq() {
    let dir = rope_fixtures();
    let r = read_json(&dir.join("ref.json"));
    let cases = r["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 5);
    for (name, entry) in cases {
        let cfg = read_json(&dir.join(entry["config"].as_str().unwrap()));
        assert!(cfg.get("rope_theta").is_none() && cfg.get("rope_parameters").is_some());
        let c = ModelConfig::from_hf_config_json(&cfg.to_string()).unwrap();
        assert_eq!(c.rope_scaling.name(), name.as_str());
        check_tables(name, &c, entry);
        let old = ModelConfig::from_hf_config_json(&legacy(&cfg).to_string()).unwrap();
        assert_eq!(old, c, "{name}: legacy form");
        // Round trip through the .kst header's JSON.
        let back: ModelConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c, "{name}: header round trip");
    }
}

#[test]
fn theta_comes_from_rope_parameters() {
    let mut cfg = common::hf_config("qwen2", true);
    let o = cfg.as_object_mut().unwrap();
    o.remove("rope_theta");
    o.insert(
        "rope_parameters".into(),
        json!({"rope_theta": 1000000.0, "rope_type": "default"}),
    );
    let c = ModelConfig::from_hf_config_json(&cfg.to_string()).unwrap();
    assert_eq!((c.rope_theta, c.rope_scaling), (1e6, RopeScaling::Default));
    // Per layer type (full_attention only).
    let o = cfg.as_object_mut().unwrap();
    o.insert(
        "rope_parameters".into(),
        json!({"full_attention": {"rope_theta": 5e5, "rope_type": "linear", "factor": 2.0}}),
    );
    let c = ModelConfig::from_hf_config_json(&cfg.to_string()).unwrap();
    assert_eq!(
        (c.rope_theta, c.rope_scaling),
        (5e5, RopeScaling::Linear { factor: 2.0 })
    );
    // Neither form: transformers' default theta.
    cfg.as_object_mut().unwrap().remove("rope_parameters");
    let c = ModelConfig::from_hf_config_json(&cfg.to_string()).unwrap();
    assert_eq!(c.rope_theta, 10000.0);
}

#[test]
fn header_without_rope_scaling_is_the_default_type() {
    let c =
        ModelConfig::from_hf_config_json(&common::hf_config("llama", true).to_string()).unwrap();
    let v = serde_json::to_value(&c).unwrap();
    assert!(
        v.get("rope_scaling").is_none(),
        "a default-RoPE header is unchanged"
    );
    let back: ModelConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back.rope_scaling, RopeScaling::Default);
}

fn refused(mutate: impl FnOnce(&mut serde_json::Map<String, Value>), arch: &str) -> String {
    let mut cfg = common::hf_config(arch, true);
    mutate(cfg.as_object_mut().unwrap());
    match ModelConfig::from_hf_config_json(&cfg.to_string()) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e @ (FormatError::Unsupported(_) | FormatError::BadConfig(_))) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn every_key_that_is_not_computed_is_refused_by_name() {
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "qwen2",
            "use_sliding_window",
            json!(true),
            "use_sliding_window",
        ),
        (
            "qwen2",
            "layer_types",
            json!(["full_attention", "sliding_attention"]),
            "sliding_attention",
        ),
        (
            "llama",
            "partial_rotary_factor",
            json!(0.5),
            "partial_rotary_factor",
        ),
        ("llama", "attention_bias", json!(true), "attention_bias"),
        ("llama", "mlp_bias", json!(true), "mlp_bias"),
        ("qwen2", "mlp_bias", json!(true), "mlp_bias"),
        ("llama", "hidden_act", json!("gelu"), "hidden_act"),
        (
            "qwen2",
            "quantization_config",
            json!({"quant_method": "gptq", "bits": 4}),
            "quantization_config",
        ),
        (
            "qwen2",
            "quantization_config",
            json!({"quant_method": "awq"}),
            "awq",
        ),
        (
            "llama",
            "quantization_config",
            json!({"quant_method": "bitsandbytes", "load_in_4bit": true}),
            "bitsandbytes",
        ),
        (
            "qwen2",
            "rope_scaling",
            json!({"type": "longrope", "short_factor": [1.0], "long_factor": [1.0]}),
            "longrope",
        ),
        (
            "qwen2",
            "rope_parameters",
            json!({"rope_type": "su", "factor": 2.0}),
            "`su`",
        ),
        (
            "qwen2",
            "rope_parameters",
            json!({"rope_type": "default", "partial_rotary_factor": 0.5}),
            "partial_rotary_factor",
        ),
        (
            "qwen2",
            "rope_parameters",
            json!({"rope_type": "linear", "factor": 2.0, "mrope_section": [2, 2, 4]}),
            "mrope_section",
        ),
        (
            "qwen2",
            "rope_parameters",
            json!({"sliding_attention": {"rope_type": "default"}, "full_attention": {"rope_type": "default"}}),
            "sliding_attention",
        ),
        ("qwen2", "rope_scaling", json!({"type": "linear"}), "factor"),
        (
            "llama",
            "rope_scaling",
            json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0}),
            "high_freq_factor",
        ),
    ];
    for (arch, key, value, named) in cases {
        let msg = refused(
            |o| {
                o.insert(key.into(), value.clone());
            },
            arch,
        );
        assert!(
            msg.contains(named),
            "{key} = {value}: `{msg}` does not name `{named}`"
        );
        eprintln!("{key} = {value}: {msg}");
    }
}

#[test]
fn real_checkpoint_configs_hold_only_known_keys_and_others_are_named() {
    let real = read_json(&rope_fixtures().join("real_configs.json"));
    let real = real.as_object().expect("an object of configs");
    assert!(real.len() >= 8);
    for (name, case) in real {
        let text = case["config"].to_string();
        assert_eq!(
            kestrel_formats::config::unrecognised_hf_config_keys(&text),
            Vec::<String>::new(),
            "{name}"
        );
    }
    let odd = r#"{"model_type": "qwen2", "zeta_scale": 2, "alpha_mix": true, "vocab_size": 3}"#;
    assert_eq!(
        kestrel_formats::config::unrecognised_hf_config_keys(odd),
        ["alpha_mix", "zeta_scale"]
    );
}
