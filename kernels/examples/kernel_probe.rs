//! Timings of the non-matmul kernels on this adapter, per Qwen2.5-0.5B step: decode attention
//! over a 1000-token prefix (N = 1, 4, 16 paths), prefill attention, argmax and sampling over a
//! 151,936-token vocabulary, one-row RMSNorm dispatches, and the rank-16 LoRA shrinks (alone,
//! and q|k|v / gate|up fused into the RMSNorm that produces their input). The matmul's counterpart is
//! `matmul_probe` (and the criterion bench in `benches/`). Run:
//! `cargo run --release -p kestrel-kernels --example kernel_probe`.
use std::time::Instant;

use kestrel_kernels::attention_decode_f16::{AttentionDecode, DecodeBuffers, DecodeShape};
use kestrel_kernels::attention_prefill_f16::AttentionPrefill;
use kestrel_kernels::heads::{HeadDims, QkvLayout};
use kestrel_kernels::lora_shrink::{lora_shrink, lora_shrink_swiglu, LoraA};
use kestrel_kernels::rmsnorm_f32::RmsNorm;
use kestrel_kernels::sampling::{Argmax, Sample, SampleConfig};
use kestrel_kernels::{Gpu, GpuOptions, Recorder};

/// xorshift64: uniform values in [-scale, scale).
struct Rng(u64);

impl Rng {
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }
}

