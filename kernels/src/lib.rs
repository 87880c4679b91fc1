//! Kestrel kernels: the GPU runtime and hand-written WGSL kernels, each with a CPU reference.
//!
//! Runtime (see [`runtime`]): open a [`Gpu`], upload buffers, record dispatches into a
//! [`Recorder`], submit. Kernels: one module per kernel id (folder = file = entry point), each
//! with its contract in `mod.rs`, its WGSL, a CPU `reference` and property tests.
//! Tests need a GPU adapter (lavapipe on CI); a missing adapter fails them with a clear message.

pub mod runtime;

pub mod embedding;
pub mod lora_shrink;
pub mod matmul;
pub mod matmul_quant_f32;
pub mod matrix;
pub mod matvec;
pub mod roofline_probe;

pub use embedding::embedding;
pub use lora_shrink::{lora_shrink, lora_shrink_swiglu, LoraA};
pub use matmul::{matmul, matmul_swiglu, Epilogue, LoraB, LoraExpand};
pub use matrix::{BlockData, HostMatrix, Layout, Matrix, RowBlock};
pub use roofline_probe::{measure_read_bandwidth, ProbeResult};
pub use runtime::error::KernelError;
pub use runtime::gpu::{
    DeviceProfile, Gpu, GpuOptions, GpuStats, ProfileKind, Reads, Texels, XInput, XRead,
    UNIFORM_X_BYTES,
};
pub use runtime::recorder::{fold_workgroups, BufferBinding, Recorder};

#[cfg(test)]
pub(crate) mod test_util;

// K2's kernels (norms, RoPE, KV cache, attention, sampling, heads) and their shared checks.
pub mod attention_decode_f16;
pub mod attention_prefill_f16;
pub mod heads;
pub mod pooled_head_f32;
pub mod rmsnorm_f32;
pub mod rope_f32;
pub mod rope_kv_append_f16;
pub mod sampling;
pub(crate) mod shape;
pub mod swiglu_f32;
#[cfg(test)]
pub(crate) mod testdata;
