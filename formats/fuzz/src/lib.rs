//! Helpers shared by the fuzz targets: the two-file input framing, a scratch directory, and the
//! base model the PEFT / head importers are checked against.
//!
//! Two-file inputs (`peft_import`, `head_import`) are `[u32 LE n][n bytes: the JSON][rest: the
//! safetensors file]`; [`pack_two`] builds one from real files (the seed corpus).

use std::path::PathBuf;
use std::sync::OnceLock;

use kestrel_formats::{Kind, KstFile, KstWriter, ModelConfig};

/// Split a two-file input; `None` when it is shorter than its length word says.
pub fn split_two(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let rest = &data[4..];
    (n <= rest.len()).then(|| rest.split_at(n))
}

/// The inverse of [`split_two`].
pub fn pack_two(json: &[u8], st: &[u8]) -> Vec<u8> {
    let mut v = (json.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(json);
    v.extend_from_slice(st);
    v
}

/// A per-process scratch directory (in /dev/shm when there is one: a file write per input).
pub fn scratch(name: &str) -> PathBuf {
    let root = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = root.join(format!("kestrel-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The tiny Qwen2 fixture's config as a config-only model `.kst` (all the importers read of a
/// base: its config and header hash).
pub fn tiny_base() -> &'static KstFile {
    static BASE: OnceLock<KstFile> = OnceLock::new();
    BASE.get_or_init(|| {
        let json = include_str!("../../../tests/fixtures/tiny/qwen2_tied_gqa/hf/config.json");
        let cfg = ModelConfig::from_hf_config_json(json).expect("fixture config");
        let path = scratch("base").join("base.kst");
        let mut w = KstWriter::create(&path, Kind::Model).expect("base writer");
        w.set_config(cfg);
        w.finish().expect("base kst");
        KstFile::open(&path).expect("base open")
    })
}

/// Open an importer's output and read every tensor back: a file the importer wrote must load.
pub fn check_output(path: &std::path::Path) {
    let f = KstFile::open(path).unwrap_or_else(|e| panic!("importer output does not open: {e}"));
    f.verify_checksums()
        .unwrap_or_else(|e| panic!("importer output checksums: {e}"));
    let names: Vec<String> = f.tensor_names().map(str::to_string).collect();
    for n in names {
        let t = f.tensor(&n).unwrap_or_else(|e| panic!("tensor {n}: {e}"));
        t.to_f32_vec().unwrap_or_else(|e| panic!("tensor {n}: {e}"));
    }
}
