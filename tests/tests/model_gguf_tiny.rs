//! Tiny random Qwen2/Llama checkpoints written as GGUF Q4_0/Q4_1 (llama.cpp conventions, gguf-py),
//! converted losslessly: the engine's logits equal transformers' (loading the same GGUF) up to
//! kernel error, and greedy continuations are identical wherever the reference margin allows.

use kestrel_tests::*;

fn check(model: &str, quant: &str) {
    let dir = fixtures().join("tiny").join(model);
    let r = json(&dir.join("ref.json"));
    let g = &r["gguf"][quant];
    let kst = convert_gguf(
        &dir.join(g["file"].as_str().unwrap()),
        &format!("gguf-{model}-{quant}"),
    );
    let engine = load_engine(&kst);
    let input = ids(&r["input_ids"]);
    let mut session = engine.session().unwrap();
    let logits = session.logits(&input).unwrap();
    let want = npy(&dir.join(g["logits"]["file"].as_str().unwrap()));
    let v = r["vocab_size"].as_u64().unwrap() as usize;
    assert_eq!(want.shape, vec![input.len(), v]);
    let e = nmse(&logits, &want.data);
    eprintln!("{model} {quant}: logits nMSE {e:.3e}");
    assert!(e <= 1e-3, "{model} {quant}: logits nMSE {e:.3e} > 1e-3");
    for (t, (a, b)) in logits.chunks(v).zip(want.data.chunks(v)).enumerate() {
        if top2_margin(b) > 1e-2 {
            assert_eq!(
                argmax(a),
                argmax(b),
                "{model} {quant}: top-1 differs at position {t}"
            );
        }
    }
    // Greedy continuation: identical tokens.
    let params = kestrel::GenerateParams {
        max_tokens: 16,
        stop_tokens: Some(vec![]),
        ..Default::default()
    };
    let (got, _) = session.generate(&input, &params, |_| true).unwrap();
    assert_eq!(
        got,
        ids(&g["greedy"]["ids"]),
        "{model} {quant}: greedy continuation"
    );
}

#[test]
fn qwen2_tied_gqa_q4_0() {
    check("qwen2_tied_gqa", "Q4_0");
}

#[test]
fn qwen2_tied_gqa_q4_1() {
    check("qwen2_tied_gqa", "Q4_1");
}

#[test]
fn qwen2_untied_1kv_q4_0() {
    check("qwen2_untied_1kv", "Q4_0");
}

#[test]
fn qwen2_untied_1kv_q4_1() {
    check("qwen2_untied_1kv", "Q4_1");
}

#[test]
fn llama_q4_0() {
    check("llama", "Q4_0");
}

#[test]
fn llama_q4_1() {
    check("llama", "Q4_1");
}
