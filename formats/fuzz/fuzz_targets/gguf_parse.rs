//! Any bytes → `gguf::parse` must return Ok or a typed error, never panic; for a file that
//! parses, reading its config, tokenizer (→ `tokenizer.json`), chat template, tensor names and
//! small tensors' data must do the same.
#![no_main]

use kestrel_formats::gguf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = gguf::parse(data) else {
        return;
    };
    let config = gguf::model_config(&g);
    let _ = gguf::tokenizer_json(&g);
    let _ = gguf::chat_template(&g);
    for t in &g.tensors {
        if let Ok(c) = &config {
            let _ = gguf::map_name(t.name, c);
        }
        if t.n_elements <= 1 << 16 {
            let _ = gguf::ggml_dequantize(t.ty, g.data(t), t.n_elements as usize);
        }
    }
});
