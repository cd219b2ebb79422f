//! What a lesson in front of a class needs to see (issue 12): the Step back button, where the
//! learning rate is in its schedule, the size of the update, a loss stuck at ln 10 explained
//! where the eye is, maps whose scale is tiny said so in large print, and the diverged points
//! kept on the loss curve after the rewind.

use eframe::egui::{self, RichText};
use egui_plot::{MarkerShape, PlotPoint, PlotUi, Points, Text};

use crate::engine::model::{LayerSpec, PlannedLayer};
use crate::engine::{DECAY_EVERY_IMAGES, Hyper, OptimizerKind, Preset};
use crate::trainer::{Command, DivergedPoint, MagnitudePoint, ModelView, Snapshot};
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

/// The readout shortened for a narrow control bar: "lr 0.0100 (×0.3 at 60,000)", or "lr
/// 0.0100" alone.
pub fn lr_schedule_short(s: &Snapshot, shortest: bool) -> String {
    let sched = &s.lr_schedule;
    let lr = format!("lr {}", fmt_sig(sched.lr));
    match sched.next_at {
        Some(next) if !shortest && s.settings.hyper.lr_decay < 1.0 => {
            format!("{lr} (×{} at {})", s.settings.hyper.lr_decay, thousands(next))
        }
        _ => lr,
    }
}

