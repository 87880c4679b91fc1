//! PEFT adapters and heads against a base `.kst`: the committed tiny fixtures convert, and every
//! bad case is a typed error that names the problem.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use kestrel_formats::{
    convert_head, convert_hf, convert_peft, ConvertOptions, DType, FormatError, Kind, KstFile,
};
use safetensors::tensor::Dtype;
use serde_json::json;

fn fixture(model: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny")
        .join(model)
}

fn base(d: &TempDir, model: &str) -> KstFile {
    let out = d.join(&format!("{model}.kst"));
    convert_hf(
        &fixture(model).join("hf"),
        &out,
        &ConvertOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    KstFile::open(&out).unwrap()
}

fn peft(dir: &Path, base: &KstFile, out: &Path) -> Result<KstFile, FormatError> {
    convert_peft(dir, base, out, &mut |_, _| {})?;
    KstFile::open(out)
}

#[test]
fn fixture_adapters_convert_with_scale_and_shapes() {
    let d = TempDir::new("peft-ok");
    let b = base(&d, "qwen2_tied_gqa");
    let cfg = b.config().unwrap().clone();
    for (name, r, scale, n_mod) in [
        ("r8_all", 8, 2.0, 7),
        ("r64_all", 64, 0.5, 7),
        ("r8_rslora", 8, 6.0 / 8f64.sqrt(), 7),
        ("r8_qv", 8, 2.0, 2),
    ] {
        let a = peft(
            &fixture("qwen2_tied_gqa").join("adapters").join(name),
            &b,
            &d.join("a.kst"),
        )
        .unwrap();
        a.verify_checksums().unwrap();
        assert_eq!(a.kind(), Kind::Adapter);
        assert_eq!(a.base_hash(), Some(b.header_hash().as_str()));
        let m = a.meta("adapter").unwrap();
        assert_eq!(m["r"], r);
        assert!(
            (m["scale"].as_f64().unwrap() - scale).abs() < 1e-12,
            "{name}"
        );
        assert_eq!(
            a.tensor_names().count(),
            2 * n_mod * cfg.num_hidden_layers,
            "{name}"
        );
        let qa = a.tensor("model.layers.1.self_attn.q_proj.lora_A").unwrap();
        assert_eq!(
            (qa.dtype, qa.shape),
            (DType::F16, &[r, cfg.hidden_size][..])
        );
        let vb = a.tensor("model.layers.0.self_attn.v_proj.lora_B").unwrap();
        assert_eq!(vb.shape, &[cfg.kv_dim(), r][..]);
    }
}

#[test]
fn fixture_bad_adapters_are_refused() {
    let d = TempDir::new("peft-bad");
    let b = base(&d, "qwen2_tied_gqa");
    let ad = fixture("qwen2_tied_gqa").join("adapters");
    let err = |n: &str| peft(&ad.join(n), &b, &d.join("x.kst")).unwrap_err();
    assert!(matches!(err("bad_dora"), FormatError::Unsupported(m) if m.contains("use_dora")));
    assert!(
        matches!(err("bad_rank"), FormatError::ShapeMismatch { what, .. } if what.contains("r = 8"))
    );
    assert!(matches!(err("bad_target"), FormatError::Unsupported(m) if m.contains("lm_head")));
    assert!(matches!(
        err("bad_base"),
        FormatError::ShapeMismatch { .. } | FormatError::BaseMismatch(_)
    ));
    assert!(!d.join("x.kst").exists());
}

/// A synthetic PEFT dir for the tiny fixture base (hidden 64): q_proj only, both layers.
fn write_adapter(
    dir: &Path,
    cfg: serde_json::Value,
    extra: &[(String, Dtype, Vec<usize>, Vec<f32>)],
    transpose: bool,
) {
    std::fs::write(dir.join("adapter_config.json"), cfg.to_string()).unwrap();
    let mut ts = Vec::new();
    for l in 0..2 {
        let p = format!("base_model.model.model.layers.{l}.self_attn.q_proj");
        let (a, bsh) = if transpose {
            (vec![64, 4], vec![4, 64])
        } else {
            (vec![4, 64], vec![64, 4])
        };
        ts.push((format!("{p}.lora_A.weight"), Dtype::F32, a, values(l, 256)));
        ts.push((
            format!("{p}.lora_B.weight"),
            Dtype::F32,
            bsh,
            values(l + 9, 256),
        ));
    }
    ts.extend_from_slice(extra);
    write_st(&dir.join("adapter_model.safetensors"), &ts);
}

#[test]
fn synthetic_bad_adapters_name_the_problem() {
    let d = TempDir::new("peft-syn");
    let b = base(&d, "qwen2_tied_gqa");
    let ok = json!({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "bias": "none"});
    let run = |cfg: serde_json::Value,
               extra: Vec<(String, Dtype, Vec<usize>, Vec<f32>)>,
               transpose: bool| {
        let a = TempDir::new("peft-syn-dir");
        write_adapter(a.path(), cfg, &extra, transpose);
        peft(a.path(), &b, &d.join("y.kst"))
    };
    run(ok.clone(), vec![], false).unwrap();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = ok.clone();
        c[k] = v;
        c
    };
    let e = run(with("modules_to_save", json!(["lm_head"])), vec![], false).unwrap_err();
    assert!(
        matches!(&e, FormatError::Unsupported(m) if m.contains("modules_to_save")),
        "{e}"
    );
    let e = run(with("bias", "all".into()), vec![], false).unwrap_err();
    assert!(
        matches!(&e, FormatError::Unsupported(m) if m.contains("bias")),
        "{e}"
    );
    let e = run(with("fan_in_fan_out", true.into()), vec![], true).unwrap_err();
    assert!(
        matches!(&e, FormatError::ShapeMismatch { what, .. } if what.contains("fan_in_fan_out")),
        "{e}"
    );
    let e = run(
        with("target_modules", json!(["q_proj", "k_proj"])),
        vec![],
        false,
    )
    .unwrap_err();
    assert!(
        matches!(&e, FormatError::MissingTensor(m) if m.contains("k_proj")),
        "{e}"
    );
    let e = run(with("target_modules", json!("q_.*")), vec![], false).unwrap_err();
    assert!(matches!(&e, FormatError::Unsupported(_)), "{e}");
    let deep = (
        "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight".to_string(),
        Dtype::F32,
        vec![4, 64],
        vec![0.0; 256],
    );
    let e = run(ok.clone(), vec![deep], false).unwrap_err();
    assert!(
        matches!(&e, FormatError::BaseMismatch(m) if m.contains("layer 7")),
        "{e}"
    );
    let stray = (
        "base_model.model.lm_head.weight".to_string(),
        Dtype::F32,
        vec![4],
        vec![0.0; 4],
    );
    let e = run(ok.clone(), vec![stray], false).unwrap_err();
    assert!(
        matches!(&e, FormatError::Unsupported(m) if m.contains("lm_head")),
        "{e}"
    );
    let e = run(with("r", 0.into()), vec![], false).unwrap_err();
    assert!(matches!(&e, FormatError::BadConfig(_)), "{e}");
}

