//! What the user asks for, turned into worker commands: the commands the panels and tabs
//! return, the menu's actions, the files chosen in the dialog, and the probe of a drawn digit or
//! a test image. Every command goes out through [`CnnApp::send`], which records the answer it
//! waits for.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::{CnnApp, ZoomMode};
use crate::trainer::{Command, Export, ProbeInput};
use crate::ui::ViewState;
use crate::ui::panels::menu::{FileAction, MenuAction, start_dir};

impl CnnApp {
    /// Sends a command to the worker (ignored without one).
    pub fn send(&mut self, command: Command) {
        if self.link.worker.is_none() {
            return;
        }
        self.link.in_flight.sent(&command);
        self.lesson_sent(&command);
        if let Some(worker) = &self.link.worker {
            worker.send(command);
        }
    }

    /// Sends what the panels, tabs and shortcuts returned this frame.
    pub(super) fn send_all(&mut self, commands: Vec<Command>) {
        for c in commands {
            match c {
                // Shown everywhere until the user goes back to the batch.
                Command::Probe(input) => self.probe(input),
                c => self.send(c),
            }
        }
    }

    /// Runs `input` through the network and shows it in the digit views (a drawn digit, a test
    /// image). It is probed again after each training step, so its prediction follows training.
    pub fn probe(&mut self, input: ProbeInput) {
        self.probe.file = None;
        self.probe.showing = true;
        self.probe.source = Some(input.clone());
        self.probe.pending = Some(input);
        self.send_probe();
    }

    /// Back to the batch's selected digit in the digit views.
    pub fn stop_probe(&mut self) {
        self.probe.file = None;
        self.probe.showing = false;
        self.probe.source = None;
        self.probe.pending = None;
    }

    /// One probe at a time: a fast drawing hand makes more images than frames, and only the
    /// newest matters.
    pub(super) fn send_probe(&mut self) {
        if self.probe.in_flight || self.link.worker.is_none() {
            return;
        }
        if self.probe.pending.is_none()
            && self.probe.showing
            && let (Some(src), Some(snap), Some(done)) =
                (&self.probe.source, &self.results.snapshot, &self.results.teaching.probe)
            && snap.step != done.step
        {
            self.probe.pending = Some(src.clone());
        }
        if let Some(input) = self.probe.pending.take() {
            self.probe.in_flight = true;
            self.send(Command::Probe(input));
        }
    }

    /// Opens the file dialog for `action` (unless there is no trainer to act).
    pub fn ask_file(&mut self, action: FileAction) {
        if self.link.no_worker.is_some() {
            return;
        }
        let dir = start_dir(self.files.last_dir.as_deref());
        let step = self.results.snapshot.as_deref().map_or(0, |s| s.step);
        self.files.dialog = Some((action, action.dialog(&dir, step, self.files.last_session.as_deref())));
    }

    /// Does what the file was chosen for.
    pub(super) fn file_chosen(&mut self, action: FileAction, path: PathBuf) {
        self.files.last_dir = path.parent().map(Path::to_path_buf);
        match action {
            FileAction::DataFolder => {
                if let Some(d) = &mut self.data_switch.dialog {
                    d.set_folder(&path);
                }
            }
            FileAction::ClassifyImage => self.classify_file(&path),
            FileAction::OpenLesson => self.open_lesson_file(&path),
            FileAction::OpenSession => {
                self.files.last_session = Some(path.clone());
                self.send(Command::Open(path));
            }
            FileAction::SaveSession => {
                self.files.last_session = Some(path.clone());
                self.send(Command::Save(path));
            }
            FileAction::ExportNpz => self.send(Command::Export(Export::Npz(path))),
            FileAction::ExportCurves => self.send(Command::Export(Export::CurvesCsv(path))),
            FileAction::ExportPng(target) => {
                if let Some(tab) = target.tab() {
                    self.view.tab = tab;
                }
                self.files.shots.request(target, path, self.files.png_scale.max(1));
            }
        }
    }

    /// Does what was chosen in the menu bar.
    pub(super) fn menu_action(&mut self, ctx: &egui::Context, action: MenuAction) {
        match action {
            MenuAction::File(f) => self.ask_file(f),
            MenuAction::OpenData => self.open_data_window(),
            MenuAction::SetProjector(on) => {
                self.zoom.projector = on;
                self.zoom.mode = ZoomMode::Auto(ctx.zoom_factor());
            }
            MenuAction::AutoZoom => self.zoom.mode = ZoomMode::Auto(ctx.zoom_factor()),
            MenuAction::SetHelp(on) => self.view.show_help = on,
            MenuAction::SetDraw(on) => self.windows.show_draw = on,
            MenuAction::SetNetwork(on) => self.windows.show_network = on,
            MenuAction::SetPipeline(on) => self.view.show_pipeline = on,
            MenuAction::SetOutputs(on) => self.view.show_outputs = on,
            MenuAction::SetKeys(on) => self.windows.show_keys = on,
            MenuAction::SetPlayground(on) => self.windows.show_playground = on,
            MenuAction::SetPngScale(k) => self.files.png_scale = k,
            MenuAction::ResetLayout => {
                // Panel sizes and scroll positions live in egui's memory, which eframe saves.
                ctx.memory_mut(|m| {
                    m.reset_areas();
                    m.data = Default::default();
                });
                self.zoom.projector = false;
                self.windows.show_draw = false;
                self.windows.show_network = false;
                self.windows.inspector.pixel = None;
                self.view = ViewState::default();
                self.zoom.mode = ZoomMode::Auto(ctx.zoom_factor());
                ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(egui::vec2(1280.0, 800.0)));
            }
            MenuAction::BuiltInLesson(name) => self.start_lesson_named(name),
            MenuAction::Quit => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
        }
    }
}
