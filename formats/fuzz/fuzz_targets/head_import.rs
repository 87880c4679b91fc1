//! Any `head.json` + `head.safetensors` pair → `convert_head` against the tiny Qwen2 base must
//! return Ok or a typed error, never panic; a head it writes must open, verify and dequantize
//! with `weight` [C, hidden] and `bias` [C]. Input framing: `kestrel_formats_fuzz::split_two`.
#![no_main]

use kestrel_formats::{convert_head, Kind, KstFile};
use kestrel_formats_fuzz::{check_output, scratch, split_two, tiny_base};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch("head"))
}

fuzz_target!(|data: &[u8]| {
    let Some((spec, st)) = split_two(data) else {
        return;
    };
    let base = tiny_base();
    let dir = dir();
    std::fs::write(dir.join("head.json"), spec).expect("write head.json");
    std::fs::write(dir.join("head.safetensors"), st).expect("write safetensors");
    let out = dir.join("out.kst");
    let _ = std::fs::remove_file(&out);
    if convert_head(dir, base, &out, &mut |_, _| {}).is_ok() {
        check_output(&out);
        let f = KstFile::open(&out).expect("reopen");
        assert_eq!(f.kind(), Kind::Head);
        let hidden = base.config().expect("base config").hidden_size;
        let w = f.tensor("weight").expect("weight");
        let b = f.tensor("bias").expect("bias");
        assert_eq!(w.shape.get(1), Some(&hidden));
        assert_eq!(b.shape, &w.shape[..1]);
    }
});
