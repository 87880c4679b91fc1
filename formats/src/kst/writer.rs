//! `KstWriter`: streams tensors to disk one at a time and assembles the `.kst` on `finish`.
//!
//! Every `add_*` validates its arguments with the same rules the reader applies
//! ([`super::expected_lengths`]), so a writer cannot produce a file the reader rejects.
//!
//! Single pass: at the first tensor the writer reserves room for the header (the header so far,
//! i.e. config + tokenizer + template + meta, plus 1 MiB for the tensor table, 256-aligned) and
//! streams data after it into `<out>.partial.<pid>.<n>`; `finish` writes the prefix and the header —
//! padded with trailing JSON spaces to fill the reservation — at offset 0, syncs, and renames to
//! `<out>`. If the header outgrew the reservation, it falls back to writing a fresh file and
//! copying the data after the header. Dropping an unfinished writer removes its partial files.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use super::validate::{check_new_name, expected_lengths};
use super::{align_up, Header, Kind, Region, TensorEntry, ALIGN, MAGIC, MAX_HEADER_LEN, VERSION};
use crate::{DType, FormatError, ModelConfig, W4Matrix, W8Matrix};

/// Slack reserved for the tensor table beyond the header known at the first tensor.
const TABLE_RESERVE: u64 = 1 << 20;

/// Streaming `.kst` writer.
pub struct KstWriter {
    out: PathBuf,
    part: PathBuf,
    file: Option<BufWriter<File>>,
    /// Absolute file offset of the data section, fixed at the first tensor.
    data_base: Option<u64>,
    /// Bytes of data (with padding) written after `data_base`.
    pos: u64,
    header: Header,
    names: HashSet<String>,
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Partial files of the writers alive in this process (for [`remove_partial_files`]).
static PARTIALS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn partials() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PARTIALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes the partial files of every unfinished writer in this process. A writer removes its
/// own when dropped; this is for a process about to exit without unwinding (a SIGINT/SIGTERM
/// handler), so an interrupted conversion leaves nothing behind.
pub fn remove_partial_files() {
    for p in partials().drain(..) {
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(with_suffix(&p, ".2"));
    }
}

/// Refuses an output path that exists and is not a regular file: the final rename would replace
/// a directory entry such as `/dev/null`, a FIFO or a symlink with a regular file.
fn check_output(path: &Path) -> Result<(), FormatError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(FormatError::BadPath {
            path: path.display().to_string(),
            reason: "exists and is not a regular file (a directory, device, FIFO, socket or \
                     symlink); refusing to replace it"
                .into(),
        }),
        _ => Ok(()),
    }
}

