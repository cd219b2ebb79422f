//! The synchronous training state machine: network, data, sampler, settings and history.
//! The worker thread drives it; tests drive it directly.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::data::{Sampler, SamplingMode, Splits};
use crate::engine::model::{self, LayerSpec, Plan, SeqState, Sequential, Shape, Tensors};
use crate::engine::{
    ConvEngine, EngineError, Hyper, LrSchedule, Phase, Preset, Setting, SettingProblem, SettingsError, argmax,
};

use super::checkpoint::{self, History, SessionFile};
use super::divergence::{DivergenceReason, divergence};
use super::error::TrainError;
use super::protocol::{
    AccuracyPoint, BatchView, ClassEvidence, ConvFilters, DivergedPoint, EvalResult, EvidenceOf, Export, Fc1Unit,
    FilterView, GradientCheck, ImageId, LossPoint, MagnitudePoint, Misclassified, ModelView, ProbeInput, Probed,
    SampleView, Settings, Snapshot, UpdateSize,
};

/// How often (in steps) the held-out accuracy curve gets a point.
const EVAL_EVERY_STEPS: u64 = 200;
/// On how many test images (the first ones; all of a smaller test set) each point of the
/// held-out accuracy curve is measured. The window says so next to the number.
pub const EVAL_IMAGES: usize = 500;
/// Test images per forward pass when evaluating: bounds memory whatever the count.
const EVAL_CHUNK: usize = 250;
/// Elements of each parameter tensor a gradient check compares: enough to catch a wrong
/// layer, few enough that 65 forward passes in f64 take seconds, not minutes.
pub const GRADCHECK_ELEMENTS: usize = 4;

/// A training run: everything needed to take the next phase, and what has been seen so far.
pub struct Session {
    data: Arc<Splits>,
    net: Sequential<f32>,
    model: Arc<ModelView>,
    sampler: Sampler,
    seed: u64,
    preset: Preset,
    settings: Settings,
    pending: Option<Settings>,
    step: u64,
    selected: usize,
    batch_indices: Vec<usize>,
    new_loss: Vec<LossPoint>,
    new_accuracy: Vec<AccuracyPoint>,
    new_magnitudes: Vec<MagnitudePoint>,
    /// Scratch for forward passes outside the batch (evaluation, probes, class evidence).
    eval_acts: Tensors<f32>,
    batch_started: Option<Instant>,
    images_per_sec: f32,
    history: History,
    /// State at the start of the batch in progress (or the last one).
    batch_start: Option<Rewind>,
    /// State at the start of the latest batch whose loss passed the divergence check.
    last_good: Option<Rewind>,
    /// True once the current batch's loss passed the check (its start is then in `last_good`).
    loss_checked: bool,
    notices: Vec<String>,
    /// What the epoch in progress (or the one just finished) has trained so far.
    epoch_stats: EpochStats,
    /// Epoch and sampler position the batch in progress was drawn at.
    batch_origin: (u64, usize),
    curves_reset: bool,
    panic_next_phase: bool,
    /// The phase running now (still set after a panic in it, for the error message).
    in_progress: Option<Phase>,
    /// The learning rate of the last update phase (for the update's readout).
    update_lr: f32,
    /// A divergence not yet reported in a snapshot: the step and loss that blew up.
    diverged: Option<DivergedPoint>,
    /// The history as it was before the last update's step was recorded: a step back from
    /// after the update puts it back whole (truncating would not undo a halving of the curves
    /// or bring back the oldest loss of the divergence rule's window).
    history_before_update: Option<Box<History>>,
}

/// What the steps of one epoch trained on and how well, as the command line's epoch summary
/// reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// The epoch (0-based).
    pub epoch: u64,
    /// Where in the epoch these statistics start: 0, or the position a session file was saved
    /// at when this session opened it in the middle of the epoch.
    pub first_image: usize,
    /// Completed steps counted.
    pub steps: u64,
    /// Images those steps trained on.
    pub images: usize,
    /// Sum of their losses.
    pub loss_sum: f64,
    /// Images they classified correctly (in the forward pass, before their update).
    pub correct: usize,
}

impl EpochStats {
    fn start(epoch: u64, first_image: usize) -> Self {
        Self { epoch, first_image, steps: 0, images: 0, loss_sum: 0.0, correct: 0 }
    }

    /// Mean loss per step (0 before the first step).
    pub fn mean_loss(&self) -> f32 {
        (self.loss_sum / self.steps.max(1) as f64) as f32
    }

    /// Fraction of the images classified correctly (0 before the first step).
    pub fn accuracy(&self) -> f32 {
        self.correct as f32 / self.images.max(1) as f32
    }

    /// True if the statistics miss the start of the epoch (a run resumed in its middle).
    pub fn is_partial(&self) -> bool {
        self.first_image > 0
    }
}

/// Everything needed to go back to the start of a batch. Copied at every batch start into
/// buffers that are reused, so it costs two memcpys of the parameters and no allocation.
#[derive(Clone)]
struct Rewind {
    state: SeqState<f32>,
    sampler: Sampler,
    step: u64,
    hyper: Hyper,
    /// The settings the batch started with (a step back trains it with them again).
    settings: Settings,
    epoch_stats: EpochStats,
}

impl Rewind {
    fn new(net: &Sequential<f32>, sampler: &Sampler, step: u64, settings: Settings, stats: EpochStats) -> Self {
        let mut state = SeqState::default();
        net.save_state(&mut state);
        Self { state, sampler: sampler.clone(), step, hyper: settings.hyper, settings, epoch_stats: stats }
    }

    fn copy_from(
        &mut self,
        net: &Sequential<f32>,
        sampler: &Sampler,
        step: u64,
        hyper: Hyper,
        settings: Settings,
        stats: EpochStats,
    ) {
        net.save_state(&mut self.state);
        self.sampler.clone_from(sampler);
        self.step = step;
        self.hyper = hyper;
        self.settings = settings;
        self.epoch_stats = stats;
    }
}

