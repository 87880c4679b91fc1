//! GGUF byte-level BPE vocabulary → an equivalent HF `tokenizer.json`.
//!
//! Input keys: `tokenizer.ggml.model` (must be `gpt2`: byte-level BPE), `.tokens`, `.merges`
//! (`"a b"` strings), `.token_type` (optional), `.pre`, `.bos_token_id`, `.add_bos_token`,
//! `.add_eos_token`, `.eos_token_id`. Output mirrors what HF transformers builds from a GGUF
//! (`integrations/gguf/gguf_tokenizer_mapping.py`, `byte_level_tokenizer`):
//! - model: BPE over the tokens (ids = positions; a token that uses characters outside GPT-2's
//!   byte alphabet is respelled byte by byte, as HF does; a duplicated token keeps its last id),
//!   merges in file order, no unk, no byte fallback; decoder ByteLevel.
//! - added tokens: CONTROL (`token_type` 3) tokens spelled in the byte alphabet are special;
//!   USER_DEFINED (4) tokens that are vocabulary keys are added, not special. Both match whole.
//! - pre-tokenizer per `tokenizer.ggml.pre` (llama.cpp's `llama-vocab.cpp` regexes):
//!   `default` / `gpt2` → ByteLevel with GPT-2's regex; `smollm` (like llama.cpp's
//!   STARCODER-family) → `Digits(individual)` then ByteLevel with GPT-2's regex — the
//!   pre-tokenizer SmolLM2's own tokenizer.json uses; `qwen2` (and `deepseek-r1-qwen`) →
//!   NFC normalizer + Split(Qwen2 regex, isolated) + ByteLevel without regex; `llama-bpe` /
//!   `llama3` / `llama-v3` → Split(Llama-3 regex) + ByteLevel without regex.
//!   Any other `pre` is `GgufError::UnsupportedPreTokenizer` — never a silent fallback.
//!   Two deliberate differences from transformers 5.x: it has no split for `smollm` (so it
//!   tokenizes e.g. `"a  1"` differently from llama.cpp and SmolLM2's original tokenizer), and
//!   its `qwen2` tokenizer lacks the NFC normalizer of Qwen's tokenizer.json. Kestrel follows
//!   llama.cpp / the original tokenizers in both (tested in `tests/tests/real_smollm2_formats.rs`).
//! - post-processor: TemplateProcessing adding BOS / EOS when `add_bos_token` /
//!   `add_eos_token` are true, otherwise ByteLevel (offsets only).

use serde_json::{json, Map, Value};

use super::error::GgufError;
use super::parse::GgufFile;
use super::value::{wrong, MetaLookup, MetaValue};

/// `(?i:'s|...)` contractions, letters with one leading non-letter, single digits, ...
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// GPT-2's `bytes_to_unicode`: the printable character that stands for each byte.
pub fn byte_alphabet() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in map.iter_mut().enumerate() {
        let printable =
            (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        // Every code point here is < 0x200, a valid scalar value.
        *slot = char::from_u32(cp).unwrap_or('\u{fffd}');
    }
    map
}

fn pre_tokenizer(pre: &str) -> Result<(Value, Value), GgufError> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |regex: &str| json!({"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false});
    Ok(match pre {
        "default" | "gpt2" => (Value::Null, byte_level(true)),
        "smollm" => (
            Value::Null,
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        ),
        "qwen2" | "deepseek-r1-qwen" => (
            json!({"type": "NFC"}),
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]}),
        ),
        "llama-bpe" | "llama3" | "llama-v3" => (
            Value::Null,
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]}),
        ),
        other => return Err(GgufError::UnsupportedPreTokenizer(other.to_owned())),
    })
}

fn strings<'a>(g: &GgufFile<'a>, key: &str) -> Result<Vec<&'a str>, GgufError> {
    g.req_array(key)?
        .iter()
        .map(|v| v.as_str().ok_or_else(|| wrong(key, "array of strings")))
        .collect()
}

