//! Any `adapter_config.json` + `adapter_model.safetensors` pair → `convert_peft` against the tiny
//! Qwen2 base must return Ok or a typed error, never panic; an adapter it writes must open,
//! verify and dequantize. Input framing: `kestrel_formats_fuzz::split_two`.
#![no_main]

use kestrel_formats::{convert_peft, Kind, KstFile};
use kestrel_formats_fuzz::{check_output, scratch, split_two, tiny_base};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch("peft"))
}

fuzz_target!(|data: &[u8]| {
    let Some((cfg, st)) = split_two(data) else {
        return;
    };
    let base = tiny_base();
    let dir = dir();
    std::fs::write(dir.join("adapter_config.json"), cfg).expect("write config");
    std::fs::write(dir.join("adapter_model.safetensors"), st).expect("write safetensors");
    let out = dir.join("out.kst");
    let _ = std::fs::remove_file(&out);
    if convert_peft(dir, base, &out, &mut |_, _| {}).is_ok() {
        check_output(&out);
        let f = KstFile::open(&out).expect("reopen");
        assert_eq!(f.kind(), Kind::Adapter);
        assert_eq!(f.base_hash(), Some(base.header_hash().as_str()));
    }
});
