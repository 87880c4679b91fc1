// pooled_head_f32: pool hidden states over a token range (mean or last), then a linear head
// (contract: mod.rs). Workgroup per (class c, batch item b).
const RED_N: u32 = 256u;
#include "reduce.wgsl"

struct Params {
    t: u32,      // T tokens per batch item
    hidden: u32, // hidden size
    c: u32,      // C classes
    t0: u32,     // first pooled token
    t1: u32,     // one past the last pooled token
    last: u32,   // 1 = last-token pooling (row t1 - 1), 0 = mean over [t0, t1)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [B, T, hidden]
@group(0) @binding(2) var<storage, read> w: array<f32>;          // [C, hidden]
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [C]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // [B, C]

@compute @workgroup_size(256)
fn pooled_head_f32(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let cls = wg.x;
    let b = wg.y;
    let t_lo = select(p.t0, p.t1 - 1u, p.last == 1u);
    let count = f32(p.t1 - t_lo);
    var acc = 0.0;
    for (var k = lid; k < p.hidden; k += RED_N) {
        var s = 0.0;
        let col = b * p.t * p.hidden + k;
        // 4 tokens per iteration: lavapipe caps an invocation's total loop iterations.
        var t = t_lo;
        for (; t + 4u <= p.t1; t += 4u) {
            let r = col + t * p.hidden;
            s += (x[r] + x[r + p.hidden]) + (x[r + 2u * p.hidden] + x[r + 3u * p.hidden]);
        }
        for (; t < p.t1; t++) {
            s += x[col + t * p.hidden];
        }
        acc += w[cls * p.hidden + k] * (s / count);
    }
    let total = reduce_sum(lid, acc);
    if (lid == 0u) {
        out[b * p.c + cls] = total + bias[cls];
    }
}
