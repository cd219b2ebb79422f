//! The network learns: on the embedded sample with a fixed seed, the recommended preset drives
//! the loss down and test accuracy far above chance in a few hundred steps, while the post's
//! initialisation leaves the loss at ln 10 ≈ 2.303.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use std::sync::Arc;

use cnn_stepper_core::data;
use cnn_stepper_core::engine::{ConvEngine, Preset};
use cnn_stepper_core::trainer::Session;

fn train(preset: Preset, steps: usize) -> (f32, f32, f32) {
    let data = Arc::new(data::embedded().unwrap());
    let mut s = Session::new(data, 1, preset, "post", ConvEngine::Fast).unwrap();
    let mut losses = vec![];
    for _ in 0..steps {
        s.step_batch(&mut |_, _| {}).unwrap();
        losses.extend(s.snapshot().new_loss_points.iter().map(|p| p.loss));
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let acc = s.evaluate(2000, &mut |_, _| {}).unwrap().accuracy();
    (mean(&losses[..20]), mean(&losses[losses.len() - 20..]), acc)
}

#[test]
fn recommended_preset_learns_within_a_few_hundred_steps() {
    let (first, last, acc) = train(Preset::Recommended, 250);
    println!("recommended: loss {first:.3} → {last:.3}, test accuracy {:.1}%", 100.0 * acc);
    assert!(last < 0.5 * first, "loss fell from {first} to {last}");
    assert!(acc > 0.85, "test accuracy {acc} after 250 steps");
}

#[test]
fn post_preset_stays_at_chance() {
    let (first, last, acc) = train(Preset::Post, 100);
    println!("post: loss {first:.4} → {last:.4}, test accuracy {:.1}%", 100.0 * acc);
    let ln10 = 10f32.ln();
    assert!((first - ln10).abs() < 0.02 && (last - ln10).abs() < 0.02, "loss {first} → {last}");
}
