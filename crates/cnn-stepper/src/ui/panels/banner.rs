//! Error banners at the top of the window: readable, dismissable, never a crash.

use eframe::egui::{self, RichText};

/// How serious a banner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something failed (the worker reported an error, a folder could not be read).
    Error,
    /// Worth knowing, nothing failed (e.g. the embedded sample is used instead).
    Info,
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Banner {
    /// Error or info.
    pub severity: Severity,
    /// The text shown.
    pub message: String,
}

/// Draws the banners, newest last; the Dismiss button removes one.
pub fn banner_ui(ui: &mut egui::Ui, banners: &mut Vec<Banner>) {
    let mut dismiss = None;
    for (i, b) in banners.iter().enumerate() {
        let (fill, text_color, title) = match (b.severity, ui.visuals().dark_mode) {
            (Severity::Error, true) => {
                (egui::Color32::from_rgb(90, 24, 24), egui::Color32::from_rgb(255, 220, 215), "Error")
            }
            (Severity::Error, false) => {
                (egui::Color32::from_rgb(253, 226, 222), egui::Color32::from_rgb(120, 10, 10), "Error")
            }
            (Severity::Info, true) => {
                (egui::Color32::from_rgb(24, 48, 80), egui::Color32::from_rgb(215, 230, 255), "Note")
            }
            (Severity::Info, false) => {
                (egui::Color32::from_rgb(222, 235, 250), egui::Color32::from_rgb(10, 40, 90), "Note")
            }
        };
        egui::Frame::new().fill(fill).corner_radius(4.0).inner_margin(egui::Margin::symmetric(10, 6)).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new(title).strong().color(text_color));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button("Dismiss").clicked() {
                        dismiss = Some(i);
                    }
                    ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                        ui.add(egui::Label::new(RichText::new(&b.message).color(text_color)).wrap());
                    });
                });
            });
        });
        ui.add_space(2.0);
    }
    if let Some(i) = dismiss {
        banners.remove(i);
    }
}
