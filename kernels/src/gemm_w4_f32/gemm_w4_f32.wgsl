// gemm_w4_f32: y[c, row] = Σ_k W4[row, k] · x[c, k] (+ epilogue) for many columns (prefill).
// Register tiling: each invocation owns 4 rows × 4 columns (16 accumulators). Lanes of a
// workgroup are 64 row tiles (256 rows); the 4-column tile comes from workgroup_id.y, so x
// addresses are uniform across the workgroup. Weights are read 4 words (32 weights) at a time.
// Dispatch: [ceil(M_block / 256), ceil(T / 4), 1].
#include "matmul_common.wgsl"
#include "w4.wgsl"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // [T, K] f32, row-major
@group(0) @binding(6) var<storage, read> q: array<vec4<u32>>;  // [M_block, K/8] u32 nibbles
#storage_f16 7 scales read
// scales: [M_block, K/G] f16
#storage_f16 8 mins read
// mins: [M_block, K/G] f16 (asymmetric; bound to scales when symmetric)

// Σ over one 32-weight chunk of w·x for one row and 4 columns (x vec4 bases xv).
fn chunk4(w: vec4<u32>, xv: vec4<u32>) -> vec4<f32> {
    var d = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let lo = w4_lo(w[i]);
        let hi = w4_hi(w[i]);
        d = d + vec4<f32>(
            dot(lo, x[xv.x + 2u * i]) + dot(hi, x[xv.x + 2u * i + 1u]),
            dot(lo, x[xv.y + 2u * i]) + dot(hi, x[xv.y + 2u * i + 1u]),
            dot(lo, x[xv.z + 2u * i]) + dot(hi, x[xv.z + 2u * i + 1u]),
            dot(lo, x[xv.w + 2u * i]) + dot(hi, x[xv.w + 2u * i + 1u]));
    }
    return d;
}

// Σ x over one 32-element chunk for 4 columns.
fn xsum4(xv: vec4<u32>) -> vec4<f32> {
    var s = mat4x4<f32>();
    for (var i = 0u; i < 8u; i = i + 1u) {
        s[0] = s[0] + x[xv.x + i];
        s[1] = s[1] + x[xv.y + i];
        s[2] = s[2] + x[xv.z + i];
        s[3] = s[3] + x[xv.w + i];
    }
    return vec4<f32>(1.0) * s;
}

@compute @workgroup_size(64)
fn gemm_w4_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r0 = (wg.x * 64u + li) * 4u;
    let c0 = wg.y * 4u;
    if (r0 >= p.m) {
        return;
    }
    let chunks = p.k / 32u;
    let cpg = p.group / 32u;
    let ngroups = p.k / p.group;
    let asym = (p.flags & 1u) != 0u;
    // Out-of-range rows/columns re-read the last valid one and are not stored.
    var rb: array<u32, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        rb[i] = min(r0 + i, p.m - 1u);
    }
    let xrow = vec4<u32>(min(c0, p.t - 1u), min(c0 + 1u, p.t - 1u), min(c0 + 2u, p.t - 1u), min(c0 + 3u, p.t - 1u)) * (p.k / 4u);
    var acc: array<vec4<f32>, 4>;  // acc[row][column]
    for (var g = 0u; g < ngroups; g = g + 1u) {
        var dq: array<vec4<f32>, 4>;
        var xs = vec4<f32>(0.0);
        for (var w = 0u; w < cpg; w = w + 1u) {
            let j = g * cpg + w;
            let xv = xrow + vec4<u32>(8u * j);
            xs = xs + xsum4(xv);
            for (var i = 0u; i < 4u; i = i + 1u) {
                dq[i] = dq[i] + chunk4(q[rb[i] * chunks + j], xv);
            }
        }
        for (var i = 0u; i < 4u; i = i + 1u) {
            let s = scales_at(rb[i] * ngroups + g);
            var o = -8.0 * s;
            if (asym) {
                o = mins_at(rb[i] * ngroups + g);
            }
            acc[i] = acc[i] + (s * dq[i] + o * xs);
        }
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (r0 + i >= p.m) {
            break;
        }
        for (var c = 0u; c < 4u; c = c + 1u) {
            if (c0 + c < p.t) {
                mm_store(c0 + c, r0 + i, acc[i][c]);
            }
        }
    }
}
