//! Structural validation of a parsed header against the data section it describes.
//!
//! Rules (also in FORMAT.md): names non-empty, unique, ≤ 1024 bytes; dtype known; rank 1..=4, every
//! dim ≥ 1; W4/W8 rank 2 `[M, K]`, `group_size ∈ {32, 64, 128}`, `K % group_size == 0`; dense
//! tensors carry no group size / scales / mins, W8 no mins; each region's length equals
//! [`expected_lengths`]; each region offset is a multiple of 256, `offset + align4(length)` fits in
//! the data section (so a kernel may read whole u32 words), and no two regions overlap.

use std::collections::{HashMap, HashSet};

use super::header::{RawHeader, RawTensor};
use super::{align_up, Header, Kind, Region, TensorEntry, ALIGN};
use crate::quant::GROUP_SIZES;
use crate::{DType, FormatError};

/// Exact byte lengths of a tensor's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayLengths {
    /// Dense data, or the W4/W8 `q` array.
    pub data: u64,
    /// f16 scales (and mins, when present) for W4/W8.
    pub scales: Option<u64>,
}

/// The byte lengths a tensor of `dtype`/`shape`/`group_size` must have (checked arithmetic).
pub fn expected_lengths(
    name: &str,
    dtype: DType,
    shape: &[usize],
    group_size: Option<usize>,
) -> Result<ArrayLengths, FormatError> {
    let bad = |r: String| FormatError::bad_tensor(name, r);
    if shape.is_empty() || shape.len() > 4 || shape.contains(&0) {
        return Err(bad(format!(
            "shape {shape:?} must have rank 1..=4 and no zero dims"
        )));
    }
    let n = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    if let Some(size) = dtype.dense_size() {
        if group_size.is_some() {
            return Err(bad(format!("dtype {dtype} takes no group_size")));
        }
        let data = n
            .checked_mul(size as u64)
            .ok_or_else(|| bad("byte length overflows".into()))?;
        return Ok(ArrayLengths { data, scales: None });
    }
    let [m, k] = shape else {
        return Err(bad(format!(
            "{dtype} tensor must be rank 2 [M, K], got {shape:?}"
        )));
    };
    let g = group_size.ok_or_else(|| bad(format!("{dtype} tensor needs a group_size")))?;
    if !GROUP_SIZES.contains(&g) || k % g != 0 {
        return Err(bad(format!(
            "group_size {g} must be one of {GROUP_SIZES:?} and divide K = {k}"
        )));
    }
    let groups = (*m as u64) * ((*k / g) as u64);
    let data = match dtype {
        DType::W4 => n / 2,
        _ => n,
    };
    Ok(ArrayLengths {
        data,
        scales: Some(groups * 2),
    })
}

/// Validate a raw header for a data section of `data_len` bytes.
pub(crate) fn validate_header(
    raw: RawHeader,
    data_len: u64,
) -> Result<(Header, HashMap<String, usize>), FormatError> {
    let kind = Kind::parse(&raw.kind)?;
    if let Some(cfg) = &raw.config {
        cfg.validate()?;
    }
    if kind == Kind::Model && raw.config.is_none() {
        return Err(FormatError::HeaderJson(
            "a model file must have a config".into(),
        ));
    }
    let mut index = HashMap::with_capacity(raw.tensors.len().min(1 << 16));
    let mut tensors = Vec::with_capacity(raw.tensors.len().min(1 << 16));
    let mut spans: Vec<(u64, u64, usize)> = Vec::new();
    for (i, rt) in raw.tensors.into_iter().enumerate() {
        let t = validate_tensor(rt, data_len)?;
        if index.insert(t.name.clone(), i).is_some() {
            return Err(FormatError::DuplicateTensor(t.name));
        }
        for (_, r) in t.regions() {
            spans.push((
                r.offset,
                r.offset + align_up(r.length, 4).unwrap_or(u64::MAX),
                i,
            ));
        }
        tensors.push(t);
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[0].1 > w[1].0 {
            let (a, b) = (&tensors[w[0].2].name, &tensors[w[1].2].name);
            return Err(FormatError::BadRegion {
                name: b.clone(),
                array: format!("at offset {}", w[1].0),
                reason: format!("overlaps a region of `{a}`"),
            });
        }
    }
    let header = Header {
        kind,
        config: raw.config,
        tokenizer_json: raw.tokenizer_json,
        chat_template: raw.chat_template,
        base_hash: raw.base_hash,
        meta: raw.meta,
        tensors,
    };
    Ok((header, index))
}

fn validate_tensor(rt: RawTensor, data_len: u64) -> Result<TensorEntry, FormatError> {
    let name = rt.name;
    if name.is_empty() || name.len() > 1024 {
        return Err(FormatError::bad_tensor(
            &name,
            "name must be 1..=1024 bytes",
        ));
    }
    let dtype = DType::parse(&rt.dtype)?;
    let shape = rt
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| FormatError::bad_tensor(&name, "dimension does not fit in usize"))?;
    let group_size = rt
        .group_size
        .map(usize::try_from)
        .transpose()
        .map_err(|_| FormatError::bad_tensor(&name, "group_size does not fit in usize"))?;
    let want = expected_lengths(&name, dtype, &shape, group_size)?;
    check_region(&name, "data", &rt.data, want.data, data_len)?;
    match (want.scales, &rt.scales) {
        (None, None) => {}
        (Some(len), Some(r)) => check_region(&name, "scales", r, len, data_len)?,
        (None, Some(_)) => {
            return Err(FormatError::bad_tensor(
                &name,
                format!("{dtype} has no scales"),
            ))
        }
        (Some(_), None) => return Err(FormatError::bad_tensor(&name, "missing scales region")),
    }
    match (&rt.mins, dtype, want.scales) {
        (None, _, _) => {}
        (Some(r), DType::W4, Some(len)) => check_region(&name, "mins", r, len, data_len)?,
        (Some(_), _, _) => {
            return Err(FormatError::bad_tensor(
                &name,
                format!("{dtype} has no mins"),
            ))
        }
    }
    Ok(TensorEntry {
        name,
        dtype,
        shape,
        group_size,
        data: rt.data,
        scales: rt.scales,
        mins: rt.mins,
    })
}

fn check_region(
    name: &str,
    array: &str,
    r: &Region,
    want: u64,
    data_len: u64,
) -> Result<(), FormatError> {
    let err = |reason: String| FormatError::BadRegion {
        name: name.to_string(),
        array: array.to_string(),
        reason,
    };
    if r.length != want {
        return Err(err(format!(
            "length {} != {want} expected from shape × dtype",
            r.length
        )));
    }
    if !r.offset.is_multiple_of(ALIGN) {
        return Err(err(format!(
            "offset {} is not {ALIGN}-byte aligned",
            r.offset
        )));
    }
    let end = align_up(r.length, 4)
        .and_then(|l| r.offset.checked_add(l))
        .ok_or_else(|| err("offset + length overflows".into()))?;
    if end > data_len {
        return Err(err(format!(
            "[{}, {end}) extends past the data section ({data_len} bytes)",
            r.offset
        )));
    }
    Ok(())
}

/// Names must be unique within a writer too (shared by `KstWriter`).
pub(crate) fn check_new_name(names: &HashSet<String>, name: &str) -> Result<(), FormatError> {
    if name.is_empty() || name.len() > 1024 {
        return Err(FormatError::bad_tensor(name, "name must be 1..=1024 bytes"));
    }
    if names.contains(name) {
        return Err(FormatError::DuplicateTensor(name.to_string()));
    }
    Ok(())
}
