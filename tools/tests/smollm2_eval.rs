//! End to end on SmolLM2-135M-Instruct (the real model, from `scripts/fetch-assets.sh`): `kestrel
//! eval` on 5 problems, `kestrel train-head` of a switcher on 20 labelled prompts, and `eval
//! --mode auto` with it. SmolLM2 ships no reasoning adapter, so the test writes a small PEFT
//! adapter (rank 4 on q/v, deterministic weights) to have something to route to.
//! Needs the asset and a GPU adapter (lavapipe on CI); either missing fails the test.

mod common;

use std::path::{Path, PathBuf};

use common::{kestrel, path};
use serde_json::{json, Value};

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smollm2_eval");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn smollm2() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    let gguf = Path::new(&home).join(".cache/kestrel/assets/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.exists(),
        "{} missing: run scripts/fetch-assets.sh",
        gguf.display()
    );
    let out = dir().join("smollm2.kst");
    kestrel_formats::gguf::convert_gguf(
        &gguf,
        &out,
        &kestrel_formats::ConvertOptions::default(),
        &mut |_, _| {},
    )
    .expect("converting SmolLM2");
    out
}

/// A rank-4 q/v PEFT adapter for SmolLM2's shapes (hidden 576, 30 layers, v rows 192).
fn adapter(base: &Path) -> PathBuf {
    let d = dir().join("peft");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("adapter_config.json"),
        json!({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}).to_string(),
    )
    .unwrap();
    let (r, hidden) = (4usize, 576usize);
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    let mut k = 0u32;
    for layer in 0..30 {
        for (proj, rows) in [("q_proj", 576usize), ("v_proj", 192)] {
            for (ab, shape) in [("lora_A", [r, hidden]), ("lora_B", [rows, r])] {
                let n = shape[0] * shape[1];
                let start = data.len();
                for _ in 0..n {
                    k = k.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let v = ((k >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.05;
                    data.extend_from_slice(&v.to_le_bytes());
                }
                header.insert(
                    format!("base_model.model.model.layers.{layer}.self_attn.{proj}.{ab}.weight"),
                    json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
                );
            }
        }
    }
    let h = serde_json::to_vec(&Value::Object(header)).unwrap();
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(data);
    std::fs::write(d.join("adapter_model.safetensors"), file).unwrap();
    let out = dir().join("reasoning.kst");
    let base = kestrel_formats::KstFile::open(base).unwrap();
    kestrel_formats::convert_peft(&d, &base, &out, &mut |_, _| {}).expect("converting the adapter");
    out
}

fn run(args: &[&str]) -> Value {
    let out = kestrel(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write_jsonl(name: &str, lines: &[Value]) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(
        &p,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    p
}

#[test]
fn eval_train_a_switcher_and_eval_in_auto_mode() {
    let model = smollm2();
    let adapter = adapter(&model);
    let problems = [
        (
            "What is 2 + 3? Reply with the number only.",
            "5",
            "reasoning",
        ),
        (
            "What is 10 - 4? Reply with the number only.",
            "6",
            "reasoning",
        ),
        (
            "What is the capital of France? Reply with one word.",
            "Paris",
            "chat",
        ),
        (
            "What is 3 * 3? Reply with the number only.",
            "9",
            "reasoning",
        ),
        (
            "What colour is the sky on a clear day? Reply with one word.",
            "blue",
            "chat",
        ),
    ];
    let tasks = write_jsonl(
        "tasks.jsonl",
        &problems
            .iter()
            .enumerate()
            .map(|(i, (p, a, k))| json!({"id": i, "prompt": p, "answer": a, "kind": k}))
            .collect::<Vec<_>>(),
    );
    let m = path(&model);
    let report = run(&[
        "eval",
        m,
        "--tasks",
        path(&tasks),
        "--max-tokens",
        "12",
        "--json",
    ]);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2); // chat × 1 path × {first, vote}
    for row in rows {
        assert_eq!(row["problems"], 5);
        let acc = row["accuracy"].as_f64().unwrap();
        assert_eq!(acc, row["correct"].as_f64().unwrap() / 5.0);
        assert!(row["decode_tok_s"].as_f64().unwrap() > 0.0);
    }
    let overhead = report["overhead"]["fraction"].as_f64().unwrap();
    assert!(overhead < 0.03, "harness overhead {overhead}");

    // 20 labelled prompts: small talk is chat, arithmetic and logic is reasoning.
    let chat = [
        "Say hello.",
        "Tell me a fun fact about cats.",
        "What is your name?",
        "Recommend a book.",
        "Write a haiku about rain.",
        "How are you today?",
        "Translate 'thank you' to French.",
        "Name a primary colour.",
        "Describe a sunset in one sentence.",
        "Suggest a name for a dog.",
    ];
    let reasoning = [
        "What is 17 * 23?",
        "If a train travels 60 km in 40 minutes, what is its speed in km/h?",
        "Solve for x: 3x + 7 = 22.",
        "How many prime numbers are below 30?",
        "What is 15% of 240?",
        "A rectangle has perimeter 30 and width 5. What is its area?",
        "What is the sum of the first 20 positive integers?",
        "If 5 machines make 5 widgets in 5 minutes, how long do 100 machines take for 100 widgets?",
        "What is 2 to the power of 10 minus 24?",
        "Divide 144 by 12 and add 7.",
    ];
    let lines: Vec<Value> = chat
        .iter()
        .map(|p| json!({"prompt": p, "kind": "chat"}))
        .chain(
            reasoning
                .iter()
                .map(|p| json!({"prompt": p, "kind": "reasoning"})),
        )
        .collect();
    let prompts = write_jsonl("prompts.jsonl", &lines);
    let sw = dir().join("switcher.kst");
    let fit = run(&[
        "train-head",
        m,
        "--kind",
        "switcher",
        "--data",
        path(&prompts),
        "-o",
        path(&sw),
        "--val-fraction",
        "0.2",
        "--json",
    ]);
    assert_eq!(fit["train"]["examples"], 16);
    assert_eq!(fit["val"]["examples"], 4);
    assert!(fit["train"]["accuracy"].as_f64().unwrap() >= 0.9, "{fit}");

    let auto = run(&[
        "eval",
        m,
        "--tasks",
        path(&tasks),
        "--adapter",
        path(&adapter),
        "--switcher",
        path(&sw),
        "--mode",
        "auto",
        "--select",
        "first",
        "--max-tokens",
        "12",
        "--json",
    ]);
    let row = &auto["rows"][0];
    assert_eq!(row["mode"], "auto");
    assert_eq!(row["routing_labelled"], 5);
    let routed = row["routed_reasoning"].as_f64().unwrap();
    let right = row["routing_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&routed) && (0.0..=1.0).contains(&right));
    eprintln!(
        "chat rows: {}\nswitcher: {fit}\nauto row: {row}",
        serde_json::to_string(&rows).unwrap()
    );
}
