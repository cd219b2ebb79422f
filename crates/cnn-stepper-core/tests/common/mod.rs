//! Helpers shared by the integration tests: data, sessions, the worker's events.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test file uses a subset.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cnn_stepper_core::data::{self, Dataset, Splits};
use cnn_stepper_core::engine::model::SeqState;
use cnn_stepper_core::engine::{ConvEngine, ModelConfig, Params, Phase, Preset};
use cnn_stepper_core::trainer::{Event, ModelView, Session, Snapshot, TrainError, Worker};

/// The embedded MNIST sample.
pub fn sample() -> Arc<Splits> {
    Arc::new(data::embedded().unwrap())
}

/// The first `n` training images of the sample (and its whole test set), so that an epoch is
/// a few batches.
pub fn first(n: usize) -> Arc<Splits> {
    let full = data::embedded().unwrap();
    let train = Dataset::new(
        full.train.images[..n * 784].to_vec(),
        full.train.labels[..n].to_vec(),
        28,
        28,
        full.train.class_names.clone(),
    )
    .unwrap();
    Arc::new(Splits { train, test: full.test.clone(), source: format!("first {n} images"), notes: Vec::new() })
}

/// The post's network, by name.
pub const POST: &str = "post";

/// The post's shape, small enough that every test runs in a blink: 3 and 4 filters of 3×3,
/// 12 hidden units (the line of [`small`]).
pub const SMALL: &str = "conv(3,3,pad=1), relu, conv(4,3,pad=1), flatten, fc(12), relu, fc(10)";

/// [`SMALL`] as the post-only engine's configuration.
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

/// The network of [`tiny`] as a line: for 1×8×8 images of 4 classes.
pub const TINY: &str = "conv(2,3,pad=1), relu, conv(3,3,pad=1), flatten, fc(5), relu, fc(4)";

/// A fresh session of `model` (a name or a line) on the sample with the recommended preset.
pub fn session(seed: u64, model: &str, engine: ConvEngine) -> Session {
    Session::new(sample(), seed, Preset::Recommended, model, engine).unwrap()
}

/// The post's network on the fast engine, recommended preset, on the sample.
pub fn post_session(seed: u64) -> Session {
    session(seed, POST, ConvEngine::Fast)
}

/// Everything the network of `s` carries from step to step: parameters, momentum, Adam's state.
pub fn state(s: &Session) -> SeqState<f32> {
    let mut st = SeqState::default();
    s.network().save_state(&mut st);
    st
}

/// The position in the line of the layer a student calls `name` (`conv2`, `pool1`).
pub fn layer(model: &ModelView, name: &str) -> usize {
    model.plan.layer_named(name).unwrap_or_else(|| panic!("no layer {name} in {}", model.line())).index
}

/// The phase labelled `label` (`forward conv1`, `loss`, `backward fc2`, `update`).
pub fn phase(model: &ModelView, label: &str) -> Phase {
    let phases = model.plan.phases();
    phases.into_iter().find(|p| model.phase_label(*p) == label).unwrap_or_else(|| panic!("no phase {label:?}"))
}

/// The values of a parameter by its student name (`conv1.weight`, `fc2.bias`).
pub fn param<'a>(s: &'a Session, tensor: &str) -> &'a [f32] {
    let (name, kind) = tensor.split_once('.').unwrap();
    let index = layer(s.model(), name);
    &s.network().param(&format!("{index}.{kind}")).unwrap_or_else(|| panic!("no tensor {tensor}")).data
}

/// The output of layer `name` for the selected digit (empty before it ran).
pub fn output<'a>(snap: &'a Snapshot, name: &str) -> &'a [f32] {
    snap.sample.output(layer(&snap.model, name))
}

/// ∂L/∂(layer `name`'s output) for the selected digit (empty before it was computed).
pub fn grad<'a>(snap: &'a Snapshot, name: &str) -> &'a [f32] {
    snap.sample.grad(layer(&snap.model, name))
}

/// Steps `s` until `label` has run.
pub fn step_until(s: &mut Session, label: &str) {
    let want = phase(s.model(), label);
    while s.step_phase(&mut |_, _| {}).unwrap() != want {}
}

/// The parameters of a session of the post's shape (`post`, [`SMALL`]) in the post-only
/// engine's layout, for the APIs that still take it (weights files of the old format, `.npz`).
pub fn post_params(s: &Session, cfg: &ModelConfig) -> Params<f32> {
    let data: Vec<Vec<f32>> = s.network().params().iter().map(|p| p.data.clone()).collect();
    Params::from_vecs(cfg, data.try_into().unwrap()).unwrap()
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
