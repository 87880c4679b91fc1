//! Tiny random Qwen2/Llama HF checkpoints (f32 safetensors) converted with `--dtype f32` and
//! `--dtype f16`: the engine's logits match transformers' (nMSE ≤ 1e-5 for f32 weights, ≤ 1e-3 for
//! f16) and the greedy continuation is identical.

use kestrel_tests::*;

fn check(model: &str, dtype: &str, tol: f64) {
    let dir = fixtures().join("tiny").join(model);
    let r = json(&dir.join("ref.json"));
    let kst = convert_hf(&dir.join("hf"), dtype, &format!("hf-{model}-{dtype}"));
    let engine = load_engine(&kst);
    let input = ids(&r["input_ids"]);
    let mut session = engine.session().unwrap();
    let logits = session.logits(&input).unwrap();
    let want = npy(&dir.join(r["logits"]["file"].as_str().unwrap()));
    let e = nmse(&logits, &want.data);
    eprintln!("{model} {dtype}: logits nMSE {e:.3e}");
    assert!(e <= tol, "{model} {dtype}: logits nMSE {e:.3e} > {tol:e}");
    let params = kestrel::GenerateParams {
        max_tokens: 16,
        stop_tokens: Some(vec![]),
        ..Default::default()
    };
    let (got, _) = session.generate(&input, &params, |_| true).unwrap();
    assert_eq!(
        got,
        ids(&r["greedy"]["ids"]),
        "{model} {dtype}: greedy continuation"
    );
}

#[test]
fn qwen2_tied_gqa_f32() {
    check("qwen2_tied_gqa", "f32", 1e-5);
}

#[test]
fn qwen2_tied_gqa_f16() {
    check("qwen2_tied_gqa", "f16", 1e-3);
}

#[test]
fn qwen2_untied_1kv_f32() {
    check("qwen2_untied_1kv", "f32", 1e-5);
}

#[test]
fn qwen2_untied_1kv_f16() {
    check("qwen2_untied_1kv", "f16", 1e-3);
}

#[test]
fn llama_f32() {
    check("llama", "f32", 1e-5);
}

#[test]
fn llama_f16() {
    check("llama", "f16", 1e-3);
}
