//! lora_shrink vs the CPU reference in both f16 modes (1–4 matrices, ranks up to 128, K with and
//! without a K % 32 tail, T from 1 to past 16, inputs past the uniform x window), plus argument
//! errors.

use proptest::prelude::*;

use super::reference::lora_shrink_ref;
use super::{lora_shrink, lora_shrink_swiglu, LoraA};
use crate::matmul::tests::{round_f16, Rng};
use crate::test_util::{both_modes, cases, f16_bytes, gpu, nmse, x_bytes};
use crate::{KernelError, Recorder};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5)))]
    #[test]
    fn matches_reference(
        ranks in prop::collection::vec(1usize..=128, 1..=4),
        k4 in 1usize..100,
        t in prop::sample::select(vec![1usize, 2, 16, 17, 33, 64]),
        seed in any::<u64>(),
    ) {
        let k = 4 * k4;
        let mut rng = Rng(seed | 1);
        let x = rng.vec(t * k);
        let a: Vec<Vec<f32>> = ranks.iter().map(|&r| round_f16(&rng.vec(r * k))).collect();
        let a_refs: Vec<&[f32]> = a.iter().map(|v| v.as_slice()).collect();
        let want = lora_shrink_ref(&x, &a_refs, &ranks, t, k);
        for g in both_modes() {
            let xb = g.upload("x", &x_bytes(&x)).unwrap();
            let bytes: Vec<Vec<u8>> = a.iter().map(|v| f16_bytes(v)).collect();
            let parts: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
            let ab = LoraA::upload(&g, k as u32, &parts).unwrap();
            let h = g.zeros("h", (want.len() * 4) as u64).unwrap();
            let mut rec = Recorder::new(&g);
            lora_shrink(&mut rec, &xb, &ab, &h, t as u32).unwrap();
            rec.submit_and_wait().unwrap();
            let got = g.read::<f32>(&h, 0, want.len()).unwrap();
            let e = nmse(&got, &want);
            prop_assert!(e < 5e-4, "nmse {e:e} (f16={})", g.has_f16());
        }
    }
}

/// The SwiGLU-input variant equals the swiglu reference followed by the plain shrink.
#[test]
fn swiglu_input_matches_reference() {
    let mut rng = Rng(31);
    // (200, 16, 48): 75 KiB of gate | up, past the uniform window (the scratch x texture).
    for (k, r, t) in [
        (96usize, 16usize, 1usize),
        (100, 8, 3),
        (64, 24, 6),
        (200, 16, 48),
    ] {
        let gu = rng.vec(t * 2 * k);
        let a = round_f16(&rng.vec(r * k));
        let act = crate::swiglu_f32::reference::swiglu(&gu, k);
        let want = lora_shrink_ref(&act, &[&a], &[r], t, k);
        for g in both_modes() {
            let gub = g.upload("gu", &x_bytes(&gu)).unwrap();
            let ab = LoraA::upload(&g, k as u32, &[&f16_bytes(&a)]).unwrap();
            let h = g.zeros("h", (want.len() * 4) as u64).unwrap();
            let mut rec = Recorder::new(&g);
            lora_shrink_swiglu(&mut rec, &gub, &ab, &h, t as u32).unwrap();
            rec.submit_and_wait().unwrap();
            let got = g.read::<f32>(&h, 0, want.len()).unwrap();
            let e = nmse(&got, &want);
            assert!(
                e < 1e-9,
                "K={k} R={r} T={t}: nmse {e:e} (f16={})",
                g.has_f16()
            );
        }
    }
}

#[test]
fn bad_arguments_are_shape_errors() {
    let g = gpu();
    let b = g.zeros("b", 1 << 16).unwrap();
    // Rows that do not divide into K columns, and empty parts, are refused at upload.
    for (k, len) in [(8u32, 10usize), (8, 0), (0, 16)] {
        let err = LoraA::upload(&g, k, &[&vec![0u8; len]]);
        assert!(
            matches!(err, Err(KernelError::Shape(_))),
            "K={k} {len} B: {err:?}"
        );
    }
    // K not a multiple of 4; x or h too small.
    let mut rec = Recorder::new(&g);
    let odd = LoraA::upload(&g, 6, &[&[0u8; 24]]).unwrap();
    assert!(matches!(
        lora_shrink(&mut rec, &b, &odd, &b, 1),
        Err(KernelError::Shape(_))
    ));
    let a = LoraA::upload(&g, 8, &[&[0u8; 64]]).unwrap();
    let small = g.zeros("small", 16).unwrap();
    assert!(matches!(
        lora_shrink(&mut rec, &small, &a, &b, 1),
        Err(KernelError::Shape(_))
    ));
    assert!(matches!(
        lora_shrink(&mut rec, &b, &a, &small, 8),
        Err(KernelError::Shape(_))
    ));
}
