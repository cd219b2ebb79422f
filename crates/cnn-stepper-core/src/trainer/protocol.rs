//! What goes between the window and the worker: commands in, events and snapshots out.
//! Everything is plain owned data carrying only what is shown, never the whole model.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::gradcheck::GradCheckReport;
use crate::engine::model::loops::{LoopCase, LoopPart};
use crate::engine::model::{LayerSpec, Plan, PlannedLayer};
use crate::engine::{ConvEngine, Hyper, LrSchedule, Phase, Preset, Setting, SettingProblem, SettingsError};

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
    /// The settings a preset starts with, on the given engine.
    pub fn from_preset(preset: Preset, engine: ConvEngine) -> Self {
        Self { hyper: preset.hyper(), batch_size: preset.batch_size(), engine }
    }

    /// Every value that cannot train, in field order (batch size last).
    pub fn problems(&self) -> Vec<SettingProblem> {
        let mut problems = self.hyper.problems();
        if let Some(reason) = Setting::check_batch(self.batch_size) {
            problems.push(SettingProblem { setting: Setting::BatchSize, value: self.batch_size.to_string(), reason });
        }
        problems
    }

    /// Refuses values that cannot train, naming every one (batch size between 1 and
    /// [`MAX_BATCH`](crate::engine::MAX_BATCH), and [`Hyper::validate`]'s ranges).
    pub fn validate(&self) -> Result<(), SettingsError> {
        SettingsError::from_problems(self.problems())
    }
}

/// A request to the trainer.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run the next phase (starting a new batch if the last step is complete).
    StepPhase,
    /// Run every remaining phase of the current batch (or one whole new batch).
    StepBatch,
    /// Go back one phase within the current batch (see `Session::step_back`); refused, with
    /// the reason, at the start of a batch.
    StepBack,
    /// Train continuously until paused.
    Run,
    /// Stop: a long (naive) phase that is running is abandoned within a fraction of a second
    /// and runs again, whole, on the next step; no further phase starts. `Worker::send` raises
    /// the worker's stop flag at once, before the command is read.
    Pause,
    /// Train until the current epoch ends, then pause.
    RunEpoch,
    /// Train as [`Command::Run`] does until `step` steps are complete, then pause (at once if
    /// they already are; a half-done step is finished first). Pause still stops it.
    RunTo {
        /// Completed steps to reach.
        step: u64,
    },
    /// Start again from fresh weights.
    Reset {
        /// Seed for init and sampling.
        seed: u64,
        /// Init and hyper-parameter preset.
        preset: Preset,
        /// The network: a name (`post`, `lenet5`) or a line (`conv(6,5), relu, …, fc(10)`),
        /// checked against the data (see [`crate::engine::model::resolve`]).
        model: String,
    },
    /// Train on other data: a fresh run of `model` (a name or a line, checked against the data
    /// as for [`Command::Reset`]) on `data`, paused; the user's settings go on when the preset
    /// is the same and they fit the new training set. Success is a snapshot with
    /// `curves_reset` whose `notices` start with
    /// [`NEW_DATA_NOTICE`](crate::trainer::worker::NEW_DATA_NOTICE); failure an
    /// [`Event::Error`] that leaves the current run and its data as they were.
    SetData {
        /// The data, already loaded (the window loads it on a thread of its own).
        data: Arc<crate::data::Splits>,
        /// Seed for init and sampling.
        seed: u64,
        /// Init and hyper-parameter preset.
        preset: Preset,
        /// The network for this data.
        model: String,
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
    /// Write what the run has so far to a file, without pausing: the weights as a NumPy `.npz`
    /// with the post's names, or the loss and accuracy curves as one CSV. Success is a snapshot
    /// whose `notices` says where; failure an [`Event::Error`].
    Export(Export),
    /// Forward pass of the current weights on one image, without touching the batch or the
    /// training state; answered by [`Event::Probed`] (or [`Event::Error`] for a bad image).
    /// Served between phases, so it does not stop a run.
    Probe(ProbeInput),
    /// The exact class-evidence maps of an image (see [`ClassEvidence`]); answered by
    /// [`Event::ClassEvidence`]. Does not stop a run.
    ClassEvidence(EvidenceOf),
    /// Hidden unit `j` of the first fc after `flatten`: its weights as the maps they multiply;
    /// answered by [`Event::Fc1Unit`]. Does not stop a run.
    Fc1Unit(usize),
    /// Finite-difference check of backprop on the current batch, with progress events;
    /// answered by [`Event::GradientCheck`]. Leaves the training state untouched.
    CheckGradients,
    /// The loop nest of one part of one layer on the batch in progress, at the weights it
    /// started with; answered by [`Event::Loops`]. Does not stop a run.
    Loops {
        /// The layer's position in the line.
        layer: usize,
        /// Which part of its work.
        part: LoopPart,
    },
    /// Test hook: the next phase that runs panics (after changing the state), to exercise the
    /// worker's recovery. Not for the window.
    #[doc(hidden)]
    InjectPanic,
    /// How many threads the engine splits its work over (0: one per core, the default). The
    /// window sends 1 when it is drawn by a software renderer, which needs the other core: two
    /// engine threads then keep waiting for the one the renderer preempted.
    SetComputeThreads(usize),
    /// End the worker thread.
    Shutdown,
}

