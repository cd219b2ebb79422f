//! Training curves: loss per step with a smoothed line, and accuracy on held-out test images.
//!
//! Points arrive a few at a time in each snapshot and are kept here, compactly: a run may go on
//! for hours, so once a series holds [`MAX_POINTS`] it halves itself by averaging neighbours and
//! from then on stores one point per two (four, …) steps.

use eframe::egui::{self, RichText};
use egui_plot::{Corner, Legend, Line, LineStyle, Plot, PlotPoint, PlotPoints, Points};

use crate::trainer::{AccuracyPoint, Command, DivergedPoint, EvalResult, LossPoint};
use crate::ui::support::palette;
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

/// Draws the loss and accuracy plots, one above the other; returns `Evaluate` when the user asks
/// for a full test-set evaluation.
pub fn curves_ui(ui: &mut egui::Ui, curves: &Curves, can_evaluate: bool) -> Option<Command> {
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
    let mut summary = Vec::new();
    if let Some(l) = curves.smoothed_loss() {
        summary.push(format!("loss ≈ {l:.3}"));
    }
    if let Some(a) = curves.test_accuracy.last() {
        summary.push(format!("test accuracy {:.1}% at step {}", a.y, a.x as u64));
    }
    if let Some(e) = &curves.last_eval {
        summary.push(format!(
            "full test set: {:.2}% of {}",
            e.accuracy() * 100.0,
            crate::ui::support::text::thousands(e.count as u64)
        ));
    }
    if summary.is_empty() {
        summary.push("no steps yet".to_string());
    }
    ui.label(RichText::new(summary.join(" · ")).small());

    let avail = ui.available_height();
    let plot_h = ((avail - 24.0) / 2.0).max(90.0);
    let link = egui::Id::unique("curves x axis");

    Plot::new("loss plot")
        .height(plot_h)
        .legend(Legend::default().position(Corner::RightTop))
        .x_axis_label("step")
        .y_axis_label("loss")
        .include_y(0.0)
        .include_x(0.0)
        .include_x(crate::ui::panels::lesson::marks_extent(&curves.divergences))
        .link_axis(link, [true, false])
        .allow_scroll(false)
        .show_background(false)
        .label_formatter(|pos| hover_label(pos, "loss", ""))
        .show(ui, |plot| {
            plot.line(
                Line::new("loss per step", PlotPoints::Borrowed(curves.loss.points()))
                    .color(ui_gray(plot.ctx()))
                    .width(1.0),
            );
            plot.line(
                Line::new("smoothed (EMA)", PlotPoints::Borrowed(curves.loss_ema.points()))
                    .color(palette::LOSS)
                    .width(2.5),
            );
            crate::ui::panels::lesson::divergence_marks(plot, &curves.divergences, &curves.loss);
        });
    Plot::new("accuracy plot")
        .height(plot_h)
        .legend(Legend::default().position(Corner::RightBottom))
        .x_axis_label("step")
        .y_axis_label("accuracy (%)")
        .include_y(0.0)
        .include_y(100.0)
        .include_x(0.0)
        .link_axis(link, [true, false])
        .allow_scroll(false)
        .show_background(false)
        .label_formatter(|pos| hover_label(pos, "accuracy", "%"))
        .show(ui, |plot| {
            plot.line(
                Line::new("batch accuracy (EMA)", PlotPoints::Borrowed(curves.batch_accuracy_ema.points()))
                    .color(ui_gray(plot.ctx()))
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
                    Points::new("whole test set (Evaluate)", PlotPoints::Borrowed(curves.full_test_accuracy.points()))
                        .color(palette::LOSS)
                        .shape(egui_plot::MarkerShape::Diamond)
                        .radius(5.0),
                );
            }
        });
    command
}

fn ui_gray(ctx: &egui::Context) -> egui::Color32 {
    if ctx.global_style().visuals.dark_mode { egui::Color32::from_gray(140) } else { egui::Color32::from_gray(150) }
}

fn hover_label(pos: &egui_plot::HoverPosition<'_>, what: &str, unit: &str) -> Option<String> {
    match pos {
        egui_plot::HoverPosition::NearDataPoint { plot_name, position, .. } => {
            Some(format!("{plot_name}\nstep {:.0}\n{what} {:.3}{unit}", position.x, position.y))
        }
        egui_plot::HoverPosition::Elsewhere { position } => {
            Some(format!("step {:.0}\n{what} {:.3}{unit}", position.x, position.y))
        }
    }
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
    fn the_smoothed_loss_starts_at_the_first_value() {
        let mut c = Curves::default();
        c.add_loss(&LossPoint { step: 1, loss: 2.3, batch_accuracy: 0.1 });
        let ema = c.smoothed_loss().unwrap_or_default();
        assert!((ema - 2.3).abs() < 1e-6, "ema {ema}");
    }
}
