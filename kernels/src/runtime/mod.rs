//! The GPU runtime: device choice and policies (`Gpu`), typed errors (`KernelError`), command
//! recording (`Recorder`), the WGSL preprocessor and the pipeline cache.
//! Each submodule documents its own contract.

pub mod adapter;
pub mod error;
pub mod gpu;
pub mod pipelines;
pub mod preprocess;
pub mod recorder;
#[cfg(test)]
mod tests;
