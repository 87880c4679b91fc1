//! Quick timing of `matmul_quant_f32` on Qwen2.5-0.5B's MLP shapes (896 ↔ 4864): N = 1, 4, 8
//! decode columns and a T = 128 prefill, W4 G32 symmetric, next to the texture roofline probe.
//! Faster to iterate with than the criterion bench (`cargo bench -p kestrel-kernels`). Run:
//! `cargo run --release -p kestrel-kernels --example matmul_probe`. Environment:
//! `MP_SHAPE=MxK,..` other shapes, `MP_T=n` one column count, `MP_ROUNDS=n` best of n rounds,
//! `MP_LORA=R` add a rank-R fused LoRA expand, `MP_SHRINK=R` time `lora_shrink` instead,
//! `MP_GLU=1` run `matmul_swiglu` (input `[T, 2K]` gate | up, the down projection's form).
use kestrel_kernels::{
    matmul, matmul_swiglu, measure_read_bandwidth, Epilogue, Gpu, GpuOptions, HostMatrix, LoraB,
    LoraExpand, Matrix, Recorder,
};
use std::time::Instant;

fn main() {
    let gpu = Gpu::new(&GpuOptions::default()).expect("a GPU adapter");
    let probe = measure_read_bandwidth(&gpu).expect("probe");
    println!(
        "{} | probe {:.2} GB/s ({})",
        gpu.adapter_description(),
        probe.best_gb_s,
        probe.variant
    );
    let mut seed = 42u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 16) as u32
    };
    let shapes: Vec<(u32, u32)> = match std::env::var("MP_SHAPE") {
        Ok(v) => v
            .split(',')
            .map(|s| {
                let (m, k) = s.split_once('x').expect("MxK");
                (m.parse().unwrap(), k.parse().unwrap())
            })
            .collect(),
        Err(_) => vec![(4864, 896), (896, 4864)],
    };
    if let Some(r) = std::env::var("MP_SHRINK")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        // MP_SHRINK=R: lora_shrink of 3 (K = 896) or 1 (K = 4864) rank-R matrices.
        for (nmat, k) in [(3usize, 896u32), (2, 896), (1, 4864)] {
            let v: Vec<u8> = (0..r * k * nmat as u32)
                .flat_map(|_| half::f16::from_f32((next() % 200) as f32 / 1000.0).to_le_bytes())
                .collect();
            let a = kestrel_kernels::LoraA::upload(&gpu, k, &[&v]).expect("a");
            for t in [1u32, 8] {
                let xs: Vec<f32> = (0..t * k)
                    .map(|_| (next() % 2000) as f32 / 1000.0 - 1.0)
                    .collect();
                let x = gpu.upload("x", bytemuck::cast_slice(&xs)).expect("x");
                let h = gpu
                    .zeros("h", u64::from(t * r * nmat as u32) * 4)
                    .expect("h");
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let mut rec = Recorder::new(&gpu);
                    let start = Instant::now();
                    for _ in 0..20 {
                        kestrel_kernels::lora_shrink(&mut rec, &x, &a, &h, t).expect("shrink");
                    }
                    rec.submit_and_wait().expect("submit");
                    best = best.min(start.elapsed().as_secs_f64() / 20.0);
                }
                println!("lora_shrink {nmat}x[{r}, {k}] T={t}: {:.3} ms", best * 1e3);
            }
        }
        return;
    }
    for (m, k) in shapes {
        let q: Vec<u8> = (0..m * k / 2).map(|_| next() as u8).collect();
        let scales: Vec<u8> = (0..m * k / 32)
            .flat_map(|_| half::f16::from_f32(0.01).to_le_bytes())
            .collect();
        let host = HostMatrix::W4 {
            m,
            k,
            group_size: 32,
            q: &q,
            scales: &scales,
            mins: None,
        };
        let w = Matrix::upload(&gpu, &host).expect("upload");
        // MP_LORA=R: the fused LoRA expand of rank R in the epilogue.
        let rank: u32 = std::env::var("MP_LORA")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let b = (rank > 0).then(|| {
            let f: Vec<u8> = (0..m * rank)
                .flat_map(|_| {
                    half::f16::from_f32((next() % 200) as f32 / 1000.0 - 0.1).to_le_bytes()
                })
                .collect();
            LoraB::upload(&gpu, m, rank, &f).expect("B")
        });
        let only: Option<u32> = std::env::var("MP_T").ok().and_then(|v| v.parse().ok());
        let glu = std::env::var("MP_GLU").is_ok_and(|v| v == "1");
        for t in [1u32, 4, 8, 128] {
            if only.is_some_and(|o| o != t) {
                continue;
            }
            let mut xs: Vec<f32> = (0..t * k * if glu { 2 } else { 1 })
                .map(|_| (next() % 2000) as f32 / 1000.0 - 1.0)
                .collect();
            xs.resize(xs.len().max(16384), 0.0);
            let x = gpu.upload("x", bytemuck::cast_slice(&xs)).expect("x");
            let y = gpu.zeros("y", u64::from(t * m) * 4).expect("y");
            let hs: Vec<f32> = (0..t * rank.max(1))
                .map(|_| (next() % 2000) as f32 / 1000.0 - 1.0)
                .collect();
            let h = gpu.upload("h", bytemuck::cast_slice(&hs)).expect("h");
            let epi = Epilogue {
                lora: b.as_ref().map(|b| LoraExpand {
                    h: &h,
                    h_offset: 0,
                    h_stride: rank,
                    b,
                    rank,
                    scale: 0.5,
                    segments: LoraExpand::ONE_SEGMENT,
                }),
                ..Epilogue::default()
            };
            let reps = if t > 16 { 2 } else { 20 };
            let mut best = f64::MAX;
            let mut best_rec = f64::MAX;
            let rounds: u32 = std::env::var("MP_ROUNDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3);
            for _ in 0..rounds {
                let mut rec = Recorder::new(&gpu);
                let start = Instant::now();
                for _ in 0..reps {
                    if glu {
                        matmul_swiglu(&mut rec, &w, &x, &y, t, &epi).expect("matmul_swiglu");
                    } else {
                        matmul(&mut rec, &w, &x, &y, t, &epi).expect("matmul");
                    }
                }
                best_rec = best_rec.min(start.elapsed().as_secs_f64() / f64::from(reps));
                rec.submit_and_wait().expect("submit");
                best = best.min(start.elapsed().as_secs_f64() / f64::from(reps));
            }
            let gb = w.weight_bytes() as f64 / best / 1e9;
            let gflops = 2.0 * f64::from(m) * f64::from(k) * f64::from(t) / best / 1e9;
            println!(
                "{m}x{k} T={t:3}: {:7.3} ms  {gb:5.2} GB/s ({:.2} of probe)  {gflops:6.2} GFLOP/s  (recording {:.3} ms)",
                best * 1e3,
                gb / probe.best_gb_s,
                best_rec * 1e3
            );
        }
    }
}
