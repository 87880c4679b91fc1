//! GGUF v2/v3 parsing: header, metadata, tensor infos. Input is treated as hostile.
//!
//! Layout (little-endian): `"GGUF"`, `u32` version, `u64` tensor count, `u64` metadata
//! count, metadata `(string key, u32 type, value)*`, tensor infos
//! `(string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)*`, padding to
//! `general.alignment` (default 32), then tensor data; each tensor's `offset` is relative to
//! that data section.
//!
//! Guarantees of a successful [`parse`]: counts are within the caps below, strings are
//! UTF-8 and ≤ 16 MiB, no allocation was sized by an unchecked field (array and table
//! lengths are bounded by the bytes that remain), keys and tensor names are unique,
//! `1 ≤ n_dims ≤ 4`, every dim ≥ 1, the element count fits in 2^53, the row length is a
//! multiple of the type's block size, every tensor's data range is aligned and lies inside
//! the input. Version 1 (u32 counts) and big-endian files are rejected.

use std::collections::HashMap;

use super::error::GgufError;
use super::reader::Cursor;
use super::types::GgmlType;
use super::value::{min_encoded_size, type_id, MetaLookup, MetaValue};

/// Most tensors accepted in one file.
pub const MAX_TENSORS: u64 = 1 << 16;
/// Most metadata key/value pairs accepted in one file.
pub const MAX_METADATA: u64 = 1 << 16;
/// Most elements accepted in one metadata array (a vocabulary is ~150k).
pub const MAX_ARRAY_LEN: u64 = 1 << 24;
/// Most dimensions of a tensor (GGML_MAX_DIMS).
pub const MAX_DIMS: u32 = 4;
/// Largest element count of one tensor.
pub const MAX_ELEMENTS: u64 = 1 << 53;
const MAX_ALIGNMENT: u64 = 1 << 16;
const DEFAULT_ALIGNMENT: u64 = 32;
const MAGIC: &[u8; 4] = b"GGUF";

/// One tensor-info record, validated against the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo<'a> {
    pub name: &'a str,
    /// GGML order: `dims[0]` (ne0) is the fastest-varying dimension (K of a linear weight).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub start: u64,
    /// Data size in bytes.
    pub n_bytes: u64,
    pub n_elements: u64,
}

impl TensorInfo<'_> {
    /// Number of rows: the product of all dims but the first (1 for a vector).
    pub fn rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Debug)]
pub struct GgufFile<'a> {
    pub version: u32,
    pub alignment: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    /// Metadata in file order.
    pub metadata: Vec<(&'a str, MetaValue<'a>)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo<'a>>,
    meta_index: HashMap<&'a str, usize>,
    tensor_index: HashMap<&'a str, usize>,
    bytes: &'a [u8],
}

impl<'a> MetaLookup<'a> for GgufFile<'a> {
    fn meta(&self, key: &str) -> Option<&MetaValue<'a>> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }
}

impl<'a> GgufFile<'a> {
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor of this file (bounds were checked by [`parse`]).
    pub fn data(&self, t: &TensorInfo<'_>) -> &'a [u8] {
        // start + n_bytes <= bytes.len() was validated, so these casts are lossless.
        &self.bytes[t.start as usize..(t.start + t.n_bytes) as usize]
    }
}

/// Parse and validate a GGUF file held in memory.
pub fn parse(bytes: &[u8]) -> Result<GgufFile<'_>, GgufError> {
    let mut c = Cursor::new(bytes);
    let magic = c.take(4)?;
    if magic != MAGIC {
        let mut m = [0u8; 4];
        m.copy_from_slice(magic);
        return Err(GgufError::BadMagic(m));
    }
    let version = c.u32()?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let n_tensors = c.u64()?;
    let n_meta = c.u64()?;
    // Each metadata pair takes >= 8 (key) + 4 (type) + 1 bytes; each tensor info >= 8+4+8+4+8.
    check_count("metadata", n_meta, MAX_METADATA, c.remaining() / 13)?;
    check_count("tensor", n_tensors, MAX_TENSORS, c.remaining() / 32)?;

    let mut metadata = Vec::with_capacity(n_meta as usize);
    let mut meta_index = HashMap::with_capacity(n_meta as usize);
    for _ in 0..n_meta {
        let key = c.string()?;
        let ty = c.u32()?;
        let value = read_value(&mut c, key, ty, true)?;
        if meta_index.insert(key, metadata.len()).is_some() {
            return Err(GgufError::DuplicateKey(key.to_owned()));
        }
        metadata.push((key, value));
    }

