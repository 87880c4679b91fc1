//! `Session`: one conversation's KV cache, and generation over it.
//!
//! A request's prompt is always prefilled by the base weights into the shared prefix segment. The
//! session remembers which tokens the prefix holds; a later request whose prompt starts with the
//! same tokens reuses them and prefills only the rest (multi-turn chat, chat ↔ reasoning switching).
//! Generated tokens go to the per-path suffix segments.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::forward::{LogitRows, State};
use crate::kv::{KvCache, KvShape};
use crate::sampling::Sampling;
use crate::tokenizer::StreamDecoder;

/// Cancels a running request from another thread (checked between prefill chunks and decode steps).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A generation request.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Maximum tokens to generate (the stop token, if produced, counts).
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Token ids that end generation; `None` = the model's EOS ids.
    pub stop_tokens: Option<Vec<u32>>,
    /// Cancellation, checked between prefill chunks and decode steps.
    pub cancel: Option<CancelToken>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams { max_tokens: 256, sampling: Sampling::default(), stop_tokens: None, cancel: None }
    }
}

/// One generated token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: u32,
    /// The text this token adds (may be empty while a UTF-8 character is incomplete).
    pub text: String,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    MaxTokens,
}

/// Timing of the last request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Prompt tokens that were reused from the cache (not prefilled again).
    pub cached_tokens: usize,
    pub prefill: Duration,
    pub decode: Duration,
    pub generated: usize,
}

/// A session over an engine: KV cache + scratch.
pub struct Session<'e> {
    pub(crate) engine: &'e Engine,
    pub(crate) state: State,
    pub(crate) kv: KvCache,
    /// Tokens whose KV the prefix segment holds, in order.
    pub(crate) prefix: Vec<u32>,
    pub(crate) timings: Timings,
}

impl<'e> Session<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Result<Self> {
        let c = &engine.config;
        let shape = KvShape {
            layers: c.num_hidden_layers,
            kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
            prefix: engine.max_context,
            paths: 1,
            suffix: 1,
        };
        let kv = KvCache::new(&engine.gpu, shape, engine.options.kv_budget_bytes)?;
        let state = State::new(engine, engine.options.prefill_chunk.max(1))?;
        Ok(Session { engine, state, kv, prefix: Vec::new(), timings: Timings::default() })
    }

    /// Timings of the last request.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Forget the cached prompt.
    pub fn reset(&mut self) {
        self.prefix.clear();
    }

    pub(crate) fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let vocab = self.engine.config.vocab_size;
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(EngineError::TokenOutOfRange { id, vocab });
        }
        if tokens.len() > self.engine.max_context {
            return Err(EngineError::ContextOverflow {
                what: "prompt",
                needed: tokens.len(),
                limit: self.engine.max_context,
            });
        }
        Ok(())
    }

    /// Logits `[T, V]` (row-major f32) for `tokens`, computed from scratch with the base weights.
    pub fn logits(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.check_tokens(tokens)?;
        self.prefix.clear();
        self.prefill(tokens, None, LogitRows::All)
    }

    /// Prefill `prompt` into the prefix segment, reusing the cached prefix where it matches.
    /// Returns the logits of the requested rows of the newly prefilled tokens.
    pub(crate) fn prefill(&mut self, prompt: &[u32], cancel: Option<&CancelToken>, rows: LogitRows) -> Result<Vec<f32>> {
        let common = self.prefix.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        // At least one token is processed so that the last prompt position has fresh logits.
        let reuse = if rows == LogitRows::All { 0 } else { common.min(prompt.len() - 1) };
        self.prefix.truncate(reuse);
        self.timings.cached_tokens = reuse;
        let chunk = self.state.t_max;
        let mut out = Vec::new();
        let mut past = reuse;
        for piece in prompt[reuse..].chunks(chunk) {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(EngineError::Cancelled);
            }
            let last = past + piece.len() == prompt.len();
            let want = match rows {
                LogitRows::All => LogitRows::All,
                _ if last => LogitRows::Last,
                _ => LogitRows::None,
            };
            let logits = self.engine.forward_prefill(&mut self.state, &self.kv, piece, past, want)?;
            out.extend(logits);
            past += piece.len();
            self.prefix.extend_from_slice(piece);
        }
        Ok(out)
    }

    /// Generate from `prompt`, calling `on_token` for each token as it is produced; return the
    /// full list of generated ids and why generation ended. `on_token` may return `false` to stop.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        mut on_token: impl FnMut(&Token) -> bool,
    ) -> Result<(Vec<u32>, FinishReason)> {
        let mut ids = Vec::new();
        let mut stream = self.stream(prompt, params)?;
        while let Some(tok) = stream.next() {
            let tok = tok?;
            ids.push(tok.id);
            if !on_token(&tok) {
                return Ok((ids, FinishReason::Stop));
            }
        }
        Ok((ids, stream.finish.unwrap_or(FinishReason::MaxTokens)))
    }

    /// A streaming iterator over generated tokens. The prompt is prefilled on the first `next()`.
    pub fn stream(&mut self, prompt: &[u32], params: &GenerateParams) -> Result<TokenStream<'_, 'e>> {
        self.check_tokens(prompt)?;
        params.sampling.validate()?;
        let limit = self.engine.max_context;
        if prompt.len() + params.max_tokens > limit {
            return Err(EngineError::ContextOverflow {
                what: "prompt + max tokens",
                needed: prompt.len() + params.max_tokens,
                limit,
            });
        }
        let stop = params.stop_tokens.clone().unwrap_or_else(|| self.engine.config.eos_token_ids.clone());
        self.timings = Timings { prompt_tokens: prompt.len(), ..Timings::default() };
        Ok(TokenStream {
            session: self,
            prompt: prompt.to_vec(),
            params: params.clone(),
            stop,
            step: 0,
            next_token: None,
            decoder: StreamDecoder::new(),
            finish: None,
        })
    }
}

