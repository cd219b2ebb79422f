//! The headless commands as a user runs them: train on a small folder, save, evaluate, CSV,
//! Ctrl-C and SIGTERM in the middle of a step or of the test evaluation, divergence, resume,
//! and refusals of bad input by the command-line parser and by the functions behind it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use cnn_stepper_core::cli::args::{Cli, Outcome, exit_code};
use cnn_stepper_core::cli::{self, CliError, Console, Signal, StopFlag, TrainOptions, TrainSummary};
use cnn_stepper_core::data::{self, DataError};
use cnn_stepper_core::engine::{ConvEngine, MAX_BATCH, OptimizerKind, Preset, Setting};
use cnn_stepper_core::trainer::{Session, Settings, TrainError, checkpoint};

fn options(dir: &Path) -> TrainOptions {
    TrainOptions {
        data: Some(dir.to_path_buf()),
        epochs: 2,
        batch: Some(16),
        seed: Some(3),
        save: Some(dir.join("w.safetensors")),
        ..TrainOptions::default()
    }
}

/// What one `train` run wrote and returned.
struct Run {
    result: Result<TrainSummary, CliError>,
    out: String,
    err: String,
}

fn run_with(
    o: &TrainOptions,
    stop: &StopFlag,
    err: &mut dyn Write,
    progress: bool,
) -> (Result<TrainSummary, CliError>, String) {
    let mut out = Vec::new();
    let result = cli::train(o, stop, &mut Console { out: &mut out, err, progress });
    (result, String::from_utf8(out).unwrap())
}

/// `train` with standard error captured; no progress bar, as in a log file.
fn run(o: &TrainOptions) -> Run {
    let mut err = Vec::new();
    let (result, out) = run_with(o, &StopFlag::new(), &mut err, false);
    Run { result, out, err: String::from_utf8(err).unwrap() }
}

/// Standard error that raises `stop` the first time text containing `trigger` is written to
/// it: a signal arriving while `train` draws its progress bar, which it does in the middle of
/// a (naive) step and of the test evaluation.
struct SignalOnWrite {
    stop: StopFlag,
    signal: Signal,
    trigger: &'static str,
    text: Vec<u8>,
}

impl Write for SignalOnWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.stop.raised().is_none() && String::from_utf8_lossy(buf).contains(self.trigger) {
            self.stop.raise(self.signal);
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `train` with a progress bar and a signal raised at the first bar text holding `trigger`.
fn run_signalled(o: &TrainOptions, signal: Signal, trigger: &'static str) -> Run {
    let stop = StopFlag::new();
    let mut err = SignalOnWrite { stop: stop.clone(), signal, trigger, text: Vec::new() };
    let (result, out) = run_with(o, &stop, &mut err, true);
    Run { result, out, err: String::from_utf8(err.text).unwrap() }
}

fn saved_step(path: &Path) -> u64 {
    checkpoint::load(path, None, ConvEngine::Fast, None).unwrap().file.step
}

#[test]
fn train_prints_each_epoch_saves_and_eval_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 64);
    let r = run(&options(dir.path()));
    let summary = r.result.unwrap();
    let reports = &summary.reports;
    assert_eq!(reports.len(), 2, "{}", r.out);
    assert!(r.out.contains("epoch 1: mean loss") && r.out.contains("epoch 2: mean loss"), "{}", r.out);
    assert!(reports[1].mean_loss < reports[0].mean_loss, "{reports:?}");
    assert_eq!((reports[0].first_image, reports[0].images), (0, 64));
    assert!(r.out.contains("saved weights to"));
    assert_eq!((summary.stopped, summary.step), (None, 8));

    let csv = dir.path().join("pred.csv");
    let mut out = Vec::new();
    let acc = cli::eval(&dir.path().join("w.safetensors"), Some(dir.path()), None, Some(&csv), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let want = format!("test accuracy: {:.2}% ({}/64)", 100.0 * acc, (acc * 64.0).round() as usize);
    assert!(text.starts_with(&want), "{text} vs {want}");
    // Evaluating the saved weights gives what training reported after the last epoch.
    assert!((acc - reports[1].test_accuracy.unwrap()).abs() < 1e-6);
    let rows: Vec<String> = std::fs::read_to_string(&csv).unwrap().lines().map(String::from).collect();
    assert_eq!(rows[0], "index,label,predicted,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,label_name,predicted_name");
    assert_eq!(rows.len(), 65);
    let first: Vec<&str> = rows[1].split(',').collect();
    assert_eq!(first.len(), 15);
    let p_sum: f32 = first[3..13].iter().map(|v| v.parse::<f32>().unwrap()).sum();
    assert!((p_sum - 1.0).abs() < 1e-3);
    // The folder has no classes.txt: its names are the digits, so each name is its label.
    assert_eq!((first[13], first[14]), (first[1], first[2]));
}

