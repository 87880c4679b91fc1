//! LoRA reasoning adapters vs transformers + peft (`tests/fixtures/tiny/*/adapter_refs`):
//! standard semantics (adapter on for every token), shared-KV semantics (prompt encoded by the
//! base, continuation with the adapter over that KV), mode switching inside one session, and
//! refusal of bad adapters by name.

use kestrel::{AdapterId, GenerateParams, Mode};
use kestrel_tests::*;

struct Case {
    engine: kestrel::Engine,
    adapter: AdapterId,
    seq: Vec<u32>,
    prompt_len: usize,
    refs: serde_json::Value,
    dir: std::path::PathBuf,
}

fn case(model: &str, adapter: &str, base: &str) -> Case {
    let dir = fixtures().join("tiny").join(model);
    let r = json(&dir.join("ref.json"));
    let a = &r["adapters"];
    let kst = if base == "f32" {
        convert_hf(
            &dir.join("hf"),
            "f32",
            &format!("lora-{model}-{adapter}-base"),
        )
    } else {
        convert_gguf(
            &dir.join(r["gguf"][base]["file"].as_str().unwrap()),
            &format!("lora-{model}-{adapter}-{base}"),
        )
    };
    let adir = dir.join(a["adapters"][adapter]["dir"].as_str().unwrap());
    let akst = convert_peft(&adir, &kst, &format!("lora-{model}-{adapter}-{base}-a")).unwrap();
    let mut engine = load_engine(&kst);
    let id = engine.load_adapter(&akst).unwrap();
    let refs = if base == "f32" {
        a["adapters"][adapter]["refs"].clone()
    } else {
        a["adapters"][adapter]["refs_on_gguf_q4_1"].clone()
    };
    Case {
        engine,
        adapter: id,
        seq: ids(&a["seq_ids"]),
        prompt_len: a["prompt_len"].as_u64().unwrap() as usize,
        refs,
        dir,
    }
}

fn expect(c: &Case, key: &str) -> Vec<f32> {
    npy(&c.dir.join(c.refs[key]["file"].as_str().unwrap())).data
}

fn check(model: &str, adapter: &str, base: &str, tol: f64) {
    let c = case(model, adapter, base);
    let v = c.engine.config().vocab_size;
    let mut s = c.engine.session().unwrap();
    // 1. Standard semantics.
    let got = s.logits_with(&c.seq, Some(c.adapter), 0).unwrap();
    let e = nmse(&got, &expect(&c, "standard"));
    eprintln!("{model} {adapter} {base}: standard nMSE {e:.3e}");
    assert!(e <= tol, "standard nMSE {e:.3e}");
    // 2. Shared KV: prompt by the base, continuation with the adapter over that KV.
    let got = s
        .logits_with(&c.seq, Some(c.adapter), c.prompt_len)
        .unwrap();
    let e = nmse(&got[c.prompt_len * v..], &expect(&c, "shared_kv"));
    eprintln!("{model} {adapter} {base}: shared-KV nMSE {e:.3e}");
    assert!(e <= tol, "shared-KV nMSE {e:.3e}");
    let e = nmse(
        &got[..c.prompt_len * v],
        &expect(&c, "base")[..c.prompt_len * v],
    );
    assert!(
        e <= tol,
        "shared-KV prompt rows must be the base model's: nMSE {e:.3e}"
    );
    // Base logits with the adapter loaded but off.
    let got = s.logits(&c.seq).unwrap();
    let e = nmse(&got, &expect(&c, "base"));
    assert!(e <= tol, "base nMSE {e:.3e}");
}

#[test]
fn qwen2_r8_all() {
    check("qwen2_tied_gqa", "r8_all", "f32", 1e-5);
}

#[test]
fn qwen2_r64_all() {
    check("qwen2_tied_gqa", "r64_all", "f32", 1e-5);
}

#[test]
fn qwen2_r8_rslora() {
    check("qwen2_tied_gqa", "r8_rslora", "f32", 1e-5);
}

#[test]
fn qwen2_r8_qv() {
    check("qwen2_tied_gqa", "r8_qv", "f32", 1e-5);
}