/// The plan of `model` (a name or a line) for the images and classes of `data`.
pub fn plan_for(model: &str, data: &Splits) -> Result<(Plan, Option<String>), TrainError> {
    let train = &data.train;
    let input = train.input_shape();
    let plan = model::resolve(model, input, train.num_classes())
        .map_err(|e| TrainError::Model { model: model.trim().to_string(), reason: e.message() })?;
    let name = model::named(model).map(|m| m.name).or_else(|| model::name_of(&plan)).map(str::to_string);
    Ok((plan, name))
}

impl Session {
    /// A fresh run on `data` with weights and batches drawn from `seed`.
    ///
    /// `model` is a named network (`post`, `lenet5`) or a line; it is checked against the data
    /// (input size and classes), and a message names the layer that does not fit.
    pub fn new(
        data: Arc<Splits>,
        seed: u64,
        preset: Preset,
        model: &str,
        engine: ConvEngine,
    ) -> Result<Self, TrainError> {
        let settings = Settings::from_preset(preset, engine);
        if data.train.is_empty() {
            return Err(TrainError::EmptyTrainingSet { data: data.source.clone() });
        }
        let (plan, name) = plan_for(model, &data)?;
        let net = Sequential::new(plan, preset.init(), seed, engine);
        let sampler = Sampler::new(data.train.len(), SamplingMode::ShuffledEpochs, seed);
        Ok(Self::from_parts(data, net, name, sampler, seed, preset, settings, None, 0, History::new()))
    }

    /// A session at a given point of a run; everything transient starts empty.
    fn from_parts(
        data: Arc<Splits>,
        net: Sequential<f32>,
        name: Option<String>,
        sampler: Sampler,
        seed: u64,
        preset: Preset,
        settings: Settings,
        pending: Option<Settings>,
        step: u64,
        history: History,
    ) -> Self {
        let epoch_stats = EpochStats::start(sampler.epoch(), sampler.position());
        let model = Arc::new(ModelView { name, plan: net.plan().clone() });
        Self {
            data,
            net,
            model,
            sampler,
            seed,
            preset,
            settings,
            pending,
            step,
            selected: 0,
            batch_indices: Vec::new(),
            new_loss: Vec::new(),
            new_accuracy: Vec::new(),
            new_magnitudes: Vec::new(),
            eval_acts: Tensors::default(),
            batch_started: None,
            images_per_sec: 0.0,
            history,
            batch_start: None,
            last_good: None,
            loss_checked: false,
            notices: Vec::new(),
            epoch_stats,
            batch_origin: (0, 0),
            curves_reset: true,
            panic_next_phase: false,
            in_progress: None,
            update_lr: 0.0,
            diverged: None,
            history_before_update: None,
        }
    }

    /// Starts again with fresh weights, keeping the data and the user's settings. `model` is a
    /// name or a line (see [`Session::new`]); on an error the session is unchanged.
    pub fn reset(&mut self, seed: u64, preset: Preset, model: &str) -> Result<(), TrainError> {
        let engine = self.pending.unwrap_or(self.settings).engine;
        let mut fresh = Self::new(self.data.clone(), seed, preset, model, engine)?;
        if self.preset == preset {
            // Same preset: the user's tuned settings survive a reseed.
            fresh.settings = self.pending.unwrap_or(self.settings);
        }
        *self = fresh;
        Ok(())
    }

    /// Queues settings for the next batch (or applies them now if no batch is half done).
    /// Refused with every problem named, a batch larger than the training set included.
    pub fn set_settings(&mut self, settings: Settings) -> Result<(), TrainError> {
        SettingsError::from_problems(self.problems_here(&settings))?;
        if self.mid_step() {
            self.pending = Some(settings);
        } else {
            self.apply_settings(settings);
        }
        Ok(())
    }

    /// The problems of `settings` on this session's data: [`Settings::problems`], and a batch
    /// larger than the training set.
    fn problems_here(&self, settings: &Settings) -> Vec<SettingProblem> {
        let mut problems = settings.problems();
        let images = self.data.train.len();
        if settings.batch_size > images && !problems.iter().any(|p| p.setting == Setting::BatchSize) {
            problems.push(SettingProblem {
                setting: Setting::BatchSize,
                value: settings.batch_size.to_string(),
                reason: format!("is larger than the training set ({images} images)"),
            });
        }
        problems
    }

    fn apply_settings(&mut self, s: Settings) {
        self.settings = s;
        self.net.engine = s.engine;
        self.pending = None;
    }

    /// True while a batch is loaded and its step is not complete: between its first and last
    /// phase, or before its first one (after a paused first phase, or a step back to the
    /// start of the batch), when the sampler has already moved past it.
    pub fn mid_step(&self) -> bool {
        self.net.next_phase().is_some()
    }

    /// Selects which image of the batch the per-digit views show.
    pub fn select(&mut self, index: usize) {
        self.selected = index.min(self.batch_indices.len().saturating_sub(1));
    }

    /// Completed steps.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Completed epochs.
    pub fn epoch(&self) -> u64 {
        self.sampler.epoch()
    }

    /// The network being trained.
    pub fn network(&self) -> &Sequential<f32> {
        &self.net
    }

