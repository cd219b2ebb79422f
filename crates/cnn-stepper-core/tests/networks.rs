//! Any network through the trainer (issue 14): LeNet-5, `tiny` and a line with strides, an
//! average pool, tanh after a pool and an overlapping max pool are stepped phase by phase,
//! stepped back, paused inside a naive convolution, saved and continued (with SGD and Adam),
//! and their pool and activation pixels inspected against the engine's own gradients.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::cell::Cell;

use cnn_stepper_core::engine::model::{LayerSpec, SeqState, Shape};
use cnn_stepper_core::engine::{ConvEngine, OptimizerKind, Phase, Preset};
use cnn_stepper_core::trainer::{
    ActivationPixel, Command, Event, InspectError, Inspection, PixelRef, PoolPixel, Session, Settings, Snapshot, Worker,
};
use common::{first, layer, phase, sample, snapshot, steps, wait_for};

/// Strided convolutions, an average pool, tanh right after it, and a max pool whose windows
/// overlap (3×3, stride 2): 28 → 14 → 7 → 7 → 3.
const MIXED: &str =
    "conv(4,3,stride=2,pad=1), avgpool(2), tanh, conv(6,3,pad=1), relu, maxpool(3,stride=2), flatten, fc(10)";

/// The networks these tests run: two named ones with pooling, and [`MIXED`].
const MODELS: [&str; 3] = ["lenet5", "tiny", MIXED];

fn session(model: &str, engine: ConvEngine, batch: usize) -> Session {
    let s = Session::new(sample(), 5, Preset::Recommended, model, engine).unwrap();
    common::with_batch(s, batch)
}

fn phases(s: &mut Session, n: usize) {
    for _ in 0..n {
        s.step_phase(&mut |_, _| {}).unwrap();
    }
}

/// The position of the phase labelled `label` in a step.
fn position(s: &Session, label: &str) -> usize {
    let p = phase(s.model(), label);
    s.network().phases().iter().position(|q| *q == p).unwrap()
}

fn chw(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => panic!("{n} values are not maps"),
    }
}

/// Everything a step leaves behind that the next phases read or the window shows.
#[derive(Debug, PartialEq)]
struct Frozen {
    net: SeqState<f32>,
    step: u64,
    epoch_position: usize,
    settings: Settings,
    shown: Snapshot,
    curves: (String, String),
}

fn frozen(s: &mut Session) -> Frozen {
    let mut shown = s.snapshot();
    // Not state: how fast it went, and the curve points this snapshot happens to carry.
    shown.images_per_sec = 0.0;
    shown.new_loss_points.clear();
    shown.new_accuracy_points.clear();
    shown.new_magnitude_points.clear();
    shown.curves_reset = false;
    Frozen {
        net: common::state(s),
        step: s.step(),
        epoch_position: s.epoch_position(),
        settings: s.settings(),
        shown,
        curves: s.curves_csv(),
    }
}

#[test]
fn lenet5_steps_through_its_pools_with_a_label_for_every_phase() {
    let s = session("lenet5", ConvEngine::Fast, 4);
    let labels: Vec<String> = s.network().phases().iter().map(|p| s.model().phase_label(*p)).collect();
    let forward =
        ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2", "relu4", "fc3"];
    let mut want: Vec<String> = forward.iter().map(|l| format!("forward {l}")).collect();
    want.extend(["loss".to_string(), "backward loss".to_string()]);
    want.extend(forward.iter().rev().map(|l| format!("backward {l}")));
    want.push("update".into());
    assert_eq!(labels, want);
    assert_eq!(s.model().name.as_deref(), Some("lenet5"));
}

