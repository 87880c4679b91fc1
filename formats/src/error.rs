//! `FormatError`: every failure of this crate, as one typed enum.
//!
//! Contract: no function in `kestrel-formats` panics on data that came from a file or a user;
//! it returns one of these variants instead. Each variant's message is one line and names the
//! offending thing (tensor, field, path) so the CLI can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong reading, writing, validating or converting model files.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// An OS-level I/O failure, with the path involved.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is shorter than the fixed-size prefix or than a region it declares.
    #[error("file truncated: {0}")]
    Truncated(String),
    /// The first 8 bytes are not the `.kst` magic.
    #[error("not a .kst file (bad magic)")]
    BadMagic,
    /// A `.kst` version this build cannot read.
    #[error("unsupported .kst version {found} (this build reads version {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    /// The header length field is larger than the cap or than the file.
    #[error("header length {len} is invalid: {reason}")]
    BadHeaderLength { len: u64, reason: String },
    /// The header is not valid UTF-8 JSON of the expected shape.
    #[error("header JSON: {0}")]
    HeaderJson(String),
    /// A dtype string that is not one of f32, f16, bf16, w4, w8 (or an unsupported input dtype).
    #[error("unknown or unsupported dtype `{0}`")]
    UnknownDType(String),
    /// Two tensors share a name.
    #[error("duplicate tensor name `{0}`")]
    DuplicateTensor(String),
    /// A tensor the caller asked for (or a model needs) is absent.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    /// A tensor table entry is internally inconsistent (shape × dtype ≠ length, bad group size...).
    #[error("tensor `{name}`: {reason}")]
    BadTensor { name: String, reason: String },
    /// A data region lies outside the file, is misaligned, or overlaps another region.
    #[error("tensor `{name}`: region `{array}` {reason}")]
    BadRegion {
        name: String,
        array: String,
        reason: String,
    },
    /// A stored CRC32 does not match the data.
    #[error("tensor `{name}`: checksum mismatch in `{array}` (stored {stored:08x}, computed {computed:08x})")]
    ChecksumMismatch {
        name: String,
        array: String,
        stored: u32,
        computed: u32,
    },
    /// A model config field is missing, zero or inconsistent.
    #[error("config: {0}")]
    BadConfig(String),
    /// The file kind has no such section (e.g. `config()` on a head file).
    #[error("{0}")]
    MissingSection(String),
    /// A quantizer input problem (non-finite value, shape not divisible by the group size...).
    #[error("quantize: {0}")]
    Quantize(String),
    /// A tensor's shape disagrees with the model config or the base model.
    #[error("tensor `{name}`: shape {found:?} disagrees with {what} (expected {expected:?})")]
    ShapeMismatch {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
        what: String,
    },
    /// A safetensors file or shard index is malformed.
    #[error("safetensors {path}: {reason}")]
    SafeTensors { path: PathBuf, reason: String },
    /// A path inside an input (shard name, ...) escapes its directory or is absent.
    #[error("bad path `{path}`: {reason}")]
    BadPath { path: String, reason: String },
    /// The input uses a feature Kestrel does not support (DoRA, rope scaling, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An adapter or head does not match the base model it is converted against.
    #[error("base model mismatch: {0}")]
    BaseMismatch(String),
    /// The input directory/file is not recognised as any convertible input.
    #[error("unrecognised input: {0}")]
    UnknownInput(String),
    /// A GGUF file is malformed, or uses a type/architecture/tokenizer the importer does not support.
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),
}

impl FormatError {
    /// Wrap an `std::io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`FormatError::BadTensor`].
    pub fn bad_tensor(name: &str, reason: impl Into<String>) -> Self {
        FormatError::BadTensor {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}
