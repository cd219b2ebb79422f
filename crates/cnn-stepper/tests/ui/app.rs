//! The window, driven like a user would: egui_kittest clicks and types through the
//! accessibility tree while the real worker thread trains the real network. The waiting helpers
//! are in `common/kittest.rs`.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use cnn_stepper::app::{CnnApp, GuiOptions, load_data};
use cnn_stepper::data::ClassNames;
use cnn_stepper::engine::Phase;
use cnn_stepper::trainer::{Command, Inspection};
use cnn_stepper::ui::panels::banner::Severity;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::*;

#[test]
fn step_phase_runs_forward_conv1_and_the_pipeline_highlights_it() {
    let mut h = harness();
    started(&mut h);
    assert!(!is_selected(&h, "forward conv1"), "nothing has run yet");
    h.get_by_label("Step phase").click();
    wait_for(&mut h, "forward conv1 to be highlighted", |h| is_selected(h, "forward conv1"));
    assert!(has_label(&h, "Paused after forward conv1"));
    // conv1's maps exist now; relu1's are still to come.
    assert!(has_text_containing(&h, "computed in forward relu1"));
}

#[test]
fn step_batch_counts_one_step_and_shows_predictions() {
    let mut h = harness();
    started(&mut h);
    assert!(has_label(&h, "Step 0"));
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "the step counter to read 1", |h| has_label(h, "Step 1"));
    // Each digit of the batch names its label and the network's prediction with confidence.
    let digits: Vec<String> =
        h.query_all_by_label_contains("predicted").filter_map(|n| n.accesskit_node().label()).collect();
    assert!(digits.len() >= 32, "one entry per digit, got {}", digits.len());
    assert!(digits.iter().all(|d| d.contains('%')), "with confidence: {digits:?}");
    assert!(has_text_containing(&h, "correct"), "the batch summary counts correct predictions");
    assert!(is_selected(&h, "update"), "a whole step ends with the update");
    h.check_accessibility();
}

#[test]
fn run_then_pause_trains_and_toggles_the_button() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Run").click();
    wait_for(&mut h, "the Run button to turn into Pause", |h| has_label(h, "Pause"));
    wait_for(&mut h, "training to advance", |h| step(h) >= 2);
    h.get_by_label("Pause").click();
    wait_for(&mut h, "the Pause button to turn back into Run", |h| {
        has_label(h, "Run") && h.state().snapshot().is_some_and(|s| !s.running)
    });
    let paused_at = step(&h);
    assert!(paused_at >= 2, "stepped to {paused_at}");
    assert!(!h.state().curves().loss.is_empty(), "the loss curve got points");
}

#[test]
fn stepping_is_disabled_while_running_with_a_reason() {
    let mut h = harness();
    started(&mut h);
    assert!(!h.get_by_label("Step phase").accesskit_node().is_disabled());
    h.get_by_label("Run").click();
    wait_for(&mut h, "running", |h| has_label(h, "Pause"));
    for name in ["Step phase", "Step batch"] {
        assert!(h.get_by_label(name).accesskit_node().is_disabled(), "{name} is disabled while running");
    }
    h.get_by_label("Step phase").hover();
    wait_for(&mut h, "the tooltip on the disabled button", |h| has_label(h, "Pause first"));
    h.get_by_label("Pause").click();
    wait_for(&mut h, "paused", |h| has_label(h, "Run"));
    wait_for(&mut h, "Step phase to be enabled again", |h| {
        !h.get_by_label("Step phase").accesskit_node().is_disabled()
    });
}

#[test]
fn an_invalid_learning_rate_is_refused_and_not_sent() {
    let mut h = harness();
    started(&mut h);
    let before = h.state().snapshot().map(|s| s.settings);
    fill(&mut h, "Learning rate", "0");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the refusal message", |h| has_text_containing(h, "Refused: learning rate = 0"));
    // Give the worker a chance to answer anything it was (wrongly) sent.
    settle(&mut h);
    let after = h.state().snapshot().map(|s| (s.settings, s.pending));
    assert_eq!(after, before.map(|s| (s, None)), "nothing reached the trainer");
}

