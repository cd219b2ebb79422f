//! Session files: a weights file (see [`crate::engine::weights`]) plus everything that exact
//! resumption needs, and the bounded loss/accuracy/magnitude [`History`].
//!
//! A session file is a weights file with more in it, so `cnn-stepper eval`, the window's weights
//! loader and PyTorch's `safetensors.torch.load_file` all read it (PyTorch returns the extra
//! tensors as extra keys of the dict; `model.load_state_dict(d, strict=False)` or dropping the
//! `session.` keys loads the model). On top of the eight parameters it holds:
//!
//! - tensors `session.velocity.<param name>` (`F32`, the parameter's shape): SGD momentum;
//! - tensors `session.history.loss_step` (`I64 [n]`), `session.history.loss` (`F32 [n, 2]`:
//!   loss and batch accuracy), `session.history.accuracy_step` (`I64 [m]`) and
//!   `session.history.accuracy` (`F32 [m]`): the curves, exact and compact;
//! - optionally (files written before they existed lack them) `session.history.magnitude_step`
//!   (`I64 [p]`) and `session.history.magnitudes` (`F32 [p, 20]`): the per-layer magnitude
//!   curves, fields in [`MagnitudePoint`] order;
//! - metadata `"session_format"` ([`SESSION_FORMAT`]) and `"session"`: JSON with the preset,
//!   seed, step, settings (and queued settings), the [`Sampler`] state and the history's
//!   decimation state.
//!
//! Files are only written at batch boundaries, so a file never holds half a step.
//!
//! Like a weights file, a session file records the checksum of every tensor and metadata value
//! (see [`crate::engine::weights`]), and its header is sorted, so that the same session always
//! gives the same bytes. A file that looks like a session (a `session_format` or `session`
//! metadata key, or a `session.*` tensor) but cannot be read as one is refused with the reason;
//! it is never downgraded to plain weights, which would restart training at step 0 without
//! its momentum, batch order and curves. NaN or infinite momentum is refused, naming the
//! tensor.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::{Sampler, SamplingMode};
use crate::engine::model::optim::AdamState;
use crate::engine::model::{ParamTensor, Plan, Shape};
use crate::engine::model_file;
use crate::engine::weights::{self, Entry, Integrity, SESSION_PREFIX, WeightsError};
use crate::engine::{ConvEngine, Preset};
use crate::fileio::{self, FileError};

use super::protocol::{AccuracyPoint, LossPoint, MagnitudePoint, Settings};

/// The `"session_format"` metadata value this version writes and reads.
pub const SESSION_FORMAT: &str = "cnn-stepper session v2";
/// The format of the post's network's session files before any network could be trained: read
/// (its magnitude curves mapped onto the layers), never written.
pub const SESSION_FORMAT_V1: &str = "cnn-stepper session v1";

/// Most loss points a [`History`] keeps; beyond that, neighbours are merged in pairs.
pub const MAX_LOSS_POINTS: usize = 20_000;
/// Most accuracy points a [`History`] keeps; beyond that, every other one is dropped.
pub const MAX_ACCURACY_POINTS: usize = 20_000;
/// Most magnitude points a [`History`] keeps; beyond that, neighbours are merged in pairs.
/// Each is 80 bytes, so the curves stay under a megabyte however long training runs.
pub const MAX_MAGNITUDE_POINTS: usize = 10_000;
/// How many of the latest losses the divergence rule takes the median of.
pub const RECENT_LOSSES: usize = 50;
/// Fewer recent losses than this and only the absolute limits of the divergence rule apply
/// (`trainer::divergence`).
const MIN_RECENT_FOR_MEDIAN: usize = 10;

/// Raw loss points not yet merged into one stored point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Bucket {
    step: u64,
    loss_sum: f64,
    accuracy_sum: f64,
    count: u64,
}

/// Magnitude points not yet merged into one stored point: per-field sums in f64, in the order
/// of [`MagnitudeBucket::fields`], with the lengths of the point's four lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct MagnitudeBucket {
    step: u64,
    sums: Vec<f64>,
    count: u64,
    /// Layers (the length of `activations` and `gradients`); files of format v1 lack it: 6.
    #[serde(default = "six")]
    layers: usize,
    /// Weight tensors (the length of `weights` and `weight_gradients`); v1: 4.
    #[serde(default = "four")]
    weights: usize,
}

fn six() -> usize {
    6
}

fn four() -> usize {
    4
}

impl MagnitudeBucket {
    fn empty(step: u64, like: &MagnitudePoint) -> Self {
        let (layers, weights) = (like.activations.len(), like.weights.len());
        Self { step, sums: vec![0.0; 2 * (layers + weights)], count: 0, layers, weights }
    }

