//! `Engine`: a loaded model on the GPU with its tokenizer and chat template. Cheap to share
//! (`&Engine`) between sessions; all mutable state (KV cache, scratch) lives in `Session`.

use std::path::Path;
use std::sync::Arc;

use kestrel_formats::{Kind, KstFile, ModelConfig};
use kestrel_kernels::{Gpu, GpuOptions};

use crate::adapter::{Adapter, AdapterId};
use crate::error::{EngineError, Result};
use crate::forward::Kernels;
use crate::head::{HeadInfo, HeadKind, Heads};
use crate::session::Session;
use crate::tokenizer::{ChatTemplate, Message, Tokenizer};
use crate::weights::ModelWeights;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// GPU adapter choice and f16 mode (`KESTREL_ADAPTER`, `KESTREL_NO_F16` when unset).
    pub gpu: GpuOptions,
    /// Context window in tokens (prompt + generated); default `min(model max, 4096)`.
    pub max_context: Option<usize>,
    /// Prompt tokens processed per prefill dispatch batch (bounds scratch memory).
    pub prefill_chunk: usize,
    /// Upper bound on KV cache bytes per session; a request past it is `MemoryBudget`.
    pub kv_budget_bytes: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            gpu: GpuOptions::default(),
            max_context: None,
            prefill_chunk: 128,
            kv_budget_bytes: 2 << 30,
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

impl Engine {
    /// Load a `.kst` model: validate the file, create the GPU device, upload weights from the mmap.
    pub fn load(path: impl AsRef<Path>, options: EngineOptions) -> Result<Engine> {
        let gpu = Arc::new(Gpu::new(&options.gpu)?);
        Self::load_on(gpu, path, options)
    }

    /// Load onto an existing GPU device (several models or tests sharing one device).
    pub fn load_on(
        gpu: Arc<Gpu>,
        path: impl AsRef<Path>,
        options: EngineOptions,
    ) -> Result<Engine> {
        let file = KstFile::open(path.as_ref())?;
        if file.kind() != Kind::Model {
            return Err(EngineError::Unsupported(format!(
                "{} is not a model file (kind {:?})",
                path.as_ref().display(),
                file.kind()
            )));
        }
        let config = file.config()?.clone();
        config.validate()?;
        let json = file.tokenizer_json().ok_or_else(|| {
            EngineError::Tokenizer("the model file has no embedded tokenizer".into())
        })?;
        let tokenizer = Tokenizer::from_json(json)?;
        let name = |id: Option<u32>| {
            id.and_then(|i| tokenizer.id_to_token(i))
                .unwrap_or_default()
        };
        let template = match file.chat_template() {
            Some(src) => Some(ChatTemplate::new(
                src,
                &name(config.bos_token_id),
                &name(config.eos_token_ids.first().copied()),
            )?),
            None => None,
        };
        let weights = ModelWeights::load(&gpu, &file, &config)?;
        let kernels = Kernels::new(&gpu)?;
        if options.prefill_chunk == 0 {
            return Err(EngineError::BadParameter(
                "prefill_chunk must be > 0".into(),
            ));
        }
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

    /// Render a conversation with the model's chat template (generation prompt appended).
    pub fn render_chat(&self, messages: &[Message]) -> Result<String> {
        let t = self
            .template
            .as_ref()
            .ok_or_else(|| EngineError::Template("the model file has no chat template".into()))?;
        t.render(messages, true)
    }

    /// Render and tokenize a conversation (the template supplies the special tokens).
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self.render_chat(messages)?;
        self.tokenizer.encode(&text, false)
    }

    /// Tokenize plain text (with the tokenizer's own special-token post-processing).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }

    /// Load a LoRA adapter `.kst` made for this model (refused, by name, if it was made for another
    /// base or does not fit its shapes). Load adapters before creating sessions; switching
    /// between them per request costs nothing.
    pub fn load_adapter(&mut self, path: impl AsRef<Path>) -> Result<AdapterId> {
        let a = Adapter::load(&self.gpu, path.as_ref(), &self.config, &self.header_hash)?;
        self.adapters.push(a);
        Ok(AdapterId(self.adapters.len() - 1))
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
        let head = HeadInfo::load(path.as_ref(), &self.config, &self.header_hash)?;
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

    /// A new session (its own KV cache and scratch buffers).
    pub fn session(&self) -> Result<Session<'_>> {
        Session::new(self)
    }
}
