//! Scratch: prototype texture-weight W4 matvec timing.
use kestrel_kernels::runtime::gpu::{Gpu, GpuOptions};
use std::time::Instant;

const SRC: &str = r#"

struct P { m: u32, chunks: u32, ngroups: u32, spr: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var wt: texture_2d<u32>;
@group(0) @binding(4) var st: texture_2d<u32>;
fn tc(e: u32) -> vec2<u32> { return vec2<u32>(e & 4095u, e >> 12u); }
fn lo(w: u32) -> vec4<f32> { return vec4<f32>(f32(w & 15u), f32((w >> 4u) & 15u), f32((w >> 8u) & 15u), f32((w >> 12u) & 15u)); }
fn hi(w: u32) -> vec4<f32> { return vec4<f32>(f32((w >> 16u) & 15u), f32((w >> 20u) & 15u), f32((w >> 24u) & 15u), f32(w >> 28u)); }
fn lo2(w: u32) -> vec4<f32> { return unpack4x8unorm(w & 0x0f0f0f0fu); }
fn hi2(w: u32) -> vec4<f32> { return unpack4x8unorm((w >> 4u) & 0x0f0f0f0fu); }
fn rowdot(w: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    return dot(LO(w.x), x0) + dot(HI(w.x), x1) + dot(LO(w.y), x2) + dot(HI(w.y), x3)
         + dot(LO(w.z), x4) + dot(HI(w.z), x5) + dot(LO(w.w), x6) + dot(HI(w.w), x7);
}
fn sc(t: vec4<u32>, gi: u32) -> f32 {
    return unpack2x16float(t[gi >> 1u])[gi & 1u];
}
@compute @workgroup_size(WGS)
fn mv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
    let r0 = min(gid.x * 4u, p.m - 4u);
    let e0 = r0 * p.chunks;
    let e1 = e0 + p.chunks;
    let e2 = e1 + p.chunks;
    let e3 = e2 + p.chunks;
    let s0b = r0 * p.spr;
    var acc = vec4<f32>(0.0);
    for (var gb = 0u; gb < p.spr; gb = gb + 1u) {
        let s0 = textureLoad(st, tc(s0b + gb), 0);
        let s1 = textureLoad(st, tc(s0b + p.spr + gb), 0);
        let s2 = textureLoad(st, tc(s0b + 2u * p.spr + gb), 0);
        let s3 = textureLoad(st, tc(s0b + 3u * p.spr + gb), 0);
        let gend = min(8u, p.ngroups - gb * 8u);
        for (var gi = 0u; gi < gend; gi = gi + 1u) {
            let j = gb * 8u + gi;
#if SG
            let xv = x[j * 8u + (sl & 7u)];
            let x0 = subgroupBroadcast(xv, 0u);
            let x1 = subgroupBroadcast(xv, 1u);
            let x2 = subgroupBroadcast(xv, 2u);
            let x3 = subgroupBroadcast(xv, 3u);
            let x4 = subgroupBroadcast(xv, 4u);
            let x5 = subgroupBroadcast(xv, 5u);
            let x6 = subgroupBroadcast(xv, 6u);
            let x7 = subgroupBroadcast(xv, 7u);
#else
            let x0 = x[j * 8u];
            let x1 = x[j * 8u + 1u];
            let x2 = x[j * 8u + 2u];
            let x3 = x[j * 8u + 3u];
            let x4 = x[j * 8u + 4u];
            let x5 = x[j * 8u + 5u];
            let x6 = x[j * 8u + 6u];
            let x7 = x[j * 8u + 7u];
#endif
            let xs = dot(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7, vec4<f32>(1.0));
            var dq = vec4<f32>(0.0);
            dq.x = rowdot(textureLoad(wt, tc(e0 + j), 0), x0, x1, x2, x3, x4, x5, x6, x7);
            dq.y = rowdot(textureLoad(wt, tc(e1 + j), 0), x0, x1, x2, x3, x4, x5, x6, x7);
            dq.z = rowdot(textureLoad(wt, tc(e2 + j), 0), x0, x1, x2, x3, x4, x5, x6, x7);
            dq.w = rowdot(textureLoad(wt, tc(e3 + j), 0), x0, x1, x2, x3, x4, x5, x6, x7);
            let s = vec4<f32>(sc(s0, gi), sc(s1, gi), sc(s2, gi), sc(s3, gi));
            acc = acc + s * (SCALE * dq - 8.0 * xs);
        }
    }
    y[r0] = acc.x; y[r0 + 1u] = acc.y; y[r0 + 2u] = acc.z; y[r0 + 3u] = acc.w;
}
"#;

