//! `KstWriter`: streams tensors to disk one at a time and assembles the `.kst` on `finish`.
//!
//! Every `add_*` validates its arguments with the same rules the reader applies
//! ([`super::expected_lengths`]), so a writer cannot produce a file the reader rejects.
//! If the writer is dropped without `finish`, its partial files are removed.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use super::validate::{check_new_name, expected_lengths};
use super::{align_up, Header, Kind, Region, TensorEntry, ALIGN, MAGIC, MAX_HEADER_LEN, VERSION};
use crate::{DType, FormatError, ModelConfig, W4Matrix, W8Matrix};

/// Streaming `.kst` writer.
pub struct KstWriter {
    out: PathBuf,
    data_path: PathBuf,
    data: Option<BufWriter<File>>,
    pos: u64,
    header: Header,
    names: HashSet<String>,
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

impl KstWriter {
    /// Start writing `path` (the file appears only on a successful `finish`).
    pub fn create(path: &Path, kind: Kind) -> Result<Self, FormatError> {
        let data_path = with_suffix(path, ".data.partial");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&data_path)
            .map_err(|e| FormatError::io(&data_path, e))?;
        Ok(KstWriter {
            out: path.to_path_buf(),
            data_path,
            data: Some(BufWriter::with_capacity(1 << 20, f)),
            pos: 0,
            header: Header {
                kind,
                config: None,
                tokenizer_json: None,
                chat_template: None,
                base_hash: None,
                meta: BTreeMap::new(),
                tensors: Vec::new(),
            },
            names: HashSet::new(),
        })
    }

    pub fn set_config(&mut self, c: ModelConfig) {
        self.header.config = Some(c);
    }
    pub fn set_tokenizer_json(&mut self, s: String) {
        self.header.tokenizer_json = Some(s);
    }
    pub fn set_chat_template(&mut self, s: String) {
        self.header.chat_template = Some(s);
    }
    pub fn set_base_hash(&mut self, h: String) {
        self.header.base_hash = Some(h);
    }
    /// Set a free-form header section (`quantization`, `adapter`, `head`, `source`, ...).
    pub fn set_meta(&mut self, key: &str, v: serde_json::Value) {
        self.header.meta.insert(key.to_string(), v);
    }

    /// Bytes of tensor data written so far.
    pub fn bytes_written(&self) -> u64 {
        self.pos
    }

    fn write_region(&mut self, bytes: &[u8]) -> Result<Region, FormatError> {
        let w = self.data.as_mut().ok_or_else(|| {
            FormatError::io(
                &self.data_path,
                std::io::Error::other("writer already finished"),
            )
        })?;
        let offset = self.pos;
        w.write_all(bytes)
            .map_err(|e| FormatError::io(&self.data_path, e))?;
        let end = offset + bytes.len() as u64;
        let padded = align_up(end, ALIGN).unwrap_or(end);
        let zeros = [0u8; ALIGN as usize];
        w.write_all(&zeros[..(padded - end) as usize])
            .map_err(|e| FormatError::io(&self.data_path, e))?;
        self.pos = padded;
        Ok(Region {
            offset,
            length: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        })
    }

    /// Add a tensor from raw little-endian arrays (any dtype). Lengths are checked exactly.
    pub fn add_raw(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        group_size: Option<usize>,
        data: &[u8],
        scales: Option<&[u8]>,
        mins: Option<&[u8]>,
    ) -> Result<(), FormatError> {
        check_new_name(&self.names, name)?;
        let want = expected_lengths(name, dtype, shape, group_size)?;
        let bad = |what: &str, got: usize, want: u64| {
            FormatError::bad_tensor(
                name,
                format!("{what} has {got} bytes, {dtype} {shape:?} needs {want}"),
            )
        };
        if data.len() as u64 != want.data {
            return Err(bad("data", data.len(), want.data));
        }
        match (want.scales, scales) {
            (None, None) => {}
            (Some(n), Some(s)) if s.len() as u64 == n => {}
            (Some(n), Some(s)) => return Err(bad("scales", s.len(), n)),
            _ => {
                return Err(FormatError::bad_tensor(
                    name,
                    "scales present iff dtype is w4/w8",
                ))
            }
        }
        match (dtype, mins) {
            (_, None) => {}
            (DType::W4, Some(m)) if Some(m.len() as u64) == want.scales => {}
            (_, Some(m)) => return Err(bad("mins", m.len(), want.scales.unwrap_or(0))),
        }
        let data = self.write_region(data)?;
        let scales = scales.map(|s| self.write_region(s)).transpose()?;
        let mins = mins.map(|m| self.write_region(m)).transpose()?;
        self.names.insert(name.to_string());
        self.header.tensors.push(TensorEntry {
            name: name.to_string(),
            dtype,
            shape: shape.to_vec(),
            group_size,
            data,
            scales,
            mins,
        });
        Ok(())
    }

