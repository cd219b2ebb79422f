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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::{Sampler, SamplingMode};
use crate::engine::weights::{self, FORMAT};
use crate::engine::{ConvEngine, ModelConfig, PARAM_NAMES, Params, Preset};

use super::protocol::{AccuracyPoint, LossPoint, MagnitudePoint, Settings};

/// The `"session_format"` metadata value this version writes and reads.
pub const SESSION_FORMAT: &str = "cnn-stepper session v1";

/// Most loss points a [`History`] keeps; beyond that, neighbours are merged in pairs.
pub const MAX_LOSS_POINTS: usize = 20_000;
/// Most accuracy points a [`History`] keeps; beyond that, every other one is dropped.
pub const MAX_ACCURACY_POINTS: usize = 20_000;
/// Most magnitude points a [`History`] keeps; beyond that, neighbours are merged in pairs.
/// Each is 80 bytes, so the curves stay under a megabyte however long training runs.
pub const MAX_MAGNITUDE_POINTS: usize = 10_000;
/// How many of the latest losses the divergence rule takes the median of.
pub const RECENT_LOSSES: usize = 50;
/// Fewer recent losses than this and only the absolute limits of [`divergence`] apply.
const MIN_RECENT_FOR_MEDIAN: usize = 10;
/// A loss above this is divergence whatever came before (ln 10 ≈ 2.3 is a guessing network).
pub const ABSOLUTE_LOSS_LIMIT: f32 = 1e4;
/// A loss more than this times the recent median is divergence.
pub const RELATIVE_LOSS_LIMIT: f32 = 1e3;
/// The median is taken as at least this, so that a nearly perfect fit (median loss 0.001)
/// does not turn one hard batch into an alarm.
const MEDIAN_FLOOR: f32 = 0.1;

/// Why `loss` counts as divergence, or `None` if it does not.
///
/// The rule: the loss is not finite, or above [`ABSOLUTE_LOSS_LIMIT`], or (once there are at
/// least 10 recent losses) above [`RELATIVE_LOSS_LIMIT`] × max(median of the last
/// [`RECENT_LOSSES`] losses, 0.1).
pub fn divergence(loss: f32, recent_median: Option<f32>) -> Option<String> {
    if !loss.is_finite() {
        return Some("not a finite number".into());
    }
    if loss > ABSOLUTE_LOSS_LIMIT {
        return Some(format!("above the limit of {ABSOLUTE_LOSS_LIMIT}"));
    }
    let median = recent_median?;
    if loss > RELATIVE_LOSS_LIMIT * median.max(MEDIAN_FLOOR) {
        return Some(format!("more than {RELATIVE_LOSS_LIMIT} × the recent median loss {median}"));
    }
    None
}

/// Raw loss points not yet merged into one stored point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Bucket {
    step: u64,
    loss_sum: f64,
    accuracy_sum: f64,
    count: u64,
}

/// Magnitude points not yet merged into one stored point: per-field sums in f64.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct MagnitudeBucket {
    step: u64,
    sums: [f64; 20],
    count: u64,
}

