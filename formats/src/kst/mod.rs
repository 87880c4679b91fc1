//! The `.kst` container: one self-describing, mmap-able, little-endian file per artifact.
//!
//! Byte layout (normative spec: `formats/FORMAT.md`):
//! ```text
//! 0      8    magic  b"KESTREL\0"
//! 8      4    version u32 LE (= 1)
//! 12     4    flags   u32 LE (= 0, reserved)
//! 16     8    header_len u64 LE (≤ 64 MiB)
//! 24     header_len   header: UTF-8 JSON (see `Header`)
//! ...    zero padding up to data_start = align_up(24 + header_len, 256)
//! data_start ...      data section; every array region starts at data_start + offset,
//!                     offset % 256 == 0, and is followed by zero padding to the next 256 B.
//! ```
//! Contract of the reader ([`KstFile::open`] / [`KstFile::from_bytes`]): it validates the whole
//! structure before returning — magic, version, header length, JSON shape, kind, config, every
//! tensor's dtype / shape / group size, every region's offset, alignment, in-bounds end (checked
//! arithmetic) and exact length (= elements × dtype size), no two regions overlapping, no duplicate
//! names. No allocation is sized by an unchecked field. CRC32s are checked on demand by
//! [`KstFile::verify_checksums`] (reading every byte; `open` stays O(header)).
//!
//! The writer ([`KstWriter`]) streams: each `add_*` writes one tensor's arrays straight into
//! `<out>.partial.<pid>.<n>` after a reserved header area, so memory is bounded by the tensor the caller
//! holds and the data is written once; `finish` fills in the header and renames to `<out>`.
//! The header may therefore end in ASCII spaces (JSON whitespace) up to `data_start`.

mod header;
mod reader;
mod validate;
mod writer;

pub use header::{Header, Kind, Region, TensorEntry};
pub use reader::{KstFile, QuantView, TensorView};
pub use validate::{expected_lengths, ArrayLengths};
pub use writer::{remove_partial_files, KstWriter};

#[cfg(target_endian = "big")]
compile_error!("kestrel-formats assumes a little-endian host (the .kst data is little-endian)");

/// First 8 bytes of every `.kst` file.
pub const MAGIC: [u8; 8] = *b"KESTREL\0";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;
/// Alignment of the data section and of every array region.
pub const ALIGN: u64 = 256;
/// Size of the fixed prefix (magic, version, flags, header length).
pub const PREFIX_LEN: u64 = 24;
/// Largest header accepted (the Qwen tokenizer.json embedded is ~7 MiB).
pub const MAX_HEADER_LEN: u64 = 64 << 20;

/// Round `x` up to a multiple of `a` (a power of two); `None` on overflow.
pub(crate) fn align_up(x: u64, a: u64) -> Option<u64> {
    Some(x.checked_add(a - 1)? & !(a - 1))
}

/// FNV-1a 64 of `bytes`, as 16 lowercase hex digits: the identity of a header.
pub fn fnv1a64_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
pub(crate) mod tests;
