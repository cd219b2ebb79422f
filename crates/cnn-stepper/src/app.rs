//! The eframe application: owns the worker handle and what the window shows (latest snapshot,
//! curves, textures, selections), drains worker events in [`eframe::App::logic`] and lays out
//! the panels of [`crate::ui`] in [`eframe::App::ui`].
//!
//! Threads: the worker thread trains and sends events; its waker calls
//! `ctx.request_repaint()`, so the window sleeps while paused and repaints about 30 times a
//! second while running (the worker's snapshot rate). Nothing here blocks on the worker.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui::{self, Key, Modifiers};

use crate::data::{ClassNames, Mnist, embedded, load_dir};
use crate::engine::{ConvEngine, ModelConfig, Preset};
use crate::trainer::{
    Command, Event, Export, ImageId, InspectError, PixelInspection, ProbeInput, Probed, SampleView, Session, Settings,
    Snapshot, Worker,
};
use crate::ui::banner::{Banner, Severity, banner_ui};
use crate::ui::batch::batch_ui;
use crate::ui::controls::{Availability, ControlsState, controls_ui, reset_command};
use crate::ui::curves::{Curves, curves_ui};
use crate::ui::draw::{DrawState, draw_canvas_ui};
use crate::ui::evaluation::{EvaluationState, evaluation_ui};
use crate::ui::export::{ShotQueue, ShotTarget};
use crate::ui::fc1::{Fc1State, fc1_ui};
use crate::ui::feature_maps::{feature_maps_ui, map_mode_ui};
use crate::ui::file_dialog::{DialogOutcome, FileDialog};
use crate::ui::filters::{filter_mode_ui, filters_ui};
use crate::ui::health::{HealthState, Magnitudes, health_ui};
use crate::ui::help::{HelpTopic, help_ui, with_help};
use crate::ui::inspector::{InspectorState, inspector_ui};
use crate::ui::menu::{FileAction, MenuAction, MenuState, menu_bar_ui, start_dir};
use crate::ui::outputs::{Subject, outputs_ui};
use crate::ui::pipeline::pipeline_ui;
use crate::ui::prefs::{PREFS_KEY, Prefs};
use crate::ui::status::{Progress, status_ui};
use crate::ui::text::GlyphSafe;
use crate::ui::textures::{Coloring, TileSet};
use crate::ui::{CenterTab, Scene, ViewState};

/// What the command line passes to the window.
#[derive(Clone, Debug, Default)]
pub struct GuiOptions {
    /// An MNIST-style folder (`--data`); `None` uses the embedded sample.
    pub data: Option<PathBuf>,
    /// Class names to use instead of the folder's (`--classes`).
    pub classes: Option<ClassNames>,
    /// Seed of the first run.
    pub seed: u64,
}

