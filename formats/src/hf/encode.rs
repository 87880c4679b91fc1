//! Encode one float source tensor (F32/F16/BF16 bytes) into its `.kst` dtype and write it.
//!
//! Contract: the target dtype follows [`Role`] and [`ConvertOptions`] (module docs of
//! `options.rs`). Quantized targets are produced in row chunks of ~1 Mi elements on all cores
//! (scoped threads), so peak extra memory is the encoded output plus one f32 chunk per thread —
//! never an f32 copy of the whole tensor. Results are bit-identical to quantizing the whole
//! matrix at once (groups never straddle rows). A quantizer error names the tensor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use half::f16;
use safetensors::tensor::Dtype;

use crate::layout::Role;
use crate::st::{decode_f32, float_size};
use crate::{quantize_w4, quantize_w8, ConvertOptions, DType, FormatError, KstWriter, Scheme};

/// Target `.kst` dtype of a tensor with this role.
pub fn target_dtype(role: Role, opts: &ConvertOptions) -> DType {
    match role {
        Role::Linear => opts.dtype.linear_dtype(),
        Role::Embedding => opts.dtype.embedding_dtype(),
        Role::Norm | Role::Bias => DType::F32,
    }
}

/// Encoded arrays of one tensor, ready for `KstWriter::add_raw`.
struct Encoded {
    data: Vec<u8>,
    scales: Vec<u8>,
    mins: Vec<u8>,
}

/// Encode `bytes` (dtype `src`, shape `shape`) as `target` and add it to `w` under `name`.
pub fn write_tensor(
    w: &mut KstWriter,
    name: &str,
    src: Dtype,
    bytes: &[u8],
    shape: &[usize],
    target: DType,
    opts: &ConvertOptions,
) -> Result<(), FormatError> {
    let esize = float_size(src)
        .ok_or_else(|| FormatError::UnknownDType(format!("{src:?} (tensor `{name}`)")))?;
    let (m, k) = match shape {
        [m, k] => (*m, *k),
        [n] => (1, *n),
        _ => {
            return Err(FormatError::bad_tensor(
                name,
                format!("unexpected rank of shape {shape:?}"),
            ))
        }
    };
    let group = opts.group_size;
    let enc = match target {
        DType::W4 | DType::W8 if k % group != 0 => {
            return Err(FormatError::bad_tensor(
                name,
                format!("K = {k} is not a multiple of group size {group}; pick a group size that divides it"),
            ))
        }
        DType::W4 => {
            let asym = opts.scheme == Scheme::Asym;
            encode_rows(name, src, bytes, m, k, esize, |c, rows| {
                let q = quantize_w4(c, rows, k, group, asym)?;
                let mins = q.mins.as_deref().map(|v| bytemuck::cast_slice::<f16, u8>(v).to_vec()).unwrap_or_default();
                Ok(Encoded {
                    data: bytemuck::cast_slice(&q.q).to_vec(),
                    scales: bytemuck::cast_slice(&q.scales).to_vec(),
                    mins,
                })
            })?
        }
        DType::W8 => encode_rows(name, src, bytes, m, k, esize, |c, rows| {
            let q = quantize_w8(c, rows, k, group)?;
            Ok(Encoded { data: bytemuck::cast_slice(&q.q).to_vec(), scales: bytemuck::cast_slice(&q.scales).to_vec(), mins: vec![] })
        })?,
        DType::F16 if src == Dtype::F16 => Encoded { data: bytes.to_vec(), scales: vec![], mins: vec![] },
        DType::F32 if src == Dtype::F32 => Encoded { data: bytes.to_vec(), scales: vec![], mins: vec![] },
        DType::F16 => encode_rows(name, src, bytes, m, k, esize, |c, _| {
            let h: Vec<f16> = c.iter().map(|&x| f16::from_f32(x)).collect();
            Ok(Encoded { data: bytemuck::cast_slice(&h).to_vec(), scales: vec![], mins: vec![] })
        })?,
        DType::BF16 => return Err(FormatError::Unsupported(format!("bf16 as a storage target (tensor `{name}`)"))),
        DType::F32 => encode_rows(name, src, bytes, m, k, esize, |c, _| {
            Ok(Encoded { data: bytemuck::cast_slice(c).to_vec(), scales: vec![], mins: vec![] })
        })?,
    };
    let gs = target.is_quantized().then_some(group);
    let scales = target.is_quantized().then_some(enc.scales.as_slice());
    let mins = (!enc.mins.is_empty()).then_some(enc.mins.as_slice());
    w.add_raw(name, target, shape, gs, &enc.data, scales, mins)
}

/// Run `f` over row chunks of the decoded matrix in parallel and concatenate the results in order.
fn encode_rows<F>(
    name: &str,
    src: Dtype,
    bytes: &[u8],
    m: usize,
    k: usize,
    esize: usize,
    f: F,
) -> Result<Encoded, FormatError>
where
    F: Fn(&[f32], usize) -> Result<Encoded, FormatError> + Sync,
{
    if bytes.len() != m * k * esize {
        return Err(FormatError::bad_tensor(
            name,
            "byte length disagrees with shape",
        ));
    }
    let rows_per = ((1usize << 20) / k).max(1);
    let n_chunks = m.div_ceil(rows_per);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n_chunks)
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Encoded, FormatError>>>> =
        Mutex::new((0..n_chunks).map(|_| None).collect());
    let work = || loop {
        let c = next.fetch_add(1, Ordering::Relaxed);
        if c >= n_chunks {
            break;
        }
        let r0 = c * rows_per;
        let rows = rows_per.min(m - r0);
        let r = decode_f32(name, src, &bytes[r0 * k * esize..(r0 + rows) * k * esize])
            .and_then(|vals| f(&vals, rows))
            .map_err(|e| match e {
                FormatError::Quantize(msg) => {
                    FormatError::bad_tensor(name, format!("rows from {r0}: {msg}"))
                }
                other => other,
            });
        if let Ok(mut g) = results.lock() {
            g[c] = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let results = results
        .into_inner()
        .map_err(|_| FormatError::bad_tensor(name, "encoder thread panicked"))?;
    let mut out = Encoded {
        data: Vec::new(),
        scales: Vec::new(),
        mins: Vec::new(),
    };
    for r in results {
        let e = r.ok_or_else(|| FormatError::bad_tensor(name, "encoder chunk missing"))??;
        out.data.extend_from_slice(&e.data);
        out.scales.extend_from_slice(&e.scales);
        out.mins.extend_from_slice(&e.mins);
    }
    Ok(out)
}
