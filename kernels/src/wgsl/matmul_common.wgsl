// Shared by the matmul family (matmul_quant_f32, matvec_*): params, output/epilogue bindings, epilogue.
// Bindings: 0 params, 1 x (declared by the kernel), 2 y, 3 bias, 4 lora_h, 5..=8 the weights
// (declared by the kernel: a storage buffer at 5, or the qtex.wgsl textures at 6..=8), 9 lora_b.
struct MatmulParams {
    m: u32,          // rows in this dispatch's row block
    k: u32,          // input features K
    t: u32,          // columns (tokens or paths) T
    group: u32,      // quantization group G (0 for f16/f32)
    row0: u32,       // first row of the block within the whole matrix
    y_stride: u32,   // M of the whole matrix: y is [T, y_stride]
    flags: u32,      // 1 asymmetric W4, 2 bias, 4 accumulate (y += result), 8 LoRA expand
    lora_rank: u32,  // R
    lora_scale: f32, // scale of the LoRA delta
    h_offset: u32,   // column of this matrix's rank block in h
    h_stride: u32,   // row stride of h (ΣR)
    seg1: u32,       // rows >= seg1 use the next rank block of h (u32 max = none)
    seg2: u32,       // rows >= seg2 use the one after (q|k|v)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [T, y_stride] f32
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [M] f32 (dummy when unused)
@group(0) @binding(4) var<storage, read> lora_h: array<f32>;   // [T, h_stride] f32 (dummy when unused)
#include "qtex.wgsl"
// LoRA B [M, R] f16, ceil(R/8) texels per row (matmul::LoraB; 1×1 dummy when unused).
@group(0) @binding(9) var lora_bt: texture_2d<u32>;

// Writes column c, block row r: y = acc + bias + scale * h·Bᵀ (+ y when accumulating).
fn mm_store(c: u32, r: u32, acc: f32) {
    let row = p.row0 + r;
    var v = acc;
    if ((p.flags & 2u) != 0u) {
        v = v + bias[row];
    }
    if ((p.flags & 8u) != 0u) {
        var d = 0.0;
        let seg = select(0u, 1u, row >= p.seg1) + select(0u, 1u, row >= p.seg2);
        let hb = c * p.h_stride + p.h_offset + seg * p.lora_rank;
        let bpr = (p.lora_rank + 7u) / 8u;
        for (var t = 0u; t < bpr; t = t + 1u) {
            let bt = textureLoad(lora_bt, qt_coord(row * bpr + t), 0);
            for (var j = 0u; j < 8u; j = j + 1u) {
                let i = 8u * t + j;
                if (i < p.lora_rank) {
                    d = d + lora_h[hb + i] * unpack2x16float(bt[j >> 1u])[j & 1u];
                }
            }
        }
        v = v + p.lora_scale * d;
    }
    let yi = c * p.y_stride + row;
    if ((p.flags & 4u) != 0u) {
        v = v + y[yi];
    }
    y[yi] = v;
}
