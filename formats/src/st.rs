//! Memory-mapped safetensors inputs shared by the HF, PEFT and head importers.
//!
//! Contract: [`StFile::open`] maps a file and validates its header with the `safetensors` crate
//! (offsets contiguous, in bounds, sizes = elements × dtype). Tensor bytes are borrowed from the
//! map; [`decode_f32`] converts F32/F16/BF16 to f32 (any other input dtype is
//! `FormatError::UnknownDType`). Nothing is read until a tensor is asked for, so memory stays
//! bounded by what the caller holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;

use crate::FormatError;

/// One mapped safetensors file.
pub struct StFile {
    path: PathBuf,
    map: memmap2::Mmap,
    data_start: usize,
    meta: Metadata,
}

impl StFile {
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let file = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
        // SAFETY: read-only map of an input file; see `KstFile::open` for the reasoning.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(path, e))?;
        let (n, meta) = SafeTensors::read_metadata(&map).map_err(|e| FormatError::SafeTensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(StFile {
            path: path.to_path_buf(),
            map,
            data_start: 8 + n,
            meta,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.meta.tensors().into_keys().collect();
        v.sort();
        v
    }

    /// dtype and shape of `name`, if present.
    pub fn info(&self, name: &str) -> Option<(Dtype, &[usize])> {
        self.meta.info(name).map(|i| (i.dtype, i.shape.as_slice()))
    }

    /// Raw little-endian bytes of `name`.
    pub fn bytes(&self, name: &str) -> Result<&[u8], FormatError> {
        let info = self
            .meta
            .info(name)
            .ok_or_else(|| FormatError::MissingTensor(name.to_string()))?;
        let (a, b) = info.data_offsets;
        // In bounds: validated by `read_metadata` (data section = exactly the rest of the file).
        self.map
            .get(self.data_start + a..self.data_start + b)
            .ok_or_else(|| FormatError::SafeTensors {
                path: self.path.clone(),
                reason: format!("`{name}` out of bounds"),
            })
    }

    /// Drop `name`'s pages from this process's mapping once it has been converted, so resident
    /// memory stays bounded by one tensor even for inputs larger than RAM (advisory; the pages
    /// stay in the OS page cache and are re-read from the file if touched again).
    pub fn release(&self, name: &str) {
        if let Some(info) = self.meta.info(name) {
            let (a, b) = info.data_offsets;
            #[cfg(unix)]
            // SAFETY: a read-only, file-backed shared mapping: MADV_DONTNEED only drops page-table
            // entries; later reads fault the same bytes back in from the file. The range is in
            // bounds (validated by `read_metadata`) and no `&mut` to the map exists.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.data_start + a,
                    b - a,
                )
            };
        }
    }

    /// `name` as f32 (from F32/F16/BF16).
    pub fn to_f32(&self, name: &str) -> Result<Vec<f32>, FormatError> {
        let (dtype, _) = self
            .info(name)
            .ok_or_else(|| FormatError::MissingTensor(name.to_string()))?;
        decode_f32(name, dtype, self.bytes(name)?)
    }

    /// User metadata (`__metadata__`) of the file.
    pub fn user_metadata(&self) -> BTreeMap<String, String> {
        self.meta
            .metadata()
            .clone()
            .map(|m| m.into_iter().collect())
            .unwrap_or_default()
    }
}

/// Decode a float tensor's bytes to f32.
pub fn decode_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, FormatError> {
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(FormatError::UnknownDType(format!(
                "{other:?} (tensor `{name}`; expected F32, F16 or BF16)"
            )))
        }
    })
}

/// Bytes per element of an accepted float input dtype.
pub fn float_size(dtype: Dtype) -> Option<usize> {
    match dtype {
        Dtype::F32 => Some(4),
        Dtype::F16 | Dtype::BF16 => Some(2),
        _ => None,
    }
}
