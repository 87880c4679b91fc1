//! Multi-path decode step time: N reasoning paths decoded in lockstep over one shared prompt
//! (`Session::generate_paths`), one weight read per step serving all N.
//!
//! Contract:
//! - The prompt is encoded once; every request reuses it from the session's cache (the paths
//!   decode into their own suffix segments, so the prefix stays the prompt), which keeps a
//!   round's requests seconds apart instead of a prefill apart.
//! - For each N: one untimed warm-up request (2 tokens: compiles the N-column pipelines, sizes
//!   the per-path KV segments), then `repeat` rounds of one timed request of `G` tokens per path
//!   for every N, the order of N reversed every other round so linear drift hits all alike.
//! - step time = the engine's decode time / (generated − 1) (the first token of every path
//!   comes from the prompt's logits); `ratio[N]` = the median over rounds of
//!   step(N) / step(1) of the same round (N = 1 is always measured); aggregate throughput =
//!   N / median step time.
//! - Stop tokens are disabled, so every path runs the full `G` tokens.
//! - Sampling is the caller's (`kestrel bench` decodes greedily; `--backend noop` samples at
//!   temperature 0.7, as reasoning paths do).
//! - Dispatches and bytes read back per step: the `Gpu` counter deltas of a timed request minus
//!   those of a 1-token request (the same cached prompt, no decode step), divided by G − 1.

use anyhow::{bail, Context};
use kestrel::{GenerateParams, Sampling, Session, MAX_PATHS};
use kestrel_kernels::{Gpu, GpuStats};

use super::stats::Summary;

/// One N's result.
#[derive(Debug, Clone)]
pub struct PathStep {
    pub n: usize,
    /// Milliseconds per lockstep decode step (all N paths).
    pub step_ms: Summary,
    /// Median over rounds of step(N) / step(1) of the same round.
    pub ratio: f64,
    /// Tokens per second over all paths (N / median step).
    pub tok_s: f64,
    /// Compute dispatches per lockstep step.
    pub dispatches_per_step: f64,
    /// Bytes read back to the host per lockstep step.
    pub readback_bytes_per_step: f64,
}

/// The N values to measure: `paths` with 1 added, sorted, deduplicated, each in 1..=MAX_PATHS.
pub fn path_counts(paths: &[u32]) -> anyhow::Result<Vec<usize>> {
    if let Some(bad) = paths.iter().find(|&&n| n == 0 || n as usize > MAX_PATHS) {
        bail!("--paths: {bad} is outside 1..={MAX_PATHS} (the engine's multi-path range)");
    }
    let mut ns: Vec<usize> = paths.iter().map(|&n| n as usize).chain([1]).collect();
    ns.sort_unstable();
    ns.dedup();
    Ok(ns)
}

fn params(max_tokens: usize, sampling: &Sampling) -> GenerateParams {
    GenerateParams {
        max_tokens,
        stop_tokens: Some(vec![]),
        sampling: sampling.clone(),
        ..GenerateParams::default()
    }
}

/// One request of `gen` tokens per path (the prompt from the cache): milliseconds per step
/// (`gen ≥ 2`), and the `Gpu` counters it moved.
fn request(
    session: &mut Session<'_>,
    gpu: &Gpu,
    prompt: &[u32],
    n: usize,
    gen: usize,
    sampling: &Sampling,
) -> anyhow::Result<(f64, GpuStats)> {
    let before = gpu.stats();
    session
        .generate_paths(prompt, n, &params(gen, sampling))
        .with_context(|| format!("decoding {n} paths of {gen} tokens"))?;
    let after = gpu.stats();
    let moved = GpuStats {
        dispatches: after.dispatches - before.dispatches,
        submits: after.submits - before.submits,
        allocated_bytes: after.allocated_bytes - before.allocated_bytes,
        pipelines: after.pipelines - before.pipelines,
        readback_bytes: after.readback_bytes - before.readback_bytes,
        bind_groups: after.bind_groups - before.bind_groups,
    };
    let t = session.timings();
    let steps = t.generated.saturating_sub(1);
    anyhow::ensure!(
        gen == 1 || steps > 0,
        "the engine decoded {} of {gen} steps for {n} paths",
        t.generated
    );
    Ok((t.decode.as_secs_f64() * 1e3 / steps.max(1) as f64, moved))
}

/// Measures every N in `ns` (see the module contract) with `sampling`; `tick` after each
/// request.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    session: &mut Session<'_>,
    gpu: &Gpu,
    prompt: &[u32],
    gen: usize,
    ns: &[usize],
    repeat: usize,
    sampling: &Sampling,
    mut tick: impl FnMut(),
) -> anyhow::Result<Vec<PathStep>> {
    anyhow::ensure!(
        gen >= 2,
        "multi-path decode needs at least 2 tokens per path"
    );
    session.reset();
    // Per N: the counters of a request without decode steps, subtracted from the timed ones.
    let mut base = Vec::with_capacity(ns.len());
    for &n in ns {
        request(session, gpu, prompt, n, 2, sampling)?;
        base.push(request(session, gpu, prompt, n, 1, sampling)?.1);
        tick();
    }
    let mut samples = vec![Vec::with_capacity(repeat); ns.len()];
    let mut moved = vec![(0u64, 0u64); ns.len()];
    for round in 0..repeat {
        for i in super::stats::round_order(ns.len(), round) {
            let (ms, m) = request(session, gpu, prompt, ns[i], gen, sampling)?;
            samples[i].push(ms);
            moved[i].0 += m.dispatches.saturating_sub(base[i].dispatches);
            moved[i].1 += m.readback_bytes.saturating_sub(base[i].readback_bytes);
            tick();
        }
    }
    let steps = (repeat * (gen - 1)) as f64;
    ns.iter()
        .zip(&samples)
        .zip(&moved)
        .map(|((&n, s), &(dispatches, readback))| {
            let step_ms = Summary::of(s).context("no finite step time")?;
            let ratios: Vec<f64> = s.iter().zip(&samples[0]).map(|(a, b)| a / b).collect();
            Ok(PathStep {
                n,
                ratio: Summary::of(&ratios).context("no finite step ratio")?.median,
                tok_s: n as f64 * 1e3 / step_ms.median,
                step_ms,
                dispatches_per_step: dispatches as f64 / steps,
                readback_bytes_per_step: readback as f64 / steps,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_counts_always_include_one_and_reject_out_of_range() {
        assert_eq!(path_counts(&[8, 2, 4, 2]).unwrap(), vec![1, 2, 4, 8]);
        assert_eq!(path_counts(&[]).unwrap(), vec![1]);
        assert!(path_counts(&[0]).is_err());
        assert!(path_counts(&[MAX_PATHS as u32 + 1]).is_err());
    }
}
