//! Helpers shared by the integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test file uses a subset.

use std::path::Path;

use cnn_stepper_core::data;
use cnn_stepper_core::trainer::Session;

/// A dataset folder with the first `n` images of the embedded sample as both splits.
pub fn small_folder(dir: &Path, n: usize) {
    let full = data::embedded().unwrap();
    let (images, labels) = (&full.train.images[..n * 784], &full.train.labels[..n]);
    for (img, lab) in
        [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    {
        let f = std::fs::File::create(dir.join(img)).unwrap();
        data::write_images(f, img, 28, 28, images).unwrap();
        let f = std::fs::File::create(dir.join(lab)).unwrap();
        data::write_labels(f, lab, labels).unwrap();
    }
}

/// Sets a learning rate of 10 with momentum 0.99 and trains until the session reports the
/// divergence (at most 50 batches); returns its message.
pub fn diverge(s: &mut Session) -> String {
    let mut bad = s.settings();
    bad.hyper.lr = 10.0;
    bad.hyper.momentum = 0.99;
    s.set_settings(bad).unwrap();
    for _ in 0..50 {
        if let Err(e) = s.step_batch(&mut |_, _| {}) {
            return e;
        }
    }
    panic!("lr 10 with momentum 0.99 diverges within 50 steps");
}
