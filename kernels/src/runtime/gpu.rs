//! `Gpu`: one wgpu device with Kestrel's policies — adapter choice, maximal limits, f16 mode,
//! error capture, a pipeline cache and counters.
//!
//! Contract:
//! - `Gpu` is `Send + Sync`; apps hold `Arc<Gpu>`.
//! - The device is created with the adapter's own maximal limits (on lavapipe: 128 MiB storage
//!   bindings, 65,535 workgroups per dimension) and `shader-f16` when available and not disabled
//!   (`GpuOptions::disable_f16` or env `KESTREL_NO_F16=1`), and `subgroup` operations when the
//!   adapter has them with ≥ 8 lanes and they are not disabled (`GpuOptions::disable_subgroups` or
//!   env `KESTREL_NO_SUBGROUPS=1`).
//! - `Gpu::new` picks one [`DeviceProfile`], which holds every layout and tuning decision that
//!   depends on the kind of device: [`DeviceProfile::cpu_driver`] on CPU adapters (lavapipe,
//!   SwiftShader), [`DeviceProfile::gpu`] otherwise, or the kind `GpuOptions::profile` names.
//!   Kernels and the engine read decisions from [`Gpu::profile`], never from the adapter type.
//!   The CPU-driver profile reads kernel inputs that fit [`UNIFORM_X_BYTES`] through a uniform
//!   binding (`#if X_UNIFORM`, [`Gpu::x_input`]; lavapipe loads uniforms ~8× cheaper per word
//!   than storage, `examples/load_probe.rs`), copies larger inputs into a scratch texture
//!   (`#if X_TEXTURE`; a texel fetch costs lavapipe ~4× less per word than a storage load), pads
//!   activation buffers to the window, and runs small grids in 8-lane workgroups. The GPU
//!   profile reads inputs from storage, pads nothing, and uses 64-lane workgroups.
//! - The library reads no environment variable: `kestrel` (tools) maps `KESTREL_*` variables
//!   onto [`GpuOptions`].
//! - Every creation and submission runs inside validation + out-of-memory + internal error scopes
//!   (`Gpu::scoped`); a captured error is returned as `KernelError`. Errors outside any scope go
//!   to a non-panicking handler that logs them. Once the device-lost callback fired, every call
//!   that talks to the device returns `KernelError::DeviceLost`.
//! - Buffers from `upload`/`zeros` are `STORAGE | UNIFORM | COPY_SRC | COPY_DST` (UNIFORM: any
//!   of them can be a kernel's uniform x window), sizes rounded up to 4 B.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::adapter;
use super::bind_groups::BindGroupCache;
use super::error::KernelError;
use super::pipelines::PipelineCache;
pub use super::pipelines::Reads;
pub use super::preprocess::XRead;

/// Width in texels of every texture from [`Gpu::upload_texels`] (`wgsl/qtex.wgsl` hard-codes it).
pub const TEXTURE_WIDTH: u32 = 4096;
/// Size of the uniform x window (`wgsl/x32.wgsl` declares `array<vec4<f32>, 4096>`): the
/// WebGPU default `max_uniform_buffer_binding_size`. A buffer must be at least this long to be
/// bound as one; the engine sizes its activation buffers so.
pub const UNIFORM_X_BYTES: u64 = 65536;

/// Staging buffers [`Gpu::read`] keeps for reuse.
const STAGING_POOL: usize = 8;

/// A kernel input x as [`Gpu::x_input`] chose to bind it.
#[derive(Debug, Clone)]
pub enum XInput<'a> {
    /// The buffer as a storage array.
    Storage(crate::BufferBinding<'a>),
    /// The uniform window: the buffer's first [`UNIFORM_X_BYTES`].
    Uniform(crate::BufferBinding<'a>),
    /// A copy in the scratch x texture (`rgba32float`, [`TEXTURE_WIDTH`] texels wide).
    Texture(wgpu::TextureView),
}

impl XInput<'_> {
    /// The kernel variant that reads this binding.
    pub fn read(&self) -> XRead {
        match self {
            XInput::Storage(_) => XRead::Storage,
            XInput::Uniform(_) => XRead::Uniform,
            XInput::Texture(_) => XRead::Texture,
        }
    }
}

