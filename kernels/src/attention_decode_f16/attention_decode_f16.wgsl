// attention_decode_f16: split-K partials of decode attention for N paths over the shared f16
// prefix + each path's own f16 suffix (contract: mod.rs). Tiles, private q/acc state and the
// block helpers come from attention_prefill_f16/attn_blocks.wgsl (prepended by the wrapper).
//
// Workgroup (x, y = kv head hk):
//   x < np:  prefix chunk x — keys [x·C, min(P, (x+1)·C)) read ONCE into workgroup memory and
//            used by all N·G queries of kv head hk (invocation = one (path, group member));
//   x ≥ np:  suffix chunk sc of path n (x − np = n·ns + sc) — keys [sc·C, min(s_len[n], ..))
//            of that path's suffix, used by its G queries.
// Each writes a partial (unnormalised acc [D], running max m, sum l) to part slot x (prefix)
// or np + sc (suffix); attention_decode_merge_f32 combines them exactly (log-sum-exp).

struct Params {
    n: u32,        // N paths
    h: u32,        // H
    hkv: u32,      // Hkv
    d: u32,        // D
    q_stride: u32, // row stride of the q buffer (elements)
    q_col: u32,    // column of q head 0
    p_len: u32,    // P: shared prefix length
    p_cap: u32,    // P_max
    s_cap: u32,    // S_max
    chunk: u32,    // C keys per chunk (multiple of bk)
    np: u32,       // prefix chunks
    ns: u32,       // suffix chunks per path
    bk: u32,       // keys per tile
    scale: f32,    // 1/sqrt(D)
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 128u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;           // [N, q_stride]
#storage_f16 2 kp read
#storage_f16 3 vp read
// kp, vp: [Hkv, P_max, D] f16 prefix
#storage_f16 4 ks read
#storage_f16 5 vs read
// ks, vs: [N_max, Hkv, S_max, D] f16 suffixes
@group(0) @binding(6) var<storage, read> s_len: array<u32>;        // [N] valid suffix slots per path
@group(0) @binding(7) var<storage, read_write> part: array<f32>;  // [N, H, np + ns, D + 2]

fn load_word(is_prefix: bool, j: u32) -> vec2<u32> {
#if F16
    if (is_prefix) {
        return vec2<u32>(pack2x16float(vec2<f32>(kp[j])), pack2x16float(vec2<f32>(vp[j])));
    }
    return vec2<u32>(pack2x16float(vec2<f32>(ks[j])), pack2x16float(vec2<f32>(vs[j])));
#else
    if (is_prefix) {
        return vec2<u32>(kp[j], vp[j]);
    }
    return vec2<u32>(ks[j], vs[j]);
#endif
}

@compute @workgroup_size(128)
fn attention_decode_f16(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    var s: array<f32, 64>;
    let hk = wg.y;
    let g_size = p.h / p.hkv;
    let half = p.d / 2u;
    let is_prefix = wg.x < p.np;

    var key_lo = 0u;
    var key_hi = 0u;
    var src = 0u;  // first packed pair of this kv head's segment
    var slot = wg.x;
    var n_q = p.n * g_size;
    var path = lid / g_size;
    var g = lid % g_size;
    if (is_prefix) {
        key_lo = wg.x * p.chunk;
        key_hi = min(p.p_len, key_lo + p.chunk);
        src = hk * p.p_cap * half;
    } else {
        let idx = wg.x - p.np;
        let n_s = idx / p.ns;
        let sc = idx - n_s * p.ns;
        key_lo = sc * p.chunk;
        key_hi = max(key_lo, min(min(s_len[n_s], p.s_cap), key_lo + p.chunk));
        src = (n_s * p.hkv + hk) * p.s_cap * half;
        slot = p.np + sc;
        n_q = g_size;
        path = n_s;
        g = lid;
    }
    let live = lid < n_q;
    let head = hk * g_size + min(g, g_size - 1u);
    let qpath = min(path, p.n - 1u);

    let qbase = qpath * p.q_stride + p.q_col + head * p.d;
    for (var i = 0u; i < D / 4u; i++) {
        let b = qbase + 4u * i;
        qv[i] = vec4<f32>(q[b], q[b + 1u], q[b + 2u], q[b + 3u]) * p.scale;
        acc[i] = vec4<f32>(0.0);
    }
    var m = NEG;
    var l = 0.0;

    for (var kb = key_lo; kb < key_hi; kb += p.bk) {
        let nk = min(p.bk, key_hi - kb);
        workgroupBarrier();
        let base = src + kb * half;
        for (var w = 4u * lid; w < nk * half; w += 4u * WG) {
            let a = load_word(is_prefix, base + w);
            let b = load_word(is_prefix, base + w + 1u);
            let c = load_word(is_prefix, base + w + 2u);
            let e = load_word(is_prefix, base + w + 3u);
            ktile[w] = a.x;
            ktile[w + 1u] = b.x;
            ktile[w + 2u] = c.x;
            ktile[w + 3u] = e.x;
            vtile[w] = a.y;
            vtile[w + 1u] = b.y;
            vtile[w + 2u] = c.y;
            vtile[w + 3u] = e.y;
        }
        workgroupBarrier();
        let mine = select(0u, nk, live);
        var tmax = NEG;
        for (var j = 0u; j < mine; j++) {
            let sj = score(j * half);
            s[j] = sj;
            tmax = max(tmax, sj);
        }
        if (mine > 0u) {
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
    }

    if (live) {
        let nc = p.np + p.ns;
        let obase = ((qpath * p.h + head) * nc + slot) * (p.d + 2u);
        for (var i = 0u; i < D / 4u; i++) {
            let v = acc[i];
            part[obase + 4u * i] = v.x;
            part[obase + 4u * i + 1u] = v.y;
            part[obase + 4u * i + 2u] = v.z;
            part[obase + 4u * i + 3u] = v.w;
        }
        part[obase + p.d] = m;
        part[obase + p.d + 1u] = l;
    }
}
