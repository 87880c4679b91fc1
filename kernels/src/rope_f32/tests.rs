//! `rope_f32` vs the CPU reference (realistic positions up to 4096), both f16 modes.

use proptest::prelude::*;

use super::{reference, Rope, RopeShape};
use crate::test_util::{both_modes, cases, f32_bytes, gpu, nmse};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

fn run(
    gpu: &Gpu,
    x: &[f32],
    positions: &[u32],
    inv_freq: &[f32],
    shape: RopeShape,
) -> Result<Vec<f32>, KernelError> {
    let bx = gpu.upload("x", &f32_bytes(x))?;
    let bp = gpu.upload("positions", bytemuck::cast_slice(positions))?;
    let bf = gpu.upload("inv_freq", &f32_bytes(inv_freq))?;
    let kern = Rope::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    kern.encode(&mut rec, &bx, &bp, &bf, shape)?;
    rec.submit()?;
    gpu.read::<f32>(&bx, 0, x.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    #[test]
    fn matches_reference(
        rows in 1u32..6,
        h in 1u32..15,
        hkv in 1u32..4,
        d in prop::sample::select(vec![2u32, 8, 64, 128]),
        theta in prop::sample::select(vec![10_000.0f32, 1_000_000.0]),
        max_pos in prop::sample::select(vec![1u32, 64, 4096]),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        // q|k|v of a fused qkv row: rotate the H + Hkv heads of q and k in one dispatch.
        let stride = (h + 2 * hkv) * d;
        let x = rng.vec((rows * stride) as usize, 2.0);
        let positions: Vec<u32> = (0..rows).map(|_| rng.below(u64::from(max_pos)) as u32).collect();
        let inv = reference::inv_freq(theta, d as usize);
        let shape = RopeShape { rows, heads: h + hkv, d, stride, col: 0 };
        let mut want = x.clone();
        reference::rope(&mut want, &positions, &inv, (h + hkv) as usize, d as usize, stride as usize, 0);
        for gpu in both_modes() {
            let got = run(&gpu, &x, &positions, &inv, shape).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let e = nmse(&got, &want);
            prop_assert!(e <= 1e-10, "nmse {e}");
            // v columns untouched.
            for t in 0..rows as usize {
                let s = t * stride as usize + ((h + hkv) * d) as usize;
                prop_assert_eq!(&got[s..s + (hkv * d) as usize], &x[s..s + (hkv * d) as usize]);
            }
        }
    }
}

#[test]
fn large_positions_stay_accurate() {
    // Every position 0..4096 for one head of D = 128: the worst absolute error over all angles.
    let gpu = gpu();
    let d = 128u32;
    let rows = 4096u32;
    let mut rng = Rng::new(11);
    let x = rng.vec((rows * d) as usize, 1.0);
    let positions: Vec<u32> = (0..rows).collect();
    let inv = reference::inv_freq(1_000_000.0, d as usize);
    let mut want = x.clone();
    reference::rope(&mut want, &positions, &inv, 1, d as usize, d as usize, 0);
    let got = run(
        &gpu,
        &x,
        &positions,
        &inv,
        RopeShape {
            rows,
            heads: 1,
            d,
            stride: d,
            col: 0,
        },
    )
    .unwrap();
    let max_err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("rope max abs error over positions 0..4096: {max_err:e}");
    assert!(max_err <= 2e-6, "max abs error {max_err}");
}

#[test]
fn inv_freq_matches_hf_formula() {
    // HF: 1 / base ** (arange(0, D, 2) / D); first is exactly 1, then decreasing.
    let f = reference::inv_freq(10_000.0, 64);
    assert_eq!(f.len(), 32);
    assert_eq!(f[0], 1.0);
    assert!((f[1] - 10_000f32.powf(-2.0 / 64.0)).abs() <= 1e-7);
    assert!(f.windows(2).all(|w| w[1] < w[0]));
}

#[test]
fn heads_outside_row_are_shape_errors() {
    let gpu = gpu();
    let b = gpu.zeros("x", 4 * 64).unwrap();
    let kern = Rope::new(&gpu).unwrap();
    let mut rec = Recorder::new(&gpu);
    let bad = RopeShape {
        rows: 1,
        heads: 3,
        d: 32,
        stride: 64,
        col: 0,
    };
    assert!(matches!(
        kern.encode(&mut rec, &b, &b, &b, bad),
        Err(KernelError::Shape(_))
    ));
    let odd = RopeShape {
        rows: 1,
        heads: 1,
        d: 31,
        stride: 64,
        col: 0,
    };
    assert!(matches!(
        kern.encode(&mut rec, &b, &b, &b, odd),
        Err(KernelError::Shape(_))
    ));
}
