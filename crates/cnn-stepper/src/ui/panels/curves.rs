//! Training curves: loss per step with a smoothed line, and accuracy on held-out test images.
//!
//! Points arrive a few at a time in each snapshot and are kept here, compactly: a run may go on
//! for hours, so once a series holds [`MAX_POINTS`] it halves itself by averaging neighbours and
//! from then on stores one point per two (four, …) steps.

use eframe::egui::{self, RichText};
use egui_plot::{Line, LineStyle, Plot, PlotPoint, PlotPoints, Points};

use crate::trainer::{AccuracyPoint, Command, DivergedPoint, EvalResult, LossPoint};
use crate::ui::support::palette;
use crate::ui::support::text::thousands;
use crate::ui::windows::help::{HelpTopic, heading_ui};

/// Points a series keeps before it halves its resolution.
pub const MAX_POINTS: usize = 20_000;

/// Weight of the past in the exponential moving average of the loss (about a 50-step window).
const EMA_BETA: f64 = 0.98;

/// A decimating series of (step, value) points.
#[derive(Clone, Debug)]
pub struct Series {
    points: Vec<PlotPoint>,
    /// Raw points averaged into each stored point (doubles at every halving).
    per_point: usize,
    /// The bucket being filled: sums of x and y, and how many points.
    pending: (f64, f64, usize),
    cap: usize,
}

impl Series {
    /// An empty series that keeps at most `cap` points (at least 2).
    pub fn new(cap: usize) -> Self {
        Self { points: Vec::new(), per_point: 1, pending: (0.0, 0.0, 0), cap: cap.max(2) }
    }

    /// Adds a point.
    pub fn push(&mut self, x: f64, y: f64) {
        let (sx, sy, n) = &mut self.pending;
        *sx += x;
        *sy += y;
        *n += 1;
        if *n < self.per_point {
            return;
        }
        let k = *n as f64;
        self.points.push(PlotPoint::new(*sx / k, *sy / k));
        self.pending = (0.0, 0.0, 0);
        if self.points.len() > self.cap {
            self.points = self
                .points
                .chunks(2)
                .map(|c| {
                    let k = c.len() as f64;
                    PlotPoint::new(c.iter().map(|p| p.x).sum::<f64>() / k, c.iter().map(|p| p.y).sum::<f64>() / k)
                })
                .collect();
            self.per_point *= 2;
        }
    }

    /// The stored points (the bucket being filled is not among them).
    pub fn points(&self) -> &[PlotPoint] {
        &self.points
    }

    /// Raw points per stored point.
    pub fn per_point(&self) -> usize {
        self.per_point
    }

    /// The last stored point.
    pub fn last(&self) -> Option<PlotPoint> {
        self.points.last().copied()
    }

    /// Number of stored points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The history the curves panel draws.
#[derive(Clone, Debug)]
pub struct Curves {
    /// Loss of each step.
    pub loss: Series,
    /// Its exponential moving average.
    pub loss_ema: Series,
    /// Moving average of the batch accuracy, in percent.
    pub batch_accuracy_ema: Series,
    /// Accuracy on held-out test images, in percent.
    pub test_accuracy: Series,
    /// Accuracy on the whole test set, from the Evaluate button, in percent.
    pub full_test_accuracy: Series,
    ema_loss: f64,
    ema_acc: f64,
    ema_count: i32,
    last_step: u64,
    /// The last full evaluation the user asked for.
    pub last_eval: Option<EvalResult>,
    /// Losses that diverged, marked on the curve although training went back to before them.
    pub divergences: Vec<DivergedPoint>,
}

impl Default for Curves {
    fn default() -> Self {
        Self {
            loss: Series::new(MAX_POINTS),
            loss_ema: Series::new(MAX_POINTS),
            batch_accuracy_ema: Series::new(MAX_POINTS),
            test_accuracy: Series::new(MAX_POINTS),
            full_test_accuracy: Series::new(MAX_POINTS),
            ema_loss: 0.0,
            ema_acc: 0.0,
            ema_count: 0,
            last_step: 0,
            last_eval: None,
            divergences: Vec::new(),
        }
    }
}

impl Curves {
    /// Forgets everything (a new run started).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The last step seen.
    pub fn last_step(&self) -> u64 {
        self.last_step
    }

