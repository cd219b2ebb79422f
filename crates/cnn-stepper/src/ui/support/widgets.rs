//! Small widgets several views draw: a digit's thumbnail cell, a section heading and the
//! placeholder of a view not computed yet; and the projector-mode flag the views size by.

use eframe::egui::{self, Stroke, StrokeKind};

/// A clickable cell for a digit's thumbnail (batch, gallery): allocates it, names it for
/// screen readers and tests, and paints the selected or hovered background. The caller draws
/// the image and captions inside the returned rectangle when it is visible.
pub fn thumbnail_cell(
    ui: &mut egui::Ui,
    size: egui::Vec2,
    selected: bool,
    label: &str,
) -> (egui::Rect, egui::Response) {
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, label));
    if ui.is_rect_visible(rect) {
        let visuals = ui.visuals();
        if selected {
            ui.painter().rect_filled(rect, 4.0, visuals.selection.bg_fill.gamma_multiply(0.4));
        } else if response.hovered() {
            ui.painter().rect_filled(rect, 4.0, visuals.widgets.hovered.weak_bg_fill);
        }
    }
    (rect, response)
}

/// A small section heading.
pub fn section_heading(ui: &mut egui::Ui, text: &str) {
    ui.label(egui::RichText::new(text).strong().size(15.0));
}

/// An outlined empty box of `size` saying what will fill it (a label, so screen readers and
/// tests can read it).
pub fn placeholder_ui(ui: &mut egui::Ui, size: egui::Vec2, text: &str) {
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let stroke = Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color);
    ui.painter().rect_stroke(rect, 4.0, stroke, StrokeKind::Inside);
    // Laid out by hand: a label put into the box is justified, which spreads the letters of a
    // wrapped line across the whole width.
    let font = egui::TextStyle::Body.resolve(ui.style());
    let color = ui.visuals().weak_text_color();
    let galley = ui.painter().layout(text.to_owned(), font, color, (rect.width() - 16.0).max(20.0));
    let at = rect.center() - galley.size() / 2.0;
    ui.painter().galley(at, galley, color);
    // The text stays readable to screen readers and tests.
    let id = ui.next_auto_id();
    let r = ui.interact(rect, id, egui::Sense::hover());
    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text));
}

fn projector_id() -> egui::Id {
    egui::Id::unique("projector mode")
}

/// Tells the views whether projector mode is on (the app does, every frame): in projector mode
/// the maps, filters and digits keep a size that grows with the text, and scroll rather than
/// shrink.
pub fn set_projector(ctx: &egui::Context, on: bool) {
    ctx.data_mut(|d| d.insert_temp(projector_id(), on));
}

/// Whether projector mode is on (see [`set_projector`]).
pub fn projector(ctx: &egui::Context) -> bool {
    ctx.data(|d| d.get_temp(projector_id())).unwrap_or(false)
}

/// The smallest side, in points, of a picture of 28×28 values (a feature map, a digit): in
/// projector mode large enough to be read from the back of a room, and since points grow with
/// the zoom, it grows with the text.
pub fn min_picture(ctx: &egui::Context) -> f32 {
    if projector(ctx) { 42.0 } else { 18.0 }
}
