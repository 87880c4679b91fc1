//! Parallel reasoning paths: N paths decoded as one batch over the shared prompt KV equal
//! independent single-path runs (same tokens for the same random stream), and permuting nothing
//! but the path index permutes the outputs.

use kestrel::{GenerateParams, Mode, Sampling};
use kestrel_tests::*;

fn engine() -> kestrel::Engine {
    engine_with(kestrel::EngineOptions::default(), "paths-qwen2")
}

fn engine_with(options: kestrel::EngineOptions, name: &str) -> kestrel::Engine {
    let dir = fixtures().join("tiny/qwen2_tied_gqa");
    let r = json(&dir.join("ref.json"));
    let kst = convert_gguf(&dir.join(r["gguf"]["Q4_0"]["file"].as_str().unwrap()), name);
    let mut e = kestrel::Engine::load_on(gpu(), &kst, options).unwrap();
    let akst = convert_peft(&dir.join("adapters/r8_all"), &kst, &format!("{name}-a")).unwrap();
    e.load_adapter(akst).unwrap();
    e
}

/// Tokens chosen on the device in each step's submit equal the CPU reference sampler's choice
/// from the read-back logits: same seed, same tokens, for one path and for a batch, greedy and
/// with every sampling filter.
#[test]
fn device_sampling_equals_the_cpu_reference() {
    let device = engine();
    let cpu = engine_with(
        kestrel::EngineOptions {
            pick_on_cpu: true,
            ..Default::default()
        },
        "paths-qwen2-cpu",
    );
    let prompt = ids(&json(&fixtures().join("tiny/qwen2_tied_gqa/ref.json"))["input_ids"]);
    let samplings = [
        Sampling::greedy(),
        Sampling {
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
            seed: 3,
        },
        Sampling {
            temperature: 1.3,
            top_k: 0,
            top_p: 1.0,
            seed: 11,
        },
        Sampling {
            temperature: 0.7,
            top_k: 5,
            top_p: 1.0,
            seed: u64::MAX,
        },
        Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            seed: 1 << 40,
        },
    ];
    let mut differ = 0;
    let mut sampled_logprobs = 0;
    for mode in [Mode::Chat, Mode::Reasoning] {
        for sampling in samplings {
            let params = GenerateParams {
                max_tokens: 16,
                stop_tokens: Some(vec![]),
                mode,
                sampling,
                ..Default::default()
            };
            // (tokens, logprobs) per path.
            let run = |e: &kestrel::Engine, n: usize| -> Vec<(Vec<u32>, Vec<f32>)> {
                let mut s = e.session().unwrap();
                if n == 1 {
                    let mut logprobs = Vec::new();
                    let (ids, _) = s
                        .generate(&prompt, &params, |t| {
                            logprobs.push(t.logprob);
                            true
                        })
                        .unwrap();
                    vec![(ids, logprobs)]
                } else {
                    let paths = s.generate_paths(&prompt, n, &params).unwrap();
                    paths.into_iter().map(|p| (p.tokens, p.logprobs)).collect()
                }
            };
            for n in [1, 3, 8] {
                let (d, c) = (run(&device, n), run(&cpu, n));
                let tokens =
                    |r: &[(Vec<u32>, Vec<f32>)]| r.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
                assert_eq!(tokens(&d), tokens(&c), "{mode:?}, {sampling:?}, {n} paths");
                // Logprobs: ≤ 0, 0 when greedy, and the device's within 1e-5 of the reference's
                // (`ln` is not correctly rounded everywhere).
                for ((_, ld), (_, lc)) in d.iter().zip(&c) {
                    assert_eq!(ld.len(), lc.len());
                    for (a, b) in ld.iter().zip(lc) {
                        assert!(
                            *a <= 0.0 && (a - b).abs() <= 1e-5,
                            "{sampling:?}: {a} vs {b}"
                        );
                        if sampling.is_greedy() {
                            assert_eq!(*a, 0.0);
                        }
                    }
                }
                differ += usize::from(d.iter().any(|t| t.0 != d[0].0));
                sampled_logprobs += d.iter().flat_map(|p| &p.1).filter(|&&lp| lp < 0.0).count();
            }
        }
    }
    // The sampled batches explore (so the comparison covered distinct random streams).
    assert!(differ >= 4, "only {differ} batches had distinct paths");
    assert!(
        sampled_logprobs > 100,
        "only {sampled_logprobs} tokens had logprob < 0"
    );
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
