//! Runtime tests: round trips, a dispatch in both f16 modes, and each error path provoked.

use std::sync::Arc;

use crate::test_util::{both_modes, f16_bytes, gpu};
use crate::{fold_workgroups, BufferBinding, Gpu, GpuOptions, KernelError, Recorder};

const SCALE_SRC: &str = r#"
struct Params { n: u32, add: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#storage_f16 2 s read
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#include "index.wgsl"

@compute @workgroup_size(64)
fn scale_test(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n) { return; }
    y[i] = x[i] * s_at(i) + p.add;
}
"#;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    add: f32,
}

#[test]
fn upload_read_round_trip() {
    let g = gpu();
    let data: Vec<u32> = (0..1000).collect();
    let buf = g.upload("rt", bytemuck::cast_slice(&data)).unwrap();
    assert_eq!(g.read::<u32>(&buf, 0, 1000).unwrap(), data);
    assert_eq!(g.read::<u32>(&buf, 40, 3).unwrap(), vec![10, 11, 12]);
    let z = g.zeros("z", 64).unwrap();
    g.write(&z, 8, bytemuck::cast_slice(&[7u32, 9]));
    assert_eq!(g.read::<u32>(&z, 0, 4).unwrap(), vec![0, 0, 7, 9]);
    assert!(matches!(
        g.read::<u32>(&z, 0, 100),
        Err(KernelError::Shape(_))
    ));
}

#[test]
fn dispatch_with_f16_accessors_in_both_modes() {
    for g in both_modes() {
        let n = 1000u32;
        let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        let s: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32 * 0.25).collect();
        let xb = g.upload("x", bytemuck::cast_slice(&x)).unwrap();
        let sb = g.upload("s", &f16_bytes(&s)).unwrap();
        let yb = g.zeros("y", u64::from(n) * 4).unwrap();
        let pipe = g
            .pipeline("scale_test", SCALE_SRC, "scale_test", &[])
            .unwrap();
        let again = g
            .pipeline("scale_test", SCALE_SRC, "scale_test", &[])
            .unwrap();
        assert!(Arc::ptr_eq(&pipe, &again), "pipeline cache miss");
        let before = g.stats();
        let mut rec = Recorder::new(&g);
        // Two dispatches in one pass: the second overwrites with a different param slot.
        let wg = fold_workgroups(&g, n.div_ceil(64));
        let bufs = [BufferBinding::from(&xb), (&sb).into(), (&yb).into()];
        rec.dispatch(&pipe, &Params { n, add: 100.0 }, &bufs, wg)
            .unwrap();
        rec.dispatch(&pipe, &Params { n, add: 1.0 }, &bufs, wg)
            .unwrap();
        assert_eq!(rec.dispatch_count(), 2);
        rec.submit_and_wait().unwrap();
        // Other tests share the device and dispatch concurrently: the global count only grows.
        let after = g.stats();
        assert!(after.dispatches - before.dispatches >= 2);
        let y = g.read::<f32>(&yb, 0, n as usize).unwrap();
        for i in 0..n as usize {
            assert_eq!(y[i], x[i] * s[i] + 1.0, "f16={} i={i}", g.has_f16());
        }
    }
}

#[test]
fn buffer_too_small_for_binding_is_a_validation_error() {
    let g = gpu();
    let pipe = g
        .pipeline("scale_test", SCALE_SRC, "scale_test", &[])
        .unwrap();
    let ok = g.zeros("ok", 256).unwrap();
    let tiny = g.zeros("tiny", 4).unwrap();
    let mut rec = Recorder::new(&g);
    // Binding a range past the end of the buffer.
    let bad = BufferBinding::range(&tiny, 0, 1024);
    let err = rec
        .dispatch(
            &pipe,
            &Params { n: 1, add: 0.0 },
            &[(&ok).into(), (&ok).into(), bad],
            [1, 1, 1],
        )
        .and_then(|_| rec.submit_and_wait());
    assert!(matches!(err, Err(KernelError::Validation(_))), "{err:?}");
}

#[test]
fn too_many_workgroups_is_a_limit_error() {
    let g = gpu();
    let pipe = g
        .pipeline("scale_test", SCALE_SRC, "scale_test", &[])
        .unwrap();
    let b = g.zeros("b", 256).unwrap();
    let mut rec = Recorder::new(&g);
    let max = g.limits().max_compute_workgroups_per_dimension;
    let err = rec.dispatch(
        &pipe,
        &Params { n: 1, add: 0.0 },
        &[(&b).into(), (&b).into(), (&b).into()],
        [max + 1, 1, 1],
    );
    assert!(matches!(err, Err(KernelError::Limit(_))), "{err:?}");
    let folded = fold_workgroups(&g, max + 1);
    assert!(folded[0] <= max && folded[0] * folded[1] > max);
}

