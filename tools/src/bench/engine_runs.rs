//! Whole-engine measurements: prefill throughput and time to first token per prompt length, and
//! decode throughput with its dispatch and submit counts.
//!
//! Contract:
//! - Prompts are synthetic token ids (`synthetic_prompt`), so no tokenizer is needed; speed does
//!   not depend on which ids are used. Stop tokens are disabled, so every run generates exactly
//!   the requested count.
//! - Prefill: every run starts from an empty cache (`Session::reset`), so no prefix is reused;
//!   `generate(prompt, max_tokens = 1)`; tok/s = prompt / the engine's prefill time (which
//!   includes sampling the first token); TTFT = wall time from the call to the first token.
//! - Decode: `generate(prompt, max_tokens = G)`; tok/s = (G − 1) / the engine's decode time (the
//!   first token comes from prefill). The prompt is encoded once; later runs take it from the
//!   session's cache (all but its last token), so decode steps see the same context and runs
//!   follow each other within seconds. Dispatches and submits per token are the `Gpu` counter
//!   deltas between the first and the last token callback, divided by G − 1: exactly the decode
//!   steps, no prefill; so are the bytes read back per step. Several variants (base, LoRA adapter on) are measured in rounds of one
//!   run each, the order reversed every other round, so machine drift hits every variant alike
//!   and the per-round ratios hold. An adapter variant decodes in `Mode::Reasoning` over the
//!   base-encoded prompt (the engine's KV sharing).
//! - Reasoning TTFT (`reasoning_ttft`): a chat request encodes the prompt with the base weights,
//!   then a reasoning request on the same prompt is timed to its first token twice: with KV
//!   sharing (the prompt comes from the cache) and with `adapter_prompt` (the prompt is encoded
//!   again with the adapter on — what an engine without KV sharing must do).

use std::time::Instant;

use anyhow::Context;
use kestrel::{AdapterId, GenerateParams, Mode, Session};
use kestrel_kernels::{Gpu, GpuStats};

use super::stats::Summary;

/// Prefill at one prompt length.
#[derive(Debug, Clone)]
pub struct PrefillResult {
    pub prompt_tokens: usize,
    pub tok_s: Summary,
    pub ttft_ms: Summary,
}

/// Decode after a prompt.
#[derive(Debug, Clone)]
pub struct DecodeResult {
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub tok_s: Summary,
    /// Milliseconds per decode step (from the same runs).
    pub step_ms: Summary,
    /// The runs' step times per round (round i of every variant is adjacent in time).
    pub step_runs: Vec<f64>,
    pub dispatches_per_token: f64,
    pub submits_per_token: f64,
    /// Bytes read back to the host per decode step (`GpuStats::readback_bytes`).
    pub readback_bytes_per_token: f64,
}

/// `len` token ids cycling through a fixed set of ids below `vocab`.
pub fn synthetic_prompt(len: usize, vocab: usize) -> Vec<u32> {
    const SEEDS: [usize; 7] = [1000, 2024, 311, 42, 7919, 13, 5555];
    let vocab = vocab.max(1);
    (0..len)
        .map(|i| (SEEDS[i % SEEDS.len()] % vocab) as u32)
        .collect()
}

fn params(max_tokens: usize, adapter: Option<AdapterId>) -> GenerateParams {
    GenerateParams {
        max_tokens,
        stop_tokens: Some(vec![]),
        mode: if adapter.is_some() {
            Mode::Reasoning
        } else {
            Mode::Chat
        },
        adapter,
        ..GenerateParams::default()
    }
}

/// One warm-up run per variant (base, adapter on) — compiles pipelines, touches buffers:
/// prefill `prompt` and decode 2 tokens. Without it the first timed run of a variant pays for
/// its pipelines (the adapter's shrink, the unfused SwiGLU), which inflated `lora_step_ratio`.
pub fn warm_up(
    session: &mut Session<'_>,
    prompt: &[u32],
    variants: &[Option<AdapterId>],
) -> anyhow::Result<()> {
    for &adapter in variants {
        session.reset();
        session
            .generate(prompt, &params(2, adapter), |_| true)
            .context("warm-up run")?;
    }
    Ok(())
}

/// `repeat` prefill runs of `prompt`; `tick` after each.
pub fn prefill(
    session: &mut Session<'_>,
    prompt: &[u32],
    repeat: usize,
    mut tick: impl FnMut(),
) -> anyhow::Result<PrefillResult> {
    let (mut rate, mut ttft) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        session.reset();
        let start = Instant::now();
        let mut first = None;
        session
            .generate(prompt, &params(1, None), |_| {
                first.get_or_insert_with(Instant::now);
                true
            })
            .with_context(|| format!("prefill of {} tokens", prompt.len()))?;
        let t = session.timings();
        rate.push(t.prompt_tokens as f64 / t.prefill.as_secs_f64());
        ttft.push(first.map_or(f64::NAN, |f| (f - start).as_secs_f64() * 1e3));
        tick();
    }
    Ok(PrefillResult {
        prompt_tokens: prompt.len(),
        tok_s: Summary::of(&rate).context("no finite prefill time")?,
        ttft_ms: Summary::of(&ttft).context("no first token observed")?,
    })
}

