//! PEFT LoRA adapter directory → adapter `.kst`, checked against its base model `.kst`.
//!
//! Input: `adapter_config.json` (`peft_type` LORA, `r`, `lora_alpha`, `use_rslora`,
//! `target_modules` as a list of the projection names or `"all-linear"`, `fan_in_fan_out`) and
//! `adapter_model.safetensors` with keys
//! `base_model.model.model.layers.{i}.{self_attn|mlp}.{proj}.lora_{A|B}.weight`, F32/F16/BF16.
//!
//! Output (`Kind::Adapter`): `base_hash` = the base file's `header_hash`; meta `adapter` =
//! `{r, alpha, use_rslora, scale, target_modules (sorted), layers}` with `scale = alpha / r`
//! (or `alpha / sqrt(r)` with rsLoRA); tensors `model.layers.{i}.{parent}.{proj}.lora_A` `[R, K]`
//! and `.lora_B` `[M, R]`, f16. A (layer, module) pair may be absent (e.g. `layers_to_transform`);
//! the engine treats an absent pair as no delta.
//!
//! `fan_in_fan_out` does not change the math here: PEFT sets it to false for `torch.nn.Linear`
//! targets (every Qwen2/Llama projection), so the tensors keep the `[R, K]` / `[M, R]` layout.
//! `layers_to_transform` (an index or a list) is honoured: LoRA exists only on those layers, so a
//! tensor of another layer is refused (PEFT would silently drop it); `layers_pattern` must be
//! absent, empty or `layers` (the decoder's `model.layers`). `lora_alpha / r` (or `/ sqrt(r)`)
//! must be finite and within the f16 range.
//!
//! Refused, each with an error naming the thing: a missing or non-`LORA` `peft_type`, `use_dora`, non-empty `modules_to_save`,
//! `bias` ≠ "none", `lora_bias`, `rank_pattern`/`alpha_pattern`, `layer_replication`,
//! `trainable_token_indices`, `target_parameters`, a target outside
//! {q,k,v,o,gate,up,down}_proj, a tensor key that is not a LoRA A/B of such a module, a layer
//! index ≥ the base's layer count, A/B missing its partner, rank ≠ `r`, shapes ≠ the base's
//! `[R, K]` / `[M, R]` (with `fan_in_fan_out` the message says so), a target module with no tensors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use half::f16;
use serde_json::{json, Value};

use crate::layout::projections;
use crate::st::StFile;
use crate::{FormatError, Kind, KstFile, KstWriter, Progress};

