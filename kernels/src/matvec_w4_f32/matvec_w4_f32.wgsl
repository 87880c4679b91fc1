// matvec_w4_f32: y[c, row] = Σ_k W4[row, k] · x[c, k] (+ epilogue), up to NCOL columns per
// invocation; one invocation per output row, so one weight read serves all columns.
#include "matmul_common.wgsl"
#include "w4.wgsl"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // [T, K] f32, row-major
@group(0) @binding(6) var<storage, read> q: array<vec4<u32>>;  // [M_block, K/8] u32 nibbles, read 4 words (32 weights) at a time
#storage_f16 7 scales read
// scales: [M_block, K/G] f16
#storage_f16 8 mins read
// mins: [M_block, K/G] f16 (asymmetric; bound to scales when symmetric)

override NCOL: u32 = 1u;  // columns per invocation (1..=4); workgroup_id.y selects the column quad
override WG: u32 = 64u;   // rows per workgroup

// Lanes are rows (local_invocation_index); the column quad comes from workgroup_id.y so x
// addresses are uniform across a workgroup. Columns live in vec4 components (no private
// arrays: lavapipe spills those); components ≥ NCOL are dead code after specialisation.
@compute @workgroup_size(WG)
fn matvec_w4_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x * WG + li;
    if (r >= p.m) {
        return;
    }
    let col0 = wg.y * NCOL;
    let nc = min(NCOL, p.t - col0);
    let kv = p.k / 4u;
    // x row start (vec4 units) per column; columns past T re-read the last one.
    let xb = vec4<u32>(col0, col0 + min(1u, nc - 1u), col0 + min(2u, nc - 1u), col0 + min(3u, nc - 1u)) * kv;
    let chunks = p.k / 32u;      // vec4<u32> chunks (32 weights) per row
    let cpg = p.group / 32u;     // chunks per group
    let ngroups = p.k / p.group;
    let asym = (p.flags & 1u) != 0u;
    let one = vec4<f32>(1.0);
    var acc = vec4<f32>(0.0);
    for (var g = 0u; g < ngroups; g = g + 1u) {
        var dq = vec4<f32>(0.0);
        var xs = vec4<f32>(0.0);
        for (var w = 0u; w < cpg; w = w + 1u) {
            let j = g * cpg + w;
            let word = q[r * chunks + j];
            for (var i = 0u; i < 4u; i = i + 1u) {
                let lo = w4_lo(word[i]);
                let hi = w4_hi(word[i]);
                let e = 8u * j + 2u * i;
                let a0 = x[xb.x + e];
                let b0 = x[xb.x + e + 1u];
                dq.x = dq.x + (dot(lo, a0) + dot(hi, b0));
                xs.x = xs.x + dot(a0 + b0, one);
                if (NCOL > 1u) {
                    let a1 = x[xb.y + e];
                    let b1 = x[xb.y + e + 1u];
                    dq.y = dq.y + (dot(lo, a1) + dot(hi, b1));
                    xs.y = xs.y + dot(a1 + b1, one);
                }
                if (NCOL > 2u) {
                    let a2 = x[xb.z + e];
                    let b2 = x[xb.z + e + 1u];
                    dq.z = dq.z + (dot(lo, a2) + dot(hi, b2));
                    xs.z = xs.z + dot(a2 + b2, one);
                }
                if (NCOL > 3u) {
                    let a3 = x[xb.w + e];
                    let b3 = x[xb.w + e + 1u];
                    dq.w = dq.w + (dot(lo, a3) + dot(hi, b3));
                    xs.w = xs.w + dot(a3 + b3, one);
                }
            }
        }
        let s = scales_at(r * ngroups + g);
        var o = -8.0 * s;
        if (asym) {
            o = mins_at(r * ngroups + g);
        }
        acc = acc + (s * dq + o * xs);
    }
    mm_store(col0, r, acc.x);
    if (nc > 1u) {
        mm_store(col0 + 1u, r, acc.y);
    }
    if (nc > 2u) {
        mm_store(col0 + 2u, r, acc.z);
    }
    if (nc > 3u) {
        mm_store(col0 + 3u, r, acc.w);
    }
}
