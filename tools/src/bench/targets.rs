//! The performance targets for decode speed and memory and for the LoRA overhead, checked against a
//! report.
//!
//! They are stated for the Qwen2.5-0.5B shape on lavapipe with 2 cores; on other models or
//! devices they are printed for orientation only (the LoRA bound scales with the adapter's bytes,
//! so it applies to any model). A target whose figure was not measured (e.g.
//! the 8-path ratio without `--paths 8`) is left out.

use serde::Serialize;

use super::report::Report;

/// One target and whether the report meets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// The JSON key the figure comes from.
    pub metric: &'static str,
    pub value: f64,
    /// `"≥"` or `"≤"`.
    pub relation: &'static str,
    pub bound: f64,
    pub met: bool,
}

fn at_least(metric: &'static str, value: f64, bound: f64) -> Target {
    Target {
        metric,
        value,
        relation: "≥",
        bound,
        met: value >= bound,
    }
}

pub(super) fn at_most(metric: &'static str, value: f64, bound: f64) -> Target {
    Target {
        metric,
        value,
        relation: "≤",
        bound,
        met: value <= bound,
    }
}

/// The targets that `r` has figures for.
pub fn check(r: &Report) -> Vec<Target> {
    let mut out = vec![at_least("roofline_fraction", r.roofline_fraction, 0.25)];
    if let Some(&ratio) = r.path_step_ratio.get(&8) {
        out.push(at_most("path_step_ratio.8", ratio, 3.0));
    }
    out.push(at_most(
        "dispatches_per_layer",
        r.dispatches_per_layer,
        10.0,
    ));
    out.push(at_least("decode_tok_s", r.decode_tok_s, 5.0));
    if let (Some(ratio), Some(bytes)) = (r.lora_step_ratio, r.lora_bytes_ratio) {
        out.push(at_most("lora_step_ratio", ratio, 1.0 + 1.1 * bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_direction_matters() {
        assert!(at_least("x", 0.25, 0.25).met);
        assert!(!at_least("x", 0.24, 0.25).met);
        assert!(at_most("x", 3.0, 3.0).met);
        assert!(!at_most("x", 3.1, 3.0).met);
    }
}
