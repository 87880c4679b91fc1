// swiglu_f32: out[t, i] = silu(gu[t, i]) · gu[t, I + i] (contract: mod.rs).
#include "index.wgsl"

struct Params {
    rows: u32,  // T
    inter: u32, // I
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gu: array<f32>;         // [T, 2I]: gate (I) | up (I)
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [T, I]

@compute @workgroup_size(256)
fn swiglu_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_wg(wg, nwg) * 256u + lid;
    if (idx >= p.rows * p.inter) {
        return;
    }
    let t = idx / p.inter;
    let i = idx - t * p.inter;
    let g = gu[t * 2u * p.inter + i];
    let u = gu[t * 2u * p.inter + p.inter + i];
    // silu(g) = g / (1 + e^-g); e^-g = inf for very negative g gives -0, the correct limit.
    out[idx] = g / (1.0 + exp(-g)) * u;
}
