//! The gradient check of any network (`engine::model::gradcheck`): backprop agrees with central
//! differences on the named networks and on every layer kind, a wrong gradient is caught,
//! ReLU and max-pool kinks are flagged, and the same inputs give the same report.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use cnn_stepper_core::engine::gradcheck::{GradCheckEntry, GradCheckReport};
use cnn_stepper_core::engine::model::gradcheck::{check_analytic, check_gradients};
use cnn_stepper_core::engine::model::{ModelSpec, ParamTensor, Phase, Plan, Sequential, resolve};
use cnn_stepper_core::engine::{ConvEngine, Hyper, Init, OptimizerKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const REG: f32 = 0.05;

fn plan(line: &str, input: (usize, usize, usize), classes: usize) -> Plan {
    ModelSpec::parse(line).unwrap().plan(input, classes).unwrap()
}

/// He-initialised f32 parameters of `plan` with biases drawn from ±0.2 (zero biases put many
/// ReLU inputs exactly on the kink over MNIST's blank background).
fn params(plan: &Plan, seed: u64, biases: bool) -> Vec<ParamTensor<f32>> {
    let mut net = Sequential::<f32>::new(plan.clone(), Init::He, seed, ConvEngine::Fast);
    if biases {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB1A5);
        for p in net.params().to_vec() {
            if p.name.ends_with(".bias") {
                let b: Vec<f32> = p.data.iter().map(|_| rng.random_range(-0.2..0.2)).collect();
                net.set_param(&p.name, &b).unwrap();
            }
        }
    }
    net.params().to_vec()
}

/// `n` MNIST test images for a 1×28×28 plan, random pixels in [0, 1) otherwise.
fn batch(plan: &Plan, n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels = (0..n).map(|_| rng.random_range(0..plan.classes)).collect();
    if plan.input.dims() == [1, 28, 28] {
        let b = common::sample().test.batch(&(0..n).collect::<Vec<_>>()).unwrap();
        return (b.images.as_slice().unwrap().to_vec(), b.labels);
    }
    ((0..n * plan.input.len()).map(|_| rng.random::<f32>()).collect(), labels)
}

/// Agreement as the health tab judges it: a small relative error, or an absolute error within
/// the numeric gradient's rounding noise.
fn agrees(e: &GradCheckEntry, noise: f64) -> bool {
    e.rel_error < 1e-6 || e.abs_error <= 10.0 * noise
}

fn check(plan: &Plan, params: &[ParamTensor<f32>], x: &[f32], y: &[usize], per: usize, seed: u64) -> GradCheckReport {
    check_gradients(plan, params, x, y, REG, per, seed, ConvEngine::Fast, &mut |_, _| {}).unwrap()
}

/// Backprop's gradients of the f64 copy of `params`, computed here, outside the check.
fn backprop(plan: &Plan, params: &[ParamTensor<f32>], x: &[f32], y: &[usize]) -> Vec<Vec<f64>> {
    let mut net = Sequential::<f64>::zeros(plan.clone(), ConvEngine::Fast);
    for p in params {
        net.set_param(&p.name, &p.data.iter().map(|v| f64::from(*v)).collect::<Vec<_>>()).unwrap();
    }
    let x: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
    net.load_batch(&x, y).unwrap();
    let hyper = Hyper { lr: 0.0, momentum: 0.0, reg: REG, lr_decay: 1.0, optimizer: OptimizerKind::Sgd };
    while net.next_phase() != Some(Phase::Update) {
        net.step_phase(&hyper, &mut |_, _| {}).unwrap();
    }
    (0..net.params().len()).map(|i| net.grad(i).to_vec()).collect()
}

