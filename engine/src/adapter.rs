//! LoRA adapters on the GPU, applied unmerged through the fused kernels.
//!
//! Per layer and per shared input there is one `LoraGroup`: q|k|v (input: the normed hidden
//! state), o (input: attention output), gate|up (input: the normed hidden state) and down (input:
//! the SwiGLU output). A group's A matrices (`[R, K]` f16 each, row-concatenated into one
//! `LoraA` texture) go to ONE shrink producing `h: [T, parts·R]`: for q|k|v and gate|up inside
//! the RMSNorm dispatch that produces their input (`rmsnorm_shrink_f32`), for o and down a
//! `lora_shrink` dispatch; the base matmul's epilogue then adds `scale · h · Bᵀ` with B the
//! row concatenation of the parts' B (`[M_total, R]` f16) and LoRA row segments, so the delta of
//! q, k and v comes out of the same dispatch as the base projection. A part the adapter does not
//! target gets zero A/B rows (only for partially-targeted groups). Scale: `alpha / r`, or
//! `alpha / sqrt(r)` with rsLoRA, taken from the adapter file.
//!
//! An adapter records its base model's header hash; loading it on another base is refused.

use std::path::Path;

use half::f16;
use kestrel_formats::{DType, Kind, KstFile, ModelConfig};
use kestrel_kernels::{Gpu, LoraA, LoraB};

use crate::error::{EngineError, Result};

/// Index of a loaded adapter in its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdapterId(pub(crate) usize);

/// The matrices that share one shrink.
pub(crate) struct LoraGroup {
    /// `[parts·R, K]` f16, parts' A concatenated by rows.
    pub a: LoraA,
    /// `[M_total, R]` f16, parts' B concatenated by rows.
    pub b: LoraB,
    /// Number of parts (1..=3): `h` is `[T, parts·R]`.
    pub parts: u32,
    /// First row of part 1 and part 2 in the concatenated matrix.
    pub segments: [u32; 2],
}

/// One block's LoRA groups (None = no delta for that input).
pub(crate) struct LayerLora {
    pub qkv: Option<LoraGroup>,
    pub o: Option<LoraGroup>,
    pub gate_up: Option<LoraGroup>,
    pub down: Option<LoraGroup>,
}

/// A LoRA adapter uploaded for one engine.
pub struct Adapter {
    pub name: String,
    pub rank: u32,
    pub scale: f32,
    pub targets: Vec<String>,
    pub(crate) layers: Vec<LayerLora>,
    /// Bytes of A and B on the GPU.
    pub bytes: u64,
}

impl Adapter {
    pub(crate) fn load(
        gpu: &Gpu,
        path: &Path,
        cfg: &ModelConfig,
        base_hash: &str,
    ) -> Result<Adapter> {
        let file = KstFile::open(path)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file.kind() != Kind::Adapter {
            return Err(EngineError::Adapter(format!(
                "{} is not an adapter file (kind {:?})",
                path.display(),
                file.kind()
            )));
        }
        check_base(&file, path, base_hash)?;
        let meta = file.meta("adapter").ok_or_else(|| {
            EngineError::Adapter(format!("{}: no `adapter` section", path.display()))
        })?;
        let rank = meta["r"]
            .as_u64()
            .filter(|&r| (1..=128).contains(&r))
            .ok_or_else(|| {
                EngineError::Adapter(format!(
                    "{}: rank {} outside 1..=128",
                    path.display(),
                    meta["r"]
                ))
            })? as u32;
        let scale = meta["scale"]
            .as_f64()
            .filter(|s| s.is_finite())
            .ok_or_else(|| {
                EngineError::Adapter(format!("{}: bad scale {}", path.display(), meta["scale"]))
            })? as f32;
        let targets = json_strings(&meta["target_modules"]);
        let (h, hkv, d, hidden, inter) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
            cfg.hidden_size,
            cfg.intermediate_size,
        );
        let mut bytes = 0u64;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let mut group =
                |parent: &str, parts: &[(&str, usize)], k: usize| -> Result<Option<LoraGroup>> {
                    let g = load_group(gpu, &file, i, parent, parts, k, rank)?;
                    if let Some(g) = &g {
                        bytes += g.a.bytes() + g.b.bytes();
                    }
                    Ok(g)
                };
            layers.push(LayerLora {
                qkv: group(
                    "self_attn",
                    &[("q_proj", h * d), ("k_proj", hkv * d), ("v_proj", hkv * d)],
                    hidden,
                )?,
                o: group("self_attn", &[("o_proj", hidden)], h * d)?,
                gate_up: group("mlp", &[("gate_proj", inter), ("up_proj", inter)], hidden)?,
                down: group("mlp", &[("down_proj", hidden)], inter)?,
            });
        }
        Ok(Adapter {
            name,
            rank,
            scale,
            targets,
            layers,
            bytes,
        })
    }
}

