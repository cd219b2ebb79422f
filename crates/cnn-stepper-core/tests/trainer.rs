//! The trainer driven through its protocol: the synchronous session directly, and the worker
//! thread through commands and events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cnn_stepper_core::data::{self, Mnist};
use cnn_stepper_core::engine::{ConvEngine, Layer, ModelConfig, Phase, Preset};
use cnn_stepper_core::trainer::{Command, Event, Session, Settings, Snapshot, Worker};

fn sample() -> Arc<Mnist> {
    Arc::new(data::embedded().unwrap())
}

fn session(engine: ConvEngine) -> Session {
    Session::new(sample(), 7, Preset::Recommended, ModelConfig::default(), engine).unwrap()
}

#[test]
fn stepping_phases_walks_the_network_in_order_and_counts_steps() {
    let mut s = session(ConvEngine::Fast);
    let phases = s.network().phases().to_vec();
    for (i, want) in phases.iter().enumerate() {
        let got = s.step_phase(&mut |_, _| {}).unwrap();
        assert_eq!(got, *want, "phase {i}");
        let snap = s.snapshot();
        assert_eq!(snap.phases_done, i + 1);
        assert_eq!(snap.last_phase(), Some(*want));
    }
    assert_eq!(s.step(), 1);
    // The next phase starts a new batch.
    assert_eq!(s.step_phase(&mut |_, _| {}).unwrap(), Phase::Forward(Layer::Conv1));
}

#[test]
fn snapshot_shows_only_what_the_phases_so_far_computed() {
    let mut s = session(ConvEngine::Fast);
    s.step_phase(&mut |_, _| {}).unwrap(); // forward conv1
    let snap = s.snapshot();
    assert_eq!(snap.sample.input.len(), 28 * 28);
    assert_eq!(snap.sample.conv1.len(), 16 * 28 * 28);
    assert!(snap.sample.relu1.is_empty() && snap.sample.conv2.is_empty());
    assert!(snap.batch.probs.is_empty() && snap.loss.is_none());
    assert!(snap.filters.conv1_grad.is_empty());
    while s.snapshot().last_phase() != Some(Phase::Backward(Layer::Conv2)) {
        s.step_phase(&mut |_, _| {}).unwrap();
    }
    let snap = s.snapshot();
    assert_eq!(snap.sample.d_conv2.len(), 32 * 28 * 28);
    assert_eq!(snap.sample.d_relu1.len(), 16 * 28 * 28);
    assert!(snap.sample.d_conv1.is_empty());
    assert_eq!(snap.filters.conv2_grad.len(), 32 * 16 * 25);
    assert!(snap.filters.conv1_grad.is_empty());
    assert_eq!(snap.batch.probs.len(), 32 * 10);
    assert!(snap.loss.is_some());
}

#[test]
fn snapshot_carries_conv_biases_and_after_an_update_the_weights_the_maps_came_from() {
    let mut s = session(ConvEngine::Fast);
    s.step_batch(&mut |_, _| {}).unwrap();
    let snap = s.snapshot();
    let f = &snap.filters;
    assert_eq!((f.conv1_b.len(), f.conv2_b.len()), (16, 32));
    assert!(f.conv1_b.iter().any(|b| *b != 0.0), "the update moved the biases");
    // The step's forward pass ran with the initial weights: zero biases, and current − Δ.
    let before = f.before_update.as_ref().expect("after the update, the forward's weights");
    assert!(before.conv1_b.iter().chain(&before.conv2_b).all(|b| *b == 0.0));
    for ((w, old), delta) in f.conv2_w.iter().zip(&before.conv2_w).zip(&f.conv2_delta) {
        assert!((w - delta - old).abs() <= 1e-6, "{w} − {delta} ≠ {old}");
    }
    assert_eq!(f.forward_weights().3, before.conv2_b.as_slice());
    // Once the next batch's forward pass starts, the current weights are the forward's again.
    s.step_phase(&mut |_, _| {}).unwrap();
    let f = s.snapshot().filters;
    assert!(f.before_update.is_none());
    assert_eq!(f.forward_weights().0, f.conv1_w.as_slice());
}

#[test]
fn same_seed_and_commands_give_identical_curves_and_weights() {
    let run = || {
        let mut s = session(ConvEngine::Fast);
        let mut points = vec![];
        for _ in 0..3 {
            s.step_batch(&mut |_, _| {}).unwrap();
            points.extend(s.snapshot().new_loss_points);
        }
        (points, s.network().params.clone())
    };
    let (a, pa) = run();
    let (b, pb) = run();
    assert_eq!(a.len(), 3);
    assert_eq!(a, b);
    assert_eq!(pa, pb);
}

