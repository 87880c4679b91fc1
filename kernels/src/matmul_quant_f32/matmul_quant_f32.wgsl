// matmul_quant_f32: y[c, row] = Σ_k W[row, k] · x[c, k] (+ epilogue) for W4 and W8 weights, for
// decode and prefill.
// Register tile: each invocation owns 8 rows × NCOL ≤ 4 columns (a vec4 of columns per row);
// workgroup_id.y selects the column tile, so all lanes of a workgroup walk the same k together.
// Weights come from textures (qtex.wgsl): a 32-weight chunk is one texel (W4) or two (W8). A
// chunk is consumed in 4 steps of 8 weights: per step, every column's 8 x values (with
// subgroups: broadcast from the one vec4 of the chunk each of 8 lanes loaded; without: loaded
// by every lane), then each row dequantises its 8 weights once and dots them with every
// column. Per step and row only 8 weights and 2 vec4s per column are live, which keeps the
// 8 × 4 tile's spills to the accumulators (lavapipe: up to ~30% faster at T ≥ 8 than holding
// whole dequantised 32-weight chunks and x chunks). A column's sums run in the same order for
// every NCOL. (An
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

// x values 8s..8s+8 of a column's chunk (vec4 index b): with subgroups broadcast from the
// lanes' shares `v` (lane i holds vec4 i). Broadcast lanes must be constants: every caller
// passes a literal s, so the switch folds away once the function is inlined.
fn x_step(v: vec4<f32>, b: u32, s: u32) -> array<vec4<f32>, 2> {
#if SUBGROUPS
    switch s {
        case 0u: { return array<vec4<f32>, 2>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u)); }
        case 1u: { return array<vec4<f32>, 2>(subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)); }
        case 2u: { return array<vec4<f32>, 2>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u)); }
        default: { return array<vec4<f32>, 2>(subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u)); }
    }
#else
    return array<vec4<f32>, 2>(x_vec(b + 2u * s), x_vec(b + 2u * s + 1u));
#endif
}

// One texel per row of the 8-row tile: a chunk's weights (W8: first or second half), or scales
// or mins.
struct Tile {
    t0: vec4<u32>, t1: vec4<u32>, t2: vec4<u32>, t3: vec4<u32>,
    t4: vec4<u32>, t5: vec4<u32>, t6: vec4<u32>, t7: vec4<u32>,
}

// The 8 rows' sums, one component per column.
struct Rows {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
}

