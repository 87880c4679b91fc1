//! `KernelError`: every failure of the GPU runtime and the kernels as a typed value.
//!
//! wgpu reports problems three ways — error scopes (validation, out-of-memory, internal), the
//! device-lost callback, and `Result`s from adapter/device requests, polling and mapping. The
//! runtime folds all of them into this enum so an embedding app is never panicked by a kernel.
//! Shape and limit violations detected on the host (before anything reaches wgpu) are
//! `Shape` / `Limit`.

use thiserror::Error;

/// Errors of `kestrel-kernels`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KernelError {
    /// No adapter matched (or none exists). The message lists the adapters that were seen.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("device request failed: {0}")]
    RequestDevice(String),
    /// A wgpu validation error (a bug in a kernel wrapper or a bad argument).
    #[error("wgpu validation error: {0}")]
    Validation(String),
    /// The device could not allocate memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// A wgpu internal error (driver or backend failure).
    #[error("wgpu internal error: {0}")]
    Internal(String),
    /// The device was lost (destroyed, driver reset, ...); the `Gpu` is unusable from now on.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// Arguments with inconsistent shapes or sizes.
    #[error("shape error: {0}")]
    Shape(String),
    /// A device limit would be exceeded (binding size, buffer size, workgroups per dimension).
    #[error("device limit exceeded: {0}")]
    Limit(String),
    /// The WGSL preprocessor rejected a kernel source.
    #[error("shader preprocessing of `{kernel}` failed: {message}")]
    Preprocess {
        /// Kernel id.
        kernel: String,
        /// What went wrong, with the line number.
        message: String,
    },
    /// Mapping a buffer for reading failed, or polling the device failed.
    #[error("buffer readback failed: {0}")]
    Readback(String),
}

impl KernelError {
    /// Converts a wgpu scope error into the matching variant.
    pub(crate) fn from_wgpu(err: wgpu::Error) -> Self {
        match err {
            wgpu::Error::OutOfMemory { source } => KernelError::OutOfMemory(source.to_string()),
            wgpu::Error::Validation { description, .. } => KernelError::Validation(description),
            wgpu::Error::Internal { description, .. } => KernelError::Internal(description),
        }
    }
}
