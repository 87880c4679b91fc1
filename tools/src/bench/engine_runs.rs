//! Whole-engine measurements: prefill throughput and time to first token per prompt length, and
//! decode throughput with its dispatch and submit counts.
//!
//! Contract:
//! - Prompts are synthetic token ids (`synthetic_prompt`), so no tokenizer is needed; speed does
//!   not depend on which ids are used. Stop tokens are disabled, so every run generates exactly
//!   the requested count.
//! - Every run starts from an empty cache (`Session::reset`), so no prefix is reused.
//! - Prefill: `generate(prompt, max_tokens = 1)`; tok/s = prompt / the engine's prefill time
//!   (which includes sampling the first token); TTFT = wall time from the call to the first token.
//! - Decode: `generate(prompt, max_tokens = G)`; tok/s = (G − 1) / the engine's decode time (the
//!   first token comes from prefill). Dispatches and submits per token are the `Gpu` counter
//!   deltas between the first and the last token callback, divided by G − 1: exactly the decode
//!   steps, no prefill.

use std::time::Instant;

use anyhow::Context;
use kestrel::{GenerateParams, Sampling, Session};
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
    pub dispatches_per_token: f64,
    pub submits_per_token: f64,
}

/// `len` token ids cycling through a fixed set of ids below `vocab`.
pub fn synthetic_prompt(len: usize, vocab: usize) -> Vec<u32> {
    const SEEDS: [usize; 7] = [1000, 2024, 311, 42, 7919, 13, 5555];
    let vocab = vocab.max(1);
    (0..len)
        .map(|i| (SEEDS[i % SEEDS.len()] % vocab) as u32)
        .collect()
}

fn params(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: Sampling::default(),
        stop_tokens: Some(vec![]),
        cancel: None,
    }
}

/// One warm-up run (compiles pipelines, touches buffers): prefill `prompt` and decode 2 tokens.
pub fn warm_up(session: &mut Session<'_>, prompt: &[u32]) -> anyhow::Result<()> {
    session.reset();
    session
        .generate(prompt, &params(2), |_| true)
        .context("warm-up run")?;
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
            .generate(prompt, &params(1), |_| {
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

/// `repeat` decode runs of `gen` tokens after `prompt` (`gen ≥ 2`); `tick` after each.
pub fn decode(
    session: &mut Session<'_>,
    gpu: &Gpu,
    prompt: &[u32],
    gen: usize,
    repeat: usize,
    mut tick: impl FnMut(),
) -> anyhow::Result<DecodeResult> {
    anyhow::ensure!(
        gen >= 2,
        "decode needs at least 2 generated tokens (the first comes from prefill)"
    );
    let (mut rate, mut step, mut dispatches, mut submits) = (Vec::new(), Vec::new(), 0u64, 0u64);
    let mut steps_total = 0u64;
    for _ in 0..repeat {
        session.reset();
        let mut first: Option<GpuStats> = None;
        let mut last = GpuStats::default();
        let mut count = 0usize;
        session
            .generate(prompt, &params(gen), |_| {
                count += 1;
                last = gpu.stats();
                first.get_or_insert(last);
                true
            })
            .with_context(|| {
                format!("decoding {gen} tokens after {} prompt tokens", prompt.len())
            })?;
        let t = session.timings();
        let steps = t.generated.saturating_sub(1);
        anyhow::ensure!(
            steps > 0 && count == t.generated,
            "the engine generated {} of {gen} tokens",
            t.generated
        );
        let secs = t.decode.as_secs_f64();
        rate.push(steps as f64 / secs);
        step.push(secs * 1e3 / steps as f64);
        let first = first.unwrap_or(last);
        dispatches += last.dispatches - first.dispatches;
        submits += last.submits - first.submits;
        steps_total += steps as u64;
        tick();
    }
    let per = |v: u64| v as f64 / steps_total.max(1) as f64;
    Ok(DecodeResult {
        prompt_tokens: prompt.len(),
        gen_tokens: gen,
        tok_s: Summary::of(&rate).context("no finite decode time")?,
        step_ms: Summary::of(&step).context("no finite decode time")?,
        dispatches_per_token: per(dispatches),
        submits_per_token: per(submits),
    })
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
