//! matmul_quant_f32 vs the CPU reference (both feature modes) for decode and prefill T, plus the
//! invariants:
//! batched columns equal single-column runs bit for bit, permuting columns permutes outputs,
//! LoRA with scale 0 equals the base kernel.

use proptest::prelude::*;

use crate::matmul::tests::{check_case, run_gpu, HostData, HostEpilogue, Kind, Rng};
use crate::matrix::Matrix;
use crate::test_util::{both_modes, cases};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]
    #[test]
    fn matches_reference(
        asym in any::<bool>(),
        m in 1u32..90,
        g in prop::sample::select(vec![32u32, 64, 128]),
        groups in 1u32..4,
        t in prop::sample::select(vec![1u32, 2, 3, 8, 16]),
        mask in 0u8..8,
        seed in any::<u64>(),
    ) {
        let kind = if asym { Kind::W4Asym } else { Kind::W4Sym };
        let h = HostData::random(kind, m, g * groups, g, &mut Rng(seed | 1));
        check_case(&both_modes(), &h, t, seed, mask, 5e-4);
    }

    /// W8 (two texels per 32-weight chunk), decode and prefill T.
    #[test]
    fn w8_matches_reference(
        m in 1u32..80,
        g in prop::sample::select(vec![32u32, 64, 128]),
        groups in 1u32..4,
        t in prop::sample::select(vec![1u32, 3, 16, 17, 40]),
        mask in 0u8..8,
        seed in any::<u64>(),
    ) {
        let h = HostData::random(Kind::W8, m, g * groups, g, &mut Rng(seed | 1));
        check_case(&both_modes(), &h, t, seed, mask, 5e-4);
    }

    /// Prefill T (not multiples of the 4-column tile) and M not a multiple of the 8-row tile.
    #[test]
    fn prefill_matches_reference(
        asym in any::<bool>(),
        m in 1u32..100,
        g in prop::sample::select(vec![32u32, 64, 128]),
        groups in 1u32..4,
        t in 17u32..80,
        mask in 0u8..8,
        seed in any::<u64>(),
    ) {
        let kind = if asym { Kind::W4Asym } else { Kind::W4Sym };
        let h = HostData::random(kind, m, g * groups, g, &mut Rng(seed | 1));
        check_case(&both_modes(), &h, t, seed, mask, 5e-4);
    }
}

/// Runs `t` columns at once and each column alone; returns (batched, singles).
fn batched_vs_single(kind: Kind, m: u32, k: u32, t: u32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let g = crate::test_util::gpu();
    let mut rng = Rng(99);
    let h = HostData::random(kind, m, k, 32, &mut rng);
    let w = Matrix::upload(&g, &h.host()).unwrap();
    let x = rng.vec((t * k) as usize);
    let batched = run_gpu(&g, &w, &x, t, &HostEpilogue::default()).unwrap();
    let mut singles = Vec::new();
    for c in 0..t as usize {
        let xc = &x[c * k as usize..(c + 1) * k as usize];
        singles.extend(run_gpu(&g, &w, xc, 1, &HostEpilogue::default()).unwrap());
    }
    // Reverse the column order: outputs must come back reversed.
    let rev: Vec<f32> = (0..t as usize)
        .rev()
        .flat_map(|c| x[c * k as usize..(c + 1) * k as usize].to_vec())
        .collect();
    let permuted = run_gpu(&g, &w, &rev, t, &HostEpilogue::default()).unwrap();
    (batched, singles, permuted)
}

#[test]
fn batched_columns_are_bit_identical_and_permute() {
    for kind in [Kind::W4Sym, Kind::W4Asym, Kind::W8] {
        // 40: a prefill T (10 column quads) must equal decode runs too; 80 (80 KiB of x) reads
        // x from the scratch x texture and must equal single columns read through the window.
        for t in [2u32, 8, 16, 40, 80] {
            let (m, k) = (70u32, 256u32);
            let (batched, singles, permuted) = batched_vs_single(kind, m, k, t);
            assert_eq!(
                batched, singles,
                "{kind:?} T={t}: batched != single-column runs"
            );
            let m = m as usize;
            for c in 0..t as usize {
                let back = t as usize - 1 - c;
                assert_eq!(
                    &permuted[c * m..(c + 1) * m],
                    &batched[back * m..(back + 1) * m]
                );
            }
        }
    }
}

