//! `roofline_probe`: measures the device's read bandwidth, the roofline for the memory-bound
//! decode kernels (`kestrel bench` reports matvec GB/s as a fraction of it).
//!
//! Method: `PROBE_BYTES` (64 MiB) of pseudo-random u32 are read by three storage-buffer variants
//! (contiguous chunks per invocation, grid-stride, contiguous ×4 unrolled) and by one weight
//! variant `roofline_probe_texture` (the same words stored and fetched as the quantized matmul's
//! weights: an `Rgba32Uint` texture on the CPU-driver profile, a storage buffer on the GPU one),
//! each writing a wrapping u32 sum per invocation. A variant's time (best of `REPS` submits after
//! one warm-up, wall clock including the submit and wait) is trusted only if Σ sums equals the
//! host's wrapping sum — lavapipe can report impossible bandwidths when work is skipped.
//! Result: the best trusted variant in GB/s (10⁹ B/s). `KernelError::Internal` if none verified.
//!
//! Measured on the dev box (Mesa 22.3 lavapipe, 2 cores): storage variants ~1.1 GB/s, the texture
//! variant ~4.5 GB/s, against ~25 GB/s for the host's own read loop. lavapipe runs every
//! storage-buffer load as a scalar loop over the SIMD lanes with a bounds check per lane (~3.6 ns
//! per 32-bit word), while a texel fetch is one vector gather (~0.9 ns per word) — hence the
//! texture weight layout (`crate::matrix`).

pub mod reference;

use std::time::Instant;

use crate::{fold_workgroups, BufferBinding, Gpu, KernelError, Recorder};

/// Kernel id = file = first entry point.
pub const ID: &str = "roofline_probe";
/// WGSL source.
pub const SRC: &str = include_str!("roofline_probe.wgsl");
/// The weight variant (kernel id = entry point): the profile's texel arrays.
pub const TEXTURE_ID: &str = "roofline_probe_texture";
/// Its WGSL source.
pub const TEXTURE_SRC: &str = include_str!("roofline_probe_texture.wgsl");
/// Texels per invocation of the texture variant.
const TEXTURE_CHUNK: u32 = 256;
/// Bytes read per probe run.
pub const PROBE_BYTES: u64 = 64 << 20;
/// Timed repetitions per variant.
pub const REPS: usize = 5;

/// (variant name = entry point, vec4 elements per invocation; 0 = grid-stride).
const VARIANTS: &[(&str, u32)] = &[
    ("roofline_probe", 64),
    ("roofline_probe_strided", 0),
    ("roofline_probe_unrolled", 256),
];

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_vec4: u32,
    chunk: u32,
    n_inv: u32,
    _pad: u32,
}

/// One variant's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantResult {
    /// Entry point name.
    pub variant: &'static str,
    /// Best bandwidth over the repetitions, GB/s.
    pub gb_s: f64,
    /// Whether its checksum matched (else `gb_s` is not trusted).
    pub checksum_ok: bool,
}

/// The probe's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Best trusted bandwidth, GB/s.
    pub best_gb_s: f64,
    /// The variant that achieved it.
    pub variant: &'static str,
    /// Bytes read per run.
    pub bytes: u64,
    /// Every variant.
    pub variants: Vec<VariantResult>,
}

/// Runs the probe on `gpu` (takes about a second on lavapipe).
pub fn measure_read_bandwidth(gpu: &Gpu) -> Result<ProbeResult, KernelError> {
    let words = (PROBE_BYTES / 4) as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u32> = (0..words)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u32
        })
        .collect();
    let expected = reference::checksum(&data);
    let src = gpu.upload("probe.src", bytemuck::cast_slice(&data))?;
    let texture = gpu.upload_texel_array("probe.texture", &[bytemuck::cast_slice(&data)])?;
    drop(data);
    let n_vec4 = (words / 4) as u32;
    let mut variants = Vec::new();
    // Best of REPS timed submits after one warm-up.
    let time = |record: &dyn Fn(&mut Recorder<'_>) -> Result<(), KernelError>| -> Result<f64, KernelError> {
        let mut best = f64::INFINITY;
        for rep in 0..=REPS {
            let mut rec = Recorder::new(gpu);
            record(&mut rec)?;
            let start = Instant::now();
            rec.submit_and_wait()?;
            if rep > 0 {
                best = best.min(start.elapsed().as_secs_f64());
            }
        }
        Ok(best)
    };
    for &(entry, chunk) in VARIANTS {
        let n_inv = if chunk == 0 {
            64 * 1024
        } else {
            n_vec4.div_ceil(chunk)
        };
        let sums = gpu.zeros("probe.sums", u64::from(n_inv) * 4)?;
        let pipe = gpu.pipeline(ID, SRC, entry, &[])?;
        let params = Params {
            n_vec4,
            chunk,
            n_inv,
            _pad: 0,
        };
        let wg = fold_workgroups(gpu, n_inv.div_ceil(64));
        let bufs = [BufferBinding::from(&src), (&sums).into()];
        let best = time(&|rec| rec.dispatch(&pipe, &params, &bufs, wg))?;
        let got = reference::checksum(&gpu.read::<u32>(&sums, 0, n_inv as usize)?);
        variants.push(verdict(entry, best, got == expected));
    }
    {
        let n_inv = n_vec4.div_ceil(TEXTURE_CHUNK);
        let sums = gpu.zeros("probe.sums", u64::from(n_inv) * 4)?;
        let pipe = gpu.pipeline(TEXTURE_ID, TEXTURE_SRC, TEXTURE_ID, &[])?;
        let params = Params {
            n_vec4,
            chunk: TEXTURE_CHUNK,
            n_inv,
            _pad: 0,
        };
        let wg = fold_workgroups(gpu, n_inv.div_ceil(64));
        let bufs = [BufferBinding::from(&sums)];
        let best =
            time(&|rec| rec.dispatch_with_texels(&pipe, &params, &bufs, 6, &[&texture], wg))?;
        let got = reference::checksum(&gpu.read::<u32>(&sums, 0, n_inv as usize)?);
        variants.push(verdict(TEXTURE_ID, best, got == expected));
    }
    let best = variants
        .iter()
        .filter(|v| v.checksum_ok)
        .max_by(|a, b| a.gb_s.total_cmp(&b.gb_s))
        .ok_or_else(|| {
            KernelError::Internal("no roofline probe variant passed its checksum".into())
        })?;
    Ok(ProbeResult {
        best_gb_s: best.gb_s,
        variant: best.variant,
        bytes: PROBE_BYTES,
        variants: variants.clone(),
    })
}

fn verdict(variant: &'static str, best_secs: f64, checksum_ok: bool) -> VariantResult {
    let gb_s = PROBE_BYTES as f64 / best_secs / 1e9;
    log::info!("roofline probe {variant}: {gb_s:.1} GB/s (checksum ok: {checksum_ok})");
    VariantResult {
        variant,
        gb_s,
        checksum_ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_a_verified_positive_bandwidth() {
        let g = crate::test_util::gpu();
        let r = measure_read_bandwidth(&g).unwrap();
        eprintln!("{} : {r:?}", g.adapter_description());
        assert!(r.best_gb_s > 0.0 && r.best_gb_s.is_finite());
        assert!(r
            .variants
            .iter()
            .any(|v| v.checksum_ok && v.variant == r.variant));
        // Every variant reads the same words, so every checksum must hold (a skipped read or a
        // wrong texel address would break it).
        assert_eq!(r.variants.len(), 4);
        assert!(r.variants.iter().all(|v| v.checksum_ok), "{:?}", r.variants);
    }
}
