//! `attention_prefill_f16` vs the CPU reference; chunked prefill equals one-shot prefill.

use half::f16;
use proptest::prelude::*;

use super::{reference, AttentionPrefill};
use crate::heads::{HeadDims, QkvLayout};
use crate::test_util::{both_modes, cases, f32_bytes, gpu, nmse};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

struct Case {
    dims: HeadDims,
    cap: u32,
    qkv: Vec<f32>,
    k: Vec<f16>,
    v: Vec<f16>,
}

fn make(seed: u64, dims: HeadDims, t: u32, past: u32) -> Case {
    let mut rng = Rng::new(seed);
    let cap = past + t + 5;
    let n = (dims.hkv * cap * dims.d) as usize;
    let to16 = |v: Vec<f32>| v.into_iter().map(f16::from_f32).collect::<Vec<_>>();
    Case {
        dims,
        cap,
        qkv: rng.vec((t * QkvLayout::fused(dims).stride) as usize, 2.0),
        k: to16(rng.vec(n, 2.0)),
        v: to16(rng.vec(n, 1.0)),
    }
}

fn run(gpu: &Gpu, c: &Case, qkv: &[f32], t: u32, past: u32) -> Result<Vec<f32>, KernelError> {
    let bq = gpu.upload("qkv", &f32_bytes(qkv))?;
    let bk = gpu.upload("k", bytemuck::cast_slice(&c.k))?;
    let bv = gpu.upload("v", bytemuck::cast_slice(&c.v))?;
    let n_out = (t * c.dims.h * c.dims.d) as usize;
    let bo = gpu.zeros("out", n_out as u64 * 4)?;
    let kern = AttentionPrefill::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    kern.encode(
        &mut rec,
        &bq,
        &bk,
        &bv,
        &bo,
        c.dims,
        QkvLayout::fused(c.dims),
        t,
        past,
        c.cap,
    )?;
    rec.submit()?;
    gpu.read::<f32>(&bo, 0, n_out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5)))]

    #[test]
    fn matches_reference(
        t in prop::sample::select(vec![1u32, 2, 37, 70]),
        past in prop::sample::select(vec![0u32, 1, 100]),
        hkv in 1u32..3,
        g in prop::sample::select(vec![1u32, 2, 7]),
        d in prop::sample::select(vec![16u32, 64, 128]),
        seed in any::<u64>(),
    ) {
        let c = make(seed, HeadDims { h: hkv * g, hkv, d }, t, past);
        let want = reference::attention_prefill(&c.qkv, QkvLayout::fused(c.dims), c.dims, t as usize, past as usize, c.cap as usize, &c.k, &c.v);
        for gpu in both_modes() {
            let got = run(&gpu, &c, &c.qkv, t, past).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let e = nmse(&got, &want);
            prop_assert!(e <= 1e-9, "nmse {e}");
        }
    }
}

#[test]
fn chunked_prefill_equals_one_shot() {
    // 100 queries in one dispatch vs chunks of 64 + 36 (the second with past = 64): identical
    // math per query, so the results must agree bit for bit.
    let gpu = gpu();
    let dims = HeadDims {
        h: 4,
        hkv: 2,
        d: 64,
    };
    let c = make(5, dims, 100, 0);
    let whole = run(&gpu, &c, &c.qkv, 100, 0).unwrap();
    let stride = QkvLayout::fused(dims).stride as usize;
    let first = run(&gpu, &c, &c.qkv[..64 * stride], 64, 0).unwrap();
    let second = run(&gpu, &c, &c.qkv[64 * stride..], 36, 64).unwrap();
    let chunked: Vec<f32> = first.into_iter().chain(second).collect();
    assert_eq!(whole, chunked);
}

#[test]
fn head_dim_256_and_long_context() {
    // Long contexts run thousands of loop iterations per invocation (lavapipe caps them).
    let gpu = gpu();
    for (d, past) in [(256u32, 700u32), (64, 3000), (128, 2000)] {
        let dims = HeadDims { h: 2, hkv: 1, d };
        let c = make(9, dims, 3, past);
        let want = reference::attention_prefill(
            &c.qkv,
            QkvLayout::fused(dims),
            dims,
            3,
            past as usize,
            c.cap as usize,
            &c.k,
            &c.v,
        );
        let got = run(&gpu, &c, &c.qkv, 3, past).unwrap();
        let e = nmse(&got, &want);
        assert!(e <= 1e-9, "D {d} past {past}: nmse {e}");
    }
}

#[test]
fn long_context_splits_keys_and_merges_exactly() {
    // 12,000 keys at D = 128 exceed one lavapipe invocation: plain encode refuses, the split
    // path (partials + LSE merge) matches the reference.
    let gpu = gpu();
    let dims = HeadDims {
        h: 2,
        hkv: 1,
        d: 128,
    };
    let (t, past) = (3u32, 11_997u32);
    assert!(super::PrefillPlan::new(past + t, 128).nsplit > 1);
    assert_eq!(super::PrefillPlan::new(2000, 128).nsplit, 1);
    let c = make(17, dims, t, past);
    let bq = gpu.upload("qkv", &f32_bytes(&c.qkv)).unwrap();
    let bk = gpu.upload("k", bytemuck::cast_slice(&c.k)).unwrap();
    let bv = gpu.upload("v", bytemuck::cast_slice(&c.v)).unwrap();
    let n_out = (t * dims.h * dims.d) as usize;
    let bo = gpu.zeros("out", n_out as u64 * 4).unwrap();
    let need = AttentionPrefill::scratch_bytes(dims, t, past);
    let scratch = gpu.zeros("scratch", need).unwrap();
    let kern = AttentionPrefill::new(&gpu).unwrap();
    let layout = QkvLayout::fused(dims);
    let mut rec = Recorder::new(&gpu);
    let r = kern.encode(&mut rec, &bq, &bk, &bv, &bo, dims, layout, t, past, c.cap);
    assert!(matches!(r, Err(KernelError::Limit(_))), "{r:?}");
    kern.encode_split(
        &mut rec,
        &bq,
        &bk,
        &bv,
        &bo,
        Some((&scratch).into()),
        dims,
        layout,
        t,
        past,
        c.cap,
    )
    .unwrap();
    rec.submit().unwrap();
    let got = gpu.read::<f32>(&bo, 0, n_out).unwrap();
    let want = reference::attention_prefill(
        &c.qkv,
        layout,
        dims,
        t as usize,
        past as usize,
        c.cap as usize,
        &c.k,
        &c.v,
    );
    let e = nmse(&got, &want);
    assert!(e <= 1e-9, "nmse {e}");
}

#[test]
fn overflowing_cache_is_shape_error() {
    let gpu = gpu();
    let dims = HeadDims { h: 2, hkv: 1, d: 8 };
    let b = gpu.zeros("b", 1 << 12).unwrap();
    let kern = AttentionPrefill::new(&gpu).unwrap();
    let mut rec = Recorder::new(&gpu);
    let r = kern.encode(
        &mut rec,
        &b,
        &b,
        &b,
        &b,
        dims,
        QkvLayout::fused(dims),
        4,
        10,
        12,
    );
    assert!(matches!(r, Err(KernelError::Shape(_))));
}
