//! Shared test helpers: one `Gpu` per feature mode (shader-f16 + subgroups where the adapter has
//! them; neither) for the whole test binary, proptest case counts,
//! and error metrics. A missing adapter is a test failure with a clear message, never a skip.

use std::sync::{Arc, OnceLock};

use crate::{Gpu, GpuOptions};

static GPU_F16: OnceLock<Arc<Gpu>> = OnceLock::new();
static GPU_PACKED: OnceLock<Arc<Gpu>> = OnceLock::new();

/// The device profile the test run asks for: env `KESTREL_DEVICE_PROFILE` = `cpu` or `gpu`
/// (CI runs the suites under both on lavapipe), else the adapter's own.
pub fn profile_from_env() -> Option<crate::ProfileKind> {
    let v = std::env::var("KESTREL_DEVICE_PROFILE").ok()?;
    Some(v.parse().unwrap_or_else(|e: String| panic!("{e}")))
}

fn open(disable_f16: bool) -> Arc<Gpu> {
    let _ = env_logger::builder().is_test(true).try_init();
    match Gpu::new(&GpuOptions {
        disable_f16,
        disable_subgroups: disable_f16,
        disable_uniform_x: disable_f16,
        disable_texture_x: disable_f16,
        disable_weight_textures: disable_f16,
        profile: profile_from_env(),
        ..GpuOptions::default()
    }) {
        Ok(g) => Arc::new(g),
        Err(e) => panic!(
            "kernel tests need a GPU adapter (CI uses Mesa lavapipe: `apt-get install \
             mesa-vulkan-drivers`): {e}"
        ),
    }
}

/// The shared device using shader-f16 when the adapter has it.
pub fn gpu() -> Arc<Gpu> {
    Arc::clone(GPU_F16.get_or_init(|| open(false)))
}

/// The shared device forced to the packed-u32 f16 fallback and the no-subgroup load paths.
pub fn gpu_packed() -> Arc<Gpu> {
    Arc::clone(GPU_PACKED.get_or_init(|| open(true)))
}

/// `v` as f32 bytes zero-padded to the uniform x window, so kernels on `gpu()` read it through
/// the window (or, past 64 KiB, the scratch x texture: `Gpu::x_input`) and on `gpu_packed()`
/// through storage: tests cover all three.
pub fn x_bytes(v: &[f32]) -> Vec<u8> {
    let mut b = f32_bytes(v);
    b.resize(
        b.len().max(crate::runtime::gpu::UNIFORM_X_BYTES as usize),
        0,
    );
    b
}

/// Both f16 modes (the f16 one only counts as distinct when the adapter has shader-f16).
pub fn both_modes() -> Vec<Arc<Gpu>> {
    vec![gpu(), gpu_packed()]
}

/// Proptest case count: env `KESTREL_PROPTEST_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("KESTREL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Normalised mean squared error: Σ(a−b)² / max(Σb², tiny).
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (f64::from(g) - f64::from(w)).powi(2);
        den += f64::from(w).powi(2);
    }
    num / den.max(1e-30)
}

/// f32 values → little-endian f16 bytes.
pub fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect()
}

/// f32 values → little-endian bytes.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}
