// matvec_w8_f32: y[c, row] = Σ_k W8[row, k] · x[c, k] (+ epilogue), up to NCOL columns per
// invocation; one invocation per output row, so one weight read serves all columns.
#include "matmul_common.wgsl"
#include "w8.wgsl"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // [T, K] f32, row-major
@group(0) @binding(6) var<storage, read> q: array<u32>;        // [M_block, K/4] u32 of i8
#storage_f16 7 scales read
// scales: [M_block, K/G] f16

override NCOL: u32 = 1u;  // columns per invocation (1..=16); workgroup_id.y selects the column chunk
override WG: u32 = 64u;   // rows per workgroup
const MAXC: u32 = 16u;

@compute @workgroup_size(WG)
fn matvec_w8_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x * WG + li;
    if (r >= p.m) {
        return;
    }
    let col0 = wg.y * NCOL;
    let nc = min(NCOL, p.t - col0);
    let words = p.k / 4u;
    let wpg = p.group / 4u;
    let ngroups = p.k / p.group;
    var xb: array<u32, MAXC>;
    for (var c = 0u; c < NCOL; c = c + 1u) {
        xb[c] = (col0 + min(c, nc - 1u)) * words;
    }
    var acc: array<f32, MAXC>;
    for (var g = 0u; g < ngroups; g = g + 1u) {
        var dq: array<f32, MAXC>;
        for (var w = 0u; w < wpg; w = w + 1u) {
            let j = g * wpg + w;
            let v = w8_quad(q[r * words + j]);
            for (var c = 0u; c < NCOL; c = c + 1u) {
                dq[c] = dq[c] + dot(v, x[xb[c] + j]);
            }
        }
        let s = scales_at(r * ngroups + g);
        for (var c = 0u; c < NCOL; c = c + 1u) {
            acc[c] = acc[c] + s * dq[c];
        }
    }
    for (var c = 0u; c < nc; c = c + 1u) {
        mm_store(col0 + c, r, acc[c]);
    }
}