#[test]
fn a_valid_learning_rate_applies_at_the_next_batch() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Step phase").click();
    wait_for(&mut h, "a half-done step", |h| is_selected(h, "forward conv1"));
    fill(&mut h, "Learning rate", "0.02");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the pending notice", |h| has_label(h, "applies at next batch"));
    let pending = h.state().snapshot().and_then(|s| s.pending).map(|p| p.hyper.lr);
    assert_eq!(pending, Some(0.02));
}

#[test]
fn arrow_keys_step_a_phase_and_a_batch() {
    let mut h = harness();
    started(&mut h);
    h.key_press(egui::Key::ArrowRight);
    wait_for(&mut h, "forward conv1 after →", |h| is_selected(h, "forward conv1"));
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowRight);
    wait_for(&mut h, "step 1 after Shift+→", |h| has_label(h, "Step 1"));
}

#[test]
fn clicking_a_digit_selects_it_for_the_other_views() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| has_label(h, "Step 1"));
    h.get_by_label_contains("digit 3:").click();
    wait_for(&mut h, "digit 3 to be selected", |h| h.state().snapshot().is_some_and(|s| s.sample.index == 2));
    assert!(has_label(&h, "Digit 3 of the batch"), "the outputs follow the selection");
}

#[test]
fn a_bad_data_folder_falls_back_to_the_sample_with_a_dismissable_banner() {
    let options = GuiOptions {
        data: Some("/no/such/folder".into()),
        classes: Some(ClassNames::Digits),
        seed: 1,
        ..GuiOptions::default()
    };
    let (data, note) = load_data(&options).expect("the embedded sample is the fallback");
    assert!(data.source.contains("embedded"));
    let note = note.expect("the failure is reported");
    assert!(note.contains("/no/such/folder") && note.contains("embedded"), "{note}");
    let mut h = Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_eframe(move |cc| {
        let mut app = CnnApp::new(&cc.egui_ctx, data, 1);
        app.push_banner(Severity::Error, note);
        app
    });
    started(&mut h);
    assert!(has_text_containing(&h, "Using the embedded MNIST sample"));
    h.get_by_label("Dismiss").click();
    wait_for(&mut h, "the banner to go", |h| !has_text_containing(h, "Using the embedded MNIST sample"));
}

#[test]
fn a_setting_the_trainer_rejects_shows_as_a_banner() {
    // A batch of 8 passes Settings::validate but not a session with four training images.
    let mut h = harness_with(tiny());
    started(&mut h);
    fill(&mut h, "Batch size", "8");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the error banner", |h| has_text_containing(h, "larger than the training set"));
    assert!(h.state().banners().iter().any(|b| b.severity == Severity::Error));
}

#[test]
fn a_backward_phase_shows_gradient_maps() {
    let mut h = harness();
    started(&mut h);
    // Forward through every layer, the loss, then backward from the loss to flatten, which
    // hands ∂L/∂conv2 back in conv2's shape.
    let snap = h.state().snapshot().unwrap();
    let flatten = Phase::Backward(layer_index(snap, "flatten"));
    let label = snap.model.phase_label(flatten);
    let until = snap.phases.iter().position(|p| *p == flatten).expect("a backward flatten phase") + 1;
    for i in 1..=until {
        h.get_by_label("Step phase").click();
        wait_for(&mut h, "the next phase", |h| h.state().snapshot().is_some_and(|s| s.phases_done == i));
    }
    wait_for(&mut h, "∂L/∂conv2 maps", |h| has_label(h, "∂L/∂conv2"));
    assert!(is_selected(&h, &label), "{label} is lit");
    h.get_by_label("backward conv2").scroll_to_me();
    // The scroll lands over a few frames; click only once the row is inside the panel.
    wait_for(&mut h, "the row to scroll into view", |h| {
        let row = h.get_by_label("backward conv2").rect();
        let panel = h.get_by_label("Pipeline").rect();
        row.bottom() < 800.0 - 40.0 && row.top() > panel.bottom()
    });
    h.get_by_label("backward conv2").click();
    wait_for(&mut h, "the filter view with gradients", |h| has_text_containing(h, "conv2 gradients"));
}

#[test]
fn evaluate_reports_the_test_accuracy() {
    let mut h = harness_with(tiny());
    started(&mut h);
    h.get_by_label("Evaluate").click();
    wait_for(&mut h, "the evaluation result", |h| has_text_containing(h, "whole test set:"));
    assert_eq!(h.state().curves().last_eval.as_ref().map(|e| e.count), Some(4));
}

