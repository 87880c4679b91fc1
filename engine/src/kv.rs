//! The KV cache: f16, one shared prefix segment + one suffix segment per path, per layer.
//!
//! Layout (the attention kernels' contract):
//! - prefix `K_pre`, `V_pre`: `[Hkv, P_max, D]` f16 — the prompt, encoded once by the base weights;
//! - suffix `K_suf`, `V_suf`: `[N_max, Hkv, S_max, D]` f16 — each path's generated tokens.
//! Chat and reasoning decode over the same prefix (KV sharing); N reasoning paths share it too.
//! Memory is computed up front (`bytes_for`) and checked against the budget before allocation, so a
//! request that does not fit is an `EngineError::MemoryBudget`, never an out-of-memory crash.

use kestrel_kernels::Gpu;

use crate::error::{EngineError, Result};

/// Capacity of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvShape {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// P_max: prefix (prompt) capacity in tokens.
    pub prefix: usize,
    /// N_max: paths.
    pub paths: usize,
    /// S_max: suffix (generated) capacity per path.
    pub suffix: usize,
}

impl KvShape {
    /// Bytes of one prefix segment (K or V) for one layer.
    pub fn prefix_segment_bytes(&self) -> u64 {
        (self.kv_heads * self.prefix.max(1) * self.head_dim * 2) as u64
    }

    /// Bytes of one suffix segment (K or V) for one layer.
    pub fn suffix_segment_bytes(&self) -> u64 {
        (self.paths.max(1) * self.kv_heads * self.suffix.max(1) * self.head_dim * 2) as u64
    }

    /// Total bytes the cache needs.
    pub fn bytes(&self) -> u64 {
        self.layers as u64 * 2 * (self.prefix_segment_bytes() + self.suffix_segment_bytes())
    }
}

pub(crate) struct LayerKv {
    pub k_pre: wgpu::Buffer,
    pub v_pre: wgpu::Buffer,
    pub k_suf: wgpu::Buffer,
    pub v_suf: wgpu::Buffer,
}

/// The cache of one session. The prefix is allocated once (P_max = the context window); the
/// suffix segments are sized per request (N paths × S tokens) and regrown without touching the
/// prefix, so a cached prompt survives a request that needs more paths or tokens.
pub(crate) struct KvCache {
    pub shape: KvShape,
    pub layers: Vec<LayerKv>,
    budget: u64,
}

impl KvCache {
    /// Allocate a cache after checking it against `budget` bytes and the device's limits.
    pub fn new(gpu: &Gpu, shape: KvShape, budget: u64) -> Result<Self> {
        check(gpu, &shape, budget)?;
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            layers.push(LayerKv {
                k_pre: gpu.zeros(&format!("k_pre.{i}"), shape.prefix_segment_bytes())?,
                v_pre: gpu.zeros(&format!("v_pre.{i}"), shape.prefix_segment_bytes())?,
                k_suf: gpu.zeros(&format!("k_suf.{i}"), shape.suffix_segment_bytes())?,
                v_suf: gpu.zeros(&format!("v_suf.{i}"), shape.suffix_segment_bytes())?,
            });
        }
        Ok(KvCache {
            shape,
            layers,
            budget,
        })
    }

    /// Make room for `paths` × `suffix` generated tokens; the prefix is kept.
    pub fn ensure_suffix(&mut self, gpu: &Gpu, paths: usize, suffix: usize) -> Result<()> {
        if paths <= self.shape.paths && suffix <= self.shape.suffix {
            return Ok(());
        }
        let shape = KvShape {
            paths: paths.max(self.shape.paths),
            suffix: suffix.max(self.shape.suffix),
            ..self.shape
        };
        check(gpu, &shape, self.budget)?;
        // Bind groups that hold the old segments would keep them alive.
        gpu.clear_bind_groups();
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.k_suf = gpu.zeros(&format!("k_suf.{i}"), shape.suffix_segment_bytes())?;
            l.v_suf = gpu.zeros(&format!("v_suf.{i}"), shape.suffix_segment_bytes())?;
        }
        self.shape = shape;
        Ok(())
    }
}

fn check(gpu: &Gpu, shape: &KvShape, budget: u64) -> Result<()> {
    let need = shape.bytes();
    if need > budget {
        return Err(EngineError::MemoryBudget {
            what: format!("KV cache {shape:?}"),
            needed: need,
            budget,
        });
    }
    let max_binding = gpu.limits().max_storage_buffer_binding_size as u64;
    let seg = shape
        .prefix_segment_bytes()
        .max(shape.suffix_segment_bytes());
    if seg > max_binding {
        return Err(EngineError::MemoryBudget {
            what: "one KV cache segment (the device's max storage binding)".into(),
            needed: seg,
            budget: max_binding,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting() {
        let s = KvShape {
            layers: 24,
            kv_heads: 2,
            head_dim: 64,
            prefix: 1024,
            paths: 8,
            suffix: 512,
        };
        // per layer: K+V × (2·1024·64 + 8·2·512·64) × 2 bytes
        assert_eq!(s.bytes(), 24 * 2 * 2 * (2 * 1024 * 64 + 8 * 2 * 512 * 64));
    }
}
