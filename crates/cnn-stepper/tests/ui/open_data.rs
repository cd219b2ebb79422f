//! File → Open data… driven like a user would: an IDX folder written by the test (8×8 images
//! in three classes) loads on its own thread, the network that fits switches to it, one that
//! does not asks which network to use (and why), a broken folder is a banner that keeps the run,
//! and the data is reopened at the next start.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::{embedded, write_images, write_labels};
use cnn_stepper::engine::model::Shape;
use cnn_stepper::ui::panels::banner::Severity;
use cnn_stepper::ui::panels::menu::OPEN_DATA_ITEM;
use cnn_stepper::ui::support::prefs::{DataChoice, Prefs};
use cnn_stepper::ui::windows::file_dialog::FOLDER_NAME_LABEL;
use cnn_stepper::ui::windows::network::{APPLY_LABEL, LINE_LABEL};
use cnn_stepper::ui::windows::open_data::{
    CHOOSE_FOLDER_LABEL, EDIT_NETWORK_LABEL, FOLDER_LABEL, KEEP_LABEL, LOAD_LABEL, SWITCH_LABEL, use_label,
};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::kittest::*;

const SIDE: usize = 8;
const NAMES: [&str; 3] = ["circle", "square", "triangle"];

/// An IDX folder of `SIDE`×`SIDE` images in three named classes: 12 training and 6 test
/// images, each image's brightness its class.
fn idx_folder(dir: &Path) {
    for (n, images, labels) in [
        (12, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        (6, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ] {
        let classes: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let pixels: Vec<u8> = classes.iter().flat_map(|&k| vec![40 + 90 * k; SIDE * SIDE]).collect();
        write_images(std::fs::File::create(dir.join(images)).unwrap(), images, SIDE, SIDE, &pixels).unwrap();
        write_labels(std::fs::File::create(dir.join(labels)).unwrap(), labels, &classes).unwrap();
    }
    std::fs::write(dir.join("classes.txt"), NAMES.join("\n")).unwrap();
}

fn source(h: &Harness<'static, CnnApp>) -> String {
    h.state().snapshot().map(|s| s.data_source.clone()).unwrap_or_default()
}

fn model(h: &Harness<'static, CnnApp>) -> String {
    h.state().snapshot().map(|s| s.model.label()).unwrap_or_default()
}

fn banner_containing(h: &Harness<'static, CnnApp>, severity: Severity, text: &str) -> bool {
    h.state().banners().iter().any(|b| b.severity == severity && b.message.contains(text))
}

fn step_batch(h: &mut Harness<'static, CnnApp>, to: u64) {
    h.get_by_label("Step batch").click();
    wait_for(h, "the next step", |h| step(h) == to);
}

/// File → Open data…, the folder typed in, Load.
fn open_data(h: &mut Harness<'static, CnnApp>, dir: &Path) {
    h.get_by_label("File").click();
    wait_for(h, "the File menu", |h| has_label(h, OPEN_DATA_ITEM));
    h.get_by_label(OPEN_DATA_ITEM).click();
    wait_for(h, "the Open data window", |h| has_label(h, FOLDER_LABEL));
    fill(h, FOLDER_LABEL, &dir.display().to_string());
    wait_for(h, "the folder recognised", |h| has_text_containing(h, "This folder holds MNIST-style IDX files"));
    h.get_by_label(LOAD_LABEL).click();
    h.step();
}

/// True once the run is on the test's folder.
fn on_folder(h: &Harness<'static, CnnApp>, dir: &Path) -> bool {
    h.state().snapshot().is_some_and(|s| s.data_source.contains(&*dir.to_string_lossy()))
        && h.state().data().source.contains(&*dir.to_string_lossy())
}

#[test]
fn an_idx_folder_of_another_size_and_three_classes_becomes_the_run_of_the_network_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    idx_folder(dir.path());
    let mut h = harness();
    started(&mut h);
    open_data(&mut h, dir.path());
    wait_for(&mut h, "the run on the folder", |h| on_folder(h, dir.path()));

    let snap = h.state().snapshot().unwrap();
    assert_eq!(model(&h), "post", "the post's network fits 8×8 images: no question");
    assert_eq!(snap.model.plan.input, Shape::Maps { c: 1, h: SIDE, w: SIDE });
    assert_eq!(snap.class_names, NAMES);
    assert_eq!((snap.step, h.state().data().test.len()), (0, 6), "a fresh run; the evaluation uses the new test set");
    assert!(banner_containing(&h, Severity::Info, "now training on"), "{:?}", h.state().banners());
    step_batch(&mut h, 1);
    assert!(has_text_containing(&h, &format!("data: {}", source(&h))), "the status line names the data");

    // Remembered for the next start.
    let remembered = h.state().prefs().data.expect("the folder is remembered");
    assert_eq!(remembered.source, dir.path().display().to_string());
}

#[test]
fn a_network_that_does_not_fit_asks_which_network_and_the_one_chosen_runs_on_the_new_data() {
    let dir = tempfile::tempdir().unwrap();
    idx_folder(dir.path());
    let mut h = harness_with_model("lenet5");
    started(&mut h);
    step_batch(&mut h, 1);
    open_data(&mut h, dir.path());
    wait_for(&mut h, "the question", |h| h.state().data_question_open());
    settle(&mut h);
    assert!(has_text_containing(&h, "`lenet5` does not fit these images"), "it says which network and why");
    assert!(has_text_containing(&h, "8×8 grey, 3 classes"), "and what the new images are");
    assert!(has_text_containing(&h, "Step 1 of the current run is not saved"));
    assert!(has_label(&h, &use_label("post")) && has_label(&h, &use_label("tiny")), "the named networks that fit");
    assert!(!has_label(&h, &use_label("lenet5")), "LeNet-5's second conv has no room on 8×8");
    assert!(!has_label(&h, SWITCH_LABEL), "no switch with the network that does not fit");
    assert_eq!((step(&h), model(&h).as_str()), (1, "lenet5"), "nothing changed before the answer");

    h.get_by_label(&use_label("tiny")).click();
    wait_for(&mut h, "the run of tiny on the folder", |h| on_folder(h, dir.path()) && model(h) == "tiny");
    assert_eq!(step(&h), 0);
    step_batch(&mut h, 1);
}

#[test]
fn the_network_window_can_design_the_network_for_the_new_data() {
    let dir = tempfile::tempdir().unwrap();
    idx_folder(dir.path());
    let mut h = harness_with_model("lenet5");
    started(&mut h);
    open_data(&mut h, dir.path());
    wait_for(&mut h, "the question", |h| has_label(h, EDIT_NETWORK_LABEL));
    h.get_by_label(EDIT_NETWORK_LABEL).click();
    wait_for(&mut h, "the Network window", |h| has_label(h, LINE_LABEL));
    assert_eq!(model(&h), "lenet5", "still the old run");
    // The editor checks the rows against the new 8×8 images in 3 classes.
    fill(&mut h, LINE_LABEL, "conv(4,3,pad=1), relu, maxpool(2), flatten, fc(3)");
    settle(&mut h);
    h.get_by_label(APPLY_LABEL).click();
    wait_for(&mut h, "the run on the folder", |h| on_folder(h, dir.path()));
    let snap = h.state().snapshot().unwrap();
    assert_eq!(snap.model.plan.input, Shape::Maps { c: 1, h: SIDE, w: SIDE });
    assert_eq!(snap.model.plan.classes, 3);
    assert_eq!(snap.model.line(), "conv(4,3,pad=1), relu, maxpool(2), flatten, fc(3)");
}

#[test]
fn with_unsaved_steps_the_switch_asks_first_and_keeping_the_data_keeps_the_run() {
    let dir = tempfile::tempdir().unwrap();
    idx_folder(dir.path());
    let mut h = harness();
    started(&mut h);
    step_batch(&mut h, 1);
    let before = source(&h);
    open_data(&mut h, dir.path());
    wait_for(&mut h, "the question", |h| h.state().data_question_open());
    settle(&mut h);
    assert!(has_text_containing(&h, "The current network `post` fits them"));
    assert!(has_text_containing(&h, "Step 1 of the current run is not saved"));
    h.get_by_label(KEEP_LABEL).click();
    settle(&mut h);
    assert!(!h.state().data_question_open());
    assert_eq!((step(&h), source(&h)), (1, before.clone()), "the run is untouched");
    assert_eq!(h.state().data().source, before);

    // Asked again, the switch goes ahead.
    open_data(&mut h, dir.path());
    wait_for(&mut h, "the question", |h| has_label(h, SWITCH_LABEL));
    h.get_by_label(SWITCH_LABEL).click();
    wait_for(&mut h, "the run on the folder", |h| on_folder(h, dir.path()));
    assert_eq!(step(&h), 0);
}

#[test]
fn a_folder_chosen_in_the_file_dialog_fills_the_open_data_window() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes8");
    std::fs::create_dir(&data).unwrap();
    idx_folder(&data);
    let mut h = harness();
    started(&mut h);
    h.get_by_label("File").click();
    wait_for(&mut h, "the File menu", |h| has_label(h, OPEN_DATA_ITEM));
    h.get_by_label(OPEN_DATA_ITEM).click();
    wait_for(&mut h, "the Open data window", |h| has_label(h, CHOOSE_FOLDER_LABEL));
    h.get_by_label(CHOOSE_FOLDER_LABEL).click();
    wait_for(&mut h, "the folder dialog", |h| has_label(h, FOLDER_NAME_LABEL));
    fill(&mut h, FOLDER_NAME_LABEL, &data.display().to_string());
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the Open data window again", |h| has_text_containing(h, "This folder holds MNIST-style IDX"));
    h.get_by_label(LOAD_LABEL).click();
    wait_for(&mut h, "the run on the folder", |h| on_folder(h, &data));
}