    fn fields(p: &MagnitudePoint) -> impl Iterator<Item = f32> + '_ {
        p.activations.iter().chain(&p.gradients).chain(&p.weights).chain(&p.weight_gradients).copied()
    }

    /// The point whose fields are `v` (in [`MagnitudeBucket::fields`] order).
    fn point(step: u64, layers: usize, v: &[f32]) -> MagnitudePoint {
        let (l, w) = (layers, v.len().saturating_sub(2 * layers) / 2);
        let part = |from: usize, len: usize| v.get(from..from + len).map_or_else(Vec::new, <[f32]>::to_vec);
        MagnitudePoint {
            step,
            activations: part(0, l),
            gradients: part(l, l),
            weights: part(2 * l, w),
            weight_gradients: part(2 * l + w, w),
        }
    }

    /// The mean of the points summed so far, at the latest step.
    fn mean(&self) -> MagnitudePoint {
        let n = self.count.max(1) as f64;
        let v: Vec<f32> = self.sums.iter().map(|s| (s / n) as f32).collect();
        Self::point(self.step, self.layers, &v)
    }

    fn add(&mut self, p: &MagnitudePoint) {
        self.step = p.step;
        self.sums.iter_mut().zip(Self::fields(p)).for_each(|(s, v)| *s += f64::from(v));
        self.count += 1;
    }
}

/// The loss, accuracy and magnitude curves of a run, bounded in memory.
///
/// Up to [`MAX_LOSS_POINTS`] loss points are kept exactly; when the limit is reached, each pair
/// of neighbours is merged into their mean (at the later step) and from then on every stored
/// point is the mean of twice as many steps. Memory stays flat however long training runs,
/// and the curve keeps its shape. Magnitude points are decimated the same way, with their own
/// stride and [`MAX_MAGNITUDE_POINTS`].
#[derive(Debug, PartialEq)]
pub struct History {
    loss: Vec<LossPoint>,
    accuracy: Vec<AccuracyPoint>,
    /// Raw steps per stored loss point: 1, 2, 4, …
    stride: u64,
    bucket: Option<Bucket>,
    recent: Vec<(u64, f32)>,
    magnitudes: Vec<MagnitudePoint>,
    /// Raw steps per stored magnitude point: 1, 2, 4, …
    magnitude_stride: u64,
    magnitude_bucket: Option<MagnitudeBucket>,
}

impl Clone for History {
    fn clone(&self) -> Self {
        let mut copy = Self::default();
        copy.clone_from(self);
        copy
    }

    /// Field by field into the vectors already there: the session copies the history before
    /// every update (for a step back from after it), up to about a megabyte, and reusing the
    /// memory keeps that copy from allocating on every training step.
    fn clone_from(&mut self, source: &Self) {
        // Destructured, so that a new field cannot be forgotten here.
        let Self { loss, accuracy, stride, bucket, recent, magnitudes, magnitude_stride, magnitude_bucket } = source;
        self.loss.clone_from(loss);
        self.accuracy.clone_from(accuracy);
        self.stride = *stride;
        self.bucket.clone_from(bucket);
        self.recent.clone_from(recent);
        self.magnitudes.clone_from(magnitudes);
        self.magnitude_stride = *magnitude_stride;
        self.magnitude_bucket.clone_from(magnitude_bucket);
    }
}

impl Default for History {
    fn default() -> Self {
        Self {
            loss: Vec::new(),
            accuracy: Vec::new(),
            stride: 1,
            bucket: None,
            recent: Vec::new(),
            magnitudes: Vec::new(),
            magnitude_stride: 1,
            magnitude_bucket: None,
        }
    }
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored loss points (each the mean of [`History::stride`] steps).
    pub fn loss(&self) -> &[LossPoint] {
        &self.loss
    }

    /// The stored held-out accuracy points.
    pub fn accuracy(&self) -> &[AccuracyPoint] {
        &self.accuracy
    }

    /// How many raw steps each stored loss point stands for.
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// The stored magnitude points (each the mean of [`History::magnitude_stride`] steps).
    pub fn magnitudes(&self) -> &[MagnitudePoint] {
        &self.magnitudes
    }

    /// How many raw steps each stored magnitude point stands for.
    pub fn magnitude_stride(&self) -> u64 {
        self.magnitude_stride
    }

    /// Records one step's layer magnitudes.
    pub fn push_magnitudes(&mut self, p: MagnitudePoint) {
        if self.magnitude_bucket.as_ref().is_some_and(|b| b.layers != p.activations.len() || b.weights != p.weights.len())
        {
            self.magnitude_bucket = None;
        }
        let b = self.magnitude_bucket.get_or_insert_with(|| MagnitudeBucket::empty(p.step, &p));
        b.add(&p);
        if b.count < self.magnitude_stride {
            return;
        }
        let point = b.mean();
        self.magnitude_bucket = None;
        self.magnitudes.push(point);
        if self.magnitudes.len() >= MAX_MAGNITUDE_POINTS {
            self.magnitudes = self
                .magnitudes
                .chunks(2)
                .map(|pair| {
                    let mut merged = MagnitudeBucket::empty(0, &pair[0]);
                    pair.iter().for_each(|p| merged.add(p));
                    merged.mean()
                })
                .collect();
            self.magnitude_stride = self.magnitude_stride.saturating_mul(2);
        }
    }

