//! `kestrel bench` end to end on the tiny Qwen2 fixture (converted from its Q4_0 GGUF): the JSON
//! schema (required keys present, numbers finite and positive, the detail rows consistent with
//! the flags), the LoRA on/off figures with a converted PEFT fixture adapter, and errors (a
//! missing adapter, bad flags) that exit 1 without a panic.
//! Needs a GPU adapter (lavapipe on CI); a missing one fails the test.

mod common;

use std::path::Path;
use std::process::Output;

use common::{kestrel, path, tiny_adapter, tiny_model};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    let mut all = vec!["bench", path(tiny_model())];
    all.extend_from_slice(args);
    kestrel(&all)
}

fn positive(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number: {}", v[key]));
    assert!(
        x.is_finite() && x > 0.0,
        "`{key}` = {x} is not finite and positive"
    );
    x
}

#[test]
fn json_report_has_the_schema_and_sane_numbers() {
    let out = bench(&[
        "--json",
        "--prompt-tokens",
        "8,12",
        "--gen-tokens",
        "4",
        "--paths",
        "1,2,4",
        "--repeat",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kestrel bench failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}"));

    for key in [
        "prefill_tok_s",
        "decode_tok_s",
        "ttft_ms",
        "decode_step_ms",
        "achieved_gb_s",
        "roofline_gb_s",
        "roofline_fraction",
        "gpu_probe_gb_s",
        "dispatches_per_token",
        "dispatches_per_layer",
        "submits_per_token",
        "peak_gpu_bytes",
        "rss_bytes",
        "bytes_per_token",
    ] {
        positive(&r, key);
    }
    // The derived figures are what they claim to be.
    let achieved = positive(&r, "bytes_per_token") * positive(&r, "decode_tok_s") / 1e9;
    assert!((positive(&r, "achieved_gb_s") - achieved).abs() <= 1e-9 * achieved.max(1.0));
    let fraction = positive(&r, "achieved_gb_s") / positive(&r, "roofline_gb_s");
    assert!((positive(&r, "roofline_fraction") - fraction).abs() <= 1e-9);
    // Decode reads every weight once; the tiny model is tied, so bytes/token == weights on GPU.
    assert!(positive(&r, "bytes_per_token") >= 0.9 * positive(&r["model"], "weight_bytes"));
    assert!(positive(&r, "peak_gpu_bytes") >= positive(&r["model"], "weight_bytes"));
    let parts = &r["gpu_bytes"];
    assert!(positive(parts, "model") >= positive(&r["model"], "weight_bytes"));
    positive(parts, "session");
    let sum: u64 = ["model", "adapter", "session", "runs"]
        .iter()
        .map(|k| parts[k].as_u64().unwrap_or(u64::MAX / 8))
        .sum();
    assert_eq!(Some(sum), r["peak_gpu_bytes"].as_u64());
    let layers = positive(&r["model"], "layers");
    assert!(
        (positive(&r, "dispatches_per_layer") * layers - positive(&r, "dispatches_per_token"))
            .abs()
            < 1e-6
    );

    let ratios = r["path_step_ratio"]
        .as_object()
        .expect("path_step_ratio is an object");
    let keys: Vec<&str> = ratios.keys().map(String::as_str).collect();
    assert_eq!(keys, ["1", "2", "4"]);
    assert_eq!(ratios["1"].as_f64(), Some(1.0));
    for (n, v) in ratios {
        let x = v.as_f64().unwrap_or(f64::NAN);
        assert!(x.is_finite() && x > 0.0, "path_step_ratio[{n}] = {v}");
    }
    assert_eq!(r["path_step_source"], "engine");
    // Tokens are chosen on the device: a step reads back (token, flag, logprob, 0) per path.
    let readback = r["readback_bytes_per_step"]
        .as_object()
        .expect("readback_bytes_per_step is an object");
    assert_eq!(
        readback.keys().map(String::as_str).collect::<Vec<_>>(),
        ["1", "2", "4"]
    );
    for (n, v) in readback {
        let n: f64 = n.parse().expect("N");
        assert_eq!(v.as_f64(), Some(16.0 * n), "readback_bytes_per_step[{n}]");
    }
    let rows = r["paths"].as_array().expect("paths rows");
    assert_eq!(rows.len(), 3);
    for row in rows {
        let n = positive(row, "n");
        let step = positive(&row["step_ms"], "median");
        assert_eq!(
            row["step_ms"]["n"].as_u64(),
            Some(2),
            "one sample per repeat"
        );
        assert!((positive(row, "tok_s") - n * 1e3 / step).abs() <= 1e-9 * positive(row, "tok_s"));
        assert_eq!(row["ratio"], ratios[&format!("{n}")]);
    }
    assert!(
        r.get("lora_step_ratio").is_none() && r.get("ttft_reasoning_shared_ms").is_none(),
        "no adapter, so no LoRA ratio"
    );

    let prefill = r["prefill"].as_array().expect("prefill rows");
    assert_eq!(
        prefill
            .iter()
            .map(|p| p["prompt_tokens"].as_u64())
            .collect::<Vec<_>>(),
        [Some(8), Some(12)]
    );
    for p in prefill {
        assert_eq!(p["tok_s"]["n"].as_u64(), Some(2));
        let s = &p["tok_s"];
        assert!(
            positive(s, "min") <= positive(s, "median")
                && positive(s, "median") <= positive(s, "max")
        );
    }
    assert_eq!(r["prefill_tok_s"], prefill[0]["tok_s"]["median"]);
    assert_eq!(r["decode"]["gen_tokens"].as_u64(), Some(4));
    assert!(r["device"]["adapter"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let source = r["roofline_source"].as_str().unwrap_or_default();
    if r["device"]["device_type"] == "Cpu" {
        assert_eq!(source, "host_read");
        assert_eq!(r["roofline_gb_s"], r["host_read_gb_s"]);
    } else {
        assert_eq!(source, "gpu_probe");
        assert_eq!(r["roofline_gb_s"], r["gpu_probe_gb_s"]);
    }
    let targets = r["targets"].as_array().expect("targets array");
    let metrics: Vec<&str> = targets
        .iter()
        .filter_map(|t| t["metric"].as_str())
        .collect();
    assert_eq!(
        metrics,
        ["roofline_fraction", "dispatches_per_layer", "decode_tok_s"],
        "no N = 8 measured, so no 8-path target"
    );
    for t in targets {
        let (v, b) = (
            t["value"].as_f64().unwrap_or(f64::NAN),
            t["bound"].as_f64().unwrap_or(f64::NAN),
        );
        let met = if t["relation"] == "≥" {
            v >= b
        } else {
            v <= b
        };
        assert_eq!(t["met"].as_bool(), Some(met), "{t}");
    }
    // The table is printed on stderr beside the JSON.
    assert!(
        stderr.contains("decode (4 after 8)"),
        "table missing from stderr: {stderr}"
    );
}

#[test]
fn an_adapter_adds_the_lora_ratio() {
    let adapter = tiny_adapter().to_str().expect("utf-8 path");
    let out = bench(&[
        "--json",
        "--adapter",
        adapter,
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "3",
        "--paths",
        "1",
        "--repeat",
        "2",
        "--lora-rounds",
        "3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kestrel bench --adapter failed: {stderr}"
    );
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}"));
    // lora_step_ratio: the median of the paired rounds' on/off ratios, which lie within what the
    // rounds' own off and on step ranges allow.
    let step_ratio = positive(&r, "lora_step_ratio");
    let mut ratios: Vec<f64> = r["lora"]["step_ratios"]
        .as_array()
        .expect("lora.step_ratios")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect();
    assert_eq!(ratios.len(), 3, "one ratio per paired round");
    assert_eq!(r["lora"]["rounds"].as_u64(), Some(3));
    assert_eq!(r["lora"]["steps_per_run"].as_u64(), Some(2));
    assert_eq!(r["settings"]["lora_rounds"].as_u64(), Some(3));
    ratios.sort_by(f64::total_cmp);
    assert!((step_ratio - ratios[1]).abs() <= 1e-9 * step_ratio);
    let on = &r["lora"]["on_step_ms"];
    let off = &r["lora"]["off_step_ms"];
    assert_eq!(on["n"].as_u64(), Some(3));
    assert_eq!(off["n"].as_u64(), Some(3));
    for q in &ratios {
        assert!(
            *q >= positive(on, "min") / positive(off, "max") * (1.0 - 1e-9)
                && *q <= positive(on, "max") / positive(off, "min") * (1.0 + 1e-9),
            "ratio {q} outside the runs' ranges"
        );
    }
    // The LoRA target sits with the others, its bound from the adapter's bytes.
    let target = r["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["metric"] == "lora_step_ratio")
        .expect("a lora_step_ratio target");
    assert_eq!(target["value"].as_f64(), Some(step_ratio));
    let bound = 1.0 + 1.1 * positive(&r, "lora_bytes_ratio");
    assert!((positive(target, "bound") - bound).abs() <= 1e-12);
    assert_eq!(target["met"].as_bool(), Some(step_ratio <= bound));
    let bytes_ratio = positive(&r, "lora_bytes_ratio");
    assert!(
        (bytes_ratio - positive(&r["lora"], "bytes") / positive(&r["model"], "weight_bytes")).abs()
            <= 1e-12
    );
    assert_eq!(r["lora"]["rank"].as_u64(), Some(8));
    assert!(
        positive(&r["gpu_bytes"], "adapter") >= positive(&r["lora"], "bytes"),
        "loading the adapter allocates at least its A and B"
    );
    assert_eq!(r["lora"]["decode"]["tok_s"]["n"].as_u64(), Some(2));
    // The LoRA shrink/expand adds work to each step, never removes it.
    assert!(positive(&r["lora"], "dispatches_per_token") >= positive(&r, "dispatches_per_token"));
    assert!(stderr.contains("LoRA on / off step"), "{stderr}");
    // Reasoning TTFT after a chat request: with KV sharing and with the prompt re-encoded.
    let shared = positive(&r, "ttft_reasoning_shared_ms");
    let reencode = positive(&r, "ttft_reasoning_reencode_ms");
    assert_eq!(
        positive(&r["reasoning_ttft"]["shared_ms"], "median"),
        shared
    );
    assert_eq!(
        positive(&r["reasoning_ttft"]["reencode_ms"], "median"),
        reencode
    );
    assert_eq!(r["reasoning_ttft"]["shared_ms"]["n"].as_u64(), Some(2));
    assert_eq!(r["reasoning_ttft"]["prompt_tokens"].as_u64(), Some(8));
    assert!(stderr.contains("reasoning TTFT"), "{stderr}");
}

#[test]
fn a_missing_adapter_file_is_an_error() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no_such_adapter.kst");
    let out = bench(&[
        "--adapter",
        missing.to_str().expect("utf-8 path"),
        "--repeat",
        "1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("loading adapter") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_are_errors_not_panics() {
    for args in [
        &["--gen-tokens", "1"][..],
        &["--repeat", "0"],
        &["--lora-rounds", "0"],
        &["--prompt-tokens", "0"],
        &["--paths", "17"],
        &["--prompt-tokens", "100000"],
        // usize::MAX once wrapped the context check and panicked allocating the prompt.
        &["--prompt-tokens", "18446744073709551615"],
        &["--prompt-tokens", "8,18446744073709551615"],
    ] {
        let out = bench(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error:") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn noop_backend_reports_host_cost_per_step_keyed_by_n() {
    let noop = |extra: &[&str]| -> (Value, String) {
        let mut args = vec![
            "--backend",
            "noop",
            "--json",
            "--prompt-tokens",
            "8",
            "--gen-tokens",
            "4",
            "--paths",
            "1,2",
            "--repeat",
            "2",
        ];
        args.extend_from_slice(extra);
        let out = bench(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kestrel bench --backend noop failed: {stderr}"
        );
        let r = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}"));
        (r, stderr.into_owned())
    };
    let (r, stderr) = noop(&[]);
    assert_eq!(r["backend"], "noop");
    assert_eq!(r["device"]["backend"], "Noop");
    assert_eq!(
        r["device"]["device_type"], "DiscreteGpu",
        "the noop backend stands for a GPU, so the engine takes its GPU variants"
    );
    positive(&r, "host_us_per_prefill_chunk");
    assert_eq!(r["prefill_chunk_tokens"].as_u64(), Some(128));
    for key in [
        "host_us_per_step",
        "dispatches_per_step",
        "us_per_dispatch",
        "readback_bytes_per_step",
    ] {
        let obj = r[key]
            .as_object()
            .unwrap_or_else(|| panic!("`{key}` is not an object keyed by N: {}", r[key]));
        assert_eq!(
            obj.keys().map(String::as_str).collect::<Vec<_>>(),
            ["1", "2"],
            "{key}"
        );
        for n in ["1", "2"] {
            positive(&r[key], n);
        }
    }
    for n in ["1", "2"] {
        let us = positive(&r["host_us_per_step"], n);
        let per = positive(&r["us_per_dispatch"], n);
        let d = positive(&r["dispatches_per_step"], n);
        assert!((us / d - per).abs() <= 1e-9 * per, "N = {n}: µs / dispatch");
    }
    // Tokens are chosen on the device: 16 bytes a path; with --pick-on-cpu the [N, vocab] f32
    // logits come back instead.
    assert_eq!(r["readback_bytes_per_step"]["2"].as_f64(), Some(32.0));
    let vocab = positive(&r["model"], "vocab_size");
    let (cpu, _) = noop(&["--pick-on-cpu"]);
    assert!(positive(&cpu["readback_bytes_per_step"], "2") >= 2.0 * vocab * 4.0);
    let steps = r["steps"].as_array().expect("steps rows");
    assert_eq!(steps[0]["sampling"], "greedy");
    assert_eq!(steps[1]["sampling"], "temperature 0.7");
    assert_eq!(
        steps[1]["host_us"]["n"].as_u64(),
        Some(2),
        "one sample per repeat"
    );
    // No N = 8 measured: only the N = 1 host-cost target applies.
    let metrics: Vec<&str> = r["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["metric"].as_str())
        .collect();
    assert_eq!(metrics, ["host_us_per_step.1"]);
    assert!(r["roofline"]
        .as_str()
        .is_some_and(|s| s.starts_with("skipped")));
    assert!(
        stderr.contains("roofline probe skipped") && stderr.contains("host / decode step, N = 2"),
        "{stderr}"
    );
}

#[test]
fn noop_backend_refuses_an_adapter() {
    let adapter = tiny_adapter().to_str().expect("utf-8 path");
    let out = bench(&["--backend", "noop", "--adapter", adapter]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("drop --adapter") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
