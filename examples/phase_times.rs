//! Times each phase of a training step (fast engine, batch from argv).
use cnn_stepper::engine::{ConvEngine, Init, ModelConfig, Network, Preset};
use std::time::Instant;
fn main() {
    let b: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let cfg = ModelConfig::default();
    let mut net = Network::<f32>::new(cfg, Init::He, 1, ConvEngine::Fast).unwrap();
    let x: Vec<f32> = (0..b * 784).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let y: Vec<usize> = (0..b).map(|i| i % 10).collect();
    let h = Preset::Recommended.hyper();
    for round in 0..4 {
        net.load_batch(&x, &y).unwrap();
        let mut line = String::new();
        let t0 = Instant::now();
        loop {
            let t = Instant::now();
            let Some(p) = net.step_phase(&h, &mut |_, _| {}) else { break };
            line.push_str(&format!("{}={:.1} ", p.label(), t.elapsed().as_secs_f64() * 1e3));
        }
        if round == 3 {
            println!("total {:.1} ms\n{}", t0.elapsed().as_secs_f64() * 1e3, line.replace(" f", "\nf").replace(" b", "\nb").replace(" u", "\nu"));
        }
    }
}
