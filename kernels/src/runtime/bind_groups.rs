//! Bind groups cached by what they bind, so a decode step that binds the same buffers as the
//! step before it creates none.
//!
//! Contract:
//! - `Gpu::bind_group(pipeline, entries)` returns the bind group of `pipeline`'s layout 0 with
//!   exactly these entries (buffer, offset and size per binding; texture views), creating it
//!   inside error scopes on a miss only; a hit costs a hash and a comparison, no wgpu call.
//! - An entry holds its buffers, views and pipeline alive. Whoever drops or replaces buffers that
//!   kernels bound (a session's KV cache and scratch) calls `Gpu::clear_bind_groups`, so the old
//!   buffers are freed; past `MAX_ENTRIES` the cache empties itself, which bounds its memory
//!   whatever callers do.
//! - Identity is wgpu's (`Buffer`, `TextureView` and `ComputePipeline` compare by id), so a
//!   buffer created after another was dropped never matches the old one's entries.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use super::error::KernelError;
use super::gpu::Gpu;
use super::recorder::BufferBinding;

/// Entries past which the cache empties itself.
const MAX_ENTRIES: usize = 16384;

/// A multiply-rotate hasher for keys made of ids and offsets (no hashing of user data, so
/// SipHash's flooding resistance buys nothing and costs ~10× per key).
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// One binding of a bind group.
#[derive(Clone, Copy)]
pub(crate) enum Resource<'a> {
    Buffer(BufferBinding<'a>),
    Texture(&'a wgpu::TextureView),
}

#[derive(PartialEq)]
enum Owned {
    Buffer(wgpu::Buffer, u64, Option<u64>),
    Texture(wgpu::TextureView),
}

impl Owned {
    fn of(r: &Resource<'_>) -> Self {
        match r {
            Resource::Buffer(b) => Owned::Buffer(b.buffer.clone(), b.offset, b.size),
            Resource::Texture(t) => Owned::Texture((*t).clone()),
        }
    }
    fn is(&self, r: &Resource<'_>) -> bool {
        match (self, r) {
            (Owned::Buffer(buf, off, size), Resource::Buffer(b)) => {
                buf == b.buffer && *off == b.offset && *size == b.size
            }
            (Owned::Texture(v), Resource::Texture(t)) => v == *t,
            _ => false,
        }
    }
}

struct Cached {
    pipeline: wgpu::ComputePipeline,
    entries: Vec<(u32, Owned)>,
    group: wgpu::BindGroup,
}

/// The cache owned by a `Gpu`.
#[derive(Default)]
pub(crate) struct BindGroupCache {
    map: Mutex<FastMap<u64, Vec<Cached>>>,
    len: std::sync::atomic::AtomicUsize,
}

fn key(pipeline: &wgpu::ComputePipeline, entries: &[(u32, Resource<'_>)]) -> u64 {
    let mut h = FastHasher::default();
    pipeline.hash(&mut h);
    for (i, r) in entries {
        h.write_u32(*i);
        match r {
            Resource::Buffer(b) => {
                b.buffer.hash(&mut h);
                h.write_u64(b.offset);
                h.write_u64(b.size.map_or(u64::MAX, |s| s));
            }
            Resource::Texture(t) => t.hash(&mut h),
        }
    }
    h.finish()
}

impl Gpu {
    /// The bind group of `pipeline`'s group 0 with `entries` (see the module contract).
    pub(crate) fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        entries: &[(u32, Resource<'_>)],
    ) -> Result<wgpu::BindGroup, KernelError> {
        let lock_err = || KernelError::Internal("bind group cache lock poisoned".into());
        let k = key(pipeline, entries);
        {
            let map = self.bind_groups.map.lock().map_err(|_| lock_err())?;
            if let Some(hit) = map.get(&k).and_then(|list| {
                list.iter().find(|c| {
                    c.pipeline == *pipeline
                        && c.entries.len() == entries.len()
                        && c.entries
                            .iter()
                            .zip(entries)
                            .all(|((i, o), (j, r))| i == j && o.is(r))
                })
            }) {
                return Ok(hit.group.clone());
            }
        }
        let device = self.device();
        let group = self.scoped(|| {
            let layout = pipeline.get_bind_group_layout(0);
            let wgpu_entries: Vec<wgpu::BindGroupEntry<'_>> = entries
                .iter()
                .map(|(i, r)| wgpu::BindGroupEntry {
                    binding: *i,
                    resource: match r {
                        Resource::Buffer(b) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: b.buffer,
                            offset: b.offset,
                            size: b.size.and_then(wgpu::BufferSize::new),
                        }),
                        Resource::Texture(t) => wgpu::BindingResource::TextureView(t),
                    },
                })
                .collect();
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &wgpu_entries,
            })
        })?;
        self.counters.bind_groups.fetch_add(1, Ordering::Relaxed);
        let mut map = self.bind_groups.map.lock().map_err(|_| lock_err())?;
        if self.bind_groups.len.load(Ordering::Relaxed) >= MAX_ENTRIES {
            map.clear();
            self.bind_groups.len.store(0, Ordering::Relaxed);
        }
        map.entry(k).or_default().push(Cached {
            pipeline: pipeline.clone(),
            entries: entries.iter().map(|(i, r)| (*i, Owned::of(r))).collect(),
            group: group.clone(),
        });
        self.bind_groups.len.fetch_add(1, Ordering::Relaxed);
        Ok(group)
    }

    /// Forgets every cached bind group, releasing the buffers and views they hold. Call it after
    /// dropping or replacing buffers that kernels bound (see the module contract).
    pub fn clear_bind_groups(&self) {
        if let Ok(mut map) = self.bind_groups.map.lock() {
            map.clear();
            self.bind_groups.len.store(0, Ordering::Relaxed);
        }
    }
}