impl KstWriter {
    /// Start writing `path` (the file appears only on a successful `finish`). An existing
    /// regular file at `path` is replaced then; anything else there is refused now.
    pub fn create(path: &Path, kind: Kind) -> Result<Self, FormatError> {
        check_output(path)?;
        // Unique per writer, so concurrent writers of one path never share a partial file
        // (the final rename is atomic: the last to finish wins, with a complete file).
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let part = with_suffix(path, &format!(".partial.{}.{seq}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .map_err(|e| FormatError::io(&part, e))?;
        partials().push(part.clone());
        Ok(KstWriter {
            out: path.to_path_buf(),
            part,
            file: Some(BufWriter::with_capacity(1 << 20, f)),
            data_base: None,
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

    fn finished_err(&self) -> FormatError {
        FormatError::io(&self.part, std::io::Error::other("writer already finished"))
    }

    fn write_region(&mut self, bytes: &[u8]) -> Result<Region, FormatError> {
        if self.data_base.is_none() {
            let known = serde_json::to_vec(&self.header)
                .map_err(|e| FormatError::HeaderJson(e.to_string()))?;
            let base = align_up(
                super::PREFIX_LEN + known.len() as u64 + TABLE_RESERVE,
                ALIGN,
            )
            .unwrap_or(u64::MAX);
            let f = self.file.as_mut().ok_or_else(|| {
                FormatError::io(&self.part, std::io::Error::other("writer already finished"))
            })?;
            f.seek(SeekFrom::Start(base))
                .map_err(|e| FormatError::io(&self.part, e))?;
            self.data_base = Some(base);
        }
        let part = self.part.clone();
        let w = self.file.as_mut().ok_or_else(|| {
            FormatError::io(&part, std::io::Error::other("writer already finished"))
        })?;
        let offset = self.pos;
        w.write_all(bytes).map_err(|e| FormatError::io(&part, e))?;
        let end = offset + bytes.len() as u64;
        let padded = align_up(end, ALIGN).unwrap_or(end);
        let zeros = [0u8; ALIGN as usize];
        w.write_all(&zeros[..(padded - end) as usize])
            .map_err(|e| FormatError::io(&part, e))?;
        self.pos = padded;
        Ok(Region {
            offset,
            length: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        })
    }

    /// Add a tensor from raw little-endian arrays (any dtype). Lengths are checked exactly.
    #[allow(clippy::too_many_arguments)] // one argument per header field of a tensor entry
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
        // Non-finite weights, norms, biases, scales or mins never reach a file: the model would
        // silently produce NaN logits.
        let float = match dtype {
            DType::F32 => Some(Float::F32),
            DType::F16 => Some(Float::F16),
            DType::BF16 => Some(Float::BF16),
            DType::W4 | DType::W8 => None,
        };
        let arrays = [
            ("data", float.map(|f| (f, data))),
            ("scales", scales.map(|s| (Float::F16, s))),
            ("mins", mins.map(|m| (Float::F16, m))),
        ];
        for (what, arr) in arrays {
            if let Some(i) = arr.and_then(|(f, bytes)| first_non_finite(f, bytes)) {
                return Err(FormatError::bad_tensor(
                    name,
                    format!("non-finite value in {what} at element {i}"),
                ));
            }
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

    /// Write the prefix and header, sync, and rename the partial file to `<out>`.
    pub fn finish(mut self) -> Result<(), FormatError> {
        if let Some(c) = &self.header.config {
            c.validate()?;
        } else if self.header.kind == Kind::Model {
            return Err(FormatError::MissingSection(
                "a model file needs a config (set_config)".into(),
            ));
        }
        let file = self.file.take().ok_or_else(|| self.finished_err())?;
        let part = self.part.clone();
        let io = |e| FormatError::io(&part, e);
        let mut file = file.into_inner().map_err(|e| io(e.into_error()))?;
        let mut json =
            serde_json::to_vec(&self.header).map_err(|e| FormatError::HeaderJson(e.to_string()))?;
        let needed = align_up(super::PREFIX_LEN + json.len() as u64, ALIGN).unwrap_or(u64::MAX);
        if needed - super::PREFIX_LEN > MAX_HEADER_LEN {
            return Err(FormatError::BadHeaderLength {
                len: json.len() as u64,
                reason: format!("larger than the {MAX_HEADER_LEN}-byte cap"),
            });
        }
        let base = self.data_base.unwrap_or(needed);
        if needed <= base {
            // Fill the reservation: trailing spaces are valid JSON whitespace.
            json.resize((base - super::PREFIX_LEN) as usize, b' ');
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            write_prefix(&mut file, &json).map_err(io)?;
            if self.data_base.is_none() {
                file.set_len(base).map_err(io)?;
            }
            file.sync_all().map_err(io)?;
            drop(file);
        } else {
            // The header outgrew its reservation: write a fresh file and copy the data after it.
            let tmp = with_suffix(&self.part, ".2");
            let io2 = |e| FormatError::io(&tmp, e);
            let mut out = File::create(&tmp).map_err(io2)?;
            json.resize((needed - super::PREFIX_LEN) as usize, b' ');
            write_prefix(&mut out, &json).map_err(io2)?;
            file.seek(SeekFrom::Start(base)).map_err(io)?;
            std::io::copy(&mut file.take(self.pos), &mut out).map_err(io2)?;
            out.sync_all().map_err(io2)?;
            std::fs::rename(&tmp, &part).map_err(io2)?;
        }
        check_output(&self.out)?;
        std::fs::rename(&part, &self.out).map_err(|e| FormatError::io(&self.out, e))?;
        Ok(())
    }
}

fn write_prefix(f: &mut File, json: &[u8]) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(super::PREFIX_LEN as usize);
    head.extend_from_slice(&MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&(json.len() as u64).to_le_bytes());
    f.write_all(&head)?;
    f.write_all(json)
}

impl Drop for KstWriter {
    fn drop(&mut self) {
        self.file = None;
        partials().retain(|p| p != &self.part);
        let _ = std::fs::remove_file(&self.part);
        let _ = std::fs::remove_file(with_suffix(&self.part, ".2"));
    }
}

#[derive(Clone, Copy)]
enum Float {
    F32,
    F16,
    BF16,
}

/// Index of the first NaN/±Inf element of little-endian `bytes` (exponent bits all ones).
fn first_non_finite(f: Float, bytes: &[u8]) -> Option<usize> {
    match f {
        Float::F32 => bytes.chunks_exact(4).position(|b| {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x7f80_0000 == 0x7f80_0000
        }),
        Float::F16 => bytes
            .chunks_exact(2)
            .position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7c00 == 0x7c00),
        Float::BF16 => bytes
            .chunks_exact(2)
            .position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7f80 == 0x7f80),
    }
}
