//! The eval table: one row per configuration, computed from the records alone (so a resumed run
//! reports exactly what an uninterrupted one would).

use serde::Serialize;

use super::record::Record;
use super::stats::{wilson, Summary};

/// One configuration's figures over its problems.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub mode: String,
    pub n_paths: usize,
    pub select: String,
    pub think_budget: Option<usize>,
    pub problems: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// The 95% Wilson score interval of `accuracy`.
    pub accuracy_ci95: [f64; 2],
    /// Problems where some path is correct.
    pub oracle_accuracy: f64,
    /// Per path: tokens up to and including the end-of-thinking marker, and after it.
    pub thinking_tokens: Summary,
    pub answer_tokens: Summary,
    /// Paths whose thinking the budget forced to end.
    pub forced_fraction: f64,
    /// Per problem: the whole generation (all its paths), and the time to the first token.
    pub wall_s: Summary,
    pub ttft_ms: Summary,
    /// Generated tokens (all paths) per second of decoding.
    pub decode_tok_s: f64,
    /// Auto mode: the fraction routed to reasoning, and the fraction routed as the task's
    /// `kind` says over the `routing_labelled` problems that have one.
    pub routed_reasoning: Option<f64>,
    pub routing_accuracy: Option<f64>,
    pub routing_labelled: usize,
}

/// The row of one configuration's records (all of one mode, N, select rule and budget).
pub fn row(config: &Record, records: &[&Record]) -> Row {
    let n = records.len();
    let frac = |k: usize, of: usize| if of == 0 { 0.0 } else { k as f64 / of as f64 };
    let correct = records.iter().filter(|r| r.correct).count();
    let paths: Vec<_> = records.iter().flat_map(|r| &r.paths).collect();
    let per_path = |f: &dyn Fn(&super::record::PathRecord) -> usize| {
        Summary::of(&paths.iter().map(|p| f(p) as f64).collect::<Vec<_>>())
    };
    let tokens: usize = paths.iter().map(|p| p.tokens).sum();
    let decode_s: f64 = records.iter().map(|r| r.decode_ms / 1e3).sum();
    let (auto, labelled) = (
        config.mode == "auto",
        records.iter().filter(|r| r.kind.is_some()),
    );
    let routed = records
        .iter()
        .filter(|r| r.routed.as_deref() == Some("reasoning"))
        .count();
    let labelled: Vec<_> = labelled.collect();
    let routed_right = labelled.iter().filter(|r| r.routed == r.kind).count();
    let (lo, hi) = wilson(correct, n);
    Row {
        mode: config.mode.clone(),
        n_paths: config.n_paths,
        select: config.select.clone(),
        think_budget: config.think_budget,
        problems: n,
        correct,
        accuracy: frac(correct, n),
        accuracy_ci95: [lo, hi],
        oracle_accuracy: frac(records.iter().filter(|r| r.oracle).count(), n),
        thinking_tokens: per_path(&|p| p.thinking_tokens),
        answer_tokens: per_path(&|p| p.answer_tokens),
        forced_fraction: frac(
            paths.iter().filter(|p| p.thinking_forced).count(),
            paths.len(),
        ),
        wall_s: Summary::of(&records.iter().map(|r| r.wall_ms / 1e3).collect::<Vec<_>>()),
        ttft_ms: Summary::of(&records.iter().map(|r| r.ttft_ms).collect::<Vec<_>>()),
        decode_tok_s: if decode_s > 0.0 {
            tokens as f64 / decode_s
        } else {
            0.0
        },
        routed_reasoning: auto.then(|| frac(routed, n)),
        routing_accuracy: (auto && !labelled.is_empty())
            .then(|| frac(routed_right, labelled.len())),
        routing_labelled: if auto { labelled.len() } else { 0 },
    }
}

/// The table as text.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<9} {:>2} {:<8} {:>6} {:>5} {:>20} {:>6} {:>17} {:>17} {:>6} {:>8} {:>8} {:>7} {:>6} {:>6}\n",
        "mode", "N", "select", "budget", "n", "accuracy [95% CI]", "oracle",
        "think tok m/50/90", "answer tok m/50/90", "forced", "wall s", "TTFT ms", "tok/s",
        "routed", "route✓"
    );
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
    let tok = |t: &Summary| format!("{:.0}/{:.0}/{:.0}", t.mean, t.p50, t.p90);
    for r in rows {
        s += &format!(
            "{:<9} {:>2} {:<8} {:>6} {:>5} {:>20} {:>6.3} {:>17} {:>17} {:>6.2} {:>8.2} {:>8.0} {:>7.2} {:>6} {:>6}\n",
            r.mode,
            r.n_paths,
            r.select,
            r.think_budget.map_or("-".into(), |b| b.to_string()),
            r.problems,
            format!("{:.3} [{:.3}, {:.3}]", r.accuracy, r.accuracy_ci95[0], r.accuracy_ci95[1]),
            r.oracle_accuracy,
            tok(&r.thinking_tokens),
            tok(&r.answer_tokens),
            r.forced_fraction,
            r.wall_s.mean,
            r.ttft_ms.mean,
            r.decode_tok_s,
            opt(r.routed_reasoning),
            opt(r.routing_accuracy),
        );
    }
    s
}
