//! The Loops view's core (issue 16 §1): a part's loop nest, stepped one iteration at a time on
//! the batch in progress, ends at the engine's own result; the cursor's indices and lines follow
//! the nest; the session and the worker answer for any layer that has the part and refuse the
//! others with words.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::sync::Arc;

use cnn_stepper_core::data::{Dataset, Splits};
use cnn_stepper_core::engine::model::LayerSpec;
use cnn_stepper_core::engine::model::loops::{LoopCase, LoopCursor, LoopPart, parts_of};
use cnn_stepper_core::engine::{ConvEngine, Preset};
use cnn_stepper_core::trainer::{Command, Event, Session, TrainError, Worker};

use common::{layer, sample, snapshot, step_until, wait_for, wait_for_ok};

/// A strided, padded conv, both pools, an fc after flatten, a tanh: every kind of loop on MNIST.
const MIXED: &str =
    "conv(3,5,stride=2,pad=2), relu, maxpool(2), conv(2,3,pad=1), avgpool(2), flatten, fc(6), tanh, fc(10)";

/// For colour input (3×8×8): a strided conv over three channels, a sigmoid, an average pool.
const COLOURFUL: &str = "conv(2,3,stride=2,pad=1), sigmoid, avgpool(2), flatten, fc(3)";

/// `n` 3×8×8 colour images of three classes with varied pixels.
fn colour(n: usize) -> Arc<Splits> {
    let split = |n: usize| {
        let images = (0..n * 3 * 64).map(|i| ((i * 37 + i / 64 * 11) % 251) as u8).collect();
        let labels = (0..n).map(|i| (i % 3) as u8).collect();
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        Dataset::with_channels(images, labels, 3, 8, 8, names).unwrap()
    };
    Arc::new(Splits::new(split(n), split(n), "colour test set".into(), Vec::new()).unwrap())
}

fn session_on(data: Arc<Splits>, model: &str, engine: ConvEngine, batch: usize) -> Session {
    let mut s = Session::new(data, 3, Preset::Recommended, model, engine).unwrap();
    let mut settings = s.settings();
    settings.batch_size = batch;
    s.set_settings(settings).unwrap();
    s
}

/// A session of `model` on the sample that has taken one whole step and started the next
/// batch's backward pass, so the weights have moved once and the batch is half done.
fn mid_batch(model: &str, engine: ConvEngine) -> Session {
    let mut s = session_on(sample(), model, engine, 4);
    s.step_batch(&mut |_, _| {}).unwrap();
    step_until(&mut s, "backward loss");
    s
}

/// Every (layer, part) the network has.
fn all_parts(s: &Session) -> Vec<(usize, LoopPart)> {
    let plan = &s.model().plan;
    (0..plan.layers.len()).flat_map(|l| parts_of(plan, l).into_iter().map(move |p| (l, p))).collect()
}

fn finished(case: &LoopCase) -> LoopCursor {
    let mut c = LoopCursor::new(case);
    c.finish(case);
    assert!(c.finished());
    c
}

/// The largest |a − b| relative to the largest |b| (or 1).
fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-6_f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

#[test]
fn every_part_stepped_to_its_end_gives_the_naive_engines_result_and_the_convolutions_and_pools_exactly() {
    let s = mid_batch(MIXED, ConvEngine::Naive);
    let parts = all_parts(&s);
    assert_eq!(
        parts.len(),
        2 + 2 + 2 + 3 + 2 + 3 + 2 + 3 + 2,
        "every layer's parts but flatten's; conv1 has no dX; the last layer carries the loss's two"
    );
    for (l, part) in parts {
        let case = s.loop_case(l, part).unwrap();
        let c = finished(&case);
        let what = format!("{} {}", case.layer_name, part.label());
        for (k, (got, want)) in c.outputs().iter().zip(&case.expected).enumerate() {
            if matches!(case.spec, LayerSpec::Fc { .. }) && !part.is_loss() {
                // The engine multiplies matrices: the same sums in another order.
                assert!(relative_gap(got, want) < 1e-5, "{what}, output {k}");
            } else {
                assert_eq!(got, want, "{what}, output {k}: the loop's arithmetic is the naive engine's");
            }
        }
        assert!(c.max_difference(&case).is_some());
    }
}

