//! `rope_kv_append_f16` vs the CPU reference: prefix and suffix segments, GQA, both f16 modes.

use half::f16;
use proptest::prelude::*;

use super::{reference, KvSegment, RopeKvAppend, RopeKvBuffers};
use crate::heads::{HeadDims, QkvLayout};
use crate::rope_f32::reference::inv_freq;
use crate::test_util::{both_modes, cases, f32_bytes, gpu, nmse};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

struct Case {
    qkv: Vec<f32>,
    positions: Vec<u32>,
    inv: Vec<f32>,
    dims: HeadDims,
    dest: KvSegment,
    rope: Option<f32>,
    cache_init: Vec<f16>,
}

fn run(gpu: &Gpu, c: &Case) -> Result<(Vec<f32>, Vec<f16>, Vec<f16>), KernelError> {
    let rows = c.positions.len() as u32;
    let bq = gpu.upload("qkv", &f32_bytes(&c.qkv))?;
    let bp = gpu.upload("positions", bytemuck::cast_slice(&c.positions))?;
    let bf = gpu.upload("inv_freq", &f32_bytes(&c.inv))?;
    let bk = gpu.upload("k", bytemuck::cast_slice(&c.cache_init))?;
    let bv = gpu.upload("v", bytemuck::cast_slice(&c.cache_init))?;
    let kern = RopeKvAppend::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    let bufs = RopeKvBuffers {
        qkv: (&bq).into(),
        positions: (&bp).into(),
        inv_freq: (&bf).into(),
        k_cache: (&bk).into(),
        v_cache: (&bv).into(),
    };
    kern.encode(
        &mut rec,
        bufs,
        rows,
        c.dims,
        QkvLayout::fused(c.dims),
        c.dest,
        c.rope,
    )?;
    rec.submit()?;
    let n = c.cache_init.len();
    Ok((
        gpu.read::<f32>(&bq, 0, c.qkv.len())?,
        gpu.read::<f16>(&bk, 0, n)?,
        gpu.read::<f16>(&bv, 0, n)?,
    ))
}

/// f16 values agree to one unit in the last place (WGSL lets f32 → f16 round either way).
fn f16_close(got: &[f16], want: &[f16]) -> Result<usize, String> {
    let mut inexact = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (i32::from(g.to_bits() as i16) - i32::from(w.to_bits() as i16)).abs();
        if d > 1 && !(g.to_f32() == 0.0 && w.to_f32() == 0.0) {
            return Err(format!("element {i}: got {g} want {w}"));
        }
        inexact += usize::from(d == 1);
    }
    Ok(inexact)
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let mut want_qkv = c.qkv.clone();
    let (mut wk, mut wv) = (c.cache_init.clone(), c.cache_init.clone());
    reference::rope_kv_append(
        &mut want_qkv,
        &c.positions,
        &c.inv,
        c.dims,
        QkvLayout::fused(c.dims),
        c.dest,
        c.rope,
        &mut wk,
        &mut wv,
    );
    for gpu in both_modes() {
        let (q, k, v) = run(&gpu, c).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let e = nmse(&q, &want_qkv);
        prop_assert!(e <= 1e-10, "qkv nmse {e}");
        // k went through RoPE (GPU cos/sin ~1e-7 from f64): one f16 ulp or 1e-6 absolute.
        for (i, (g, w)) in k.iter().zip(&wk).enumerate() {
            let (g, w) = (g.to_f32(), w.to_f32());
            prop_assert!(
                (g - w).abs() <= w.abs() / 1024.0 + 1e-6,
                "k element {i}: got {g} want {w}"
            );
        }
        // v is a pure f32 → f16 conversion: identical up to the rounding allowance.
        f16_close(&v, &wv).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    #[test]
    fn prefix_append_matches_reference(
        rows in 1u32..9,
        hkv in 1u32..4,
        g in prop::sample::select(vec![1u32, 2, 7]),
        d in prop::sample::select(vec![4u32, 64, 128]),
        past in 0u32..3000,
        rope in prop::option::of(prop::sample::select(vec![1.0f32, 0.75, 1.1386])),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let dims = HeadDims { h: hkv * g, hkv, d };
        let p_max = past + rows + 3;
        let qkv = rng.vec((rows * QkvLayout::fused(dims).stride) as usize, 2.0);
        let cache_init: Vec<f16> = rng.vec((hkv * p_max * d) as usize, 1.0).into_iter().map(f16::from_f32).collect();
        let case = Case {
            qkv,
            positions: (past..past + rows).collect(),
            inv: inv_freq(1_000_000.0, d as usize),
            dims,
            dest: KvSegment::prefix(p_max, rows),
            rope,
            cache_init,
        };
        check(&case)?;
    }

    #[test]
    fn suffix_append_per_path_positions(
        n in prop::sample::select(vec![1u32, 3, 16]),
        tokens in 1u32..3,
        hkv in 1u32..3,
        d in prop::sample::select(vec![8u32, 64]),
        prefix_len in 0u32..500,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let dims = HeadDims { h: hkv * 2, hkv, d };
        let s_max = 12u32;
        let n_max = n + 1;
        let mut positions = Vec::new();
        for _ in 0..n {
            let s = rng.below(u64::from(s_max - tokens + 1)) as u32;
            positions.extend((0..tokens).map(|i| prefix_len + s + i));
        }
        let rows = n * tokens;
        let case = Case {
            qkv: rng.vec((rows * QkvLayout::fused(dims).stride) as usize, 2.0),
            positions,
            inv: inv_freq(10_000.0, d as usize),
            dims,
            dest: KvSegment::suffix(n_max, s_max, tokens, prefix_len),
            rope: Some(1.0),
            cache_init: vec![f16::from_f32(0.5); (n_max * hkv * s_max * d) as usize],
        };
        check(&case)?;
    }
}

