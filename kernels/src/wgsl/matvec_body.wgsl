// The body of the matvec kernels (`matvec_f16_f32`, `matvec_f32_f32`): y[c, row] =
// Σ_k W[row, k] · x[c, k] (+ epilogue), up to NCOL columns per invocation, one invocation per
// output row. The including kernel declares W at binding 5 with `w_at(i)` (element i) and
// `w_pair(j)` (elements 2j, 2j + 1).
@group(0) @binding(1) var<storage, read> x: array<f32>;  // [T, K] f32, row-major

override NCOL: u32 = 1u;  // columns per invocation (1..=16); workgroup_id.y selects the column chunk
override WG: u32 = 64u;   // rows per workgroup
const MAXC: u32 = 16u;

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x * WG + li;
    if (r >= p.m) {
        return;
    }
    let col0 = wg.y * NCOL;
    let nc = min(NCOL, p.t - col0);
    var xb: array<u32, MAXC>;
    for (var c = 0u; c < NCOL; c = c + 1u) {
        xb[c] = (col0 + min(c, nc - 1u)) * p.k;
    }
    var acc: array<f32, MAXC>;
    let wb = r * p.k;
    if ((p.k & 1u) == 0u) {
        // Even K: every row starts on a pair boundary.
        for (var j = 0u; j < p.k / 2u; j = j + 1u) {
            let wv = w_pair(wb / 2u + j);
            for (var c = 0u; c < NCOL; c = c + 1u) {
                let xv = vec2<f32>(x[xb[c] + 2u * j], x[xb[c] + 2u * j + 1u]);
                acc[c] = acc[c] + dot(wv, xv);
            }
        }
    } else {
        for (var kk = 0u; kk < p.k; kk = kk + 1u) {
            let wv = w_at(wb + kk);
            for (var c = 0u; c < NCOL; c = c + 1u) {
                acc[c] = acc[c] + wv * x[xb[c] + kk];
            }
        }
    }
    for (var c = 0u; c < nc; c = c + 1u) {
        mm_store(col0 + c, r, acc[c]);
    }
}
