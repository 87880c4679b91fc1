//! embedding vs the CPU reference for every layout in both f16 modes (exact), including ids
//! past the vocabulary.

use proptest::prelude::*;

use super::embedding;
use super::reference::embedding_ref;
use crate::matmul::tests::{HostData, Kind, Rng};
use crate::matrix::Matrix;
use crate::test_util::{both_modes, cases};
use crate::Recorder;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]
    #[test]
    fn matches_reference(
        kind in prop::sample::select(vec![Kind::W4Sym, Kind::W4Asym, Kind::W8, Kind::F16, Kind::F32]),
        m in 1u32..300,
        groups in 1u32..4,
        t in 1u32..40,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed | 1);
        let (k, g) = (32 * groups + if matches!(kind, Kind::F16 | Kind::F32) { seed as u32 % 3 } else { 0 }, 32);
        let h = HostData::random(kind, m, k, g, &mut rng);
        let ids: Vec<u32> = (0..t).map(|i| if i == 3 { m + 5 } else { rng.next_u32() % m }).collect();
        let want = embedding_ref(&h.host(), &ids);
        for gpu in both_modes() {
            let table = Matrix::upload(&gpu, &h.host()).unwrap();
            let idb = gpu.upload("ids", bytemuck::cast_slice(&ids)).unwrap();
            let out = gpu.upload("out", bytemuck::cast_slice(&vec![f32::NAN; want.len()])).unwrap();
            let mut rec = Recorder::new(&gpu);
            embedding(&mut rec, &table, &idb, &out, t).unwrap();
            rec.submit_and_wait().unwrap();
            let got = gpu.read::<f32>(&out, 0, want.len()).unwrap();
            prop_assert_eq!(got, want.clone(), "{:?} f16={}", kind, gpu.has_f16());
        }
    }
}
