//! The headless commands: `train`, `eval`, `export`, `bench` and `predict`. No egui here: the
//! `cnn-stepper` binary parses the command line ([`args::Cli`]) and calls [`args::run`].
//!
//! Every command fails with a [`CliError`], printed once by `main`; `train` trains through a
//! [`Session`], the window's training loop, and stops cleanly on Ctrl-C or SIGTERM
//! ([`StopFlag`]).

pub mod args;
mod error;
pub mod predict;
mod stop;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::CliError;
pub use stop::{Signal, StopFlag};

use crate::data::{
    self, ClassNames, DataError, DataKind, Dataset, LoadOptions, LoadProgress, MNIST_SIDE, NUM_CLASSES, Splits,
};
use crate::engine::config::MAX_EPOCHS;
use crate::engine::model::{DEFAULT_MODEL, LayerSpec, Plan, Sequential, Shape, SpecError, Tensors, named, resolve};
use crate::engine::weights::{self, WeightsError};
use crate::engine::{
    ConvEngine, Hyper, ModelConfig, OptimizerKind, Preset, Setting, SettingProblem, SettingsError, argmax, npz,
};
use crate::fileio::{check_writable, write_atomically};
use crate::trainer::checkpoint;
use crate::trainer::{EvalResult, Session, Settings, TrainError};

/// Test images per forward pass when evaluating: bounds memory whatever the set's size.
const EVAL_CHUNK: usize = 250;

/// Loads `--data DIR` (any kind [`data::load`] recognises) as `options` say, or the embedded
/// sample when no folder is given. `progress` hears how far a long load has come (from the
/// decoding threads).
pub fn load_data(
    dir: Option<&Path>,
    options: &LoadOptions,
    progress: &(dyn Fn(LoadProgress) + Sync),
) -> Result<Splits, DataError> {
    data::load(&data::DataSource::from_option(dir), options, progress)
}

/// [`load_data`] with a progress line on `err` (when `progress_line` is set, i.e. `err` is a
/// terminal) if the load takes longer than half a second.
pub fn load_data_with_progress(
    dir: Option<&Path>,
    options: &LoadOptions,
    err: &mut dyn Write,
    progress_line: bool,
) -> Result<Splits, DataError> {
    let label = match dir {
        Some(dir) => format!("loading {}", dir.display()),
        None => "loading".to_owned(),
    };
    with_progress_line(&label, err, progress_line, |progress| load_data(dir, options, progress))
}

/// Runs `work` and, if it has not finished after half a second, draws a progress bar on `err`
/// from what it reports until it does. The work runs on a scoped thread so this one can draw:
/// the progress callback is called from decoding threads and `err` cannot be shared with them.
fn with_progress_line<T: Send>(
    label: &str,
    err: &mut dyn Write,
    enabled: bool,
    work: impl FnOnce(&(dyn Fn(LoadProgress) + Sync)) -> T + Send,
) -> T {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if !enabled {
        return work(&|_| {});
    }
    let (done, total) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let report = |p: LoadProgress| {
        // Threads report out of order: the bar never goes back.
        done.fetch_max(p.done, Ordering::Relaxed);
        total.store(p.total, Ordering::Relaxed);
    };
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| work(&report));
        let started = Instant::now();
        let mut bar = ProgressBar::new(true, label.to_owned(), 0);
        while !handle.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            let total = total.load(Ordering::Relaxed);
            let done = done.load(Ordering::Relaxed).min(total);
            // Once all are decoded the bar stays as drawn while the reader assembles the splits.
            let shown_all = bar.drawn && bar.done == total;
            if started.elapsed() >= LOAD_QUIET && total > 0 && !shown_all {
                bar.total = total;
                bar.update(err, done, None);
            }
        }
        bar.finish(err);
        match handle.join() {
            Ok(result) => result,
            // The loader's panic is the loader's: passed on as it was.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// How long a load runs before a progress line is drawn: shorter loads print nothing.
const LOAD_QUIET: Duration = Duration::from_millis(500);

/// The input (C×H×W) a weights or session file records, if it can be read without knowing the
/// network (a PyTorch state dict of another network cannot).
fn file_input(bytes: &[u8], name: &str) -> Option<(usize, usize, usize)> {
    Some(weights::from_bytes_model(bytes, name, None).ok()?.weights.input)
}

/// Options for reading an image folder as a network taking `(c, h, w)` images was trained: a
/// model trained at 64×64 in grey is evaluated (or resumed) on 64×64 grey pictures. What the
/// options give explicitly wins; a side the reader does not take is left to the default (the
/// mismatch is then reported against the data).
fn folder_options((c, h, w): (usize, usize, usize), options: &LoadOptions) -> LoadOptions {
    let side_ok = h == w && (data::MIN_IMAGE_SIZE..=data::MAX_IMAGE_SIZE).contains(&h);
    LoadOptions {
        image_size: options.image_size.or(side_ok.then_some(h)),
        grayscale: options.grayscale || c == 1,
        ..options.clone()
    }
}

/// Whether `dir` is an image folder (whose pictures are resized as options say).
fn is_image_folder(dir: Option<&Path>) -> bool {
    dir.is_some_and(|d| matches!(data::kind_of(d), Ok(DataKind::ImageFolder)))
}

/// A grey split with each grey level copied to red, green and blue, for a network that takes
/// colour: a folder whose test pictures all happen to be grey still evaluates.
fn widen_to_colour(grey: Dataset) -> Result<Dataset, DataError> {
    let plane = grey.rows * grey.cols;
    let mut images = Vec::with_capacity(grey.images.len() * 3);
    for image in grey.images.chunks_exact(plane.max(1)) {
        for _ in 0..3 {
            images.extend_from_slice(image);
        }
    }
    Dataset::with_channels(images, grey.labels, 3, grey.rows, grey.cols, grey.class_names)
}

/// Options of `cnn-stepper train`. The default is what `cnn-stepper train` alone does: one
/// epoch on the embedded sample with the recommended preset, nothing saved.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Dataset folder (embedded sample when `None`).
    pub data: Option<PathBuf>,
    /// Class names override.
    pub classes: Option<ClassNames>,
    /// The side pictures of an image folder are resized to (`--image-size`; 32, or a resumed
    /// file's, when `None`).
    pub image_size: Option<usize>,
    /// Turn an image folder's pictures grey (`--grayscale`).
    pub grayscale: bool,
    /// Passes over the training set, those in a resumed file included (1 to [`MAX_EPOCHS`]).
    pub epochs: usize,
    /// Batch size (the preset's, or the resumed file's, when `None`).
    pub batch: Option<usize>,
    /// Learning rate (the preset's, or the resumed file's, when `None`).
    pub lr: Option<f32>,
    /// Momentum (the preset's, or the resumed file's, when `None`).
    pub momentum: Option<f32>,
    /// L2 strength (the preset's, or the resumed file's, when `None`).
    pub reg: Option<f32>,
    /// Learning-rate factor per 60,000 images (the preset's, or the resumed file's, when `None`).
    pub lr_decay: Option<f32>,
    /// Convolution engine.
    pub engine: ConvEngine,
    /// Init and hyper-parameter preset of a fresh run (`recommended` when `None`). Refused with
    /// `resume`: the run's start comes from the file.
    pub preset: Option<Preset>,
    /// Seed for init and sampling of a fresh run (1 when `None`). Refused with `resume`.
    pub seed: Option<u64>,
    /// Put a ReLU after conv2 (the network `post-relu`; refused with another `model`). With
    /// `resume`, refused unless the file's network has one.
    pub relu_after_conv2: bool,
    /// The network of a fresh run: a name (`post`, `lenet5`) or a line (`post` when `None`).
    /// Refused with `resume`: the file holds its network.
    pub model: Option<String>,
    /// SGD or Adam (the preset's, or the resumed file's, when `None`).
    pub optimizer: Option<OptimizerKind>,
    /// Where to save a session file at the end (also after Ctrl-C, SIGTERM or a divergence).
    pub save: Option<PathBuf>,
    /// A session file to continue (`--resume`).
    pub resume: Option<PathBuf>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            data: None,
            classes: None,
            image_size: None,
            grayscale: false,
            epochs: 1,
            batch: None,
            lr: None,
            momentum: None,
            reg: None,
            lr_decay: None,
            engine: ConvEngine::Fast,
            preset: None,
            seed: None,
            relu_after_conv2: false,
            model: None,
            optimizer: None,
            save: None,
            resume: None,
        }
    }
}