#[test]
fn the_command_line_trains_exactly_as_a_session_does() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 48);
    run(&TrainOptions { epochs: 1, ..options(dir.path()) }).result.unwrap();
    let data = Arc::new(data::load_dir(dir.path(), None).unwrap());
    let mut s =
        common::with_batch(Session::new(data, 3, Preset::Recommended, common::POST, ConvEngine::Fast).unwrap(), 16);
    common::steps(&mut s, 3);
    let r = s.evaluate(0, &mut |_, _| {}).unwrap();
    s.record_accuracy(&r);
    let file = checkpoint::load(&dir.path().join("w.safetensors"), None, ConvEngine::Fast, None).unwrap().file;
    assert_eq!(file, s.to_file().unwrap());
}

#[test]
fn without_a_terminal_nothing_is_written_per_step_and_with_one_a_bar_is() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 64);
    let r = run(&options(dir.path()));
    r.result.unwrap();
    assert_eq!(r.err, "", "a log file gets no progress lines");

    let mut err = Vec::new();
    run_with(&options(dir.path()), &StopFlag::new(), &mut err, true).0.unwrap();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("\repoch 1/2 [") && err.contains("64/64"), "{err:?}");
}

#[test]
fn a_signal_during_a_step_lets_the_step_finish_then_saves_and_reports_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 32);
    // The naive engine reports progress inside its phases, so the bar (and the signal) comes
    // in the middle of the first step.
    let o = TrainOptions { engine: ConvEngine::Naive, batch: Some(2), ..options(dir.path()) };
    let r = run_signalled(&o, Signal::Interrupt, "epoch 1/2");
    let summary = r.result.unwrap();
    assert_eq!(summary.stopped, Some(Signal::Interrupt));
    assert!(summary.reports.is_empty());
    assert_eq!(summary.step, 1, "the step in progress finished, and no other began");
    assert_eq!(saved_step(&dir.path().join("w.safetensors")), 1);
    assert!(r.err.contains("Ctrl-C: finishing this step, then stopping"), "{}", r.err);
    assert!(r.err.contains("stopped by Ctrl-C after step 1"), "{}", r.err);
    assert!(!r.out.contains("stopped"), "the interruption is on stderr: {}", r.out);
    assert!(r.out.contains("saved weights to"), "{}", r.out);
    assert_eq!(Outcome::Stopped(Signal::Interrupt), summary.stopped.map_or(Outcome::Done, Outcome::Stopped));
}

#[test]
fn a_signal_during_the_test_evaluation_stops_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    common::folder(dir.path(), 32, 1000);
    let r = run_signalled(&options(dir.path()), Signal::Terminate, "epoch 1/2 test");
    let summary = r.result.unwrap();
    assert_eq!(summary.stopped, Some(Signal::Terminate));
    assert_eq!(summary.reports.len(), 1);
    assert_eq!(summary.reports[0].test_accuracy, None, "the evaluation did not run to the end");
    assert!(r.err.contains("250/1,000") && !r.err.contains("1,000/1,000"), "{}", r.err);
    assert!(r.out.contains("test accuracy not measured (stopped)"), "{}", r.out);
    assert!(r.err.contains("stopped by SIGTERM after step 2"), "{}", r.err);
    assert_eq!(saved_step(&dir.path().join("w.safetensors")), 2);
}

#[test]
fn exit_codes_are_0_1_130_and_143() {
    assert_eq!(exit_code(&Ok(Outcome::Done)), ExitCode::SUCCESS);
    assert_eq!(exit_code(&Ok(Outcome::Stopped(Signal::Interrupt))), ExitCode::from(130));
    assert_eq!(exit_code(&Ok(Outcome::Stopped(Signal::Terminate))), ExitCode::from(143));
    assert_eq!(exit_code(&Err(CliError::NothingToExport)), ExitCode::FAILURE);
}

