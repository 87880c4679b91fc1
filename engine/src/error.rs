//! `EngineError`: every failure the engine can report to an embedding app. Nothing in the engine
//! panics on user input or file contents; each case below is a value the caller can match on.

use kestrel_formats::FormatError;
use kestrel_kernels::KernelError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The `.kst` file (model, adapter or head) is invalid or does not fit this use.
    #[error("model file: {0}")]
    Format(#[from] FormatError),
    /// The GPU runtime failed: no adapter, validation error, out of memory, device lost.
    #[error("gpu: {0}")]
    Kernel(#[from] KernelError),
    /// The model file is valid but the engine cannot run it (missing tensor, unsupported layout).
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The tokenizer could not be built or failed on this input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template failed to parse or render.
    #[error("chat template: {0}")]
    Template(String),
    /// The prompt has no tokens.
    #[error("empty prompt")]
    EmptyPrompt,
    /// A token id is not in the vocabulary.
    #[error("token id {id} is outside the vocabulary (size {vocab})")]
    TokenOutOfRange { id: u32, vocab: usize },
    /// The request does not fit the context window (prompt, or prompt + max tokens).
    #[error("{what}: {needed} tokens needed but the context holds {limit}")]
    ContextOverflow {
        what: &'static str,
        needed: usize,
        limit: usize,
    },
    /// The KV cache or scratch memory the request needs exceeds the configured budget.
    #[error("out of memory budget: {what} needs {needed} bytes, budget {budget} bytes")]
    MemoryBudget {
        what: String,
        needed: u64,
        budget: u64,
    },
    /// A request or option value out of range: sampling values, path count, thinking budget,
    /// prefill chunk size, a chunk or step that does not fit the session's buffers.
    #[error("bad parameter: {0}")]
    BadParameter(String),
    /// The model produced NaN or Inf logits (numerical failure or corrupt weights).
    #[error("non-finite logits at step {step}")]
    NonFiniteLogits { step: usize },
    /// The request was cancelled through its `CancelToken`.
    #[error("cancelled")]
    Cancelled,
    /// An adapter does not belong to this model, is invalid, or is not loaded.
    #[error("adapter: {0}")]
    Adapter(String),
    /// A head file is invalid or does not belong to this model, or a request needs a head
    /// that is not loaded.
    #[error("head: {0}")]
    Head(String),
    /// I/O error reading a file.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
