//! Plain CPU reference for `rope_kv_append_f16`: RoPE (via `rope_f32::reference`) then an f16
//! store (round to nearest even) into the segmented cache `[segments, Hkv, cap, D]`.

use half::f16;

use super::KvSegment;
use crate::heads::{HeadDims, QkvLayout};
use crate::rope_f32::reference::rope_head_scaled;

/// Applies the kernel to host copies: `qkv` (q rotated in place when `rope` is `Some(factor)`,
/// cos and sin scaled by the factor), `k_cache` and
/// `v_cache` (f16, `[segments, Hkv, cap, D]`). Rows whose slot falls outside the segment are
/// skipped, as on the GPU.
#[allow(clippy::too_many_arguments)]
pub fn rope_kv_append(
    qkv: &mut [f32],
    positions: &[u32],
    inv_freq: &[f32],
    dims: HeadDims,
    layout: QkvLayout,
    dest: KvSegment,
    rope: Option<f32>,
    k_cache: &mut [f16],
    v_cache: &mut [f16],
) {
    let (h, hkv, d) = (dims.h as usize, dims.hkv as usize, dims.d as usize);
    let stride = layout.stride as usize;
    for (t, &pos) in positions.iter().enumerate() {
        let row = t * stride;
        if let Some(f) = rope {
            for j in 0..h {
                let s = row + layout.q_col as usize + j * d;
                rope_head_scaled(&mut qkv[s..s + d], pos, inv_freq, f);
            }
        }
        let slot = pos.wrapping_sub(dest.slot_bias);
        if slot >= dest.cap {
            continue;
        }
        let seg = t / dest.rows_per_segment as usize;
        for hk in 0..hkv {
            let ks = row + layout.k_col as usize + hk * d;
            let mut k = qkv[ks..ks + d].to_vec();
            if let Some(f) = rope {
                rope_head_scaled(&mut k, pos, inv_freq, f);
            }
            let vs = row + layout.v_col as usize + hk * d;
            let dst = ((seg * hkv + hk) * dest.cap as usize + slot as usize) * d;
            for i in 0..d {
                k_cache[dst + i] = f16::from_f32(k[i]);
                v_cache[dst + i] = f16::from_f32(qkv[vs + i]);
            }
        }
    }
}
