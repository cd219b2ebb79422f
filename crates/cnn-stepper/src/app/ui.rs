//! Drawing the window, region by region: the menu bar and the file dialog, the bars at the top
//! (banners, controls), the side panels (status line, pipeline, outputs and curves, and the
//! help window), the centre (batch strip, tab row and the tab in front), and the floating
//! windows (pixel inspector, draw a digit). Each region calls the panels of [`crate::ui`] and
//! collects the commands they return; they are sent once the frame is laid out.

use eframe::egui;

use super::{CnnApp, ZoomMode};
use crate::trainer::{Command, ImageId, InspectError, Inspection, PixelRef, ProbeInput, Probed};
use crate::ui::panels::banner::banner_ui;
use crate::ui::panels::batch::batch_ui;
use crate::ui::panels::controls::{Availability, controls_ui};
use crate::ui::panels::curves::curves_ui;
use crate::ui::panels::lesson_cards::lesson_cards_ui;
use crate::ui::panels::menu::{DRAW_IS_GREY, MenuAction, MenuState, menu_bar_ui};
use crate::ui::panels::outputs::{Subject, outputs_ui};
use crate::ui::panels::pipeline::pipeline_ui;
use crate::ui::panels::status::status_ui;
use crate::ui::support::text::{item_word, item_word_capital, thousands};
use crate::ui::tabs::{TabContext, tab_row_ui};
use crate::ui::windows::draw::draw_window;
use crate::ui::windows::file_dialog::DialogOutcome;
use crate::ui::windows::help::{HelpTopic, help_window};
use crate::ui::windows::inspector::inspector_window;
use crate::ui::windows::keys::keys_window;

/// What the centre asked for that the app does after the frame.
#[derive(Default)]
struct CentreOutcome {
    /// Go back to the batch's digit in the digit views.
    stop_probe: bool,
    /// A feature-map pixel clicked, for the inspector.
    inspect: Option<PixelRef>,
}