#[test]
fn backprop_agrees_with_finite_differences_on_the_named_networks_and_every_layer_kind() {
    let mnist = (1, 28, 28);
    let nets = [
        (resolve("post", mnist, 10).unwrap(), ConvEngine::Fast),
        (resolve("post-relu", mnist, 10).unwrap(), ConvEngine::Fast),
        (resolve("lenet5", mnist, 10).unwrap(), ConvEngine::Fast),
        (resolve("tiny", mnist, 10).unwrap(), ConvEngine::Fast),
        // Strided and padded convs, both pools (one with a remainder row), tanh and sigmoid.
        (
            plan(
                "conv(3,3,stride=2,pad=1), tanh, avgpool(2,stride=1), conv(4,3,stride=2,pad=2), sigmoid, maxpool(3,stride=2), flatten, fc(6), relu, fc(4)",
                (2, 15, 13),
                4,
            ),
            ConvEngine::Naive,
        ),
    ];
    for (plan, engine) in nets {
        let line = plan.spec.to_string();
        let params = params(&plan, 3, true);
        let (x, y) = batch(&plan, 2, 4);
        let mut calls = Vec::new();
        let r = check_gradients(&plan, &params, &x, &y, REG, 3, 9, engine, &mut |d, t| calls.push((d, t))).unwrap();

        // Layers under their student names, entries under both names.
        let with_params: Vec<&str> = plan.layers.iter().filter(|l| l.params > 0).map(|l| l.name.as_str()).collect();
        let names: Vec<&str> = r.layers.iter().map(|l| l.layer.as_str()).collect();
        assert_eq!(names, with_params, "{line}");
        for l in &r.layers {
            let layer = plan.layer_named(&l.layer).unwrap();
            assert_eq!(l.entries.len(), 6, "{line}: 3 weights and 3 biases of {}", l.layer);
            for e in &l.entries {
                let kind = if e.param.ends_with(".weight") { "weight" } else { "bias" };
                assert_eq!(e.param, format!("{}.{kind}", l.layer), "{line}");
                assert_eq!(e.tensor, format!("{}.{kind}", layer.index), "{line}");
                assert_eq!(e.crossed_kink, e.kink_layer.is_some(), "{line}");
            }
        }
        assert_eq!(
            r.layers.iter().flat_map(|l| &l.entries).filter(|e| e.param.ends_with(".weight")).count(),
            3 * names.len()
        );

        let entries: Vec<&GradCheckEntry> = r.layers.iter().flat_map(|l| &l.entries).collect();
        let judged: Vec<&&GradCheckEntry> = entries.iter().filter(|e| !e.crossed_kink).collect();
        assert!(judged.len() * 4 >= entries.len() * 3, "{line}: with non-zero biases kinks are rare: {r:#?}");
        assert!(judged.iter().filter(|e| e.analytic.abs() > 1e-6).count() * 2 >= judged.len(), "{line}: {r:#?}");
        for e in &judged {
            assert!(agrees(e, r.noise), "{line}: {e:#?}");
        }
        // Where the gradient is not ~0 the relative error alone shows the agreement.
        let sizable = judged.iter().filter(|e| e.analytic.abs() > 1e-6);
        assert!(sizable.map(|e| e.rel_error).fold(0.0, f64::max) < 1e-6, "{line}: {r:#?}");
        assert!(r.noise > 0.0 && r.noise < 1e-9, "{line}: f64 differences are precise: noise {}", r.noise);
        assert!(entries.iter().all(|e| e.abs_error == (e.analytic - e.numeric).abs()));
        let total = 1 + 2 * entries.len();
        assert_eq!(calls.first(), Some(&(1, total)), "{line}: the unperturbed pass first");
        assert_eq!(calls.last(), Some(&(total, total)), "{line}: progress ends at total");
        assert!(calls.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{line}: one call per loss evaluation");
        assert_eq!((r.engine, r.images, r.reg), (engine, 2, f64::from(REG)));
    }
}

#[test]
fn every_element_of_a_small_network_is_checked_when_per_tensor_exceeds_its_size() {
    let plan = plan("conv(2,3,pad=1), relu, avgpool(2), flatten, fc(3), sigmoid, fc(3)", (1, 6, 6), 3);
    let params = params(&plan, 1, true);
    let (x, y) = batch(&plan, 3, 2);
    let r = check(&plan, &params, &x, &y, 1000, 1);
    let checked: Vec<usize> = r.layers.iter().map(|l| l.entries.len()).collect();
    // conv1: 2·1·3·3 + 2, fc1: 3·18 + 3, fc2: 3·3 + 3.
    assert_eq!(checked, [20, 57, 12]);
    let last = &r.layers[0].entries[17];
    assert_eq!((last.tensor.as_str(), last.index.as_slice()), ("0.weight", [1, 0, 2, 2].as_slice()), "row-major");
    for e in r.layers.iter().flat_map(|l| &l.entries).filter(|e| !e.crossed_kink) {
        assert!(agrees(e, r.noise), "{e:#?}");
    }
}

#[test]
fn a_wrong_gradient_is_caught() {
    let plan = plan("conv(2,3,pad=1), relu, maxpool(2), flatten, fc(5), relu, fc(3)", (1, 6, 6), 3);
    let params = params(&plan, 1, true);
    let (x, y) = batch(&plan, 3, 2);
    let right = backprop(&plan, &params, &x, &y);
    let run = |analytic: &[Vec<f64>]| {
        check_analytic(&plan, &params, &x, &y, REG, analytic, 1000, 5, ConvEngine::Fast, &mut |_, _| {}).unwrap()
    };
    let ok = run(&right);
    assert!(ok.max_rel_error() < 1e-6, "the right gradients pass: {ok:#?}");
    assert_eq!(ok, check(&plan, &params, &x, &y, 1000, 5), "the check computes the same gradients");

    // One fc1 bias gradient 1% off: that entry, and only its layer, fails.
    let tensor = plan.param_shapes().iter().position(|(n, _)| n == "4.bias").unwrap();
    let unit = right[tensor].iter().position(|g| g.abs() > 1e-4).expect("an active fc1 unit");
    let mut wrong = right.clone();
    wrong[tensor][unit] *= 1.01;
    let r = run(&wrong);
    let e = r.layers[1].entries.iter().find(|e| e.tensor == "4.bias" && e.index == [unit]).unwrap();
    assert_eq!(e.param, "fc1.bias");
    assert!(!e.crossed_kink && e.rel_error > 5e-3, "{e:#?}");
    assert!(r.layers[1].max_rel_error > 5e-3 && r.max_rel_error() > 5e-3);
    assert!(r.layers[0].max_rel_error < 1e-6 && r.layers[2].max_rel_error < 1e-6, "{r:#?}");

    // Gradients of other weights are far off everywhere.
    let other = backprop(&plan, &self::params(&plan, 2, true), &x, &y);
    let r = run(&other);
    assert!(r.layers.iter().all(|l| l.max_rel_error > 1e-2), "{r:#?}");
}

#[test]
fn analytic_gradients_that_do_not_fit_are_refused_with_the_tensor_named() {
    let plan = plan("conv(2,3), relu, flatten, fc(3)", (1, 5, 5), 3);
    let params = params(&plan, 1, true);
    let (x, y) = batch(&plan, 2, 2);
    let mut grads = backprop(&plan, &params, &x, &y);
    grads[2].pop();
    let err = check_analytic(&plan, &params, &x, &y, REG, &grads, 2, 1, ConvEngine::Fast, &mut |_, _| {});
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("`3.weight`") && msg.contains("53 values"), "{msg}");
    grads.pop();
    let err = check_analytic(&plan, &params, &x, &y, REG, &grads, 2, 1, ConvEngine::Fast, &mut |_, _| {});
    assert!(err.unwrap_err().to_string().contains("3 gradients for 4 parameter tensors"));
}