#[test]
fn every_phase_of_any_network_runs_in_order_and_shows_what_it_computed() {
    for model in MODELS {
        let mut s = session(model, ConvEngine::Fast, 4);
        let plan = s.model().plan.clone();
        let n = plan.layers.len();
        let all = s.network().phases().to_vec();
        assert_eq!(all, plan.phases());
        assert_eq!(all.len(), 2 * n + 3, "{model}: every layer forward and backward, the loss twice, the update");
        for (i, want) in all.iter().enumerate() {
            let got = s.step_phase(&mut |_, _| {}).unwrap();
            assert_eq!(got, *want, "{model}: phase {i}");
            let snap = s.snapshot();
            assert_eq!((snap.phases_done, snap.last_phase()), (i + 1, Some(got)));
            let label = snap.model.phase_label(got);
            match got {
                Phase::Forward(l) => {
                    assert_eq!(snap.sample.output(l).len(), plan.layers[l].output.len(), "{model}: {label}");
                    assert!(snap.sample.output(l + 1).is_empty(), "{model}: {label} ran no further");
                    assert!(snap.sample.grads.iter().all(Vec::is_empty), "{model}: {label}");
                }
                Phase::Loss => assert!(snap.loss.is_some() && snap.sample.d_scores().is_empty()),
                Phase::LossBackward => assert_eq!(snap.sample.d_scores().len(), plan.classes),
                Phase::Backward(l) => {
                    // Layer l's backward phase computes the gradient of its input: the output
                    // of the layer before.
                    if l > 0 {
                        assert_eq!(snap.sample.grad(l - 1).len(), plan.layers[l - 1].output.len(), "{model}: {label}");
                    }
                    if l > 1 {
                        assert!(snap.sample.grad(l - 2).is_empty(), "{model}: {label} went no further");
                    }
                }
                Phase::Update => assert!(snap.update.is_some()),
            }
        }
        assert_eq!(s.step(), 1, "{model}");
        assert_eq!(s.step_phase(&mut |_, _| {}).unwrap(), Phase::Forward(0), "{model}: a new batch");
    }
}

#[test]
fn snapshots_have_the_sizes_the_plan_gives() {
    for model in MODELS {
        let batch = 3;
        let mut s = session(model, ConvEngine::Fast, batch);
        let update = s.network().phases().len() - 1;
        phases(&mut s, update);
        let snap = s.snapshot();
        let plan = &snap.model.plan;
        assert_eq!(snap.sample.input.len(), plan.input.len());
        for (i, l) in plan.layers.iter().enumerate() {
            assert_eq!(snap.sample.output(i).len(), l.output.len(), "{model}: {}", l.name);
            if i > 0 {
                assert_eq!(snap.sample.grad(i).len(), l.output.len(), "{model}: d{}", l.name);
            }
            let winners = if matches!(l.spec, LayerSpec::MaxPool { .. }) { l.output.len() } else { 0 };
            assert_eq!(snap.sample.winners[i].len(), winners, "{model}: winners of {}", l.name);
        }
        assert_eq!(snap.sample.scores().len(), plan.classes);
        assert_eq!(snap.batch.probs.len(), batch * plan.classes);
        assert_eq!((snap.batch.images.len(), snap.batch.labels.len()), (batch * 28 * 28, batch));
        let convs: Vec<&str> = snap.filters.convs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(convs, ["conv1", "conv2"], "{model}");
        for c in &snap.filters.convs {
            let l = &plan.layers[c.layer];
            let LayerSpec::Conv { filters, k, .. } = l.spec else { panic!("{} is no conv", l.name) };
            let (channels, _, _) = chw(l.input);
            assert_eq!((c.filters, c.channels, c.kernel), (filters, channels, k), "{model}: {}", c.name);
            let taps = filters * channels * k * k;
            assert_eq!((c.weight.len(), c.bias.len(), c.grad.len()), (taps, filters, taps), "{model}: {}", c.name);
            assert!(c.before_update.is_none());
        }
        phases(&mut s, 1);
        let snap = s.snapshot();
        let tensors: Vec<String> = snap.update.unwrap().into_iter().map(|u| u.tensor).collect();
        let want: Vec<String> = snap
            .model
            .plan
            .layers
            .iter()
            .filter(|l| matches!(l.spec, LayerSpec::Conv { .. } | LayerSpec::Fc { .. }))
            .map(|l| format!("{}.weight", l.name))
            .collect();
        assert_eq!(tensors, want, "{model}: one update size per weight tensor");
        assert!(snap.filters.convs.iter().all(|c| c.before_update.is_some()));
        let m = &s.snapshot();
        assert!(m.new_magnitude_points.is_empty(), "delivered with the previous snapshot");
        let point = s.history().magnitudes().last().unwrap();
        assert_eq!((point.activations.len(), point.weights.len()), (plan.layers.len(), want.len()), "{model}");
    }
}

