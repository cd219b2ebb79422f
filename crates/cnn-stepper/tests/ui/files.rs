//! The File and View menus driven like a user would: Ctrl+S / Ctrl+O and the egui file dialog,
//! the exports, the remembered settings and Reset layout.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::embedded;
use cnn_stepper::trainer::Command;
use cnn_stepper::ui::panels::banner::Severity;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::kittest::*;

fn banner_containing(h: &Harness<'static, CnnApp>, severity: Severity, text: &str) -> bool {
    h.state().banners().iter().any(|b| b.severity == severity && b.message.contains(text))
}

/// Types `path` into the open dialog's file-name field and presses Enter.
fn choose_in_dialog(h: &mut Harness<'static, CnnApp>, path: &Path) {
    wait_for(h, "the file dialog", |h| has_label(h, "File name:"));
    fill(h, "File name:", &path.display().to_string());
    h.key_press(egui::Key::Enter);
    h.step();
}

fn step_batch(h: &mut Harness<'static, CnnApp>, to: u64) {
    h.get_by_label("Step batch").click();
    wait_for(h, "the next step", |h| step(h) == to);
}

#[test]
fn ctrl_s_saves_the_session_and_ctrl_o_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lesson.safetensors");
    let mut h = harness();
    started(&mut h);
    step_batch(&mut h, 1);
    let weights_at_1 = h.state().snapshot().unwrap().filters.convs[0].weight.clone();

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    wait_for(&mut h, "the save dialog", |h| has_label(h, "Save the session"));
    choose_in_dialog(&mut h, &file);
    wait_for(&mut h, "the saved notice", |h| banner_containing(h, Severity::Info, "saved the session at step 1"));
    assert!(!h.state().dialog_open());
    assert!(file.is_file());

    step_batch(&mut h, 2);
    assert_ne!(h.state().snapshot().unwrap().filters.convs[0].weight, weights_at_1);

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    wait_for(&mut h, "the open dialog", |h| has_label(h, "Open a session or a weights file"));
    choose_in_dialog(&mut h, &file);
    wait_for(&mut h, "step 1 again", |h| banner_containing(h, Severity::Info, "opened") && step(h) == 1);
    assert_eq!(h.state().snapshot().unwrap().filters.convs[0].weight, weights_at_1, "the weights of step 1 are back");
    assert_eq!(h.state().curves().loss.len(), 1, "and the curve of step 1 only");
}

#[test]
fn a_lenet5_session_saved_and_opened_through_the_file_menu_comes_back_as_lenet5() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lenet.safetensors");
    let mut h = harness_with_model("lenet5");
    started(&mut h);
    step_batch(&mut h, 1);
    let saved = h.state().snapshot().unwrap().clone();
    assert_eq!(saved.model.label(), "lenet5");

    file_menu(&mut h, "Save session…");
    choose_in_dialog(&mut h, &file);
    wait_for(&mut h, "the saved notice", |h| banner_containing(h, Severity::Info, "saved the session at step 1"));

    // Another network in its place (what the Network panel's Apply sends).
    h.state_mut().send(Command::Reset { seed: 3, preset: saved.preset, model: "post".into() });
    wait_for(&mut h, "the post's network", |h| h.state().snapshot().is_some_and(|s| s.model.label() == "post"));

    file_menu(&mut h, "Open session or weights…");
    choose_in_dialog(&mut h, &file);
    wait_for(&mut h, "LeNet again", |h| h.state().snapshot().is_some_and(|s| s.model.label() == "lenet5"));
    let opened = h.state().snapshot().unwrap();
    assert_eq!(opened.step, 1);
    assert_eq!(opened.model.plan, saved.model.plan, "the same layers and shapes");
    assert_eq!(opened.filters.convs.len(), 2);
    for (o, s) in opened.filters.convs.iter().zip(&saved.filters.convs) {
        assert_eq!((o.name.as_str(), &o.weight, &o.bias), (s.name.as_str(), &s.weight, &s.bias), "{}", s.name);
    }
    // The window shows LeNet: its pipeline has the pools, and the network is remembered.
    assert!(has_label(&h, "forward pool2"));
    assert_eq!(h.state().prefs().model.as_deref(), Some("lenet5"));
}

#[test]
fn saving_over_another_file_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precious.safetensors");
    std::fs::write(&file, b"someone else's file").unwrap();
    let mut h = harness();
    started(&mut h);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    choose_in_dialog(&mut h, &file);
    wait_for(&mut h, "the replace question", |h| has_text_containing(h, "already exists"));
    settle(&mut h);
    assert_eq!(std::fs::read(&file).unwrap(), b"someone else's file", "not replaced before the user agrees");
    h.get_by_label("Replace").click();
    wait_for(&mut h, "the saved notice", |h| banner_containing(h, Severity::Info, "saved the session"));
    assert_ne!(std::fs::read(&file).unwrap(), b"someone else's file");
}

#[test]
fn cancel_and_escape_close_the_dialog_without_doing_anything() {
    let mut h = harness();
    started(&mut h);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    wait_for(&mut h, "the open dialog", |h| h.state().dialog_open());
    h.get_by_label("Cancel").click();
    wait_for(&mut h, "the dialog to close", |h| !h.state().dialog_open());
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    wait_for(&mut h, "the save dialog", |h| h.state().dialog_open());
    h.key_press(egui::Key::Escape);
    wait_for(&mut h, "the dialog to close", |h| !h.state().dialog_open());
    assert!(h.state().banners().is_empty(), "{:?}", h.state().banners());
}

