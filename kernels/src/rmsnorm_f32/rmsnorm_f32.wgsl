// rmsnorm_f32: y = x / sqrt(mean(x²) + eps) · w, one workgroup per row (contract: mod.rs).
const RED_N: u32 = 256u;
#include "reduce.wgsl"
#include "index.wgsl"

struct Params {
    rows: u32, // T
    k: u32,    // K
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [T, K] row-major
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [K]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // [T, K] row-major

@compute @workgroup_size(256)
fn rmsnorm_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = linear_wg(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.k;
    var ss = 0.0;
    for (var i = lid; i < p.k; i += RED_N) {
        let v = x[base + i];
        ss += v * v;
    }
    let total = reduce_sum(lid, ss);
    let inv = inverseSqrt(total / f32(p.k) + p.eps);
    for (var i = lid; i < p.k; i += RED_N) {
        y[base + i] = x[base + i] * inv * w[i];
    }
}
