//! `KstFile`: the validating, memory-mapped `.kst` reader, and borrowed tensor views.

use std::collections::HashMap;
use std::path::Path;

use super::header::RawHeader;
use super::validate::validate_header;
use super::{
    align_up, fnv1a64_hex, Header, Kind, Region, ALIGN, MAGIC, MAX_HEADER_LEN, PREFIX_LEN, VERSION,
};
use crate::quant::{dequantize_w4_bytes, dequantize_w8_bytes};
use crate::{DType, FormatError, ModelConfig};

enum Storage {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// An opened, structurally validated `.kst` file.
pub struct KstFile {
    storage: Storage,
    header: Header,
    index: HashMap<String, usize>,
    header_hash: String,
    data_start: usize,
}

/// Quantization arrays of a W4/W8 tensor (raw little-endian f16 bytes).
#[derive(Debug, Clone, Copy)]
pub struct QuantView<'a> {
    pub group_size: usize,
    pub scales: &'a [u8],
    /// W4 asymmetric only.
    pub mins: Option<&'a [u8]>,
}

/// A tensor borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub shape: &'a [usize],
    /// F32/F16/BF16: raw little-endian row-major; W4/W8: the packed `q` array.
    pub data: &'a [u8],
    pub quant: Option<QuantView<'a>>,
}

impl TensorView<'_> {
    /// Number of logical elements (product of the shape).
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Decode (dequantize) to row-major f32. Works on any alignment of the backing bytes.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, FormatError> {
        let missing = || FormatError::bad_tensor(self.name, "quantized tensor without scales");
        match self.dtype {
            DType::F32 => Ok(self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()),
            DType::F16 => Ok(self
                .data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()),
            DType::BF16 => Ok(self
                .data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()),
            DType::W4 | DType::W8 => {
                let q = self.quant.ok_or_else(missing)?;
                let [m, k] = *self.shape else {
                    return Err(FormatError::bad_tensor(
                        self.name,
                        "quantized tensor must be rank 2",
                    ));
                };
                if self.dtype == DType::W4 {
                    dequantize_w4_bytes(m, k, q.group_size, self.data, q.scales, q.mins)
                } else {
                    dequantize_w8_bytes(m, k, q.group_size, self.data, q.scales)
                }
            }
        }
    }
}

impl std::fmt::Debug for KstFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KstFile")
            .field("kind", &self.header.kind)
            .field("tensors", &self.header.tensors.len())
            .field("bytes", &self.storage.bytes().len())
            .field("header_hash", &self.header_hash)
            .finish()
    }
}

