//! The GPU runtime: device choice and policies (`Gpu`), typed errors (`KernelError`), command
//! recording (`Recorder`) with cached bind groups, the WGSL preprocessor and the pipeline cache.
//! Each submodule documents its own contract.

pub mod adapter;
mod bind_groups;
pub mod error;
pub mod gpu;
pub mod pipelines;
pub mod preprocess;
pub mod recorder;
#[cfg(test)]
mod tests;