/// What [`Command::Export`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Export {
    /// The weights as `.npz`: for the post's network its names (`c1_filters`, `c1_b`, …,
    /// `fc_W2`, `fc_b2`), loadable into the post's numpy code; otherwise see
    /// [`crate::engine::npz`].
    Npz(std::path::PathBuf),
    /// The curves as CSV: `step,loss,batch_accuracy,test_accuracy`, one row per recorded step.
    CurvesCsv(std::path::PathBuf),
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
    /// The answer to [`Command::Probe`].
    Probed(Box<Probed>),
    /// The answer to [`Command::ClassEvidence`].
    ClassEvidence(Box<ClassEvidence>),
    /// The answer to [`Command::Fc1Unit`].
    Fc1Unit(Box<Fc1Unit>),
    /// The answer to [`Command::CheckGradients`].
    GradientCheck(Box<GradientCheck>),
    /// The answer to [`Command::Loops`].
    Loops(Box<LoopCase>),
    /// Something went wrong and nothing was lost. Training is paused, except when the failed
    /// command only reads the state (probe, class evidence, FC1 unit, gradient check): then a
    /// run goes on.
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

/// Result of evaluating on test images: accuracy, confusion matrix and the mistakes.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    /// Step at which it was measured.
    pub step: u64,
    /// Images evaluated (the first `count` of the test set).
    pub count: usize,
    /// Images classified correctly.
    pub correct: usize,
    /// Number of classes: the confusion matrix is `classes × classes`.
    pub classes: usize,
    /// Counts, row-major `[true class, predicted class]`.
    pub confusion: Vec<usize>,
    /// The misclassified images in test-set order, at most [`EvalResult::MAX_MISCLASSIFIED`]
    /// (`count − correct` is the true number).
    pub misclassified: Vec<Misclassified>,
}

/// One misclassified test image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Misclassified {
    /// Index in the test set.
    pub index: usize,
    /// Its true class.
    pub label: usize,
    /// The class the network chose.
    pub predicted: usize,
    /// The probability the network gave its choice.
    pub confidence: f32,
    /// The probability the network gave the true class.
    pub label_probability: f32,
}

impl EvalResult {
    /// Most misclassified images a result lists: all of MNIST's 10,000 test images, so the
    /// limit only bites on a larger custom test set.
    pub const MAX_MISCLASSIFIED: usize = 10_000;

    /// `correct / count`.
    pub fn accuracy(&self) -> f32 {
        if self.count == 0 { 0.0 } else { self.correct as f32 / self.count as f32 }
    }

    /// How many images of class `truth` were predicted as `predicted` (0 outside the matrix).
    pub fn confusion_count(&self, truth: usize, predicted: usize) -> usize {
        if truth >= self.classes || predicted >= self.classes {
            return 0;
        }
        self.confusion.get(truth * self.classes + predicted).copied().unwrap_or(0)
    }