/// One epoch's results.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Where in the epoch this run started: 0, or the image a resumed file was saved at (the
    /// statistics then cover only the rest of the epoch).
    pub first_image: usize,
    /// Images trained on in this run.
    pub images: usize,
    /// Mean training loss over the epoch's batches.
    pub mean_loss: f32,
    /// Fraction of training images classified correctly (at the time they were trained on).
    pub train_accuracy: f32,
    /// Accuracy on the whole test set after the epoch; `None` if a signal stopped the
    /// evaluation.
    pub test_accuracy: Option<f32>,
    /// Wall time of the epoch's training.
    pub seconds: f32,
}

/// What a `train` run did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    /// One report per epoch finished.
    pub reports: Vec<EpochReport>,
    /// The signal that stopped the run early, if one did.
    pub stopped: Option<Signal>,
    /// Where the session was saved, if it was.
    pub saved: Option<PathBuf>,
    /// Completed steps at the end (those of a resumed file included).
    pub step: u64,
}

/// Where `train` writes: per-epoch lines on `out` (stdout), the progress bar and the note on a
/// stop on `err` (stderr).
pub struct Console<'a> {
    /// Standard output: what the run did, one line per epoch.
    pub out: &'a mut dyn Write,
    /// Standard error: progress and interruptions.
    pub err: &'a mut dyn Write,
    /// Draw a progress bar on `err`, redrawn in place with `\r`. Only when `err` is a terminal:
    /// in a log file those lines would pile up.
    pub progress: bool,
}

/// The settings a fresh run starts with: the preset's, overridden by the options. Every bad
/// value is named.
pub fn resolve_settings(o: &TrainOptions) -> Result<Settings, SettingsError> {
    let preset = o.preset.unwrap_or(Preset::Recommended);
    override_settings(o, Settings::from_preset(preset, o.engine))
}

/// `base` with the values the options give.
fn override_settings(o: &TrainOptions, base: Settings) -> Result<Settings, SettingsError> {
    let settings = Settings {
        hyper: Hyper {
            lr: o.lr.unwrap_or(base.hyper.lr),
            momentum: o.momentum.unwrap_or(base.hyper.momentum),
            reg: o.reg.unwrap_or(base.hyper.reg),
            lr_decay: o.lr_decay.unwrap_or(base.hyper.lr_decay),
            optimizer: o.optimizer.unwrap_or(base.hyper.optimizer),
        },
        batch_size: o.batch.unwrap_or(base.batch_size),
        engine: o.engine,
    };
    settings.validate()?;
    Ok(settings)
}

