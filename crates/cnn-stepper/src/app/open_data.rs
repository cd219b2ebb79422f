//! Other data in the window (File → Open data…, or the data remembered from the last run): it
//! loads on a thread of its own while the current run goes on, with a progress bar saying what
//! is loading. When it is in, the current network is checked against it: if it fits, the run
//! switches (asking first when steps would be lost); if not, the user chooses a network that
//! fits, or designs one in the Network window, or keeps the current data. The worker's
//! [`Command::SetData`] starts the new run, and the window takes the data in when the worker says
//! the run is on it ([`NEW_DATA_NOTICE`]), so a refused switch leaves everything as it was.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use eframe::egui;

use super::CnnApp;
use crate::data::{DataError, DataSource, LoadOptions, LoadProgress, Splits};
use crate::engine::model::named::{NAMED, NamedModel};
use crate::engine::model::{DEFAULT_MODEL, resolve};
use crate::trainer::Command;
use crate::trainer::worker::NEW_DATA_NOTICE;
use crate::ui::panels::banner::Severity;
use crate::ui::panels::status::Progress;
use crate::ui::support::prefs::DataChoice;
use crate::ui::windows::open_data::{
    DataAnswer, DataQuestion, OpenDataDialog, OpenDataOutcome, data_question_ui, shape_text,
};

/// Where a change of data stands.
#[derive(Default)]
pub(super) struct DataSwitch {
    /// The Open data window, while it is open.
    pub(super) dialog: Option<OpenDataDialog>,
    /// Data loading on its thread.
    loading: Option<Loading>,
    /// Data that is in, waiting for the user's answer.
    question: Option<Question>,
    /// Data waiting for a network from the Network window.
    pub(super) for_editor: Option<Loaded>,
    /// Data sent to the worker, taken in when its run starts.
    sent: Option<Loaded>,
    /// What the window trains on, remembered for the next start; `None` for the embedded
    /// sample.
    pub(super) current: Option<DataChoice>,
    /// The window title last set.
    title: Option<String>,
    /// A snapshot said the worker's run is on the data sent: take it in.
    pub(super) arrived: bool,
}

/// A load under way.
struct Loading {
    choice: DataChoice,
    /// What the progress bar says is loading.
    what: String,
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    result: mpsc::Receiver<Result<Splits, DataError>>,
    /// The network to train on it: `None` for the current one; the remembered one at start.
    model: Option<String>,
    /// Loading what the last run used: a failure falls back to the sample, as `--data` does.
    at_start: bool,
}

/// Data that is in.
pub(super) struct Loaded {
    pub(super) data: Arc<Splits>,
    choice: Option<DataChoice>,
}

impl Loaded {
    /// `data`, read from `source` with the default options (a lesson's data).
    pub(super) fn from_source(data: Arc<Splits>, source: &DataSource) -> Self {
        let choice = (*source != DataSource::Sample).then(|| DataChoice::new(source, &LoadOptions::default()));
        Self { data, choice }
    }

    /// Images' channels, height and width, and the number of classes.
    pub(super) fn shape(&self) -> ((usize, usize, usize), usize) {
        (self.data.train.input_shape(), self.data.train.num_classes())
    }
}

/// A question waiting for the user.
struct Question {
    loaded: Loaded,
    /// The current network (or the one wanted): a name or a line.
    model: String,
    /// Why it does not fit the new data; `None` when it fits.
    misfit: Option<String>,
    fits: Vec<&'static NamedModel>,
    unsaved: Option<u64>,
}

impl CnnApp {
    /// Opens the Open data window, filled with the data in use.
    pub fn open_data_window(&mut self) {
        if self.link.no_worker.is_some() {
            return;
        }
        self.data_switch.dialog = Some(OpenDataDialog::new(self.data_switch.current.as_ref()));
    }

