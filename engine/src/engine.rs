//! `Engine`: a loaded model on the GPU with its tokenizer and chat template. Cheap to share
//! (`&Engine`) between sessions; all mutable state (KV cache, scratch) lives in `Session`.

use std::path::Path;
use std::sync::Arc;

use kestrel_formats::{Kind, KstFile, ModelConfig};
use kestrel_kernels::{Gpu, GpuOptions};

use crate::adapter::{Adapter, AdapterId};
use crate::compiled::Kernels;
use crate::error::{EngineError, Result};
use crate::head::{HeadInfo, HeadKind, HeadPooling, Heads};
use crate::tokenizer::{ChatTemplate, ContentSpecials, Message, Tokenizer};
use crate::weights::ModelWeights;

/// Most paths one `Session::generate_paths` decodes together: the batch width of a decode
/// step. Each path costs a suffix KV segment and a row of every per-step buffer (logits
/// included); 16 covers the paper's N ≤ 16.
pub const MAX_PATHS: usize = 16;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// GPU adapter choice, f16 mode and device profile.
    pub gpu: GpuOptions,
    /// Context window in tokens (prompt + generated); default `min(model max, 4096)`.
    pub max_context: Option<usize>,
    /// Prompt tokens processed per prefill dispatch batch (bounds scratch memory).
    pub prefill_chunk: usize,
    /// Upper bound on KV cache bytes per session; a request past it is `MemoryBudget`.
    pub kv_budget_bytes: u64,
    /// Check every tensor's CRC32 against the header before uploading it (model, adapters and
    /// heads), so a corrupted file is refused instead of computing garbage. On by default: it
    /// reads the mapped file once more, which costs little next to the upload.
    pub verify_checksums: bool,
    /// Choose decode tokens on the CPU from read-back logits (the reference sampler) instead of
    /// on the device in the step's submit. The tokens are the same (one RNG keyed by
    /// `(seed, step, path)`, one weight rule); the step then reads back `[N, V]` floats instead of
    /// N ids. Off by default; for checking the device against the reference.
    pub pick_on_cpu: bool,
    /// Submit and wait after every kernel and accumulate wall time per kernel
    /// (`Session::profile`). Slows everything down; for finding hot spots only.
    pub profile_kernels: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            gpu: GpuOptions::default(),
            max_context: None,
            prefill_chunk: 128,
            kv_budget_bytes: 2 << 30,
            verify_checksums: true,
            pick_on_cpu: false,
            profile_kernels: false,
        }
    }
}

/// A model loaded on the GPU.
pub struct Engine {
    pub(crate) gpu: Arc<Gpu>,
    pub(crate) config: ModelConfig,
    pub(crate) weights: ModelWeights,
    pub(crate) kernels: Kernels,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) template: Option<ChatTemplate>,
    pub(crate) options: EngineOptions,
    pub(crate) max_context: usize,
    pub(crate) header_hash: String,
    pub(crate) adapters: Vec<Adapter>,
    pub(crate) heads: Option<Heads>,
}

/// Opens `path` as a `.kst` model file.
fn open_model(path: &Path) -> Result<KstFile> {
    let file = KstFile::open(path)?;
    if file.kind() != Kind::Model {
        return Err(EngineError::Unsupported(format!(
            "{} is not a model file (kind {:?})",
            path.display(),
            file.kind()
        )));
    }
    Ok(file)
}

/// Refuses a config whose per-session buffers cannot exist on this device (each must fit one
/// storage binding), before the weights are read: the largest activation buffers are the prefill
/// chunk's gate|up rows `[chunk, 2·I]` and the logits `[16, V]`, both f32.
fn check_fits_device(gpu: &Gpu, c: &ModelConfig, options: &EngineOptions) -> Result<()> {
    let limit = gpu
        .limits()
        .max_storage_buffer_binding_size
        .min(gpu.limits().max_buffer_size);
    let chunk = options.prefill_chunk as u64;
    let qkv = (c.num_attention_heads + 2 * c.num_key_value_heads) as u64 * c.head_dim as u64;
    let buffers = [
        (
            "gate|up activations [chunk, 2 * intermediate_size]",
            chunk * 2 * c.intermediate_size as u64,
        ),
        (
            "q|k|v activations [chunk, (H + 2 * Hkv) * head_dim]",
            chunk * qkv,
        ),
        (
            "hidden states [chunk, hidden_size]",
            chunk * c.hidden_size as u64,
        ),
        (
            "logits [paths, vocab_size]",
            MAX_PATHS as u64 * c.vocab_size as u64,
        ),
    ];
    for (what, elems) in buffers {
        // Config dimensions are ≤ 2^24 each (ModelConfig::validate), so these cannot overflow.
        let bytes = elems * 4;
        if bytes > limit {
            return Err(EngineError::Unsupported(format!(
                "{what} needs {bytes} bytes, more than this device binds in one buffer \
                 ({limit} bytes; prefill chunk {chunk})"
            )));
        }
    }
    Ok(())
}

