//! Any bytes as user text → `encode_chat` (tiny Qwen tokenizer, ChatML-style templates) must
//! never panic, and the text must never become a control token: the ids hold exactly the special
//! tokens a benign message gets, or (a template that rewrites content) a typed refusal when the
//! text spells a special token. Streaming the ids through `StreamDecoder` must give a prefix of
//! their full decoding, and all of it unless the decoding ends mid-character.
//! Input: byte 0 picks the template, the rest (lossy UTF-8) is the user message.
#![no_main]

use kestrel::{encode_chat, ChatTemplate, ContentSpecials, Message, StreamDecoder, Tokenizer};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const TEMPLATES: [&str; 3] = [
    // The tiny Qwen2 fixture's own template (tokenizer_config.json).
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    // Qwen2.5-style: a default system turn when the conversation has none.
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    // Rewrites content, so special-token text must be refused rather than kept.
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
];

struct Fixture {
    tok: Tokenizer,
    templates: Vec<ChatTemplate>,
    specials: Vec<u32>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let json = include_str!("../../../tests/fixtures/tiny/qwen2_tied_gqa/hf/tokenizer.json");
        let tok = Tokenizer::from_json(json).expect("fixture tokenizer");
        let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
            .iter()
            .map(|s| tok.token_to_id(s).expect("special id"))
            .collect();
        let templates = TEMPLATES
            .iter()
            .map(|s| ChatTemplate::new(s, "", "<|im_end|>").expect("template"))
            .collect();
        Fixture {
            tok,
            templates,
            specials,
        }
    })
}

fn counts(f: &Fixture, ids: &[u32]) -> Vec<usize> {
    f.specials
        .iter()
        .map(|s| ids.iter().filter(|&&i| i == *s).count())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let t = &f.templates[pick as usize % f.templates.len()];
    let text = String::from_utf8_lossy(text);
    let benign = [Message::new("user", "x")];
    let want = counts(
        f,
        &encode_chat(&f.tok, t, &benign, ContentSpecials::AsText).expect("benign"),
    );
    let msgs = [Message::new("user", &text)];
    match encode_chat(&f.tok, t, &msgs, ContentSpecials::AsText) {
        Ok(ids) => {
            assert_eq!(counts(f, &ids), want, "user text became a control token");
            if data.len() <= 512 {
                let full = f.tok.decode(&ids, true).expect("decode");
                let mut streamed = String::new();
                let mut dec = StreamDecoder::new();
                for &id in &ids {
                    if let Some(d) = dec.push(&f.tok, id).expect("stream") {
                        streamed.push_str(&d);
                    }
                }
                assert!(full.starts_with(&streamed), "{streamed:?} vs {full:?}");
                if !full.ends_with('\u{FFFD}') {
                    assert_eq!(streamed, full);
                }
            }
        }
        Err(e) => assert!(
            f.tok.has_special_text(&text) && pick as usize % TEMPLATES.len() == 2,
            "{e}"
        ),
    }
});