fn time(gpu: &Gpu, reps: u32, mut f: impl FnMut(&mut Recorder<'_>)) -> f64 {
    let mut rec = Recorder::new(gpu);
    f(&mut rec);
    rec.submit_and_wait().unwrap();
    let t = Instant::now();
    for _ in 0..reps {
        let mut rec = Recorder::new(gpu);
        f(&mut rec);
        rec.submit_and_wait().unwrap();
    }
    t.elapsed().as_secs_f64() * 1e3 / f64::from(reps)
}

fn main() {
    let gpu = Gpu::new(&GpuOptions::default()).expect("a GPU adapter");
    eprintln!("adapter: {}", gpu.adapter_description());
    let dims = HeadDims {
        h: 14,
        hkv: 2,
        d: 64,
    }; // Qwen2.5-0.5B
    let layout = QkvLayout::fused(dims);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let p_len = 1000u32;
    let kv = |n: u64| {
        gpu.upload(
            "kv",
            &vec![0x3c00u16; n as usize]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let k_pre = kv(u64::from(dims.hkv * p_len * dims.d));
    let v_pre = kv(u64::from(dims.hkv * p_len * dims.d));
    let k_suf = kv(u64::from(16 * dims.hkv * 256 * dims.d));
    let v_suf = kv(u64::from(16 * dims.hkv * 256 * dims.d));
    let q = gpu
        .upload(
            "q",
            bytemuck::cast_slice(&rng.vec((256 * layout.stride) as usize, 1.0)),
        )
        .unwrap();
    let s_len = gpu
        .upload("s_len", bytemuck::cast_slice(&[100u32; 16]))
        .unwrap();
    let out = gpu.zeros("out", 256 * 14 * 64 * 4).unwrap();
    let dec = AttentionDecode::new(&gpu).unwrap();
    for n in [1u32, 4, 16] {
        let shape = DecodeShape {
            n,
            p_len,
            p_cap: p_len,
            n_max: 16,
            s_cap: 256,
            s_max: 100,
        };
        let scratch = gpu
            .zeros("scratch", AttentionDecode::scratch_bytes(dims, &shape))
            .unwrap();
        let ms = time(&gpu, 20, |rec| {
            let b = DecodeBuffers {
                q: (&q).into(),
                k_pre: (&k_pre).into(),
                v_pre: (&v_pre).into(),
                k_suf: (&k_suf).into(),
                v_suf: (&v_suf).into(),
                s_len: (&s_len).into(),
                scratch: (&scratch).into(),
                out: (&out).into(),
            };
            dec.encode(rec, b, dims, layout, shape).unwrap();
        });
        eprintln!("attention_decode  N={n:2} P={p_len} S=100 (H14 Hkv2 D64): {ms:.3} ms/layer");
    }
    let pre = AttentionPrefill::new(&gpu).unwrap();
    for t in [64u32, 256] {
        let ms = time(&gpu, 5, |rec| {
            pre.encode(rec, &q, &k_pre, &v_pre, &out, dims, layout, t, 0, p_len)
                .unwrap()
        });
        eprintln!("attention_prefill T={t} past=0: {ms:.3} ms/layer");
    }
    let v = 151_936u32;
    let logits = gpu
        .upload(
            "logits",
            bytemuck::cast_slice(&rng.vec((16 * v) as usize, 5.0)),
        )
        .unwrap();
    let streams = gpu
        .upload(
            "streams",
            bytemuck::cast_slice(&(0..16u32).collect::<Vec<_>>()),
        )
        .unwrap();
    let tok = gpu.zeros("tok", 16 * 8).unwrap();
    let am = Argmax::new(&gpu).unwrap();
    let sm = Sample::new(&gpu).unwrap();
    for n in [1u32, 16] {
        let ms = time(&gpu, 10, |rec| am.encode(rec, &logits, &tok, n, v).unwrap());
        eprintln!("argmax  N={n:2} V={v}: {ms:.3} ms");
        for (k, p) in [(0u32, 1.0f32), (50, 0.9)] {
            let cfg = SampleConfig {
                temperature: 0.7,
                top_k: k,
                top_p: p,
                seed: 1,
                step: 0,
            };
            let ms = time(&gpu, 5, |rec| {
                sm.encode(rec, &logits, &streams, &tok, n, v, &cfg).unwrap()
            });
            eprintln!("sample  N={n:2} V={v} top_k={k} top_p={p}: {ms:.3} ms");
        }
    }
    // RMSNorm of one decode row (hidden 896), 48 per 0.5B decode step: per-dispatch cost.
    let norm = RmsNorm::new(&gpu).unwrap();
    let x = gpu
        .upload("x", bytemuck::cast_slice(&rng.vec(896, 1.0)))
        .unwrap();
    // A uniform window, as the engine uploads norm weights (rmsnorm_shrink_f32 binds it so).
    let w = gpu
        .upload_window("w", bytemuck::cast_slice(&rng.vec(896, 1.0)))
        .unwrap();
    let y = gpu.zeros("y", 896 * 4).unwrap();
    let ms = time(&gpu, 5, |rec| {
        for _ in 0..48 {
            norm.encode(rec, &x, &w, &y, 1, 896, 1e-6).unwrap();
        }
    });
    eprintln!(
        "rmsnorm T=1 K=896: {:.3} ms per dispatch (48 in one submit)",
        ms / 48.0
    );
    // LoRA shrinks of one decode row at rank 16 (0.5B: q|k|v, gate|up, o, and down from gate |
    // up), 24 of each in one submit as in a decode step.
    let xs = gpu
        .upload(
            "x",
            bytemuck::cast_slice(&rng.vec((kestrel_kernels::UNIFORM_X_BYTES / 4) as usize, 1.0)),
        )
        .unwrap();
    let h = gpu.zeros("h", 48 * 4 * 16).unwrap();
    for (rows, k, glu) in [
        (48u32, 896u32, false),
        (32, 896, false),
        (16, 896, false),
        (16, 4864, true),
    ] {
        let a: Vec<u8> = rng
            .vec((rows * k) as usize, 0.1)
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let a = LoraA::upload(&gpu, k, &[&a]).unwrap();
        for t in [1u32, 8] {
            let ms = time(&gpu, 5, |rec| {
                for _ in 0..24 {
                    if glu {
                        lora_shrink_swiglu(rec, &xs, &a, &h, t).unwrap();
                    } else {
                        lora_shrink(rec, &xs, &a, &h, t).unwrap();
                    }
                }
            });
            eprintln!(
                "lora_shrink T={t} ΣR={rows} K={k}{}: {:.3} ms per dispatch (24 in one submit)",
                if glu { " (swiglu)" } else { "" },
                ms / 24.0
            );
            if !glu {
                // The same shrink fused into the RMSNorm that produces its input.
                let y = gpu.zeros("y", kestrel_kernels::UNIFORM_X_BYTES).unwrap();
                let split = time(&gpu, 5, |rec| {
                    for _ in 0..24 {
                        norm.encode(rec, &xs, &w, &y, t, k, 1e-6).unwrap();
                        lora_shrink(rec, &y, &a, &h, t).unwrap();
                    }
                });
                let fused = time(&gpu, 5, |rec| {
                    for _ in 0..24 {
                        norm.encode_lora_shrink(rec, &xs, &w, &y, &a, &h, t, k, 1e-6)
                            .unwrap();
                    }
                });
                eprintln!(
                    "  rmsnorm + lora_shrink {:.3} ms, rmsnorm_shrink_f32 {:.3} ms",
                    split / 24.0,
                    fused / 24.0
                );
            }
        }
    }
}
