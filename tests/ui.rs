//! The window, driven like a user would: egui_kittest clicks and types through the
//! accessibility tree while the real worker thread trains the real network.
//!
//! The worker is asynchronous, so every check polls: it runs frames until the expected state
//! shows up, for at most [`TIMEOUT`]. The sleeps inside the loop only yield to the worker; they
//! never stand in for an assertion.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cnn_stepper::app::{CnnApp, GuiOptions, load_data};
use cnn_stepper::data::{ClassNames, Dataset, Mnist, embedded};
use cnn_stepper::ui::banner::Severity;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// How long any one expectation may take to come true.
const TIMEOUT: Duration = Duration::from_secs(30);

fn harness_with(data: Arc<Mnist>) -> Harness<'static, CnnApp> {
    Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_eframe(move |cc| CnnApp::new(&cc.egui_ctx, data, 1))
}

fn harness() -> Harness<'static, CnnApp> {
    harness_with(Arc::new(embedded().expect("the embedded sample decodes")))
}

/// Runs frames until `done` holds, failing with `what` after [`TIMEOUT`].
fn wait_for(h: &mut Harness<'static, CnnApp>, what: &str, done: impl Fn(&Harness<'static, CnnApp>) -> bool) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(start.elapsed() < TIMEOUT, "timed out after {TIMEOUT:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn has_label(h: &Harness<'static, CnnApp>, label: &str) -> bool {
    h.query_by_label(label).is_some()
}

fn has_text_containing(h: &Harness<'static, CnnApp>, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

fn step(h: &Harness<'static, CnnApp>) -> u64 {
    h.state().snapshot().map_or(0, |s| s.step)
}

fn started(h: &mut Harness<'static, CnnApp>) {
    wait_for(h, "the first snapshot", |h| h.state().snapshot().is_some());
}

/// True when the (selectable) button `label` is on: egui reports that as "toggled".
fn is_selected(h: &Harness<'static, CnnApp>, label: &str) -> bool {
    h.query_all_by_label(label).any(|n| n.accesskit_node().toggled() == Some(egui::accesskit::Toggled::True))
}

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
    let field = h.get_by_label("Learning rate");
    field.click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label("Learning rate").type_text("0");
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the refusal message", |h| has_text_containing(h, "Refused: learning rate = 0"));
    // Give the worker a chance to answer anything it was (wrongly) sent.
    for _ in 0..20 {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = h.state().snapshot().map(|s| (s.settings, s.pending));
    assert_eq!(after, before.map(|s| (s, None)), "nothing reached the trainer");
}

#[test]
fn a_valid_learning_rate_applies_at_the_next_batch() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Step phase").click();
    wait_for(&mut h, "a half-done step", |h| is_selected(h, "forward conv1"));
    h.get_by_label("Learning rate").click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label("Learning rate").type_text("0.02");
    h.step();
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
    let options = GuiOptions { data: Some("/no/such/folder".into()), classes: Some(ClassNames::Digits), seed: 1 };
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

/// Four blank training and test images, labelled 0 to 3.
fn tiny() -> Arc<Mnist> {
    let names = ClassNames::Digits.names();
    let split = |n: usize| Dataset::new(vec![0; n * 28 * 28], (0..n as u8).collect(), 28, 28, names.clone());
    Arc::new(Mnist { train: split(4).expect("valid"), test: split(4).expect("valid"), source: "tiny".into() })
}

#[test]
fn a_setting_the_trainer_rejects_shows_as_a_banner() {
    // A batch of 8 passes Settings::validate but not a session with four training images.
    let mut h = harness_with(tiny());
    started(&mut h);
    h.get_by_label("Batch size").click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label("Batch size").type_text("8");
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the error banner", |h| has_text_containing(h, "larger than the training set"));
    assert!(h.state().banners().iter().any(|b| b.severity == Severity::Error));
}

#[test]
fn a_backward_phase_shows_gradient_maps() {
    let mut h = harness();
    started(&mut h);
    // 7 forward phases (conv1 … loss; the post has no ReLU after conv2), then backward loss,
    // fc2, relu2 and fc1, which computes ∂L/∂conv2.
    for i in 1..=11 {
        h.get_by_label("Step phase").click();
        wait_for(&mut h, "the next phase", |h| h.state().snapshot().is_some_and(|s| s.phases_done == i));
    }
    wait_for(&mut h, "∂L/∂conv2 maps", |h| has_label(h, "∂L/∂conv2"));
    assert!(is_selected(&h, "backward fc1"));
    let row = h.get_by_label("backward conv2");
    row.scroll_to_me();
    h.step();
    h.get_by_label("backward conv2").click();
    wait_for(&mut h, "the filter view with gradients", |h| has_text_containing(h, "conv2 gradients"));
}

#[test]
fn evaluate_reports_the_test_accuracy() {
    let mut h = harness_with(tiny());
    started(&mut h);
    h.get_by_label("Evaluate").click();
    wait_for(&mut h, "the evaluation result", |h| has_text_containing(h, "full test set:"));
    assert_eq!(h.state().curves().last_eval.as_ref().map(|e| e.count), Some(4));
}

#[test]
fn reset_starts_again_with_the_seed_typed() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| has_label(h, "Step 1"));
    h.get_by_label("Seed").click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label("Seed").type_text("7");
    h.step();
    h.get_by_label("Reset").click();
    wait_for(&mut h, "a fresh run with seed 7", |h| h.state().snapshot().is_some_and(|s| s.seed == 7 && s.step == 0));
    assert!(has_label(&h, "Step 0"));
    assert!(h.state().curves().loss.is_empty(), "the old run's curve is gone");
}
