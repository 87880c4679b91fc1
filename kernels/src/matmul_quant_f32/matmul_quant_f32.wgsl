// matmul_quant_f32: y[c, row] = Σ_k W[row, k] · x[c, k] (+ epilogue) for W4 and W8 weights, for
// decode and prefill.
// Register tile: each invocation owns 8 rows × NCOL ≤ 4 columns (a vec4 of columns per row);
// workgroup_id.y selects the column tile, so all lanes of a workgroup walk the same k together.
// Weights come from textures (qtex.wgsl): a 32-weight chunk is one texel (W4) or two (W8). A
// chunk is consumed in 4 steps of 8 weights: per step, every column's 8 x values (with
// subgroups: broadcast from the one vec4 of the chunk each of 8 lanes loaded; without: loaded
// by every lane), then each row dequantises its 8 weights once and dots them with every
// column. Per step and row only 8 weights and 2 vec4s per column are live, which keeps the
// 8 × 8 tile's spills to the accumulators (lavapipe: ~25% faster than holding whole dequantised
// 32-weight chunks and x chunks). A column's sums run in the same order for every NCOL. (An
// 8-column tile measured 2–10% faster at T ≥ 8 but takes lavapipe's LLVM ~16 s to compile per
// variant, against ~5 s.)
#include "matmul_common.wgsl"
#include "w4.wgsl"
#include "w8.wgsl"
#include "x32.wgsl"

override NCOL: u32 = 1u;  // columns per invocation (1..=4)
override WG: u32 = 64u;   // lanes per workgroup (8 rows each)
override BITS: u32 = 4u;  // 4 (W4) or 8 (W8)

// The 8 x values of one 8-weight step of a chunk for every column (l: values 0..3, h: 4..7).
struct XS {
    l0: vec4<f32>, h0: vec4<f32>, l1: vec4<f32>, h1: vec4<f32>,
    l2: vec4<f32>, h2: vec4<f32>, l3: vec4<f32>, h3: vec4<f32>,
}

// d + this row's step: weights lo/hi (8 values) against every column's step values.
fn row_step(lo: vec4<f32>, hi: vec4<f32>, x: XS, d: vec4<f32>) -> vec4<f32> {
    var r = d;
    r.x += dot(lo, x.l0) + dot(hi, x.h0);
    if (NCOL > 1u) { r.y += dot(lo, x.l1) + dot(hi, x.h1); }
    if (NCOL > 2u) { r.z += dot(lo, x.l2) + dot(hi, x.h2); }
    if (NCOL > 3u) { r.w += dot(lo, x.l3) + dot(hi, x.h3); }
    return r;
}

// Step s (8 weights) of a row's chunk: W4 word s of texel t, W8 words 2s, 2s+1 of texels t | u.
fn row_dq(t: vec4<u32>, u: vec4<u32>, s: u32, x: XS, d: vec4<f32>) -> vec4<f32> {
    if (BITS == 8u) {
        let w = select(t, u, s >= 2u);
        let i = 2u * (s & 1u);
        return row_step(w8_quad(w[i]), w8_quad(w[i + 1u]), x, d);
    }
    return row_step(w4_lo(t[s]), w4_hi(t[s]), x, d);
}

// acc + s · dq + o · Σx for one row (W4: o = −8s symmetric, the min asymmetric; W8: o = 0).
fn group_acc(acc: vec4<f32>, dq: vec4<f32>, xs: vec4<f32>, st: vec4<u32>, mt: vec4<u32>, gi: u32, asym: bool) -> vec4<f32> {
    let s = qt_group(st, gi);
    if (BITS == 8u) {
        return acc + s * dq;
    }
    var o = -8.0 * s;
    if (asym) {
        o = qt_group(mt, gi);
    }
    return acc + (s * dq + o * xs);
}

// LoRA deltas of a tile's 8 rows (matrix rows ga, gb; rows past the block repeat the last) for
// column c. When the 8 rows share a rank segment (always, unless a segment boundary is not a
// multiple of 8) each h texel is loaded once for the 8 rows.
fn lora_tile(c: u32, ga: vec4<u32>, gb: vec4<u32>) -> H8 {
    let hb = lora_hbase(c, ga.x);
    if (hb != lora_hbase(c, gb.w)) {
        return H8(vec4<f32>(lora_delta(c, ga.x), lora_delta(c, ga.y), lora_delta(c, ga.z), lora_delta(c, ga.w)),
                  vec4<f32>(lora_delta(c, gb.x), lora_delta(c, gb.y), lora_delta(c, gb.z), lora_delta(c, gb.w)));
    }
    var da = vec4<f32>(0.0);
    var db = vec4<f32>(0.0);
    for (var t = 0u; t < lora_bpr(); t = t + 1u) {
        let h = lora_h8(hb, t);
        da = da + vec4<f32>(lora_dot8(ga.x, t, h), lora_dot8(ga.y, t, h), lora_dot8(ga.z, t, h), lora_dot8(ga.w, t, h));
        db = db + vec4<f32>(lora_dot8(gb.x, t, h), lora_dot8(gb.y, t, h), lora_dot8(gb.z, t, h), lora_dot8(gb.w, t, h));
    }
    return H8(p.lora_scale * da, p.lora_scale * db);
}

