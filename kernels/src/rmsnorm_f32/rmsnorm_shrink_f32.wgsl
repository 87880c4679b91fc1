// rmsnorm_shrink_f32: the RMSNorm of a token row fused with the LoRA shrink of the result
// (contract: mod.rs). y[t] = x[t] / sqrt(mean(x[t]²) + eps) · w and h[t, r] = Σ_k y[t, k] · A[r, k]
// for a LoRA group's A = [ΣR, K] f16 (lora_shrink::LoraA: row r is ceil(K/8) texels of 8 f16, zero
// padded). One A row per lane, NCOL ≤ 4 token rows per invocation (workgroup_id.y = token quad).
// Every lane reads the token rows and w at the same addresses, through uniform bindings or a
// texture (the norm is recomputed per lane rather than shared through workgroup memory: on
// lavapipe a storage or workgroup load is a per-lane loop, a uniform-index uniform load a single
// one), so a decode row's shrink spreads over ΣR / WG workgroups with no barrier. Lane 0 of
// workgroup 0 stores y.
struct Params {
    k: u32,       // K (multiple of 4)
    t: u32,       // token rows T
    eps: f32,
    rows: u32,    // ΣR = row stride of h
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<uniform> w: array<vec4<f32>, 4096>;       // [K] (a 64 KiB window)
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;  // [T, K]
@group(0) @binding(4) var<storage, read_write> h: array<f32>;        // [T, ΣR]
@group(0) @binding(5) var a: texture_2d<u32>;                        // [ΣR, K] f16 (LoraA)
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

// Normalised vec4 q of the token row at xb (0 past the row: the padding half of a texel).
fn y_at(xb: u32, q: u32, inv: f32) -> vec4<f32> {
    if (q >= p.k / 4u) {
        return vec4<f32>(0.0);
    }
    return x_at(xb + q) * inv * w[q];
}

// The A texel's 8 values (lo, hi) dotted with the normalised vec4s 2j and 2j + 1 of a token row,
// which lane 0 of workgroup 0 also stores (at vec4 yb of y) when `store`.
fn texel_dot(lo: vec4<f32>, hi: vec4<f32>, xb: u32, j: u32, inv: f32, yb: u32, store: bool) -> f32 {
    let y0 = y_at(xb, 2u * j, inv);
    let y1 = y_at(xb, 2u * j + 1u, inv);
    if (store) {
        y[yb + 2u * j] = y0;
        if (2u * j + 1u < p.k / 4u) {
            y[yb + 2u * j + 1u] = y1;
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
        let t = textureLoad(a, vec2<u32>(e & 4095u, e >> 12u), 0);
        let lo = vec4<f32>(unpack2x16float(t.x), unpack2x16float(t.y));
        let hi = vec4<f32>(unpack2x16float(t.z), unpack2x16float(t.w));
        acc.x = acc.x + texel_dot(lo, hi, xb.x, j, inv.x, xb.x, first);
        if (NCOL > 1u) {
            acc.y = acc.y + texel_dot(lo, hi, xb.y, j, inv.y, xb.y, first && n > 1u);
        }
        if (NCOL > 2u) {
            acc.z = acc.z + texel_dot(lo, hi, xb.z, j, inv.z, xb.z, first && n > 2u);
            acc.w = acc.w + texel_dot(lo, hi, xb.w, j, inv.w, xb.w, first && n > 3u);
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
