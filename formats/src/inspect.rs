//! A stable JSON summary of a `.kst` file (what `kestrel inspect --json` prints).
//!
//! Contract: the output depends only on the file's bytes (never on its path or the clock);
//! object keys are emitted in a fixed order and `tensors` keeps file order, so the same file
//! always prints the same text. Shape:
//! `{format_version, kind, header_hash, base_hash, config, meta, tokenizer, chat_template,
//!   tensors: [{name, dtype, shape, group_size, bytes, crc32: {data, scales?, mins?}}],
//!   totals: {tensors, parameters, bytes, bytes_by_dtype: {dtype: bytes}}}`
//! where `tokenizer` / `chat_template` are `{bytes}` or null, crc32s are 8 hex digits.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::kst::VERSION;
use crate::KstFile;

/// Build the summary (see the module docs).
pub fn summary_json(f: &KstFile) -> Value {
    let h = f.header();
    let mut tensors = Vec::with_capacity(h.tensors.len());
    let mut by_dtype: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut params, mut bytes) = (0u64, 0u64);
    for t in &h.tensors {
        let mut crc = Map::new();
        for (array, r) in t.regions() {
            crc.insert(array.to_string(), format!("{:08x}", r.crc32).into());
        }
        let n: u64 = t.shape.iter().map(|&d| d as u64).product();
        params += n;
        bytes += t.total_bytes();
        *by_dtype.entry(t.dtype.as_str()).or_default() += t.total_bytes();
        tensors.push(json!({
            "name": t.name, "dtype": t.dtype.as_str(), "shape": t.shape, "group_size": t.group_size,
            "bytes": t.total_bytes(), "crc32": Value::Object(crc),
        }));
    }
    let text_info = |s: Option<&str>| s.map_or(Value::Null, |s| json!({"bytes": s.len()}));
    let meta: Map<String, Value> = h.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    json!({
        "format_version": VERSION,
        "kind": h.kind.as_str(),
        "header_hash": f.header_hash(),
        "base_hash": h.base_hash,
        "config": h.config,
        "meta": Value::Object(meta),
        "tokenizer": text_info(f.tokenizer_json()),
        "chat_template": text_info(f.chat_template()),
        "tensors": tensors,
        "totals": {"tensors": h.tensors.len(), "parameters": params, "bytes": bytes, "bytes_by_dtype": by_dtype},
    })
}
