//! The kernels a loaded model runs, compiled once at load (`Engine::kernels`).

use kestrel_kernels::attention_decode_f16::AttentionDecode;
use kestrel_kernels::attention_prefill_f16::AttentionPrefill;
use kestrel_kernels::pooled_head_f32::PooledHead;
use kestrel_kernels::rmsnorm_f32::RmsNorm;
use kestrel_kernels::rope_kv_append_f16::RopeKvAppend;
use kestrel_kernels::sampling::{Argmax, Sample};
use kestrel_kernels::swiglu_f32::Swiglu;
use kestrel_kernels::Gpu;

use crate::error::Result;

/// Compiled kernels the forward pass uses.
pub(crate) struct Kernels {
    pub(crate) rmsnorm: RmsNorm,
    pub(crate) rope_kv: RopeKvAppend,
    pub(crate) attention_prefill: AttentionPrefill,
    pub(crate) attention_decode: AttentionDecode,
    pub(crate) swiglu: Swiglu,
    pub(crate) pooled_head: PooledHead,
    pub(crate) argmax: Argmax,
    pub(crate) sample: Sample,
}

impl Kernels {
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Kernels {
            rmsnorm: RmsNorm::new(gpu)?,
            rope_kv: RopeKvAppend::new(gpu)?,
            attention_prefill: AttentionPrefill::new(gpu)?,
            attention_decode: AttentionDecode::new(gpu)?,
            swiglu: Swiglu::new(gpu)?,
            pooled_head: PooledHead::new(gpu)?,
            argmax: Argmax::new(gpu)?,
            sample: Sample::new(gpu)?,
        })
    }
}
