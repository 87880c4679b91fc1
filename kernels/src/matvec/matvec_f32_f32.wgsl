// matvec_f32_f32: the matvec body (`wgsl/matvec_body.wgsl`) over a row-major f32 W.
#include "matmul_common.wgsl"
@group(0) @binding(5) var<storage, read> w: array<f32>;  // [M_block, K] f32, row-major

fn w_at(i: u32) -> f32 {
    return w[i];
}

fn w_pair(j: u32) -> vec2<f32> {
    return vec2<f32>(w[2u * j], w[2u * j + 1u]);
}
#include "matvec_body.wgsl"