/// The learning-rate readout of the control bar, in `room` points: whole if it fits, else
/// shortened (the tooltip always has it whole).
pub fn lr_schedule_ui(ui: &mut egui::Ui, s: &Snapshot, room: f32) {
    let full = lr_schedule_text(s);
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let fits =
        |text: &str| ui.painter().layout_no_wrap(text.to_string(), font.clone(), egui::Color32::WHITE).size().x <= room;
    let text = [full.clone(), lr_schedule_short(s, false)]
        .into_iter()
        .find(|t| fits(t))
        .unwrap_or_else(|| lr_schedule_short(s, true));
    let response = ui.label(RichText::new(text).monospace());
    // Shortened to fit, it still reads whole to a screen reader (and to the window tests).
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &full));
    response.on_hover_text(format!(
        "{full}\nThe learning rate is multiplied by the lr decay ({}) after every {} training images (one pass \
         over MNIST's training set, whatever data is loaded), and never falls below 1% of the rate set.",
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
    // Monospace: the proportional font has no ← or ‖.
    ui.label(RichText::new(format!("Update of step {}: W ← W + ΔW", s.step)).monospace().strong())
        .on_hover_text(update_rule_text(s.settings.hyper));
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

/// What the update rule is, for the tooltip of the update sizes: SGD's with its momentum, or
/// Adam's.
pub fn update_rule_text(h: Hyper) -> String {
    let rule = match h.optimizer {
        OptimizerKind::Sgd => format!("SGD: ΔW = momentum·(last ΔW) − lr·∂L/∂W, momentum {}.", fmt_sig(h.momentum)),
        OptimizerKind::Adam => "Adam: ΔW = −lr·m̂ / (√v̂ + ε), with m and v the running means of ∂L/∂W (β1 0.9) \
             and of its square (β2 0.999), corrected for their start at 0: each weight moves by about lr."
            .to_string(),
    };
    format!(
        "{rule} ‖·‖ is the square root of the sum of squares. ‖ΔW‖/‖W‖ around 1e-3 is a healthy step; far \
         below, the weights barely move; far above, training may diverge. lr·‖∂L/∂W‖ is what plain SGD would \
         have moved."
    )
}

/// How many of the latest stored loss points sit within [`LN_10_TOLERANCE`] of `uniform`, the
/// loss of a uniform guess (ln 10 for ten classes).
pub fn steps_at_uniform_loss(loss: &Series, uniform: f64) -> usize {
    loss.points().iter().rev().take_while(|p| (p.y - uniform).abs() <= LN_10_TOLERANCE).count()
}

/// How many of the latest stored loss points sit within [`LN_10_TOLERANCE`] of ln 10.
pub fn steps_at_ln10(loss: &Series) -> usize {
    steps_at_uniform_loss(loss, LN_10)
}

/// The sentence on how the signal fades, from the latest magnitudes: the RMS of the output of
/// every layer with weights but the last (`conv1`, `conv2`, `fc1` …), and of the gradient
/// reaching the first. `None` when the measurements do not cover the network (an older file).
pub fn fading_signal_text(model: &ModelView, m: &MagnitudePoint) -> Option<String> {
    let weighted: Vec<&PlannedLayer> =
        model.plan.layers.iter().filter(|l| matches!(l.spec, LayerSpec::Conv { .. } | LayerSpec::Fc { .. })).collect();
    let (first, inner) = (weighted.first()?, &weighted[..weighted.len().saturating_sub(1)]);
    let rms: Vec<String> = inner
        .iter()
        .map(|l| Some(format!("{} {}", l.name, fmt_sig(*m.activations.get(l.index).filter(|v| v.is_finite())?))))
        .collect::<Option<_>>()?;
    let gradient = m.gradients.get(first.index).filter(|v| v.is_finite())?;
    let filters = if matches!(first.spec, LayerSpec::Conv { .. }) { "filters" } else { "weights" };
    let layers = if rms.is_empty() { String::new() } else { format!(" (RMS {})", rms.join(", ")) };
    Some(format!(
        " The signal fades layer by layer{layers} and the gradient reaching {} is {}: the {filters} barely move.",
        first.name,
        fmt_sig(*gradient)
    ))
}

/// When the loss has sat at the loss of a uniform guess (ln 10 for ten classes) for
/// [`STALLED_STEPS`] steps, a callout above the curves says what that means, with the layers'
/// numbers (from the Health tab's measurements).
pub fn stalled_loss_ui(ui: &mut egui::Ui, curves: &Curves, last: Option<&MagnitudePoint>, snap: Option<&Snapshot>) {
    let classes = snap.map_or(10, |s| s.model.plan.classes).max(2);
    let uniform = (classes as f64).ln();
    let stuck = steps_at_uniform_loss(&curves.loss, uniform);
    if stuck < STALLED_STEPS {
        return;
    }
    let steps = if curves.loss.per_point() > 1 { "points".to_string() } else { format!("{stuck} steps") };
    let mut text = format!(
        "The loss has sat at ln {classes} = {uniform:.3} for the last {steps}: every class gets probability \
         1/{classes}, whatever the image."
    );
    if let (Some(m), Some(s)) = (last, snap)
        && let Some(fading) = fading_signal_text(&s.model, m)
    {
        text.push_str(&fading);
    }
    if snap.is_some_and(|s| s.preset == Preset::Post) {
        text.push_str(" The post preset's initial weights (std 1e-4) do this; the recommended preset learns.");
    }
    let fill = ui.visuals().warn_fg_color.gamma_multiply(0.18);
    egui::Frame::new().fill(fill).corner_radius(4.0).inner_margin(4.0).show(ui, |ui| {
        ui.label(RichText::new(format!("Stuck at ln {classes}")).strong().color(ui.visuals().warn_fg_color));
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
    #![allow(clippy::unwrap_used)]
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

    fn point(layers: usize) -> MagnitudePoint {
        MagnitudePoint {
            step: 1,
            activations: (0..layers).map(|i| 10f32.powi(-(i as i32) - 1)).collect(),
            gradients: vec![2e-9; layers],
            weights: Vec::new(),
            weight_gradients: Vec::new(),
        }
    }

    fn model(name: &str) -> ModelView {
        ModelView { name: Some(name.into()), plan: crate::engine::model::resolve(name, (1, 28, 28), 10).unwrap() }
    }

    #[test]
    fn the_fading_signal_is_measured_at_every_layer_with_weights_but_the_last() {
        let post = fading_signal_text(&model("post"), &point(7)).unwrap();
        assert_eq!(
            post,
            " The signal fades layer by layer (RMS conv1 0.100, conv2 0.00100, fc1 1.00e-5) and the gradient \
             reaching conv1 is 2.00e-9: the filters barely move."
        );
        let lenet = fading_signal_text(&model("lenet5"), &point(12)).unwrap();
        for layer in ["conv1", "conv2", "fc1", "fc2"] {
            assert!(lenet.contains(&format!("{layer} ")), "{layer} in {lenet}");
        }
        assert!(!lenet.contains("fc3"), "the scores are not a signal that fades: {lenet}");
        // Measurements of another network (fewer layers) say nothing rather than index out of range.
        assert!(fading_signal_text(&model("lenet5"), &point(3)).is_none());
    }

    #[test]
    fn the_update_rule_follows_the_optimizer() {
        let sgd = update_rule_text(Preset::Recommended.hyper());
        assert!(sgd.starts_with("SGD: ΔW = momentum·(last ΔW)") && sgd.contains("momentum 0.9"), "{sgd}");
        let adam = update_rule_text(Preset::Adam.hyper());
        assert!(adam.starts_with("Adam:") && !adam.contains("momentum 0.9"), "{adam}");
    }

    #[test]
    fn a_large_loss_reads_with_thousands() {
        assert_eq!(fmt_loss(68_293.4), "68,293");
        assert_eq!(fmt_loss(f32::INFINITY), fmt_sig(f32::INFINITY));
    }
}