#[test]
fn a_max_pool_winner_that_changes_is_flagged_as_a_kink() {
    // A 1×1 conv with weight 0 makes every pooled value equal (the bias): every window is a tie.
    // Moving the weight by +h lets each window's largest pixel win, by −h its smallest, while
    // backprop routes the gradient to the first of the tied values: no derivative there.
    let plan = plan("conv(1,1), maxpool(2), flatten, fc(2)", (1, 4, 4), 2);
    let mut params = params(&plan, 1, false);
    params[0].data = vec![0.0];
    params[1].data = vec![0.3];
    let (x, y) = batch(&plan, 2, 3);
    let r = check(&plan, &params, &x, &y, 100, 1);
    let conv = &r.layers[0];
    let weight = conv.entries.iter().find(|e| e.tensor == "0.weight").unwrap();
    assert!(weight.crossed_kink && weight.kink_layer.as_deref() == Some("pool1"), "{weight:#?}");
    assert!(weight.rel_error > 1e-2, "the quotient across the switch is no derivative: {weight:#?}");
    // The bias moves every tied value alike: no winner changes, and the gradient is right.
    let bias = conv.entries.iter().find(|e| e.tensor == "0.bias").unwrap();
    assert!(!bias.crossed_kink && bias.rel_error < 1e-6, "{bias:#?}");
    assert!(conv.max_rel_error < 1e-6, "kinks are left out of the maximum: {conv:#?}");
    assert!(r.layers[1].entries.iter().all(|e| !e.crossed_kink), "fc weights change no winner");
}

