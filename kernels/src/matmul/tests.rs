//! Shared matmul test harness (random matrices in every layout, GPU run, CPU reference) and the
//! front-end tests: row-block splitting of a real-size vocab matrix, shape errors.

use std::sync::Arc;

use super::reference::{dequant, matmul_ref, RefLora};
use super::{matmul, Epilogue, LoraExpand};
use crate::matrix::{HostMatrix, Matrix};
use crate::test_util::{f16_bytes, f32_bytes, gpu, nmse, x_bytes};
use crate::{Gpu, KernelError, Recorder};

/// Deterministic xorshift generator for test data.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        (self.next_u32() % 2_000_000) as f32 / 1_000_000.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u32() as u8).collect()
    }
}

/// Layouts exercised by the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    W4Sym,
    W4Asym,
    W8,
    F16,
    F32,
}

/// Owned host data of a random matrix.
pub struct HostData {
    pub kind: Kind,
    pub m: u32,
    pub k: u32,
    pub g: u32,
    pub data: Vec<u8>,
    pub scales: Vec<u8>,
    pub mins: Vec<u8>,
}

impl HostData {
    pub fn random(kind: Kind, m: u32, k: u32, g: u32, rng: &mut Rng) -> Self {
        let (mu, ku) = (m as usize, k as usize);
        let groups = mu * ku / g.max(1) as usize;
        let small =
            |rng: &mut Rng, n| f16_bytes(&(0..n).map(|_| rng.f() * 0.1).collect::<Vec<_>>());
        let (data, scales, mins) = match kind {
            Kind::W4Sym => (rng.bytes(mu * ku / 2), small(rng, groups), vec![]),
            Kind::W4Asym => (
                rng.bytes(mu * ku / 2),
                small(rng, groups),
                small(rng, groups),
            ),
            Kind::W8 => (rng.bytes(mu * ku), small(rng, groups), vec![]),
            Kind::F16 => (f16_bytes(&rng.vec(mu * ku)), vec![], vec![]),
            Kind::F32 => (f32_bytes(&rng.vec(mu * ku)), vec![], vec![]),
        };
        HostData {
            kind,
            m,
            k,
            g,
            data,
            scales,
            mins,
        }
    }

    pub fn host(&self) -> HostMatrix<'_> {
        let (m, k, group_size) = (self.m, self.k, self.g);
        match self.kind {
            Kind::W4Sym => HostMatrix::W4 {
                m,
                k,
                group_size,
                q: &self.data,
                scales: &self.scales,
                mins: None,
            },
            Kind::W4Asym => HostMatrix::W4 {
                m,
                k,
                group_size,
                q: &self.data,
                scales: &self.scales,
                mins: Some(&self.mins),
            },
            Kind::W8 => HostMatrix::W8 {
                m,
                k,
                group_size,
                q: &self.data,
                scales: &self.scales,
            },
            Kind::F16 => HostMatrix::F16 {
                m,
                k,
                data: &self.data,
            },
            Kind::F32 => HostMatrix::F32 {
                m,
                k,
                data: &self.data,
            },
        }
    }
}

/// Host-side epilogue inputs.
#[derive(Default)]
pub struct HostEpilogue {
    pub bias: Option<Vec<f32>>,
    pub y0: Option<Vec<f32>>,
    /// (h [T, h_stride], h_offset, h_stride, B [M, R] as f32 already rounded to f16, R, scale)
    pub lora: Option<(Vec<f32>, u32, u32, Vec<f32>, u32, f32)>,
    /// `LoraExpand::segments` (None = one segment).
    pub lora_segments: Option<[u32; 2]>,
}

/// Runs `matmul` on the GPU and returns y.
pub fn run_gpu(
    g: &Gpu,
    w: &Matrix,
    x: &[f32],
    t: u32,
    ep: &HostEpilogue,
) -> Result<Vec<f32>, KernelError> {
    let xb = g.upload("x", &x_bytes(x))?;
    let n = (t * w.m) as usize;
    let yb = match &ep.y0 {
        Some(y0) => g.upload("y", &f32_bytes(y0))?,
        None => g.upload("y", &f32_bytes(&vec![f32::NAN; n]))?,
    };
    let bias = ep
        .bias
        .as_ref()
        .map(|b| g.upload("bias", &f32_bytes(b)))
        .transpose()?;
    let lora = match &ep.lora {
        Some((h, off, stride, b, r, s)) => Some((
            // Padded to the uniform window: gpu() reads h through it (#if H_UNIFORM),
            // gpu_packed() from storage.
            g.upload("h", &x_bytes(h))?,
            *off,
            *stride,
            crate::matmul::LoraB::upload(g, w.m, *r, &f16_bytes(b))?,
            *r,
            *s,
        )),
        None => None,
    };
    let epilogue = Epilogue {
        bias: bias.as_ref(),
        accumulate: ep.y0.is_some(),
        lora: lora.as_ref().map(|(h, off, stride, b, r, s)| LoraExpand {
            h,
            h_offset: *off,
            h_stride: *stride,
            b,
            rank: *r,
            scale: *s,
            segments: ep.lora_segments.unwrap_or(LoraExpand::ONE_SEGMENT),
        }),
    };
    let mut rec = Recorder::new(g);
    matmul(&mut rec, w, &xb, &yb, t, &epilogue)?;
    rec.submit_and_wait()?;
    g.read::<f32>(&yb, 0, n)
}

