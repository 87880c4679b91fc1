//! Any text → `parse_shard_index` must return Ok or a typed error; Ok never names a shard path
//! that could leave the model directory.
#![no_main]

use kestrel_formats::hf::parse_shard_index;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(idx) = parse_shard_index(s) {
            for shard in &idx.shards {
                assert!(!shard.split('/').any(|c| c == ".." || c == "."), "{shard}");
                assert!(!shard.starts_with('/') && !shard.contains('\\'), "{shard}");
            }
        }
    }
});