#[test]
fn subgroup_and_per_lane_x_loads_agree_bit_for_bit() {
    let (sg, plain) = (crate::test_util::gpu(), crate::test_util::gpu_packed());
    let mut rng = Rng(17);
    for (kind, t) in [
        (Kind::W4Sym, 1u32),
        (Kind::W4Asym, 5),
        (Kind::W4Sym, 33),
        (Kind::W8, 6),
    ] {
        let (m, k) = (77u32, 384u32);
        let h = HostData::random(kind, m, k, 64, &mut rng);
        let x = rng.vec((t * k) as usize);
        let run = |g: &crate::Gpu| {
            let w = Matrix::upload(g, &h.host()).unwrap();
            run_gpu(g, &w, &x, t, &HostEpilogue::default()).unwrap()
        };
        assert_eq!(run(&sg), run(&plain), "{kind:?} T={t}");
    }
}

#[test]
fn lora_scale_zero_equals_base() {
    let g = crate::test_util::gpu();
    let mut rng = Rng(5);
    let (m, k, t) = (48u32, 128u32, 4u32);
    let h = HostData::random(Kind::W4Sym, m, k, 32, &mut rng);
    let w = Matrix::upload(&g, &h.host()).unwrap();
    let x = rng.vec((t * k) as usize);
    let base = run_gpu(&g, &w, &x, t, &HostEpilogue::default()).unwrap();
    let ep = HostEpilogue {
        lora: Some((
            rng.vec((t * 8) as usize),
            0,
            8,
            rng.vec((m * 8) as usize),
            8,
            0.0,
        )),
        ..Default::default()
    };
    assert_eq!(run_gpu(&g, &w, &x, t, &ep).unwrap(), base);
}

#[test]
fn fused_swiglu_input_equals_swiglu_then_matmul() {
    use crate::matmul::{matmul, matmul_swiglu, Epilogue};
    use crate::swiglu_f32::Swiglu;
    use crate::test_util::x_bytes;
    let mut rng = Rng(23);
    for g in both_modes() {
        // T = 48: 72 KiB of gate | up, past the uniform window.
        for (kind, t) in [
            (Kind::W4Sym, 1u32),
            (Kind::W4Asym, 6),
            (Kind::W8, 21),
            (Kind::W4Sym, 48),
        ] {
            let (m, k) = (45u32, 192u32);
            let h = HostData::random(kind, m, k, 32, &mut rng);
            let w = Matrix::upload(&g, &h.host()).unwrap();
            let gu = g
                .upload("gu", &x_bytes(&rng.vec((t * 2 * k) as usize)))
                .unwrap();
            let act = g.zeros("act", u64::from(t * k) * 4).unwrap();
            let (y1, y2) = (
                g.zeros("y1", u64::from(t * m) * 4).unwrap(),
                g.zeros("y2", u64::from(t * m) * 4).unwrap(),
            );
            let mut rec = crate::Recorder::new(&g);
            Swiglu::new(&g)
                .unwrap()
                .encode(&mut rec, &gu, &act, t, k)
                .unwrap();
            matmul(&mut rec, &w, &act, &y1, t, &Epilogue::default()).unwrap();
            matmul_swiglu(&mut rec, &w, &gu, &y2, t, &Epilogue::default()).unwrap();
            rec.submit_and_wait().unwrap();
            // Same formula, but the compiler may round silu differently in the two kernels.
            let n = (t * m) as usize;
            let (a, b) = (
                g.read::<f32>(&y1, 0, n).unwrap(),
                g.read::<f32>(&y2, 0, n).unwrap(),
            );
            let e = crate::test_util::nmse(&b, &a);
            assert!(e <= 1e-12, "{kind:?} T={t} f16={}: nMSE {e:e}", g.has_f16());
        }
    }
}

/// On CPU adapters inputs past the 64 KiB uniform window are copied into the scratch x texture
/// (elsewhere they stay storage). Whole texture rows only (T = 128, K = 256: 2 rows of 4096
/// texels) and a partial last row (T = 75) both match the reference.
#[test]
fn inputs_past_the_window_read_the_x_texture() {
    use crate::{Recorder, XRead};
    let g = crate::test_util::gpu();
    let x = g.zeros("x", 128 * 256 * 4).unwrap();
    let mut rec = Recorder::new(&g);
    let read = |rec: &mut Recorder<'_>, bytes| g.x_input(rec, &x, bytes).unwrap().read();
    let (small, large) = (read(&mut rec, 65536), read(&mut rec, 65552));
    if g.profile().uniform_x {
        assert_eq!((small, large), (XRead::Uniform, XRead::Texture));
    } else {
        assert_eq!((small, large), (XRead::Storage, XRead::Storage));
    }
    rec.submit_and_wait().unwrap();
    let mut rng = Rng(41);
    for (kind, t) in [(Kind::W4Sym, 128u32), (Kind::W4Asym, 75), (Kind::W8, 75)] {
        let h = HostData::random(kind, 61, 256, 64, &mut rng);
        check_case(&[g.clone()], &h, t, 7, 7, 5e-4);
    }
}
