//! `kestrel train-head` on the tiny Qwen2 fixture: the head it writes, loaded by the engine,
//! gives through `Session::switch` and the path scores of `generate_paths` the probabilities of
//! the fitted model on the features it trained on (within 1e-5); cached features refit to the
//! same file; the switcher's stored threshold decides. (The solver itself is tested on a
//! planted direction in `train_head::logreg`.)
//! Needs a GPU adapter (lavapipe on CI); a missing one fails the test.

mod common;

use std::path::{Path, PathBuf};

use common::{kestrel, path, tiny_adapter, tiny_model};
use kestrel::{Engine, EngineOptions, GenerateParams, HeadPooling, Message, Mode, Sampling};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("train_head_cli_{name}"));
    let _ = std::fs::remove_file(&p);
    p
}

fn run(args: &[&str]) -> Value {
    let out = kestrel(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The head file's weight rows, biases and threshold.
fn head(p: &Path) -> (Vec<Vec<f64>>, Vec<f64>, Option<f64>) {
    let f = kestrel_formats::KstFile::open(p).unwrap();
    let w = f.tensor("weight").unwrap();
    let hidden = w.shape[1];
    let w: Vec<f64> = w.to_f32_vec().unwrap().into_iter().map(f64::from).collect();
    let b = f
        .tensor("bias")
        .unwrap()
        .to_f32_vec()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    let t = f.meta("head").unwrap()["threshold"].as_f64();
    (w.chunks(hidden).map(<[f64]>::to_vec).collect(), b, t)
}

fn features(p: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["x"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn logit(w: &[f64], b: f64, x: &[f64]) -> f64 {
    w.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + b
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

#[test]
fn a_trained_switcher_gives_the_fitted_probabilities_through_switch() {
    let prompts: Vec<String> = (0..16)
        .map(|i| format!("question {i}: what is {} times {i}?", i * 7))
        .collect();
    let data = tmp("prompts.jsonl");
    let text: String = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let kind = if i % 3 == 0 { "chat" } else { "reasoning" };
            serde_json::json!({"id": i, "prompt": p, "kind": kind}).to_string() + "\n"
        })
        .collect();
    std::fs::write(&data, text).unwrap();
    let (sw, sw2, feats) = (
        tmp("switcher.kst"),
        tmp("switcher2.kst"),
        tmp("switcher_features.jsonl"),
    );
    let model = path(tiny_model());
    let common = [
        "--kind",
        "switcher",
        "--val-fraction",
        "0.25",
        "--l2",
        "0.1",
        "--threshold",
        "0.45",
        "--json",
    ];
    let report = run(&[
        &[
            "train-head",
            model,
            "--data",
            path(&data),
            "-o",
            path(&sw),
            "--features-out",
            path(&feats),
        ][..],
        &common,
    ]
    .concat());
    assert_eq!(
        report["train"]["examples"].as_u64().unwrap() + report["val"]["examples"].as_u64().unwrap(),
        16
    );
    assert_eq!(report["val"]["examples"], 4);
    assert!(report["train"]["auc"].as_f64().is_some());
    // Cached features refit to the same bytes, without the model running.
    run(&[
        &[
            "train-head",
            model,
            "--features-in",
            path(&feats),
            "-o",
            path(&sw2),
        ][..],
        &common,
    ]
    .concat());
    assert_eq!(std::fs::read(&sw).unwrap(), std::fs::read(&sw2).unwrap());

    let (w, b, threshold) = head(&sw);
    assert_eq!(threshold, Some(f64::from(0.45f32)));
    assert!(
        w[0].iter().all(|&v| v == 0.0) && b[0] == 0.0,
        "the chat row is zero"
    );
    let x = features(&feats);
    let mut engine = Engine::load(tiny_model(), EngineOptions::default()).unwrap();
    engine.load_head(&sw).unwrap();
    let mut session = engine.session().unwrap();
    let mut both = [false; 2];
    for (p, x) in prompts.iter().zip(&x) {
        let prompt = engine.encode_chat(&[Message::new("user", p)]).unwrap();
        let d = session.switch(&prompt).unwrap();
        let want = sigmoid(logit(&w[1], b[1], x) - logit(&w[0], b[0], x));
        let got = f64::from(d.reasoning_prob());
        assert!((got - want).abs() <= 1e-5, "{got} vs {want}");
        if (want - 0.45).abs() > 1e-4 {
            assert_eq!(d.mode == Mode::Reasoning, want >= 0.45, "p = {want}");
        }
        both[usize::from(d.mode == Mode::Reasoning)] = true;
    }
    assert!(both[0] || both[1]);
}

#[test]
fn a_trained_verifier_gives_the_fitted_probabilities_as_path_scores() {
    let data = tmp("paths.jsonl");
    let text: String = (0..12)
        .map(|i| {
            serde_json::json!({
                "id": format!("p{}", i / 3),
                "prompt": format!("problem {}", i / 3),
                "completion": format!("thinking {i}</think>the answer is {}", i % 4),
                "correct": i % 2 == 0,
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&data, text).unwrap();
    let (vf, feats) = (tmp("verifier.kst"), tmp("verifier_features.jsonl"));
    let report = run(&[
        "train-head",
        path(tiny_model()),
        "--kind",
        "verifier",
        "--adapter",
        path(tiny_adapter()),
        "--data",
        path(&data),
        "-o",
        path(&vf),
        "--features-out",
        path(&feats),
        "--val-fraction",
        "0.25",
        "--l2",
        "0.5",
        "--json",
    ]);
    for k in ["problems", "first", "vote", "best", "weighted"] {
        assert!(report["selection"][k].as_f64().is_some(), "{k}: {report}");
    }
    assert_eq!(report["selection"]["problems"], 1);

    let (w, b, _) = head(&vf);
    let mut engine = Engine::load(tiny_model(), EngineOptions::default()).unwrap();
    let adapter = engine.load_adapter(tiny_adapter()).unwrap();
    engine.load_head(&vf).unwrap();
    engine.enable_features(HeadPooling::Last).unwrap();
    let mut session = engine.session().unwrap();
    // The cached features of a given path are the engine's features of it.
    let x = features(&feats);
    let prompt = engine
        .encode_chat(&[Message::new("user", "problem 0")])
        .unwrap();
    let path0 = engine
        .tokenizer()
        .encode("thinking 0</think>the answer is 0", false)
        .unwrap();
    let got = session
        .features_with(
            &[prompt.clone(), path0].concat(),
            Some(adapter),
            prompt.len(),
        )
        .unwrap();
    assert!(got
        .iter()
        .zip(&x[0])
        .all(|(a, b)| (f64::from(*a) - b).abs() <= 1e-6));
    // Sampled paths: the head's score and the fitted model on the path's features agree.
    let params = GenerateParams {
        max_tokens: 5,
        mode: Mode::Reasoning,
        sampling: Sampling {
            temperature: 1.0,
            seed: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    for p in session.generate_paths(&prompt, 3, &params).unwrap() {
        let f: Vec<f64> = p.features.unwrap().into_iter().map(f64::from).collect();
        let want = sigmoid(logit(&w[0], b[0], &f));
        let got = f64::from(kestrel::sigmoid(p.score.unwrap()));
        assert!((got - want).abs() <= 1e-5, "{got} vs {want}");
    }
}
