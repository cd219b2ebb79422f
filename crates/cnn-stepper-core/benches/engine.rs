//! Criterion benches: the conv2 layer in each engine, and full training steps per batch size.
//! Fixed seeds; every variant runs on the same data. Throughput is reported in images.

use std::hint::black_box;
use std::time::Duration;

use cnn_stepper_core::engine::conv::{self, ConvWorkspace};
use cnn_stepper_core::engine::network::conv2_shape;
use cnn_stepper_core::engine::{ConvEngine, Init, ModelConfig, Network, Preset};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn pixels(n: usize, len: usize) -> Vec<f32> {
    (0..n * len).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect()
}

/// conv2 forward + backward (the layer that costs ~78% of a step).
fn conv2(c: &mut Criterion) {
    let cfg = ModelConfig::default();
    let mut g = c.benchmark_group("conv2 forward+backward");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (engine, batches) in [(ConvEngine::Naive, vec![8]), (ConvEngine::Fast, vec![8, 32, 128])] {
        for n in batches {
            let s = conv2_shape(&cfg, n);
            let x = pixels(n, s.in_len());
            let w = pixels(1, s.f * s.taps());
            let b = vec![0.1f32; s.f];
            let mut out = vec![0.0; n * s.out_len()];
            let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; s.f], vec![0.0; x.len()]);
            let mut ws = ConvWorkspace::default();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(engine.name(), format!("batch {n}")), |bench| {
                bench.iter(|| {
                    conv::forward(engine, &s, &x, &w, &b, &mut out, &mut ws, &mut |_, _| {});
                    let dy = &out; // any gradient of the right shape does
                    conv::backward(engine, &s, &x, &w, dy, &mut dw, &mut db, Some(&mut dx), &mut ws, &mut |_, _| {});
                    black_box(&dx);
                })
            });
        }
    }
    g.finish();
}

/// One full training step: forward, backward, SGD update.
fn train_step(c: &mut Criterion) {
    let cfg = ModelConfig::default();
    let hyper = Preset::Recommended.hyper();
    let mut g = c.benchmark_group("training step");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (engine, batches) in [(ConvEngine::Naive, vec![8]), (ConvEngine::Fast, vec![8, 32, 128])] {
        for n in batches {
            let mut net = Network::<f32>::new(cfg, Init::He, 1, engine).unwrap_or_else(|e| panic!("{e}"));
            let x = pixels(n, 28 * 28);
            let y: Vec<usize> = (0..n).map(|i| i % 10).collect();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(engine.name(), format!("batch {n}")), |bench| {
                bench.iter(|| black_box(net.train_step(&x, &y, &hyper).unwrap_or_else(|e| panic!("{e}"))))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, conv2, train_step);
criterion_main!(benches);
