//! The status line: what the worker is doing (with progress inside long phases), where the data
//! came from, where the list of keys is, and the theme.

use eframe::egui::{self, RichText};

use crate::trainer::Snapshot;

/// Progress inside a long phase or an evaluation, as the worker last reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// e.g. "backward conv2".
    pub what: String,
    /// Units done.
    pub done: usize,
    /// Units in all.
    pub total: usize,
}

/// Draws the status line. `software_renderer` names the adapter when the window is drawn by the
/// CPU.
pub fn status_ui(
    ui: &mut egui::Ui,
    snap: Option<&Snapshot>,
    progress: Option<&Progress>,
    software_renderer: Option<&str>,
) {
    ui.horizontal(|ui| {
        match (progress, snap) {
            (Some(p), _) => {
                let frac = if p.total > 0 { p.done as f32 / p.total as f32 } else { 0.0 };
                ui.add(
                    egui::ProgressBar::new(frac)
                        .desired_width(260.0)
                        .text(format!("{} {}/{}", p.what, p.done, p.total)),
                );
            }
            (None, Some(s)) if s.running => {
                ui.label(RichText::new("Running").strong());
            }
            (None, Some(s)) => {
                let text = match s.last_phase() {
                    Some(p) => format!("Paused after {}", s.model.phase_label(p)),
                    None => "Paused at the start of a step".to_string(),
                };
                ui.label(text);
            }
            (None, None) => {
                ui.label("Starting…");
            }
        }
        if let Some(s) = snap {
            ui.separator();
            ui.label(RichText::new(format!("data: {}", s.data_source)).weak());
        }
        if let Some(name) = software_renderer {
            ui.separator();
            ui.label(RichText::new("software rendering").weak()).on_hover_text(format!(
                "The window is drawn by the processor ({name}), not a graphics card, so drawing takes \
                 processor time from training: the trainer leaves one core to the drawing. With a \
                 graphics driver both are faster."
            ));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            theme_ui(ui);
            ui.separator();
            ui.label(RichText::new("F1 or ?: every key").small().weak())
                .on_hover_text("Shows the list of keyboard shortcuts (View > Keyboard shortcuts)");
        });
    });
}

/// Light and dark buttons: a light theme often reads better on a projector.
fn theme_ui(ui: &mut egui::Ui) {
    let dark = ui.visuals().dark_mode;
    // Right-to-left layout: the last added is leftmost.
    if ui.add(egui::Button::selectable(dark, "Dark")).clicked() {
        ui.ctx().set_theme(egui::Theme::Dark);
    }
    if ui.add(egui::Button::selectable(!dark, "Light")).clicked() {
        ui.ctx().set_theme(egui::Theme::Light);
    }
}
