//! The `.kst` reader's bad-input suite: every malformed file is a typed error, never a panic.

mod common;

use common::TempDir;
use kestrel_formats::kst::{ALIGN, MAX_HEADER_LEN};
use kestrel_formats::{quantize_w4, FormatError, Kind, KstFile, KstWriter};
use serde_json::{json, Value};

/// A valid head file with an f32 tensor and a W4 tensor; returns its bytes.
fn valid_bytes() -> Vec<u8> {
    let d = TempDir::new("kst-bad");
    let p = d.join("h.kst");
    let mut w = KstWriter::create(&p, Kind::Head).unwrap();
    w.add_f32("weight", &[2, 64], &common::values(1, 128))
        .unwrap();
    w.add_w4(
        "q",
        &quantize_w4(&common::values(2, 128), 2, 64, 32, true).unwrap(),
    )
    .unwrap();
    w.finish().unwrap();
    std::fs::read(p).unwrap()
}

fn split(b: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(b[16..24].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&b[24..24 + n]).unwrap();
    let start = (24 + n).div_ceil(ALIGN as usize) * ALIGN as usize;
    (header, b[start..].to_vec())
}

fn rebuild(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut b = b"KESTREL\0".to_vec();
    b.extend(1u32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend((h.len() as u64).to_le_bytes());
    b.extend(&h);
    b.resize(b.len().div_ceil(ALIGN as usize) * ALIGN as usize, 0);
    b.extend(data);
    b
}

fn mutate(f: impl FnOnce(&mut Value)) -> Result<KstFile, FormatError> {
    let (mut h, data) = split(&valid_bytes());
    f(&mut h);
    KstFile::from_bytes(rebuild(&h, &data))
}

#[test]
fn rebuild_of_valid_is_valid() {
    let f = mutate(|_| {}).unwrap();
    f.verify_checksums().unwrap();
    assert_eq!(f.kind(), Kind::Head);
    assert!(matches!(f.config(), Err(FormatError::MissingSection(_))));
}

#[test]
fn truncated_files() {
    let b = valid_bytes();
    for len in [0, 7, 23, 24, 100, b.len() - 250, b.len() - 600] {
        let r = KstFile::from_bytes(b[..len].to_vec());
        assert!(
            matches!(
                r,
                Err(FormatError::Truncated(_)
                    | FormatError::BadHeaderLength { .. }
                    | FormatError::BadRegion { .. }
                    | FormatError::BadMagic)
            ),
            "len {len}: {:?}",
            r.err()
        );
    }
}

#[test]
fn bad_magic_version_flags() {
    let mut b = valid_bytes();
    b[0] = b'X';
    assert!(matches!(KstFile::from_bytes(b), Err(FormatError::BadMagic)));
    let mut b = valid_bytes();
    b[8] = 2;
    assert!(matches!(
        KstFile::from_bytes(b),
        Err(FormatError::UnsupportedVersion { found: 2, .. })
    ));
    let mut b = valid_bytes();
    b[12] = 1;
    assert!(matches!(
        KstFile::from_bytes(b),
        Err(FormatError::HeaderJson(_))
    ));
}

#[test]
fn header_length_past_file_or_huge() {
    for len in [u64::MAX, MAX_HEADER_LEN + 1, 1 << 40] {
        let mut b = valid_bytes();
        b[16..24].copy_from_slice(&len.to_le_bytes());
        assert!(
            matches!(
                KstFile::from_bytes(b),
                Err(FormatError::BadHeaderLength { .. })
            ),
            "{len}"
        );
    }
    let mut b = valid_bytes();
    let past = b.len() as u64;
    b[16..24].copy_from_slice(&past.to_le_bytes());
    assert!(matches!(
        KstFile::from_bytes(b),
        Err(FormatError::BadHeaderLength { .. })
    ));
    let mut b = valid_bytes();
    b[16..24].copy_from_slice(&10u64.to_le_bytes());
    assert!(matches!(
        KstFile::from_bytes(b),
        Err(FormatError::HeaderJson(_))
    ));
}

#[test]
fn header_not_json_or_not_utf8() {
    let (_, data) = split(&valid_bytes());
    let mut b = rebuild(&json!({}), &data);
    assert!(matches!(
        KstFile::from_bytes(b.clone()),
        Err(FormatError::HeaderJson(_))
    ));
    b[24] = 0xFF;
    assert!(matches!(
        KstFile::from_bytes(b),
        Err(FormatError::HeaderJson(_))
    ));
    assert!(matches!(
        mutate(|h| h["kind"] = "weird".into()),
        Err(FormatError::HeaderJson(_))
    ));
    assert!(matches!(
        mutate(|h| h["extra_field"] = 1.into()),
        Err(FormatError::HeaderJson(_))
    ));
    assert!(
        matches!(mutate(|h| h["kind"] = "model".into()), Err(FormatError::HeaderJson(m)) if m.contains("config"))
    );
}

#[test]
fn out_of_bounds_and_misaligned_offsets() {
    let oob = mutate(|h| h["tensors"][0]["data"]["offset"] = (1u64 << 20).into());
    assert!(
        matches!(oob, Err(FormatError::BadRegion { ref name, .. }) if name == "weight"),
        "{oob:?}"
    );
    let overflow = mutate(|h| h["tensors"][0]["data"]["offset"] = (u64::MAX - 255).into());
    assert!(matches!(overflow, Err(FormatError::BadRegion { .. })));
    let mis = mutate(|h| h["tensors"][0]["data"]["offset"] = 4.into());
    assert!(
        matches!(mis, Err(FormatError::BadRegion { reason, .. }) if reason.contains("aligned"))
    );
    let neg = mutate(|h| h["tensors"][0]["data"]["offset"] = (-256).into());
    assert!(matches!(neg, Err(FormatError::HeaderJson(_))));
}

#[test]
fn overlapping_regions() {
    let r = mutate(|h| {
        let off = h["tensors"][0]["data"]["offset"].clone();
        h["tensors"][1]["scales"]["offset"] = off;
    });
    assert!(matches!(r, Err(FormatError::BadRegion { reason, .. }) if reason.contains("overlaps")));
}

#[test]
fn shape_times_dtype_must_equal_length() {
    assert!(matches!(
        mutate(|h| h["tensors"][0]["shape"] = json!([2, 63])),
        Err(FormatError::BadRegion { .. })
    ));
    assert!(matches!(
        mutate(|h| h["tensors"][0]["data"]["length"] = 4.into()),
        Err(FormatError::BadRegion { .. })
    ));
    assert!(matches!(
        mutate(|h| h["tensors"][0]["shape"] = json!([])),
        Err(FormatError::BadTensor { .. })
    ));
    assert!(matches!(
        mutate(|h| h["tensors"][0]["shape"] = json!([0, 64])),
        Err(FormatError::BadTensor { .. })
    ));
    let huge = mutate(|h| h["tensors"][0]["shape"] = json!([u64::MAX, u64::MAX, 2]));
    assert!(matches!(huge, Err(FormatError::BadTensor { .. })));
    assert!(matches!(
        mutate(|h| h["tensors"][1]["group_size"] = 48.into()),
        Err(FormatError::BadTensor { .. })
    ));
    assert!(matches!(
        mutate(|h| h["tensors"][1]["dtype"] = "w8".into()),
        Err(FormatError::BadRegion { .. } | FormatError::BadTensor { .. })
    ));
    assert!(matches!(
        mutate(|h| h["tensors"][1]["shape"] = json!([128])),
        Err(FormatError::BadTensor { .. })
    ));
    let no_scales = mutate(|h| {
        h["tensors"][1].as_object_mut().unwrap().remove("scales");
    });
    assert!(matches!(no_scales, Err(FormatError::BadTensor { .. })));
    let dense_scales = mutate(|h| h["tensors"][0]["scales"] = h["tensors"][1]["scales"].clone());
    assert!(matches!(dense_scales, Err(FormatError::BadTensor { .. })));
}

#[test]
fn duplicate_names_and_unknown_dtype() {
    assert!(
        matches!(mutate(|h| h["tensors"][1]["name"] = "weight".into()), Err(FormatError::DuplicateTensor(n)) if n == "weight")
    );
    assert!(
        matches!(mutate(|h| h["tensors"][0]["dtype"] = "q4_k".into()), Err(FormatError::UnknownDType(d)) if d == "q4_k")
    );
    assert!(matches!(
        mutate(|h| h["tensors"][0]["name"] = "".into()),
        Err(FormatError::BadTensor { .. })
    ));
}

#[test]
fn corrupted_data_fails_checksum_not_open() {
    let mut b = valid_bytes();
    let n = b.len();
    b[n - 300] ^= 0x55; // inside the last array (the W4 mins) or its padding
    let (h, _) = split(&b);
    let f = KstFile::from_bytes(b).unwrap();
    let last = &h["tensors"][1]["mins"];
    let start = f.data_start() as u64 + last["offset"].as_u64().unwrap();
    let inside =
        (n as u64 - 300) < start + last["length"].as_u64().unwrap() && (n as u64 - 300) >= start;
    assert_eq!(f.verify_checksums().is_err(), inside);
    let mut b = valid_bytes();
    let start = KstFile::from_bytes(b.clone()).unwrap().data_start();
    b[start] ^= 1;
    let f = KstFile::from_bytes(b).unwrap();
    assert!(
        matches!(f.verify_checksums(), Err(FormatError::ChecksumMismatch { name, .. }) if name == "weight")
    );
}

#[test]
fn config_is_validated_on_open() {
    let r = mutate(|h| {
        h["kind"] = "model".into();
        h["config"] = json!({"arch": "qwen2", "vocab_size": 0, "hidden_size": 8, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 1, "num_key_value_heads": 1, "head_dim": 8,
            "max_position_embeddings": 8, "rms_norm_eps": 1e-6, "rope_theta": 1e4, "tie_word_embeddings": true,
            "attention_bias": true, "bos_token_id": null, "eos_token_ids": []});
    });
    assert!(matches!(r, Err(FormatError::BadConfig(_))));
}

#[test]
fn a_directory_or_device_is_named_not_enodev() {
    let d = TempDir::new("kst-dir");
    let err = KstFile::open(d.path())
        .err()
        .expect("a directory is refused");
    assert!(
        matches!(err, FormatError::Io { .. }) && err.to_string().contains("is a directory"),
        "{err}"
    );
    let err = KstFile::open(std::path::Path::new("/dev/null"))
        .err()
        .expect("a device is refused");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
