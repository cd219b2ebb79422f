//! The tab row and the panels around it, driven through the real window (or, for the panels
//! fed a made-up snapshot, in a minimal host): every tab of the list is reached by its title
//! and by its key, tied scores are read as the evaluation reads them, and the batch-size limit
//! the controls state is the trainer's.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use cnn_stepper::data::embedded;
use cnn_stepper::engine::{ConvEngine, Preset, argmax};
use cnn_stepper::trainer::{Session, Snapshot};
use cnn_stepper::ui::ViewState;
use cnn_stepper::ui::panels::batch::batch_ui;
use cnn_stepper::ui::panels::outputs::{Subject, outputs_ui};
use cnn_stepper::ui::support::textures::TileSet;
use cnn_stepper::ui::tabs::all_tabs;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::*;

#[test]
fn each_key_brings_its_tab_to_the_front_in_list_order() {
    let mut h = harness();
    started(&mut h);
    let tabs = all_tabs();
    // Backwards, so that no key finds its tab already in front.
    for tab in tabs.iter().rev() {
        let key = tab.key().expect("every tab has a key");
        h.key_press(key);
        wait_for(&mut h, tab.name(), |h| h.state().tab() == tab.id());
        assert!(is_selected(&h, tab.name()), "the title of {} is lit", tab.name());
    }
}

#[test]
fn clicking_a_title_brings_its_tab_to_the_front() {
    let mut h = harness();
    started(&mut h);
    for tab in all_tabs().iter().skip(1) {
        h.get_by_label(tab.name()).click();
        wait_for(&mut h, tab.name(), |h| h.state().tab() == tab.id());
    }
}

#[test]
fn a_number_typed_into_a_field_does_not_switch_tabs() {
    let mut h = harness();
    started(&mut h);
    let first = h.state().tab();
    h.get_by_label("Seed").click();
    h.step();
    h.key_press(egui::Key::Num3);
    settle(&mut h);
    assert_eq!(h.state().tab(), first);
}

/// A snapshot of a small network after one step, with digit 0's probabilities replaced by
/// `probs` and its label by `label`.
fn snapshot_with(probs: &[f32], label: usize) -> Snapshot {
    let data = Arc::new(embedded().expect("the embedded sample decodes"));
    let mut s = Session::new(data, 1, Preset::Post, SMALL_POST, ConvEngine::Fast).expect("a session");
    s.step_batch(&mut |_, _| {}).expect("a step");
    let mut snap = s.snapshot();
    let classes = snap.model.plan.classes;
    assert_eq!(probs.len(), classes);
    snap.sample.index = 0;
    snap.sample.probs = probs.to_vec();
    snap.batch.probs[..classes].copy_from_slice(probs);
    snap.batch.labels[0] = label;
    snap
}

#[test]
fn with_tied_scores_the_panels_show_the_class_the_evaluation_counts() {
    // Classes 1 and 3 tie, as the post's preset's ~1e-12 scores often do.
    let probs = [0.05, 0.3, 0.05, 0.3, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05];
    let counted = argmax(&probs);
    assert_eq!(counted, 1, "the evaluation counts the first maximum");
    let snap = snapshot_with(&probs, counted);
    let mut h = Harness::builder().with_size(egui::vec2(900.0, 700.0)).build_ui(move |ui| {
        let (digits, view) = (TileSet::new("digits"), ViewState::default());
        outputs_ui(ui, Some(&snap), &digits, &view, false, &Subject::Batch);
        batch_ui(ui, Some(&snap), &digits);
    });
    h.run();
    assert!(h.query_by_label("predicted: 1 (30.0%)").is_some(), "the outputs panel names the first maximum");
    let digit = h.get_by_label_contains("digit 1: label").accesskit_node().label().unwrap_or_default();
    assert_eq!(digit, "digit 1: label 1, predicted 1 (30.0%)", "the batch counts it correct, in the same rounding");
}

#[test]
fn the_batch_size_tooltip_states_the_trainers_limit() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Batch size").hover();
    let limit = format!("Images per step (1 to {})", cnn_stepper::engine::MAX_BATCH);
    wait_for(&mut h, "the tooltip", |h| has_text_containing(h, &limit));
}