    /// Records one step's loss.
    pub fn push_loss(&mut self, p: LossPoint) {
        self.recent.push((p.step, p.loss));
        if self.recent.len() > RECENT_LOSSES {
            self.recent.remove(0);
        }
        let b = self.bucket.get_or_insert(Bucket { step: p.step, loss_sum: 0.0, accuracy_sum: 0.0, count: 0 });
        b.step = p.step;
        b.loss_sum += f64::from(p.loss);
        b.accuracy_sum += f64::from(p.batch_accuracy);
        b.count += 1;
        if b.count >= self.stride
            && let Some(b) = self.bucket.take()
        {
            let n = b.count as f64;
            self.loss.push(LossPoint {
                step: b.step,
                loss: (b.loss_sum / n) as f32,
                batch_accuracy: (b.accuracy_sum / n) as f32,
            });
            if self.loss.len() >= MAX_LOSS_POINTS {
                self.loss = self
                    .loss
                    .chunks(2)
                    .map(|c| match c {
                        [a, b] => LossPoint {
                            step: b.step,
                            loss: ((f64::from(a.loss) + f64::from(b.loss)) / 2.0) as f32,
                            batch_accuracy: ((f64::from(a.batch_accuracy) + f64::from(b.batch_accuracy)) / 2.0) as f32,
                        },
                        _ => c[0],
                    })
                    .collect();
                self.stride = self.stride.saturating_mul(2);
            }
        }
    }

    /// Records one held-out accuracy measurement.
    pub fn push_accuracy(&mut self, p: AccuracyPoint) {
        self.accuracy.push(p);
        if self.accuracy.len() >= MAX_ACCURACY_POINTS {
            let mut keep = false;
            self.accuracy.retain(|_| {
                keep = !keep;
                keep
            });
        }
    }

    /// The median of the latest losses, once there are enough of them to mean something.
    pub fn recent_median(&self) -> Option<f32> {
        if self.recent.len() < MIN_RECENT_FOR_MEDIAN {
            return None;
        }
        let mut v: Vec<f32> = self.recent.iter().map(|(_, l)| *l).collect();
        v.sort_by(f32::total_cmp);
        Some(v[v.len() / 2])
    }

    /// Forgets everything recorded after `step` (when training is rewound).
    pub fn truncate_after(&mut self, step: u64) {
        self.loss.retain(|p| p.step <= step);
        self.accuracy.retain(|p| p.step <= step);
        self.recent.retain(|(s, _)| *s <= step);
        self.magnitudes.retain(|p| p.step <= step);
        // A partial bucket may mix kept and dropped steps; it is at most `stride` steps.
        if self.bucket.is_some_and(|b| b.step > step) {
            self.bucket = None;
        }
        if self.magnitude_bucket.as_ref().is_some_and(|b| b.step > step) {
            self.magnitude_bucket = None;
        }
    }

    /// The curves as CSV: (`step,loss,batch_accuracy`, `step,test_accuracy`), one row per
    /// stored point, with a header line each.
    pub fn curves_csv(&self) -> (String, String) {
        let mut loss = String::from("step,loss,batch_accuracy\n");
        for p in &self.loss {
            let _ = writeln!(loss, "{},{},{}", p.step, p.loss, p.batch_accuracy);
        }
        let mut accuracy = String::from("step,test_accuracy\n");
        for p in &self.accuracy {
            let _ = writeln!(accuracy, "{},{}", p.step, p.accuracy);
        }
        (loss, accuracy)
    }

    /// Both curves in one CSV, `step,loss,batch_accuracy,test_accuracy`: a row per step that has
    /// either point, the other columns empty where that step has none.
    pub fn merged_csv(&self) -> String {
        let mut rows: std::collections::BTreeMap<u64, (Option<&LossPoint>, Option<f32>)> = Default::default();
        for p in &self.loss {
            rows.entry(p.step).or_default().0 = Some(p);
        }
        for p in &self.accuracy {
            rows.entry(p.step).or_default().1 = Some(p.accuracy);
        }
        let mut out = String::from("step,loss,batch_accuracy,test_accuracy\n");
        for (step, (loss, acc)) in rows {
            let (l, b) =
                loss.map_or((String::new(), String::new()), |p| (p.loss.to_string(), p.batch_accuracy.to_string()));
            let a = acc.map_or(String::new(), |a| a.to_string());
            let _ = writeln!(out, "{step},{l},{b},{a}");
        }
        out
    }
}

