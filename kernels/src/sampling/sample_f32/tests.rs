//! `sample_f32` vs its CPU reference (exact token equality), determinism, and the distribution.

use proptest::prelude::*;

use super::{reference, Sample, SampleConfig, SampleParams};
use crate::test_util::{both_modes, cases, f32_bytes, gpu};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

/// `(token, flags)` per row, and the logprobs apart (they are compared within a tolerance).
type Picks = (Vec<(u32, u32)>, Vec<f32>);

fn run(
    gpu: &Gpu,
    logits: &[f32],
    n: u32,
    v: u32,
    streams: &[u32],
    cfg: &SampleConfig,
) -> Result<Picks, KernelError> {
    let bl = gpu.upload("logits", &f32_bytes(logits))?;
    let bs = gpu.upload("streams", bytemuck::cast_slice(streams))?;
    let bo = gpu.zeros("out", u64::from(n) * 16)?;
    let kern = Sample::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    kern.encode(&mut rec, &bl, &bs, &bo, n, v, cfg)?;
    rec.submit()?;
    let raw = gpu.read::<u32>(&bo, 0, 4 * n as usize)?;
    Ok((
        raw.chunks(4).map(|c| (c[0], c[1])).collect(),
        raw.chunks(4).map(|c| f32::from_bits(c[2])).collect(),
    ))
}

fn want(logits: &[f32], n: u32, v: u32, streams: &[u32], cfg: &SampleConfig) -> Picks {
    let params = SampleParams::new(cfg, n, v).unwrap();
    let rows = reference::sample(logits, v as usize, &params, streams);
    (
        rows.iter().map(|&(t, f, _)| (t, f)).collect(),
        rows.iter().map(|&(_, _, lp)| lp).collect(),
    )
}

/// Logprobs agree within 1e-5 (`ln` is not correctly rounded on every adapter) and are ≤ 0.
fn same_logprobs(got: &[f32], want: &[f32]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| *g <= 0.0 && (g - w).abs() <= 1e-5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    #[test]
    fn gpu_equals_reference_exactly(
        n in prop::sample::select(vec![1u32, 4, 16]),
        v in prop::sample::select(vec![1u32, 5, 3000, 152_064]),
        temperature in prop::sample::select(vec![0.0f32, 0.3, 1.0, 2.5]),
        top_k in prop::sample::select(vec![0u32, 1, 3, 50]),
        top_p in prop::sample::select(vec![1.0f32, 0.9, 0.3]),
        scale in prop::sample::select(vec![1.0f32, 10.0]),
        seed in any::<u64>(),
        step in any::<u32>(),
    ) {
        let mut rng = Rng::new(seed);
        let logits = rng.vec((n * v) as usize, scale);
        let streams: Vec<u32> = (0..n).collect();
        let cfg = SampleConfig { temperature, top_k, top_p, seed, step };
        let want = want(&logits, n, v, &streams, &cfg);
        for gpu in both_modes() {
            let got = run(&gpu, &logits, n, v, &streams, &cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&got.0, &want.0);
            prop_assert!(same_logprobs(&got.1, &want.1), "{:?} vs {:?}", got.1, want.1);
            if temperature == 0.0 || top_k == 1 {
                prop_assert!(got.1.iter().all(|&lp| lp == 0.0), "greedy: {:?}", got.1);
            }
        }
    }
}

#[test]
fn same_seed_same_tokens_and_seeds_differ() {
    let gpu = gpu();
    let (n, v) = (16u32, 5000u32);
    let logits = Rng::new(1).vec((n * v) as usize, 1.0);
    let streams: Vec<u32> = (0..n).collect();
    let cfg = SampleConfig {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 42,
        step: 7,
    };
    let a = run(&gpu, &logits, n, v, &streams, &cfg).unwrap();
    let b = run(&gpu, &logits, n, v, &streams, &cfg).unwrap();
    assert_eq!(a, b);
    let c = run(
        &gpu,
        &logits,
        n,
        v,
        &streams,
        &SampleConfig { seed: 43, ..cfg },
    )
    .unwrap();
    assert_ne!(
        a, c,
        "a different seed should change some of 16 draws over 5000 tokens"
    );
}

#[test]
fn greedy_and_top_k_1_equal_argmax() {
    let gpu = gpu();
    let (n, v) = (4u32, 1000u32);
    let logits: Vec<f32> = Rng::new(2)
        .vec((n * v) as usize, 5.0)
        .into_iter()
        .map(|x| x.round())
        .collect();
    let streams = [0u32, 1, 2, 3];
    let argmax: Vec<(u32, u32)> = logits
        .chunks(v as usize)
        .map(crate::sampling::argmax_f32::reference::argmax)
        .collect();
    for cfg in [
        SampleConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 1,
            step: 0,
        },
        SampleConfig {
            temperature: 0.8,
            top_k: 1,
            top_p: 1.0,
            seed: 1,
            step: 0,
        },
    ] {
        let (picks, logprobs) = run(&gpu, &logits, n, v, &streams, &cfg).unwrap();
        assert_eq!(picks, argmax);
        assert_eq!(logprobs, vec![0.0; n as usize], "one kept token: log 1");
    }
}

