//! The colour-scale and colour-map selectors and the in-place explanations, driven through the
//! real window like `app.rs`: egui_kittest clicks and hovers while the worker trains.
//!
//! Every check polls: frames run until the expected text shows up, for at most [`TIMEOUT`].

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::embedded;
use cnn_stepper::engine::{ConvEngine, Phase, Preset};
use cnn_stepper::trainer::Session;
use cnn_stepper::ui::ViewState;
use cnn_stepper::ui::windows::help::{HelpTopic, help_ui, last_topic};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::{harness, has_text_containing, wait_for};

fn after_forward_conv1() -> Harness<'static, CnnApp> {
    let mut h = harness();
    wait_for(&mut h, "the first snapshot", |h| h.state().snapshot().is_some());
    h.get_by_label("Step phase").click();
    wait_for(&mut h, "conv1's legend", |h| has_text_containing(h, "one scale per layer"));
    h
}

/// Opens the colour-scale menu next to the view's mode buttons.
fn open_colour_menu(h: &mut Harness<'static, CnnApp>) {
    let button = h.get_by_label("Colours");
    // In the central area, not hidden under the outputs panel to its right.
    let outputs = h.get_by_label("Outputs").rect();
    assert!(button.rect().max.x < outputs.min.x, "the selector {:?} is visible, outputs {outputs:?}", button.rect());
    button.click();
    wait_for(h, "the colour-scale menu", |h| h.query_by_label("One scale per map").is_some());
}

#[test]
fn one_scale_per_map_and_hold_show_in_the_legend() {
    let mut h = after_forward_conv1();
    assert!(!has_text_containing(&h, "one scale per map"));
    open_colour_menu(&mut h);
    h.get_by_label("One scale per map").click();
    wait_for(&mut h, "the per-map legend", |h| has_text_containing(h, "one scale per map: ±"));
    assert!(!has_text_containing(&h, "one scale per layer"), "the old caption is gone");

    h.get_by_label("One scale per layer").click();
    wait_for(&mut h, "the per-layer legend again", |h| has_text_containing(h, "one scale per layer"));
    h.get_by_label("Hold scale").click();
    wait_for(&mut h, "the held legend", |h| has_text_containing(h, "held scale ±"));
    // Held at the value it had: nothing is beyond it yet.
    assert!(has_text_containing(&h, "none beyond it"));
    h.key_press(egui::Key::Escape);
    wait_for(&mut h, "the menu to close", |h| h.query_by_label("Hold scale").is_none());
    let lit = h.get_by_label("Colours").accesskit_node().toggled();
    assert_eq!(lit, Some(egui::accesskit::Toggled::True), "the selector is lit while a scale is held");
}

#[test]
fn a_held_scale_survives_a_step_and_says_what_it_clips() {
    let mut h = after_forward_conv1();
    open_colour_menu(&mut h);
    h.get_by_label("Hold scale").click();
    wait_for(&mut h, "the held legend", |h| has_text_containing(h, "held scale ±"));
    h.key_press(egui::Key::Escape);
    h.step();
    // A whole step later conv1's maps are new numbers on the old scale: the legend still says
    // "held", and whether anything is beyond it.
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| h.state().snapshot().is_some_and(|s| s.step == 1 && !s.running));
    h.get_by_label("Step phase").click();
    wait_for(&mut h, "forward conv1 of the next batch", |h| {
        h.state().snapshot().is_some_and(|s| s.step == 1 && s.phases_done == 1)
    });
    wait_for(&mut h, "the held legend after a step", |h| {
        has_text_containing(h, "held scale ±")
            && (has_text_containing(h, "beyond it, clipped") || has_text_containing(h, "none beyond it"))
    });
}

#[test]
fn the_colour_map_selector_changes_the_legend() {
    let mut h = after_forward_conv1();
    assert!(has_text_containing(&h, "RdBu colour scale: blue is negative"));
    open_colour_menu(&mut h);
    h.get_by_label("PuOr").click();
    wait_for(&mut h, "the PuOr legend", |h| has_text_containing(h, "PuOr colour scale: purple is negative"));
    assert!(!has_text_containing(&h, "RdBu colour scale"));
    h.get_by_label("High contrast").click();
    wait_for(&mut h, "the high-contrast legend", |h| {
        has_text_containing(h, "High contrast colour scale: dark blue is negative, grey is zero")
    });
}

#[test]
fn the_filters_tab_has_the_same_selector_and_legend() {
    let mut h = after_forward_conv1();
    h.key_press(egui::Key::Num2);
    wait_for(&mut h, "the filter view", |h| has_text_containing(h, "conv1 weights"));
    open_colour_menu(&mut h);
    h.get_by_label("One scale per map").click();
    wait_for(&mut h, "per-kernel scales in the filter legend", |h| has_text_containing(h, "one scale per map: ±"));
}

#[test]
fn hovering_a_panel_heading_shows_its_explanation() {
    let mut h = harness();
    wait_for(&mut h, "the first snapshot", |h| h.state().snapshot().is_some());
    h.get_by_label("Outputs").hover();
    wait_for(&mut h, "the outputs explanation", |h| has_text_containing(h, "the push each score gets"));
    assert_eq!(last_topic(&h.ctx), Some(HelpTopic::Outputs), "the help panel follows the hovered panel");

    h.get_by_label("What is Pipeline?").hover();
    wait_for(&mut h, "the pipeline explanation", |h| {
        has_text_containing(h, "Every phase of one step, in the order the code runs them")
    });
    assert_eq!(last_topic(&h.ctx), Some(HelpTopic::Pipeline));
}

#[test]
fn hovering_a_phase_explains_it_in_the_posts_terms() {
    let mut h = harness();
    wait_for(&mut h, "the first snapshot", |h| h.state().snapshot().is_some());
    h.get_by_label("forward relu1").hover();
    wait_for(&mut h, "the phase explanation", |h| has_text_containing(h, "np.maximum(0, a1)"));
}

/// A snapshot of the post's network right after `phase` of the first step, straight from a
/// session.
fn snapshot_after(phase: Phase) -> cnn_stepper::trainer::Snapshot {
    let mut s = Session::new(
        Arc::new(embedded().expect("the embedded sample decodes")),
        1,
        Preset::Recommended,
        "post",
        ConvEngine::Fast,
    )
    .expect("a session on the embedded sample");
    let phases = s.snapshot().phases;
    assert!(phases.contains(&phase), "the post's step has {phase:?}");
    loop {
        s.step_phase(&mut |_, _| {}).expect("the phase runs");
        let snap = s.snapshot();
        if snap.last_phase() == Some(phase) {
            return snap;
        }
    }
}

#[test]
fn the_help_panel_explains_the_last_phase_and_the_chosen_panel() {
    let snap = snapshot_after(Phase::LossBackward);
    let view = ViewState::default();
    let mut h = Harness::builder()
        .with_size(egui::vec2(420.0, 900.0))
        .build_ui(move |ui| help_ui(ui, Some(&snap), &view, HelpTopic::FeatureMaps));
    h.run();
    assert!(has_text_containing(&h, "backward loss"));
    assert!(has_text_containing(&h, "dscores[range(N), y] -= 1"), "the phase's numpy note");
    // With nothing hovered yet it explains the tab in front.
    assert!(has_text_containing(&h, "The maps of the selected digit"));
    h.get_by_label("Training curves").click();
    h.run();
    assert!(has_text_containing(&h, "the loss of a uniform guess"));
    assert_eq!(last_topic(&h.ctx), Some(HelpTopic::Curves));
}