    /// Adds the loss of one step.
    pub fn add_loss(&mut self, p: &LossPoint) {
        if !p.loss.is_finite() {
            return;
        }
        let x = p.step as f64;
        self.last_step = self.last_step.max(p.step);
        self.loss.push(x, p.loss as f64);
        self.ema_count = self.ema_count.saturating_add(1);
        self.ema_loss = EMA_BETA * self.ema_loss + (1.0 - EMA_BETA) * p.loss as f64;
        self.ema_acc = EMA_BETA * self.ema_acc + (1.0 - EMA_BETA) * p.batch_accuracy as f64;
        // Bias correction, so the first steps are not pulled towards the zero the EMA starts at.
        let debias = 1.0 - EMA_BETA.powi(self.ema_count.min(10_000));
        self.loss_ema.push(x, self.ema_loss / debias);
        self.batch_accuracy_ema.push(x, 100.0 * self.ema_acc / debias);
    }

    /// Adds a held-out accuracy measurement.
    pub fn add_accuracy(&mut self, p: &AccuracyPoint) {
        self.test_accuracy.push(p.step as f64, 100.0 * p.accuracy as f64);
    }

    /// Adds the result of an evaluation the user asked for.
    pub fn add_evaluation(&mut self, r: EvalResult) {
        self.full_test_accuracy.push(r.step as f64, 100.0 * r.accuracy() as f64);
        self.last_eval = Some(r);
    }