/// Trains as `cnn-stepper train` does: a [`Session`] stepped batch by batch, so the window and
/// the command line share one training loop and one divergence rule.
///
/// Prints a progress bar on `console.err` (if `console.progress`) and a line per epoch on
/// `console.out`: mean loss, train accuracy, accuracy on the whole test set, seconds.
///
/// - `stop` (Ctrl-C, SIGTERM) is checked between steps and inside the test evaluation: the
///   step in progress finishes, the run is saved (with `o.save`) and the summary says which
///   signal stopped it.
/// - A divergence rewinds the session to the last good batch, as in the window; a headless run
///   cannot ask what to do, so it saves that state (with `o.save`) and fails with
///   [`CliError::Diverged`].
/// - With `o.resume`, the network, preset, seed, momentum, batch order and curves come from
///   the file, and its settings unless the options give them (`--lr`, `--batch`, …).
///   `o.epochs` counts all epochs, those in the file included: a file saved after 1 epoch with
///   `--epochs 3` trains epochs 2 and 3, and a file saved in the middle of epoch 2 finishes it.
/// - With `o.save`, the result is a session file, which `--resume` continues and which still
///   loads as plain weights.
pub fn train(o: &TrainOptions, stop: &StopFlag, console: &mut Console<'_>) -> Result<TrainSummary, CliError> {
    // Bad options are refused before any data is read; a resumed run's are checked against
    // the file's settings once it is open.
    if o.epochs == 0 || o.epochs > MAX_EPOCHS {
        return Err(CliError::Epochs(o.epochs));
    }
    let fresh = match &o.resume {
        None => Some(resolve_settings(o)?),
        Some(path) => {
            refuse_start_options(o, path)?;
            None
        }
    };
    // A run is only as good as its save: a missing folder, a read-only mount or a directory at
    // the path is found now, not after hours of training.
    if let Some(path) = &o.save {
        check_writable(path)?;
    }
    let mut load = LoadOptions { classes: o.classes, image_size: o.image_size, grayscale: o.grayscale, seed: 0 };
    // A resumed run reads an image folder at the size and colour it was trained at.
    if let Some(path) = &o.resume
        && is_image_folder(o.data.as_deref())
        && let Ok(bytes) = weights::read_file(path)
        && let Some(input) = file_input(&bytes, &path.display().to_string())
    {
        load = folder_options(input, &load);
    }
    let data = Arc::new(load_data_with_progress(o.data.as_deref(), &load, console.err, console.progress)?);
    for note in &data.notes {
        writeln!(console.err, "note: {note}").map_err(CliError::Output)?;
    }
    let mut session = match (&o.resume, fresh) {
        (Some(path), _) => open_for_resume(o, path, data.clone())?,
        (None, settings) => {
            let settings = settings.map_or_else(|| resolve_settings(o), Ok)?;
            let model = train_model(o)?;
            let preset = o.preset.unwrap_or(Preset::Recommended);
            let mut s = Session::new(data.clone(), o.seed.unwrap_or(1), preset, &model, o.engine)?;
            s.set_settings(settings)?;
            s
        }
    };
    // E.g. that a file without checksums (from PyTorch) was not checked.
    for note in session.take_notices() {
        writeln!(console.err, "note: {note}").map_err(CliError::Output)?;
    }
    let out = |c: &mut Console<'_>, s: String| writeln!(c.out, "{s}").map_err(CliError::Output);
    if let Some(path) = &o.resume {
        out(
            console,
            format!(
                "resuming {} at step {} (epoch {}, {} images into it)",
                path.display(),
                session.step(),
                session.epoch() + 1,
                thousands(session.epoch_position() as u64)
            ),
        )?;
    }
    let settings = session.settings();
    let hyper = settings.hyper;
    out(
        console,
        format!(
            "training {} on {} ({} images), {} engine, preset {}, {}, batch {}, lr {}, {}reg {}, lr decay {} per 60,000 images, seed {}",
            session.model().label(),
            data.source,
            thousands(data.train.len() as u64),
            settings.engine.name(),
            session.preset().name(),
            hyper.optimizer.name(),
            settings.batch_size,
            hyper.lr,
            if hyper.optimizer == OptimizerKind::Sgd {
                format!("momentum {}, ", hyper.momentum)
            } else {
                String::new()
            },
            hyper.reg,
            hyper.lr_decay,
            session.seed()
        ),
    )?;
    let first_epoch = usize::try_from(session.epoch()).unwrap_or(usize::MAX);
    if first_epoch >= o.epochs {
        out(
            console,
            format!("the session has already trained {first_epoch} epochs; nothing to do (--epochs counts all epochs)"),
        )?;
    }
    let mut reports = Vec::new();
    let mut stopped = None;
    for epoch in first_epoch..o.epochs {
        let started = Instant::now();
        stopped = match train_epoch(&mut session, epoch, o.epochs, stop, console) {
            Err(CliError::Train(error)) if error.is_divergence() => {
                return Err(after_divergence(&session, o.save.as_deref(), error, console));
            }
            other => other?,
        };
        if stopped.is_some() {
            break;
        }
        let seconds = started.elapsed().as_secs_f32();
        let stats = session.epoch_stats();
        let test = evaluate_test_set(&mut session, epoch, o.epochs, stop, console)?;
        if let Some(r) = &test {
            session.record_accuracy(r);
        }
        let report = EpochReport {
            epoch: epoch + 1,
            first_image: stats.first_image,
            images: stats.images,
            mean_loss: stats.mean_loss(),
            train_accuracy: stats.accuracy(),
            test_accuracy: test.as_ref().map(EvalResult::accuracy),
            seconds,
        };
        out(console, epoch_line(&report, test.as_ref(), session.data().train.len()))?;
        reports.push(report);
        if test.is_none() {
            stopped = stop.raised();
            break;
        }
    }
    if let Some(signal) = stopped {
        writeln!(console.err, "stopped by {} after step {}", signal.name(), session.step())
            .map_err(CliError::Output)?;
    }
    let saved = match &o.save {
        Some(path) => {
            save_or_rescue(&session, path, &rescue_folders(), console.err)?;
            out(
                console,
                format!(
                    "saved weights to {} (a session file: also momentum, batch order and curves; --resume continues it)",
                    path.display()
                ),
            )?;
            Some(path.clone())
        }
        None => None,
    };
    Ok(TrainSummary { reports, stopped, saved, step: session.step() })
}

/// Where a run goes when its `--save` path fails at the end (the disk filled up, the folder
/// went away): the working directory, then the temporary folder.
fn rescue_folders() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    folders.push(std::env::temp_dir());
    folders
}

