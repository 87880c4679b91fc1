//! Typed errors of the GGUF importer.
//!
//! Every failure on GGUF input — malformed bytes, unsupported content, inconsistent
//! metadata — is one of these variants; nothing in `gguf` panics on file data. Outside the
//! module they travel as `FormatError::Gguf(GgufError)`.

use super::types::GgmlType;

/// What went wrong while reading or converting a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("GGUF truncated: need {need} bytes at offset {at}, file has {len}")]
    Truncated { at: u64, need: u64, len: u64 },
    #[error("not a GGUF file (magic {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("unsupported GGUF version {0} (supported: 2, 3; big-endian files are not supported)")]
    UnsupportedVersion(u32),
    #[error("GGUF {what} count {count} exceeds the cap {max}")]
    TooMany {
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("GGUF string of {len} bytes at offset {at} exceeds the cap {max}")]
    StringTooLong { at: u64, len: u64, max: u64 },
    #[error("GGUF string at offset {at} is not UTF-8")]
    InvalidUtf8 { at: u64 },
    #[error("unknown GGUF metadata value type {ty} for key {key}")]
    BadValueType { key: String, ty: u32 },
    #[error("GGUF metadata key {0} is an array of arrays (unsupported)")]
    NestedArray(String),
    #[error("duplicate GGUF metadata key {0}")]
    DuplicateKey(String),
    #[error("GGUF general.alignment {0} is not a power of two in 1..=65536")]
    BadAlignment(u64),
    #[error("GGUF tensor {tensor} has {n_dims} dimensions (at most 4)")]
    TooManyDims { tensor: String, n_dims: u32 },
    #[error("GGUF tensor {tensor} has a bad shape {dims:?} (zero-sized or too many elements)")]
    BadShape { tensor: String, dims: Vec<u64> },
    #[error("unknown GGML tensor type id {id} for {tensor}")]
    UnknownTensorType { tensor: String, id: u32 },
    #[error(
        "GGUF tensor {tensor}: row length {ne0} is not a multiple of the {ty} block size {block}"
    )]
    RowNotBlockAligned {
        tensor: String,
        ty: GgmlType,
        ne0: u64,
        block: u64,
    },
    #[error(
        "GGUF tensor {tensor}: offset {offset} is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error(
        "GGUF tensor {tensor}: data [{start}, {start}+{size}) lies outside the file ({len} bytes)"
    )]
    TensorOutOfBounds {
        tensor: String,
        start: u64,
        size: u64,
        len: u64,
    },
    #[error("duplicate GGUF tensor name {0}")]
    DuplicateTensor(String),
    #[error("unsupported GGUF tensor type {ty} for {tensor}")]
    UnsupportedTensorType { tensor: String, ty: GgmlType },
    #[error("GGUF metadata key {0} is missing")]
    MissingKey(String),
    #[error("GGUF metadata key {key} has the wrong type (expected {expected})")]
    WrongType { key: String, expected: &'static str },
    #[error("GGUF metadata key {key} has an invalid value: {why}")]
    BadValue { key: String, why: String },
    #[error("unsupported GGUF architecture {0:?} (supported: qwen2, llama)")]
    UnsupportedArch(String),
    #[error("unexpected GGUF tensor {0} (not part of a qwen2/llama model)")]
    UnknownTensorName(String),
    #[error("GGUF model is missing tensor {0}")]
    MissingTensor(String),
    #[error("GGUF tensor {tensor} has shape {dims:?}, expected {expected:?} (GGML order)")]
    ShapeMismatch {
        tensor: String,
        dims: Vec<u64>,
        expected: Vec<u64>,
    },
    #[error("unsupported GGUF tokenizer model {0:?} (supported: gpt2 byte-level BPE)")]
    UnsupportedTokenizer(String),
    #[error(
        "unsupported GGUF pre-tokenizer {0:?} (supported: default, gpt2, qwen2, smollm, llama-bpe)"
    )]
    UnsupportedPreTokenizer(String),
    #[error("GGUF tokenizer: {0}")]
    Tokenizer(String),
    #[error("GGUF conversion: {0}")]
    Convert(String),
}
