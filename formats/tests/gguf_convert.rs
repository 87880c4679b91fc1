//! GGUF → `.kst` conversion: the committed gguf-py fixtures (values dequantized by gguf-py's numpy
//! reference), a hand-built permuted Llama file, and conversion-level errors.

use std::path::{Path, PathBuf};

use kestrel_formats::gguf::{convert_gguf, GgmlType, GgufBuilder, GgufError, MetaValue};
use kestrel_formats::{Arch, ConvertOptions, DType, FormatError, KstFile, WeightDType};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gguf")
}

/// A path unique to this call: tests run in parallel and several convert the same fixture.
fn tmp(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("kestrel-gguf-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn f32_opts() -> ConvertOptions {
    ConvertOptions {
        dtype: WeightDType::F32,
        ..ConvertOptions::default()
    }
}

fn convert(input: &Path, out: &Path, opts: &ConvertOptions) -> Result<KstFile, FormatError> {
    let mut calls = Vec::new();
    convert_gguf(input, out, opts, &mut |d, t| calls.push((d, t)))?;
    assert!(
        calls.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress goes backwards"
    );
    let &(done, total) = calls.last().unwrap();
    assert_eq!(done, total);
    KstFile::open(out)
}

/// Compare every tensor of a converted fixture with gguf-py's dequantization.
fn check_fixture(name: &str, opts: &ConvertOptions) -> KstFile {
    let dir = fixture_dir();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap(),
    )
    .unwrap();
    let bin = std::fs::read(dir.join(format!("{name}.expected.bin"))).unwrap();
    let expected: Vec<u32> = bin
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let kst = convert(
        &dir.join(format!("{name}.gguf")),
        &tmp(&format!("{name}.kst")),
        opts,
    )
    .unwrap();
    kst.verify_checksums().unwrap();

    let tensors = manifest["tensors"].as_object().unwrap();
    assert_eq!(kst.tensor_names().count(), tensors.len());
    for (hf, e) in tensors {
        let view = kst.tensor(hf).unwrap();
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(view.shape, shape.as_slice(), "{hf}");
        let gtype = e["gguf_type"].as_str().unwrap();
        let want_dtype = match gtype {
            "Q4_0" | "Q4_1" => DType::W4,
            "Q8_0" => DType::W8,
            _ if shape.len() == 1 => DType::F32,
            _ if hf.contains("embed_tokens") || hf.starts_with("lm_head") => {
                opts.dtype.embedding_dtype()
            }
            _ => opts.dtype.linear_dtype(),
        };
        assert_eq!(view.dtype, want_dtype, "{hf}");
        if matches!(gtype, "Q4_0" | "Q4_1") {
            assert_eq!(view.quant.unwrap().mins.is_some(), gtype == "Q4_1", "{hf}");
            assert_eq!(view.quant.unwrap().group_size, 32);
        }
        let off = e["offset"].as_u64().unwrap() as usize;
        let want = &expected[off..off + view.num_elements()];
        let got = view.to_f32_vec().unwrap();
        if view.dtype.is_quantized() && !matches!(gtype, "Q4_0" | "Q4_1" | "Q8_0") {
            // A float GGUF tensor re-quantized per the options: close, not exact.
            let max = want
                .iter()
                .map(|&b| f32::from_bits(b).abs())
                .fold(0.0, f32::max);
            for (g, &w) in got.iter().zip(want) {
                assert!(
                    (g - f32::from_bits(w)).abs() <= max / 7.0 * 0.51 + 1e-6,
                    "{hf}: {g} vs {}",
                    f32::from_bits(w)
                );
            }
        } else {
            let got: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
            assert!(
                got == want,
                "{hf} ({gtype}) differs from gguf-py's dequantization"
            );
        }
    }
    let c = kst.config().unwrap();
    let mc = &manifest["config"];
    assert_eq!(c.vocab_size as u64, mc["vocab_size"].as_u64().unwrap());
    assert_eq!(c.hidden_size as u64, mc["hidden_size"].as_u64().unwrap());
    assert_eq!(
        c.intermediate_size as u64,
        mc["intermediate_size"].as_u64().unwrap()
    );
    assert_eq!(
        c.num_key_value_heads as u64,
        mc["num_key_value_heads"].as_u64().unwrap()
    );
    assert_eq!(c.head_dim as u64, mc["head_dim"].as_u64().unwrap());
    assert_eq!(
        c.tie_word_embeddings,
        mc["tie_word_embeddings"].as_bool().unwrap()
    );
    assert!(kst.tokenizer_json().is_some() && kst.chat_template().is_some());
    kst
}

