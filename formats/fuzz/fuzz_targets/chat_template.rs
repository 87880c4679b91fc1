//! Any chat template text + messages → `ChatTemplate::new` / `render` / `encode_chat` (tiny Qwen
//! tokenizer) must return Ok or a typed error, never panic, hang or exhaust memory.
//! Input: parts separated by 0xFF (never in UTF-8): the template, then role, content, role, ...
#![no_main]

use kestrel::{encode_chat, ChatTemplate, ContentSpecials, Message, Tokenizer};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let json = include_str!("../../../tests/fixtures/tiny/qwen2_tied_gqa/hf/tokenizer.json");
        Tokenizer::from_json(json).expect("fixture tokenizer")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF).map(String::from_utf8_lossy);
    let Some(source) = parts.next() else {
        return;
    };
    let rest: Vec<_> = parts.collect();
    let messages: Vec<Message> = rest
        .chunks(2)
        .map(|c| Message::new(&c[0], c.get(1).map_or("", |s| s)))
        .collect();
    let Ok(t) = ChatTemplate::new(&source, "<|endoftext|>", "<|im_end|>") else {
        return;
    };
    let _ = t.render(&messages, false);
    if let Ok(text) = t.render(&messages, true) {
        if text.len() <= 1 << 16 {
            let _ = encode_chat(tokenizer(), &t, &messages, ContentSpecials::AsText);
        }
    }
});
