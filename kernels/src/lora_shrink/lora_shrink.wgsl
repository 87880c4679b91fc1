// lora_shrink: h[c, off_i + r] = Σ_k x[c, k] · A_i[r, k] for up to 4 matrices A_i sharing x.
// One invocation per output row of the concatenated ranks, NCOL columns per invocation.
struct Params {
    k: u32,      // K (even)
    t: u32,      // columns T
    r0: u32,     // rank of A_0
    r1: u32,     // rank of A_1 (0 if absent)
    r2: u32,     // rank of A_2 (0 if absent)
    r3: u32,     // rank of A_3 (0 if absent)
    rtot: u32,   // ΣR = row stride of h
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec2<f32>>;  // [T, K] f32
@group(0) @binding(2) var<storage, read_write> h: array<f32>;  // [T, ΣR] f32
#storage_f16 3 a0 read
#storage_f16 4 a1 read
#storage_f16 5 a2 read
#storage_f16 6 a3 read
// a_i: [R_i, K] f16 row-major (dummy when absent)

override NCOL: u32 = 1u;  // columns per invocation (1..=16)
override WG: u32 = 64u;
const MAXC: u32 = 16u;

fn a_pair(mi: u32, j: u32) -> vec2<f32> {
    switch mi {
        case 0u: { return a0_pair(j); }
        case 1u: { return a1_pair(j); }
        case 2u: { return a2_pair(j); }
        default: { return a3_pair(j); }
    }
}

@compute @workgroup_size(WG)
fn lora_shrink(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.x * WG + li;
    if (row >= p.rtot) {
        return;
    }
    var mi = 0u;
    var lr = row;
    if (lr >= p.r0) {
        lr = lr - p.r0;
        mi = 1u;
        if (lr >= p.r1) {
            lr = lr - p.r1;
            mi = 2u;
            if (lr >= p.r2) {
                lr = lr - p.r2;
                mi = 3u;
            }
        }
    }
    let col0 = wg.y * NCOL;
    let nc = min(NCOL, p.t - col0);
    let half_k = p.k / 2u;
    var xb: array<u32, MAXC>;
    for (var c = 0u; c < NCOL; c = c + 1u) {
        xb[c] = (col0 + min(c, nc - 1u)) * half_k;
    }
    var acc: array<f32, MAXC>;
    let ab = lr * half_k;
    for (var j = 0u; j < half_k; j = j + 1u) {
        let av = a_pair(mi, ab + j);
        for (var c = 0u; c < NCOL; c = c + 1u) {
            acc[c] = acc[c] + dot(av, x[xb[c] + j]);
        }
    }
    for (var c = 0u; c < nc; c = c + 1u) {
        h[(col0 + c) * p.rtot + row] = acc[c];
    }
}