#[test]
fn tiny_llama_fixture_is_lossless() {
    let kst = check_fixture("tiny_llama", &f32_opts());
    let c = kst.config().unwrap();
    assert_eq!(
        (c.arch, c.attention_bias, c.rope_theta),
        (Arch::Llama, false, 10000.0)
    );
    assert_eq!(
        (c.bos_token_id, c.eos_token_ids.as_slice()),
        (Some(0), &[2u32][..])
    );
    // Q4_0 and Q4_1 tensors side by side.
    assert_eq!(kst.meta("quantization").unwrap()["scheme"], "mixed");
}

#[test]
fn tiny_qwen2_fixture_is_lossless() {
    let kst = check_fixture("tiny_qwen2", &f32_opts());
    let c = kst.config().unwrap();
    assert_eq!(
        (c.arch, c.attention_bias, c.rope_theta),
        (Arch::Qwen2, true, 1_000_000.0)
    );
}

#[test]
fn float_weights_follow_the_options() {
    // tiny_llama stores v (F16), o (BF16) and up (F32) as floats: W4 by default.
    check_fixture("tiny_llama", &ConvertOptions::default());
}

// ---- a Llama file built here, with q/k rows permuted by hand ----

const H: usize = 32;
const HEADS: usize = 4;
const KV: usize = 2;
const D: usize = H / HEADS;
const FFN: usize = 32;
const VOCAB: usize = 8;

/// llama.cpp `permute`, written as a loop: GGUF row h·D + 2r + s holds HF row h·D + s·D/2 + r.
fn permute_rows(w: &[f32], heads: usize, k: usize) -> Vec<f32> {
    let rows = w.len() / k;
    let d = rows / heads;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for s in 0..2 {
            for r in 0..d / 2 {
                let (hf, gg) = (h * d + s * d / 2 + r, h * d + 2 * r + s);
                out[gg * k..(gg + 1) * k].copy_from_slice(&w[hf * k..(hf + 1) * k]);
            }
        }
    }
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Distinct values: row r, column c → r·1000 + c (+ a per-tensor offset).
fn ramp(rows: usize, k: usize, base: f32) -> Vec<f32> {
    (0..rows * k)
        .map(|i| base + (i / k) as f32 * 1000.0 + (i % k) as f32)
        .collect()
}

/// Variations of the hand-built file.
#[derive(Default)]
struct Tiny {
    arch: Option<&'static str>,
    pre: Option<&'static str>,
    /// Replace ffn_down by raw data of this type and GGML dims.
    down: Option<(GgmlType, [u64; 2], Vec<u8>)>,
    /// Leave this tensor out.
    drop: Option<&'static str>,
    /// Add a 1-D tensor with this name.
    extra: Option<&'static str>,
    /// Extra metadata, keys after `{arch}.`.
    meta: Vec<(&'static str, MetaValue<'static>)>,
}