    /// The smoothed loss at the latest step.
    pub fn smoothed_loss(&self) -> Option<f64> {
        self.loss_ema.last().map(|p| p.y)
    }
}

/// How many test images each point of the test-accuracy curve is measured on (the first ones
/// of the test set, all of a smaller one).
pub const CURVE_TEST_IMAGES: usize = crate::trainer::EVAL_IMAGES;

/// Draws the loss and accuracy plots, one above the other; returns `Evaluate` when the user asks
/// for a full test-set evaluation. `test_len` is the size of the test set, for saying on how many
/// images the curve's points are measured.
pub fn curves_ui(ui: &mut egui::Ui, curves: &Curves, can_evaluate: bool, test_len: usize) -> Option<Command> {
    let mut command = None;
    ui.horizontal(|ui| {
        heading_ui(ui, HelpTopic::Curves);
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let r = ui
                .add_enabled(can_evaluate, egui::Button::new("Evaluate"))
                .on_hover_text("Measure accuracy on the whole test set now.")
                .on_disabled_hover_text("Pause first");
            if r.clicked() {
                command = Some(Command::Evaluate { count: 0 });
            }
        });
    });
    let curve_images = thousands(CURVE_TEST_IMAGES.min(test_len) as u64);
    let mut summary = Vec::new();
    if let Some(l) = curves.smoothed_loss() {
        summary.push(format!("loss ≈ {l:.3}"));
    }
    if let Some(a) = curves.test_accuracy.last() {
        summary.push(format!("test accuracy {:.1}% on {curve_images} images at step {}", a.y, a.x as u64));
    }
    if let Some(e) = &curves.last_eval {
        summary.push(format!(
            "whole test set: {:.2}% of {} at step {}",
            e.accuracy() * 100.0,
            thousands(e.count as u64),
            e.step
        ));
    }
    if summary.is_empty() {
        summary.push("no steps yet".to_string());
    }
    ui.add(egui::Label::new(RichText::new(summary.join(" · ")).small()).wrap());

    // The legends go above the plots, not over them: inside, they hid a third of a small plot.
    // Each name in its line's colour, so that a wrapped legend never parts a name from its mark.
    let gray = ui_gray(ui.ctx());
    let legend_row = |ui: &mut egui::Ui, entries: &[(egui::Color32, &str)]| {
        ui.horizontal_wrapped(|ui| {
            for (color, name) in entries {
                ui.label(RichText::new(*name).small().strong().color(*color));
            }
        });
    };
    let legend_h = ui.text_style_height(&egui::TextStyle::Body) + ui.spacing().item_spacing.y;
    let avail = ui.available_height();
    // One above the other when there is room for two readable plots, else side by side (a
    // 16:9 projector leaves little height under the outputs).
    let stacked = avail >= 2.0 * (legend_h + 90.0) + 12.0;
    // Measured after the legend is drawn (it may wrap): the first of two stacked plots takes
    // half of what is left below it, the others all of it.
    let plot_h = |ui: &egui::Ui, first_of_two: bool| {
        let left = ui.available_height() - 6.0;
        (if first_of_two { (left - legend_h - 6.0) / 2.0 } else { left }).max(60.0)
    };
    let link = egui::Id::unique("curves x axis");
    let loss_ui = |ui: &mut egui::Ui| {
        legend_row(ui, &[(gray, "loss per step"), (palette::LOSS, "smoothed (EMA)")]);
        let loss = Plot::new("loss plot")
            .height(plot_h(ui, stacked))
            .x_axis_label("step")
            .y_axis_label("loss")
            .include_y(0.0)
            .include_x(0.0)
            .include_x(crate::ui::panels::lesson::marks_extent(&curves.divergences))
            .link_axis(link, [true, false])
            .allow_scroll(false)
            .show_background(false)
            .show_crosshair(false)
            .label_formatter(|pos| loss_label(curves, pointer_x(pos)))
            .show(ui, |plot| {
                plot.line(
                    Line::new("loss per step", PlotPoints::Borrowed(curves.loss.points())).color(gray).width(1.0),
                );
                plot.line(
                    Line::new("smoothed (EMA)", PlotPoints::Borrowed(curves.loss_ema.points()))
                        .color(palette::LOSS)
                        .width(2.5),
                );
                crate::ui::panels::lesson::divergence_marks(plot, &curves.divergences, &curves.loss);
            });
        loss.response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "loss plot"));
    };
    let accuracy_ui = |ui: &mut egui::Ui| {
        let mut entries = vec![(gray, "batch accuracy (EMA)"), (palette::ACCURACY, "test accuracy")];
        if !curves.full_test_accuracy.is_empty() {
            entries.push((palette::LOSS, "whole test set (Evaluate)"));
        }
        legend_row(ui, &entries);
        let accuracy = Plot::new("accuracy plot")
            .height(plot_h(ui, false))
            .x_axis_label("step")
            .y_axis_label("accuracy (%)")
            .include_y(0.0)
            .include_y(100.0)
            .include_x(0.0)
            .link_axis(link, [true, false])
            .allow_scroll(false)
            .show_background(false)
            .show_crosshair(false)
            .label_formatter(|pos| accuracy_label(curves, pointer_x(pos), &curve_images))
            .show(ui, |plot| {
                plot.line(
                    Line::new("batch accuracy (EMA)", PlotPoints::Borrowed(curves.batch_accuracy_ema.points()))
                        .color(gray)
                        .style(LineStyle::dashed_dense())
                        .width(1.5),
                );
                plot.line(
                    Line::new("test accuracy", PlotPoints::Borrowed(curves.test_accuracy.points()))
                        .color(palette::ACCURACY)
                        .width(2.5),
                );
                plot.points(
                    Points::new("test accuracy", PlotPoints::Borrowed(curves.test_accuracy.points()))
                        .color(palette::ACCURACY)
                        .radius(3.0),
                );
                if !curves.full_test_accuracy.is_empty() {
                    plot.points(
                        Points::new(
                            "whole test set (Evaluate)",
                            PlotPoints::Borrowed(curves.full_test_accuracy.points()),
                        )
                        .color(palette::LOSS)
                        .shape(egui_plot::MarkerShape::Diamond)
                        .radius(5.0),
                    );
                }
            });
        accuracy.response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "accuracy plot"));
    };
    if stacked {
        loss_ui(ui);
        accuracy_ui(ui);
    } else {
        ui.columns(2, |columns| {
            loss_ui(&mut columns[0]);
            accuracy_ui(&mut columns[1]);
        });
    }
    command
}

fn ui_gray(ctx: &egui::Context) -> egui::Color32 {
    if ctx.global_style().visuals.dark_mode { egui::Color32::from_gray(140) } else { egui::Color32::from_gray(150) }
}

/// The step under the pointer.
fn pointer_x(pos: &egui_plot::HoverPosition<'_>) -> f64 {
    match pos {
        egui_plot::HoverPosition::NearDataPoint { position, .. } | egui_plot::HoverPosition::Elsewhere { position } => {
            position.x
        }
    }
}

