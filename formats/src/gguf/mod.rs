//! GGUF importer: a hostile-input GGUF v2/v3 parser, GGML block → W4/W8 mapping, Llama q/k
//! un-permutation, metadata → `ModelConfig`, GGUF BPE vocabulary → HF `tokenizer.json`, and
//! the converter to `.kst`.
//!
//! Entry points: [`parse`] (validates the whole structure; used by the fuzz target) and
//! [`convert_gguf`] (memory-mapped input, one tensor at a time). Supported tensor types: F32,
//! F16, BF16, Q4_0, Q4_1, Q8_0; Q-types keep their exact values (see `blocks.rs`). Supported
//! architectures: `qwen2`, `llama`. Every failure is a [`GgufError`] (wrapped as
//! `FormatError::Gguf` at the crate boundary); nothing here panics on file data.

mod blocks;
mod config;
mod convert;
mod error;
mod names;
mod parse;
mod permute;
mod reader;
mod tokenizer;
mod types;
mod value;
mod writer;

pub use blocks::{float_to_f32, ggml_dequantize, q4_to_w4, q8_0_to_w8};
pub use config::model_config;
pub use convert::convert_gguf;
pub use error::GgufError;
pub use names::{map_name, Mapped, Role, RopeProj};
pub use parse::{GgufFile, TensorInfo, MAX_ARRAY_LEN, MAX_DIMS, MAX_METADATA, MAX_TENSORS};
pub use permute::unpermute_source_rows;
pub use reader::MAX_STRING_BYTES;
pub use tokenizer::{byte_alphabet, chat_template, tokenizer_json};
pub use types::GgmlType;
pub use value::{MetaLookup, MetaValue};
pub use writer::GgufBuilder;

/// Parse and validate a GGUF file held in memory (see `parse.rs` for the guarantees).
pub fn parse(bytes: &[u8]) -> Result<GgufFile<'_>, crate::FormatError> {
    Ok(parse::parse(bytes)?)
}