/// The HF `tokenizer.json` (as a JSON string) equivalent to the GGUF's vocabulary.
pub fn tokenizer_json(g: &GgufFile<'_>) -> Result<String, GgufError> {
    let model = g.req_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(GgufError::UnsupportedTokenizer(model.to_owned()));
    }
    let pre = g.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
    let (normalizer, pre_tokenizer) = pre_tokenizer(pre)?;
    let tokens = strings(g, "tokenizer.ggml.tokens")?;
    let types: Vec<i64> = match g.meta("tokenizer.ggml.token_type") {
        None => vec![1; tokens.len()],
        Some(MetaValue::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| wrong("tokenizer.ggml.token_type", "array of integers"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(wrong("tokenizer.ggml.token_type", "array of integers")),
    };
    if types.len() != tokens.len() {
        return Err(GgufError::Tokenizer(format!(
            "{} token types for {} tokens",
            types.len(),
            tokens.len()
        )));
    }

    let alphabet = byte_alphabet();
    let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    let mut vocab = Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, (&tok, &ty)) in tokens.iter().zip(&types).enumerate() {
        let spelled = if in_alphabet(tok) {
            tok.to_owned()
        } else {
            tok.bytes().map(|b| alphabet[b as usize]).collect()
        };
        vocab.insert(spelled, json!(id));
        if ty == TOKEN_TYPE_CONTROL && in_alphabet(tok) {
            added.push(added_token(id, tok, true));
        }
    }
    for (id, (&tok, &ty)) in tokens.iter().zip(&types).enumerate() {
        if ty == TOKEN_TYPE_USER_DEFINED && vocab.get(tok) == Some(&json!(id)) {
            added.push(added_token(id, tok, false));
        }
    }

    let merges = strings(g, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => Ok(json!([a, b])),
            _ => Err(GgufError::Tokenizer(format!(
                "merge {m:?} is not two tokens separated by one space"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let tj = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor(g, &tokens)?,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": merges,
        },
    });
    serde_json::to_string(&tj).map_err(|e| GgufError::Tokenizer(e.to_string()))
}

fn added_token(id: usize, content: &str, special: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": special})
}

/// BOS/EOS insertion per `add_bos_token` / `add_eos_token` (both default off for gpt2 vocabularies).
fn post_processor(g: &GgufFile<'_>, tokens: &[&str]) -> Result<Value, GgufError> {
    let add_bos = g.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
    let add_eos = g.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    if !add_bos && !add_eos {
        return Ok(
            json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}),
        );
    }
    let special = |key: &str| -> Result<(String, usize), GgufError> {
        let id = g.req_u64(key)?;
        let tok = usize::try_from(id)
            .ok()
            .and_then(|i| tokens.get(i).map(|t| (t.to_string(), i)));
        tok.ok_or_else(|| GgufError::BadValue {
            key: key.to_owned(),
            why: format!("{id} is not a token id"),
        })
    };
    let bos = add_bos
        .then(|| special("tokenizer.ggml.bos_token_id"))
        .transpose()?;
    let eos = add_eos
        .then(|| special("tokenizer.ggml.eos_token_id"))
        .transpose()?;
    let piece = |seq: &str, type_id: u32| {
        let mut out = Vec::new();
        if let Some((t, _)) = &bos {
            out.push(json!({"SpecialToken": {"id": t, "type_id": type_id}}));
        }
        out.push(json!({"Sequence": {"id": seq, "type_id": type_id}}));
        if let Some((t, _)) = &eos {
            out.push(json!({"SpecialToken": {"id": t, "type_id": type_id}}));
        }
        out
    };
    let single = piece("A", 0);
    let pair: Vec<Value> = piece("A", 0).into_iter().chain(piece("B", 1)).collect();
    let mut specials = Map::new();
    for (t, id) in bos.iter().chain(eos.iter()) {
        specials.insert(t.clone(), json!({"id": t, "ids": [id], "tokens": [t]}));
    }
    Ok(
        json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials}),
    )
}

/// `tokenizer.chat_template`, if the file has one.
pub fn chat_template<'a>(g: &GgufFile<'a>) -> Result<Option<&'a str>, GgufError> {
    g.opt_str("tokenizer.chat_template")
}