/// Everything a session file holds, as plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionFile {
    /// The network: a name (`post`) or a line.
    pub model: String,
    /// One image's shape.
    pub input: Shape,
    /// The class names of the data it was trained on.
    pub class_names: Vec<String>,
    /// Weights and biases, named `<index>.weight` / `<index>.bias`.
    pub tensors: Vec<ParamTensor<f32>>,
    /// SGD's momentum buffer per tensor (the last update's change), in `tensors` order.
    pub momentum: Vec<Vec<f32>>,
    /// Adam's state per tensor (empty if Adam never ran).
    pub adam: Vec<AdamState<f32>>,
    /// Adam updates made.
    pub adam_steps: u64,
    /// Preset the run started from.
    pub preset: Preset,
    /// Seed the run started from.
    pub seed: u64,
    /// Completed steps.
    pub step: u64,
    /// Settings in force.
    pub settings: Settings,
    /// Settings queued for the next batch.
    pub pending: Option<Settings>,
    /// Where the batch order stands.
    pub sampler: Sampler,
    /// The curves so far.
    pub history: History,
}

/// What [`from_bytes`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// The session (fresh optimizer state, step 0 and an empty history for a weights-only file).
    pub file: SessionFile,
    /// True if the file held only weights (no session state), e.g. one written by PyTorch.
    pub weights_only: bool,
    /// Whether checksums vouch for the file; [`Integrity::note`] is the note to show if not.
    pub integrity: Integrity,
}

/// Why a session file could not be written or read. Every message starts with the file's
/// name, so it can be shown as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file fails as a weights file: it cannot be opened or read, is not a regular file,
    /// its header, checksums or tensors are damaged, or its weights are not finite.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The file looks like a session file but its session part cannot be read (damaged or
    /// inconsistent state, history or momentum), or the session cannot be encoded.
    #[error("{name}: {detail}")]
    Session {
        /// The file.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A session of a format this version does not read.
    #[error("{name}: session format {found:?} is not one this version reads ({SESSION_FORMAT:?})")]
    Format {
        /// The file.
        name: String,
        /// The `session_format` it has.
        found: String,
    },
    /// The session was trained on a training set of another size: its batch order would mean
    /// nothing on this one.
    #[error("{name}: the session was trained on a training set of {saved} images, but this one has {found}")]
    TrainingSet {
        /// The file.
        name: String,
        /// The size the session was trained on.
        saved: usize,
        /// The size of the training set given now.
        found: usize,
    },
}

impl From<FileError> for CheckpointError {
    fn from(e: FileError) -> Self {
        CheckpointError::Weights(WeightsError::File(e))
    }
}

/// The `"session"` metadata entry.
#[derive(Serialize, Deserialize)]
struct State {
    preset: Preset,
    seed: u64,
    step: u64,
    settings: Settings,
    pending: Option<Settings>,
    /// Checked before it is built: building a sampler allocates its epoch's order.
    sampler: serde_json::Value,
    history_stride: u64,
    history_bucket: Option<Bucket>,
    recent_losses: Vec<(u64, f32)>,
    /// Absent from files written before the magnitude curves existed.
    #[serde(default = "one")]
    magnitude_stride: u64,
    #[serde(default)]
    magnitude_bucket: Option<MagnitudeBucket>,
    /// Adam updates made (absent before Adam existed: 0).
    #[serde(default)]
    adam_steps: u64,
}

fn one() -> u64 {
    1
}

const LOSS_STEP: &str = "session.history.loss_step";
const LOSS: &str = "session.history.loss";
const ACCURACY_STEP: &str = "session.history.accuracy_step";
const ACCURACY: &str = "session.history.accuracy";
/// Optional (older files lack them): `I64 [m]` steps and `F32 [m, 20]` values of the magnitude
/// points, in the field order of [`MagnitudePoint`].
const MAGNITUDE_STEP: &str = "session.history.magnitude_step";
const MAGNITUDES: &str = "session.history.magnitudes";

fn velocity_name(param: &str) -> String {
    format!("session.velocity.{param}")
}

fn adam_name(which: &str, param: &str) -> String {
    format!("session.adam.{which}.{param}")
}

fn le_f32<'a>(values: impl Iterator<Item = &'a f32>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

impl SessionFile {
    /// The network and its weights, as a model file holds them.
    pub fn model_weights(&self) -> model_file::ModelWeights {
        let (c, h, w) = match self.input {
            Shape::Maps { c, h, w } => (c, h, w),
            Shape::Flat(n) => (n, 1, 1),
        };
        let line = crate::engine::model::named(&self.model)
            .and_then(|m| m.spec(self.class_names.len().max(2)).ok())
            .map_or_else(|| self.model.clone(), |s| s.to_string());
        model_file::ModelWeights {
            line,
            input: (c, h, w),
            class_names: self.class_names.clone(),
            tensors: self.tensors.clone(),
            meta: model_file::ModelMeta {
                preset: Some(self.preset.name().to_owned()),
                seed: Some(self.seed),
                step: Some(self.step),
            },
        }
    }