/// Saves the session to `path`; if that fails, to a new file in the first of `folders` that
/// takes it, so that the run is not lost. Either way a failure at `path` is an error, which
/// says where the run went.
fn save_or_rescue(session: &Session, path: &Path, folders: &[PathBuf], err: &mut dyn Write) -> Result<(), CliError> {
    let Err(error) = session.save_checkpoint(path) else { return Ok(()) };
    let name = path.file_name().map_or_else(|| "run.safetensors".into(), |n| n.to_string_lossy().into_owned());
    let rescued = folders.iter().find_map(|folder| {
        let candidate = folder.join(format!("cnn-stepper-rescued-{}-{name}", std::process::id()));
        match session.save_checkpoint(&candidate) {
            Ok(()) => Some(candidate),
            Err(e) => {
                let _ = writeln!(err, "could not save the run there either: {e}");
                None
            }
        }
    });
    Err(CliError::NotSaved { error: Box::new(error), rescued })
}

/// A divergence ends a headless run: saves the state the session went back to (the last good
/// batch) if `save` is given, and says so in the error.
fn after_divergence(session: &Session, save: Option<&Path>, error: TrainError, console: &mut Console<'_>) -> CliError {
    let saved = save.and_then(|path| match save_or_rescue(session, path, &rescue_folders(), console.err) {
        Ok(()) => Some(path.to_owned()),
        Err(e) => {
            let _ = writeln!(console.err, "could not save the last good state: {e}");
            match e {
                CliError::NotSaved { rescued, .. } => rescued,
                _ => None,
            }
        }
    });
    CliError::Diverged { error: Box::new(error), saved }
}

/// Refuses the options that choose a fresh run's network and start, which a resumed run takes
/// from its file.
fn refuse_start_options(o: &TrainOptions, path: &Path) -> Result<(), CliError> {
    let conflict = |option, what: &str| CliError::ResumeConflict {
        option,
        reason: format!("the run continues with the {what} of {}", path.display()),
    };
    if o.preset.is_some() {
        return Err(conflict("--preset", "preset"));
    }
    if o.seed.is_some() {
        return Err(conflict("--seed", "seed and batch order"));
    }
    if o.model.is_some() {
        return Err(conflict("--model", "network"));
    }
    Ok(())
}

/// The network a fresh `train` builds: `--model`, or `post-relu` for `--relu-after-conv2`, or
/// the post's.
fn train_model(o: &TrainOptions) -> Result<String, CliError> {
    match (&o.model, o.relu_after_conv2) {
        (Some(m), true) if !matches!(m.trim(), "post" | "post-relu") => Err(CliError::ModelConflict {
            reason: format!("--relu-after-conv2 changes the post's network, not {m:?}: write the ReLU into the line"),
        }),
        (Some(m), relu) if relu && m.trim() == "post" => Ok("post-relu".into()),
        (Some(m), _) => Ok(m.clone()),
        (None, true) => Ok("post-relu".into()),
        (None, false) => Ok(DEFAULT_MODEL.into()),
    }
}

/// Opens `path` to continue it, with the options' settings over the file's.
fn open_for_resume(o: &TrainOptions, path: &Path, data: Arc<Splits>) -> Result<Session, CliError> {
    let mut session = Session::open_checkpoint(data, path, o.engine, None)?;
    let has_relu_after_conv2 = session.model().name.as_deref() == Some("post-relu");
    if o.relu_after_conv2 && !has_relu_after_conv2 {
        return Err(CliError::ResumeConflict {
            option: "--relu-after-conv2",
            reason: format!("the network of {} has no ReLU after conv2, and a resumed run keeps it", path.display()),
        });
    }
    // Settings queued in the file apply from its next batch, which is the first one here.
    let saved = session.pending_settings().unwrap_or(session.settings());
    let settings = override_settings(o, saved)?;
    session.set_settings(settings)?;
    Ok(session)
}

/// Trains the rest of epoch `epoch` (0-based), drawing the progress bar. Returns the signal
/// that stopped it early, if one did.
fn train_epoch(
    session: &mut Session,
    epoch: usize,
    epochs: usize,
    stop: &StopFlag,
    console: &mut Console<'_>,
) -> Result<Option<Signal>, CliError> {
    let len = session.data().train.len();
    let mut bar = ProgressBar::new(console.progress, format!("epoch {}/{epochs}", epoch + 1), len);
    let mut announced = false;
    while session.epoch() == epoch as u64 {
        if let Some(signal) = stop.raised() {
            bar.finish(console.err);
            return Ok(Some(signal));
        }
        let err = &mut *console.err;
        // Called inside the long (naive) phases: keeps the bar alive and says at once that a
        // signal was seen, since the step may take seconds to finish.
        let result = session.step_batch(&mut |_, _| {
            bar.tick(err);
            if !announced && let Some(signal) = stop.raised() {
                announced = true;
                bar.finish(err);
                let _ = writeln!(
                    err,
                    "{}: finishing this step, then stopping ({} again quits at once, unsaved)",
                    signal.name(),
                    signal.name()
                );
            }
        });
        match result {
            Ok(_) => {
                let stats = session.epoch_stats();
                bar.update(console.err, stats.first_image + stats.images, Some(stats.mean_loss()));
            }
            Err(e) => {
                bar.finish(console.err);
                return Err(e.into());
            }
        }
    }
    bar.finish(console.err);
    Ok(None)
}

/// Accuracy on the whole test set, with a progress bar; `None` if `stop` was raised first.
fn evaluate_test_set(
    session: &mut Session,
    epoch: usize,
    epochs: usize,
    stop: &StopFlag,
    console: &mut Console<'_>,
) -> Result<Option<EvalResult>, CliError> {
    let len = session.data().test.len();
    let mut bar = ProgressBar::new(console.progress, format!("epoch {}/{epochs} test", epoch + 1), len);
    let err = &mut *console.err;
    let result = session.evaluate_unless(0, &mut |done, _| bar.update(err, done, None), &|| stop.raised().is_some());
    bar.finish(console.err);
    Ok(result?)
}

