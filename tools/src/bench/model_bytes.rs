//! What a decode step reads from the model file, and host views of its MLP matrices.
//!
//! Contract:
//! - `decode_bytes_per_token`: the weight bytes one decode step streams — every tensor's arrays
//!   (data + scales + mins) once, except that with an untied `lm_head` only one row of
//!   `model.embed_tokens.weight` is read (the lookup), while a tied embedding is read whole (it is
//!   the lm_head). KV-cache and activation traffic are not weights and are not counted.
//! - `host_matrix`: a `[M, K]` tensor of the file as a kernel `HostMatrix` (W4/W8/F16/F32; other
//!   dtypes are an error), borrowing the mmap.

use anyhow::{bail, Context};
use kestrel_formats::{DType, KstFile, ModelConfig, TensorView};
use kestrel_kernels::HostMatrix;

const EMBED: &str = "model.embed_tokens.weight";
const LM_HEAD: &str = "lm_head.weight";

fn view_bytes(v: &TensorView<'_>) -> u64 {
    let q = v.quant.as_ref();
    (v.data.len() + q.map_or(0, |q| q.scales.len() + q.mins.map_or(0, <[u8]>::len))) as u64
}

/// Weight bytes read per decoded token (see the module contract).
pub fn decode_bytes_per_token(file: &KstFile, cfg: &ModelConfig) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for name in file.tensor_names() {
        total += view_bytes(&file.tensor(name)?);
    }
    if file.tensor(LM_HEAD).is_ok() {
        let embed = view_bytes(&file.tensor(EMBED).context("the model has no embedding")?);
        let rows = cfg.vocab_size.max(1) as u64;
        total = total - embed + embed.div_ceil(rows);
    }
    Ok(total)
}

/// Tensor `name` as a `[M, K]` host matrix.
pub fn host_matrix<'f>(file: &'f KstFile, name: &str) -> anyhow::Result<HostMatrix<'f>> {
    let v = file.tensor(name)?;
    let &[m, k] = v.shape else {
        bail!("{name}: shape {:?} is not 2-D", v.shape);
    };
    let u = |x: usize| {
        u32::try_from(x).with_context(|| format!("{name}: dimension {x} does not fit u32"))
    };
    let (m, k) = (u(m)?, u(k)?);
    let quant = |what: &str| {
        v.quant
            .as_ref()
            .with_context(|| format!("{name}: {what} tensor without scales"))
    };
    Ok(match v.dtype {
        DType::W4 => {
            let q = quant("W4")?;
            HostMatrix::W4 {
                m,
                k,
                group_size: u(q.group_size)?,
                q: v.data,
                scales: q.scales,
                mins: q.mins,
            }
        }
        DType::W8 => {
            let q = quant("W8")?;
            HostMatrix::W8 {
                m,
                k,
                group_size: u(q.group_size)?,
                q: v.data,
                scales: q.scales,
            }
        }
        DType::F16 => HostMatrix::F16 { m, k, data: v.data },
        DType::F32 => HostMatrix::F32 { m, k, data: v.data },
        d => bail!("{name}: dtype {d} is not a kernel matrix layout"),
    })
}
