// Shared by attention_prefill_f16 and attention_decode_f16 (prepended by their wrappers):
// K/V tiles in workgroup memory (packed f16 pairs, 2048 words = 8 KiB each), the invocation's
// scaled query and accumulator, and straight-line 16-dim block helpers.

const TILE_WORDS: u32 = 2048u;
// Head dim as a pipeline constant: loop bounds below become compile-time constants, so the
// driver unrolls them and keeps q/acc in registers (dynamic indexing of private arrays is
// very slow on lavapipe, and unrolled loops do not count against its loop limiter).
override D: u32 = 64u;
const NEG: f32 = -3.0e38; // "minus infinity" that keeps exp() and max() finite

var<workgroup> ktile: array<u32, TILE_WORDS>;
var<workgroup> vtile: array<u32, TILE_WORDS>;

// Module-scope private state so the straight-line block helpers below can reach it.
var<private> qv: array<vec4<f32>, 64>;   // this invocation's query · scale, D/4 quads
var<private> acc: array<vec4<f32>, 64>;  // unnormalised output accumulator

fn kq(w: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(ktile[w]), unpack2x16float(ktile[w + 1u]));
}

fn vq(w: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(vtile[w]), unpack2x16float(vtile[w + 1u]));
}

// Loops run over 16-dim blocks with straight-line bodies: lavapipe (gallivm) caps the total loop
// iterations of one invocation at 65,535, so iteration counts per key are kept small (D/16).
fn score(kw: u32) -> f32 {
    var s = 0.0;
    for (var b = 0u; b < D / 16u; b++) {
        let w = kw + 8u * b;
        let i = 4u * b;
        s += dot(qv[i], kq(w)) + dot(qv[i + 1u], kq(w + 2u)) + dot(qv[i + 2u], kq(w + 4u)) + dot(qv[i + 3u], kq(w + 6u));
    }
    return s;
}

fn accumulate(vw: u32, pj: f32) {
    for (var b = 0u; b < D / 16u; b++) {
        let w = vw + 8u * b;
        let i = 4u * b;
        acc[i] += pj * vq(w);
        acc[i + 1u] += pj * vq(w + 2u);
        acc[i + 2u] += pj * vq(w + 4u);
        acc[i + 3u] += pj * vq(w + 6u);
    }
}

fn rescale(alpha: f32) {
    for (var b = 0u; b < D / 16u; b++) {
        let i = 4u * b;
        acc[i] *= alpha;
        acc[i + 1u] *= alpha;
        acc[i + 2u] *= alpha;
        acc[i + 3u] *= alpha;
    }
}

