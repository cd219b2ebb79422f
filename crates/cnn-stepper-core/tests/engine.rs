//! The engine's maths: analytic gradients against finite differences, naive ≡ fast, phase
//! order and determinism. Small configs keep it fast; nothing here needs a dataset.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use cnn_stepper_core::engine::phase::{Layer, Phase};
use cnn_stepper_core::engine::{
    Activations, ConvEngine, Float, Hyper, Init, ModelConfig, Network, OptimizerKind, PARAM_NAMES, Real,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Small shapes that still exercise padding, several channels and both ReLUs.
fn configs() -> Vec<(&'static str, ModelConfig)> {
    let base = ModelConfig {
        in_channels: 1,
        in_height: 6,
        in_width: 7,
        conv1_filters: 2,
        conv2_filters: 3,
        kernel: 3,
        stride: 1,
        pad: 1,
        hidden: 5,
        classes: 4,
        relu_after_conv2: false,
    };
    vec![
        ("same padding", base),
        ("relu after conv2, two input channels", ModelConfig { relu_after_conv2: true, in_channels: 2, ..base }),
        (
            "stride 2, no padding, 5x5 kernel",
            ModelConfig { stride: 2, pad: 0, kernel: 2, in_height: 9, in_width: 8, ..base },
        ),
        ("post's kernel and padding", ModelConfig { kernel: 5, pad: 2, in_height: 8, in_width: 8, ..base }),
        // Four channels into conv2: the fast engine takes its Fourier route there.
        ("four conv1 filters", ModelConfig { conv1_filters: 4, kernel: 5, pad: 2, in_height: 8, in_width: 8, ..base }),
    ]
}

fn batch<T: Float>(cfg: &ModelConfig, n: usize, seed: u64) -> (Vec<T>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = n * cfg.in_channels * cfg.in_height * cfg.in_width;
    let x = (0..len).map(|_| <T as Real>::from_f64(rng.random::<f64>())).collect();
    let y = (0..n).map(|_| rng.random_range(0..cfg.classes)).collect();
    (x, y)
}

const HYPER: Hyper = Hyper { lr: 0.05, momentum: 0.9, reg: 0.1, lr_decay: 1.0, optimizer: OptimizerKind::Sgd };

/// Runs the forward and backward phases, stopping before the update.
fn gradients<T: Float>(net: &mut Network<T>, x: &[T], y: &[usize]) {
    net.load_batch(x, y).unwrap();
    while net.next_phase() != Some(Phase::Update) {
        net.step_phase(&HYPER, &mut |_, _| {});
    }
}

fn loss<T: Float>(net: &mut Network<T>, x: &[T], y: &[usize]) -> f64 {
    let mut acts = Activations::default();
    net.forward_into(x, y, HYPER.reg, &mut acts).unwrap();
    acts.loss().to_f64()
}

/// Finite-difference step: central differences err by ~h²·|L‴|/6 (truncation) plus ~ε·|L|/h
/// (rounding, ε = 1.1e-16, |L| about 1.5): at h = 1e-5 both are ~1e-11.
const H: f64 = 1e-5;

/// Relative error with a floor of 1e-5: below it a gradient is compared absolutely (to 1e-10),
/// since the rounding of the numeric estimate alone is ~1e-11 and a dead ReLU gives exact zeros.
fn rel_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-5)
}

#[test]
fn every_parameter_gradient_matches_finite_differences_in_f64() {
    let h = H;
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        for (name, cfg) in configs() {
            let mut net = Network::<f64>::new(cfg, Init::He, 7, engine).unwrap();
            let (x, y) = batch::<f64>(&cfg, 3, 11);
            gradients(&mut net, &x, &y);
            let analytic = net.grads.clone();
            let mut worst = 0.0f64;
            for (t, tensor) in PARAM_NAMES.iter().enumerate() {
                let len = analytic.slices()[t].len();
                // Every element of the small tensors, a spread of the large ones.
                let step = (len / 40).max(1);
                for i in (0..len).step_by(step) {
                    let orig = net.params.slices()[t][i];
                    net.params.slices_mut()[t][i] = orig + h;
                    let up = loss(&mut net, &x, &y);
                    net.params.slices_mut()[t][i] = orig - h;
                    let down = loss(&mut net, &x, &y);
                    net.params.slices_mut()[t][i] = orig;
                    let numeric = (up - down) / (2.0 * h);
                    let err = rel_err(analytic.slices()[t][i], numeric);
                    assert!(
                        err < 1e-5,
                        "{engine:?}, {name}: {tensor}[{i}] analytic {} numeric {numeric} (rel err {err:e})",
                        analytic.slices()[t][i]
                    );
                    worst = worst.max(err);
                }
            }
            println!("{engine:?} {name}: worst relative error {worst:e}");
        }
    }
}