#[test]
fn settings_change_mid_step_waits_for_the_next_batch() {
    let mut s = session(ConvEngine::Fast);
    s.step_phase(&mut |_, _| {}).unwrap();
    let mut new = s.settings();
    new.batch_size = 8;
    s.set_settings(new).unwrap();
    assert_eq!(s.snapshot().pending, Some(new));
    assert_eq!(s.settings().batch_size, 32, "the running batch keeps its settings");
    s.step_batch(&mut |_, _| {}).unwrap();
    s.step_phase(&mut |_, _| {}).unwrap();
    let snap = s.snapshot();
    assert_eq!(snap.settings.batch_size, 8);
    assert_eq!(snap.batch.labels.len(), 8);
    assert_eq!(snap.pending, None);
}

#[test]
fn absurd_settings_are_refused_with_the_value_named() {
    let mut s = session(ConvEngine::Fast);
    let good = s.settings();
    let cases = [
        (Settings { batch_size: 0, ..good }, "batch size 0"),
        (Settings { hyper: cnn_stepper_core::engine::Hyper { lr: -1.0, ..good.hyper }, ..good }, "learning rate"),
        (Settings { hyper: cnn_stepper_core::engine::Hyper { momentum: 1.5, ..good.hyper }, ..good }, "momentum"),
    ];
    for (bad, words) in cases {
        let err = s.set_settings(bad).unwrap_err();
        assert!(err.contains(words), "{err}");
    }
    assert_eq!(s.settings(), good);
}

#[test]
fn a_diverging_learning_rate_is_reported_not_a_crash() {
    let mut s = session(ConvEngine::Fast);
    let e = common::diverge(&mut s);
    assert!(e.contains("diverged") && e.contains("learning rate"), "{e}");
}

#[test]
fn evaluation_counts_correct_test_images() {
    let mut s = session(ConvEngine::Fast);
    let r = s.evaluate(300, &mut |_, _| {}).unwrap();
    assert_eq!(r.count, 300);
    assert!(r.correct <= 300);
    let all = s.evaluate(0, &mut |_, _| {}).unwrap();
    assert_eq!(all.count, 10_000);
}

fn wait_for(worker: &Worker, what: &str, mut f: impl FnMut(&Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(e) = worker.recv_timeout(Duration::from_millis(100)) {
            if let Event::Error(msg) = &e {
                panic!("worker error while waiting for {what}: {msg}");
            }
            if f(&e) {
                return e;
            }
        }
    }
    panic!("timed out waiting for {what}");
}

fn snapshot(e: &Event) -> Option<&Snapshot> {
    if let Event::Snapshot(s) = e { Some(s) } else { None }
}