    /// How many evaluated images are of class `truth` (the row sum).
    pub fn class_count(&self, truth: usize) -> usize {
        (0..self.classes).map(|p| self.confusion_count(truth, p)).sum()
    }

    /// The accuracy on each class (recall): `None` for a class with no images evaluated.
    pub fn per_class_accuracy(&self) -> Vec<Option<f32>> {
        (0..self.classes)
            .map(|k| {
                let n = self.class_count(k);
                (n > 0).then(|| self.confusion_count(k, k) as f32 / n as f32)
            })
            .collect()
    }

    /// The listed mistakes in one confusion-matrix cell (what a click on the cell shows).
    pub fn misclassified_as(&self, truth: usize, predicted: usize) -> impl Iterator<Item = &Misclassified> + '_ {
        self.misclassified.iter().filter(move |m| m.label == truth && m.predicted == predicted)
    }
}

/// One point of the per-layer magnitude curves: the root mean square of each layer's output,
/// of the loss gradient with respect to it, and of each weight tensor and its gradient, over one
/// training step's batch. Shows signals and gradients vanishing (the post's init) or exploding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MagnitudePoint {
    /// Step (batch) number, 1-based; a decimated point is the mean of the steps up to this one.
    pub step: u64,
    /// RMS of each layer's output over the batch, one per layer of the plan (`flatten`'s is its
    /// input's; NaN where unknown, e.g. a layer an older file did not measure).
    pub activations: Vec<f32>,
    /// RMS of ∂L/∂ each layer's output, one per layer.
    pub gradients: Vec<f32>,
    /// RMS of each weight tensor (conv and fc, in order; after the step's update).
    pub weights: Vec<f32>,
    /// RMS of ∂L/∂ each weight tensor (with the L2 term on fc).
    pub weight_gradients: Vec<f32>,
}

/// An image to run a forward pass on, outside the training batch.
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeInput {
    /// Image `index` of the test set (e.g. a misclassified one clicked in the gallery).
    TestImage(usize),
    /// A drawn digit: `in_channels × in_height × in_width` values in [0, 1], row-major
    /// (784 for MNIST).
    Pixels(Vec<f32>),
}

/// Whose class evidence [`Command::ClassEvidence`] asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum EvidenceOf {
    /// The digit selected in the current batch.
    SelectedSample,
    /// A test image or a drawn digit.
    Image(ProbeInput),
}

/// Which image a result is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageId {
    /// An image of the current batch.
    Batch {
        /// Its position in the batch.
        position: usize,
        /// Its index in the training set.
        train_index: usize,
    },
    /// Test image `index`.
    Test(usize),
    /// The pixels sent with the command (a drawn digit).
    Drawn,
}

/// A forward pass of the current weights on one image ([`Command::Probe`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Probed {
    /// Completed training steps when it ran (the weights are those after that step's update,
    /// or the weights in force mid-step).
    pub step: u64,
    /// What was probed.
    pub image: ImageId,
    /// The true class, when known (test images).
    pub label: Option<usize>,
    /// Every layer's output for the image and its probabilities; the gradients are empty and
    /// `index` is 0.
    pub sample: SampleView,
    /// The most probable class.
    pub predicted: usize,
    /// Its probability.
    pub confidence: f32,
}

