//! In front of a class (issue 12): step back with the Left arrow, the update phase made
//! visible, "Pausing…" until the worker confirms, the learning-rate schedule on the embedded
//! sample, the diverged point kept on the loss curve, and the post preset's stuck loss
//! explained above the curves.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cnn_stepper::engine::{ConvEngine, Phase, Preset};
use cnn_stepper::trainer::{Session, Snapshot};
use cnn_stepper::ui::panels::controls::{Availability, ControlsState, controls_ui};
use cnn_stepper::ui::tabs::{feature_maps, filters};
use cnn_stepper::ui::{FilterMode, MapMode};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::*;

fn press(h: &mut Harness<'static, cnn_stepper::app::CnnApp>, key: egui::Key, then: usize) {
    h.key_press(key);
    wait_for(h, &format!("{then} phases done"), |h| phases_done(h) == then && !h.state().evaluating());
    settle(h);
}

#[test]
fn left_arrow_steps_back_to_the_phase_and_maps_of_one_phase_earlier() {
    let mut h = harness();
    started(&mut h);
    press(&mut h, egui::Key::ArrowRight, 1);
    press(&mut h, egui::Key::ArrowRight, 2);
    let after_two: Snapshot = h.state().snapshot().unwrap().clone();
    press(&mut h, egui::Key::ArrowRight, 3);
    let snap = h.state().snapshot().unwrap();
    assert!(!snap.sample.output(layer_index(snap, "conv2")).is_empty(), "the third phase computed conv2");
    press(&mut h, egui::Key::ArrowLeft, 2);
    let back = h.state().snapshot().unwrap();
    assert_eq!(back.last_phase(), Some(Phase::Forward(layer_index(back, "relu1"))));
    assert_eq!(back.sample, after_two.sample, "the maps are those after two phases, bit for bit");
    assert_eq!(back.batch, after_two.batch);
    assert!(is_selected(&h, "forward relu1") && !is_selected(&h, "forward conv2"));
    assert!(has_text_containing(&h, "computed in forward conv2"), "conv2's maps are gone again");
}

#[test]
fn step_back_is_disabled_at_the_start_of_a_batch_and_says_why() {
    let mut h = harness();
    started(&mut h);
    let button = h.get_by_label("◀ Step back");
    assert!(button.accesskit_node().is_disabled(), "nothing to go back to");
    h.key_press(egui::Key::ArrowLeft);
    settle(&mut h);
    assert!(h.state().banners().is_empty(), "the key does nothing rather than fail");
    h.get_by_label("◀ Step back").hover();
    wait_for(&mut h, "the reason", |h| has_text_containing(h, "Cannot step back: no phase of a batch has run yet"));
    press(&mut h, egui::Key::ArrowRight, 1);
    assert!(!h.get_by_label("◀ Step back").accesskit_node().is_disabled());
    h.get_by_label("◀ Step back").click();
    wait_for(&mut h, "the step back", |h| {
        phases_done(h) == 0 && h.state().snapshot().is_some_and(|s| s.step_back_refusal.is_some())
    });
    settle(&mut h);
    assert!(h.get_by_label("◀ Step back").accesskit_node().is_disabled());
    h.get_by_label("◀ Step back").hover();
    wait_for(&mut h, "the reason", |h| has_text_containing(h, "at the start of the batch"));
}

#[test]
fn following_the_phase_the_update_shows_the_filters_change_and_the_step_size() {
    let mut h = harness();
    started(&mut h);
    assert_eq!((h.state().tab(), h.state().view().map_mode), (feature_maps::ID, MapMode::Auto));
    let len = h.state().snapshot().unwrap().phases.len();
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "the update", |h| phases_done(h) == len);
    settle(&mut h);
    assert_eq!(h.state().tab(), feature_maps::ID, "a whole batch shows its maps and predictions");
    // Back before the update, and one phase on: the update itself.
    press(&mut h, egui::Key::ArrowLeft, len - 1);
    assert_eq!(step(&h), 0, "the step is undone");
    press(&mut h, egui::Key::ArrowRight, len);
    assert_eq!(step(&h), 1);
    assert_eq!(h.state().tab(), filters::ID, "the update is shown on the filters");
    assert_eq!(h.state().view().filter_mode, FilterMode::Delta);
    assert!(has_text_containing(&h, "W ← W + ΔW"));
    for text in ["‖ΔW‖ / ‖W‖", "lr·‖∂L/∂W‖", "conv1.weight", "fc1.weight"] {
        assert!(has_text_containing(&h, text), "{text}");
    }
    assert!(has_text_containing(&h, "conv2 last update"), "the banks show ΔW");
    // The next phase is a forward one again: back to the maps.
    press(&mut h, egui::Key::ArrowRight, 1);
    assert_eq!(h.state().tab(), feature_maps::ID);
    assert_eq!(h.state().view().filter_mode, FilterMode::Weights, "the filters' own mode is back");
}

/// A snapshot of the first step, running.
fn running_snapshot() -> Snapshot {
    let data = std::sync::Arc::new(cnn_stepper::data::embedded().unwrap());
    let mut s = Session::new(data, 1, Preset::Recommended, SMALL_POST, ConvEngine::Naive).unwrap();
    s.step_phase(&mut |_, _| {}).unwrap();
    let mut snap = s.snapshot();
    snap.running = true;
    snap
}

#[test]
fn after_pause_is_clicked_the_button_says_pausing_until_the_worker_confirms() {
    let snap = running_snapshot();
    let mut state = ControlsState::default();
    let pausing = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = pausing.clone();
    let mut h = Harness::builder().with_size(egui::vec2(1280.0, 120.0)).build_ui(move |ui| {
        let avail = Availability { pausing: flag.get(), ..Default::default() };
        let _ = controls_ui(ui, &mut state, Some(&snap), &avail);
    });
    h.run();
    assert!(has_label_of(&h, "Pause") && !has_label_of(&h, "Pausing…"));
    pausing.set(true);
    h.run();
    let button = h.get_by_label("Pausing…");
    assert!(button.accesskit_node().is_disabled(), "nothing to click until the worker confirms");
}