#[test]
fn a_broken_folder_is_a_banner_naming_it_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), b"not an idx file").unwrap();
    let mut h = harness();
    started(&mut h);
    step_batch(&mut h, 1);
    let before = source(&h);
    open_data(&mut h, dir.path());
    wait_for(&mut h, "the error", |h| !h.state().loading_data() && !h.state().banners().is_empty());
    let folder = dir.path().display().to_string();
    assert!(banner_containing(&h, Severity::Error, &folder), "the banner names the folder: {:?}", h.state().banners());
    assert!(banner_containing(&h, Severity::Error, "The current run goes on"));
    assert_eq!((step(&h), source(&h)), (1, before));
    assert!(!h.state().data_question_open());
    step_batch(&mut h, 2);
}

/// The app as a new start with `prefs` stored by the last run.
fn restart(prefs: Prefs) -> Harness<'static, CnnApp> {
    let data = std::sync::Arc::new(embedded().unwrap());
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| CnnApp::with_prefs(&cc.egui_ctx, data, 1, prefs))
}

#[test]
fn the_last_data_folder_and_network_are_reopened_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    idx_folder(dir.path());
    let line = "conv(4,3,pad=1), relu, flatten, fc(3)";
    let prefs = Prefs {
        data: Some(DataChoice { source: dir.path().display().to_string(), image_size: None, grayscale: false }),
        // A network for three classes: it does not fit the sample the window starts on.
        model: Some(line.into()),
        ..Prefs::default()
    };
    let mut h = restart(prefs);
    wait_for(&mut h, "the run on the remembered folder", |h| on_folder(h, dir.path()));
    assert_eq!(h.state().snapshot().unwrap().model.line(), line, "with the remembered network");
    assert!(
        !h.state().banners().iter().any(|b| b.severity == Severity::Error),
        "no complaint about the network on the sample meanwhile: {:?}",
        h.state().banners()
    );
}

#[test]
fn a_remembered_folder_that_is_gone_leaves_the_sample_with_a_banner() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let prefs = Prefs {
        data: Some(DataChoice { source: gone.display().to_string(), image_size: None, grayscale: false }),
        ..Prefs::default()
    };
    let mut h = restart(prefs);
    started(&mut h);
    wait_for(&mut h, "the error", |h| !h.state().loading_data());
    h.step();
    assert!(banner_containing(&h, Severity::Error, "Could not load the last data"), "{:?}", h.state().banners());
    assert!(banner_containing(&h, Severity::Error, &gone.display().to_string()));
    assert_eq!(source(&h), cnn_stepper::data::EMBEDDED_SOURCE);
    assert_eq!(h.state().prefs().data, None, "not remembered again");
}
