//! Scratch: time the real matmul front-end on model shapes.
use kestrel_kernels::{matmul, Epilogue, Gpu, GpuOptions, HostMatrix, Matrix, Recorder};
use std::time::Instant;

fn main() {
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    println!("{} checks={}", gpu.adapter_description(), gpu.shader_checks());
    let shapes: Vec<(u32, u32)> = std::env::args().nth(1).map(|s| s.split(',').map(|p| { let (a, b) = p.split_once('x').unwrap(); (a.parse().unwrap(), b.parse().unwrap()) }).collect()).unwrap_or(vec![(4864, 896), (896, 4864), (151936, 896)]);
    for (m, k) in shapes {
        let q: Vec<u8> = (0..m * k / 2).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let scales: Vec<u8> = (0..m * k / 32).flat_map(|_| half::f16::from_f32(0.01).to_le_bytes()).collect();
        let w = Matrix::upload(&gpu, &HostMatrix::W4 { m, k, group_size: 32, q: &q, scales: &scales, mins: None }).unwrap();
        for n in [1u32, 4, 8, 128] {
            if n == 128 && m > 10000 { continue; }
            let x = gpu.upload("x", bytemuck::cast_slice(&vec![0.01f32; (n * k) as usize])).unwrap();
            let y = gpu.zeros("y", u64::from(n * m) * 4).unwrap();
            let mut times = vec![];
            for _ in 0..15 {
                let mut rec = Recorder::new(&gpu);
                matmul(&mut rec, &w, &x, &y, n, &Epilogue::default()).unwrap();
                let t = Instant::now();
                rec.submit_and_wait().unwrap();
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let t = times[times.len() / 2];
            println!("{m}x{k} N={n:3}: {:8.3} ms  {:.2} GB/s  {:.2} GFLOP/s", t * 1e3, w.weight_bytes() as f64 / t / 1e9, 2.0 * m as f64 * k as f64 * n as f64 / t / 1e9);
        }
    }
}