fn tiny_llama(t: Tiny) -> GgufBuilder {
    let mut b = GgufBuilder::new();
    let arch = t.arch.unwrap_or("llama");
    let toks: Vec<MetaValue> = ["<s>", "</s>", "a", "b", "c", "Ġ", "ab", "Ġa"]
        .into_iter()
        .map(MetaValue::Str)
        .collect();
    let k = |s: &str| format!("{arch}.{s}");
    b.meta("general.architecture", MetaValue::Str(arch))
        .meta(&k("block_count"), MetaValue::U32(1))
        .meta(&k("context_length"), MetaValue::U32(128))
        .meta(&k("embedding_length"), MetaValue::U32(H as u32))
        .meta(&k("feed_forward_length"), MetaValue::U32(FFN as u32))
        .meta(&k("attention.head_count"), MetaValue::U32(HEADS as u32))
        .meta(&k("attention.head_count_kv"), MetaValue::U32(KV as u32))
        .meta(&k("attention.layer_norm_rms_epsilon"), MetaValue::F32(1e-5))
        .meta(&k("rope.freq_base"), MetaValue::F32(10000.0))
        .meta("tokenizer.ggml.model", MetaValue::Str("gpt2"))
        .meta(
            "tokenizer.ggml.pre",
            MetaValue::Str(t.pre.unwrap_or("default")),
        )
        .meta("tokenizer.ggml.tokens", MetaValue::Array(toks))
        .meta(
            "tokenizer.ggml.merges",
            MetaValue::Array(vec![MetaValue::Str("a b"), MetaValue::Str("Ġ a")]),
        )
        .meta("tokenizer.ggml.eos_token_id", MetaValue::U32(1));
    for (key, v) in &t.meta {
        b.meta(&k(key), v.clone());
    }
    let keep = |name: &str| t.drop != Some(name);
    let vec_t = |b: &mut GgufBuilder, name: &str, n: usize| {
        if keep(name) {
            b.tensor(name, &[n as u64], GgmlType::F32, f32_bytes(&vec![1.0; n]));
        }
    };
    let mat =
        |b: &mut GgufBuilder, name: &str, m: usize, k: usize, perm: Option<usize>, base: f32| {
            let w = ramp(m, k, base);
            let w = perm.map_or(w.clone(), |heads| permute_rows(&w, heads, k));
            if keep(name) {
                b.tensor(name, &[k as u64, m as u64], GgmlType::F32, f32_bytes(&w));
            }
        };
    // rope_freqs.weight first, as llama.cpp writes it: weights after it must still map 1:1.
    if t.extra == Some("rope_freqs.weight") {
        vec_t(&mut b, "rope_freqs.weight", D / 2);
    }
    mat(&mut b, "token_embd.weight", VOCAB, H, None, 0.0);
    vec_t(&mut b, "blk.0.attn_norm.weight", H);
    mat(
        &mut b,
        "blk.0.attn_q.weight",
        HEADS * D,
        H,
        Some(HEADS),
        0.25,
    );
    mat(&mut b, "blk.0.attn_k.weight", KV * D, H, Some(KV), 0.5);
    mat(&mut b, "blk.0.attn_v.weight", KV * D, H, None, 0.75);
    mat(&mut b, "blk.0.attn_output.weight", H, HEADS * D, None, 0.0);
    vec_t(&mut b, "blk.0.ffn_norm.weight", H);
    mat(&mut b, "blk.0.ffn_gate.weight", FFN, H, None, 0.0);
    mat(&mut b, "blk.0.ffn_up.weight", FFN, H, None, 0.0);
    match t.down {
        Some((ty, dims, data)) => {
            b.tensor("blk.0.ffn_down.weight", &dims, ty, data);
        }
        None => mat(&mut b, "blk.0.ffn_down.weight", H, FFN, None, 0.0),
    }
    vec_t(&mut b, "output_norm.weight", H);
    if let Some(name) = t.extra.filter(|n| *n != "rope_freqs.weight") {
        vec_t(&mut b, name, 4);
    }
    b
}

fn write(name: &str, b: &GgufBuilder) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, b.build()).unwrap();
    p
}

#[test]
fn llama_qk_permutation_is_undone() {
    let input = write("perm.gguf", &tiny_llama(Tiny::default()));
    let kst = convert(&input, &tmp("perm.kst"), &f32_opts()).unwrap();
    for (name, rows, base) in [
        ("q_proj", HEADS * D, 0.25),
        ("k_proj", KV * D, 0.5),
        ("v_proj", KV * D, 0.75),
    ] {
        let got = kst
            .tensor(&format!("model.layers.0.self_attn.{name}.weight"))
            .unwrap()
            .to_f32_vec()
            .unwrap();
        assert_eq!(got, ramp(rows, H, base), "{name}");
    }
    let c = kst.config().unwrap();
    assert!(c.tie_word_embeddings && c.bos_token_id.is_none());
    assert_eq!(c.eos_token_ids, vec![1]);
}