/// Loads the data the options name. A folder that cannot be read is not fatal: the embedded
/// sample is used and the second value says why, for a banner. Fails only if the embedded sample
/// itself is damaged.
pub fn load_data(options: &GuiOptions) -> Result<(Arc<Mnist>, Option<String>), String> {
    let fallback_note = match &options.data {
        None => None,
        Some(dir) => match load_dir(dir, options.classes) {
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

/// Opens the window and runs until it is closed.
pub fn run_gui(options: GuiOptions) -> Result<(), String> {
    let (data, note) = load_data(&options)?;
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("cnn-stepper")
            .with_app_id("cnn-stepper")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([1024.0, 640.0]),
        ..Default::default()
    };
    let seed = options.seed;
    eframe::run_native(
        "cnn-stepper",
        native,
        Box::new(move |cc| {
            let prefs =
                cc.storage.and_then(|s| s.get_string(PREFS_KEY)).map(|t| Prefs::from_json(&t)).unwrap_or_default();
            let mut app = CnnApp::with_prefs(&cc.egui_ctx, data, seed, prefs);
            if let Some(n) = note {
                app.push_banner(Severity::Error, n);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| format!("could not open the window: {e}"))
}

/// The application state.
pub struct CnnApp {
    worker: Option<Worker>,
    snapshot: Option<Box<Snapshot>>,
    /// Bumped for every snapshot shown, so textures know when to rebuild.
    generation: u64,
    scene: Scene,
    view: ViewState,
    controls: ControlsState,
    curves: Curves,
    banners: Vec<Banner>,
    progress: Option<Progress>,
    /// Commands sent whose snapshot has not come back yet (each command answers with one).
    awaiting: usize,
    evaluating: bool,
    /// The latest answer to each read-only request (evaluation, probe, class evidence, FC1
    /// unit, gradient check), for the teaching panels.
    pub teaching: crate::trainer::TeachingResults,
    no_worker: Option<String>,
    glyphs: GlyphSafe,
    frame_log: Option<FrameLog>,
    zoom: ZoomMode,
    /// Set once the renderer is known: the adapter's name when it draws on the CPU.
    software_renderer: Option<Option<String>>,
    /// The file dialog shown, and what its file is for.
    dialog: Option<(FileAction, FileDialog)>,
    shots: ShotQueue,
    /// Where the feature-map and filter views were drawn last frame (for PNG export).
    view_rects: ViewRects,
    projector: bool,
    last_dir: Option<PathBuf>,
    last_session: Option<PathBuf>,
    /// For what `App::save` needs of the context (the zoom).
    egui_ctx: egui::Context,
    inspector: InspectorState,
    draw: DrawState,
    show_draw: bool,
    probe: ProbeState,
    /// What the digit views show: the snapshot, or a copy with a probed image's tensors.
    display: Option<Box<Snapshot>>,
    display_key: Option<(u64, u64, bool)>,
    display_generation: u64,
    /// The probed image, for the outputs panel's thumbnail.
    probe_thumb: TileSet,
    /// The data the worker trains on: the evaluation view shows test digits from it.
    data: Arc<Mnist>,
    evaluation: EvaluationState,
    fc1: Fc1State,
    health: HealthState,
    magnitudes: Magnitudes,
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
}

#[derive(Clone, Copy, Debug, Default)]
struct ViewRects {
    maps: Option<egui::Rect>,
    filters: Option<egui::Rect>,
}

/// How large the interface is drawn.
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
    pub fn new(ctx: &egui::Context, data: Arc<Mnist>, seed: u64) -> Self {
        Self::with_prefs(ctx, data, seed, Prefs::default())
    }

    /// Like [`Self::new`], then applies what the last run remembered: preset and settings,
    /// zoom, projector mode, help panel and folders. Unusable remembered values are dropped and
    /// a banner says which.
    pub fn with_prefs(ctx: &egui::Context, data: Arc<Mnist>, seed: u64, prefs: Prefs) -> Self {
        let (prefs, dropped) = prefs.sanitized();
        let preset = prefs.preset.unwrap_or(Preset::Recommended);
        let engine = prefs.settings.map_or(ConvEngine::Fast, |s| s.engine);
        let mut app = Self::start(ctx, data, seed, preset, engine);
        for d in dropped {
            app.push_banner(Severity::Info, d);
        }
        if let Some(s) = prefs.settings
            && s != Settings::from_preset(preset, engine)
        {
            app.send(Command::SetSettings(s));
        }
        app.projector = prefs.projector;
        if let Some(v) = prefs.view {
            app.view = v;
        }
        app.last_dir = prefs.last_dir;
        app.last_session = prefs.last_session;
        if let Some(z) = prefs.zoom {
            ctx.set_zoom_factor(z);
            app.zoom = ZoomMode::Manual;
        }
        app
    }

    /// What is remembered for the next start (see [`Prefs`]).
    pub fn prefs(&self) -> Prefs {
        let snap = self.snapshot.as_deref();
        Prefs {
            preset: snap.map(|s| s.preset),
            settings: snap.map(|s| s.pending.unwrap_or(s.settings)),
            projector: self.projector,
            zoom: (self.zoom == ZoomMode::Manual).then(|| self.egui_ctx.zoom_factor()),
            view: Some(self.view.clone()),
            last_dir: self.last_dir.clone(),
            last_session: self.last_session.clone(),
        }
    }

    fn start(ctx: &egui::Context, data: Arc<Mnist>, seed: u64, preset: Preset, engine: ConvEngine) -> Self {
        setup_style(ctx);
        let mut app = Self {
            worker: None,
            snapshot: None,
            generation: 0,
            scene: Scene::default(),
            view: ViewState::default(),
            controls: ControlsState::default(),
            curves: Curves::default(),
            banners: Vec::new(),
            progress: None,
            awaiting: 0,
            evaluating: false,
            teaching: crate::trainer::TeachingResults::default(),
            no_worker: None,
            glyphs: GlyphSafe::default(),
            frame_log: FrameLog::from_env(),
            zoom: ZoomMode::Auto(ctx.zoom_factor()),
            software_renderer: None,
            dialog: None,
            shots: ShotQueue::default(),
            view_rects: ViewRects::default(),
            projector: false,
            last_dir: None,
            last_session: None,
            egui_ctx: ctx.clone(),
            inspector: InspectorState::default(),
            draw: DrawState::default(),
            show_draw: false,
            probe: ProbeState::default(),
            display: None,
            display_key: None,
            display_generation: 0,
            probe_thumb: TileSet::new("probed digit"),
            data: data.clone(),
            evaluation: EvaluationState::default(),
            fc1: Fc1State::default(),
            health: HealthState::default(),
            magnitudes: Magnitudes::default(),
        };
        match Session::new(data, seed, preset, ModelConfig::default(), engine) {
            Ok(session) => {
                let waker_ctx = ctx.clone();
                match Worker::spawn(session, move || waker_ctx.request_repaint()) {
                    Ok(w) => app.worker = Some(w),
                    Err(e) => app.fail_start(format!("Could not start the training thread: {e}")),
                }
            }
            Err(e) => app.fail_start(format!("Could not create the training session: {e}")),
        }
        app
    }

    fn fail_start(&mut self, message: String) {
        self.no_worker = Some("No training session (see the message at the top)".into());
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
        self.snapshot.as_deref()
    }

    /// The curve history.
    pub fn curves(&self) -> &Curves {
        &self.curves
    }

    /// Sends a command to the worker (ignored without one).
    pub fn send(&mut self, command: Command) {
        let Some(worker) = &self.worker else { return };
        match &command {
            // These answer with exactly one snapshot (an error comes with one too).
            Command::StepPhase
            | Command::StepBatch
            | Command::Run
            | Command::Pause
            | Command::RunEpoch
            | Command::Reset { .. }
            | Command::SetSettings(_)
            | Command::SelectSample(_)
            | Command::Save(_)
            | Command::Open(_)
            | Command::Export(_) => self.awaiting += 1,
            Command::Evaluate { .. } => self.evaluating = true,
            _ => {}
        }
        worker.send(command);
    }

    /// Drains the worker's events without blocking: keeps the newest snapshot, accumulates curve
    /// points from all of them, and turns errors into banners.
    pub fn poll(&mut self) {
        let Some(worker) = &self.worker else { return };
        let mut events = Vec::new();
        while let Some(e) = worker.try_recv() {
            events.push(e);
        }
        let alive = worker.is_alive();
        let mut newest = None;
        for event in events {
            match event {
                Event::Snapshot(s) => {
                    self.awaiting = self.awaiting.saturating_sub(1);
                    self.progress = None;
                    if s.curves_reset {
                        // A new run, an opened file or a rewind: the points that follow are the
                        // whole history.
                        self.curves.clear();
                    }
                    for n in &s.notices {
                        self.push_banner(Severity::Info, n.clone());
                    }
                    for p in &s.new_loss_points {
                        self.curves.add_loss(p);
                    }
                    for p in &s.new_accuracy_points {
                        self.curves.add_accuracy(p);
                    }
                    self.magnitudes.absorb(&s);
                    newest = Some(s);
                }
                Event::Progress { what, done, total } => self.progress = Some(Progress { what, done, total }),
                Event::Evaluated(r) => {
                    self.evaluating = false;
                    self.progress = None;
                    self.teaching.evaluation = Some(r.clone());
                    self.teaching.revision += 1;
                    self.curves.add_evaluation(r);
                }
                Event::Probed(p) => {
                    self.probe.in_flight = false;
                    self.probe.answers += 1;
                    self.teaching.probe = Some(p);
                    self.teaching.revision += 1;
                }
                Event::ClassEvidence(e) => {
                    self.teaching.class_evidence = Some(e);
                    self.teaching.revision += 1;
                }
                Event::Fc1Unit(u) => {
                    self.teaching.fc1_unit = Some(u);
                    self.teaching.revision += 1;
                }
                Event::GradientCheck(g) => {
                    self.progress = None;
                    self.teaching.gradient_check = Some(g);
                    self.teaching.revision += 1;
                }
                Event::Error(e) => {
                    self.evaluating = false;
                    // It may be the answer to a teaching view's request (e.g. a drawing the
                    // worker refused): they may ask again.
                    self.probe.in_flight = false;
                    self.fc1.forget_requests();
                    self.health.forget_request();
                    self.push_banner(Severity::Error, e);
                }
            }
        }
        if let Some(s) = newest {
            self.show_snapshot(s);
        }
        if !alive && self.no_worker.is_none() {
            self.no_worker = Some("The training thread has stopped".into());
            self.push_banner(Severity::Error, "The training thread stopped unexpectedly. Restart the program.");
        }
    }

    fn show_snapshot(&mut self, mut s: Box<Snapshot>) {
        if s.running
            && let Some(old) = &self.snapshot
        {
            hold_coherent_views(old, &mut s);
        }
        self.snapshot = Some(s);
        self.generation += 1;
    }

    fn availability(&self) -> Availability {
        let busy = if self.awaiting > 0 || self.evaluating {
            Some(match &self.progress {
                Some(p) => format!("Busy: {} {}/{}", p.what, p.done, p.total),
                None => "Busy with the last command".to_string(),
            })
        } else {
            None
        };
        Availability { no_worker: self.no_worker.clone(), busy }
    }

    /// Space, →, Shift+→, R, and 1 / 2 for the tabs, unless the user is typing in a field.
    fn shortcuts(&mut self, ctx: &egui::Context) -> Vec<Command> {
        if self.dialog.is_some() {
            return Vec::new();
        }
        // Ctrl+S / Ctrl+O work even while a field has the focus, as in any editor.
        let (save, open) =
            ctx.input_mut(|i| (i.consume_key(Modifiers::COMMAND, Key::S), i.consume_key(Modifiers::COMMAND, Key::O)));
        if save {
            self.ask_file(FileAction::SaveSession);
        } else if open {
            self.ask_file(FileAction::OpenSession);
        }
        if ctx.text_edit_focused() {
            return Vec::new();
        }
        let (space, shift_right, right, r, maps, filters) = ctx.input_mut(|i| {
            // Shift+→ first: consume_key ignores extra Shift, so plain → would also match it.
            let shift_right = i.consume_key(Modifiers::SHIFT, Key::ArrowRight);
            (
                i.consume_key(Modifiers::NONE, Key::Space),
                shift_right,
                i.consume_key(Modifiers::NONE, Key::ArrowRight),
                i.consume_key(Modifiers::NONE, Key::R),
                i.consume_key(Modifiers::NONE, Key::Num1),
                i.consume_key(Modifiers::NONE, Key::Num2),
            )
        });
        if maps {
            self.view.tab = CenterTab::FeatureMaps;
        }
        if filters {
            self.view.tab = CenterTab::Filters;
        }
        let more_tabs =
            [(Key::Num3, CenterTab::Fc1), (Key::Num4, CenterTab::Evaluation), (Key::Num5, CenterTab::Health)];
        for (key, tab) in more_tabs {
            if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, key)) {
                self.view.tab = tab;
            }
        }
        let snap = self.snapshot.as_deref();
        let avail = self.availability();
        let mut out = Vec::new();
        if space && avail.can_control(snap).is_ok() {
            out.push(if snap.is_some_and(|s| s.running) { Command::Pause } else { Command::Run });
        }
        if shift_right && avail.can_step(snap).is_ok() {
            out.push(Command::StepBatch);
        } else if right && avail.can_step(snap).is_ok() {
            out.push(Command::StepPhase);
        }
        if r && avail.can_control(snap).is_ok()
            && let Some(s) = snap
        {
            match reset_command(&self.controls, s, s.preset) {
                Ok(c) => out.push(c),
                Err(e) => self.controls.message = Some(e),
            }
        }
        out
    }

    /// Runs `input` through the network and shows it in the digit views (a drawn digit, a test
    /// image). It is probed again after each training step, so its prediction follows training.
    pub fn probe(&mut self, input: ProbeInput) {
        self.probe.showing = true;
        self.probe.source = Some(input.clone());
        self.probe.pending = Some(input);
        self.send_probe();
    }

    /// Back to the batch's selected digit in the digit views.
    pub fn stop_probe(&mut self) {
        self.probe.showing = false;
        self.probe.source = None;
        self.probe.pending = None;
    }

    /// The feature-map pixel the inspector shows, if it is open.
    pub fn inspected(&self) -> Option<crate::trainer::PixelRef> {
        self.inspector.pixel
    }

    /// The probed image shown instead of the batch's digit, if any.
    pub fn shown_probe(&self) -> Option<&Probed> {
        self.teaching.probe.as_deref().filter(|_| self.probe.showing)
    }

    /// One probe at a time: a fast drawing hand makes more images than frames, and only the
    /// newest matters.
    fn send_probe(&mut self) {
        if self.probe.in_flight || self.worker.is_none() {
            return;
        }
        if self.probe.pending.is_none()
            && self.probe.showing
            && let (Some(src), Some(snap), Some(done)) = (&self.probe.source, &self.snapshot, &self.teaching.probe)
            && snap.step != done.step
        {
            self.probe.pending = Some(src.clone());
        }
        if let Some(input) = self.probe.pending.take() {
            self.probe.in_flight = true;
            self.send(Command::Probe(input));
        }
    }

    /// Rebuilds what the digit views show when the snapshot, a probe or the choice changed.
    fn refresh_display(&mut self, ctx: &egui::Context) {
        let key = (self.generation, self.probe.answers, self.probe.showing);
        if self.display_key == Some(key) {
            return;
        }
        self.display_key = Some(key);
        self.display_generation += 1;
        self.display = match (self.snapshot.as_deref(), self.shown_probe()) {
            (Some(snap), Some(p)) => Some(Box::new(with_probe(snap, p))),
            _ => None,
        };
        let shown = self.teaching.probe.as_deref().filter(|_| self.probe.showing);
        if let (Some(p), Some(snap)) = (shown, self.snapshot.as_deref()) {
            // The first channel, as the batch's thumbnails show it.
            let (h, w) = (snap.config.in_height, snap.config.in_width);
            let first = &p.sample.input[..(h * w).min(p.sample.input.len())];
            self.probe_thumb.set(ctx, first, 1, h, w, Coloring::Gray);
        }
    }

    /// Opens the file dialog for `action` (unless there is no trainer to act).
    pub fn ask_file(&mut self, action: FileAction) {
        if self.no_worker.is_some() {
            return;
        }
        let dir = start_dir(self.last_dir.as_deref());
        let step = self.snapshot.as_deref().map_or(0, |s| s.step);
        self.dialog = Some((action, action.dialog(&dir, step, self.last_session.as_deref())));
    }

    /// Whether a file dialog is open.
    pub fn dialog_open(&self) -> bool {
        self.dialog.is_some()
    }

    fn file_chosen(&mut self, action: FileAction, path: PathBuf) {
        self.last_dir = path.parent().map(Path::to_path_buf);
        match action {
            FileAction::OpenSession => {
                self.last_session = Some(path.clone());
                self.send(Command::Open(path));
            }
            FileAction::SaveSession => {
                self.last_session = Some(path.clone());
                self.send(Command::Save(path));
            }
            FileAction::ExportNpz => self.send(Command::Export(Export::Npz(path))),
            FileAction::ExportCurves => self.send(Command::Export(Export::CurvesCsv(path))),
            FileAction::ExportPng(target) => {
                match target {
                    ShotTarget::FeatureMaps => self.view.tab = CenterTab::FeatureMaps,
                    ShotTarget::Filters => self.view.tab = CenterTab::Filters,
                    ShotTarget::Window => {}
                }
                self.shots.request(target, path);
            }
        }
    }

    fn menu_action(&mut self, ctx: &egui::Context, action: MenuAction) {
        match action {
            MenuAction::File(f) => self.ask_file(f),
            MenuAction::SetProjector(on) => {
                self.projector = on;
                self.zoom = ZoomMode::Auto(ctx.zoom_factor());
            }
            MenuAction::AutoZoom => self.zoom = ZoomMode::Auto(ctx.zoom_factor()),
            MenuAction::SetHelp(on) => self.view.show_help = on,
            MenuAction::SetDraw(on) => self.show_draw = on,
            MenuAction::ResetLayout => {
                // Panel sizes and scroll positions live in egui's memory, which eframe saves.
                ctx.memory_mut(|m| {
                    m.reset_areas();
                    m.data = Default::default();
                });
                self.projector = false;
                self.show_draw = false;
                self.inspector.pixel = None;
                self.view = ViewState::default();
                self.zoom = ZoomMode::Auto(ctx.zoom_factor());
                ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(egui::vec2(1280.0, 800.0)));
            }
            MenuAction::Quit => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
        }
    }

    /// The pixel inspector, a window over the others while a pixel is chosen.
    fn inspector_window(&mut self, ctx: &egui::Context) {
        let Some(at) = self.inspector.pixel else { return };
        let result: Result<PixelInspection, InspectError> = match self.display.as_deref().or(self.snapshot.as_deref()) {
            Some(s) => s.inspect_pixel(at),
            None => return,
        };
        let mut keep = true;
        egui::Window::new("Pixel inspector")
            .id(egui::Id::unique("pixel inspector"))
            .default_pos(egui::pos2(360.0, 140.0))
            .resizable(false)
            .show(ctx, |ui| keep = inspector_ui(ui, &mut self.inspector, &result, self.view.color_map));
        if !keep {
            self.inspector.pixel = None;
        }
    }

    /// The draw-a-digit window: the canvas, and the network's answer as bars.
    fn draw_window(&mut self, ctx: &egui::Context) {
        if !self.show_draw {
            return;
        }
        let mut open = true;
        let mut drawn = None;
        // Borrowed field by field, not cloned: this runs every frame the window is open.
        let answer = self.teaching.probe.as_deref().filter(|p| p.image == ImageId::Drawn);
        let names = self.snapshot.as_deref().map_or(&[][..], |s| &s.class_names[..]);
        let draw = &mut self.draw;
        egui::Window::new("Draw a digit")
            .id(egui::Id::unique("draw a digit"))
            .open(&mut open)
            .default_pos(egui::pos2(950.0, 110.0))
            .resizable(false)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    crate::ui::help::help_button_ui(ui, HelpTopic::Draw);
                    ui.label(
                        egui::RichText::new("Draw with the mouse; it is centred and scaled like MNIST's digits.")
                            .small(),
                    );
                });
                drawn = draw_canvas_ui(ui, draw);
                ui.separator();
                draw_answer_ui(ui, answer.filter(|_| !draw.is_empty()), names);
            });
        if let Some(image) = drawn {
            if self.draw.is_empty() {
                self.stop_probe();
            } else {
                self.probe(ProbeInput::Pixels(image));
            }
        }
        if !open {
            self.show_draw = false;
        }
    }

    /// Width in points (at zoom 1) the layout is designed for: the zoom makes the window that
    /// wide. Projector mode designs for a narrower window, so everything is drawn larger.
    fn design_width(&self) -> f32 {
        if self.projector { 1150.0 } else { 1360.0 }
    }

    fn auto_zoom(&mut self, ctx: &egui::Context) {
        let ZoomMode::Auto(ours) = self.zoom else { return };
        let zoom = ctx.zoom_factor();
        if (zoom - ours).abs() > 1e-3 {
            // Someone else changed it: Ctrl +/- (handled by eframe). Leave it to the user.
            self.zoom = ZoomMode::Manual;
            return;
        }
        let width = ctx.content_rect().width() * zoom;
        let wanted = (width / self.design_width()).clamp(1.0, 2.0);
        if (wanted - zoom).abs() > 0.03 {
            ctx.set_zoom_factor(wanted);
            self.zoom = ZoomMode::Auto(wanted);
        }
    }

    /// Draws the whole window into `ui` (the root of the viewport).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.auto_zoom(&ctx);
        let mut commands = self.shortcuts(&ctx);
        let menu_state = MenuState {
            projector: self.projector,
            help: self.view.show_help,
            draw: self.show_draw,
            zoom: ctx.zoom_factor(),
            manual_zoom: self.zoom == ZoomMode::Manual,
            files_disabled: self.no_worker.is_some().then_some("No training session (see the message at the top)"),
        };
        let menu = egui::Panel::top("menu").frame(bar_frame(ui)).show(ui, |ui| menu_bar_ui(ui, menu_state)).inner;
        if let Some(action) = menu {
            self.menu_action(&ctx, action);
        }
        if let Some((action, dialog)) = &mut self.dialog {
            let action = *action;
            match dialog.ui(&ctx) {
                DialogOutcome::Open => {}
                DialogOutcome::Cancelled => self.dialog = None,
                DialogOutcome::Chosen(path) => {
                    self.dialog = None;
                    self.file_chosen(action, path);
                }
            }
        }
        if let Some(target) = self.shots.waiting_for() {
            match target {
                ShotTarget::FeatureMaps => self.view.tab = CenterTab::FeatureMaps,
                ShotTarget::Filters => self.view.tab = CenterTab::Filters,
                ShotTarget::Window => {}
            }
        }
        self.send_probe();
        self.refresh_display(&ctx);
        if let Some(s) = self.display.as_deref().or(self.snapshot.as_deref()) {
            self.scene.refresh(&ctx, s, self.display_generation, &self.view);
        }
        let snap = self.snapshot.as_deref();
        // The digit views: the batch's selected digit, or a probed image.
        let shown = self.display.as_deref().or(snap);
        let avail = self.availability();

        if !self.banners.is_empty() {
            egui::Panel::top("banners").frame(bar_frame(ui)).show(ui, |ui| {
                ui.add_space(4.0);
                banner_ui(ui, &mut self.banners);
            });
        }
        egui::Panel::top("controls").frame(bar_frame(ui)).show(ui, |ui| {
            ui.add_space(4.0);
            commands.extend(controls_ui(ui, &mut self.controls, snap, &avail));
            ui.add_space(2.0);
        });
        egui::Panel::bottom("status").frame(bar_frame(ui)).show(ui, |ui| {
            let software = self.software_renderer.as_ref().and_then(|s| s.as_deref());
            status_ui(ui, snap, self.progress.as_ref(), software);
        });
        egui::Panel::left("pipeline").frame(bar_frame(ui)).default_size(340.0).size_range(260.0..=520.0).show(
            ui,
            |ui| {
                pipeline_ui(ui, snap, &mut self.view, &mut self.glyphs);
            },
        );
        if self.view.show_help {
            // A window, not a side panel: a fourth column would squeeze the maps to nothing on
            // a 1280-pixel screen, and a teacher can park a window wherever it hides least.
            let mut open = true;
            egui::Window::new("Help")
                .id(egui::Id::unique("help window"))
                .open(&mut open)
                .default_pos(egui::pos2(880.0, 120.0))
                .default_width(380.0)
                .default_height(560.0)
                .vscroll(true)
                .show(&ctx, |ui| help_ui(ui, snap, &self.view));
            if !open {
                self.view.show_help = false;
            }
        }
        let grads = self.scene.maps_are_gradients;
        let probe = self.teaching.probe.as_deref().filter(|_| self.probe.showing);
        let subject = match probe {
            Some(p) => Subject::Probe { caption: probe_caption(p), label: p.label },
            None => Subject::Batch,
        };
        let digits = if probe.is_some() { &self.probe_thumb } else { &self.scene.batch };
        egui::Panel::right("outputs and curves")
            .frame(bar_frame(ui))
            .default_size(350.0)
            .size_range(280.0..=640.0)
            .show(ui, |ui| {
                outputs_ui(ui, shown, digits, &self.view, grads, &subject);
                ui.separator();
                let can_eval = avail.can_step(snap).is_ok();
                if let Some(c) = curves_ui(ui, &self.curves, can_eval) {
                    commands.push(c);
                }
            });
        let mut stop_probe = false;
        let mut clicked_pixel = None;
        let central = egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT);
        egui::CentralPanel::default().frame(central).show(ui, |ui| {
            if let Some(c) = batch_ui(ui, snap, &self.scene.batch) {
                if matches!(c, Command::SelectSample(_)) {
                    stop_probe = true;
                }
                commands.push(c);
            }
            ui.separator();
            if let Some(p) = probe {
                ui.horizontal_wrapped(|ui| {
                    // The button first: the line may run under a window on a narrow screen.
                    if ui.button("Back to the batch").on_hover_text("Show the batch's selected digit again").clicked() {
                        stop_probe = true;
                    }
                    let text = format!(
                        "Showing {}: predicted {} ({:.0}%), weights after step {}",
                        probe_caption(p).to_lowercase(),
                        snap.and_then(|s| s.class_names.get(p.predicted))
                            .cloned()
                            .unwrap_or_else(|| p.predicted.to_string()),
                        p.confidence * 100.0,
                        p.step
                    );
                    ui.label(egui::RichText::new(text).strong().color(ui.visuals().warn_fg_color));
                });
            }
            ui.horizontal(|ui| {
                let tab = |t: &str| egui::RichText::new(t).size(15.0).strong();
                with_help(
                    ui.selectable_value(&mut self.view.tab, CenterTab::FeatureMaps, tab("Feature maps")),
                    HelpTopic::FeatureMaps,
                );
                with_help(
                    ui.selectable_value(&mut self.view.tab, CenterTab::Filters, tab("Filters")),
                    HelpTopic::Filters,
                );
                with_help(ui.selectable_value(&mut self.view.tab, CenterTab::Fc1, tab("FC1")), HelpTopic::Fc1);
                with_help(
                    ui.selectable_value(&mut self.view.tab, CenterTab::Evaluation, tab("Evaluation")),
                    HelpTopic::Evaluation,
                );
                with_help(
                    ui.selectable_value(&mut self.view.tab, CenterTab::Health, tab("Backprop check")),
                    HelpTopic::Health,
                );
            });
            // The view's own choices on a line of their own: the tabs fill a 1280-pixel row.
            match self.view.tab {
                CenterTab::FeatureMaps => {
                    ui.horizontal(|ui| map_mode_ui(ui, &mut self.view));
                }
                CenterTab::Filters => {
                    ui.horizontal(|ui| filter_mode_ui(ui, &mut self.view));
                }
                CenterTab::Fc1 | CenterTab::Evaluation | CenterTab::Health => {}
            }
            // The view with its legend, for "Save … as PNG".
            let view = ui.scope(|ui| match self.view.tab {
                CenterTab::FeatureMaps => {
                    if let Some(p) = feature_maps_ui(ui, shown, &self.scene, &self.view) {
                        clicked_pixel = Some(p);
                    }
                }
                CenterTab::Filters => filters_ui(ui, snap, &self.scene, &self.view),
                CenterTab::Fc1 => {
                    self.fc1.color_map = self.view.color_map;
                    let (unit, evidence) = (self.teaching.fc1_unit.as_deref(), self.teaching.class_evidence.as_deref());
                    egui::ScrollArea::vertical().id_salt("fc1 view").show(ui, |ui| {
                        commands.extend(fc1_ui(ui, &mut self.fc1, snap, unit, evidence));
                    });
                }
                CenterTab::Evaluation => {
                    let progress = self.progress.as_ref().filter(|p| p.what == "evaluating").map(|p| (p.done, p.total));
                    let step = snap.map_or(0, |s| s.step);
                    let result = self.teaching.evaluation.as_ref();
                    let can = avail.can_step(snap).map(|_| ());
                    egui::ScrollArea::vertical().id_salt("evaluation view").show(ui, |ui| {
                        let test = &self.data.test;
                        commands.extend(evaluation_ui(ui, &mut self.evaluation, result, test, step, progress, can));
                    });
                }
                CenterTab::Health => {
                    let check = self.teaching.gradient_check.as_deref();
                    let can = avail.can_step(snap).map(|_| ());
                    egui::ScrollArea::vertical().id_salt("backprop check view").show(ui, |ui| {
                        commands.extend(health_ui(ui, &mut self.health, snap, check, &self.magnitudes, can));
                    });
                }
            });
            // What overflows the panel (a long legend row) is not on screen: cut it off.
            let rect = Some(view.response.rect.intersect(ui.clip_rect()));
            self.view_rects = match self.view.tab {
                CenterTab::FeatureMaps => ViewRects { maps: rect, filters: None },
                CenterTab::Filters => ViewRects { maps: None, filters: rect },
                CenterTab::Fc1 | CenterTab::Evaluation | CenterTab::Health => ViewRects::default(),
            };
        });
        if let Some(p) = clicked_pixel {
            self.inspector.open(p);
        }
        self.inspector_window(&ctx);
        self.draw_window(&ctx);
        if stop_probe {
            self.stop_probe();
        }
        for c in commands {
            match c {
                // Shown everywhere until the user goes back to the batch.
                Command::Probe(input) => self.probe(input),
                c => self.send(c),
            }
        }
        let rects = self.view_rects;
        self.shots.after_frame(&ctx, |t| match t {
            ShotTarget::Window => None,
            ShotTarget::FeatureMaps => rects.maps,
            ShotTarget::Filters => rects.filters,
        });
    }
}

