//! What a lesson in front of a class needs to see (issue 12): the Step back button, where the
//! learning rate is in its schedule, the size of the update, a loss stuck at ln 10 explained
//! where the eye is, maps whose scale is tiny said so in large print, and the diverged points
//! kept on the loss curve after the rewind.

use eframe::egui::{self, RichText};
use egui_plot::{MarkerShape, PlotPoint, PlotUi, Points, Text};

use crate::engine::{DECAY_EVERY_IMAGES, Preset};
use crate::trainer::{Command, DivergedPoint, MagnitudePoint, Snapshot};
use crate::ui::panels::controls::{Availability, explain};
use crate::ui::panels::curves::{Curves, Series};
use crate::ui::support::colormap::fmt_sig;
use crate::ui::support::text::thousands;

/// ln 10: the loss of a network that gives every one of 10 classes the same probability.
pub const LN_10: f64 = std::f64::consts::LN_10;
/// A loss this close to ln 10 counts as sitting there.
pub const LN_10_TOLERANCE: f64 = 0.01;
/// Steps in a row at ln 10 before the curves panel says why.
pub const STALLED_STEPS: usize = 20;

/// The "◀ Step back" button; returns the command when clicked.
pub fn step_back_button_ui(ui: &mut egui::Ui, snap: Option<&Snapshot>, avail: &Availability) -> Option<Command> {
    let ok = avail.can_step_back(snap);
    // The arrow is in the monospace font: the proportional one has no ◀.
    let mut text = egui::text::LayoutJob::default();
    // The placeholder colour lets the button colour the text (dimmed when disabled).
    let color = egui::Color32::PLACEHOLDER;
    text.append("◀", 0.0, egui::TextFormat::simple(egui::FontId::monospace(15.0), color));
    text.append(" Step back", 2.0, egui::TextFormat::simple(egui::FontId::proportional(15.0), color));
    let button = egui::Button::new(text).min_size(egui::vec2(92.0, 28.0));
    let r = ui.add_enabled(ok.is_ok(), button);
    let r = explain(r, &ok, "Go back one phase within this batch (Left arrow): the same numbers as before");
    r.clicked().then_some(Command::StepBack)
}

/// "lr 0.0030 (×0.3 at 60,000 images; next at 120,000)": the learning rate in force and where
/// it is in its schedule.
pub fn lr_schedule_text(s: &Snapshot) -> String {
    let h = s.settings.hyper;
    let sched = &s.lr_schedule;
    let lr = format!("lr {}", fmt_sig(sched.lr));
    if h.lr_decay >= 1.0 {
        return format!("{lr} (constant)");
    }
    // As typed (0.3), not to three digits (0.300).
    let factor = h.lr_decay.to_string();
    let seen = thousands(sched.images);
    if sched.floored {
        return format!("{lr} (at its floor, 1% of {}; {seen} images seen)", fmt_sig(h.lr));
    }
    let next = sched.next_at.map(thousands).unwrap_or_default();
    match sched.decays {
        0 => format!("{lr} (×{factor} at {next} images; {seen} seen)"),
        1 => format!("{lr} (×{factor} after {} images; next at {next})", thousands(DECAY_EVERY_IMAGES)),
        d => format!("{lr} (×{factor}^{d} after {} images; next at {next})", thousands(d * DECAY_EVERY_IMAGES)),
    }
}

/// The learning-rate readout of the control bar.
pub fn lr_schedule_ui(ui: &mut egui::Ui, s: &Snapshot) {
    ui.label(RichText::new(lr_schedule_text(s)).monospace()).on_hover_text(format!(
        "The learning rate is multiplied by the lr decay ({}) after every {} training images (one pass over \
         MNIST's training set, whatever data is loaded), and never falls below 1% of the rate set.",
        fmt_sig(s.settings.hyper.lr_decay),
        thousands(DECAY_EVERY_IMAGES)
    ));
}

/// The size of the last update, one line per weight tensor: what the update phase did.
pub fn update_sizes_ui(ui: &mut egui::Ui, s: &Snapshot) {
    let Some(sizes) = &s.update else {
        ui.label(
            RichText::new("The update runs last in a step: step to it to see how far it moved the weights.").weak(),
        );
        return;
    };
    let momentum = s.settings.hyper.momentum;
    // Monospace: the proportional font has no ← or ‖.
    ui.label(RichText::new(format!("Update of step {}: W ← W + ΔW", s.step)).monospace().strong()).on_hover_text(
        format!(
            "ΔW = momentum·(last ΔW) − lr·∂L/∂W, momentum {}. |·| is the square root of the sum of squares. \
         |ΔW|/|W| around 1e-3 is a healthy step; far below, the weights barely move; far above, training may \
         diverge.",
            fmt_sig(momentum)
        ),
    );
    egui::Grid::new("update sizes").num_columns(5).spacing([14.0, 2.0]).striped(true).show(ui, |ui| {
        for h in ["tensor", "‖ΔW‖", "‖W‖", "‖ΔW‖ / ‖W‖", "lr·‖∂L/∂W‖"] {
            ui.label(RichText::new(h).monospace().strong());
        }
        ui.end_row();
        for u in sizes {
            ui.label(RichText::new(&u.tensor).monospace());
            for v in [u.delta, u.weight, u.ratio(), u.plain_step()] {
                ui.label(RichText::new(fmt_sig(v)).monospace());
            }
            ui.end_row();
        }
    });
}

