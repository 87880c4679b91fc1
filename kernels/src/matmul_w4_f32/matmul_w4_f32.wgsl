// matmul_w4_f32: y[c, row] = Σ_k W4[row, k] · x[c, k] (+ epilogue), for decode and prefill.
// Register tile: each invocation owns 8 rows (two row quads held in vec4s) × NCOL ≤ 4 columns;
// workgroup_id.y selects the column quad, so all lanes of a workgroup walk the same k together.
// Weights come from textures (w4_tex.wgsl), one texel = 32 weights of one row. The 32 x values
// of a chunk are read once per 8 lanes with subgroups (one vec4 per lane, then broadcast) or by
// every lane without; either way each x chunk serves 8 rows.
#include "matmul_common.wgsl"
#include "w4.wgsl"
#include "w4_tex.wgsl"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // [T, K] f32, row-major

override NCOL: u32 = 1u;  // columns per invocation (1..=4)
override WG: u32 = 64u;   // lanes per workgroup (8 rows each)

// 32 consecutive x values.
struct X8 {
    v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
    v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>,
}

// The chunk starting at vec4 index b. Every lane of the subgroup must call it with the same b.
fn x_chunk(b: u32, lane: u32) -> X8 {
#if SUBGROUPS
    let v = x[b + (lane & 7u)];
    return X8(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
              subgroupBroadcast(v, 3u), subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u),
              subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
#else
    return X8(x[b], x[b + 1u], x[b + 2u], x[b + 3u], x[b + 4u], x[b + 5u], x[b + 6u], x[b + 7u]);
#endif
}

fn x_sum(c: X8) -> f32 {
    return dot(((c.v0 + c.v1) + (c.v2 + c.v3)) + ((c.v4 + c.v5) + (c.v6 + c.v7)), vec4<f32>(1.0));
}

// Σ nibble · x over one texel (32 weights) of one row.
fn row_dot(w: vec4<u32>, c: X8) -> f32 {
    return ((dot(w4_lo(w.x), c.v0) + dot(w4_hi(w.x), c.v1)) + (dot(w4_lo(w.y), c.v2) + dot(w4_hi(w.y), c.v3)))
         + ((dot(w4_lo(w.z), c.v4) + dot(w4_hi(w.z), c.v5)) + (dot(w4_lo(w.w), c.v6) + dot(w4_hi(w.w), c.v7)));
}

fn quad_dot(a: vec4<u32>, b: vec4<u32>, d: vec4<u32>, e: vec4<u32>, c: X8) -> vec4<f32> {
    return vec4<f32>(row_dot(a, c), row_dot(b, c), row_dot(d, c), row_dot(e, c));
}

fn quad_group(a: vec4<u32>, b: vec4<u32>, d: vec4<u32>, e: vec4<u32>, gi: u32) -> vec4<f32> {
    return vec4<f32>(w4_group(a, gi), w4_group(b, gi), w4_group(d, gi), w4_group(e, gi));
}

// Stores rows r0 .. r0+8 (those inside the block) of column c.
fn store8(c: u32, r0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (r0 + i < p.m) {
            mm_store(c, r0 + i, lo[i]);
        }
        if (r0 + 4u + i < p.m) {
            mm_store(c, r0 + 4u + i, hi[i]);
        }
    }
}

@compute @workgroup_size(WG)
fn matmul_w4_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32
#if SUBGROUPS
    , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
#if !SUBGROUPS
    let lane = 0u;