/// An array of 16-byte texels (W4/W8 weights, their scales and mins, LoRA A and B) as the
/// profile stores it ([`DeviceProfile::weight_textures`], [`Gpu::upload_texel_array`]): texel
/// `e` of a texture at `(e % TEXTURE_WIDTH, e / TEXTURE_WIDTH)`, of a buffer at byte `16 e`.
/// Kernels declare it with `#texels` (`runtime::preprocess`) and bind it at the same binding
/// either way.
#[derive(Debug, Clone)]
pub enum Texels {
    /// An `Rgba32Uint` texture [`TEXTURE_WIDTH`] texels wide.
    Texture(wgpu::TextureView),
    /// A storage buffer read as `array<vec4<u32>>`.
    Buffer(wgpu::Buffer),
}

/// The class of device a [`DeviceProfile`] is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    /// A CPU driver (lavapipe, SwiftShader): loads cost per instruction, not per byte.
    CpuDriver,
    /// A GPU: storage loads through caches, wide workgroups.
    Gpu,
}

impl std::str::FromStr for ProfileKind {
    type Err = String;

    /// `cpu` or `gpu` (the spelling of `KESTREL_DEVICE_PROFILE` in the CLI and test harnesses).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(ProfileKind::CpuDriver),
            "gpu" => Ok(ProfileKind::Gpu),
            other => Err(format!(
                "KESTREL_DEVICE_PROFILE must be `cpu` or `gpu`, got `{other}`"
            )),
        }
    }
}

/// Every layout and tuning decision that depends on the kind of device, chosen once by
/// `Gpu::new` ([`Gpu::profile`]). Results do not depend on it: each decision picks between
/// kernel variants that compute the same values (tested under both profiles).
///
/// Not here, by contract: the attention key splits (`PrefillPlan` / `DecodePlan`) are the same
/// on every device, sized for lavapipe's loop limit, so a prompt gives the same logits on any
/// adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceProfile {
    pub kind: ProfileKind,
    /// Kernel inputs (x, LoRA h, RMSNorm weights) that fit [`UNIFORM_X_BYTES`] are read through
    /// the uniform window (`#if X_UNIFORM`, `#if H_UNIFORM`, `#if NORM_UNIFORM`), and buffers
    /// bound so are padded to it ([`DeviceProfile::activation_bytes`], [`Gpu::upload_window`]).
    pub uniform_x: bool,
    /// Larger kernel inputs are copied into the scratch x texture and fetched (`#if X_TEXTURE`).
    pub texture_x: bool,
    /// Lanes per workgroup of the small-grid kernels (`matmul_quant_f32`, `lora_shrink`,
    /// `rmsnorm_shrink`).
    pub small_grid_workgroup: u32,
    /// W4/W8 weights and LoRA A/B live in `Rgba32Uint` textures (kernels' `#texels` arrays
    /// become `texture_2d<u32>`; a texel fetch is a vector gather on lavapipe, a storage load a
    /// per-lane loop), else in storage buffers of `vec4<u32>` ([`Texels`]). Same texel order
    /// either way (`crate::matrix`).
    pub weight_textures: bool,
}

impl DeviceProfile {
    /// The CPU-driver profile: uniform windows, the scratch x texture, 8-lane workgroups (one
    /// SIMD group, so small grids spread over every core).
    pub fn cpu_driver() -> Self {
        DeviceProfile {
            kind: ProfileKind::CpuDriver,
            uniform_x: true,
            texture_x: true,
            small_grid_workgroup: 8,
            weight_textures: true,
        }
    }

    /// The GPU profile: inputs and weights in storage buffers, no padding, 64-lane workgroups.
    pub fn gpu() -> Self {
        DeviceProfile {
            kind: ProfileKind::Gpu,
            uniform_x: false,
            texture_x: false,
            small_grid_workgroup: 64,
            weight_textures: false,
        }
    }

    /// The profile of `kind`.
    pub fn of(kind: ProfileKind) -> Self {
        match kind {
            ProfileKind::CpuDriver => Self::cpu_driver(),
            ProfileKind::Gpu => Self::gpu(),
        }
    }

    /// Bytes to allocate for an activation buffer holding `bytes`: at least the uniform window
    /// when inputs are read through it (a buffer must be that long to bind as the window).
    pub fn activation_bytes(&self, bytes: u64) -> u64 {
        if self.uniform_x {
            bytes.max(UNIFORM_X_BYTES)
        } else {
            bytes
        }
    }
}

