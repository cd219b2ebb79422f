//! In front of a class: projector mode at the usual projector resolutions, readouts that agree
//! with the data (plot hover, refused values), and the list of keys.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::embedded;
use cnn_stepper::ui::support::prefs::Prefs;
use cnn_stepper::ui::windows::keys::{SHORTCUTS, key_text};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::*;

/// The app in a `w`×`h`-pixel window with projector mode on, as a teacher would start it.
fn projector_harness(w: f32, h: f32) -> Harness<'static, CnnApp> {
    let data = Arc::new(embedded().expect("the embedded sample decodes"));
    let prefs = Prefs { projector: true, ..Prefs::default() };
    Harness::builder()
        .with_size(egui::vec2(w, h))
        .build_eframe(move |cc| CnnApp::with_prefs(&cc.egui_ctx, data, 1, prefs))
}

/// The node's rectangle in physical pixels, as the projector shows it.
fn pixels(h: &Harness<'static, CnnApp>, label: &str) -> egui::Rect {
    let b = h.get_by_label(label).accesskit_node().bounding_box().expect("every egui node has a rectangle");
    egui::Rect::from_min_max(egui::pos2(b.x0 as f32, b.y0 as f32), egui::pos2(b.x1 as f32, b.y1 as f32))
}

/// Side in pixels of one map of a 4-column grid (conv1's 16 maps) `width` pixels wide, at the
/// window's zoom: the grid is 4 maps and 3 gaps of 3 points.
fn map_side(h: &Harness<'static, CnnApp>, width: f32) -> f32 {
    let ppp = h.ctx.pixels_per_point();
    (width - 3.0 * 3.0 * ppp) / 4.0
}

/// Without projector mode, a conv1 map at 1280×800 is about 42 pixels; in projector mode the
/// maps must grow with the text (whose zoom is about 1.1 at 1280×800 and 1.5 at 1920×1080),
/// and the curves must stay in the window.
#[test]
fn in_projector_mode_the_maps_grow_with_the_text_and_the_curves_stay_in_the_window() {
    for (w, h_px, min_side) in [(1280.0, 800.0, 46.0), (1920.0, 1080.0, 62.0)] {
        let mut h = projector_harness(w, h_px);
        started(&mut h);
        h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowRight);
        wait_for(&mut h, "step 1", |h| has_label(h, "Step 1"));
        wait_for(&mut h, "the conv1 maps", |h| h.query_by_label("conv1 maps").is_some());
        let ppp = h.ctx.pixels_per_point();
        assert!(ppp > 1.05, "{w}×{h_px}: projector mode enlarges the text (zoom {ppp})");
        let grid = pixels(&h, "conv1 maps");
        let side = map_side(&h, grid.width());
        assert!(side >= min_side, "{w}×{h_px}: a conv1 map is {side:.1} px, want at least {min_side}");
        let window = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(w, h_px));
        for plot in ["loss plot", "accuracy plot"] {
            let r = pixels(&h, plot);
            assert!(r.height() >= 50.0, "{w}×{h_px}: the {plot} is {:.0} px tall", r.height());
            assert!(window.contains_rect(r), "{w}×{h_px}: the {plot} at {r:?} leaves the window");
        }
        let heading = pixels(&h, "Training curves");
        assert!(window.contains_rect(heading), "{w}×{h_px}: the curves' heading at {heading:?}");
    }
}

#[test]
fn hovering_the_loss_plot_shows_the_nearest_step_and_loss_and_nothing_when_empty() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("loss plot").hover();
    settle(&mut h);
    assert!(!has_text_containing(&h, "loss -"), "no made-up coordinates on an empty plot");
    assert!(h.query_all_by_label_contains("\nloss ").next().is_none(), "nothing at all on an empty plot");

    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| has_label(h, "Step 1"));
    let point = h.state().curves().loss.points()[0];
    let expected = format!("step 1\nloss {:.3}", point.y);
    // The pointer moves a little so that the plot hovers anew.
    h.get_by_label("loss plot").hover();
    wait_for(&mut h, "the hover label of the only point", |h| has_text_containing(h, &expected));
}

#[test]
fn two_refused_fields_each_show_their_reason_and_the_value_in_use() {
    let mut h = harness();
    started(&mut h);
    let before = h.state().snapshot().map(|s| s.settings);
    fill(&mut h, "Learning rate", "100");
    fill(&mut h, "Batch size", "0");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "both refusals", |h| {
        has_text_containing(h, "Refused: learning rate = 100: is far too large")
            && has_text_containing(h, "Refused: batch size = 0: must be between 1 and")
    });
    assert!(has_label(&h, "(using 0.01)"), "the learning rate in use is beside its box");
    assert!(has_label(&h, "(using 32)"), "the batch size in use is beside its box");
    assert!(has_text_containing(&h, "Still in use: learning rate 0.01, batch size 32"));
    settle(&mut h);
    assert_eq!(h.state().snapshot().map(|s| (s.settings, s.pending)), before.map(|s| (s, None)));

    // Corrected, the refusals go and the value applies.
    fill(&mut h, "Learning rate", "0.02");
    fill(&mut h, "Batch size", "16");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the new settings", |h| {
        let s = h.state().snapshot().map(|s| s.pending.unwrap_or(s.settings));
        s.map(|p| (p.hyper.lr, p.batch_size)) == Some((0.02, 16))
    });
    assert!(!has_text_containing(&h, "Refused:"));
}

#[test]
fn f1_opens_the_list_of_every_key_and_f1_closes_it() {
    let mut h = harness();
    started(&mut h);
    assert!(!h.state().keys_shown());
    h.key_press(egui::Key::F1);
    wait_for(&mut h, "the keys window", |h| has_label(h, "Keyboard shortcuts") && h.state().keys_shown());
    for s in SHORTCUTS {
        let keys = key_text(s.modifiers, s.key);
        assert!(has_text_containing(&h, &keys), "{keys} ({}) is listed", s.what);
        assert!(has_text_containing(&h, s.what), "what {keys} does is listed: {}", s.what);
    }
    for (key, tab) in [("1", "Feature maps"), ("2", "Filters"), ("3", "FC1"), ("4", "Evaluation")] {
        assert!(has_label(&h, key), "key {key} is listed");
        assert!(has_label(&h, &format!("the {tab} tab")), "the {tab} tab's key is listed");
    }
    assert!(has_text_containing(&h, "Ctrl+0"), "the zoom keys too");
    h.key_press(egui::Key::F1);
    wait_for(&mut h, "the keys window to close", |h| !h.state().keys_shown());
    // ? does the same.
    h.key_press(egui::Key::Questionmark);
    wait_for(&mut h, "the keys window after ?", |h| h.state().keys_shown());
}
