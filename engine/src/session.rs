//! `Session`: one conversation's KV cache, and generation over it.
//!
//! A request's prompt is always prefilled by the base weights into the shared prefix segment. The
//! session remembers which tokens the prefix holds; a later request whose prompt starts with the
//! same tokens reuses them and prefills only the rest (multi-turn chat, chat ↔ reasoning switching).
//! Generated tokens go to the per-path suffix segments.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapter::{Adapter, AdapterId};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::forward::{LogitRows, PickOnDevice, State};
pub use crate::head::Mode;
use crate::head::{pool, HeadInfo, HeadKind, PoolAcc, SwitchDecision};
use crate::kv::{KvCache, KvShape};
use crate::reasoning::{Thinking, ThinkingBudget};
use crate::sampling::{pick, Sampling};
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
    /// Chat (base) or reasoning (adapter on) decoding.
    pub mode: Mode,
    /// The adapter for reasoning mode; `None` = the first loaded adapter.
    pub adapter: Option<AdapterId>,
    /// Standard LoRA semantics: encode the prompt with the adapter on too. The default (false)
    /// is KV sharing: the prompt is encoded by the base weights, so chat and reasoning decode
    /// from the same cached prompt without re-encoding.
    pub adapter_prompt: bool,
    /// Budget forcing of the thinking span (`None`: no budget).
    pub thinking: Option<ThinkingBudget>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 256,
            sampling: Sampling::default(),
            stop_tokens: None,
            cancel: None,
            mode: Mode::Chat,
            adapter: None,
            adapter_prompt: false,
            thinking: None,
        }
    }
}

/// One generated token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: u32,
    /// The text this token adds (may be empty while a UTF-8 character is incomplete).
    pub text: String,
    /// Log-probability of the token under the distribution it was drawn from (temperature,
    /// top-k and top-p applied); 0 when greedy or when the thinking budget forced it.
    pub logprob: f32,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// The model produced a stop token.
    Stop,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// The `on_token` callback of [`Session::generate`] returned `false`.
    Callback,
    /// The stream returned an error (from `next`) and ended.
    Error,
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

/// A validated request: which adapter encodes the prompt and which decodes, and the stop ids.
struct Request {
    prompt_lora: Option<AdapterId>,
    decode_lora: Option<AdapterId>,
    stop: Vec<u32>,
    /// Mode::Auto: the switcher decides after the prompt is encoded whether `decode_lora` is used.
    auto: bool,
}

/// A session over an engine: KV cache + scratch.
pub struct Session<'e> {
    pub(crate) engine: &'e Engine,
    pub(crate) state: State,
    pub(crate) kv: KvCache,
    /// What the prefix segment of the KV cache holds, position by position.
    pub(crate) prefix: CachedPrefix,
    pub(crate) timings: Timings,
    last_switch: Option<SwitchDecision>,
}

/// What the prefix segment of a session's KV cache holds: one record per cached position, in
/// order — the token, the adapter that was on when it was encoded (a cached token is reused
/// only under the same weights), and its per-token head outputs (`width` values; none without
/// heads). Records are added and dropped only whole.
pub(crate) struct CachedPrefix {
    tokens: Vec<u32>,
    lora: Vec<Option<AdapterId>>,
    heads: Vec<f32>,
    width: usize,
}