#[test]
fn a_strided_padded_conv_forward_with_the_naive_engine_ends_at_the_training_steps_own_map_bit_for_bit() {
    let mut s = session_on(sample(), MIXED, ConvEngine::Naive, 4);
    s.step_batch(&mut |_, _| {}).unwrap();
    let conv1 = layer(s.model(), "conv1");
    let case = s.loop_case(conv1, LoopPart::Forward).unwrap();
    // The step is complete (its weights updated) and the case is still the batch's, at the
    // weights the batch started with: its map is the one the forward phase produced.
    assert_eq!(case.expected[0], s.network().tensors().output(conv1));
    let c = finished(&case);
    assert_eq!(c.outputs()[0], s.network().tensors().output(conv1));
    assert_eq!(c.max_difference(&case), Some(0.0));
    let wi = s.network().weight_index(conv1).unwrap();
    let grads = s.loop_case(conv1, LoopPart::BackwardParams).unwrap();
    assert_eq!(finished(&grads).outputs()[0], s.network().grad(wi), "dW of the step, at its starting weights");
    assert_eq!(case.step, 1);
}

#[test]
fn with_the_fast_engine_the_loops_equal_the_engines_maps_to_rounding() {
    let s = mid_batch(MIXED, ConvEngine::Fast);
    for (l, part) in all_parts(&s) {
        let case = s.loop_case(l, part).unwrap();
        assert_eq!(case.engine, ConvEngine::Fast);
        let c = finished(&case);
        for (got, want) in c.outputs().iter().zip(&case.expected) {
            assert!(relative_gap(got, want) < 1e-5, "{} {}", case.layer_name, part.label());
        }
    }
}

#[test]
fn colour_input_a_strided_conv_over_three_channels_and_its_gradients_end_at_the_engines() {
    let mut s = session_on(colour(8), COLOURFUL, ConvEngine::Naive, 4);
    s.step_batch(&mut |_, _| {}).unwrap();
    step_until(&mut s, "backward conv1");
    for (l, part) in all_parts(&s) {
        let case = s.loop_case(l, part).unwrap();
        let c = finished(&case);
        for (got, want) in c.outputs().iter().zip(&case.expected) {
            if matches!(case.spec, LayerSpec::Fc { .. }) && !case.part.is_loss() {
                assert!(relative_gap(got, want) < 1e-5);
            } else {
                assert_eq!(got, want, "{} {}", case.layer_name, part.label());
            }
        }
    }
    let case = s.loop_case(0, LoopPart::Forward).unwrap();
    assert_eq!(case.input, (3, 8, 8));
    let it = LoopCursor::new(&case).peek(&case).unwrap();
    assert_eq!(it.shape, (3, 3, 3), "the patch spans the three colour channels");
    assert_eq!(it.partial_sums.len(), 3);
    let start = it.start.unwrap();
    let total = it.partial_sums.iter().fold(start, |a, b| a + b);
    assert!((total - it.result.unwrap()).abs() < 1e-5, "bias + the channels' partial sums = the cell");
}

#[test]
fn stepping_k_iterations_then_jumping_to_the_end_equals_jumping_at_once() {
    let s = mid_batch(MIXED, ConvEngine::Naive);
    for (l, part) in all_parts(&s) {
        let case = s.loop_case(l, part).unwrap();
        let at_once = finished(&case);
        let mut stepped = LoopCursor::new(&case);
        assert_eq!(stepped.run(&case, 7), 7.min(stepped.total()));
        stepped.end_of_inner_loop(&case);
        stepped.step(&case);
        stepped.finish(&case);
        assert_eq!(stepped.outputs(), at_once.outputs(), "{} {}", case.layer_name, part.label());
        assert_eq!(stepped.position(), at_once.total());
        assert!(stepped.step(&case).is_none(), "nothing runs after the end");
    }
}

#[test]
fn the_indices_and_highlighted_line_follow_the_nest_n_f_h_w_with_the_db_line_before_the_dw_line() {
    let s = mid_batch(MIXED, ConvEngine::Naive);
    let conv1 = layer(s.model(), "conv1");
    let case = s.loop_case(conv1, LoopPart::Forward).unwrap();
    let mut c = LoopCursor::new(&case);
    let nest = c.nest().clone();
    let names: Vec<&str> = nest.vars.iter().map(|v| v.name).collect();
    assert_eq!(names, ["n", "f", "h", "w"]);
    let ranges: Vec<usize> = nest.vars.iter().map(|v| v.range).collect();
    assert_eq!(ranges, [4, 3, 14, 14], "stride 2, pad 2: 1 + (28 − 5 + 4) / 2 = 14");
    assert_eq!(c.total(), 4 * 3 * 14 * 14);
    assert!(nest.code[nest.body[0]].text.contains("out[n, f, h, w] = np.sum(x_pad"));
    let first = c.step(&case).unwrap().clone();
    assert_eq!((first.indices.clone(), first.line), (vec![0, 0, 0, 0], nest.body[0]));
    assert_eq!(first.target, "out[0, 0, 0, 0]");
    let w = first.window.unwrap();
    assert_eq!((w.row, w.col, w.size), (-2, -2, 5), "the first patch starts in the padding");
    assert_eq!(first.a.iter().filter(|v| v.is_none()).count(), 25 - 9, "a 3×3 corner of the image");
    assert!(c.written()[0][0] && !c.written()[0][1], "exactly the first cell is written");
    c.end_of_inner_loop(&case);
    assert_eq!(c.position(), 14, "the w loop ran to its end");
    assert_eq!(c.last().unwrap().indices, vec![0, 0, 0, 13]);
    assert_eq!(c.step(&case).unwrap().indices, vec![0, 0, 1, 0], "then h moves on");
    assert_eq!(c.step(&case).unwrap().window.unwrap().row, 0, "row 1 of the output reads from row 1·2 − 2");

    let grads = s.loop_case(conv1, LoopPart::BackwardParams).unwrap();
    let mut g = LoopCursor::new(&grads);
    let nest = g.nest().clone();
    assert_eq!(nest.body.len(), 2);
    let lines: Vec<usize> = (0..4).map(|_| g.step(&grads).unwrap().line).collect();
    assert_eq!(lines, [nest.body[0], nest.body[1], nest.body[0], nest.body[1]]);
    assert!(nest.code[nest.body[0]].text.contains("db[f] +="));
    assert_eq!(g.last().unwrap().indices, vec![0, 0, 0, 1]);
}

