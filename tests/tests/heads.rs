//! Switcher and verifier heads vs the fixture script's reference (`tests/fixtures/tiny/
//! qwen2_tied_gqa/heads`: transformers' final normed hidden states, pooled, times the head), and
//! what the engine builds on them: auto mode, verifier scores of reasoning paths, budget forcing.

use kestrel::{aggregate, Aggregation, Engine, GenerateParams, HeadKind, Mode, ThinkingBudget};
use kestrel_tests::*;

struct Case {
    engine: Engine,
    refs: serde_json::Value,
}

/// The tiny Qwen2 at f32 with both heads (and, with `adapter`, the r8 adapter) loaded.
fn case(name: &str, adapter: bool, options: kestrel::EngineOptions) -> Case {
    let dir = fixtures().join("tiny/qwen2_tied_gqa");
    let r = json(&dir.join("ref.json"));
    let kst = convert_hf(&dir.join("hf"), "f32", &format!("heads-{name}"));
    let mut engine = Engine::load_on(gpu(), &kst, options).unwrap();
    for kind in ["switcher", "verifier"] {
        let h = convert_head(
            &dir.join(r["heads"][kind]["dir"].as_str().unwrap()),
            &kst,
            &format!("heads-{name}-{kind}"),
        )
        .unwrap();
        engine.load_head(&h).unwrap();
    }
    if adapter {
        let a = convert_peft(
            &dir.join("adapters/r8_all"),
            &kst,
            &format!("heads-{name}-a"),
        )
        .unwrap();
        engine.load_adapter(&a).unwrap();
    }
    Case {
        engine,
        refs: r["heads"].clone(),
    }
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn switcher_and_verifier_match_the_reference() {
    let c = case("ref", false, kestrel::EngineOptions::default());
    let mut s = c.engine.session().unwrap();
    for case in ["input_ids", "adapter_prompt"] {
        let sw = &c.refs["switcher"]["cases"][case];
        let d = s.switch(&ids(&sw["ids"])).unwrap();
        let e = nmse(&d.logits, &floats(&sw["logits"]));
        eprintln!("switcher {case}: {:?} nMSE {e:.3e}", d.logits);
        assert!(e <= 1e-5, "switcher {case}: nMSE {e:.3e}");
        let want = match sw["label"].as_str().unwrap() {
            "reasoning" => Mode::Reasoning,
            _ => Mode::Chat,
        };
        assert_eq!(d.mode, want, "{case}");
        let e = nmse(&d.probs, &floats(&sw["softmax"]));
        assert!(e <= 1e-5, "switcher {case}: softmax nMSE {e:.3e}");
        assert_eq!(s.last_switch(), Some(&d));

        let vf = &c.refs["verifier"]["cases"][case];
        let score = s.score_with(&ids(&vf["ids"]), None, 0).unwrap();
        let e = nmse(&[score], &floats(&vf["logits"]));
        eprintln!("verifier {case}: {score} nMSE {e:.3e}");
        assert!(e <= 1e-5, "verifier {case}: nMSE {e:.3e}");
        let e = nmse(&[kestrel::sigmoid(score)], &floats(&vf["sigmoid"]));
        assert!(e <= 1e-5, "verifier {case}: sigmoid nMSE {e:.3e}");
    }
}

/// The switcher's mean comes from per-token rows; it must not depend on how the prompt was
/// split into prefill chunks or how much of it came from the session's cache.
#[test]
fn switcher_is_independent_of_chunking_and_the_prompt_cache() {
    let whole = case("chunk-a", false, kestrel::EngineOptions::default());
    let chunked = case(
        "chunk-b",
        false,
        kestrel::EngineOptions {
            prefill_chunk: 5,
            ..Default::default()
        },
    );
    let prompt = ids(&whole.refs["switcher"]["cases"]["input_ids"]["ids"]);
    let a = whole.engine.session().unwrap().switch(&prompt).unwrap();
    let mut s = chunked.engine.session().unwrap();
    let b = s.switch(&prompt).unwrap();
    assert!(
        nmse(&b.logits, &a.logits) <= 1e-10,
        "{:?} vs {:?}",
        b.logits,
        a.logits
    );
    // The same prompt again: all but its last token come from the cache.
    let again = s.switch(&prompt).unwrap();
    assert_eq!(s.timings().cached_tokens, prompt.len() - 1);
    assert!(nmse(&again.logits, &a.logits) <= 1e-10);
    // A prompt that shares only a prefix with the cache.
    let mut other = prompt.clone();
    other[7] = (other[7] + 1) % 300;
    let fresh = whole.engine.session().unwrap().switch(&other).unwrap();
    let cached = s.switch(&other).unwrap();
    assert_eq!(s.timings().cached_tokens, 7);
    assert!(nmse(&cached.logits, &fresh.logits) <= 1e-10);
    assert!(
        nmse(&cached.logits, &a.logits) > 1e-8,
        "a changed prompt must change the mean"
    );
    // Tokens a single-path stream generated (their rows come from the decode steps) are reused
    // by a following prompt that contains them.
    let params = GenerateParams {
        max_tokens: 4,
        stop_tokens: Some(vec![]),
        ..Default::default()
    };
    let (gen, _) = s.generate(&prompt, &params, |_| true).unwrap();
    let mut longer = prompt.clone();
    longer.extend(&gen);
    let cached = s.switch(&longer).unwrap();
    assert_eq!(
        s.timings().cached_tokens,
        longer.len() - 1,
        "3 generated tokens were fed"
    );
    let fresh = whole.engine.session().unwrap().switch(&longer).unwrap();
    assert!(
        nmse(&cached.logits, &fresh.logits) <= 1e-10,
        "{:?} vs {:?}",
        cached.logits,
        fresh.logits
    );
}

/// Auto mode decodes exactly as the mode the switcher picks, from the same cached prompt.
#[test]
fn auto_mode_follows_the_switcher() {
    let c = case("auto", true, kestrel::EngineOptions::default());
    let params = |mode| GenerateParams {
        max_tokens: 5,
        stop_tokens: Some(vec![]),
        mode,
        ..Default::default()
    };
    for (case, want) in [
        ("input_ids", Mode::Chat),
        ("adapter_prompt", Mode::Reasoning),
    ] {
        let prompt = ids(&c.refs["switcher"]["cases"][case]["ids"]);
        let mut s = c.engine.session().unwrap();
        let explicit = s.generate(&prompt, &params(want), |_| true).unwrap().0;
        let auto = s
            .generate(&prompt, &params(Mode::Auto), |_| true)
            .unwrap()
            .0;
        assert_eq!(s.last_switch().map(|d| d.mode), Some(want), "{case}");
        assert_eq!(auto, explicit, "{case}: auto must decode as {want:?}");
        assert_eq!(
            s.timings().cached_tokens,
            prompt.len() - 1,
            "{case}: prompt from the cache"
        );
        let paths = s.generate_paths(&prompt, 2, &params(Mode::Auto)).unwrap();
        assert_eq!(paths[0].tokens, explicit, "{case}: auto paths");
    }
    // The other mode really differs here, so the check above can fail.
    let prompt = ids(&c.refs["switcher"]["cases"]["adapter_prompt"]["ids"]);
    let mut s = c.engine.session().unwrap();
    let chat = s
        .generate(&prompt, &params(Mode::Chat), |_| true)
        .unwrap()
        .0;
    let reasoning = s
        .generate(&prompt, &params(Mode::Reasoning), |_| true)
        .unwrap()
        .0;
    assert_ne!(chat, reasoning);
    // Auto needs a switcher, and refuses standard-semantics prompts.
    let bad = GenerateParams {
        adapter_prompt: true,
        ..params(Mode::Auto)
    };
    let err = s.generate(&prompt, &bad, |_| true).unwrap_err().to_string();
    assert!(err.contains("adapter_prompt"), "{err}");
}

/// A path's verifier score equals scoring prompt + path from scratch (prompt by the base, path
/// by the adapter).
fn check_score(
    s: &mut kestrel::Session<'_>,
    prompt: &[u32],
    p: &kestrel::PathOutput,
    adapter: kestrel::AdapterId,
) {
    let mut seq = prompt.to_vec();
    seq.extend(&p.tokens);
    let want = s.score_with(&seq, Some(adapter), prompt.len()).unwrap();
    let got = p.score.expect("a verifier is loaded");
    assert!(
        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
        "path {:?}: score {got} vs {want} from scratch",
        p.tokens
    );
}

/// Each reasoning path's verifier score equals scoring its whole sequence from scratch (prompt
/// by the base, path by the adapter); budget forcing puts the end sequence right at the budget.
#[test]
fn path_scores_and_budget_forcing() {
    let c = case("paths", true, kestrel::EngineOptions::default());
    let prompt = ids(&c.refs["switcher"]["cases"]["adapter_prompt"]["ids"]);
    let end = vec![5u32, 6];
    let params = GenerateParams {
        max_tokens: 8,
        stop_tokens: Some(vec![]),
        mode: Mode::Reasoning,
        sampling: kestrel::Sampling {
            temperature: 1.0,
            seed: 7,
            ..Default::default()
        },
        thinking: Some(ThinkingBudget {
            max_tokens: 3,
            end: end.clone(),
        }),
        ..Default::default()
    };
    let mut s = c.engine.session().unwrap();
    let paths = s.generate_paths(&prompt, 3, &params).unwrap();
    let adapter = c.engine.adapters().next().unwrap().0;
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(p.tokens.len(), 8);
        if p.thinking_forced {
            assert_eq!(
                &p.tokens[3..5],
                &end[..],
                "path {i}: forced end at the budget"
            );
        } else {
            assert!(p.tokens[..5].windows(2).any(|w| w == end), "path {i}");
        }
        check_score(&mut s, &prompt, p, adapter);
    }
    assert!(paths.iter().any(|p| p.thinking_forced));
    // One token per path: its score comes from the extra step alone.
    let one_token = GenerateParams {
        max_tokens: 1,
        thinking: None,
        ..params.clone()
    };
    for p in &s.generate_paths(&prompt, 2, &one_token).unwrap() {
        check_score(&mut s, &prompt, p, adapter);
    }
    assert_ne!(paths[0].tokens, paths[1].tokens, "sampled paths explore");
    // The single-path stream forces the same way.
    let greedy = GenerateParams {
        sampling: kestrel::Sampling::greedy(),
        ..params.clone()
    };
    let (one, _) = s.generate(&prompt, &greedy, |_| true).unwrap();
    let batch = s.generate_paths(&prompt, 2, &greedy).unwrap();
    assert_eq!(one, batch[0].tokens);
    assert_eq!(&one[3..5], &end[..]);
    // Aggregation over the scored paths picks the best-scored one.
    let answers: Vec<String> = paths
        .iter()
        .map(|p| format!("{:?}", &p.tokens[5..]))
        .collect();
    let scores: Vec<Option<f32>> = paths.iter().map(|p| p.score).collect();
    let best = aggregate(&answers, &scores, Aggregation::BestOfN).unwrap();
    let top = (0..3)
        .max_by(|&a, &b| scores[a].partial_cmp(&scores[b]).unwrap())
        .unwrap();
    assert_eq!(best.path, top);
}

