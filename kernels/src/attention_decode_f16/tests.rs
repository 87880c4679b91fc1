//! `attention_decode_f16` + merge vs the CPU reference, and the invariants of N-path decode.

use half::f16;
use proptest::prelude::*;

use super::{reference, AttentionDecode, DecodeBuffers, DecodeShape};
use crate::heads::{HeadDims, QkvLayout};
use crate::test_util::{both_modes, cases, f32_bytes, gpu, nmse};
use crate::testdata::Rng;
use crate::{Gpu, KernelError, Recorder};

#[derive(Clone)]
struct Case {
    dims: HeadDims,
    shape: DecodeShape,
    q: Vec<f32>,
    k_pre: Vec<f16>,
    v_pre: Vec<f16>,
    k_suf: Vec<f16>,
    v_suf: Vec<f16>,
    s_len: Vec<u32>,
}

fn to16(v: Vec<f32>) -> Vec<f16> {
    v.into_iter().map(f16::from_f32).collect()
}

fn make(seed: u64, dims: HeadDims, n: u32, p_len: u32, s_max: u32) -> Case {
    let mut rng = Rng::new(seed);
    let shape = DecodeShape {
        n,
        p_len,
        p_cap: p_len + 3,
        n_max: n + 1,
        s_cap: s_max + 2,
        s_max,
    };
    let pre = (dims.hkv * shape.p_cap * dims.d) as usize;
    let suf = (shape.n_max * dims.hkv * shape.s_cap * dims.d) as usize;
    Case {
        dims,
        shape,
        q: rng.vec((n * QkvLayout::fused(dims).stride) as usize, 2.0),
        k_pre: to16(rng.vec(pre, 2.0)),
        v_pre: to16(rng.vec(pre, 1.0)),
        k_suf: to16(rng.vec(suf, 2.0)),
        v_suf: to16(rng.vec(suf, 1.0)),
        s_len: (0..n)
            .map(|_| rng.below(u64::from(s_max) + 1) as u32)
            .collect(),
    }
}

fn run(gpu: &Gpu, c: &Case) -> Result<Vec<f32>, KernelError> {
    let up = |name: &str, v: &[f16]| gpu.upload(name, bytemuck::cast_slice(v));
    let bq = gpu.upload("q", &f32_bytes(&c.q))?;
    let (kp, vp, ks, vs) = (
        up("kp", &c.k_pre)?,
        up("vp", &c.v_pre)?,
        up("ks", &c.k_suf)?,
        up("vs", &c.v_suf)?,
    );
    let bl = gpu.upload("s_len", bytemuck::cast_slice(&c.s_len))?;
    let scratch = gpu.zeros("scratch", AttentionDecode::scratch_bytes(c.dims, &c.shape))?;
    let n_out = (c.shape.n * c.dims.h * c.dims.d) as usize;
    let out = gpu.zeros("out", n_out as u64 * 4)?;
    let kern = AttentionDecode::new(gpu)?;
    let mut rec = Recorder::new(gpu);
    let b = DecodeBuffers {
        q: (&bq).into(),
        k_pre: (&kp).into(),
        v_pre: (&vp).into(),
        k_suf: (&ks).into(),
        v_suf: (&vs).into(),
        s_len: (&bl).into(),
        scratch: (&scratch).into(),
        out: (&out).into(),
    };
    kern.encode(&mut rec, b, c.dims, QkvLayout::fused(c.dims), c.shape)?;
    rec.submit()?;
    gpu.read::<f32>(&out, 0, n_out)
}

fn want(c: &Case) -> Vec<f32> {
    reference::attention_decode(
        &c.q,
        QkvLayout::fused(c.dims),
        c.dims,
        c.shape,
        &c.k_pre,
        &c.v_pre,
        &c.k_suf,
        &c.v_suf,
        &c.s_len,
    )
}

/// Path `n` of `c` as a one-path case (its suffix moved to segment 0).
fn single(c: &Case, n: usize) -> Case {
    let stride = QkvLayout::fused(c.dims).stride as usize;
    let seg = (c.dims.hkv * c.shape.s_cap * c.dims.d) as usize;
    let mut k_suf = vec![f16::ZERO; 2 * seg];
    let mut v_suf = vec![f16::ZERO; 2 * seg];
    k_suf[..seg].copy_from_slice(&c.k_suf[n * seg..(n + 1) * seg]);
    v_suf[..seg].copy_from_slice(&c.v_suf[n * seg..(n + 1) * seg]);
    Case {
        shape: DecodeShape {
            n: 1,
            n_max: 2,
            ..c.shape
        },
        q: c.q[n * stride..(n + 1) * stride].to_vec(),
        k_suf,
        v_suf,
        s_len: vec![c.s_len[n]],
        ..c.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5)))]

    #[test]
    fn matches_reference(
        n in prop::sample::select(vec![1u32, 3, 16]),
        hkv in 1u32..3,
        g in prop::sample::select(vec![1u32, 2, 7]),
        d in prop::sample::select(vec![16u32, 64, 128]),
        p_len in prop::sample::select(vec![0u32, 1, 50, 300]),
        s_max in prop::sample::select(vec![0u32, 1, 40]),
        seed in any::<u64>(),
    ) {
        let c = make(seed, HeadDims { h: hkv * g, hkv, d }, n, p_len, s_max);
        let want = want(&c);
        for gpu in both_modes() {
            let got = run(&gpu, &c).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let e = nmse(&got, &want);
            prop_assert!(e <= 1e-9 || (want.iter().all(|&x| x == 0.0) && got.iter().all(|&x| x == 0.0)), "nmse {e}");
        }
    }
}

