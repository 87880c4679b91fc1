//! The embedding API's contract on bad input: every case is a typed `EngineError`, never a panic;
//! sampling is deterministic per seed; cancellation stops a request.

use kestrel::{CancelToken, EngineError, GenerateParams, Sampling};
use kestrel_tests::*;

/// Converted once per test binary (tests run in parallel).
fn engine() -> kestrel::Engine {
    static KST: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let kst = KST.get_or_init(|| {
        let dir = fixtures().join("tiny/qwen2_tied_gqa");
        let r = json(&dir.join("ref.json"));
        convert_gguf(
            &dir.join(r["gguf"]["Q4_0"]["file"].as_str().unwrap()),
            "api-qwen2",
        )
    });
    load_engine(kst)
}

#[test]
fn bad_requests_are_typed_errors() {
    let e = engine();
    let mut s = e.session().unwrap();
    let p = GenerateParams {
        max_tokens: 8,
        ..Default::default()
    };
    assert!(matches!(s.stream(&[], &p), Err(EngineError::EmptyPrompt)));
    assert!(matches!(s.logits(&[]), Err(EngineError::EmptyPrompt)));
    let v = e.config().vocab_size as u32;
    assert!(
        matches!(s.stream(&[1, v], &p), Err(EngineError::TokenOutOfRange { id, .. }) if id == v)
    );
    let long = vec![1u32; e.max_context() + 1];
    assert!(matches!(
        s.stream(&long, &p),
        Err(EngineError::ContextOverflow { what: "prompt", .. })
    ));
    let too_many = GenerateParams {
        max_tokens: e.max_context(),
        ..Default::default()
    };
    assert!(matches!(
        s.stream(&[1, 2], &too_many),
        Err(EngineError::ContextOverflow { .. })
    ));
    for bad in [
        Sampling {
            temperature: f32::NAN,
            ..Default::default()
        },
        Sampling {
            temperature: -1.0,
            ..Default::default()
        },
        Sampling {
            top_p: 0.0,
            ..Default::default()
        },
    ] {
        let params = GenerateParams {
            sampling: bad,
            max_tokens: 8,
            ..Default::default()
        };
        assert!(matches!(
            s.stream(&[1, 2], &params),
            Err(EngineError::BadParameter(_))
        ));
    }
    let reasoning = GenerateParams {
        mode: kestrel::Mode::Reasoning,
        max_tokens: 8,
        ..Default::default()
    };
    assert!(matches!(
        s.stream(&[1, 2], &reasoning),
        Err(EngineError::Adapter(_))
    ));
    // The session still works after refusals.
    assert_eq!(s.logits(&[1, 2, 3]).unwrap().len(), 3 * v as usize);
}

#[test]
fn same_seed_same_tokens() {
    let e = engine();
    let prompt = [277, 220, 80, 84];
    let run = |seed| {
        let params = GenerateParams {
            max_tokens: 12,
            stop_tokens: Some(vec![]),
            sampling: Sampling {
                temperature: 1.0,
                top_k: 40,
                top_p: 0.95,
                seed,
            },
            ..Default::default()
        };
        e.session()
            .unwrap()
            .generate(&prompt, &params, |_| true)
            .unwrap()
            .0
    };
    assert_eq!(run(7), run(7));
    assert_ne!(
        run(7),
        run(8),
        "different seeds should sample differently at temperature 1"
    );
}

#[test]
fn cancellation_stops_a_request() {
    let e = engine();
    let cancel = CancelToken::new();
    let params = GenerateParams {
        max_tokens: 10,
        stop_tokens: Some(vec![]),
        cancel: Some(cancel.clone()),
        ..Default::default()
    };
    let mut s = e.session().unwrap();
    let mut n = 0;
    let r = s.generate(&[1, 2, 3], &params, |_| {
        n += 1;
        if n == 3 {
            cancel.cancel();
        }
        true
    });
    assert!(matches!(r, Err(EngineError::Cancelled)), "{r:?}");
    assert_eq!(n, 3);
    // Cancelled before prefill.
    let mut s = e.session().unwrap();
    let mut stream = s.stream(&[1, 2, 3], &params).unwrap();
    assert!(matches!(stream.next(), Some(Err(EngineError::Cancelled))));
    // A stream that returned an error says so, and ends.
    assert_eq!(stream.finish, Some(kestrel::FinishReason::Error));
    assert!(stream.next().is_none());
    // The callback asking to stop is its own reason, not a stop token.
    let mut s = e.session().unwrap();
    let plain = GenerateParams {
        cancel: None,
        ..params
    };
    let (ids, why) = s.generate(&[1, 2, 3], &plain, |_| false).unwrap();
    assert_eq!((ids.len(), why), (1, kestrel::FinishReason::Callback));
    let (ids, why) = s.generate(&[1, 2, 3], &plain, |_| true).unwrap();
    assert_eq!((ids.len(), why), (10, kestrel::FinishReason::MaxTokens));
}

#[test]
fn streaming_text_equals_decoding_the_ids() {
    let e = engine();
    let mut s = e.session().unwrap();
    let params = GenerateParams {
        max_tokens: 16,
        stop_tokens: Some(vec![]),
        ..Default::default()
    };
    let mut text = String::new();
    let (ids, _) = s
        .generate(&[277, 220, 80], &params, |t| {
            text.push_str(&t.text);
            true
        })
        .unwrap();
    assert_eq!(text, e.tokenizer().decode(&ids, true).unwrap());
}
