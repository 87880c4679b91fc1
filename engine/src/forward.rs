//! The forward pass, top to bottom, with HF names and shape comments.
//!
//! Per block (Qwen2 / Llama, pre-norm):
//! ```text
//! xn  = input_layernorm(x)                         [T, hidden]
//! qkv = xn · qkv_projᵀ (+ bias)                    [T, (H + 2·Hkv)·D]   one matmul for q|k|v
//! rope(q), rope(k) → K cache, v → V cache          one dispatch (rope_kv_append_f16)
//! a   = attention(q, K, V)                         [T, H·D]
//! x  += a · o_projᵀ                                residual fused in the matmul epilogue
//! xn  = post_attention_layernorm(x)
//! gu  = xn · gate_up_projᵀ                         [T, 2·I]              one matmul for gate|up
//! x  += swiglu(gu) · down_projᵀ                    residual fused
//! ```
//! then `logits = norm(x) · lm_headᵀ` for the rows asked for. Decode dispatches per layer: 9.
//! With an adapter on, +2: the q|k|v and gate|up shrinks are fused into the two norms
//! (`norm_shrink`), o's and down's are `lora_shrink` dispatches (`shrink`).
//!
//! Single-path generation appends each new token to the prefix segment (a T = 1 prefill step), so
//! the session's token bookkeeping alone decides what a later request can reuse.

use kestrel_kernels::attention_decode_f16::{AttentionDecode, DecodeBuffers, DecodeShape};
use kestrel_kernels::attention_prefill_f16::AttentionPrefill;
use kestrel_kernels::heads::{HeadDims, QkvLayout};
use kestrel_kernels::pooled_head_f32::{HeadShape, Pooling};
use kestrel_kernels::rmsnorm_f32::RmsNorm;
use kestrel_kernels::rope_kv_append_f16::{KvSegment, RopeKvBuffers};
use kestrel_kernels::sampling::{ARGMAX_NON_FINITE, PICK_WORDS};
use kestrel_kernels::{
    embedding, lora_shrink, lora_shrink_swiglu, matmul, matmul_swiglu, BufferBinding, Epilogue,
    Layout, LoraExpand, Recorder,
};

use crate::adapter::{Adapter, LoraGroup};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::head::HeadKind;
use crate::kv::{KvCache, LayerKv};
use crate::sampling::Sampling;

/// With `EngineOptions::profile_kernels`: submit and wait after every kernel and accumulate wall
/// time per kernel (printed by `kestrel generate --stats` under `KESTREL_PROFILE=1`). Slows
/// everything down; for finding hot spots only.
pub(crate) struct Profiler {
    on: bool,
    t0: std::time::Instant,
    pub totals: std::collections::BTreeMap<&'static str, (u32, std::time::Duration)>,
}

impl Default for Profiler {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Profiler {
    pub fn new(on: bool) -> Self {
        Profiler {
            on,
            t0: std::time::Instant::now(),
            totals: Default::default(),
        }
    }

    /// After recording kernel `name`: in profiling mode, flush the recorder and charge the time.
    fn step<'g>(&mut self, rec: &mut Recorder<'g>, name: &'static str) -> Result<()> {
        if !self.on {
            return Ok(());
        }
        let gpu = rec.gpu();
        let done = std::mem::replace(rec, Recorder::new(gpu));
        done.submit_and_wait()?;
        let now = std::time::Instant::now();
        let e = self.totals.entry(name).or_default();
        e.0 += 1;
        e.1 += now - self.t0;
        self.t0 = now;
        Ok(())
    }

    fn start(&mut self) {
        self.t0 = std::time::Instant::now();
    }
}

/// Rows of the logits buffer: one per path of a decode step; prefill logits are computed in
/// groups of this many rows.
pub(crate) const LOGIT_ROWS: usize = crate::engine::MAX_PATHS;

/// Which positions of a prefill chunk need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogitRows {
    None,
    Last,
    All,
}

/// Choose the next token of every logits row on the device, in the same submit as the forward
/// step: with these settings, at this decode step (the RNG counter).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PickOnDevice<'a> {
    pub sampling: &'a Sampling,
    pub step: usize,
}

