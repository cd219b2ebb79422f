//! The eframe application: owns the worker handle and what the window shows (latest snapshot,
//! curves, textures, selections), drains worker events in [`eframe::App::logic`] and lays out
//! the panels of [`crate::ui`] in [`eframe::App::ui`].
//!
//! Threads: the worker thread trains and sends events; its waker calls
//! `ctx.request_repaint()`, so the window sleeps while paused and repaints about 30 times a
//! second while running (the worker's snapshot rate). Nothing here blocks on the worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui::{self, Key, Modifiers};

use crate::data::{ClassNames, Mnist, embedded, load_dir};
use crate::engine::{ConvEngine, ModelConfig, Preset};
use crate::trainer::{Command, Event, SampleView, Session, Snapshot, Worker};
use crate::ui::banner::{Banner, Severity, banner_ui};
use crate::ui::batch::batch_ui;
use crate::ui::controls::{Availability, ControlsState, controls_ui, reset_command};
use crate::ui::curves::{Curves, curves_ui};
use crate::ui::feature_maps::{feature_maps_ui, map_mode_ui};
use crate::ui::filters::{filter_mode_ui, filters_ui};
use crate::ui::outputs::outputs_ui;
use crate::ui::pipeline::pipeline_ui;
use crate::ui::status::{Progress, status_ui};
use crate::ui::text::GlyphSafe;
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
            let mut app = CnnApp::new(&cc.egui_ctx, data, seed);
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
    no_worker: Option<String>,
    glyphs: GlyphSafe,
    frame_log: Option<FrameLog>,
    zoom: ZoomMode,
    /// Set once the renderer is known: the adapter's name when it draws on the CPU.
    software_renderer: Option<Option<String>>,
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
            no_worker: None,
            glyphs: GlyphSafe::default(),
            frame_log: FrameLog::from_env(),
            zoom: ZoomMode::Auto(ctx.zoom_factor()),
            software_renderer: None,
        };
        match Session::new(data, seed, Preset::Recommended, ModelConfig::default(), ConvEngine::Fast) {
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
            | Command::SelectSample(_) => self.awaiting += 1,
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
                    newest = Some(s);
                }
                Event::Progress { what, done, total } => self.progress = Some(Progress { what, done, total }),
                Event::Evaluated(r) => {
                    self.evaluating = false;
                    self.progress = None;
                    self.curves.add_evaluation(r);
                }
                Event::Error(e) => {
                    self.evaluating = false;
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

    fn auto_zoom(&mut self, ctx: &egui::Context) {
        let ZoomMode::Auto(ours) = self.zoom else { return };
        let zoom = ctx.zoom_factor();
        if (zoom - ours).abs() > 1e-3 {
            // Someone else changed it: Ctrl +/- (handled by eframe). Leave it to the user.
            self.zoom = ZoomMode::Manual;
            return;
        }
        // Width in points at zoom 1; the layout is designed for about 1360 of them.
        let width = ctx.content_rect().width() * zoom;
        let wanted = (width / 1360.0).clamp(1.0, 1.6);
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
        if let Some(s) = &self.snapshot {
            self.scene.refresh(&ctx, s, self.generation, &self.view);
        }
        let snap = self.snapshot.as_deref();
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
        let grads = self.scene.maps_are_gradients;
        egui::Panel::right("outputs and curves")
            .frame(bar_frame(ui))
            .default_size(350.0)
            .size_range(280.0..=640.0)
            .show(ui, |ui| {
                outputs_ui(ui, snap, &self.scene.batch, &self.view, grads);
                ui.separator();
                let can_eval = avail.can_step(snap).is_ok();
                if let Some(c) = curves_ui(ui, &self.curves, can_eval) {
                    commands.push(c);
                }
            });
        let central = egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT);
        egui::CentralPanel::default().frame(central).show(ui, |ui| {
            if let Some(c) = batch_ui(ui, snap, &self.scene.batch) {
                commands.push(c);
            }
            ui.separator();
            ui.horizontal(|ui| {
                let tab = |t: &str| egui::RichText::new(t).size(15.0).strong();
                ui.selectable_value(&mut self.view.tab, CenterTab::FeatureMaps, tab("Feature maps"));
                ui.selectable_value(&mut self.view.tab, CenterTab::Filters, tab("Filters"));
                ui.separator();
                match self.view.tab {
                    CenterTab::FeatureMaps => map_mode_ui(ui, &mut self.view),
                    CenterTab::Filters => filter_mode_ui(ui, &mut self.view),
                }
            });
            match self.view.tab {
                CenterTab::FeatureMaps => feature_maps_ui(ui, snap, &self.scene, &self.view),
                CenterTab::Filters => filters_ui(ui, snap, &self.scene, &self.view),
            }
        });
        for c in commands {
            self.send(c);
        }
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
            self.software_renderer = Some(cpu.then_some(info.name));
        }
        if let Some(log) = &mut self.frame_log {
            log.frame(frame.info().cpu_usage, self.snapshot.as_deref().is_some_and(|s| s.running));
            if log.continuous {
                ctx.request_repaint();
            }
        }
        self.poll();
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
    fn frame(&mut self, cpu_secs: Option<f32>, running: bool) {
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
            self.window = FrameStats::default();
            self.window_start = now;
        }
    }

    fn total_summary(&self) -> String {
        self.total.describe()
    }
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