/// CPU reference for the same inputs.
pub fn run_ref(h: &HostData, x: &[f32], t: u32, ep: &HostEpilogue) -> Vec<f32> {
    let w = dequant(&h.host());
    let lora = ep.lora.as_ref().map(|(hh, off, stride, b, r, s)| RefLora {
        h: hh,
        h_offset: *off as usize,
        h_stride: *stride as usize,
        b,
        rank: *r as usize,
        scale: *s,
        segments: ep.lora_segments.map_or([usize::MAX; 2], |s| {
            s.map(|v| {
                if v == u32::MAX {
                    usize::MAX
                } else {
                    v as usize
                }
            })
        }),
    });
    matmul_ref(
        &w,
        h.m as usize,
        h.k as usize,
        x,
        t as usize,
        ep.bias.as_deref(),
        lora.as_ref(),
        ep.y0.as_deref(),
    )
}

/// Rounds values through f16 (what the GPU sees of an f16 upload).
pub fn round_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// A random epilogue: bias / accumulate / LoRA switched by the bits of `mask`.
pub fn random_epilogue(rng: &mut Rng, m: u32, t: u32, mask: u8) -> HostEpilogue {
    let mut ep = HostEpilogue::default();
    if mask & 1 != 0 {
        ep.bias = Some(rng.vec(m as usize));
    }
    if mask & 2 != 0 {
        ep.y0 = Some(rng.vec((m * t) as usize));
    }
    if mask & 4 != 0 {
        let (r, off) = (1 + rng.next_u32() % 20, rng.next_u32() % 4);
        let stride = off + r + rng.next_u32() % 3;
        let h = rng.vec((t * stride) as usize);
        let b = round_f16(&rng.vec((m * r) as usize));
        ep.lora = Some((h, off, stride, b, r, 0.5 + rng.f()));
    }
    ep
}

/// Full check of one case on every device mode: GPU vs reference within `tol` NMSE.
pub fn check_case(gpus: &[Arc<Gpu>], h: &HostData, t: u32, seed: u64, mask: u8, tol: f64) {
    let mut rng = Rng(seed | 1);
    let x = rng.vec((t * h.k) as usize);
    let ep = random_epilogue(&mut rng, h.m, t, mask);
    let want = run_ref(h, &x, t, &ep);
    for g in gpus {
        let w = Matrix::upload(g, &h.host()).expect("upload");
        let got = run_gpu(g, &w, &x, t, &ep).expect("gpu matmul");
        let e = nmse(&got, &want);
        assert!(
            e <= tol,
            "{:?} M={} K={} G={} T={t} mask={mask} f16={}: nmse {e:e} > {tol:e}",
            h.kind,
            h.m,
            h.k,
            h.g,
            g.has_f16()
        );
    }
}

/// Segmented LoRA (q|k|v in one matrix, each part with its own rank block of h): boundaries on
/// and off the 8-row tiles of `matmul_quant_f32`, every weight kind, decode and prefill T.
#[test]
fn lora_segments_match_the_reference() {
    let gpus = crate::test_util::both_modes();
    let mut rng = Rng(77);
    for (kind, segments) in [
        (Kind::W4Sym, [16u32, 32]),
        (Kind::W4Sym, [12, 29]),
        (Kind::W4Asym, [13, u32::MAX]),
        (Kind::W8, [24, 37]),
        (Kind::F16, [12, 29]),
    ] {
        let (m, k, r) = (40u32, 64u32, 12u32);
        let h = HostData::random(kind, m, k, 32, &mut rng);
        for t in [1u32, 3, 6] {
            let x = rng.vec((t * k) as usize);
            let stride = 2 + 3 * r;
            let ep = HostEpilogue {
                bias: Some(rng.vec(m as usize)),
                lora: Some((
                    rng.vec((t * stride) as usize),
                    1,
                    stride,
                    round_f16(&rng.vec((m * r) as usize)),
                    r,
                    0.75,
                )),
                lora_segments: Some(segments),
                ..Default::default()
            };
            let want = run_ref(&h, &x, t, &ep);
            for g in &gpus {
                let w = Matrix::upload(g, &h.host()).expect("upload");
                let got = run_gpu(g, &w, &x, t, &ep).expect("gpu matmul");
                let e = nmse(&got, &want);
                assert!(
                    e <= 1e-6,
                    "{kind:?} segments {segments:?} T={t}: nmse {e:e}"
                );
            }
        }
    }
}