#[test]
fn a_request_failing_during_an_evaluation_leaves_evaluate_disabled_until_the_result() {
    let mut h = harness();
    started(&mut h);
    // Both sent before any frame: the worker answers the bad request (an error) first, then
    // evaluates 500 test images, which takes many frames.
    h.state_mut().send(Command::Fc1Unit(usize::MAX));
    h.state_mut().send(Command::Evaluate { count: 500 });
    let error_shown = |h: &Harness<'static, CnnApp>| h.state().banners().iter().any(|b| b.severity == Severity::Error);
    wait_for(&mut h, "the evaluation result", |h| {
        if h.state().teaching().evaluation.is_none() {
            assert!(h.state().evaluating(), "an error that is not the evaluation's does not end it");
            if error_shown(h) {
                assert!(
                    h.get_by_label("Evaluate").accesskit_node().is_disabled(),
                    "Evaluate stays disabled while the evaluation runs"
                );
            }
        }
        h.state().teaching().evaluation.is_some()
    });
    assert!(error_shown(&h), "the failed request is reported");
    wait_for(&mut h, "Evaluate enabled again", |h| !h.get_by_label("Evaluate").accesskit_node().is_disabled());
    assert!(!h.state().evaluating());
}

#[test]
fn reset_starts_again_with_the_seed_typed() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| has_label(h, "Step 1"));
    fill(&mut h, "Seed", "7");
    h.get_by_label("Reset").click();
    wait_for(&mut h, "a fresh run with seed 7", |h| h.state().snapshot().is_some_and(|s| s.seed == 7 && s.step == 0));
    assert!(has_label(&h, "Step 0"));
    assert!(h.state().curves().loss.is_empty(), "the old run's curve is gone");
}

/// A click at `pos`, as the mouse makes it: move, press, release.
fn click_at(h: &mut Harness<'static, CnnApp>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.step();
    h.drag_at(pos);
    h.step();
    h.drop_at(pos);
    h.step();
}

#[test]
fn clicking_a_conv2_pixel_shows_its_arithmetic_and_the_engines_value() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| step(h) == 1);
    wait_for(&mut h, "the conv2 maps", |h| has_label(h, "conv2 maps"));
    let rect = h.get_by_label("conv2 maps").rect();
    click_at(&mut h, rect.min + egui::vec2(12.0, 12.0));
    wait_for(&mut h, "the inspector", |h| has_label(h, "Pixel inspector"));
    let at = h.state().inspected().expect("a pixel is inspected");
    let conv2 = layer_index(h.state().snapshot().unwrap(), "conv2");
    assert_eq!((at.channel, at.layer), (0, conv2), "the first map was clicked");
    let Inspection::Conv(insp) = h.state().snapshot().unwrap().inspect_pixel(at).expect("computed") else {
        panic!("a conv pixel is inspected as a convolution");
    };
    assert!((insp.total - insp.map_value).abs() <= 1e-4 * insp.map_value.abs().max(1.0));
    let name = format!("{}[0,{},{}]", insp.conv_name, at.y, at.x);
    let total = format!("= {name} = {}", cnn_stepper::ui::support::colormap::fmt_sig(insp.total));
    assert!(has_text_containing(&h, &total), "the window shows the total: {total}");
    let engine = format!("the engine computed {}", cnn_stepper::ui::support::colormap::fmt_sig(insp.map_value));
    assert!(has_text_containing(&h, &engine), "and the engine's value: {engine}");
    assert!(has_text_containing(&h, "Σ over 16 channels"), "conv2 sums 16 input channels");
    assert!(has_text_containing(&h, "gradient arriving here"), "a whole step ran, so the gradient is known");
    h.get_by_label("Close").click();
    wait_for(&mut h, "the inspector to close", |h| h.state().inspected().is_none());
}

/// Drags the mouse over the drawing canvas through `points` (fractions of its size).
fn draw_on_canvas(h: &mut Harness<'static, CnnApp>, points: &[(f32, f32)]) {
    let rect = h.get_by_label("Drawing canvas").rect();
    let at = |(x, y): (f32, f32)| rect.min + egui::vec2(x * rect.width(), y * rect.height());
    h.hover_at(at(points[0]));
    h.step();
    h.drag_at(at(points[0]));
    h.step();
    for p in &points[1..] {
        h.hover_at(at(*p));
        h.step();
    }
    h.drop_at(at(points[points.len() - 1]));
    h.step();
}

