//! CPU reference for the probe's checksum: the wrapping u32 sum of the data.

/// Wrapping sum of all words.
pub fn checksum(words: &[u32]) -> u32 {
    words.iter().fold(0u32, |a, &b| a.wrapping_add(b))
}