#[test]
fn a_step_back_gives_exactly_the_state_of_stepping_there_directly() {
    for model in MODELS {
        let probe = session(model, ConvEngine::Fast, 4);
        let len = probe.network().phases().len();
        // Past the first pool, the loss and its check, into the backward pass, from after the update.
        let targets = [
            position(&probe, "forward pool1") + 1,
            position(&probe, "loss"),
            position(&probe, "loss") + 1,
            position(&probe, "backward pool2"),
            len - 1,
        ];
        for target in targets {
            let mut direct = session(model, ConvEngine::Fast, 4);
            let mut back = session(model, ConvEngine::Fast, 4);
            // Two whole steps first: momentum and the last good batch are not empty any more.
            steps(&mut direct, 2);
            steps(&mut back, 2);
            phases(&mut direct, target);
            phases(&mut back, target + 1);
            back.step_back(&mut |_, _| {}).unwrap();
            assert!(frozen(&mut back) == frozen(&mut direct), "{model}: back to {target} phases done");
            steps(&mut direct, 2);
            steps(&mut back, 2);
            assert!(frozen(&mut back) == frozen(&mut direct), "{model}: two steps after the step back to {target}");
        }
    }
}

#[test]
fn a_stop_inside_a_naive_convolution_abandons_it_and_the_run_goes_on_bit_identically() {
    for model in MODELS {
        let naive = || session(model, ConvEngine::Naive, 4);
        let mut direct = naive();
        let mut stopped = naive();
        steps(&mut direct, 1);
        steps(&mut stopped, 1);
        for label in ["forward conv2", "backward conv2"] {
            let at = position(&stopped, label);
            // A whole step done counts as none of the next.
            let done = if stopped.mid_step() { stopped.network().phases_done() } else { 0 };
            phases(&mut direct, at - done);
            phases(&mut stopped, at - done);
            // Stop after the second image: the naive loops check between images.
            let images = Cell::new(0);
            let ran = stopped.step_phase_unless(&mut |d, _| images.set(d), &|| images.get() >= 2).unwrap();
            assert_eq!(ran, None, "{model}: {label} was abandoned");
            assert_eq!(images.get(), 2, "{model}: it stopped inside {label}");
            assert_eq!(stopped.network().phases_done(), at, "{model}: {label} is still the next phase");
            let snap = stopped.snapshot();
            match phase(&snap.model, label) {
                Phase::Forward(l) => assert!(snap.sample.output(l).is_empty(), "no half-computed map"),
                _ => assert!(snap.filters.of_layer(layer(&snap.model, "conv2")).unwrap().grad.is_empty()),
            }
        }
        // Resumed, each abandoned phase runs again whole and everything matches the run never stopped.
        steps(&mut direct, 2);
        steps(&mut stopped, 2);
        assert!(frozen(&mut stopped) == frozen(&mut direct), "{model}");
    }
}

