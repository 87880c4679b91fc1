//! Hostile model files cost no memory: sizes a header claims are judged against the device before
//! a byte of tensor data is read or a buffer is allocated.

use kestrel::{Engine, EngineError, EngineOptions};
use kestrel_formats::{Kind, KstFile, KstWriter};
use kestrel_tests::*;

/// Peak resident set of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn a_header_claiming_huge_dimensions_is_refused_before_any_allocation() {
    let dir = fixtures().join("tiny/qwen2_tied_gqa");
    let r = json(&dir.join("ref.json"));
    let tiny = convert_gguf(
        &dir.join(r["gguf"]["Q4_0"]["file"].as_str().unwrap()),
        "hostile-base",
    );
    let base = KstFile::open(&tiny).unwrap();
    let mut config = base.config().unwrap().clone();
    config.intermediate_size = 1 << 24;
    config.vocab_size = 1 << 24;
    let path = scratch_dir("hostile").join("huge_dims.kst");
    let mut w = KstWriter::create(&path, Kind::Model).unwrap();
    w.set_config(config);
    w.set_tokenizer_json(base.tokenizer_json().unwrap().to_string());
    w.finish().unwrap();

    let before = peak_rss();
    let err = Engine::load(&path, EngineOptions::default())
        .err()
        .expect("refused");
    let grown = peak_rss().saturating_sub(before);
    assert!(
        matches!(&err, EngineError::Unsupported(m) if m.contains("more than this device binds")),
        "{err}"
    );
    assert!(grown < 300 << 20, "peak RSS grew by {grown} bytes");
}
