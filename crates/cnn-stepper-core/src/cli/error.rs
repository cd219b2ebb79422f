//! What the headless commands fail with: typed until `main` prints it once.

use std::path::PathBuf;

use crate::data::DataError;
use crate::engine::model::SpecError;
use crate::engine::npz::NpzError;
use crate::engine::weights::WeightsError;
use crate::engine::{EngineError, SettingsError};
use crate::fileio::FileError;
use crate::trainer::TrainError;
use crate::trainer::checkpoint::CheckpointError;

/// Why a headless command failed. `main` prints it as `error: {message}` and exits with 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Training, or opening and saving a session, failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Training diverged. The session went back to the last good batch, which was saved if
    /// `--save` was given; a headless run cannot ask what to do, so it stops.
    #[error("{error}. {}", match saved {
        Some(path) => format!(
            "That state was saved to {}: --resume it with a smaller --lr (or --momentum).",
            path.display()
        ),
        None => "Nothing was saved: try a smaller --lr (or --momentum).".to_owned(),
    })]
    Diverged {
        /// The divergence ([`TrainError::Diverged`]), boxed: it is large and rare.
        error: Box<TrainError>,
        /// Where the last good state was saved.
        saved: Option<PathBuf>,
    },
    /// The run could not be saved where `--save` said, at the end. It was saved elsewhere if
    /// `rescued` says so.
    #[error("{error}. {}", match rescued {
        Some(path) => format!("The run was saved to {} instead (--resume continues it).", path.display()),
        None => "It could not be saved anywhere else either: the run is lost.".to_owned(),
    })]
    NotSaved {
        /// Why the save failed.
        error: Box<TrainError>,
        /// Where the run was saved instead.
        rescued: Option<PathBuf>,
    },
    /// Hyper-parameters that cannot train.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The data set cannot be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A weights file cannot be read or written.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A session file cannot be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A file cannot be written (the error names it and what failed).
    #[error(transparent)]
    File(#[from] FileError),
    /// The network cannot be built or a batch does not fit it.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The NumPy export failed.
    #[error(transparent)]
    Npz(#[from] NpzError),
    /// `--epochs` out of range.
    #[error("--epochs {0} must be between 1 and {max}", max = crate::engine::config::MAX_EPOCHS)]
    Epochs(usize),
    /// `bench --secs` that is not a positive number.
    #[error("--secs {0} must be a number above 0")]
    BenchSecs(f64),
    /// An option that a resumed run cannot honour: the network and its start come from the file.
    #[error("{option} cannot be used with --resume: {reason}")]
    ResumeConflict {
        /// The option, e.g. "--relu-after-conv2".
        option: &'static str,
        /// Why, naming the file.
        reason: String,
    },
    /// Options that ask for two different networks.
    #[error("{reason}")]
    ModelConflict {
        /// Which options and why.
        reason: String,
    },
    /// The data set does not fit the network of a weights file.
    #[error("{}: {detail}", file.display())]
    DoesNotFit {
        /// The weights file.
        file: PathBuf,
        /// What does not fit, with both sizes.
        detail: String,
    },
    /// `--model` names no network, or its line does not fit the data.
    #[error("--model: {0}")]
    Model(#[source] SpecError),
    /// A file that does not name its network (a PyTorch state dict) did not fit the default
    /// network either: the user must say which network it holds.
    #[error(
        "{error} (the file does not say which network it holds, so it was read as `{tried}`: give its line with --model)"
    )]
    Unnamed {
        /// Why the file did not fit the default network (boxed: it is large and rare).
        error: Box<WeightsError>,
        /// The default network it was read as.
        tried: &'static str,
    },
    /// `export` without anything to write.
    #[error("nothing to export: give --npz, --loss-csv or --accuracy-csv")]
    NothingToExport,
    /// Curves asked of a file that has none.
    #[error("{}: a weights-only file has no curves to export", path.display())]
    NoCurves {
        /// The file.
        path: PathBuf,
    },
    /// Writing to standard output failed (a closed pipe, a full disk).
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install the handlers for Ctrl-C and SIGTERM: {0}")]
    Signals(#[source] std::io::Error),
}