    /// Starts loading `source` on a thread of its own; the run goes on meanwhile. A load
    /// already under way is forgotten (its thread ends on its own).
    pub fn load_data(&mut self, source: DataSource, options: LoadOptions) {
        self.start_loading(DataChoice::new(&source, &options), None, false);
    }

    /// Loads the data the last run used (at start, when no `--data` was given), to train
    /// `model` on it. If it cannot be loaded, a banner says why and the sample stays.
    pub fn reopen_data(&mut self, choice: DataChoice, model: Option<String>) {
        self.start_loading(choice, model, true);
    }

    /// True while data loads.
    pub fn loading_data(&self) -> bool {
        self.data_switch.loading.is_some()
    }

    /// The data to remember for the next start: the data in use, or the last run's while it is
    /// still loading (quitting before it is in does not forget it).
    pub(super) fn data_to_remember(&self) -> Option<DataChoice> {
        let reopening = self.data_switch.loading.as_ref().filter(|l| l.at_start).map(|l| l.choice.clone());
        self.data_switch.current.clone().or(reopening)
    }

    /// True while the Open data window or the question about loaded data is shown: the
    /// keyboard shortcuts wait.
    pub(super) fn data_window_open(&self) -> bool {
        self.data_switch.dialog.is_some() || self.data_switch.question.is_some()
    }

    /// The data the views and the evaluation use (the worker trains on the same).
    pub fn data(&self) -> &Arc<Splits> {
        &self.data
    }

    /// True while loaded data waits for the user to say whether, or with which network, to
    /// switch to it.
    pub fn data_question_open(&self) -> bool {
        self.data_switch.question.is_some()
    }

    fn start_loading(&mut self, choice: DataChoice, model: Option<String>, at_start: bool) {
        let source = choice.data_source();
        let done = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let rx = match self.spawn_loader(source.clone(), choice.options(), done.clone(), total.clone()) {
            Ok(rx) => rx,
            Err(e) => {
                self.push_banner(Severity::Error, format!("Could not start loading {source}: {e}"));
                return;
            }
        };
        self.data_switch.loading =
            Some(Loading { choice, what: format!("loading {source}"), done, total, result: rx, model, at_start });
    }

    /// Loads `source` on a thread of its own, counting its progress in `done` / `total` and
    /// waking the window; the result comes through the receiver (Open data… and lesson cards).
    pub(super) fn spawn_loader(
        &self,
        source: DataSource,
        options: LoadOptions,
        done: Arc<AtomicUsize>,
        total: Arc<AtomicUsize>,
    ) -> std::io::Result<mpsc::Receiver<Result<Splits, DataError>>> {
        let (tx, rx) = mpsc::channel();
        let ctx = self.egui_ctx.clone();
        std::thread::Builder::new().name("cnn-stepper data loader".into()).spawn(move || {
            let progress = |p: LoadProgress| {
                done.store(p.done, Ordering::Relaxed);
                total.store(p.total, Ordering::Relaxed);
                ctx.request_repaint();
            };
            let result = crate::data::load(&source, &options, &progress);
            // The window may have gone, or another load replaced this one: nobody to tell.
            let _ = tx.send(result);
            ctx.request_repaint();
        })?;
        Ok(rx)
    }

    /// Forgets the load under way (Cancel on its progress bar).
    pub(super) fn cancel_loading(&mut self) {
        self.data_switch.loading = None;
    }

    /// How far the load has come, for the status line and the loading bar.
    pub(super) fn loading_progress(&self) -> Option<Progress> {
        let l = self.data_switch.loading.as_ref()?;
        Some(Progress {
            what: l.what.clone(),
            done: l.done.load(Ordering::Relaxed),
            total: l.total.load(Ordering::Relaxed),
        })
    }