fn has_label_of<S>(h: &Harness<'_, S>, label: &str) -> bool {
    h.query_by_label(label).is_some()
}

#[test]
fn the_app_shows_pausing_from_the_click_until_a_paused_snapshot_arrives() {
    // Naive batches of 256: phases of seconds, so the click lands while one runs.
    let mut h = harness();
    started(&mut h);
    h.get_by_label("naive").click();
    fill(&mut h, "Batch size", "256");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the settings", |h| {
        h.state().snapshot().is_some_and(|s| s.settings.batch_size == 256 && s.settings.engine == ConvEngine::Naive)
    });
    h.get_by_label("Run").click();
    wait_for(&mut h, "a long phase in progress", |h| has_text_containing(h, "forward conv1") && has_label(h, "Pause"));
    h.get_by_label("Pause").click();
    h.step(); // the click is read and the command sent after the frame is drawn
    h.step();
    // The worker may already have answered; either way the button never says Pause again.
    assert!(has_label(&h, "Pausing…") || has_label(&h, "Run"), "Pause was acknowledged");
    wait_for(&mut h, "the pause", |h| has_label(h, "Run") && h.state().snapshot().is_some_and(|s| !s.running));
    let s = h.state().snapshot().unwrap();
    assert_eq!(s.step, 0, "paused inside the first batch");
}

#[test]
fn on_the_embedded_sample_two_passes_keep_the_learning_rate_and_the_readout_says_where_it_is() {
    let mut h = harness();
    started(&mut h);
    let readout: Vec<String> =
        h.query_all_by_label_contains("lr ").filter_map(|n| n.accesskit_node().label()).collect();
    assert!(has_text_containing(&h, "×0.3 at 60,000 images; 0 seen"), "the schedule from the start: {readout:?}");
    // Two passes over the sample's 10,000 images: 626 steps of 32, one "Run epoch" each.
    for pass in 1..=2u64 {
        h.get_by_label("Run epoch").click();
        let deadline = Instant::now() + Duration::from_secs(600);
        while !h.state().snapshot().is_some_and(|s| !s.running && s.epoch == pass) {
            assert!(Instant::now() < deadline, "pass {pass} did not end");
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let s = h.state().snapshot().unwrap();
    assert_eq!(s.step, 626);
    assert_eq!(s.effective_lr, Preset::Recommended.hyper().lr, "not decayed yet: 20,000 of 60,000 images");
    settle(&mut h);
    assert!(has_text_containing(&h, "×0.3 at 60,000 images; 20,000 seen"));
}

#[test]
fn a_diverged_loss_stays_marked_on_the_curve_after_the_rewind() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "a first step", |h| step(h) == 1);
    fill(&mut h, "Learning rate", "10");
    fill(&mut h, "Momentum", "0.99");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the settings", |h| h.state().snapshot().is_some_and(|s| s.settings.hyper.lr == 10.0));
    h.get_by_label("Run").click();
    wait_for(&mut h, "the divergence", |h| h.state().banners().iter().any(|b| b.message.contains("diverged")));
    wait_for(&mut h, "the rewind", |h| h.state().snapshot().is_some_and(|s| !s.running));
    let marks = &h.state().curves().divergences;
    assert_eq!(marks.len(), 1, "{marks:?}");
    let shown = h.state().snapshot().unwrap().step;
    assert!(marks[0].step > shown, "the mark is after the step training went back to");
    assert!(h.state().curves().loss.last().is_some_and(|p| (p.x as u64) <= shown), "the curve was rewound");
    // The same batch retried blows up the same way: one mark per blow-up, never a pile of the
    // same one.
    // Training went back to before the blow-up: stepping on replays the same batches with the
    // same weights, so the same step blows up with the same loss. Every click moves the step
    // (on, or back by the rewind).
    let mut again = false;
    for _ in 0..8 {
        let at = step(&h);
        h.get_by_label("Step batch").click();
        wait_for(&mut h, "the next batch", |h| step(h) != at);
        if h.state().snapshot().is_some_and(|s| s.diverged.is_some()) {
            again = true;
            break;
        }
    }
    assert!(again, "the replayed batches diverged again");
    let marks = &h.state().curves().divergences;
    assert_eq!(marks.len(), 1, "the same blow-up is marked once: {marks:?}");
    // A new run forgets it.
    h.get_by_label("Reset").click();
    wait_for(&mut h, "the reset", |h| step(h) == 0);
    assert!(h.state().curves().divergences.is_empty());
}

#[test]
fn with_the_post_preset_the_stuck_loss_is_explained_above_the_curves() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("post").click();
    wait_for(&mut h, "the post preset", |h| h.state().snapshot().is_some_and(|s| s.preset == Preset::Post));
    for _ in 0..21 {
        let before = step(&h);
        h.get_by_label("Step batch").click();
        wait_for(&mut h, "a step", |h| step(h) == before + 1);
    }
    settle(&mut h);
    assert!(has_text_containing(&h, "Stuck at ln 10"));
    assert!(has_text_containing(&h, "sat at ln 10 = 2.303 for the last 21 steps"));
    assert!(has_text_containing(&h, "the gradient reaching conv1 is"), "with the numbers");
    // The feature maps' scale is tiny, and the legend says so in large print.
    h.key_press(egui::Key::Num1);
    settle(&mut h);
    assert!(has_text_containing(&h, "tiny: ±"));
}
