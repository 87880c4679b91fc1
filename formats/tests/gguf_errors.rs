//! Bad-input suite for the GGUF parser: every malformed file is a typed error, never a panic.

use kestrel_formats::gguf::{parse, GgmlType, GgufBuilder, GgufError, MetaValue};
use kestrel_formats::FormatError;

fn valid() -> Vec<u8> {
    let mut b = GgufBuilder::new();
    b.meta("general.architecture", MetaValue::Str("llama"))
        .meta(
            "tokenizer.ggml.tokens",
            MetaValue::Array(vec![MetaValue::Str("a"), MetaValue::Str("b")]),
        )
        .tensor("w", &[32, 2], GgmlType::Q8_0, vec![0u8; 68])
        .tensor("n", &[4], GgmlType::F32, vec![0u8; 16]);
    b.build()
}

fn err(bytes: &[u8]) -> GgufError {
    match parse(bytes) {
        Ok(_) => panic!("malformed input was accepted"),
        Err(FormatError::Gguf(e)) => e,
        Err(other) => panic!("not a GGUF error: {other}"),
    }
}

/// Header prefix: magic, version, tensor count, metadata count.
fn header(version: u32, n_tensors: u64, n_meta: u64) -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&n_tensors.to_le_bytes());
    v.extend_from_slice(&n_meta.to_le_bytes());
    v
}

fn push_str(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&(s.len() as u64).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
}

#[test]
fn valid_file_parses() {
    let bytes = valid();
    let g = parse(&bytes).unwrap();
    assert_eq!(g.tensors.len(), 2);
    let w = g.tensor("w").unwrap();
    assert_eq!((w.ty, w.n_bytes, w.rows()), (GgmlType::Q8_0, 68, 2));
    assert_eq!(g.data(w).len(), 68);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = valid();
    for len in 0..bytes.len() {
        // Cutting inside the last tensor's data must fail too (its range leaves the file).
        assert!(
            parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
}

#[test]
fn bad_magic_and_version() {
    let mut bytes = valid();
    bytes[0] = b'X';
    assert!(matches!(err(&bytes), GgufError::BadMagic(_)));
    for v in [0u32, 1, 4, 0x0300_0000] {
        let mut bytes = valid();
        bytes[4..8].copy_from_slice(&v.to_le_bytes());
        assert!(matches!(err(&bytes), GgufError::UnsupportedVersion(x) if x == v));
    }
    assert!(matches!(err(b"GGU"), GgufError::Truncated { .. }));
}

#[test]
fn huge_counts_are_capped_before_allocating() {
    assert!(matches!(
        err(&header(3, u64::MAX, 0)),
        GgufError::TooMany { what: "tensor", .. }
    ));
    assert!(matches!(
        err(&header(3, 0, u64::MAX)),
        GgufError::TooMany {
            what: "metadata",
            ..
        }
    ));
    // A count below the cap but larger than the remaining bytes could hold.
    assert!(matches!(
        err(&header(3, 1000, 0)),
        GgufError::TooMany { .. }
    ));
    let mut v = header(3, 0, 1);
    push_str(&mut v, "k");
    v.extend_from_slice(&9u32.to_le_bytes()); // array
    v.extend_from_slice(&8u32.to_le_bytes()); // of strings
    v.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        err(&v),
        GgufError::TooMany {
            what: "array element",
            ..
        }
    ));
}

#[test]
fn huge_string_lengths() {
    let mut v = header(3, 0, 1);
    v.extend_from_slice(&u64::MAX.to_le_bytes());
    v.extend_from_slice(&[0u8; 16]);
    assert!(matches!(err(&v), GgufError::StringTooLong { .. }));
    let mut v = header(3, 0, 1);
    v.extend_from_slice(&1000u64.to_le_bytes()); // under the cap, beyond the file
    v.extend_from_slice(b"key and some more bytes");
    assert!(matches!(err(&v), GgufError::Truncated { .. }));
}

#[test]
fn bad_values() {
    let mut v = header(3, 0, 1);
    push_str(&mut v, "k");
    v.extend_from_slice(&13u32.to_le_bytes());
    v.extend_from_slice(&[0u8; 8]);
    assert!(matches!(err(&v), GgufError::BadValueType { ty: 13, .. }));

    let mut v = header(3, 0, 1);
    push_str(&mut v, "k");
    v.extend_from_slice(&9u32.to_le_bytes());
    v.extend_from_slice(&9u32.to_le_bytes()); // array of arrays
    v.extend_from_slice(&1u64.to_le_bytes());
    v.extend_from_slice(&[0u8; 16]);
    assert!(matches!(err(&v), GgufError::NestedArray(_)));

    let mut v = header(3, 0, 1);
    v.extend_from_slice(&2u64.to_le_bytes());
    v.extend_from_slice(&[0xff, 0xfe]); // not UTF-8
    v.extend_from_slice(&[0u8; 8]);
    assert!(matches!(err(&v), GgufError::InvalidUtf8 { .. }));

    let mut b = GgufBuilder::new();
    b.meta("a", MetaValue::U8(1)).meta("a", MetaValue::U8(2));
    assert!(matches!(err(&b.build()), GgufError::DuplicateKey(k) if k == "a"));

    for a in [0u32, 3, 1 << 20] {
        let mut b = GgufBuilder::new();
        b.alignment(a);
        assert!(
            matches!(err(&b.build()), GgufError::BadAlignment(_)),
            "alignment {a}"
        );
    }
    let mut b = GgufBuilder::new();
    b.meta("general.alignment", MetaValue::Str("32"));
    assert!(matches!(err(&b.build()), GgufError::WrongType { .. }));
}

