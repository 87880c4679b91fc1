// embedding: out[t, k] = table[ids[t], k] dequantised to f32, for one row block of the table.
// One invocation per (element k, token t): grid [ceil(K/64), T, 1].
struct Params {
    k: u32,        // K (row length)
    t: u32,        // tokens T
    row0: u32,     // first table row of this block
    rows: u32,     // rows in this block
    m_total: u32,  // rows of the whole table (V)
    kind: u32,     // 0 W4 symmetric, 1 W4 asymmetric, 2 W8, 3 F16, 4 F32
    group: u32,    // G (quantised layouts)
    zero_oob: u32, // 1: this dispatch writes zeros for ids ≥ V
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;        // [T] u32
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [T, K] f32
@group(0) @binding(3) var<storage, read> data: array<u32>;       // raw f16/f32 words (dummy for W4/W8)
#include "w4.wgsl"
#include "qtex.wgsl"
// textures 6..=8: the W4/W8 block (1×1 dummies otherwise)
#include "w8.wgsl"

@compute @workgroup_size(64)
fn embedding(@builtin(global_invocation_id) gid: vec3<u32>) {
    let kk = gid.x;
    let tok = gid.y;
    if (kk >= p.k || tok >= p.t) {
        return;
    }
    let id = ids[tok];
    let o = tok * p.k + kk;
    if (id >= p.m_total) {
        if (p.zero_oob != 0u) {
            out[o] = 0.0;
        }
        return;
    }
    if (id < p.row0 || id >= p.row0 + p.rows) {
        return;
    }
    let r = id - p.row0;
    var v = 0.0;
    switch p.kind {
        case 0u, 1u: {
            let word = qt_q(r * (p.k / 32u) + kk / 32u)[(kk % 32u) / 8u];
            let nib = w4_nibble(word, kk % 8u);
            let g = kk / p.group;
            let st = r * qt_scale_texels(p.k, p.group) + g / 8u;
            let s = qt_group(qt_s(st), g % 8u);
            if (p.kind == 1u) {
                v = nib * s + qt_group(qt_m(st), g % 8u);
            } else {
                v = (nib - 8.0) * s;
            }
        }
        case 2u: {
            let word = qt_q(r * (p.k / 16u) + kk / 16u)[(kk % 16u) / 4u];
            let g = kk / p.group;
            let st = r * qt_scale_texels(p.k, p.group) + g / 8u;
            v = w8_byte(word, kk % 4u) * qt_group(qt_s(st), g % 8u);
        }
        case 3u: {
            // Raw f16 words: element e is half (e & 1) of word e / 2 (valid in both f16 modes).
            let e = r * p.k + kk;
            v = unpack2x16float(data[e / 2u])[e & 1u];
        }
        default: {
            v = bitcast<f32>(data[r * p.k + kk]);
        }
    }
    out[o] = v;
}
