//! Kestrel: an on-device reasoning engine — Qwen2.5 / Llama inference on wgpu with hand-written
//! WGSL kernels (W4A16 weights, f32 accumulation, f16 KV cache).
//!
//! ```no_run
//! use kestrel::{Engine, EngineOptions, GenerateParams, Message};
//! # fn main() -> Result<(), kestrel::EngineError> {
//! let engine = Engine::load("model.kst", EngineOptions::default())?;
//! let prompt = engine.encode_chat(&[Message::new("user", "What is 12 * 7?")])?;
//! let mut session = engine.session()?;
//! for token in session.stream(&prompt, &GenerateParams::default())? {
//!     print!("{}", token?.text);
//! }
//! # Ok(()) }
//! ```
//!
//! Layout: `engine` (load, tokenizer, template), `weights` (one struct per HF module, uploaded
//! from the mmap), `forward` (the forward pass, top to bottom), `kv` (shared-prefix + per-path KV
//! cache), `session` (requests, streaming, cancellation), `sampling` (parameters).

mod adapter;
mod compiled;
mod engine;
pub mod error;
mod forward;
mod head;
mod kv;
pub mod reasoning;
pub mod sampling;
mod session;
pub mod tokenizer;
mod weights;

pub use adapter::{Adapter, AdapterId};
pub use engine::{Engine, EngineOptions};
pub use error::{EngineError, Result};
pub use head::{sigmoid, HeadInfo, HeadKind, HeadPooling, SwitchDecision};
pub use kestrel_formats::ModelConfig;
pub use kestrel_kernels::GpuOptions;
pub use kv::KvShape;
pub use reasoning::{aggregate, final_answer, Aggregation, Choice, ThinkingBudget};
pub use sampling::Sampling;
pub use session::{
    CancelToken, FinishReason, GenerateParams, Mode, PathOutput, Session, Timings, Token,
    TokenStream, MAX_PATHS,
};
pub use tokenizer::{
    encode_chat, ChatTemplate, ContentSpecials, Message, StreamDecoder, Tokenizer,
};