impl CachedPrefix {
    fn new(width: usize) -> Self {
        CachedPrefix {
            tokens: Vec::new(),
            lora: Vec::new(),
            heads: Vec::new(),
            width,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The per-token head outputs, `[len, width]` row-major.
    pub(crate) fn heads(&self) -> &[f32] {
        &self.heads
    }

    /// Cached positions that `prompt` encoded with `lora` would reuse: the common prefix.
    fn common(&self, prompt: &[u32], lora: Option<AdapterId>) -> usize {
        self.tokens
            .iter()
            .zip(&self.lora)
            .zip(prompt)
            .take_while(|((t, l), p)| *t == *p && **l == lora)
            .count()
    }

    /// Keep the first `n` positions.
    fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
        self.lora.truncate(n);
        self.heads.truncate(n * self.width);
    }

    /// Append `tokens`, encoded with `lora`, with their head rows (`[tokens.len(), width]`: a
    /// forward pass reads back one row per token whenever heads are loaded).
    fn push(&mut self, tokens: &[u32], lora: Option<AdapterId>, heads: &[f32]) {
        debug_assert_eq!(heads.len(), tokens.len() * self.width);
        self.tokens.extend_from_slice(tokens);
        self.lora.extend(std::iter::repeat_n(lora, tokens.len()));
        self.heads.extend_from_slice(heads);
    }
}

impl Engine {
    /// A new session (its own KV cache and scratch buffers).
    pub fn session(&self) -> Result<Session<'_>> {
        Session::new(self)
    }
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
        Ok(Session {
            engine,
            state,
            kv,
            prefix: CachedPrefix::new(engine.heads.as_ref().map_or(0, |h| h.width)),
            timings: Timings::default(),
            last_switch: None,
        })
    }

    /// Timings of the last request.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Per-kernel wall time accumulated with `EngineOptions::profile_kernels` (name, calls,
    /// time).
    pub fn profile(&self) -> Vec<(&'static str, u32, Duration)> {
        self.state
            .profiler
            .totals
            .iter()
            .map(|(k, v)| (*k, v.0, v.1))
            .collect()
    }

    /// Forget the cached prompt.
    pub fn reset(&mut self) {
        self.prefix.truncate(0);
    }

    /// The switcher's decision of the last `Mode::Auto` request or [`Session::switch`] call.
    pub fn last_switch(&self) -> Option<&SwitchDecision> {
        self.last_switch.as_ref()
    }

    fn heads_width(&self) -> usize {
        self.engine.heads.as_ref().map_or(0, |h| h.width)
    }

    /// The loaded head of `kind` and its first column in a per-token row.
    fn head_of(&self, kind: HeadKind) -> Result<(&'e HeadInfo, usize)> {
        let engine: &'e Engine = self.engine;
        engine
            .heads
            .as_ref()
            .and_then(|h| h.get(kind))
            .ok_or_else(|| {
                EngineError::Head(format!("no {kind:?} head is loaded (Engine::load_head)"))
            })
    }

    /// Pools the head of `kind` over the per-token rows `rows` (`[n, ΣC]`, n ≥ 1).
    fn pool_head(&self, kind: HeadKind, rows: &[f32]) -> Result<Vec<f32>> {
        let (head, col) = self.head_of(kind)?;
        pool(rows, self.heads_width(), head, col)
            .ok_or_else(|| EngineError::BadParameter("no tokens to pool".into()))
    }

    /// The switcher's decision on the cached prefix (the prompt just prefilled).
    fn decide(&mut self) -> Result<SwitchDecision> {
        let logits = self.pool_head(HeadKind::Switcher, self.prefix.heads())?;
        let head = self.head_of(HeadKind::Switcher)?.0;
        let d = SwitchDecision::new(&head.labels, logits, head.threshold);
        self.last_switch = Some(d.clone());
        Ok(d)
    }

    /// The switcher's verdict on `prompt` (encoded by the base weights, reusing and filling the
    /// session's prompt cache, so a following request on the same prompt does not encode it
    /// again). Needs a switcher head ([`Engine::load_head`]).
    pub fn switch(&mut self, prompt: &[u32]) -> Result<SwitchDecision> {
        self.check_tokens(prompt)?;
        self.head_of(HeadKind::Switcher)?;
        self.prefill(prompt, None, LogitRows::None, None, false)?;
        self.decide()
    }

    /// The verifier's score (a logit; [`crate::sigmoid`] for a probability) of the sequence
    /// `tokens`, pooled as the head says (its last token, or the mean over all tokens). As in
    /// [`Session::logits_with`], the first `base_prefix` tokens are encoded by the base weights
    /// and the rest with `adapter` on; this is how a reasoning path is scored in
    /// [`Session::generate_paths`] (prompt by the base, path by the adapter).
    pub fn score_with(
        &mut self,
        tokens: &[u32],
        adapter: Option<AdapterId>,
        base_prefix: usize,
    ) -> Result<f32> {
        self.head_of(HeadKind::Verifier)?;
        self.encode_with(tokens, adapter, base_prefix, LogitRows::None)?;
        Ok(self.pool_head(HeadKind::Verifier, self.prefix.heads())?[0])
    }

    /// The features of `prompt` ([`Engine::enable_features`]): its final-normed hidden states
    /// as the base weights encode it, pooled as the features were enabled — what a switcher
    /// reads. Reuses and fills the prompt cache like [`Session::switch`].
    pub fn prompt_features(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        self.check_tokens(prompt)?;
        self.head_of(HeadKind::Features)?;
        self.prefill(prompt, None, LogitRows::None, None, false)?;
        self.pool_head(HeadKind::Features, self.prefix.heads())
    }

    /// The features of the sequence `tokens`, encoded as [`Session::score_with`] encodes it
    /// (the first `base_prefix` tokens by the base weights, the rest with `adapter` on): what
    /// the verifier reads of a path given as tokens rather than generated.
    pub fn features_with(
        &mut self,
        tokens: &[u32],
        adapter: Option<AdapterId>,
        base_prefix: usize,
    ) -> Result<Vec<f32>> {
        self.head_of(HeadKind::Features)?;
        self.encode_with(tokens, adapter, base_prefix, LogitRows::None)?;
        self.pool_head(HeadKind::Features, self.prefix.heads())
    }

    /// Validate a generation request and resolve its adapters and stop tokens.
    fn request(&self, prompt: &[u32], params: &GenerateParams) -> Result<Request> {
        self.check_tokens(prompt)?;
        params.sampling.validate()?;
        let limit = self.engine.max_context;
        // Checked: `max_tokens` comes from the user (`usize::MAX` must not wrap past the check).
        let needed = prompt.len().checked_add(params.max_tokens);
        if needed.is_none_or(|n| n > limit) {
            return Err(EngineError::ContextOverflow {
                what: "prompt + max tokens",
                needed: needed.unwrap_or(usize::MAX),
                limit,
            });
        }
        if let Some(b) = &params.thinking {
            b.validate()?;
        }
        let auto = params.mode == Mode::Auto;
        if auto {
            self.head_of(HeadKind::Switcher)?;
            if params.adapter_prompt {
                return Err(EngineError::BadParameter(
                    "auto mode decides after the base weights encode the prompt; \
                     adapter_prompt needs an explicit mode"
                        .into(),
                ));
            }
        }
        let decode_lora = self.decode_adapter(params)?;
        Ok(Request {
            prompt_lora: if params.adapter_prompt {
                decode_lora
            } else {
                None
            },
            decode_lora,
            stop: params
                .stop_tokens
                .clone()
                .unwrap_or_else(|| self.engine.config.eos_token_ids.clone()),
            auto,
        })
    }

    /// The adapter a request decodes with (None in chat mode; auto mode: the adapter reasoning
    /// would use).
    pub(crate) fn decode_adapter(&self, params: &GenerateParams) -> Result<Option<AdapterId>> {
        match params.mode {
            Mode::Chat => Ok(None),
            Mode::Reasoning | Mode::Auto => {
                let id = params
                    .adapter
                    .or_else(|| self.engine.adapters().next().map(|(id, _)| id))
                    .ok_or_else(|| {
                        EngineError::Adapter(format!(
                            "{:?} mode needs a LoRA adapter; none is loaded",
                            params.mode
                        ))
                    })?;
                self.engine.adapter(id)?;
                Ok(Some(id))
            }
        }
    }

    fn lora(&self, id: Option<AdapterId>) -> Option<&'e Adapter> {
        let engine: &'e Engine = self.engine;
        id.and_then(|id| engine.adapter(id).ok())
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
        self.logits_with(tokens, None, 0)
    }

    /// Logits `[T, V]` with an adapter: the first `base_prefix` tokens are encoded by the base
    /// weights and the rest with the adapter on over that KV (KV sharing); `base_prefix = 0` is
    /// the standard semantics (adapter on for every token).
    pub fn logits_with(
        &mut self,
        tokens: &[u32],
        adapter: Option<AdapterId>,
        base_prefix: usize,
    ) -> Result<Vec<f32>> {
        self.encode_with(tokens, adapter, base_prefix, LogitRows::All)
    }

    /// `tokens` from scratch, the first `base_prefix` by the base weights and the rest with
    /// `adapter` on; returns the logits of every row (`All`) or none.
    fn encode_with(
        &mut self,
        tokens: &[u32],
        adapter: Option<AdapterId>,
        base_prefix: usize,
        rows: LogitRows,
    ) -> Result<Vec<f32>> {
        self.check_tokens(tokens)?;
        if let Some(id) = adapter {
            self.engine.adapter(id)?;
        }
        if base_prefix > tokens.len() {
            return Err(EngineError::BadParameter(format!(
                "prompt length {base_prefix} is longer than the {} tokens",
                tokens.len()
            )));
        }
        self.reset();
        let (head, tail) = tokens.split_at(if adapter.is_some() {
            base_prefix
        } else {
            tokens.len()
        });
        let mut out = Vec::with_capacity(tokens.len() * self.engine.config.vocab_size);
        if !head.is_empty() {
            out.extend(self.prefill(head, None, rows, None, true)?);
        }
        if !tail.is_empty() {
            out.extend(self.prefill(tail, None, rows, adapter, true)?);
        }
        Ok(out)
    }

    /// Prefill `prompt` into the prefix segment and return the logits of the requested rows of
    /// the newly prefilled tokens. With `append`, `prompt` continues the cached prefix
    /// (positions follow it); otherwise it is a whole prompt matched against the cache, and the
    /// matching part is reused. `lora` = the adapter to encode with.
    pub(crate) fn prefill(
        &mut self,
        prompt: &[u32],
        cancel: Option<&CancelToken>,
        rows: LogitRows,
        lora: Option<AdapterId>,
        append: bool,
    ) -> Result<Vec<f32>> {
        // At least one token is processed so that the last prompt position has fresh logits.
        let (base, reuse) = if append {
            (self.prefix.len(), 0)
        } else {
            (0, self.prefix.common(prompt, lora).min(prompt.len() - 1))
        };
        let reuse = base + reuse;
        let prompt = &prompt[reuse - base..];
        self.prefix.truncate(reuse);
        self.timings.cached_tokens = reuse;
        let chunk = self.state.t_max;
        let mut out = Vec::new();
        let mut past = reuse;
        let end = reuse + prompt.len();
        let adapter = self.lora(lora);
        for piece in prompt.chunks(chunk) {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(EngineError::Cancelled);
            }
            let last = past + piece.len() == end;
            let want = match rows {
                LogitRows::Last if !last => LogitRows::None,
                r => r,
            };
            let logits = self.engine.forward_prefill(
                &mut self.state,
                &self.kv,
                piece,
                past,
                want,
                adapter,
                None,
            )?;
            out.extend(logits);
            past += piece.len();
            self.prefix.push(piece, lora, &self.state.head_rows);
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
                return Ok((ids, FinishReason::Callback));
            }
        }
        Ok((ids, stream.finish.unwrap_or(FinishReason::MaxTokens)))
    }

    /// A streaming iterator over generated tokens. The prompt is prefilled on the first `next()`.
    pub fn stream(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
    ) -> Result<TokenStream<'_, 'e>> {
        let req = self.request(prompt, params)?;
        self.timings = Timings {
            prompt_tokens: prompt.len(),
            ..Timings::default()
        };
        Ok(TokenStream {
            session: self,
            prompt: prompt.to_vec(),
            params: params.clone(),
            thinking: Thinking::new(params.thinking.as_ref()),
            req,
            step: 0,
            next_token: None,
            decoder: StreamDecoder::new(),
            finish: None,
        })
    }

    /// Prefill a request's prompt (base weights unless `adapter_prompt`) and return its last
    /// row's logits. In auto mode the switcher then decides: chat drops the decode adapter.
    fn prefill_request(
        &mut self,
        prompt: &[u32],
        req: &mut Request,
        cancel: Option<&CancelToken>,
    ) -> Result<Vec<f32>> {
        let t0 = Instant::now();
        let logits = self.prefill(prompt, cancel, LogitRows::Last, req.prompt_lora, false)?;
        if req.auto && self.decide()?.mode == Mode::Chat {
            req.decode_lora = None;
        }
        self.timings.prefill = t0.elapsed();
        Ok(logits)
    }
}

