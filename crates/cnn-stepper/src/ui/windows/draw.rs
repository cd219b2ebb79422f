//! "Draw your own digit": a canvas drawn with the mouse, white ink on black like MNIST, with a
//! preview of the 28×28 image the network will be given (scaled into the 20×20 box and centred by
//! mass, see [`Canvas::to_mnist`]).
//!
//! The widget only draws and prepares; the caller sends the prepared image to the worker.

use eframe::egui::{self, Color32, ColorImage, Event, PointerButton, Pos2, Rect, Sense, StrokeKind, TextureHandle};
use eframe::egui::{TextureOptions, pos2, vec2};

use crate::data::MNIST_SIDE;
use crate::data::draw::Canvas;
use crate::trainer::Probed;
use crate::ui::support::colormap::gray;
use crate::ui::support::textures::picture_image;
use crate::ui::windows::help::{HelpTopic, help_button_ui};

/// Accessibility label of the drawing surface.
pub const CANVAS_LABEL: &str = "Drawing canvas";
/// Accessibility label of the preview.
pub const PREVIEW_LABEL: &str = "What the network sees (28×28)";
/// Text of the button that erases the drawing.
pub const CLEAR_LABEL: &str = "Clear";

/// Smallest and largest side of the canvas on screen, in points.
const CANVAS_POINTS: (f32, f32) = (224.0, 280.0);
/// The preview is shown at a whole multiple of 28 so that nearest filtering keeps every MNIST
/// pixel an equal square.
const PREVIEW_ZOOM: f32 = 3.0;
/// Black texels between the canvas and the preview in the shared texture, so that filtering at
/// the canvas's edge never samples the preview.
const GUTTER: usize = 2;
/// Nearest when magnified: the preview must show MNIST's pixels as the squares the network sees,
/// not blurred. Linear when minified: a canvas shown smaller than its 280 texels (a narrow panel)
/// is averaged rather than losing rows of texels.
const FILTER: TextureOptions = TextureOptions {
    magnification: egui::TextureFilter::Nearest,
    minification: egui::TextureFilter::Linear,
    ..TextureOptions::NEAREST
};

/// The drawing and what was last handed to the caller; owned by the app, kept across frames.
pub struct DrawState {
    canvas: Canvas,
    /// The canvas and the preview side by side in one texture, uploaded when either changed.
    texture: Option<TextureHandle>,
    texture_stale: bool,
    /// `canvas.to_mnist()`, recomputed whenever the canvas changed (once per frame of a stroke).
    prepared: Option<Vec<f32>>,
    /// The image last returned, so an unchanged result is not sent again.
    returned: Option<Vec<f32>>,
    /// Canvas-relative position of the pointer at the end of the previous frame of a stroke.
    pen: Option<[f32; 2]>,
}

impl Default for DrawState {
    fn default() -> Self {
        Self::new(Canvas::default())
    }
}

impl DrawState {
    /// A state drawing on `canvas` (use [`Default`] for the standard 280×280 canvas).
    pub fn new(canvas: Canvas) -> Self {
        let prepared = canvas.to_mnist();
        // A blank start is nothing to report; a canvas that holds a drawing is reported once.
        let returned = prepared.is_none().then(|| vec![0.0; MNIST_SIDE * MNIST_SIDE]);
        Self { canvas, texture: None, texture_stale: true, prepared, returned, pen: None }
    }

    /// The drawing.
    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// The current prepared 28×28 image, `None` while nothing is drawn.
    pub fn image(&self) -> Option<&[f32]> {
        self.prepared.as_deref()
    }

    /// True while nothing is drawn (a caller can hide a prediction made for a blank frame).
    pub fn is_empty(&self) -> bool {
        // `prepared` follows every change of the canvas and is `None` exactly when it is blank;
        // asking it avoids scanning the canvas every frame.
        self.prepared.is_none()
    }

    /// Erases the drawing (what the Clear button does).
    pub fn clear(&mut self) {
        self.canvas.clear();
        self.pen = None;
        self.canvas_changed();
    }

    fn canvas_changed(&mut self) {
        self.prepared = self.canvas.to_mnist();
        self.texture_stale = true;
    }

    /// The prepared image if it differs from the one returned last; a cleared canvas gives a
    /// blank (all-zero) image so the caller's result follows the canvas.
    fn take_change(&mut self) -> Option<Vec<f32>> {
        let current = self.prepared.clone().unwrap_or_else(|| vec![0.0; MNIST_SIDE * MNIST_SIDE]);
        if self.returned.as_ref() == Some(&current) {
            return None;
        }
        self.returned = Some(current.clone());
        Some(current)
    }

