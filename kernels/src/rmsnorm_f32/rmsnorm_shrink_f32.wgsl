// rmsnorm_shrink_f32: the RMSNorm of a token row fused with the LoRA shrink of the result
// (contract: mod.rs). y[t] = x[t] / sqrt(mean(x[t]²) + eps) · w and h[t, r] = Σ_k y[t, k] · A[r, k]
// for a LoRA group's A = [ΣR, K] f16 (lora_shrink::LoraA: row r is ceil(K/8) texels of 8 f16, zero
// padded). One A row per lane, NCOL ≤ 4 token rows per invocation (workgroup_id.y = token quad).
// Every lane reads the token rows and w at the same addresses (on the CPU-driver profile through
// uniform bindings or a texture), and the norm is recomputed per lane rather than shared through
// workgroup memory: on lavapipe a storage or workgroup load is a per-lane loop, a uniform-index
// uniform load a single one. So a decode row's shrink spreads over ΣR / WG workgroups with no
// barrier. Lane 0 of workgroup 0 stores y.
struct Params {
    k: u32,       // K (multiple of 4)
    t: u32,       // token rows T
    eps: f32,
    rows: u32,    // ΣR = row stride of h
}
@group(0) @binding(0) var<uniform> p: Params;
// The norm weight [K]: a 64 KiB uniform window (NORM_UNIFORM) or storage.
#if NORM_UNIFORM
@group(0) @binding(2) var<uniform> w: array<vec4<f32>, 4096>;
#else
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
#endif
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;  // [T, K]
@group(0) @binding(4) var<storage, read_write> h: array<f32>;        // [T, ΣR]
#texels 5 a                                                          // [ΣR, K] f16 (LoraA)
#include "x32.wgsl"

override NCOL: u32 = 1u;  // token rows per invocation (1, 2 or 4)
override WG: u32 = 64u;

// 1 / sqrt(mean(x²) + eps) of the token row starting at vec4 xb.
fn inv_rms(xb: u32) -> f32 {
    let kv = p.k / 4u;
    var ss = vec4<f32>(0.0);
    for (var q = 0u; q < kv; q = q + 1u) {
        let v = x_at(xb + q);
        ss = ss + v * v;
    }
    return inverseSqrt(((ss.x + ss.y) + (ss.z + ss.w)) / f32(p.k) + p.eps);
}

// The A texel's 8 values (lo, hi) dotted with a token row's normalised vec4s q0 and q1 (x from
// vec4 xb on, w0 / w1 the norm weight there; w1 = 0 for a texel's padding half), which lane 0 of
// workgroup 0 also stores when `store` (q1 only if `has_hi`).
fn texel_dot(lo: vec4<f32>, hi: vec4<f32>, xb: u32, q0: u32, q1: u32, w0: vec4<f32>, w1: vec4<f32>,
             inv: f32, store: bool, has_hi: bool) -> f32 {
    let y0 = x_at(xb + q0) * inv * w0;
    let y1 = x_at(xb + q1) * inv * w1;
    if (store) {
        y[xb + q0] = y0;
        if (has_hi) {
            y[xb + q1] = y1;
        }
    }
    return dot(lo, y0) + dot(hi, y1);
}

@compute @workgroup_size(WG)
fn rmsnorm_shrink_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // Lanes past ΣR compute the last row and store no h.
    let row = wg.x * WG + li;
    let tpr = (p.k + 7u) / 8u;
    let e0 = min(row, p.rows - 1u) * tpr;
    let col0 = wg.y * NCOL;
    let tl = p.t - 1u;
    let kv = p.k / 4u;
    let xb = vec4<u32>(col0, min(col0 + 1u, tl), min(col0 + 2u, tl), min(col0 + 3u, tl)) * kv;
    var inv = vec4<f32>(inv_rms(xb.x), 0.0, 0.0, 0.0);
    if (NCOL > 1u) {
        inv.y = inv_rms(xb.y);
    }
    if (NCOL > 2u) {
        inv.z = inv_rms(xb.z);
        inv.w = inv_rms(xb.w);
    }
    // Which token rows this invocation stores y for.
    let first = wg.x == 0u && li == 0u;
    let n = min(NCOL, p.t - col0);
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < tpr; j = j + 1u) {
        let e = e0 + j;
        let t = a_texel(e);
        let lo = vec4<f32>(unpack2x16float(t.x), unpack2x16float(t.y));
        let hi = vec4<f32>(unpack2x16float(t.z), unpack2x16float(t.w));
        // Texel j holds vec4s 2j and 2j + 1 of the row; past K (K % 8 = 4) the second is padding.
        let q0 = 2u * j;
        let has_hi = q0 + 1u < kv;
        let q1 = select(q0, q0 + 1u, has_hi);
        let w0 = w[q0];
        let w1 = select(vec4<f32>(0.0), w[q1], has_hi);
        acc.x = acc.x + texel_dot(lo, hi, xb.x, q0, q1, w0, w1, inv.x, first, has_hi);
        if (NCOL > 1u) {
            acc.y = acc.y + texel_dot(lo, hi, xb.y, q0, q1, w0, w1, inv.y, first && n > 1u, has_hi);
        }
        if (NCOL > 2u) {
            acc.z = acc.z + texel_dot(lo, hi, xb.z, q0, q1, w0, w1, inv.z, first && n > 2u, has_hi);
            acc.w = acc.w + texel_dot(lo, hi, xb.w, q0, q1, w0, w1, inv.w, first && n > 3u, has_hi);
        }
    }
    if (row >= p.rows) {
        return;
    }
    h[col0 * p.rows + row] = acc.x;
    if (NCOL > 1u && n > 1u) {
        h[(col0 + 1u) * p.rows + row] = acc.y;
    }
    if (NCOL > 2u && n > 2u) {
        h[(col0 + 2u) * p.rows + row] = acc.z;
    }
    if (NCOL > 2u && n > 3u) {
        h[(col0 + 3u) * p.rows + row] = acc.w;
    }
}