/// The 7 LoRA-targetable projection names.
pub const LORA_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Parsed and checked `adapter_config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub use_rslora: bool,
    pub fan_in_fan_out: bool,
    pub target_modules: BTreeSet<String>,
    /// `layers_to_transform`: the only layers PEFT puts LoRA on (`None`: all).
    pub layers_to_transform: Option<BTreeSet<usize>>,
}

impl LoraConfig {
    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    /// Parse `adapter_config.json`, refusing unsupported features (module docs).
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| FormatError::BadConfig(format!("adapter_config.json: {e}")))?;
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        let unsupported = |what: String| {
            Err(FormatError::Unsupported(format!(
                "adapter_config.json: {what}"
            )))
        };
        match get("peft_type") {
            Some(Value::String(t)) if t == "LORA" => {}
            Some(t) => return unsupported(format!("peft_type = {t} (only \"LORA\")")),
            None => return unsupported("no peft_type (only \"LORA\" adapters are read)".into()),
        }
        if get("use_dora").and_then(Value::as_bool) == Some(true) {
            return unsupported("use_dora (DoRA) is not supported".into());
        }
        if get("lora_bias").and_then(Value::as_bool) == Some(true) {
            return unsupported("lora_bias is not supported".into());
        }
        if let Some(b) = get("bias").and_then(Value::as_str) {
            if b != "none" {
                return unsupported(format!("bias = \"{b}\" (only \"none\")"));
            }
        }
        let non_empty = |x: &Value| match x {
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        };
        for key in [
            "modules_to_save",
            "rank_pattern",
            "alpha_pattern",
            "layer_replication",
            "trainable_token_indices",
            "target_parameters",
        ] {
            if get(key).is_some_and(non_empty) {
                return unsupported(format!("{key} is not supported"));
            }
        }
        let r = get("r")
            .and_then(Value::as_u64)
            .filter(|&r| r > 0 && r <= 4096)
            .ok_or_else(|| {
                FormatError::BadConfig(
                    "adapter_config.json: `r` must be an integer in 1..=4096".into(),
                )
            })? as usize;
        let alpha = get("lora_alpha")
            .and_then(Value::as_f64)
            .filter(|a| a.is_finite())
            .ok_or_else(|| {
                FormatError::BadConfig("adapter_config.json: missing `lora_alpha`".into())
            })?;
        let layers_to_transform = match get("layers_to_transform") {
            None => None,
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|x| x.as_u64().and_then(|i| usize::try_from(i).ok()))
                    .collect::<Option<BTreeSet<usize>>>()
                    .ok_or_else(|| {
                        FormatError::BadConfig(
                            "adapter_config.json: layers_to_transform entries must be layer indices"
                                .into(),
                        )
                    })?,
            ),
            Some(x) => Some(
                x.as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .map(|i| BTreeSet::from([i]))
                    .ok_or_else(|| {
                        FormatError::BadConfig(format!(
                            "adapter_config.json: layers_to_transform = {x} is not a layer index"
                        ))
                    })?,
            ),
        };
        // PEFT finds the layer index after `<pattern>.`; the decoder's list is `model.layers`.
        match get("layers_pattern") {
            None => {}
            Some(Value::String(p)) if p.is_empty() || p == "layers" => {}
            Some(Value::Array(a))
                if a.iter().all(|p| p.as_str().is_some_and(|p| p == "layers")) => {}
            Some(p) => {
                return unsupported(format!(
                    "layers_pattern = {p} (the decoder layers are `model.layers`)"
                ))
            }
        }
        let target_modules: BTreeSet<String> = match get("target_modules") {
            Some(Value::String(s)) if s == "all-linear" => {
                LORA_TARGETS.iter().map(|s| s.to_string()).collect()
            }
            Some(Value::String(s)) => {
                return unsupported(format!("target_modules regex `{s}` (give a list)"))
            }
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        FormatError::BadConfig("target_modules entries must be strings".into())
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(FormatError::BadConfig(
                    "adapter_config.json: missing `target_modules`".into(),
                ))
            }
        };
        if let Some(bad) = target_modules
            .iter()
            .find(|m| !LORA_TARGETS.contains(&m.as_str()))
        {
            return unsupported(format!(
                "target module `{bad}` (supported: {})",
                LORA_TARGETS.join(", ")
            ));
        }
        if target_modules.is_empty() {
            return Err(FormatError::BadConfig(
                "adapter_config.json: empty target_modules".into(),
            ));
        }
        let cfg = LoraConfig {
            r,
            alpha,
            use_rslora: get("use_rslora").and_then(Value::as_bool).unwrap_or(false),
            fan_in_fan_out: get("fan_in_fan_out")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            target_modules,
            layers_to_transform,
        };
        let scale = cfg.scale();
        if !(scale.is_finite() && scale.abs() <= f64::from(f16::MAX.to_f32())) {
            return Err(FormatError::BadConfig(format!(
                "adapter_config.json: lora_alpha / r = {scale} is outside the f16 range"
            )));
        }
        Ok(cfg)
    }
}

/// Split a PEFT key into (layer, parent, proj, "A"|"B").
fn parse_key(key: &str) -> Option<(usize, &str, &str, &str)> {
    let rest = key.strip_prefix("base_model.model.model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (parent, rest) = rest.split_once('.')?;
    let (proj, rest) = rest.split_once('.')?;
    let ab = match rest {
        "lora_A.weight" => "A",
        "lora_B.weight" => "B",
        _ => return None,
    };
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) || layer.len() > 6 {
        return None;
    }
    Some((layer.parse().ok()?, parent, proj, ab))
}

/// Convert the PEFT adapter dir `dir` against `base` into the adapter `.kst` `out`.
pub fn convert_peft(
    dir: &Path,
    base: &KstFile,
    out: &Path,
    progress: Progress,
) -> Result<(), FormatError> {
    let cfg_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| FormatError::io(&cfg_path, e))?;
    let lc = LoraConfig::from_json(&text)?;
    let bcfg = base
        .config()
        .map_err(|_| FormatError::BaseMismatch("--base must be a model .kst".into()))?;
    if base.kind() != Kind::Model {
        return Err(FormatError::BaseMismatch(
            "--base must be a model .kst".into(),
        ));
    }
    let st = StFile::open(&dir.join("adapter_model.safetensors"))?;
    let dims: BTreeMap<&str, (&str, usize, usize)> = projections(bcfg)
        .iter()
        .map(|&(p, parent, m, k)| (p, (parent, m, k)))
        .collect();

    // (layer, proj) → [A key, B key]
    let mut pairs: BTreeMap<(usize, &str), [Option<String>; 2]> = BTreeMap::new();
    let names = st.names();
    for key in &names {
        let (layer, parent, proj, ab) = parse_key(key).ok_or_else(|| {
            FormatError::Unsupported(format!(
                "adapter tensor `{key}` is not a LoRA A/B of a decoder projection"
            ))
        })?;
        let &(want_parent, _, _) = dims.get(proj).ok_or_else(|| {
            FormatError::Unsupported(format!(
                "adapter tensor `{key}`: module `{proj}` is not supported"
            ))
        })?;
        if parent != want_parent {
            return Err(FormatError::Unsupported(format!(
                "adapter tensor `{key}`: `{proj}` lives under `{want_parent}`"
            )));
        }
        if !lc.target_modules.contains(proj) {
            return Err(FormatError::BadConfig(format!(
                "adapter tensor `{key}`: `{proj}` is not in target_modules"
            )));
        }
        if let Some(allowed) = &lc.layers_to_transform {
            if !allowed.contains(&layer) {
                return Err(FormatError::BadConfig(format!(
                    "adapter tensor `{key}`: layer {layer} is not in layers_to_transform {allowed:?}"
                )));
            }
        }
        if layer >= bcfg.num_hidden_layers {
            return Err(FormatError::BaseMismatch(format!(
                "adapter tensor `{key}`: layer {layer} but the base has {} layers",
                bcfg.num_hidden_layers
            )));
        }
        let proj = LORA_TARGETS
            .iter()
            .find(|t| **t == proj)
            .copied()
            .unwrap_or("");
        pairs.entry((layer, proj)).or_default()[usize::from(ab == "B")] = Some(key.clone());
    }
    for t in &lc.target_modules {
        if !pairs.keys().any(|(_, p)| p == t) {
            return Err(FormatError::MissingTensor(format!(
                "lora_A/lora_B for target module `{t}` (no layer has it)"
            )));
        }
    }
    let total: u64 = names
        .iter()
        .map(|n| st.bytes(n).map_or(0, |b| b.len() as u64))
        .sum();
    let mut w = KstWriter::create(out, Kind::Adapter)?;
    w.set_base_hash(base.header_hash());
    let layers: BTreeSet<usize> = pairs.keys().map(|(l, _)| *l).collect();
    w.set_meta(
        "adapter",
        json!({"r": lc.r, "alpha": lc.alpha, "use_rslora": lc.use_rslora, "scale": lc.scale(),
               "target_modules": lc.target_modules, "layers": layers}),
    );
    let mut done = 0u64;
    progress(done, total);
    for ((layer, proj), [a, b]) in &pairs {
        let (parent, m, k) = dims[proj];
        let base_name = format!("model.layers.{layer}.{parent}.{proj}");
        for (ab, key, want) in [("A", a, [lc.r, k]), ("B", b, [m, lc.r])] {
            let key = key.as_ref().ok_or_else(|| {
                FormatError::MissingTensor(format!(
                    "{base_name}.lora_{ab} (its partner is present)"
                ))
            })?;
            let (_, shape) = st
                .info(key)
                .ok_or_else(|| FormatError::MissingTensor(key.clone()))?;
            if shape != want {
                let rank = if ab == "A" {
                    shape.first()
                } else {
                    shape.get(1)
                };
                let what = if shape == [want[1], want[0]] {
                    let ff = if lc.fan_in_fan_out {
                        " (fan_in_fan_out = true)"
                    } else {
                        ""
                    };
                    format!("the required [R, K] / [M, R] orientation: A/B are transposed{ff}")
                } else if shape.len() == 2 && rank != Some(&lc.r) {
                    format!(
                        "r = {} in adapter_config.json (rank in tensors differs)",
                        lc.r
                    )
                } else {
                    format!("the base's {proj} [M = {m}, K = {k}] with r = {}", lc.r)
                };
                return Err(FormatError::ShapeMismatch {
                    name: key.clone(),
                    found: shape.to_vec(),
                    expected: want.to_vec(),
                    what,
                });
            }
            let vals = st.to_f32(key)?;
            if let Some(i) = vals.iter().position(|x| !x.is_finite()) {
                return Err(FormatError::bad_tensor(
                    key,
                    format!("non-finite value at element {i}"),
                ));
            }
            let h: Vec<f16> = vals.iter().map(|&x| f16::from_f32(x)).collect();
            if h.iter().any(|x| !x.is_finite()) {
                return Err(FormatError::bad_tensor(key, "value overflows f16"));
            }
            w.add_f16(&format!("{base_name}.lora_{ab}"), &want, &h)?;
            done += st.bytes(key)?.len() as u64;
            progress(done, total);
        }
    }
    w.finish()
}