#[test]
fn input_gradient_matches_finite_differences_in_f64() {
    let h = H;
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        for (name, cfg) in configs() {
            let mut net = Network::<f64>::new(cfg, Init::He, 3, engine).unwrap();
            net.compute_input_grad = true;
            let (mut x, y) = batch::<f64>(&cfg, 2, 5);
            gradients(&mut net, &x, &y);
            let analytic = net.activations().d_input.clone();
            assert_eq!(analytic.len(), x.len());
            for i in 0..x.len() {
                let orig = x[i];
                x[i] = orig + h;
                let up = loss(&mut net, &x, &y);
                x[i] = orig - h;
                let down = loss(&mut net, &x, &y);
                x[i] = orig;
                let numeric = (up - down) / (2.0 * h);
                let err = rel_err(analytic[i], numeric);
                assert!(err < 1e-5, "{engine:?}, {name}: dx[{i}] analytic {} numeric {numeric}", analytic[i]);
            }
        }
    }
}

fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = a.iter().chain(b).fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        // Relative to the tensor's largest value: elementwise relative error is meaningless
        // for values that are sums cancelling to ~0.
        assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: naive {x} fast {y} (scale {scale})");
    }
}

#[test]
fn naive_and_fast_engines_give_the_same_numbers_in_f32() {
    let mut all = configs();
    all.push(("post's network, full size", ModelConfig::default()));
    for (name, cfg) in all {
        let n = if cfg == ModelConfig::default() { 2 } else { 5 };
        let (x, y) = batch::<f32>(&cfg, n, 99);
        let mut naive = Network::<f32>::new(cfg, Init::He, 1, ConvEngine::Naive).unwrap();
        let mut fast = Network::<f32>::new(cfg, Init::He, 1, ConvEngine::Fast).unwrap();
        naive.compute_input_grad = true;
        fast.compute_input_grad = true;
        for step in 0..2 {
            naive.train_step(&x, &y, &HYPER).unwrap();
            fast.train_step(&x, &y, &HYPER).unwrap();
            let (a, b) = (naive.activations(), fast.activations());
            let what = |t: &str| format!("{name}, step {step}: {t}");
            assert_close(&what("conv1"), &a.conv1, &b.conv1);
            assert_close(&what("conv2"), &a.conv2, &b.conv2);
            assert_close(&what("probs"), &a.probs, &b.probs);
            assert_close(&what("d_relu1"), &a.d_relu1, &b.d_relu1);
            assert_close(&what("d_input"), &a.d_input, &b.d_input);
            for (t, tensor) in PARAM_NAMES.iter().enumerate() {
                assert_close(&what(&format!("grad {tensor}")), naive.grads.slices()[t], fast.grads.slices()[t]);
                assert_close(&what(tensor), naive.params.slices()[t], fast.params.slices()[t]);
            }
        }
    }
}

#[test]
fn phases_run_forward_then_backward_in_reverse_then_update() {
    let cfg = configs()[0].1;
    let mut net = Network::<f32>::new(cfg, Init::He, 1, ConvEngine::Fast).unwrap();
    assert_eq!(net.next_phase(), None, "no phase runs before a batch is loaded");
    let (x, y) = batch::<f32>(&cfg, 2, 1);
    net.load_batch(&x, &y).unwrap();
    let mut seen = vec![];
    while let Some(p) = net.step_phase(&HYPER, &mut |_, _| {}) {
        seen.push(p.label());
    }
    let want = [
        "forward conv1",
        "forward relu1",
        "forward conv2",
        "forward fc1",
        "forward relu2",
        "forward fc2",
        "forward loss",
        "backward loss",
        "backward fc2",
        "backward relu2",
        "backward fc1",
        "backward conv2",
        "backward relu1",
        "backward conv1",
        "update",
    ];
    assert_eq!(seen, want);
    let with_relu = ModelConfig { relu_after_conv2: true, ..cfg };
    let seq = Phase::sequence(&with_relu);
    assert_eq!(seq.len(), 17);
    assert_eq!(seq[3], Phase::Forward(Layer::ReluConv2));
    assert_eq!(seq[12], Phase::Backward(Layer::ReluConv2));
}

#[test]
fn stepping_phase_by_phase_equals_a_whole_step() {
    let cfg = configs()[1].1;
    let (x, y) = batch::<f32>(&cfg, 4, 3);
    let mut a = Network::<f32>::new(cfg, Init::He, 5, ConvEngine::Fast).unwrap();
    let mut b = Network::<f32>::new(cfg, Init::He, 5, ConvEngine::Fast).unwrap();
    a.train_step(&x, &y, &HYPER).unwrap();
    b.load_batch(&x, &y).unwrap();
    let mut count = 0;
    while b.step_phase(&HYPER, &mut |_, _| {}).is_some() {
        count += 1;
    }
    assert_eq!(count, b.phases().len());
    assert_eq!(a.params, b.params);
}

