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
// [N·H, nc, D + 4]: acc (D), m, l, 2 unused — whole quads, so a lane reads 4 values per load
// (lavapipe runs one per-lane loop per load instruction).
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;  // [N, H, D]

@compute @workgroup_size(64)
fn attention_decode_merge_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = linear_wg(wg, nwg);
    let q4 = p.d / 4u;  // quads of acc; quad q4 holds (m, l, -, -)
    if (row >= p.rows || lid >= q4) {
        return;
    }
    let w4 = q4 + 1u;
    let base = row * p.nc * w4;
    var mx = -3.0e38;
    for (var c = 0u; c < p.nc; c++) {
        mx = max(mx, part[base + c * w4 + q4].x);
    }
    var total = 0.0;
    for (var c = 0u; c < p.nc; c++) {
        let ml = part[base + c * w4 + q4];
        total += ml.y * exp(ml.x - mx);
    }
    // No keys at all (P = 0 and an empty suffix): the output is defined as 0.
    let inv = select(0.0, 1.0 / total, total > 0.0);
    for (var i = lid; i < q4; i += 64u) {
        var o = vec4<f32>(0.0);
        for (var c = 0u; c < p.nc; c++) {
            o += part[base + c * w4 + i] * exp(part[base + c * w4 + q4].x - mx);
        }
        out[row * q4 + i] = o * inv;
    }
}
