//! GGUF file → `.kst` model, one tensor at a time from a memory map.
//!
//! Storage per tensor (HF names and shapes; GGML `ne = [K, M]` becomes `[M, K]`):
//! - Q4_0 → W4 symmetric, Q4_1 → W4 asymmetric, Q8_0 → W8, all with group 32: the GGML blocks
//!   are mapped bit-exactly whatever `ConvertOptions` say (re-quantizing would only lose).
//! - F32 / F16 / BF16 norms and biases → F32.
//! - F32 / F16 / BF16 2-D weights → per `ConvertOptions` (linear layers: `opts.dtype`;
//!   `embed_tokens` / `lm_head`: `opts.dtype.embedding_dtype()`), quantized with
//!   `opts.group_size` / `opts.scheme` — the same policy as the safetensors importer.
//! - Any other GGML type: `GgufError::UnsupportedTensorType` naming type and tensor.
//!
//! Llama-arch q/k rows (and biases) are un-permuted (see `permute.rs`). The tensor set must be
//! exactly the one the config implies (`names::required_hf_names`). Progress is reported as
//! `(bytes of GGUF tensor data done, total)` after each tensor.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use half::f16;
use serde_json::json;

use super::blocks::{float_to_f32, q4_to_w4, q8_0_to_w8};
use super::config::model_config;
use super::error::GgufError;
use super::names::{map_name, required_hf_names, Mapped, Role, RopeProj};
use super::parse::{parse, GgufFile, TensorInfo};
use super::permute::{gather_rows, gather_w4, gather_w8, unpermute_source_rows};
use super::tokenizer::{chat_template, tokenizer_json};
use super::types::GgmlType;
use super::value::MetaLookup;
use crate::{
    quantize_w4, quantize_w8, Arch, ConvertOptions, DType, FormatError, Kind, KstWriter,
    ModelConfig, Scheme,
};

/// Convert the GGUF file `input` into a `.kst` model at `output`.
pub fn convert_gguf(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), FormatError> {
    opts.validate()?;
    let file = File::open(input).map_err(|e| FormatError::io(input, e))?;
    // SAFETY: the map is read-only and private to this call; a concurrent truncation of the
    // input by another process is outside what any mmap-based reader can defend against.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(input, e))?;
    let g = parse(&map)?;
    let cfg = model_config(&g)?;
    let plan = plan(&g, &cfg)?;
    let n_tokens = g.req_array("tokenizer.ggml.tokens")?.len();
    if n_tokens > cfg.vocab_size {
        return Err(GgufError::Tokenizer(format!(
            "{n_tokens} tokens but token_embd has only {} rows",
            cfg.vocab_size
        ))
        .into());
    }

    let mut w = KstWriter::create(output, Kind::Model)?;
    w.set_config(cfg.clone());
    w.set_tokenizer_json(tokenizer_json(&g)?);
    if let Some(t) = chat_template(&g)? {
        w.set_chat_template(t.to_owned());
    }
    w.set_meta("quantization", quant_meta(&g, opts));
    w.set_meta("source", source_meta(&g, input));

    let total: u64 = weight_tensors(&g).map(|t| t.n_bytes).sum();
    let mut done = 0;
    progress(done, total);
    for (t, m) in weight_tensors(&g).zip(&plan) {
        write_tensor(&mut w, &g, t, m, &cfg, opts)?;
        done += t.n_bytes;
        progress(done, total);
    }
    w.finish()
}

/// The tensors that become `.kst` tensors, in file order: all but `rope_freqs.weight`, which
/// the config reads into its RoPE scaling (config.rs).
fn weight_tensors<'g, 'a>(g: &'g GgufFile<'a>) -> impl Iterator<Item = &'g TensorInfo<'a>> {
    g.tensors.iter().filter(|t| t.name != "rope_freqs.weight")
}

/// Map every tensor and check names, shapes and completeness before writing anything.
fn plan(g: &GgufFile<'_>, cfg: &ModelConfig) -> Result<Vec<Mapped>, GgufError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(g.tensors.len());
    for t in weight_tensors(g) {
        let m = map_name(t.name, cfg)?;
        let expected: Vec<u64> = m.shape.iter().rev().map(|&d| d as u64).collect();
        if t.dims != expected {
            return Err(GgufError::ShapeMismatch {
                tensor: t.name.to_owned(),
                dims: t.dims.clone(),
                expected,
            });
        }
        seen.insert(m.hf_name.clone());
        out.push(m);
    }
    let required: BTreeSet<String> = required_hf_names(cfg).into_iter().collect();
    if let Some(missing) = required.difference(&seen).next() {
        return Err(GgufError::MissingTensor(missing.clone()));
    }
    if let Some(extra) = seen.difference(&required).next() {
        return Err(GgufError::UnknownTensorName(format!(
            "{extra} (not implied by the model config)"
        )));
    }
    Ok(out)
}

