//! The indicatif progress bar every conversion draws (bytes done / total, rate, ETA).

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-progress bar with `msg` as its prefix; hidden when stderr is not a terminal.
pub fn bar(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({binary_bytes_per_sec}, eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_prefix(msg.to_string());
    pb
}

/// A `(done, total)` callback that drives `pb`.
pub fn callback(pb: &ProgressBar) -> impl FnMut(u64, u64) + '_ {
    move |done, total| {
        if pb.length() != Some(total) {
            pb.set_length(total);
        }
        pb.set_position(done);
    }
}
