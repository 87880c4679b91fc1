//! `synth` (real shapes, valid layouts, loadable tokenizer) and `export` (HF round trips).

mod common;

use common::*;
use kestrel_formats::layout::check_model_file;
use kestrel_formats::synth::{preset, synth_model, PRESETS};
use kestrel_formats::{convert_hf, export_hf, ConvertOptions, DType, KstFile, Scheme, WeightDType};
use safetensors::tensor::Dtype;

#[test]
fn presets_have_the_real_shapes() {
    let p = |n: &str| preset(n).unwrap();
    let q05 = p("qwen2.5-0.5b");
    assert_eq!(
        (
            q05.vocab_size,
            q05.hidden_size,
            q05.intermediate_size,
            q05.num_hidden_layers
        ),
        (151936, 896, 4864, 24)
    );
    assert_eq!(
        (
            q05.num_attention_heads,
            q05.num_key_value_heads,
            q05.head_dim,
            q05.tie_word_embeddings,
            q05.attention_bias
        ),
        (14, 2, 64, true, true)
    );
    let q15 = p("qwen2.5-1.5b");
    assert_eq!(
        (
            q15.hidden_size,
            q15.intermediate_size,
            q15.num_hidden_layers,
            q15.num_attention_heads,
            q15.head_dim
        ),
        (1536, 8960, 28, 12, 128)
    );
    let q7 = p("qwen2.5-7b");
    assert_eq!(
        (
            q7.vocab_size,
            q7.hidden_size,
            q7.intermediate_size,
            q7.num_attention_heads,
            q7.num_key_value_heads,
            q7.tie_word_embeddings
        ),
        (152064, 3584, 18944, 28, 4, false)
    );
    let s = p("smollm2-135m");
    assert_eq!(
        (
            s.vocab_size,
            s.hidden_size,
            s.intermediate_size,
            s.num_hidden_layers,
            s.num_attention_heads,
            s.num_key_value_heads
        ),
        (49152, 576, 1536, 30, 9, 3)
    );
    assert_eq!(
        (s.rope_theta, s.attention_bias, s.tie_word_embeddings),
        (100000.0, false, true)
    );
    for n in PRESETS {
        p(n).validate().unwrap();
    }
    assert!(preset("gpt2").is_err());
}

#[test]
fn synth_writes_a_valid_model_with_a_loadable_tokenizer() {
    let d = TempDir::new("synth");
    let mut cfg = preset("smollm2-135m").unwrap();
    cfg.num_hidden_layers = 2;
    cfg.vocab_size = 1024;
    for (dtype, scheme) in [
        (WeightDType::W4, Scheme::Sym),
        (WeightDType::W4, Scheme::Asym),
        (WeightDType::W8, Scheme::Sym),
        (WeightDType::F16, Scheme::Sym),
    ] {
        let out = d.join("s.kst");
        let mut last = (0, 1);
        synth_model(
            &cfg,
            &out,
            &ConvertOptions {
                dtype,
                group_size: 64,
                scheme,
            },
            7,
            &mut |a, b| last = (a, b),
        )
        .unwrap();
        assert_eq!(last.0, last.1);
        let f = KstFile::open(&out).unwrap();
        f.verify_checksums().unwrap();
        check_model_file(&f).unwrap();
        let q = f.tensor("model.layers.1.mlp.up_proj.weight").unwrap();
        assert_eq!(q.dtype, dtype.linear_dtype());
        assert_eq!(
            q.quant.and_then(|q| q.mins).is_some(),
            scheme == Scheme::Asym && dtype == WeightDType::W4
        );
        let v = q.to_f32_vec().unwrap();
        assert!(
            v.iter().all(|x| x.is_finite() && x.abs() < 0.2),
            "plausible magnitudes"
        );
        assert!(v.iter().any(|x| *x != 0.0));
        assert_eq!(
            f.tensor("model.norm.weight").unwrap().to_f32_vec().unwrap(),
            vec![1.0; 576]
        );
    }
    let f = KstFile::open(&d.join("s.kst")).unwrap();
    let tok: tokenizers::Tokenizer =
        std::str::FromStr::from_str(f.tokenizer_json().unwrap()).unwrap();
    let text = "héllo <|im_start|>wörld\n";
    let enc = tok.encode(text, false).unwrap();
    assert!(enc.get_ids().contains(&257));
    assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), text);
    assert_eq!(f.config().unwrap().eos_token_ids, vec![258, 256]);
}

#[test]
fn export_round_trips() {
    let d = TempDir::new("export");
    let cfg = hf_config("qwen2", false);
    let ts = hf_tensors(&cfg, Dtype::F32);
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    write_hf_dir(&src, &cfg, &ts, 1);

    // f32 → export → identical tensors, and the exported dir converts again.
    let opts = ConvertOptions {
        dtype: WeightDType::F32,
        ..Default::default()
    };
    convert_hf(&src, &d.join("a.kst"), &opts, &mut |_, _| {}).unwrap();
    let a = KstFile::open(&d.join("a.kst")).unwrap();
    export_hf(&a, &d.join("exp"), &mut |_, _| {}).unwrap();
    let bytes = std::fs::read(d.join("exp/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, _, shape, vals) in &ts {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.shape(), shape.as_slice());
        assert_eq!(t.data(), encode(Dtype::F32, vals).as_slice(), "{name}");
    }
    assert!(std::fs::read_to_string(d.join("exp/tokenizer_config.json"))
        .unwrap()
        .contains("m.content"));
    convert_hf(&d.join("exp"), &d.join("a2.kst"), &opts, &mut |_, _| {}).unwrap();
    let a2 = KstFile::open(&d.join("a2.kst")).unwrap();
    assert_eq!(a2.config().unwrap(), a.config().unwrap());
    assert_eq!(a2.tokenizer_json(), a.tokenizer_json());

    // W4 sym → export → W4 sym again: identical nibbles and scales.
    convert_hf(
        &src,
        &d.join("w.kst"),
        &ConvertOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let w = KstFile::open(&d.join("w.kst")).unwrap();
    export_hf(&w, &d.join("wexp"), &mut |_, _| {}).unwrap();
    convert_hf(
        &d.join("wexp"),
        &d.join("w2.kst"),
        &ConvertOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let w2 = KstFile::open(&d.join("w2.kst")).unwrap();
    for name in w.tensor_names() {
        let (x, y) = (w.tensor(name).unwrap(), w2.tensor(name).unwrap());
        assert_eq!((x.dtype, x.data), (y.dtype, y.data), "{name}");
        if x.dtype == DType::W4 {
            assert_eq!(x.quant.unwrap().scales, y.quant.unwrap().scales, "{name}");
        }
    }
    // Adapters/heads cannot be exported.
    let mut hw =
        kestrel_formats::KstWriter::create(&d.join("h.kst"), kestrel_formats::Kind::Head).unwrap();
    hw.add_f32("weight", &[1, 2], &[1.0, 2.0]).unwrap();
    hw.finish().unwrap();
    assert!(export_hf(
        &KstFile::open(&d.join("h.kst")).unwrap(),
        &d.join("hexp"),
        &mut |_, _| {}
    )
    .is_err());
}
