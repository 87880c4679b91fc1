//! lora_shrink vs the CPU reference in both f16 modes (1–4 matrices, ranks up to 128, T from 1
//! to past 16), plus argument errors.

use proptest::prelude::*;

use super::lora_shrink;
use super::reference::lora_shrink_ref;
use crate::matmul::tests::{round_f16, Rng};
use crate::test_util::{both_modes, cases, f16_bytes, f32_bytes, gpu, nmse};
use crate::{KernelError, Recorder};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5)))]
    #[test]
    fn matches_reference(
        ranks in prop::collection::vec(1usize..=128, 1..=4),
        k2 in 1usize..200,
        t in prop::sample::select(vec![1usize, 2, 16, 17, 33]),
        seed in any::<u64>(),
    ) {
        let k = 2 * k2;
        let mut rng = Rng(seed | 1);
        let x = rng.vec(t * k);
        let a: Vec<Vec<f32>> = ranks.iter().map(|&r| round_f16(&rng.vec(r * k))).collect();
        let a_refs: Vec<&[f32]> = a.iter().map(|v| v.as_slice()).collect();
        let want = lora_shrink_ref(&x, &a_refs, &ranks, t, k);
        for g in both_modes() {
            let xb = g.upload("x", &f32_bytes(&x)).unwrap();
            let ab: Vec<wgpu::Buffer> = a.iter().map(|v| g.upload("a", &f16_bytes(v)).unwrap()).collect();
            let abr: Vec<&wgpu::Buffer> = ab.iter().collect();
            let h = g.zeros("h", (want.len() * 4) as u64).unwrap();
            let r32: Vec<u32> = ranks.iter().map(|&r| r as u32).collect();
            let mut rec = Recorder::new(&g);
            lora_shrink(&mut rec, &xb, &abr, &r32, &h, t as u32, k as u32).unwrap();
            rec.submit_and_wait().unwrap();
            let got = g.read::<f32>(&h, 0, want.len()).unwrap();
            let e = nmse(&got, &want);
            prop_assert!(e < 5e-4, "nmse {e:e} (f16={})", g.has_f16());
        }
    }
}

#[test]
fn bad_arguments_are_shape_errors() {
    let g = gpu();
    let b = g.zeros("b", 1 << 16).unwrap();
    let mut rec = Recorder::new(&g);
    for (ranks, k) in [
        (vec![0u32], 8u32),
        (vec![129], 8),
        (vec![4], 7),
        (vec![4, 4], 8),
    ] {
        let a = [&b];
        let err = lora_shrink(&mut rec, &b, &a, &ranks, &b, 1, k);
        assert!(
            matches!(err, Err(KernelError::Shape(_))),
            "{ranks:?} {k}: {err:?}"
        );
    }
}