#[test]
fn shape_errors_are_typed() {
    let g = gpu();
    let bad = HostMatrix::W4 {
        m: 4,
        k: 32,
        group_size: 32,
        q: &[0; 10],
        scales: &[0; 8],
        mins: None,
    };
    assert!(matches!(
        Matrix::upload(&g, &bad),
        Err(KernelError::Shape(_))
    ));
    let bad_g = HostMatrix::W4 {
        m: 4,
        k: 48,
        group_size: 32,
        q: &[0; 96],
        scales: &[0; 8],
        mins: None,
    };
    assert!(matches!(
        Matrix::upload(&g, &bad_g),
        Err(KernelError::Shape(_))
    ));
    let h = HostData::random(Kind::F32, 8, 8, 0, &mut Rng(3));
    let w = Matrix::upload(&g, &h.host()).unwrap();
    let small = g.zeros("x", 16).unwrap();
    let y = g.zeros("y", 1024).unwrap();
    let mut rec = Recorder::new(&g);
    let err = matmul(&mut rec, &w, &small, &y, 2, &Epilogue::default());
    assert!(matches!(err, Err(KernelError::Shape(_))), "{err:?}");
}

#[test]
fn upload_rows_concatenates_along_m() {
    let g = gpu();
    let mut rng = Rng(77);
    let parts: Vec<HostData> = [5u32, 3, 7]
        .iter()
        .map(|&m| HostData::random(Kind::W4Sym, m, 64, 32, &mut rng))
        .collect();
    let hosts: Vec<HostMatrix<'_>> = parts.iter().map(|p| p.host()).collect();
    let w = Matrix::upload_rows(&g, &hosts).unwrap();
    assert_eq!((w.m, w.k), (15, 64));
    let x = rng.vec(64);
    let got = run_gpu(&g, &w, &x, 1, &HostEpilogue::default()).unwrap();
    let want: Vec<f32> = parts
        .iter()
        .flat_map(|p| run_ref(p, &x, 1, &HostEpilogue::default()))
        .collect();
    assert!(nmse(&got, &want) < 1e-10, "{}", nmse(&got, &want));
}

/// A real-size vocab matrix (151,936 × 896) exceeds one 128 MiB binding in f16 and is split into
/// row blocks; W4 of the same shape fits one. Checks sampled rows against the reference.
#[test]
fn vocab_sized_matrices_split_transparently() {
    let g = gpu();
    let (m, k) = (151_936u32, 896u32);
    let mut rng = Rng(0x5eed);
    let x = rng.vec(k as usize);
    let sample: Vec<usize> = (0..64)
        .map(|i| (i * 2371 + 17) % m as usize)
        .chain([0, m as usize - 1])
        .collect();
    for kind in [Kind::F16, Kind::W4Sym] {
        let h = HostData::random(kind, m, k, 32, &mut rng);
        let w = Matrix::upload(&g, &h.host()).unwrap();
        let max_bind = g.limits().max_storage_buffer_binding_size;
        if kind == Kind::F16 && max_bind < u64::from(m) * u64::from(k) * 2 {
            assert!(
                w.blocks.len() >= 2,
                "expected a row split, got {} blocks",
                w.blocks.len()
            );
        }
        let y = run_gpu(&g, &w, &x, 1, &HostEpilogue::default()).unwrap();
        let dense = dequant(&h.host());
        for &r in &sample {
            let want: f64 = (0..k as usize)
                .map(|kk| f64::from(dense[r * k as usize + kk]) * f64::from(x[kk]))
                .sum();
            let err = (f64::from(y[r]) - want).abs();
            assert!(
                err <= 1e-3 * (1.0 + want.abs()),
                "{kind:?} row {r}: {} vs {want}",
                y[r]
            );
        }
    }
}
