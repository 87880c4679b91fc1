//! `kestrel generate` and `kestrel chat` with the paper's request flow on the tiny Qwen2 fixture:
//! auto mode (the switcher head picks chat or reasoning, per turn in chat), N verifier-scored
//! paths with budget forcing and the selected answer, and the errors of missing or mismatched
//! heads (exit 1, one line, no panic).
//! Needs a GPU adapter (lavapipe on CI); a missing one fails the test.

mod common;

use common::{kestrel, path, tiny_adapter, tiny_head, tiny_model};

fn generate(extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "generate",
        path(tiny_model()),
        "--adapter",
        path(tiny_adapter()),
        "--max-tokens",
        "8",
    ];
    args.extend_from_slice(extra);
    let out = kestrel(&args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn auto_mode_reports_the_switcher_and_paths_are_scored_and_selected() {
    let sw = path(tiny_head("switcher"));
    let vf = path(tiny_head("verifier"));
    // The switcher fixture's "reasoning" prompt (ids 32 67 279 ...) is not text we can type;
    // any prompt gets a decision with its probability.
    let (ok, stdout, stderr) = generate(&[
        "--prompt",
        "hello world",
        "--mode",
        "auto",
        "--switcher",
        sw,
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("switcher: "), "{stderr}");
    assert!(stderr.contains("p(reasoning) = 0."), "{stderr}");
    assert!(!stdout.is_empty());

    let (ok, stdout, stderr) = generate(&[
        "--prompt",
        "hello world",
        "--mode",
        "reasoning",
        "--verifier",
        vf,
        "--paths",
        "3",
        "--temperature",
        "1",
        "--think-budget",
        "2",
    ]);
    assert!(ok, "{stderr}");
    for i in 0..3 {
        let header = stdout
            .lines()
            .find(|l| l.starts_with(&format!("--- path {i} (")))
            .unwrap_or_else(|| panic!("no path {i} in {stdout}"));
        assert!(header.contains("verifier 0."), "{header}");
        assert!(header.contains("thinking budget forced"), "{header}");
    }
    assert!(
        stdout.contains("=== selected: path ") && stdout.contains("(BestOfN, "),
        "{stdout}"
    );
    let (ok, stdout, stderr) = generate(&["--prompt", "hello", "--paths", "2", "--select", "vote"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("(MajorityVote, "), "{stdout}");
}

#[test]
fn head_flags_are_checked() {
    let sw = path(tiny_head("switcher"));
    let vf = path(tiny_head("verifier"));
    for (args, want) in [
        (vec!["--mode", "auto"], "--mode auto needs --switcher"),
        (
            vec!["--mode", "auto", "--switcher", vf],
            "holds a Verifier head",
        ),
        (
            vec!["--paths", "2", "--verifier", sw],
            "holds a Switcher head",
        ),
        (vec!["--paths", "2", "--select", "best"], "need --verifier"),
        (vec!["--verifier", path(tiny_model())], "not a head file"),
    ] {
        let mut all = vec!["--prompt", "hi"];
        all.extend(args.iter().copied());
        let (ok, _, stderr) = generate(&all);
        assert!(!ok, "{args:?} must fail");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `kestrel chat --mode auto`: the switcher decides every turn (one decision per turn on stderr).
#[test]
fn chat_decides_per_turn() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args([
            "chat",
            path(tiny_model()),
            "--adapter",
            path(tiny_adapter()),
            "--switcher",
            path(tiny_head("switcher")),
            "--mode",
            "auto",
            "--max-tokens",
            "4",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kestrel chat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\nhow are you\n\n")
        .expect("writing turns");
    let out = child.wait_with_output().expect("kestrel chat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("switcher: ").count(), 2, "{stderr}");
}

#[test]
fn generate_refuses_the_noop_backend() {
    let out = kestrel(&[
        "generate",
        path(tiny_model()),
        "--adapter-name",
        "noop",
        "--prompt",
        "hi",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("noop backend") && stderr.contains("kestrel bench --backend noop"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no tokens from the noop backend");
}
