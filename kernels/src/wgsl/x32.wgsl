// 32-value chunks of an f32 input row shared across lanes (matmul_quant_f32, lora_shrink).
// With subgroups each of 8 lanes loads one vec4 of the chunk and v32_broadcast hands all 8 to
// every lane (x_chunk; matmul_quant_f32 takes the lane's vec4 with x_share and broadcasts it 8
// values at a time): one load per 8 lanes instead of 8 per lane. The including kernel's params `p`
// have `k` (K, the input features).

// x: [T, K] f32 rows (or [T, 2K] gate | up) at binding 1, read as Gpu::x_input chose: with
// X_UNIFORM (CPU adapters, inputs ≤ 64 KiB) through a uniform binding, ~8× cheaper per word
// than a storage load on lavapipe; with X_TEXTURE (CPU adapters, larger inputs) from a copy in
// an rgba32float texture, vec4 i at (i % 4096, i / 4096), ~4× cheaper; else from storage.
#if X_UNIFORM
@group(0) @binding(1) var<uniform> x: array<vec4<f32>, 4096>;

fn x_at(i: u32) -> vec4<f32> {
    return x[i];
}
#else
#if X_TEXTURE
@group(0) @binding(1) var x_tex: texture_2d<f32>;

fn x_at(i: u32) -> vec4<f32> {
    return textureLoad(x_tex, vec2<u32>(i & 4095u, i >> 12u), 0);
}
#else
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;

fn x_at(i: u32) -> vec4<f32> {
    return x[i];
}
#endif
#endif

// GLU: x rows are [2K] gate | up and the input is silu(gate) · up (the down projection, and its
// LoRA shrink, without a SwiGLU pass).
override GLU: bool = false;

// The SwiGLU input silu(g) · u (the swiglu_f32 formula), for kernels that read the MLP's
// gate | up rows directly.
fn silu_mul(g: vec4<f32>, u: vec4<f32>) -> vec4<f32> {
    return g / (1.0 + exp(-g)) * u;
}

// 32 consecutive values: an x chunk or a dequantised chunk of weights.
struct V32 {
    v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
    v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>,
}

#if SUBGROUPS
// Lane i (of each 8) passes vec4 i of the chunk; every lane gets the whole chunk.
fn v32_broadcast(v: vec4<f32>) -> V32 {
    return V32(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
               subgroupBroadcast(v, 3u), subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u),
               subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}
#endif

// acc + Σ a·b, in a fixed order.
fn v32_dot(a: V32, b: V32, acc: f32) -> f32 {
    return acc + (((dot(a.v0, b.v0) + dot(a.v1, b.v1)) + (dot(a.v2, b.v2) + dot(a.v3, b.v3)))
               + ((dot(a.v4, b.v4) + dot(a.v5, b.v5)) + (dot(a.v6, b.v6) + dot(a.v7, b.v7))));
}

// The input vec4 at index i of an x row (GLU: silu(gate) · up, the swiglu_f32 formula).
fn x_vec(i: u32) -> vec4<f32> {
    if (GLU) {
        return silu_mul(x_at(i), x_at(i + p.k / 4u));
    }
    return x_at(i);
}

// The x chunk starting at vec4 index b. Every lane of the subgroup must call it with the same b.
fn x_chunk(b: u32, lane: u32) -> V32 {
#if SUBGROUPS
    return v32_broadcast(x_vec(b + (lane & 7u)));
#else
    return V32(x_vec(b), x_vec(b + 1u), x_vec(b + 2u), x_vec(b + 3u), x_vec(b + 4u), x_vec(b + 5u), x_vec(b + 6u), x_vec(b + 7u));
#endif
}

// This lane's share of the chunk starting at vec4 index b: with subgroups, vec4 (lane % 8) of
// it (the other lanes' shares arrive by broadcast); without, nothing (readers load x directly).
fn x_share(b: u32, lane: u32) -> vec4<f32> {
#if SUBGROUPS
    return x_vec(b + (lane & 7u));
#else
    return vec4<f32>(0.0);
#endif
}
