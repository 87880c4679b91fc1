//! `.kst` model → HF directory (the inverse of `hf::convert_hf`, with dequantized f32 weights).
//!
//! Output: `config.json` (`ModelConfig::to_hf_config_json`), `model.safetensors` (every tensor
//! as F32 — W4/W8 dequantized exactly per the layout formulas — under its HF name, in file
//! order), `tokenizer.json` (when embedded) and `tokenizer_config.json` (`chat_template`, when
//! embedded). The safetensors file is streamed one tensor at a time (memory: one f32 tensor).
//! Re-converting an export of an F32/F16 model reproduces the weights bit-exactly; an export of
//! a symmetric W4 model re-quantizes to the same nibbles and scales (each group's absmax element
//! sits exactly at ±7·s).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::{FormatError, Kind, KstFile, Progress};

/// Export the model `f` into directory `dir` (created if needed).
pub fn export_hf(f: &KstFile, dir: &Path, progress: Progress) -> Result<(), FormatError> {
    if f.kind() != Kind::Model {
        return Err(FormatError::MissingSection(format!(
            "export needs a model file, this is a {} file",
            f.kind().as_str()
        )));
    }
    let cfg = f.config()?;
    std::fs::create_dir_all(dir).map_err(|e| FormatError::io(dir, e))?;
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| FormatError::io(&p, e))
    };
    write("config.json", pretty(&cfg.to_hf_config_json())?)?;
    if let Some(t) = f.tokenizer_json() {
        write("tokenizer.json", t.to_string())?;
    }
    let mut tc = Map::new();
    if let Some(t) = f.chat_template() {
        tc.insert("chat_template".into(), t.into());
    }
    write("tokenizer_config.json", pretty(&Value::Object(tc))?)?;

    // safetensors header: names in file order, F32, contiguous offsets.
    let mut header = Map::new();
    header.insert(
        "__metadata__".into(),
        json!({"format": "pt", "source": "kestrel export"}),
    );
    let mut offset = 0u64;
    let mut total = 0u64;
    for t in &f.header().tensors {
        let n: u64 = t.shape.iter().map(|&d| d as u64).product::<u64>() * 4;
        header.insert(
            t.name.clone(),
            json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
        total += t.total_bytes();
    }
    let mut hbytes = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| FormatError::HeaderJson(e.to_string()))?;
    while hbytes.len() % 8 != 0 {
        hbytes.push(b' ');
    }
    let path = dir.join("model.safetensors");
    let io = |e| FormatError::io(&path, e);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
    out.write_all(&(hbytes.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(&hbytes).map_err(io)?;
    let mut done = 0u64;
    progress(done, total);
    for t in &f.header().tensors {
        let vals = f.tensor(&t.name)?.to_f32_vec()?;
        out.write_all(bytemuck::cast_slice(&vals)).map_err(io)?;
        done += t.total_bytes();
        progress(done, total);
    }
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(())
}

fn pretty(v: &Value) -> Result<String, FormatError> {
    serde_json::to_string_pretty(v).map_err(|e| FormatError::HeaderJson(e.to_string()))
}