#[test]
fn the_post_lines_appear_where_the_post_differs() {
    let s = mid_batch(MIXED, ConvEngine::Naive);
    let post = |l: &str, part: LoopPart| {
        let at = s.model().plan.layers.iter().position(|x| x.name == l || (l == "tanh" && x.spec == LayerSpec::Tanh));
        let case = s.loop_case(at.unwrap(), part).unwrap();
        case.nest().code.iter().filter_map(|c| c.post.clone()).collect::<Vec<_>>()
    };
    assert!(post("conv1", LoopPart::Forward).is_empty(), "one input channel: the post's line is ours");
    assert!(post("conv2", LoopPart::Forward)[0].why.contains("3 times fewer weights"));
    assert!(post("conv2", LoopPart::BackwardInput)[0].why.contains("never learns"));
    assert!(post("fc1", LoopPart::BackwardParams)[0].text.contains("zeros_like(W)"));
    assert!(post("relu1", LoopPart::BackwardInput)[0].text.contains("out[n, i]"));
    assert!(post("tanh", LoopPart::BackwardInput).is_empty());
    let loss = post("fc2", LoopPart::LossBackward);
    assert_eq!(loss[0].text, "dscores[range(N), y] = -1");
    assert!(loss[0].why.contains("−1/N whatever its probability"));
    assert!(post("fc2", LoopPart::LossForward).is_empty());
}

#[test]
fn the_loss_backward_loop_ends_at_the_engines_dscores_and_the_true_class_cell_is_p_minus_one_over_n() {
    let s = mid_batch(MIXED, ConvEngine::Naive);
    let last = s.model().plan.layers.len() - 1;
    let case = s.loop_case(last, LoopPart::LossBackward).unwrap();
    assert_eq!(case.title(), "loss backward");
    assert_eq!(case.outputs[0].name, "dscores");
    assert_eq!(case.outputs[0].shape, vec![4, 10]);
    // The loss backward phase's output is the gradient of the last layer's output.
    assert_eq!(case.expected[0], s.network().tensors().output_grad(last));
    let mut c = LoopCursor::new(&case);
    let nest = c.nest().clone();
    assert_eq!(nest.vars.iter().map(|v| (v.name, v.range)).collect::<Vec<_>>(), [("n", 4), ("k", 10)]);
    assert!(nest.code[nest.body[0]].text.contains("dscores[n, k] = (probs[n, k] - (k == y[n])) / N"));
    // Step to image 0's true class: its cell is (p − 1) / N, the post's would be −1/N.
    let y0 = case.labels[0];
    c.run(&case, y0 as u64 + 1);
    let it = c.last().unwrap();
    assert_eq!(it.target, format!("dscores[0, {y0}]"));
    let p = case.y[y0];
    assert_eq!(it.result, Some((p - 1.0) * 0.25));
    assert!(it.note.as_deref().unwrap().contains("the post's line: −1 / 4 = -0.250"), "{:?}", it.note);
    assert!(c.written()[0][y0] && !c.written()[0][y0 + 1]);
    c.finish(&case);
    assert_eq!(c.outputs()[0], s.network().tensors().output_grad(last), "bit for bit");
    assert_eq!(c.max_difference(&case), Some(0.0));
    // Each row sums to 0: the probabilities add up to 1 and one 1 is taken away.
    for row in c.outputs()[0].chunks(10) {
        assert!(row.iter().sum::<f32>().abs() < 1e-6);
    }
}