#[test]
fn a_relu_input_at_zero_is_flagged_as_a_kink() {
    // With zero biases every conv1 pixel over the blank background is exactly 0: moving a conv1
    // bias by ±h puts all of them on either side of relu1's kink.
    let plan = resolve("lenet5", (1, 28, 28), 10).unwrap();
    let params = params(&plan, 5, false);
    let (x, y) = batch(&plan, 2, 1);
    let r = check(&plan, &params, &x, &y, 3, 3);
    let biases: Vec<&GradCheckEntry> = r.layers[0].entries.iter().filter(|e| e.param == "conv1.bias").collect();
    assert_eq!(biases.len(), 3);
    assert!(biases.iter().all(|e| e.kink_layer.as_deref() == Some("relu1")), "{biases:#?}");
    assert!(r.layers[0].max_rel_error < 1e-4, "kinks are left out of the maximum: {:#?}", r.layers[0]);
}

#[test]
fn the_same_inputs_give_the_same_report() {
    let plan = resolve("tiny", (1, 28, 28), 10).unwrap();
    let params = params(&plan, 7, true);
    let (x, y) = batch(&plan, 2, 1);
    let a = check(&plan, &params, &x, &y, 2, 21);
    let b = check(&plan, &params, &x, &y, 2, 21);
    assert_eq!(a, b);
    let c = check(&plan, &params, &x, &y, 2, 22);
    let picked =
        |r: &GradCheckReport| r.layers.iter().flat_map(|l| &l.entries).map(|e| e.index.clone()).collect::<Vec<_>>();
    assert_ne!(picked(&a), picked(&c), "another seed picks other elements");
}

#[test]
fn parameters_or_a_batch_that_do_not_fit_are_refused() {
    let tiny = resolve("tiny", (1, 28, 28), 10).unwrap();
    let lenet = resolve("lenet5", (1, 28, 28), 10).unwrap();
    let (x, y) = batch(&tiny, 2, 1);
    let run = |plan: &Plan, params: &[ParamTensor<f32>], x: &[f32], y: &[usize]| {
        check_gradients(plan, params, x, y, REG, 2, 1, ConvEngine::Fast, &mut |_, _| {}).unwrap_err().to_string()
    };
    let msg = run(&tiny, &params(&lenet, 1, false), &x, &y);
    assert!(msg.contains("6 parameter tensors") && msg.contains("got 10"), "{msg}");
    let mut wrong = params(&tiny, 1, false);
    wrong[2].shape = vec![32, 16, 3, 3];
    wrong[2].data.truncate(32 * 16 * 9);
    let msg = run(&tiny, &wrong, &x, &y);
    assert!(msg.contains("`3.weight` has shape [32, 16, 3, 3] but the network needs [32, 16, 5, 5]"), "{msg}");
    let mut renamed = params(&tiny, 1, false);
    renamed[0].name = "conv1.weight".into();
    assert!(run(&tiny, &renamed, &x, &y).contains("no parameter tensor `0.weight`"));
    let msg = run(&tiny, &params(&tiny, 1, false), &x, &[0, 10]);
    assert!(msg.contains("label 10"), "{msg}");
    let msg = run(&tiny, &params(&tiny, 1, false), &x[1..], &y);
    assert!(msg.contains("pixel values"), "{msg}");
}
