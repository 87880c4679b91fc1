//! The `.kst` JSON header: validated types (`Header`) and the raw serde shape it is parsed from.
//!
//! Field order on disk is fixed (struct order; `meta` is a sorted map), so the same inputs always
//! produce the same header bytes and therefore the same `header_hash`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::{DType, FormatError, ModelConfig};

/// What a `.kst` file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A full model: config, tokenizer, chat template, weights.
    Model,
    /// A LoRA adapter (records its base model's header hash).
    Adapter,
    /// A small linear head (switcher / verifier) over a base model's hidden states.
    Head,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Adapter => "adapter",
            Kind::Head => "head",
        }
    }

    pub fn parse(s: &str) -> Result<Self, FormatError> {
        match s {
            "model" => Ok(Kind::Model),
            "adapter" => Ok(Kind::Adapter),
            "head" => Ok(Kind::Head),
            other => Err(FormatError::HeaderJson(format!("unknown kind `{other}`"))),
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for DType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One contiguous array in the data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Byte offset from the start of the data section (multiple of 256).
    pub offset: u64,
    /// Exact byte length of the array.
    pub length: u64,
    /// CRC32 (IEEE) of the `length` bytes.
    pub crc32: u32,
}

/// One tensor-table entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Quantization group size (W4/W8 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// Dense data, or the packed `q` array of W4/W8.
    pub data: Region,
    /// f16 scales (W4/W8 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scales: Option<Region>,
    /// f16 mins (asymmetric W4 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mins: Option<Region>,
}

impl TensorEntry {
    /// The entry's regions with their array names (`data`, `scales`, `mins`).
    pub fn regions(&self) -> impl Iterator<Item = (&'static str, &Region)> {
        [
            ("data", Some(&self.data)),
            ("scales", self.scales.as_ref()),
            ("mins", self.mins.as_ref()),
        ]
        .into_iter()
        .filter_map(|(n, r)| r.map(|r| (n, r)))
    }

    /// Total bytes over all regions.
    pub fn total_bytes(&self) -> u64 {
        self.regions().map(|(_, r)| r.length).sum()
    }
}

/// The validated header of a `.kst` file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    pub kind: Kind,
    /// Present (and validated) for models; optional for adapters/heads.
    pub config: Option<ModelConfig>,
    pub tokenizer_json: Option<String>,
    pub chat_template: Option<String>,
    /// For adapters/heads: `header_hash` of the base model they were converted against.
    pub base_hash: Option<String>,
    /// Free-form sections: `quantization`, `adapter`, `head`, `source`, ...
    pub meta: BTreeMap<String, Value>,
    pub tensors: Vec<TensorEntry>,
}

/// The header exactly as it is parsed from JSON, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub kind: String,
    pub config: Option<ModelConfig>,
    pub tokenizer_json: Option<String>,
    pub chat_template: Option<String>,
    pub base_hash: Option<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, Value>,
    pub tensors: Vec<RawTensor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub group_size: Option<u64>,
    pub data: Region,
    pub scales: Option<Region>,
    pub mins: Option<Region>,
}