#[test]
fn the_loss_forward_loop_gives_the_engines_probabilities_and_loss_image_by_image() {
    let s = mid_batch(MIXED, ConvEngine::Fast);
    let last = s.model().plan.layers.len() - 1;
    let case = s.loop_case(last, LoopPart::LossForward).unwrap();
    assert_eq!(case.x, s.network().tensors().output(last), "the loss reads the scores");
    let mut c = LoopCursor::new(&case);
    assert_eq!(c.total(), 4 * 3, "three statements per image: e, probs[n], loss");
    let e = c.step(&case).unwrap().clone();
    assert_eq!(e.line, c.nest().body[0]);
    assert!(e.writes.is_empty(), "e is a temporary");
    let probs = c.step(&case).unwrap().clone();
    assert_eq!(probs.target, "probs[0]");
    assert_eq!(c.outputs()[0][..10], s.network().tensors().probs[..10]);
    c.step(&case);
    assert!(c.outputs()[1][0] > 0.0, "the first image's share of the loss");
    c.finish(&case);
    assert_eq!(c.outputs()[0], s.network().tensors().probs);
    assert_eq!(c.outputs()[1], vec![s.network().tensors().data_loss], "the mean, summed in the engine's order");
    assert_eq!(c.max_difference(&case), Some(0.0));
}

#[test]
fn the_loss_parts_belong_to_the_last_layer_only() {
    let s = mid_batch(MIXED, ConvEngine::Naive);
    let e = s.loop_case(0, LoopPart::LossBackward).unwrap_err().to_string();
    assert!(
        e.starts_with("no loop for loss backward: the loss reads the scores, the output of the last layer (fc2)"),
        "{e}"
    );
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let fresh = session_on(sample(), MIXED, ConvEngine::Naive, 4);
    let e = fresh.loop_case(0, LoopPart::Forward).unwrap_err();
    assert!(matches!(e, TrainError::NoBatch { .. }));
    assert_eq!(e.to_string(), "there is no batch yet: take a step first, then step through its loops");

    let s = mid_batch(MIXED, ConvEngine::Naive);
    let flatten = layer(s.model(), "flatten");
    let text = |l, p| s.loop_case(l, p).unwrap_err().to_string();
    assert_eq!(
        text(flatten, LoopPart::Forward),
        "no loop for flatten forward: flatten only reads the same numbers as one vector, it has no loop"
    );
    assert_eq!(
        text(0, LoopPart::BackwardInput),
        "no loop for conv1 backward dX: conv1 is the first layer: nothing comes before it, so the training step \
         never computes its dX (it has: forward, backward dW & db)"
    );
    assert!(text(layer(s.model(), "pool1"), LoopPart::BackwardParams).contains("pool1 has no weights, so no dW or db"));
    assert!(
        text(40, LoopPart::Forward)
            .starts_with("no loop for layer 40 forward: there is no layer 40: the network has 9")
    );
}

#[test]
fn the_worker_answers_a_loops_request_between_phases_and_refuses_a_bad_one_with_the_words() {
    let s = session_on(sample(), MIXED, ConvEngine::Naive, 4);
    let worker = Worker::spawn(s, || {}).unwrap();
    wait_for(&worker, "the first snapshot", |e| snapshot(e).is_some());
    worker.send(Command::Loops { layer: 0, part: LoopPart::Forward });
    let e = wait_for(&worker, "the refusal", |e| matches!(e, Event::Error(_)));
    assert!(matches!(&e, Event::Error(m) if m.contains("there is no batch yet")), "{e:?}");

    worker.send(Command::StepPhase);
    wait_for_ok(&worker, "forward conv1", |e| snapshot(e).is_some_and(|s| s.phases_done == 1));
    worker.send(Command::Loops { layer: 3, part: LoopPart::BackwardParams });
    let e = wait_for_ok(&worker, "the case", |e| matches!(e, Event::Loops(_)));
    let Event::Loops(case) = e else { unreachable!() };
    assert_eq!((case.layer, case.layer_name.as_str(), case.part), (3, "conv2", LoopPart::BackwardParams));
    assert_eq!(case.outputs.iter().map(|o| o.name).collect::<Vec<_>>(), ["dW", "db"]);
    assert_eq!(case.step, 1);
    let c = finished(&case);
    assert_eq!(c.max_difference(&case), Some(0.0), "the naive engine's gradients, bit for bit");

    worker.send(Command::Loops { layer: 5, part: LoopPart::Forward });
    let e = wait_for(&worker, "the refusal", |e| matches!(e, Event::Error(_)));
    assert!(matches!(&e, Event::Error(m) if m.contains("no loop for flatten forward")), "{e:?}");
}
