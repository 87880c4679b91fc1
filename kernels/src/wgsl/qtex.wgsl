// W4/W8 weights as texel arrays (layout: kernels/src/matrix.rs, "quantized"; textures or storage
// buffers as the device profile says, `#texels`): bindings 6 q, 7 scales, 8 mins (bound to the
// scales when absent).
#texels 6 qtq
#texels 7 qts
#texels 8 qtm

// Texel e of q: 4 words (32 W4 or 16 W8 weights).
fn qt_q(e: u32) -> vec4<u32> {
    return qtq_texel(e);
}
// Texel e of the scales: 8 groups' f16 scales.
fn qt_s(e: u32) -> vec4<u32> {
    return qts_texel(e);
}
// Texel e of the mins.
fn qt_m(e: u32) -> vec4<u32> {
    return qtm_texel(e);
}
// Scale (and min) texels per row: 8 groups per texel.
fn qt_scale_texels(k: u32, group: u32) -> u32 {
    return (k / group + 7u) / 8u;
}
// Group gi (0..8) of a scale or min texel.
fn qt_group(t: vec4<u32>, gi: u32) -> f32 {
    return unpack2x16float(t[gi >> 1u])[gi & 1u];
}
