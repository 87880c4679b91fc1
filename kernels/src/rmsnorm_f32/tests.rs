//! `rmsnorm_f32` (and `rmsnorm_shrink_f32`) vs the CPU reference, in both f16 modes.

use proptest::prelude::*;

use super::{reference, RmsNorm};
use crate::lora_shrink::reference::lora_shrink_ref;
use crate::lora_shrink::LoraA;
use crate::matmul::tests::round_f16;
use crate::test_util::{both_modes, cases, f16_bytes, f32_bytes, gpu, nmse, x_bytes};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

fn run_plain(
    gpu: &Gpu,
    x: &[f32],
    w: &[f32],
    rows: u32,
    k: u32,
    eps: f32,
) -> Result<Vec<f32>, KernelError> {
    let bx = gpu.upload("x", &f32_bytes(x))?;
    let bw = gpu.upload("w", &f32_bytes(w))?;
    let by = gpu.zeros("y", (x.len() * 4) as u64)?;
    let k_ = RmsNorm::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    k_.encode(&mut rec, &bx, &bw, &by, rows, k, eps)?;
    rec.submit()?;
    gpu.read::<f32>(&by, 0, x.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    #[test]
    fn plain_matches_reference(rows in 1u32..5, k in 1u32..1100, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let x = rng.vec((rows * k) as usize, 3.0);
        let w = rng.vec(k as usize, 1.5);
        let want = reference::rmsnorm(&x, &w, k as usize, 1e-6);
        for gpu in both_modes() {
            let got = run_plain(&gpu, &x, &w, rows, k, 1e-6).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let e = nmse(&got, &want);
            prop_assert!(e <= 1e-9, "nmse {e}");
        }
    }
}

#[test]
fn many_rows_fold_to_2d() {
    // 70,000 rows exceed 65,535 workgroups in x: the host folds, the kernel unfolds.
    let gpu = gpu();
    let (rows, k) = (70_000u32, 3u32);
    let mut rng = Rng::new(7);
    let x = rng.vec((rows * k) as usize, 2.0);
    let w = rng.vec(k as usize, 1.0);
    let got = run_plain(&gpu, &x, &w, rows, k, 1e-6).unwrap();
    let want = reference::rmsnorm(&x, &w, k as usize, 1e-6);
    assert!(nmse(&got, &want) <= 1e-9);
}

#[test]
fn short_buffers_are_shape_errors() {
    let gpu = gpu();
    let bx = gpu.zeros("x", 4 * 8).unwrap();
    let bw = gpu.zeros("w", 4 * 3).unwrap();
    let by = gpu.zeros("y", 4 * 8).unwrap();
    let kern = RmsNorm::new(&gpu).unwrap();
    let mut rec = Recorder::new(&gpu);
    assert!(matches!(
        kern.encode(&mut rec, &bx, &bw, &by, 2, 4, 1e-6),
        Err(KernelError::Shape(_))
    ));
    assert!(matches!(
        kern.encode(&mut rec, &bx, &bw, &by, 0, 4, 1e-6),
        Err(KernelError::Shape(_))
    ));
    assert!(matches!(
        kern.encode(&mut rec, &bx, &bw, &by, 3, 3, 1e-6),
        Err(KernelError::Shape(_))
    ));
}

/// `rmsnorm_shrink_f32` over `x [rows, k]` with a group `[ΣR, k]` made of `a` (f16-rounded
/// values): (y, h).
fn run_shrink(
    gpu: &Gpu,
    x: &[f32],
    w: &[f32],
    a: &[f32],
    rows: u32,
    k: u32,
) -> (Vec<f32>, Vec<f32>) {
    let sum_r = a.len() / k as usize;
    let bx = gpu.upload("x", &x_bytes(x)).unwrap();
    let bw = gpu.upload_window("w", &f32_bytes(w)).unwrap();
    let by = gpu.zeros("y", (x.len() * 4) as u64).unwrap();
    let bh = gpu.zeros("h", (rows as usize * sum_r * 4) as u64).unwrap();
    let ab = LoraA::upload(gpu, k, &[&f16_bytes(a)]).unwrap();
    let kern = RmsNorm::new(gpu).unwrap();
    let mut rec = Recorder::new(gpu);
    kern.encode_lora_shrink(&mut rec, &bx, &bw, &by, &ab, &bh, rows, k, 1e-6)
        .unwrap();
    rec.submit().unwrap();
    (
        gpu.read::<f32>(&by, 0, x.len()).unwrap(),
        gpu.read::<f32>(&bh, 0, rows as usize * sum_r).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    /// The fused norm + shrink: y matches the reference norm, h the reference shrink of it, with
    /// x read through the uniform window or the x texture (`gpu()`) and through storage.
    #[test]
    fn shrink_matches_reference(
        rows in prop::sample::select(vec![1u32, 2, 3, 5, 16, 17]),
        k4 in 1u32..320,
        sum_r in 1usize..=80,
        seed in any::<u64>(),
    ) {
        let k = 4 * k4;
        let mut rng = Rng::new(seed);
        let x = rng.vec((rows * k) as usize, 3.0);
        let w = rng.vec(k as usize, 1.5);
        let a = round_f16(&rng.vec(sum_r * k as usize, 0.5));
        let want_y = reference::rmsnorm(&x, &w, k as usize, 1e-6);
        let want_h = lora_shrink_ref(&want_y, &[&a], &[sum_r], rows as usize, k as usize);
        for gpu in both_modes() {
            let (y, h) = run_shrink(&gpu, &x, &w, &a, rows, k);
            let (ey, eh) = (nmse(&y, &want_y), nmse(&h, &want_h));
            prop_assert!(ey <= 1e-9 && eh <= 1e-9, "y nmse {ey:e}, h nmse {eh:e}");
        }
    }
}

/// A token's y and h do not depend on the batch: T = 7 (two 4-row quads, one padded) gives each
/// row the bits of a T = 1 run; also with a 76 KiB input, past the uniform x window.
#[test]
fn shrink_rows_are_independent_of_the_batch() {
    let gpu = gpu();
    for (k, rows, sum_r) in [(896u32, 7u32, 48usize), (4864, 4, 20)] {
        let mut rng = Rng::new(u64::from(k));
        let x = rng.vec((rows * k) as usize, 2.0);
        let w = rng.vec(k as usize, 1.0);
        let a = round_f16(&rng.vec(sum_r * k as usize, 0.5));
        let (y, h) = run_shrink(&gpu, &x, &w, &a, rows, k);
        for t in 0..rows as usize {
            let xr = &x[t * k as usize..(t + 1) * k as usize];
            let (y1, h1) = run_shrink(&gpu, xr, &w, &a, 1, k);
            assert_eq!(
                y1,
                y[t * k as usize..(t + 1) * k as usize],
                "K={k} y row {t}"
            );
            assert_eq!(h1, h[t * sum_r..(t + 1) * sum_r], "K={k} h row {t}");
        }
        let want = lora_shrink_ref(
            &reference::rmsnorm(&x, &w, k as usize, 1e-6),
            &[&a],
            &[sum_r],
            rows as usize,
            k as usize,
        );
        assert!(nmse(&h, &want) <= 1e-9, "K={k}");
    }
}

#[test]
fn shrink_bad_arguments_are_shape_errors() {
    let gpu = gpu();
    let b = gpu.zeros("b", 1 << 16).unwrap();
    let small = gpu.zeros("small", 16).unwrap();
    let kern = RmsNorm::new(&gpu).unwrap();
    let mut rec = Recorder::new(&gpu);
    let a8 = LoraA::upload(&gpu, 8, &[&[0u8; 64]]).unwrap();
    let a6 = LoraA::upload(&gpu, 6, &[&[0u8; 24]]).unwrap();
    // K ≠ A's K; K not a multiple of 4; h too small; w shorter than K.
    for (a, k, w, h, rows) in [
        (&a8, 12u32, &b, &b, 1u32),
        (&a6, 6, &b, &b, 1),
        (&a8, 8, &b, &small, 8),
        (&a8, 8, &small, &b, 1),
    ] {
        let r = kern.encode_lora_shrink(&mut rec, &b, w, &b, a, h, rows, k, 1e-6);
        assert!(matches!(r, Err(KernelError::Shape(_))), "K={k}: {r:?}");
    }
}
