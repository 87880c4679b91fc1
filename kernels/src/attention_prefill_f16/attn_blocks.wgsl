// Shared by attention_prefill_f16 and attention_decode_f16 (prepended by their wrappers):
// K/V tiles in workgroup memory (quads of packed f16 pairs = 8 f16 per vec4<u32>, 2048 words =
// 8 KiB each), the invocation's scaled query and accumulator, and straight-line 16-dim block
// helpers. The kernels read the f16 KV cache as raw vec4<u32> quads (bit copies, in both f16
// modes): lavapipe loads storage and workgroup memory one lane at a time per load instruction,
// so one 4-word load costs about what a 1-word load does.

const TILE_WORDS: u32 = 2048u;
// Head dim as a pipeline constant: loop bounds below become compile-time constants, so the
// driver unrolls them and keeps q/acc in registers (dynamic indexing of private arrays is
// very slow on lavapipe, and unrolled loops do not count against its loop limiter).
override D: u32 = 64u;
const NEG: f32 = -3.0e38; // "minus infinity" that keeps exp() and max() finite

var<workgroup> ktile: array<vec4<u32>, TILE_WORDS / 4u>;
var<workgroup> vtile: array<vec4<u32>, TILE_WORDS / 4u>;

// Module-scope private state so the straight-line block helpers below can reach it.
var<private> qv: array<vec4<f32>, 64>;   // this invocation's query · scale, D/4 quads
var<private> acc: array<vec4<f32>, 64>;  // unnormalised output accumulator

// f16 values 0..3 and 4..7 of a quad.
fn lo4(t: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(t.x), unpack2x16float(t.y));
}

fn hi4(t: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(t.z), unpack2x16float(t.w));
}

// Loops run over 16-dim blocks with straight-line bodies: lavapipe (gallivm) caps the total loop
// iterations of one invocation at 65,535, so iteration counts per key are kept small (D/16).
// kw, vw: the key's first word in the tile (a multiple of 4: D is a multiple of 16).
fn score(kw: u32) -> f32 {
    var s = 0.0;
    for (var b = 0u; b < D / 16u; b++) {
        let t0 = ktile[kw / 4u + 2u * b];
        let t1 = ktile[kw / 4u + 2u * b + 1u];
        let i = 4u * b;
        s += dot(qv[i], lo4(t0)) + dot(qv[i + 1u], hi4(t0)) + dot(qv[i + 2u], lo4(t1)) + dot(qv[i + 3u], hi4(t1));
    }
    return s;
}

fn accumulate(vw: u32, pj: f32) {
    for (var b = 0u; b < D / 16u; b++) {
        let t0 = vtile[vw / 4u + 2u * b];
        let t1 = vtile[vw / 4u + 2u * b + 1u];
        let i = 4u * b;
        acc[i] += pj * lo4(t0);
        acc[i + 1u] += pj * hi4(t0);
        acc[i + 2u] += pj * lo4(t1);
        acc[i + 3u] += pj * hi4(t1);
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

