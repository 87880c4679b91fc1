//! A bounds-checked little-endian cursor over untrusted bytes.
//!
//! Contract: every read checks `pos + n <= len` with checked arithmetic and returns
//! `GgufError::Truncated` otherwise; the cursor never allocates. Strings are GGUF strings
//! (`u64` length + UTF-8 bytes), capped at `MAX_STRING_BYTES`.

use super::error::GgufError;

/// Longest accepted GGUF string (chat templates are a few KiB; tokens a few bytes).
pub const MAX_STRING_BYTES: u64 = 1 << 24;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn truncated(&self, need: u64) -> GgufError {
        GgufError::Truncated {
            at: self.pos as u64,
            need,
            len: self.bytes.len() as u64,
        }
    }

    pub fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let n = n as usize; // n <= remaining <= usize::MAX
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, GgufError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, GgufError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn f32(&mut self) -> Result<f32, GgufError> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, GgufError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A GGUF string: `u64` byte length, then that many UTF-8 bytes.
    pub fn string(&mut self) -> Result<&'a str, GgufError> {
        let at = self.pos as u64;
        let len = self.u64()?;
        if len > MAX_STRING_BYTES {
            return Err(GgufError::StringTooLong {
                at,
                len,
                max: MAX_STRING_BYTES,
            });
        }
        let raw = self.take(len)?;
        std::str::from_utf8(raw).map_err(|_| GgufError::InvalidUtf8 { at })
    }
}