/// One of several reasoning paths.
#[derive(Debug, Clone, PartialEq)]
pub struct PathOutput {
    pub tokens: Vec<u32>,
    pub finish: FinishReason,
    /// The verifier's score of the path (a logit, pooled over the prompt and the path's tokens
    /// as the head says); `None` without a verifier head.
    pub score: Option<f32>,
    /// The thinking budget ran out and the end of thinking was forced.
    pub thinking_forced: bool,
    /// With [`Engine::enable_features`]: the path's features, pooled over the prompt and the
    /// path's tokens exactly as the verifier's rows are pooled for `score`.
    pub features: Option<Vec<f32>>,
    /// Per token: its log-probability under the distribution it was drawn from (as
    /// [`Token::logprob`]); their sum is the path's log-likelihood under the sampler.
    pub logprobs: Vec<f32>,
}

pub use crate::engine::MAX_PATHS;

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // The GPU's cached bind groups hold this session's KV cache and scratch buffers.
        self.engine.gpu.clear_bind_groups();
    }
}

impl Session<'_> {
    /// Parallel test-time scaling: decode `n` paths (1..=16) in lockstep as one batch over the
    /// shared prompt KV. The prompt is encoded once (by the base weights unless
    /// `adapter_prompt`); each path has its own suffix segment and its own random stream
    /// (`(seed, step, path)`), and one weight read per step serves all paths. Greedy paths are
    /// identical; with temperature they explore. A path stops at a stop token; the step loop ends
    /// when all have stopped or `max_tokens` is reached. Each path has its own thinking budget
    /// (`params.thinking`). With a verifier head loaded, every path gets a score: the head over
    /// the hidden state of the path's last token (or the mean over prompt + path), which costs
    /// one more batched step after the last one to run the final tokens through the model.
    pub fn generate_paths(
        &mut self,
        prompt: &[u32],
        n: usize,
        params: &GenerateParams,
    ) -> Result<Vec<PathOutput>> {
        if n == 0 || n > MAX_PATHS {
            return Err(EngineError::BadParameter(format!(
                "paths must be in 1..={MAX_PATHS}, got {n}"
            )));
        }
        let mut req = self.request(prompt, params)?;
        let cancel = params.cancel.as_ref();
        self.kv
            .ensure_suffix(&self.engine.gpu, n, params.max_tokens.max(1))?;
        self.timings = Timings {
            prompt_tokens: prompt.len(),
            ..Timings::default()
        };
        let engine = self.engine;
        let v = engine.config.vocab_size;
        let first = self.prefill_request(prompt, &mut req, cancel)?;
        let verifier = self.head_of(HeadKind::Verifier).ok();
        let features = self.head_of(HeadKind::Features).ok();
        let width = self.heads_width();
        // Every path's verifier (and features) pooling starts with the prompt's rows.
        let prompt_acc = |head: Option<(&HeadInfo, usize)>| {
            head.map_or_else(PoolAcc::default, |(h, col)| {
                PoolAcc::over(self.prefix.heads(), width, col..col + h.classes())
            })
        };
        let mut acc = vec![prompt_acc(verifier); n];
        let mut feat_acc = vec![prompt_acc(features); n];
        // Paths are scored after their last token has run through the model.
        let scored = verifier.is_some() || features.is_some();
        let mut out: Vec<PathOutput> = (0..n)
            .map(|_| PathOutput {
                tokens: Vec::new(),
                finish: FinishReason::MaxTokens,
                score: None,
                thinking_forced: false,
                features: None,
                logprobs: Vec::new(),
            })
            .collect();
        let mut thinking = vec![Thinking::new(params.thinking.as_ref()); n];
        let mut done = vec![false; n];
        // Paths whose token of this step is their own (not one past their stop).
        let mut live = vec![true; n];
        // The first token of every path comes from the prompt's last row, each path drawing on
        // its own RNG stream; later tokens are chosen on the device in each step's submit.
        let mut picked = (0..n)
            .map(|p| pick(&first[..v], &params.sampling, 0, p))
            .collect::<Result<Vec<(u32, f32)>>>()?;
        let on_device = !engine.options.pick_on_cpu;
        let mut logits = Vec::new();
        let lora = self.lora(req.decode_lora);
        let t0 = Instant::now();
        for step in 0..params.max_tokens {
            let mut next = Vec::with_capacity(n);
            for p in 0..n {
                let (mut id, logprob) = picked[p];
                live[p] = !done[p];
                if !done[p] {
                    let sampled = id;
                    id = thinking[p].choose(id);
                    out[p].tokens.push(id);
                    out[p]
                        .logprobs
                        .push(if id == sampled { logprob } else { 0.0 });
                    if req.stop.contains(&id) {
                        done[p] = true;
                        out[p].finish = FinishReason::Stop;
                    }
                }
                next.push(id);
            }
            self.timings.generated = step + 1;
            let last = done.iter().all(|&d| d) || step + 1 == params.max_tokens;
            if last && !scored {
                break;
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(EngineError::Cancelled);
            }
            // Runs this step's tokens: the next logits, and the verifier rows of these tokens
            // (after the last step only the rows are needed).
            let p_len = self.prefix.len();
            let choose = (on_device && !last).then_some(PickOnDevice {
                sampling: &params.sampling,
                step: step + 1,
            });
            engine.forward_decode(&mut self.state, &self.kv, &next, p_len, step, lora, choose)?;
            if scored {
                let rows = engine.read_heads(&self.state, n)?;
                for p in (0..n).filter(|&p| live[p]) {
                    let row = &rows[p * width..(p + 1) * width];
                    if let Some((_, col)) = verifier {
                        acc[p].push(&row[col..col + 1]);
                    }
                    if let Some((h, col)) = features {
                        feat_acc[p].push(&row[col..col + h.classes()]);
                    }
                }
            }
            if last {
                break;
            }
            picked = if on_device {
                engine.read_picked(&self.state, n, step + 1)?
            } else {
                engine.pick_on_cpu(&self.state, n, &params.sampling, step + 1, &mut logits)?
            };
        }
        self.timings.decode = t0.elapsed();
        for (p, o) in out.iter_mut().enumerate() {
            o.thinking_forced = thinking[p].was_forced;
            o.score = verifier
                .and_then(|(h, _)| acc[p].finish(h.pooling))
                .map(|v| v[0]);
            o.features = features.and_then(|(h, _)| feat_acc[p].finish(h.pooling));
        }
        Ok(out)
    }
}