#[test]
fn same_seed_gives_bit_identical_weights_after_several_steps() {
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        let cfg = configs()[3].1;
        let run = |seed: u64| {
            let mut net = Network::<f32>::new(cfg, Init::He, seed, engine).unwrap();
            for k in 0..4 {
                let (x, y) = batch::<f32>(&cfg, 6, 100 + k);
                net.train_step(&x, &y, &HYPER).unwrap();
            }
            net.params
        };
        assert_eq!(run(42), run(42), "{engine:?}");
        assert_ne!(run(42), run(43), "{engine:?}");
    }
}

#[test]
fn full_size_fast_engine_is_deterministic_across_runs() {
    // The fast engine splits the batch across threads and uses a parallel GEMM: the result
    // must still not depend on scheduling.
    let cfg = ModelConfig::default();
    let (x, y) = batch::<f32>(&cfg, 8, 4);
    let run = || {
        let mut net = Network::<f32>::new(cfg, Init::He, 9, ConvEngine::Fast).unwrap();
        for _ in 0..2 {
            net.train_step(&x, &y, &HYPER).unwrap();
        }
        net.params
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_batches_are_refused_with_a_reason() {
    let cfg = configs()[0].1;
    let mut net = Network::<f32>::new(cfg, Init::He, 1, ConvEngine::Fast).unwrap();
    let (x, _) = batch::<f32>(&cfg, 2, 1);
    let err = net.load_batch(&x, &[0, 9]).unwrap_err().to_string();
    assert!(err.contains("label 9"), "{err}");
    let err = net.load_batch(&x[1..], &[0, 1]).unwrap_err().to_string();
    assert!(err.contains("pixel values"), "{err}");
    assert!(net.load_batch(&[], &[]).is_err());
}

#[test]
fn absurd_configs_and_hyper_parameters_are_refused() {
    let bad = ModelConfig { kernel: 9, pad: 0, ..configs()[0].1 };
    assert!(Network::<f32>::new(bad, Init::He, 1, ConvEngine::Fast).unwrap_err().to_string().contains("does not fit"));
    let zero = ModelConfig { hidden: 0, ..ModelConfig::default() };
    assert!(zero.validate().unwrap_err().to_string().contains("hidden"));
    for h in [
        Hyper { lr: 0.0, ..HYPER },
        Hyper { lr: f32::NAN, ..HYPER },
        Hyper { momentum: 1.0, ..HYPER },
        Hyper { reg: -1.0, ..HYPER },
    ] {
        assert!(h.validate().is_err(), "{h:?}");
    }
    assert!(HYPER.validate().is_ok());
}

#[test]
fn post_init_makes_every_layer_output_vanish_and_loss_sit_at_ln_classes() {
    let cfg = ModelConfig::default();
    let mut net = Network::<f32>::new(cfg, Init::Post, 1, ConvEngine::Fast).unwrap();
    let (x, y) = batch::<f32>(&cfg, 4, 2);
    let mut acts = Activations::default();
    net.forward_into(&x, &y, 0.05, &mut acts).unwrap();
    let max = |v: &[f32]| v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(max(&acts.conv1) < 1e-2);
    assert!(max(&acts.scores) < 1e-8, "scores {}", max(&acts.scores));
    assert!((acts.data_loss - 10f32.ln()).abs() < 1e-4);
}

#[test]
fn argmax_takes_the_first_maximum_on_ties_as_numpy_does_and_never_nan() {
    use cnn_stepper_core::engine::argmax;
    assert_eq!(argmax(&[0.1f32, 0.7, 0.2]), 1);
    assert_eq!(argmax(&[0.5f32, 0.5, 0.5]), 0, "a three-way tie: the first");
    assert_eq!(argmax(&[0.1f32, 0.4, 0.2, 0.4]), 1, "a tie for the top: the first of the two");
    // The post preset's scores: equal to a few ulps, and often exactly equal.
    assert_eq!(argmax(&[1e-12f32, 3e-12, 3e-12, -2e-12]), 1);
    assert_eq!(argmax(&[f32::NAN, 0.2, 0.9]), 2, "NaN is skipped, even first");
    assert_eq!(argmax(&[0.3f32, f32::NAN, 0.1]), 0);
    assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
    assert_eq!(argmax::<f32>(&[]), 0);
    assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    assert_eq!(argmax(&[2u8, 7, 7]), 1);
}
