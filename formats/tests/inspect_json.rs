//! `inspect --json` stability: a golden summary of a deterministic file. If this fails after a
//! deliberate format change, update the golden (and FORMAT.md) in the same commit.

mod common;

use common::TempDir;
use kestrel_formats::inspect::summary_json;
use kestrel_formats::{quantize_w4, Kind, KstFile, KstWriter};
use serde_json::json;

#[test]
fn summary_matches_golden_and_is_path_independent() {
    let d = TempDir::new("inspect");
    let write = |name: &str| {
        let p = d.join(name);
        let mut w = KstWriter::create(&p, Kind::Head).unwrap();
        w.set_base_hash("0123456789abcdef".into());
        w.set_meta(
            "head",
            json!({"kind": "verifier", "pooling": "last", "labels": ["score"]}),
        );
        let vals: Vec<f32> = (0..64).map(|i| i as f32 / 64.0 - 0.5).collect();
        w.add_w4("weight", &quantize_w4(&vals, 1, 64, 32, false).unwrap())
            .unwrap();
        w.add_f32("bias", &[1], &[0.25]).unwrap();
        w.finish().unwrap();
        summary_json(&KstFile::open(&p).unwrap())
    };
    let s = write("a.kst");
    assert_eq!(
        s,
        write("b.kst"),
        "same content in another file gives the same summary"
    );
    let golden = json!({
        "format_version": 1,
        "kind": "head",
        "header_hash": "689accb2523dc3f0",
        "base_hash": "0123456789abcdef",
        "config": null,
        "meta": {"head": {"kind": "verifier", "labels": ["score"], "pooling": "last"}},
        "tokenizer": null,
        "chat_template": null,
        "tensors": [
            {"name": "weight", "dtype": "w4", "shape": [1, 64], "group_size": 32, "bytes": 36,
             "crc32": {"data": "adf2538f", "scales": "76400418"}},
            {"name": "bias", "dtype": "f32", "shape": [1], "group_size": null, "bytes": 4,
             "crc32": {"data": "dba65afc"}}
        ],
        "totals": {"tensors": 2, "parameters": 65, "bytes": 40, "bytes_by_dtype": {"f32": 4, "w4": 36}}
    });
    assert_eq!(
        serde_json::to_string_pretty(&s).unwrap(),
        serde_json::to_string_pretty(&golden).unwrap()
    );
}