#[test]
fn a_saved_session_of_any_network_continues_bit_identically_with_sgd_and_adam() {
    // 64 images in batches of 16: the run crosses an epoch boundary (a new order) after the save.
    let data = first(64);
    for model in MODELS {
        for preset in [Preset::Recommended, Preset::Adam] {
            let what = format!("{model} with {preset:?}");
            let fresh =
                || common::with_batch(Session::new(data.clone(), 9, preset, model, ConvEngine::Fast).unwrap(), 16);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("run.safetensors");
            let mut before = fresh();
            steps(&mut before, 3);
            before.save_checkpoint(&path).unwrap();

            let file = cnn_stepper_core::trainer::checkpoint::load(&path, None, ConvEngine::Fast, None).unwrap().file;
            let names: Vec<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
            let want: Vec<&str> = before.network().params().iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, want, "{what}: tensors named by their layer's index");
            let adam = preset == Preset::Adam;
            assert_eq!(file.settings.hyper.optimizer, if adam { OptimizerKind::Adam } else { OptimizerKind::Sgd });
            assert_eq!((file.adam.len(), file.adam_steps), if adam { (want.len(), 3) } else { (0, 0) }, "{what}");

            let mut resumed = Session::open_checkpoint(data.clone(), &path, ConvEngine::Fast, None).unwrap();
            assert_eq!(resumed.model().line(), before.model().line(), "{what}");
            assert!(frozen(&mut resumed).net == frozen(&mut before).net, "{what}: as saved");
            steps(&mut resumed, 3);
            let mut straight = fresh();
            steps(&mut straight, 6);
            assert_eq!(resumed.epoch(), 1, "{what}");
            let (a, b) = (frozen(&mut resumed), frozen(&mut straight));
            assert!(a.net == b.net, "{what}: weights and optimizer state");
            assert_eq!((a.step, a.epoch_position, a.settings), (b.step, b.epoch_position, b.settings), "{what}");
            assert_eq!(resumed.history(), straight.history(), "{what}");
        }
    }
}

/// A pool pixel's inspection.
fn pool_pixel(snap: &Snapshot, at: PixelRef) -> PoolPixel {
    match snap.inspect_pixel(at).unwrap() {
        Inspection::Pool(p) => p,
        other => panic!("{at:?} is not a pool pixel: {other:?}"),
    }
}

/// Every pixel of pool `name`: checks its window against the input map, and scatters the
/// gradient each pixel sends back into a map shaped like the pool's input.
fn scatter_pool(snap: &Snapshot, name: &str) -> Vec<f64> {
    let l = layer(&snap.model, name);
    let planned = &snap.model.plan.layers[l];
    let (c, h, w) = chw(planned.output);
    let (_, ih, iw) = chw(planned.input);
    let input = snap.sample.layer_input(l);
    let mut back = vec![0.0f64; input.len()];
    for channel in 0..c {
        for y in 0..h {
            for x in 0..w {
                let at = PixelRef { layer: l, channel, y, x };
                let p = pool_pixel(snap, at);
                let k = p.window;
                assert_eq!((p.name.as_str(), p.values.len()), (name, k * k));
                assert_eq!(p.origin, (y * p.stride, x * p.stride));
                for (t, v) in p.values.iter().enumerate() {
                    let (iy, ix) = (p.origin.0 + t / k, p.origin.1 + t % k);
                    assert_eq!(*v, input[(channel * ih + iy) * iw + ix], "{at:?} tap {t}");
                }
                if p.max {
                    // The winner holds the largest value of the window, which is the output.
                    let won = p.winner.expect("a max pool names its winner");
                    assert!(p.values.iter().all(|v| *v <= p.values[won]), "{at:?}");
                    assert_eq!((p.result, p.map_value), (p.values[won], p.values[won]), "{at:?}");
                } else {
                    assert_eq!(p.winner, None);
                    let mean = p.values.iter().map(|v| f64::from(*v)).sum::<f64>() / (k * k) as f64;
                    assert!((f64::from(p.map_value) - mean).abs() <= 1e-6 * mean.abs().max(1e-3), "{at:?}");
                }
                let g = p.d_output.expect("the backward pass reached the pool");
                let d = p.d_input.expect("so the inspector says where it goes");
                for (t, share) in d.iter().enumerate() {
                    let want = match p.winner {
                        Some(won) if t == won => g,
                        Some(_) => 0.0,
                        None => g / (k * k) as f32,
                    };
                    assert_eq!(*share, want, "{at:?} tap {t}: all to the winner, or an equal share");
                    let (iy, ix) = (p.origin.0 + t / k, p.origin.1 + t % k);
                    back[(channel * ih + iy) * iw + ix] += f64::from(*share);
                }
            }
        }
    }
    back
}

/// The engine's gradient at the input of layer `name` (the output gradient of the layer before).
fn engine_input_grad<'a>(snap: &'a Snapshot, name: &str) -> &'a [f32] {
    snap.sample.grad(layer(&snap.model, name) - 1)
}

