// Shared by the matmul family (matmul_quant_f32, matvec_*): params, output/epilogue bindings, epilogue.
// Bindings: 0 params, 1 x (declared by the kernel), 2 y, 3 bias, 4 lora_h, 5..=8 the weights
// (declared by the kernel: a storage buffer at 5, or the qtex.wgsl texel arrays at 6..=8), 9 lora_b.
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
// LoRA h [T, h_stride] f32 (dummy when unused). With H_UNIFORM (CPU adapters, h ≤ 64 KiB) through
// the uniform window: lavapipe loads a storage word in a per-lane loop, a uniform one directly.
#if H_UNIFORM
@group(0) @binding(4) var<uniform> lora_h: array<vec4<f32>, 4096>;

fn lora_hword(j: u32) -> f32 {
    let i = min(j, 16383u);
    return lora_h[i >> 2u][i & 3u];
}
#else
@group(0) @binding(4) var<storage, read> lora_h: array<f32>;

fn lora_hword(j: u32) -> f32 {
    return lora_h[j];
}
#endif
#include "qtex.wgsl"
// LoRA B [M, R] f16, ceil(R/8) texels per row (matmul::LoraB; the dummy when unused).
#texels 9 lora_bt

// LoRA expand. h for column c and a row's rank segment starts at lora_hbase; B row `row` holds
// ceil(R/8) texels of 8 f16. A row's delta is scale · Σ_t dot(h[8t..8t+8], B[row, 8t..8t+8]),
// summed over t in order — the same numbers whether h is loaded per row (lora_delta) or once for
// a tile of rows that share a segment (matmul_quant_f32).
struct H8 {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn lora_hbase(c: u32, row: u32) -> u32 {
    let seg = select(0u, 1u, row >= p.seg1) + select(0u, 1u, row >= p.seg2);
    return c * p.h_stride + p.h_offset + seg * p.lora_rank;
}

// h[hb + i], 0 past the rank.
fn lora_hv(hb: u32, i: u32) -> f32 {
    return select(0.0, lora_hword(hb + i), i < p.lora_rank);
}

// The 8 h values of rank texel t.
fn lora_h8(hb: u32, t: u32) -> H8 {
    let i = 8u * t;
    return H8(vec4<f32>(lora_hv(hb, i), lora_hv(hb, i + 1u), lora_hv(hb, i + 2u), lora_hv(hb, i + 3u)),
              vec4<f32>(lora_hv(hb, i + 4u), lora_hv(hb, i + 5u), lora_hv(hb, i + 6u), lora_hv(hb, i + 7u)));
}

// Rank texels per B row.
fn lora_bpr() -> u32 {
    return (p.lora_rank + 7u) / 8u;
}

// Rank texel t of B row `row` dotted with h.
fn lora_dot8(row: u32, t: u32, h: H8) -> f32 {
    let bt = lora_bt_texel(row * lora_bpr() + t);
    return dot(h.a, vec4<f32>(unpack2x16float(bt.x), unpack2x16float(bt.y)))
         + dot(h.b, vec4<f32>(unpack2x16float(bt.z), unpack2x16float(bt.w)));
}

// scale · (h · B[row]ᵀ) for column c and matrix row `row`, h loaded for this row alone.
fn lora_delta(c: u32, row: u32) -> f32 {
    let hb = lora_hbase(c, row);
    var d = 0.0;
    for (var t = 0u; t < lora_bpr(); t = t + 1u) {
        d = d + lora_dot8(row, t, lora_h8(hb, t));
    }
    return p.lora_scale * d;
}

// Writes column c, block row r: y = acc + bias + lora (the LoRA delta, used when the LoRA flag
// is set) (+ y when accumulating).
fn mm_store_d(c: u32, r: u32, acc: f32, lora: f32) {
    let row = p.row0 + r;
    var v = acc;
    if ((p.flags & 2u) != 0u) {
        v = v + bias[row];
    }
    if ((p.flags & 8u) != 0u) {
        v = v + lora;
    }
    let yi = c * p.y_stride + row;
    if ((p.flags & 4u) != 0u) {
        v = v + y[yi];
    }
    y[yi] = v;
}

// mm_store_d with the row's own LoRA delta.
fn mm_store(c: u32, r: u32, acc: f32) {
    var l = 0.0;
    if ((p.flags & 8u) != 0u) {
        l = lora_delta(c, p.row0 + r);
    }
    mm_store_d(c, r, acc, l);
}