/// The line `train` prints after an epoch.
fn epoch_line(r: &EpochReport, test: Option<&EvalResult>, epoch_len: usize) -> String {
    let part = if r.first_image > 0 {
        format!(
            " (resumed mid-epoch: images {}–{} only)",
            thousands(r.first_image as u64 + 1),
            thousands((r.first_image + r.images).min(epoch_len) as u64)
        )
    } else {
        String::new()
    };
    let test = match test {
        Some(t) => format!("test accuracy {:.2}% ({}/{})", 100.0 * t.accuracy(), t.correct, t.count),
        None => "test accuracy not measured (stopped)".to_owned(),
    };
    format!(
        "epoch {}{part}: mean loss {:.4}  train accuracy {:.2}%  {test}  {:.1} s ({} images/s)",
        r.epoch,
        r.mean_loss,
        100.0 * r.train_accuracy,
        r.seconds,
        thousands((r.images as f32 / r.seconds.max(1e-6)) as u64)
    )
}

/// Accuracy of `net` on `test`, with every image's scores in `out` in turn: (correct, count).
/// With `rows`, also collects each image's (label, predicted, probabilities).
pub fn evaluate_model(
    net: &mut Sequential<f32>,
    test: &Dataset,
    out: &mut Tensors<f32>,
    mut rows: Option<&mut Vec<(usize, usize, Vec<f32>)>>,
) -> Result<(usize, usize), CliError> {
    let classes = net.plan().classes;
    let mut correct = 0;
    let mut start = 0;
    while start < test.len() {
        let end = (start + EVAL_CHUNK).min(test.len());
        let indices: Vec<usize> = (start..end).collect();
        let b = test.batch(&indices)?;
        let pixels = b.images.as_slice().ok_or(TrainError::Internal("batch images are not contiguous"))?;
        net.forward_into(pixels, &b.labels, 0.0, out)?;
        correct += out.correct();
        if let Some(rows) = rows.as_deref_mut() {
            for (p, &y) in out.probs.chunks(classes).zip(&b.labels) {
                rows.push((y, argmax(p), p.to_vec()));
            }
        }
        start = end;
    }
    Ok((correct, test.len()))
}

/// `cnn-stepper eval` without `--model`: see [`eval_model`].
pub fn eval(
    weights_path: &Path,
    data_dir: Option<&Path>,
    classes: Option<ClassNames>,
    csv: Option<&Path>,
    out: &mut dyn Write,
) -> Result<f32, CliError> {
    eval_model(weights_path, None, data_dir, &LoadOptions { classes, ..LoadOptions::default() }, csv, out)
}

/// `cnn-stepper eval`: loads weights, prints the test accuracy line, optionally writes a CSV
/// (`index,label,predicted,p0,…,label_name,predicted_name`, the names the data's). Of a
/// `data_dir` only the test files are read.
///
/// The file is anything [`weights::load_model`] reads. `model` (a name or a line, resolved
/// against the data) is the network of a file that does not name its own (a PyTorch state
/// dict); a file that names its network must hold that one if `model` is given. Without
/// `model`, a file that names no network is read as [`DEFAULT_MODEL`], and the error, if it
/// does not fit, asks for `--model`.
///
/// An image folder's test pictures are prepared as the network was trained: resized to the
/// file's input side and made grey for a grey network, unless `load` gives `image_size` or
/// `grayscale`; grey pictures are widened to three equal channels for a colour network.
pub fn eval_model(
    weights_path: &Path,
    model: Option<&str>,
    data_dir: Option<&Path>,
    load: &LoadOptions,
    csv: Option<&Path>,
    out: &mut dyn Write,
) -> Result<f32, CliError> {
    let name = weights_path.display().to_string();
    // The file first: a missing or damaged one is reported before any data is read.
    let bytes = weights::read_file(weights_path)?;
    // Only the test split: a damaged training file must not stop an evaluation.
    let (test, source) = match data_dir {
        Some(dir) if is_image_folder(Some(dir)) => {
            // Pictures are prepared as for training: at the file's size and colour unless
            // --image-size / --grayscale say otherwise.
            let input = file_input(&bytes, &name);
            let options = input.map_or_else(|| load.clone(), |input| folder_options(input, load));
            let mut stderr = std::io::stderr();
            let terminal = std::io::IsTerminal::is_terminal(&stderr);
            let label = format!("loading {}", dir.display());
            let (mut test, notes) = with_progress_line(&label, &mut stderr, terminal, |progress| {
                data::load_folder_test(dir, &options, progress)
            })?;
            for note in notes {
                eprintln!("note: {note}");
            }
            if input.is_some_and(|(c, _, _)| c == 3) && test.channels == 1 && !load.grayscale {
                test = widen_to_colour(test)?;
            }
            (test, dir.display().to_string())
        }
        // An IDX folder's test files alone; CIFAR, a built-in set or another kind whole.
        Some(dir) => match data::DataSource::parse(&dir.to_string_lossy()) {
            data::DataSource::Folder(d) if matches!(data::kind_of(&d), Ok(data::DataKind::Idx)) => {
                (data::load_test_dir(&d, load.classes)?, d.display().to_string())
            }
            source => {
                let splits = data::load(&source, load, &|_| {})?;
                (splits.test, splits.source)
            }
        },
        None => {
            let sample = data::embedded()?;
            (sample.test, sample.source)
        }
    };
    let input = test.input_shape();
    let expected = model.map(|m| resolve(m, input, test.num_classes())).transpose().map_err(CliError::Model)?;
    let loaded = match weights::from_bytes_model(&bytes, &name, expected.as_ref()) {
        Err(WeightsError::NoModelLine { .. }) if expected.is_none() => {
            let default = resolve(DEFAULT_MODEL, input, test.num_classes()).map_err(CliError::Model)?;
            let loaded = weights::from_bytes_model(&bytes, &name, Some(&default))
                .map_err(|error| CliError::Unnamed { error: Box::new(error), tried: DEFAULT_MODEL })?;
            eprintln!(
                "note: {name} does not say which network it holds; its tensors fit `{DEFAULT_MODEL}`, so it was read \
                 as that (--model reads it as another)"
            );
            loaded
        }
        other => other?,
    };
    if let Some(note) = loaded.integrity.note(&name) {
        eprintln!("note: {note}");
    }
    let plan = &loaded.plan;
    let data_shape = Shape::Maps { c: test.channels, h: test.rows, w: test.cols };
    if plan.input != data_shape {
        return Err(CliError::DoesNotFit {
            file: weights_path.to_owned(),
            detail: format!("the network takes {} images but {source} has {data_shape}", plan.input),
        });
    }
    if plan.classes != test.num_classes() {
        return Err(CliError::DoesNotFit {
            file: weights_path.to_owned(),
            detail: format!("the network has {} classes but {source} has {}", plan.classes, test.num_classes()),
        });
    }
    let names = &loaded.weights.class_names;
    if !names.is_empty() && *names != test.class_names {
        eprintln!(
            "note: {name} was trained on the classes {} but {source} has {}",
            names.join(", "),
            test.class_names.join(", ")
        );
    }
    let mut net = loaded.sequential(ConvEngine::Fast)?;
    let mut rows = Vec::new();
    let mut tensors = Tensors::default();
    let (correct, count) = evaluate_model(&mut net, &test, &mut tensors, csv.map(|_| &mut rows))?;
    let acc = correct as f32 / count.max(1) as f32;
    writeln!(out, "test accuracy: {:.2}% ({correct}/{count})", 100.0 * acc).map_err(CliError::Output)?;
    if let Some(path) = csv {
        let mut text = String::from("index,label,predicted");
        for c in 0..plan.classes {
            text.push_str(&format!(",p{c}"));
        }
        text.push_str(",label_name,predicted_name\n");
        let name = |class: usize| csv_field(test.class_names.get(class).map_or(&class.to_string(), |n| n));
        for (i, (y, pred, p)) in rows.iter().enumerate() {
            text.push_str(&format!("{i},{y},{pred}"));
            for v in p {
                text.push_str(&format!(",{v:.6}"));
            }
            text.push_str(&format!(",{},{}\n", name(*y), name(*pred)));
        }
        write_atomically(path, text.as_bytes())?;
        writeln!(out, "wrote {} rows to {}", rows.len(), path.display()).map_err(CliError::Output)?;
    }
    Ok(acc)
}