#[test]
fn a_file_that_is_not_a_session_is_refused_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.safetensors");
    std::fs::write(&file, b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage").unwrap();
    let mut h = harness();
    started(&mut h);
    step_batch(&mut h, 1);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    choose_in_dialog(&mut h, &file);
    wait_for(&mut h, "the error", |h| banner_containing(h, Severity::Error, "broken.safetensors"));
    assert_eq!(step(&h), 1, "the current run is untouched");
}

#[test]
fn an_unwritable_place_is_an_error_banner_not_a_crash() {
    let mut h = harness();
    started(&mut h);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    // /proc exists, but nothing can be created in it, even by root.
    choose_in_dialog(&mut h, Path::new("/proc/cnn-stepper-test.safetensors"));
    wait_for(&mut h, "the error", |h| banner_containing(h, Severity::Error, "/proc/cnn-stepper-test.safetensors"));
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "the window still trains", |h| step(h) == 1);
}

/// Opens the File menu and clicks `item`.
fn file_menu(h: &mut Harness<'static, CnnApp>, item: &str) {
    h.get_by_label("File").click();
    // An item with a shortcut has it in its label too ("Save session… Ctrl+S").
    wait_for(h, "the File menu", |h| has_text_containing(h, item));
    h.get_by_label_contains(item).click();
    h.step();
}

#[test]
fn the_file_menu_exports_the_weights_for_numpy_and_the_curves_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness();
    started(&mut h);
    step_batch(&mut h, 1);
    step_batch(&mut h, 2);

    file_menu(&mut h, "Export weights as NumPy .npz…");
    let npz = dir.path().join("w.npz");
    choose_in_dialog(&mut h, &npz);
    wait_for(&mut h, "the npz notice", |h| banner_containing(h, Severity::Info, "NumPy arrays"));
    let bytes = std::fs::read(&npz).unwrap();
    assert_eq!(&bytes[..2], b"PK", "a zip archive");
    for name in ["c1_filters.npy", "c2_filters.npy", "fc_W1.npy", "fc_b2.npy"] {
        assert!(bytes.windows(name.len()).any(|w| w == name.as_bytes()), "{name} is in the archive");
    }

    file_menu(&mut h, "Export curves as CSV…");
    // A name without an extension gets .csv.
    choose_in_dialog(&mut h, &dir.path().join("curves"));
    wait_for(&mut h, "the csv notice", |h| banner_containing(h, Severity::Info, "exported the curves"));
    let csv = std::fs::read_to_string(dir.path().join("curves.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,loss,batch_accuracy,test_accuracy");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].starts_with("1,") && lines[2].starts_with("2,"), "{csv}");
    let loss: f32 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
    assert!(loss > 0.0 && loss.is_finite());
}

#[test]
fn settings_and_view_choices_are_remembered_across_a_restart() {
    let mut h = harness();
    started(&mut h);
    fill(&mut h, "Learning rate", "0.03");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the new rate", |h| {
        h.state().snapshot().is_some_and(|s| s.pending.unwrap_or(s.settings).hyper.lr == 0.03)
    });
    h.get_by_label("View").click();
    wait_for(&mut h, "the View menu", |h| has_label(h, "Projector mode"));
    h.get_by_label("Projector mode").click();
    h.step();
    let prefs = h.state().prefs();
    assert!(prefs.projector);
    assert_eq!(prefs.settings.map(|s| s.hyper.lr), Some(0.03));
    drop(h);

    // A new start with what eframe stored.
    let data = std::sync::Arc::new(embedded().unwrap());
    let stored = serde_json::to_string(&prefs).unwrap();
    let mut h = Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_eframe(move |cc| {
        CnnApp::with_prefs(&cc.egui_ctx, data, 1, cnn_stepper::ui::support::prefs::Prefs::from_json(&stored))
    });
    wait_for(&mut h, "the remembered rate", |h| {
        h.state().snapshot().is_some_and(|s| s.pending.unwrap_or(s.settings).hyper.lr == 0.03)
    });
    assert!(h.state().prefs().projector, "projector mode is back on");
}

#[test]
fn reset_layout_turns_projector_mode_and_the_help_panel_off() {
    let mut h = harness();
    started(&mut h);
    h.get_by_label("View").click();
    wait_for(&mut h, "the View menu", |h| has_label(h, "Projector mode"));
    h.get_by_label("Projector mode").click();
    h.step();
    assert!(h.state().prefs().projector);
    h.get_by_label("View").click();
    wait_for(&mut h, "the View menu", |h| has_label(h, "Reset layout"));
    h.get_by_label("Reset layout").click();
    h.step();
    let p = h.state().prefs();
    assert!(!p.projector && p.zoom.is_none(), "{p:?}");
    assert!(p.view.is_some_and(|v| !v.show_help), "the help panel is off");
}

#[test]
fn remembered_settings_that_cannot_train_are_dropped_with_a_message() {
    let data = std::sync::Arc::new(embedded().unwrap());
    let stored = r#"{"settings": {"hyper": {"lr": -5.0, "momentum": 0.9, "reg": 0.0001, "lr_decay": 1.0},
                     "batch_size": 32, "engine": "Fast"}}"#;
    let mut h = Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_eframe(move |cc| {
        CnnApp::with_prefs(&cc.egui_ctx, data, 1, cnn_stepper::ui::support::prefs::Prefs::from_json(stored))
    });
    started(&mut h);
    assert!(banner_containing(&h, Severity::Info, "learning rate = -5"), "{:?}", h.state().banners());
    let lr = h.state().snapshot().map(|s| s.settings.hyper.lr);
    assert!(lr.is_some_and(|lr| lr > 0.0), "the preset's rate is used: {lr:?}");
}
