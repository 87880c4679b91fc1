//! Parallel reasoning paths: N paths decoded as one batch over the shared prompt KV equal
//! independent single-path runs (same tokens for the same random stream), and permuting nothing
//! but the path index permutes the outputs.

use kestrel::{GenerateParams, Mode, Sampling};
use kestrel_tests::*;

fn engine() -> kestrel::Engine {
    let dir = fixtures().join("tiny/qwen2_tied_gqa");
    let r = json(&dir.join("ref.json"));
    let kst = convert_gguf(
        &dir.join(r["gguf"]["Q4_0"]["file"].as_str().unwrap()),
        "paths-qwen2",
    );
    let mut e = load_engine(&kst);
    let akst = convert_peft(&dir.join("adapters/r8_all"), &kst, "paths-qwen2-a").unwrap();
    e.load_adapter(akst).unwrap();
    e
}

#[test]
fn batched_paths_equal_independent_runs() {
    let e = engine();
    let prompt = ids(&json(&fixtures().join("tiny/qwen2_tied_gqa/ref.json"))["input_ids"]);
    for mode in [Mode::Chat, Mode::Reasoning] {
        // Greedy: every path equals the single-path greedy continuation.
        let params = GenerateParams {
            max_tokens: 12,
            stop_tokens: Some(vec![]),
            mode,
            ..Default::default()
        };
        let single = e
            .session()
            .unwrap()
            .generate(&prompt, &params, |_| true)
            .unwrap()
            .0;
        for n in [1, 3, 8] {
            let paths = e
                .session()
                .unwrap()
                .generate_paths(&prompt, n, &params)
                .unwrap();
            assert_eq!(paths.len(), n);
            for p in &paths {
                assert_eq!(p.tokens, single, "{mode:?}, {n} greedy paths");
            }
        }
        // Sampled: path 0 of a batch follows the same random stream as a single-path run.
        let sampled = GenerateParams {
            sampling: Sampling {
                temperature: 0.8,
                top_k: 50,
                top_p: 0.95,
                seed: 3,
            },
            ..params.clone()
        };
        let single = e
            .session()
            .unwrap()
            .generate(&prompt, &sampled, |_| true)
            .unwrap()
            .0;
        let paths = e
            .session()
            .unwrap()
            .generate_paths(&prompt, 4, &sampled)
            .unwrap();
        assert_eq!(paths[0].tokens, single, "{mode:?}: sampled path 0");
        assert!(
            paths.iter().any(|p| p.tokens != single),
            "{mode:?}: sampled paths should differ"
        );
        // Deterministic for a seed.
        let again = e
            .session()
            .unwrap()
            .generate_paths(&prompt, 4, &sampled)
            .unwrap();
        assert_eq!(paths, again);
    }
}

#[test]
fn path_limits_are_errors() {
    let e = engine();
    let mut s = e.session().unwrap();
    let params = GenerateParams {
        max_tokens: 4,
        ..Default::default()
    };
    assert!(s.generate_paths(&[1, 2], 0, &params).is_err());
    assert!(s
        .generate_paths(&[1, 2], kestrel::MAX_PATHS + 1, &params)
        .is_err());
    assert!(s.generate_paths(&[], 2, &params).is_err());
}