    /// The network as the window shows it (its name and plan).
    pub fn model(&self) -> &Arc<ModelView> {
        &self.model
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Settings queued for the next batch, if any.
    pub fn pending_settings(&self) -> Option<Settings> {
        self.pending
    }

    /// The seed the run started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The preset the run started from.
    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// Images consumed in the current epoch.
    pub fn epoch_position(&self) -> usize {
        self.sampler.position()
    }

    /// What the epoch in progress has trained so far; once the last batch of an epoch is done
    /// (and until the next batch finishes), that epoch's. A divergence rewinds it too.
    pub fn epoch_stats(&self) -> EpochStats {
        self.epoch_stats
    }

    /// The learning rate the next batch trains with (the decay for its epoch applied).
    pub fn effective_lr(&self) -> f32 {
        self.effective_hyper().lr
    }

    /// Images drawn for training so far (including a batch in progress), over all epochs.
    pub fn images_seen(&self) -> u64 {
        self.sampler
            .epoch()
            .saturating_mul(self.sampler.epoch_len() as u64)
            .saturating_add(self.sampler.position() as u64)
    }

    /// Where the learning rate is in its schedule (see [`Hyper::schedule`]).
    pub fn lr_schedule(&self) -> LrSchedule {
        self.settings.hyper.schedule(self.images_seen())
    }

    fn start_batch(&mut self) -> Result<(), TrainError> {
        if let Some(p) = self.pending.take() {
            self.apply_settings(p);
        }
        let hyper = self.effective_hyper();
        let settings = self.settings;
        match &mut self.batch_start {
            Some(r) => r.copy_from(&self.net, &self.sampler, self.step, hyper, settings, self.epoch_stats),
            None => {
                let mut r = Rewind::new(&self.net, &self.sampler, self.step, settings, self.epoch_stats);
                r.hyper = hyper;
                self.batch_start = Some(r);
            }
        }
        self.net.optimizer = hyper.optimizer.optimizer();
        self.loss_checked = false;
        // The Health tab's weight RMS come from the update's sums; set per batch because the
        // session replaces its network in several places (reset, rewind, open).
        self.net.measure_update = true;
        self.batch_origin = (self.sampler.epoch(), self.sampler.position());
        let indices = self.sampler.next_batch(self.settings.batch_size);
        let batch = self.data.train.batch(&indices)?;
        let pixels = batch.images.as_slice().ok_or(TrainError::Internal("batch images are not contiguous"))?;
        self.net.load_batch(pixels, &batch.labels)?;
        self.batch_indices = indices;
        self.selected = self.selected.min(batch.labels.len().saturating_sub(1));
        self.batch_started = Some(Instant::now());
        Ok(())
    }

    /// The settings' hyper-parameters with the learning rate of the schedule for the images
    /// drawn so far (the batch in progress included).
    fn effective_hyper(&self) -> crate::engine::Hyper {
        let mut h = self.settings.hyper;
        h.lr = h.schedule(self.images_seen()).lr;
        h
    }

    /// Runs the next phase, starting a new batch first if the last step is complete.
    /// Returns the phase that ran.
    pub fn step_phase(&mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<Phase, TrainError> {
        self.step_phase_unless(progress, &|| false)?.ok_or(TrainError::Internal("a phase that cannot stop stopped"))
    }

    /// [`Session::step_phase`] that gives up as soon as `stop()` is true (before the phase, or
    /// inside a long naive one): `Ok(None)` then means nothing changed that matters, and the
    /// abandoned phase is the next one, run again from its untouched inputs, so that a run
    /// paused in the middle of a phase continues bit for bit as if it had not been.
    pub fn step_phase_unless(
        &mut self,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Phase>, TrainError> {
        if stop() {
            return Ok(None);
        }
        if self.net.next_phase().is_none() {
            self.start_batch()?;
        }
        let hyper = self.effective_hyper();
        self.in_progress = self.net.next_phase();
        let phase = match self.net.step_phase_unless(&hyper, progress, stop) {
            None => return Err(TrainError::Internal("no phase to run")),
            Some(ControlFlow::Break(_)) => {
                self.in_progress = None;
                return Ok(None);
            }
            Some(ControlFlow::Continue(phase)) => phase,
        };
        if std::mem::take(&mut self.panic_next_phase) {
            // The test hook of `Command::InjectPanic`: a panic after the phase changed the state,
            // as a bug in the engine would.
            panic!("injected panic after phase {} (Command::InjectPanic)", self.model.phase_label(phase));
        }
        if phase == Phase::Loss {
            let loss = self.net.tensors().loss();
            if let Some(reason) = divergence(loss, self.history.recent_median()) {
                self.in_progress = None;
                return Err(self.rewind_after_divergence(loss, reason));
            }
            // This batch started from good weights: it becomes the point to go back to.
            std::mem::swap(&mut self.batch_start, &mut self.last_good);
            self.loss_checked = true;
        }
        if phase == Phase::Update {
            self.update_lr = hyper.lr;
            self.finish_batch();
        }
        self.in_progress = None;
        Ok(Some(phase))
    }

    /// Why [`Session::step_back`] cannot go back now, or `None` if it can.
    pub fn step_back_refusal(&self) -> Option<&'static str> {
        if self.net.phases_done() == 0 {
            return Some(if self.net.next_phase().is_some() {
                "at the start of the batch: the state before it is not kept"
            } else {
                "no phase of a batch has run yet"
            });
        }
        None
    }

    /// Goes back one phase within the current batch (after its update too): puts back the
    /// weights, momentum and counters the batch started with and runs its phases again up to
    /// the one before the last that ran. Everything then is bit for bit as if the phases had
    /// been stepped to directly (the phases are deterministic and their inputs are kept).
    /// Returns the phase now last run (`None`: back at the start of the batch).
    pub fn step_back(&mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<Option<Phase>, TrainError> {
        if let Some(why) = self.step_back_refusal() {
            return Err(TrainError::CannotStepBack { why });
        }
        let target = self.net.phases_done() - 1;
        if self.loss_checked {
            // Undo what the loss phase's check did: the start of this batch goes back to
            // `batch_start`; the replay does the check again if it passes the loss phase.
            std::mem::swap(&mut self.batch_start, &mut self.last_good);
            self.loss_checked = false;
        }
        let Some(r) = self.batch_start.take() else {
            return Err(TrainError::Internal("the start of the batch was not kept"));
        };
        self.net.restore_state(&r.state)?;
        if self.step != r.step {
            // Back from after the update: the step is not done any more.
            self.step = r.step;
            self.epoch_stats = r.epoch_stats;
            match self.history_before_update.take() {
                Some(h) => self.history = *h,
                None => self.history.truncate_after(r.step),
            }
            self.replace_curves();
        }
        if self.settings != r.settings {
            // Settings changed after the update apply to the next batch, as they would have.
            self.pending = Some(self.pending.unwrap_or(self.settings));
            self.settings = r.settings;
            self.net.engine = r.settings.engine;
        }
        self.batch_start = Some(r);
        self.net.restart_step();
        self.batch_started = None;
        for _ in 0..target {
            self.step_phase(progress)?;
        }
        Ok(self.net.phases().get(target.wrapping_sub(1)).copied().filter(|_| target > 0))
    }

    /// Goes back to the start of the last batch whose loss was fine (the weights before the
    /// update that blew up) and says what happened.
    fn rewind_after_divergence(&mut self, loss: f32, reason: DivergenceReason) -> TrainError {
        let step = self.step + 1;
        self.diverged = Some(DivergedPoint { step, loss });
        let current = self.effective_hyper();
        let Some(r) = self.last_good.take().or_else(|| self.batch_start.take()) else {
            let (lr, momentum) = (current.lr, current.momentum);
            return TrainError::Diverged { step, loss, reason, lr, momentum, restored_to: None };
        };
        let culprit = r.hyper;
        let restored = self.restore(&r);
        self.batch_start = Some(r);
        TrainError::Diverged {
            step,
            loss,
            reason,
            lr: culprit.lr,
            momentum: culprit.momentum,
            restored_to: restored.ok().map(|()| self.step),
        }
    }

    /// Puts the network, sampler, step count and history back to `r`, with no batch loaded.
    fn restore(&mut self, r: &Rewind) -> Result<(), EngineError> {
        self.net.restore_state(&r.state)?;
        self.net.clear_batch();
        self.sampler = r.sampler.clone();
        self.step = r.step;
        self.epoch_stats = r.epoch_stats;
        self.batch_indices.clear();
        self.batch_started = None;
        self.loss_checked = false;
        self.history.truncate_after(r.step);
        self.replace_curves();
        Ok(())
    }

    /// After a panic in the middle of anything: back to the start of the batch in progress
    /// (the state after the last completed step). Returns what was done, for the message.
    pub fn recover(&mut self) -> String {
        self.panic_next_phase = false;
        self.in_progress = None;
        let slot = if self.loss_checked { &mut self.last_good } else { &mut self.batch_start };
        match slot.take() {
            Some(r) => {
                let restored = self.restore(&r);
                self.batch_start = Some(r);
                match restored {
                    Ok(()) => format!("the session was restored to the end of step {}", self.step),
                    Err(e) => format!("the session could not be restored ({e}); press Reset"),
                }
            }
            // No batch ever started: the weights are untouched; drop any half-loaded batch.
            None => {
                let r = Rewind::new(&self.net, &self.sampler, self.step, self.settings, self.epoch_stats);
                match self.restore(&r) {
                    Ok(()) => format!("the session was restored to step {}", self.step),
                    Err(e) => format!("the session could not be restored ({e}); press Reset"),
                }
            }
        }
    }

    /// The phase that was running when a step was interrupted (by a panic or a divergence),
    /// until [`Session::recover`] or the next phase.
    pub fn phase_in_progress(&self) -> Option<Phase> {
        self.in_progress
    }

    /// Test hook behind `Command::InjectPanic`: the next phase panics after it has run.
    #[doc(hidden)]
    pub fn inject_panic(&mut self) {
        self.panic_next_phase = true;
    }

    /// The next snapshot carries the whole history and says the curves start over.
    fn replace_curves(&mut self) {
        self.new_loss = self.history.loss().to_vec();
        self.new_accuracy = self.history.accuracy().to_vec();
        self.new_magnitudes = self.history.magnitudes().to_vec();
        self.curves_reset = true;
    }

    /// The data this session trains on.
    pub fn data(&self) -> &Arc<Splits> {
        &self.data
    }

    /// The loss and accuracy history (bounded; see [`History`]).
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The curves as CSV: (`step,loss,batch_accuracy`, `step,test_accuracy`).
    pub fn curves_csv(&self) -> (String, String) {
        self.history.curves_csv()
    }

    /// Writes the weights or the curves (see [`Export`]) and says what was written.
    pub fn export(&self, what: &Export) -> Result<String, TrainError> {
        let step = self.step;
        match what {
            Export::Npz(path) => {
                crate::engine::npz::save_model(path, self.net.plan(), self.net.params())?;
                Ok(format!("exported the weights after step {step} as NumPy arrays to {}", path.display()))
            }
            Export::CurvesCsv(path) => {
                let csv = self.history.merged_csv();
                crate::fileio::write_atomically(path, csv.as_bytes())?;
                let rows = csv.lines().count().saturating_sub(1);
                Ok(format!("exported the curves ({rows} rows, up to step {step}) to {}", path.display()))
            }
        }
    }

    /// Queues a message for the next snapshot (e.g. "saved session to …").
    pub fn notify(&mut self, message: String) {
        self.notices.push(message);
    }

    /// The queued messages, which the next snapshot would have carried (for a caller that takes
    /// no snapshots, such as the command line).
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// The state as a session file. Refused in the middle of a step: a file holds whole steps.
    pub fn to_file(&self) -> Result<SessionFile, TrainError> {
        if self.mid_step() {
            return Err(TrainError::MidStep {
                step: self.step + 1,
                done: self.net.phases_done(),
                total: self.net.phases().len(),
            });
        }
        let (adam, adam_steps) = self.net.adam_state();
        Ok(SessionFile {
            model: self.model.argument(),
            input: self.net.plan().input,
            class_names: self.data.train.class_names.clone(),
            tensors: self.net.params().to_vec(),
            momentum: (0..self.net.params().len()).map(|i| self.net.delta(i).to_vec()).collect(),
            adam: adam.to_vec(),
            adam_steps,
            preset: self.preset,
            seed: self.seed,
            step: self.step,
            settings: self.settings,
            pending: self.pending,
            sampler: self.sampler.clone(),
            history: self.history.clone(),
        })
    }

    /// Saves weights and training state to a session file, atomically (the old file stays
    /// whole if anything fails). Only between steps: in the middle of one this is an error
    /// (the worker's `Command::Save` finishes the step first).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        Ok(self.to_file().map_err(|e| e.in_file(path))?.save(path)?)
    }

    /// Opens a session file and continues exactly where it was saved, on `engine`.
    ///
    /// A plain weights file (ours, or a PyTorch state dict) opens too: for inspection and
    /// further training from step 0, with zero momentum, an empty history and batches drawn
    /// from the file's seed (1 if it has none). A PyTorch state dict says nothing of its
    /// network: it is read as `model` (the current run's, for the window).
    /// A file without checksums (from PyTorch) opens with a note saying it was not checked
    /// (in the next snapshot's `notices`, or [`Session::take_notices`]).
    pub fn open_checkpoint(
        data: Arc<Splits>,
        path: &Path,
        engine: ConvEngine,
        model: Option<&str>,
    ) -> Result<Session, TrainError> {
        let expected = match model {
            Some(m) => Some(plan_for(m, &data)?.0),
            None => None,
        };
        let opened = checkpoint::load(path, Some(data.train.len()), engine, expected.as_ref())?;
        let mut session = Self::from_file(data, opened.file, engine).map_err(|e| e.in_file(path))?;
        if let Some(note) = opened.integrity.note(&path.display().to_string()) {
            session.notify(note);
        }
        Ok(session)
    }

    /// A session continuing `file` on `data`.
    pub fn from_file(data: Arc<Splits>, file: SessionFile, engine: ConvEngine) -> Result<Session, TrainError> {
        let (plan, name) = plan_for(&file.model, &data).map_err(|e| match e {
            TrainError::Model { model, reason } => TrainError::DataMismatch {
                data: data.source.clone(),
                detail: format!("the file's network {model:?} does not fit it: {reason}"),
            },
            other => other,
        })?;
        let mismatch = |detail: String| TrainError::DataMismatch { data: data.source.clone(), detail };
        if file.sampler.epoch_len() != data.train.len() {
            return Err(mismatch(format!(
                "the session was trained on {} images but {} has {}",
                file.sampler.epoch_len(),
                data.source,
                data.train.len()
            )));
        }
        let mut settings = file.settings;
        settings.engine = engine;
        let pending = file.pending.map(|p| Settings { engine, ..p });
        let mut net = Sequential::zeros(plan, engine);
        for t in &file.tensors {
            net.set_param(&t.name, &t.data)?;
        }
        net.set_optimizer_state(file.momentum, file.adam, file.adam_steps)?;
        let mut s = Self::from_parts(
            data,
            net,
            name,
            file.sampler,
            file.seed,
            file.preset,
            settings,
            pending,
            file.step,
            file.history,
        );
        for settings in std::iter::once(&settings).chain(pending.as_ref()) {
            SettingsError::from_problems(s.problems_here(settings)).map_err(TrainError::SavedSettings)?;
        }
        s.replace_curves();
        Ok(s)
    }

    /// Runs every remaining phase of the current batch (a whole new batch if none is half done).
    /// Returns the step's loss point (its loss and batch accuracy).
    pub fn step_batch(&mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<LossPoint, TrainError> {
        loop {
            if self.step_phase(progress)? == Phase::Update {
                let t = self.net.tensors();
                let n = t.n.max(1);
                return Ok(LossPoint {
                    step: self.step,
                    loss: t.loss(),
                    batch_accuracy: t.correct() as f32 / n as f32,
                });
            }
        }
    }

    fn finish_batch(&mut self) {
        match &mut self.history_before_update {
            Some(kept) => History::clone_from(kept, &self.history),
            None => self.history_before_update = Some(Box::new(self.history.clone())),
        }
        self.step += 1;
        let t = self.net.tensors();
        let n = t.n;
        let correct = t.correct();
        let point = LossPoint { step: self.step, loss: t.loss(), batch_accuracy: correct as f32 / n.max(1) as f32 };
        let (epoch, first_image) = self.batch_origin;
        if self.epoch_stats.epoch != epoch {
            self.epoch_stats = EpochStats::start(epoch, first_image);
        }
        let stats = &mut self.epoch_stats;
        stats.steps += 1;
        stats.images += n;
        stats.loss_sum += f64::from(point.loss);
        stats.correct += correct;
        self.new_loss.push(point);
        self.history.push_loss(point);
        let magnitudes = measure_magnitudes(self.step, &self.net);
        self.new_magnitudes.push(magnitudes.clone());
        self.history.push_magnitudes(magnitudes);
        if let Some(t) = self.batch_started.take() {
            let secs = t.elapsed().as_secs_f32().max(1e-6);
            let rate = n as f32 / secs;
            // Smoothed so the number is readable while it updates 30 times a second.
            self.images_per_sec =
                if self.images_per_sec == 0.0 { rate } else { 0.8 * self.images_per_sec + 0.2 * rate };
        }
        if self.step.is_multiple_of(EVAL_EVERY_STEPS) {
            let count = EVAL_IMAGES.min(self.data.test.len());
            if let Ok(r) = self.evaluate(count, &mut |_, _| {}) {
                let point = AccuracyPoint { step: self.step, accuracy: r.accuracy() };
                self.new_accuracy.push(point);
                self.history.push_accuracy(point);
            }
        }
    }

    /// Accuracy, confusion matrix and mistakes on the first `count` test images (0 = all),
    /// without touching the batch shown.
    pub fn evaluate(&mut self, count: usize, progress: &mut dyn FnMut(usize, usize)) -> Result<EvalResult, TrainError> {
        let result = self.evaluate_unless(count, progress, &|| false)?;
        result.ok_or(TrainError::Internal("an evaluation that cannot be stopped stopped"))
    }

    /// [`Session::evaluate`] that checks `stop` between chunks of test images (250 at a time)
    /// and returns `None` as soon as it is true, so that Ctrl-C during a full evaluation acts
    /// within a fraction of a second.
    pub fn evaluate_unless(
        &mut self,
        count: usize,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<EvalResult>, TrainError> {
        let test = &self.data.test;
        let count = if count == 0 { test.len() } else { count.min(test.len()) };
        let classes = self.net.plan().classes;
        let mut correct = 0;
        let mut confusion = vec![0; classes * classes];
        let mut misclassified = Vec::new();
        let reg = self.settings.hyper.reg;
        let mut start = 0;
        while start < count {
            if stop() {
                return Ok(None);
            }
            let end = (start + EVAL_CHUNK).min(count);
            let indices: Vec<usize> = (start..end).collect();
            let batch = test.batch(&indices)?;
            let pixels = batch.images.as_slice().ok_or(TrainError::Internal("batch images are not contiguous"))?;
            self.net.forward_into(pixels, &batch.labels, reg, &mut self.eval_acts)?;
            // Labels are below `classes`: `forward_into` refuses a batch where one is not.
            for (i, (probs, &label)) in self.eval_acts.probs.chunks(classes).zip(&batch.labels).enumerate() {
                let predicted = argmax(probs);
                confusion[label * classes + predicted] += 1;
                if predicted == label {
                    correct += 1;
                } else if misclassified.len() < EvalResult::MAX_MISCLASSIFIED {
                    misclassified.push(Misclassified {
                        index: start + i,
                        label,
                        predicted,
                        confidence: probs[predicted],
                        label_probability: probs[label],
                    });
                }
            }
            start = end;
            progress(start, count);
        }
        Ok(Some(EvalResult { step: self.step, count, correct, classes, confusion, misclassified }))
    }

    /// Adds an evaluation of the current weights (e.g. on the whole test set at the end of an
    /// epoch) to the accuracy curve, unless the curve already has a point at this step.
    /// Results of earlier weights are ignored: a curve point belongs to its step.
    pub fn record_accuracy(&mut self, r: &EvalResult) {
        if r.step != self.step || self.history.accuracy().last().is_some_and(|p| p.step >= r.step) {
            return;
        }
        let point = AccuracyPoint { step: r.step, accuracy: r.accuracy() };
        self.new_accuracy.push(point);
        self.history.push_accuracy(point);
    }

    /// A forward pass of the current weights on one image outside the batch (a test image or a
    /// drawn digit). The batch, its tensors and the training state are untouched.
    pub fn probe(&mut self, input: &ProbeInput) -> Result<Probed, TrainError> {
        let (pixels, image, label) = self.probe_image(input)?;
        self.forward_one(&pixels, label)?;
        let t = &self.eval_acts;
        let predicted = argmax(&t.probs);
        let layers = self.net.plan().layers.len();
        let sample = SampleView {
            index: 0,
            input: t.input().to_vec(),
            outputs: (0..layers).map(|i| t.output(i).to_vec()).collect(),
            grads: vec![Vec::new(); layers],
            winners: (0..layers).map(|i| t.winners(i).to_vec()).collect(),
            probs: t.probs.clone(),
        };
        let confidence = t.probs.get(predicted).copied().unwrap_or(0.0);
        Ok(Probed { step: self.step, image, label, sample, predicted, confidence })
    }

    /// The exact class-evidence maps of the selected digit or of another image, with the
    /// current weights (see [`ClassEvidence`]). For the selected digit after a step's update
    /// they differ slightly from that step's forward pass, which used the old weights.
    /// Refused, with the reason, for a network where they are not exact.
    pub fn class_evidence(&mut self, of: &EvidenceOf) -> Result<ClassEvidence, TrainError> {
        let support =
            model::evidence::evidence_support(self.net.plan()).map_err(|reason| TrainError::NoEvidence { reason })?;
        let (pixels, image, label) = match of {
            EvidenceOf::SelectedSample => self.selected_image()?,
            EvidenceOf::Image(input) => self.probe_image(input)?,
        };
        self.forward_one(&pixels, label)?;
        let plan = self.net.plan();
        let x = support.x_of(&self.eval_acts, 0).ok_or(TrainError::Internal("no flatten input"))?.to_vec();
        let ev = model::evidence::class_evidence(plan, self.net.params(), &x)?;
        let active_units = support.relu.and_then(|r| ev.active(r)).map_or_else(Vec::new, <[bool]>::to_vec);
        Ok(ClassEvidence {
            step: self.step,
            image,
            label,
            input: pixels,
            source: source_name(plan, support.source),
            channels: ev.channels,
            height: ev.height,
            width: ev.width,
            maps: ev.maps,
            bias_terms: ev.bias_terms,
            logits: ev.logits,
            active_units,
        })
    }

    /// Hidden unit `unit` of the first fc after `flatten`: its current weights as maps, its
    /// bias and its weights to the classes.
    pub fn fc1_unit(&self, unit: usize) -> Result<Fc1Unit, TrainError> {
        let plan = self.net.plan();
        let support = model::evidence::evidence_support(plan).map_err(|reason| TrainError::NoEvidence { reason })?;
        let u = model::evidence::fc_unit(plan, self.net.params(), unit)?;
        Ok(Fc1Unit {
            step: self.step,
            unit,
            layer: plan.layers[u.layer].name.clone(),
            source: source_name(plan, support.source),
            channels: u.channels,
            height: u.height,
            width: u.width,
            weights: u.weights,
            bias: u.bias,
            class_weights: u.class_weights.unwrap_or_default(),
        })
    }

    /// Compares backprop with central differences on the current batch and weights, in f64,
    /// for [`GRADCHECK_ELEMENTS`] elements of every parameter tensor (a different choice each
    /// step). Runs the fast engine whatever the setting: the naive one would take minutes.
    /// Reads the session only: weights, momentum, batch and sampler stay exactly as they were.
    pub fn check_gradients(&self, progress: &mut dyn FnMut(usize, usize)) -> Result<GradientCheck, TrainError> {
        let t = self.net.tensors();
        if t.n == 0 {
            return Err(TrainError::NoBatch { then: "check the gradients on its images" });
        }
        let seed = self.seed ^ self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let report = model::gradcheck::check_gradients(
            self.net.plan(),
            self.net.params(),
            t.input(),
            &t.labels,
            self.settings.hyper.reg,
            GRADCHECK_ELEMENTS,
            seed,
            ConvEngine::Fast,
            progress,
        )?;
        Ok(GradientCheck { step: self.step, report })
    }

    /// The loop case of `part` of layer `layer` (see [`model::loops::build_case`]): the batch
    /// in progress (or the last one) run again from the weights it started with, on the engine
    /// and settings it ran with, up to that part. Reads the session only.
    pub fn loop_case(&self, layer: usize, part: model::loops::LoopPart) -> Result<model::loops::LoopCase, TrainError> {
        let plan = self.net.plan();
        model::loops::check_part(plan, layer, part).map_err(|reason| TrainError::NoLoop {
            asked: match plan.layers.get(layer) {
                Some(l) => model::loops::part_title(l, part),
                None => format!("layer {layer} {}", part.label()),
            },
            reason,
        })?;
        let t = self.net.tensors();
        // After the loss check the batch's start moved to `last_good` (see `step_phase_unless`).
        let start = if self.loss_checked { self.last_good.as_ref() } else { self.batch_start.as_ref() };
        let (Some(r), true) = (start, t.n > 0) else {
            return Err(TrainError::NoBatch { then: "step through its loops" });
        };
        let case = model::loops::build_case(
            plan,
            &r.state.params,
            t.input(),
            &t.labels,
            &r.hyper,
            r.settings.engine,
            layer,
            part,
            r.step + 1,
        )?;
        Ok(case)
    }

    /// The pixels, identity and label of a probe input, checked.
    fn probe_image(&self, input: &ProbeInput) -> Result<(Vec<f32>, ImageId, Option<usize>), TrainError> {
        let (c, h, w) = maps_of(self.net.plan().input);
        let per = c * h * w;
        match input {
            ProbeInput::TestImage(i) => {
                let test = &self.data.test;
                if *i >= test.len() {
                    return Err(TrainError::NoTestImage { index: *i, count: test.len() });
                }
                let batch = test.batch(&[*i])?;
                let pixels =
                    batch.images.as_slice().ok_or(TrainError::Internal("the test image is not contiguous"))?.to_vec();
                Ok((pixels, ImageId::Test(*i), batch.labels.first().copied()))
            }
            ProbeInput::Pixels(p) => {
                if p.len() != per {
                    return Err(TrainError::WrongPixelCount {
                        expected: per,
                        shape: format!("{c}×{h}×{w}"),
                        found: p.len(),
                    });
                }
                if let Some((i, v)) = p.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
                    return Err(TrainError::PixelOutOfRange {
                        index: i,
                        row: (i / w.max(1)) % h.max(1),
                        column: i % w.max(1),
                        value: *v,
                    });
                }
                Ok((p.clone(), ImageId::Drawn, None))
            }
        }
    }

    /// The selected digit of the current batch: pixels, identity and label.
    fn selected_image(&self) -> Result<(Vec<f32>, ImageId, Option<usize>), TrainError> {
        let t = self.net.tensors();
        if t.n == 0 {
            return Err(TrainError::NoBatch { then: "ask about its digits" });
        }
        let sel = self.selected.min(t.n - 1);
        let input = t.input();
        let per = input.len() / t.n;
        let image = ImageId::Batch { position: sel, train_index: self.batch_indices.get(sel).copied().unwrap_or(0) };
        Ok((input[sel * per..(sel + 1) * per].to_vec(), image, t.labels.get(sel).copied()))
    }

    /// A forward pass of one image into the scratch tensors. An unknown label counts as class 0:
    /// it only enters the loss, which nobody reads here.
    fn forward_one(&mut self, pixels: &[f32], label: Option<usize>) -> Result<(), TrainError> {
        let reg = self.settings.hyper.reg;
        Ok(self.net.forward_into(pixels, &[label.unwrap_or(0)], reg, &mut self.eval_acts)?)
    }

    /// What the window shows now. Drains the curve points gathered since the last snapshot.
    pub fn snapshot(&mut self) -> Snapshot {
        let plan = self.net.plan();
        let phases = self.net.phases().to_vec();
        let done = self.net.phases_done();
        let ran = |p: Phase| phases.iter().position(|q| *q == p).is_some_and(|i| i < done);
        let t = self.net.tensors();
        let n = t.n;
        let sel = self.selected.min(n.saturating_sub(1));
        let pick = |v: &[f32], produced: bool| -> Vec<f32> {
            if n == 0 || v.is_empty() || !produced {
                return Vec::new();
            }
            let per = v.len() / n;
            v[sel * per..(sel + 1) * per].to_vec()
        };
        let layers = plan.layers.len();
        // A layer's output gradient is computed by the phase after its own backward in
        // reverse order: the next layer's backward, or the loss's for the last layer.
        let grad_ran = |i: usize| if i + 1 == layers { ran(Phase::LossBackward) } else { ran(Phase::Backward(i + 1)) };
        let pick_u32 = |v: &[u32], produced: bool| -> Vec<u32> {
            if n == 0 || v.is_empty() || !produced {
                return Vec::new();
            }
            let per = v.len() / n;
            v[sel * per..(sel + 1) * per].to_vec()
        };
        let sample = SampleView {
            index: sel,
            // The input is there as soon as the batch is loaded, before any phase ran.
            input: pick(t.input(), true),
            outputs: (0..layers).map(|i| pick(t.output(i), ran(Phase::Forward(i)))).collect(),
            grads: (0..layers).map(|i| pick(t.output_grad(i), grad_ran(i))).collect(),
            winners: (0..layers).map(|i| pick_u32(t.winners(i), ran(Phase::Forward(i)))).collect(),
            probs: pick(&t.probs, ran(Phase::Loss)),
        };
        let (c, h, w) = maps_of(plan.input);
        let batch = BatchView {
            // Every channel: a colour image is drawn in colour.
            images: t.input().to_vec(),
            channels: c,
            height: h,
            width: w,
            labels: t.labels.clone(),
            indices: self.batch_indices.clone(),
            probs: if ran(Phase::Loss) { t.probs.clone() } else { Vec::new() },
        };
        let net = &self.net;
        // After the update the maps shown were computed with the weights the batch started
        // with: `last_good` holds exactly those once the batch's loss passed the check.
        let before =
            (done > 0 && done == phases.len() && self.loss_checked).then_some(self.last_good.as_ref()).flatten();
        let convs = plan
            .layers
            .iter()
            .filter_map(|l| {
                let LayerSpec::Conv { filters, k, .. } = l.spec else { return None };
                let wi = net.weight_index(l.index)?;
                let (channels, _, _) = maps_of(l.input);
                Some(ConvFilters {
                    layer: l.index,
                    name: l.name.clone(),
                    filters,
                    channels,
                    kernel: k,
                    weight: net.params()[wi].data.clone(),
                    bias: net.params()[wi + 1].data.clone(),
                    grad: if ran(Phase::Backward(l.index)) { net.grad(wi).to_vec() } else { Vec::new() },
                    delta: net.delta(wi).to_vec(),
                    before_update: before
                        .and_then(|r| Some((r.state.params.get(wi)?.clone(), r.state.params.get(wi + 1)?.clone()))),
                })
            })
            .collect();
        let filters = FilterView { convs };
        let update = (done > 0 && done == phases.len()).then(|| update_sizes(net, self.update_lr));
        let lr_schedule = self.lr_schedule();
        let loss = if ran(Phase::Loss) { Some(t.loss()) } else { None };
        Snapshot {
            images_seen: self.images_seen(),
            lr_schedule,
            update,
            diverged: self.diverged.take(),
            step_back_refusal: self.step_back_refusal().map(str::to_owned),
            step: self.step,
            epoch: self.sampler.epoch(),
            epoch_position: self.sampler.position(),
            epoch_len: self.sampler.epoch_len(),
            running: false,
            phases: phases.clone(),
            phases_done: done,
            settings: self.settings,
            pending: self.pending,
            effective_lr: self.effective_hyper().lr,
            seed: self.seed,
            preset: self.preset,
            model: self.model.clone(),
            class_names: self.data.train.class_names.clone(),
            data_source: self.data.source.clone(),
            batch,
            sample,
            filters,
            loss,
            images_per_sec: self.images_per_sec,
            new_loss_points: std::mem::take(&mut self.new_loss),
            new_accuracy_points: std::mem::take(&mut self.new_accuracy),
            new_magnitude_points: std::mem::take(&mut self.new_magnitudes),
            curves_reset: std::mem::take(&mut self.curves_reset),
            notices: std::mem::take(&mut self.notices),
        }
    }
}

/// The student name of the layer whose output the class evidence splits (`input` when
/// `flatten` comes first).
fn source_name(plan: &Plan, source: Option<usize>) -> String {
    source.and_then(|i| plan.layers.get(i)).map_or_else(|| "input".into(), |l| l.name.clone())
}

/// `(C, H, W)` of a shape (a flat vector is `N` maps of 1×1).
fn maps_of(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => (n, 1, 1),
    }
}

/// The tensors of `net` with weights (conv and fc weight, not biases), as indices into
/// [`Sequential::params`].
fn weight_tensors(net: &Sequential<f32>) -> impl Iterator<Item = usize> + '_ {
    net.plan().layers.iter().filter_map(|l| net.weight_index(l.index))
}

/// The RMS of every layer's output and output gradient, and of every weight tensor and its
/// gradient, for the step just finished (weights after its update). The weights' and their
/// gradients' sums of squares come from the update, which takes them while each block is in
/// cache; the activations' are summed here.
fn measure_magnitudes(step: u64, net: &Sequential<f32>) -> MagnitudePoint {
    let t = net.tensors();
    let squares = net.update_squares();
    let weight_rms = |which: usize| -> Vec<f32> {
        weight_tensors(net)
            .map(|wi| {
                let len = net.params()[wi].data.len();
                match squares {
                    Some(sq) if len > 0 && wi < sq.len() => {
                        let (w, g) = sq[wi];
                        ((if which == 0 { w } else { g }) / len as f64).sqrt() as f32
                    }
                    _ => rms(if which == 0 { &net.params()[wi].data } else { net.grad(wi) }),
                }
            })
            .collect()
    };
    MagnitudePoint {
        step,
        activations: rms_per_layer(net.plan(), |i| t.output(i)),
        gradients: rms_per_layer(net.plan(), |i| t.output_grad(i)),
        weights: weight_rms(0),
        weight_gradients: weight_rms(1),
    }
}

/// The size of the update just made, per weight tensor ([`UpdateSize`]).
fn update_sizes(net: &Sequential<f32>, lr: f32) -> Vec<UpdateSize> {
    let norm = |x: &[f32]| crate::engine::params::sum_of_squares(x).sqrt() as f32;
    // The update already summed the squares of the new weights and of the gradients; only the
    // change is summed here.
    let squares = net.update_squares();
    net.plan()
        .layers
        .iter()
        .filter_map(|l| Some((l, net.weight_index(l.index)?)))
        .map(|(l, wi)| {
            let (weight, gradient) = match squares {
                Some(sq) if sq.len() > wi => (sq[wi].0.sqrt() as f32, sq[wi].1.sqrt() as f32),
                _ => (norm(&net.params()[wi].data), norm(net.grad(wi))),
            };
            UpdateSize { tensor: format!("{}.weight", l.name), delta: norm(net.delta(wi)), weight, gradient, lr }
        })
        .collect()
}

/// The RMS of `values(i)` for each layer `i` of `plan`. flatten's output is its input's buffer:
/// its RMS is the layer before's, not summed again (the post's conv2 maps, 800 k values at batch
/// 32, on every training step).
fn rms_per_layer<'a>(plan: &Plan, values: impl Fn(usize) -> &'a [f32]) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(plan.layers.len());
    for (i, l) in plan.layers.iter().enumerate() {
        let copy = if l.spec == LayerSpec::Flatten { out.last().copied() } else { None };
        out.push(copy.unwrap_or_else(|| rms(values(i))));
    }
    out
}

/// Root mean square, summed as the update sums it (the same result on any schedule).
fn rms(v: &[f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    (crate::engine::params::sum_of_squares(v) / v.len() as f64).sqrt() as f32
}