impl CnnApp {
    /// Draws the whole window into `ui` (the root of the viewport).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if self.files.shots.owns_zoom() {
            // A picture at print resolution has enlarged the window and the zoom for a frame or
            // two: the zoom is not the user's, nor the window's size.
            crate::ui::support::widgets::set_projector(&ctx, self.zoom.projector);
        } else {
            self.auto_zoom(&ctx);
        }
        let mut commands = self.shortcuts(&ctx);
        // The menu and the dialogs first: what they change shows in this frame.
        self.menu_bar_ui(ui);
        self.file_dialog_ui(&ctx);
        self.open_data_ui(&ctx);
        self.take_dropped_files(&ctx);
        self.update_title(&ctx);
        self.prepare_views(&ctx);
        let avail = self.availability();
        self.top_bars_ui(ui, &avail, &mut commands);
        self.side_panels_ui(ui, &avail, &mut commands);
        let centre = self.central_ui(ui, &avail, &mut commands);
        if let Some(p) = centre.inspect {
            let clicked_at = ctx.input(|i| i.pointer.interact_pos());
            self.windows.inspector.open(p, clicked_at);
        }
        self.floating_windows_ui(&ctx);
        if centre.stop_probe {
            self.stop_probe();
        }
        self.lesson_user_commands(&commands);
        self.send_all(commands);
        self.drop_hint_ui(&ctx);
        let last_view = self.files.last_view;
        self.files.shots.after_frame(&ctx, |tab| last_view.filter(|(id, _)| *id == tab).map(|(_, rect)| rect));
    }

    /// The menu bar, and what was chosen in it.
    fn menu_bar_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let (pipeline, outputs) = self.view.side_panels();
        let state = MenuState {
            projector: self.zoom.projector,
            help: self.view.show_help,
            draw: self.windows.show_draw,
            network: self.windows.show_network,
            pipeline,
            outputs,
            keys: self.windows.show_keys,
            playground: self.windows.show_playground,
            png_scale: self.files.png_scale.max(1),
            zoom: ctx.zoom_factor(),
            manual_zoom: self.zoom.mode == ZoomMode::Manual,
            files_disabled: self.link.no_worker.is_some().then_some("No training session (see the message at the top)"),
            draw_disabled: self.colour_network().then_some(DRAW_IS_GREY),
        };
        let pictures = &self.pictures;
        let menu = egui::Panel::top("menu").frame(bar_frame(ui)).show(ui, |ui| menu_bar_ui(ui, state, pictures)).inner;
        if let Some(action) = menu {
            // Asking for a panel the Wide Loops view hides ends the Wide view.
            if matches!(action, MenuAction::SetPipeline(true) | MenuAction::SetOutputs(true)) {
                self.view.loops_wide = false;
            }
            self.menu_action(&ctx, action);
        }
    }

    /// The file dialog while one is open, and the file chosen in it.
    fn file_dialog_ui(&mut self, ctx: &egui::Context) {
        let Some((action, dialog)) = &mut self.files.dialog else { return };
        let action = *action;
        match dialog.ui(ctx) {
            DialogOutcome::Open => {}
            DialogOutcome::Cancelled => self.files.dialog = None,
            DialogOutcome::Chosen(path) => {
                self.files.dialog = None;
                self.file_chosen(action, path);
            }
        }
    }

    /// The banners, the data loading, and the control bar.
    fn top_bars_ui(&mut self, ui: &mut egui::Ui, avail: &Availability, commands: &mut Vec<Command>) {
        if !self.banners.is_empty() {
            egui::Panel::top("banners").frame(bar_frame(ui)).show(ui, |ui| {
                ui.add_space(4.0);
                banner_ui(ui, &mut self.banners);
            });
        }
        if let Some(p) = self.loading_progress() {
            let cancel =
                egui::Panel::top("loading data").frame(bar_frame(ui)).show(ui, |ui| loading_bar_ui(ui, &p)).inner;
            if cancel {
                self.cancel_loading();
            }
        }
        let snap = self.results.snapshot.as_deref();
        egui::Panel::top("controls").frame(bar_frame(ui)).show(ui, |ui| {
            ui.add_space(4.0);
            commands.extend(controls_ui(ui, &mut self.controls, snap, avail));
            ui.add_space(2.0);
        });
    }

    /// The status line (bottom), the pipeline (left), the help window, and the outputs and
    /// curves (right).
    fn side_panels_ui(&mut self, ui: &mut egui::Ui, avail: &Availability, commands: &mut Vec<Command>) {
        let snap = self.results.snapshot.as_deref();
        let status = egui::Panel::bottom("status").frame(bar_frame(ui)).show(ui, |ui| {
            let software = self.software_renderer.as_ref().and_then(|s| s.as_deref());
            let loading = self.loading_progress();
            status_ui(ui, snap, self.link.progress.as_ref().or(loading.as_ref()), software);
        });
        // Floating windows stay above the status line and its Light/Dark switch.
        self.status_top = status.response.rect.top();
        self.lesson_panel_ui(ui);
        let snap = self.results.snapshot.as_deref();
        let widths = panel_widths(ui.ctx().content_rect().width());
        // The Wide Loops view hides both panels without changing the user's choice.
        let (shown_pipeline, shown_outputs) = self.view.side_panels();
        let mut show_pipeline = shown_pipeline;
        // Not resizable, and as wide on every start: a width remembered from a first frame drawn
        // before the window had its size cut the shapes column on some starts.
        egui::Panel::left("pipeline").frame(bar_frame(ui)).resizable(false).exact_size(widths.0).show_collapsible(
            ui,
            &mut show_pipeline,
            |ui| {
                pipeline_ui(ui, snap, &mut self.view, &mut self.glyphs);
            },
        );
        self.view.show_pipeline &= show_pipeline || !shown_pipeline;
        if self.view.show_help {
            let topic =
                self.tabs.iter().find(|t| t.id() == self.view.tab).map_or(HelpTopic::FeatureMaps, |t| t.help_topic());
            if !help_window(ui.ctx(), snap, &self.view, topic, self.status_top) {
                self.view.show_help = false;
            }
        }
        let grads = self.display.scene.maps_are_gradients;
        let probe = self.shown_probe();
        let subject = match probe {
            Some(p) => Subject::Probe { caption: self.probe_caption(p), label: p.label },
            None => Subject::Batch,
        };
        let digits = if probe.is_some() { &self.display.probe_thumb } else { &self.display.scene.batch };
        // The digit views: the batch's selected digit, or a probed image.
        let shown = self.display.probed.as_deref().or(snap);
        let mut show_outputs = shown_outputs;
        egui::Panel::right("outputs and curves")
            .frame(bar_frame(ui))
            .resizable(false)
            .exact_size(widths.1)
            .show_collapsible(ui, &mut show_outputs, |ui| {
                outputs_ui(ui, shown, digits, &self.view, grads, &subject);
                ui.separator();
                let last = self.results.magnitudes.last();
                crate::ui::panels::lesson::stalled_loss_ui(ui, &self.results.curves, last, snap);
                let can_eval = avail.can_step(snap).is_ok();
                if let Some(c) = curves_ui(ui, &self.results.curves, can_eval, self.data.test.len()) {
                    commands.push(c);
                }
            });
        self.view.show_outputs &= show_outputs || !shown_outputs;
    }

    /// The batch strip, the probe's caption, the tab row, and the tab in front with its
    /// toolbar.
    fn central_ui(&mut self, ui: &mut egui::Ui, avail: &Availability, commands: &mut Vec<Command>) -> CentreOutcome {
        let mut out = CentreOutcome::default();
        let snap = self.results.snapshot.as_deref();
        let shown = self.display.probed.as_deref().or(snap);
        let probe = self.results.teaching.probe.as_deref().filter(|_| self.probe.showing);
        let caption = probe.map(|p| self.probe_caption(p)).unwrap_or_default();
        let file = self.probe.file.is_some();
        let central = egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT);
        egui::CentralPanel::default().frame(central).show(ui, |ui| {
            // The Wide Loops view picks its image itself ("start at image n"): its rows need the
            // strip's height at 1280×800.
            if !self.view.loops_wide_now() {
                if let Some(c) = batch_ui(ui, snap, &self.display.scene.batch) {
                    if matches!(c, Command::SelectSample(_)) {
                        out.stop_probe = true;
                    }
                    commands.push(c);
                }
                ui.separator();
            }
            if let Some(p) = probe {
                out.stop_probe |= probe_line_ui(ui, p, &caption, file, snap.map_or(&[][..], |s| &s.class_names[..]));
            }
            tab_row_ui(ui, &self.tabs, &mut self.view.tab);
            let Some(tab) = self.tabs.iter_mut().find(|t| t.id() == self.view.tab) else {
                self.files.last_view = None;
                return;
            };
            let mut ctx = TabContext {
                snapshot: snap,
                shown,
                scene: &self.display.scene,
                view: &mut self.view,
                teaching: &self.results.teaching,
                magnitudes: &self.results.magnitudes,
                test_set: &self.data.test,
                progress: self.link.progress.as_ref(),
                can_run: avail.can_step(snap),
                commands: Vec::new(),
                inspect: None,
            };
            tab.toolbar_ui(ui, &mut ctx);
            // The view with its legend, for "Save … as PNG".
            let view = ui.scope(|ui| tab.ui(ui, &mut ctx));
            // What overflows the panel (a long legend row) is not on screen: cut it off.
            self.files.last_view = Some((tab.id(), view.response.rect.intersect(ui.clip_rect())));
            commands.extend(ctx.commands);
            out.inspect = ctx.inspect;
        });
        out
    }

    /// The Network editor, kept in step with the run; Apply starts a new run with its line
    /// (the editor itself asks first when the run has steps not saved).
    fn network_window_ui(&mut self, ctx: &egui::Context) {
        if !self.windows.show_network {
            // Closed (its cross, the menu bar, N) without Apply: new data waiting stays out.
            self.editor_closed_without_network();
            return;
        }
        let Some(snap) = self.results.snapshot.as_deref() else { return };
        let plan = &snap.model.plan;
        // New data waiting for a network: the editor checks the rows against its images.
        let (input, classes) = match &self.data_switch.for_editor {
            Some(l) => l.shape(),
            None => (super::classify::input_of(plan.input), plan.classes),
        };
        let line = snap.model.line();
        let editor = self
            .windows
            .network
            .get_or_insert_with(|| crate::ui::windows::network::NetworkEditor::new(&line, input, classes));
        editor.set_current(&line, input, classes);
        let settings = snap.pending.unwrap_or(snap.settings);
        editor.set_training(settings.batch_size, settings.hyper.optimizer == crate::engine::OptimizerKind::Adam);
        let unsaved = (snap.step > 0 && self.windows.saved_step != Some(snap.step)).then_some(snap.step);
        let (seed, preset) = (self.controls.parse_seed().unwrap_or(snap.seed), snap.preset);
        let shown = crate::ui::windows::network::network_window(ctx, editor, unsaved);
        self.windows.show_network &= shown.open;
        if let Some(crate::ui::windows::network::NetworkAction::Apply(line)) = shown.action {
            self.windows.saved_step = None;
            self.windows.inspector.pixel = None;
            if !self.editor_applied_for_new_data(line.clone()) {
                self.send(Command::Reset { seed, preset, model: line });
            }
        }
    }

    /// The pixel inspector, the draw-a-digit window and the list of keys, over the others.
    fn floating_windows_ui(&mut self, ctx: &egui::Context) {
        if self.windows.show_keys && !keys_window(ctx, &self.tabs) {
            self.windows.show_keys = false;
        }
        if let Some(at) = self.windows.inspector.pixel
            && let Some(s) = self.display.probed.as_deref().or(self.results.snapshot.as_deref())
        {
            let result: Result<Inspection, InspectError> = s.inspect_pixel(at);
            let name = s.model.layer(at.layer).map_or_else(String::new, |l| l.name.clone());
            if !inspector_window(ctx, &mut self.windows.inspector, &result, &name, self.view.color_map) {
                self.windows.inspector.pixel = None;
            }
        }
        self.network_window_ui(ctx);
        if self.windows.show_playground {
            // A lesson's card stays readable under the playground a card opened.
            let room = self.lessons.run.as_ref().and(self.lessons.panel_top).map(|top| {
                let screen = ctx.content_rect();
                egui::Rect::from_min_max(
                    egui::pos2(screen.left(), screen.top() + 30.0),
                    egui::pos2(screen.right(), top - 4.0),
                )
            });
            let open = &mut self.windows.show_playground;
            crate::ui::windows::playground::playground_window(ctx, &mut self.windows.playground, open, room);
        }
        if self.windows.show_draw && self.colour_network() {
            self.windows.show_draw = false;
        }
        if self.windows.show_draw {
            // Borrowed field by field, not cloned: this runs every frame the window is open.
            let answer = self
                .results
                .teaching
                .probe
                .as_deref()
                .filter(|p| p.image == ImageId::Drawn && self.probe.file.is_none());
            let names = self.results.snapshot.as_deref().map_or(&[][..], |s| &s.class_names[..]);
            let outcome = draw_window(ctx, &mut self.windows.draw, answer, names);
            if let Some(image) = outcome.drawn {
                if self.windows.draw.is_empty() {
                    self.stop_probe();
                } else if let Some(pixels) = self.drawn_for_network(image) {
                    self.probe(ProbeInput::Pixels(pixels));
                }
            }
            if !outcome.open {
                self.windows.show_draw = false;
            }
        }
    }
}

