//! The trained demo's pipeline, end to end on 20 problems: `scripts/demo.sh --quick` converts the
//! model and the committed adapters, trains a switcher and a verifier with `kestrel train-head`,
//! runs `kestrel eval` in chat / reasoning / auto / 8-path verifier modes and with thinking
//! budgets, benches, and checks its outputs (`demo/report.py --check`: record schema and counts,
//! heads written and fitted). No accuracy figure is asserted on 20 problems. Also runs the task
//! generator's tests (`demo/test_tasks.py`). Needs python3, the SmolLM2 GGUF from
//! `scripts/setup.sh` and a GPU adapter (lavapipe on CI); a missing one fails the test.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn task_generator_tests_pass() {
    let out = Command::new("python3")
        .args(["-m", "unittest", "demo/test_tasks.py"])
        .current_dir(repo())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_quick_runs_every_stage() {
    let run = std::env::temp_dir().join(format!("kestrel-demo-quick-{}", std::process::id()));
    let out = Command::new("bash")
        .arg("scripts/demo.sh")
        .args(["--quick", "--fresh", "--run"])
        .arg(&run)
        .env("KESTREL", env!("CARGO_BIN_EXE_kestrel"))
        .current_dir(repo())
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo.sh --quick failed:\n{stderr}");
    let results = std::fs::read_to_string(run.join("RESULTS.md")).expect("RESULTS.md written");
    for section in [
        "## Accuracy",
        "## Budget forcing",
        "## Switcher",
        "## Latency",
    ] {
        assert!(results.contains(section), "RESULTS.md lacks {section}");
    }
    let _ = std::fs::remove_dir_all(&run);
}
