// sample_f32: temperature / top-k / top-p sampling with integer weights and a counter-based
// RNG, so the GPU picks exactly the token the CPU reference picks (contract: mod.rs).
// Workgroup per row; every selection is a 7-ps radix select over the 56-bit ordinal
// (ord_hi(x), index) with workgroup histograms of 64-bit sums (u32 pairs).
#include "index.wgsl"

struct Params {
    n: u32,       // N rows
    v: u32,       // V (≤ 2^18)
    top_k: u32,   // 0 = off
    p_fx: u32,    // round(top_p · 65536); 65536 = off
    c: f32,       // 4096 · log2(e) / temperature
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
}

const WG: u32 = 256u;
const BIG: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;     // [N, V]
@group(0) @binding(2) var<storage, read> tables: array<u32>;     // [128]: T1 (64) | T2 (64)
@group(0) @binding(3) var<storage, read> streams: array<u32>;    // [N] RNG stream per row
@group(0) @binding(4) var<storage, read_write> out: array<u32>;  // [N, 4]: token, flags, logprob, 0

var<workgroup> h_lo: array<atomic<u32>, WG>;
var<workgroup> h_hi: array<atomic<u32>, WG>;
var<workgroup> red_a: array<u32, WG>;
var<workgroup> red_b: array<u32, WG>;
var<workgroup> red_c: array<u32, WG>;
var<workgroup> sel: vec4<u32>; // digit, rem.lo, rem.hi

fn non_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// Ascending ord_hi = descending x (finite x only; non-finite rank last as BIG).
fn ord_hi(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b ^ 0x7fffffffu, b, (b >> 31u) == 1u);
}

fn weight(x: f32, m: f32) -> u32 {
    let z = (m - x) * p.c;
    if (!(z < 131072.0)) {
        return 0u;
    }
    let a = u32(z);
    let f = a & 4095u;
    return (tables[f >> 6u] * tables[64u + (f & 63u)]) >> (a >> 12u);
}

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn gt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y > b.y || (a.y == b.y && a.x > b.x);
}

// Full 32 × 32 → 64-bit product.
fn mul32(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return vec2<u32>((p00 & 0xffffu) | (mid << 16u), a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}

fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

fn in_bound(oh: u32, i: u32, b: vec2<u32>) -> bool {
    return oh < b.x || (oh == b.x && i <= b.y);
}

// Σ weight over finite elements with ordinal ≤ bound, as a u64.
fn sum_weights(base: u32, lid: u32, m: f32, bound: vec2<u32>) -> vec2<u32> {
    var acc = vec2<u32>(0u);
    for (var i = lid; i < p.v; i += WG) {
        let x = logits[base + i];
        if (!non_finite(x) && in_bound(ord_hi(x), i, bound)) {
            acc = add64(acc, vec2<u32>(weight(x, m), 0u));
        }
    }
    red_a[lid] = acc.x;
    red_b[lid] = acc.y;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            let t = add64(vec2<u32>(red_a[lid], red_b[lid]), vec2<u32>(red_a[lid + s], red_b[lid + s]));
            red_a[lid] = t.x;
            red_b[lid] = t.y;
        }
        workgroupBarrier();
    }
    let total = vec2<u32>(red_a[0], red_b[0]);
    workgroupBarrier();
    return total;
}

