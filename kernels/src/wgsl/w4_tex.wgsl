// W4 weights in textures (layout: kernels/src/matrix.rs, "W4"): bindings 6 q, 7 scales, 8 mins
// (bound to the scales when symmetric). Texel e sits at (e % 4096, e / 4096)
// (runtime::gpu::TEXTURE_WIDTH).
@group(0) @binding(6) var w4q: texture_2d<u32>;
@group(0) @binding(7) var w4s: texture_2d<u32>;
@group(0) @binding(8) var w4m: texture_2d<u32>;

fn w4_coord(e: u32) -> vec2<u32> {
    return vec2<u32>(e & 4095u, e >> 12u);
}
// Texel e of q: the 4 words (32 weights) of one chunk.
fn w4_q(e: u32) -> vec4<u32> {
    return textureLoad(w4q, w4_coord(e), 0);
}
// Texel e of the scales: 8 groups' f16 scales.
fn w4_s(e: u32) -> vec4<u32> {
    return textureLoad(w4s, w4_coord(e), 0);
}
// Texel e of the mins.
fn w4_m(e: u32) -> vec4<u32> {
    return textureLoad(w4m, w4_coord(e), 0);
}
// Group gi (0..8) of a scale or min texel.
fn w4_group(t: vec4<u32>, gi: u32) -> f32 {
    return unpack2x16float(t[gi >> 1u])[gi & 1u];
}