#[test]
fn a_max_pool_pixel_names_its_winner_which_gets_all_of_the_gradient() {
    let mut s = session("lenet5", ConvEngine::Fast, 2);
    common::step_until(&mut s, "backward pool1");
    let snap = s.snapshot();
    for pool in ["pool1", "pool2"] {
        let back = scatter_pool(&snap, pool);
        let engine = engine_input_grad(&snap, pool);
        // 2×2 windows with stride 2 do not overlap: each input gets one window's share, exactly.
        assert_eq!(back.len(), engine.len());
        for (i, (ours, theirs)) in back.iter().zip(engine).enumerate() {
            assert_eq!(*ours as f32, *theirs, "{pool} input {i}");
        }
        assert!(engine.iter().filter(|g| **g != 0.0).count() <= engine.len() / 4, "only winners get a gradient");
        assert!(engine.iter().any(|g| *g != 0.0));
    }
    // The names the window shows.
    let p = pool_pixel(&snap, PixelRef { layer: layer(&snap.model, "pool2"), channel: 3, y: 2, x: 4 });
    assert_eq!((p.input_name.as_str(), p.max, p.window, p.stride), ("relu2", true, 2, 2));
    // conv2 reads pool1's maps: its patch is cut from them.
    let conv2 = layer(&snap.model, "conv2");
    let Inspection::Conv(c) = snap.inspect_pixel(PixelRef { layer: conv2, channel: 5, y: 4, x: 7 }).unwrap() else {
        panic!("conv2 is a convolution")
    };
    assert_eq!((c.input_name.as_str(), c.channels, c.origin), ("pool1", 6, (4, 7)));
    let pool1 = snap.sample.output(conv2 - 1);
    for ch in 0..6 {
        for (di, dj) in [(0, 0), (2, 3), (4, 4)] {
            assert_eq!(c.patch[c.tap(ch, di, dj)], pool1[(ch * 14 + 4 + di) * 14 + 7 + dj]);
        }
    }
    let scale = c.bias.abs() + c.products.iter().map(|p| p.abs()).sum::<f32>();
    assert!((c.total - c.map_value).abs() <= 1e-5 * scale + 1e-7, "{} vs {}", c.total, c.map_value);
}

#[test]
fn overlapping_max_windows_and_average_pools_send_the_engines_gradient_back() {
    let mut s = session(MIXED, ConvEngine::Fast, 2);
    common::step_until(&mut s, "backward pool1");
    let snap = s.snapshot();
    // pool2 is 3×3 with stride 2: an input in two windows gets both shares.
    let back = scatter_pool(&snap, "pool2");
    let engine = engine_input_grad(&snap, "pool2");
    let top = engine.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert!(top > 0.0);
    for (i, (ours, theirs)) in back.iter().zip(engine).enumerate() {
        assert!((*ours as f32 - theirs).abs() <= 1e-6 * top, "pool2 input {i}: {ours} vs {theirs}");
    }
    // pool1 averages 2×2 windows: each input gets g/4.
    let p = pool_pixel(&snap, PixelRef { layer: layer(&snap.model, "pool1"), channel: 1, y: 3, x: 5 });
    assert_eq!((p.max, p.window, p.input_name.as_str()), (false, 2, "conv1"));
    let back = scatter_pool(&snap, "pool1");
    for (i, (ours, theirs)) in back.iter().zip(engine_input_grad(&snap, "pool1")).enumerate() {
        assert_eq!(*ours as f32, *theirs, "pool1 input {i}");
    }
}

