//! Kestrel kernels: the GPU runtime and hand-written WGSL kernels, each with a CPU reference.
//!
//! Runtime (see [`runtime`]): open a [`Gpu`], upload buffers, record dispatches into a
//! [`Recorder`], submit. Kernels: one module per kernel id (folder = file = entry point), each
//! with its contract in `mod.rs`, its WGSL, a CPU `reference` and property tests.
//! Tests need a GPU adapter (lavapipe on CI); a missing adapter fails them with a clear message.

pub mod runtime;

pub use runtime::error::KernelError;
pub use runtime::gpu::{Gpu, GpuOptions, GpuStats};
pub use runtime::recorder::{fold_workgroups, BufferBinding, Recorder};

#[cfg(test)]
pub(crate) mod test_util;