#[test]
fn out_of_segment_rows_are_skipped() {
    let gpu = gpu();
    let dims = HeadDims { h: 2, hkv: 1, d: 8 };
    let mut rng = Rng::new(3);
    // Slots 3 (valid), 4 (== cap: skipped) and a position below the bias (skipped).
    let case = Case {
        qkv: rng.vec((3 * QkvLayout::fused(dims).stride) as usize, 1.0),
        positions: vec![13, 14, 2],
        inv: inv_freq(10_000.0, 8),
        dims,
        dest: KvSegment {
            segments: 3,
            cap: 4,
            rows_per_segment: 1,
            slot_bias: 10,
        },
        rope: Some(1.0),
        cache_init: vec![f16::from_f32(7.0); (3 * 4 * 8) as usize],
    };
    let (_, k, _) = run(&gpu, &case).unwrap();
    let touched = k.iter().filter(|v| v.to_f32() != 7.0).count();
    assert_eq!(touched, 8, "only segment 0 slot 3 is written");
}

#[test]
fn bad_shapes_are_errors() {
    let gpu = gpu();
    let b = gpu.zeros("b", 1 << 12).unwrap();
    let kern = RopeKvAppend::new(&gpu).unwrap();
    let mut rec = Recorder::new(&gpu);
    let bufs = || RopeKvBuffers {
        qkv: (&b).into(),
        positions: (&b).into(),
        inv_freq: (&b).into(),
        k_cache: (&b).into(),
        v_cache: (&b).into(),
    };
    let gqa_bad = HeadDims { h: 3, hkv: 2, d: 8 };
    let r = kern.encode(
        &mut rec,
        bufs(),
        1,
        gqa_bad,
        QkvLayout::fused(gqa_bad),
        KvSegment::prefix(4, 1),
        Some(1.0),
    );
    assert!(matches!(r, Err(KernelError::Shape(_))));
    let dims = HeadDims {
        h: 2,
        hkv: 1,
        d: 64,
    };
    // A prefix cache of 1000 slots needs 128 KB: the 4-KB buffer is too small.
    let r = kern.encode(
        &mut rec,
        bufs(),
        1,
        dims,
        QkvLayout::fused(dims),
        KvSegment::prefix(1000, 1),
        Some(1.0),
    );
    assert!(matches!(r, Err(KernelError::Shape(_))));
}
