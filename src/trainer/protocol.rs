//! What goes between the window and the worker: commands in, events and snapshots out.
//! Everything is plain owned data carrying only what is shown, never the whole model.

use serde::{Deserialize, Serialize};

use crate::engine::{ConvEngine, Hyper, ModelConfig, Phase, Preset};

/// Training settings the user can change; they apply from the next batch on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Learning rate, momentum, L2 strength and per-epoch decay.
    pub hyper: Hyper,
    /// Images per mini-batch.
    pub batch_size: usize,
    /// Which convolution engine runs.
    pub engine: ConvEngine,
}

impl Settings {
    /// Largest batch the window offers; more would not fit a snapshot at 30 per second.
    pub const MAX_BATCH: usize = 512;

    /// The settings a preset starts with, on the given engine.
    pub fn from_preset(preset: Preset, engine: ConvEngine) -> Self {
        Self { hyper: preset.hyper(), batch_size: preset.batch_size(), engine }
    }

    /// Refuses values that cannot train, with a message naming the value.
    pub fn validate(&self) -> Result<(), String> {
        self.hyper.validate().map_err(|e| e.to_string())?;
        if self.batch_size == 0 || self.batch_size > Self::MAX_BATCH {
            return Err(format!("batch size {} must be between 1 and {}", self.batch_size, Self::MAX_BATCH));
        }
        Ok(())
    }
}

/// A request to the trainer.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run the next phase (starting a new batch if the last step is complete).
    StepPhase,
    /// Run every remaining phase of the current batch (or one whole new batch).
    StepBatch,
    /// Train continuously until paused.
    Run,
    /// Stop after the phase that is running.
    Pause,
    /// Train until the current epoch ends, then pause.
    RunEpoch,
    /// Start again from fresh weights.
    Reset {
        /// Seed for init and sampling.
        seed: u64,
        /// Init and hyper-parameter preset.
        preset: Preset,
        /// Network shape.
        config: ModelConfig,
    },
    /// New settings, applied at the next batch.
    SetSettings(Settings),
    /// Show this image of the batch in the per-digit views.
    SelectSample(usize),
    /// Measure accuracy on the first `count` test images (0 = all).
    Evaluate {
        /// How many test images.
        count: usize,
    },
    /// Save weights and training state to a session file (finishing a half-done step first).
    /// Success is a snapshot whose `notices` says where; failure an [`Event::Error`].
    Save(std::path::PathBuf),
    /// Open a session file (or a plain weights file) in place of the current run, paused.
    /// Success is a snapshot with `curves_reset` and the whole history; failure an
    /// [`Event::Error`] that leaves the current run as it was.
    Open(std::path::PathBuf),
    /// Test hook: the next phase that runs panics (after changing the state), to exercise the
    /// worker's recovery. Not for the window.
    #[doc(hidden)]
    InjectPanic,
    /// End the worker thread.
    Shutdown,
}

/// Something the trainer reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The state to show (at most ~30 a second while running).
    Snapshot(Box<Snapshot>),
    /// Progress inside a long phase (the naive convolutions) or an evaluation.
    Progress {
        /// What is in progress, e.g. "backward conv2" or "evaluating".
        what: String,
        /// Units done.
        done: usize,
        /// Units in all.
        total: usize,
    },
    /// An evaluation finished.
    Evaluated(EvalResult),
    /// Something went wrong; training is paused and nothing was lost.
    Error(String),
}

/// One point of the loss curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Step (batch) number, 1-based.
    pub step: u64,
    /// Total loss of that batch (before its update).
    pub loss: f32,
    /// Fraction of that batch classified correctly.
    pub batch_accuracy: f32,
}

/// One point of the held-out accuracy curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracyPoint {
    /// Step at which it was measured.
    pub step: u64,
    /// Fraction of the held-out images classified correctly.
    pub accuracy: f32,
}

/// Result of evaluating on test images.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    /// Step at which it was measured.
    pub step: u64,
    /// Images evaluated.
    pub count: usize,
    /// Images classified correctly.
    pub correct: usize,
}

impl EvalResult {
    /// `correct / count`.
    pub fn accuracy(&self) -> f32 {
        if self.count == 0 { 0.0 } else { self.correct as f32 / self.count as f32 }
    }
}

/// The batch as shown: its images, labels and (once the loss phase ran) probabilities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchView {
    /// First channel of each image, `N × height × width`, in [0, 1].
    pub images: Vec<f32>,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Label of each image.
    pub labels: Vec<usize>,
    /// Index of each image in the training set.
    pub indices: Vec<usize>,
    /// Class probabilities `N × classes`; empty before the loss phase of this step.
    pub probs: Vec<f32>,
}

