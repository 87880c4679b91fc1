//! The kernel-level N-path figure: what one decode step's weight streaming costs with N
//! activation columns, until the engine decodes several paths itself.
//!
//! Method: every layer's MLP weights (`gate|up` row-concatenated, as the engine uploads them, and
//! `down`) are uploaded from the model file; one "step" records, for every layer,
//! `matmul(gate_up, x[N, hidden] → h[N, 2·I])` and `matmul(down, a[N, I] → y[N, hidden])` into
//! one recorder, submits and waits. N ≤ 16 runs the matvec kernels, which read each weight once
//! for all N columns — the property N-path decoding relies on. Each N gets one untimed warm-up
//! step (pipeline compilation); timed steps interleave the N values so drift hits all alike.
//! `ratio[N] = median step(N) / median step(1)`; N = 1 is always measured.

use std::time::Instant;

use anyhow::{bail, Context};
use kestrel_formats::{KstFile, ModelConfig};
use kestrel_kernels::matmul::DECODE_MAX_T;
use kestrel_kernels::{matmul, Epilogue, Gpu, Matrix, Recorder};

use super::model_bytes::host_matrix;
use super::stats::Summary;

/// One N's result.
#[derive(Debug, Clone)]
pub struct PathStep {
    pub n: u32,
    /// Step time over all layers' MLPs, milliseconds.
    pub step_ms: Summary,
    /// `median step(N) / median step(1)`.
    pub ratio: f64,
    /// MLP weight bytes / median step time, GB/s.
    pub gb_s: f64,
}

/// The N values to measure: `paths` with 1 added, sorted, deduplicated, each in 1..=16.
pub fn path_counts(paths: &[u32]) -> anyhow::Result<Vec<u32>> {
    if let Some(bad) = paths.iter().find(|&&n| n == 0 || n > DECODE_MAX_T) {
        bail!("--paths: {bad} is outside 1..={DECODE_MAX_T} (the decode kernels' column range)");
    }
    let mut ns: Vec<u32> = paths.iter().copied().chain([1]).collect();
    ns.sort_unstable();
    ns.dedup();
    Ok(ns)
}

/// Measures `reps` timed steps for each N in `ns` (see the module docs); `tick` after each step.
pub fn measure(
    gpu: &Gpu,
    file: &KstFile,
    cfg: &ModelConfig,
    ns: &[u32],
    reps: usize,
    mut tick: impl FnMut(),
) -> anyhow::Result<Vec<PathStep>> {
    let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}.mlp");
        let gate = host_matrix(file, &format!("{p}.gate_proj.weight"))?;
        let up = host_matrix(file, &format!("{p}.up_proj.weight"))?;
        let down = host_matrix(file, &format!("{p}.down_proj.weight"))?;
        let gate_up = Matrix::upload_rows(gpu, &[gate, up])
            .with_context(|| format!("uploading {p} gate|up"))?;
        let down =
            Matrix::upload(gpu, &down).with_context(|| format!("uploading {p}.down_proj"))?;
        layers.push((gate_up, down));
    }
    let Some((gu0, dn0)) = layers.first() else {
        bail!("the model has no layers");
    };
    let (hidden, inter2, inter) = (u64::from(gu0.k), u64::from(gu0.m), u64::from(dn0.k));
    let bytes: u64 = layers
        .iter()
        .map(|(g, d)| g.weight_bytes() + d.weight_bytes())
        .sum();
    let n_max = u64::from(ns.iter().copied().max().unwrap_or(1));
    let x = gpu.upload(
        "bench.x",
        bytemuck::cast_slice(&pseudo_random((n_max * hidden) as usize, 1)),
    )?;
    let a = gpu.upload(
        "bench.a",
        bytemuck::cast_slice(&pseudo_random((n_max * inter) as usize, 2)),
    )?;
    let h = gpu.zeros("bench.h", n_max * inter2 * 4)?;
    let y = gpu.zeros("bench.y", n_max * hidden * 4)?;

    let step = |n: u32| -> anyhow::Result<f64> {
        let mut rec = Recorder::new(gpu);
        for (gate_up, down) in &layers {
            matmul(&mut rec, gate_up, &x, &h, n, &Epilogue::default())?;
            matmul(&mut rec, down, &a, &y, n, &Epilogue::default())?;
        }
        let start = Instant::now();
        rec.submit_and_wait()?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    };
    for &n in ns {
        step(n)?;
    }
    let mut samples = vec![Vec::with_capacity(reps); ns.len()];
    for _ in 0..reps {
        for (i, &n) in ns.iter().enumerate() {
            samples[i].push(step(n)?);
            tick();
        }
    }
    let summaries = samples
        .iter()
        .map(|s| Summary::of(s).context("no finite kernel step time"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let base = summaries.first().map_or(f64::NAN, |s| s.median);
    Ok(ns
        .iter()
        .zip(summaries)
        .map(|(&n, step_ms)| PathStep {
            n,
            ratio: step_ms.median / base,
            gb_s: bytes as f64 / (step_ms.median * 1e-3) / 1e9,
            step_ms,
        })
        .collect())
}

/// Deterministic values in [-1, 1).
fn pseudo_random(len: usize, seed: u64) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64 ^ seed;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
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
        assert!(path_counts(&[17]).is_err());
    }

    #[test]
    fn pseudo_random_values_are_in_range() {
        let v = pseudo_random(1000, 3);
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        assert!(v.iter().any(|&x| x < -0.5) && v.iter().any(|&x| x > 0.5));
    }
}
