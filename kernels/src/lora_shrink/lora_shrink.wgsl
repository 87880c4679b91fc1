// lora_shrink: h[c, row] = Σ_k x[c, k] · A[row, k] for A = the row concatenation of a group's
// LoRA A matrices, [ΣR, K] f16 in a texel array (LoraA: row `row` is ceil(K/8) texels of 8 f16,
// zero padded). One row per lane, NCOL ≤ 4 columns per invocation (workgroup_id.y = column
// quad). Each 32-value x chunk is loaded once per 8 lanes with subgroups (x32.wgsl) and dotted
// with the row's 4 texels; a K % 32 tail goes 4 values at a time. GLU: x is [T, 2K] gate | up
// and the input is silu(gate) · up (the down projection's shrink without a SwiGLU pass).
struct Params {
    k: u32,     // K (multiple of 4)
    t: u32,     // columns T
    rows: u32,  // ΣR = row stride of h
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;  // [T, ΣR] f32
#texels 3 a                                                    // [ΣR, K] f16 (LoraA)
#include "x32.wgsl"

override NCOL: u32 = 1u;  // columns per invocation (1..=4)
override WG: u32 = 64u;

// The 8 f16 of texel e as two vec4s.
fn a_half8(e: u32) -> V32h {
    let t = a_texel(e);
    return V32h(vec4<f32>(unpack2x16float(t.x), unpack2x16float(t.y)),
                vec4<f32>(unpack2x16float(t.z), unpack2x16float(t.w)));
}

struct V32h {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// A row's 32 values at texel e (4 texels).
fn a_chunk(e: u32) -> V32 {
    let t0 = a_half8(e);
    let t1 = a_half8(e + 1u);
    let t2 = a_half8(e + 2u);
    let t3 = a_half8(e + 3u);
    return V32(t0.lo, t0.hi, t1.lo, t1.hi, t2.lo, t2.hi, t3.lo, t3.hi);
}

@compute @workgroup_size(WG)
fn lora_shrink(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32
#if SUBGROUPS
    , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
#if !SUBGROUPS
    let lane = 0u;
#endif
    // Lanes past ΣR compute the last row (every lane must reach the broadcasts) and store nothing.
    let row = wg.x * WG + li;
    let e0 = min(row, p.rows - 1u) * ((p.k + 7u) / 8u);
    let col0 = wg.y * NCOL;
    let kv = p.k / 4u;
    let xrow = select(kv, 2u * kv, GLU);  // vec4s per x row
    let xb = vec4<u32>(col0, min(col0 + 1u, p.t - 1u), min(col0 + 2u, p.t - 1u), min(col0 + 3u, p.t - 1u)) * xrow;
    var acc = vec4<f32>(0.0);
    let nchunks = p.k / 32u;
    for (var j = 0u; j < nchunks; j = j + 1u) {
        let w = a_chunk(e0 + 4u * j);
        acc.x = v32_dot(w, x_chunk(xb.x + 8u * j, lane), acc.x);
        if (NCOL > 1u) {
            acc.y = v32_dot(w, x_chunk(xb.y + 8u * j, lane), acc.y);
        }
        if (NCOL > 2u) {
            acc.z = v32_dot(w, x_chunk(xb.z + 8u * j, lane), acc.z);
        }
        if (NCOL > 3u) {
            acc.w = v32_dot(w, x_chunk(xb.w + 8u * j, lane), acc.w);
        }
    }
    // Tail: vec4 v of the row lives in texel v / 2, half v % 2.
    for (var v = 8u * nchunks; v < kv; v = v + 1u) {
        let t = a_half8(e0 + v / 2u);
        let w = select(t.lo, t.hi, (v & 1u) == 1u);
        acc.x = acc.x + dot(w, x_vec(xb.x + v));
        if (NCOL > 1u) {
            acc.y = acc.y + dot(w, x_vec(xb.y + v));
        }
        if (NCOL > 2u) {
            acc.z = acc.z + dot(w, x_vec(xb.z + v));
        }
        if (NCOL > 3u) {
            acc.w = acc.w + dot(w, x_vec(xb.w + v));
        }
    }
    if (row >= p.rows) {
        return;
    }
    h[col0 * p.rows + row] = acc.x;
    if (NCOL > 1u && col0 + 1u < p.t) {
        h[(col0 + 1u) * p.rows + row] = acc.y;
    }
    if (NCOL > 2u && col0 + 2u < p.t) {
        h[(col0 + 2u) * p.rows + row] = acc.z;
    }
    if (NCOL > 3u && col0 + 3u < p.t) {
        h[(col0 + 3u) * p.rows + row] = acc.w;
    }
}
