//! The network's maths, with no GUI: one file per layer, forward and backward side by side.
//!
//! [`Network`] runs the post's graph as an ordered list of [`Phase`]s so that a caller can stop
//! after any phase and look at its tensors. The convolutions run in one of two
//! [`ConvEngine`]s (the post's loops, or Fourier transforms for conv2 and im2col + GEMM for
//! conv1) that compute the same numbers.

pub mod config;
pub mod conv;
pub mod dense;
pub mod evidence;
pub mod fftconv;
pub mod float;
pub mod gradcheck;
pub mod layout;
pub mod model;
pub mod network;
pub mod npz;
pub mod number;
pub mod params;
pub mod phase;
pub mod playground;
pub mod relu;
pub mod softmax_xent;
pub mod weights;

pub use config::{
    DECAY_EVERY_IMAGES, Hyper, Init, LR_FLOOR, LrSchedule, MAX_BATCH, ModelConfig, OptimizerKind, Preset, Setting,
    SettingProblem, SettingsError,
};
pub use conv::ConvEngine;
pub use float::Real;
pub use model::Phase;
pub use network::{Activations, Network, argmax};
pub use number::Float;
pub use params::{PARAM_NAMES, Params};

/// What can go wrong in the engine: a network shape that cannot be built, or a batch that does
/// not fit the network. (Hyper-parameters that cannot train are a [`SettingsError`].)
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EngineError {
    /// A model shape that cannot be built.
    #[error("model configuration: {0}")]
    Config(String),
    /// Images or labels that do not fit the network.
    #[error("batch: {0}")]
    Input(String),
}

impl ConvEngine {
    /// Parses `naive` or `fast`.
    pub fn parse(s: &str) -> Result<Self, EngineError> {
        match s {
            "naive" => Ok(ConvEngine::Naive),
            "fast" => Ok(ConvEngine::Fast),
            other => Err(EngineError::Config(format!("unknown engine {other:?}: expected \"naive\" or \"fast\""))),
        }
    }
}