/// `value` as one CSV field: quoted (with its quotes doubled) when it holds a comma, a quote or
/// a line break, as RFC 4180 and spreadsheets expect; as it is otherwise.
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// `cnn-stepper export`: writes the weights of a weights or session file as a NumPy `.npz`
/// with the post's names (see [`crate::engine::npz`]), and, for a session file, its curves as
/// CSV (`step,loss,batch_accuracy` and `step,test_accuracy`).
pub fn export(
    weights_path: &Path,
    npz_path: Option<&Path>,
    loss_csv: Option<&Path>,
    accuracy_csv: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if npz_path.is_none() && loss_csv.is_none() && accuracy_csv.is_none() {
        return Err(CliError::NothingToExport);
    }
    let opened = checkpoint::load(weights_path, None, ConvEngine::Fast, None)?;
    if let Some(note) = opened.integrity.note(&weights_path.display().to_string()) {
        eprintln!("note: {note}");
    }
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(CliError::Output);
    if let Some(path) = npz_path {
        let weights = opened.file.model_weights();
        let plan = crate::engine::weights::model_file::checked_plan(&weights, &weights_path.display().to_string())?;
        npz::save_model(path, &plan, &weights.tensors)?;
        w(out, format!("wrote {} (numpy .npz, the post's names, float32)", path.display()))?;
    }
    if (loss_csv.is_some() || accuracy_csv.is_some()) && opened.weights_only {
        return Err(CliError::NoCurves { path: weights_path.to_owned() });
    }
    let (loss, accuracy) = opened.file.history.curves_csv();
    for (path, text) in [(loss_csv, loss), (accuracy_csv, accuracy)] {
        if let Some(path) = path {
            write_atomically(path, text.as_bytes())?;
            w(out, format!("wrote {} ({} rows)", path.display(), text.lines().count().saturating_sub(1)))?;
        }
    }
    Ok(())
}

/// Multiply-adds ×2 of one image's forward + backward pass (the conv1 input gradient is not
/// computed in training, so not counted).
pub fn flops_per_image(cfg: &ModelConfig) -> f64 {
    let (h1, w1) = cfg.conv1_out();
    let (h2, w2) = cfg.conv2_out();
    let k2 = (cfg.kernel * cfg.kernel) as f64;
    let conv1 = 2.0 * (cfg.conv1_filters * cfg.in_channels) as f64 * k2 * (h1 * w1) as f64;
    let conv2 = 2.0 * (cfg.conv2_filters * cfg.conv1_filters) as f64 * k2 * (h2 * w2) as f64;
    let fc1 = 2.0 * (cfg.flat_len() * cfg.hidden) as f64;
    let fc2 = 2.0 * (cfg.hidden * cfg.classes) as f64;
    2.0 * conv1 + 3.0 * (conv2 + fc1 + fc2)
}

/// Multiply-adds ×2 of one image's forward + backward pass through `plan`'s convs and fcs:
/// forward, weight gradient and input gradient, the last not for a first layer with weights
/// (no layer needs the input's gradient). Pools and activations are not counted. For the
/// post's network it is [`flops_per_image`].
pub fn model_flops_per_image(plan: &Plan) -> f64 {
    let mut total = 0.0;
    let mut at_input = true;
    for l in &plan.layers {
        if l.spec.has_params() {
            let passes = if at_input { 2.0 } else { 3.0 };
            total += passes * 2.0 * l.work_per_image as f64;
        }
        // flatten keeps its input's buffer: a layer after it still sees the input.
        at_input &= l.spec == LayerSpec::Flatten;
    }
    total
}

/// One `bench` measurement.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Engine measured.
    pub engine: ConvEngine,
    /// Batch size.
    pub batch: usize,
    /// Median seconds per training step.
    pub step_secs: f64,
    /// `batch / step_secs`.
    pub images_per_sec: f64,
    /// Achieved GFLOP/s (see [`model_flops_per_image`]).
    pub gflops: f64,
}