/// The line above the tabs saying a probed image is shown, with the button back to the batch;
/// returns true when that was clicked. A picture file is named as it is and shown with its
/// three most probable classes.
fn probe_line_ui(ui: &mut egui::Ui, p: &Probed, caption: &str, file: bool, names: &[String]) -> bool {
    let mut back = false;
    ui.horizontal_wrapped(|ui| {
        // The button first: the line may run under a window on a narrow screen.
        if ui
            .button("Back to the batch")
            .on_hover_text(format!("Show the batch's selected {} again", item_word(names)))
            .clicked()
        {
            back = true;
        }
        let name = |k: usize| names.get(k).cloned().unwrap_or_else(|| k.to_string());
        let text = if file {
            format!("Showing {caption}: {}, weights after step {}", top_classes(&p.sample.probs, names, 3), p.step)
        } else {
            format!(
                "Showing {}: predicted {} ({}), weights after step {}",
                caption.to_lowercase(),
                name(p.predicted),
                crate::ui::support::text::prob(p.confidence),
                p.step
            )
        };
        ui.label(egui::RichText::new(text).strong().color(ui.visuals().warn_fg_color));
    });
    back
}

/// The widths (in points) of the pipeline and of the outputs-and-curves panel in a window
/// `width` points wide: the same on every start, a share of the window within bounds that keep
/// the shapes column and the plots readable.
pub fn panel_widths(width: f32) -> (f32, f32) {
    ((width * 0.26).clamp(270.0, 380.0), (width * 0.27).clamp(290.0, 430.0))
}

