//! What a decode step reads from the model file.
//!
//! Contract:
//! - `decode_bytes_per_token`: the weight bytes one decode step streams — every tensor's arrays
//!   (data + scales + mins) once, except that with an untied `lm_head` only one row of
//!   `model.embed_tokens.weight` is read (the lookup), while a tied embedding is read whole (it is
//!   the lm_head). KV-cache and activation traffic are not weights and are not counted.

use anyhow::Context;
use kestrel_formats::{KstFile, ModelConfig, TensorView};

const EMBED: &str = "model.embed_tokens.weight";
const LM_HEAD: &str = "lm_head.weight";

fn view_bytes(v: &TensorView<'_>) -> u64 {
    let q = v.quant.as_ref();
    (v.data.len() + q.map_or(0, |q| q.scales.len() + q.mins.map_or(0, <[u8]>::len))) as u64
}

/// Weight bytes read per decoded token (see the module contract).
pub fn decode_bytes_per_token(file: &KstFile, cfg: &ModelConfig) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for name in file.tensor_names() {
        total += view_bytes(&file.tensor(name)?);
    }
    if file.tensor(LM_HEAD).is_ok() {
        let embed = view_bytes(&file.tensor(EMBED).context("the model has no embedding")?);
        let rows = cfg.vocab_size.max(1) as u64;
        total = total - embed + embed.div_ceil(rows);
    }
    Ok(total)
}
