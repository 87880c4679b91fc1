//! Input auto-detection for `kestrel convert`.
//!
//! Rules, in order: a file ending in `.gguf` (or starting with the `GGUF` magic) → GGUF; a
//! directory with `adapter_config.json` → PEFT adapter; with `head.json` → head; with
//! `config.json` → HF model. Anything else is `FormatError::UnknownInput`.

use std::io::Read;
use std::path::Path;

use crate::FormatError;

/// What `kestrel convert` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Gguf,
    Peft,
    Head,
    Hf,
}

/// Classify `path` (see the module docs).
pub fn detect_input(path: &Path) -> Result<InputKind, FormatError> {
    let meta = std::fs::metadata(path).map_err(|e| FormatError::io(path, e))?;
    if meta.is_file() {
        let mut magic = [0u8; 4];
        let is_gguf_magic = std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
            && &magic == b"GGUF";
        if is_gguf_magic
            || path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        {
            return Ok(InputKind::Gguf);
        }
        return Err(FormatError::UnknownInput(format!(
            "{}: a file that is not GGUF (give a .gguf file or a checkpoint directory)",
            path.display()
        )));
    }
    for (file, kind) in [
        ("adapter_config.json", InputKind::Peft),
        ("head.json", InputKind::Head),
        ("config.json", InputKind::Hf),
    ] {
        if path.join(file).is_file() {
            return Ok(kind);
        }
    }
    Err(FormatError::UnknownInput(format!(
        "{}: no adapter_config.json, head.json or config.json",
        path.display()
    )))
}