/// The options' `quantization` section, corrected for what the GGUF blocks really are: `scheme`
/// is `asym` when every W4 tensor came from Q4_1 (`mixed` with Q4_0 too), and the GGML type
/// counts are listed under `gguf_tensor_types`.
fn quant_meta(g: &GgufFile<'_>, opts: &ConvertOptions) -> serde_json::Value {
    let mut meta = opts.to_meta();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for t in &g.tensors {
        *counts.entry(t.ty.to_string()).or_default() += 1;
    }
    let (q40, q41) = (counts.contains_key("Q4_0"), counts.contains_key("Q4_1"));
    let floats_to_w4 = opts.dtype.linear_dtype() == DType::W4
        && g.tensors.iter().any(|t| {
            t.dims.len() == 2 && matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
        });
    let scheme = match (
        q40 || (floats_to_w4 && opts.scheme == Scheme::Sym),
        q41 || (floats_to_w4 && opts.scheme == Scheme::Asym),
    ) {
        (true, true) => Some("mixed"),
        (false, true) => Some("asym"),
        (true, false) => Some("sym"),
        (false, false) => None,
    };
    if let Some(s) = scheme {
        meta["scheme"] = json!(s);
    }
    meta["gguf_tensor_types"] = json!(counts);
    meta
}

fn source_meta(g: &GgufFile<'_>, input: &Path) -> serde_json::Value {
    json!({
        "format": "gguf",
        "gguf_version": g.version,
        "file": input.file_name().map(|n| n.to_string_lossy().into_owned()),
        "name": g.opt_str("general.name").ok().flatten(),
        "tokenizer_pre": g.opt_str("tokenizer.ggml.pre").ok().flatten(),
    })
}

/// HF row order for this tensor: `Some(src)` when llama.cpp permuted its rows.
fn unpermute(
    t: &TensorInfo<'_>,
    m: &Mapped,
    cfg: &ModelConfig,
) -> Result<Option<Vec<usize>>, GgufError> {
    let rope = match m.role {
        Role::Linear { rope } | Role::Bias { rope } => rope,
        _ => None,
    };
    let heads = match (cfg.arch, rope) {
        (Arch::Llama, Some(RopeProj::Q)) => cfg.num_attention_heads,
        (Arch::Llama, Some(RopeProj::K)) => cfg.num_key_value_heads,
        _ => return Ok(None),
    };
    unpermute_source_rows(t.name, m.shape[0], heads).map(Some)
}

fn write_tensor(
    w: &mut KstWriter,
    g: &GgufFile<'_>,
    t: &TensorInfo<'_>,
    m: &Mapped,
    cfg: &ModelConfig,
    opts: &ConvertOptions,
) -> Result<(), FormatError> {
    let data = g.data(t);
    let src = unpermute(t, m, cfg)?;
    let name = m.hf_name.as_str();
    let unsupported = || GgufError::UnsupportedTensorType {
        tensor: t.name.to_owned(),
        ty: t.ty,
    };
    let n = m.shape.iter().product::<usize>();
    let is_float = matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);

    if matches!(m.role, Role::Norm | Role::Bias { .. }) {
        if !is_float {
            return Err(unsupported().into());
        }
        let v = float_to_f32(t.ty, data, n)?;
        let v = match &src {
            Some(s) => gather_rows(&v, 1, s),
            None => v,
        };
        return w.add_f32(name, &m.shape, &v);
    }

    let (rows, k) = (m.shape[0], m.shape[1]);
    match t.ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let q = q4_to_w4(data, rows, k, t.ty == GgmlType::Q4_1)?;
            w.add_w4(
                name,
                &match src {
                    Some(s) => gather_w4(&q, &s),
                    None => q,
                },
            )
        }
        GgmlType::Q8_0 => {
            let q = q8_0_to_w8(data, rows, k)?;
            w.add_w8(
                name,
                &match src {
                    Some(s) => gather_w8(&q, &s),
                    None => q,
                },
            )
        }
        _ if is_float => {
            let v = float_to_f32(t.ty, data, n)?;
            let v = match &src {
                Some(s) => gather_rows(&v, k, s),
                None => v,
            };
            let dtype = match m.role {
                Role::Embedding | Role::LmHead => opts.dtype.embedding_dtype(),
                _ => opts.dtype.linear_dtype(),
            };
            match dtype {
                DType::W4 => w.add_w4(
                    name,
                    &quantize_w4(&v, rows, k, opts.group_size, opts.scheme == Scheme::Asym)?,
                ),
                DType::W8 => w.add_w8(name, &quantize_w8(&v, rows, k, opts.group_size)?),
                DType::F16 => w.add_f16(
                    name,
                    &m.shape,
                    &v.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>(),
                ),
                _ => w.add_f32(name, &m.shape, &v),
            }
        }
        _ => Err(unsupported().into()),
    }
}