// Step s (a literal 0..4) of a chunk: the step's x values of every column (lane shares v,
// chunk bases xb) against 8 weights of each row (texels t, W8: u); adds the columns' x sums
// to xs.
fn chunk_step(s: u32, v: array<vec4<f32>, 4>, xb: vec4<u32>, t: Tile, u: Tile, d: Rows, xs: ptr<function, vec4<f32>>) -> Rows {
    let e0 = x_step(v[0], xb.x, s);
    var e1 = e0;
    var e2 = e0;
    var e3 = e0;
    if (NCOL > 1u) { e1 = x_step(v[1], xb.y, s); }
    if (NCOL > 2u) { e2 = x_step(v[2], xb.z, s); }
    if (NCOL > 3u) { e3 = x_step(v[3], xb.w, s); }
    let one = vec4<f32>(1.0);
    *xs += vec4<f32>(dot(e0[0] + e0[1], one), dot(e1[0] + e1[1], one), dot(e2[0] + e2[1], one), dot(e3[0] + e3[1], one));
    let x = XS(e0[0], e0[1], e1[0], e1[1], e2[0], e2[1], e3[0], e3[1]);
    return Rows(row_dq(t.t0, u.t0, s, x, d.r0), row_dq(t.t1, u.t1, s, x, d.r1),
                row_dq(t.t2, u.t2, s, x, d.r2), row_dq(t.t3, u.t3, s, x, d.r3),
                row_dq(t.t4, u.t4, s, x, d.r4), row_dq(t.t5, u.t5, s, x, d.r5),
                row_dq(t.t6, u.t6, s, x, d.r6), row_dq(t.t7, u.t7, s, x, d.r7));
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

// group_acc for all 8 rows (scale and min texels st, mt).
fn rows_acc(a: Rows, d: Rows, xs: vec4<f32>, st: Tile, mt: Tile, gi: u32, asym: bool) -> Rows {
    return Rows(group_acc(a.r0, d.r0, xs, st.t0, mt.t0, gi, asym), group_acc(a.r1, d.r1, xs, st.t1, mt.t1, gi, asym),
                group_acc(a.r2, d.r2, xs, st.t2, mt.t2, gi, asym), group_acc(a.r3, d.r3, xs, st.t3, mt.t3, gi, asym),
                group_acc(a.r4, d.r4, xs, st.t4, mt.t4, gi, asym), group_acc(a.r5, d.r5, xs, st.t5, mt.t5, gi, asym),
                group_acc(a.r6, d.r6, xs, st.t6, mt.t6, gi, asym), group_acc(a.r7, d.r7, xs, st.t7, mt.t7, gi, asym));
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
    // Row i's accumulators in a.r<i>, one component per column.
    var a = Rows(zero, zero, zero, zero, zero, zero, zero, zero);
    for (var b = 0u; b < spr; b = b + 1u) {
        // Scale (and min) texels of 8 groups for every row.
        let st = Tile(qt_s(sa.x + b), qt_s(sa.y + b), qt_s(sa.z + b), qt_s(sa.w + b),
                      qt_s(sb.x + b), qt_s(sb.y + b), qt_s(sb.z + b), qt_s(sb.w + b));
        var mt = st;
        if (asym) {
            mt = Tile(qt_m(sa.x + b), qt_m(sa.y + b), qt_m(sa.z + b), qt_m(sa.w + b),
                      qt_m(sb.x + b), qt_m(sb.y + b), qt_m(sb.z + b), qt_m(sb.w + b));
        }
        let gn = min(8u, ngroups - 8u * b);
        for (var gi = 0u; gi < gn; gi = gi + 1u) {
            let g = 8u * b + gi;
            var d = Rows(zero, zero, zero, zero, zero, zero, zero, zero);
            var xs = zero;
            for (var w = 0u; w < cpg; w = w + 1u) {
                let j = g * cpg + w;
                let xb = xa + vec4<u32>(8u * j);
                // This lane's share of every column's chunk (with subgroups; unused without).
                var v = array<vec4<f32>, 4>(x_share(xb.x, lane), zero, zero, zero);
                if (NCOL > 1u) { v[1] = x_share(xb.y, lane); }
                if (NCOL > 2u) { v[2] = x_share(xb.z, lane); }
                if (NCOL > 3u) { v[3] = x_share(xb.w, lane); }
                let e = j * tpc;
                let t = Tile(qt_q(qa.x + e), qt_q(qa.y + e), qt_q(qa.z + e), qt_q(qa.w + e),
                             qt_q(qb.x + e), qt_q(qb.y + e), qt_q(qb.z + e), qt_q(qb.w + e));
                var u = t;
                if (BITS == 8u) {
                    let f = e + 1u;
                    u = Tile(qt_q(qa.x + f), qt_q(qa.y + f), qt_q(qa.z + f), qt_q(qa.w + f),
                             qt_q(qb.x + f), qt_q(qb.y + f), qt_q(qb.z + f), qt_q(qb.w + f));
                }
                d = chunk_step(0u, v, xb, t, u, d, &xs);
                d = chunk_step(1u, v, xb, t, u, d, &xs);
                d = chunk_step(2u, v, xb, t, u, d, &xs);
                d = chunk_step(3u, v, xb, t, u, d, &xs);
            }
            a = rows_acc(a, d, xs, st, mt, gi, asym);
        }
    }
    store_col(col0, r0, ra, rb, vec4<f32>(a.r0.x, a.r1.x, a.r2.x, a.r3.x), vec4<f32>(a.r4.x, a.r5.x, a.r6.x, a.r7.x));
    if (NCOL > 1u) {
        store_col(col0 + 1u, r0, ra, rb, vec4<f32>(a.r0.y, a.r1.y, a.r2.y, a.r3.y), vec4<f32>(a.r4.y, a.r5.y, a.r6.y, a.r7.y));
    }
    if (NCOL > 2u) {
        store_col(col0 + 2u, r0, ra, rb, vec4<f32>(a.r0.z, a.r1.z, a.r2.z, a.r3.z), vec4<f32>(a.r4.z, a.r5.z, a.r6.z, a.r7.z));
    }
    if (NCOL > 3u) {
        store_col(col0 + 3u, r0, ra, rb, vec4<f32>(a.r0.w, a.r1.w, a.r2.w, a.r3.w), vec4<f32>(a.r4.w, a.r5.w, a.r6.w, a.r7.w));
    }
}