/// Iterator of generated tokens (see [`Session::stream`]).
pub struct TokenStream<'s, 'e> {
    session: &'s mut Session<'e>,
    prompt: Vec<u32>,
    params: GenerateParams,
    stop: Vec<u32>,
    step: usize,
    next_token: Option<u32>,
    decoder: StreamDecoder,
    /// Set when the stream has ended.
    pub finish: Option<FinishReason>,
}

impl TokenStream<'_, '_> {
    fn advance(&mut self) -> Result<Option<Token>> {
        if self.finish.is_some() {
            return Ok(None);
        }
        if self.step >= self.params.max_tokens {
            self.finish = Some(FinishReason::MaxTokens);
            return Ok(None);
        }
        let cancel = self.params.cancel.clone();
        if cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Err(EngineError::Cancelled);
        }
        let s = &mut *self.session;
        let engine = s.engine;
        let id = match self.next_token {
            None => {
                let t0 = Instant::now();
                s.prefill(&self.prompt, cancel.as_ref(), LogitRows::Last)?;
                let id = engine.sample(&mut s.state, 1, &self.params.sampling, 0, true)?[0];
                s.timings.prefill = t0.elapsed();
                id
            }
            Some(prev) => {
                let t0 = Instant::now();
                // Single-path decode appends `prev` to the prefix segment (a T = 1 step).
                let past = s.prefix.len();
                engine.forward_prefill(&mut s.state, &s.kv, &[prev], past, LogitRows::Last)?;
                s.prefix.push(prev);
                let id = engine.sample(&mut s.state, 1, &self.params.sampling, self.step, false)?[0];
                s.timings.decode += t0.elapsed();
                id
            }
        };
        self.step += 1;
        s.timings.generated = self.step;
        self.next_token = Some(id);
        let text = self.decoder.push(&s.engine.tokenizer, id)?.unwrap_or_default();
        if self.stop.contains(&id) {
            self.finish = Some(FinishReason::Stop);
        }
        Ok(Some(Token { id, text }))
    }
}

impl Iterator for TokenStream<'_, '_> {
    type Item = Result<Token>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.advance() {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => None,
            Err(e) => {
                self.finish = Some(FinishReason::Stop);
                Some(Err(e))
            }
        }
    }
}