#[test]
fn llama_r8_all() {
    check("llama", "r8_all", "f32", 1e-5);
}

#[test]
fn llama_r64_all() {
    check("llama", "r64_all", "f32", 1e-5);
}

#[test]
fn qwen2_r8_all_on_w4_gguf_base() {
    check("qwen2_tied_gqa", "r8_all", "Q4_1", 1e-3);
}

/// chat → reasoning → chat in one session reuses the cached prompt and gives the same tokens as
/// fresh sessions; reasoning decodes with the adapter over the base-encoded prompt.
#[test]
fn mode_switching_reuses_the_prompt() {
    let c = case("qwen2_tied_gqa", "r8_all", "f32");
    let prompt = &c.seq[..c.prompt_len];
    let params = |mode| GenerateParams {
        max_tokens: 6,
        stop_tokens: Some(vec![]),
        mode,
        ..Default::default()
    };
    let fresh = |mode| {
        let mut s = c.engine.session().unwrap();
        s.generate(prompt, &params(mode), |_| true).unwrap().0
    };
    let (chat, reasoning) = (fresh(Mode::Chat), fresh(Mode::Reasoning));
    assert_ne!(chat, reasoning, "the adapter must change the continuation");
    let mut s = c.engine.session().unwrap();
    for (i, (mode, want)) in [
        (Mode::Chat, &chat),
        (Mode::Reasoning, &reasoning),
        (Mode::Chat, &chat),
    ]
    .into_iter()
    .enumerate()
    {
        let got = s.generate(prompt, &params(mode), |_| true).unwrap().0;
        assert_eq!(&got, want, "{mode:?} in a shared session");
        if i > 0 {
            // All but the last prompt token come from the cache (the last is re-run for its logits).
            assert_eq!(
                s.timings().cached_tokens,
                prompt.len() - 1,
                "{mode:?}: the prompt must come from the cache"
            );
        }
    }
    // The first greedy reasoning token is the argmax of the shared-KV reference at the prompt's
    // last position... which is the base model's row (the prompt is encoded by the base).
    let base = expect(&c, "base");
    let v = c.engine.config().vocab_size;
    assert_eq!(
        reasoning[0] as usize,
        argmax(&base[(c.prompt_len - 1) * v..c.prompt_len * v])
    );
}

#[test]
fn bad_adapters_are_refused_by_name() {
    let dir = fixtures().join("tiny/qwen2_tied_gqa");
    let r = json(&dir.join("ref.json"));
    let kst = convert_hf(&dir.join("hf"), "f32", "lora-bad-base");
    for (name, what) in [
        ("bad_dora", "dora"),
        ("bad_rank", "rank"),
        ("bad_target", "lm_head"),
    ] {
        let adir = dir.join(r["adapters"]["bad"][name]["dir"].as_str().unwrap());
        let err = convert_peft(&adir, &kst, &format!("lora-{name}"))
            .expect_err(name)
            .to_string();
        assert!(
            err.to_lowercase().contains(what),
            "{name}: error {err:?} should name {what:?}"
        );
    }
    // An adapter converted for another base is refused by the engine.
    let other_dir = fixtures().join("tiny/qwen2_untied_1kv");
    let other = convert_hf(&other_dir.join("hf"), "f32", "lora-bad-other");
    let adir = other_dir.join("adapters/r8_all");
    let akst = convert_peft(&adir, &other, "lora-bad-other-a").unwrap();
    let mut engine = load_engine(&kst);
    let err = engine
        .load_adapter(&akst)
        .expect_err("wrong base")
        .to_string();
    assert!(err.contains("another base"), "{err}");
    // And `bad_base` (shapes of another model) is refused at conversion, naming the tensor.
    let adir = dir.join(r["adapters"]["bad"]["bad_base"]["dir"].as_str().unwrap());
    let err = convert_peft(&adir, &kst, "lora-bad-shapes")
        .expect_err("bad_base")
        .to_string();
    assert!(err.contains("proj"), "{err}");
}