fn tex(gpu: &Gpu, texels: u32, data: &[u32]) -> wgpu::TextureView {
    let h = texels.div_ceil(4096);
    let t = gpu.device().create_texture(&wgpu::TextureDescriptor {
        label: None,
        size: wgpu::Extent3d { width: 4096, height: h, depth_or_array_layers: 1 },
        mip_level_count: 1, sample_count: 1, dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Uint,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let mut d = data.to_vec();
    d.resize((h * 4096 * 4) as usize, 0);
    gpu.queue().write_texture(
        wgpu::TexelCopyTextureInfo { texture: &t, mip_level: 0, origin: wgpu::Origin3d::ZERO, aspect: wgpu::TextureAspect::All },
        bytemuck::cast_slice(&d),
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(4096 * 16), rows_per_image: None },
        wgpu::Extent3d { width: 4096, height: h, depth_or_array_layers: 1 },
    );
    t.create_view(&Default::default())
}

fn main() {
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let dev = gpu.device();
    println!("{} subgroups {}", gpu.adapter_description(), dev.features().contains(wgpu::Features::SUBGROUP));
    for (m, k) in [(4864u32, 896u32), (896, 4864)] {
        let chunks = k / 32;
        let ngroups = k / 32;
        let spr = ngroups.div_ceil(8);
        let w: Vec<u32> = (0..m * chunks * 4).map(|i| i.wrapping_mul(2654435761)).collect();
        let s: Vec<u32> = vec![0x3c003c00; (m * spr * 4) as usize];
        let wv = tex(&gpu, m * chunks, &w);
        let sv = tex(&gpu, m * spr, &s);
        let x = gpu.upload("x", bytemuck::cast_slice(&vec![0.5f32; k as usize])).unwrap();
        let y = gpu.zeros("y", m as u64 * 4).unwrap();
        let pb = dev.create_buffer(&wgpu::BufferDescriptor { label: None, size: 16, usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
        gpu.queue().write_buffer(&pb, 0, bytemuck::cast_slice(&[m, chunks, ngroups, spr]));
        for variant in ["sg", "nosg", "sg_unorm", "sg_wg8", "sg_wg16"] {
            let sg = variant.starts_with("sg");
            let mut src = SRC.to_string();
            if sg { src = src.replace("#if SG\n", "").replace(&src[src.find("#else").unwrap()..src.find("#endif").unwrap() + 7], ""); }
            else { src = src.replace("enable subgroups;", "").replace(", @builtin(subgroup_invocation_id) sl: u32", "").replace(&src[src.find("#if SG").unwrap()..src.find("#else").unwrap() + 6], "").replace("#endif\n", ""); }
            let unorm = variant.contains("unorm");
            src = src.replace("LO(", if unorm { "lo2(" } else { "lo(" }).replace("HI(", if unorm { "hi2(" } else { "hi(" }).replace("SCALE", if unorm { "255.0" } else { "1.0" });
            let wgs = if variant.ends_with("wg8") { 8 } else if variant.ends_with("wg16") { 16 } else { 64 };
            src = src.replace("WGS", &wgs.to_string());
            let module = gpu.scoped(|| unsafe { dev.create_shader_module_trusted(wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(src.into()) }, wgpu::ShaderRuntimeChecks::unchecked()) }).unwrap();
            let pipe = gpu.scoped(|| dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor { label: None, layout: None, module: &module, entry_point: Some("mv"), compilation_options: Default::default(), cache: None })).unwrap();
            let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &pipe.get_bind_group_layout(0), entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: pb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: x.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: y.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::TextureView(&wv) },
                wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::TextureView(&sv) },
            ]});
            let mut times = vec![];
            for _ in 0..7 {
                let mut enc = dev.create_command_encoder(&Default::default());
                { let mut pass = enc.begin_compute_pass(&Default::default()); pass.set_pipeline(&pipe); pass.set_bind_group(0, &bg, &[]); pass.dispatch_workgroups((m / 4).div_ceil(wgs), 1, 1); }
                let t = Instant::now();
                gpu.queue().submit([enc.finish()]);
                gpu.wait().unwrap();
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let best = times[1];
            let bytes = (m * k / 2 + m * ngroups * 2) as f64;
            let out: Vec<f32> = gpu.read(&y, 0, 2).unwrap();
            println!("{m}x{k} {variant:9}: {:.3} ms  {:.2} GB/s  y0={}", best * 1e3, bytes / best / 1e9, out[0]);
        }
    }
}
