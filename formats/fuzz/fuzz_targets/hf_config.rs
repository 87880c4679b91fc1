//! Any text → `ModelConfig::from_hf_config_json` / `LoraConfig::from_json` / `HeadSpec::from_json`
//! must return Ok or a typed error; an Ok config always validates.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(c) = kestrel_formats::ModelConfig::from_hf_config_json(s) {
            assert!(c.validate().is_ok());
        }
        let _ = kestrel_formats::peft::LoraConfig::from_json(s);
        let _ = kestrel_formats::head::HeadSpec::from_json(s);
    }
});
