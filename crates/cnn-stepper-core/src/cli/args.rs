//! The command line: what `cnn-stepper` accepts, and the headless commands it runs. The
//! window's crate parses [`Cli`] and opens the window when no command is given.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};

use super::{CliError, Console, Signal, StopFlag, TrainOptions};
use crate::data::{ClassNames, DEFAULT_IMAGE_SIZE, LoadOptions, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE};
use crate::engine::config::{MAX_BATCH, MAX_EPOCHS};
use crate::engine::model::{DEFAULT_MODEL, ModelSpec, NAMED, named};
use crate::engine::{ConvEngine, OptimizerKind, Preset, Setting};

/// Step through one training step of a real CNN on MNIST, phase by phase.
///
/// Without a command, opens the window on the embedded MNIST sample (or --data DIR).
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Dataset folder: MNIST-style IDX files (raw or .gz), or an image folder (train/<class>/*
    /// and test/<class>/*, or <class>/* with 20% of each class held out); default: the
    /// embedded sample.
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Class names: "digits" or "fashion" (default: classes.txt in the folder, else digits).
    #[arg(long, global = true, value_parser = parse_classes)]
    pub classes: Option<ClassNames>,
    /// Side, in pixels, an image folder's pictures are resized to (default 32; eval and
    /// --resume default to the weights file's size).
    #[arg(long, global = true, value_name = "N", allow_negative_numbers = true, value_parser = parse_image_size,
          help = format!("Side, in pixels, an image folder's pictures are resized to, {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} \
                          (default {DEFAULT_IMAGE_SIZE}; eval and --resume default to the weights file's size)"))]
    pub image_size: Option<usize>,
    /// Read an image folder's pictures in grey even when some have colour.
    #[arg(long, global = true)]
    pub grayscale: bool,
    /// Seed for the window's first run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The window's network: post (default), post-relu, lenet5, tiny, or a line such as
    /// "conv(8,3,pad=1), relu, maxpool(2), flatten, fc(10)".
    #[arg(long, value_name = "NAME|LINE")]
    pub model: Option<String>,
    /// Open the window in a lesson: follow-the-post, post-does-not-learn, what-pooling-does,
    /// colour-channels, or a lesson file (Markdown).
    #[arg(long, value_name = "NAME|FILE")]
    pub lesson: Option<String>,
    /// The headless command to run; none opens the window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The headless commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train headless, printing each epoch's loss and accuracy. Ctrl-C or SIGTERM finishes the
    /// current step, saves (with --save) and exits with 130 or 143; a divergence saves the last
    /// good state (with --save) and exits with 1.
    Train {
        /// Passes over the training set.
        #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_EPOCHS as u64),
              help = format!("Passes over the training set, 1 to {MAX_EPOCHS}"))]
        epochs: usize,
        /// Images per batch (default: the preset's, 32).
        #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BATCH as u64),
              help = format!("Images per batch, {} (default: the preset's, 32)", Setting::BatchSize.range()))]
        batch: Option<usize>,
        /// Learning rate (default: the preset's).
        #[arg(long, allow_negative_numbers = true, value_parser = setting_parser(Setting::LearningRate),
              help = format!("Learning rate, {} (default: the preset's)", Setting::LearningRate.range()))]
        lr: Option<f32>,
        /// Momentum (default: the preset's).
        #[arg(long, allow_negative_numbers = true, value_parser = setting_parser(Setting::Momentum),
              help = format!("Momentum, {} (default: the preset's)", Setting::Momentum.range()))]
        momentum: Option<f32>,
        /// L2 strength on the dense weights (default: the preset's).
        #[arg(long, allow_negative_numbers = true, value_parser = setting_parser(Setting::Reg),
              help = format!("L2 strength on the dense weights, {} (default: the preset's)", Setting::Reg.range()))]
        reg: Option<f32>,
        /// Learning-rate factor applied after every 60,000 training images (default: the preset's).
        #[arg(long, allow_negative_numbers = true, value_parser = setting_parser(Setting::LrDecay),
              help = format!("Learning-rate factor applied after every 60,000 training images (one MNIST epoch), {}; \
                              never below 1% of --lr (default: the preset's)", Setting::LrDecay.range()))]
        lr_decay: Option<f32>,
        /// Convolution engine: naive or fast.
        #[arg(long, default_value = "fast", value_parser = parse_engine)]
        engine: ConvEngine,
        /// Preset: post (the blog post's init, which does not learn), recommended (default: He init, SGD
        /// with momentum) or adam (He init, Adam).
        #[arg(long, value_parser = parse_preset, conflicts_with = "resume")]
        preset: Option<Preset>,
        /// Seed for init and batch order (default: 1).
        #[arg(long, conflicts_with = "resume")]
        seed: Option<u64>,
        /// Put a ReLU after conv2 (not in the post): the network post-relu.
        #[arg(long, conflicts_with = "resume")]
        relu_after_conv2: bool,
        /// The network: post (default), post-relu, lenet5, tiny, or a line such as
        /// "conv(6,5,pad=2), relu, maxpool(2), flatten, fc(10)" (see README).
        #[arg(long, value_name = "NAME|LINE", conflicts_with = "resume")]
        model: Option<String>,
        /// Optimizer: sgd (with --momentum) or adam (default: the preset's).
        #[arg(long, value_parser = parse_optimizer)]
        optimizer: Option<OptimizerKind>,
        /// Save here at the end (also after Ctrl-C, SIGTERM or a divergence): a session file
        /// (safetensors) that loads as plain PyTorch-layout weights and that --resume continues.
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
        /// Continue this session file. --epochs then counts all epochs, those in the file
        /// included; --lr, --batch, etc. override the file's; the network, preset and seed are
        /// the file's.
        #[arg(long, value_name = "FILE")]
        resume: Option<PathBuf>,
    },
    /// Export a weights or session file: weights as NumPy .npz with the post's names
    /// (c1_filters … fc_b2, fc_W1/fc_W2 transposed), curves as CSV.
    Export {
        /// Weights or session file.
        #[arg(long, value_name = "FILE")]
        weights: PathBuf,
        /// Write the weights here as .npz.
        #[arg(long, value_name = "OUT.npz")]
        npz: Option<PathBuf>,
        /// Write the loss curve here: step,loss,batch_accuracy (session files only).
        #[arg(long, value_name = "FILE.csv")]
        loss_csv: Option<PathBuf>,
        /// Write the held-out accuracy curve here: step,test_accuracy (session files only).
        #[arg(long, value_name = "FILE.csv")]
        accuracy_csv: Option<PathBuf>,
    },
    /// Accuracy of saved weights on the whole test set.
    Eval {
        /// Weights file (safetensors: ours, a session, or a PyTorch state dict).
        #[arg(long, value_name = "FILE")]
        weights: PathBuf,
        /// The network: a name (post, post-relu, lenet5, tiny) or a line such as
        /// "conv(6,5,pad=2), relu, maxpool(2), flatten, fc(10)". Needed for a PyTorch state
        /// dict that is not the post's network; a file that names its own must agree.
        #[arg(long, value_name = "NAME|LINE", value_parser = parse_model)]
        model: Option<String>,
        /// Also write one row per test image: index,label,predicted,p0,…,label_name,predicted_name
        /// (one probability per class; the names are the data's).
        #[arg(long, value_name = "FILE.csv")]
        out: Option<PathBuf>,
    },
    /// The top three classes of each picture (PNG, JPEG, BMP, GIF) by a saved network.
    ///
    /// One line per picture, `photo.jpg: cat 81.2%, dog 12.0%, frog 3.1%`, each picture prepared
    /// as the training images were (a grey 28×28 network gets a drawn digit's preparation). No
    /// training data is read. A picture that cannot be read gets `error: …` on stderr, the others
    /// still run, and the exit code is 1.
    Predict {
        /// Weights or session file (it names the network's input and classes).
        #[arg(long, value_name = "FILE")]
        weights: PathBuf,
        /// The network of a PyTorch state dict, which does not name its own (read on 1×28×28
        /// images with 10 classes; default: post); a file that names its network must agree.
        #[arg(long, value_name = "NAME|LINE", value_parser = parse_model)]
        model: Option<String>,
        /// Picture files.
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
    },
    /// Images per second of full training steps of a network (default: post), per engine and
    /// batch size (default: naive at batch 8, fast at 8, 32 and 128).
    Bench {
        /// The network: a name (post, post-relu, lenet5, tiny) or a line (default: post).
        #[arg(long, value_name = "NAME|LINE", value_parser = parse_model)]
        model: Option<String>,
        /// Engine(s) to measure (default: both).
        #[arg(long, value_parser = parse_engine)]
        engine: Vec<ConvEngine>,
        /// Batch sizes (default: 8 32 128).
        #[arg(long, num_args = 1.., value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BATCH as u64),
              help = format!("Batch sizes, each {} (default: 8 32 128)", Setting::BatchSize.range()))]
        batch: Vec<usize>,
        /// Seconds to measure each configuration for (at least 3 steps).
        #[arg(long, default_value_t = 3.0, allow_negative_numbers = true, value_parser = parse_secs)]
        secs: f64,
        /// Also show how long each phase of a step takes.
        #[arg(long)]
        phases: bool,
    },
}

pub(crate) fn parse_engine(s: &str) -> Result<ConvEngine, String> {
    ConvEngine::parse(s).map_err(|e| e.to_string())
}
fn parse_optimizer(s: &str) -> Result<OptimizerKind, String> {
    OptimizerKind::parse(s).map_err(|e| e.to_string())
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    Preset::parse(s).map_err(|e| e.to_string())
}
/// A named network or a line that reads (whether it fits the data is checked once the data
/// is known): a typo is refused before anything is loaded, with the layer and the reason.
fn parse_model(s: &str) -> Result<String, String> {
    if named(s).is_some() {
        return Ok(s.trim().to_owned());
    }
    ModelSpec::parse(s).map(|_| s.to_owned()).map_err(|e| {
        let names: Vec<&str> = NAMED.iter().map(|m| m.name).collect();
        format!("{e} (or give a named network: {})", names.join(", "))
    })
}
/// `--image-size`: a whole number of pixels in the range the image-folder reader takes.
fn parse_image_size(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}")),
    }
}

fn parse_classes(s: &str) -> Result<ClassNames, String> {
    s.parse::<ClassNames>().map_err(|e| e.to_string())
}

/// A parser for a floating-point setting that refuses what [`Setting::check_f32`] refuses, with
/// its words: `--lr -1` gets "must be above 0 and at most 10", as the window would say.
fn setting_parser(setting: Setting) -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f32 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
        match setting.check_f32(v) {
            None => Ok(v),
            Some(reason) => Err(format!("{setting} {reason}")),
        }
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err("must be a number of seconds above 0".into()) }
}

/// How a headless command ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did all it was asked.
    Done,
    /// A signal stopped it early (after saving what `train` had).
    Stopped(Signal),
    /// It did what it could, but some inputs failed (`predict`: pictures that cannot be read);
    /// each was reported as it failed.
    Incomplete,
}

/// The exit status for what [`run`] returned: 0 when done, 1 after an error or when some inputs
/// failed, 130 after Ctrl-C and 143 after SIGTERM (128 + the signal's number, as Unix tools
/// report).
pub fn exit_code(result: &Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Stopped(signal)) => ExitCode::from(signal.exit_code()),
        Ok(Outcome::Incomplete) | Err(_) => ExitCode::FAILURE,
    }
}

impl Cli {
    /// How `--data` is read: `--classes`, `--image-size`, `--grayscale`; the held-out share's
    /// seed stays 0 (not `--seed`), so every command splits a folder the same way.
    #[must_use]
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { classes: self.classes, image_size: self.image_size, grayscale: self.grayscale, seed: 0 }
    }
}

/// Runs a headless command with the global options of `cli` (`--data`, and how to read it:
/// [`Cli::load_options`]). Errors are returned, not printed: `main` prints them once
/// (`error: …`) and exits with [`exit_code`].
pub fn run(command: Command, data: Option<PathBuf>, load: LoadOptions) -> Result<Outcome, CliError> {
    let mut stdout = std::io::stdout();
    match command {
        Command::Train {
            epochs,
            batch,
            lr,
            momentum,
            reg,
            lr_decay,
            engine,
            preset,
            seed,
            relu_after_conv2,
            model,
            optimizer,
            save,
            resume,
        } => {
            let stop = StopFlag::new();
            stop.install_handlers().map_err(CliError::Signals)?;
            let o = TrainOptions {
                data,
                classes: load.classes,
                image_size: load.image_size,
                grayscale: load.grayscale,
                epochs,
                batch,
                lr,
                momentum,
                reg,
                lr_decay,
                engine,
                preset,
                seed,
                relu_after_conv2,
                model,
                optimizer,
                save,
                resume,
            };
            let mut stderr = std::io::stderr();
            let progress = stderr.is_terminal();
            let mut console = Console { out: &mut stdout, err: &mut stderr, progress };
            let summary = super::train(&o, &stop, &mut console)?;
            Ok(summary.stopped.map_or(Outcome::Done, Outcome::Stopped))
        }
        Command::Export { weights, npz, loss_csv, accuracy_csv } => {
            super::export(&weights, npz.as_deref(), loss_csv.as_deref(), accuracy_csv.as_deref(), &mut stdout)?;
            Ok(Outcome::Done)
        }
        Command::Eval { weights, model, out } => {
            super::eval_model(&weights, model.as_deref(), data.as_deref(), &load, out.as_deref(), &mut stdout)?;
            Ok(Outcome::Done)
        }
        Command::Predict { weights, model, images } => {
            let summary = super::predict::predict(
                &weights,
                model.as_deref(),
                load.classes,
                &images,
                &mut stdout,
                &mut std::io::stderr(),
            )?;
            Ok(if summary.failed > 0 { Outcome::Incomplete } else { Outcome::Done })
        }
        Command::Bench { model, engine, batch, secs, phases } => {
            let model = model.as_deref().unwrap_or(DEFAULT_MODEL);
            super::bench_report(model, &engine, &batch, secs, phases, &mut stdout)?;
            Ok(Outcome::Done)
        }
    }
}