#[test]
fn empirical_distribution_follows_softmax() {
    // 4 tokens with logits ln(1), ln(2), ln(3), ln(4): probabilities 0.1..0.4. 4096 draws via
    // 4096 steps; each frequency within 4 standard deviations.
    let gpu = gpu();
    let logits: Vec<f32> = [1.0f32, 2.0, 3.0, 4.0].iter().map(|x| x.ln()).collect();
    let params = SampleParams::new(
        &SampleConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 9,
            step: 0,
        },
        1,
        4,
    )
    .unwrap();
    let mut counts = [0u32; 4];
    for step in 0..4096 {
        let (tok, _, logprob) = reference::sample_row(&logits, &SampleParams { step, ..params }, 0);
        counts[tok as usize] += 1;
        // The logprob is the token's, ln((tok + 1) / 10), to the weights' precision: each weight
        // floors its exponent to 1/4096 of an octave (ln 2 / 4096 = 1.7e-4 nats) and its tables
        // round to 3e-5, and the logprob is a difference of two such logs: ≤ 4e-4.
        let p = (f64::from(tok) + 1.0) / 10.0;
        assert!(
            (f64::from(logprob) - p.ln()).abs() <= 4e-4,
            "{tok}: {logprob}"
        );
    }
    for (i, &c) in counts.iter().enumerate() {
        let p = (i + 1) as f64 / 10.0;
        let sd = (4096.0 * p * (1.0 - p)).sqrt();
        assert!(
            (f64::from(c) - 4096.0 * p).abs() < 4.0 * sd,
            "token {i}: {c} draws, expected {}",
            4096.0 * p
        );
    }
    // The GPU agrees on a sample of those steps.
    let got = run(
        &gpu,
        &logits,
        1,
        4,
        &[0],
        &SampleConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 9,
            step: 17,
        },
    )
    .unwrap();
    let (tok, flags, logprob) =
        reference::sample_row(&logits, &SampleParams { step: 17, ..params }, 0);
    assert_eq!(got.0[0], (tok, flags));
    assert!(
        same_logprobs(&got.1, &[logprob]),
        "{:?} vs {logprob}",
        got.1
    );
}

#[test]
fn top_p_keeps_the_smallest_sufficient_prefix() {
    // Probabilities ≈ 0.5, 0.25, 0.125, ...: top_p = 0.6 keeps exactly the first two tokens.
    let logits: Vec<f32> = (0..10)
        .map(|i| -(i as f32) * std::f32::consts::LN_2)
        .collect();
    let base = SampleParams::new(
        &SampleConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.6,
            seed: 3,
            step: 0,
        },
        1,
        10,
    )
    .unwrap();
    let seen: std::collections::BTreeSet<u32> = (0..2000)
        .map(|step| reference::sample_row(&logits, &SampleParams { step, ..base }, 0).0)
        .collect();
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 1]);
}

#[test]
fn non_finite_rows_are_flagged() {
    let gpu = gpu();
    let mut logits = vec![0.0f32; 2 * 300];
    logits[5] = f32::NAN;
    logits[300..].fill(f32::INFINITY);
    let cfg = SampleConfig {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 1,
        step: 0,
    };
    let (got, _) = run(&gpu, &logits, 2, 300, &[0, 1], &cfg).unwrap();
    assert_eq!(got, want(&logits, 2, 300, &[0, 1], &cfg).0);
    assert_eq!(got[0].1, 1);
    assert_ne!(got[0].0, 5);
    assert_eq!(got[1], (0, 1));
}

#[test]
fn bad_settings_are_shape_errors() {
    for cfg in [
        SampleConfig {
            temperature: -1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            step: 0,
        },
        SampleConfig {
            temperature: f32::NAN,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            step: 0,
        },
        SampleConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.0,
            seed: 0,
            step: 0,
        },
        SampleConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.5,
            seed: 0,
            step: 0,
        },
    ] {
        assert!(matches!(
            SampleParams::new(&cfg, 1, 10),
            Err(KernelError::Shape(_))
        ));
    }
    let ok = SampleConfig {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 0,
        step: 0,
    };
    assert!(SampleParams::new(&ok, 1, (1 << 18) + 1).is_err());
}