impl MagnitudeBucket {
    fn fields(p: &MagnitudePoint) -> impl Iterator<Item = f32> + '_ {
        p.activations.iter().chain(&p.gradients).chain(&p.weights).chain(&p.weight_gradients).copied()
    }

    /// The mean of the points summed so far, at the latest step.
    fn mean(&self) -> MagnitudePoint {
        let n = self.count.max(1) as f64;
        let v = |i: usize| (self.sums[i] / n) as f32;
        MagnitudePoint {
            step: self.step,
            activations: std::array::from_fn(v),
            gradients: std::array::from_fn(|i| v(6 + i)),
            weights: std::array::from_fn(|i| v(12 + i)),
            weight_gradients: std::array::from_fn(|i| v(16 + i)),
        }
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
#[derive(Clone, Debug, PartialEq)]
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
        let b = self.magnitude_bucket.get_or_insert(MagnitudeBucket { step: p.step, sums: [0.0; 20], count: 0 });
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
                    let mut merged = MagnitudeBucket { step: 0, sums: [0.0; 20], count: 0 };
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
        if self.magnitude_bucket.is_some_and(|b| b.step > step) {
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
    /// The network's shape.
    pub config: ModelConfig,
    /// Weights and biases.
    pub params: Params<f32>,
    /// SGD momentum buffers.
    pub velocity: Params<f32>,
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

fn le_f32<'a>(values: impl Iterator<Item = &'a f32>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

impl SessionFile {
    /// Encodes the session as the bytes of a session file; `name` starts error messages.
    pub fn to_bytes(&self, name: &str) -> Result<Vec<u8>, String> {
        self.config.validate().map_err(|e| format!("{name}: {e}"))?;
        let shapes = Params::<f32>::shapes(&self.config);
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (prefix, p) in [("", &self.params), ("velocity", &self.velocity)] {
            let p = p.to_standard_layout();
            let arrays: [&[usize]; 8] = [
                p.conv1_w.shape(),
                p.conv1_b.shape(),
                p.conv2_w.shape(),
                p.conv2_b.shape(),
                p.fc1_w.shape(),
                p.fc1_b.shape(),
                p.fc2_w.shape(),
                p.fc2_b.shape(),
            ];
            for (((param, shape), want), data) in PARAM_NAMES.iter().zip(arrays).zip(&shapes).zip(p.slices()) {
                let tensor = if prefix.is_empty() { (*param).to_owned() } else { velocity_name(param) };
                if shape != want.as_slice() {
                    return Err(format!(
                        "{name}: tensor \"{tensor}\" has shape {shape:?} but the network needs {want:?}"
                    ));
                }
                tensors.push((tensor, Dtype::F32, want.clone(), le_f32(data.iter())));
            }
        }
        let h = &self.history;
        let steps = |s: &mut dyn Iterator<Item = u64>| -> Vec<u8> {
            s.flat_map(|v| i64::try_from(v).unwrap_or(i64::MAX).to_le_bytes()).collect()
        };
        tensors.push((LOSS_STEP.into(), Dtype::I64, vec![h.loss.len()], steps(&mut h.loss.iter().map(|p| p.step))));
        tensors.push((
            LOSS.into(),
            Dtype::F32,
            vec![h.loss.len(), 2],
            le_f32(h.loss.iter().flat_map(|p| [&p.loss, &p.batch_accuracy])),
        ));
        tensors.push((
            ACCURACY_STEP.into(),
            Dtype::I64,
            vec![h.accuracy.len()],
            steps(&mut h.accuracy.iter().map(|p| p.step)),
        ));
        tensors.push((
            ACCURACY.into(),
            Dtype::F32,
            vec![h.accuracy.len()],
            le_f32(h.accuracy.iter().map(|p| &p.accuracy)),
        ));
        tensors.push((
            MAGNITUDE_STEP.into(),
            Dtype::I64,
            vec![h.magnitudes.len()],
            steps(&mut h.magnitudes.iter().map(|p| p.step)),
        ));
        let magnitudes: Vec<f32> = h.magnitudes.iter().flat_map(MagnitudeBucket::fields).collect();
        tensors.push((MAGNITUDES.into(), Dtype::F32, vec![h.magnitudes.len(), 20], le_f32(magnitudes.iter())));

        let state = State {
            preset: self.preset,
            seed: self.seed,
            step: self.step,
            settings: self.settings,
            pending: self.pending,
            sampler: serde_json::to_value(&self.sampler)
                .map_err(|e| format!("{name}: cannot encode the sampler: {e}"))?,
            history_stride: h.stride,
            history_bucket: h.bucket,
            recent_losses: h.recent.clone(),
            magnitude_stride: h.magnitude_stride,
            magnitude_bucket: h.magnitude_bucket,
        };
        let json = |what: &str, r: Result<String, serde_json::Error>| {
            r.map_err(|e| format!("{name}: cannot encode the {what} as JSON: {e}"))
        };
        let info = HashMap::from([
            ("format".to_owned(), FORMAT.to_owned()),
            ("config".to_owned(), json("configuration", serde_json::to_string(&self.config))?),
            ("preset".to_owned(), self.preset.name().to_owned()),
            ("seed".to_owned(), self.seed.to_string()),
            ("step".to_owned(), self.step.to_string()),
            ("session_format".to_owned(), SESSION_FORMAT.to_owned()),
            ("session".to_owned(), json("session state", serde_json::to_string(&state))?),
        ]);
        let mut views = Vec::with_capacity(tensors.len());
        for (tensor, dtype, shape, bytes) in &tensors {
            let view = TensorView::new(*dtype, shape.clone(), bytes)
                .map_err(|e| format!("{name}: cannot encode tensor \"{tensor}\": {e}"))?;
            views.push((tensor.as_str(), view));
        }
        safetensors::serialize(views, Some(info)).map_err(|e| format!("{name}: cannot encode as safetensors: {e}"))
    }

    /// Writes the session file atomically: on any error the old file (if any) is untouched.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let bytes = self.to_bytes(&path.display().to_string())?;
        weights::write_atomically(path, &bytes).map_err(|e| format!("{}: cannot save the session: {e}", path.display()))
    }
}

/// Reads a session file, or a plain weights file, from its bytes; `name` starts every error.
///
/// `train_len` is the size of the training set the session will continue on: a session saved
/// on another training set is refused (its batch order would mean nothing). `None` skips that
/// check (for exporting). `engine` goes into the settings of a weights-only file.
pub fn from_bytes(bytes: &[u8], name: &str, train_len: Option<usize>, engine: ConvEngine) -> Result<Opened, String> {
    let (params, meta) = weights::from_bytes(bytes, name, None).map_err(|e| e.to_string())?;
    let config = meta.config;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("{name}: not a valid safetensors file: {e}"))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| format!("{name}: not a valid safetensors file: {e}"))?;
    let map = header.metadata().clone().unwrap_or_default();
    match map.get("session_format").map(String::as_str) {
        None => {
            // Weights from elsewhere (or a plain weights file): inspect and train further.
            let preset = meta.preset.as_deref().and_then(|p| Preset::parse(p).ok()).unwrap_or(Preset::Recommended);
            let seed = meta.seed.unwrap_or(1);
            let len = train_len.unwrap_or(0);
            let file = SessionFile {
                config,
                velocity: Params::zeros(&config),
                params,
                preset,
                seed,
                step: 0,
                settings: Settings::from_preset(preset, engine),
                pending: None,
                sampler: Sampler::new(len, SamplingMode::ShuffledEpochs, seed),
                history: History::new(),
            };
            return Ok(Opened { file, weights_only: true });
        }
        Some(SESSION_FORMAT) => {}
        Some(other) => {
            return Err(format!("{name}: session format {other:?} is not one this version reads ({SESSION_FORMAT:?})"));
        }
    }
    let bad = |detail: String| format!("{name}: {detail}");
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
            return Err(bad(format!(
                "the session was trained on a training set of {sampler_len} images, but this one has {len}"
            )));
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
    if let Some(b) = state.magnitude_bucket
        && (b.count == 0 || b.count >= state.magnitude_stride || b.sums.iter().any(|v| !v.is_finite()))
    {
        return Err(bad("the magnitude history's partial bucket is invalid".into()));
    }
    if state.recent_losses.len() > RECENT_LOSSES || state.recent_losses.iter().any(|(_, l)| !l.is_finite()) {
        return Err(bad(format!(
            "the recent losses must be at most {RECENT_LOSSES} finite numbers, found {:?}",
            state.recent_losses
        )));
    }

    let shapes = Params::<f32>::shapes(&config);
    let mut velocity: [Vec<f32>; 8] = Default::default();
    for ((param, shape), out) in PARAM_NAMES.iter().zip(&shapes).zip(velocity.iter_mut()) {
        *out = f32_tensor(&st, &velocity_name(param), shape, name)?;
    }
    let velocity = Params::from_vecs(&config, velocity)
        .ok_or_else(|| bad("the velocity tensors do not match the configuration".into()))?;

    let loss_steps = i64_tensor(&st, LOSS_STEP, MAX_LOSS_POINTS, state.step, name)?;
    let losses = f32_tensor(&st, LOSS, &[loss_steps.len(), 2], name)?;
    let accuracy_steps = i64_tensor(&st, ACCURACY_STEP, MAX_ACCURACY_POINTS, state.step, name)?;
    let accuracies = f32_tensor(&st, ACCURACY, &[accuracy_steps.len()], name)?;
    // Files from before the magnitude curves have neither tensor: an empty curve.
    let magnitudes = if st.names().contains(&MAGNITUDE_STEP) {
        let steps = i64_tensor(&st, MAGNITUDE_STEP, MAX_MAGNITUDE_POINTS, state.step, name)?;
        let values = f32_tensor(&st, MAGNITUDES, &[steps.len(), 20], name)?;
        steps
            .iter()
            .zip(values.chunks_exact(20))
            .map(|(&step, v)| {
                let mut b = MagnitudeBucket { step, sums: [0.0; 20], count: 1 };
                b.sums.iter_mut().zip(v).for_each(|(s, v)| *s = f64::from(*v));
                b.mean()
            })
            .collect()
    } else {
        Vec::new()
    };
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
        magnitude_bucket: state.magnitude_bucket,
    };
    let file = SessionFile {
        config,
        params,
        velocity,
        preset: state.preset,
        seed: state.seed,
        step: state.step,
        settings: state.settings,
        pending: state.pending,
        sampler,
        history,
    };
    Ok(Opened { file, weights_only: false })
}

