// roofline_probe_texture: the read-bandwidth probe over a texel array stored and fetched exactly as
// the quantized matmul's weights (qtex.wgsl: a texture or a storage buffer, as the profile says). Each invocation reads `chunk`
// consecutive texels and writes their wrapping u32 sum (checked on the host).
struct Params {
    n_vec4: u32,   // texels in the texture
    chunk: u32,    // texels per invocation
    n_inv: u32,    // invocations in the grid
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> sums: array<u32>;
#include "index.wgsl"
#include "qtex.wgsl"

@compute @workgroup_size(64)
fn roofline_probe_texture(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let inv = linear_wg(wg, nwg) * 64u + li;
    if (inv >= p.n_inv) {
        return;
    }
    var acc = vec4<u32>(0u);
    let base = inv * p.chunk;
    let end = min(base + p.chunk, p.n_vec4);
    for (var i = base; i < end; i = i + 1u) {
        acc = acc + qt_q(i);
    }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