/// Scratch buffers of one session, sized for `t_max` rows.
pub(crate) struct State {
    pub t_max: usize,
    ids: wgpu::Buffer,        // [t_max] u32
    positions: wgpu::Buffer,  // [t_max] u32
    inv_freq: wgpu::Buffer,   // [D/2] f32
    rope_factor: f32,         // cos/sin scale of every rotation (HF attention_scaling)
    x: wgpu::Buffer,          // [t_max, hidden] residual stream
    xn: wgpu::Buffer,         // [t_max, hidden] normed
    qkv: wgpu::Buffer,        // [t_max, (H + 2·Hkv)·D]
    attn: wgpu::Buffer,       // [t_max, H·D]
    gu: wgpu::Buffer,         // [t_max, 2·I]
    act: wgpu::Buffer,        // [t_max, I]
    h: wgpu::Buffer,          // [t_max, 3·R_max] LoRA shrink output
    last: wgpu::Buffer,       // [LOGIT_ROWS, hidden] rows picked for the lm_head
    last_n: wgpu::Buffer,     // [LOGIT_ROWS, hidden] normed
    pub logits: wgpu::Buffer, // [LOGIT_ROWS, V]
    heads_out: wgpu::Buffer,  // [max(t_max, LOGIT_ROWS), ΣC] per-token head outputs
    /// Per-token head outputs (`[rows, ΣC]`) of the last `forward_prefill`; empty without heads.
    pub head_rows: Vec<f32>,
    /// Rows of `logits` holding the latest result.
    pub logit_rows: usize,
    pub profiler: Profiler,
    s_len: wgpu::Buffer, // [LOGIT_ROWS] u32 suffix lengths for multi-path decode
    streams: wgpu::Buffer, // [LOGIT_ROWS] u32: row n samples with RNG stream n (its path)
    picked: wgpu::Buffer, // [LOGIT_ROWS, 4] u32: (token, flags, logprob, 0) chosen on the device
    attn_scratch: Option<wgpu::Buffer>, // split-K partials of attention_decode
    prefill_scratch: Option<wgpu::Buffer>, // split-K partials of attention_prefill (long contexts)
}

impl State {
    pub fn new(engine: &Engine, t_max: usize) -> Result<Self> {
        let c = &engine.config;
        let gpu = &engine.gpu;
        let f = |n: usize| (n.max(1) * 4) as u64;
        // Matmul inputs: as long as the profile needs to read them through the uniform x window
        // (Gpu::x_input; larger inputs are copied into the scratch x texture).
        let profile = *gpu.profile();
        let fx = |n: usize| profile.activation_bytes(f(n));
        let qkv_w = (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim;
        let d = c.head_dim;
        // One table for every rotation, computed as transformers' ROPE_INIT_FUNCTIONS do.
        let (inv_freq, rope_factor) = c.rope_tables();
        Ok(State {
            t_max,
            ids: gpu.zeros("ids", f(t_max))?,
            positions: gpu.zeros("positions", f(t_max))?,
            inv_freq: gpu.upload("inv_freq", bytemuck::cast_slice(&inv_freq))?,
            rope_factor,
            x: gpu.zeros("x", fx(t_max * c.hidden_size))?,
            xn: gpu.zeros("xn", fx(t_max * c.hidden_size))?,
            qkv: gpu.zeros("qkv", f(t_max * qkv_w))?,
            attn: gpu.zeros("attn", fx(t_max * c.num_attention_heads * d))?,
            gu: gpu.zeros("gu", fx(t_max * 2 * c.intermediate_size))?,
            act: gpu.zeros("act", fx(t_max * c.intermediate_size))?,
            // Like x: W4/W8 matmuls read h through the window when the profile says (H_UNIFORM).
            h: gpu.zeros(
                "lora_h",
                fx(t_max * 3 * kestrel_kernels::lora_shrink::MAX_RANK as usize),
            )?,
            last: gpu.zeros("last", f(LOGIT_ROWS * c.hidden_size))?,
            last_n: gpu.zeros("last_n", fx(LOGIT_ROWS * c.hidden_size))?,
            logits: gpu.zeros("logits", f(LOGIT_ROWS * c.vocab_size))?,
            heads_out: gpu.zeros(
                "heads_out",
                f(t_max.max(LOGIT_ROWS) * engine.heads.as_ref().map_or(1, |h| h.width)),
            )?,
            head_rows: Vec::new(),
            logit_rows: 0,
            profiler: Profiler::new(engine.options.profile_kernels),
            s_len: gpu.zeros("s_len", f(LOGIT_ROWS))?,
            streams: gpu.upload(
                "streams",
                bytemuck::cast_slice(&(0..LOGIT_ROWS as u32).collect::<Vec<u32>>()),
            )?,
            picked: gpu.zeros("picked", f(PICK_WORDS * LOGIT_ROWS))?,
            attn_scratch: None,
            prefill_scratch: None,
        })
    }
}

/// The epilogue that adds group `g`'s LoRA expand (from its shrink output `h`) to a base matmul.
fn expand<'a>(adapter: &'a Adapter, g: &'a LoraGroup, h: &'a wgpu::Buffer) -> LoraExpand<'a> {
    LoraExpand {
        h,
        h_offset: 0,
        h_stride: g.parts * adapter.rank,
        b: &g.b,
        rank: adapter.rank,
        scale: adapter.scale,
        segments: g.segments,
    }
}