/// The exact class-evidence maps of one image ([`Command::ClassEvidence`]).
///
/// For a network ending `flatten, fc, relu, fc` with the ReLU pattern held fixed, each class
/// score is linear in the flattened maps `x`: `logit_k = bias_terms[k] + Σ_i maps[k][i]` with
/// `maps[k][i] = x_i · Σ_j W2[k,j]·m_j·W1[j,i]`; for one that ends `flatten, fc` it is
/// `x_i · W[k,i]`. See [`crate::engine::model::evidence`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClassEvidence {
    /// Completed training steps when it was computed (the current weights).
    pub step: u64,
    /// Which image.
    pub image: ImageId,
    /// The true class, when known.
    pub label: Option<usize>,
    /// The image's pixels `C × H × W`, to draw next to the maps.
    pub input: Vec<f32>,
    /// The student name of the layer whose output the maps split (`conv2`, `relu2`, `pool2`).
    pub source: String,
    /// Maps per class (that layer's channels).
    pub channels: usize,
    /// Map height.
    pub height: usize,
    /// Map width.
    pub width: usize,
    /// `[CLASSES, C, H, W]`: contribution of every input position of the first fc to every
    /// class score.
    pub maps: Vec<f32>,
    /// `[CLASSES]`: the part of each score from the biases.
    pub bias_terms: Vec<f32>,
    /// `[CLASSES]`: the class scores (from an ordinary forward pass).
    pub logits: Vec<f32>,
    /// `[HIDDEN]`: which hidden units passed their ReLU (the pattern held fixed); empty when the
    /// network has a single fc.
    pub active_units: Vec<bool>,
}

impl ClassEvidence {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.logits.len()
    }

    /// Class `k`'s evidence, `F2 × H2 × W2` (empty if there is no class `k`).
    pub fn class_map(&self, k: usize) -> &[f32] {
        let per = self.channels * self.height * self.width;
        self.maps.get(k * per..(k + 1) * per).unwrap_or(&[])
    }

    /// Class `k`'s evidence in map `c`, `H × W` (empty if out of range).
    pub fn channel_map(&self, k: usize, c: usize) -> &[f32] {
        let hw = self.height * self.width;
        if c >= self.channels {
            return &[];
        }
        self.class_map(k).get(c * hw..(c + 1) * hw).unwrap_or(&[])
    }

    /// Σ of class `k`'s map, summed in f64: `logits[k] − bias_terms[k]` up to rounding.
    pub fn evidence_sum(&self, k: usize) -> f32 {
        self.class_map(k).iter().map(|v| f64::from(*v)).sum::<f64>() as f32
    }
}

/// One hidden unit of the first fc after `flatten`: its weights shaped as the maps they
/// multiply ([`Command::Fc1Unit`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Fc1Unit {
    /// Completed training steps when it was read (the current weights).
    pub step: u64,
    /// The unit, `0..hidden`.
    pub unit: usize,
    /// The fc layer's student name (`fc1`).
    pub layer: String,
    /// The student name of the layer whose maps it multiplies (`conv2`, `pool2`).
    pub source: String,
    /// Maps (that layer's channels).
    pub channels: usize,
    /// Map height.
    pub height: usize,
    /// Map width.
    pub width: usize,
    /// `[C, H, W]`: row `unit` of the fc's weight matrix.
    pub weights: Vec<f32>,
    /// The unit's bias.
    pub bias: f32,
    /// `[CLASSES]`: the last fc's weight from this unit to each class (how its output votes);
    /// empty when more layers sit between them.
    pub class_weights: Vec<f32>,
}

impl Fc1Unit {
    /// The weights on map `c`, `H × W` (empty if out of range).
    pub fn channel_map(&self, c: usize) -> &[f32] {
        let hw = self.height * self.width;
        if c >= self.channels {
            return &[];
        }
        self.weights.get(c * hw..(c + 1) * hw).unwrap_or(&[])
    }
}

/// The result of [`Command::CheckGradients`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradientCheck {
    /// Completed training steps when it ran (the current weights, on the current batch).
    pub step: u64,
    /// Per-layer entries: analytic vs numeric gradient and their relative error.
    pub report: GradCheckReport,
}

/// The latest answer to each read-only request, as the window keeps them for its panels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TeachingResults {
    /// The last evaluation (accuracy, confusion matrix, misclassified images).
    pub evaluation: Option<EvalResult>,
    /// The last gradient check.
    pub gradient_check: Option<Box<GradientCheck>>,
    /// The last probed image (drawn digit or test image).
    pub probe: Option<Box<Probed>>,
    /// The last class-evidence maps.
    pub class_evidence: Option<Box<ClassEvidence>>,
    /// The last FC1 unit asked for.
    pub fc1_unit: Option<Box<Fc1Unit>>,
    /// The last loop case asked for (the Loops tab).
    pub loops: Option<Box<LoopCase>>,
    /// Bumped whenever a result is stored, so views can tell when to redraw their textures.
    pub revision: u64,
}