#[test]
fn bad_tensor_infos() {
    let one = |f: &dyn Fn(&mut GgufBuilder)| {
        let mut b = GgufBuilder::new();
        f(&mut b);
        err(&b.build())
    };
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[1, 1, 1, 1, 1], 0, 0);
        }),
        GgufError::TooManyDims { n_dims: 5, .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[], 0, 0);
        }),
        GgufError::TooManyDims { n_dims: 0, .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[4, 0], 0, 0);
        }),
        GgufError::BadShape { .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[1 << 32, 1 << 32], 0, 0);
        }),
        GgufError::BadShape { .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[4], 4, 0);
        }),
        GgufError::UnknownTensorType { id: 4, .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[4], 999, 0);
        }),
        GgufError::UnknownTensorType { .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[33], 8, 0);
        }),
        GgufError::RowNotBlockAligned { .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[4], 0, 7);
        }),
        GgufError::MisalignedTensor { .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[4], 0, 0);
        }),
        GgufError::TensorOutOfBounds { .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.raw_tensor_info("t", &[4], 0, u64::MAX - 31);
        }),
        GgufError::TensorOutOfBounds { .. }
    ));
    assert!(matches!(
        one(&|b| {
            b.tensor("t", &[4], GgmlType::F32, vec![0; 16]).tensor(
                "t",
                &[4],
                GgmlType::F32,
                vec![0; 16],
            );
        }),
        GgufError::DuplicateTensor(_)
    ));
    // Data that is there but shorter than the shape says.
    assert!(matches!(
        one(&|b| {
            b.tensor("t", &[64, 4], GgmlType::Q4_0, vec![0; 18]);
        }),
        GgufError::TensorOutOfBounds { .. }
    ));
}

/// Single-byte corruptions anywhere in a valid file: errors or a (different) valid parse, no panic.
#[test]
fn byte_flips_never_panic() {
    let bytes = valid();
    for i in 0..bytes.len() {
        for x in [0x00u8, 0xff, 0x80, 0x01] {
            let mut b = bytes.clone();
            b[i] ^= x;
            let _ = parse(&b);
        }
    }
}

#[test]
fn version_2_parses_like_3() {
    let mut bytes = valid();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let g = parse(&bytes).unwrap();
    assert_eq!((g.version, g.tensors.len()), (2, 2));
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Edit {
        Set(usize, u8),
        Truncate(usize),
        Insert(usize, Vec<u8>),
        /// Overwrite 8 bytes with a little-endian u64 (counts, lengths, dims, offsets).
        Word(usize, u64),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let big = prop_oneof![
            any::<u64>(),
            0u64..64,
            Just(u64::MAX),
            Just(1 << 32),
            Just(1 << 24)
        ];
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
            any::<usize>().prop_map(Edit::Truncate),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..16)
            )
                .prop_map(|(i, v)| Edit::Insert(i, v)),
            (any::<usize>(), big).prop_map(|(i, w)| Edit::Word(i, w)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Random edits of a valid file: `parse` returns, and whatever it accepts is in bounds.
        #[test]
        fn edited_files_never_panic(edits in proptest::collection::vec(edit(), 1..4)) {
            let mut b = valid();
            for e in edits {
                let n = b.len().max(1);
                match e {
                    Edit::Set(i, x) => { let i = i % n; if i < b.len() { b[i] = x; } }
                    Edit::Truncate(i) => b.truncate(i % n),
                    Edit::Insert(i, v) => { let i = i % (b.len() + 1); b.splice(i..i, v); }
                    Edit::Word(i, w) => {
                        let i = i % n;
                        if i + 8 <= b.len() { b[i..i + 8].copy_from_slice(&w.to_le_bytes()); }
                    }
                }
            }
            if let Ok(g) = parse(&b) {
                for t in &g.tensors {
                    prop_assert!(t.start + t.n_bytes <= b.len() as u64);
                    prop_assert_eq!(g.data(t).len() as u64, t.n_bytes);
                }
            }
        }
    }
}
