//! Plain CPU reference for `argmax_f32`.

/// `(token, flags)` for one row: the lowest index of the largest finite value (0 when none is
/// finite) and `ARGMAX_NON_FINITE` when any value is NaN or ±Inf.
pub fn argmax(row: &[f32]) -> (u32, u32) {
    let mut best: Option<(f32, u32)> = None;
    let mut flags = 0;
    for (i, &x) in row.iter().enumerate() {
        if !x.is_finite() {
            flags = super::ARGMAX_NON_FINITE;
        } else if best.is_none_or(|(v, _)| x > v) {
            best = Some((x, i as u32));
        }
    }
    (best.map_or(0, |(_, i)| i), flags)
}