/// Time to the first reasoning token after a chat request on the same prompt.
#[derive(Debug, Clone)]
pub struct ReasoningTtft {
    /// With KV sharing: the prompt's KV from the chat request is reused.
    pub shared_ms: Summary,
    /// Re-encoding the prompt with the adapter on.
    pub reencode_ms: Summary,
}

fn first_token_ms(
    session: &mut Session<'_>,
    prompt: &[u32],
    params: &GenerateParams,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut first = None;
    session
        .generate(prompt, params, |_| {
            first.get_or_insert_with(Instant::now);
            false
        })
        .context("reasoning request")?;
    first
        .map(|f| (f - start).as_secs_f64() * 1e3)
        .context("no first token observed")
}

/// `repeat` rounds of: reset, a chat request on `prompt` (encodes it with the base weights),
/// then the reasoning request with KV sharing and with the prompt re-encoded; `tick` after each.
pub fn reasoning_ttft(
    session: &mut Session<'_>,
    prompt: &[u32],
    adapter: AdapterId,
    repeat: usize,
    mut tick: impl FnMut(),
) -> anyhow::Result<ReasoningTtft> {
    let (mut shared, mut reencode) = (Vec::new(), Vec::new());
    let reasoning = params(1, Some(adapter));
    let reencoding = GenerateParams {
        adapter_prompt: true,
        ..reasoning.clone()
    };
    for _ in 0..repeat {
        session.reset();
        session
            .generate(prompt, &params(1, None), |_| true)
            .context("chat request before the reasoning one")?;
        shared.push(first_token_ms(session, prompt, &reasoning)?);
        reencode.push(first_token_ms(session, prompt, &reencoding)?);
        tick();
    }
    Ok(ReasoningTtft {
        shared_ms: Summary::of(&shared).context("no finite shared-KV TTFT")?,
        reencode_ms: Summary::of(&reencode).context("no finite re-encode TTFT")?,
    })
}

/// Sums over one variant's decode runs.
#[derive(Default)]
struct DecodeAcc {
    rate: Vec<f64>,
    step: Vec<f64>,
    dispatches: u64,
    submits: u64,
    readback: u64,
    steps: u64,
}

/// `repeat` decode runs of `gen` tokens after `prompt` (`gen ≥ 2`) for each variant (`None` =
/// base weights, `Some(id)` = that adapter on), interleaved; `tick` after each run. One result
/// per variant, in order.
pub fn decode(
    session: &mut Session<'_>,
    gpu: &Gpu,
    prompt: &[u32],
    gen: usize,
    repeat: usize,
    variants: &[Option<AdapterId>],
    mut tick: impl FnMut(),
) -> anyhow::Result<Vec<DecodeResult>> {
    anyhow::ensure!(
        gen >= 2,
        "decode needs at least 2 generated tokens (the first comes from prefill)"
    );
    let mut accs: Vec<DecodeAcc> = variants.iter().map(|_| DecodeAcc::default()).collect();
    session.reset();
    for round in 0..repeat {
        for i in super::stats::round_order(variants.len(), round) {
            decode_run(session, gpu, prompt, gen, variants[i], &mut accs[i])?;
            tick();
        }
    }
    accs.into_iter()
        .map(|acc| {
            let per = |v: u64| v as f64 / acc.steps.max(1) as f64;
            Ok(DecodeResult {
                prompt_tokens: prompt.len(),
                gen_tokens: gen,
                tok_s: Summary::of(&acc.rate).context("no finite decode time")?,
                step_ms: Summary::of(&acc.step).context("no finite decode time")?,
                step_runs: acc.step.clone(),
                dispatches_per_token: per(acc.dispatches),
                submits_per_token: per(acc.submits),
                readback_bytes_per_token: per(acc.readback),
            })
        })
        .collect()
}

fn decode_run(
    session: &mut Session<'_>,
    gpu: &Gpu,
    prompt: &[u32],
    gen: usize,
    adapter: Option<AdapterId>,
    acc: &mut DecodeAcc,
) -> anyhow::Result<()> {
    let mut first: Option<GpuStats> = None;
    let mut last = GpuStats::default();
    let mut count = 0usize;
    session
        .generate(prompt, &params(gen, adapter), |_| {
            count += 1;
            last = gpu.stats();
            first.get_or_insert(last);
            true
        })
        .with_context(|| format!("decoding {gen} tokens after {} prompt tokens", prompt.len()))?;
    let t = session.timings();
    let steps = t.generated.saturating_sub(1);
    anyhow::ensure!(
        steps > 0 && count == t.generated,
        "the engine generated {} of {gen} tokens",
        t.generated
    );
    let secs = t.decode.as_secs_f64();
    acc.rate.push(steps as f64 / secs);
    acc.step.push(secs * 1e3 / steps as f64);
    let first = first.unwrap_or(last);
    acc.dispatches += last.dispatches - first.dispatches;
    acc.submits += last.submits - first.submits;
    acc.readback += last.readback_bytes - first.readback_bytes;
    acc.steps += steps as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_prompts_have_the_length_and_stay_in_the_vocabulary() {
        let p = synthetic_prompt(100, 500);
        assert_eq!(p.len(), 100);
        assert!(p.iter().all(|&t| t < 500));
        assert!(p.iter().collect::<std::collections::BTreeSet<_>>().len() > 3);
        assert!(synthetic_prompt(5, 1).iter().all(|&t| t == 0));
    }
}
