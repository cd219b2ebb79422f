//! The eframe application: what the window holds ([`CnnApp`]) and how it starts.
//!
//! The work of a frame is split by kind, as in rerun's viewer:
//! - `logic.rs`: the work that draws nothing. `eframe::App::logic` drains the worker's events
//!   into the snapshot, curves and teaching results; at the start of a frame's drawing, the
//!   keyboard shortcuts are read, the zoom follows the window and the views' textures are
//!   brought up to date.
//! - `ui.rs` (`eframe::App::ui`): draws the window region by region (top bars, side panels,
//!   centre, floating windows) from the panels, tabs and windows of [`crate::ui`].
//! - `command_handling.rs`: turns what the user asked for (menu actions, files chosen, panel
//!   commands) into worker [`Command`]s, and records what the worker owes an answer to
//!   (`in_flight.rs`).
//! - `open_data.rs`: other data (File → Open data…, or the last run's at start) loaded on a
//!   thread of its own, the question of which network to train on it, and the switch.
//! - `classify.rs`: a picture file (menu or dropped) prepared for the network and probed.
//!
//! Threads: the worker thread trains and sends events; its waker calls
//! `ctx.request_repaint()`, so the window sleeps while paused and repaints about 30 times a
//! second while running (the worker's snapshot rate). Nothing here blocks on the worker.

mod classify;
mod command_handling;
mod frame_log;
mod in_flight;
mod lesson;
mod lessons;
mod logic;
mod open_data;
mod ui;

pub use classify::{prepare_picture, resize_grey};

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui;

use crate::data::{ClassNames, DataSource, LoadOptions, Splits, embedded};
use crate::engine::model::DEFAULT_MODEL;
use crate::engine::{ConvEngine, Preset};
use crate::trainer::{Command, PixelRef, ProbeInput, Probed, Session, Settings, Snapshot, TeachingResults, Worker};
use crate::ui::ViewState;
use crate::ui::panels::banner::{Banner, Severity};
use crate::ui::panels::controls::ControlsState;
use crate::ui::panels::curves::Curves;
use crate::ui::panels::menu::FileAction;
use crate::ui::panels::status::Progress;
use crate::ui::support::export::{ShotQueue, ShotTarget};
use crate::ui::support::prefs::{DataChoice, PREFS_KEY, Prefs};
use crate::ui::support::scene::Scene;
use crate::ui::support::text::GlyphSafe;
use crate::ui::support::textures::TileSet;
use crate::ui::tabs::health::Magnitudes;
use crate::ui::tabs::{Tab, TabId, all_tabs};
use crate::ui::windows::draw::DrawState;
use crate::ui::windows::file_dialog::FileDialog;
use crate::ui::windows::inspector::InspectorState;
use frame_log::FrameLog;
use in_flight::InFlight;

/// What the command line passes to the window.
#[derive(Clone, Debug, Default)]
pub struct GuiOptions {
    /// A dataset folder (`--data`): IDX files or an image folder; `None` uses the embedded
    /// sample.
    pub data: Option<PathBuf>,
    /// Class names to use instead of the folder's (`--classes`).
    pub classes: Option<ClassNames>,
    /// The side an image folder's pictures are resized to (`--image-size`; 32 when `None`).
    pub image_size: Option<usize>,
    /// Read an image folder's pictures in grey (`--grayscale`).
    pub grayscale: bool,
    /// Seed of the first run.
    pub seed: u64,
    /// The network of the first run (`--model`): a name or a line; `None` reopens the last
    /// run's network, or the post's.
    pub model: Option<String>,
    /// A lesson to start in (`--lesson`): a built-in lesson's name or a lesson file.
    pub lesson: Option<String>,
}

/// Loads the data the options name, before the window opens (a progress line on a terminal
/// while a large image folder is decoded). A folder that cannot be read is not fatal: the
/// embedded sample is used and the second value says why, for a banner. Fails only if the
/// embedded sample itself is damaged.
pub fn load_data(options: &GuiOptions) -> Result<(Arc<Splits>, Option<String>), String> {
    let load = LoadOptions {
        classes: options.classes,
        image_size: options.image_size,
        grayscale: options.grayscale,
        ..LoadOptions::default()
    };
    let fallback_note = match &options.data {
        None => None,
        Some(dir) => match load_with_line(dir, &load) {
            Ok(m) => return Ok((Arc::new(m), None)),
            Err(e) => {
                Some(format!("Could not load --data {}: {e}. Using the embedded MNIST sample instead.", dir.display()))
            }
        },
    };
    let mut data = embedded().map_err(|e| e.to_string())?;
    if let Some(c) = options.classes {
        let names = c.names();
        data.train.class_names = names.clone();
        data.test.class_names = names;
    }
    Ok((Arc::new(data), fallback_note))
}

