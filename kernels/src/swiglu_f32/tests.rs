//! `swiglu_f32` vs the CPU reference, in both f16 modes.

use proptest::prelude::*;

use super::{reference, Swiglu};
use crate::test_util::{both_modes, cases, f32_bytes, gpu, nmse};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

fn run(gpu: &Gpu, gu: &[f32], rows: u32, inter: u32) -> Result<Vec<f32>, KernelError> {
    let b_gu = gpu.upload("gu", &f32_bytes(gu))?;
    let b_out = gpu.zeros("out", u64::from(rows * inter) * 4)?;
    let kern = Swiglu::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    kern.encode(&mut rec, &b_gu, &b_out, rows, inter)?;
    rec.submit()?;
    gpu.read::<f32>(&b_out, 0, (rows * inter) as usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    #[test]
    fn matches_reference(rows in 1u32..6, inter in 1u32..3000, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        // Wide range: silu saturates on both sides (e^-g overflows for g < -88).
        let gu = rng.vec((rows * 2 * inter) as usize, 100.0);
        let want = reference::swiglu(&gu, inter as usize);
        for gpu in both_modes() {
            let got = run(&gpu, &gu, rows, inter).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(got.iter().all(|v| v.is_finite()));
            let e = nmse(&got, &want);
            prop_assert!(e <= 1e-10, "nmse {e}");
        }
    }
}

#[test]
fn short_output_is_shape_error() {
    let gpu = gpu();
    let gu = gpu.zeros("gu", 4 * 8).unwrap();
    let out = gpu.zeros("out", 4 * 3).unwrap();
    let kern = Swiglu::new(&gpu).unwrap();
    let mut rec = Recorder::new(&gpu);
    assert!(matches!(
        kern.encode(&mut rec, &gu, &out, 1, 4),
        Err(KernelError::Shape(_))
    ));
    assert!(matches!(
        kern.encode(&mut rec, &gu, &out, 1, 0),
        Err(KernelError::Shape(_))
    ));
}
