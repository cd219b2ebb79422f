//! Times whole training steps of a named network or a model line, to choose the `tiny`
//! network (the naive engine should step a batch of 32 in about a second).
//!
//! `cargo run --release -p cnn-stepper-core --example model_step -- tiny naive 32 3`

#![allow(clippy::unwrap_used, clippy::expect_used)] // A measuring tool: a bad argument may panic.

use std::time::Instant;

use cnn_stepper_core::engine::model::resolve;
use cnn_stepper_core::engine::model::sequential::Sequential;
use cnn_stepper_core::engine::{ConvEngine, Init, Preset};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map_or("tiny", String::as_str);
    let engine = ConvEngine::parse(args.get(1).map_or("naive", String::as_str)).unwrap();
    let batch: usize = args.get(2).map_or(32, |s| s.parse().unwrap());
    let steps: usize = args.get(3).map_or(3, |s| s.parse().unwrap());
    let plan = resolve(model, (1, 28, 28), 10).unwrap_or_else(|e| panic!("{e}"));
    println!("{}: {} parameters, {} multiply-adds per image", plan.spec, plan.total_params(), plan.work_per_image());
    let mut net = Sequential::<f32>::new(plan, Init::He, 1, engine);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x: Vec<f32> = (0..batch * 784).map(|_| rng.random::<f32>()).collect();
    let y: Vec<usize> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let hyper = Preset::Recommended.hyper();
    net.run_step(&x, &y, &hyper).unwrap(); // warm-up: allocations, FFT plans
    let t = Instant::now();
    for _ in 0..steps {
        net.run_step(&x, &y, &hyper).unwrap();
    }
    let secs = t.elapsed().as_secs_f64() / steps as f64;
    println!("{model} {} batch {batch}: {secs:.3} s per step", engine.name());
}
