//! The trainer's one error type. Turned into text once, at the edge: the worker's
//! [`Event::Error`](super::Event::Error) and the command line's message.

use std::path::PathBuf;

use crate::data::DataError;
use crate::engine::npz::NpzError;
use crate::engine::weights::WeightsError;
use crate::engine::{EngineError, SettingsError};
use crate::fileio::FileError;

use super::checkpoint::CheckpointError;
use super::divergence::DivergenceReason;

/// Everything that can go wrong in a [`Session`](super::Session).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The loss of step `step` diverged. The session has already gone back to the start of the
    /// last batch whose loss was fine (see `restored_to`); nothing else changed.
    #[error(
        "the loss became {loss} at step {step} ({reason}) with learning rate {lr} and momentum {momentum}: \
         training diverged; {}",
        match restored_to {
            Some(s) => format!("the weights and momentum were restored to step {s} (the last good batch)"),
            None => "the weights could not be restored".to_owned(),
        }
    )]
    Diverged {
        /// The step whose loss diverged (1-based).
        step: u64,
        /// That loss.
        loss: f32,
        /// Which part of the divergence rule it broke.
        reason: DivergenceReason,
        /// The learning rate of the update that led there (the last good batch's).
        lr: f32,
        /// The momentum of that update.
        momentum: f32,
        /// The step the session went back to, or `None` if it could not.
        restored_to: Option<u64>,
    },
    /// Settings that cannot train, every problem named.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The settings stored in a session file cannot train here.
    #[error("saved settings: {0}")]
    SavedSettings(SettingsError),
    /// The data set cannot be read or batched.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A weights file cannot be read.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A network that cannot be built, or a batch that does not fit it.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A session file cannot be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A NumPy export failed.
    #[error(transparent)]
    Npz(#[from] NpzError),
    /// Writing a file (an export) failed; the error names it.
    #[error(transparent)]
    File(#[from] FileError),
    /// A network that cannot be built on this data: the line does not parse, or a layer does
    /// not fit (the reason names the layer).
    #[error("network {model:?}: {reason}")]
    Model {
        /// The name or line as given.
        model: String,
        /// What is wrong, naming the layer.
        reason: String,
    },
    /// Step back was asked for where there is nothing to go back to.
    #[error("cannot step back: {why}")]
    CannotStepBack {
        /// Why not, e.g. "at the start of the batch: the state before it is not kept".
        why: &'static str,
    },
    /// The training set has no images.
    #[error("{data}: the training set is empty")]
    EmptyTrainingSet {
        /// The data set, as [`Splits::source`](crate::data::Splits::source) names it.
        data: String,
    },
    /// The data set does not fit the network (image size, classes, length of a saved run).
    #[error("{detail}")]
    DataMismatch {
        /// The data set.
        data: String,
        /// What does not fit, with both sizes.
        detail: String,
    },
    /// Saving in the middle of a step: a file holds whole steps.
    #[error("cannot save in the middle of step {step} ({done} of {total} phases done): finish the step first")]
    MidStep {
        /// The step in progress (1-based).
        step: u64,
        /// Phases done.
        done: usize,
        /// Phases in a step.
        total: usize,
    },
    /// Class evidence asked of a network where it is not exact; the reason says why.
    #[error("{reason}")]
    NoEvidence {
        /// Why, in a sentence a student understands.
        reason: String,
    },
    /// A request about the current batch before there is one.
    #[error("there is no batch yet: take a step first, then {then}")]
    NoBatch {
        /// What to do after the step, e.g. "ask about its digits".
        then: &'static str,
    },
    /// A loop asked of a layer that has no such loop (see `engine::model::loops::check_part`).
    #[error("no loop for {asked}: {reason}")]
    NoLoop {
        /// What was asked, e.g. "layer 1 backward dW & db".
        asked: String,
        /// Why not, naming the layer and what it has.
        reason: String,
    },
    /// A probe of a test image that does not exist.
    #[error("there is no test image {index}: the test set has {count} images (0 to {})", count.saturating_sub(1))]
    NoTestImage {
        /// The index asked for.
        index: usize,
        /// Test images there are.
        count: usize,
    },
    /// A drawn image with the wrong number of pixels.
    #[error("a drawn image needs {expected} pixel values ({shape}), but {found} were sent")]
    WrongPixelCount {
        /// Pixels the network takes.
        expected: usize,
        /// Its input shape, e.g. "1×28×28".
        shape: String,
        /// Pixels sent.
        found: usize,
    },
    /// A drawn pixel outside [0, 1].
    #[error("pixel {index} (row {row}, column {column}) of the drawn image is {value}: values must be between 0 and 1")]
    PixelOutOfRange {
        /// Its index in the image.
        index: usize,
        /// Its row.
        row: usize,
        /// Its column.
        column: usize,
        /// Its value.
        value: f32,
    },
    /// Something about a named file: the file, then what went wrong with it.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: Box<TrainError>,
    },
    /// A state that should not happen (a bug, not a user error).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl TrainError {
    /// The error itself, without the file names wrapped around it by [`TrainError::InFile`].
    pub fn cause(&self) -> &TrainError {
        match self {
            TrainError::InFile { source, .. } => source.cause(),
            other => other,
        }
    }

    /// True if the cause is [`TrainError::Diverged`].
    pub fn is_divergence(&self) -> bool {
        matches!(self.cause(), TrainError::Diverged { .. })
    }

    /// Names the file this error is about.
    pub fn in_file(self, path: impl Into<PathBuf>) -> TrainError {
        TrainError::InFile { path: path.into(), source: Box::new(self) }
    }
}
