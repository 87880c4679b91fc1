//! `DType`: the logical element type of a tensor stored in a `.kst` file.
//!
//! The header spells dtypes in lowercase (`"f32"`, `"f16"`, `"bf16"`, `"w4"`, `"w8"`); any other
//! string is [`FormatError::UnknownDType`]. W4/W8 are the group-quantized layouts of
//! ARCHITECTURE.md ("Weight layouts"); their byte sizes depend on the group size too, see
//! [`crate::kst`] for the exact region lengths.

use crate::FormatError;

/// Logical dtype of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    /// 4-bit group-quantized (q: `[M, K/8]` u32, scales `[M, K/G]` f16, optional mins).
    W4,
    /// 8-bit group-quantized (q: `[M, K/4]` u32 of i8 bytes, scales `[M, K/G]` f16).
    W8,
}

impl DType {
    /// The header spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::W4 => "w4",
            DType::W8 => "w8",
        }
    }

    /// Parse the header spelling; anything else is `UnknownDType`.
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        Ok(match s {
            "f32" => DType::F32,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            "w4" => DType::W4,
            "w8" => DType::W8,
            other => return Err(FormatError::UnknownDType(other.to_string())),
        })
    }

    /// Bytes per element for the dense dtypes; `None` for W4/W8.
    pub fn dense_size(self) -> Option<usize> {
        match self {
            DType::F32 => Some(4),
            DType::F16 | DType::BF16 => Some(2),
            DType::W4 | DType::W8 => None,
        }
    }

    /// Whether this dtype is one of the group-quantized layouts.
    pub fn is_quantized(self) -> bool {
        matches!(self, DType::W4 | DType::W8)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_unknown() {
        for d in [DType::F32, DType::F16, DType::BF16, DType::W4, DType::W8] {
            assert_eq!(DType::parse(d.as_str()).ok(), Some(d));
        }
        assert!(matches!(DType::parse("q4_k"), Err(FormatError::UnknownDType(s)) if s == "q4_k"));
    }
}