/// The batch as shown: its images, labels and (once the loss phase ran) probabilities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchView {
    /// Every image with all its channels, `N × channels × height × width` (each image channel
    /// after channel), in [0, 1].
    pub images: Vec<f32>,
    /// Channels per image: 1 (grey) or 3 (red, green, blue).
    pub channels: usize,
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

impl BatchView {
    /// One image's shape, `(channels, height, width)`.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Values per image: `channels × height × width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Image `i`, `C × H × W` (empty if there is no image `i`).
    pub fn image(&self, i: usize) -> &[f32] {
        let per = self.image_len();
        self.images.get(i * per..(i + 1) * per).unwrap_or(&[])
    }
}

/// The selected digit's tensors. Each is empty until the phase that computes it has run in
/// the current step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SampleView {
    /// Index in the batch.
    pub index: usize,
    /// Input `C × H × W`.
    pub input: Vec<f32>,
    /// Each layer's output for this image (`flatten`'s holds its input's values), indexed by
    /// the layer's position in the line.
    pub outputs: Vec<Vec<f32>>,
    /// ∂L/∂ each layer's output, indexed like `outputs`.
    pub grads: Vec<Vec<f32>>,
    /// For each max pool, which input won each output window (`row·W + col` within its input
    /// map); empty for other layers.
    pub winners: Vec<Vec<u32>>,
    /// Class probabilities.
    pub probs: Vec<f32>,
}

impl SampleView {
    /// Layer `i`'s output (empty before it ran, or if there is no layer `i`).
    pub fn output(&self, i: usize) -> &[f32] {
        self.outputs.get(i).map_or(&[], Vec::as_slice)
    }

    /// ∂L/∂(layer `i`'s output) (empty before it was computed).
    pub fn grad(&self, i: usize) -> &[f32] {
        self.grads.get(i).map_or(&[], Vec::as_slice)
    }

    /// The input of layer `i`: the image for the first layer, else the output of the one before.
    pub fn layer_input(&self, i: usize) -> &[f32] {
        if i == 0 { &self.input } else { self.output(i - 1) }
    }

    /// Class scores: the last layer's output.
    pub fn scores(&self) -> &[f32] {
        self.outputs.last().map_or(&[], Vec::as_slice)
    }

    /// ∂L/∂scores.
    pub fn d_scores(&self) -> &[f32] {
        self.grads.last().map_or(&[], Vec::as_slice)
    }
}

/// One convolution's filters with their biases, gradients and last update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvFilters {
    /// The layer's position in the line.
    pub layer: usize,
    /// Its student name (`conv1`).
    pub name: String,
    /// Filters F.
    pub filters: usize,
    /// Input channels C.
    pub channels: usize,
    /// Kernel side K.
    pub kernel: usize,
    /// Weights `F × C × K × K`.
    pub weight: Vec<f32>,
    /// Biases `F`.
    pub bias: Vec<f32>,
    /// ∂L/∂weight (empty until this layer's backward phase ran this step).
    pub grad: Vec<f32>,
    /// The change the last update made.
    pub delta: Vec<f32>,
    /// Once this step's update has run: the weights and biases its forward pass used (`weight`
    /// and `bias` are then the updated ones). The pixel inspector redoes the arithmetic with
    /// these.
    pub before_update: Option<(Vec<f32>, Vec<f32>)>,
}

impl ConvFilters {
    /// The weights and biases the current step's feature maps were computed with.
    pub fn forward_weights(&self) -> (&[f32], &[f32]) {
        match &self.before_update {
            Some((w, b)) => (w, b),
            None => (&self.weight, &self.bias),
        }
    }
}

/// Every convolution's filters, in forward order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterView {
    /// One entry per conv layer.
    pub convs: Vec<ConvFilters>,
}

