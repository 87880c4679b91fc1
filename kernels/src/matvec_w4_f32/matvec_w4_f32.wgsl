// matvec_w4_f32: y[c, row] = Σ_k W4[row, k] · x[c, k] (+ epilogue), up to NCOL columns per
// invocation; one invocation per output row, so one weight read serves all columns.
#include "matmul_common.wgsl"
#include "w4.wgsl"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // [T, K] f32, row-major
@group(0) @binding(6) var<storage, read> q: array<u32>;        // [M_block, K/8] u32 nibbles
#storage_f16 7 scales read
// scales: [M_block, K/G] f16
#storage_f16 8 mins read
// mins: [M_block, K/G] f16 (asymmetric; bound to scales when symmetric)

override NCOL: u32 = 1u;  // columns per invocation (1..=16); gid.y selects the column chunk
override WG: u32 = 64u;   // rows per workgroup
const MAXC: u32 = 16u;

@compute @workgroup_size(WG)
fn matvec_w4_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.m) {
        return;
    }
    let col0 = gid.y * NCOL;
    let nc = min(NCOL, p.t - col0);
    let words = p.k / 8u;
    let wpg = p.group / 8u;
    let ngroups = p.k / p.group;
    let asym = (p.flags & 1u) != 0u;
    // x row start (in vec4 units) of each column; columns past T re-read the last one.
    var xb: array<u32, MAXC>;
    for (var c = 0u; c < NCOL; c = c + 1u) {
        xb[c] = (col0 + min(c, nc - 1u)) * (p.k / 4u);
    }
    var acc: array<f32, MAXC>;
    for (var g = 0u; g < ngroups; g = g + 1u) {
        var dq: array<f32, MAXC>;
        var xs: array<f32, MAXC>;
        for (var w = 0u; w < wpg; w = w + 1u) {
            let j = g * wpg + w;
            let word = q[r * words + j];
            let lo = w4_lo(word);
            let hi = w4_hi(word);
            for (var c = 0u; c < NCOL; c = c + 1u) {
                let a = x[xb[c] + 2u * j];
                let b = x[xb[c] + 2u * j + 1u];
                dq[c] = dq[c] + (dot(lo, a) + dot(hi, b));
                xs[c] = xs[c] + dot(a + b, vec4<f32>(1.0));
            }
        }
        let s = scales_at(r * ngroups + g);
        var o = -8.0 * s;
        if (asym) {
            o = mins_at(r * ngroups + g);
        }
        for (var c = 0u; c < NCOL; c = c + 1u) {
            acc[c] = acc[c] + (s * dq[c] + o * xs[c]);
        }
    }
    for (var c = 0u; c < nc; c = c + 1u) {
        mm_store(col0 + c, r, acc[c]);
    }
}