// Stores column c of the tile (rows r0..r0+8 inside the block; va/vb: the rows' sums).
fn store_col(c: u32, r0: u32, ra: vec4<u32>, rb: vec4<u32>, va: vec4<f32>, vb: vec4<f32>) {
    if (c >= p.t) {
        return;
    }
    var l = H8(vec4<f32>(0.0), vec4<f32>(0.0));
    if ((p.flags & 8u) != 0u) {
        l = lora_tile(c, p.row0 + ra, p.row0 + rb);
    }
    let n = min(8u, p.m - min(r0, p.m));
    if (n > 0u) { mm_store_d(c, r0, va.x, l.a.x); }
    if (n > 1u) { mm_store_d(c, r0 + 1u, va.y, l.a.y); }
    if (n > 2u) { mm_store_d(c, r0 + 2u, va.z, l.a.z); }
    if (n > 3u) { mm_store_d(c, r0 + 3u, va.w, l.a.w); }
    if (n > 4u) { mm_store_d(c, r0 + 4u, vb.x, l.b.x); }
    if (n > 5u) { mm_store_d(c, r0 + 5u, vb.y, l.b.y); }
    if (n > 6u) { mm_store_d(c, r0 + 6u, vb.z, l.b.z); }
    if (n > 7u) { mm_store_d(c, r0 + 7u, vb.w, l.b.w); }
}