/// How many of the latest stored loss points sit within [`LN_10_TOLERANCE`] of ln 10.
pub fn steps_at_ln10(loss: &Series) -> usize {
    loss.points().iter().rev().take_while(|p| (p.y - LN_10).abs() <= LN_10_TOLERANCE).count()
}

/// When the loss has sat at ln 10 for [`STALLED_STEPS`] steps, a callout above the curves
/// says what that means, with the layers' numbers (from the Health tab's measurements).
pub fn stalled_loss_ui(ui: &mut egui::Ui, curves: &Curves, last: Option<&MagnitudePoint>, snap: Option<&Snapshot>) {
    let stuck = steps_at_ln10(&curves.loss);
    if stuck < STALLED_STEPS {
        return;
    }
    let steps = if curves.loss.per_point() > 1 { "points".to_string() } else { format!("{stuck} steps") };
    let mut text = format!(
        "The loss has sat at ln 10 = 2.303 for the last {steps}: every class gets probability 0.1, whatever \
         the digit."
    );
    if let Some(m) = last {
        text.push_str(&format!(
            " The signal fades layer by layer (RMS conv1 {}, conv2 {}) and the gradient reaching conv1 is {}: \
             the filters barely move.",
            fmt_sig(m.activations[0]),
            fmt_sig(m.activations[2]),
            fmt_sig(m.gradients[0]),
        ));
    }
    if snap.is_some_and(|s| s.preset == Preset::Post) {
        text.push_str(" The post's initial weights (×1e-4) do this; the recommended preset learns.");
    }
    let fill = ui.visuals().warn_fg_color.gamma_multiply(0.18);
    egui::Frame::new().fill(fill).corner_radius(4.0).inner_margin(4.0).show(ui, |ui| {
        ui.label(RichText::new("Stuck at ln 10").strong().color(ui.visuals().warn_fg_color));
        ui.label(RichText::new(text).small());
    });
    ui.add_space(4.0);
}

/// A large warning beside a legend whose scale is tiny, so that maps that look normal are not
/// taken for a healthy signal: `scale` is the largest |value| the colours stand for.
pub fn tiny_scale_ui(ui: &mut egui::Ui, scale: f32, gradients: bool) {
    // Healthy activations are around 1; healthy map gradients of a batch mean are small, but
    // not below 1e-7.
    let tiny = if gradients { 1e-7 } else { 1e-2 };
    if scale <= 0.0 || scale >= tiny {
        return;
    }
    let stretch = thousands((1.0 / scale).round().min(1e15) as u64);
    ui.label(RichText::new(format!("tiny: ±{scale:.1e}")).size(17.0).strong().color(ui.visuals().warn_fg_color))
        .on_hover_text(format!(
            "Each layer is coloured by its own largest value, so even a vanishing signal fills the colour scale: \
             these colours are stretched ×{stretch}."
        ));
}

/// The diverged points on the loss plot: a red cross each, and a line of text per mark with
/// the loss that blew up. A loss far above the curve is drawn at the top of the plot (the label says its
/// value), so the rest of the curve stays readable.
pub fn divergence_marks(plot: &mut PlotUi<'_>, marks: &[DivergedPoint], loss: &Series) {
    if marks.is_empty() {
        return;
    }
    let top = loss.points().iter().map(|p| p.y).filter(|y| y.is_finite()).fold(LN_10, f64::max) * 1.6;
    let red = egui::Color32::from_rgb(220, 40, 40);
    for d in marks {
        let loss = f64::from(d.loss);
        let y = if loss.is_finite() { loss.min(top) } else { top };
        // No names: the marks stay out of the legend (the label says what they are).
        plot.points(
            Points::new("", vec![[d.step as f64, y]])
                .shape(MarkerShape::Cross)
                .radius(7.0)
                .color(red)
                .allow_hover(false),
        );
    }
    // One label, for the latest: stacked labels overlap on a plot a hundred pixels high.
    if let Some(last) = marks.last() {
        let mut words = format!("step {}: loss {} diverged", last.step, fmt_loss(last.loss));
        if marks.len() > 1 {
            words.push_str(&format!(" (+{} earlier ×)", marks.len() - 1));
        }
        plot.text(
            Text::new("", PlotPoint::new(0.0, top), RichText::new(words).color(red).strong())
                .anchor(egui::Align2::LEFT_TOP),
        );
    }
}

/// The step the loss plot's x axis must reach to show every mark (0 with none).
pub fn marks_extent(marks: &[DivergedPoint]) -> f64 {
    marks.iter().map(|d| d.step as f64 + 0.5).fold(0.0, f64::max)
}

/// A loss as a person reads it: 68,293 rather than 68293.4 or 6.8e4.
fn fmt_loss(loss: f32) -> String {
    if loss.is_finite() && loss.abs() >= 1000.0 && loss.abs() < 1e15 {
        thousands(loss.round() as u64)
    } else {
        fmt_sig(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_at_ln_10_is_counted_until_it_moves() {
        let mut c = Curves::default();
        for step in 1..=30 {
            let loss = if step <= 5 { 2.0 } else { std::f32::consts::LN_10 + 0.004 };
            c.add_loss(&crate::trainer::LossPoint { step, loss, batch_accuracy: 0.1 });
        }
        assert_eq!(steps_at_ln10(&c.loss), 25);
    }

    #[test]
    fn a_large_loss_reads_with_thousands() {
        assert_eq!(fmt_loss(68_293.4), "68,293");
        assert_eq!(fmt_loss(f32::INFINITY), fmt_sig(f32::INFINITY));
    }
}