#[test]
fn a_divergence_stops_the_run_and_saves_the_last_good_state() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 64);
    let o = TrainOptions { lr: Some(10.0), momentum: Some(0.99), epochs: 50, batch: Some(4), ..options(dir.path()) };
    let r = run(&o);
    let Err(CliError::Diverged { error, saved }) = r.result else { panic!("{:?}\n{}", r.result, r.out) };
    let TrainError::Diverged { restored_to: Some(good), step, .. } = *error else { panic!("{error}") };
    let path = dir.path().join("w.safetensors");
    assert_eq!(saved.as_deref(), Some(path.as_path()));
    assert_eq!(saved_step(&path), good);
    assert!(step > good);
    let file = checkpoint::load(&path, None, ConvEngine::Fast, None).unwrap().file;
    assert!(file.tensors.iter().flat_map(|t| &t.data).chain(file.momentum.iter().flatten()).all(|v| v.is_finite()));
    let message = CliError::Diverged { error, saved }.to_string();
    assert!(message.contains("training diverged") && message.contains("--resume"), "{message}");

    let r = run(&TrainOptions { save: None, ..o });
    let Err(e @ CliError::Diverged { saved: None, .. }) = r.result else { panic!("{:?}", r.result) };
    assert!(e.to_string().contains("Nothing was saved"), "{e}");
}

#[test]
fn absurd_hyper_parameters_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    for (o, setting) in [
        (TrainOptions { lr: Some(0.0), ..options(dir.path()) }, Setting::LearningRate),
        (TrainOptions { batch: Some(0), ..options(dir.path()) }, Setting::BatchSize),
        (TrainOptions { batch: Some(MAX_BATCH + 1), ..options(dir.path()) }, Setting::BatchSize),
        (TrainOptions { momentum: Some(1.0), ..options(dir.path()) }, Setting::Momentum),
        (TrainOptions { reg: Some(1e30), ..options(dir.path()) }, Setting::Reg),
    ] {
        // The folder is empty: a refusal that came after reading it would be a data error.
        let Err(CliError::Settings(e)) = run(&o).result else { panic!("{o:?} was not refused") };
        assert_eq!(e.problems.iter().map(|p| p.setting).collect::<Vec<_>>(), [setting], "{e}");
    }
    let both = TrainOptions { lr: Some(-1.0), reg: Some(-1.0), ..options(dir.path()) };
    let Err(CliError::Settings(e)) = run(&both).result else { panic!() };
    assert_eq!(e.problems.len(), 2, "every problem at once: {e}");
    assert!(matches!(run(&TrainOptions { epochs: 0, ..options(dir.path()) }).result, Err(CliError::Epochs(0))));
}

#[test]
fn a_missing_data_folder_or_weights_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = run(&TrainOptions { data: Some(missing.clone()), ..options(dir.path()) }).result.unwrap_err();
    assert!(matches!(&err, CliError::Data(DataError::FolderMissing { dir }) if *dir == missing), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = cli::eval(&dir.path().join("absent.safetensors"), None, None, None, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, CliError::Weights(_)) && err.to_string().contains("absent.safetensors"), "{err}");
    std::fs::write(dir.path().join("junk.safetensors"), b"not a safetensors file").unwrap();
    let err = cli::eval(&dir.path().join("junk.safetensors"), None, None, None, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("junk.safetensors"), "{err}");
}

#[test]
fn a_save_path_that_cannot_be_written_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 32);
    std::fs::create_dir(dir.path().join("a-folder")).unwrap();
    for (save, kind) in [("no/such/folder/w.safetensors", "folder"), ("a-folder", "directory")] {
        let save = dir.path().join(save);
        let r = run(&TrainOptions { save: Some(save.clone()), ..options(dir.path()) });
        let Err(CliError::File(e)) = r.result else { panic!("{save:?}: {:?}", r.result) };
        assert_eq!(e.path(), save.as_path());
        assert!(e.to_string().contains(kind), "{e}");
        assert_eq!(r.out, "", "refused before any training");
    }
}

#[test]
fn eval_reads_only_the_test_files_of_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 32);
    run(&TrainOptions { epochs: 1, ..options(dir.path()) }).result.unwrap();
    // A training labels file that could not be read: eval does not need it.
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), b"damaged").unwrap();
    assert!(data::load_dir(dir.path(), None).is_err(), "the folder as a whole is refused");
    let mut out = Vec::new();
    cli::eval(&dir.path().join("w.safetensors"), Some(dir.path()), None, None, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().starts_with("test accuracy:"));
}