/// [`crate::cli::load_data_with_progress`] on standard error (drawn only on a terminal), and
/// the reader's notes there too, as `train` prints them.
fn load_with_line(dir: &std::path::Path, load: &LoadOptions) -> Result<Splits, crate::data::DataError> {
    use std::io::IsTerminal;
    let mut stderr = std::io::stderr();
    let terminal = stderr.is_terminal();
    let data = crate::cli::load_data_with_progress(Some(dir), load, &mut stderr, terminal)?;
    for note in &data.notes {
        eprintln!("note: {note}");
    }
    Ok(data)
}

/// Opens the window and runs until it is closed.
pub fn run_gui(options: GuiOptions) -> Result<(), String> {
    let (data, note) = load_data(&options)?;
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("cnn-stepper")
            .with_app_id("cnn-stepper")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([1024.0, 640.0])
            // Pictures dropped on the window are classified (Windows needs it asked for).
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let seed = options.seed;
    let model = options.model.clone();
    let lesson = options.lesson.clone();
    let data_given = options.data.clone().filter(|_| note.is_none());
    let asked_for_data = options.data.is_some();
    let given_options =
        LoadOptions { image_size: options.image_size, grayscale: options.grayscale, ..LoadOptions::default() };
    eframe::run_native(
        "cnn-stepper",
        native,
        Box::new(move |cc| {
            let mut prefs =
                cc.storage.and_then(|s| s.get_string(PREFS_KEY)).map(|t| Prefs::from_json(&t)).unwrap_or_default();
            if model.is_some() {
                prefs.model = model;
            }
            // `--data` wins over the data the last run used.
            if asked_for_data {
                prefs.data = None;
            }
            let mut app = CnnApp::with_prefs(&cc.egui_ctx, data, seed, prefs);
            if let Some(dir) = &data_given {
                app.remember_data(Some(DataChoice::new(&DataSource::parse(&dir.to_string_lossy()), &given_options)));
            }
            if let Some(n) = note {
                app.push_banner(Severity::Error, n);
            }
            if let Some(l) = &lesson {
                app.start_lesson_named(l);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| format!("could not open the window: {e}"))
}

/// The application state.
pub struct CnnApp {
    /// The training thread and what it still owes an answer to.
    link: WorkerLink,
    /// What the worker reported, as the views need it.
    results: Results,
    /// What the digit views show, and the textures built from it.
    display: Display,
    /// A drawn digit or a test image shown instead of the batch's digit.
    probe: ProbeState,
    /// The user's view choices (tab, modes, colours, help).
    view: ViewState,
    /// The tabs of the central area, in [`all_tabs`] order.
    tabs: Vec<Box<dyn Tab>>,
    /// What the File menu offers to save as PNG: the tabs that have a picture, then the window.
    pictures: Vec<ShotTarget>,
    /// The text fields of the control bar.
    controls: ControlsState,
    /// Messages at the top of the window until dismissed.
    banners: Vec<Banner>,
    /// The pipeline's formulas in characters the fonts have.
    glyphs: GlyphSafe,
    /// The pixel inspector and the draw-a-digit window.
    windows: Windows,
    /// The file dialog, the folders last used and the pictures waiting to be taken.
    files: Files,
    /// How large the interface is drawn.
    zoom: Zoom,
    /// Where the status line starts (in points, from the top) as last drawn: floating windows
    /// stay above it.
    status_top: f32,
    /// Set once the renderer is known: the adapter's name when it draws on the CPU.
    software_renderer: Option<Option<String>>,
    /// Frame timing, when `CNN_STEPPER_FRAME_LOG` asks for it.
    frame_log: Option<FrameLog>,
    /// For what `App::save` needs of the context (the zoom).
    egui_ctx: egui::Context,
    /// The data the worker trains on: the evaluation view shows test digits from it.
    data: Arc<Splits>,
    /// What the lesson features remember between frames (the update view followed).
    lesson: lesson::LessonState,
    /// Other data on its way in (File → Open data…), and which data is in use.
    data_switch: open_data::DataSwitch,
    /// The lesson shown (File → Open lesson…, the Lessons menu, `--lesson`), if any.
    lessons: lessons::Lessons,
}

/// The training thread, and what the window knows of its work in progress.
struct WorkerLink {
    worker: Option<Worker>,
    /// Why there is no trainer to act (it could not start, or it stopped); disables the controls.
    no_worker: Option<String>,
    /// Commands sent that the worker has not answered yet.
    in_flight: InFlight,
    /// How far the long command under way is.
    progress: Option<Progress>,
    /// A Pause was sent and the worker has not said it is paused yet.
    pausing: bool,
}

/// What the worker reported.
struct Results {
    snapshot: Option<Box<Snapshot>>,
    /// Bumped for every snapshot shown, so textures know when to rebuild.
    generation: u64,
    curves: Curves,
    magnitudes: Magnitudes,
    /// The latest answer to each read-only request (evaluation, probe, class evidence, FC1
    /// unit, gradient check), for the teaching views.
    teaching: TeachingResults,
}

/// What the digit views show: the snapshot, or a copy with a probed image's tensors.
struct Display {
    /// The copy, while a probe is shown.
    probed: Option<Box<Snapshot>>,
    /// The (snapshot generation, probe answers, probe shown) `probed` was built for.
    key: Option<(u64, u64, bool)>,
    /// Bumped whenever what the views show changed, so the scene knows when to rebuild.
    generation: u64,
    /// The textures of the digit views, the batch and the filters.
    scene: Scene,
    /// The probed image, for the outputs panel's thumbnail.
    probe_thumb: TileSet,
}

/// A drawn digit or a test image run through the network instead of the batch's digit.
#[derive(Debug, Default)]
struct ProbeState {
    /// The digit views show the probe, not the batch's selected digit.
    showing: bool,
    /// What to probe next (the newest drawing wins over older ones not sent yet).
    pending: Option<ProbeInput>,
    in_flight: bool,
    /// What was probed last: probed again after each step, so the answer follows training.
    source: Option<ProbeInput>,
    /// Bumped for every probe answer: the digit views rebuild for a new probe only, not for
    /// every teaching answer (an FC1 view's requests arrive several times a second).
    answers: u64,
    /// The picture file the probe shows (File → Classify an image…, or dropped), if it is one.
    file: Option<PathBuf>,
    /// A picture file being prepared for the network.
    classifying: Option<classify::Classifying>,
}

/// The floating windows other than help (whose switch is a view choice).
#[derive(Default)]
struct Windows {
    inspector: InspectorState,
    draw: DrawState,
    show_draw: bool,
    /// The list of keyboard shortcuts (F1).
    show_keys: bool,
    /// The Network editor (made from the first snapshot, kept while the app runs).
    network: Option<crate::ui::windows::network::NetworkEditor>,
    show_network: bool,
    /// The convolution playground (its numbers kept while closed).
    playground: crate::ui::windows::playground::PlaygroundState,
    show_playground: bool,
    /// The step at which the run was last saved or opened: a new network asks first when the
    /// run has steps past it.
    saved_step: Option<u64>,
}

/// Files: the dialog shown, where the last ones were, and PNG pictures asked for.
#[derive(Default)]
struct Files {
    /// The file dialog shown, and what its file is for.
    dialog: Option<(FileAction, FileDialog)>,
    last_dir: Option<PathBuf>,
    last_session: Option<PathBuf>,
    shots: ShotQueue,
    /// The resolution of PNG pictures, as a multiple of the screen's (1 to 3; 0 is 1).
    png_scale: u8,
    /// The tab drawn last frame and the rectangle of its view, for PNG export.
    last_view: Option<(TabId, egui::Rect)>,
}

/// How large the interface is drawn.
struct Zoom {
    mode: ZoomMode,
    /// Projector mode: everything larger, for the back of a classroom.
    projector: bool,
}

/// Who sets the zoom.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ZoomMode {
    /// Scale with the window so that a projector's 1920×1080 reads like a 1280×800 laptop;
    /// holds the zoom last set.
    Auto(f32),
    /// The user chose a zoom with Ctrl +/- : leave it alone.
    Manual,
}

impl CnnApp {
    /// Creates the app on `data` and starts the training thread (recommended preset, fast
    /// engine, `seed`). The worker wakes `ctx` whenever it has news. Failures to start are shown
    /// as a banner, not returned: the window still opens and says what went wrong.
    pub fn new(ctx: &egui::Context, data: Arc<Splits>, seed: u64) -> Self {
        Self::with_prefs(ctx, data, seed, Prefs::default())
    }

    /// Like [`Self::new`], then applies what the last run remembered: preset and settings,
    /// zoom, projector mode, help panel, folders, and the data (loaded on a thread while the run
    /// starts on `data`, then switched to). Unusable remembered values are dropped and a banner
    /// says which.
    pub fn with_prefs(ctx: &egui::Context, data: Arc<Splits>, seed: u64, prefs: Prefs) -> Self {
        let (prefs, dropped) = prefs.sanitized();
        let preset = prefs.preset.unwrap_or(Preset::Recommended);
        let engine = prefs.settings.map_or(ConvEngine::Fast, |s| s.engine);
        let mut model = prefs.model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let reopen = prefs.data.clone().filter(|d| d.data_source() != DataSource::Sample);
        if reopen.is_some() {
            let (input, classes) = (data.train.input_shape(), data.train.num_classes());
            if crate::engine::model::resolve(&model, input, classes).is_err() {
                // The remembered network is for the remembered data: the sample meanwhile runs
                // the post's network, without a banner about a misfit nobody asked for.
                model = DEFAULT_MODEL.to_owned();
            }
        }
        let mut app = Self::start(ctx, data, seed, preset, &model, engine);
        if let Some(choice) = reopen {
            app.reopen_data(choice, prefs.model.clone());
        }
        for d in dropped {
            app.push_banner(Severity::Info, d);
        }
        if let Some(s) = prefs.settings
            && s != Settings::from_preset(preset, engine)
        {
            app.send(Command::SetSettings(s));
        }
        app.zoom.projector = prefs.projector;
        if let Some(v) = prefs.view {
            app.view = v;
        }
        app.files.last_dir = prefs.last_dir;
        app.files.last_session = prefs.last_session;
        if let Some(z) = prefs.zoom {
            ctx.set_zoom_factor(z);
            app.zoom.mode = ZoomMode::Manual;
        }
        app
    }

    /// What is remembered for the next start (see [`Prefs`]).
    pub fn prefs(&self) -> Prefs {
        let snap = self.results.snapshot.as_deref();
        Prefs {
            preset: snap.map(|s| s.preset),
            settings: snap.map(|s| s.pending.unwrap_or(s.settings)),
            projector: self.zoom.projector,
            zoom: (self.zoom.mode == ZoomMode::Manual).then(|| self.egui_ctx.zoom_factor()),
            view: Some(self.view.clone()),
            last_dir: self.files.last_dir.clone(),
            last_session: self.files.last_session.clone(),
            model: snap.map(|s| s.model.argument()),
            data: self.data_to_remember(),
        }
    }

    /// Says which data the window trains on, to be remembered for the next start (`None`: the
    /// embedded sample).
    pub fn remember_data(&mut self, choice: Option<DataChoice>) {
        self.data_switch.current = choice;
    }

    fn start(
        ctx: &egui::Context,
        data: Arc<Splits>,
        seed: u64,
        preset: Preset,
        model: &str,
        engine: ConvEngine,
    ) -> Self {
        ui::setup_style(ctx);
        let tabs = all_tabs();
        let pictures = tabs
            .iter()
            .filter_map(|t| t.picture().map(|p| ShotTarget::Tab(t.id(), p)))
            .chain([ShotTarget::Window])
            .collect();
        let mut app = Self {
            link: WorkerLink {
                worker: None,
                no_worker: None,
                in_flight: InFlight::default(),
                progress: None,
                pausing: false,
            },
            results: Results {
                snapshot: None,
                generation: 0,
                curves: Curves::default(),
                magnitudes: Magnitudes::default(),
                teaching: TeachingResults::default(),
            },
            display: Display {
                probed: None,
                key: None,
                generation: 0,
                scene: Scene::default(),
                probe_thumb: TileSet::new("probed digit"),
            },
            probe: ProbeState::default(),
            view: ViewState::default(),
            tabs,
            pictures,
            controls: ControlsState::default(),
            banners: Vec::new(),
            glyphs: GlyphSafe::default(),
            windows: Windows::default(),
            files: Files::default(),
            zoom: Zoom { mode: ZoomMode::Auto(ctx.zoom_factor()), projector: false },
            software_renderer: None,
            status_top: f32::INFINITY,
            frame_log: FrameLog::from_env(),
            egui_ctx: ctx.clone(),
            data: data.clone(),
            lesson: lesson::LessonState::default(),
            data_switch: open_data::DataSwitch::default(),
            lessons: lessons::Lessons::default(),
        };
        if !data.notes.is_empty() {
            app.push_banner(Severity::Info, format!("{}: {}", data.source, data.notes.join("; ")));
        }
        let session = Session::new(data.clone(), seed, preset, model, engine).or_else(|e| {
            // A remembered or asked-for network that does not fit this data: the post's, and why.
            let fallback = Session::new(data, seed, preset, DEFAULT_MODEL, engine);
            if fallback.is_ok() {
                app.push_banner(Severity::Error, format!("{e}; the post's network is used instead"));
            }
            fallback
        });
        match session {
            Ok(session) => {
                let waker_ctx = ctx.clone();
                match Worker::spawn(session, move || waker_ctx.request_repaint()) {
                    Ok(w) => app.link.worker = Some(w),
                    Err(e) => app.fail_start(format!("Could not start the training thread: {e}")),
                }
            }
            Err(e) => app.fail_start(format!("Could not create the training session: {e}")),
        }
        app
    }

    fn fail_start(&mut self, message: String) {
        self.link.no_worker = Some("No training session (see the message at the top)".into());
        self.push_banner(Severity::Error, message);
    }

    /// Shows a message at the top of the window until dismissed.
    pub fn push_banner(&mut self, severity: Severity, message: impl Into<String>) {
        let message = message.into();
        // The same error repeated (e.g. divergence on every Step) is one banner, not a stack.
        if !self.banners.iter().any(|b| b.message == message) {
            self.banners.push(Banner { severity, message });
        }
    }

    /// The banners currently shown.
    pub fn banners(&self) -> &[Banner] {
        &self.banners
    }

    /// The latest snapshot, if one arrived.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.results.snapshot.as_deref()
    }

    /// The curve history.
    pub fn curves(&self) -> &Curves {
        &self.results.curves
    }

    /// The latest answer to each read-only request, for the teaching views.
    pub fn teaching(&self) -> &TeachingResults {
        &self.results.teaching
    }

    /// True from sending an evaluation until its result (or its failure) arrives.
    pub fn evaluating(&self) -> bool {
        self.link.in_flight.evaluating()
    }

    /// The feature-map pixel the inspector shows, if it is open.
    pub fn inspected(&self) -> Option<PixelRef> {
        self.windows.inspector.pixel
    }

    /// The probed image shown instead of the batch's digit, if any.
    pub fn shown_probe(&self) -> Option<&Probed> {
        self.results.teaching.probe.as_deref().filter(|_| self.probe.showing)
    }

    /// The picture file the probe shows, if the probe is one (Classify an image).
    pub fn probed_file(&self) -> Option<&std::path::Path> {
        self.probe.file.as_deref().filter(|_| self.probe.showing)
    }

    /// True while a picture file is being prepared for the network.
    pub fn classifying(&self) -> bool {
        self.probe.classifying.is_some()
    }

    /// Whether a file dialog is open.
    pub fn dialog_open(&self) -> bool {
        self.files.dialog.is_some()
    }

    /// The tab in front.
    pub fn tab(&self) -> TabId {
        self.view.tab
    }

    /// Whether the list of keyboard shortcuts is shown.
    pub fn keys_shown(&self) -> bool {
        self.windows.show_keys
    }

    /// The convolution playground, while its window is open.
    pub fn playground(&self) -> Option<&crate::ui::windows::playground::PlaygroundState> {
        self.windows.show_playground.then_some(&self.windows.playground)
    }

    /// Opens the convolution playground in the state `setup` describes (what a lesson card
    /// does; see [`crate::engine::playground::Setup::parse`] for the line that describes one).
    pub fn open_playground(&mut self, setup: &crate::engine::playground::Setup) {
        self.windows.playground.apply(setup);
        self.windows.show_playground = true;
    }
}

impl eframe::App for CnnApp {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.frame_logic(ctx, frame);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        // The window's background is the clear colour, and the panels draw none of their own:
        // a software renderer (Mesa's lavapipe, as under Xvfb in CI or in a VM) spends tens
        // of milliseconds filling a window-sized rectangle, but clears for free.
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = serde_json::to_string(&self.prefs()) {
            storage.set_string(PREFS_KEY, text);
        }
    }

    fn on_exit(&mut self) {
        if let Some(log) = &self.frame_log {
            eprintln!("frame log (whole session): {}", log.total_summary());
        }
    }
}
