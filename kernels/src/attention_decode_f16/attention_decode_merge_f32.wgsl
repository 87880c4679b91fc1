// attention_decode_merge_f32: exact log-sum-exp merge of the split-K partials written by
// attention_decode_f16 (contract: mod.rs). Workgroup per (path, head), folded to 2-D.
#include "index.wgsl"

struct Params {
    rows: u32, // N · H
    d: u32,    // D
    nc: u32,   // partials per row (np + ns)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;       // [N·H, nc, D + 2]: acc, m, l
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [N, H, D]

@compute @workgroup_size(64)
fn attention_decode_merge_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = linear_wg(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let w = p.d + 2u;
    let base = row * p.nc * w;
    var mx = -3.0e38;
    for (var c = 0u; c < p.nc; c++) {
        mx = max(mx, part[base + c * w + p.d]);
    }
    var total = 0.0;
    for (var c = 0u; c < p.nc; c++) {
        total += part[base + c * w + p.d + 1u] * exp(part[base + c * w + p.d] - mx);
    }
    // No keys at all (P = 0 and an empty suffix): the output is defined as 0.
    let inv = select(0.0, 1.0 / total, total > 0.0);
    for (var i = lid; i < p.d; i += 64u) {
        var o = 0.0;
        for (var c = 0u; c < p.nc; c++) {
            o += part[base + c * w + i] * exp(part[base + c * w + p.d] - mx);
        }
        out[row * p.d + i] = o * inv;
    }
}