// The first element (in ordinal order, among finite elements ≤ bound) at which the running
// metric (1 per element, or its weight) exceeds `rem`. Returns its ordinal (ord_hi, index).
fn select_ordinal(base: u32, lid: u32, m: f32, bound: vec2<u32>, by_weight: bool, rem_in: vec2<u32>) -> vec2<u32> {
    var pre = vec2<u32>(0u);
    var rem = rem_in;
    for (var ps = 0u; ps < 7u; ps++) {
        atomicStore(&h_lo[lid], 0u);
        atomicStore(&h_hi[lid], 0u);
        workgroupBarrier();
        let on_hi = ps < 4u;
        let shift = select(16u - 8u * (ps - 4u), 24u - 8u * ps, on_hi);
        for (var i = lid; i < p.v; i += WG) {
            let x = logits[base + i];
            if (non_finite(x)) {
                continue;
            }
            let oh = ord_hi(x);
            if (!in_bound(oh, i, bound)) {
                continue;
            }
            var digit = 0u;
            if (on_hi) {
                if (ps > 0u && (oh >> (shift + 8u)) != (pre.x >> (shift + 8u))) {
                    continue;
                }
                digit = (oh >> shift) & 255u;
            } else {
                if (oh != pre.x || (ps > 4u && (i >> (shift + 8u)) != (pre.y >> (shift + 8u)))) {
                    continue;
                }
                digit = (i >> shift) & 255u;
            }
            let w = select(1u, weight(x, m), by_weight);
            if (w == 0u) {
                continue;
            }
            let old = atomicAdd(&h_lo[digit], w);
            if (old + w < old) {
                atomicAdd(&h_hi[digit], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var cum = vec2<u32>(0u);
            var d = 255u;
            for (var b = 0u; b < WG; b++) {
                let nxt = add64(cum, vec2<u32>(atomicLoad(&h_lo[b]), atomicLoad(&h_hi[b])));
                if (gt64(nxt, rem)) {
                    d = b;
                    break;
                }
                cum = nxt;
            }
            let r = sub64(rem, cum);
            sel = vec4<u32>(d, r.x, r.y, 0u);
        }
        workgroupBarrier();
        let s = sel;
        rem = s.yz;
        if (on_hi) {
            pre.x = pre.x | (s.x << shift);
        } else {
            pre.y = pre.y | (s.x << shift);
        }
        workgroupBarrier();
    }
    return pre;
}

@compute @workgroup_size(256)
fn sample_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = linear_wg(wg, nwg);
    if (row >= p.n) {
        return;
    }
    let base = row * p.v;

    // Pass 0: best ordinal (→ the max logit m), finite count, non-finite flag.
    var mo = BIG;
    var cnt = 0u;
    var flag = 0u;
    for (var i = lid; i < p.v; i += WG) {
        let x = logits[base + i];
        if (non_finite(x)) {
            flag = 1u;
        } else {
            mo = min(mo, ord_hi(x));
            cnt += 1u;
        }
    }
    red_a[lid] = mo;
    red_b[lid] = cnt;
    red_c[lid] = flag;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red_a[lid] = min(red_a[lid], red_a[lid + s]);
            red_b[lid] = red_b[lid] + red_b[lid + s];
            red_c[lid] = red_c[lid] | red_c[lid + s];
        }
        workgroupBarrier();
    }
    let best = workgroupUniformLoad(&red_a[0]);
    let n_finite = workgroupUniformLoad(&red_b[0]);
    let flags = red_c[0];
    workgroupBarrier(); // red_* are reused below
    if (n_finite == 0u) {
        if (lid == 0u) {
            out[4u * row] = 0u;
            out[4u * row + 1u] = flags;
            out[4u * row + 2u] = 0u;
            out[4u * row + 3u] = 0u;
        }
        return;
    }
    let m = bitcast<f32>(select(best ^ 0x7fffffffu, best, (best >> 31u) == 1u));

    var bound = vec2<u32>(0xfffffffeu, BIG);
    if (p.top_k > 0u && p.top_k < n_finite) {
        bound = select_ordinal(base, lid, m, bound, false, vec2<u32>(p.top_k - 1u, 0u));
    }
    if (p.p_fx < 65536u) {
        let w = sum_weights(base, lid, m, bound);
        // floor(W · p_fx / 65536), W < 2^48
        let t = add64(mul32(w.x, p.p_fx), vec2<u32>(0u, w.y * p.p_fx));
        let tgt = vec2<u32>((t.x >> 16u) | (t.y << 16u), t.y >> 16u);
        var rem = vec2<u32>(0u);
        if (tgt.x != 0u || tgt.y != 0u) {
            rem = sub64(tgt, vec2<u32>(1u, 0u));
        }
        bound = select_ordinal(base, lid, m, bound, true, rem);
    }
    let wf = sum_weights(base, lid, m, bound);
    let r = pcg(pcg(pcg(pcg(p.seed_lo) ^ p.seed_hi) ^ p.step) ^ streams[row]);
    // u = floor(W_f · r / 2^32) < W_f
    let u = add64(mul32(wf.y, r), vec2<u32>(mul32(wf.x, r).y, 0u));
    let chosen = select_ordinal(base, lid, m, bound, true, u);
    if (lid == 0u) {
        // ln(w_chosen / W_f): the chosen token's log-probability under the distribution drawn
        // from (temperature, top-k and top-p applied).
        let wc = weight(logits[base + chosen.y], m);
        let wf_f = f32(wf.y) * 4294967296.0 + f32(wf.x);
        out[4u * row] = chosen.y;
        out[4u * row + 1u] = flags;
        out[4u * row + 2u] = bitcast<u32>(log(f32(wc)) - log(wf_f));
        out[4u * row + 3u] = 0u;
    }
}
