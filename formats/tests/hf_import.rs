//! HF checkpoint dir → .kst: conversion correctness and every rejection as a typed error.

mod common;

use common::*;
use kestrel_formats::layout::check_model_file;
use kestrel_formats::{
    convert_hf, ConvertOptions, DType, FormatError, KstFile, Scheme, WeightDType,
};
use safetensors::tensor::Dtype;

fn convert(
    dir: &std::path::Path,
    out: &std::path::Path,
    opts: ConvertOptions,
) -> Result<(Vec<(u64, u64)>, KstFile), FormatError> {
    let mut calls = Vec::new();
    convert_hf(dir, out, &opts, &mut |d, t| calls.push((d, t)))?;
    Ok((calls, KstFile::open(out)?))
}

#[test]
fn qwen2_bf16_tied_to_w4_within_quantization_bound() {
    let d = TempDir::new("hf-qwen");
    let cfg = hf_config("qwen2", true);
    let ts = hf_tensors(&cfg, Dtype::BF16);
    write_hf_dir(d.path(), &cfg, &ts, 1);
    let (calls, f) = convert(d.path(), &d.join("m.kst"), ConvertOptions::default()).unwrap();
    f.verify_checksums().unwrap();
    check_model_file(&f).unwrap();
    let (last_done, total) = *calls.last().unwrap();
    assert_eq!(last_done, total);
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    let c = f.config().unwrap();
    assert!(c.attention_bias && c.tie_word_embeddings);
    assert_eq!(
        (c.bos_token_id, c.eos_token_ids.clone()),
        (Some(1), vec![2, 3])
    );
    assert!(f.tokenizer_json().unwrap().contains("BPE"));
    assert!(f.chat_template().unwrap().contains("m.content"));
    assert_eq!(f.meta("quantization").unwrap()["group_size"], 32);
    assert!(f.tensor("lm_head.weight").is_err());
    for (name, _, shape, vals) in &ts {
        let t = f.tensor(name).unwrap();
        assert_eq!(t.shape, shape.as_slice());
        let src: Vec<f32> = vals
            .iter()
            .map(|x| half::bf16::from_f32(*x).to_f32())
            .collect();
        let got = t.to_f32_vec().unwrap();
        let want_dtype = if name.contains("embed") {
            DType::W8
        } else if shape.len() == 2 {
            DType::W4
        } else {
            DType::F32
        };
        assert_eq!(t.dtype, want_dtype, "{name}");
        if t.dtype == DType::F32 {
            assert_eq!(got, src, "{name}: norms and biases are exact");
        } else {
            let q = t.quant.unwrap();
            let scales: Vec<f32> = q
                .scales
                .chunks(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect();
            for (i, (a, b)) in src.iter().zip(&got).enumerate() {
                assert!(
                    (a - b).abs() <= scales[i / q.group_size] / 2.0 + 1e-6,
                    "{name}[{i}]: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn sharded_llama_f16_untied_is_bit_exact() {
    let d = TempDir::new("hf-llama");
    let cfg = hf_config("llama", false);
    let ts = hf_tensors(&cfg, Dtype::F16);
    write_hf_dir(d.path(), &cfg, &ts, 3);
    let opts = ConvertOptions {
        dtype: WeightDType::F16,
        ..Default::default()
    };
    let (_, f) = convert(d.path(), &d.join("m.kst"), opts).unwrap();
    check_model_file(&f).unwrap();
    assert!(!f.config().unwrap().attention_bias);
    assert!(f.tensor("model.layers.0.self_attn.q_proj.bias").is_err());
    let lm = f.tensor("lm_head.weight").unwrap();
    assert_eq!(lm.dtype, DType::F16);
    let want: Vec<u8> = encode(
        Dtype::F16,
        &ts.iter().find(|t| t.0 == "lm_head.weight").unwrap().3,
    );
    assert_eq!(lm.data, want.as_slice());
}

#[test]
fn asym_group64_and_w8_and_f32_options() {
    let d = TempDir::new("hf-opts");
    let cfg = hf_config("qwen2", true);
    write_hf_dir(d.path(), &cfg, &hf_tensors(&cfg, Dtype::F32), 1);
    let opts = ConvertOptions {
        dtype: WeightDType::W4,
        group_size: 64,
        scheme: Scheme::Asym,
    };
    let (_, f) = convert(d.path(), &d.join("a.kst"), opts).unwrap();
    let t = f.tensor("model.layers.1.mlp.down_proj.weight").unwrap();
    assert_eq!(
        (
            t.dtype,
            t.quant.unwrap().group_size,
            t.quant.unwrap().mins.is_some()
        ),
        (DType::W4, 64, true)
    );
    let (_, f) = convert(
        d.path(),
        &d.join("b.kst"),
        ConvertOptions {
            dtype: WeightDType::W8,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        f.tensor("model.layers.1.mlp.down_proj.weight")
            .unwrap()
            .dtype,
        DType::W8
    );
    let (_, f) = convert(
        d.path(),
        &d.join("c.kst"),
        ConvertOptions {
            dtype: WeightDType::F32,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        f.tensor("model.embed_tokens.weight").unwrap().dtype,
        DType::F32
    );
    assert!(convert(
        d.path(),
        &d.join("d.kst"),
        ConvertOptions {
            group_size: 48,
            ..Default::default()
        }
    )
    .is_err());
}

fn expect_err(setup: impl FnOnce(&std::path::Path), check: impl Fn(&FormatError) -> bool) {
    let d = TempDir::new("hf-bad");
    setup(d.path());
    let out = d.join("out.kst");
    match convert_hf(d.path(), &out, &ConvertOptions::default(), &mut |_, _| {}) {
        Ok(()) => panic!("conversion unexpectedly succeeded"),
        Err(e) => assert!(check(&e), "wrong error: {e}"),
    }
    assert!(!out.exists(), "no output on failure");
}

#[test]
fn missing_shard_is_an_error() {
    expect_err(
        |p| {
            let cfg = hf_config("qwen2", true);
            write_hf_dir(p, &cfg, &hf_tensors(&cfg, Dtype::BF16), 2);
            std::fs::remove_file(p.join("model-00002-of-00002.safetensors")).unwrap();
        },
        |e| matches!(e, FormatError::BadPath { reason, .. } if reason.contains("missing")),
    );
}

#[test]
fn shard_path_escaping_the_dir_is_an_error() {
    for bad in ["../model-00001-of-00002.safetensors", "/tmp/x.safetensors"] {
        expect_err(
            |p| {
                let cfg = hf_config("qwen2", true);
                write_hf_dir(p, &cfg, &hf_tensors(&cfg, Dtype::BF16), 2);
                let idx = std::fs::read_to_string(p.join("model.safetensors.index.json")).unwrap();
                let idx = idx.replacen("model-00001-of-00002.safetensors", bad, 1);
                std::fs::write(p.join("model.safetensors.index.json"), idx).unwrap();
            },
            |e| matches!(e, FormatError::BadPath { .. }),
        );
    }
}

#[test]
fn config_disagreeing_with_shapes_names_the_tensor() {
    expect_err(
        |p| {
            let cfg = hf_config("qwen2", true);
            let ts = hf_tensors(&cfg, Dtype::BF16);
            let mut cfg2 = cfg.clone();
            cfg2["intermediate_size"] = 96.into();
            write_hf_dir(p, &cfg2, &ts, 1);
        },
        |e| matches!(e, FormatError::ShapeMismatch { name, .. } if name == "model.layers.0.mlp.gate_proj.weight"),
    );
}

#[test]
fn missing_unexpected_and_non_float_tensors_are_errors() {
    let cfg = hf_config("qwen2", false);
    expect_err(
        |p| {
            let ts: Vec<_> = hf_tensors(&cfg, Dtype::BF16)
                .into_iter()
                .filter(|t| t.0 != "lm_head.weight")
                .collect();
            write_hf_dir(p, &cfg, &ts, 1);
        },
        |e| matches!(e, FormatError::MissingTensor(n) if n == "lm_head.weight"),
    );
    expect_err(
        |p| {
            let mut ts = hf_tensors(&cfg, Dtype::BF16);
            ts.push((
                "model.layers.0.self_attn.o_proj.bias".into(),
                Dtype::BF16,
                vec![64],
                vec![0.0; 64],
            ));
            write_hf_dir(p, &cfg, &ts, 1);
        },
        |e| matches!(e, FormatError::Unsupported(m) if m.contains("o_proj.bias")),
    );
    expect_err(
        |p| {
            let mut ts = hf_tensors(&cfg, Dtype::BF16);
            ts[0].1 = Dtype::I64;
            write_hf_dir(p, &cfg, &ts, 1);
        },
        |e| matches!(e, FormatError::UnknownDType(m) if m.contains("embed_tokens")),
    );
    expect_err(
        |p| std::fs::write(p.join("config.json"), cfg.to_string()).unwrap(),
        |e| matches!(e, FormatError::UnknownInput(_)),
    );
    expect_err(|_| {}, |e| matches!(e, FormatError::Io { .. }));
}

#[test]
fn unsupported_configs_are_refused() {
    for (k, v) in [
        ("rope_scaling", serde_json::json!({"type": "longrope"})),
        ("hidden_act", "gelu".into()),
        ("model_type", "mistral".into()),
    ] {
        let mut cfg = hf_config("qwen2", true);
        cfg[k] = v;
        if k == "model_type" {
            cfg["architectures"] = serde_json::json!(["MistralForCausalLM"]);
        }
        let r = kestrel_formats::ModelConfig::from_hf_config_json(&cfg.to_string());
        assert!(matches!(r, Err(FormatError::Unsupported(_))), "{k}");
    }
    let mut cfg = hf_config("qwen2", true);
    cfg["num_key_value_heads"] = 3.into();
    assert!(matches!(
        kestrel_formats::ModelConfig::from_hf_config_json(&cfg.to_string()),
        Err(FormatError::BadConfig(_))
    ));
}

#[test]
fn tied_lm_head_with_other_values_is_refused() {
    let cfg = hf_config("qwen2", true);
    // The same values as embed_tokens: accepted (and dropped).
    let d = TempDir::new("hf-tied-same");
    let mut ts = hf_tensors(&cfg, Dtype::F32);
    let emb = ts
        .iter()
        .find(|t| t.0 == "model.embed_tokens.weight")
        .unwrap()
        .clone();
    ts.push(("lm_head.weight".into(), emb.1, emb.2.clone(), emb.3.clone()));
    write_hf_dir(d.path(), &cfg, &ts, 1);
    convert_hf(
        d.path(),
        &d.join("o.kst"),
        &ConvertOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    expect_err(
        |p| {
            let mut ts = hf_tensors(&cfg, Dtype::F32);
            let mut other = emb.3.clone();
            other[5] += 1.0;
            ts.push(("lm_head.weight".into(), emb.1, emb.2.clone(), other));
            write_hf_dir(p, &cfg, &ts, 1);
        },
        |e| matches!(e, FormatError::Unsupported(m) if m.contains("tie_word_embeddings") && m.contains("lm_head.weight")),
    );
}

#[test]
fn head_dim_disagreeing_with_q_proj_names_head_dim() {
    expect_err(
        |p| {
            let cfg = hf_config("llama", true);
            let ts = hf_tensors(&cfg, Dtype::F32);
            let mut cfg2 = cfg.clone();
            cfg2["head_dim"] = 8.into();
            write_hf_dir(p, &cfg2, &ts, 1);
        },
        |e| {
            matches!(e, FormatError::ShapeMismatch { name, what, .. }
            if name == "model.layers.0.self_attn.q_proj.weight" && what.contains("head_dim 8"))
        },
    );
}

#[test]
fn non_finite_values_are_refused_in_every_tensor_kind() {
    for (tensor, dtype, opts) in [
        ("model.norm.weight", Dtype::F32, ConvertOptions::default()),
        (
            "model.layers.1.self_attn.k_proj.bias",
            Dtype::F16,
            ConvertOptions::default(),
        ),
        (
            "model.layers.0.mlp.up_proj.weight",
            Dtype::BF16,
            ConvertOptions::default(),
        ),
        (
            "model.layers.0.mlp.down_proj.weight",
            Dtype::F32,
            ConvertOptions {
                dtype: WeightDType::F32,
                ..Default::default()
            },
        ),
        (
            "model.embed_tokens.weight",
            Dtype::F16,
            ConvertOptions {
                dtype: WeightDType::F16,
                ..Default::default()
            },
        ),
    ] {
        for bad in [f32::NAN, f32::INFINITY] {
            let d = TempDir::new("hf-nonfinite");
            let cfg = hf_config("qwen2", true);
            let mut ts = hf_tensors(&cfg, dtype);
            ts.iter_mut().find(|t| t.0 == tensor).unwrap().3[3] = bad;
            write_hf_dir(d.path(), &cfg, &ts, 1);
            let out = d.join("o.kst");
            let e = convert_hf(d.path(), &out, &opts, &mut |_, _| {}).unwrap_err();
            assert!(
                e.to_string().contains(tensor) && e.to_string().contains("non-finite"),
                "{tensor} {bad}: {e}"
            );
            assert!(!out.exists());
        }
    }
}

#[test]
fn a_tokenizer_that_cannot_load_is_refused_at_convert() {
    expect_err(
        |p| {
            let cfg = hf_config("qwen2", true);
            write_hf_dir(p, &cfg, &hf_tensors(&cfg, Dtype::BF16), 1);
            // Valid JSON, but vocabulary ids no tokenizer accepts.
            let bad = r#"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}"#;
            std::fs::write(p.join("tokenizer.json"), bad).unwrap();
        },
        |e| matches!(e, FormatError::BadConfig(m) if m.contains("not a usable tokenizer")),
    );
}
