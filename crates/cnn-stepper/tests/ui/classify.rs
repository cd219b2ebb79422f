//! Classify an image: a PNG written by the test, chosen in File → "Classify an image…" or
//! dropped on the window, is prepared for the network's input and probed as a drawn digit is,
//! named by its file; a picture that cannot be read is a banner naming it; Draw a digit is off
//! for a colour network.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cnn_stepper::app::{CnnApp, prepare_picture};
use cnn_stepper::data::{Dataset, Splits};
use cnn_stepper::ui::panels::banner::Severity;
use cnn_stepper::ui::panels::menu::{CLASSIFY_ITEM, DRAW_IS_GREY};
use cnn_stepper::ui::support::export::encode_png;
use eframe::egui::{self, Color32, ColorImage};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::*;

/// A 40×30 PNG: a red left half and a blue right half on a green band.
fn photo(dir: &Path, name: &str) -> PathBuf {
    let (w, h) = (40, 30);
    let pixels = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if (12..18).contains(&y) {
                Color32::from_rgb(20, 200, 40)
            } else if x < w / 2 {
                Color32::from_rgb(220, 30, 30)
            } else {
                Color32::from_rgb(30, 30, 220)
            }
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, encode_png(&ColorImage::new([w, h], pixels)).unwrap()).unwrap();
    path
}

/// Colour data: 3×8×8 images in three named classes.
fn colour() -> Arc<Splits> {
    let names: Vec<String> = ["red", "green", "blue"].map(String::from).to_vec();
    let split = |n: usize| {
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let images =
            labels.iter().flat_map(|&k| (0..3).flat_map(move |c| vec![if c == k { 200 } else { 20 }; 64])).collect();
        Dataset::with_channels(images, labels, 3, 8, 8, names.clone()).unwrap()
    };
    Arc::new(Splits::new(split(12), split(6), "colour test set".into(), Vec::new()).unwrap())
}

fn banner_containing(h: &Harness<'static, CnnApp>, severity: Severity, text: &str) -> bool {
    h.state().banners().iter().any(|b| b.severity == severity && b.message.contains(text))
}

/// File → Classify an image…, the file typed in the dialog.
fn classify_through_the_menu(h: &mut Harness<'static, CnnApp>, path: &Path) {
    h.get_by_label("File").click();
    wait_for(h, "the File menu", |h| has_label(h, CLASSIFY_ITEM));
    h.get_by_label(CLASSIFY_ITEM).click();
    wait_for(h, "the file dialog", |h| has_label(h, "File name:"));
    fill(h, "File name:", &path.display().to_string());
    h.key_press(egui::Key::Enter);
    h.step();
}

/// The network's input shape.
fn input(h: &Harness<'static, CnnApp>) -> (usize, usize, usize) {
    match h.state().snapshot().unwrap().model.plan.input {
        cnn_stepper::engine::model::Shape::Maps { c, h, w } => (c, h, w),
        cnn_stepper::engine::model::Shape::Flat(n) => (n, 1, 1),
    }
}

/// Waits until the probe shows the picture at `path`, and checks what the views got.
fn shows_picture(h: &mut Harness<'static, CnnApp>, path: &Path) {
    wait_for(h, "the picture's probe", |h| h.state().shown_probe().is_some() && h.state().probed_file() == Some(path));
    let shown = h.state().shown_probe().unwrap();
    let prepared = prepare_picture(path, input(h)).unwrap();
    assert_eq!(shown.sample.input, prepared, "the views get the picture prepared for the network");
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(has_text_containing(h, &format!("Showing {name}:")), "the line above the tabs names the file");
    assert!(has_label(h, &name), "the outputs panel names it");
}

#[test]
fn a_picture_chosen_in_the_file_menu_is_probed_for_a_colour_network_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = photo(dir.path(), "flag.png");
    let mut h = harness_with(colour());
    started(&mut h);
    classify_through_the_menu(&mut h, &path);
    shows_picture(&mut h, &path);
    assert_eq!(h.state().shown_probe().unwrap().sample.input.len(), 3 * 8 * 8, "in colour");
    // The three classes, by name, with their probabilities.
    let probs = h.state().shown_probe().unwrap().sample.probs.clone();
    let top = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    let name = ["red", "green", "blue"][top];
    assert!(has_text_containing(&h, &format!("flag.png: {name} ")), "the most probable class first, by name");
    for name in ["red", "green", "blue"] {
        assert!(has_text_containing(&h, &format!("{name} ")), "{name} is among the top classes");
    }

    // It follows training: probed again after a step.
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "the probe after step 1", |h| h.state().shown_probe().is_some_and(|p| p.step == 1));
    assert_eq!(h.state().probed_file(), Some(path.as_path()));
    h.get_by_label("Back to the batch").click();
    h.step();
    assert!(h.state().shown_probe().is_none() && h.state().probed_file().is_none());
}

#[test]
fn draw_a_digit_is_off_for_a_colour_network_and_says_why() {
    let mut h = harness_with(colour());
    started(&mut h);
    settle(&mut h);
    let draw = h.get_by_label("Draw a digit");
    assert!(draw.accesskit_node().is_disabled(), "Draw a digit makes grey digits");
    draw.hover();
    wait_for(&mut h, "the reason", |h| has_label(h, DRAW_IS_GREY));

    let mut grey = harness();
    started(&mut grey);
    assert!(!grey.get_by_label("Draw a digit").accesskit_node().is_disabled(), "on for MNIST");
}

/// A file dropped on the window, as eframe hands it over.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(h: &mut Harness<'static, CnnApp>, path: &Path) {
    h.input_mut().dropped_files.push(Arc::new(Dropped(path.to_path_buf())));
    h.step();
}

#[test]
fn a_picture_dropped_on_the_window_is_probed_the_same_way_for_a_grey_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = photo(dir.path(), "dropped.png");
    let mut h = harness();
    started(&mut h);
    drop_file(&mut h, &path);
    shows_picture(&mut h, &path);
    assert_eq!(h.state().shown_probe().unwrap().sample.input.len(), 28 * 28, "made grey for MNIST's network");
}

#[test]
fn a_picture_that_cannot_be_read_is_a_banner_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n but then nothing a decoder wants").unwrap();
    let mut h = harness();
    started(&mut h);
    classify_through_the_menu(&mut h, &broken);
    wait_for(&mut h, "the error", |h| !h.state().classifying() && !h.state().banners().is_empty());
    assert!(banner_containing(&h, Severity::Error, "broken.png"), "{:?}", h.state().banners());
    assert!(h.state().shown_probe().is_none(), "nothing is shown instead of the batch");

    // Dropped, the same; a file that is no picture by its name is refused with its name.
    drop_file(&mut h, &broken);
    wait_for(&mut h, "the drop's error", |h| !h.state().classifying());
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    drop_file(&mut h, &notes);
    assert!(banner_containing(&h, Severity::Error, "notes.txt is not a picture"), "{:?}", h.state().banners());
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "the window still trains", |h| step(h) == 1);
}