#[test]
fn a_drawn_digit_is_classified_and_shown_in_every_view_while_training_runs() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Draw a digit").click();
    wait_for(&mut h, "the canvas", |h| has_label(h, "Drawing canvas"));
    h.get_by_label("Run").click();
    wait_for(&mut h, "training", |h| step(h) >= 1);
    // A "7": a bar across the top, then down to the bottom left.
    draw_on_canvas(&mut h, &[(0.25, 0.2), (0.5, 0.2), (0.75, 0.2), (0.6, 0.5), (0.45, 0.8)]);
    wait_for(&mut h, "the network's answer", |h| has_text_containing(h, "The network says"));
    let first = h.state().shown_probe().expect("the drawing is shown").step;
    assert!(has_text_containing(&h, "Showing your drawing"), "the digit views say what they show");
    assert!(has_label(&h, "Your drawing"), "the outputs panel names it");
    let p = h.state().shown_probe().unwrap();
    assert!(p.sample.input.iter().filter(|v| **v > 0.5).count() > 20, "ink reached the network");
    // While training goes on, the drawing is classified again by the newer weights.
    wait_for(&mut h, "a newer answer", |h| h.state().shown_probe().is_some_and(|p| p.step > first));
    h.get_by_label("Pause").click();
    wait_for(&mut h, "paused", |h| has_label(h, "Run"));
    h.get_by_label("Back to the batch").click();
    wait_for(&mut h, "the batch digit again", |h| h.state().shown_probe().is_none());
}

#[test]
fn the_evaluation_tab_evaluates_and_a_mistake_clicked_is_shown_everywhere() {
    let mut h = harness_with(tiny());
    started(&mut h);
    h.get_by_label("Evaluation").click();
    wait_for(&mut h, "the evaluation view", |h| has_label(h, cnn_stepper::ui::tabs::evaluation::EVALUATE_LABEL));
    h.get_by_label(cnn_stepper::ui::tabs::evaluation::EVALUATE_LABEL).click();
    wait_for(&mut h, "the result", |h| h.state().teaching().evaluation.is_some());
    let result = h.state().teaching().evaluation.clone().unwrap();
    assert_eq!(result.count, 4);
    // Four blank images labelled 0–3 get one answer: three of them are mistakes.
    assert_eq!(result.misclassified.len(), 3);
    let first = &result.misclassified[0];
    wait_for(&mut h, "the gallery", |h| has_text_containing(h, &format!("test image {}:", first.index)));
    let item = format!("test image {}:", first.index);
    h.get_by_label_contains(&item).scroll_to_me();
    wait_for(&mut h, "the digit to scroll into view", |h| h.get_by_label_contains(&item).rect().bottom() < 780.0);
    h.get_by_label_contains(&item).click();
    wait_for(&mut h, "the test image in the views", |h| {
        h.state().shown_probe().is_some_and(|p| p.image == cnn_stepper::trainer::ImageId::Test(first.index))
    });
    assert!(has_label(&h, &format!("Test image {}", first.index)), "the outputs panel names it");
}

/// Resident memory of this process in kB, from /proc (Linux).
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Memory of the window's own state (no renderer: egui_kittest) over a long Run at ~30 frames
/// a second, to tell growth in the app from growth in a software renderer.
/// `ENDURANCE_SECS` (default 300) sets the length.
/// Run: `cargo test --release --test ui -- --ignored --nocapture window_state_memory`
#[test]
#[ignore = "a measurement of minutes; run by hand"]
fn window_state_memory_over_a_long_run() {
    let secs: u64 = std::env::var("ENDURANCE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Run").click();
    let start = std::time::Instant::now();
    let mut next_report = 0;
    while start.elapsed().as_secs() < secs {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(33));
        let t = start.elapsed().as_secs();
        if t >= next_report {
            println!("{t:>5} s  step {:>6}  VmRSS {:>7.1} MB", step(&h), rss_kb() as f64 / 1024.0);
            next_report += 30;
        }
    }
}
