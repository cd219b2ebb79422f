//! The Network editor inside the window: opened from the menu bar (or N), Apply starts a new run
//! with the chosen network, and a run with unsaved steps is not thrown away without asking.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use cnn_stepper::app::CnnApp;
use cnn_stepper::ui::windows::network::{APPLY_ANYWAY_LABEL, APPLY_LABEL, LINE_LABEL};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::kittest::*;

fn model_name(h: &Harness<'static, CnnApp>) -> Option<String> {
    h.state().snapshot().and_then(|s| s.model.name.clone())
}

#[test]
fn lenet5_chosen_in_the_network_window_becomes_the_run_and_a_later_switch_asks_first() {
    let mut h = harness();
    started(&mut h);
    assert_eq!(model_name(&h).as_deref(), Some("post"));

    h.get_by_label("Network").click();
    settle(&mut h);
    h.get_by_label("lenet5").click();
    settle(&mut h);
    h.get_by_label(APPLY_LABEL).click();
    wait_for(&mut h, "the LeNet-5 run", |h| model_name(h).as_deref() == Some("lenet5"));
    let snap = h.state().snapshot().unwrap();
    assert_eq!((snap.step, snap.model.plan.total_params()), (0, 61_706), "a new run of LeNet-5");

    // One training step later the run has something to lose: switching asks, Cancel keeps it.
    // Shift+→: the window lies over the Step batch button.
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowRight);
    wait_for(&mut h, "a step", |h| step(h) == 1);
    // (The preset bar has a "post" button too: the line field is unambiguous.)
    fill(&mut h, LINE_LABEL, "post");
    settle(&mut h);
    h.get_by_label(APPLY_LABEL).click();
    settle(&mut h);
    assert!(has_text_containing(&h, "Step 1 of the current run is not saved"), "it asks first");
    assert_eq!(model_name(&h).as_deref(), Some("lenet5"), "nothing changed before the answer");
    h.get_by_label(APPLY_ANYWAY_LABEL).click();
    wait_for(&mut h, "the post's run", |h| model_name(h).as_deref() == Some("post"));
    assert_eq!(step(&h), 0);

    // N closes the window (and opens it again).
    h.key_press(egui::Key::N);
    settle(&mut h);
    assert!(h.query_by_label(APPLY_LABEL).is_none(), "N hides the editor");
}