impl KstFile {
    /// Memory-map and validate a `.kst` file.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let file = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
        // A directory or device cannot be mapped; say what it is rather than mmap's ENODEV.
        let meta = file.metadata().map_err(|e| FormatError::io(path, e))?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "is a directory, not a .kst file"
            } else {
                "is not a regular file"
            };
            return Err(FormatError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
            ));
        }
        // SAFETY: the map is read-only; Kestrel never writes to a file it has open, and a file
        // changed underneath by another process can at worst yield wrong bytes (which the
        // checksums catch), not memory unsafety in this crate's own bounds-checked slicing.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(path, e))?;
        Self::from_storage(Storage::Mmap(map))
    }

    /// Validate an in-memory `.kst` image (same checks as `open`).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, FormatError> {
        Self::from_storage(Storage::Owned(bytes))
    }

    fn from_storage(storage: Storage) -> Result<Self, FormatError> {
        let b = storage.bytes();
        let file_len = b.len() as u64;
        if file_len < PREFIX_LEN {
            return Err(FormatError::Truncated(format!(
                "{file_len} bytes, the prefix alone is {PREFIX_LEN}"
            )));
        }
        if b[0..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let version = word(8);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        if word(12) != 0 {
            return Err(FormatError::HeaderJson(format!(
                "reserved flags {:#x} must be 0",
                word(12)
            )));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&b[16..24]);
        let header_len = u64::from_le_bytes(len8);
        if header_len > MAX_HEADER_LEN {
            return Err(FormatError::BadHeaderLength {
                len: header_len,
                reason: format!("larger than the {MAX_HEADER_LEN}-byte cap"),
            });
        }
        let header_end = PREFIX_LEN + header_len;
        if header_end > file_len {
            return Err(FormatError::BadHeaderLength {
                len: header_len,
                reason: format!("extends past the end of the {file_len}-byte file"),
            });
        }
        let data_start = align_up(header_end, ALIGN).unwrap_or(u64::MAX);
        if data_start > file_len {
            return Err(FormatError::Truncated(format!(
                "data section starts at {data_start}, file is {file_len} bytes"
            )));
        }
        let header_bytes = &b[PREFIX_LEN as usize..header_end as usize];
        let text = std::str::from_utf8(header_bytes)
            .map_err(|e| FormatError::HeaderJson(format!("not UTF-8: {e}")))?;
        let raw: RawHeader =
            serde_json::from_str(text).map_err(|e| FormatError::HeaderJson(e.to_string()))?;
        let (header, index) = validate_header(raw, file_len - data_start)?;
        // Trailing JSON whitespace is the writer's reservation padding, not content.
        let header_hash = fnv1a64_hex(header_bytes.trim_ascii_end());
        Ok(KstFile {
            storage,
            header,
            index,
            header_hash,
            data_start: data_start as usize,
        })
    }

    pub fn kind(&self) -> Kind {
        self.header.kind
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The model config; an error for files without one.
    pub fn config(&self) -> Result<&ModelConfig, FormatError> {
        self.header.config.as_ref().ok_or_else(|| {
            FormatError::MissingSection(format!(
                "this {} file has no model config",
                self.kind().as_str()
            ))
        })
    }

    pub fn tokenizer_json(&self) -> Option<&str> {
        self.header.tokenizer_json.as_deref()
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.header.chat_template.as_deref()
    }

    pub fn base_hash(&self) -> Option<&str> {
        self.header.base_hash.as_deref()
    }

    /// FNV-1a 64 (hex) of this file's header bytes: its identity (covers every checksum).
    pub fn header_hash(&self) -> String {
        self.header_hash.clone()
    }

    pub fn meta(&self, key: &str) -> Option<&serde_json::Value> {
        self.header.meta.get(key)
    }

    /// Tensor names in file order.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.header.tensors.iter().map(|t| t.name.as_str())
    }

    /// Absolute file offset of the data section (multiple of 256).
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// The whole file's bytes (page-aligned when memory-mapped).
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// The bytes of one region (validated in bounds at open).
    pub fn region_bytes(&self, r: &Region) -> &[u8] {
        let start = self.data_start + r.offset as usize;
        &self.storage.bytes()[start..start + r.length as usize]
    }

    /// A borrowed view of tensor `name`.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, FormatError> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| FormatError::MissingTensor(name.to_string()))?;
        let t = &self.header.tensors[i];
        let quant = match (t.group_size, &t.scales) {
            (Some(group_size), Some(s)) => Some(QuantView {
                group_size,
                scales: self.region_bytes(s),
                mins: t.mins.as_ref().map(|r| self.region_bytes(r)),
            }),
            _ => None,
        };
        Ok(TensorView {
            name: &t.name,
            dtype: t.dtype,
            shape: &t.shape,
            data: self.region_bytes(&t.data),
            quant,
        })
    }

    /// CRC32 of a region, read in 64 MiB chunks. A mapped file's chunk is released from this
    /// process's resident set once hashed, so verifying costs no more memory than one chunk,
    /// however large the file (or however large the holes of a sparse one).
    fn region_crc(&self, r: &Region) -> u32 {
        const CHUNK: usize = 64 << 20;
        let start = self.data_start + r.offset as usize;
        let mut hasher = crc32fast::Hasher::new();
        for (i, chunk) in self.region_bytes(r).chunks(CHUNK).enumerate() {
            hasher.update(chunk);
            if let Storage::Mmap(m) = &self.storage {
                // SAFETY: the map is a read-only shared file mapping, so MADV_DONTNEED only
                // drops clean pages: a later read faults the same file bytes back in. Failure
                // is harmless (the pages stay resident).
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start + i * CHUNK,
                        chunk.len(),
                    )
                };
            }
        }
        hasher.finalize()
    }

    /// Recompute every region's CRC32 and compare with the header.
    pub fn verify_checksums(&self) -> Result<(), FormatError> {
        for t in &self.header.tensors {
            for (array, r) in t.regions() {
                let computed = self.region_crc(r);
                if computed != r.crc32 {
                    return Err(FormatError::ChecksumMismatch {
                        name: t.name.clone(),
                        array: array.to_string(),
                        stored: r.crc32,
                        computed,
                    });
                }
            }
        }
        Ok(())
    }
}
