//! `argmax_f32` vs the CPU reference (exact), ties, and non-finite rows.

use proptest::prelude::*;

use super::{reference, Argmax, ARGMAX_NON_FINITE};
use crate::test_util::{both_modes, cases, f32_bytes, gpu};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

fn run(gpu: &Gpu, logits: &[f32], n: u32, v: u32) -> Result<Vec<(u32, u32)>, KernelError> {
    let bl = gpu.upload("logits", &f32_bytes(logits))?;
    let bo = gpu.zeros("out", u64::from(n) * 16)?;
    let kern = Argmax::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    kern.encode(&mut rec, &bl, &bo, n, v)?;
    rec.submit()?;
    let raw = gpu.read::<u32>(&bo, 0, 4 * n as usize)?;
    // Words 2 and 3: a greedy pick's logprob (0.0) and padding.
    assert!(raw.chunks(4).all(|c| c[2] == 0 && c[3] == 0), "{raw:?}");
    Ok(raw.chunks(4).map(|c| (c[0], c[1])).collect())
}

fn want(logits: &[f32], v: u32) -> Vec<(u32, u32)> {
    logits.chunks(v as usize).map(reference::argmax).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    #[test]
    fn matches_reference_exactly(
        n in prop::sample::select(vec![1u32, 3, 16]),
        v in prop::sample::select(vec![1u32, 7, 1000, 152_064]),
        quantised in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        // Quantised logits create many exact ties (lowest index must win).
        let logits: Vec<f32> = rng.vec((n * v) as usize, 10.0).into_iter().map(|x| if quantised { x.round() } else { x }).collect();
        let want = want(&logits, v);
        for gpu in both_modes() {
            prop_assert_eq!(run(&gpu, &logits, n, v).map_err(|e| TestCaseError::fail(e.to_string()))?, want.clone());
        }
    }
}

#[test]
fn non_finite_values_are_flagged_and_never_win() {
    let gpu = gpu();
    let v = 600u32;
    let mut rows = vec![0.5f32; 5 * v as usize];
    rows[3] = f32::NAN; // row 0: NaN, max elsewhere
    rows[10] = 2.0;
    rows[v as usize + 7] = f32::INFINITY; // row 1: +Inf must not win
    rows[v as usize + 9] = 1.0;
    rows[2 * v as usize + 5] = f32::NEG_INFINITY; // row 2: -Inf flagged too
    for x in &mut rows[3 * v as usize..4 * v as usize] {
        *x = f32::NAN; // row 3: nothing finite
    }
    rows[4 * v as usize + 599] = -0.0; // row 4: ties between 0.5s → index 0
    let got = run(&gpu, &rows, 5, v).unwrap();
    assert_eq!(got, want(&rows, v));
    assert_eq!(got[0], (10, ARGMAX_NON_FINITE));
    assert_eq!(got[1], (v + 9 - v, ARGMAX_NON_FINITE));
    assert_eq!(got[2], (0, ARGMAX_NON_FINITE));
    assert_eq!(got[3], (0, ARGMAX_NON_FINITE));
    assert_eq!(got[4], (0, 0));
}
