//! The trainer driven through its protocol: the synchronous session directly, and the worker
//! thread through commands and events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cnn_stepper_core::engine::{ConvEngine, Hyper, OptimizerKind, Phase, Preset, Setting};
use cnn_stepper_core::trainer::{Command, Event, Session, Settings, TrainError, Worker};
use common::{POST, grad, output, phase, snapshot, state, wait_for_ok as wait_for};

fn session(engine: ConvEngine) -> Session {
    common::session(7, POST, engine)
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
    // Every layer forward, the loss and its gradient, every layer backward, the update.
    let layers = s.model().plan.layers.len();
    assert_eq!((layers, phases.len()), (7, 2 * 7 + 3));
    let labels: Vec<String> = phases.iter().map(|p| s.model().phase_label(*p)).collect();
    assert_eq!(labels[..3], ["forward conv1", "forward relu1", "forward conv2"]);
    assert_eq!(labels[7..10], ["loss", "backward loss", "backward fc2"]);
    assert_eq!(labels.last().map(String::as_str), Some("update"));
    // The next phase starts a new batch.
    assert_eq!(s.step_phase(&mut |_, _| {}).unwrap(), Phase::Forward(0));
}

#[test]
fn snapshot_shows_only_what_the_phases_so_far_computed() {
    let mut s = session(ConvEngine::Fast);
    s.step_phase(&mut |_, _| {}).unwrap(); // forward conv1
    let snap = s.snapshot();
    assert_eq!(snap.sample.input.len(), 28 * 28);
    assert_eq!(output(&snap, "conv1").len(), 16 * 28 * 28);
    assert!(output(&snap, "relu1").is_empty() && output(&snap, "conv2").is_empty());
    assert!(snap.batch.probs.is_empty() && snap.loss.is_none());
    assert!(snap.filters.convs[0].grad.is_empty());
    let backward_conv2 = phase(s.model(), "backward conv2");
    while s.snapshot().last_phase() != Some(backward_conv2) {
        s.step_phase(&mut |_, _| {}).unwrap();
    }
    let snap = s.snapshot();
    assert_eq!(grad(&snap, "conv2").len(), 32 * 28 * 28);
    assert_eq!(grad(&snap, "relu1").len(), 16 * 28 * 28);
    assert!(grad(&snap, "conv1").is_empty());
    assert_eq!(snap.filters.convs[1].grad.len(), 32 * 16 * 25);
    assert!(snap.filters.convs[0].grad.is_empty());
    assert_eq!(snap.batch.probs.len(), 32 * 10);
    assert!(snap.loss.is_some());
}

#[test]
fn snapshot_carries_conv_biases_and_after_an_update_the_weights_the_maps_came_from() {
    let mut s = session(ConvEngine::Fast);
    s.step_batch(&mut |_, _| {}).unwrap();
    let snap = s.snapshot();
    let (conv1, conv2) = (&snap.filters.convs[0], &snap.filters.convs[1]);
    assert_eq!((conv1.name.as_str(), conv1.layer, conv2.name.as_str(), conv2.layer), ("conv1", 0, "conv2", 2));
    assert_eq!((conv1.bias.len(), conv2.bias.len()), (16, 32));
    assert!(conv1.bias.iter().any(|b| *b != 0.0), "the update moved the biases");
    // The step's forward pass ran with the initial weights: zero biases, and current − Δ.
    let before1 = conv1.before_update.as_ref().expect("after the update, the forward's weights");
    let before2 = conv2.before_update.as_ref().expect("after the update, the forward's weights");
    assert!(before1.1.iter().chain(&before2.1).all(|b| *b == 0.0));
    for ((w, old), delta) in conv2.weight.iter().zip(&before2.0).zip(&conv2.delta) {
        assert!((w - delta - old).abs() <= 1e-6, "{w} − {delta} ≠ {old}");
    }
    assert_eq!(conv2.forward_weights().1, before2.1.as_slice());
    // Once the next batch's forward pass starts, the current weights are the forward's again.
    s.step_phase(&mut |_, _| {}).unwrap();
    let f = s.snapshot().filters;
    assert!(f.convs.iter().all(|c| c.before_update.is_none()));
    assert_eq!(f.convs[0].forward_weights().0, f.convs[0].weight.as_slice());
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
        (points, state(&s))
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
        (Settings { batch_size: 0, ..good }, Setting::BatchSize, "batch size = 0: must be between 1 and 1024"),
        (
            Settings { hyper: Hyper { lr: -1.0, ..good.hyper }, ..good },
            Setting::LearningRate,
            "learning rate = -1: must be above 0",
        ),
        (
            Settings { hyper: Hyper { momentum: 1.5, ..good.hyper }, ..good },
            Setting::Momentum,
            "momentum = 1.5: must be",
        ),
        (Settings { hyper: Hyper { reg: 1e30, ..good.hyper }, ..good }, Setting::Reg, "reg = 1e30: is far too large"),
        (Settings { batch_size: 10_001, ..good }, Setting::BatchSize, "batch size = 10001"),
    ];
    for (bad, setting, words) in cases {
        let Err(TrainError::Settings(e)) = s.set_settings(bad) else { panic!("{bad:?} was accepted") };
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(e.problems[0].setting, setting);
        assert!(e.to_string().starts_with(words), "{e}");
    }
    assert_eq!(s.settings(), good);
}