    /// Encodes the session as the bytes of a session file; `name` starts error messages.
    ///
    /// The same session always gives the same bytes: the header is sorted and the state's
    /// JSON has a fixed field order.
    pub fn to_bytes(&self, name: &str) -> Result<Vec<u8>, CheckpointError> {
        let f32_entry = |tensor: String, shape: &[usize], values: &[f32]| Entry {
            name: tensor,
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            data: le_f32(values.iter()),
        };
        let weights = self.model_weights();
        let plan = model_file::checked_plan(&weights, name)?;
        let mut entries = model_file::model_entries(&weights, &plan, "", name)?;
        for (t, m) in self.tensors.iter().zip(&self.momentum) {
            entries.push(f32_entry(velocity_name(&t.name), &t.shape, m));
        }
        for (t, a) in self.tensors.iter().zip(&self.adam) {
            entries.push(f32_entry(adam_name("m", &t.name), &t.shape, &a.m));
            entries.push(f32_entry(adam_name("v", &t.name), &t.shape, &a.v));
        }
        let h = &self.history;
        let steps = |s: &mut dyn Iterator<Item = u64>| -> Vec<u8> {
            s.flat_map(|v| i64::try_from(v).unwrap_or(i64::MAX).to_le_bytes()).collect()
        };
        let entry = |name: &str, dtype: Dtype, shape: Vec<usize>, data: Vec<u8>| Entry {
            name: name.to_owned(),
            dtype,
            shape,
            data,
        };
        entries.push(entry(LOSS_STEP, Dtype::I64, vec![h.loss.len()], steps(&mut h.loss.iter().map(|p| p.step))));
        entries.push(entry(
            LOSS,
            Dtype::F32,
            vec![h.loss.len(), 2],
            le_f32(h.loss.iter().flat_map(|p| [&p.loss, &p.batch_accuracy])),
        ));
        entries.push(entry(
            ACCURACY_STEP,
            Dtype::I64,
            vec![h.accuracy.len()],
            steps(&mut h.accuracy.iter().map(|p| p.step)),
        ));
        entries.push(entry(
            ACCURACY,
            Dtype::F32,
            vec![h.accuracy.len()],
            le_f32(h.accuracy.iter().map(|p| &p.accuracy)),
        ));
        entries.push(entry(
            MAGNITUDE_STEP,
            Dtype::I64,
            vec![h.magnitudes.len()],
            steps(&mut h.magnitudes.iter().map(|p| p.step)),
        ));
        let magnitudes: Vec<f32> = h.magnitudes.iter().flat_map(MagnitudeBucket::fields).collect();
        let width = h.magnitudes.first().map_or(0, |p| MagnitudeBucket::fields(p).count());
        entries.push(entry(MAGNITUDES, Dtype::F32, vec![h.magnitudes.len(), width], le_f32(magnitudes.iter())));

        let encode_error = |what: &str, e: serde_json::Error| CheckpointError::Session {
            name: name.to_owned(),
            detail: format!("cannot encode the {what} as JSON: {e}"),
        };
        let state = State {
            preset: self.preset,
            seed: self.seed,
            step: self.step,
            settings: self.settings,
            pending: self.pending,
            sampler: serde_json::to_value(&self.sampler).map_err(|e| encode_error("sampler", e))?,
            history_stride: h.stride,
            history_bucket: h.bucket,
            recent_losses: h.recent.clone(),
            magnitude_stride: h.magnitude_stride,
            magnitude_bucket: h.magnitude_bucket.clone(),
            adam_steps: self.adam_steps,
        };
        let mut info = model_file::model_info(&weights, &plan, name)?;
        info.extend([
            ("preset".to_owned(), self.preset.name().to_owned()),
            ("seed".to_owned(), self.seed.to_string()),
            ("step".to_owned(), self.step.to_string()),
            ("session_format".to_owned(), SESSION_FORMAT.to_owned()),
            ("session".to_owned(), serde_json::to_string(&state).map_err(|e| encode_error("session state", e))?),
        ]);
        Ok(weights::encode_file(&entries, info, name)?)
    }

    /// Writes the session file atomically (see [`fileio::write_atomically`]): on any error the
    /// old file (if any) is untouched.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = self.to_bytes(&path.display().to_string())?;
        fileio::write_atomically(path, &bytes)?;
        Ok(())
    }
}