/// How to open the GPU.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// Adapter preference: backend (`vulkan`), device type (`cpu`) or name substring
    /// (`llvmpipe`). `None`: the best adapter.
    pub adapter: Option<String>,
    /// Force the packed-u32 f16 fallback even if `shader-f16` exists.
    pub disable_f16: bool,
    /// Do not use subgroup operations even if the adapter has them; kernels then take their
    /// per-lane load paths.
    pub disable_subgroups: bool,
    /// The device profile's kind; `None`: by the adapter's type (CPU → `CpuDriver`, else
    /// `Gpu`). Either profile runs on any adapter (lavapipe executes the GPU profile, slowly).
    pub profile: Option<ProfileKind>,
    /// Turn the profile's uniform x window off (kernels read x from storage or the texture).
    pub disable_uniform_x: bool,
    /// Turn the profile's scratch x texture off (kernels read large inputs from storage).
    pub disable_texture_x: bool,
    /// Turn the profile's weight textures off (W4/W8 weights and LoRA A/B in storage buffers).
    pub disable_weight_textures: bool,
    /// Compile naga's runtime bounds checks into kernels (`Default`: yes). Off only for
    /// benchmarking: every wrapper checks buffer sizes against its parameters on the host.
    pub unchecked_shaders: bool,
    /// Open wgpu's noop backend instead of a real adapter (`adapter` is then ignored): every
    /// host-side step (validation, recording, submission, buffer mapping) runs, no kernel
    /// executes, so results are meaningless. It reports a discrete GPU with [`noop_limits`],
    /// `shader-f16` and 32-lane subgroups, so kernels take their GPU variants. For measuring the
    /// host cost of the engine only.
    pub noop: bool,
}

/// The limits the noop backend reports: a desktop-class discrete GPU's (what wgpu reports for
/// one under Vulkan, rounded), so buffer splitting and workgroup shapes follow a GPU's.
pub fn noop_limits() -> wgpu::Limits {
    wgpu::Limits {
        max_storage_buffer_binding_size: 1 << 30,
        max_buffer_size: 1 << 31,
        max_storage_buffers_per_shader_stage: 16,
        max_sampled_textures_per_shader_stage: 16,
        max_texture_dimension_2d: 16384,
        max_compute_workgroup_storage_size: 32768,
        max_compute_invocations_per_workgroup: 1024,
        max_compute_workgroup_size_x: 1024,
        max_compute_workgroup_size_y: 1024,
        ..wgpu::Limits::default()
    }
}

/// An instance whose only backend is wgpu's noop one, reported as [`GpuOptions::noop`] says.
fn noop_instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor {
        backends: wgpu::Backends::NOOP,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    };
    desc.backend_options.noop = wgpu::NoopBackendOptions {
        enable: true,
        limits: Some(noop_limits()),
        features: Some(wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP),
        device_type: Some(wgpu::DeviceType::DiscreteGpu),
        subgroup_min_size: Some(32),
        subgroup_max_size: Some(32),
    };
    wgpu::Instance::new(desc)
}

/// Counters for `kestrel bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Compute dispatches recorded since the `Gpu` was created.
    pub dispatches: u64,
    /// Queue submissions (recorders, reads) since the `Gpu` was created.
    pub submits: u64,
    /// Bytes allocated through `upload`/`zeros`/`upload_texels` and the scratch x texture
    /// (cumulative, frees are not subtracted).
    pub allocated_bytes: u64,
    /// Pipelines compiled (cache misses).
    pub pipelines: u64,
    /// Bytes copied back to the host by [`Gpu::read`] since the `Gpu` was created.
    pub readback_bytes: u64,
    /// Bind groups created (cache misses of the bind group cache).
    pub bind_groups: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub dispatches: AtomicU64,
    pub submits: AtomicU64,
    pub allocated: AtomicU64,
    pub pipelines: AtomicU64,
    pub readback: AtomicU64,
    pub bind_groups: AtomicU64,
}

/// The GPU device Kestrel runs on. See the module docs for the contract.
pub struct Gpu {
    _instance: wgpu::Instance,
    _adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    f16: bool,
    subgroups: bool,
    profile: DeviceProfile,
    shader_checks: bool,
    x_texture: Mutex<Option<(wgpu::Texture, wgpu::TextureView)>>,
    lost: Arc<Mutex<Option<String>>>,
    pub(crate) pipelines: PipelineCache,
    pub(crate) counters: Counters,
    pub(crate) arena_pool: Mutex<Vec<wgpu::Buffer>>,
    pub(crate) bind_groups: BindGroupCache,
    /// Mappable readback buffers, reused by [`Gpu::read`] (at most [`STAGING_POOL`]).
    staging_pool: Mutex<Vec<wgpu::Buffer>>,
    dummy: wgpu::Buffer,
    dummy_texels: Texels,
}

