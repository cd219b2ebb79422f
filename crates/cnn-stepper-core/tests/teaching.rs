//! The teaching tools' logic, headless: the pixel inspector against the engine's maps and
//! gradients, class evidence against the logits, the gradient check against finite
//! differences, probes, evaluation views and the layer magnitudes, and the worker protocol
//! that serves them while training runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use cnn_stepper_core::engine::model::{LayerSpec, Shape};
use cnn_stepper_core::engine::{
    Activations, ConvEngine, Init, ModelConfig, Network, Params, Preset, evidence, gradcheck,
};
use cnn_stepper_core::trainer::checkpoint::{self, History, MAX_MAGNITUDE_POINTS};
use cnn_stepper_core::trainer::{
    Command, EvalResult, Event, EvidenceOf, ImageId, InspectError, Inspection, MagnitudePoint, PixelInspection,
    PixelRef, ProbeInput, Session, Snapshot, TrainError, Worker, conv_layer_of,
};

use common::{POST, SMALL, grad, layer, param, sample, small, state, step_until, wait_for_seen as wait_for};

/// Stride 2, a 5×5 kernel with padding 1 (so only some borders are padded: 28 → 13 → 6), and a
/// ReLU after conv2: the line of [`strided`].
const STRIDED: &str = "conv(3,5,stride=2,pad=1), relu, conv(4,5,stride=2,pad=1), relu, flatten, fc(12), relu, fc(10)";

/// [`STRIDED`] for the post-only engine.
fn strided() -> ModelConfig {
    ModelConfig {
        conv1_filters: 3,
        conv2_filters: 4,
        kernel: 5,
        stride: 2,
        pad: 1,
        hidden: 12,
        relu_after_conv2: true,
        ..ModelConfig::default()
    }
}

fn session(model: &str, batch_size: usize) -> Session {
    common::with_batch(common::session(3, model, ConvEngine::Fast), batch_size)
}

/// `(C, H, W)` of a stack of maps.
fn chw(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => panic!("{n} values are not maps"),
    }
}

/// The maps layer `layer` of the snapshot's network puts out.
fn maps_of(snap: &Snapshot, layer: usize) -> (usize, usize, usize) {
    chw(snap.model.plan.layers[layer].output)
}

/// A convolution pixel's arithmetic.
fn conv_pixel(snap: &Snapshot, at: PixelRef) -> PixelInspection {
    match snap.inspect_pixel(at).unwrap() {
        Inspection::Conv(c) => c,
        other => panic!("{at:?} is not a convolution pixel: {other:?}"),
    }
}

/// The layers whose pixels show a convolution's sum: every conv and the activation after one.
fn conv_pixel_layers(snap: &Snapshot) -> Vec<usize> {
    (0..snap.model.plan.layers.len()).filter(|i| conv_layer_of(&snap.model, *i).is_some()).collect()
}