/// The network `bench` times for `model` (a name or a line): on the embedded sample's
/// 1×28×28 images with 10 classes.
pub fn bench_plan(model: &str) -> Result<Plan, CliError> {
    resolve(model, (1, MNIST_SIDE, MNIST_SIDE), NUM_CLASSES).map_err(CliError::Model)
}

/// `plan`'s network with the recommended init (He, seed 1) and a batch of the embedded
/// sample's first images: what `bench` and `phase_profile` time.
fn bench_setup(plan: &Plan, engine: ConvEngine, batch: usize) -> Result<(Sequential<f32>, data::Batch), CliError> {
    if let Some(reason) = Setting::check_batch(batch) {
        let problem = SettingProblem { setting: Setting::BatchSize, value: batch.to_string(), reason };
        return Err(SettingsError { problems: vec![problem] }.into());
    }
    let data = data::embedded()?;
    let sample = Shape::Maps { c: data.train.channels, h: data.train.rows, w: data.train.cols };
    if plan.input != sample || plan.classes != data.train.num_classes() {
        return Err(CliError::Model(SpecError::line(format!(
            "the benchmark runs on the embedded sample ({sample} images, {} classes), but the network takes {} images \
             and has {} classes",
            data.train.num_classes(),
            plan.input,
            plan.classes
        ))));
    }
    let net = Sequential::<f32>::new(plan.clone(), Preset::Recommended.init(), 1, engine);
    let indices: Vec<usize> = (0..batch).map(|i| i % data.train.len()).collect();
    let b = data.train.batch(&indices)?;
    Ok((net, b))
}

/// [`bench_model`] on the post's network.
pub fn bench(engine: ConvEngine, batch: usize, min_secs: f64) -> Result<BenchResult, CliError> {
    bench_model(&bench_plan(DEFAULT_MODEL)?, engine, batch, min_secs)
}