impl Gpu {
    /// Opens the preferred adapter (see [`GpuOptions`]) and logs it with `log::info!`.
    pub fn new(opts: &GpuOptions) -> Result<Gpu, KernelError> {
        let pref = opts.adapter.clone().filter(|s| !s.is_empty());
        let no_f16 = opts.disable_f16;

        let (instance, adapter) = if opts.noop {
            let instance = noop_instance();
            let adapter = adapter::choose(&instance, wgpu::Backends::NOOP, None)?;
            (instance, adapter)
        } else {
            let backends = adapter::backends(pref.as_deref());
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                backends,
                ..wgpu::InstanceDescriptor::new_without_display_handle()
            });
            let adapter = adapter::choose(&instance, backends, pref.as_deref())?;
            (instance, adapter)
        };
        let mut info = adapter.get_info();
        if opts.noop {
            // wgpu-hal 30.0.1's noop adapter reports `Cpu` whatever
            // `NoopBackendOptions::device_type` says; the device type is what picks the GPU
            // variants, so it is set here.
            info.device_type = wgpu::DeviceType::DiscreteGpu;
        }
        let f16 = !no_f16 && adapter.features().contains(wgpu::Features::SHADER_F16);
        let no_subgroups = opts.disable_subgroups;
        // Kernels share one 32-value x chunk across 8 lanes, so subgroups must have ≥ 8 lanes.
        let subgroups = !no_subgroups
            && adapter.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size >= 8;
        let kind = opts
            .profile
            .unwrap_or(if info.device_type == wgpu::DeviceType::Cpu {
                ProfileKind::CpuDriver
            } else {
                ProfileKind::Gpu
            });
        let mut profile = DeviceProfile::of(kind);
        profile.uniform_x &= !opts.disable_uniform_x
            && adapter.limits().max_uniform_buffer_binding_size >= UNIFORM_X_BYTES;
        profile.texture_x &= !opts.disable_texture_x;
        profile.weight_textures &= !opts.disable_weight_textures;
        let mut features = wgpu::Features::empty();
        if f16 {
            features |= wgpu::Features::SHADER_F16;
        }
        if subgroups {
            features |= wgpu::Features::SUBGROUP;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("kestrel"),
            required_features: features,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| KernelError::RequestDevice(e.to_string()))?;

        let lost = Arc::new(Mutex::new(None));
        let lost_cb = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, msg| {
            log::error!("GPU device lost ({reason:?}): {msg}");
            if let Ok(mut slot) = lost_cb.lock() {
                *slot = Some(format!("{reason:?}: {msg}"));
            }
        });
        device.on_uncaptured_error(Arc::new(|err: wgpu::Error| {
            log::error!("uncaptured wgpu error: {err}");
        }));
        let limits = device.limits();
        log::info!(
            "kestrel GPU: {} (shader-f16: {f16}, subgroups: {subgroups}, max storage binding {} MiB, {:?} profile)",
            adapter::describe(&info),
            limits.max_storage_buffer_binding_size >> 20,
            profile.kind
        );
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kestrel.dummy"),
            size: 256,
            usage: storage_usage(),
            mapped_at_creation: false,
        });
        let dummy_texels = if profile.weight_textures {
            Texels::Texture(
                device
                    .create_texture(&wgpu::TextureDescriptor {
                        label: Some("kestrel.dummy_texture"),
                        size: wgpu::Extent3d {
                            width: 1,
                            height: 1,
                            depth_or_array_layers: 1,
                        },
                        mip_level_count: 1,
                        sample_count: 1,
                        dimension: wgpu::TextureDimension::D2,
                        format: wgpu::TextureFormat::Rgba32Uint,
                        usage: wgpu::TextureUsages::TEXTURE_BINDING,
                        view_formats: &[],
                    })
                    .create_view(&wgpu::TextureViewDescriptor::default()),
            )
        } else {
            Texels::Buffer(dummy.clone())
        };
        Ok(Gpu {
            dummy,
            dummy_texels,
            subgroups,
            profile,
            shader_checks: !opts.unchecked_shaders,
            x_texture: Mutex::new(None),
            _instance: instance,
            _adapter: adapter,
            device,
            queue,
            info,
            limits,
            f16,
            lost,
            pipelines: PipelineCache::default(),
            counters: Counters::default(),
            arena_pool: Mutex::new(Vec::new()),
            bind_groups: BindGroupCache::default(),
            staging_pool: Mutex::new(Vec::new()),
        })
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    /// The adapter's description (name, backend, device type, driver).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    /// A 256-B zeroed storage buffer to bind where a kernel's optional input is absent
    /// (never bind it as a kernel's output).
    pub fn dummy(&self) -> &wgpu::Buffer {
        &self.dummy
    }

    /// A one-texel (texture) or 16-texel (buffer) zeroed [`Texels`] to bind where a kernel's
    /// optional texel input is absent.
    pub fn dummy_texels(&self) -> &Texels {
        &self.dummy_texels
    }

    /// One-line adapter description for logs and bench tables.
    pub fn adapter_description(&self) -> String {
        adapter::describe(&self.info)
    }
    /// Whether kernels are compiled with `enable f16;` (else packed-u32 f16).
    pub fn has_f16(&self) -> bool {
        self.f16
    }
    /// The device profile: every layout and tuning decision that depends on the kind of device.
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }
    /// Whether the adapter is a CPU (lavapipe, SwiftShader): its limits, such as the loop
    /// limiter, apply whatever the profile.
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
    /// Lanes per workgroup of the small-grid kernels ([`DeviceProfile::small_grid_workgroup`]).
    pub fn small_grid_workgroup(&self) -> u32 {
        self.profile.small_grid_workgroup
    }
    /// Whether kernels are compiled with subgroup operations (`#if SUBGROUPS`).
    pub fn has_subgroups(&self) -> bool {
        self.subgroups
    }
    /// Whether a kernel may bind the first `needed` bytes of `buf` as the uniform window
    /// ([`UNIFORM_X_BYTES`]): when the profile reads inputs through it, `needed` fits the window
    /// and `buf` has UNIFORM usage and is at least that long.
    pub fn uniform_window(&self, buf: &wgpu::Buffer, needed: u64) -> bool {
        self.profile.uniform_x
            && needed <= UNIFORM_X_BYTES
            && buf.size() >= UNIFORM_X_BYTES
            && buf.usage().contains(wgpu::BufferUsages::UNIFORM)
    }

    /// How a kernel reads its input `x` (`wgsl/x32.wgsl`, binding 1), of which a dispatch reads
    /// the first `needed` bytes; compile the kernel with the returned [`XInput::read`] and bind
    /// it with [`Recorder::dispatch_x`](crate::Recorder::dispatch_x). As the profile says (see
    /// the module docs):
    /// - the uniform window when `needed` fits [`UNIFORM_X_BYTES`] and `x` has UNIFORM usage and
    ///   is at least that long;
    /// - else a copy of those bytes, recorded into `rec`, in the GPU's scratch x texture (grown
    ///   on demand), when `x` has COPY_SRC usage and `needed` is a multiple of 16: lavapipe
    ///   fetches a texel ~4× cheaper per word than it loads storage (`examples/load_probe.rs`).
    ///   A later copy into the scratch texture (the next kernel's x) is ordered after this
    ///   dispatch by the command stream, so one texture serves every dispatch.
    ///
    /// Else `x` itself as storage.
    pub fn x_input<'a>(
        &self,
        rec: &mut crate::Recorder<'_>,
        x: &'a wgpu::Buffer,
        needed: u64,
    ) -> Result<XInput<'a>, KernelError> {
        if self.uniform_window(x, needed) {
            return Ok(XInput::Uniform(crate::BufferBinding::range(
                x,
                0,
                UNIFORM_X_BYTES,
            )));
        }
        let texels = needed / 16;
        let rows = texels.div_ceil(u64::from(TEXTURE_WIDTH));
        if self.profile.texture_x
            && needed > 0
            && needed.is_multiple_of(16)
            && needed <= x.size()
            && rows <= u64::from(self.limits.max_texture_dimension_2d)
            && x.usage().contains(wgpu::BufferUsages::COPY_SRC)
        {
            let (texture, view) = self.scratch_x_texture(rows as u32)?;
            rec.copy_to_texture(x, needed, &texture);
            return Ok(XInput::Texture(view));
        }
        Ok(XInput::Storage(x.into()))
    }

    /// A [`TEXTURE_WIDTH`]-wide, `height`-row texture of 16-byte texels that kernels sample and
    /// copies fill: the layout of `upload_texels` and of the scratch x texture.
    fn texel_texture(
        &self,
        label: &str,
        height: u32,
        format: wgpu::TextureFormat,
    ) -> wgpu::Texture {
        self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: TEXTURE_WIDTH,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        })
    }

    /// The scratch x texture with at least `rows` rows and its view, one view for its lifetime
    /// so bind groups that bind it stay cached (replaced by a taller one when needed; command
    /// buffers that bound the old one keep it alive).
    fn scratch_x_texture(
        &self,
        rows: u32,
    ) -> Result<(wgpu::Texture, wgpu::TextureView), KernelError> {
        let mut slot = self
            .x_texture
            .lock()
            .map_err(|_| KernelError::Internal("scratch x texture lock poisoned".into()))?;
        if let Some(t) = slot.as_ref().filter(|t| t.0.height() >= rows) {
            return Ok(t.clone());
        }
        // Grow by powers of two so a prefill that lengthens chunk by chunk reallocates rarely.
        let height = rows
            .next_power_of_two()
            .min(self.limits.max_texture_dimension_2d)
            .max(rows);
        let texture = self.scoped(|| {
            self.texel_texture(
                "kestrel.x_texture",
                height,
                wgpu::TextureFormat::Rgba32Float,
            )
        })?;
        self.counters.allocated.fetch_add(
            u64::from(TEXTURE_WIDTH) * u64::from(height) * 16,
            Ordering::Relaxed,
        );
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        *slot = Some((texture.clone(), view.clone()));
        Ok((texture, view))
    }
    /// Whether naga's runtime bounds checks are compiled into kernels (default yes;
    /// [`GpuOptions::unchecked_shaders`] turns them off for benchmarking).
    pub fn shader_checks(&self) -> bool {
        self.shader_checks
    }

    /// The device limits (the adapter's maxima).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> GpuStats {
        GpuStats {
            dispatches: self.counters.dispatches.load(Ordering::Relaxed),
            submits: self.counters.submits.load(Ordering::Relaxed),
            allocated_bytes: self.counters.allocated.load(Ordering::Relaxed),
            pipelines: self.counters.pipelines.load(Ordering::Relaxed),
            readback_bytes: self.counters.readback.load(Ordering::Relaxed),
            bind_groups: self.counters.bind_groups.load(Ordering::Relaxed),
        }
    }

    /// `Err(DeviceLost)` once the device-lost callback has fired.
    pub fn check_lost(&self) -> Result<(), KernelError> {
        match self.lost.lock() {
            Ok(slot) => match slot.as_ref() {
                Some(msg) => Err(KernelError::DeviceLost(msg.clone())),
                None => Ok(()),
            },
            Err(_) => Err(KernelError::DeviceLost("device-lost state poisoned".into())),
        }
    }

    /// Runs `f` inside out-of-memory, validation and internal error scopes and returns the first
    /// captured error (validation first). Checks device loss before and after.
    pub fn scoped<R>(&self, f: impl FnOnce() -> R) -> Result<R, KernelError> {
        self.check_lost()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let i = pollster::block_on(internal.pop());
        let o = pollster::block_on(oom.pop());
        self.check_lost()?;
        match v.or(o).or(i) {
            Some(err) => Err(KernelError::from_wgpu(err)),
            None => Ok(out),
        }
    }

    fn check_size(&self, label: &str, size: u64) -> Result<u64, KernelError> {
        let padded = size.div_ceil(4).max(1) * 4;
        if padded > self.limits.max_buffer_size {
            return Err(KernelError::Limit(format!(
                "buffer `{label}` of {size} B exceeds max_buffer_size {} B",
                self.limits.max_buffer_size
            )));
        }
        Ok(padded)
    }

    fn create(
        &self,
        label: &str,
        size: u64,
        usage: wgpu::BufferUsages,
        mapped: bool,
    ) -> Result<wgpu::Buffer, KernelError> {
        let buf = self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: mapped,
            })
        })?;
        self.counters.allocated.fetch_add(size, Ordering::Relaxed);
        Ok(buf)
    }

    /// A storage buffer holding `bytes` (zero-padded to a multiple of 4).
    pub fn upload(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer, KernelError> {
        let size = self.check_size(label, bytes.len() as u64)?;
        let buf = self.create(label, size, storage_usage(), true)?;
        {
            let mut view = buf.get_mapped_range_mut(..).map_err(|e| {
                KernelError::Validation(format!("mapping `{label}` for upload: {e}"))
            })?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buf.unmap();
        Ok(buf)
    }

    /// [`Gpu::upload`] zero-padded to at least [`UNIFORM_X_BYTES`] when the profile reads small
    /// inputs through the uniform window ([`DeviceProfile::uniform_x`]), so kernels can bind it
    /// as one (a small vector every lane reads at the same index, such as an RMSNorm weight in
    /// `rmsnorm_shrink_f32`: one load per 8 lanes on lavapipe instead of a per-lane loop);
    /// unpadded otherwise.
    pub fn upload_window(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer, KernelError> {
        if !self.profile.uniform_x {
            return self.upload(label, bytes);
        }
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().max(UNIFORM_X_BYTES as usize), 0);
        self.upload(label, &padded)
    }

    /// Texels one [`Texels`] array may hold on this device: [`TEXTURE_WIDTH`] times the
    /// texture height limit in textures, the storage binding limit in buffers.
    pub fn max_array_texels(&self) -> u64 {
        if self.profile.weight_textures {
            u64::from(TEXTURE_WIDTH) * u64::from(self.limits.max_texture_dimension_2d)
        } else {
            self.limits
                .max_storage_buffer_binding_size
                .min(self.limits.max_buffer_size)
                / 16
        }
    }

    /// The concatenation of `parts` (whole 16-byte texels, in order) as a [`Texels`] array of
    /// the profile's kind: [`Gpu::upload_texels`] or a storage buffer.
    pub fn upload_texel_array(&self, label: &str, parts: &[&[u8]]) -> Result<Texels, KernelError> {
        if self.profile.weight_textures {
            return Ok(Texels::Texture(self.upload_texels(label, parts)?));
        }
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let texels = total.div_ceil(16).max(1);
        if texels > self.max_array_texels() {
            return Err(KernelError::Limit(format!(
                "texel array `{label}` of {texels} texels exceeds the {}-texel storage binding limit",
                self.max_array_texels()
            )));
        }
        let mut padded: Vec<&[u8]> = parts.to_vec();
        let zeros = vec![0u8; (texels * 16 - total) as usize];
        padded.push(&zeros);
        Ok(Texels::Buffer(self.upload_parts(label, &padded)?))
    }

    /// A storage buffer holding the concatenation of `parts` (zero-padded to a multiple of 4);
    /// lets callers concatenate rows from several mmap slices with one copy.
    pub fn upload_parts(&self, label: &str, parts: &[&[u8]]) -> Result<wgpu::Buffer, KernelError> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let size = self.check_size(label, total)?;
        let buf = self.create(label, size, storage_usage(), true)?;
        {
            let mut view = buf.get_mapped_range_mut(..).map_err(|e| {
                KernelError::Validation(format!("mapping `{label}` for upload: {e}"))
            })?;
            let mut at = 0usize;
            for part in parts {
                view.slice(at..at + part.len()).copy_from_slice(part);
                at += part.len();
            }
        }
        buf.unmap();
        Ok(buf)
    }

    /// A zero-filled storage buffer of `size` bytes (rounded up to a multiple of 4).
    pub fn zeros(&self, label: &str, size: u64) -> Result<wgpu::Buffer, KernelError> {
        let size = self.check_size(label, size)?;
        self.create(label, size, storage_usage(), false)
    }

    /// An `Rgba32Uint` texture `TEXTURE_WIDTH` texels wide holding the concatenation of `parts`
    /// (16 B per texel, in row-major texel order; the last texture row is zero-padded), built
    /// with one copy. Waits until the upload has landed so staging memory does not pile up
    /// across many uploads.
    pub fn upload_texels(
        &self,
        label: &str,
        parts: &[&[u8]],
    ) -> Result<wgpu::TextureView, KernelError> {
        let row_bytes = u64::from(TEXTURE_WIDTH) * 16;
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let n = total.div_ceil(16).max(1);
        let height = n.div_ceil(u64::from(TEXTURE_WIDTH));
        let max_h = u64::from(self.limits.max_texture_dimension_2d);
        if height > max_h || self.limits.max_texture_dimension_2d < TEXTURE_WIDTH {
            return Err(KernelError::Limit(format!(
                "texture `{label}` of {n} texels exceeds {TEXTURE_WIDTH} × {max_h}"
            )));
        }
        let mut texels = Vec::with_capacity((height * row_bytes) as usize);
        for part in parts {
            texels.extend_from_slice(part);
        }
        texels.resize((height * row_bytes) as usize, 0);
        let size = wgpu::Extent3d {
            width: TEXTURE_WIDTH,
            height: height as u32,
            depth_or_array_layers: 1,
        };
        let texture = self.scoped(|| {
            let texture = self.texel_texture(label, size.height, wgpu::TextureFormat::Rgba32Uint);
            self.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                &texels,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row_bytes as u32),
                    rows_per_image: None,
                },
                size,
            );
            self.queue.submit([]);
            texture
        })?;
        self.counters.submits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .allocated
            .fetch_add(texels.len() as u64, Ordering::Relaxed);
        drop(texels);
        self.wait()?;
        Ok(texture.create_view(&wgpu::TextureViewDescriptor::default()))
    }

    /// Queues a write of `bytes` at `offset` (both multiples of 4); it lands before the next submit.
    pub fn write(&self, buf: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        self.queue.write_buffer(buf, offset, bytes);
    }

    /// Copies `count` values of `T` starting at byte `offset` back to the host (waits for the GPU).
    pub fn read<T: bytemuck::Pod>(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        count: usize,
    ) -> Result<Vec<T>, KernelError> {
        let mut out = vec![T::zeroed(); count];
        self.read_into(buf, offset, &mut out)?;
        Ok(out)
    }

    /// [`Gpu::read`] into `out` (`out.len()` values), through a pooled staging buffer: a decode
    /// step that reads the same sizes as the step before allocates nothing.
    pub fn read_into<T: bytemuck::Pod>(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        out: &mut [T],
    ) -> Result<(), KernelError> {
        let bytes = std::mem::size_of_val(out) as u64;
        if bytes == 0 {
            return Ok(());
        }
        let copy_len = bytes.div_ceil(4) * 4;
        if !offset.is_multiple_of(4) || offset + copy_len > buf.size() {
            return Err(KernelError::Shape(format!(
                "read of {bytes} B at offset {offset} from a buffer of {} B (offset must be 4-aligned)",
                buf.size()
            )));
        }
        let staging = self.staging(copy_len)?;
        self.scoped(|| {
            let mut enc = self.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(buf, offset, &staging, 0, copy_len);
            self.queue.submit([enc.finish()]);
        })?;
        self.counters.submits.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..copy_len, move |r| {
            let _ = tx.send(r);
        });
        // With several threads sharing the device, another thread's poll may be the one that
        // runs our callback, and our own poll can return while it is still running: wait on the
        // channel (polling again) rather than assuming the callback has run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            self.wait()?;
            match rx.recv_timeout(std::time::Duration::from_millis(10)) {
                Ok(Ok(())) => break,
                Ok(Err(e)) => return Err(KernelError::Readback(e.to_string())),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    if std::time::Instant::now() < deadline => {}
                Err(_) => {
                    self.check_lost()?;
                    return Err(KernelError::Readback(
                        "map callback did not run within 60 s".into(),
                    ));
                }
            }
        }
        {
            let view = staging
                .get_mapped_range(..copy_len)
                .map_err(|e| KernelError::Readback(e.to_string()))?;
            bytemuck::cast_slice_mut::<T, u8>(out).copy_from_slice(&view[..bytes as usize]);
        }
        staging.unmap();
        self.counters.readback.fetch_add(bytes, Ordering::Relaxed);
        if let Ok(mut pool) = self.staging_pool.lock() {
            if pool.len() < STAGING_POOL {
                pool.push(staging);
            }
        }
        Ok(())
    }

    /// A mappable buffer of at least `size` bytes: the smallest pooled one that fits, else a new
    /// one (sizes rounded up to a power of two, so a few buffers serve every read size).
    fn staging(&self, size: u64) -> Result<wgpu::Buffer, KernelError> {
        if let Ok(mut pool) = self.staging_pool.lock() {
            let best = (0..pool.len())
                .filter(|&i| pool[i].size() >= size)
                .min_by_key(|&i| pool[i].size());
            if let Some(i) = best {
                return Ok(pool.swap_remove(i));
            }
        }
        let size = size.next_power_of_two().max(256);
        self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kestrel.readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    /// Blocks until all submitted work has finished.
    pub fn wait(&self) -> Result<(), KernelError> {
        self.check_lost()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| KernelError::Readback(format!("device poll: {e}")))?;
        self.check_lost()
    }
}

fn storage_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE
        | wgpu::BufferUsages::UNIFORM
        | wgpu::BufferUsages::COPY_SRC
        | wgpu::BufferUsages::COPY_DST
}

#[cfg(test)]
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Gpu>();
};