/// The adapter `.kst`'s tensors (name → f16 bits) for comparing two conversions.
fn adapter_tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let a = KstFile::open(path).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = a
        .tensor_names()
        .map(|n| (n.to_string(), a.tensor(n).unwrap().data.to_vec()))
        .collect();
    v.sort();
    v
}

#[test]
fn peft_keys_are_honoured_or_refused_by_name() {
    let d = TempDir::new("peft-keys");
    let b = base(&d, "qwen2_tied_gqa");
    let ok = json!({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "bias": "none"});
    let with = |k: &str, v: serde_json::Value| {
        let mut c = ok.clone();
        c[k] = v;
        c
    };
    let run = |cfg: serde_json::Value, out: &str| {
        let a = TempDir::new("peft-keys-dir");
        write_adapter(a.path(), cfg, &[], false);
        peft(a.path(), &b, &d.join(out)).map(|_| adapter_tensors(&d.join(out)))
    };
    let plain = run(ok.clone(), "plain.kst").unwrap();
    // fan_in_fan_out: PEFT turns it off for torch.nn.Linear targets, so the math is unchanged.
    assert_eq!(
        run(with("fan_in_fan_out", true.into()), "ff.kst").unwrap(),
        plain
    );
    // layers_to_transform covering every layer that has tensors: the same adapter.
    assert_eq!(
        run(with("layers_to_transform", json!([0, 1])), "l01.kst").unwrap(),
        plain
    );
    assert_eq!(
        run(with("layers_pattern", json!("layers")), "lp.kst").unwrap(),
        plain
    );
    let refused: Vec<(serde_json::Value, &str)> = vec![
        (
            with("layers_to_transform", json!([0])),
            "layers_to_transform",
        ),
        (with("layers_to_transform", json!(0)), "layers_to_transform"),
        (with("layers_pattern", json!("h")), "layers_pattern"),
        (with("rank_pattern", json!({"q_proj": 8})), "rank_pattern"),
        (with("alpha_pattern", json!({"q_proj": 4})), "alpha_pattern"),
        (with("modules_to_save", json!(["score"])), "modules_to_save"),
        (with("bias", json!("lora_only")), "bias"),
        (with("peft_type", json!("IA3")), "peft_type"),
        (with("peft_type", serde_json::Value::Null), "peft_type"),
        (with("lora_alpha", json!(1e9)), "lora_alpha / r"),
    ];
    for (cfg, named) in refused {
        let e = run(cfg.clone(), "bad.kst").unwrap_err();
        assert!(
            e.to_string().contains(named),
            "{cfg}: `{e}` does not name {named}"
        );
    }
}

