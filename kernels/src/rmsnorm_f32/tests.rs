//! `rmsnorm_f32` / `rmsnorm_residual_f32` vs the CPU reference, in both f16 modes.

use proptest::prelude::*;

use super::{reference, RmsNorm};
use crate::test_util::{both_modes, cases, f32_bytes, gpu, nmse};
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

    #[test]
    fn residual_matches_reference(rows in 1u32..5, k in 1u32..1100, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let x = rng.vec((rows * k) as usize, 3.0);
        let r = rng.vec((rows * k) as usize, 3.0);
        let w = rng.vec(k as usize, 1.5);
        let (want_sum, want_y) = reference::rmsnorm_residual(&x, &r, &w, k as usize, 1e-5);
        for gpu in both_modes() {
            let bx = gpu.upload("x", &f32_bytes(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let br = gpu.upload("r", &f32_bytes(&r)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let bw = gpu.upload("w", &f32_bytes(&w)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let by = gpu.zeros("y", (x.len() * 4) as u64).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let kern = RmsNorm::new(&gpu).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut rec = Recorder::new(&gpu);
            kern.encode_residual(&mut rec, &bx, &br, &bw, &by, rows, k, 1e-5).map_err(|e| TestCaseError::fail(e.to_string()))?;
            rec.submit().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let sum = gpu.read::<f32>(&bx, 0, x.len()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let y = gpu.read::<f32>(&by, 0, x.len()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // x + r is one correctly rounded f32 add on both sides.
            prop_assert_eq!(sum, want_sum.clone());
            let e = nmse(&y, &want_y);
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
