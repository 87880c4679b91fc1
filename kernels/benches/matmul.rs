//! Criterion benches for the matmul family on the shapes of Qwen2.5-0.5B's MLP (896 ↔ 4864),
//! with the device's read bandwidth from the roofline probe for comparison.
//!
//! Each iteration records `REPEAT` identical dispatches into one recorder and waits, so the
//! per-submit cost is amortised; throughput is weight bytes read (GB/s) for matvec and
//! GFLOP/s-equivalent bytes for GEMM (printed separately). Run: `cargo bench -p kestrel-kernels`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kestrel_kernels::{
    lora_shrink, matmul, measure_read_bandwidth, Epilogue, Gpu, GpuOptions, HostMatrix, LoraA,
    Matrix, Recorder,
};

const REPEAT: u64 = 10;

struct Rng(u64);
impl Rng {
    fn u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (self.u32() % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }
}

fn w4(gpu: &Gpu, m: u32, k: u32, rng: &mut Rng) -> Matrix {
    let q: Vec<u8> = (0..m * k / 2).map(|_| rng.u32() as u8).collect();
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
    Matrix::upload(gpu, &host).expect("upload")
}

fn bench(c: &mut Criterion) {
    let gpu = Gpu::new(&GpuOptions::default()).expect("benches need a GPU adapter");
    let probe = measure_read_bandwidth(&gpu).expect("probe");
    println!(
        "adapter: {} | shader-f16: {} | roofline probe: {:.2} GB/s ({})",
        gpu.adapter_description(),
        gpu.has_f16(),
        probe.best_gb_s,
        probe.variant
    );
    let mut rng = Rng(42);
    let mut group = c.benchmark_group("matmul_quant_f32");
    group.sample_size(10);
    for (m, k) in [(896u32, 4864u32), (4864, 896)] {
        let w = w4(&gpu, m, k, &mut rng);
        for n in [1u32, 8, 16] {
            let x = gpu
                .upload("x", bytemuck::cast_slice(&rng.f32s((n * k) as usize)))
                .expect("x");
            let y = gpu.zeros("y", u64::from(n * m) * 4).expect("y");
            group.throughput(Throughput::Bytes(w.weight_bytes() * REPEAT));
            group.bench_with_input(
                BenchmarkId::new(format!("{m}x{k}"), format!("N={n}")),
                &n,
                |b, &n| {
                    b.iter(|| {
                        let mut rec = Recorder::new(&gpu);
                        for _ in 0..REPEAT {
                            matmul(&mut rec, &w, &x, &y, n, &Epilogue::default()).expect("matmul");
                        }
                        rec.submit_and_wait().expect("submit");
                    })
                },
            );
        }
    }
    group.finish();

    let mut group = c.benchmark_group("matmul_quant_f32_prefill");
    group.sample_size(10);
    for (m, k, t) in [(4864u32, 896u32, 128u32), (896, 4864, 128)] {
        let w = w4(&gpu, m, k, &mut rng);
        let x = gpu
            .upload("x", bytemuck::cast_slice(&rng.f32s((t * k) as usize)))
            .expect("x");
        let y = gpu.zeros("y", u64::from(t * m) * 4).expect("y");
        // Elements = FLOPs (2·M·K·T) so criterion's "elem/s" reads as FLOP/s.
        group.throughput(Throughput::Elements(
            2 * u64::from(m) * u64::from(k) * u64::from(t),
        ));
        group.bench_function(
            BenchmarkId::new(format!("{m}x{k}"), format!("T={t}")),
            |b| {
                b.iter(|| {
                    let mut rec = Recorder::new(&gpu);
                    matmul(&mut rec, &w, &x, &y, t, &Epilogue::default()).expect("matmul");
                    rec.submit_and_wait().expect("submit");
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("lora_shrink");
    group.sample_size(10);
    let (k, r) = (896u32, 64u32);
    let a: Vec<u8> = rng
        .f32s((3 * r * k) as usize)
        .iter()
        .flat_map(|&f| half::f16::from_f32(f).to_le_bytes())
        .collect();
    let a = LoraA::upload(&gpu, k, &[&a]).expect("a");
    for n in [1u32, 8] {
        let x = gpu
            .upload("x", bytemuck::cast_slice(&rng.f32s((n * k) as usize)))
            .expect("x");
        let h = gpu.zeros("h", u64::from(n * 3 * r) * 4).expect("h");
        group.bench_function(BenchmarkId::new("qkv_r64_k896", format!("N={n}")), |b| {
            b.iter(|| {
                let mut rec = Recorder::new(&gpu);
                lora_shrink(&mut rec, &x, &a, &h, n).expect("shrink");
                rec.submit_and_wait().expect("submit");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