/// The strings of a JSON array (empty when it is not one).
pub(crate) fn json_strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Refuses an adapter or head file made for another base model than the one with `base_hash`.
pub(crate) fn check_base(file: &KstFile, path: &Path, base_hash: &str) -> Result<()> {
    match file.base_hash() {
        Some(h) if h == base_hash => Ok(()),
        Some(h) => Err(EngineError::Adapter(format!(
            "{} was made for another base model (base hash {h}, this model {base_hash})",
            path.display()
        ))),
        None => Err(EngineError::Adapter(format!(
            "{} records no base model",
            path.display()
        ))),
    }
}

/// f16 bytes of an `[rows, cols]` A or B tensor, checked.
fn f16_tensor(file: &KstFile, name: &str, rows: usize, cols: usize) -> Result<Option<Vec<u8>>> {
    let v = match file.tensor(name) {
        Ok(v) => v,
        Err(kestrel_formats::FormatError::MissingTensor(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if v.shape != [rows, cols] {
        return Err(EngineError::Adapter(format!(
            "{name}: shape {:?}, expected [{rows}, {cols}]",
            v.shape
        )));
    }
    Ok(Some(match v.dtype {
        DType::F16 => v.data.to_vec(),
        DType::F32 => v
            .data
            .chunks_exact(4)
            .flat_map(|b| f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes())
            .collect(),
        d => {
            return Err(EngineError::Adapter(format!(
                "{name}: dtype {d}, expected f16"
            )))
        }
    }))
}

fn load_group(
    gpu: &Gpu,
    file: &KstFile,
    layer: usize,
    parent: &str,
    parts: &[(&str, usize)],
    k: usize,
    rank: u32,
) -> Result<Option<LoraGroup>> {
    let r = rank as usize;
    let mut found = Vec::with_capacity(parts.len());
    for (proj, m) in parts {
        let base = format!("model.layers.{layer}.{parent}.{proj}");
        let a = f16_tensor(file, &format!("{base}.lora_A"), r, k)?;
        let b = f16_tensor(file, &format!("{base}.lora_B"), *m, r)?;
        match (a, b) {
            (Some(a), Some(b)) => found.push(Some((a, b))),
            (None, None) => found.push(None),
            _ => {
                return Err(EngineError::Adapter(format!(
                    "{base}: lora_A without lora_B or the reverse"
                )))
            }
        }
    }
    if found.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut a_all = Vec::new();
    let mut b_all = Vec::new();
    let mut segments = [u32::MAX; 2];
    let mut row = 0usize;
    for (i, ((_, m), ab)) in parts.iter().zip(found).enumerate() {
        if i > 0 {
            segments[i - 1] = row as u32;
        }
        // An untargeted part of a fused group contributes zero rows (A = 0, B = 0).
        let (a, b) = ab.unwrap_or_else(|| (vec![0u8; r * k * 2], vec![0u8; m * r * 2]));
        a_all.extend_from_slice(&a);
        b_all.extend_from_slice(&b);
        row += m;
    }
    let a = LoraA::upload(gpu, k as u32, &[&a_all])?;
    let b = LoraB::upload(gpu, row as u32, rank, &b_all)?;
    Ok(Some(LoraGroup {
        a,
        b,
        parts: parts.len() as u32,
        segments,
    }))
}