#[test]
fn options_that_choose_the_network_are_refused_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 32);
    run(&TrainOptions { epochs: 1, ..options(dir.path()) }).result.unwrap();
    let resume =
        TrainOptions { resume: Some(dir.path().join("w.safetensors")), seed: None, save: None, ..options(dir.path()) };
    let refused = |o: TrainOptions, option: &str| {
        let Err(CliError::ResumeConflict { option: got, reason }) = run(&o).result else { panic!("{o:?} accepted") };
        assert_eq!(got, option);
        assert!(reason.contains("w.safetensors"), "{reason}");
    };
    refused(TrainOptions { relu_after_conv2: true, ..resume.clone() }, "--relu-after-conv2");
    refused(TrainOptions { preset: Some(Preset::Post), ..resume.clone() }, "--preset");
    refused(TrainOptions { seed: Some(3), ..resume.clone() }, "--seed");
    run(&resume).result.unwrap();
    // The parser refuses them too, before anything runs.
    for flag in ["--relu-after-conv2", "--seed=4", "--preset=post"] {
        let e = Cli::try_parse_from(["cnn-stepper", "train", "--resume", "f", flag]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{flag}: {e}");
    }
}

#[test]
fn an_epoch_resumed_in_its_middle_says_which_images_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 48);
    let data = Arc::new(data::load_dir(dir.path(), None).unwrap());
    let mut s =
        common::with_batch(Session::new(data, 3, Preset::Recommended, common::POST, ConvEngine::Fast).unwrap(), 16);
    common::steps(&mut s, 1);
    let path = dir.path().join("mid.safetensors");
    s.save_checkpoint(&path).unwrap();
    let r = run(&TrainOptions { epochs: 1, resume: Some(path), seed: None, save: None, ..options(dir.path()) });
    let report = &r.result.unwrap().reports[0];
    assert_eq!((report.first_image, report.images), (16, 32));
    assert!(r.out.contains("epoch 1 (resumed mid-epoch: images 17–48 only): mean loss"), "{}", r.out);
}

#[test]
fn the_parser_refuses_out_of_range_values_with_the_ranges_its_help_shows() {
    let parse = |args: &[&str]| Cli::try_parse_from(["cnn-stepper"].iter().chain(args));
    for (args, words) in [
        (&["train", "--batch", "0"][..], "1..=1024"),
        (&["train", "--batch", "1025"], "1..=1024"),
        (&["train", "--epochs", "0"], "1..=10000"),
        (&["train", "--lr", "-1"], "learning rate must be above 0 and at most 10"),
        (&["train", "--lr", "11"], "learning rate is far too large"),
        (&["train", "--reg", "1e30"], "reg is far too large: must be at least 0 and at most 1"),
        (&["train", "--momentum", "1"], "momentum must be at least 0 and below 1"),
        (&["train", "--lr-decay", "-0.5"], "lr decay must be above 0 and at most 1"),
        (&["train", "--lr", "NaN"], "learning rate must be"),
        (&["bench", "--secs", "NaN"], "above 0"),
        (&["bench", "--secs", "-1"], "above 0"),
        (&["bench", "--secs", "0"], "above 0"),
        (&["bench", "--batch", "2000"], "1..=1024"),
    ] {
        let e = parse(args).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{args:?}: {e}");
        assert!(e.to_string().contains(words), "{args:?}: {e}");
    }
    // A batch the command line takes is one the window takes: one limit.
    let cli = parse(&["train", "--batch", "1000", "--lr", "0.5", "--reg", "0"]).unwrap();
    let Some(cli::args::Command::Train { batch: Some(1000), .. }) = cli.command else { panic!("{cli:?}") };
    assert!(
        Settings { batch_size: 1000, ..Settings::from_preset(Preset::Recommended, ConvEngine::Fast) }
            .validate()
            .is_ok()
    );

    let mut cmd = Cli::command();
    let help = cmd.find_subcommand_mut("train").unwrap().render_help().to_string();
    for words in ["above 0 and at most 10", "between 1 and 1024", "at least 0 and at most 1", "1 to 10000"] {
        assert!(help.contains(words), "--help lacks {words:?}:\n{help}");
    }
}