#[test]
fn heads_are_checked_against_their_kind_and_base() {
    let dir = fixtures().join("tiny/qwen2_tied_gqa");
    let kst = convert_hf(&dir.join("hf"), "f32", "heads-bad");
    let mut engine = load_engine(&kst);
    // No heads: the head APIs say what is missing.
    let mut s = engine.session().unwrap();
    let err = s.switch(&[1, 2, 3]).unwrap_err().to_string();
    assert!(err.contains("Switcher"), "{err}");
    let err = s.score_with(&[1, 2, 3], None, 0).unwrap_err().to_string();
    assert!(err.contains("Verifier"), "{err}");
    let auto = GenerateParams {
        mode: Mode::Auto,
        max_tokens: 4,
        ..Default::default()
    };
    let err = s
        .generate(&[1, 2, 3], &auto, |_| true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Switcher"), "{err}");
    drop(s);
    // A head made for another model is refused.
    let other = convert_hf(
        &fixtures().join("tiny/qwen2_untied_1kv/hf"),
        "f32",
        "heads-other",
    );
    // (Same hidden size: the converter accepts it; the engine refuses the base hash.)
    let h = convert_head(&dir.join("heads/switcher"), &other, "heads-other-sw").unwrap();
    let err = engine.load_head(&h).unwrap_err().to_string();
    assert!(err.contains("another base"), "{err}");
    // A model file is not a head; a loaded head of a kind replaces the previous one.
    assert!(engine.load_head(&kst).is_err());
    let v = convert_head(&dir.join("heads/verifier"), &kst, "heads-bad-v").unwrap();
    assert_eq!(engine.load_head(&v).unwrap(), HeadKind::Verifier);
    assert_eq!(engine.load_head(&v).unwrap(), HeadKind::Verifier);
    assert!(engine.head(HeadKind::Verifier).is_some());
    assert!(engine.head(HeadKind::Switcher).is_none());
    // The sizes a head's header states must match its labels and the model; the same file
    // with the true sizes written back loads (so the rewrite itself is sound).
    let src = kestrel_formats::KstFile::open(&v).unwrap();
    let meta = src.meta("head").unwrap().clone();
    let hidden = meta["hidden_size"].as_u64().unwrap();
    for (key, value, loads) in [
        ("num_classes", 2, false),
        ("hidden_size", hidden + 1, false),
        ("num_classes", 1, true),
    ] {
        let mut m = meta.clone();
        m[key] = value.into();
        let path = scratch_dir("heads-meta").join(format!("{key}-{value}.kst"));
        let mut w = kestrel_formats::KstWriter::create(&path, kestrel_formats::Kind::Head).unwrap();
        w.set_base_hash(src.base_hash().unwrap().to_string());
        w.set_meta("head", m);
        for name in ["weight", "bias"] {
            let t = src.tensor(name).unwrap();
            w.add_raw(name, t.dtype, t.shape, None, t.data, None, None)
                .unwrap();
        }
        w.finish().unwrap();
        match engine.load_head(&path) {
            Ok(_) => assert!(loads, "{key} = {value} loaded"),
            Err(e) => {
                assert!(!loads, "{key} = {value}: {e}");
                assert!(
                    matches!(&e, kestrel::EngineError::Head(m) if m.contains(key)),
                    "{e}"
                );
            }
        }
    }
}
