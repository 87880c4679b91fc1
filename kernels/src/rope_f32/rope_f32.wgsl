// rope_f32: rotate-half RoPE in place on `heads` consecutive heads of each row (contract: mod.rs).
// rope_cos_sin() comes from rope_math.wgsl (prepended by the wrapper).
#include "index.wgsl"

struct Params {
    rows: u32,   // T
    heads: u32,  // heads rotated per row (H + Hkv for q|k of the fused qkv buffer)
    d: u32,      // D
    stride: u32, // elements between rows
    col: u32,    // column of the first rotated head
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;   // [T, stride], heads at col + j·D
@group(0) @binding(2) var<storage, read> positions: array<u32>; // [T]
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;  // [D/2]

@compute @workgroup_size(64)
fn rope_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let half = p.d / 2u;
    let idx = linear_wg(wg, nwg) * 64u + lid;
    let per_row = p.heads * half;
    if (idx >= p.rows * per_row) {
        return;
    }
    let t = idx / per_row;
    let rem = idx - t * per_row;
    let head = rem / half;
    let i = rem - head * half;
    let base = t * p.stride + p.col + head * p.d + i;
    let cs = rope_cos_sin(positions[t], inv_freq[i]);
    let a = x[base];
    let b = x[base + half];
    x[base] = a * cs.x - b * cs.y;
    x[base + half] = b * cs.x + a * cs.y;
}