#[test]
fn impossible_allocations_are_errors() {
    let g = gpu();
    let err = g.zeros("huge", g.limits().max_buffer_size + 1);
    assert!(matches!(err, Err(KernelError::Limit(_))), "{err:?}");
    // Past our host check, wgpu's own validation must be captured, not panic.
    let raw = g.scoped(|| {
        g.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("raw-huge"),
            size: u64::MAX / 2,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    });
    assert!(
        matches!(
            raw,
            Err(KernelError::Validation(_) | KernelError::OutOfMemory(_))
        ),
        "{:?}",
        raw.err()
    );
}

#[test]
fn bad_wgsl_is_a_validation_error_naming_the_kernel() {
    let g = gpu();
    let err = g.pipeline(
        "broken",
        "@compute @workgroup_size(1) fn broken() { let x: u32 = 1.5; }",
        "broken",
        &[],
    );
    match err {
        Err(KernelError::Validation(m)) => assert!(m.contains("broken"), "{m}"),
        other => panic!("expected a validation error, got {:?}", other.err()),
    }
}

#[test]
fn destroyed_device_reports_device_lost() {
    let g =
        Gpu::new(&GpuOptions::default()).expect("kernel tests need a GPU adapter (lavapipe on CI)");
    let b = g.upload("b", &[1, 2, 3, 4]).unwrap();
    g.device().destroy();
    let _ = g.device().poll(wgpu::PollType::Poll);
    let read = g.read::<u32>(&b, 0, 1);
    assert!(matches!(read, Err(KernelError::DeviceLost(_))), "{read:?}");
    let up = g.upload("after", &[0; 16]);
    assert!(matches!(up, Err(KernelError::DeviceLost(_))), "{up:?}");
}

#[test]
fn adapter_preference_that_matches_nothing_is_no_adapter() {
    let err = Gpu::new(&GpuOptions {
        adapter: Some("no-such-adapter-xyz".into()),
        ..GpuOptions::default()
    });
    assert!(
        matches!(err, Err(KernelError::NoAdapter(_))),
        "{:?}",
        err.err()
    );
}

#[test]
fn noop_backend_is_a_discrete_gpu_that_maps_buffers_and_counts_readback() {
    let g = Gpu::new(&GpuOptions {
        noop: true,
        // Ignored with `noop`: the noop backend is the only one opened.
        adapter: Some("no-such-adapter-xyz".into()),
        ..GpuOptions::default()
    })
    .expect("the noop backend needs no driver");
    let info = g.adapter_info();
    assert_eq!(info.backend, wgpu::Backend::Noop);
    assert_eq!(info.device_type, wgpu::DeviceType::DiscreteGpu);
    assert!(!g.is_cpu() && g.has_f16() && g.has_subgroups());
    assert_eq!(*g.profile(), crate::DeviceProfile::gpu());
    assert_eq!(g.small_grid_workgroup(), 64, "the GPU workgroup shape");
    // Buffers are host memory on the noop backend: an upload reads back, and is counted.
    let b = g
        .upload("noop", bytemuck::cast_slice(&[7u32, 8, 9]))
        .unwrap();
    let before = g.stats().readback_bytes;
    assert_eq!(g.read::<u32>(&b, 4, 2).unwrap(), [8, 9]);
    assert_eq!(g.stats().readback_bytes - before, 8);
}

#[test]
fn the_profile_follows_the_adapter_unless_named() {
    use crate::{DeviceProfile, ProfileKind, Recorder, XRead};
    let own = Gpu::new(&GpuOptions::default()).unwrap();
    let expected = if own.is_cpu() {
        DeviceProfile::cpu_driver()
    } else {
        DeviceProfile::gpu()
    };
    assert_eq!(*own.profile(), expected);
    for kind in [ProfileKind::CpuDriver, ProfileKind::Gpu] {
        let g = Gpu::new(&GpuOptions {
            profile: Some(kind),
            ..GpuOptions::default()
        })
        .unwrap();
        assert_eq!(g.profile().kind, kind);
        // The GPU profile binds a small input as storage and pads nothing; the CPU-driver
        // profile binds it through the uniform window.
        let x = g.zeros("x", 65536).unwrap();
        let mut rec = Recorder::new(&g);
        let read = g.x_input(&mut rec, &x, 1024).unwrap().read();
        rec.submit_and_wait().unwrap();
        match kind {
            ProfileKind::CpuDriver => {
                assert_eq!(read, XRead::Uniform);
                assert_eq!(g.profile().activation_bytes(16), crate::UNIFORM_X_BYTES);
                assert_eq!(g.small_grid_workgroup(), 8);
            }
            ProfileKind::Gpu => {
                assert_eq!(read, XRead::Storage);
                assert_eq!(g.profile().activation_bytes(16), 16);
                assert_eq!(g.small_grid_workgroup(), 64);
            }
        }
    }
}
