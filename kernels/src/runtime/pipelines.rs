//! Compute-pipeline cache keyed by (kernel, entry point, override constants, f16 mode, subgroups,
//! how x, LoRA h and norm weights are read, where weights live).
//!
//! Contract: `Gpu::pipeline` preprocesses the source (see `preprocess`), compiles it inside error
//! scopes (a WGSL error is `KernelError::Validation` naming the kernel) and returns the same
//! `Arc` for the same key. Pipelines use the layout derived from the shader ("auto" layout):
//! bind group 0, binding 0 = params uniform, bindings 1.. = storage buffers then textures; a binding the shader
//! never touches is not part of the layout, so kernels must reference every declared binding.

use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::bind_groups::{FastHasher, FastMap};
use super::error::KernelError;
use super::gpu::Gpu;
use super::preprocess::{preprocess, ShaderFlags, XRead};

/// How a kernel reads its per-dispatch inputs, as [`Gpu::x_input`] and
/// [`Gpu::uniform_window`] chose for the buffers bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// Input x (binding 1, `wgsl/x32.wgsl`).
    pub x: XRead,
    /// A matmul's LoRA h through the uniform window (`#if H_UNIFORM`).
    pub h_uniform: bool,
    /// `rmsnorm_shrink`'s norm weight through the uniform window (`#if NORM_UNIFORM`).
    pub norm_uniform: bool,
}

/// A compiled pipeline's identity, owned. Lookups compare it with the caller's borrowed parts
/// ([`Key::is`]) under their hash ([`key_hash`]), so a hit allocates nothing: kernels look their
/// pipeline up on every dispatch.
struct Key {
    kernel: &'static str,
    entry: String,
    consts: Vec<(String, u64)>,
    /// What the source is preprocessed for (the f16 mode, subgroups, how x and h are read).
    flags: ShaderFlags,
}

impl Key {
    fn is(&self, kernel: &str, entry: &str, consts: &[(&str, f64)], flags: ShaderFlags) -> bool {
        self.kernel == kernel
            && self.entry == entry
            && self.flags == flags
            && self.consts.len() == consts.len()
            && self
                .consts
                .iter()
                .zip(consts)
                .all(|((k, v), (k2, v2))| k == k2 && *v == v2.to_bits())
    }
}

fn key_hash(kernel: &str, entry: &str, consts: &[(&str, f64)], flags: ShaderFlags) -> u64 {
    let mut h = FastHasher::default();
    kernel.hash(&mut h);
    entry.hash(&mut h);
    for (k, v) in consts {
        k.hash(&mut h);
        h.write_u64(v.to_bits());
    }
    flags.hash(&mut h);
    h.finish()
}

/// Pipelines under one key hash (more than one only on a collision).
type Bucket = Vec<(Key, Arc<wgpu::ComputePipeline>)>;

/// The cache owned by a `Gpu`: pipelines by key hash.
#[derive(Default)]
pub(crate) struct PipelineCache {
    map: Mutex<FastMap<u64, Bucket>>,
}

impl Gpu {
    /// The pipeline for `entry` of kernel `kernel` (source `src`, preprocessed for this device's
    /// f16 mode) with the given override constants; compiled once, then cached.
    pub fn pipeline(
        &self,
        kernel: &'static str,
        src: &'static str,
        entry: &str,
        consts: &[(&str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>, KernelError> {
        self.pipeline_x(kernel, src, entry, consts, XRead::Storage)
    }

    /// [`Gpu::pipeline`] for a kernel that reads x as `x` says (`#if X_UNIFORM` / `#if
    /// X_TEXTURE`; [`Gpu::x_input`]).
    pub fn pipeline_x(
        &self,
        kernel: &'static str,
        src: &'static str,
        entry: &str,
        consts: &[(&str, f64)],
        x: XRead,
    ) -> Result<Arc<wgpu::ComputePipeline>, KernelError> {
        self.pipeline_reads(
            kernel,
            src,
            entry,
            consts,
            Reads {
                x,
                ..Reads::default()
            },
        )
    }

    /// [`Gpu::pipeline_x`] for a kernel that also reads LoRA h or a norm weight through the
    /// uniform window (`#if H_UNIFORM`, `#if NORM_UNIFORM`; [`Gpu::uniform_window`]).
    pub fn pipeline_reads(
        &self,
        kernel: &'static str,
        src: &'static str,
        entry: &str,
        consts: &[(&str, f64)],
        reads: Reads,
    ) -> Result<Arc<wgpu::ComputePipeline>, KernelError> {
        let flags = ShaderFlags {
            f16: self.has_f16(),
            subgroups: self.has_subgroups(),
            x: reads.x,
            h_uniform: reads.h_uniform,
            norm_uniform: reads.norm_uniform,
            texel_textures: self.profile().weight_textures,
        };
        let hash = key_hash(kernel, entry, consts, flags);
        let lock_err = || KernelError::Internal("pipeline cache lock poisoned".into());
        if let Some((_, p)) = self
            .pipelines
            .map
            .lock()
            .map_err(|_| lock_err())?
            .get(&hash)
            .and_then(|list| {
                list.iter()
                    .find(|(k, _)| k.is(kernel, entry, consts, flags))
            })
        {
            return Ok(Arc::clone(p));
        }
        let code = preprocess(kernel, src, flags)?;
        let device = self.device();
        let pipeline = self
            .scoped(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(kernel),
                    source: wgpu::ShaderSource::Wgsl(code.as_str().into()),
                };
                let module = if self.shader_checks() {
                    device.create_shader_module(desc)
                } else {
                    // SAFETY: opt-in (`GpuOptions::unchecked_shaders`). Every wrapper checks buffer
                    // sizes against its params on the host before dispatching, so kernels index
                    // in bounds; this only removes naga's redundant per-access checks.
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                };
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: consts,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
            })
            .map_err(|e| match e {
                KernelError::Validation(m) => {
                    KernelError::Validation(format!("kernel `{kernel}` ({entry}): {m}"))
                }
                other => other,
            })?;
        self.counters.pipelines.fetch_add(1, Ordering::Relaxed);
        let pipeline = Arc::new(pipeline);
        let key = Key {
            kernel,
            entry: entry.to_string(),
            consts: consts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_bits()))
                .collect(),
            flags,
        };
        self.pipelines
            .map
            .lock()
            .map_err(|_| lock_err())?
            .entry(hash)
            .or_default()
            .push((key, Arc::clone(&pipeline)));
        Ok(pipeline)
    }
}
