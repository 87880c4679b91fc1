#!/usr/bin/env bash
# Build the fuzz targets on the stable toolchain and run each for SECONDS on its seed corpus.
#
#   formats/fuzz/run.sh SECONDS [TARGET...]     (default: every target; CI uses 30)
#
# Stable route: plain cargo with the flags `cargo fuzz build -s none -a` passes (cargo-fuzz
# 0.13.2): SanitizerCoverage for libFuzzer, `--cfg fuzzing`, debug assertions and overflow checks,
# no sanitizer (the code under test is safe Rust; ASan needs -Z flags and halves the executions).
# No nightly, no RUSTC_BOOTSTRAP, no cargo-fuzz install; the build is the one `cargo fuzz` makes,
# so both share CARGO_TARGET_DIR. New inputs go to a scratch dir (FUZZ_WORK, default a temp
# dir), never into the committed corpus (fold them in with `-merge=1`, README.md). A crash, a
# timeout (> 10 s for one input) or an OOM (> 2 GiB) fails the run and names the reproducer.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(kst_reader gguf_parse shard_index hf_config peft_import head_import chat_template tokenizer)
fi
triple=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions -Ccodegen-units=1" \
    cargo build --manifest-path Cargo.toml --target "$triple" --release \
    --config 'profile.release.debug="line-tables-only"' --bins
bin="$CARGO_TARGET_DIR/$triple/release"
work=${FUZZ_WORK:-$(mktemp -d)}
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/artifacts/$t"
    echo "== fuzz $t for ${secs}s"
    if ! "$bin/$t" "$work/$t" "corpus/$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" \
        2>"$work/$t.log"; then
        tail -n 40 "$work/$t.log"
        echo "fuzz $t FAILED: reproducer in $work/artifacts/$t/ (formats/fuzz/README.md)"
        exit 1
    fi
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log"
done
