//! What a lesson in front of a class needs from the trainer (issue 12): stepping back one
//! phase, a Pause that lands inside a long naive phase, a learning-rate schedule that does not
//! stall a demo on the embedded sample, the size of each update and the diverged point.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::cell::Cell;

use cnn_stepper_core::engine::model::SeqState;
use cnn_stepper_core::engine::{ConvEngine, DECAY_EVERY_IMAGES, Hyper, LR_FLOOR, OptimizerKind, Phase, Preset};
use cnn_stepper_core::trainer::{Command, Event, Session, Snapshot, TrainError, Worker};
use common::{
    POST, SMALL, diverge, output, phase, sample, session, snapshot, steps, wait_for, wait_for_ok, with_batch,
};

/// Everything a step leaves behind that the next phases read or the window shows.
#[derive(Debug, PartialEq)]
struct State {
    net: SeqState<f32>,
    step: u64,
    phases_done: usize,
    epoch_position: usize,
    loss: Option<f32>,
    settings: cnn_stepper_core::trainer::Settings,
    shown: Snapshot,
    history: (String, String),
}

fn state(s: &mut Session) -> State {
    let net = common::state(s);
    let mut shown = s.snapshot();
    // Not state: how fast it went, and the curve points this snapshot happens to carry.
    shown.images_per_sec = 0.0;
    shown.new_loss_points.clear();
    shown.new_accuracy_points.clear();
    shown.new_magnitude_points.clear();
    shown.curves_reset = false;
    State {
        net,
        step: s.step(),
        phases_done: shown.phases_done,
        epoch_position: shown.epoch_position,
        loss: shown.loss,
        settings: s.settings(),
        shown,
        history: s.curves_csv(),
    }
}

fn phases(s: &mut Session, n: usize) {
    for _ in 0..n {
        s.step_phase(&mut |_, _| {}).unwrap();
    }
}

fn small_session() -> Session {
    with_batch(session(3, SMALL, ConvEngine::Fast), 8)
}

#[test]
fn a_step_back_gives_exactly_the_state_of_stepping_there_directly() {
    let len = small_session().network().phases().len();
    let loss = small_session().network().phases().iter().position(|p| *p == Phase::Loss).unwrap();
    // Back over the first phase, before and after the loss check, and from after the update.
    for target in [0, 2, loss, loss + 1, len - 1] {
        let mut direct = small_session();
        let mut back = small_session();
        // Two whole steps first: momentum and the last good batch are not empty any more.
        steps(&mut direct, 2);
        steps(&mut back, 2);
        phases(&mut direct, target);
        phases(&mut back, target + 1);
        let before = back.network().phases_done();
        back.step_back(&mut |_, _| {}).unwrap();
        assert_eq!(back.network().phases_done(), before - 1);
        if target > 0 {
            // (Back at 0 the batch stays loaded, ready for its first phase: no state stepped
            // to directly has that, so the comparison starts one phase later.)
            assert!(state(&mut back) == state(&mut direct), "back to {target} phases done");
        } else {
            phases(&mut direct, 1);
            phases(&mut back, 1);
            assert!(state(&mut back) == state(&mut direct), "back to the start, then one phase");
        }
        // And the run goes on identically from there.
        steps(&mut direct, 3);
        steps(&mut back, 3);
        assert!(state(&mut back) == state(&mut direct), "three steps after the step back to {target}");
    }
}

#[test]
fn a_step_back_from_after_the_update_takes_the_step_out_of_the_curves_and_the_counters() {
    let mut s = small_session();
    steps(&mut s, 2);
    let before = (s.curves_csv(), s.epoch_stats());
    steps(&mut s, 1);
    assert_eq!(s.step(), 3);
    let last = s.step_back(&mut |_, _| {}).unwrap();
    assert_eq!(last, s.network().phases().iter().rev().nth(1).copied(), "the phase before the update");
    assert_eq!(s.step(), 2);
    assert_eq!((s.curves_csv(), s.epoch_stats()), before);
    let snap = s.snapshot();
    assert!(snap.curves_reset, "the window replaces its curves");
    assert_eq!(snap.new_loss_points.last().map(|p| p.step), Some(2));
}

