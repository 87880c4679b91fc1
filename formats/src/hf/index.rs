//! `model.safetensors.index.json` parsing and shard-path confinement.
//!
//! Contract: [`parse_shard_index`] is pure (no filesystem; the fuzz target drives it) and accepts
//! `{"metadata": {...}?, "weight_map": {tensor: shard}}` where each shard is a *relative* path made
//! only of normal components (no `..`, no `.`, no root, no prefix, no backslash, not empty) ending
//! in `.safetensors`. [`resolve_shards`] then joins them to the model directory and requires each
//! to exist as a regular file.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::FormatError;

/// A validated shard index: tensor → shard, and the distinct shards in sorted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIndex {
    pub weight_map: BTreeMap<String, String>,
    pub shards: Vec<String>,
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
    weight_map: BTreeMap<String, String>,
}

/// Parse and validate the index JSON (see the module docs).
pub fn parse_shard_index(json: &str) -> Result<ShardIndex, FormatError> {
    let raw: RawIndex = serde_json::from_str(json).map_err(|e| FormatError::SafeTensors {
        path: PathBuf::from("model.safetensors.index.json"),
        reason: e.to_string(),
    })?;
    if raw.weight_map.is_empty() {
        return Err(FormatError::SafeTensors {
            path: PathBuf::from("model.safetensors.index.json"),
            reason: "empty weight_map".into(),
        });
    }
    let mut shards: Vec<String> = raw.weight_map.values().cloned().collect();
    shards.sort();
    shards.dedup();
    for s in &shards {
        check_relative(s)?;
    }
    Ok(ShardIndex {
        weight_map: raw.weight_map,
        shards,
    })
}

/// Reject any shard path that could leave the model directory.
pub fn check_relative(p: &str) -> Result<(), FormatError> {
    let bad = |reason: &str| FormatError::BadPath {
        path: p.to_string(),
        reason: reason.to_string(),
    };
    if p.is_empty() || p.contains('\\') || p.contains('\0') {
        return Err(bad("empty, or contains a backslash or NUL"));
    }
    if !p.ends_with(".safetensors") {
        return Err(bad("shard must be a .safetensors file"));
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(bad(
            "empty, `.` or `..` path components (shards must stay in the model directory)",
        ));
    }
    for c in Path::new(p).components() {
        match c {
            Component::Normal(_) => {}
            Component::ParentDir => return Err(bad("`..` escapes the model directory")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("absolute paths are not allowed"))
            }
            Component::CurDir => return Err(bad("`.` components are not allowed")),
        }
    }
    Ok(())
}

/// Join each shard to `dir` and require it to exist as a regular file.
pub fn resolve_shards(dir: &Path, index: &ShardIndex) -> Result<Vec<PathBuf>, FormatError> {
    index
        .shards
        .iter()
        .map(|s| {
            check_relative(s)?;
            let p = dir.join(s);
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => Ok(p),
                Ok(_) => Err(FormatError::BadPath {
                    path: s.clone(),
                    reason: "not a regular file".into(),
                }),
                Err(_) => Err(FormatError::BadPath {
                    path: s.clone(),
                    reason: "missing shard".into(),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_and_rejects_escaping_shards() {
        let ok = r#"{"metadata":{"total_size":8},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}"#;
        let idx = parse_shard_index(ok).unwrap();
        assert_eq!(idx.shards.len(), 2);
        assert_eq!(idx.weight_map["b"], "model-00002-of-00002.safetensors");
        for bad in [
            "../x.safetensors",
            "/etc/x.safetensors",
            "a/../../x.safetensors",
            "./x.safetensors",
            "x.bin",
            "",
            "a\\..\\x.safetensors",
        ] {
            let j = format!(
                r#"{{"weight_map":{{"t":{}}}}}"#,
                serde_json::Value::from(bad)
            );
            assert!(
                matches!(parse_shard_index(&j), Err(FormatError::BadPath { .. })),
                "{bad}"
            );
        }
        assert!(parse_shard_index(r#"{"weight_map":{}}"#).is_err());
        assert!(parse_shard_index("[1,2]").is_err());
    }
}