    /// Uploads the canvas and the preview if they changed; creates the texture only once.
    fn upload(&mut self, ctx: &egui::Context) {
        if !self.texture_stale && self.texture.is_some() {
            return;
        }
        let side = self.canvas.side();
        let [width, height] = self.texture_size();
        let mut pixels = vec![Color32::BLACK; width * height];
        for (y, row) in self.canvas.pixels().chunks_exact(side).enumerate() {
            for (x, &v) in row.iter().enumerate() {
                pixels[y * width + x] = gray(v);
            }
        }
        if let Some(prepared) = &self.prepared {
            // The image the network is given, drawn as every view draws the data's pictures.
            let preview = picture_image(prepared, (1, MNIST_SIDE, MNIST_SIDE));
            for (y, row) in preview.pixels.chunks_exact(MNIST_SIDE).enumerate() {
                let start = y * width + side + GUTTER;
                pixels[start..start + MNIST_SIDE].copy_from_slice(row);
            }
        }
        let image = ColorImage::new([width, height], pixels);
        match &mut self.texture {
            Some(handle) => handle.set(image, FILTER),
            None => self.texture = Some(ctx.load_texture("drawn digit", image, FILTER)),
        }
        self.texture_stale = false;
    }

    /// Width and height of the texture: the canvas, a gutter and the preview side by side.
    fn texture_size(&self) -> [usize; 2] {
        let side = self.canvas.side();
        [side + GUTTER + MNIST_SIDE, side.max(MNIST_SIDE)]
    }

    /// Texture coordinates of the canvas (left) and the preview (right) in the texture.
    fn uvs(&self) -> (Rect, Rect) {
        let side = self.canvas.side() as f32;
        let [width, height] = self.texture_size().map(|v| v as f32);
        let preview_left = (side + GUTTER as f32) / width;
        (
            Rect::from_min_max(pos2(0.0, 0.0), pos2(side / width, side / height)),
            Rect::from_min_max(pos2(preview_left, 0.0), pos2(1.0, MNIST_SIDE as f32 / height)),
        )
    }
}

/// Draws the canvas, its Clear button and the 28×28 preview. Dragging with the primary button
/// draws; the segments between successive pointer positions are drawn too, so a fast stroke has
/// no gaps.
///
/// Returns the prepared 28×28 image (row after row, values in `[0, 1]`) when it changed this
/// frame: while a stroke is drawn, at most once per frame, and once after Clear (then all zeros;
/// [`DrawState::is_empty`] tells a blank canvas from a drawing).
pub fn draw_canvas_ui(ui: &mut egui::Ui, state: &mut DrawState) -> Option<Vec<f32>> {
    let side_points = ui.available_width().floor().clamp(CANVAS_POINTS.0, CANVAS_POINTS.1);
    let (rect, response) = ui.allocate_exact_size(vec2(side_points, side_points), Sense::drag());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, CANVAS_LABEL));

    if pen_input(ui, &response, rect, state) {
        state.canvas_changed();
    }

    ui.horizontal(|ui| {
        let preview_side = MNIST_SIDE as f32 * PREVIEW_ZOOM;
        let (preview_rect, preview) = ui.allocate_exact_size(vec2(preview_side, preview_side), Sense::hover());
        preview.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, PREVIEW_LABEL));
        ui.vertical(|ui| {
            ui.label(egui::RichText::new("What the network sees:").small());
            ui.label(
                egui::RichText::new("scaled into 20×20,\ncentred by mass in 28×28,\nlike MNIST's digits")
                    .small()
                    .weak(),
            );
            let clear = ui.add_enabled(!state.is_empty(), egui::Button::new(CLEAR_LABEL));
            if clear.clicked() {
                state.clear();
            }
        });
        state.upload(ui.ctx());
        paint(ui, state, rect, preview_rect);
    });
    state.take_change()
}

