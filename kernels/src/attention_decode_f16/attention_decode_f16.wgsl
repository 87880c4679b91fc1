// attention_decode_f16: split-K partials of decode attention for N paths over the shared f16
// prefix + each path's own f16 suffix (contract: mod.rs). Tiles, private q/acc state and the
// block helpers come from attention_prefill_f16/attn_blocks.wgsl (prepended by the wrapper).
//
// Workgroup (x, y = kv head hk):
//   x < np:  prefix chunk x — keys [x·C, min(P, (x+1)·C)) read ONCE into workgroup memory and
//            used by all N·G queries of kv head hk (invocation = one (path, group member));
//   x ≥ np:  suffix chunk sc of path n (x − np = n·ns + sc) — keys [sc·C, min(s_len[n], ..))
//            of that path's suffix, used by its G queries.
// Each writes a partial (unnormalised acc [D], running max m, sum l, 2 unused) to part slot x (prefix)
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
@group(0) @binding(2) var<storage, read> kp: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> vp: array<vec4<u32>>;
// kp, vp: [Hkv, P_max, D] f16 prefix, read as raw quads of 8 f16
@group(0) @binding(4) var<storage, read> ks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> vs: array<vec4<u32>>;
// ks, vs: [N_max, Hkv, S_max, D] f16 suffixes, the same way
@group(0) @binding(6) var<storage, read> s_len: array<u32>;        // [N] valid suffix slots per path
@group(0) @binding(7) var<storage, read_write> part: array<f32>;  // [N, H, np + ns, D + 4]

// The K and V quads (8 f16 each) at quad index j of the prefix or the suffixes.
fn load_quads(is_prefix: bool, j: u32) -> array<vec4<u32>, 2> {
    if (is_prefix) {
        return array<vec4<u32>, 2>(kp[j], vp[j]);
    }
    return array<vec4<u32>, 2>(ks[j], vs[j]);
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
            let kv = load_quads(is_prefix, (base + w) / 4u);
            ktile[w / 4u] = kv[0];
            vtile[w / 4u] = kv[1];
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
        let obase = ((qpath * p.h + head) * nc + slot) * (p.d + 4u);
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
