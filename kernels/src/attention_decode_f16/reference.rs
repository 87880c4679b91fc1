//! Plain CPU reference for decode attention: each path's query attends to the shared prefix
//! followed by its own suffix (f64 softmax over the f16 cache contents).

use half::f16;

use super::DecodeShape;
use crate::attention_prefill_f16::reference::{attend, cache_row};
use crate::heads::{HeadDims, QkvLayout};

/// Returns `[N, H, D]`. `s_len[n]` suffix slots of path n are used; no keys at all gives 0.
#[allow(clippy::too_many_arguments)]
pub fn attention_decode(
    q: &[f32],
    layout: QkvLayout,
    dims: HeadDims,
    shape: DecodeShape,
    k_pre: &[f16],
    v_pre: &[f16],
    k_suf: &[f16],
    v_suf: &[f16],
    s_len: &[u32],
) -> Vec<f32> {
    let (h, hkv, d) = (dims.h as usize, dims.hkv as usize, dims.d as usize);
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = Vec::with_capacity(shape.n as usize * h * d);
    for n in 0..shape.n as usize {
        for hi in 0..h {
            let hk = hi / (h / hkv);
            let mut keys = Vec::new();
            let mut vals = Vec::new();
            for j in 0..shape.p_len as usize {
                keys.push(cache_row(k_pre, 0, hk, j, hkv, shape.p_cap as usize, d));
                vals.push(cache_row(v_pre, 0, hk, j, hkv, shape.p_cap as usize, d));
            }
            for j in 0..(s_len[n].min(shape.s_cap)) as usize {
                keys.push(cache_row(k_suf, n, hk, j, hkv, shape.s_cap as usize, d));
                vals.push(cache_row(v_suf, n, hk, j, hkv, shape.s_cap as usize, d));
            }
            let kr: Vec<&[f32]> = keys.iter().map(|v| v.as_slice()).collect();
            let vr: Vec<&[f32]> = vals.iter().map(|v| v.as_slice()).collect();
            let qs = n * layout.stride as usize + layout.q_col as usize + hi * d;
            out.extend(attend(&q[qs..qs + d], &kr, &vr, scale));
        }
    }
    out
}
