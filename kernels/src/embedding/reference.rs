//! CPU reference for `embedding`: rows of the dequantised table, zeros for ids ≥ V.

use crate::matrix::HostMatrix;

/// `[T, K]` rows of `table` selected by `ids`.
pub fn embedding_ref(table: &HostMatrix<'_>, ids: &[u32]) -> Vec<f32> {
    let dense = crate::matmul::reference::dequant(table);
    let (m, k) = match *table {
        HostMatrix::W4 { m, k, .. }
        | HostMatrix::W8 { m, k, .. }
        | HostMatrix::F16 { m, k, .. }
        | HostMatrix::F32 { m, k, .. } => (m as usize, k as usize),
    };
    ids.iter()
        .flat_map(|&id| {
            let id = id as usize;
            if id < m {
                dense[id * k..(id + 1) * k].to_vec()
            } else {
                vec![0.0; k]
            }
        })
        .collect()
}
