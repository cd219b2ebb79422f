//! A real SIGTERM, as `kill` sends it, reaches `train`'s stop flag: the run saves and reports
//! the signal, whose exit code is 143. In a file of its own: the handlers stay installed for
//! the rest of the process, and a second signal would end it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::process::ExitCode;

use cnn_stepper_core::cli::args::{Outcome, exit_code};
use cnn_stepper_core::cli::{self, Console, Signal, StopFlag, TrainOptions};
use cnn_stepper_core::trainer::checkpoint;

#[test]
fn sigterm_stops_train_which_saves_and_exits_with_143() {
    let stop = StopFlag::new();
    stop.install_handlers().unwrap();
    assert_eq!(stop.raised(), None);
    signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
    assert_eq!(stop.raised(), Some(Signal::Terminate), "the handler raised the flag and the process lives on");

    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 32);
    let save = dir.path().join("w.safetensors");
    let o = TrainOptions {
        data: Some(dir.path().to_path_buf()),
        epochs: 1,
        batch: Some(16),
        save: Some(save.clone()),
        ..TrainOptions::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = cli::train(&o, &stop, &mut Console { out: &mut out, err: &mut err, progress: false }).unwrap();
    assert_eq!(summary.stopped, Some(Signal::Terminate));
    assert_eq!(summary.saved.as_deref(), Some(save.as_path()));
    assert_eq!(checkpoint::load(&save, None, Default::default(), None).unwrap().file.step, 0, "stopped before a step");
    assert!(String::from_utf8(err).unwrap().contains("stopped by SIGTERM"));
    assert_eq!(exit_code(&Ok(Outcome::Stopped(Signal::Terminate))), ExitCode::from(143));
}
