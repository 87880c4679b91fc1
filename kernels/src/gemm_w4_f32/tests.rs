//! gemm_w4_f32 (reached through `matmul` with T > 16) vs the CPU reference in both f16 modes,
//! including T and M that are not multiples of the 32 × 32 workgroup tile.

use proptest::prelude::*;

use crate::matmul::tests::{check_case, HostData, Kind, Rng};
use crate::test_util::{both_modes, cases};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5)))]
    #[test]
    fn matches_reference(
        asym in any::<bool>(),
        m in 1u32..100,
        g in prop::sample::select(vec![32u32, 64, 128]),
        groups in 1u32..4,
        t in 17u32..80,
        mask in 0u8..8,
        seed in any::<u64>(),
    ) {
        let kind = if asym { Kind::W4Asym } else { Kind::W4Sym };
        let h = HostData::random(kind, m, g * groups, g, &mut Rng(seed | 1));
        check_case(&both_modes(), &h, t, seed, mask, 5e-4);
    }
}
