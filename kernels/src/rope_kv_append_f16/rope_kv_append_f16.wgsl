// rope_kv_append_f16: RoPE q in place, RoPE k into the f16 K cache, copy v into the f16 V cache,
// all from the fused qkv buffer in one dispatch (contract: mod.rs). rope_cos_sin() comes from
// rope_f32/rope_math.wgsl (prepended by the wrapper).
#include "index.wgsl"

struct Params {
    rows: u32,    // T rows of qkv
    h: u32,       // H
    hkv: u32,     // Hkv
    d: u32,       // D (multiple of 4)
    stride: u32,  // qkv row stride (elements)
    q_col: u32,
    k_col: u32,
    v_col: u32,
    rope: f32,    // 0: no rotation (plain KV append; q untouched); else cos, sin are scaled by it
    cap: u32,     // slots per cache segment (P_max or S_max)
    rows_per_seg: u32,
    slot_bias: u32, // slot = positions[t] - slot_bias (0 for the prefix, P for suffixes)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;  // [T, stride]
@group(0) @binding(2) var<storage, read> positions: array<u32>;  // [T]
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;   // [D/2]
#storage_f16 4 kc read_write
#storage_f16 5 vc read_write
// kc, vc: [segments, Hkv, cap, D] f16; row t goes to segment t / rows_per_seg.

@compute @workgroup_size(64)
fn rope_kv_append_f16(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let half = p.d / 2u;
    let idx = linear_wg(wg, nwg) * 64u + lid;
    let per_row = (p.h + p.hkv) * half;
    if (idx >= p.rows * per_row) {
        return;
    }
    let t = idx / per_row;
    let rem = idx - t * per_row;
    let j = rem / half;
    let m = rem - j * half;
    let pos = positions[t];
    if (j < p.h) {
        // q head j: rotate the pair (m, m + D/2) in place.
        if (p.rope == 0.0) {
            return;
        }
        let base = t * p.stride + p.q_col + j * p.d + m;
        let cs = rope_cos_sin(pos, inv_freq[m]) * p.rope;
        let a = qkv[base];
        let b = qkv[base + half];
        qkv[base] = a * cs.x - b * cs.y;
        qkv[base + half] = b * cs.x + a * cs.y;
        return;
    }
    // kv head hk: this invocation writes cache elements e, e+1 (same half since D % 4 == 0).
    let hk = j - p.h;
    let slot = pos - p.slot_bias;
    if (slot >= p.cap) {
        return; // out of the segment (also pos < slot_bias): the engine's accounting forbids it
    }
    let seg = t / p.rows_per_seg;
    let dst = ((seg * p.hkv + hk) * p.cap + slot) * half + m;
    let e = 2u * m;
    let kb = t * p.stride + p.k_col + hk * p.d;
    var k = vec2<f32>(qkv[kb + e], qkv[kb + e + 1u]);
    if (p.rope != 0.0) {
        if (e < half) {
            let partner = vec2<f32>(qkv[kb + e + half], qkv[kb + e + half + 1u]);
            let c0 = rope_cos_sin(pos, inv_freq[e]) * p.rope;
            let c1 = rope_cos_sin(pos, inv_freq[e + 1u]) * p.rope;
            k = vec2<f32>(k.x * c0.x - partner.x * c0.y, k.y * c1.x - partner.y * c1.y);
        } else {
            let partner = vec2<f32>(qkv[kb + e - half], qkv[kb + e - half + 1u]);
            let c0 = rope_cos_sin(pos, inv_freq[e - half]) * p.rope;
            let c1 = rope_cos_sin(pos, inv_freq[e - half + 1u]) * p.rope;
            k = vec2<f32>(k.x * c0.x + partner.x * c0.y, k.y * c1.x + partner.y * c1.y);
        }
    }
    kc_set_pair(dst, k);
    let vb = t * p.stride + p.v_col + hk * p.d + e;
    vc_set_pair(dst, vec2<f32>(qkv[vb], qkv[vb + 1u]));
}