/// Reads a session or weights file; see [`from_bytes`].
pub fn load(path: &Path, train_len: Option<usize>, engine: ConvEngine) -> Result<Opened, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    from_bytes(&bytes, &path.display().to_string(), train_len, engine)
}

fn tensor<'a>(st: &'a SafeTensors<'a>, tensor: &str, name: &str) -> Result<TensorView<'a>, String> {
    st.tensor(tensor).map_err(|e| format!("{name}: session tensor \"{tensor}\" is missing or unreadable: {e}"))
}

fn f32_tensor(st: &SafeTensors<'_>, t: &str, shape: &[usize], name: &str) -> Result<Vec<f32>, String> {
    let view = tensor(st, t, name)?;
    if view.dtype() != Dtype::F32 || view.shape() != shape {
        return Err(format!("{name}: tensor \"{t}\" is {} {:?}; expected F32 {shape:?}", view.dtype(), view.shape()));
    }
    Ok(view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// A 1-D `I64` tensor of at most `max_len` steps, each in `0..=last_step`.
fn i64_tensor(st: &SafeTensors<'_>, t: &str, max_len: usize, last_step: u64, name: &str) -> Result<Vec<u64>, String> {
    let view = tensor(st, t, name)?;
    let len = match view.shape() {
        [n] if view.dtype() == Dtype::I64 && *n <= max_len => *n,
        shape => {
            return Err(format!(
                "{name}: tensor \"{t}\" is {} {shape:?}; expected I64 [n] with n at most {max_len}",
                view.dtype()
            ));
        }
    };
    let mut out = Vec::with_capacity(len);
    for c in view.data().chunks_exact(8) {
        let v = i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        match u64::try_from(v) {
            Ok(step) if step <= last_step => out.push(step),
            _ => return Err(format!("{name}: tensor \"{t}\" holds step {v}, outside 0..={last_step}")),
        }
    }
    Ok(out)
}
