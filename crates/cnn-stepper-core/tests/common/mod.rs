//! Helpers shared by the integration tests: data, sessions, the worker's events.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test file uses a subset.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cnn_stepper_core::data::{self, Dataset, Mnist};
use cnn_stepper_core::engine::{ConvEngine, ModelConfig, Preset};
use cnn_stepper_core::trainer::{Event, Session, Snapshot, TrainError, Worker};

/// The embedded MNIST sample.
pub fn sample() -> Arc<Mnist> {
    Arc::new(data::embedded().unwrap())
}

/// The first `n` training images of the sample (and its whole test set), so that an epoch is
/// a few batches.
pub fn first(n: usize) -> Arc<Mnist> {
    let full = data::embedded().unwrap();
    let train = Dataset::new(
        full.train.images[..n * 784].to_vec(),
        full.train.labels[..n].to_vec(),
        28,
        28,
        full.train.class_names.clone(),
    )
    .unwrap();
    Arc::new(Mnist { train, test: full.test.clone(), source: format!("first {n} images") })
}

/// Small enough that every test runs in a blink: 3 and 4 filters of 3×3, 12 hidden units.
pub fn small() -> ModelConfig {
    ModelConfig { conv1_filters: 3, conv2_filters: 4, kernel: 3, pad: 1, hidden: 12, ..ModelConfig::default() }
}

/// 1×8×8 input, 2 and 3 filters, 3×3 kernels with padding 1, 5 hidden units, 4 classes: files
/// of a few kilobytes, for the weights and session file tests.
pub fn tiny() -> ModelConfig {
    ModelConfig {
        in_channels: 1,
        in_height: 8,
        in_width: 8,
        conv1_filters: 2,
        conv2_filters: 3,
        kernel: 3,
        stride: 1,
        pad: 1,
        hidden: 5,
        classes: 4,
        relu_after_conv2: false,
    }
}

/// A fresh session on the sample with the recommended preset.
pub fn session(seed: u64, cfg: ModelConfig, engine: ConvEngine) -> Session {
    Session::new(sample(), seed, Preset::Recommended, cfg, engine).unwrap()
}

/// The post's network on the fast engine, recommended preset, on the sample.
pub fn post_session(seed: u64) -> Session {
    session(seed, ModelConfig::default(), ConvEngine::Fast)
}

/// `s` with batches of `batch_size` images.
pub fn with_batch(mut s: Session, batch_size: usize) -> Session {
    let mut settings = s.settings();
    settings.batch_size = batch_size;
    s.set_settings(settings).unwrap();
    s
}

/// Takes `n` whole steps.
pub fn steps(s: &mut Session, n: usize) {
    for _ in 0..n {
        s.step_batch(&mut |_, _| {}).unwrap();
    }
}

/// A dataset folder with the first `n` images of the embedded sample as both splits.
pub fn small_folder(dir: &Path, n: usize) {
    folder(dir, n, n);
}

/// A dataset folder with the embedded sample's first `train` images as the training set and
/// its first `test` images as the test set.
pub fn folder(dir: &Path, train: usize, test: usize) {
    let full = data::embedded().unwrap();
    for (n, img, lab) in [
        (train, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        (test, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ] {
        let f = std::fs::File::create(dir.join(img)).unwrap();
        data::write_images(f, img, 28, 28, &full.train.images[..n * 784]).unwrap();
        let f = std::fs::File::create(dir.join(lab)).unwrap();
        data::write_labels(f, lab, &full.train.labels[..n]).unwrap();
    }
}

/// Sets a learning rate of 10 with momentum 0.99 and trains until the session reports the
/// divergence (at most 50 batches); returns the error.
pub fn diverge(s: &mut Session) -> TrainError {
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

/// How long a test waits for an event before it fails: a safety net against a hang, far
/// beyond what any event takes.
const PATIENCE: Duration = Duration::from_secs(120);

/// Waits for an event that `f` picks, returning it and every event seen before it.
pub fn wait_for_seen(worker: &Worker, what: &str, mut f: impl FnMut(&Event) -> bool) -> (Event, Vec<Event>) {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(e) = worker.recv_timeout(Duration::from_millis(50)) {
            if f(&e) {
                return (e, seen);
            }
            seen.push(e);
        }
    }
    panic!("timed out waiting for {what}; saw {} events", seen.len());
}

/// Waits for an event that `f` picks.
pub fn wait_for(worker: &Worker, what: &str, f: impl FnMut(&Event) -> bool) -> Event {
    wait_for_seen(worker, what, f).0
}

/// [`wait_for`], failing at once on an [`Event::Error`] that comes first.
pub fn wait_for_ok(worker: &Worker, what: &str, mut f: impl FnMut(&Event) -> bool) -> Event {
    wait_for(worker, what, |e| {
        if let Event::Error(msg) = e {
            panic!("worker error while waiting for {what}: {msg}");
        }
        f(e)
    })
}

/// The snapshot in `e`, if it is one.
pub fn snapshot(e: &Event) -> Option<&Snapshot> {
    if let Event::Snapshot(s) = e { Some(s) } else { None }
}
