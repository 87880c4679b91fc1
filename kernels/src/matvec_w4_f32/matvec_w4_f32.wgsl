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

override NCOL: u32 = 1u;  // columns per invocation (1..=16); workgroup_id.y selects the column chunk
override WG: u32 = 64u;   // rows per workgroup
const MAXC: u32 = 16u;

// One 4-word chunk (32 weights) of row data against column c's x (vec4 index xv).
fn chunk_dot(w: vec4<u32>, xv: u32) -> vec2<f32> {
    var d = 0.0;
    var sx = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let a = x[xv + 2u * i];
        let b = x[xv + 2u * i + 1u];
        d = d + (dot(w4_lo(w[i]), a) + dot(w4_hi(w[i]), b));
        sx = sx + (a + b);
    }
    return vec2<f32>(d, dot(sx, vec4<f32>(1.0)));
}

// Lanes are rows (local_invocation_index); columns come from workgroup_id.y so that x
// addresses are uniform across a workgroup.
@compute @workgroup_size(WG)
fn matvec_w4_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x * WG + li;
    if (r >= p.m) {
        return;
    }
    let col0 = wg.y * NCOL;
    let nc = min(NCOL, p.t - col0);
    let chunks = p.k / 32u;      // vec4 chunks per row
    let cpg = p.group / 32u;     // chunks per group
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
        for (var w = 0u; w < cpg; w = w + 1u) {
            let j = g * cpg + w;
            let word = q[r * chunks + j];
            for (var c = 0u; c < NCOL; c = c + 1u) {
                let d = chunk_dot(word, xb[c] + 8u * j);
                dq[c] = dq[c] + d.x;
                xs[c] = xs[c] + d.y;
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
