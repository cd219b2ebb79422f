//! Helpers for the window tests: build the app in an egui_kittest harness and wait, frame by
//! frame, for the asynchronous worker's answer to show up.
//!
//! Every check polls: it runs frames until the expected state shows up, for at most
//! [`TIMEOUT`]. The sleeps inside the loop only yield to the worker; they never stand in for an
//! assertion.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test file uses a subset.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::{ClassNames, Dataset, Splits, embedded};
use cnn_stepper::trainer::Snapshot;
use cnn_stepper::ui::support::prefs::Prefs;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// How long any one expectation may take to come true.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The app on `data` in a 1280×800 window, seed 1.
pub fn harness_with(data: Arc<Splits>) -> Harness<'static, CnnApp> {
    Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_eframe(move |cc| CnnApp::new(&cc.egui_ctx, data, 1))
}

/// The app on the embedded sample.
pub fn harness() -> Harness<'static, CnnApp> {
    harness_with(Arc::new(embedded().expect("the embedded sample decodes")))
}

/// The app on the embedded sample with the network `model` (a name or a line), as `--model`
/// or the remembered network opens it.
pub fn harness_with_model(model: &str) -> Harness<'static, CnnApp> {
    let data = Arc::new(embedded().expect("the embedded sample decodes"));
    let prefs = Prefs { model: Some(model.to_owned()), ..Prefs::default() };
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| CnnApp::with_prefs(&cc.egui_ctx, data, 1, prefs))
}

/// The post's network made small (3 and 4 filters of 3×3, 12 hidden units), for tests that
/// need a real session but not the post's sizes.
pub const SMALL_POST: &str = "conv(3,3,pad=1), relu, conv(4,3,pad=1), flatten, fc(12), relu, fc(10)";

/// The position in the line of the layer a student calls `name` (`conv2`, `pool1`).
pub fn layer_index(snap: &Snapshot, name: &str) -> usize {
    snap.model.plan.layer_named(name).unwrap_or_else(|| panic!("the network has no {name}")).index
}

/// How many phases of the step have run, in the snapshot shown.
pub fn phases_done(h: &Harness<'static, CnnApp>) -> usize {
    h.state().snapshot().map_or(0, |s| s.phases_done)
}

/// Runs frames until `done` holds, failing with `what` after [`TIMEOUT`].
pub fn wait_for<'a, S>(h: &mut Harness<'a, S>, what: &str, done: impl Fn(&Harness<'a, S>) -> bool) {
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

/// Runs a few frames so that anything wrongly sent would have had time to arrive.
pub fn settle(h: &mut Harness<'static, CnnApp>) {
    for _ in 0..20 {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A node labelled exactly `label` exists.
pub fn has_label(h: &Harness<'static, CnnApp>, label: &str) -> bool {
    h.query_by_label(label).is_some()
}

/// Some node's label contains `text` (several may: the two legends of a view, say).
pub fn has_text_containing<S>(h: &Harness<'_, S>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// Completed training steps shown.
pub fn step(h: &Harness<'static, CnnApp>) -> u64 {
    h.state().snapshot().map_or(0, |s| s.step)
}

/// Waits for the worker's first snapshot.
pub fn started(h: &mut Harness<'static, CnnApp>) {
    wait_for(h, "the first snapshot", |h| h.state().snapshot().is_some());
}

/// True when the (selectable) button `label` is on: egui reports that as "toggled".
pub fn is_selected(h: &Harness<'static, CnnApp>, label: &str) -> bool {
    h.query_all_by_label(label).any(|n| n.accesskit_node().toggled() == Some(egui::accesskit::Toggled::True))
}

/// Replaces the text of the field labelled `label` with `text` (click, select all, type).
pub fn fill(h: &mut Harness<'static, CnnApp>, label: &str, text: &str) {
    h.get_by_label(label).click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

/// Four blank training and test images, labelled 0 to 3.
pub fn tiny() -> Arc<Splits> {
    let names = ClassNames::Digits.names();
    let split = |n: usize| Dataset::new(vec![0; n * 28 * 28], (0..n as u8).collect(), 28, 28, names.clone());
    Arc::new(Splits {
        train: split(4).expect("valid"),
        test: split(4).expect("valid"),
        source: "tiny".into(),
        notes: Vec::new(),
    })
}