    let alignment = match meta_index.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(&i) => {
            let a = metadata[i].1.as_u64().ok_or(GgufError::WrongType {
                key: "general.alignment".into(),
                expected: "unsigned integer",
            })?;
            if a == 0 || !a.is_power_of_two() || a > MAX_ALIGNMENT {
                return Err(GgufError::BadAlignment(a));
            }
            a
        }
    };

    let mut raw = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        raw.push(read_tensor_info(&mut c)?);
    }
    let header_end = c.pos() as u64;
    let data_offset = header_end.div_ceil(alignment) * alignment;
    let len = bytes.len() as u64;

    let mut tensors = Vec::with_capacity(raw.len());
    let mut tensor_index = HashMap::with_capacity(raw.len());
    for (name, dims, ty, rel) in raw {
        let t = place_tensor(name, dims, ty, rel, data_offset, alignment, len)?;
        if tensor_index.insert(name, tensors.len()).is_some() {
            return Err(GgufError::DuplicateTensor(name.to_owned()));
        }
        tensors.push(t);
    }
    Ok(GgufFile {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
        meta_index,
        tensor_index,
        bytes,
    })
}

fn check_count(what: &'static str, count: u64, cap: u64, fits: u64) -> Result<(), GgufError> {
    if count > cap || count > fits {
        return Err(GgufError::TooMany {
            what,
            count,
            max: cap.min(fits),
        });
    }
    Ok(())
}

fn read_value<'a>(
    c: &mut Cursor<'a>,
    key: &str,
    ty: u32,
    allow_array: bool,
) -> Result<MetaValue<'a>, GgufError> {
    use type_id::*;
    Ok(match ty {
        U8 => MetaValue::U8(c.u8()?),
        I8 => MetaValue::I8(c.u8()? as i8),
        U16 => MetaValue::U16(c.u16()?),
        I16 => MetaValue::I16(c.u16()? as i16),
        U32 => MetaValue::U32(c.u32()?),
        I32 => MetaValue::I32(c.u32()? as i32),
        U64 => MetaValue::U64(c.u64()?),
        I64 => MetaValue::I64(c.u64()? as i64),
        F32 => MetaValue::F32(c.f32()?),
        F64 => MetaValue::F64(c.f64()?),
        BOOL => MetaValue::Bool(c.u8()? != 0),
        STRING => MetaValue::Str(c.string()?),
        ARRAY if allow_array => {
            let elem = c.u32()?;
            if elem == ARRAY {
                return Err(GgufError::NestedArray(key.to_owned()));
            }
            let min = min_encoded_size(elem).ok_or_else(|| GgufError::BadValueType {
                key: key.to_owned(),
                ty: elem,
            })?;
            let n = c.u64()?;
            check_count("array element", n, MAX_ARRAY_LEN, c.remaining() / min)?;
            let mut items = Vec::with_capacity(n as usize);
            for _ in 0..n {
                items.push(read_value(c, key, elem, false)?);
            }
            MetaValue::Array(items)
        }
        _ => {
            return Err(GgufError::BadValueType {
                key: key.to_owned(),
                ty,
            })
        }
    })
}

type RawInfo<'a> = (&'a str, Vec<u64>, u32, u64);

fn read_tensor_info<'a>(c: &mut Cursor<'a>) -> Result<RawInfo<'a>, GgufError> {
    let name = c.string()?;
    let n_dims = c.u32()?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            tensor: name.to_owned(),
            n_dims,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64()?);
    }
    let ty = c.u32()?;
    let offset = c.u64()?;
    Ok((name, dims, ty, offset))
}

fn place_tensor<'a>(
    name: &'a str,
    dims: Vec<u64>,
    ty_id: u32,
    rel: u64,
    data_offset: u64,
    alignment: u64,
    len: u64,
) -> Result<TensorInfo<'a>, GgufError> {
    let ty = GgmlType::from_id(ty_id).ok_or_else(|| GgufError::UnknownTensorType {
        tensor: name.to_owned(),
        id: ty_id,
    })?;
    let bad_shape = || GgufError::BadShape {
        tensor: name.to_owned(),
        dims: dims.clone(),
    };
    let mut n_elements: u64 = 1;
    for &d in &dims {
        if d == 0 {
            return Err(bad_shape());
        }
        n_elements = n_elements
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(bad_shape)?;
    }
    let (block, type_size) = ty.block_layout();
    if !dims[0].is_multiple_of(block) {
        return Err(GgufError::RowNotBlockAligned {
            tensor: name.to_owned(),
            ty,
            ne0: dims[0],
            block,
        });
    }
    // n_elements <= 2^53 and type_size <= 292, so this cannot overflow.
    let n_bytes = n_elements / block * type_size;
    if !rel.is_multiple_of(alignment) {
        return Err(GgufError::MisalignedTensor {
            tensor: name.to_owned(),
            offset: rel,
            alignment,
        });
    }
    let oob = || GgufError::TensorOutOfBounds {
        tensor: name.to_owned(),
        start: rel,
        size: n_bytes,
        len,
    };
    let start = data_offset.checked_add(rel).ok_or_else(oob)?;
    let end = start.checked_add(n_bytes).ok_or_else(oob)?;
    if end > len {
        return Err(GgufError::TensorOutOfBounds {
            tensor: name.to_owned(),
            start,
            size: n_bytes,
            len,
        });
    }
    Ok(TensorInfo {
        name,
        dims,
        ty,
        start,
        n_bytes,
        n_elements,
    })
}
