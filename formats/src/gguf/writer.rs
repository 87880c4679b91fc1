//! A minimal GGUF v3 writer, for tests, fixtures built in Rust and fuzz seeds.
//!
//! Contract: [`GgufBuilder::build`] lays out the header, metadata and tensor infos exactly as
//! `parse.rs` reads them, pads to the alignment (32, or `general.alignment` when set through
//! [`GgufBuilder::alignment`]), and places tensor data in insertion order, each at an aligned
//! offset. [`GgufBuilder::raw_tensor_info`] adds an info record with an arbitrary type id and
//! offset and no data, so tests can build malformed files. No validation happens here.

use super::types::GgmlType;
use super::value::{type_id, MetaValue};

/// Builds a GGUF file in memory.
#[derive(Clone, Debug)]
pub struct GgufBuilder {
    alignment: u64,
    meta: Vec<u8>,
    n_meta: u64,
    infos: Vec<(String, Vec<u64>, u32, Option<u64>)>,
    data: Vec<Vec<u8>>,
}

impl Default for GgufBuilder {
    fn default() -> Self {
        GgufBuilder {
            alignment: 32,
            meta: Vec::new(),
            n_meta: 0,
            infos: Vec::new(),
            data: Vec::new(),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn value_type(v: &MetaValue<'_>) -> u32 {
    use type_id::*;
    match v {
        MetaValue::U8(_) => U8,
        MetaValue::I8(_) => I8,
        MetaValue::U16(_) => U16,
        MetaValue::I16(_) => I16,
        MetaValue::U32(_) => U32,
        MetaValue::I32(_) => I32,
        MetaValue::U64(_) => U64,
        MetaValue::I64(_) => I64,
        MetaValue::F32(_) => F32,
        MetaValue::F64(_) => F64,
        MetaValue::Bool(_) => BOOL,
        MetaValue::Str(_) => STRING,
        MetaValue::Array(_) => ARRAY,
    }
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue<'_>) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(u8::from(*x)),
        MetaValue::Str(s) => put_str(out, s),
        MetaValue::Array(items) => {
            // An empty array is written as an array of u8.
            let elem = items.first().map_or(type_id::U8, value_type);
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                put_value(out, it);
            }
        }
    }
}

impl GgufBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a metadata pair (keys are not deduplicated).
    pub fn meta(&mut self, key: &str, v: MetaValue<'_>) -> &mut Self {
        put_str(&mut self.meta, key);
        self.meta.extend_from_slice(&value_type(&v).to_le_bytes());
        put_value(&mut self.meta, &v);
        self.n_meta += 1;
        self
    }

    /// Set `general.alignment` (also adds the metadata pair).
    pub fn alignment(&mut self, a: u32) -> &mut Self {
        self.alignment = u64::from(a).max(1);
        self.meta("general.alignment", MetaValue::U32(a))
    }

    /// Add a tensor; `dims` in GGML order (`dims[0]` = row length), `data` its raw bytes.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> &mut Self {
        self.infos
            .push((name.to_owned(), dims.to_vec(), ty.id(), None));
        self.data.push(data);
        self
    }

    /// Add a tensor info with a raw type id and relative offset, and no data.
    pub fn raw_tensor_info(
        &mut self,
        name: &str,
        dims: &[u64],
        type_id: u32,
        offset: u64,
    ) -> &mut Self {
        self.infos
            .push((name.to_owned(), dims.to_vec(), type_id, Some(offset)));
        self
    }

    /// The file bytes.
    pub fn build(&self) -> Vec<u8> {
        let a = self.alignment as usize;
        let pad = |v: &mut Vec<u8>| v.resize(v.len().div_ceil(a) * a, 0);
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for d in &self.data {
            pad(&mut data);
            offsets.push(data.len() as u64);
            data.extend_from_slice(d);
        }
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.infos.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.n_meta.to_le_bytes());
        out.extend_from_slice(&self.meta);
        let mut next = offsets.into_iter();
        for (name, dims, ty, raw_offset) in &self.infos {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.to_le_bytes());
            let off = raw_offset.or_else(|| next.next()).unwrap_or(0);
            out.extend_from_slice(&off.to_le_bytes());
        }
        pad(&mut out);
        out.extend_from_slice(&data);
        out
    }
}
