//! Minimal NumPy `.npy` (format 1.0/2.0) reader and writer for little-endian `f4`, `f2`, `i4`, `i8`
//! arrays in C order: what `kestrel logits --out` writes and what the reference tests read.

use std::io::Write;

/// An array read from a `.npy` file, converted to f32 (integers and f16 are widened).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Why a `.npy` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("not a .npy file (bad magic)")]
    Magic,
    #[error("truncated .npy file")]
    Truncated,
    #[error("unsupported .npy header: {0}")]
    Header(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Write an f32 array (C order) as `.npy`.
pub fn write_f32(path: &std::path::Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let expect: usize = shape.iter().product();
    if expect != data.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("shape {shape:?} holds {expect} values, got {}", data.len()),
        ));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(bytemuck::cast_slice(data))?;
    f.flush()
}

/// Read a `.npy` file as f32.
pub fn read(path: &std::path::Path) -> Result<NpyArray, NpyError> {
    parse(&std::fs::read(path)?)
}

/// Parse `.npy` bytes as f32.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(NpyError::Magic);
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(NpyError::Truncated);
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(NpyError::Header(format!("version {v}"))),
    };
    let end = start.checked_add(hlen).ok_or(NpyError::Truncated)?;
    let header = std::str::from_utf8(bytes.get(start..end).ok_or(NpyError::Truncated)?)
        .map_err(|_| NpyError::Header("not utf-8".into()))?;
    if header.contains("'fortran_order': True") {
        return Err(NpyError::Header("fortran order".into()));
    }
    let descr = field(header, "'descr':")?
        .trim()
        .trim_matches(|c| c == '\'' || c == ',')
        .to_string();
    let shape_src = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| NpyError::Header("no shape".into()))?;
    let shape: Vec<usize> = shape_src
        .trim()
        .trim_start_matches('(')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| NpyError::Header(format!("bad dim {s}")))
        })
        .collect::<Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or(NpyError::Truncated)?;
    let body = &bytes[end..];
    let (size, conv): (usize, fn(&[u8]) -> f32) = match descr.as_str() {
        "<f4" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "<f2" => (2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        "<i4" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        "<i8" => (8, |b| {
            i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }),
        d => return Err(NpyError::Header(format!("dtype {d}"))),
    };
    let need = n.checked_mul(size).ok_or(NpyError::Truncated)?;
    if body.len() < need {
        return Err(NpyError::Truncated);
    }
    let data = body[..need].chunks_exact(size).map(conv).collect();
    Ok(NpyArray { shape, data })
}

fn field<'a>(header: &'a str, key: &str) -> Result<&'a str, NpyError> {
    let rest = header
        .split(key)
        .nth(1)
        .ok_or_else(|| NpyError::Header(format!("no {key}")))?;
    Ok(rest.trim_start().split(',').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("kestrel-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        super::write_f32(&p, &[3, 4], &data).unwrap();
        let a = super::read(&p).unwrap();
        assert_eq!(a.shape, vec![3, 4]);
        assert_eq!(a.data, data);
        let bytes = std::fs::read(&p).unwrap();
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert!(super::parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(super::parse(b"nope").is_err());
    }
}
