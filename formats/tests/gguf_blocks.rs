//! GGML Q4_0 / Q4_1 / Q8_0 blocks built here → W4 / W8 → dequantized values equal GGML's own
//! formula (`dequantize_row_q4_0` etc. in ggml-quants.c, re-typed below) bit for bit.

use half::f16;
use kestrel_formats::gguf::{ggml_dequantize, q4_to_w4, q8_0_to_w8, GgmlType};
use kestrel_formats::{dequantize_w4, dequantize_w8};
use proptest::prelude::*;

/// ggml-quants.c, transcribed: y[j] = (x0 - 8) * d, y[j + 16] = (x1 - 8) * d, ...
fn ggml_reference(ty: GgmlType, blocks: &[u8]) -> Vec<f32> {
    let (bs, qs_at) = match ty {
        GgmlType::Q4_0 => (18, 2),
        GgmlType::Q4_1 => (20, 4),
        _ => (34, 2),
    };
    let mut y = Vec::new();
    for b in blocks.chunks_exact(bs) {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        let m = f16::from_le_bytes([b[2], b[3]]).to_f32();
        let qs = &b[qs_at..];
        let mut out = [0f32; 32];
        if ty == GgmlType::Q8_0 {
            for j in 0..32 {
                out[j] = (qs[j] as i8) as f32 * d;
            }
        } else {
            for j in 0..16 {
                let (x0, x1) = ((qs[j] & 0x0F) as i32, (qs[j] >> 4) as i32);
                if ty == GgmlType::Q4_0 {
                    out[j] = (x0 - 8) as f32 * d;
                    out[j + 16] = (x1 - 8) as f32 * d;
                } else {
                    out[j] = x0 as f32 * d + m;
                    out[j + 16] = x1 as f32 * d + m;
                }
            }
        }
        y.extend_from_slice(&out);
    }
    y
}

fn finite_f16() -> impl Strategy<Value = [u8; 2]> {
    any::<u16>()
        .prop_map(|b| {
            if f16::from_bits(b).is_finite() {
                b
            } else {
                b & 0x7bff
            }
        })
        .prop_map(u16::to_le_bytes)
}

/// `rows × blocks_per_row` random blocks of `ty`.
fn blocks(ty: GgmlType) -> impl Strategy<Value = (usize, usize, Vec<u8>)> {
    let (_, bs) = ty.block_layout();
    (1usize..6, 1usize..5).prop_flat_map(move |(m, nb)| {
        let block = (
            finite_f16(),
            finite_f16(),
            proptest::collection::vec(any::<u8>(), 32),
        )
            .prop_map(move |(d, mn, qs)| {
                let mut b = d.to_vec();
                if ty == GgmlType::Q4_1 {
                    b.extend_from_slice(&mn);
                }
                b.extend_from_slice(&qs[..bs as usize - b.len()]);
                b
            });
        proptest::collection::vec(block, m * nb).prop_map(move |bl| (m, nb * 32, bl.concat()))
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

proptest! {
    #[test]
    fn q4_0_maps_bit_exactly((m, k, data) in blocks(GgmlType::Q4_0)) {
        let w = q4_to_w4(&data, m, k, false).unwrap();
        prop_assert!(w.check().is_ok() && w.mins.is_none() && w.group_size == 32);
        let want = bits(&ggml_reference(GgmlType::Q4_0, &data));
        prop_assert_eq!(bits(&dequantize_w4(&w)), want.clone());
        prop_assert_eq!(bits(&ggml_dequantize(GgmlType::Q4_0, &data, m * k).unwrap()), want);
    }

    #[test]
    fn q4_1_maps_bit_exactly((m, k, data) in blocks(GgmlType::Q4_1)) {
        let w = q4_to_w4(&data, m, k, true).unwrap();
        prop_assert!(w.check().is_ok() && w.mins.is_some());
        let want = bits(&ggml_reference(GgmlType::Q4_1, &data));
        prop_assert_eq!(bits(&dequantize_w4(&w)), want.clone());
        prop_assert_eq!(bits(&ggml_dequantize(GgmlType::Q4_1, &data, m * k).unwrap()), want);
    }

    #[test]
    fn q8_0_maps_bit_exactly((m, k, data) in blocks(GgmlType::Q8_0)) {
        let w = q8_0_to_w8(&data, m, k).unwrap();
        prop_assert!(w.check().is_ok());
        let want = bits(&ggml_reference(GgmlType::Q8_0, &data));
        prop_assert_eq!(bits(&dequantize_w8(&w)), want.clone());
        prop_assert_eq!(bits(&ggml_dequantize(GgmlType::Q8_0, &data, m * k).unwrap()), want);
    }
}

/// One hand-made Q4_0 block: nibble order (low nibbles = elements 0..15) is what moves.
#[test]
fn q4_0_nibble_order_by_hand() {
    let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4))); // element j = j, element j+16 = 15 - j
    let w = q4_to_w4(&b, 1, 32, false).unwrap();
    let want: Vec<f32> = (0..32)
        .map(|e| if e < 16 { e as f32 } else { (31 - e) as f32 })
        .map(|q| (q - 8.0) * 0.5)
        .collect();
    assert_eq!(dequantize_w4(&w), want);
    // W4 word 0 holds elements 0..8 in ascending nibbles.
    assert_eq!(w.q[0], 0x7654_3210);
    // Word 2 holds elements 16..24 = 15, 14, ..., 8.
    assert_eq!(w.q[2], 0x89ab_cdef);
}

#[test]
fn wrong_lengths_are_errors() {
    assert!(q4_to_w4(&[0u8; 17], 1, 32, false).is_err());
    assert!(q4_to_w4(&[0u8; 18], 1, 64, false).is_err());
    assert!(q4_to_w4(&[0u8; 18], 1, 31, false).is_err());
    assert!(q8_0_to_w8(&[0u8; 34], 2, 32).is_err());
    assert!(ggml_dequantize(GgmlType::Q4_1, &[0u8; 20], 33).is_err());
    assert!(ggml_dequantize(GgmlType::Q6_K, &[0u8; 210], 256).is_err());
}
