//! The host's multi-threaded read bandwidth: the roofline of a CPU adapter (lavapipe runs the
//! kernels on the host's cores, so its physical limit is the host's memory bus).
//!
//! Method: a buffer of `bytes` (default 1 GiB, far larger than any cache) of pseudo-random u64,
//! split into one contiguous chunk per thread (one thread per core). Each pass, every thread sums
//! its chunk with wrapping u64 adds (8 independent lanes, so the loop vectorises and is bound by
//! loads, not by the add chain); the pass's wall time covers all threads. The result is trusted
//! only if every pass's total equals the sum computed while filling — a skipped read cannot pass.
//! Reported: the best pass, in GB/s (10⁹ B/s).

use std::hint::black_box;
use std::time::Instant;

use anyhow::{bail, Context};

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostBandwidth {
    /// Best pass, GB/s.
    pub gb_s: f64,
    pub threads: usize,
    pub bytes: u64,
    pub passes: usize,
}

/// Measures `passes` timed reads of a `bytes`-sized buffer with `threads` threads (after one
/// untimed warm-up pass). Errors if the buffer cannot be allocated or a checksum differs.
pub fn measure(bytes: u64, threads: usize, passes: usize) -> anyhow::Result<HostBandwidth> {
    let threads = threads.max(1);
    let words = usize::try_from(bytes / 8).context("buffer size does not fit this host")?;
    if words < threads * 8 || passes == 0 {
        bail!(
            "host bandwidth probe needs at least {} B and one pass",
            threads * 64
        );
    }
    let mut buf: Vec<u64> = Vec::new();
    buf.try_reserve_exact(words).with_context(|| {
        format!(
            "allocating {} MiB for the host bandwidth probe",
            bytes >> 20
        )
    })?;
    buf.resize(words, 0);
    let per = words.div_ceil(threads);
    let expected = std::thread::scope(|s| {
        let handles: Vec<_> = buf
            .chunks_mut(per)
            .enumerate()
            .map(|(i, chunk)| s.spawn(move || fill(chunk, i as u64)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join())
            .try_fold(0u64, |acc, r| r.map(|v| acc.wrapping_add(v)))
    })
    .map_err(|_| anyhow::anyhow!("a host bandwidth fill thread panicked"))?;

    let mut best = f64::INFINITY;
    for pass in 0..=passes {
        let start = Instant::now();
        let total = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(per)
                .map(|chunk| s.spawn(move || sum(black_box(chunk))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join())
                .try_fold(0u64, |acc, r| r.map(|v| acc.wrapping_add(v)))
        })
        .map_err(|_| anyhow::anyhow!("a host bandwidth read thread panicked"))?;
        let secs = start.elapsed().as_secs_f64();
        if total != expected {
            bail!(
                "host bandwidth probe checksum mismatch (got {total:#x}, expected {expected:#x})"
            );
        }
        if pass > 0 {
            best = best.min(secs);
        }
    }
    let read = (words * 8) as f64;
    Ok(HostBandwidth {
        gb_s: read / best / 1e9,
        threads,
        bytes: words as u64 * 8,
        passes,
    })
}

/// Fills `chunk` with xorshift64 values seeded by `seed`; returns their wrapping sum.
fn fill(chunk: &mut [u64], seed: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut total = 0u64;
    for w in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *w = x;
        total = total.wrapping_add(x);
    }
    total
}

/// Wrapping sum in 8 independent lanes.
fn sum(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let chunks = words.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &w) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(w);
        }
    }
    acc.iter().chain(tail).fold(0u64, |t, &v| t.wrapping_add(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_equals_plain_wrapping_sum() {
        let mut v = vec![0u64; 1003];
        let expected = fill(&mut v, 7);
        assert_eq!(sum(&v), expected);
        assert_eq!(v.iter().fold(0u64, |t, &x| t.wrapping_add(x)), expected);
    }

    #[test]
    fn small_probe_is_verified_and_positive() {
        let r = measure(8 << 20, 3, 2).unwrap();
        assert!(r.gb_s.is_finite() && r.gb_s > 0.0, "{r:?}");
        assert_eq!((r.threads, r.passes), (3, 2));
        assert_eq!(r.bytes, 8 << 20);
    }

    #[test]
    fn too_small_a_buffer_is_an_error() {
        assert!(measure(64, 4, 1).is_err());
        assert!(measure(1 << 20, 1, 0).is_err());
    }
}