/// Iterator of generated tokens (see [`Session::stream`]).
pub struct TokenStream<'s, 'e> {
    session: &'s mut Session<'e>,
    prompt: Vec<u32>,
    params: GenerateParams,
    req: Request,
    thinking: Thinking,
    step: usize,
    next_token: Option<u32>,
    decoder: StreamDecoder,
    /// Set when the stream has ended.
    pub finish: Option<FinishReason>,
}

impl TokenStream<'_, '_> {
    /// The thinking budget ran out and the end of thinking was forced.
    pub fn thinking_forced(&self) -> bool {
        self.thinking.was_forced
    }

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
        let sampled = match self.next_token {
            None => {
                let logits = s.prefill_request(&self.prompt, &mut self.req, cancel.as_ref())?;
                pick(&logits, &self.params.sampling, 0, 0)?
            }
            Some(prev) => {
                let t0 = Instant::now();
                // Single-path decode appends `prev` to the prefix segment (a T = 1 step).
                let past = s.prefix.len();
                let lora = s.lora(self.req.decode_lora);
                let on_device = !engine.options.pick_on_cpu;
                let logits = engine.forward_prefill(
                    &mut s.state,
                    &s.kv,
                    &[prev],
                    past,
                    LogitRows::Last,
                    lora,
                    on_device.then_some(PickOnDevice {
                        sampling: &self.params.sampling,
                        step: self.step,
                    }),
                )?;
                s.prefix
                    .push(&[prev], self.req.decode_lora, &s.state.head_rows);
                let id = if on_device {
                    engine.read_picked(&s.state, 1, self.step)?[0]
                } else {
                    pick(&logits, &self.params.sampling, self.step, 0)?
                };
                s.timings.decode += t0.elapsed();
                id
            }
        };
        let (sampled, logprob) = sampled;
        let id = self.thinking.choose(sampled);
        let logprob = if id == sampled { logprob } else { 0.0 };
        self.step += 1;
        s.timings.generated = self.step;
        self.next_token = Some(id);
        let text = self
            .decoder
            .push(&s.engine.tokenizer, id)?
            .unwrap_or_default();
        if self.req.stop.contains(&id) {
            self.finish = Some(FinishReason::Stop);
        }
        Ok(Some(Token { id, text, logprob }))
    }
}

impl Iterator for TokenStream<'_, '_> {
    type Item = Result<Token>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.advance() {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => None,
            Err(e) => {
                self.finish = Some(FinishReason::Error);
                Some(Err(e))
            }
        }
    }
}