/// Applies this frame's pointer input to the canvas; returns whether any ink changed.
fn pen_input(ui: &egui::Ui, response: &egui::Response, rect: Rect, state: &mut DrawState) -> bool {
    let primary = ui.input(|i| i.pointer.button_down(PointerButton::Primary) || i.pointer.primary_released());
    if !primary || !(response.is_pointer_button_down_on() || response.drag_stopped()) {
        state.pen = None;
        return false;
    }
    // Every position the pointer reported this frame, not only the last: at a low frame rate a
    // curve would otherwise become a polygon. Events are in screen coordinates; the widget's
    // layer may be transformed.
    let from_global = ui.ctx().layer_transform_from_global(response.layer_id);
    let mut path: Vec<Pos2> = Vec::new();
    ui.input(|i| {
        for event in &i.events {
            match event {
                Event::PointerMoved(pos) => path.push(*pos),
                Event::PointerButton { pos, button: PointerButton::Primary, pressed: true, .. } => {
                    // A press starts a new stroke: earlier moves this frame were hovering.
                    path.clear();
                    state.pen = None;
                    path.push(*pos);
                }
                Event::PointerButton { pos, button: PointerButton::Primary, pressed: false, .. } => {
                    path.push(*pos);
                    break;
                }
                _ => {}
            }
        }
    });
    if let Some(t) = from_global {
        for p in &mut path {
            *p = t * *p;
        }
    }
    path.extend(response.interact_pointer_pos());

    let size = rect.size();
    let mut changed = false;
    for p in path {
        let rel = [(p.x - rect.min.x) / size.x, (p.y - rect.min.y) / size.y];
        changed |= state.canvas.stroke(state.pen.unwrap_or(rel), rel);
        state.pen = Some(rel);
    }
    if !response.is_pointer_button_down_on() {
        state.pen = None;
    }
    changed
}

fn paint(ui: &egui::Ui, state: &DrawState, canvas_rect: Rect, preview_rect: Rect) {
    let Some(tex) = state.texture.as_ref().map(TextureHandle::id) else { return };
    let (canvas_uv, preview_uv) = state.uvs();
    let painter = ui.painter();
    let frame = ui.visuals().widgets.noninteractive.bg_stroke;
    if ui.is_rect_visible(canvas_rect) {
        painter.image(tex, canvas_rect, canvas_uv, Color32::WHITE);
        painter.rect_stroke(canvas_rect, 0.0, frame, StrokeKind::Outside);
        if state.is_empty() {
            painter.text(
                canvas_rect.center(),
                egui::Align2::CENTER_CENTER,
                "draw a digit here with the mouse",
                egui::FontId::proportional(14.0),
                Color32::from_gray(110),
            );
        }
    }
    if ui.is_rect_visible(preview_rect) {
        painter.image(tex, preview_rect, preview_uv, Color32::WHITE);
        painter.rect_stroke(preview_rect, 0.0, frame, StrokeKind::Outside);
    }
}

/// What the draw-a-digit window did in one frame.
#[derive(Debug, Default, PartialEq)]
pub struct DrawWindow {
    /// False once the user closed the window.
    pub open: bool,
    /// A new prepared image (see [`draw_canvas_ui`]): all zeros after Clear.
    pub drawn: Option<Vec<f32>>,
}

/// The draw-a-digit window: the canvas, and the network's answer (`answer`, the last probe of a
/// drawing) as bars with the class `names`.
pub fn draw_window(
    ctx: &egui::Context,
    state: &mut DrawState,
    answer: Option<&Probed>,
    names: &[String],
) -> DrawWindow {
    let mut open = true;
    let mut drawn = None;
    egui::Window::new("Draw a digit")
        .id(egui::Id::unique("draw a digit"))
        .open(&mut open)
        .default_pos(egui::pos2(950.0, 110.0))
        .resizable(false)
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                help_button_ui(ui, HelpTopic::Draw);
                ui.label(
                    egui::RichText::new("Draw with the mouse; it is centred and scaled like MNIST's digits.").small(),
                );
            });
            drawn = draw_canvas_ui(ui, state);
            ui.separator();
            draw_answer_ui(ui, answer.filter(|_| !state.is_empty()), names);
        });
    DrawWindow { open, drawn }
}

/// The class probabilities of a drawn digit, the most probable marked. Before there is an
/// answer the bars are empty but present, so the window does not jump when it arrives.
fn draw_answer_ui(ui: &mut egui::Ui, p: Option<&Probed>, names: &[String]) {
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let (headline, detail) = match p {
        Some(p) => (
            format!("The network says {} ({})", name(p.predicted), crate::ui::support::text::prob(p.confidence)),
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
            let bar = egui::ProgressBar::new(prob).desired_width(100.0).text(crate::ui::support::text::prob(prob));
            let top = p.is_some_and(|p| p.predicted == c);
            ui.add(if top { bar.fill(ui.visuals().selection.bg_fill) } else { bar });
            if c % 2 == 1 {
                ui.end_row();
            }
        }
    });
}
