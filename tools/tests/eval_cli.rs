//! `kestrel eval` end to end on the tiny Qwen2 fixture with greedy decoding: tasks whose
//! answers are the model's own greedy outputs (and one that is not), so every accuracy, oracle
//! and vote figure is known exactly; the `--json` schema; `--resume` after an interruption
//! equals an uninterrupted run; flag errors.
//! Needs a GPU adapter (lavapipe on CI); a missing one fails the test.

mod common;

use std::path::{Path, PathBuf};

use common::{kestrel, path, tiny_adapter, tiny_head, tiny_model};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("eval_cli_{name}"));
    let _ = std::fs::remove_file(&p);
    p
}

fn eval(tasks: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "eval",
        path(tiny_model()),
        "--tasks",
        path(tasks),
        "--adapter",
        path(tiny_adapter()),
        "--max-tokens",
        "6",
    ];
    args.extend_from_slice(extra);
    let out = kestrel(&args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

fn records(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_tasks(name: &str, answers: &[&str]) -> PathBuf {
    let prompts = ["hello world", "what is 2+2", "name a colour"];
    let kinds = ["chat", "reasoning", "reasoning"];
    let p = tmp(name);
    let text: String = answers
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::json!({"id": format!("t{i}"), "prompt": prompts[i], "answer": a, "kind": kinds[i]})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

/// Drops the timings, which differ between runs.
fn untimed(mut r: Value) -> Value {
    for k in ["ttft_ms", "decode_ms", "wall_ms"] {
        r.as_object_mut().unwrap().remove(k);
    }
    r
}

#[test]
fn greedy_outputs_graded_exactly_and_json_schema() {
    // The model's greedy outputs, read from the records of a first run.
    let probe = write_tasks("probe_tasks.jsonl", &["?", "?", "?"]);
    let out0 = tmp("probe.jsonl");
    eval(&probe, &["--out", path(&out0)]);
    let texts: Vec<String> = records(&out0)
        .iter()
        .filter(|r| r["select"] == "first")
        .map(|r| r["paths"][0]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 3);
    assert!(texts.iter().all(|t| !t.trim().is_empty()), "{texts:?}");
    // t0 and t2 expect the model's own output (case and spacing changed), t1 something else.
    let a0 = format!("  {} ", texts[0].to_uppercase());
    let tasks = write_tasks("tasks.jsonl", &[&a0, "certainly not this", &texts[2]]);
    let recs = tmp("records.jsonl");
    let (stdout, _) = eval(
        &tasks,
        &[
            "--paths",
            "1,3",
            "--select",
            "first,vote",
            "--out",
            path(&recs),
            "--json",
        ],
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    for k in [
        "schema", "model", "device", "tasks", "settings", "rows", "overhead",
    ] {
        assert!(report.get(k).is_some(), "{k} missing: {report}");
    }
    assert_eq!(report["tasks"], 3);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4); // chat × {1, 3} paths × {first, vote}
    let (lo, hi) = wilson(2, 3);
    for row in rows {
        for k in [
            "mode",
            "n_paths",
            "select",
            "think_budget",
            "problems",
            "correct",
            "accuracy",
            "accuracy_ci95",
            "oracle_accuracy",
            "thinking_tokens",
            "answer_tokens",
            "forced_fraction",
            "wall_s",
            "ttft_ms",
            "decode_tok_s",
            "routed_reasoning",
            "routing_accuracy",
            "routing_labelled",
        ] {
            assert!(row.get(k).is_some(), "{k} missing: {row}");
        }
        // Greedy paths are identical: every rule picks the model's answer; 2 of 3 are right.
        assert_eq!(
            (row["problems"].as_u64(), row["correct"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(row["accuracy"].as_f64().unwrap(), 2.0 / 3.0);
        assert_eq!(row["oracle_accuracy"].as_f64().unwrap(), 2.0 / 3.0);
        let ci = row["accuracy_ci95"].as_array().unwrap();
        assert!((ci[0].as_f64().unwrap() - lo).abs() < 1e-12);
        assert!((ci[1].as_f64().unwrap() - hi).abs() < 1e-12);
        assert_eq!(row["thinking_tokens"]["mean"].as_f64(), Some(0.0));
        assert_eq!(row["forced_fraction"].as_f64(), Some(0.0));
        assert!(row["routed_reasoning"].is_null());
    }
    let recs = records(&recs);
    assert_eq!(recs.len(), 3 * 2 * 2);
    for r in &recs {
        let paths = r["paths"].as_array().unwrap();
        assert_eq!(paths.len() as u64, r["n_paths"].as_u64().unwrap());
        assert!(paths.iter().all(|p| p["text"] == paths[0]["text"]));
        assert_eq!(r["correct"], r["id"] != "t1");
        assert_eq!(r["oracle"], r["correct"]);
        let t = &paths[0];
        assert_eq!(
            t["tokens"].as_u64(),
            Some(t["thinking_tokens"].as_u64().unwrap() + t["answer_tokens"].as_u64().unwrap())
        );
    }
    let overhead = report["overhead"]["fraction"].as_f64().unwrap();
    assert!(
        (0.0..0.03).contains(&overhead),
        "harness overhead {overhead}"
    );
}

/// The 95% Wilson interval, written out independently of the tool's.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    let (p, n, z) = (k as f64 / n as f64, n as f64, 1.959_963_984_540_054_f64);
    let c = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let h = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (c - h, c + h)
}

#[test]
fn resume_after_an_interruption_equals_an_uninterrupted_run() {
    let tasks = write_tasks("resume_tasks.jsonl", &["1", "red", "4"]);
    let sw = path(tiny_head("switcher"));
    let vf = path(tiny_head("verifier"));
    let flags = [
        "--mode",
        "chat,auto",
        "--switcher",
        sw,
        "--verifier",
        vf,
        "--paths",
        "2",
        "--select",
        "first,vote,best,weighted",
        "--temperature",
        "1",
        "--seed",
        "7",
        "--think-budget",
        "1,3",
        "--json",
    ];
    let full = tmp("full.jsonl");
    let (stdout, _) = eval(&tasks, &[&flags[..], &["--out", path(&full)]].concat());
    let full_report: Value = serde_json::from_str(&stdout).unwrap();

    // Interrupted: one task done, then half of a record written when the process died.
    let part = tmp("part.jsonl");
    eval(
        &tasks,
        &[&flags[..], &["--out", path(&part), "--limit", "1"]].concat(),
    );
    let cut = std::fs::read_to_string(&full)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let mut text = std::fs::read_to_string(&part).unwrap();
    text.push_str(&cut[..cut.len() / 2]);
    std::fs::write(&part, text).unwrap();
    // Without --resume an existing file is refused.
    let refused = kestrel(
        &[&[
            "eval",
            path(tiny_model()),
            "--tasks",
            path(&tasks),
            "--out",
            path(&part),
        ][..]]
        .concat(),
    );
    assert!(!refused.status.success());
    let (stdout, _) = eval(
        &tasks,
        &[&flags[..], &["--out", path(&part), "--resume"]].concat(),
    );
    let resumed: Value = serde_json::from_str(&stdout).unwrap();

    let a: Vec<Value> = records(&full).into_iter().map(untimed).collect();
    let b: Vec<Value> = records(&part).into_iter().map(untimed).collect();
    assert_eq!(a.len(), 3 * 2 * 2 * 4);
    assert_eq!(a, b);
    let rows = |r: &Value| -> Vec<Value> {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let mut row = row.clone();
                for k in ["wall_s", "ttft_ms", "decode_tok_s"] {
                    row.as_object_mut().unwrap().remove(k);
                }
                row
            })
            .collect()
    };
    assert_eq!(rows(&full_report), rows(&resumed));
    // Auto mode's routing figures agree with the records.
    let auto: Vec<&Value> = a
        .iter()
        .filter(|r| r["mode"] == "auto" && r["select"] == "first" && r["think_budget"] == 1)
        .collect();
    let routed = auto.iter().filter(|r| r["routed"] == "reasoning").count() as f64 / 3.0;
    let right = auto.iter().filter(|r| r["routed"] == r["kind"]).count() as f64 / 3.0;
    let row = full_report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mode"] == "auto")
        .unwrap();
    assert_eq!(row["routed_reasoning"].as_f64(), Some(routed));
    assert_eq!(row["routing_accuracy"].as_f64(), Some(right));
    assert_eq!(row["routing_labelled"].as_u64(), Some(3));
}

#[test]
fn flag_errors_are_one_line() {
    let tasks = write_tasks("err_tasks.jsonl", &["1", "2", "3"]);
    for (extra, want) in [
        (&["--select", "best"][..], "--verifier"),
        (&["--mode", "auto"][..], "--adapter"),
        (&["--paths", "0"][..], "--paths"),
        (&["--answer-regex", "("][..], "--answer-regex"),
    ] {
        let out = kestrel(
            &[
                &["eval", path(tiny_model()), "--tasks", path(&tasks)][..],
                extra,
            ]
            .concat(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.starts_with("error: ") && err.contains(want), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