/// Times full training steps (forward, loss, backward, SGD with momentum) of `plan`'s network
/// ([`bench_plan`]) on the embedded sample's first images: warm-up, then the median of several
/// steps (at least 3, more until `min_secs` have passed). `batch` is refused outside 1 to
/// [`MAX_BATCH`](crate::engine::MAX_BATCH), `min_secs` unless it is a number above 0.
pub fn bench_model(plan: &Plan, engine: ConvEngine, batch: usize, min_secs: f64) -> Result<BenchResult, CliError> {
    if !(min_secs.is_finite() && min_secs > 0.0) {
        return Err(CliError::BenchSecs(min_secs));
    }
    let (mut net, b) = bench_setup(plan, engine, batch)?;
    let pixels = b.images.as_slice().ok_or(TrainError::Internal("batch images are not contiguous"))?;
    let hyper = Preset::Recommended.hyper();
    let warmup = if engine == ConvEngine::Naive { 1 } else { 3 };
    for _ in 0..warmup {
        net.run_step(pixels, &b.labels, &hyper)?;
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3 || (started.elapsed().as_secs_f64() < min_secs && times.len() < 200) {
        let t = Instant::now();
        net.run_step(pixels, &b.labels, &hyper)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let step_secs = times[times.len() / 2];
    Ok(BenchResult {
        engine,
        batch,
        step_secs,
        images_per_sec: batch as f64 / step_secs,
        gflops: model_flops_per_image(plan) * batch as f64 / step_secs / 1e9,
    })
}

/// `cnn-stepper bench`: a line naming the network, then one line per engine and batch size,
/// `fast   batch  32: 4,321 images/s (…)`, with each phase's time if `phases`, and how much
/// faster fast is than naive where both ran. Empty `engines` means both, empty `batches` means
/// 8, 32 and 128 (the naive engine then runs at batch 8 only: a batch of 128 takes it ~10 s).
pub fn bench_report(
    model: &str,
    engines: &[ConvEngine],
    batches: &[usize],
    secs: f64,
    phases: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let plan = bench_plan(model)?;
    let naive_default_only_8 = engines.is_empty() && batches.is_empty();
    let engines = if engines.is_empty() { &[ConvEngine::Naive, ConvEngine::Fast][..] } else { engines };
    let batches = if batches.is_empty() { &[8, 32, 128][..] } else { batches };
    let mut fast = std::collections::HashMap::new();
    let mut naive = std::collections::HashMap::new();
    let mut line = |s: String| writeln!(out, "{s}").map_err(CliError::Output);
    let name = named(model).map_or(String::new(), |m| format!(" {}", m.name));
    line(format!(
        "model{name}: {} on {} images, {} parameters",
        plan.spec,
        plan.input,
        thousands(plan.total_params() as u64)
    ))?;
    for &b in batches {
        for &e in engines {
            if naive_default_only_8 && e == ConvEngine::Naive && b != 8 {
                continue;
            }
            let r = bench_model(&plan, e, b, secs)?;
            line(format!(
                "{:<6} batch {:>3}: {} images/s ({:.1} GFLOP/s, {:.1} ms/step)",
                e.name(),
                b,
                thousands(r.images_per_sec.round() as u64),
                r.gflops,
                r.step_secs * 1e3
            ))?;
            match e {
                ConvEngine::Fast => fast.insert(b, r.images_per_sec),
                ConvEngine::Naive => naive.insert(b, r.images_per_sec),
            };
            if phases {
                let rounds = if e == ConvEngine::Naive { 1 } else { 5 };
                for (label, ms) in phase_profile(&plan, e, b, rounds)? {
                    line(format!("         {label:<18} {ms:>8.2} ms"))?;
                }
            }
        }
        if let (Some(f), Some(n)) = (fast.get(&b), naive.get(&b)) {
            line(format!("         batch {b:>3}: fast is {:.1}× naive", f / n))?;
        }
    }
    Ok(())
}

/// Milliseconds each phase of one training step of `plan`'s network takes (median of `rounds`
/// steps after a warm-up): where the time of a step goes.
pub fn phase_profile(
    plan: &Plan,
    engine: ConvEngine,
    batch: usize,
    rounds: usize,
) -> Result<Vec<(String, f64)>, CliError> {
    let (mut net, b) = bench_setup(plan, engine, batch)?;
    let pixels = b.images.as_slice().ok_or(TrainError::Internal("batch images are not contiguous"))?;
    let hyper = Preset::Recommended.hyper();
    let phases = net.phases().to_vec();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); phases.len()];
    for round in 0..rounds + 1 {
        net.load_batch(pixels, &b.labels)?;
        for t in times.iter_mut() {
            let started = Instant::now();
            net.step_phase(&hyper, &mut |_, _| {});
            if round > 0 {
                t.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(phases
        .iter()
        .zip(times)
        .map(|(p, mut t)| {
            t.sort_by(f64::total_cmp);
            (plan.phase_label(*p), t.get(t.len() / 2).copied().unwrap_or(0.0))
        })
        .collect())
}

/// Formats an integer with thousands separators: 60000 → "60,000".
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A one-line progress bar on stderr, redrawn in place: images done, images/s, running loss,
/// ETA. Draws nothing when disabled (stderr is not a terminal). Write errors are ignored: a
/// progress bar that cannot be drawn must not stop training.
struct ProgressBar {
    enabled: bool,
    label: String,
    total: usize,
    started: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
    done: usize,
    loss: Option<f32>,
}

impl ProgressBar {
    fn new(enabled: bool, label: String, total: usize) -> Self {
        Self { enabled, label, total, started: Instant::now(), last_draw: None, drawn: false, done: 0, loss: None }
    }

    /// New figures; drawn at most five times a second, and always when done.
    fn update(&mut self, err: &mut dyn Write, done: usize, loss: Option<f32>) {
        self.done = done;
        self.loss = loss;
        self.draw(err, done >= self.total);
    }

    /// The same figures again (elapsed time and ETA move), throttled like [`ProgressBar::update`].
    fn tick(&mut self, err: &mut dyn Write) {
        self.draw(err, false);
    }

    fn draw(&mut self, err: &mut dyn Write, force: bool) {
        if !self.enabled || (!force && self.last_draw.is_some_and(|t| t.elapsed() < Duration::from_millis(200))) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let done = self.done;
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 { (self.total.saturating_sub(done)) as f64 / rate } else { 0.0 };
        let width = 30;
        let filled = (width * done / self.total.max(1)).min(width);
        let loss = self.loss.map_or(String::new(), |l| format!("  loss {l:.4}"));
        let _ = write!(
            err,
            "\r{} [{}{}] {}/{}  {} images/s{loss}  ETA {}:{:02} ",
            self.label,
            "#".repeat(filled),
            ".".repeat(width - filled),
            thousands(done as u64),
            thousands(self.total as u64),
            thousands(rate as u64),
            (eta as u64) / 60,
            (eta as u64) % 60
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// Ends the bar's line, if one was drawn.
    fn finish(&mut self, err: &mut dyn Write) {
        if self.drawn {
            let _ = writeln!(err);
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::checkpoint;
    use std::sync::mpsc;

    /// Standard error that tells a channel when it is first written to.
    struct Watched {
        text: Vec<u8>,
        first: Option<mpsc::Sender<()>>,
    }

    impl Write for Watched {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.text.extend_from_slice(buf);
            if let Some(tx) = self.first.take() {
                let _ = tx.send(());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_long_load_draws_a_progress_line_and_ends_it() {
        let (tx, rx) = mpsc::channel();
        let mut err = Watched { text: Vec::new(), first: Some(tx) };
        // The work waits until the line is drawn, however long that takes: no timing is asserted.
        let result = with_progress_line("loading pictures", &mut err, true, move |progress| {
            progress(LoadProgress { done: 3, total: 12 });
            rx.recv().unwrap();
            progress(LoadProgress { done: 12, total: 12 });
            7
        });
        assert_eq!(result, 7);
        let text = String::from_utf8(err.text).unwrap();
        assert!(text.starts_with("\rloading pictures [") && text.contains("/12"), "{text:?}");
        assert!(text.ends_with('\n'), "the line is ended before what follows: {text:?}");

        let mut quiet = Vec::new();
        let n = with_progress_line("loading", &mut quiet, false, |progress| {
            progress(LoadProgress { done: 1, total: 1 });
            1
        });
        assert_eq!((n, quiet.len()), (1, 0), "nothing drawn when standard error is not a terminal");
    }

    #[test]
    fn a_failed_save_goes_to_the_first_rescue_folder_that_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = Arc::new(data::embedded().unwrap());
        let mut session = Session::new(data, 1, Preset::Recommended, "post", ConvEngine::Fast).unwrap();
        session.step_batch(&mut |_, _| {}).unwrap();
        let gone = dir.path().join("gone/run.safetensors");
        let (missing, rescue) = (dir.path().join("missing-too"), dir.path().join("rescue"));
        std::fs::create_dir(&rescue).unwrap();
        let mut err = Vec::new();
        let e = save_or_rescue(&session, &gone, &[missing.clone(), rescue.clone()], &mut err).unwrap_err();
        let CliError::NotSaved { rescued: Some(path), .. } = &e else { panic!("{e}") };
        assert_eq!(path.parent(), Some(rescue.as_path()));
        assert!(path.to_string_lossy().ends_with("-run.safetensors"), "{}", path.display());
        assert_eq!(
            checkpoint::load(path, None, ConvEngine::Fast, None).unwrap().file.step,
            1,
            "the whole run is there"
        );
        let message = e.to_string();
        assert!(message.contains("gone") && message.contains("saved to") && message.contains("--resume"), "{message}");
        assert!(String::from_utf8(err).unwrap().contains("missing-too"), "the failed rescue folder is named");

        let e = save_or_rescue(&session, &gone, &[missing], &mut Vec::new()).unwrap_err();
        assert!(matches!(e, CliError::NotSaved { rescued: None, .. }));
        assert!(e.to_string().contains("the run is lost"), "{e}");
        assert!(save_or_rescue(&session, &rescue.join("fine.safetensors"), &[], &mut Vec::new()).is_ok());
    }
}