impl Engine {
    /// Load a `.kst` model: validate the file, create the GPU device, upload weights from the mmap.
    /// The file is opened and its header validated before the GPU is touched, so a wrong path
    /// fails at once.
    pub fn load(path: impl AsRef<Path>, options: EngineOptions) -> Result<Engine> {
        let file = open_model(path.as_ref())?;
        let gpu = Arc::new(Gpu::new(&options.gpu)?);
        Self::load_file(gpu, file, options)
    }

    /// Load onto an existing GPU device (several models or tests sharing one device).
    pub fn load_on(
        gpu: Arc<Gpu>,
        path: impl AsRef<Path>,
        options: EngineOptions,
    ) -> Result<Engine> {
        Self::load_file(gpu, open_model(path.as_ref())?, options)
    }

    fn load_file(gpu: Arc<Gpu>, file: KstFile, options: EngineOptions) -> Result<Engine> {
        // Everything that can be judged from the header is judged before a byte of tensor data
        // is read or a buffer allocated: a hostile header costs no memory.
        let config = file.config()?.clone();
        config.validate()?;
        if options.prefill_chunk == 0 {
            return Err(EngineError::BadParameter(
                "prefill_chunk must be > 0".into(),
            ));
        }
        check_fits_device(&gpu, &config, &options)?;
        if options.verify_checksums {
            file.verify_checksums()?;
        }
        let json = file.tokenizer_json().ok_or_else(|| {
            EngineError::Tokenizer("the model file has no embedded tokenizer".into())
        })?;
        let tokenizer = Tokenizer::from_json(json)?;
        let template = ChatTemplate::from_kst(&file, &config, &tokenizer)?;
        let weights = ModelWeights::load(&gpu, &file, &config)?;
        let kernels = Kernels::new(&gpu)?;
        // Never past max_position_embeddings: besides the trained range, this is what makes the
        // `dynamic` RoPE table exact (transformers rescales it only beyond that length).
        let max_context = options
            .max_context
            .unwrap_or(4096)
            .min(config.max_position_embeddings.max(1));
        Ok(Engine {
            header_hash: file.header_hash(),
            gpu,
            config,
            weights,
            kernels,
            tokenizer,
            template,
            options,
            max_context,
            adapters: Vec::new(),
            heads: None,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// The context window (prompt + generated tokens).
    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// Bytes of weights on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes
    }

    /// Identity of the model file (adapters and heads record it).
    pub fn header_hash(&self) -> &str {
        &self.header_hash
    }

    /// "name (backend, driver)" of the GPU adapter in use.
    pub fn adapter_description(&self) -> String {
        self.gpu.adapter_description()
    }

    /// Whether the model file carries a chat template (instruct models do).
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// Render a conversation with the model's chat template (generation prompt appended).
    pub fn render_chat(&self, messages: &[Message]) -> Result<String> {
        let t = self
            .template
            .as_ref()
            .ok_or_else(|| EngineError::Template("the model file has no chat template".into()))?;
        t.render(messages, true)
    }

    /// Render and tokenize a conversation. The template supplies the special tokens; text
    /// inside a message is always text (a user typing `<|im_end|>` cannot end their turn).
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.encode_chat_with(messages, ContentSpecials::AsText)
    }

    /// [`Engine::encode_chat`] with a choice of how special-token text inside messages is read;
    /// [`ContentSpecials::Parse`] is raw parsing, for callers that trust every message.
    pub fn encode_chat_with(
        &self,
        messages: &[Message],
        specials: ContentSpecials,
    ) -> Result<Vec<u32>> {
        let t = self
            .template
            .as_ref()
            .ok_or_else(|| EngineError::Template("the model file has no chat template".into()))?;
        crate::tokenizer::encode_chat(&self.tokenizer, t, messages, specials)
    }

    /// Tokenize plain text (with the tokenizer's own special-token post-processing).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }

    /// Load a LoRA adapter `.kst` made for this model (refused, by name, if it was made for another
    /// base or does not fit its shapes). Load adapters before creating sessions; switching
    /// between them per request costs nothing.
    pub fn load_adapter(&mut self, path: impl AsRef<Path>) -> Result<AdapterId> {
        self.verify(path.as_ref())?;
        let a = Adapter::load(&self.gpu, path.as_ref(), &self.config, &self.header_hash)?;
        self.adapters.push(a);
        Ok(AdapterId(self.adapters.len() - 1))
    }

    /// The checksums of the `.kst` at `path`, when the options ask for it.
    fn verify(&self, path: &Path) -> Result<()> {
        if self.options.verify_checksums {
            KstFile::open(path)?.verify_checksums()?;
        }
        Ok(())
    }

    /// A loaded adapter.
    pub fn adapter(&self, id: AdapterId) -> Result<&Adapter> {
        self.adapters
            .get(id.0)
            .ok_or_else(|| EngineError::Adapter(format!("no adapter with id {}", id.0)))
    }

    /// Loaded adapters, in load order.
    pub fn adapters(&self) -> impl Iterator<Item = (AdapterId, &Adapter)> {
        self.adapters
            .iter()
            .enumerate()
            .map(|(i, a)| (AdapterId(i), a))
    }

    /// Load a switcher or verifier head `.kst` made for this model (refused, by name, if it was
    /// made for another base or its labels do not fit its kind). A head of the same kind that
    /// was loaded before is replaced. Load heads before creating sessions: with a head loaded,
    /// every token a session runs also gets its head outputs (one small dispatch per forward).
    pub fn load_head(&mut self, path: impl AsRef<Path>) -> Result<HeadKind> {
        self.verify(path.as_ref())?;
        let head = HeadInfo::load(path.as_ref(), &self.config, &self.header_hash)?;
        self.add_head(head)
    }

    /// Make sessions compute features: the final-normed hidden states, pooled over a sequence
    /// by `pooling` ([`Session::prompt_features`], [`Session::features_with`],
    /// [`crate::PathOutput::features`]). They come from the machinery heads run on (an identity
    /// head `[hidden, hidden]` beside the loaded heads, its per-token rows pooled by the same
    /// code), so a head trained on them gives at inference exactly the logits `W · feature + b`,
    /// up to f32 rounding. Costs a `hidden²` f32 matrix on the GPU (1.3 MB at hidden 576) and
    /// `hidden` floats read back per token. Like `load_head`, call it before creating sessions.
    pub fn enable_features(&mut self, pooling: HeadPooling) -> Result<()> {
        let head = HeadInfo::features(self.config.hidden_size, pooling);
        let total: u64 = self
            .heads
            .as_ref()
            .map_or(0, |h| h.list.iter().map(HeadInfo::weight_bytes).sum())
            + head.weight_bytes();
        let limit = self.gpu.limits().max_storage_buffer_binding_size;
        if total > limit {
            return Err(EngineError::MemoryBudget {
                what: "the features head's weights (beside the loaded heads)".into(),
                needed: total,
                budget: limit,
            });
        }
        self.add_head(head)?;
        Ok(())
    }

    /// Adds `head` to the loaded heads, replacing one of the same kind.
    fn add_head(&mut self, head: HeadInfo) -> Result<HeadKind> {
        let kind = head.kind;
        let mut list: Vec<HeadInfo> = self
            .heads
            .take()
            .map(|h| h.list)
            .unwrap_or_default()
            .into_iter()
            .filter(|h| h.kind != kind)
            .collect();
        list.push(head);
        self.heads = Some(Heads::upload(&self.gpu, list)?);
        Ok(kind)
    }

    /// The loaded head of `kind`, if any.
    pub fn head(&self, kind: HeadKind) -> Option<&HeadInfo> {
        self.heads
            .as_ref()
            .and_then(|h| h.get(kind))
            .map(|(h, _)| h)
    }
}