/// The index of the point of `points` (sorted by step) nearest to step `x`.
pub fn nearest(points: &[PlotPoint], x: f64) -> Option<usize> {
    let i = points.partition_point(|p| p.x < x);
    let candidates = [i.checked_sub(1), (i < points.len()).then_some(i)];
    candidates.into_iter().flatten().min_by(|&a, &b| (points[a].x - x).abs().total_cmp(&(points[b].x - x).abs()))
}

/// What hovering the loss plot at step `x` shows: the nearest measured step, its loss and the
/// smoothed loss there; nothing before the first step. Never the pointer's own coordinates,
/// which are not data (a loss of −0.02).
pub fn loss_label(curves: &Curves, x: f64) -> Option<String> {
    let i = nearest(curves.loss.points(), x)?;
    let p = curves.loss.points()[i];
    let mut text = format!(
        "step {}
loss {:.3}",
        p.x.round(),
        p.y
    );
    if let Some(e) = curves.loss_ema.points().get(i) {
        text.push_str(&format!(
            "
smoothed {:.3}",
            e.y
        ));
    }
    if curves.loss.per_point() > 1 {
        text.push_str(&format!(
            "
(mean of {} steps)",
            curves.loss.per_point()
        ));
    }
    Some(text)
}

/// What hovering the accuracy plot at step `x` shows: the nearest point of each series that has
/// one (test accuracy on `images` images, the whole test set's evaluation, the batch accuracy);
/// nothing on an empty plot.
pub fn accuracy_label(curves: &Curves, x: f64, images: &str) -> Option<String> {
    let at = |s: &Series| nearest(s.points(), x).map(|i| s.points()[i]);
    let mut lines = Vec::new();
    if let Some(p) = at(&curves.test_accuracy) {
        lines.push(format!("test accuracy {:.1}% on {images} images at step {}", p.y, p.x.round()));
    }
    if let Some(p) = at(&curves.full_test_accuracy) {
        lines.push(format!("whole test set {:.2}% at step {}", p.y, p.x.round()));
    }
    if let Some(p) = at(&curves.batch_accuracy_ema) {
        lines.push(format!("batch accuracy (EMA) {:.1}% at step {}", p.y, p.x.round()));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_run_is_decimated_to_the_cap() {
        let mut s = Series::new(100);
        for i in 0..10_000 {
            s.push(i as f64, 1.0);
        }
        assert!(s.len() <= 100, "kept {}", s.len());
        assert!(s.per_point() >= 64);
        // Averages keep steps in order and values unchanged for a constant series.
        assert!(s.points().windows(2).all(|w| w[0].x < w[1].x));
        assert!(s.points().iter().all(|p| p.y == 1.0));
    }

    #[test]
    fn hovering_shows_the_nearest_point_or_nothing() {
        let mut c = Curves::default();
        assert_eq!(loss_label(&c, 3.0), None, "an empty plot shows nothing");
        assert_eq!(accuracy_label(&c, 3.0, "500"), None);
        for step in 1..=3 {
            c.add_loss(&LossPoint { step, loss: step as f32, batch_accuracy: 0.5 });
        }
        let text = loss_label(&c, -40.0).unwrap_or_default();
        assert!(text.starts_with("step 1\nloss 1.000"), "left of the data: the first point, {text}");
        let text = loss_label(&c, 2.4).unwrap_or_default();
        assert!(text.starts_with("step 2\nloss 2.000"), "{text}");
        c.add_accuracy(&AccuracyPoint { step: 2, accuracy: 0.9 });
        let text = accuracy_label(&c, 2.9, "500").unwrap_or_default();
        assert!(text.contains("test accuracy 90.0% on 500 images at step 2"), "{text}");
    }

    #[test]
    fn the_smoothed_loss_starts_at_the_first_value() {
        let mut c = Curves::default();
        c.add_loss(&LossPoint { step: 1, loss: 2.3, batch_accuracy: 0.1 });
        let ema = c.smoothed_loss().unwrap_or_default();
        assert!((ema - 2.3).abs() < 1e-6, "ema {ema}");
    }
}
