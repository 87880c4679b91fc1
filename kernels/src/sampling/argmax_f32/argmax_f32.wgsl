// argmax_f32: per row of logits, the index of the largest finite value (ties → lowest index)
// and a flag when the row holds NaN or ±Inf (contract: mod.rs). Workgroup per row.
#include "index.wgsl"

struct Params {
    n: u32, // N rows
    v: u32, // V columns
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;    // [N, V]
@group(0) @binding(2) var<storage, read_write> out: array<u32>; // [N, 4]: token, flags, logprob (0.0), 0

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;
var<workgroup> flag: array<u32, WG>;

// NaN and ±Inf have an all-ones exponent; a bit test survives fast-math (x != x may not).
fn non_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// (va, ia) vs (vb, ib): the larger value, the lower index on ties; NONE loses.
fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    if (ib == NONE) {
        return false;
    }
    if (ia == NONE) {
        return true;
    }
    return vb > va || (vb == va && ib < ia);
}

@compute @workgroup_size(256)
fn argmax_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = linear_wg(wg, nwg);
    if (row >= p.n) {
        return;
    }
    let base = row * p.v;
    var bv = 0.0;
    var bi = NONE;
    var f = 0u;
    for (var i = lid; i < p.v; i += WG) {
        let x = logits[base + i];
        if (non_finite(x)) {
            f = 1u;
        } else if (bi == NONE || x > bv) {
            bv = x;
            bi = i;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    flag[lid] = f;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            if (better(best_v[lid], best_i[lid], best_v[lid + s], best_i[lid + s])) {
                best_v[lid] = best_v[lid + s];
                best_i[lid] = best_i[lid + s];
            }
            flag[lid] = flag[lid] | flag[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[4u * row] = select(best_i[0], 0u, best_i[0] == NONE);
        out[4u * row + 1u] = flag[0];
        out[4u * row + 2u] = 0u; // log 1: greedy picks with certainty
        out[4u * row + 3u] = 0u;
    }
}