@compute @workgroup_size(WG)
fn matmul_quant_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32
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
    let tpc = BITS / 4u;            // texels per 32-weight chunk
    let tpr = (p.k / 32u) * tpc;    // texels per row
    let cpg = p.group / 32u;
    let ngroups = p.k / p.group;
    let spr = qt_scale_texels(p.k, p.group);
    let ra = vec4<u32>(min(r0, last), min(r0 + 1u, last), min(r0 + 2u, last), min(r0 + 3u, last));
    let rb = vec4<u32>(min(r0 + 4u, last), min(r0 + 5u, last), min(r0 + 6u, last), min(r0 + 7u, last));
    let qa = ra * tpr;
    let qb = rb * tpr;
    let sa = ra * spr;
    let sb = rb * spr;
    let col0 = wg.y * NCOL;
    let xrow = select(p.k / 4u, p.k / 2u, GLU);  // vec4s per x row
    let tl = p.t - 1u;
    let xa = vec4<u32>(col0, min(col0 + 1u, tl), min(col0 + 2u, tl), min(col0 + 3u, tl)) * xrow;
    let asym = (p.flags & 1u) != 0u;
    let zero = vec4<f32>(0.0);
    // a<i>: row i's accumulators, one component per column.
    var a0 = zero;
    var a1 = zero;
    var a2 = zero;
    var a3 = zero;
    var a4 = zero;
    var a5 = zero;
    var a6 = zero;
    var a7 = zero;
    for (var b = 0u; b < spr; b = b + 1u) {
        let s0 = qt_s(sa.x + b);
        let s1 = qt_s(sa.y + b);
        let s2 = qt_s(sa.z + b);
        let s3 = qt_s(sa.w + b);
        let s4 = qt_s(sb.x + b);
        let s5 = qt_s(sb.y + b);
        let s6 = qt_s(sb.z + b);
        let s7 = qt_s(sb.w + b);
        var m0 = s0;
        var m1 = s1;
        var m2 = s2;
        var m3 = s3;
        var m4 = s4;
        var m5 = s5;
        var m6 = s6;
        var m7 = s7;
        if (asym) {
            m0 = qt_m(sa.x + b);
            m1 = qt_m(sa.y + b);
            m2 = qt_m(sa.z + b);
            m3 = qt_m(sa.w + b);
            m4 = qt_m(sb.x + b);
            m5 = qt_m(sb.y + b);
            m6 = qt_m(sb.z + b);
            m7 = qt_m(sb.w + b);
        }
        let gn = min(8u, ngroups - 8u * b);
        for (var gi = 0u; gi < gn; gi = gi + 1u) {
            let g = 8u * b + gi;
            var d0 = zero;
            var d1 = zero;
            var d2 = zero;
            var d3 = zero;
            var d4 = zero;
            var d5 = zero;
            var d6 = zero;
            var d7 = zero;
            var xs = zero;
            for (var w = 0u; w < cpg; w = w + 1u) {
                let j = g * cpg + w;
                let o = 8u * j;
                // This lane's share of every column's chunk (subgroups), else the chunk bases.
                let v0 = x_share(xa.x + o, lane);
                var v1 = vec4<f32>(0.0);
                if (NCOL > 1u) { v1 = x_share(xa.y + o, lane); }
                var v2 = vec4<f32>(0.0);
                if (NCOL > 2u) { v2 = x_share(xa.z + o, lane); }
                var v3 = vec4<f32>(0.0);
                if (NCOL > 3u) { v3 = x_share(xa.w + o, lane); }
                let t0 = qt_q(qa.x + j * tpc);
                let t1 = qt_q(qa.y + j * tpc);
                let t2 = qt_q(qa.z + j * tpc);
                let t3 = qt_q(qa.w + j * tpc);
                let t4 = qt_q(qb.x + j * tpc);
                let t5 = qt_q(qb.y + j * tpc);
                let t6 = qt_q(qb.z + j * tpc);
                let t7 = qt_q(qb.w + j * tpc);
                var u0 = t0;
                var u1 = t1;
                var u2 = t2;
                var u3 = t3;
                var u4 = t4;
                var u5 = t5;
                var u6 = t6;
                var u7 = t7;
                if (BITS == 8u) {
                    u0 = qt_q(qa.x + j * tpc + 1u);
                    u1 = qt_q(qa.y + j * tpc + 1u);
                    u2 = qt_q(qa.z + j * tpc + 1u);
                    u3 = qt_q(qa.w + j * tpc + 1u);
                    u4 = qt_q(qb.x + j * tpc + 1u);
                    u5 = qt_q(qb.y + j * tpc + 1u);
                    u6 = qt_q(qb.z + j * tpc + 1u);
                    u7 = qt_q(qb.w + j * tpc + 1u);
                }
                // The chunk in 4 steps of 8 weights (unrolled: broadcast lanes must be constants).
                {
#if SUBGROUPS
                    let l0 = subgroupBroadcast(v0, 0u);
                    let h0 = subgroupBroadcast(v0, 1u);
#else
                    let l0 = x_vec(xa.x + o + 0u);
                    let h0 = x_vec(xa.x + o + 1u);
#endif
                    xs.x += dot(l0 + h0, vec4<f32>(1.0));
#if SUBGROUPS
                    let l1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 0u), NCOL > 1u);
                    let h1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 1u), NCOL > 1u);
#else
                    var l1 = vec4<f32>(0.0);
                    var h1 = vec4<f32>(0.0);
                    if (NCOL > 1u) { l1 = x_vec(xa.y + o + 0u); h1 = x_vec(xa.y + o + 1u); }
#endif
                    xs.y += dot(l1 + h1, vec4<f32>(1.0));
#if SUBGROUPS
                    let l2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 0u), NCOL > 2u);
                    let h2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 1u), NCOL > 2u);
#else
                    var l2 = vec4<f32>(0.0);
                    var h2 = vec4<f32>(0.0);
                    if (NCOL > 2u) { l2 = x_vec(xa.z + o + 0u); h2 = x_vec(xa.z + o + 1u); }
#endif
                    xs.z += dot(l2 + h2, vec4<f32>(1.0));
#if SUBGROUPS
                    let l3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 0u), NCOL > 3u);
                    let h3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 1u), NCOL > 3u);
#else
                    var l3 = vec4<f32>(0.0);
                    var h3 = vec4<f32>(0.0);
                    if (NCOL > 3u) { l3 = x_vec(xa.w + o + 0u); h3 = x_vec(xa.w + o + 1u); }