    pub fn add_f32(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
    ) -> Result<(), FormatError> {
        self.add_raw(
            name,
            DType::F32,
            shape,
            None,
            bytemuck::cast_slice(data),
            None,
            None,
        )
    }

    pub fn add_f16(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f16],
    ) -> Result<(), FormatError> {
        self.add_raw(
            name,
            DType::F16,
            shape,
            None,
            bytemuck::cast_slice(data),
            None,
            None,
        )
    }

    pub fn add_bf16(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[bf16],
    ) -> Result<(), FormatError> {
        self.add_raw(
            name,
            DType::BF16,
            shape,
            None,
            bytemuck::cast_slice(data),
            None,
            None,
        )
    }

    pub fn add_w4(&mut self, name: &str, w: &W4Matrix) -> Result<(), FormatError> {
        w.check()
            .map_err(|e| FormatError::bad_tensor(name, e.to_string()))?;
        let mins = w.mins.as_deref().map(bytemuck::cast_slice::<f16, u8>);
        self.add_raw(
            name,
            DType::W4,
            &[w.m, w.k],
            Some(w.group_size),
            bytemuck::cast_slice(&w.q),
            Some(bytemuck::cast_slice(&w.scales)),
            mins,
        )
    }

    pub fn add_w8(&mut self, name: &str, w: &W8Matrix) -> Result<(), FormatError> {
        w.check()
            .map_err(|e| FormatError::bad_tensor(name, e.to_string()))?;
        self.add_raw(
            name,
            DType::W8,
            &[w.m, w.k],
            Some(w.group_size),
            bytemuck::cast_slice(&w.q),
            Some(bytemuck::cast_slice(&w.scales)),
            None,
        )
    }

    /// Write prefix + header + data to `<out>.partial`, then rename it to `<out>`.
    pub fn finish(mut self) -> Result<(), FormatError> {
        if let Some(c) = &self.header.config {
            c.validate()?;
        } else if self.header.kind == Kind::Model {
            return Err(FormatError::MissingSection(
                "a model file needs a config (set_config)".into(),
            ));
        }
        let mut data = self.data.take().ok_or_else(|| {
            FormatError::io(
                &self.data_path,
                std::io::Error::other("writer already finished"),
            )
        })?;
        data.flush()
            .map_err(|e| FormatError::io(&self.data_path, e))?;
        let mut data = data
            .into_inner()
            .map_err(|e| FormatError::io(&self.data_path, e.into_error()))?;
        let json =
            serde_json::to_vec(&self.header).map_err(|e| FormatError::HeaderJson(e.to_string()))?;
        if json.len() as u64 > MAX_HEADER_LEN {
            return Err(FormatError::BadHeaderLength {
                len: json.len() as u64,
                reason: format!("larger than the {MAX_HEADER_LEN}-byte cap"),
            });
        }
        let tmp = with_suffix(&self.out, ".partial");
        let io = |e| FormatError::io(&tmp, e);
        let mut f = BufWriter::new(File::create(&tmp).map_err(io)?);
        f.write_all(&MAGIC).map_err(io)?;
        f.write_all(&VERSION.to_le_bytes()).map_err(io)?;
        f.write_all(&0u32.to_le_bytes()).map_err(io)?;
        f.write_all(&(json.len() as u64).to_le_bytes())
            .map_err(io)?;
        f.write_all(&json).map_err(io)?;
        let header_end = super::PREFIX_LEN + json.len() as u64;
        let pad = align_up(header_end, ALIGN).unwrap_or(header_end) - header_end;
        f.write_all(&vec![0u8; pad as usize]).map_err(io)?;
        let mut f = f.into_inner().map_err(|e| io(e.into_error()))?;
        data.seek(SeekFrom::Start(0))
            .map_err(|e| FormatError::io(&self.data_path, e))?;
        // `io::copy` between files uses copy_file_range on Linux: a kernel-side copy.
        std::io::copy(&mut data, &mut f).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &self.out).map_err(|e| FormatError::io(&self.out, e))?;
        Ok(())
    }
}

impl Drop for KstWriter {
    fn drop(&mut self) {
        self.data = None;
        let _ = std::fs::remove_file(&self.data_path);
        let _ = std::fs::remove_file(with_suffix(&self.out, ".partial"));
    }
}
