//! The headless commands as a user runs them: train on a small folder, save, evaluate, CSV,
//! Ctrl-C, and refusals of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use cnn_stepper_core::cli::{self, TrainOptions};
use cnn_stepper_core::engine::{ConvEngine, Preset};

fn options(dir: &Path) -> TrainOptions {
    TrainOptions {
        data: Some(dir.to_path_buf()),
        classes: None,
        epochs: 2,
        batch: Some(16),
        lr: None,
        momentum: None,
        reg: None,
        lr_decay: None,
        engine: ConvEngine::Fast,
        preset: Preset::Recommended,
        seed: 3,
        relu_after_conv2: false,
        save: Some(dir.join("w.safetensors")),
    }
}

#[test]
fn train_prints_each_epoch_saves_and_eval_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 64);
    let mut out = Vec::new();
    let reports = cli::train(&options(dir.path()), &AtomicBool::new(false), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(reports.len(), 2, "{text}");
    assert!(text.contains("epoch 1: mean loss") && text.contains("epoch 2: mean loss"), "{text}");
    assert!(reports[1].mean_loss < reports[0].mean_loss, "{reports:?}");
    assert!(text.contains("saved weights to"));

    let csv = dir.path().join("pred.csv");
    let mut out = Vec::new();
    let acc = cli::eval(&dir.path().join("w.safetensors"), Some(dir.path()), None, Some(&csv), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let want = format!("test accuracy: {:.2}% ({}/64)", 100.0 * acc, (acc * 64.0).round() as usize);
    assert!(text.starts_with(&want), "{text} vs {want}");
    // Evaluating the saved weights gives what training reported after the last epoch.
    assert!((acc - reports[1].test_accuracy).abs() < 1e-6);
    let rows: Vec<String> = std::fs::read_to_string(&csv).unwrap().lines().map(String::from).collect();
    assert_eq!(rows[0], "index,label,predicted,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9");
    assert_eq!(rows.len(), 65);
    let first: Vec<&str> = rows[1].split(',').collect();
    assert_eq!(first.len(), 13);
    let p_sum: f32 = first[3..].iter().map(|v| v.parse::<f32>().unwrap()).sum();
    assert!((p_sum - 1.0).abs() < 1e-3);
}

#[test]
fn ctrl_c_stops_after_the_current_step_and_still_saves() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 32);
    let mut out = Vec::new();
    let reports = cli::train(&options(dir.path()), &AtomicBool::new(true), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(reports.is_empty());
    assert!(text.contains("stopped by Ctrl-C"), "{text}");
    assert!(dir.path().join("w.safetensors").exists());
}

#[test]
fn absurd_hyper_parameters_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    for (o, words) in [
        (TrainOptions { lr: Some(0.0), ..options(dir.path()) }, "learning rate"),
        (TrainOptions { batch: Some(0), ..options(dir.path()) }, "batch size 0"),
        (TrainOptions { momentum: Some(1.0), ..options(dir.path()) }, "momentum"),
        (TrainOptions { epochs: 0, ..options(dir.path()) }, "--epochs"),
    ] {
        let err = cli::train(&o, &stop, &mut Vec::new()).unwrap_err();
        assert!(err.contains(words), "{err}");
    }
}

#[test]
fn a_missing_data_folder_or_weights_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = cli::train(
        &TrainOptions { data: Some(missing.clone()), ..options(dir.path()) },
        &AtomicBool::new(false),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(err.contains("nope"), "{err}");
    let err = cli::eval(&dir.path().join("absent.safetensors"), None, None, None, &mut Vec::new()).unwrap_err();
    assert!(err.contains("absent.safetensors"), "{err}");
    std::fs::write(dir.path().join("junk.safetensors"), b"not a safetensors file").unwrap();
    let err = cli::eval(&dir.path().join("junk.safetensors"), None, None, None, &mut Vec::new()).unwrap_err();
    assert!(err.contains("junk.safetensors"), "{err}");
}

#[test]
fn flop_count_matches_the_network() {
    // conv2 alone: 3 passes × 2·32·16·25·784 ≈ 60.2 MFLOP; the whole step ≈ 76.5 MFLOP.
    let f = cli::flops_per_image(&Default::default());
    assert!((f / 1e6 - 76.5).abs() < 0.5, "{}", f / 1e6);
    assert_eq!(cli::thousands(60000), "60,000");
    assert_eq!(cli::thousands(999), "999");
}