#[test]
fn bench_refuses_what_the_parser_would() {
    assert!(matches!(cli::bench(ConvEngine::Fast, 8, f64::NAN), Err(CliError::BenchSecs(_))));
    assert!(matches!(cli::bench(ConvEngine::Fast, 8, 0.0), Err(CliError::BenchSecs(_))));
    let Err(CliError::Settings(e)) = cli::bench(ConvEngine::Fast, MAX_BATCH + 1, 0.1) else { panic!() };
    assert!(e.concerns(Setting::BatchSize));
}

#[test]
fn flop_count_matches_the_network() {
    // conv2 alone: 3 passes × 2·32·16·25·784 ≈ 60.2 MFLOP; the whole step ≈ 76.5 MFLOP.
    let f = cli::flops_per_image(&Default::default());
    assert!((f / 1e6 - 76.5).abs() < 0.5, "{}", f / 1e6);
    assert_eq!(cli::thousands(60000), "60,000");
    assert_eq!(cli::thousands(999), "999");
}

#[test]
fn train_model_lenet5_trains_and_saves_lenet5_exactly_as_a_session_does() {
    // 256 images of the embedded sample in batches of 32: eight steps.
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 256);
    let o = TrainOptions { model: Some("lenet5".into()), epochs: 1, batch: Some(32), ..options(dir.path()) };
    let r = run(&o);
    let summary = r.result.unwrap();
    assert!(r.out.contains("training lenet5 on"), "the start line names the network: {}", r.out);
    assert_eq!(summary.step, 8);
    let report = &summary.reports[0];
    assert_eq!(report.images, 256);
    assert!(report.test_accuracy.is_some() && report.mean_loss.is_finite(), "{report:?}");

    let path = dir.path().join("w.safetensors");
    let file = checkpoint::load(&path, None, ConvEngine::Fast, None).unwrap().file;
    assert_eq!(file.model, "lenet5");
    let names: Vec<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
    let lenet: Vec<String> =
        [0, 3, 7, 9, 11].iter().flat_map(|i| [format!("{i}.weight"), format!("{i}.bias")]).collect();
    assert_eq!(names, lenet, "PyTorch's state_dict names of LeNet-5's nn.Sequential");

    let data = Arc::new(data::load_dir(dir.path(), None).unwrap());
    let mut s = common::with_batch(Session::new(data, 3, Preset::Recommended, "lenet5", ConvEngine::Fast).unwrap(), 32);
    common::steps(&mut s, 8);
    let e = s.evaluate(0, &mut |_, _| {}).unwrap();
    s.record_accuracy(&e);
    assert_eq!(file, s.to_file().unwrap(), "the command line's run is the session's, bit for bit");
    assert_eq!(report.test_accuracy, Some(e.accuracy()));

    // And `eval` reads the file back as LeNet-5.
    let mut out = Vec::new();
    let acc = cli::eval(&path, Some(dir.path()), None, None, &mut out).unwrap();
    assert_eq!(acc, e.accuracy());
}

#[test]
fn train_model_takes_a_line_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 48);
    let line = "conv(4,3,stride=2), tanh, avgpool(2), flatten, fc(10)";
    let o = TrainOptions { model: Some(line.into()), epochs: 1, ..options(dir.path()) };
    let r = run(&o);
    r.result.unwrap();
    assert!(r.out.contains(&format!("training {line} on")), "{}", r.out);
    let resume = TrainOptions {
        resume: Some(dir.path().join("w.safetensors")),
        seed: None,
        save: Some(dir.path().join("two.safetensors")),
        ..options(dir.path())
    };
    let r = run(&resume);
    assert_eq!(r.result.unwrap().reports.iter().map(|r| r.epoch).collect::<Vec<_>>(), [2]);
    let straight = TrainOptions {
        model: Some(line.into()),
        save: Some(dir.path().join("straight.safetensors")),
        ..options(dir.path())
    };
    run(&straight).result.unwrap();
    let load = |name: &str| checkpoint::load(&dir.path().join(name), None, ConvEngine::Fast, None).unwrap().file;
    let (resumed, straight) = (load("two.safetensors"), load("straight.safetensors"));
    assert_eq!(resumed.model, line);
    assert_eq!(resumed, straight, "resumed from the file, the line's run goes on as if never stopped");
}