#[test]
fn a_step_back_is_refused_at_the_start_of_a_batch_with_the_reason() {
    let mut s = small_session();
    let fresh = s.snapshot();
    assert!(fresh.step_back_refusal.is_some(), "nothing has run yet");
    assert!(matches!(s.step_back(&mut |_, _| {}), Err(TrainError::CannotStepBack { .. })));
    phases(&mut s, 1);
    assert_eq!(s.snapshot().step_back_refusal, None);
    s.step_back(&mut |_, _| {}).unwrap();
    let e = s.step_back(&mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("at the start of the batch"), "{e}");
    assert_eq!(
        s.snapshot().step_back_refusal.as_deref(),
        Some("at the start of the batch: the state before it is not kept")
    );
    // The batch is still loaded: stepping on runs its first phase, not a new batch's.
    let position = s.epoch_position();
    phases(&mut s, 1);
    assert_eq!(s.epoch_position(), position);
}

#[test]
fn a_stop_inside_a_naive_phase_abandons_it_and_the_run_goes_on_bit_identically() {
    let naive = || with_batch(session(5, SMALL, ConvEngine::Naive), 6);
    let conv2 = naive().network().phases().iter().position(|p| *p == Phase::Forward(2)).unwrap();
    let mut direct = naive();
    let mut stopped = naive();
    steps(&mut direct, 1);
    steps(&mut stopped, 1);
    phases(&mut direct, conv2);
    phases(&mut stopped, conv2);
    // Stop after the third image of conv2: the naive loop checks before each image and filter.
    let images = Cell::new(0);
    let ran = stopped.step_phase_unless(&mut |done, _| images.set(done), &|| images.get() >= 3).unwrap();
    assert_eq!(ran, None, "the phase was abandoned");
    assert_eq!(images.get(), 3, "it stopped inside the phase, at the first check after the stop");
    assert_eq!(stopped.network().phases_done(), conv2, "conv2 is still the next phase");
    assert_eq!(output(&stopped.snapshot(), "conv2"), &[] as &[f32], "a half-computed map is not shown");
    // A stop raised before a phase starts runs nothing, not even a new batch.
    assert_eq!(stopped.step_phase_unless(&mut |_, _| {}, &|| true).unwrap(), None);
    // Resumed, the phase runs again whole and everything matches the run never stopped.
    steps(&mut direct, 2);
    steps(&mut stopped, 2);
    assert_eq!(state(&mut stopped), state(&mut direct));
}

#[test]
fn a_pause_sent_in_the_middle_of_naive_conv2_lands_inside_that_phase() {
    // Batches of 256 make the naive conv2 a phase of seconds, reporting progress per image.
    let s = with_batch(session(1, POST, ConvEngine::Naive), 256);
    let forward_conv2 = phase(s.model(), "forward conv2");
    let conv2 = s.network().phases().iter().position(|p| *p == forward_conv2).unwrap();
    let worker = Worker::spawn(s, || {}).unwrap();
    wait_for(&worker, "the first snapshot", |e| snapshot(e).is_some());
    worker.send(Command::Run);
    wait_for_ok(
        &worker,
        "the first half of forward conv2",
        |e| matches!(e, Event::Progress { what, done, total } if what == "forward conv2" && *done <= total / 2),
    );
    worker.send(Command::Pause);
    let e = wait_for_ok(&worker, "the pause", |e| snapshot(e).is_some_and(|s| !s.running));
    let paused = snapshot(&e).unwrap();
    assert_eq!(paused.phases_done, conv2, "forward conv2 was abandoned and no later phase ran");
    assert_eq!(paused.next_phase(), Some(forward_conv2));
    assert!(output(paused, "conv2").is_empty(), "no half-computed maps");
    // Stepping on runs that phase again, whole.
    worker.send(Command::StepPhase);
    let e = wait_for_ok(&worker, "conv2 run again", |e| snapshot(e).is_some_and(|s| s.phases_done == conv2 + 1));
    assert!(!output(snapshot(&e).unwrap(), "conv2").is_empty());
}

#[test]
fn step_back_through_the_worker_answers_with_a_snapshot_or_the_reason() {
    let worker = Worker::spawn(small_session(), || {}).unwrap();
    wait_for(&worker, "the first snapshot", |e| snapshot(e).is_some());
    worker.send(Command::StepPhase);
    worker.send(Command::StepPhase);
    wait_for_ok(&worker, "two phases", |e| snapshot(e).is_some_and(|s| s.phases_done == 2));
    worker.send(Command::StepBack);
    wait_for_ok(&worker, "the step back", |e| snapshot(e).is_some_and(|s| s.phases_done == 1));
    worker.send(Command::StepBack);
    worker.send(Command::StepBack);
    let e = wait_for(&worker, "the refusal", |e| matches!(e, Event::Error(_)));
    assert!(matches!(&e, Event::Error(m) if m.contains("cannot step back: at the start of the batch")), "{e:?}");
}

