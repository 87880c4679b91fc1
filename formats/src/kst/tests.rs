//! Writer → reader round trips (bit-exact for every dtype) and header identity.

use half::{bf16, f16};

use super::*;
use crate::{quantize_w4, quantize_w8, Arch, DType, ModelConfig};

pub(crate) fn tiny_config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Qwen2,
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        max_position_embeddings: 128,
        rms_norm_eps: 1e-6,
        rope_theta: 1e6,
        rope_scaling: Default::default(),
        tie_word_embeddings: true,
        attention_bias: true,
        bos_token_id: None,
        eos_token_ids: vec![1, 2],
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("kst-unit-{}-{name}.kst", std::process::id()))
}

#[test]
fn round_trip_every_dtype_bit_exact() {
    let path = tmp("rt");
    let f32s: Vec<f32> = (0..3 * 5).map(|i| i as f32 * 0.37 - 2.0).collect();
    let f16s: Vec<f16> = (0..7).map(|i| f16::from_f32(i as f32 / 3.0)).collect();
    let bf16s: Vec<bf16> = (0..6).map(|i| bf16::from_f32(-(i as f32) * 1.5)).collect();
    let w: Vec<f32> = (0..4 * 64)
        .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let w4s = quantize_w4(&w, 4, 64, 32, false).unwrap();
    let w4a = quantize_w4(&w, 4, 64, 64, true).unwrap();
    let w8 = quantize_w8(&w, 4, 64, 32).unwrap();

    let mut wr = KstWriter::create(&path, Kind::Model).unwrap();
    wr.set_config(tiny_config());
    wr.set_tokenizer_json("{\"model\":{}}".into());
    wr.set_chat_template("{{ messages }}".into());
    wr.set_meta("quantization", serde_json::json!({"dtype": "w4"}));
    wr.add_f32("a", &[3, 5], &f32s).unwrap();
    wr.add_f16("b", &[7], &f16s).unwrap();
    wr.add_bf16("c", &[2, 3], &bf16s).unwrap();
    wr.add_w4("d", &w4s).unwrap();
    wr.add_w4("e", &w4a).unwrap();
    wr.add_w8("f", &w8).unwrap();
    wr.finish().unwrap();

    let f = KstFile::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    f.verify_checksums().unwrap();
    assert_eq!(f.kind(), Kind::Model);
    assert_eq!(f.config().unwrap(), &tiny_config());
    assert_eq!(f.tokenizer_json(), Some("{\"model\":{}}"));
    assert_eq!(f.chat_template(), Some("{{ messages }}"));
    assert_eq!(f.meta("quantization").unwrap()["dtype"], "w4");
    assert_eq!(
        f.tensor_names().collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e", "f"]
    );
    assert_eq!(f.data_start() % 256, 0);

    let a = f.tensor("a").unwrap();
    assert_eq!((a.dtype, a.shape), (DType::F32, &[3usize, 5][..]));
    assert_eq!(a.data, bytemuck::cast_slice::<f32, u8>(&f32s));
    assert_eq!(a.to_f32_vec().unwrap(), f32s);
    assert_eq!(
        f.tensor("b").unwrap().data,
        bytemuck::cast_slice::<f16, u8>(&f16s)
    );
    assert_eq!(
        f.tensor("c").unwrap().data,
        bytemuck::cast_slice::<bf16, u8>(&bf16s)
    );
    for (name, m) in [("d", &w4s), ("e", &w4a)] {
        let t = f.tensor(name).unwrap();
        let q = t.quant.unwrap();
        assert_eq!(t.data, bytemuck::cast_slice::<u32, u8>(&m.q));
        assert_eq!(q.scales, bytemuck::cast_slice::<f16, u8>(&m.scales));
        assert_eq!(
            q.mins,
            m.mins.as_deref().map(bytemuck::cast_slice::<f16, u8>)
        );
        assert_eq!(q.group_size, m.group_size);
        assert_eq!(t.to_f32_vec().unwrap(), crate::dequantize_w4(m));
    }
    let t = f.tensor("f").unwrap();
    assert_eq!(t.data, bytemuck::cast_slice::<u32, u8>(&w8.q));
    assert_eq!(t.to_f32_vec().unwrap(), crate::dequantize_w8(&w8));
    // Every region is 256-aligned in the file.
    for e in &f.header().tensors {
        for (_, r) in e.regions() {
            assert_eq!((f.data_start() as u64 + r.offset) % ALIGN, 0);
        }
    }
    assert!(matches!(f.tensor("zz"), Err(crate::FormatError::MissingTensor(n)) if n == "zz"));
}

