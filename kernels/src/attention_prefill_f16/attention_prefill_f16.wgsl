// attention_prefill_f16: causal GQA attention of a chunk of T queries (f32, read from the fused
// qkv buffer) over the f16 prefix cache, online softmax in f32 (contract: mod.rs).
// Workgroup = (block of BQ queries, head); invocation = one query; K/V tiles staged in
// workgroup memory as packed f16 pairs and shared by the block's queries. The tiles, the
// private q/acc state and the block helpers come from attn_blocks.wgsl (prepended by the wrapper).

struct Params {
    t: u32,        // T queries in this chunk
    h: u32,        // H
    hkv: u32,      // Hkv
    d: u32,        // D (multiple of 4, ≤ 256)
    q_stride: u32, // qkv row stride (elements)
    q_col: u32,    // column of q head 0
    past: u32,     // tokens already in the cache before this chunk
    cap: u32,      // P_max: slots per kv head in the cache
    bk: u32,       // keys per tile (BK · D/2 ≤ TILE_WORDS)
    scale: f32,    // 1/sqrt(D)
    chunk: u32,    // keys per split (split-K over wg.z); u32::MAX when unsplit
    nsplit: u32,   // 1: normalised output; > 1: partials for attention_decode_merge_f32
}

const BQ: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;          // [T, q_stride]
@group(0) @binding(2) var<storage, read> kc: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<u32>>;
// kc, vc: [Hkv, cap, D] f16 read as raw quads of 8; query t (position past + t) sees slots
// 0 ..= past + t.
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
// dst: nsplit == 1: out [T, H, D]; else partials [T, H, nsplit, D + 4] (acc, m, l, 2 unused)




@compute @workgroup_size(64)
fn attention_prefill_f16(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    var s: array<f32, 64>;

    let head = wg.y;
    let hk = head / (p.h / p.hkv);
    let half = p.d / 2u;
    let d4 = p.d / 4u;
    let t = wg.x * BQ + lid;
    let tq = min(t, p.t - 1u);
    let my_keys = p.past + tq + 1u;
    let wg_keys = p.past + min(p.t, (wg.x + 1u) * BQ);

    let qbase = tq * p.q_stride + p.q_col + head * p.d;
    for (var i = 0u; i < D / 4u; i++) {
        let b = qbase + 4u * i;
        qv[i] = vec4<f32>(q[b], q[b + 1u], q[b + 2u], q[b + 3u]) * p.scale;
        acc[i] = vec4<f32>(0.0);
    }
    var m = NEG;
    var l = 0.0;
    let kv_words = hk * p.cap * half;

    let key_lo = wg.z * p.chunk;
    let key_hi = min(wg_keys, key_lo + min(p.chunk, wg_keys));
    for (var kb = key_lo; kb < key_hi; kb += p.bk) {
        let nk = min(p.bk, key_hi - kb);
        workgroupBarrier();
        let src = kv_words + kb * half;
        for (var w = 4u * lid; w < nk * half; w += 4u * BQ) {
            ktile[w / 4u] = kc[(src + w) / 4u];
            vtile[w / 4u] = vc[(src + w) / 4u];
        }
        workgroupBarrier();
        var mine = 0u;
        if (my_keys > kb) {
            mine = min(nk, my_keys - kb);
        }
        if (mine == 0u) {
            continue;
        }
        var tmax = NEG;
        for (var j = 0u; j < mine; j++) {
            let sj = score(j * half);
            s[j] = sj;
            tmax = max(tmax, sj);
        }
        let m_new = max(m, tmax);
        let alpha = exp(m - m_new);
        l *= alpha;
        rescale(alpha);
        for (var j = 0u; j < mine; j++) {
            let pj = exp(s[j] - m_new);
            l += pj;
            accumulate(j * half, pj);
        }
        m = m_new;
    }

    if (t < p.t && p.nsplit == 1u) {
        let obase = (t * p.h + head) * p.d;
        let inv_l = 1.0 / l;
        for (var i = 0u; i < D / 4u; i++) {
            let v = acc[i] * inv_l;
            dst[obase + 4u * i] = v.x;
            dst[obase + 4u * i + 1u] = v.y;
            dst[obase + 4u * i + 2u] = v.z;
            dst[obase + 4u * i + 3u] = v.w;
        }
    } else if (t < p.t) {
        let obase = ((t * p.h + head) * p.nsplit + wg.z) * (p.d + 4u);
        for (var i = 0u; i < D / 4u; i++) {
            let v = acc[i];
            dst[obase + 4u * i] = v.x;
            dst[obase + 4u * i + 1u] = v.y;
            dst[obase + 4u * i + 2u] = v.z;
            dst[obase + 4u * i + 3u] = v.w;
        }
        dst[obase + p.d] = m;
        dst[obase + p.d + 1u] = l;
    }
}