#[test]
fn batched_paths_equal_independent_runs() {
    let gpu = gpu();
    let dims = HeadDims {
        h: 14,
        hkv: 2,
        d: 64,
    };
    let c = make(21, dims, 5, 200, 30);
    let batched = run(&gpu, &c).unwrap();
    let per = (dims.h * dims.d) as usize;
    for n in 0..5 {
        let alone = run(&gpu, &single(&c, n)).unwrap();
        assert_eq!(
            &batched[n * per..(n + 1) * per],
            alone.as_slice(),
            "path {n}"
        );
    }
}

#[test]
fn permuting_paths_permutes_outputs() {
    let gpu = gpu();
    let dims = HeadDims {
        h: 6,
        hkv: 3,
        d: 32,
    };
    let c = make(4, dims, 4, 77, 20);
    let perm = [2usize, 0, 3, 1];
    let stride = QkvLayout::fused(dims).stride as usize;
    let seg = (dims.hkv * c.shape.s_cap * dims.d) as usize;
    let mut p = c.clone();
    for (i, &src) in perm.iter().enumerate() {
        p.q[i * stride..(i + 1) * stride].copy_from_slice(&c.q[src * stride..(src + 1) * stride]);
        p.k_suf[i * seg..(i + 1) * seg].copy_from_slice(&c.k_suf[src * seg..(src + 1) * seg]);
        p.v_suf[i * seg..(i + 1) * seg].copy_from_slice(&c.v_suf[src * seg..(src + 1) * seg]);
        p.s_len[i] = c.s_len[src];
    }
    let a = run(&gpu, &c).unwrap();
    let b = run(&gpu, &p).unwrap();
    let per = (dims.h * dims.d) as usize;
    for (i, &src) in perm.iter().enumerate() {
        assert_eq!(&b[i * per..(i + 1) * per], &a[src * per..(src + 1) * per]);
    }
}

#[test]
fn prefix_plus_suffix_equals_attention_over_concatenation() {
    // One path with P = 90 prefix + 25 suffix keys vs the same 115 keys all in the prefix.
    let gpu = gpu();
    let dims = HeadDims {
        h: 4,
        hkv: 2,
        d: 64,
    };
    let mut c = make(8, dims, 1, 90, 25);
    c.s_len = vec![25];
    let split = run(&gpu, &c).unwrap();
    let (d, hkv) = (dims.d as usize, dims.hkv as usize);
    let p_cap = 115usize;
    let mut k_pre = vec![f16::ZERO; hkv * p_cap * d];
    let mut v_pre = k_pre.clone();
    for hk in 0..hkv {
        for j in 0..115 {
            let (src_k, src_v) = if j < 90 {
                let s = (hk * c.shape.p_cap as usize + j) * d;
                (&c.k_pre[s..s + d], &c.v_pre[s..s + d])
            } else {
                let s = (hk * c.shape.s_cap as usize + j - 90) * d;
                (&c.k_suf[s..s + d], &c.v_suf[s..s + d])
            };
            let dst = (hk * p_cap + j) * d;
            k_pre[dst..dst + d].copy_from_slice(src_k);
            v_pre[dst..dst + d].copy_from_slice(src_v);
        }
    }
    let concat = Case {
        shape: DecodeShape {
            p_len: 115,
            p_cap: 115,
            s_max: 0,
            ..c.shape
        },
        k_pre,
        v_pre,
        s_len: vec![0],
        ..c.clone()
    };
    let whole = run(&gpu, &concat).unwrap();
    assert!(
        nmse(&split, &whole) <= 1e-12,
        "nmse {}",
        nmse(&split, &whole)
    );
}

#[test]
fn long_prefix_many_chunks() {
    let gpu = gpu();
    let dims = HeadDims {
        h: 2,
        hkv: 1,
        d: 128,
    };
    let c = make(13, dims, 2, 5000, 600);
    let e = nmse(&run(&gpu, &c).unwrap(), &want(&c));
    assert!(e <= 1e-9, "nmse {e}");
}

#[test]
fn too_many_queries_is_shape_error() {
    let gpu = gpu();
    let dims = HeadDims {
        h: 16,
        hkv: 1,
        d: 16,
    };
    let c = make(1, dims, 9, 4, 4); // N·G = 144 > 128
    assert!(matches!(run(&gpu, &c), Err(KernelError::Shape(_))));
}

/// No keys at all (empty prefix, empty suffixes): the output is zeros, and the scratch from
/// `scratch_bytes` still binds (one quad: the partials are read as `vec4<u32>`).
#[test]
fn no_keys_gives_zeros() {
    let c = make(
        89_837_323,
        HeadDims {
            h: 1,
            hkv: 1,
            d: 16,
        },
        1,
        0,
        0,
    );
    assert_eq!(AttentionDecode::scratch_bytes(c.dims, &c.shape), 16);
    for gpu in both_modes() {
        let got = run(&gpu, &c).unwrap();
        assert_eq!(got, want(&c));
        assert!(got.iter().all(|&x| x == 0.0));
    }
}
