//! The matvec kernels (through `matmul`) vs the CPU reference in both f16 modes, for f16 and f32
//! weights, T from 1 to past 16 (the 16-column chunks), plus batched-equals-single bit-exactness.

use proptest::prelude::*;

use crate::matmul::tests::{check_case, run_gpu, HostData, HostEpilogue, Kind, Rng};
use crate::matrix::Matrix;
use crate::test_util::{both_modes, cases, gpu};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5)))]
    #[test]
    fn matches_reference(
        m in 1u32..80,
        g in Just(0u32),
        groups in 1u32..4,
        kk in 1u32..300,
        t in prop::sample::select(vec![1u32, 3, 16, 17, 40]),
        mask in 0u8..8,
        seed in any::<u64>(),
        kind in prop::sample::select(vec![Kind::F16, Kind::F32]),
    ) {
        let _ = (g, groups, kk);
        let h = HostData::random(kind, m, kk, g, &mut Rng(seed | 1));
        check_case(&both_modes(), &h, t, seed, mask, 5e-4);
    }
}

#[test]
fn batched_columns_are_bit_identical() {
    let g = gpu();
    let mut rng = Rng(7);
    // K = 160 takes the pairs path, K = 161 the single-weight path.
    for (kind, k) in [
        (Kind::F16, 160u32),
        (Kind::F32, 160),
        (Kind::F16, 161),
        (Kind::F32, 161),
    ] {
        batched_equals_single(&g, &mut rng, kind, k);
    }
}

fn batched_equals_single(g: &std::sync::Arc<crate::Gpu>, rng: &mut Rng, kind: Kind, k: u32) {
    let (m, t) = (33u32, 16u32);
    let h = HostData::random(kind, m, k, 32, rng);
    let w = Matrix::upload(g, &h.host()).unwrap();
    let x = rng.vec((t * k) as usize);
    let batched = run_gpu(g, &w, &x, t, &HostEpilogue::default()).unwrap();
    for c in 0..t as usize {
        let one = run_gpu(
            g,
            &w,
            &x[c * k as usize..(c + 1) * k as usize],
            1,
            &HostEpilogue::default(),
        )
        .unwrap();
        assert_eq!(
            &batched[c * m as usize..(c + 1) * m as usize],
            &one[..],
            "{kind:?} K = {k}: column {c}"
        );
    }
}

/// The fused LoRA epilogue equals a plain matmul with merged weights W + scale · B · A.
#[test]
fn fused_lora_equals_merged_weights() {
    use crate::matmul::tests::round_f16;
    use crate::test_util::{f32_bytes, nmse};
    let g = gpu();
    let mut rng = Rng(11);
    let (m, k, r, t) = (40usize, 96usize, 8usize, 5u32);
    let w = rng.vec(m * k);
    let a = round_f16(&rng.vec(r * k));
    let b = round_f16(&rng.vec(m * r));
    let scale = 0.75f32;
    let x = rng.vec(t as usize * k);
    // h = x · Aᵀ computed on the host (the shrink is tested separately).
    let h: Vec<f32> = (0..t as usize)
        .flat_map(|c| {
            (0..r)
                .map(|i| (0..k).map(|kk| x[c * k + kk] * a[i * k + kk]).sum::<f32>())
                .collect::<Vec<_>>()
        })
        .collect();
    let upload = |w: &[f32]| {
        let data = f32_bytes(w);
        let host = crate::matrix::HostMatrix::F32 {
            m: m as u32,
            k: k as u32,
            data: &data,
        };
        Matrix::upload(&g, &host).unwrap()
    };
    let base = upload(&w);
    let ep = HostEpilogue {
        lora: Some((h, 0, r as u32, b.clone(), r as u32, scale)),
        ..Default::default()
    };
    let fused = run_gpu(&g, &base, &x, t, &ep).unwrap();
    let merged_w: Vec<f32> = (0..m * k)
        .map(|i| {
            let (row, col) = (i / k, i % k);
            w[i] + scale * (0..r).map(|j| b[row * r + j] * a[j * k + col]).sum::<f32>()
        })
        .collect();
    let merged = upload(&merged_w);
    let plain = run_gpu(&g, &merged, &x, t, &HostEpilogue::default()).unwrap();
    assert!(
        nmse(&fused, &plain) < 1e-10,
        "nmse {}",
        nmse(&fused, &plain)
    );
}