/// What makes a file a session file rather than plain weights, if anything: a `session_*`
/// metadata key or a `session.*` tensor.
fn session_evidence(map: &BTreeMap<String, String>, st: &SafeTensors<'_>) -> Option<String> {
    if let Some(key) = map.keys().find(|k| k.starts_with("session")) {
        return Some(format!("metadata {key:?}"));
    }
    let mut names = st.names();
    names.sort_unstable();
    names.into_iter().find(|n| n.starts_with(SESSION_PREFIX)).map(|t| format!("tensor {t:?}"))
}

/// Reads a session file, or a plain weights file, from its bytes; `name` starts every error.
///
/// `train_len` is the size of the training set the session will continue on: a session saved
/// on another training set is refused (its batch order would mean nothing). `None` skips that
/// check (for exporting). `engine` goes into the settings of a weights-only file.
///
/// A file with anything of a session in it (see the module documentation) is read as a
/// session or refused; only a file with no trace of one opens as plain weights.
///
/// `expected` is the network to read a file that does not name its own (a PyTorch state dict)
/// as; a file that names one is read as that one.
pub fn from_bytes(
    bytes: &[u8],
    name: &str,
    train_len: Option<usize>,
    engine: ConvEngine,
    expected: Option<&Plan>,
) -> Result<Opened, CheckpointError> {
    let parsed = weights::Parsed::new(bytes, name)?;
    let loaded = parsed.model(expected)?;
    let integrity = loaded.integrity;
    let model_file::ModelWeights { line, class_names, tensors, meta, .. } = loaded.weights;
    let input = loaded.plan.input;
    let model = crate::engine::model::name_of(&loaded.plan).map_or(line, str::to_owned);
    let st = &parsed.st;
    let map = parsed.metadata.clone().unwrap_or_default();
    let bad = |detail: String| CheckpointError::Session { name: name.to_owned(), detail };
    match (map.get("session_format").map(String::as_str), session_evidence(&map, st)) {
        (None, None) => {
            // Weights from elsewhere (or a plain weights file): inspect and train further.
            let preset = meta.preset.as_deref().and_then(|p| Preset::parse(p).ok()).unwrap_or(Preset::Recommended);
            let seed = meta.seed.unwrap_or(1);
            let len = train_len.unwrap_or(0);
            let file = SessionFile {
                model,
                input,
                class_names,
                momentum: tensors.iter().map(|t| vec![0.0; t.data.len()]).collect(),
                tensors,
                adam: Vec::new(),
                adam_steps: 0,
                preset,
                seed,
                step: 0,
                settings: Settings::from_preset(preset, engine),
                pending: None,
                sampler: Sampler::new(len, SamplingMode::ShuffledEpochs, seed),
                history: History::new(),
            };
            return Ok(Opened { file, weights_only: true, integrity });
        }
        (Some(SESSION_FORMAT | SESSION_FORMAT_V1), _) => {}
        (Some(other), _) => {
            return Err(CheckpointError::Format { name: name.to_owned(), found: other.to_owned() });
        }
        (None, Some(evidence)) => {
            return Err(bad(format!(
                "the file has session data ({evidence}) but no \"session_format\" entry, so it is damaged; \
                 it is not loaded as plain weights, which would start over at step 0"
            )));
        }
    }
    let state = map.get("session").ok_or_else(|| bad("metadata has no \"session\" entry".into()))?;
    let state: State =
        serde_json::from_str(state).map_err(|e| bad(format!("metadata \"session\" is not a session state: {e}")))?;
    if meta.step != Some(state.step) || meta.seed != Some(state.seed) {
        return Err(bad(format!(
            "metadata \"step\" {:?} and \"seed\" {:?} disagree with the session state (step {}, seed {})",
            meta.step, meta.seed, state.step, state.seed
        )));
    }
    for s in std::iter::once(&state.settings).chain(state.pending.as_ref()) {
        s.hyper.validate().map_err(|e| bad(format!("saved settings: {e}")))?;
        if s.batch_size == 0 {
            return Err(bad("saved settings: batch size 0".into()));
        }
    }
    let sampler_len = state.sampler.get("len").and_then(serde_json::Value::as_u64);
    let Some(sampler_len) = sampler_len.and_then(|l| usize::try_from(l).ok()) else {
        return Err(bad("the sampler state has no valid \"len\"".into()));
    };
    match train_len {
        Some(len) if len != sampler_len => {
            return Err(CheckpointError::TrainingSet { name: name.to_owned(), saved: sampler_len, found: len });
        }
        // Without a data set to compare with, still refuse a length that would allocate absurdly.
        None if sampler_len > 1 << 28 => {
            return Err(bad(format!("the sampler's training set of {sampler_len} images is absurdly large")));
        }
        _ => {}
    }
    let sampler: Sampler =
        serde_json::from_value(state.sampler).map_err(|e| bad(format!("the sampler state is invalid: {e}")))?;
    if !state.history_stride.is_power_of_two() || state.history_stride > 1 << 40 {
        return Err(bad(format!("history stride {} is not a power of two up to 2^40", state.history_stride)));
    }
    if let Some(b) = state.history_bucket
        && (b.count == 0 || b.count >= state.history_stride || !b.loss_sum.is_finite() || !b.accuracy_sum.is_finite())
    {
        return Err(bad(format!("the history's partial bucket {b:?} is invalid")));
    }
    if !state.magnitude_stride.is_power_of_two() || state.magnitude_stride > 1 << 40 {
        return Err(bad(format!("magnitude stride {} is not a power of two up to 2^40", state.magnitude_stride)));
    }
    if let Some(b) = &state.magnitude_bucket
        && (b.count == 0
            || b.count >= state.magnitude_stride
            || b.sums.len() != 2 * (b.layers + b.weights)
            || b.sums.iter().any(|v| !v.is_finite()))
    {
        return Err(bad("the magnitude history's partial bucket is invalid".into()));
    }
    if state.recent_losses.len() > RECENT_LOSSES || state.recent_losses.iter().any(|(_, l)| !l.is_finite()) {
        return Err(bad(format!(
            "the recent losses must be at most {RECENT_LOSSES} finite numbers, found {:?}",
            state.recent_losses
        )));
    }

    let v1 = map.get("session_format").map(String::as_str) == Some(SESSION_FORMAT_V1);
    let mut momentum = Vec::with_capacity(tensors.len());
    let mut adam = Vec::new();
    for t in &tensors {
        // Format v1 named the tensors as the post's network did (`conv1.weight`).
        let stored = if v1 { post_name(&model, &t.name).unwrap_or_default() } else { t.name.clone() };
        let tensor = velocity_name(&stored);
        let m = f32_tensor(st, &tensor, &t.shape, name)?;
        weights::check_finite(&m, &tensor, name)?;
        momentum.push(m);
        if state.adam_steps > 0 {
            let read = |which: &str| -> Result<Vec<f32>, CheckpointError> {
                let tensor = adam_name(which, &t.name);
                let v = f32_tensor(st, &tensor, &t.shape, name)?;
                weights::check_finite(&v, &tensor, name)?;
                Ok(v)
            };
            adam.push(AdamState { m: read("m")?, v: read("v")? });
        }
    }
    let layers = expected_layers(&model, input, class_names.len()).unwrap_or(0);
    let loss_steps = i64_tensor(st, LOSS_STEP, MAX_LOSS_POINTS, state.step, name)?;
    let losses = f32_tensor(st, LOSS, &[loss_steps.len(), 2], name)?;
    let accuracy_steps = i64_tensor(st, ACCURACY_STEP, MAX_ACCURACY_POINTS, state.step, name)?;
    let accuracies = f32_tensor(st, ACCURACY, &[accuracy_steps.len()], name)?;
    // Files from before the magnitude curves have neither tensor: an empty curve.
    let magnitudes = if st.names().contains(&MAGNITUDE_STEP) {
        let steps = i64_tensor(st, MAGNITUDE_STEP, MAX_MAGNITUDE_POINTS, state.step, name)?;
        let width = if v1 { 20 } else { tensor(st, MAGNITUDES, name)?.shape().get(1).copied().unwrap_or(0) };
        let values = f32_tensor(st, MAGNITUDES, &[steps.len(), width], name)?;
        let stored_layers = if v1 { 6 } else { layers };
        if !steps.is_empty() && (width < 2 * stored_layers || (width - 2 * stored_layers) % 2 != 0) {
            return Err(bad(format!(
                "tensor \"{MAGNITUDES}\" has {width} values per point, not a whole point of {layers} layers"
            )));
        }
        steps
            .iter()
            .zip(values.chunks_exact(width.max(1)))
            .map(|(&step, v)| {
                let p = MagnitudeBucket::point(step, stored_layers, v);
                if v1 { v1_magnitudes(p, layers) } else { p }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut magnitude_bucket = state.magnitude_bucket;
    if v1 {
        // A half-filled v1 bucket would need its sums remapped too; it is at most a few steps.
        magnitude_bucket = None;
    }
    let history = History {
        loss: loss_steps
            .iter()
            .zip(losses.chunks_exact(2))
            .map(|(&step, v)| LossPoint { step, loss: v[0], batch_accuracy: v[1] })
            .collect(),
        accuracy: accuracy_steps
            .iter()
            .zip(&accuracies)
            .map(|(&step, &accuracy)| AccuracyPoint { step, accuracy })
            .collect(),
        stride: state.history_stride,
        bucket: state.history_bucket,
        recent: state.recent_losses,
        magnitudes,
        magnitude_stride: state.magnitude_stride,
        magnitude_bucket,
    };
    let file = SessionFile {
        model,
        input,
        class_names,
        tensors,
        momentum,
        adam,
        adam_steps: state.adam_steps,
        preset: state.preset,
        seed: state.seed,
        step: state.step,
        settings: state.settings,
        pending: state.pending,
        sampler,
        history,
    };
    Ok(Opened { file, weights_only: false, integrity })
}

/// Reads a session or weights file, header first (see [`weights::read_file`]); see
/// [`from_bytes`] for what is accepted.
pub fn load(
    path: &Path,
    train_len: Option<usize>,
    engine: ConvEngine,
    expected: Option<&Plan>,
) -> Result<Opened, CheckpointError> {
    let bytes = weights::read_file(path)?;
    from_bytes(&bytes, &path.display().to_string(), train_len, engine, expected)
}

/// The post's name of a tensor of `post` or `post-relu` as format v1 files wrote it
/// (`0.weight` → `conv1.weight`), for reading their momentum.
fn post_name(model: &str, tensor: &str) -> Option<String> {
    let (index, kind) = tensor.split_once('.')?;
    let layers: [&str; 4] = match model {
        "post" => ["0", "2", "4", "6"],
        "post-relu" => ["0", "2", "5", "7"],
        _ => return None,
    };
    let names = ["conv1", "conv2", "fc1", "fc2"];
    let i = layers.iter().position(|l| *l == index)?;
    Some(format!("{}.{kind}", names[i]))
}

/// The number of layers of `model` on images of `input` with `classes` classes.
fn expected_layers(model: &str, input: Shape, classes: usize) -> Option<usize> {
    let (c, h, w) = match input {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => (n, 1, 1),
    };
    crate::engine::model::resolve(model, (c, h, w), classes).ok().map(|p| p.layers.len())
}

/// A magnitude point of format v1 (the post's six tensors `conv1, relu1, conv2, fc1, relu2,
/// scores`) spread over the `layers` layers of `post` (7) or `post-relu` (8): flatten repeats
/// conv2's, and the ReLU after conv2, which v1 did not measure, is NaN (not drawn).
fn v1_magnitudes(p: MagnitudePoint, layers: usize) -> MagnitudePoint {
    let spread = |v: &[f32]| -> Vec<f32> {
        let g = |i: usize| v.get(i).copied().unwrap_or(f32::NAN);
        if layers == 8 {
            vec![g(0), g(1), g(2), f32::NAN, f32::NAN, g(3), g(4), g(5)]
        } else {
            vec![g(0), g(1), g(2), g(2), g(3), g(4), g(5)]
        }
    };
    MagnitudePoint {
        step: p.step,
        activations: spread(&p.activations),
        gradients: spread(&p.gradients),
        weights: p.weights,
        weight_gradients: p.weight_gradients,
    }
}

fn tensor<'a>(st: &'a SafeTensors<'a>, tensor: &str, name: &str) -> Result<TensorView<'a>, CheckpointError> {
    st.tensor(tensor).map_err(|e| CheckpointError::Session {
        name: name.to_owned(),
        detail: format!("session tensor \"{tensor}\" is missing or unreadable: {e}"),
    })
}

fn f32_tensor(st: &SafeTensors<'_>, t: &str, shape: &[usize], name: &str) -> Result<Vec<f32>, CheckpointError> {
    let view = tensor(st, t, name)?;
    if view.dtype() != Dtype::F32 || view.shape() != shape {
        return Err(CheckpointError::Session {
            name: name.to_owned(),
            detail: format!("tensor \"{t}\" is {} {:?}; expected F32 {shape:?}", view.dtype(), view.shape()),
        });
    }
    Ok(view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// A 1-D `I64` tensor of at most `max_len` steps, each in `0..=last_step`.
fn i64_tensor(
    st: &SafeTensors<'_>,
    t: &str,
    max_len: usize,
    last_step: u64,
    name: &str,
) -> Result<Vec<u64>, CheckpointError> {
    let bad = |detail: String| CheckpointError::Session { name: name.to_owned(), detail };
    let view = tensor(st, t, name)?;
    let len = match view.shape() {
        [n] if view.dtype() == Dtype::I64 && *n <= max_len => *n,
        shape => {
            return Err(bad(format!(
                "tensor \"{t}\" is {} {shape:?}; expected I64 [n] with n at most {max_len}",
                view.dtype()
            )));
        }
    };
    let mut out = Vec::with_capacity(len);
    for c in view.data().chunks_exact(8) {
        let v = i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        match u64::try_from(v) {
            Ok(step) if step <= last_step => out.push(step),
            _ => return Err(bad(format!("tensor \"{t}\" holds step {v}, outside 0..={last_step}"))),
        }
    }
    Ok(out)
}