#endif
    // Rows past the block re-read the last row (every lane must reach the broadcasts) and are
    // not stored.
    let r0 = (wg.x * WG + li) * 8u;
    let last = p.m - 1u;
    let chunks = p.k / 32u;
    let cpg = p.group / 32u;
    let ngroups = p.k / p.group;
    let spr = (ngroups + 7u) / 8u;
    let ra = vec4<u32>(min(r0, last), min(r0 + 1u, last), min(r0 + 2u, last), min(r0 + 3u, last));
    let rb = vec4<u32>(min(r0 + 4u, last), min(r0 + 5u, last), min(r0 + 6u, last), min(r0 + 7u, last));
    let qa = ra * chunks;
    let qb = rb * chunks;
    let sa = ra * spr;
    let sb = rb * spr;
    let col0 = wg.y * NCOL;
    let xb = vec4<u32>(col0, min(col0 + 1u, p.t - 1u), min(col0 + 2u, p.t - 1u), min(col0 + 3u, p.t - 1u)) * (p.k / 4u);
    let asym = (p.flags & 1u) != 0u;
    // acc_lo_c / acc_hi_c: rows 0..3 / 4..7 of column c.
    var l0 = vec4<f32>(0.0);
    var h0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0);
    var h1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0);
    var h2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0);
    var h3 = vec4<f32>(0.0);
    for (var b = 0u; b < spr; b = b + 1u) {
        let s0 = w4_s(sa.x + b);
        let s1 = w4_s(sa.y + b);
        let s2 = w4_s(sa.z + b);
        let s3 = w4_s(sa.w + b);
        let s4 = w4_s(sb.x + b);
        let s5 = w4_s(sb.y + b);
        let s6 = w4_s(sb.z + b);
        let s7 = w4_s(sb.w + b);
        var m0 = s0;
        var m1 = s1;
        var m2 = s2;
        var m3 = s3;
        var m4 = s4;
        var m5 = s5;
        var m6 = s6;
        var m7 = s7;
        if (asym) {
            m0 = w4_m(sa.x + b);
            m1 = w4_m(sa.y + b);
            m2 = w4_m(sa.z + b);
            m3 = w4_m(sa.w + b);
            m4 = w4_m(sb.x + b);
            m5 = w4_m(sb.y + b);
            m6 = w4_m(sb.z + b);
            m7 = w4_m(sb.w + b);
        }
        let gn = min(8u, ngroups - 8u * b);
        for (var gi = 0u; gi < gn; gi = gi + 1u) {
            let g = 8u * b + gi;
            var dl0 = vec4<f32>(0.0);
            var dh0 = vec4<f32>(0.0);
            var dl1 = vec4<f32>(0.0);
            var dh1 = vec4<f32>(0.0);
            var dl2 = vec4<f32>(0.0);
            var dh2 = vec4<f32>(0.0);
            var dl3 = vec4<f32>(0.0);
            var dh3 = vec4<f32>(0.0);
            var xs = vec4<f32>(0.0);
            for (var w = 0u; w < cpg; w = w + 1u) {
                let j = g * cpg + w;
                let w0 = w4_q(qa.x + j);
                let w1 = w4_q(qa.y + j);
                let w2 = w4_q(qa.z + j);
                let w3 = w4_q(qa.w + j);
                let w4 = w4_q(qb.x + j);
                let w5 = w4_q(qb.y + j);
                let w6 = w4_q(qb.z + j);
                let w7 = w4_q(qb.w + j);
                let c0 = x_chunk(xb.x + 8u * j, lane);
                xs.x = xs.x + x_sum(c0);
                dl0 = dl0 + quad_dot(w0, w1, w2, w3, c0);
                dh0 = dh0 + quad_dot(w4, w5, w6, w7, c0);
                if (NCOL > 1u) {
                    let c1 = x_chunk(xb.y + 8u * j, lane);
                    xs.y = xs.y + x_sum(c1);
                    dl1 = dl1 + quad_dot(w0, w1, w2, w3, c1);
                    dh1 = dh1 + quad_dot(w4, w5, w6, w7, c1);
                }
                if (NCOL > 2u) {
                    let c2 = x_chunk(xb.z + 8u * j, lane);
                    xs.z = xs.z + x_sum(c2);
                    dl2 = dl2 + quad_dot(w0, w1, w2, w3, c2);
                    dh2 = dh2 + quad_dot(w4, w5, w6, w7, c2);
                }
                if (NCOL > 3u) {
                    let c3 = x_chunk(xb.w + 8u * j, lane);
                    xs.w = xs.w + x_sum(c3);
                    dl3 = dl3 + quad_dot(w0, w1, w2, w3, c3);
                    dh3 = dh3 + quad_dot(w4, w5, w6, w7, c3);
                }
            }
            let sl = quad_group(s0, s1, s2, s3, gi);
            let sh = quad_group(s4, s5, s6, s7, gi);
            var ol = -8.0 * sl;
            var oh = -8.0 * sh;
            if (asym) {
                ol = quad_group(m0, m1, m2, m3, gi);
                oh = quad_group(m4, m5, m6, m7, gi);
            }
            l0 = l0 + (sl * dl0 + ol * xs.x);
            h0 = h0 + (sh * dh0 + oh * xs.x);
            if (NCOL > 1u) {
                l1 = l1 + (sl * dl1 + ol * xs.y);
                h1 = h1 + (sh * dh1 + oh * xs.y);
            }
            if (NCOL > 2u) {
                l2 = l2 + (sl * dl2 + ol * xs.z);
                h2 = h2 + (sh * dh2 + oh * xs.z);
            }
            if (NCOL > 3u) {
                l3 = l3 + (sl * dl3 + ol * xs.w);
                h3 = h3 + (sh * dh3 + oh * xs.w);
            }
        }
    }
    store8(col0, r0, l0, h0);
    if (NCOL > 1u && col0 + 1u < p.t) {
        store8(col0 + 1u, r0, l1, h1);
    }
    if (NCOL > 2u && col0 + 2u < p.t) {
        store8(col0 + 2u, r0, l2, h2);
    }
    if (NCOL > 3u && col0 + 3u < p.t) {
        store8(col0 + 3u, r0, l3, h3);
    }
}
