//! Any bytes → `gguf::parse` must return Ok or a typed error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kestrel_formats::gguf::parse(data);
});
