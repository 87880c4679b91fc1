//! `pooled_head_f32` vs the CPU reference: mean and last pooling, batches, both f16 modes.

use proptest::prelude::*;

use super::{reference, HeadShape, PooledHead, Pooling};
use crate::test_util::{both_modes, cases, f32_bytes, gpu};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

fn run(
    gpu: &Gpu,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    shape: HeadShape,
    pooling: Pooling,
) -> Result<Vec<f32>, KernelError> {
    let bx = gpu.upload("x", &f32_bytes(x))?;
    let bw = gpu.upload("w", &f32_bytes(w))?;
    let bb = gpu.upload("bias", &f32_bytes(bias))?;
    let n = (shape.batch * shape.classes) as usize;
    let bo = gpu.zeros("out", n as u64 * 4)?;
    let kern = PooledHead::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    kern.encode(&mut rec, &bx, &bw, &bb, &bo, shape, pooling)?;
    rec.submit()?;
    gpu.read::<f32>(&bo, 0, n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    #[test]
    fn matches_reference(
        batch in prop::sample::select(vec![1u32, 16]),
        t in 1u32..40,
        hidden in prop::sample::select(vec![1u32, 64, 576, 896]),
        classes in 1u32..4,
        mean in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let x = rng.vec((batch * t * hidden) as usize, 3.0);
        let w = rng.vec((classes * hidden) as usize, 0.5);
        let bias = rng.vec(classes as usize, 1.0);
        let end = 1 + rng.below(u64::from(t)) as u32;
        let pooling = if mean { Pooling::Mean { start: rng.below(u64::from(end)) as u32, end } } else { Pooling::Last { end } };
        let shape = HeadShape { batch, t, hidden, classes };
        let want = reference::pooled_head(&x, t as usize, hidden as usize, &w, &bias, pooling);
        // Each output's error relative to the size of the sum that makes it, Σ|w|·pool(|x|) +
        // |bias|: one output can cancel to near zero (classes = 1, batch = 1), where an nMSE
        // would measure f32 rounding against a tiny value.
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
        let mag = reference::pooled_head(&abs(&x), t as usize, hidden as usize, &abs(&w), &abs(&bias), pooling);
        for gpu in both_modes() {
            let got = run(&gpu, &x, &w, &bias, shape, pooling).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let rel = got.iter().zip(&want).zip(&mag).map(|((g, w), m)| (g - w).abs() / m.max(f32::MIN_POSITIVE)).fold(0f32, f32::max);
            prop_assert!(rel <= 1e-6, "max error / magnitude {rel:e}");
        }
    }
}

#[test]
fn bad_ranges_are_shape_errors() {
    let gpu = gpu();
    let b = gpu.zeros("b", 4096).unwrap();
    let kern = PooledHead::new(&gpu).unwrap();
    let mut rec = Recorder::new(&gpu);
    let shape = HeadShape {
        batch: 1,
        t: 4,
        hidden: 8,
        classes: 2,
    };
    for pooling in [
        Pooling::Mean { start: 2, end: 2 },
        Pooling::Mean { start: 0, end: 5 },
        Pooling::Last { end: 0 },
    ] {
        assert!(matches!(
            kern.encode(&mut rec, &b, &b, &b, &b, shape, pooling),
            Err(KernelError::Shape(_))
        ));
    }
}
