//! `Recorder`: many dispatches in one compute pass and one queue submission.
//!
//! Contract:
//! - `dispatch(pipeline, params, buffers, workgroups)`: `params` (a `Pod` of at most 256 B) goes
//!   into a per-recorder uniform arena (one aligned 256-B slot per dispatch) bound at binding 0;
//!   `buffers[i]` is bound at binding `i + 1` of group 0 (`dispatch_with_texels` also binds
//!   texel arrays, textures or buffers as the profile stores them, from a given binding on). A
//!   workgroup count above `max_compute_workgroups_per_dimension` is `KernelError::Limit` (fold with
//!   [`fold_workgroups`]); a binding above `max_storage_buffer_binding_size` is `Limit` too.
//! - Bind groups come from the `Gpu`'s cache (`bind_groups`): a dispatch that binds what an
//!   earlier one bound reuses its group. Creating one (a cache miss) and submitting run in error
//!   scopes; an error surfaces from `dispatch` or from `submit` (pass-level validation errors
//!   surface at submit).
//! - The arena is written with `queue.write_buffer` just before the submit; its chunks are pooled
//!   in the `Gpu` and reused by later recorders, which is safe because queue writes and submits
//!   execute in queue order. A recorder takes pooled chunks in the order the previous one took
//!   them, so the same sequence of dispatches binds the same parameter slots and finds its bind
//!   groups cached.
//! - `dispatch_x` binds a kernel input x (`Gpu::x_input`: a buffer, or the scratch x texture)
//!   at binding 1 and the other buffers from binding 2 on.
//! - `copy` and `copy_to_texture` end the current pass and copy; a later `dispatch` opens a new
//!   pass.

use std::sync::atomic::Ordering;

use super::bind_groups::Resource;
use super::error::KernelError;
use super::gpu::{Gpu, Texels, XInput, TEXTURE_WIDTH};

const SLOT: u64 = 256;
const SLOTS_PER_CHUNK: u64 = 256;

/// A storage-buffer range bound to one binding.
#[derive(Debug, Clone, Copy)]
pub struct BufferBinding<'a> {
    /// The buffer.
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset (a multiple of `min_storage_buffer_offset_alignment`, 256 on most devices).
    pub offset: u64,
    /// Byte size; `None` = to the end of the buffer.
    pub size: Option<u64>,
}

impl<'a> BufferBinding<'a> {
    /// A range of `buffer`.
    pub fn range(buffer: &'a wgpu::Buffer, offset: u64, size: u64) -> Self {
        Self {
            buffer,
            offset,
            size: Some(size),
        }
    }
    fn len(&self) -> u64 {
        self.size
            .unwrap_or_else(|| self.buffer.size().saturating_sub(self.offset))
    }
}

impl<'a> From<&'a wgpu::Buffer> for BufferBinding<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Self {
            buffer,
            offset: 0,
            size: None,
        }
    }
}

/// Folds `n` workgroups into `[x, y, 1]` with `x ≤ limit`; kernels recover the linear id with
/// `linear_wg` from `index.wgsl` and must skip ids ≥ n.
pub fn fold_workgroups(gpu: &Gpu, n: u32) -> [u32; 3] {
    let lim = gpu.limits().max_compute_workgroups_per_dimension.max(1);
    if n <= lim {
        [n, 1, 1]
    } else {
        [lim, n.div_ceil(lim), 1]
    }
}

/// Records dispatches into one compute pass; see the module docs.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    arena: Vec<u8>,
    chunks: Vec<wgpu::Buffer>,
    slot_size: u64,
    dispatches: u64,
}

