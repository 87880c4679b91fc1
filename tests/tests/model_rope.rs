//! RoPE variants end to end: tiny random checkpoints saved by transformers 5.x (`rope_parameters`
//! form; `tests/fixtures/rope`, gen_rope_fixtures.py) converted at f32 and run over 96 positions
//! — past `original_max_position_embeddings` (32 for yarn, 64 for llama3) — match transformers'
//! logits (nMSE ≤ 1e-5) for default (θ = 1e6), linear, dynamic, llama3 and yarn. The same
//! checkpoint rewritten into the legacy `rope_theta` / `rope_scaling` form gives the same logits.

use std::path::Path;

use kestrel_tests::*;
use serde_json::Value;

/// An HF dir in scratch: the case's base weights + tokenizer, and `config`.
fn hf_dir(root: &Path, base: &str, config: &Value, name: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(root.join(base).join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir
}

/// transformers-5 `rope_parameters` → legacy top-level `rope_theta` + `rope_scaling` (`type`).
fn legacy(cfg: &Value) -> Value {
    let mut c = cfg.as_object().unwrap().clone();
    let mut rp = c["rope_parameters"].as_object().unwrap().clone();
    c.remove("rope_parameters");
    c.insert("rope_theta".into(), rp.remove("rope_theta").unwrap());
    let ty = rp.remove("rope_type").unwrap();
    if ty != "default" {
        rp.insert("type".into(), ty);
        c.insert("rope_scaling".into(), Value::Object(rp));
    }
    Value::Object(c)
}

fn check(case: &str) {
    let root = fixtures().join("rope");
    let r = json(&root.join("ref.json"));
    let entry = &r["cases"][case];
    let seq = ids(&r["seq_ids"]);
    let rows: Vec<usize> = ids(&r["rows"]).into_iter().map(|x| x as usize).collect();
    let want = npy(&root.join(entry["logits"]["file"].as_str().unwrap()));
    let cfg = json(&root.join(entry["config"].as_str().unwrap()));
    let base = entry["base"].as_str().unwrap();
    for (form, cfg) in [("rope_parameters", cfg.clone()), ("legacy", legacy(&cfg))] {
        let dir = hf_dir(&root, base, &cfg, &format!("rope-{case}-{form}-hf"));
        let kst = convert_hf(&dir, "f32", &format!("rope-{case}-{form}"));
        let engine = load_engine(&kst);
        let mut session = engine.session().unwrap();
        let logits = session.logits(&seq).unwrap();
        let v = logits.len() / seq.len();
        let picked: Vec<f32> = rows
            .iter()
            .flat_map(|&t| logits[t * v..(t + 1) * v].iter().copied())
            .collect();
        let e = nmse(&picked, &want.data);
        eprintln!(
            "{case} ({form}): logits nMSE {e:.3e} over {} rows",
            rows.len()
        );
        assert!(e <= 1e-5, "{case} ({form}): logits nMSE {e:.3e} > 1e-5");
        // The rows past original_max_position_embeddings on their own.
        let tail = rows.iter().position(|&t| t >= 64).unwrap();
        let e_tail = nmse(&picked[tail * v..], &want.data[tail * v..]);
        assert!(
            e_tail <= 1e-5,
            "{case} ({form}): positions ≥ 64 nMSE {e_tail:.3e}"
        );
    }
}

#[test]
fn default_theta_1e6() {
    check("default");
}

#[test]
fn linear() {
    check("linear");
}

#[test]
fn dynamic_within_max_position_embeddings() {
    check("dynamic");
}

#[test]
fn llama3_past_original_context() {
    check("llama3");
}

#[test]
fn yarn_past_original_context() {
    check("yarn");
}