#[test]
fn an_activation_after_a_pool_shows_its_function_and_the_gradient_through_it() {
    let mut s = session(MIXED, ConvEngine::Fast, 2);
    let tanh = layer(s.model(), "tanh1");
    let at = PixelRef { layer: tanh, channel: 2, y: 4, x: 1 };
    common::step_until(&mut s, "forward tanh1");
    let read = |snap: &Snapshot| match snap.inspect_pixel(at).unwrap() {
        Inspection::Activation(a) => a,
        other => panic!("{other:?}"),
    };
    let snap = s.snapshot();
    let ActivationPixel { input_name, step, map_value, .. } = read(&snap);
    let pixel = (2 * 7 + 4) * 7 + 1;
    assert_eq!((input_name.as_str(), step.name.as_str(), step.function), ("pool1", "tanh1", "tanh"));
    assert_eq!(step.input, snap.sample.output(tanh - 1)[pixel], "its input is the pool's output");
    assert_eq!(map_value, snap.sample.output(tanh)[pixel]);
    assert!((step.output - step.input.tanh()).abs() <= 1e-6 && (step.output - map_value).abs() <= 1e-6);
    assert_eq!((step.d_output, step.d_input), (None, None), "no gradient before the backward pass");

    common::step_until(&mut s, "backward tanh1");
    let snap = s.snapshot();
    let a = read(&snap);
    let g = a.step.d_output.expect("the gradient reached tanh1");
    assert_eq!(g, snap.sample.grad(tanh)[pixel]);
    let through = a.step.d_input.unwrap();
    assert!((through - g * (1.0 - map_value * map_value)).abs() <= 1e-6 * g.abs().max(1e-6));
    let engine = snap.sample.grad(tanh - 1)[pixel];
    assert!((through - engine).abs() <= 1e-5 * engine.abs().max(1e-9), "{through} vs the engine's {engine}");
}

#[test]
fn pool_pixels_are_refused_until_computed_and_outside_the_map() {
    let mut s = session("lenet5", ConvEngine::Fast, 2);
    common::step_until(&mut s, "forward relu1");
    let pool1 = layer(s.model(), "pool1");
    let snap = s.snapshot();
    let at = PixelRef { layer: pool1, channel: 0, y: 0, x: 0 };
    assert_eq!(snap.inspect_pixel(at), Err(InspectError::NotComputed("pool1".into())));
    common::step_until(&mut s, "forward pool1");
    let snap = s.snapshot();
    let p = pool_pixel(&snap, at);
    assert_eq!((p.d_output, p.d_input), (None, None), "no gradient before the backward pass");
    let err = snap.inspect_pixel(PixelRef { y: 14, ..at }).unwrap_err();
    assert_eq!(err, InspectError::OutOfRange { what: "row", value: 14, limit: 14 });
    assert!(err.to_string().contains("row 14 is outside the map (0 to 13)"), "{err}");
}

#[test]
fn the_worker_resets_to_another_network_and_refuses_a_bad_line_keeping_the_run() {
    let worker = Worker::spawn(common::post_session(1), || {}).unwrap();
    worker.send(Command::StepBatch);
    wait_for(&worker, "a step of the post's network", |e| snapshot(e).is_some_and(|s| s.step == 1));
    worker.send(Command::Reset { seed: 4, preset: Preset::Adam, model: "lenet5".into() });
    let e = wait_for(&worker, "the reset", |e| snapshot(e).is_some_and(|s| s.seed == 4));
    let snap = snapshot(&e).unwrap();
    assert_eq!((snap.model.name.as_deref(), snap.phases.len(), snap.step), (Some("lenet5"), 27, 0));
    assert_eq!(snap.settings.hyper.optimizer, OptimizerKind::Adam);
    worker.send(Command::StepBatch);
    wait_for(&worker, "a step of LeNet-5", |e| snapshot(e).is_some_and(|s| s.step == 1 && s.update.is_some()));

    worker.send(Command::Reset { seed: 5, preset: Preset::Adam, model: "conv(6,5), relu, fc(10)".into() });
    let e = wait_for(&worker, "the refusal", |e| matches!(e, Event::Error(_)));
    let Event::Error(message) = e else { unreachable!() };
    assert!(message.contains("layer 3 `fc(10)`: add `flatten` before the first fc"), "{message}");
    worker.send(Command::StepBatch);
    let e = wait_for(&worker, "the run going on", |e| snapshot(e).is_some_and(|s| s.step == 2));
    let snap = snapshot(&e).unwrap();
    assert_eq!((snap.model.name.as_deref(), snap.seed), (Some("lenet5"), 4), "the run was kept");
}
