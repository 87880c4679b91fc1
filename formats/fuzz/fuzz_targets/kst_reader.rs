//! Any bytes → `KstFile::from_bytes` must return Ok or a typed error, never panic; a file that
//! opens must serve every tensor view, dequantize it and verify checksums without panicking.
#![no_main]

use kestrel_formats::KstFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = KstFile::from_bytes(data.to_vec()) {
        let _ = f.verify_checksums();
        let names: Vec<String> = f.tensor_names().map(str::to_string).collect();
        for n in names {
            if let Ok(t) = f.tensor(&n) {
                if t.num_elements() <= 1 << 16 {
                    let _ = t.to_f32_vec();
                }
            }
        }
        let _ = kestrel_formats::inspect::summary_json(&f);
    }
});