    /// Takes in a load that finished: an error is a banner (the run goes on), data is checked
    /// against the network.
    pub(super) fn poll_loading(&mut self) {
        let Some(l) = &self.data_switch.loading else { return };
        let result = match l.result.try_recv() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => Err("the loading thread stopped unexpectedly".to_string()),
        };
        let Some(l) = self.data_switch.loading.take() else { return };
        match result {
            Ok(data) if data.train.is_empty() => {
                self.push_banner(Severity::Error, format!("{} has no training images; nothing changed.", data.source));
            }
            Ok(data) => {
                let choice = (l.choice.data_source() != DataSource::Sample).then_some(l.choice);
                self.data_loaded(Loaded { data: Arc::new(data), choice }, l.model);
            }
            Err(e) if l.at_start => self.push_banner(
                Severity::Error,
                format!(
                    "Could not load the last data, {}: {e}. Using the embedded MNIST sample instead.",
                    l.choice.source
                ),
            ),
            Err(e) => self.push_banner(
                Severity::Error,
                format!("Could not open the data {}: {e}. The current run goes on.", l.choice.source),
            ),
        }
    }

    /// The current run's step when it has progress that is not saved.
    pub(super) fn unsaved_step(&self) -> Option<u64> {
        let s = self.results.snapshot.as_deref()?;
        (s.step > 0 && self.windows.saved_step != Some(s.step)).then_some(s.step)
    }

    /// New data is in: switch at once when the network fits and nothing would be lost, else ask.
    fn data_loaded(&mut self, loaded: Loaded, wanted: Option<String>) {
        let current = self.results.snapshot.as_deref().map(|s| s.model.argument());
        let model = wanted.or(current).unwrap_or_else(|| DEFAULT_MODEL.to_string());
        let (input, classes) = loaded.shape();
        let misfit = resolve(&model, input, classes).err().map(|e| e.message());
        let fits = NAMED.iter().filter(|m| resolve(m.name, input, classes).is_ok()).collect();
        let unsaved = self.unsaved_step();
        if misfit.is_none() && unsaved.is_none() {
            self.switch_data(loaded, model);
        } else {
            self.data_switch.question = Some(Question { loaded, model, misfit, fits, unsaved });
        }
    }

    /// Sends the switch to the worker: a fresh run of `model` on the data.
    pub(super) fn switch_data(&mut self, loaded: Loaded, model: String) {
        let snap = self.results.snapshot.as_deref();
        let seed = self.controls.parse_seed().ok().or(snap.map(|s| s.seed)).unwrap_or(1);
        let preset = snap.map_or(crate::engine::Preset::Recommended, |s| s.preset);
        self.send_data(loaded, seed, preset, model);
    }

    /// Sends `loaded` to the worker as a fresh run; [`Self::data_arrived`] takes it in once the
    /// worker says its run is on it.
    pub(super) fn send_data(&mut self, loaded: Loaded, seed: u64, preset: crate::engine::Preset, model: String) {
        self.send(Command::SetData { data: loaded.data.clone(), seed, preset, model });
        self.data_switch.sent = Some(loaded);
    }

    /// The worker's run is on the new data: the views, the evaluation and the title follow it.
    /// Answers about the old data go (a test image's index means another image now).
    pub(super) fn data_arrived(&mut self) {
        self.data_switch.arrived = false;
        let Some(loaded) = self.data_switch.sent.take() else { return };
        let old_input = self.data.train.input_shape();
        self.data = loaded.data;
        self.data_switch.current = loaded.choice;
        self.windows.saved_step = None;
        self.forget_answers();
        let new_input = self.data.train.input_shape();
        match self.probe.source.clone() {
            Some(crate::trainer::ProbeInput::TestImage(_)) => self.stop_probe(),
            Some(_) if new_input != old_input => {
                let file = self.probe.file.clone();
                self.stop_probe();
                // A picture is prepared again for the new images; a drawing has no such size.
                if let Some(path) = file {
                    self.classify_file(&path);
                }
            }
            // The same size: the drawing or picture again, to the new run.
            Some(source) => self.probe.pending = Some(source),
            None => {}
        }
        if new_input.0 != 1 {
            self.windows.show_draw = false;
        }
    }

    /// Whether a snapshot's notice says the worker's run is on the data sent.
    pub(super) fn notice_means_new_data(notice: &str) -> bool {
        notice.starts_with(NEW_DATA_NOTICE)
    }

    /// The Open data window and the question about loaded data, over everything else.
    pub(super) fn open_data_ui(&mut self, ctx: &egui::Context) {
        if self.files.dialog.is_none()
            && let Some(dialog) = &mut self.data_switch.dialog
        {
            match dialog.ui(ctx) {
                OpenDataOutcome::Open => {}
                OpenDataOutcome::Cancelled => self.data_switch.dialog = None,
                OpenDataOutcome::ChooseFolder => {
                    let start = dialog.folder_path().filter(|p| p.is_dir());
                    self.ask_file(crate::ui::panels::menu::FileAction::DataFolder);
                    if let (Some(dir), Some((_, d))) = (start, &mut self.files.dialog) {
                        d.enter_dir(&dir);
                    }
                }
                OpenDataOutcome::Load(source, options) => {
                    self.data_switch.dialog = None;
                    self.load_data(source, options);
                }
            }
        }
        let Some(q) = &self.data_switch.question else { return };
        let data = &q.loaded.data;
        let (input, classes) = q.loaded.shape();
        let view = DataQuestion {
            source: &data.source,
            input,
            classes,
            images: (data.train.len(), data.test.len()),
            notes: &data.notes,
            network: &q.model,
            misfit: q.misfit.as_deref(),
            fits: &q.fits,
            unsaved: q.unsaved,
        };
        let Some(answer) = data_question_ui(ctx, &view) else { return };
        let Some(q) = self.data_switch.question.take() else { return };
        match answer {
            DataAnswer::Switch(model) => self.switch_data(q.loaded, model),
            DataAnswer::EditNetwork => {
                let ((c, h, w), classes) = q.loaded.shape();
                self.push_banner(
                    Severity::Info,
                    format!(
                        "Design a network for {} ({} images, {classes} classes) in the Network window: Apply \
                         starts it on the new data; closing the window keeps the current data.",
                        q.loaded.data.source,
                        shape_text((c, h, w))
                    ),
                );
                self.data_switch.for_editor = Some(q.loaded);
                self.windows.show_network = true;
            }
            DataAnswer::Keep => {}
        }
    }

    /// The Network window was closed without applying a network for the new data.
    pub(super) fn editor_closed_without_network(&mut self) {
        if let Some(l) = self.data_switch.for_editor.take() {
            self.banners.retain(|b| !b.message.starts_with("Design a network for "));
            self.push_banner(
                Severity::Info,
                format!("No network was chosen for {}; the current data stays.", l.data.source),
            );
        }
    }

    /// The Network window's Apply while new data waits for a network: the run starts on it.
    pub(super) fn editor_applied_for_new_data(&mut self, line: String) -> bool {
        let Some(loaded) = self.data_switch.for_editor.take() else { return false };
        self.banners.retain(|b| !b.message.starts_with("Design a network for "));
        self.switch_data(loaded, line);
        true
    }

    /// The window's title names the data.
    pub(super) fn update_title(&mut self, ctx: &egui::Context) {
        if self.data_switch.title.as_deref() == Some(self.data.source.as_str()) {
            return;
        }
        self.data_switch.title = Some(self.data.source.clone());
        ctx.send_viewport_cmd(egui::ViewportCommand::Title(format!("cnn-stepper — {}", self.data.source)));
    }

    /// A folder dropped on the window: the Open data window, with it filled in.
    pub(super) fn folder_dropped(&mut self, dir: &Path) {
        self.open_data_window();
        if let Some(d) = &mut self.data_switch.dialog {
            d.set_folder(dir);
        }
    }
}