#[test]
fn on_sixty_thousand_images_the_schedule_is_the_old_per_epoch_decay() {
    // The command line's full-MNIST runs (the README's 98.98%) train exactly as before.
    let h = Preset::Recommended.hyper();
    let len = 60_000u64;
    let old = |epoch: u64| h.lr * h.lr_decay.powi(epoch as i32);
    for epoch in 0..3u64 {
        for position in [0, 32, 59_968] {
            // The sampler's count after drawing the batch, as the session computes it.
            let images = epoch * len + position;
            assert_eq!(h.schedule(images).lr.to_bits(), old(epoch).to_bits(), "epoch {epoch} position {position}");
        }
    }
    // The batch that ends epoch 0 already trains at epoch 1's rate, as it did.
    assert_eq!(h.schedule(len).lr.to_bits(), old(1).to_bits());
    assert_eq!(DECAY_EVERY_IMAGES, len);
}

#[test]
fn the_learning_rate_stops_falling_at_the_floor() {
    let h = Hyper { lr: 0.01, momentum: 0.9, reg: 0.0, lr_decay: 0.3, optimizer: OptimizerKind::Sgd };
    let s = h.schedule(10 * DECAY_EVERY_IMAGES);
    assert_eq!(s.lr, 0.01 * LR_FLOOR);
    assert!(s.floored && s.next_at.is_none(), "{s:?}");
    let early = h.schedule(DECAY_EVERY_IMAGES + 5);
    assert_eq!((early.decays, early.floored, early.next_at), (1, false, Some(2 * DECAY_EVERY_IMAGES)));
    let constant = Hyper { lr_decay: 1.0, ..h }.schedule(5 * DECAY_EVERY_IMAGES);
    assert_eq!((constant.lr, constant.next_at), (0.01, None));
}

#[test]
fn on_the_embedded_sample_two_passes_train_at_the_full_learning_rate() {
    // The demo that stalled: 313 steps of 32 are one pass over the sample's 10,000 images,
    // and the old per-pass decay had the rate at 0.0009 after two.
    let mut s = Session::new(sample(), 1, Preset::Recommended, SMALL, ConvEngine::Fast).unwrap();
    let pass = s.data().train.len().div_ceil(32);
    assert_eq!(pass, 313);
    steps(&mut s, 2 * pass);
    assert_eq!(s.epoch(), 2);
    let snap = s.snapshot();
    let lr = Preset::Recommended.hyper().lr;
    assert!(snap.effective_lr >= lr * LR_FLOOR);
    assert_eq!(snap.images_seen, 2 * s.data().train.len() as u64);
    assert_eq!(snap.effective_lr, lr, "fewer than 60,000 images: no decay yet");
    assert_eq!(snap.lr_schedule.next_at, Some(DECAY_EVERY_IMAGES));
}

#[test]
fn the_snapshot_after_the_update_says_how_large_it_was() {
    // The post's preset has no momentum: the change is exactly −lr·gradient.
    let mut s = Session::new(sample(), 2, Preset::Post, SMALL, ConvEngine::Fast).unwrap();
    let len = s.network().phases().len();
    phases(&mut s, len - 1);
    assert_eq!(s.snapshot().update, None, "no update before the update phase");
    phases(&mut s, 1);
    let update = s.snapshot().update.expect("the update's sizes");
    let tensors: Vec<&str> = update.iter().map(|u| u.tensor.as_str()).collect();
    assert_eq!(tensors, ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]);
    for u in update {
        assert!(u.delta > 0.0 && u.weight > 0.0, "{u:?}");
        assert!((u.delta - u.plain_step()).abs() <= 1e-4 * u.delta, "{u:?}");
        assert_eq!(u.lr, Preset::Post.hyper().lr);
    }
}

#[test]
fn a_divergence_reaches_the_next_snapshot_with_its_step_and_loss() {
    let mut s = session(1, SMALL, ConvEngine::Fast);
    steps(&mut s, 3);
    let e = diverge(&mut s);
    let TrainError::Diverged { step, loss, .. } = e else { panic!("{e}") };
    let snap = s.snapshot();
    let d = snap.diverged.expect("the diverged point");
    assert_eq!((d.step, d.loss.to_bits()), (step, loss.to_bits()));
    assert!(snap.step < step, "training was rewound to before it");
    assert_eq!(s.snapshot().diverged, None, "reported once");
}