impl eframe::App for CnnApp {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        if self.software_renderer.is_none()
            && let Some(rs) = frame.wgpu_render_state()
        {
            let info = rs.adapter.get_info();
            let cpu = info.device_type == eframe::wgpu::DeviceType::Cpu;
            if self.frame_log.is_some() {
                eprintln!("renderer: {} ({:?}, {:?})", info.name, info.backend, info.device_type);
            }
            if cpu && let Some(w) = &self.worker {
                // The renderer needs a core of its own: with the engine on both, each frame
                // preempts one of its threads and the other waits for it (measured under
                // Xvfb: 505 images/s and 18.8 fps with two engine threads, 874 and 20.2 with one).
                w.send(Command::SetComputeThreads(1));
            }
            self.software_renderer = Some(cpu.then_some(info.name));
        }
        if let Some(log) = &mut self.frame_log {
            let snap = self.snapshot.as_deref();
            log.frame(frame.info().cpu_usage, snap.is_some_and(|s| s.running), snap.map_or(0, |s| s.step));
            if log.continuous {
                ctx.request_repaint();
            }
        }
        self.poll();
        for result in self.shots.poll() {
            match result {
                Ok(m) => self.push_banner(Severity::Info, m),
                Err(e) => self.push_banner(Severity::Error, e),
            }
        }
        if self.snapshot.as_deref().is_some_and(|s| s.running) {
            // The worker's snapshots wake us ~30 times a second; this keeps the frame rate up
            // if one is late (e.g. a slow naive phase), without spinning when paused.
            ctx.request_repaint_after(Duration::from_millis(33));
        }
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

/// A panel frame with margins but no fill (see [`eframe::App::clear_color`]).
fn bar_frame(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::side_top_panel(ui.style()).fill(egui::Color32::TRANSPARENT)
}

/// `snap` with the probed image's tensors in place of the selected digit's: the forward pass is
/// complete (so the views show activations), there are no gradients, and the weights are the
/// current ones (a probe runs on the weights in force, not on those of a half-done step).
fn with_probe(snap: &Snapshot, probe: &Probed) -> Snapshot {
    let mut shown = snap.clone();
    shown.sample = probe.sample.clone();
    shown.sample.index = 0;
    shown.filters.before_update = None;
    if let Some(i) = snap.phases.iter().position(|p| *p == crate::engine::Phase::Forward(crate::engine::Layer::Loss)) {
        shown.phases_done = i + 1;
    }
    shown
}

/// The class probabilities of a drawn digit, the most probable marked. Before there is an
/// answer the bars are empty but present, so the window does not jump when it arrives.
fn draw_answer_ui(ui: &mut egui::Ui, p: Option<&Probed>, names: &[String]) {
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let (headline, detail) = match p {
        Some(p) => (
            format!("The network says {} ({:.0}%)", name(p.predicted), p.confidence * 100.0),
            format!("with the weights after step {}", p.step),
        ),
        None => ("Draw a digit above".to_string(), "the network's answer appears here".to_string()),
    };
    ui.label(egui::RichText::new(headline).size(18.0).strong());
    ui.label(egui::RichText::new(detail).small().weak());
    egui::Grid::new("drawn digit probabilities").num_columns(4).spacing(egui::vec2(6.0, 3.0)).show(ui, |ui| {
        for c in 0..names.len() {
            let prob = p.and_then(|p| p.sample.probs.get(c)).copied().unwrap_or(0.0);
            ui.label(egui::RichText::new(name(c)).monospace());
            let bar = egui::ProgressBar::new(prob).desired_width(100.0).text(format!("{:.1}%", prob * 100.0));
            let top = p.is_some_and(|p| p.predicted == c);
            ui.add(if top { bar.fill(ui.visuals().selection.bg_fill) } else { bar });
            if c % 2 == 1 {
                ui.end_row();
            }
        }
    });
}

/// What a probed image is called in the views.
fn probe_caption(p: &Probed) -> String {
    match p.image {
        ImageId::Drawn => "Your drawing".to_string(),
        ImageId::Test(i) => format!("Test image {}", crate::ui::thousands(i as u64)),
        ImageId::Batch { position, .. } => format!("Digit {} of the batch", position + 1),
    }
}

/// While running, a snapshot may land after any phase, so many of its tensors are often not
/// computed yet in its step, and the batch it shows may have no predictions yet. Rather than
/// blank views flickering 30 times a second, or a mix of two batches (one digit's image with
/// another's probabilities), the batch and digit views keep the last snapshot whose batch had
/// been through the loss; within one step, tensors not recomputed yet are taken from earlier
/// snapshots of the same step.
fn hold_coherent_views(old: &Snapshot, new: &mut Snapshot) {
    if new.batch.probs.is_empty() && !old.batch.probs.is_empty() {
        new.batch.clone_from(&old.batch);
        new.sample.clone_from(&old.sample);
        new.loss = old.loss;
    } else if new.batch.indices == old.batch.indices && new.sample.index == old.sample.index {
        fill_gaps(&old.sample, &mut new.sample);
    }
    // The last gradient computed, even of an earlier step, beats an empty filter view.
    let f = &mut new.filters;
    for (n, o) in [(&mut f.conv1_grad, &old.filters.conv1_grad), (&mut f.conv2_grad, &old.filters.conv2_grad)] {
        if n.is_empty() {
            n.clone_from(o);
        }
    }
}

/// Copies the tensors `new` lacks from `old` (the same digit in the same step).
fn fill_gaps(old: &SampleView, new: &mut SampleView) {
    let pairs: [(&mut Vec<f32>, &Vec<f32>); 15] = [
        (&mut new.conv1, &old.conv1),
        (&mut new.relu1, &old.relu1),
        (&mut new.conv2, &old.conv2),
        (&mut new.relu_c2, &old.relu_c2),
        (&mut new.fc1, &old.fc1),
        (&mut new.relu2, &old.relu2),
        (&mut new.scores, &old.scores),
        (&mut new.probs, &old.probs),
        (&mut new.d_scores, &old.d_scores),
        (&mut new.d_relu2, &old.d_relu2),
        (&mut new.d_fc1, &old.d_fc1),
        (&mut new.d_relu_c2, &old.d_relu_c2),
        (&mut new.d_conv2, &old.d_conv2),
        (&mut new.d_relu1, &old.d_relu1),
        (&mut new.d_conv1, &old.d_conv1),
    ];
    for (n, o) in pairs {
        if n.is_empty() {
            n.clone_from(o);
        }
    }
}

fn setup_style(ctx: &egui::Context) {
    use egui::{FontFamily, FontId, TextStyle};
    ctx.all_styles_mut(|style| {
        // A notch larger than egui's defaults: the window is read from the back of a classroom.
        style.text_styles = [
            (TextStyle::Heading, FontId::new(20.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(14.0, FontFamily::Proportional)),
            (TextStyle::Button, FontId::new(14.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(13.0, FontFamily::Monospace)),
            (TextStyle::Small, FontId::new(11.5, FontFamily::Proportional)),
        ]
        .into();
        style.spacing.item_spacing = egui::vec2(8.0, 5.0);
        style.spacing.button_padding = egui::vec2(8.0, 3.0);
    });
}

/// Frame timing, on when `CNN_STEPPER_FRAME_LOG=1`: prints the frame rate and the slowest frame
/// every 5 seconds to stderr, and a summary at exit. `CNN_STEPPER_FRAME_LOG=continuous` also
/// repaints without pause and counts every frame, paused or not, to measure what drawing alone
/// costs.
struct FrameLog {
    continuous: bool,
    last: Option<Instant>,
    window_start: Instant,
    window: FrameStats,
    total: FrameStats,
}

#[derive(Clone, Copy, Default)]
struct FrameStats {
    frames: u64,
    secs: f64,
    max_interval_secs: f64,
    cpu_secs: f64,
    max_cpu_secs: f64,
}

impl FrameStats {
    fn describe(&self) -> String {
        let fps = if self.secs > 0.0 { self.frames as f64 / self.secs } else { 0.0 };
        let mean_cpu = if self.frames > 0 { self.cpu_secs / self.frames as f64 } else { 0.0 };
        format!(
            "{} frames in {:.1} s = {:.1} fps; longest gap between frames {:.1} ms; \
             CPU per frame mean {:.1} ms, max {:.1} ms (while running)",
            self.frames,
            self.secs,
            fps,
            self.max_interval_secs * 1e3,
            mean_cpu * 1e3,
            self.max_cpu_secs * 1e3
        )
    }
}

impl FrameLog {
    fn from_env() -> Option<Self> {
        let mode = std::env::var("CNN_STEPPER_FRAME_LOG").ok()?;
        (mode == "1" || mode == "continuous").then(|| Self {
            continuous: mode == "continuous",
            last: None,
            window_start: Instant::now(),
            window: FrameStats::default(),
            total: FrameStats::default(),
        })
    }

    /// Records a frame. Only frames while training runs count: when paused the window sleeps
    /// until something happens, and those gaps are not slow frames.
    fn frame(&mut self, cpu_secs: Option<f32>, running: bool, step: u64) {
        let running = running || self.continuous;
        let now = Instant::now();
        if !running {
            self.last = None;
        } else if let Some(last) = self.last {
            let dt = (now - last).as_secs_f64();
            let cpu = cpu_secs.unwrap_or(0.0) as f64;
            for s in [&mut self.window, &mut self.total] {
                s.frames += 1;
                s.secs += dt;
                s.max_interval_secs = s.max_interval_secs.max(dt);
                s.cpu_secs += cpu;
                s.max_cpu_secs = s.max_cpu_secs.max(cpu);
            }
        }
        if running {
            self.last = Some(now);
        }
        if now - self.window_start >= Duration::from_secs(5) {
            if self.window.frames > 0 {
                eprintln!("frame log, last 5 s: {}", self.window.describe());
                eprintln!("frame log, so far: {}", self.total.describe());
            }
            // For endurance runs: memory must stay flat over an hour of training.
            if let Some(kb) = resident_kb() {
                eprintln!("frame log, memory: resident {:.1} MB at step {step}", kb as f64 / 1024.0);
            }
            self.window = FrameStats::default();
            self.window_start = now;
        }
    }

    fn total_summary(&self) -> String {
        self.total.describe()
    }
}

/// Resident memory of this process in kB (Linux; `None` elsewhere).
fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    fn session() -> Session {
        let names = ClassNames::Digits.names();
        let split = |n: usize| Dataset::new(vec![0; n * 28 * 28], (0..n as u8).collect(), 28, 28, names.clone());
        let data = Mnist { train: split(8).unwrap(), test: split(8).unwrap(), source: "tiny".into() };
        let mut s =
            Session::new(Arc::new(data), 1, Preset::Recommended, ModelConfig::default(), ConvEngine::Fast).unwrap();
        let mut settings = s.settings();
        settings.batch_size = 4;
        s.set_settings(settings).unwrap();
        s
    }

    fn running(mut snap: Snapshot) -> Snapshot {
        snap.running = true;
        snap
    }

    #[test]
    fn while_running_a_batch_without_predictions_keeps_the_last_one_with_them() {
        let mut s = session();
        s.step_batch(&mut |_, _| {}).unwrap();
        let old = running(s.snapshot());
        s.step_phase(&mut |_, _| {}).unwrap(); // forward conv1 of a new batch
        let mut new = running(s.snapshot());
        assert!(new.batch.probs.is_empty());
        hold_coherent_views(&old, &mut new);
        assert_eq!(new.batch, old.batch, "the digits shown match their predictions");
        assert_eq!(new.sample, old.sample);
        assert_eq!(new.step, 1, "the counters are the new snapshot's");
    }

    #[test]
    fn within_a_step_missing_tensors_come_from_earlier_snapshots() {
        let mut s = session();
        for _ in 0..12 {
            s.step_phase(&mut |_, _| {}).unwrap(); // up to backward conv2
        }
        let old = running(s.snapshot());
        assert!(!old.sample.d_relu1.is_empty());
        let mut new = old.clone();
        new.sample.d_relu1.clear();
        hold_coherent_views(&old, &mut new);
        assert_eq!(new.sample.d_relu1, old.sample.d_relu1);
    }
}
