// W8 dequantisation helpers (layout: ARCHITECTURE.md "Weight layouts").
// A word holds 4 two's-complement bytes; byte i is element 4j + i. w = q * s.

// The 4 signed bytes of the word as f32.
fn w8_quad(w: u32) -> vec4<f32> {
    let v = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4<u32>(24u);
    return vec4<f32>(v);
}

// Signed byte i (0..4) of the word.
fn w8_byte(w: u32, i: u32) -> f32 {
    return f32(bitcast<i32>(w << (24u - 8u * i)) >> 24u);
}
