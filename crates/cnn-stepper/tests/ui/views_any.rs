//! The views on a network other than the post's (issue 14 §4): LeNet's feature maps with the
//! layer picker, a pooled pixel in the inspector, the optimizer choice, and help texts that
//! name the layers on screen.
//!
//! Every check polls: frames run until the expected state shows up, for at most [`TIMEOUT`].

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::{ClassNames, Dataset, Splits, embedded};
use cnn_stepper::engine::{ConvEngine, OptimizerKind, Preset};
use cnn_stepper::trainer::Session;
use cnn_stepper::ui::ViewState;
use cnn_stepper::ui::support::prefs::Prefs;
use cnn_stepper::ui::windows::help::{HelpTopic, help_ui};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::{has_label, has_text_containing, is_selected, started, step, wait_for};

/// `n` blank training and test images, labelled 0 to 9 in turn: enough for a batch of 32, so
/// that settings changes are accepted.
fn blank(n: usize) -> Arc<Splits> {
    let names = ClassNames::Digits.names();
    let split =
        |n: usize| Dataset::new(vec![0; n * 28 * 28], (0..n).map(|i| (i % 10) as u8).collect(), 28, 28, names.clone());
    Arc::new(Splits {
        train: split(n).expect("valid"),
        test: split(n).expect("valid"),
        source: "blank".into(),
        notes: Vec::new(),
    })
}

/// The app on 64 blank images with `model`, after one whole step, on the feature maps.
fn after_a_step_with(model: &str) -> Harness<'static, CnnApp> {
    let prefs = Prefs { model: Some(model.to_string()), ..Prefs::default() };
    let data = blank(64);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| CnnApp::with_prefs(&cc.egui_ctx, data, 1, prefs));
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "a first step", |h| step(h) == 1);
    h.key_press(egui::Key::Num1);
    wait_for(&mut h, "LeNet's last maps", |h| has_text_containing(h, "pool2 · max of each 2×2"));
    h
}

#[test]
fn lenets_feature_maps_show_every_stage_with_its_shape_and_the_picker_shows_one_layer_alone() {
    let mut h = after_a_step_with("lenet5");
    for heading in ["conv1 · before ReLU", "relu1 · after ReLU", "pool1 · max of each 2×2", "conv2 · before ReLU"]
    {
        assert!(has_label(&h, heading), "{heading}");
    }
    assert!(has_label(&h, "6 maps · 14×14") && has_label(&h, "16 maps · 5×5"), "the headers say the shapes");
    assert!(is_selected(&h, "all"), "every layer at first");
    h.get_by_label("pool1").click();
    wait_for(&mut h, "pool1 alone", |h| !has_label(h, "conv1 · before ReLU"));
    assert!(has_label(&h, "pool1 · max of each 2×2"));
    assert_eq!(h.state().view().picked_layers("lenet5"), Some(&["pool1".to_string()][..]));
    h.get_by_label("all").click();
    wait_for(&mut h, "every layer again", |h| has_label(h, "conv1 · before ReLU"));
    assert!(h.state().view().picked_layers("lenet5").is_none());
}

/// Clicks at `pos` (a pixel of a map: a node's centre may fall in the gap between maps).
fn click_at(h: &mut Harness<'static, CnnApp>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.step();
    h.drag_at(pos);
    h.step();
    h.drop_at(pos);
    h.step();
}

#[test]
fn a_pooled_pixel_opens_the_inspector_on_its_window() {
    let mut h = after_a_step_with("lenet5");
    let rect = h.get_by_label("pool1 maps").rect();
    click_at(&mut h, rect.min + egui::vec2(6.0, 6.0));
    wait_for(&mut h, "the inspector", |h| h.state().inspected().is_some());
    let at = h.state().inspected().unwrap();
    assert_eq!((at.layer, at.channel), (2, 0), "pool1's first map");
    let (y, x) = (at.y, at.x);
    let window = format!("pool1[0,{y},{x}] = max of relu1[0, {}..{}, {}..{}]", 2 * y, 2 * y + 1, 2 * x, 2 * x + 1);
    wait_for(&mut h, "the pool's window", |h| has_text_containing(h, &window));
    assert!(has_text_containing(&h, "the largest, "), "the winner is named");
    assert!(has_text_containing(&h, "all of it goes back to the input that won"), "a whole step ran");
}

#[test]
fn with_adam_the_momentum_field_is_off_and_the_choice_applies_from_the_next_batch() {
    let mut h = after_a_step_with("lenet5");
    assert!(is_selected(&h, "SGD"));
    h.get_by_label("Adam").click();
    // Between two steps it is in force at once; within one, it waits for the next batch.
    wait_for(&mut h, "Adam chosen", |h| {
        h.state().snapshot().is_some_and(|s| s.pending.unwrap_or(s.settings).hyper.optimizer == OptimizerKind::Adam)
    });
    assert!(h.query_all_by_label("Momentum").any(|n| n.accesskit_node().is_disabled()), "momentum is off");
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "the next batch", |h| {
        h.state().snapshot().is_some_and(|s| s.step == 2 && s.settings.hyper.optimizer == OptimizerKind::Adam)
    });
}

#[test]
fn the_help_panel_names_the_layers_of_the_network_on_screen() {
    let mut s = Session::new(
        Arc::new(embedded().expect("the embedded sample decodes")),
        1,
        Preset::Recommended,
        "lenet5",
        ConvEngine::Fast,
    )
    .expect("a LeNet session on the embedded sample");
    s.step_phase(&mut |_, _| {}).expect("forward conv1 runs");
    let snap = s.snapshot();
    let view = ViewState::default();
    let mut h = Harness::builder()
        .with_size(egui::vec2(420.0, 900.0))
        .build_ui(move |ui| help_ui(ui, Some(&snap), &view, HelpTopic::FeatureMaps));
    h.run();
    assert!(has_text_containing(&h, "pool1 6×14×14"), "the maps of this network");
    assert!(!has_text_containing(&h, "conv1 has 16 maps"), "not the post's");
}