#[test]
fn a_model_with_resume_is_refused_by_the_parser_and_by_train() {
    let e = Cli::try_parse_from(["cnn-stepper", "train", "--resume", "f", "--model", "lenet5"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{e}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.safetensors");
    let o = TrainOptions { model: Some("lenet5".into()), resume: Some(file), seed: None, ..options(dir.path()) };
    let e = run(&o).result.unwrap_err();
    assert!(matches!(e, CliError::ResumeConflict { option: "--model", .. }), "{e}");
    let message = e.to_string();
    assert!(message.contains("--model") && message.contains("run.safetensors"), "{message}");
}

#[test]
fn a_bad_model_line_is_refused_naming_the_layer_before_any_training() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 16);
    for (line, words) in [
        ("conv(6,5), relu, fc(100), fc(10)", "layer 3 `fc(100)`: add `flatten` before the first fc"),
        ("conv(6,5), relu, florp, flatten, fc(10)", "layer 3 `florp`: unknown layer `florp`"),
        ("conv(6,5), flatten, fc(12)", "layer 3 `fc(12)`: it is last, but the data has 10 classes"),
        ("conv(6,5), maxpool(40), flatten, fc(10)", "layer 2 `maxpool(40)`"),
    ] {
        let r = run(&TrainOptions { model: Some(line.into()), ..options(dir.path()) });
        let e = r.result.unwrap_err();
        assert!(e.to_string().contains(words), "{line}: {e}");
        assert!(!dir.path().join("w.safetensors").exists(), "{line}: nothing trained or saved");
    }
    let e = run(&TrainOptions { model: Some("lenet6".into()), ..options(dir.path()) }).result.unwrap_err();
    assert!(e.to_string().contains("lenet6"), "an unknown name is named: {e}");
}

#[test]
fn relu_after_conv2_is_post_relu_and_is_refused_with_another_network() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 32);
    let o = TrainOptions { relu_after_conv2: true, epochs: 1, ..options(dir.path()) };
    run(&o).result.unwrap();
    let file = checkpoint::load(&dir.path().join("w.safetensors"), None, ConvEngine::Fast, None).unwrap().file;
    assert_eq!(file.model, "post-relu");
    let o = TrainOptions { relu_after_conv2: true, model: Some("lenet5".into()), ..options(dir.path()) };
    let e = run(&o).result.unwrap_err();
    assert!(matches!(e, CliError::ModelConflict { .. }) && e.to_string().contains("--relu-after-conv2"), "{e}");
}

#[test]
fn optimizer_adam_trains_with_adam_and_resume_keeps_its_state() {
    let cli = Cli::try_parse_from(["cnn-stepper", "train", "--optimizer", "adam", "--lr", "0.001"]).unwrap();
    let Some(cli::args::Command::Train { optimizer, .. }) = cli.command else { panic!("{cli:?}") };
    assert_eq!(optimizer, Some(OptimizerKind::Adam));
    let e = Cli::try_parse_from(["cnn-stepper", "train", "--optimizer", "adagrad"]).unwrap_err();
    assert!(e.to_string().contains("unknown optimizer \"adagrad\""), "{e}");

    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 48);
    let adam = |epochs, save: &str| TrainOptions {
        optimizer: Some(OptimizerKind::Adam),
        lr: Some(0.001),
        model: Some("tiny".into()),
        epochs,
        save: Some(dir.path().join(save)),
        ..options(dir.path())
    };
    let r = run(&adam(1, "one.safetensors"));
    r.result.unwrap();
    let start = r.out.lines().next().unwrap();
    assert!(start.contains(", adam, ") && !start.contains("momentum"), "Adam has no momentum setting: {start}");
    let load = |name: &str| checkpoint::load(&dir.path().join(name), None, ConvEngine::Fast, None).unwrap().file;
    let one = load("one.safetensors");
    assert_eq!(one.settings.hyper.optimizer, OptimizerKind::Adam);
    assert_eq!((one.adam_steps, one.adam.len()), (3, one.tensors.len()), "48 images in batches of 16");
    assert!(one.adam.iter().all(|a| a.v.iter().any(|v| *v > 0.0)), "every tensor has Adam's state");

    // The file keeps Adam: resuming without --optimizer goes on with it, as one run would have.
    let resume = TrainOptions {
        resume: Some(dir.path().join("one.safetensors")),
        seed: None,
        epochs: 2,
        save: Some(dir.path().join("two.safetensors")),
        ..options(dir.path())
    };
    run(&resume).result.unwrap();
    let (two, straight) = (load("two.safetensors"), {
        run(&adam(2, "straight.safetensors")).result.unwrap();
        load("straight.safetensors")
    });
    assert_eq!(two.adam_steps, 6);
    assert_eq!(two, straight);
}
