// matmul_quant_f32: y[c, row] = Σ_k W[row, k] · x[c, k] (+ epilogue) for W4 and W8 weights, for
// decode and prefill.
// Register tile: each invocation owns 8 rows × NCOL ≤ 4 columns (a vec4 of columns per row);
// workgroup_id.y selects the column quad, so all lanes of a workgroup walk the same k together.
// A texel is dequantised once and dotted with every column's x chunk.
// Weights come from textures (qtex.wgsl): a 32-weight chunk is one texel (W4) or two (W8). The 32 x values
// of a chunk are read once per 8 lanes with subgroups (one vec4 per lane, then broadcast) or by
// every lane without; either way each x chunk serves 8 rows.
#include "matmul_common.wgsl"
#include "w4.wgsl"
#include "w8.wgsl"
#include "x32.wgsl"

override NCOL: u32 = 1u;  // columns per invocation (1..=4)
override WG: u32 = 64u;   // lanes per workgroup (8 rows each)
override BITS: u32 = 4u;  // 4 (W4) or 8 (W8)

fn x_sum(c: V32) -> f32 {
    return dot(((c.v0 + c.v1) + (c.v2 + c.v3)) + ((c.v4 + c.v5) + (c.v6 + c.v7)), vec4<f32>(1.0));
}

// The 32 quantized values (nibbles or signed bytes) of the chunk at texel e, as floats.
fn dequant(e: u32) -> V32 {
    let w = qt_q(e);
    if (BITS == 8u) {
        let u = qt_q(e + 1u);
        return V32(w8_quad(w.x), w8_quad(w.y), w8_quad(w.z), w8_quad(w.w), w8_quad(u.x), w8_quad(u.y), w8_quad(u.z), w8_quad(u.w));
    }
    return V32(w4_lo(w.x), w4_hi(w.x), w4_lo(w.y), w4_hi(w.y), w4_lo(w.z), w4_hi(w.z), w4_lo(w.w), w4_hi(w.w));
}

// acc + one row's chunk (at texel e) against the column chunks (components ≥ NCOL stay).
fn row_cols(e: u32, c0: V32, c1: V32, c2: V32, c3: V32, acc: vec4<f32>) -> vec4<f32> {
    let d = dequant(e);
    var r = acc;
    r.x = v32_dot(d, c0, r.x);
    if (NCOL > 1u) {
        r.y = v32_dot(d, c1, r.y);
    }
    if (NCOL > 2u) {
        r.z = v32_dot(d, c2, r.z);
    }
    if (NCOL > 3u) {
        r.w = v32_dot(d, c3, r.w);
    }
    return r;
}

// acc += s · dq + o · Σx for one row (W4: o = −8s symmetric, the min asymmetric; W8: o = 0).
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
    let xb = vec4<u32>(col0, min(col0 + 1u, p.t - 1u), min(col0 + 2u, p.t - 1u), min(col0 + 3u, p.t - 1u)) * xrow;
    let asym = (p.flags & 1u) != 0u;
    // a<i>: row i's accumulators, one component per column.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
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
            var d0 = vec4<f32>(0.0);
            var d1 = vec4<f32>(0.0);
            var d2 = vec4<f32>(0.0);
            var d3 = vec4<f32>(0.0);
            var d4 = vec4<f32>(0.0);
            var d5 = vec4<f32>(0.0);
            var d6 = vec4<f32>(0.0);
            var d7 = vec4<f32>(0.0);
            var xs = vec4<f32>(0.0);
            for (var w = 0u; w < cpg; w = w + 1u) {
                let j = g * cpg + w;
                let c0 = x_chunk(xb.x + 8u * j, lane);
                var c1 = c0;
                var c2 = c0;
                var c3 = c0;
                xs.x = xs.x + x_sum(c0);
                if (NCOL > 1u) {
                    c1 = x_chunk(xb.y + 8u * j, lane);
                    xs.y = xs.y + x_sum(c1);
                }
                if (NCOL > 2u) {
                    c2 = x_chunk(xb.z + 8u * j, lane);
                    xs.z = xs.z + x_sum(c2);
                }
                if (NCOL > 3u) {
                    c3 = x_chunk(xb.w + 8u * j, lane);
                    xs.w = xs.w + x_sum(c3);
                }
                d0 = row_cols(qa.x + j * tpc, c0, c1, c2, c3, d0);
                d1 = row_cols(qa.y + j * tpc, c0, c1, c2, c3, d1);
                d2 = row_cols(qa.z + j * tpc, c0, c1, c2, c3, d2);
                d3 = row_cols(qa.w + j * tpc, c0, c1, c2, c3, d3);
                d4 = row_cols(qb.x + j * tpc, c0, c1, c2, c3, d4);
                d5 = row_cols(qb.y + j * tpc, c0, c1, c2, c3, d5);
                d6 = row_cols(qb.z + j * tpc, c0, c1, c2, c3, d6);
                d7 = row_cols(qb.w + j * tpc, c0, c1, c2, c3, d7);
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