/// A panel frame with margins but no fill (see [`eframe::App::clear_color`]).
fn bar_frame(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::side_top_panel(ui.style()).fill(egui::Color32::TRANSPARENT)
}

/// The `n` most probable classes with their names and probabilities, most probable first:
/// "cat 81.2%, dog 12.0%, frog 3.1%".
pub fn top_classes(probs: &[f32], names: &[String], n: usize) -> String {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order
        .iter()
        .take(n)
        .map(|&k| {
            let name = names.get(k).cloned().unwrap_or_else(|| k.to_string());
            format!("{name} {}", crate::ui::support::text::prob(probs[k]))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl CnnApp {
    /// The lesson panel above the status line, across the window, while a lesson is shown.
    fn lesson_panel_ui(&mut self, ui: &mut egui::Ui) {
        let Some(run) = &self.lessons.run else { return };
        // As tall as the card needs (measured last frame), and a third of the window at most:
        // the views it talks about stay in sight; a longer card scrolls.
        let most = (ui.ctx().content_rect().height() * 0.32).max(140.0);
        let height = self.lessons.panel_height.unwrap_or(most).clamp(110.0, most);
        let glyphs = &mut self.glyphs;
        let shown = egui::Panel::bottom("lesson")
            .frame(bar_frame(ui))
            .resizable(false)
            .exact_size(height)
            .show(ui, |ui| lesson_cards_ui(ui, &run.lesson, &run.file, run.card, &run.status, glyphs));
        self.lessons.panel_top = Some(shown.response.rect.top());
        let wanted = shown.inner.wanted_height + 12.0;
        if self.lessons.panel_height.is_none_or(|h| (h - wanted).abs() > 2.0) {
            self.lessons.panel_height = Some(wanted);
            ui.ctx().request_repaint();
        }
        let action = shown.inner.action;
        if let Some(a) = action {
            self.lesson_action(a);
        }
    }

    /// What a probed image is called in the views: a picture file by its name.
    fn probe_caption(&self, p: &Probed) -> String {
        match (&p.image, &self.probe.file) {
            (ImageId::Drawn, Some(path)) => {
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
            }
            (ImageId::Drawn, None) => "Your drawing".to_string(),
            (ImageId::Test(i), _) => format!("Test image {}", thousands(*i as u64)),
            (ImageId::Batch { position, .. }, _) => {
                let names = self.results.snapshot.as_deref().map_or(&[][..], |s| &s.class_names[..]);
                format!("{} {} of the batch", item_word_capital(names), position + 1)
            }
        }
    }

    /// True when the network takes colour pictures (Draw a digit is for grey ones).
    fn colour_network(&self) -> bool {
        self.results.snapshot.as_deref().is_some_and(|s| super::classify::input_of(s.model.plan.input).0 != 1)
    }
}

/// The bar while data loads: what, how far, and Cancel; returns true when Cancel was clicked.
fn loading_bar_ui(ui: &mut egui::Ui, p: &crate::ui::panels::status::Progress) -> bool {
    let mut cancel = false;
    ui.add_space(2.0);
    ui.horizontal(|ui| {
        if ui.button("Cancel").on_hover_text("Stop waiting for this data; the current run goes on").clicked() {
            cancel = true;
        }
        let frac = if p.total > 0 { p.done as f32 / p.total as f32 } else { 0.0 };
        let text = if p.total > 0 {
            format!("{}: {} of {} images", p.what, thousands(p.done as u64), thousands(p.total as u64))
        } else {
            format!("{}…", p.what)
        };
        ui.add(egui::ProgressBar::new(frac).text(text).animate(p.total == 0));
    });
    ui.add_space(2.0);
    cancel
}

/// Text sizes and spacing of the whole window.
pub(super) fn setup_style(ctx: &egui::Context) {
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