impl<'g> Recorder<'g> {
    /// A new, empty recorder on `gpu`.
    pub fn new(gpu: &'g Gpu) -> Self {
        let align = u64::from(gpu.limits().min_uniform_buffer_offset_alignment).max(1);
        let encoder = gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("kestrel.recorder"),
            });
        Self {
            gpu,
            encoder: Some(encoder),
            pass: None,
            arena: Vec::new(),
            chunks: Vec::new(),
            slot_size: SLOT.div_ceil(align) * align,
            dispatches: 0,
        }
    }

    /// The GPU this recorder submits to.
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Dispatches recorded so far.
    pub fn dispatch_count(&self) -> u64 {
        self.dispatches
    }

    fn chunk_for(&mut self, slot: u64) -> Result<(wgpu::Buffer, u64), KernelError> {
        let chunk = (slot / SLOTS_PER_CHUNK) as usize;
        while self.chunks.len() <= chunk {
            let pooled = self.gpu.arena_pool.lock().ok().and_then(|mut p| p.pop());
            let buf = match pooled {
                Some(b) => b,
                None => self.gpu.scoped(|| {
                    self.gpu.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some("kestrel.params_arena"),
                        size: self.slot_size * SLOTS_PER_CHUNK,
                        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })?,
            };
            self.chunks.push(buf);
        }
        Ok((
            self.chunks[chunk].clone(),
            (slot % SLOTS_PER_CHUNK) * self.slot_size,
        ))
    }

    /// Records one dispatch; see the module docs for the binding convention.
    pub fn dispatch<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        params: &P,
        buffers: &[BufferBinding<'_>],
        workgroups: [u32; 3],
    ) -> Result<(), KernelError> {
        self.dispatch_with_texels(pipeline, params, buffers, 0, &[], workgroups)
    }

    /// [`Recorder::dispatch`] plus texel arrays (weights): `texels[i]` at binding
    /// `first_texel_binding + i` (after the buffers' bindings).
    pub fn dispatch_with_texels<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        params: &P,
        buffers: &[BufferBinding<'_>],
        first_texel_binding: u32,
        texels: &[&Texels],
        workgroups: [u32; 3],
    ) -> Result<(), KernelError> {
        let mut bindings: Vec<(u32, Resource<'_>)> =
            Vec::with_capacity(buffers.len() + texels.len());
        bindings.extend((1..).zip(buffers.iter().map(|&b| Resource::Buffer(b))));
        bindings.extend((first_texel_binding..).zip(texels.iter().map(|t| texel_resource(t))));
        self.dispatch_at(pipeline, params, bindings, workgroups)
    }

    /// [`Recorder::dispatch_with_texels`] for a kernel that reads x (`wgsl/x32.wgsl`): `x` at
    /// binding 1 (a buffer range or the scratch x texture, as [`Gpu::x_input`] chose),
    /// `buffers[i]` at binding `i + 2`, `texels[i]` at `first_texel_binding + i`.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch_x<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        params: &P,
        x: &XInput<'_>,
        buffers: &[BufferBinding<'_>],
        first_texel_binding: u32,
        texels: &[&Texels],
        workgroups: [u32; 3],
    ) -> Result<(), KernelError> {
        let mut bindings: Vec<(u32, Resource<'_>)> =
            Vec::with_capacity(buffers.len() + texels.len() + 1);
        bindings.push(match x {
            XInput::Storage(b) | XInput::Uniform(b) => (1, Resource::Buffer(*b)),
            XInput::Texture(view) => (1, Resource::Texture(view)),
        });
        bindings.extend((2..).zip(buffers.iter().map(|&b| Resource::Buffer(b))));
        bindings.extend((first_texel_binding..).zip(texels.iter().map(|t| texel_resource(t))));
        self.dispatch_at(pipeline, params, bindings, workgroups)
    }

    /// Records one dispatch with `bindings` (binding 1 on) and its params at binding 0.
    fn dispatch_at<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        params: &P,
        bindings: Vec<(u32, Resource<'_>)>,
        workgroups: [u32; 3],
    ) -> Result<(), KernelError> {
        let limits = self.gpu.limits();
        let max_wg = limits.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&w| w > max_wg) {
            return Err(KernelError::Limit(format!(
                "dispatch of {workgroups:?} workgroups exceeds {max_wg} per dimension (fold to 2-D)"
            )));
        }
        let max_bind = limits.max_storage_buffer_binding_size;
        for (i, r) in &bindings {
            let Resource::Buffer(b) = r else { continue };
            if b.len() > max_bind {
                return Err(KernelError::Limit(format!(
                    "binding {i} of {} B exceeds max_storage_buffer_binding_size {max_bind} B (split the buffer)",
                    b.len()
                )));
            }
        }
        let bytes = bytemuck::bytes_of(params);
        if bytes.len() as u64 > SLOT {
            return Err(KernelError::Shape(format!(
                "params of {} B exceed the 256-B slot",
                bytes.len()
            )));
        }
        let slot = self.arena.len() as u64 / self.slot_size;
        let (chunk, offset) = self.chunk_for(slot)?;
        self.arena.extend_from_slice(bytes);
        self.arena.resize(((slot + 1) * self.slot_size) as usize, 0);
        let param_size = (bytes.len() as u64).div_ceil(16).max(1) * 16;

        let mut entries = Vec::with_capacity(bindings.len() + 1);
        entries.push((
            0,
            Resource::Buffer(BufferBinding::range(&chunk, offset, param_size)),
        ));
        entries.extend(bindings);
        let bind_group = self.gpu.bind_group(pipeline, &entries)?;
        if workgroups.contains(&0) {
            return Ok(());
        }
        if self.pass.is_none() {
            let encoder = self
                .encoder
                .as_mut()
                .ok_or_else(|| KernelError::Internal("recorder already submitted".into()))?;
            let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            self.pass = Some(pass.forget_lifetime());
        }
        if let Some(pass) = self.pass.as_mut() {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        }
        self.dispatches += 1;
        Ok(())
    }

    /// Records a buffer-to-buffer copy (offsets and size multiples of 4).
    pub fn copy(
        &mut self,
        src: &wgpu::Buffer,
        src_off: u64,
        dst: &wgpu::Buffer,
        dst_off: u64,
        size: u64,
    ) {
        self.pass = None;
        if let Some(enc) = self.encoder.as_mut() {
            enc.copy_buffer_to_buffer(src, src_off, dst, dst_off, size);
        }
    }

    /// Records a copy of the first `bytes` (a multiple of 16) of `src` into `dst`, a texture of
    /// 16-byte texels [`TEXTURE_WIDTH`] wide, texel e at `(e % TEXTURE_WIDTH, e / TEXTURE_WIDTH)`
    /// (whole rows, then the partial last row).
    pub fn copy_to_texture(&mut self, src: &wgpu::Buffer, bytes: u64, dst: &wgpu::Texture) {
        self.pass = None;
        let Some(enc) = self.encoder.as_mut() else {
            return;
        };
        let texels = bytes / 16;
        let width = u64::from(TEXTURE_WIDTH);
        let (rows, rest) = ((texels / width) as u32, (texels % width) as u32);
        let mut copy = |row: u32, width: u32, height: u32| {
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: src,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: u64::from(row) * u64::from(TEXTURE_WIDTH) * 16,
                        bytes_per_row: Some(TEXTURE_WIDTH * 16),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: dst,
                    mip_level: 0,
                    origin: wgpu::Origin3d { x: 0, y: row, z: 0 },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
            )
        };
        if rows > 0 {
            copy(0, TEXTURE_WIDTH, rows);
        }
        if rest > 0 {
            copy(rows, rest, 1);
        }
    }

    fn finish(&mut self) -> Result<wgpu::SubmissionIndex, KernelError> {
        self.pass = None;
        let encoder = self
            .encoder
            .take()
            .ok_or_else(|| KernelError::Internal("recorder already submitted".into()))?;
        let gpu = self.gpu;
        let (arena, chunks, slot_size) = (&self.arena, &self.chunks, self.slot_size);
        let index = gpu.scoped(|| {
            let chunk_bytes = (slot_size * SLOTS_PER_CHUNK) as usize;
            for (i, data) in arena.chunks(chunk_bytes).enumerate() {
                gpu.queue().write_buffer(&chunks[i], 0, data);
            }
            gpu.queue().submit([encoder.finish()])
        })?;
        gpu.counters.submits.fetch_add(1, Ordering::Relaxed);
        gpu.counters
            .dispatches
            .fetch_add(self.dispatches, Ordering::Relaxed);
        Ok(index)
    }

    /// Writes the params arena and submits everything recorded, without waiting.
    pub fn submit(mut self) -> Result<(), KernelError> {
        self.finish().map(|_| ())
    }

    /// Submits and blocks until the GPU has finished this work.
    pub fn submit_and_wait(mut self) -> Result<(), KernelError> {
        let index = self.finish()?;
        self.gpu.check_lost()?;
        self.gpu
            .device()
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| KernelError::Readback(format!("device poll: {e}")))?;
        self.gpu.check_lost()
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.pass = None;
        if let Ok(mut pool) = self.gpu.arena_pool.lock() {
            // Reversed, so that popping hands the next recorder chunk 0 first, then chunk 1...
            pool.extend(self.chunks.drain(..).rev());
        }
    }
}

/// The binding of a texel array: its texture view or its whole buffer.
fn texel_resource(t: &Texels) -> Resource<'_> {
    match t {
        Texels::Texture(view) => Resource::Texture(view),
        Texels::Buffer(buf) => Resource::Buffer(buf.into()),
    }
}
