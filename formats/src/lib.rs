//! `kestrel-formats`: the `.kst` container (validating mmap reader, streaming writer), dtypes,
//! W4/W8 group quantization, `ModelConfig`, and the importers (HF safetensors dirs, GGUF, PEFT
//! LoRA adapters, linear heads). No GPU code lives here.
//!
//! Contract: nothing in this crate panics on data from a file or a user; every failure is a
//! [`FormatError`]. Layouts are ARCHITECTURE.md's "Weight layouts"; the byte-level file spec is
//! `formats/FORMAT.md`.

pub mod config;
pub mod detect;
pub mod dtype;
pub mod error;
pub mod export;
pub mod gguf;
pub mod head;
pub mod hf;
pub mod inspect;
pub mod kst;
pub mod layout;
pub mod npy;
pub mod options;
pub mod peft;
pub mod quant;
pub mod rope;
pub mod st;
pub mod synth;

pub use config::{Arch, ModelConfig};
pub use detect::{detect_input, InputKind};
pub use dtype::DType;
pub use error::FormatError;
pub use export::export_hf;
pub use head::convert_head;
pub use hf::convert_hf;
pub use kst::{remove_partial_files, Header, Kind, KstFile, KstWriter, QuantView, TensorView};
pub use options::{ConvertOptions, Progress, Scheme, WeightDType};
pub use peft::convert_peft;
pub use quant::{dequantize_w4, dequantize_w8, quantize_w4, quantize_w8, W4Matrix, W8Matrix};
pub use rope::RopeScaling;
