//! Accent colours shared by the panels.

use eframe::egui::Color32;

/// Forward phases (ColorBrewer blue, distinguishable from the orange below for all common
/// kinds of colour blindness).
pub const FORWARD: Color32 = Color32::from_rgb(33, 102, 172);
/// Backward phases.
pub const BACKWARD: Color32 = Color32::from_rgb(214, 96, 77);
/// The update.
pub const UPDATE: Color32 = Color32::from_rgb(120, 100, 160);
/// Mistakes in the batch.
pub const WRONG: Color32 = Color32::from_rgb(215, 38, 40);
/// The loss curve's smoothed line.
pub const LOSS: Color32 = Color32::from_rgb(214, 96, 77);
/// The accuracy curve.
pub const ACCURACY: Color32 = Color32::from_rgb(33, 102, 172);