#endif
                    xs.w += dot(l3 + h3, vec4<f32>(1.0));
                    let x = XS(l0, h0, l1, h1, l2, h2, l3, h3);
                    d0 = row_dq(t0, u0, 0u, x, d0);
                    d1 = row_dq(t1, u1, 0u, x, d1);
                    d2 = row_dq(t2, u2, 0u, x, d2);
                    d3 = row_dq(t3, u3, 0u, x, d3);
                    d4 = row_dq(t4, u4, 0u, x, d4);
                    d5 = row_dq(t5, u5, 0u, x, d5);
                    d6 = row_dq(t6, u6, 0u, x, d6);
                    d7 = row_dq(t7, u7, 0u, x, d7);
                }
                {
#if SUBGROUPS
                    let l0 = subgroupBroadcast(v0, 2u);
                    let h0 = subgroupBroadcast(v0, 3u);
#else
                    let l0 = x_vec(xa.x + o + 2u);
                    let h0 = x_vec(xa.x + o + 3u);
#endif
                    xs.x += dot(l0 + h0, vec4<f32>(1.0));
#if SUBGROUPS
                    let l1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 2u), NCOL > 1u);
                    let h1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 3u), NCOL > 1u);
#else
                    var l1 = vec4<f32>(0.0);
                    var h1 = vec4<f32>(0.0);
                    if (NCOL > 1u) { l1 = x_vec(xa.y + o + 2u); h1 = x_vec(xa.y + o + 3u); }
#endif
                    xs.y += dot(l1 + h1, vec4<f32>(1.0));
#if SUBGROUPS
                    let l2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 2u), NCOL > 2u);
                    let h2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 3u), NCOL > 2u);
#else
                    var l2 = vec4<f32>(0.0);
                    var h2 = vec4<f32>(0.0);
                    if (NCOL > 2u) { l2 = x_vec(xa.z + o + 2u); h2 = x_vec(xa.z + o + 3u); }
#endif
                    xs.z += dot(l2 + h2, vec4<f32>(1.0));
#if SUBGROUPS
                    let l3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 2u), NCOL > 3u);
                    let h3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 3u), NCOL > 3u);
#else
                    var l3 = vec4<f32>(0.0);
                    var h3 = vec4<f32>(0.0);
                    if (NCOL > 3u) { l3 = x_vec(xa.w + o + 2u); h3 = x_vec(xa.w + o + 3u); }
#endif
                    xs.w += dot(l3 + h3, vec4<f32>(1.0));
                    let x = XS(l0, h0, l1, h1, l2, h2, l3, h3);
                    d0 = row_dq(t0, u0, 1u, x, d0);
                    d1 = row_dq(t1, u1, 1u, x, d1);
                    d2 = row_dq(t2, u2, 1u, x, d2);
                    d3 = row_dq(t3, u3, 1u, x, d3);
                    d4 = row_dq(t4, u4, 1u, x, d4);
                    d5 = row_dq(t5, u5, 1u, x, d5);
                    d6 = row_dq(t6, u6, 1u, x, d6);
                    d7 = row_dq(t7, u7, 1u, x, d7);
                }
                {
#if SUBGROUPS
                    let l0 = subgroupBroadcast(v0, 4u);
                    let h0 = subgroupBroadcast(v0, 5u);
#else
                    let l0 = x_vec(xa.x + o + 4u);
                    let h0 = x_vec(xa.x + o + 5u);
#endif
                    xs.x += dot(l0 + h0, vec4<f32>(1.0));
#if SUBGROUPS
                    let l1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 4u), NCOL > 1u);
                    let h1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 5u), NCOL > 1u);
#else
                    var l1 = vec4<f32>(0.0);
                    var h1 = vec4<f32>(0.0);
                    if (NCOL > 1u) { l1 = x_vec(xa.y + o + 4u); h1 = x_vec(xa.y + o + 5u); }
#endif
                    xs.y += dot(l1 + h1, vec4<f32>(1.0));
#if SUBGROUPS
                    let l2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 4u), NCOL > 2u);
                    let h2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 5u), NCOL > 2u);
#else
                    var l2 = vec4<f32>(0.0);
                    var h2 = vec4<f32>(0.0);
                    if (NCOL > 2u) { l2 = x_vec(xa.z + o + 4u); h2 = x_vec(xa.z + o + 5u); }
#endif
                    xs.z += dot(l2 + h2, vec4<f32>(1.0));
#if SUBGROUPS
                    let l3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 4u), NCOL > 3u);
                    let h3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 5u), NCOL > 3u);
#else
                    var l3 = vec4<f32>(0.0);
                    var h3 = vec4<f32>(0.0);
                    if (NCOL > 3u) { l3 = x_vec(xa.w + o + 4u); h3 = x_vec(xa.w + o + 5u); }