#[test]
fn fixture_heads_convert_and_bad_heads_are_refused() {
    let d = TempDir::new("head");
    let b = base(&d, "qwen2_tied_gqa");
    let hidden = b.config().unwrap().hidden_size;
    for (name, c) in [("switcher", 2), ("verifier", 1)] {
        let out = d.join(&format!("{name}.kst"));
        convert_head(
            &fixture("qwen2_tied_gqa").join("heads").join(name),
            &b,
            &out,
            &mut |_, _| {},
        )
        .unwrap();
        let h = KstFile::open(&out).unwrap();
        assert_eq!(h.kind(), Kind::Head);
        assert_eq!(h.base_hash(), Some(b.header_hash().as_str()));
        assert_eq!(h.meta("head").unwrap()["kind"], name);
        assert_eq!(h.tensor("weight").unwrap().shape, &[c, hidden][..]);
        assert_eq!(h.tensor("bias").unwrap().shape, &[c][..]);
    }
    let bad = |json_text: &str, tensors: Vec<(String, Dtype, Vec<usize>, Vec<f32>)>| {
        let h = TempDir::new("head-bad");
        std::fs::write(h.join("head.json"), json_text).unwrap();
        write_st(&h.join("head.safetensors"), &tensors);
        convert_head(h.path(), &b, &d.join("bad.kst"), &mut |_, _| {}).unwrap_err()
    };
    let good_json = r#"{"kind":"switcher","pooling":"mean","labels":["chat","reasoning"]}"#;
    let w = |c: usize, h: usize| {
        (
            "weight".to_string(),
            Dtype::F32,
            vec![c, h],
            vec![0.1; c * h],
        )
    };
    assert!(
        matches!(bad(good_json, vec![w(2, 32)]), FormatError::ShapeMismatch { what, .. } if what.contains("hidden_size"))
    );
    assert!(
        matches!(bad(good_json, vec![w(3, hidden)]), FormatError::ShapeMismatch { what, .. } if what.contains("labels"))
    );
    assert!(
        matches!(bad(good_json, vec![w(2, hidden), ("bias".into(), Dtype::F32, vec![3], vec![0.0; 3])]), FormatError::ShapeMismatch { name, .. } if name == "bias")
    );
    assert!(
        matches!(bad(good_json, vec![w(2, hidden), ("extra".into(), Dtype::F32, vec![1], vec![0.0])]), FormatError::Unsupported(m) if m.contains("extra"))
    );
    assert!(matches!(
        bad(
            r#"{"kind":"router","pooling":"mean","labels":["a"]}"#,
            vec![w(1, hidden)]
        ),
        FormatError::Unsupported(_)
    ));
    assert!(matches!(
        bad(
            r#"{"kind":"verifier","pooling":"max","labels":["a"]}"#,
            vec![w(1, hidden)]
        ),
        FormatError::Unsupported(_)
    ));
    assert!(matches!(
        bad(
            good_json,
            vec![("bias".into(), Dtype::F32, vec![2], vec![0.0; 2])]
        ),
        FormatError::MissingTensor(_)
    ));
    let mut nan = w(2, hidden);
    nan.3[5] = f32::NAN;
    assert!(matches!(
        bad(good_json, vec![nan]),
        FormatError::BadTensor { .. }
    ));
}

#[test]
fn detect_input_kinds() {
    use kestrel_formats::{detect_input, InputKind};
    let f = fixture("qwen2_tied_gqa");
    assert_eq!(detect_input(&f.join("hf")).unwrap(), InputKind::Hf);
    assert_eq!(
        detect_input(&f.join("adapters/r8_all")).unwrap(),
        InputKind::Peft
    );
    assert_eq!(
        detect_input(&f.join("heads/switcher")).unwrap(),
        InputKind::Head
    );
    assert!(matches!(
        detect_input(&f.join("ref.json")),
        Err(FormatError::UnknownInput(_))
    ));
    assert!(matches!(
        detect_input(&f.join("nope")),
        Err(FormatError::Io { .. })
    ));
}
