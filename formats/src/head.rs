//! Linear head directory (switcher / verifier) → head `.kst`, checked against its base model.
//!
//! Input: `head.safetensors` with exactly `weight` `[C, hidden]` and optionally `bias` `[C]`
//! (F32/F16/BF16), and `head.json` = `{"kind": "switcher"|"verifier", "pooling": "mean"|"last",
//! "labels": [C strings]}` (unknown fields refused).
//!
//! Output (`Kind::Head`): `base_hash` = the base's `header_hash`; meta `head` =
//! `{kind, pooling, labels, num_classes, hidden_size}` and, from [`write_head`] (what
//! `kestrel train-head` writes), an optional decision `threshold`; tensors `weight` `[C, hidden]` f32 and
//! `bias` `[C]` f32 (zeros when the input has none, so the engine always finds one).
//! Errors: hidden size ≠ the base's, label count ≠ C, bad bias shape, extra tensors, unknown
//! kind/pooling, non-finite values.

use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use crate::st::StFile;
use crate::{FormatError, Kind, KstFile, KstWriter, Progress};

/// `head.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    pub kind: String,
    pub pooling: String,
    pub labels: Vec<String>,
}

impl HeadSpec {
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        let s: HeadSpec = serde_json::from_str(text)
            .map_err(|e| FormatError::BadConfig(format!("head.json: {e}")))?;
        if !matches!(s.kind.as_str(), "switcher" | "verifier") {
            return Err(FormatError::Unsupported(format!(
                "head kind `{}` (switcher or verifier)",
                s.kind
            )));
        }
        if !matches!(s.pooling.as_str(), "mean" | "last") {
            return Err(FormatError::Unsupported(format!(
                "head pooling `{}` (mean or last)",
                s.pooling
            )));
        }
        if s.labels.is_empty() {
            return Err(FormatError::BadConfig(
                "head.json: labels must not be empty".into(),
            ));
        }
        Ok(s)
    }
}

fn finite(name: &str, v: Vec<f32>) -> Result<Vec<f32>, FormatError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(FormatError::bad_tensor(
            name,
            format!("non-finite value at element {i}"),
        )),
        None => Ok(v),
    }
}

/// Convert the head dir `dir` against `base` into the head `.kst` `out`.
pub fn convert_head(
    dir: &Path,
    base: &KstFile,
    out: &Path,
    progress: Progress,
) -> Result<(), FormatError> {
    let spec_path = dir.join("head.json");
    let text = std::fs::read_to_string(&spec_path).map_err(|e| FormatError::io(&spec_path, e))?;
    let spec = HeadSpec::from_json(&text)?;
    let hidden = base
        .config()
        .map_err(|_| FormatError::BaseMismatch("--base must be a model .kst".into()))?
        .hidden_size;
    let st = StFile::open(&dir.join("head.safetensors"))?;
    if let Some(extra) = st
        .names()
        .into_iter()
        .find(|n| n != "weight" && n != "bias")
    {
        return Err(FormatError::Unsupported(format!(
            "head tensor `{extra}` (only `weight` and `bias`)"
        )));
    }
    let (_, wshape) = st
        .info("weight")
        .ok_or_else(|| FormatError::MissingTensor("weight".into()))?;
    let c = spec.labels.len();
    if wshape != [c, hidden] {
        let what = if wshape.len() == 2 && wshape[1] != hidden {
            format!("the base's hidden_size {hidden}")
        } else {
            format!("head.json's {c} labels")
        };
        return Err(FormatError::ShapeMismatch {
            name: "weight".into(),
            found: wshape.to_vec(),
            expected: vec![c, hidden],
            what,
        });
    }
    let bias = match st.info("bias") {
        None => vec![0.0; c],
        Some((_, s)) if s == [c] => finite("bias", st.to_f32("bias")?)?,
        Some((_, s)) => {
            return Err(FormatError::ShapeMismatch {
                name: "bias".into(),
                found: s.to_vec(),
                expected: vec![c],
                what: "the weight's class count".into(),
            })
        }
    };
    let weight = finite("weight", st.to_f32("weight")?)?;
    let total = (weight.len() + bias.len()) as u64 * 4;
    progress(0, total);
    write_head(out, &base.header_hash(), &spec, &weight, &bias, None)?;
    progress(total, total);
    Ok(())
}

/// Writes a head `.kst` for the base with header hash `base_hash`: `weight` `[C, hidden]`,
/// `bias` `[C]` (C = `spec.labels.len()`), and optionally the decision `threshold` on the
/// positive class's probability (meta `head.threshold`; in (0, 1)).
pub fn write_head(
    out: &Path,
    base_hash: &str,
    spec: &HeadSpec,
    weight: &[f32],
    bias: &[f32],
    threshold: Option<f32>,
) -> Result<(), FormatError> {
    let c = spec.labels.len();
    if c == 0 || bias.len() != c || !weight.len().is_multiple_of(c) {
        return Err(FormatError::BadConfig(format!(
            "a head of {c} labels with {} weights and {} biases",
            weight.len(),
            bias.len()
        )));
    }
    let hidden = weight.len() / c;
    let weight = finite("weight", weight.to_vec())?;
    let bias = finite("bias", bias.to_vec())?;
    let mut meta = json!({"kind": spec.kind, "pooling": spec.pooling, "labels": spec.labels, "num_classes": c, "hidden_size": hidden});
    if let Some(t) = threshold {
        if !(t > 0.0 && t < 1.0) {
            return Err(FormatError::BadConfig(format!(
                "head threshold {t} is not in (0, 1)"
            )));
        }
        meta["threshold"] = json!(t);
    }
    let mut w = KstWriter::create(out, Kind::Head)?;
    w.set_base_hash(base_hash.to_string());
    w.set_meta("head", meta);
    w.add_f32("weight", &[c, hidden], &weight)?;
    w.add_f32("bias", &[c], &bias)?;
    w.finish()?;
    Ok(())
}