#[test]
fn worker_steps_runs_pauses_and_wakes_the_ui() {
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    let worker = Worker::spawn(session(ConvEngine::Fast), move || {
        w.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    wait_for(&worker, "the first snapshot", |e| snapshot(e).is_some_and(|s| s.step == 0));
    worker.send(Command::StepPhase);
    wait_for(&worker, "one phase", |e| snapshot(e).is_some_and(|s| s.phases_done == 1));
    worker.send(Command::StepBatch);
    wait_for(&worker, "a whole batch", |e| snapshot(e).is_some_and(|s| s.step == 1));
    worker.send(Command::Run);
    wait_for(&worker, "training to run", |e| snapshot(e).is_some_and(|s| s.running && s.step >= 3));
    worker.send(Command::Pause);
    let paused = wait_for(&worker, "the pause", |e| snapshot(e).is_some_and(|s| !s.running));
    let step = snapshot(&paused).map(|s| s.step).unwrap_or_default();
    // Nothing more happens while paused.
    std::thread::sleep(Duration::from_millis(300));
    while let Some(e) = worker.try_recv() {
        assert!(snapshot(&e).is_none_or(|s| s.step == step), "trained while paused");
    }
    assert!(wakes.load(Ordering::Relaxed) >= 4, "the waker is called for events");
    assert!(worker.is_alive());
}

#[test]
fn pause_takes_effect_inside_a_naive_batch() {
    let worker = Worker::spawn(session(ConvEngine::Naive), || {}).unwrap();
    wait_for(&worker, "the first snapshot", |e| snapshot(e).is_some());
    worker.send(Command::Run);
    // Progress events come from inside the long naive phases.
    wait_for(&worker, "progress inside a naive phase", |e| matches!(e, Event::Progress { .. }));
    worker.send(Command::Pause);
    let e = wait_for(&worker, "the pause", |e| snapshot(e).is_some_and(|s| !s.running));
    let s = snapshot(&e).unwrap();
    assert_eq!(s.step, 0, "paused before the first naive batch finished");
    assert!(s.phases_done > 0 && s.phases_done < s.phases.len(), "paused between phases of the batch");
}

#[test]
fn reset_starts_over_and_shutdown_joins_the_thread() {
    let worker = Worker::spawn(session(ConvEngine::Fast), || {}).unwrap();
    worker.send(Command::StepBatch);
    wait_for(&worker, "a batch", |e| snapshot(e).is_some_and(|s| s.step == 1));
    worker.send(Command::Reset { seed: 99, preset: Preset::Post, config: ModelConfig::default() });
    let e = wait_for(&worker, "the reset", |e| snapshot(e).is_some_and(|s| s.seed == 99));
    let s = snapshot(&e).unwrap();
    assert_eq!((s.step, s.phases_done, s.preset), (0, 0, Preset::Post));
    let started = Instant::now();
    drop(worker); // sends Shutdown and joins
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn run_epoch_stops_at_the_end_of_the_epoch() {
    // A tiny training set so an epoch is a few batches.
    let full = data::embedded().unwrap();
    let keep = 96;
    let train = data::Dataset::new(
        full.train.images[..keep * 784].to_vec(),
        full.train.labels[..keep].to_vec(),
        28,
        28,
        full.train.class_names.clone(),
    )
    .unwrap();
    let small = Arc::new(Mnist { train, test: full.test.clone(), source: "first 96 images".into() });
    let s = Session::new(small, 1, Preset::Recommended, ModelConfig::default(), ConvEngine::Fast).unwrap();
    let worker = Worker::spawn(s, || {}).unwrap();
    worker.send(Command::RunEpoch);
    let e = wait_for(&worker, "the epoch to end", |e| snapshot(e).is_some_and(|s| !s.running && s.epoch == 1));
    assert_eq!(snapshot(&e).unwrap().step, 3, "96 images in batches of 32");
}

#[test]
fn a_reader_that_falls_behind_gets_few_snapshots_but_every_curve_point() {
    let worker = Worker::spawn(session(ConvEngine::Fast), || {}).unwrap();
    worker.send(Command::Run);
    // Read nothing for a while, as a minimised window would.
    std::thread::sleep(Duration::from_secs(2));
    worker.send(Command::Pause);
    std::thread::sleep(Duration::from_millis(500));
    let (mut snapshots, mut points, mut last_step) = (0, Vec::new(), 0);
    while let Some(e) = worker.recv_timeout(Duration::from_millis(200)) {
        if let Event::Snapshot(s) = e {
            snapshots += 1;
            points.extend(s.new_loss_points.iter().map(|p| p.step));
            last_step = s.step;
        }
    }
    assert!(last_step >= 5, "it trained while nobody read ({last_step} steps)");
    assert!(snapshots <= 6, "{snapshots} snapshots queued for an idle reader");
    assert_eq!(points, (1..=last_step).collect::<Vec<_>>(), "every loss point arrives once, in order");
}

#[test]
fn the_engine_can_be_held_to_one_thread_and_then_computes_as_one_thread_does() {
    let worker = Worker::spawn(session(ConvEngine::Fast), || {}).unwrap();
    worker.send(Command::SetComputeThreads(1));
    for _ in 0..3 {
        worker.send(Command::StepBatch);
    }
    let e = wait_for(&worker, "three batches on one thread", |e| snapshot(e).is_some_and(|s| s.step == 3));
    let got = snapshot(&e).unwrap().filters.conv2_w.clone();

    // The same steps in a one-thread pool of our own give the same bits (the split of a batch
    // over threads sets the order of its sums, so the thread count is part of "same settings").
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let want = pool.install(|| {
        let mut s = session(ConvEngine::Fast);
        for _ in 0..3 {
            s.step_batch(&mut |_, _| {}).unwrap();
        }
        s.network().params.conv2_w.iter().copied().collect::<Vec<f32>>()
    });
    assert_eq!(got, want);

    // Back to one thread per core, the worker goes on training.
    worker.send(Command::SetComputeThreads(0));
    worker.send(Command::StepBatch);
    wait_for(&worker, "a batch on every core", |e| snapshot(e).is_some_and(|s| s.step == 4));
    assert!(worker.is_alive());
}