#[test]
fn every_bad_setting_is_named_at_once_not_only_the_first() {
    let mut s = session(ConvEngine::Fast);
    let good = s.settings();
    let bad = Settings {
        hyper: Hyper { lr: 0.0, momentum: 1.0, reg: f32::NAN, lr_decay: 2.0, optimizer: OptimizerKind::Sgd },
        batch_size: 0,
        ..good
    };
    let Err(TrainError::Settings(e)) = s.set_settings(bad) else { panic!("accepted") };
    let named: Vec<Setting> = e.problems.iter().map(|p| p.setting).collect();
    assert_eq!(
        named,
        [Setting::LearningRate, Setting::Momentum, Setting::Reg, Setting::LrDecay, Setting::BatchSize],
        "{e}"
    );
    assert_eq!(e.to_string().matches("; ").count(), 4, "one message with all five: {e}");
    // The same list from validate alone, and the batch limit is the one constant.
    assert_eq!(bad.validate().unwrap_err(), e);
    let largest = Settings { batch_size: cnn_stepper_core::engine::MAX_BATCH, ..good };
    assert!(largest.validate().is_ok());
    assert!(Settings { batch_size: cnn_stepper_core::engine::MAX_BATCH + 1, ..good }.validate().is_err());
}

#[test]
fn a_batch_larger_than_the_training_set_is_a_settings_problem() {
    let mut s = Session::new(common::first(64), 1, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    let bad = Settings { batch_size: 100, ..s.settings() };
    let Err(TrainError::Settings(e)) = s.set_settings(bad) else { panic!("accepted") };
    assert!(e.concerns(Setting::BatchSize));
    assert!(e.to_string().contains("larger than the training set (64 images)"), "{e}");
}

#[test]
fn a_diverging_learning_rate_is_reported_not_a_crash() {
    let mut s = session(ConvEngine::Fast);
    let e = common::diverge(&mut s);
    let TrainError::Diverged { lr, momentum, restored_to, step, .. } = e else { panic!("{e}") };
    assert_eq!((lr, momentum), (10.0, 0.99));
    assert_eq!(restored_to, Some(s.step()));
    assert!(step > s.step());
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

#[test]
fn epoch_stats_sum_the_epochs_steps_and_start_over_with_the_next_epoch() {
    // 96 images in batches of 32: three steps an epoch.
    let mut s = Session::new(common::first(96), 1, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    let mut points = Vec::new();
    for _ in 0..3 {
        points.push(s.step_batch(&mut |_, _| {}).unwrap());
    }
    assert_eq!(s.epoch(), 1, "the third step finished epoch 0");
    let st = s.epoch_stats();
    assert_eq!((st.epoch, st.first_image, st.steps, st.images), (0, 0, 3, 96));
    assert!(!st.is_partial());
    let loss_sum: f64 = points.iter().map(|p| f64::from(p.loss)).sum();
    assert_eq!(st.loss_sum, loss_sum);
    let correct: f32 = points.iter().map(|p| p.batch_accuracy * 32.0).sum();
    assert_eq!(st.correct, correct.round() as usize);
    assert_eq!(s.history().loss(), points.as_slice(), "step_batch returns the history's points");

    s.step_batch(&mut |_, _| {}).unwrap();
    let st = s.epoch_stats();
    assert_eq!((st.epoch, st.steps, st.images), (1, 1, 32));
}

#[test]
fn evaluation_stops_between_chunks_when_asked() {
    let mut s = session(ConvEngine::Fast);
    let mut done = Vec::new();
    let stop_after = std::cell::Cell::new(0);
    let r = s
        .evaluate_unless(
            0,
            &mut |d, total| {
                assert_eq!(total, 10_000);
                done.push(d);
                stop_after.set(stop_after.get() + 1);
            },
            &|| stop_after.get() >= 2,
        )
        .unwrap();
    assert!(r.is_none(), "stopped");
    assert_eq!(done, [250, 500], "two chunks of 250, then the stop was seen");
    let all = s.evaluate_unless(0, &mut |_, _| {}, &|| false).unwrap().unwrap();
    assert_eq!(all.count, 10_000);
}

#[test]
fn an_evaluation_becomes_a_curve_point_of_its_own_step_only() {
    let mut s = session(ConvEngine::Fast);
    s.step_batch(&mut |_, _| {}).unwrap();
    let r = s.evaluate(300, &mut |_, _| {}).unwrap();
    s.record_accuracy(&r);
    s.record_accuracy(&r);
    assert_eq!(s.history().accuracy().len(), 1, "once per step");
    assert_eq!(s.history().accuracy()[0].step, 1);
    assert_eq!(s.history().accuracy()[0].accuracy, r.accuracy());
    s.step_batch(&mut |_, _| {}).unwrap();
    s.record_accuracy(&r);
    assert_eq!(s.history().accuracy().len(), 1, "a result of older weights is not a point of this step");
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
    // The phase running is abandoned: the pause may land inside the very first one.
    assert!(s.phases_done < s.phases.len() && !s.batch.labels.is_empty(), "paused inside the batch");
}

#[test]
fn reset_starts_over_and_shutdown_joins_the_thread() {
    let worker = Worker::spawn(session(ConvEngine::Fast), || {}).unwrap();
    worker.send(Command::StepBatch);
    wait_for(&worker, "a batch", |e| snapshot(e).is_some_and(|s| s.step == 1));
    worker.send(Command::Reset { seed: 99, preset: Preset::Post, model: POST.into() });
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
    let s = Session::new(common::first(96), 1, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    let worker = Worker::spawn(s, || {}).unwrap();
    worker.send(Command::RunEpoch);
    let e = wait_for(&worker, "the epoch to end", |e| snapshot(e).is_some_and(|s| !s.running && s.epoch == 1));
    assert_eq!(snapshot(&e).unwrap().step, 3, "96 images in batches of 32");
}

#[test]
fn a_reader_that_falls_behind_gets_few_snapshots_but_every_curve_point() {
    let worker = Worker::spawn(session(ConvEngine::Fast), || {}).unwrap();
    let (mut points, mut last_step) = (Vec::new(), 0);
    // Rounds of reading nothing for a while, as a minimised window would, until it trained
    // a few steps (on a busy machine a round may hold only one or two).
    for _ in 0..30 {
        worker.send(Command::Run);
        std::thread::sleep(Duration::from_secs(2));
        worker.send(Command::Pause);
        std::thread::sleep(Duration::from_millis(500));
        let mut snapshots = 0;
        while let Some(e) = worker.recv_timeout(Duration::from_millis(200)) {
            if let Event::Snapshot(s) = e {
                snapshots += 1;
                points.extend(s.new_loss_points.iter().map(|p| p.step));
                last_step = s.step;
            }
        }
        assert!(snapshots <= 6, "{snapshots} snapshots queued for an idle reader");
        if last_step >= 5 {
            break;
        }
    }
    assert!(last_step >= 5, "it trained while nobody read ({last_step} steps)");
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
    let got = snapshot(&e).unwrap().filters.convs[1].weight.clone();

    // The same steps in a one-thread pool of our own give the same bits (the split of a batch
    // over threads sets the order of its sums, so the thread count is part of "same settings").
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let want = pool.install(|| {
        let mut s = session(ConvEngine::Fast);
        for _ in 0..3 {
            s.step_batch(&mut |_, _| {}).unwrap();
        }
        common::param(&s, "conv2.weight").to_vec()
    });
    assert_eq!(got, want);

    // Back to one thread per core, the worker goes on training.
    worker.send(Command::SetComputeThreads(0));
    worker.send(Command::StepBatch);
    wait_for(&worker, "a batch on every core", |e| snapshot(e).is_some_and(|s| s.step == 4));
    assert!(worker.is_alive());
}
