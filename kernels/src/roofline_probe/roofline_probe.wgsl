// roofline_probe: read-bandwidth probe. Each variant reads every u32 of `src` exactly once and
// writes a wrapping u32 sum per invocation to `sums`; the host checks Σ sums == Σ src (wrapping)
// before trusting the timing.
struct Params {
    n_vec4: u32,   // vec4<u32> elements in src
    chunk: u32,    // vec4 elements per invocation (contiguous variants)
    n_inv: u32,    // invocations in the grid
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;
#include "index.wgsl"

fn hsum(v: vec4<u32>) -> u32 {
    return v.x + v.y + v.z + v.w;
}

// Each invocation reads `chunk` consecutive vec4s.
@compute @workgroup_size(64)
fn roofline_probe(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let inv = linear_wg(wg, nwg) * 64u + li;
    if (inv >= p.n_inv) {
        return;
    }
    var acc = vec4<u32>(0u);
    let base = inv * p.chunk;
    let end = min(base + p.chunk, p.n_vec4);
    for (var i = base; i < end; i = i + 1u) {
        acc = acc + src[i];
    }
    sums[inv] = hsum(acc);
}

// Grid-stride: invocation i reads i, i + n_inv, i + 2 n_inv, ... (coalesced on GPUs).
@compute @workgroup_size(64)
fn roofline_probe_strided(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let inv = linear_wg(wg, nwg) * 64u + li;
    if (inv >= p.n_inv) {
        return;
    }
    var acc = vec4<u32>(0u);
    for (var i = inv; i < p.n_vec4; i = i + p.n_inv) {
        acc = acc + src[i];
    }
    sums[inv] = hsum(acc);
}

// Contiguous chunks, 4 independent accumulators (more loads in flight).
@compute @workgroup_size(64)
fn roofline_probe_unrolled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let inv = linear_wg(wg, nwg) * 64u + li;
    if (inv >= p.n_inv) {
        return;
    }
    var a0 = vec4<u32>(0u);
    var a1 = vec4<u32>(0u);
    var a2 = vec4<u32>(0u);
    var a3 = vec4<u32>(0u);
    let base = inv * p.chunk;
    let end = min(base + p.chunk, p.n_vec4);
    var i = base;
    for (; i + 4u <= end; i = i + 4u) {
        a0 = a0 + src[i];
        a1 = a1 + src[i + 1u];
        a2 = a2 + src[i + 2u];
        a3 = a3 + src[i + 3u];
    }
    for (; i < end; i = i + 1u) {
        a0 = a0 + src[i];
    }
    sums[inv] = hsum(a0 + a1 + a2 + a3);
}