/// Record the LoRA shrink of one group (`h = x · [A_0; A_1; ..]ᵀ`, or with `swiglu`
/// `h = swiglu(x) · ..` for x = gate | up) and return the epilogue that adds its expand to the
/// base matmul.
fn shrink<'a>(
    rec: &mut Recorder<'_>,
    prof: &mut Profiler,
    x: &wgpu::Buffer,
    h: &'a wgpu::Buffer,
    group: Option<(&'a Adapter, &'a LoraGroup)>,
    t: u32,
    swiglu: bool,
) -> Result<Option<LoraExpand<'a>>> {
    let Some((adapter, g)) = group else {
        return Ok(None);
    };
    if swiglu {
        lora_shrink_swiglu(rec, x, &g.a, h, t)?;
    } else {
        lora_shrink(rec, x, &g.a, h, t)?;
    }
    prof.step(rec, "lora_shrink")?;
    Ok(Some(expand(adapter, g, h)))
}

/// Record `xn = rmsnorm(x) · w` for a block's q|k|v or gate|up input and, when the group has a
/// LoRA delta, its shrink in the same dispatch (`rmsnorm_shrink_f32`); return the epilogue that
/// adds the expand to the base matmul.
fn norm_shrink<'a>(
    rec: &mut Recorder<'_>,
    prof: &mut Profiler,
    norm: &RmsNorm,
    (x, w, xn): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    h: &'a wgpu::Buffer,
    group: Option<(&'a Adapter, &'a LoraGroup)>,
    (t, hidden, eps): (u32, u32, f32),
) -> Result<Option<LoraExpand<'a>>> {
    let Some((adapter, g)) = group else {
        norm.encode(rec, x, w, xn, t, hidden, eps)?;
        prof.step(rec, "rmsnorm")?;
        return Ok(None);
    };
    norm.encode_lora_shrink(rec, x, w, xn, &g.a, h, t, hidden, eps)?;
    prof.step(rec, "rmsnorm+lora_shrink")?;
    Ok(Some(expand(adapter, g, h)))
}

impl Engine {
    fn dims(&self) -> HeadDims {
        let c = &self.config;
        HeadDims {
            h: c.num_attention_heads as u32,
            hkv: c.num_key_value_heads as u32,
            d: c.head_dim as u32,
        }
    }

