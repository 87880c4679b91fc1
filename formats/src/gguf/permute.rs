//! Undoing llama.cpp's q/k row permutation for Llama-architecture GGUF files.
//!
//! llama.cpp's `convert_hf_to_gguf.py` stores `attn_q` (with `n_head`) and `attn_k` (with
//! `n_head_kv`) rows permuted for GGML's interleaved RoPE:
//! `w.reshape(n_head, 2, D/2, K).swapaxes(1, 2).reshape(M, K)`, i.e. HF row `h·D + s·D/2 + r`
//! is stored at GGUF row `h·D + 2r + s` (s ∈ {0, 1}, r < D/2). The importer moves rows back so
//! the engine can use HF's rotate-half RoPE. Rows are moved whole, so quantized groups (which
//! run along K, inside a row) stay intact and the values stay bit-exact. Qwen2 files are
//! stored unpermuted.

use super::error::GgufError;
use crate::quant::{W4Matrix, W8Matrix};

/// `src[r]` = the GGUF row that holds HF row `r`, for a `[rows, K]` projection of `n_head` heads.
pub fn unpermute_source_rows(
    tensor: &str,
    rows: usize,
    n_head: usize,
) -> Result<Vec<usize>, GgufError> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return Err(GgufError::Convert(format!(
            "{tensor}: {rows} rows cannot be split into {n_head} heads of even size"
        )));
    }
    let d = rows / n_head;
    let half = d / 2;
    let mut src = Vec::with_capacity(rows);
    for h in 0..n_head {
        for s in 0..2 {
            for r in 0..half {
                src.push(h * d + 2 * r + s);
            }
        }
    }
    Ok(src)
}

/// Rows of a row-major array (`row_len` elements each) gathered in `src` order.
pub fn gather_rows<T: Copy>(data: &[T], row_len: usize, src: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(data.len());
    for &s in src {
        out.extend_from_slice(&data[s * row_len..(s + 1) * row_len]);
    }
    out
}

/// Reorder every array of a W4 matrix by `src` (rows of q, scales and mins move together).
pub fn gather_w4(w: &W4Matrix, src: &[usize]) -> W4Matrix {
    let groups = w.k / w.group_size;
    W4Matrix {
        q: gather_rows(&w.q, w.k / 8, src),
        scales: gather_rows(&w.scales, groups, src),
        mins: w.mins.as_ref().map(|m| gather_rows(m, groups, src)),
        ..*w
    }
}

/// Reorder every array of a W8 matrix by `src`.
pub fn gather_w8(w: &W8Matrix, src: &[usize]) -> W8Matrix {
    W8Matrix {
        q: gather_rows(&w.q, w.k / 4, src),
        scales: gather_rows(&w.scales, w.k / w.group_size, src),
        ..*w
    }
}
