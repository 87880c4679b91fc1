// gemm_w4_f32: y[c, row] = Σ_k W4[row, k] · x[c, k] (+ epilogue) for many columns (prefill).
// Register tiling: each invocation owns 4 rows × 4 columns (16 accumulators); a workgroup of
// 8 × 8 invocations covers 32 rows × 32 columns. Dispatch: [ceil(M_block/32), ceil(T/32), 1].
#include "matmul_common.wgsl"
#include "w4.wgsl"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // [T, K] f32, row-major
@group(0) @binding(6) var<storage, read> q: array<u32>;        // [M_block, K/8] u32 nibbles
#storage_f16 7 scales read
// scales: [M_block, K/G] f16
#storage_f16 8 mins read
// mins: [M_block, K/G] f16 (asymmetric; bound to scales when symmetric)

@compute @workgroup_size(8, 8)
fn gemm_w4_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r0 = gid.x * 4u;
    let c0 = gid.y * 4u;
    if (r0 >= p.m || c0 >= p.t) {
        return;
    }
    let words = p.k / 8u;
    let wpg = p.group / 8u;
    let ngroups = p.k / p.group;
    let asym = (p.flags & 1u) != 0u;
    // Out-of-range rows/columns re-read the last valid one and are not stored.
    var rb: array<u32, 4>;
    var xb: array<u32, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        rb[i] = min(r0 + i, p.m - 1u);
        xb[i] = min(c0 + i, p.t - 1u) * (p.k / 4u);
    }
    var acc: array<vec4<f32>, 4>;  // acc[row][column]
    for (var g = 0u; g < ngroups; g = g + 1u) {
        var dq: array<vec4<f32>, 4>;
        var xs = vec4<f32>(0.0);
        for (var w = 0u; w < wpg; w = w + 1u) {
            let j = g * wpg + w;
            let a0 = x[xb[0] + 2u * j];
            let b0 = x[xb[0] + 2u * j + 1u];
            let a1 = x[xb[1] + 2u * j];
            let b1 = x[xb[1] + 2u * j + 1u];
            let a2 = x[xb[2] + 2u * j];
            let b2 = x[xb[2] + 2u * j + 1u];
            let a3 = x[xb[3] + 2u * j];
            let b3 = x[xb[3] + 2u * j + 1u];
            let one = vec4<f32>(1.0);
            xs = xs + vec4<f32>(dot(a0 + b0, one), dot(a1 + b1, one), dot(a2 + b2, one), dot(a3 + b3, one));
            for (var i = 0u; i < 4u; i = i + 1u) {
                let word = q[rb[i] * words + j];
                let lo = w4_lo(word);
                let hi = w4_hi(word);
                dq[i] = dq[i] + vec4<f32>(
                    dot(lo, a0) + dot(hi, b0),
                    dot(lo, a1) + dot(hi, b1),
                    dot(lo, a2) + dot(hi, b2),
                    dot(lo, a3) + dot(hi, b3));
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
