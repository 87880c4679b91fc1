//! matvec_w8_f32 (through `matmul`) vs the CPU reference in both f16 modes, T from 1 to past 16
//! (the 16-column chunks), plus batched-equals-single bit-exactness.

use proptest::prelude::*;

use crate::matmul::tests::{check_case, run_gpu, HostData, HostEpilogue, Kind, Rng};
use crate::matrix::Matrix;
use crate::test_util::{both_modes, cases, gpu};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5)))]
    #[test]
    fn matches_reference(
        m in 1u32..80,
        g in prop::sample::select(vec![32u32, 64]),
        groups in 1u32..4,
        kk in 1u32..300,
        t in prop::sample::select(vec![1u32, 3, 16, 17, 40]),
        mask in 0u8..8,
        seed in any::<u64>(),
    ) {
        let _ = (g, groups, kk);
        let h = HostData::random(Kind::W8, m, g * groups, g, &mut Rng(seed | 1));
        check_case(&both_modes(), &h, t, seed, mask, 5e-4);
    }
}

#[test]
fn batched_columns_are_bit_identical() {
    let g = gpu();
    let mut rng = Rng(7);
    let (m, k, t) = (33u32, 160u32, 16u32);
    let h = HostData::random(Kind::W8, m, k, 32, &mut rng);
    let w = Matrix::upload(&g, &h.host()).unwrap();
    let x = rng.vec((t * k) as usize);
    let batched = run_gpu(&g, &w, &x, t, &HostEpilogue::default()).unwrap();
    for c in 0..t as usize {
        let one = run_gpu(
            &g,
            &w,
            &x[c * k as usize..(c + 1) * k as usize],
            1,
            &HostEpilogue::default(),
        )
        .unwrap();
        assert_eq!(
            &batched[c * m as usize..(c + 1) * m as usize],
            &one[..],
            "column {c}"
        );
    }
}
