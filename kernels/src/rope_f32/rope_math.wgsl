// RoPE angle helper, composed into rope_f32 and rope_kv_append_f16 by their wrappers.
// cos/sin of a = f32(pos) · inv_freq (the f32 product, exactly as HF computes it). GPU sin/cos
// are accurate only near 0 (WGSL guarantees 2^-11 absolute inside [-π, π], nothing outside), so
// a is first reduced by Cody–Waite with 2π = C1 + C2 + C3 (C1, C2 short enough that k·C1 and
// k·C2 are exact for |k| < 33,000, i.e. angles below ~2·10^5 rad).
fn rope_cos_sin(pos: u32, inv_freq: f32) -> vec2<f32> {
    let a = f32(pos) * inv_freq;
    let k = round(a * 0.15915494309189535);
    let r = ((a - k * 6.28125) - k * 0.001934051513671875) - k * 1.2556659146019252e-6;
    return vec2<f32>(cos(r), sin(r));
}
