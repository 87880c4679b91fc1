//! GGUF metadata values (`gguf_type`) and typed accessors.
//!
//! Contract: arrays hold scalars or strings only (an array of arrays is rejected by the
//! parser); strings borrow from the file. Accessors convert between integer widths only
//! when the value fits, so a negative or oversized id is a typed error, not a wrap.

use super::error::GgufError;

/// One metadata value. Strings borrow from the GGUF bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(&'a str),
    Array(Vec<MetaValue<'a>>),
}

/// `gguf_type` ids.
pub(crate) mod type_id {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// Smallest encoded size of one element of a `gguf_type` (bounds array allocations).
pub(crate) fn min_encoded_size(ty: u32) -> Option<u64> {
    use type_id::*;
    Some(match ty {
        U8 | I8 | BOOL => 1,
        U16 | I16 => 2,
        U32 | I32 | F32 => 4,
        U64 | I64 | F64 | STRING => 8,
        ARRAY => 12,
        _ => return None,
    })
}

impl<'a> MetaValue<'a> {
    /// Any integer value that is non-negative, as `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer value, as `i64` when it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// A float value (f32 widened exactly), or an integer converted to f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue<'a>]> {
        match self {
            MetaValue::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// Typed metadata lookups with errors that name the key.
pub trait MetaLookup<'a> {
    fn meta(&self, key: &str) -> Option<&MetaValue<'a>>;

    fn req(&self, key: &str) -> Result<&MetaValue<'a>, GgufError> {
        self.meta(key)
            .ok_or_else(|| GgufError::MissingKey(key.to_owned()))
    }
    fn req_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.req(key)?
            .as_u64()
            .ok_or_else(|| wrong(key, "non-negative integer"))
    }
    fn req_usize(&self, key: &str) -> Result<usize, GgufError> {
        usize::try_from(self.req_u64(key)?).map_err(|_| wrong(key, "integer that fits usize"))
    }
    fn req_f64(&self, key: &str) -> Result<f64, GgufError> {
        self.req(key)?.as_f64().ok_or_else(|| wrong(key, "number"))
    }
    fn req_str(&self, key: &str) -> Result<&'a str, GgufError> {
        self.req(key)?.as_str().ok_or_else(|| wrong(key, "string"))
    }
    fn req_array(&self, key: &str) -> Result<&[MetaValue<'a>], GgufError> {
        self.req(key)?.as_array().ok_or_else(|| wrong(key, "array"))
    }
    fn opt_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.meta(key)
            .map(|v| v.as_u64().ok_or_else(|| wrong(key, "non-negative integer")))
            .transpose()
    }
    fn opt_f64(&self, key: &str) -> Result<Option<f64>, GgufError> {
        self.meta(key)
            .map(|v| v.as_f64().ok_or_else(|| wrong(key, "number")))
            .transpose()
    }
    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, GgufError> {
        self.meta(key)
            .map(|v| v.as_str().ok_or_else(|| wrong(key, "string")))
            .transpose()
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.meta(key)
            .map(|v| v.as_bool().ok_or_else(|| wrong(key, "bool")))
            .transpose()
    }
}

pub(crate) fn wrong(key: &str, expected: &'static str) -> GgufError {
    GgufError::WrongType {
        key: key.to_owned(),
        expected,
    }
}
