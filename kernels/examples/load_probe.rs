//! Per-load cost of storage-buffer, uniform-buffer and texture reads on this adapter: the
//! measurement behind the texture weight layout (`kestrel_kernels::matrix`). Run:
//! `cargo run --release -p kestrel-kernels --example load_probe`. Lavapipe (Mesa 22.3, 2 cores):
//! storage vec4 3.6 ns per word, texture 0.86 ns per word, uniform 0.42 ns per word (64 KiB,
//! cache resident). `tex8l` reads an `rgba8unorm` texture, the one format lavapipe fetches
//! inline instead of through a sampling function call: 2.3 ns per 4-byte texel, slower per byte
//! than `rgba32uint` (1.8 vs 4.6 GB/s), so the weight textures stay `rgba32uint`.
use kestrel_kernels::runtime::gpu::{Gpu, GpuOptions};
use std::time::Instant;

const SRC: &str = r#"
struct P { n: u32, chunk: u32, w: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;
@group(0) @binding(3) var tex: texture_2d<u32>;
@group(0) @binding(4) var<uniform> ub: array<vec4<u32>, 4096>;
@group(0) @binding(5) var stex: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(6) var tex8: texture_2d<f32>;

@compute @workgroup_size(64)
fn ssbo(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inv = gid.x;
    var acc = vec4<u32>(0u);
    let base = inv * p.chunk;
    for (var i = 0u; i < p.chunk; i = i + 1u) { acc = acc + src[base + i]; }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
@compute @workgroup_size(64)
fn ssbo1(@builtin(global_invocation_id) gid: vec3<u32>) {
    // scalar u32 loads
    let inv = gid.x;
    var acc = vec4<u32>(0u);
    let base = inv * p.chunk;
    for (var i = 0u; i < p.chunk; i = i + 1u) { acc.x = acc.x + src[base + i].x; }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
@compute @workgroup_size(64)
fn texl(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inv = gid.x;
    var acc = vec4<u32>(0u);
    let base = inv * p.chunk;
    for (var i = 0u; i < p.chunk; i = i + 1u) {
        let e = base + i;
        acc = acc + textureLoad(tex, vec2<u32>(e % p.w, e / p.w), 0);
    }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
@compute @workgroup_size(64)
fn tex8l(@builtin(global_invocation_id) gid: vec3<u32>) {
    // rgba8unorm: 4 bytes per fetch, 4 fetches per 16 bytes
    let inv = gid.x;
    var acc = vec4<f32>(0.0);
    let base = inv * p.chunk * 4u;
    let w8 = p.w * 4u;
    for (var i = 0u; i < p.chunk * 4u; i = i + 1u) {
        let e = base + i;
        acc = acc + textureLoad(tex8, vec2<u32>(e % w8, e / w8), 0);
    }
    sums[inv] = u32(acc.x + acc.y + acc.z + acc.w);
}
@compute @workgroup_size(64)
fn stexl(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inv = gid.x;
    var acc = vec4<u32>(0u);
    let base = inv * p.chunk;
    for (var i = 0u; i < p.chunk; i = i + 1u) {
        let e = base + i;
        acc = acc + textureLoad(stex, vec2<u32>(e % p.w, e / p.w));
    }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
@compute @workgroup_size(64)
fn ssbo_same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let inv = gid.x;
    var acc = vec4<u32>(0u);
    let base = wid.x * p.chunk * 64u;
    for (var i = 0u; i < p.chunk * 64u; i = i + 1u) { acc = acc + src[base + i]; }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
@compute @workgroup_size(64)
fn ubo(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inv = gid.x;
    var acc = vec4<u32>(0u);
    for (var i = 0u; i < p.chunk; i = i + 1u) { acc = acc + ub[(inv + i) & 4095u]; }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
@compute @workgroup_size(64)
fn ubo_same(@builtin(global_invocation_id) gid: vec3<u32>) {
    let inv = gid.x;
    var acc = vec4<u32>(0u);
    for (var i = 0u; i < p.chunk; i = i + 1u) { acc = acc + ub[i & 4095u]; }
    sums[inv] = acc.x + acc.y + acc.z + acc.w;
}
"#;

fn main() {
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let dev = gpu.device();
    println!("{}", gpu.adapter_description());
    let l = dev.limits();
    println!(
        "max ubo {} max tex2d {} subgroup {:?} sg {}..{}",
        l.max_uniform_buffer_binding_size,
        l.max_texture_dimension_2d,
        dev.features().contains(wgpu::Features::SUBGROUP),
        gpu.adapter_info().subgroup_min_size,
        gpu.adapter_info().subgroup_max_size
    );
    let module = unsafe {
        dev.create_shader_module_trusted(
            wgpu::ShaderModuleDescriptor {
                label: None,
                source: wgpu::ShaderSource::Wgsl(SRC.into()),
            },
            wgpu::ShaderRuntimeChecks::unchecked(),
        )
    };
    let n_vec4: u32 = 4 << 20; // 64 MiB
    let w: u32 = 4096;
    let data: Vec<u32> = (0..n_vec4 * 4)
        .map(|i| i.wrapping_mul(2654435761))
        .collect();
    let bytes: &[u8] = bytemuck::cast_slice(&data);
    let src = gpu.upload("src", bytes).unwrap();
    // The same bytes as a `width`-texel-wide texture of `format` (16-byte rows of `w` vec4s).
    let texture = |format: wgpu::TextureFormat, width: u32, usage: wgpu::TextureUsages| {
        let size = wgpu::Extent3d {
            width,
            height: n_vec4 / w,
            depth_or_array_layers: 1,
        };
        let tex = dev.create_texture(&wgpu::TextureDescriptor {
            label: None,
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: usage | wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        gpu.queue().write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &tex,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(w * 16),
                rows_per_image: None,
            },
            size,
        );
        tex.create_view(&Default::default())
    };
    let view = texture(
        wgpu::TextureFormat::Rgba32Uint,
        w,
        wgpu::TextureUsages::STORAGE_BINDING,
    );
    let view8 = texture(
        wgpu::TextureFormat::Rgba8Unorm,
        w * 4,
        wgpu::TextureUsages::empty(),
    );
    let ub = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 65536,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue().write_buffer(&ub, 0, &bytes[..65536]);
    let chunk: u32 = 256;
    let n_inv = n_vec4 / chunk;
    let pbuf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue()
        .write_buffer(&pbuf, 0, bytemuck::cast_slice(&[n_vec4, chunk, w, 0u32]));
    let sums = gpu.zeros("sums", n_inv as u64 * 4).unwrap();
    let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 2,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: false },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 3,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Uint,
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 4,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 5,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::ReadOnly,
                    format: wgpu::TextureFormat::Rgba32Uint,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 6,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            },
        ],
    });
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: pbuf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: src.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: sums.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: wgpu::BindingResource::TextureView(&view),
            },
            wgpu::BindGroupEntry {
                binding: 4,
                resource: ub.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 5,
                resource: wgpu::BindingResource::TextureView(&view),
            },
            wgpu::BindGroupEntry {
                binding: 6,
                resource: wgpu::BindingResource::TextureView(&view8),
            },
        ],
    });
    let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    for entry in [
        "ssbo",
        "ssbo1",
        "texl",
        "tex8l",
        "stexl",
        "ssbo_same",
        "ubo",
        "ubo_same",
    ] {
        let pipe = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: Some(&pl),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let mut best = f64::MAX;
        for _ in 0..4 {
            let mut enc = dev.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipe);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(n_inv / 64, 1, 1);
            }
            let t = Instant::now();
            gpu.queue().submit([enc.finish()]);
            gpu.wait().unwrap();
            best = best.min(t.elapsed().as_secs_f64());
        }
        let loads = n_inv as f64 * chunk as f64; // load instructions per lane
        let comps = if entry == "ssbo1" { 1.0 } else { 4.0 };
        println!(
            "{entry:9}: {:.1} ms  {:.2} GB/s  {:.2} ns/load/lane  {:.2} ns/component",
            best * 1e3,
            loads * comps * 4.0 / best / 1e9,
            best * 1e9 / loads,
            best * 1e9 / loads / comps
        );
    }
}