fn convert_err(name: &str, t: Tiny) -> GgufError {
    match convert_gguf(
        &write(name, &tiny_llama(t)),
        &tmp(&format!("{name}.kst")),
        &f32_opts(),
        &mut |_, _| {},
    ) {
        Err(FormatError::Gguf(e)) => e,
        other => panic!("expected a GGUF error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn unsupported_tensor_type_is_named() {
    // Q5_0 has 32-element blocks like the supported types, so only the type is wrong.
    let e = convert_err(
        "q5.gguf",
        Tiny {
            down: Some((GgmlType::Q5_0, [FFN as u64, H as u64], vec![0; 22 * H])),
            ..Tiny::default()
        },
    );
    assert_eq!(
        e.to_string(),
        "unsupported GGUF tensor type Q5_0 for blk.0.ffn_down.weight"
    );
    let e = GgufError::UnsupportedTensorType {
        tensor: "blk.0.ffn_down.weight".into(),
        ty: GgmlType::Q6_K,
    };
    assert_eq!(
        e.to_string(),
        "unsupported GGUF tensor type Q6_K for blk.0.ffn_down.weight"
    );
}

#[test]
fn structural_errors() {
    let e = convert_err(
        "arch.gguf",
        Tiny {
            arch: Some("gptneox"),
            ..Tiny::default()
        },
    );
    assert!(
        matches!(e, GgufError::UnsupportedArch(ref a) if a == "gptneox"),
        "{e}"
    );
    let e = convert_err(
        "pre.gguf",
        Tiny {
            pre: Some("mystery"),
            ..Tiny::default()
        },
    );
    assert!(
        matches!(e, GgufError::UnsupportedPreTokenizer(ref p) if p == "mystery"),
        "{e}"
    );
    let e = convert_err(
        "drop.gguf",
        Tiny {
            drop: Some("blk.0.ffn_up.weight"),
            ..Tiny::default()
        },
    );
    assert!(
        matches!(e, GgufError::MissingTensor(ref n) if n == "model.layers.0.mlp.up_proj.weight"),
        "{e}"
    );
    let e = convert_err(
        "extra.gguf",
        Tiny {
            extra: Some("blk.0.attn_q_norm.weight"),
            ..Tiny::default()
        },
    );
    assert!(matches!(e, GgufError::UnknownTensorName(_)), "{e}");
    let e = convert_err(
        "extra2.gguf",
        Tiny {
            extra: Some("blk.1.attn_norm.weight"),
            ..Tiny::default()
        },
    );
    assert!(matches!(e, GgufError::UnknownTensorName(_)), "{e}");
    // ffn_down with one row too many.
    let down = Some((
        GgmlType::F32,
        [FFN as u64, H as u64 + 1],
        vec![0; 4 * (H + 1) * FFN],
    ));
    let e = convert_err(
        "shape.gguf",
        Tiny {
            down,
            ..Tiny::default()
        },
    );
    assert!(
        matches!(e, GgufError::ShapeMismatch { ref tensor, .. } if tensor == "blk.0.ffn_down.weight"),
        "{e}"
    );
}

#[test]
fn missing_input_is_an_io_error() {
    let r = convert_gguf(
        Path::new("/nonexistent/x.gguf"),
        &tmp("none.kst"),
        &f32_opts(),
        &mut |_, _| {},
    );
    assert!(matches!(r, Err(FormatError::Io { .. })));
}

fn convert_ok(name: &str, t: Tiny) -> KstFile {
    convert(
        &write(name, &tiny_llama(t)),
        &tmp(&format!("{name}.kst")),
        &f32_opts(),
    )
    .unwrap()
}

#[test]
fn rope_scaling_metadata_is_read() {
    use kestrel_formats::RopeScaling;
    let linear = convert_ok(
        "linear.gguf",
        Tiny {
            meta: vec![
                ("rope.scaling.type", MetaValue::Str("linear")),
                ("rope.scaling.factor", MetaValue::F32(2.0)),
            ],
            ..Tiny::default()
        },
    );
    assert_eq!(
        linear.config().unwrap().rope_scaling,
        RopeScaling::Linear { factor: 2.0 }
    );
    let yarn = convert_ok(
        "yarn.gguf",
        Tiny {
            meta: vec![
                ("rope.scaling.type", MetaValue::Str("yarn")),
                ("rope.scaling.factor", MetaValue::F32(4.0)),
                ("rope.scaling.original_context_length", MetaValue::U32(32)),
            ],
            ..Tiny::default()
        },
    );
    assert_eq!(
        yarn.config().unwrap().rope_scaling,
        RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 32,
            attention_factor: 0.1 * 4f64.ln() + 1.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            truncate: true,
        }
    );
    // llama.cpp's rope_freqs.weight divisors: inv_freq = default / factor, pair by pair.
    let freqs = convert_ok(
        "freqs.gguf",
        Tiny {
            extra: Some("rope_freqs.weight"),
            ..Tiny::default()
        },
    );
    let c = freqs.config().unwrap();
    assert_eq!(
        c.rope_scaling,
        RopeScaling::FreqFactors {
            freq_factors: vec![1.0; D / 2]
        }
    );
    assert!(freqs.tensor("rope_freqs.weight").is_err());
    let plain = convert_ok("plain.gguf", Tiny::default());
    for name in plain.tensor_names() {
        assert_eq!(
            freqs.tensor(name).unwrap().data,
            plain.tensor(name).unwrap().data,
            "{name}"
        );
    }
    let (inv, a) = c.rope_tables();
    assert_eq!(
        (inv, a),
        (kestrel_formats::rope::default_inv_freq(10000.0, D), 1.0)
    );
}

#[test]
fn rope_metadata_that_is_not_computed_is_refused_by_key() {
    let cases: Vec<(Vec<(&'static str, MetaValue<'static>)>, &str)> = vec![
        (
            vec![("rope.scaling.type", MetaValue::Str("longrope"))],
            "llama.rope.scaling.type",
        ),
        (
            vec![
                ("rope.scaling.type", MetaValue::Str("yarn")),
                ("rope.scaling.factor", MetaValue::F32(4.0)),
                ("rope.scaling.original_context_length", MetaValue::U32(32)),
                ("rope.scaling.yarn_beta_fast", MetaValue::F32(16.0)),
            ],
            "llama.rope.scaling.yarn_beta_fast",
        ),
        (
            vec![("rope.scaling.attn_factor", MetaValue::F32(0.5))],
            "llama.rope.scaling.attn_factor",
        ),
        (
            vec![("rope.scaling.type", MetaValue::Str("linear"))],
            "llama.rope.scaling.factor",
        ),
        (
            vec![("rope.dimension_count", MetaValue::U32(4))],
            "llama.rope.dimension_count",
        ),
        (
            vec![("attention.sliding_window", MetaValue::U32(64))],
            "llama.attention.sliding_window",
        ),
    ];
    for (i, (meta, key)) in cases.into_iter().enumerate() {
        let e = convert_err(
            &format!("refuse{i}.gguf"),
            Tiny {
                meta,
                ..Tiny::default()
            },
        );
        assert!(
            matches!(e, GgufError::BadValue { key: ref k, .. } if k == key),
            "{key}: {e}"
        );
    }
    let e = convert_err(
        "freqs_and_linear.gguf",
        Tiny {
            extra: Some("rope_freqs.weight"),
            meta: vec![
                ("rope.scaling.type", MetaValue::Str("linear")),
                ("rope.scaling.factor", MetaValue::F32(2.0)),
            ],
            ..Tiny::default()
        },
    );
    assert!(
        matches!(e, GgufError::BadValue { key: ref k, .. } if k == "rope_freqs.weight"),
        "{e}"
    );
}