#[test]
fn header_hash_is_stable_and_content_sensitive() {
    let write = |path: &std::path::Path, v: f32| {
        let mut w = KstWriter::create(path, Kind::Head).unwrap();
        w.set_meta(
            "head",
            serde_json::json!({"kind": "verifier", "labels": ["a"]}),
        );
        w.add_f32("weight", &[1, 4], &[v, 2.0, 3.0, 4.0]).unwrap();
        w.finish().unwrap();
        let f = KstFile::open(path).unwrap();
        std::fs::remove_file(path).unwrap();
        f.header_hash()
    };
    let (p1, p2) = (tmp("h1"), tmp("h2"));
    let h1 = write(&p1, 1.0);
    assert_eq!(h1.len(), 16);
    assert_eq!(h1, write(&p2, 1.0), "same content, same hash");
    assert_ne!(
        h1,
        write(&p1, 1.5),
        "checksums are in the header, so data changes the hash"
    );
}

#[test]
fn writer_rejects_bad_tensors_and_leaves_no_file() {
    let path = tmp("bad");
    let mut w = KstWriter::create(&path, Kind::Model).unwrap();
    assert!(w.add_f32("x", &[2, 2], &[1.0; 3]).is_err());
    w.add_f32("x", &[4], &[1.0; 4]).unwrap();
    assert!(matches!(
        w.add_f32("x", &[4], &[1.0; 4]),
        Err(crate::FormatError::DuplicateTensor(_))
    ));
    assert!(w
        .add_raw(
            "q",
            DType::W4,
            &[2, 64],
            Some(32),
            &[0; 64],
            Some(&[0; 8]),
            None
        )
        .is_ok());
    assert!(w
        .add_raw(
            "r",
            DType::W4,
            &[2, 64],
            Some(48),
            &[0; 64],
            Some(&[0; 8]),
            None
        )
        .is_err());
    assert!(w
        .add_raw(
            "s",
            DType::W8,
            &[2, 64],
            Some(32),
            &[0; 128],
            Some(&[0; 8]),
            Some(&[0; 8])
        )
        .is_err());
    // A model without a config cannot be finished, and nothing is left behind.
    assert!(w.finish().is_err());
    assert!(!path.exists());
    let dir = path.parent().unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().to_string();
    let leftovers = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&stem))
        .count();
    assert_eq!(leftovers, 0, "partial files removed");
}

#[test]
fn header_outgrowing_its_reservation_falls_back_to_a_copy() {
    let path = tmp("grow");
    let mut w = KstWriter::create(&path, Kind::Head).unwrap();
    let vals: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    w.add_f32("weight", &[10, 100], &vals).unwrap();
    // Set after the first tensor and larger than the 1 MiB table reservation.
    w.set_tokenizer_json("x".repeat(3 << 20));
    w.add_f32("bias", &[10], &vals[..10]).unwrap();
    w.finish().unwrap();
    let f = KstFile::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    f.verify_checksums().unwrap();
    assert_eq!(f.tokenizer_json().map(str::len), Some(3 << 20));
    assert_eq!(f.tensor("weight").unwrap().to_f32_vec().unwrap(), vals);
    assert_eq!(f.tensor("bias").unwrap().to_f32_vec().unwrap(), &vals[..10]);
}

#[test]
fn empty_file_round_trips() {
    let path = tmp("empty");
    KstWriter::create(&path, Kind::Adapter)
        .unwrap()
        .finish()
        .unwrap();
    let f = KstFile::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(f.tensor_names().count(), 0);
    assert_eq!(f.data_start() % 256, 0);
}