/// Every corner and edge midpoint of the first and last map, then `random` seeded pixels.
fn pixels(snap: &Snapshot, layer: usize, random: usize) -> Vec<PixelRef> {
    let (f, h, w) = maps_of(snap, layer);
    let mut out = Vec::new();
    for channel in [0, f - 1] {
        for y in [0, h / 2, h - 1] {
            for x in [0, w / 2, w - 1] {
                out.push(PixelRef { layer, channel, y, x });
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for _ in 0..random {
        out.push(PixelRef {
            layer,
            channel: rng.random_range(0..f),
            y: rng.random_range(0..h),
            x: rng.random_range(0..w),
        });
    }
    out
}

/// How many pixels of `layer` have a displayed total that differs from the engine's map value
/// by more than f32 rounding.
///
/// The inspector sums one patch; the fast engine computes conv2 through Fourier transforms,
/// whose rounding is relative to the whole map rather than to the one pixel, so the bound has a
/// term for each: the pixel's own sum of magnitudes, and the largest value among the maps.
fn mismatches(snap: &Snapshot, layer: usize) -> usize {
    let reports: Vec<_> = pixels(snap, layer, 200).into_iter().map(|at| (at, conv_pixel(snap, at))).collect();
    let map_scale = reports.iter().fold(0.0f32, |m, (_, r)| m.max(r.map_value.abs()));
    let conv = conv_layer_of(&snap.model, layer).unwrap();
    let has_relu = snap.model.layer(conv + 1).is_some_and(|l| l.spec == LayerSpec::Relu);
    let mut bad = 0;
    for (at, r) in reports {
        let scale = r.bias.abs() + r.products.iter().map(|p| p.abs()).sum::<f32>();
        if (r.total - r.map_value).abs() > 1e-5 * scale + 1e-6 * map_scale + 1e-7 {
            bad += 1;
        }
        // The arithmetic is internally consistent: products, channel sums, total, ReLU.
        for (t, p) in r.products.iter().enumerate() {
            assert_eq!(*p, r.patch[t] * r.weights[t]);
        }
        let sums: f32 = r.channel_sums.iter().sum::<f32>() + r.bias;
        assert!((sums - r.total).abs() <= 1e-5 * scale + 1e-7, "{at:?}: channel sums {sums} vs total {}", r.total);
        assert_eq!(r.activation.map(|a| a.output), has_relu.then_some(r.total.max(0.0)));
    }
    bad
}

#[test]
fn inspected_sum_equals_the_feature_map_value_for_many_pixels_of_both_layers() {
    for model in [POST, STRIDED] {
        let mut s = session(model, 4);
        step_until(&mut s, "loss");
        let snap = s.snapshot();
        let layers = conv_pixel_layers(&snap);
        // conv1, relu1, conv2, and relu2 when there is one.
        assert_eq!(layers.len(), if model == STRIDED { 4 } else { 3 });
        for &layer in &layers {
            assert_eq!(mismatches(&snap, layer), 0, "layer {layer} of {model}");
        }
        assert!(
            snap.filters.convs.iter().all(|c| c.before_update.is_none()),
            "before the update the current weights are the forward's"
        );

        // After the update the maps still come from the old weights: the inspector uses them.
        step_until(&mut s, "update");
        let snap = s.snapshot();
        assert!(snap.filters.convs.iter().all(|c| c.before_update.is_some()));
        let (conv1, conv2) = (layer(&snap.model, "conv1"), layer(&snap.model, "conv2"));
        assert_eq!(mismatches(&snap, conv1), 0);
        assert_eq!(mismatches(&snap, conv2), 0);
        // With the updated weights the sums would not match: the test can tell the difference.
        let mut wrong = snap.clone();
        wrong.filters.convs.iter_mut().for_each(|c| c.before_update = None);
        assert!(mismatches(&wrong, conv2) > 0, "the update changed nothing visible");
    }
}

#[test]
fn inspector_marks_padding_and_honours_stride() {
    let cfg = strided();
    let mut s = session(STRIDED, 2);
    step_until(&mut s, "forward conv2");
    let snap = s.snapshot();
    let (conv1, conv2) = (layer(&snap.model, "conv1"), layer(&snap.model, "conv2"));
    let at = |layer, y, x| conv_pixel(&snap, PixelRef { layer, channel: 1, y, x });
    // conv1 (0, 0): origin (−1, −1), so the top row and left column of the 5×5 are padding.
    let r = at(conv1, 0, 0);
    assert_eq!((r.stride, r.pad, r.origin), (2, 1, (-1, -1)));
    let k = cfg.kernel;
    for t in 0..k * k {
        assert_eq!(r.in_padding[t], t / k == 0 || t % k == 0, "tap {t}");
    }
    for c in 0..r.channels {
        for t in 0..k * k {
            if r.in_padding[t] {
                assert_eq!(r.patch[c * k * k + t], 0.0);
            }
        }
    }
    // conv1 (3, 5): origin (3·2 − 1, 5·2 − 1), no padding; the patch is the digit there.
    let r = at(conv1, 3, 5);
    assert_eq!(r.origin, (5, 9));
    assert!(r.in_padding.iter().all(|p| !p));
    assert_eq!(r.patch[2 * k + 1], snap.sample.input[(5 + 2) * 28 + 9 + 1]);
    assert_eq!(r.input_name, "input");
    // conv2's last column: origin 5·2 − 1 = 9 over a 13-wide relu1, so the last tap column is out.
    let r = at(conv2, 0, 5);
    assert_eq!((r.channels, r.origin), (cfg.conv1_filters, (-1, 9)));
    assert_eq!((r.conv_name.as_str(), r.input_name.as_str()), ("conv2", "relu1"));
    assert!(r.in_padding[k - 1] && r.in_padding[2 * k - 1] && !r.in_padding[k + 1]);
    assert_eq!(r.channel_sums.len(), cfg.conv1_filters);
    // Out of range, a layer without maps, not computed yet.
    let err = snap.inspect_pixel(PixelRef { layer: conv2, channel: 4, y: 0, x: 0 }).unwrap_err();
    assert!(err.to_string().contains("channel 4"), "{err}");
    let flatten = layer(&snap.model, "flatten");
    assert_eq!(
        snap.inspect_pixel(PixelRef { layer: flatten, channel: 0, y: 0, x: 0 }),
        Err(InspectError::NotMaps(flatten))
    );
    let fc1 = layer(&snap.model, "fc1");
    assert_eq!(snap.inspect_pixel(PixelRef { layer: fc1, channel: 0, y: 0, x: 0 }), Err(InspectError::NotMaps(fc1)));
    let mut fresh = session(STRIDED, 2);
    fresh.step_phase(&mut |_, _| {}).unwrap(); // forward conv1 only
    let err = fresh.snapshot().inspect_pixel(PixelRef { layer: conv2, channel: 0, y: 0, x: 0 });
    assert_eq!(err, Err(InspectError::NotComputed("conv2".into())));
    // No gradient before the backward pass reaches the pixel.
    assert!(conv_pixel(&snap, PixelRef { layer: conv1, channel: 0, y: 4, x: 4 }).gradient.is_none());
}

/// Sums every pixel's dW contribution per filter and scatters every dX contribution, in f64.
fn summed_contributions(snap: &Snapshot, layer: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (f, h, w) = maps_of(snap, layer);
    let (c_in, in_h, in_w) = chw(snap.model.plan.layers[layer].input);
    let LayerSpec::Conv { k, .. } = snap.model.plan.layers[layer].spec else { panic!("layer {layer} is no conv") };
    let taps = c_in * k * k;
    let (mut dw, mut scale, mut dx) = (vec![0.0; f * taps], vec![0.0; f * taps], vec![0.0; c_in * in_h * in_w]);
    for channel in 0..f {
        for y in 0..h {
            for x in 0..w {
                let r = conv_pixel(snap, PixelRef { layer, channel, y, x });
                let g = r.gradient.expect("the backward pass reached this layer");
                assert_eq!(g.db, g.d_conv);
                for t in 0..taps {
                    dw[channel * taps + t] += f64::from(g.dw[t]);
                    scale[channel * taps + t] += f64::from(g.dw[t]).abs();
                    let (c, di, dj) = (t / (k * k), (t / k) % k, t % k);
                    let (iy, ix) = (r.origin.0 + di as isize, r.origin.1 + dj as isize);
                    if r.in_padding[di * k + dj] {
                        assert_eq!(g.dx[t], 0.0);
                    } else {
                        dx[(c * in_h + iy as usize) * in_w + ix as usize] += f64::from(g.dx[t]);
                    }
                }
            }
        }
    }
    (dw, scale, dx)
}

#[test]
fn with_one_image_the_pixels_dw_contributions_sum_to_the_engines_filter_gradient() {
    for model in [SMALL, STRIDED] {
        let mut s = session(model, 1);
        s.step_batch(&mut |_, _| {}).unwrap();
        // The second step, after its update: the inspector has to use the forward's weights.
        s.step_batch(&mut |_, _| {}).unwrap();
        let snap = s.snapshot();
        for conv in &snap.filters.convs {
            let (layer, grad_w) = (conv.layer, &conv.grad);
            let (dw, scale, dx) = summed_contributions(&snap, layer);
            assert_eq!(dw.len(), grad_w.len());
            assert!(grad_w.iter().any(|g| *g != 0.0));
            for (i, ((ours, engine), scale)) in dw.iter().zip(grad_w).zip(&scale).enumerate() {
                let tol = 2e-5 * scale + 1e-9;
                assert!((ours - f64::from(*engine)).abs() <= tol, "{} dW[{i}]: {ours} vs engine {engine}", conv.name);
            }
            if conv.name == "conv2" {
                // Scattered dX contributions are the gradient the engine sent back to relu1.
                let d_relu1 = grad(&snap, "relu1");
                assert_eq!(dx.len(), d_relu1.len());
                let top = dx.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                assert!(top > 0.0);
                for (i, (ours, engine)) in dx.iter().zip(d_relu1).enumerate() {
                    assert!((ours - f64::from(*engine)).abs() <= 1e-5 * top, "dX[{i}]: {ours} vs {engine}");
                }
            }
        }
        // The gradient arriving at a relu1 pixel is ∂L/∂relu1, and passes where conv1 > 0.
        let relu1 = layer(&snap.model, "relu1");
        let (_, h1, w1) = maps_of(&snap, relu1);
        let r = conv_pixel(&snap, PixelRef { layer: relu1, channel: 0, y: h1 / 2, x: w1 / 2 });
        let relu = r.activation.as_ref().unwrap();
        assert_eq!((relu.name.as_str(), relu.function), ("relu1", "relu"));
        let (d_relu, g) = (relu.d_output.unwrap(), r.gradient.unwrap().d_conv);
        assert_eq!(g, if r.map_value > 0.0 { d_relu } else { 0.0 });
        assert_eq!(relu.d_input, Some(g));
    }
}

fn test_image(data: &cnn_stepper_core::data::Splits, index: usize) -> (Vec<f32>, usize) {
    let b = data.test.batch(&[index]).unwrap();
    (b.images.as_slice().unwrap().to_vec(), b.labels[0])
}

#[test]
fn class_evidence_sums_to_the_logit_minus_the_bias_terms() {
    let data = sample();
    for cfg in [small(), strided()] {
        let mut net = Network::<f64>::new(cfg, Init::He, 5, ConvEngine::Fast).unwrap();
        // Non-zero biases, so the bias terms are part of what is checked.
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for b in [&mut net.params.fc1_b, &mut net.params.fc2_b] {
            b.iter_mut().for_each(|v| *v = rng.random_range(-0.5..0.5));
        }
        for index in [0, 1, 2] {
            let (img, label) = test_image(&data, index);
            let img: Vec<f64> = img.iter().map(|v| f64::from(*v)).collect();
            let mut acts = Activations::default();
            net.forward_into(&img, &[label], 0.0, &mut acts).unwrap();
            let x = if cfg.relu_after_conv2 { &acts.relu_c2 } else { &acts.conv2 };
            let ev = evidence::class_evidence(&cfg, &net.params, x).unwrap();
            assert!(ev.active.iter().any(|a| *a) && ev.active.iter().any(|a| !*a), "the ReLU pattern matters");
            for k in 0..cfg.classes {
                let map = ev.class_map(k).unwrap();
                assert_eq!(map.len(), cfg.flat_len());
                let sum: f64 = map.iter().sum();
                let scale: f64 = map.iter().map(|v| v.abs()).sum::<f64>() + ev.bias_terms[k].abs();
                assert!((sum + ev.bias_terms[k] - acts.scores[k]).abs() <= 1e-10 * scale, "class {k}");
                assert!((ev.logits[k] - acts.scores[k]).abs() <= 1e-10 * scale);
            }
        }
    }
}

#[test]
fn fc1_units_are_rows_of_fc1_shaped_as_conv2_maps() {
    let cfg = small();
    let s = session(SMALL, 2);
    let u = s.fc1_unit(7).unwrap();
    let (h, w) = cfg.conv2_out();
    let flat = cfg.conv2_filters * h * w;
    let (fc1_w, fc2_w) = (param(&s, "fc1.weight"), param(&s, "fc2.weight"));
    assert_eq!((u.unit, u.channels, u.height, u.width), (7, cfg.conv2_filters, h, w));
    assert_eq!((u.layer.as_str(), u.source.as_str()), ("fc1", "conv2"));
    assert_eq!(u.weights, fc1_w[7 * flat..8 * flat]);
    assert_eq!(u.bias, param(&s, "fc1.bias")[7]);
    let column: Vec<f32> = (0..cfg.classes).map(|k| fc2_w[k * cfg.hidden + 7]).collect();
    assert_eq!(u.class_weights, column);
    assert_eq!(u.channel_map(2), &fc1_w[7 * flat + 2 * h * w..7 * flat + 3 * h * w]);
    assert!(u.channel_map(cfg.conv2_filters).is_empty());
    let err = s.fc1_unit(12).unwrap_err();
    assert!(matches!(err, TrainError::Engine(_)) && err.to_string().contains("0 to 11"), "{err}");
}

#[test]
fn session_class_evidence_matches_a_probe_of_the_same_image() {
    let mut s = session(POST, 2);
    assert!(matches!(s.class_evidence(&EvidenceOf::SelectedSample), Err(TrainError::NoBatch { .. })));
    s.step_batch(&mut |_, _| {}).unwrap();
    s.select(1);
    let ev = s.class_evidence(&EvidenceOf::SelectedSample).unwrap();
    let snap = s.snapshot();
    let ImageId::Batch { position, train_index } = ev.image else { panic!("{:?}", ev.image) };
    assert_eq!((position, train_index), (1, snap.batch.indices[1]));
    assert_eq!(ev.label, Some(snap.batch.labels[1]));
    assert_eq!(ev.maps.len(), 10 * 32 * 28 * 28);
    for k in 0..ev.classes() {
        let scale: f32 = ev.class_map(k).iter().map(|v| v.abs()).sum::<f32>() + ev.bias_terms[k].abs();
        assert!((ev.evidence_sum(k) + ev.bias_terms[k] - ev.logits[k]).abs() <= 1e-4 * scale, "class {k}");
    }
    let ev = s.class_evidence(&EvidenceOf::Image(ProbeInput::TestImage(5))).unwrap();
    let probe = s.probe(&ProbeInput::TestImage(5)).unwrap();
    assert_eq!(ev.image, ImageId::Test(5));
    assert_eq!(ev.source, "conv2");
    for (a, b) in ev.logits.iter().zip(probe.sample.scores()) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
    assert_eq!(ev.channel_map(3, 1), &ev.class_map(3)[784..2 * 784]);
}

fn random_biases(params: &mut Params<f32>, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for b in [&mut params.conv1_b, &mut params.conv2_b, &mut params.fc1_b, &mut params.fc2_b] {
        b.iter_mut().for_each(|v| *v = rng.random_range(-0.2..0.2));
    }
}

#[test]
fn gradient_check_agrees_with_finite_differences_on_a_small_network() {
    let data = sample();
    let b = data.test.batch(&[0, 1, 2, 3]).unwrap();
    for (cfg, engine) in [(small(), ConvEngine::Fast), (strided(), ConvEngine::Naive)] {
        let mut params = Params::<f32>::init(&cfg, Init::He, 5);
        random_biases(&mut params, 6);
        let mut calls = Vec::new();
        let r = gradcheck::check_gradients(
            &cfg,
            &params,
            b.images.as_slice().unwrap(),
            &b.labels,
            0.05,
            4,
            11,
            engine,
            &mut |d, t| calls.push((d, t)),
        )
        .unwrap();
        let names: Vec<&str> = r.layers.iter().map(|l| l.layer.as_str()).collect();
        assert_eq!(names, ["conv1", "conv2", "fc1", "fc2"]);
        // 4 of each tensor, or all of a smaller one (conv1 has 3 biases).
        assert_eq!(r.layers[0].entries.len(), 4 + 3);
        assert_eq!(r.layers[2].entries.iter().filter(|e| e.param == "fc1.weight").count(), 4);
        let entries: Vec<_> = r.layers.iter().flat_map(|l| &l.entries).collect();
        // With non-zero biases hardly any ReLU input is within h of 0.
        assert!(entries.iter().filter(|e| !e.crossed_kink).count() >= 28, "{r:#?}");
        assert!(entries.iter().filter(|e| e.analytic.abs() > 1e-6).count() >= 24, "the gradients are not ~0");
        assert!(r.max_rel_error() < 1e-5, "{r:#?}");
        assert!(r.noise > 0.0 && r.noise < 1e-9, "f64 differences are precise: noise {}", r.noise);
        assert!(entries.iter().all(|e| e.abs_error == (e.analytic - e.numeric).abs()));
        assert_eq!(calls.last(), Some(&(65 - 2, 65 - 2)), "progress ends at total (one tensor has 3 picks)");
        assert_eq!(r.engine, engine);
        assert_eq!(r.images, 4);
    }
}

#[test]
fn gradient_check_flags_perturbations_that_cross_a_relu_kink() {
    // With zero biases every conv1 pixel over the blank background is exactly 0: moving a conv1
    // bias by ±h puts all of them on either side of the kink.
    let data = sample();
    let b = data.test.batch(&[0, 1]).unwrap();
    let cfg = small();
    let params = Params::<f32>::init(&cfg, Init::He, 5);
    let r = gradcheck::check_gradients(
        &cfg,
        &params,
        b.images.as_slice().unwrap(),
        &b.labels,
        0.0,
        4,
        3,
        ConvEngine::Fast,
        &mut |_, _| {},
    )
    .unwrap();
    let conv1_bias: Vec<_> = r.layers[0].entries.iter().filter(|e| e.param == "conv1.bias").collect();
    assert!(!conv1_bias.is_empty() && conv1_bias.iter().all(|e| e.crossed_kink), "{conv1_bias:#?}");
    assert!(conv1_bias.iter().all(|e| e.kink_layer.as_deref() == Some("relu1")), "{conv1_bias:#?}");
    assert!(conv1_bias.iter().any(|e| e.rel_error > 1e-3), "there the difference quotient is not a derivative");
    assert!(r.layers[0].max_rel_error < 1e-5, "kinks are left out of the maximum");
}

#[test]
fn gradient_check_changes_nothing_in_the_training_run() {
    let run = |check: bool| {
        let mut s = session(SMALL, 4);
        s.step_batch(&mut |_, _| {}).unwrap();
        step_until(&mut s, "backward fc1");
        if check {
            let g = s.check_gradients(&mut |_, _| {}).unwrap();
            assert_eq!(g.step, 1);
            assert!(g.report.max_rel_error() < 1e-5, "{:#?}", g.report);
        }
        let mid = s.snapshot();
        step_until(&mut s, "update");
        s.step_batch(&mut |_, _| {}).unwrap();
        (mid.sample, mid.filters, state(&s), s.snapshot().new_loss_points)
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn probing_a_test_image_or_a_drawing_leaves_the_batch_alone() {
    let data = sample();
    let mut s = session(POST, 2);
    s.step_batch(&mut |_, _| {}).unwrap();
    step_until(&mut s, "backward fc2");
    let before = s.snapshot();
    let p = s.probe(&ProbeInput::TestImage(17)).unwrap();
    let (img, label) = test_image(&data, 17);
    assert_eq!((p.image.clone(), p.label, p.step), (ImageId::Test(17), Some(label), 1));
    assert_eq!(p.sample.input, img);
    let lengths: Vec<usize> = p.sample.outputs.iter().map(Vec::len).collect();
    // conv1, relu1, conv2, flatten (conv2's values), fc1, relu2, fc2.
    assert_eq!(lengths, [16 * 784, 16 * 784, 32 * 784, 32 * 784, 100, 100, 10]);
    assert_eq!(p.sample.probs.len(), 10);
    assert!(p.sample.grads.iter().all(Vec::is_empty) && p.sample.d_scores().is_empty(), "no backward pass");
    assert_eq!(p.predicted, cnn_stepper_core::engine::argmax(&p.sample.probs));
    assert_eq!(p.confidence, p.sample.probs[p.predicted]);
    // The same numbers the post-only engine gives that image in a batch of its own.
    let mut acts = Activations::default();
    let params = common::post_params(&s, &ModelConfig::default());
    let mut net = Network::with_params(ModelConfig::default(), params, ConvEngine::Fast).unwrap();
    net.forward_into(&img, &[label], 0.0, &mut acts).unwrap();
    assert_eq!(p.sample.scores(), acts.scores.as_slice());

    let drawn = s.probe(&ProbeInput::Pixels(vec![0.25; 784])).unwrap();
    assert_eq!((drawn.image, drawn.label), (ImageId::Drawn, None));
    let after = s.snapshot();
    assert_eq!((&after.batch, &after.sample, &after.filters), (&before.batch, &before.sample, &before.filters));
    assert_eq!(after.phases_done, before.phases_done);

    let wrong_count =
        |e: &TrainError, n: usize| matches!(e, TrainError::WrongPixelCount { expected: 784, found, .. } if *found == n);
    let e = s.probe(&ProbeInput::Pixels(vec![0.0; 783])).unwrap_err();
    assert!(wrong_count(&e, 783) && e.to_string().contains("784 pixel values"), "{e}");
    let e = s.probe(&ProbeInput::Pixels(vec![])).unwrap_err();
    assert!(wrong_count(&e, 0) && e.to_string().contains("but 0 were sent"), "{e}");
    let e = s.probe(&ProbeInput::Pixels([vec![0.0; 30], vec![f32::NAN], vec![0.0; 753]].concat())).unwrap_err();
    assert!(matches!(e, TrainError::PixelOutOfRange { index: 30, row: 1, column: 2, .. }), "{e}");
    let e = s.probe(&ProbeInput::Pixels([vec![1.5], vec![0.0; 783]].concat())).unwrap_err();
    assert!(e.to_string().contains("between 0 and 1"), "{e}");
    let e = s.probe(&ProbeInput::TestImage(10_000)).unwrap_err();
    assert!(matches!(e, TrainError::NoTestImage { index: 10_000, count: 10_000 }), "{e}");
}

#[test]
fn evaluation_counts_every_image_once_in_the_confusion_matrix_and_lists_the_mistakes() {
    let data = sample();
    let mut s = session(SMALL, 32);
    for _ in 0..5 {
        s.step_batch(&mut |_, _| {}).unwrap();
    }
    let r = s.evaluate(600, &mut |_, _| {}).unwrap();
    assert_eq!((r.count, r.classes, r.confusion.len()), (600, 10, 100));
    assert_eq!(r.confusion.iter().sum::<usize>(), 600);
    assert_eq!((0..10).map(|k| r.confusion_count(k, k)).sum::<usize>(), r.correct);
    assert_eq!(r.misclassified.len(), r.count - r.correct);
    assert!(r.correct > 0 && r.correct < 600, "a partly trained network: {} correct", r.correct);
    for k in 0..10 {
        let truth = data.test.labels[..600].iter().filter(|l| usize::from(**l) == k).count();
        assert_eq!(r.class_count(k), truth, "class {k}");
        assert_eq!(r.per_class_accuracy()[k], Some(r.confusion_count(k, k) as f32 / truth as f32));
    }
    let mut last = None;
    for m in &r.misclassified {
        assert!(last < Some(m.index), "in test-set order, each once");
        last = Some(m.index);
        assert_eq!(m.label, usize::from(data.test.labels[m.index]));
        assert_ne!(m.label, m.predicted);
        assert!(m.confidence >= m.label_probability);
    }
    // A cell of the matrix lists exactly its mistakes, and a probe of one agrees with it.
    let m = r.misclassified[0];
    assert_eq!(r.misclassified_as(m.label, m.predicted).count(), r.confusion_count(m.label, m.predicted));
    let p = s.probe(&ProbeInput::TestImage(m.index)).unwrap();
    assert_eq!((p.predicted, p.label), (m.predicted, Some(m.label)));
    assert!((p.confidence - m.confidence).abs() < 1e-5);
    // One image: only its class has an accuracy.
    let one = s.evaluate(1, &mut |_, _| {}).unwrap();
    assert_eq!(one.per_class_accuracy().iter().filter(|a| a.is_some()).count(), 1);
    assert_eq!(one.confusion_count(10, 0), 0, "outside the matrix");
    assert!(r.misclassified.len() <= EvalResult::MAX_MISCLASSIFIED);
}

fn rms(v: &[f32]) -> f32 {
    (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt() as f32
}

#[test]
fn magnitudes_are_measured_every_step_and_resent_with_the_history() {
    let mut s = session(SMALL, 4);
    for _ in 0..3 {
        s.step_batch(&mut |_, _| {}).unwrap();
    }
    let snap = s.snapshot();
    let steps: Vec<u64> = snap.new_magnitude_points.iter().map(|p| p.step).collect();
    assert_eq!(steps, [1, 2, 3]);
    let last = snap.new_magnitude_points[2].clone();
    let net = s.network();
    let t = net.tensors();
    let layers = net.plan().layers.len();
    assert_eq!((last.activations.len(), last.gradients.len()), (layers, layers), "one per layer");
    for i in 0..layers {
        let (got, want) = (last.activations[i], rms(t.output(i)));
        assert!((got - want).abs() <= 1e-5 * want, "layer {i}: {got} vs {want}");
        let (got, want) = (last.gradients[i], rms(t.output_grad(i)));
        assert!((got - want).abs() <= 1e-5 * want, "layer {i} gradient: {got} vs {want}");
    }
    // Weights and their gradients come from the sums the update takes: each in its place.
    let weights: Vec<usize> = (0..layers).filter_map(|l| net.weight_index(l)).collect();
    assert_eq!((weights.len(), last.weights.len(), last.weight_gradients.len()), (4, 4, 4));
    for (t, &wi) in weights.iter().enumerate() {
        let (w, dw) = (rms(&net.params()[wi].data), rms(net.grad(wi)));
        assert!((last.weights[t] - w).abs() <= 1e-5 * w, "weight {t}: {} vs {w}", last.weights[t]);
        assert!(
            (last.weight_gradients[t] - dw).abs() <= 1e-5 * dw,
            "gradient {t}: {} vs {dw}",
            last.weight_gradients[t]
        );
    }
    assert!(last.gradients.iter().chain(&last.weights).all(|v| v.is_finite() && *v > 0.0));
    assert!(s.snapshot().new_magnitude_points.is_empty(), "each point is delivered once");
    assert_eq!(s.history().magnitudes().len(), 3);

    // Saved and opened: the whole history comes back with the curves reset.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    s.save_checkpoint(&path).unwrap();
    let mut opened = Session::open_checkpoint(s.data().clone(), &path, ConvEngine::Fast, None).unwrap();
    let snap = opened.snapshot();
    assert!(snap.curves_reset);
    assert_eq!(snap.new_magnitude_points, s.history().magnitudes());
}

#[test]
fn the_posts_init_shows_the_signal_vanishing_layer_by_layer() {
    let scores_rms = |preset| {
        let mut s = Session::new(sample(), 3, preset, POST, ConvEngine::Fast).unwrap();
        s.step_batch(&mut |_, _| {}).unwrap();
        let names: Vec<String> = s.model().plan.layers.iter().map(|l| l.name.clone()).collect();
        (names, s.snapshot().new_magnitude_points[0].clone())
    };
    let ((names, post), (_, he)) = (scores_rms(Preset::Post), scores_rms(Preset::Recommended));
    // Each layer multiplies by weights of std 1e-4: conv1 ~1e-4, conv2 ~1e-7, fc1 ~1e-10 …
    assert_eq!(post.activations.len(), names.len());
    for (i, name) in names.iter().enumerate() {
        assert!(
            post.activations[i] < 1e-3 * he.activations[i],
            "{name}: post {} vs He {}",
            post.activations[i],
            he.activations[i]
        );
    }
    assert!(post.activations[2] < 1e-2 * post.activations[0], "conv2 is far below conv1");
    // … and the gradients reaching conv1's weights vanish too.
    assert!(post.weight_gradients[0] < 1e-3 * he.weight_gradients[0]);
}

#[test]
fn magnitude_history_stays_bounded_by_merging_neighbours() {
    let mut h = History::new();
    let point = |step: u64| MagnitudePoint {
        step,
        activations: vec![step as f32; 7],
        gradients: vec![1.0; 7],
        weights: vec![2.0; 4],
        weight_gradients: vec![3.0; 4],
    };
    for step in 1..=(MAX_MAGNITUDE_POINTS as u64 + 10) {
        h.push_magnitudes(point(step));
    }
    assert!(h.magnitudes().len() < MAX_MAGNITUDE_POINTS);
    assert_eq!(h.magnitude_stride(), 2);
    let first = &h.magnitudes()[0];
    assert_eq!((first.step, first.activations[0], first.weights[3]), (2, 1.5, 2.0));
    assert_eq!((first.activations.len(), first.weight_gradients.len()), (7, 4), "merged points keep their widths");
    h.truncate_after(100);
    assert_eq!(h.magnitudes().last().map(|p| p.step), Some(100));
}

#[test]
fn session_files_from_before_the_magnitude_curves_still_open() {
    use safetensors::SafeTensors;
    let mut s = session(SMALL, 4);
    s.step_batch(&mut |_, _| {}).unwrap();
    let bytes = s.to_file().unwrap().to_bytes("new").unwrap();
    // Rebuild the file as the previous version wrote it: no magnitude tensors or state.
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&meta["session"]).unwrap();
    let obj = state.as_object_mut().unwrap();
    assert!(obj.remove("magnitude_stride").is_some() && obj.remove("magnitude_bucket").is_some());
    meta.insert("session".into(), state.to_string());
    // The previous version recorded no checksums either.
    assert!(meta.remove("checksums").is_some());
    let kept: Vec<_> = st.tensors().into_iter().filter(|(name, _)| !name.contains("magnitude")).collect();
    assert_eq!(kept.len() + 2, st.len());
    let old = safetensors::serialize(kept, Some(meta)).unwrap();
    let opened = checkpoint::from_bytes(&old, "old", Some(s.data().train.len()), ConvEngine::Fast, None).unwrap();
    assert!(opened.file.history.magnitudes().is_empty());
    assert_eq!(opened.file.history.loss(), s.history().loss());
}

fn running_at(e: &Event) -> Option<u64> {
    match e {
        Event::Snapshot(s) if s.running => Some(s.step),
        _ => None,
    }
}

#[test]
fn the_worker_answers_teaching_requests_without_stopping_a_run() {
    let worker = Worker::spawn(session(POST, 8), || {}).unwrap();
    worker.send(Command::Run);
    let (e, _) = wait_for(&worker, "training to run", |e| running_at(e).is_some_and(|s| s >= 1));
    let step = running_at(&e).unwrap_or_default();

    let sent = Instant::now();
    worker.send(Command::Probe(ProbeInput::Pixels(vec![0.5; 784])));
    let (e, _) = wait_for(&worker, "the probe", |e| matches!(e, Event::Probed(_)));
    let latency = sent.elapsed();
    let Event::Probed(p) = e else { unreachable!() };
    assert_eq!(p.image, ImageId::Drawn);
    assert!(latency < Duration::from_secs(10), "answered between phases ({latency:?})");

    worker.send(Command::Probe(ProbeInput::Pixels(vec![0.5; 10])));
    let (e, _) = wait_for(&worker, "the error", |e| matches!(e, Event::Error(_)));
    let Event::Error(msg) = e else { unreachable!() };
    assert!(msg.contains("784 pixel values") && msg.contains("10 were sent"), "{msg}");

    worker.send(Command::ClassEvidence(EvidenceOf::SelectedSample));
    let (e, _) = wait_for(&worker, "the class evidence", |e| matches!(e, Event::ClassEvidence(_)));
    let Event::ClassEvidence(ev) = e else { unreachable!() };
    assert!(matches!(ev.image, ImageId::Batch { .. }) && ev.maps.len() == 10 * 25_088);

    worker.send(Command::Fc1Unit(3));
    let (e, _) = wait_for(&worker, "the FC1 unit", |e| matches!(e, Event::Fc1Unit(_)));
    let Event::Fc1Unit(u) = e else { unreachable!() };
    assert_eq!((u.unit, u.weights.len()), (3, 25_088));

    // Still training after all of that, and errors did not pause it.
    wait_for(&worker, "training to go on", |e| running_at(e).is_some_and(|s| s > step + 1));
}

#[test]
fn the_worker_checks_gradients_with_progress_and_answers_evaluations() {
    let worker = Worker::spawn(session(SMALL, 4), || {}).unwrap();
    worker.send(Command::CheckGradients);
    let (e, _) = wait_for(&worker, "the refusal", |e| matches!(e, Event::Error(_)));
    let Event::Error(msg) = e else { unreachable!() };
    assert!(msg.contains("no batch yet"), "{msg}");
    worker.send(Command::StepBatch);
    worker.send(Command::StepBatch);
    worker.send(Command::CheckGradients);
    let (e, seen) = wait_for(&worker, "the gradient check", |e| matches!(e, Event::GradientCheck(_)));
    let Event::GradientCheck(g) = e else { unreachable!() };
    assert_eq!(g.step, 2);
    assert!(g.report.max_rel_error() < 1e-5, "{:#?}", g.report);
    assert!(
        seen.iter().any(
            |e| matches!(e, Event::Progress { what, done, total } if what == "checking gradients" && done == total)
        ),
        "progress while checking"
    );
    worker.send(Command::Evaluate { count: 300 });
    let (e, _) = wait_for(&worker, "the evaluation", |e| matches!(e, Event::Evaluated(_)));
    let Event::Evaluated(r) = e else { unreachable!() };
    assert_eq!((r.count, r.confusion.iter().sum::<usize>()), (300, 300));
    assert_eq!(r.misclassified.len(), 300 - r.correct);
}

/// How long the window waits for a probe (a drawn digit, a clicked test image) while training
/// runs with the fast engine on the full network at batch 32: the worker answers between two
/// phases, so the wait is at most the longest phase. Prints the median, 90th percentile and
/// maximum of 60 probes sent at random moments.
/// Run: `cargo test --release --test teaching -- --ignored --nocapture probe_latency`
#[test]
#[ignore = "a measurement; run by hand on a quiet machine"]
fn probe_latency_while_running() {
    let worker = Worker::spawn(session(POST, 32), || {}).unwrap();
    worker.send(Command::Run);
    wait_for(&worker, "training to run", |e| running_at(e).is_some_and(|s| s >= 2));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut latencies = Vec::new();
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(rng.random_range(0..40)));
        let sent = Instant::now();
        worker.send(Command::Probe(ProbeInput::Pixels(vec![0.5; 784])));
        wait_for(&worker, "the probe", |e| matches!(e, Event::Probed(_)));
        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    let (median, p90, max) = (latencies[30], latencies[54], latencies[59]);
    println!("probe latency while running (ms): median {median:.1}, 90th percentile {p90:.1}, max {max:.1}");
    assert!(max < 10_000.0);
}

#[test]
fn the_inspector_says_when_the_engine_summed_through_fourier_transforms() {
    for (engine, conv2_by_fourier) in [(ConvEngine::Fast, true), (ConvEngine::Naive, false)] {
        let mut s = Session::new(sample(), 3, Preset::Recommended, POST, engine).unwrap();
        let mut settings = s.settings();
        settings.batch_size = 1;
        s.set_settings(settings).unwrap();
        step_until(&mut s, "loss");
        let snap = s.snapshot();
        let at = |name| PixelRef { layer: layer(&snap.model, name), channel: 3, y: 10, x: 12 };
        assert!(!conv_pixel(&snap, at("conv1")).by_fourier, "{engine:?}: conv1 is im2col or loops");
        assert_eq!(conv_pixel(&snap, at("conv2")).by_fourier, conv2_by_fourier, "{engine:?}");
    }
}