/// The selected digit's tensors. Each is empty until the phase that computes it has run in
/// the current step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SampleView {
    /// Index in the batch.
    pub index: usize,
    /// Input `C × H × W`.
    pub input: Vec<f32>,
    /// conv1 output `F1 × H1 × W1`.
    pub conv1: Vec<f32>,
    /// relu1 output `F1 × H1 × W1`.
    pub relu1: Vec<f32>,
    /// conv2 output `F2 × H2 × W2`.
    pub conv2: Vec<f32>,
    /// Optional ReLU after conv2.
    pub relu_c2: Vec<f32>,
    /// FC1 output (100).
    pub fc1: Vec<f32>,
    /// relu2 output (100).
    pub relu2: Vec<f32>,
    /// Class scores (10).
    pub scores: Vec<f32>,
    /// Class probabilities (10).
    pub probs: Vec<f32>,
    /// ∂L/∂scores.
    pub d_scores: Vec<f32>,
    /// ∂L/∂relu2.
    pub d_relu2: Vec<f32>,
    /// ∂L/∂fc1.
    pub d_fc1: Vec<f32>,
    /// ∂L/∂relu_c2.
    pub d_relu_c2: Vec<f32>,
    /// ∂L/∂conv2.
    pub d_conv2: Vec<f32>,
    /// ∂L/∂relu1.
    pub d_relu1: Vec<f32>,
    /// ∂L/∂conv1.
    pub d_conv1: Vec<f32>,
}

/// Both filter banks with their gradients and last update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterView {
    /// conv1 weights `F1 × C × K × K`.
    pub conv1_w: Vec<f32>,
    /// Their gradient (empty until backward conv1 ran this step).
    pub conv1_grad: Vec<f32>,
    /// The change the last update made.
    pub conv1_delta: Vec<f32>,
    /// conv2 weights `F2 × F1 × K × K`.
    pub conv2_w: Vec<f32>,
    /// Their gradient (empty until backward conv2 ran this step).
    pub conv2_grad: Vec<f32>,
    /// The change the last update made.
    pub conv2_delta: Vec<f32>,
}

/// Everything the window shows of the trainer's state at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Completed training steps.
    pub step: u64,
    /// Completed epochs.
    pub epoch: u64,
    /// Images of the current epoch already used.
    pub epoch_position: usize,
    /// Images per epoch.
    pub epoch_len: usize,
    /// Whether the trainer is running (not paused).
    pub running: bool,
    /// The phases of a step, in order.
    pub phases: Vec<Phase>,
    /// How many phases of the current step have run (0 = none yet).
    pub phases_done: usize,
    /// Settings in force for the current batch.
    pub settings: Settings,
    /// Settings that take over at the next batch, if changed.
    pub pending: Option<Settings>,
    /// The learning rate in force (after per-epoch decay).
    pub effective_lr: f32,
    /// Seed of this run.
    pub seed: u64,
    /// Preset of this run.
    pub preset: Preset,
    /// Network shape.
    pub config: ModelConfig,
    /// Names of the classes.
    pub class_names: Vec<String>,
    /// Where the data came from.
    pub data_source: String,
    /// The current batch.
    pub batch: BatchView,
    /// The selected digit's tensors.
    pub sample: SampleView,
    /// Filters, gradients and updates.
    pub filters: FilterView,
    /// Loss of the current batch, once its loss phase ran.
    pub loss: Option<f32>,
    /// Training throughput over the last batches.
    pub images_per_sec: f32,
    /// Loss points since the previous snapshot.
    pub new_loss_points: Vec<LossPoint>,
    /// Held-out accuracy points since the previous snapshot.
    pub new_accuracy_points: Vec<AccuracyPoint>,
    /// True when the curves start over (new run, opened file, or training rewound after a
    /// divergence or internal error): drop the curves shown and take `new_*_points` as the
    /// whole (possibly decimated) history.
    pub curves_reset: bool,
    /// Messages for the user since the previous snapshot, e.g. "saved session to FILE".
    pub notices: Vec<String>,
}

impl Snapshot {
    /// The phase that ran last in this step, if any.
    pub fn last_phase(&self) -> Option<Phase> {
        self.phases_done.checked_sub(1).and_then(|i| self.phases.get(i).copied())
    }

    /// The phase that runs next.
    pub fn next_phase(&self) -> Option<Phase> {
        self.phases.get(self.phases_done).copied().or(self.phases.first().copied())
    }
}