impl FilterView {
    /// The filters of conv layer `layer` (its position in the line), if it is one.
    pub fn of_layer(&self, layer: usize) -> Option<&ConvFilters> {
        self.convs.iter().find(|c| c.layer == layer)
    }
}

/// The network a run trains, as the window shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelView {
    /// The name it was chosen by (`post`, `lenet5`), or `None` for a line the user wrote.
    pub name: Option<String>,
    /// Shapes, student names, parameters and work of every layer.
    pub plan: Plan,
}

impl ModelView {
    /// The model line (`conv(16,5,pad=2), relu, …`).
    pub fn line(&self) -> String {
        self.plan.spec.to_string()
    }

    /// The name, or the line when it has none.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.line())
    }

    /// What `--model` takes to build this network again: the name, else the line.
    pub fn argument(&self) -> String {
        self.label()
    }

    /// Layer `i` of the plan.
    pub fn layer(&self, i: usize) -> Option<&PlannedLayer> {
        self.plan.layers.get(i)
    }

    /// The conv layers, in forward order.
    pub fn convs(&self) -> impl Iterator<Item = &PlannedLayer> + '_ {
        self.plan.layers.iter().filter(|l| matches!(l.spec, LayerSpec::Conv { .. }))
    }

    /// The layers whose output is a stack of maps (conv, pool, and activations before
    /// `flatten`): those the feature-map views can show.
    pub fn map_layers(&self) -> impl Iterator<Item = &PlannedLayer> + '_ {
        self.plan.layers.iter().filter(|l| {
            matches!(l.output, crate::engine::model::Shape::Maps { .. }) && !matches!(l.spec, LayerSpec::Flatten)
        })
    }

    /// The label of a phase: `forward conv1`, `loss`, `backward fc2`, `update`.
    pub fn phase_label(&self, phase: Phase) -> String {
        self.plan.phase_label(phase)
    }
}

/// A loss that diverged: kept on the curve although training was rewound to before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DivergedPoint {
    /// The step whose loss blew up (1-based; it was undone).
    pub step: u64,
    /// That loss (may be infinite or NaN).
    pub loss: f32,
}

/// The size of one update of one weight tensor: the numbers that say how far a step moved it.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateSize {
    /// The tensor's student name (`conv1.weight`).
    pub tensor: String,
    /// ‖ΔW‖: the length of the change the update made (`−lr·∂L/∂W`, plus momentum).
    pub delta: f32,
    /// ‖W‖ after the update.
    pub weight: f32,
    /// ‖∂L/∂W‖ the update used (with the L2 term on the dense layers).
    pub gradient: f32,
    /// The learning rate of that update.
    pub lr: f32,
}

impl UpdateSize {
    /// ‖ΔW‖ / ‖W‖: how large the step was against the weights (about 1e-3 is healthy).
    pub fn ratio(&self) -> f32 {
        if self.weight > 0.0 { self.delta / self.weight } else { 0.0 }
    }

    /// lr·‖∂L/∂W‖: what plain SGD would have moved; ‖ΔW‖ differs by the momentum.
    pub fn plain_step(&self) -> f32 {
        self.lr * self.gradient
    }
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
    /// The learning rate in force (after decay).
    pub effective_lr: f32,
    /// Images drawn for training so far, over all epochs (the batch in progress included).
    pub images_seen: u64,
    /// Where the learning rate is in its schedule.
    pub lr_schedule: LrSchedule,
    /// Once this step's update ran: how large it was, per weight tensor (conv and fc, in order).
    pub update: Option<Vec<UpdateSize>>,
    /// A divergence since the previous snapshot (training was rewound to before it).
    pub diverged: Option<DivergedPoint>,
    /// Why Step back cannot go back now (`None`: it can).
    pub step_back_refusal: Option<String>,
    /// Seed of this run.
    pub seed: u64,
    /// Preset of this run.
    pub preset: Preset,
    /// The network.
    pub model: Arc<ModelView>,
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
    /// Per-layer magnitude points since the previous snapshot (one per step, decimated like
    /// the loss in a resent history).
    pub new_magnitude_points: Vec<MagnitudePoint>,
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
