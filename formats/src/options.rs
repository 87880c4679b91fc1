//! Conversion options shared by every importer (HF, GGUF, PEFT, heads), and the progress hook.
//!
//! Defaults (ARCHITECTURE.md): linear layers W4, group 32, symmetric; `embed_tokens` / `lm_head`
//! W8 when the linear dtype is W4 or W8 (F16/F32 otherwise); norms and biases F32.
//! The `quantization` header section written by importers is [`ConvertOptions::to_meta`].

use serde_json::{json, Value};

use crate::quant::GROUP_SIZES;
use crate::{DType, FormatError};

/// Storage dtype for linear-layer weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDType {
    #[default]
    W4,
    W8,
    F16,
    F32,
}

impl WeightDType {
    pub fn as_str(self) -> &'static str {
        match self {
            WeightDType::W4 => "w4",
            WeightDType::W8 => "w8",
            WeightDType::F16 => "f16",
            WeightDType::F32 => "f32",
        }
    }

    pub fn parse(s: &str) -> Result<Self, FormatError> {
        match s {
            "w4" => Ok(WeightDType::W4),
            "w8" => Ok(WeightDType::W8),
            "f16" => Ok(WeightDType::F16),
            "f32" => Ok(WeightDType::F32),
            other => Err(FormatError::UnknownDType(other.to_string())),
        }
    }

    /// The `.kst` dtype linear layers get.
    pub fn linear_dtype(self) -> DType {
        match self {
            WeightDType::W4 => DType::W4,
            WeightDType::W8 => DType::W8,
            WeightDType::F16 => DType::F16,
            WeightDType::F32 => DType::F32,
        }
    }

    /// The `.kst` dtype `embed_tokens` / `lm_head` get.
    pub fn embedding_dtype(self) -> DType {
        match self {
            WeightDType::W4 | WeightDType::W8 => DType::W8,
            WeightDType::F16 => DType::F16,
            WeightDType::F32 => DType::F32,
        }
    }
}

/// W4 scheme: symmetric `(q-8)·s` or asymmetric `q·s + min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    #[default]
    Sym,
    Asym,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sym => "sym",
            Scheme::Asym => "asym",
        }
    }
}

/// Options for every `convert_*` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertOptions {
    pub dtype: WeightDType,
    /// 32, 64 or 128.
    pub group_size: usize,
    pub scheme: Scheme,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            dtype: WeightDType::W4,
            group_size: 32,
            scheme: Scheme::Sym,
        }
    }
}

impl ConvertOptions {
    pub fn validate(&self) -> Result<(), FormatError> {
        if !GROUP_SIZES.contains(&self.group_size) {
            return Err(FormatError::Quantize(format!(
                "group size {} not in {GROUP_SIZES:?}",
                self.group_size
            )));
        }
        Ok(())
    }

    /// The `quantization` header section: `{dtype, embedding_dtype, group_size, scheme}`.
    pub fn to_meta(&self) -> Value {
        json!({
            "dtype": self.dtype.as_str(),
            "embedding_dtype": self.dtype.embedding_dtype().as_str(),
            "group_size": self.group_size,
            "scheme": self.scheme.as_str(),
        })
    }
}

/// Progress hook: `(done_bytes, total_bytes)` of input processed.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);