#endif
                    xs.w += dot(l3 + h3, vec4<f32>(1.0));
                    let x = XS(l0, h0, l1, h1, l2, h2, l3, h3);
                    d0 = row_dq(t0, u0, 2u, x, d0);
                    d1 = row_dq(t1, u1, 2u, x, d1);
                    d2 = row_dq(t2, u2, 2u, x, d2);
                    d3 = row_dq(t3, u3, 2u, x, d3);
                    d4 = row_dq(t4, u4, 2u, x, d4);
                    d5 = row_dq(t5, u5, 2u, x, d5);
                    d6 = row_dq(t6, u6, 2u, x, d6);
                    d7 = row_dq(t7, u7, 2u, x, d7);
                }
                {
#if SUBGROUPS
                    let l0 = subgroupBroadcast(v0, 6u);
                    let h0 = subgroupBroadcast(v0, 7u);
#else
                    let l0 = x_vec(xa.x + o + 6u);
                    let h0 = x_vec(xa.x + o + 7u);
#endif
                    xs.x += dot(l0 + h0, vec4<f32>(1.0));
#if SUBGROUPS
                    let l1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 6u), NCOL > 1u);
                    let h1 = select(vec4<f32>(0.0), subgroupBroadcast(v1, 7u), NCOL > 1u);
#else
                    var l1 = vec4<f32>(0.0);
                    var h1 = vec4<f32>(0.0);
                    if (NCOL > 1u) { l1 = x_vec(xa.y + o + 6u); h1 = x_vec(xa.y + o + 7u); }
#endif
                    xs.y += dot(l1 + h1, vec4<f32>(1.0));
#if SUBGROUPS
                    let l2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 6u), NCOL > 2u);
                    let h2 = select(vec4<f32>(0.0), subgroupBroadcast(v2, 7u), NCOL > 2u);
#else
                    var l2 = vec4<f32>(0.0);
                    var h2 = vec4<f32>(0.0);
                    if (NCOL > 2u) { l2 = x_vec(xa.z + o + 6u); h2 = x_vec(xa.z + o + 7u); }
#endif
                    xs.z += dot(l2 + h2, vec4<f32>(1.0));
#if SUBGROUPS
                    let l3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 6u), NCOL > 3u);
                    let h3 = select(vec4<f32>(0.0), subgroupBroadcast(v3, 7u), NCOL > 3u);
#else
                    var l3 = vec4<f32>(0.0);
                    var h3 = vec4<f32>(0.0);
                    if (NCOL > 3u) { l3 = x_vec(xa.w + o + 6u); h3 = x_vec(xa.w + o + 7u); }
#endif
                    xs.w += dot(l3 + h3, vec4<f32>(1.0));
                    let x = XS(l0, h0, l1, h1, l2, h2, l3, h3);
                    d0 = row_dq(t0, u0, 3u, x, d0);
                    d1 = row_dq(t1, u1, 3u, x, d1);
                    d2 = row_dq(t2, u2, 3u, x, d2);
                    d3 = row_dq(t3, u3, 3u, x, d3);
                    d4 = row_dq(t4, u4, 3u, x, d4);
                    d5 = row_dq(t5, u5, 3u, x, d5);
                    d6 = row_dq(t6, u6, 3u, x, d6);
                    d7 = row_dq(t7, u7, 3u, x, d7);
                }
            }
            a0 = group_acc(a0, d0, xs, s0, m0, gi, asym);
            a1 = group_acc(a1, d1, xs, s1, m1, gi, asym);
            a2 = group_acc(a2, d2, xs, s2, m2, gi, asym);
            a3 = group_acc(a3, d3, xs, s3, m3, gi, asym);
            a4 = group_acc(a4, d4, xs, s4, m4, gi, asym);
            a5 = group_acc(a5, d5, xs, s5, m5, gi, asym);
            a6 = group_acc(a6, d6, xs, s6, m6, gi, asym);
            a7 = group_acc(a7, d7, xs, s7, m7, gi, asym);
        }
    }
    store_col(col0, r0, ra, rb, vec4<f32>(a0.x, a1.x, a2.x, a3.x), vec4<f32>(a4.x, a5.x, a6.x, a7.x));
    if (NCOL > 1u) {
        store_col(col0 + 1u, r0, ra, rb, vec4<f32>(a0.y, a1.y, a2.y, a3.y), vec4<f32>(a4.y, a5.y, a6.y, a7.y));
    }
    if (NCOL > 2u) {
        store_col(col0 + 2u, r0, ra, rb, vec4<f32>(a0.z, a1.z, a2.z, a3.z), vec4<f32>(a4.z, a5.z, a6.z, a7.z));
    }
    if (NCOL > 3u) {
        store_col(col0 + 3u, r0, ra, rb, vec4<f32>(a0.w, a1.w, a2.w, a3.w), vec4<f32>(a4.w, a5.w, a6.w, a7.w));
    }
}
