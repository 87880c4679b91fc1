//! CPU reference for `sample_f32`: the same ordinal order, integer weights, targets and RNG,
//! written plainly (sort + prefix sums), so its token equals the GPU's bit for bit.

use super::{SampleParams, TABLE_LEN};

/// The weight tables: `T1[j] = round(2^15 · 2^(−j/64))`, `T2[j] = round(2^15 · 2^(−j/4096))`.
pub fn tables() -> [u32; TABLE_LEN] {
    let mut t = [0u32; TABLE_LEN];
    for j in 0..64 {
        t[j] = (32768.0 * (-(j as f64) / 64.0).exp2()).round() as u32;
        t[64 + j] = (32768.0 * (-(j as f64) / 4096.0).exp2()).round() as u32;
    }
    t
}

/// Ascending `ord_hi` = descending value (finite values).
pub fn ord_hi(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 {
        b
    } else {
        b ^ 0x7fff_ffff
    }
}

/// Integer weight of `x` relative to the row maximum `m`: ≈ 2^30 · e^((x − m)/τ).
pub fn weight(x: f32, m: f32, c: f32, t: &[u32; TABLE_LEN]) -> u32 {
    let z = (m - x) * c;
    if z.is_nan() || z >= 131072.0 {
        return 0;
    }
    let a = z as u32;
    let f = a & 4095;
    (t[(f >> 6) as usize] * t[64 + (f & 63) as usize]) >> (a >> 12)
}

/// The counter-based RNG draw for (seed, step, stream).
pub fn draw(seed: u64, step: u32, stream: u32) -> u32 {
    fn pcg(v: u32) -> u32 {
        let s = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        let w = ((s >> ((s >> 28) + 4)) ^ s).wrapping_mul(277_803_737);
        (w >> 22) ^ w
    }
    pcg(pcg(pcg(pcg(seed as u32) ^ (seed >> 32) as u32) ^ step) ^ stream)
}

/// `(token, flags, logprob)` for one row (flags = 1 when the row held NaN/±Inf; logprob as the
/// kernel computes it, `ln(f32(w)) − ln(f32(W_f))`).
pub fn sample_row(row: &[f32], params: &SampleParams, stream: u32) -> (u32, u32, f32) {
    let t = tables();
    let flags = u32::from(row.iter().any(|x| !x.is_finite()));
    let mut order: Vec<(u32, u32, f32)> = row
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .map(|(i, &x)| (ord_hi(x), i as u32, x))
        .collect();
    if order.is_empty() {
        return (0, flags, 0.0);
    }
    order.sort_by_key(|&(o, i, _)| (o, i));
    let m = order[0].2;
    let w: Vec<u64> = order
        .iter()
        .map(|&(_, _, x)| u64::from(weight(x, m, params.c, &t)))
        .collect();
    let mut len = order.len();
    if params.top_k > 0 && (params.top_k as usize) < len {
        len = params.top_k as usize;
    }
    if params.p_fx < 65536 {
        let total: u64 = w[..len].iter().sum();
        let target = ((u128::from(total) * u128::from(params.p_fx)) >> 16) as u64;
        let need = target.max(1);
        let mut cum = 0u64;
        for (j, &wj) in w[..len].iter().enumerate() {
            cum += wj;
            if cum >= need {
                len = j + 1;
                break;
            }
        }
    }
    let total: u64 = w[..len].iter().sum();
    let total_f = ((total >> 32) as u32 as f32) * 4_294_967_296.0 + (total as u32 as f32);
    let logprob = |wj: u64| (wj as u32 as f32).ln() - total_f.ln();
    let r = draw(
        u64::from(params.seed_lo) | (u64::from(params.seed_hi) << 32),
        params.step,
        stream,
    );
    let u = ((u128::from(total) * u128::from(r)) >> 32) as u64;
    let mut cum = 0u64;
    for (j, &wj) in w[..len].iter().enumerate() {
        cum += wj;
        if cum > u {
            return (order[j].1, flags, logprob(wj));
        }
    }
    (order[len - 1].1, flags, logprob(w[len - 1]))
}

/// All rows of `logits: [N, V]`, row n with RNG stream `streams[n]`.
pub fn sample(
    logits: &[f32],
    v: usize,
    params: &SampleParams,
    streams: &[u32],
) -> Vec<(u32, u32, f32)> {
    logits
        .chunks(v)
        .zip(streams)
        .map(|(row, &s)| sample_row(row, params, s))
        .collect()
}