    /// Run `tokens` (positions `past ..`) through every block, appending their K/V to the prefix
    /// segment, and return the logits of the requested rows (`[rows, V]` row-major). With `pick`
    /// (and `rows` = `Last`) the last row's next token is chosen on the device instead and nothing
    /// is returned: read it with [`Engine::read_picked`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_prefill(
        &self,
        st: &mut State,
        kv: &KvCache,
        tokens: &[u32],
        past: usize,
        rows: LogitRows,
        lora: Option<&Adapter>,
        pick: Option<PickOnDevice<'_>>,
    ) -> Result<Vec<f32>> {
        if pick.is_some() && rows != LogitRows::Last {
            return Err(EngineError::BadParameter(
                "a token is picked on the device only from the last row".into(),
            ));
        }
        let t = tokens.len();
        if t == 0 || t > st.t_max {
            return Err(EngineError::BadParameter(format!(
                "prefill chunk of {t} tokens (max {})",
                st.t_max
            )));
        }
        if past + t > kv.shape.prefix {
            return Err(EngineError::ContextOverflow {
                what: "prefix",
                needed: past + t,
                limit: kv.shape.prefix,
            });
        }
        let c = &self.config;
        let (dims, tt) = (self.dims(), t as u32);
        let layout = QkvLayout::fused(dims);
        let gpu = &*self.gpu;
        let positions: Vec<u32> = (past as u32..(past + t) as u32).collect();
        gpu.write(&st.ids, 0, bytemuck::cast_slice(tokens));
        gpu.write(&st.positions, 0, bytemuck::cast_slice(&positions));
        // One token (a single-path decode step on the prefix) attends with the decode kernel:
        // the prefill kernel's query tiles would be 1/16 full. Prefix only, no suffix.
        let one = DecodeShape {
            n: 1,
            p_len: (past + 1) as u32,
            p_cap: kv.shape.prefix as u32,
            n_max: kv.shape.paths as u32,
            s_cap: kv.shape.suffix as u32,
            s_max: 0,
        };
        if t == 1 {
            self.ensure_decode_scratch(st, kv, &one)?;
            gpu.write(&st.s_len, 0, bytemuck::bytes_of(&0u32));
        }
        // Long contexts split the keys across workgroups (exact merge) and need scratch.
        let need = if t == 1 {
            0
        } else {
            AttentionPrefill::scratch_bytes(dims, tt, past as u32)
        };
        if need > 0 && st.prefill_scratch.as_ref().is_none_or(|b| b.size() < need) {
            let most = AttentionPrefill::scratch_bytes(
                dims,
                st.t_max as u32,
                (kv.shape.prefix as u32).saturating_sub(st.t_max as u32),
            );
            // Bind groups that hold the old scratch would keep it alive.
            gpu.clear_bind_groups();
            st.prefill_scratch = Some(gpu.zeros("attention_prefill scratch", most.max(need))?);
        }
        let k = &self.kernels;
        let w = &self.weights;
        st.profiler.start();
        let mut rec = Recorder::new(gpu);
        embedding(&mut rec, &w.embed_tokens, &st.ids, &st.x, tt)?; // x: [T, hidden]
        st.profiler.step(&mut rec, "embedding")?;
        let mut prof = std::mem::take(&mut st.profiler);
        let state = &*st;
        let seg = KvSegment::prefix(kv.shape.prefix as u32, tt);
        let scratch = state.prefill_scratch.as_ref().map(BufferBinding::from);
        let mut attend = |rec: &mut Recorder<'_>, lkv: &LayerKv| -> Result<()> {
            if t == 1 {
                return self.attend_decode(rec, state, lkv, one);
            }
            k.attention_prefill.encode_split(
                rec,
                &state.qkv,
                &lkv.k_pre,
                &lkv.v_pre,
                &state.attn,
                scratch,
                dims,
                layout,
                tt,
                past as u32,
                kv.shape.prefix as u32,
            )?; // attn: [T, H·D]
            Ok(())
        };
        let blocks = self.encode_blocks(
            &mut rec,
            state,
            &mut prof,
            kv,
            tt,
            (false, seg),
            lora,
            &mut attend,
        );
        st.profiler = prof;
        blocks?;
        st.head_rows.clear();
        // A single token with logits (a single-path decode step) reuses the row the lm_head
        // normalises; otherwise the heads get a final norm of every row (xn is free now).
        let heads = self.heads.is_some();
        let heads_after_lm_head = heads && t == 1 && rows != LogitRows::None;
        if heads && !heads_after_lm_head {
            self.kernels.rmsnorm.encode(
                &mut rec,
                &st.x,
                &self.weights.norm,
                &st.xn,
                tt,
                c.hidden_size as u32,
                c.rms_norm_eps as f32,
            )?;
            self.encode_heads(&mut rec, st, &st.xn, tt)?;
            st.profiler.step(&mut rec, "heads")?;
        }
        let wanted: Vec<usize> = match rows {
            LogitRows::None => vec![],
            LogitRows::Last => vec![t - 1],
            LogitRows::All => (0..t).collect(),
        };
        if wanted.is_empty() {
            rec.submit()?;
            st.head_rows = self.read_heads(st, t)?;
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(wanted.len() * c.vocab_size);
        let mut rec = Some(rec);
        for group in wanted.chunks(LOGIT_ROWS) {
            let mut r = rec.take().unwrap_or_else(|| Recorder::new(gpu));
            self.encode_lm_head(&mut r, st, group)?;
            st.profiler.step(&mut r, "lm_head")?;
            if heads_after_lm_head {
                self.encode_heads(&mut r, st, &st.last_n, 1)?;
                st.profiler.step(&mut r, "heads")?;
            }
            if let Some(pick) = pick {
                self.encode_pick(&mut r, st, 1, pick)?;
                st.profiler.step(&mut r, "pick")?;
                r.submit()?;
                continue;
            }
            r.submit()?;
            self.read_logits_into(st, &mut out)?;
        }
        st.head_rows = self.read_heads(st, t)?;
        Ok(out)
    }

    /// One decode step of `tokens.len()` paths in lockstep over the shared prefix (`p_len`
    /// tokens): path n's token is at suffix slot `step` (position `p_len + step`). Appends each
    /// path's K/V to its suffix segment and leaves `[N, V]` logits in `st.logits`; with `pick`,
    /// each path's next token is also chosen on the device (path n = RNG stream n), for
    /// [`Engine::read_picked`]. One weight read serves all paths (the matmuls run with T = N
    /// columns); the prefix is read once per step for all paths' queries.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_decode(
        &self,
        st: &mut State,
        kv: &KvCache,
        tokens: &[u32],
        p_len: usize,
        step: usize,
        lora: Option<&Adapter>,
        pick: Option<PickOnDevice<'_>>,
    ) -> Result<()> {
        let n = tokens.len();
        if n == 0 || n > LOGIT_ROWS || n > kv.shape.paths || step >= kv.shape.suffix {
            return Err(EngineError::BadParameter(format!(
                "decode step {step} of {n} paths does not fit the cache {:?}",
                kv.shape
            )));
        }
        let nn = n as u32;
        let shape = DecodeShape {
            n: nn,
            p_len: p_len as u32,
            p_cap: kv.shape.prefix as u32,
            n_max: kv.shape.paths as u32,
            s_cap: kv.shape.suffix as u32,
            s_max: step as u32 + 1,
        };
        let gpu = &*self.gpu;
        self.ensure_decode_scratch(st, kv, &shape)?;
        let positions = vec![(p_len + step) as u32; n];
        let s_len = vec![step as u32 + 1; n];
        gpu.write(&st.ids, 0, bytemuck::cast_slice(tokens));
        gpu.write(&st.positions, 0, bytemuck::cast_slice(&positions));
        gpu.write(&st.s_len, 0, bytemuck::cast_slice(&s_len));
        let w = &self.weights;
        let mut rec = Recorder::new(gpu);
        embedding(&mut rec, &w.embed_tokens, &st.ids, &st.x, nn)?; // x: [N, hidden]
        let mut prof = std::mem::take(&mut st.profiler);
        let state = &*st;
        let seg = KvSegment::suffix(
            kv.shape.paths as u32,
            kv.shape.suffix as u32,
            1,
            p_len as u32,
        );
        let mut attend =
            |rec: &mut Recorder<'_>, lkv: &LayerKv| self.attend_decode(rec, state, lkv, shape);
        let blocks = self.encode_blocks(
            &mut rec,
            state,
            &mut prof,
            kv,
            nn,
            (true, seg),
            lora,
            &mut attend,
        );
        st.profiler = prof;
        blocks?;
        let rows: Vec<usize> = (0..n).collect();
        self.encode_lm_head(&mut rec, st, &rows)?;
        if self
            .heads
            .as_ref()
            .is_some_and(|h| h.list.iter().any(|h| h.kind != HeadKind::Switcher))
        {
            // Path tokens' head rows serve only the verifier and the features (the switcher
            // pools prompts). The lm_head left the paths' final-normed hidden states in last_n.
            self.encode_heads(&mut rec, st, &st.last_n, nn)?;
        }
        if let Some(pick) = pick {
            self.encode_pick(&mut rec, st, nn, pick)?;
        }
        rec.submit()?;
        Ok(())
    }

    /// Records the choice of the next token of the first `n` logits rows into `st.picked`:
    /// `argmax_f32` when greedy, else `sample_f32` with row n on RNG stream n.
    fn encode_pick(
        &self,
        rec: &mut Recorder<'_>,
        st: &State,
        n: u32,
        pick: PickOnDevice<'_>,
    ) -> Result<()> {
        let v = self.config.vocab_size as u32;
        let logits = BufferBinding::range(&st.logits, 0, u64::from(n) * u64::from(v) * 4);
        if pick.sampling.is_greedy() {
            self.kernels.argmax.encode(rec, logits, &st.picked, n, v)?;
        } else {
            let cfg = pick.sampling.kernel_config(pick.step);
            self.kernels
                .sample
                .encode(rec, logits, &st.streams, &st.picked, n, v, &cfg)?;
        }
        Ok(())
    }

    /// The next token of the first `n` rows of the last forward's logits, chosen on the CPU by
    /// the reference sampler (row n = path n); `buf` is reused for the `[n, V]` read-back.
    pub(crate) fn pick_on_cpu(
        &self,
        st: &State,
        n: usize,
        sampling: &Sampling,
        step: usize,
        buf: &mut Vec<f32>,
    ) -> Result<Vec<(u32, f32)>> {
        let v = self.config.vocab_size;
        buf.clear();
        self.read_logits_into(st, buf)?;
        (0..n)
            .map(|p| crate::sampling::pick(&buf[p * v..(p + 1) * v], sampling, step, p))
            .collect()
    }

    /// The tokens the last forward with `pick` chose for its first `n` rows, with their
    /// logprobs (16 bytes a row read back); a row that held NaN/Inf is an error at `step`, never
    /// a silent token 0.
    pub(crate) fn read_picked(&self, st: &State, n: usize, step: usize) -> Result<Vec<(u32, f32)>> {
        let words = self.gpu.read::<u32>(&st.picked, 0, PICK_WORDS * n)?;
        words
            .chunks_exact(PICK_WORDS)
            .map(|w| {
                if w[1] & ARGMAX_NON_FINITE != 0 {
                    Err(EngineError::NonFiniteLogits { step })
                } else {
                    Ok((w[0], f32::from_bits(w[2])))
                }
            })
            .collect()
    }

    /// Records every loaded head over the `n` final-normed rows of `xn` into `st.heads_out`.
    fn encode_heads(
        &self,
        rec: &mut Recorder<'_>,
        st: &State,
        xn: &wgpu::Buffer,
        n: u32,
    ) -> Result<()> {
        let Some(h) = &self.heads else {
            return Ok(());
        };
        let hidden = self.config.hidden_size as u32;
        self.kernels.pooled_head.encode(
            rec,
            BufferBinding::range(xn, 0, u64::from(n * hidden) * 4),
            &h.weight,
            &h.bias,
            &st.heads_out,
            HeadShape {
                batch: n,
                t: 1,
                hidden,
                classes: h.width as u32,
            },
            Pooling::Last { end: 1 },
        )?; // heads_out: [n, ΣC]
        Ok(())
    }

    /// Read back the per-token head outputs of the last forward (`[n, ΣC]`; empty without heads).
    pub(crate) fn read_heads(&self, st: &State, n: usize) -> Result<Vec<f32>> {
        match &self.heads {
            None => Ok(Vec::new()),
            Some(h) => Ok(self.gpu.read::<f32>(&st.heads_out, 0, n * h.width)?),
        }
    }

    /// Grows the split-K scratch of `attention_decode` to fit `shape` (sized for the cache's
    /// largest step on first use).
    fn ensure_decode_scratch(
        &self,
        st: &mut State,
        kv: &KvCache,
        shape: &DecodeShape,
    ) -> Result<()> {
        let dims = self.dims();
        let need = AttentionDecode::scratch_bytes(dims, shape);
        if st.attn_scratch.as_ref().is_none_or(|b| b.size() < need) {
            let full = DecodeShape {
                n: kv.shape.paths as u32,
                s_max: kv.shape.suffix as u32,
                ..*shape
            };
            let bytes = AttentionDecode::scratch_bytes(dims, &full).max(need);
            // Bind groups that hold the old scratch would keep it alive.
            self.gpu.clear_bind_groups();
            st.attn_scratch = Some(self.gpu.zeros("attention_decode scratch", bytes)?);
        }
        Ok(())
    }

    /// `attention_decode` of `shape.n` queries (rows of `st.qkv`) over the prefix and the paths'
    /// suffixes (`st.s_len`) into `st.attn`.
    fn attend_decode(
        &self,
        rec: &mut Recorder<'_>,
        st: &State,
        lkv: &LayerKv,
        shape: DecodeShape,
    ) -> Result<()> {
        let scratch = st
            .attn_scratch
            .as_ref()
            .ok_or_else(|| EngineError::Unsupported("no attention scratch".into()))?;
        let bufs = DecodeBuffers {
            q: (&st.qkv).into(),
            k_pre: (&lkv.k_pre).into(),
            v_pre: (&lkv.v_pre).into(),
            k_suf: (&lkv.k_suf).into(),
            v_suf: (&lkv.v_suf).into(),
            s_len: (&st.s_len).into(),
            scratch: scratch.into(),
            out: (&st.attn).into(),
        };
        self.kernels.attention_decode.encode(
            rec,
            bufs,
            self.dims(),
            QkvLayout::fused(self.dims()),
            shape,
        )?; // attn: [N, H·D]
        Ok(())
    }

    /// Every decoder block over the `t` rows of `st.x` (see the module docs). The new K/V rows go
    /// to the prefix segment, or with `suffix` to the per-path suffix segments, at `seg`;
    /// `attend` records the attention that fits that layout (q from `st.qkv`, out `st.attn`).
    #[allow(clippy::too_many_arguments)]
    fn encode_blocks(
        &self,
        rec: &mut Recorder<'_>,
        st: &State,
        prof: &mut Profiler,
        kv: &KvCache,
        t: u32,
        (suffix, seg): (bool, KvSegment),
        lora: Option<&Adapter>,
        attend: &mut dyn FnMut(&mut Recorder<'_>, &LayerKv) -> Result<()>,
    ) -> Result<()> {
        let c = &self.config;
        let (hidden, inter, eps) = (
            c.hidden_size as u32,
            c.intermediate_size as u32,
            c.rms_norm_eps as f32,
        );
        let dims = self.dims();
        let layout = QkvLayout::fused(dims);
        let k = &self.kernels;
        for (i, (layer, lkv)) in self.weights.layers.iter().zip(&kv.layers).enumerate() {
            let ll = lora.map(|a| (a, &a.layers[i]));
            let group = |pick: fn(&crate::adapter::LayerLora) -> &Option<LoraGroup>| {
                ll.and_then(|(a, l)| pick(l).as_ref().map(|g| (a, g)))
            };
            let qkv_lora = norm_shrink(
                rec,
                prof,
                &k.rmsnorm,
                (&st.x, &layer.input_layernorm, &st.xn),
                &st.h,
                group(|l| &l.qkv),
                (t, hidden, eps),
            )?;
            let ep = Epilogue {
                bias: layer.qkv_bias.as_ref(),
                lora: qkv_lora,
                ..Epilogue::default()
            };
            matmul(rec, &layer.qkv_proj, &st.xn, &st.qkv, t, &ep)?; // qkv: [T, (H+2Hkv)·D]
            prof.step(rec, "qkv_proj")?;
            let (k_cache, v_cache) = if suffix {
                (&lkv.k_suf, &lkv.v_suf)
            } else {
                (&lkv.k_pre, &lkv.v_pre)
            };
            let bufs = RopeKvBuffers {
                qkv: (&st.qkv).into(),
                positions: (&st.positions).into(),
                inv_freq: (&st.inv_freq).into(),
                k_cache: k_cache.into(),
                v_cache: v_cache.into(),
            };
            k.rope_kv
                .encode(rec, bufs, t, dims, layout, seg, Some(st.rope_factor))?;
            prof.step(rec, "rope_kv_append")?;
            attend(rec, lkv)?; // attn: [T, H·D]
            prof.step(rec, "attention")?;
            let o_lora = shrink(rec, prof, &st.attn, &st.h, group(|l| &l.o), t, false)?;
            let residual = Epilogue {
                accumulate: true,
                lora: o_lora,
                ..Epilogue::default()
            };
            matmul(rec, &layer.o_proj, &st.attn, &st.x, t, &residual)?; // x += attn · o_projᵀ
            prof.step(rec, "o_proj")?;
            let gu_lora = norm_shrink(
                rec,
                prof,
                &k.rmsnorm,
                (&st.x, &layer.post_attention_layernorm, &st.xn),
                &st.h,
                group(|l| &l.gate_up),
                (t, hidden, eps),
            )?;
            let ep = Epilogue {
                lora: gu_lora,
                ..Epilogue::default()
            };
            matmul(rec, &layer.gate_up_proj, &st.xn, &st.gu, t, &ep)?; // gu: [T, 2I]
            prof.step(rec, "gate_up_proj")?;
            let quantized = matches!(
                layer.down_proj.layout,
                Layout::W4 { .. } | Layout::W8 { .. }
            );
            if quantized {
                // The down projection and its LoRA shrink read silu(gate) · up themselves: no
                // SwiGLU pass.
                let down_lora = shrink(rec, prof, &st.gu, &st.h, group(|l| &l.down), t, true)?;
                let residual = Epilogue {
                    accumulate: true,
                    lora: down_lora,
                    ..Epilogue::default()
                };
                matmul_swiglu(rec, &layer.down_proj, &st.gu, &st.x, t, &residual)?;
            // x += swiglu(gu) · downᵀ
            } else {
                // The F16/F32 kernels need the activation itself.
                k.swiglu.encode(rec, &st.gu, &st.act, t, inter)?; // act: [T, I]
                prof.step(rec, "swiglu")?;
                let down_lora = shrink(rec, prof, &st.act, &st.h, group(|l| &l.down), t, false)?;
                let residual = Epilogue {
                    accumulate: true,
                    lora: down_lora,
                    ..Epilogue::default()
                };
                matmul(rec, &layer.down_proj, &st.act, &st.x, t, &residual)?; // x += act · downᵀ
            }
            prof.step(rec, "down_proj")?;
        }
        Ok(())
    }

    /// Copy rows of the residual stream into `last`, normalise, and project to logits.
    fn encode_lm_head(&self, rec: &mut Recorder<'_>, st: &mut State, rows: &[usize]) -> Result<()> {
        let c = &self.config;
        let row_bytes = (c.hidden_size * 4) as u64;
        for (i, &r) in rows.iter().enumerate() {
            rec.copy(
                &st.x,
                r as u64 * row_bytes,
                &st.last,
                i as u64 * row_bytes,
                row_bytes,
            );
        }
        let n = rows.len() as u32;
        self.kernels.rmsnorm.encode(
            rec,
            BufferBinding::range(&st.last, 0, n as u64 * row_bytes),
            &self.weights.norm,
            BufferBinding::range(&st.last_n, 0, n as u64 * row_bytes),
            n,
            c.hidden_size as u32,
            c.rms_norm_eps as f32,
        )?;
        matmul(
            rec,
            self.weights.lm_head(),
            &st.last_n,
            &st.logits,
            n,
            &Epilogue::default(),
        )?;
        st.logit_rows = rows.len();
        Ok(())
    }

    /// Read back the latest `[logit_rows, V]` logits.
    /// The `[logit_rows, V]` logits of the last forward, appended to `out`.
    pub(crate) fn read_logits_into(&self, st: &State, out: &mut Vec<f32>) -> Result<()> {
        let at = out.len();
        out.resize(at + st.logit_rows * self.config.vocab_size, 0.0);
        Ok(self.gpu.read_into(&st.logits, 0, &mut out[at..])?)
    }
}
