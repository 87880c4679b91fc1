// W4/W8 weights in textures (layout: kernels/src/matrix.rs, "quantized"): bindings 6 q,
// 7 scales, 8 mins (bound to the scales when absent). Texel e sits at (e % 4096, e / 4096)
// (runtime::gpu::TEXTURE_WIDTH).
@group(0) @binding(6) var qtq: texture_2d<u32>;
@group(0) @binding(7) var qts: texture_2d<u32>;
@group(0) @binding(8) var qtm: texture_2d<u32>;

fn qt_coord(e: u32) -> vec2<u32> {
    return vec2<u32>(e & 4095u, e >> 12u);
}
// Texel e of q: 4 words (32 W4 or 16 W8 weights).
fn qt_q(e: u32) -> vec4<u32> {
    return textureLoad(qtq, qt_coord(e), 0);
}
// Texel e of the scales: 8 groups' f16 scales.
fn qt_s(e: u32) -> vec4<u32> {
    return textureLoad(qts, qt_coord(e), 0);
}
// Texel e of the mins.
fn qt_m(e: u32) -> vec4<u32> {
    return textureLoad(qtm, qt_coord(e), 0);
}
// Scale (and min) texels per row: 8 groups per texel.
fn qt_scale_texels(k: u32, group: u32) -> u32 {
    return (k / group + 7u) / 8u;
}
// Group gi (0..8) of a scale or min texel.
fn qt_group(t: vec4<u32>, gi: u32) -> f32 {
    return unpack2x16float(t[gi >> 1u])[gi & 1u];
}
