//! Token selection on the GPU: [`argmax_f32`] (greedy, with a NaN/Inf flag) and
//! [`sample_f32`] (temperature, top-k, top-p with a seeded counter-based RNG, bit-identical to
//! its CPU reference).

pub mod argmax_f32;
pub mod sample_f32;

pub use argmax_f32::{Argmax, ARGMAX_NON_FINITE};

/// u32 words per row that both kernels write: `(token, flags, logprob as f32 bits, 0)`.
pub const PICK_WORDS: usize = 4;
pub use sample_f32::{Sample, SampleConfig, SampleParams};
