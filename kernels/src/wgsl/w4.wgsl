// W4 dequantisation helpers (layout: ARCHITECTURE.md "Weight layouts").
// A word holds 8 nibbles; nibble i (bits 4i..4i+4) is element 8j + i.
// Kernels accumulate dot(nibbles, x) and sum(x) per group and apply the group's scale s and
// offset o once: sum_k w_k x_k = s * dot(q, x) + o * sum(x), with o = -8 s (symmetric) or
// o = min (asymmetric).

// Elements 0..3 of the word, as unsigned nibble values.
fn w4_lo(w: u32) -> vec4<f32> {
    return vec4<f32>(f32(w & 15u), f32((w >> 4u) & 15u), f32((w >> 8u) & 15u), f32((w >> 12u) & 15u));
}

// Elements 4..7 of the word, as unsigned nibble values.
fn w4_hi(w: u32) -> vec4<f32> {
    return vec4<f32>(f32((w >> 16u) & 15u), f32((w >> 20u) & 15u), f32((w >> 24u) & 15u), f32(w >> 28u));
}

// Nibble i (0..8) of the word.
fn w4_nibble(w: u32, i: u32) -> f32 {
    return f32((w >> (4u * i)) & 15u);
}
