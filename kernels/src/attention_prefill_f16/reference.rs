//! Plain CPU reference for attention (f64 softmax over f16-rounded keys/values).

use half::f16;

use crate::heads::{HeadDims, QkvLayout};

/// `softmax(q·kᵀ · scale) · v` over the given key/value rows, in f64.
pub fn attend(q: &[f32], keys: &[&[f32]], values: &[&[f32]], scale: f32) -> Vec<f32> {
    let d = q.len();
    if keys.is_empty() {
        return vec![0.0; d];
    }
    let scores: Vec<f64> = keys
        .iter()
        .map(|k| {
            q.iter()
                .zip(*k)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum::<f64>()
                * f64::from(scale)
        })
        .collect();
    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut out = vec![0f64; d];
    for (wi, v) in w.iter().zip(values) {
        for (o, &x) in out.iter_mut().zip(*v) {
            *o += wi * f64::from(x);
        }
    }
    out.iter().map(|o| (o / total) as f32).collect()
}

/// Row `slot` of kv head `hk` in a segmented cache `[segments, Hkv, cap, D]`, as f32.
pub fn cache_row(
    cache: &[f16],
    seg: usize,
    hk: usize,
    slot: usize,
    hkv: usize,
    cap: usize,
    d: usize,
) -> Vec<f32> {
    let s = ((seg * hkv + hk) * cap + slot) * d;
    cache[s..s + d].iter().map(|x| x.to_f32()).collect()
}

/// Causal prefill attention: query t (row t of `qkv`, position `past + t`) of head h attends to
/// slots `0 ..= past + t` of kv head `h / G` of the prefix cache `[Hkv, cap, D]`. Returns `[T, H, D]`.
#[allow(clippy::too_many_arguments)]
pub fn attention_prefill(
    qkv: &[f32],
    layout: QkvLayout,
    dims: HeadDims,
    t: usize,
    past: usize,
    cap: usize,
    k_cache: &[f16],
    v_cache: &[f16],
) -> Vec<f32> {
    let (h, hkv, d) = (dims.h as usize, dims.hkv as usize, dims.d as usize);
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = Vec::with_capacity(t * h * d);
    for ti in 0..t {
        for hi in 0..h {
            let hk = hi / (h / hkv);
            let qs = ti * layout.stride as usize + layout.q_col as usize + hi * d;
            let keys: Vec<Vec<f32>> = (0..=past + ti)
                .map(|j| cache_row(k_cache, 0, hk, j, hkv, cap, d))
                .collect();
            let vals: Vec<Vec<f32>> = (0..=past + ti)
                .map(|j| cache_row(v_cache, 0, hk, j, hkv, cap, d))
                .collect();
            let kr: Vec<&[f32]> = keys.iter().map(|v| v.as_slice()).collect();
            let vr: Vec<&[f32]> = vals.iter().map(|v| v.as_slice()).collect();
            out.extend(attend(&qkv[qs..qs + d], &kr, &vr, scale));
        }
    }
    out
}
