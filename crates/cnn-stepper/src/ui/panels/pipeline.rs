//! The pipeline: every phase of one training step in order, the one that just ran highlighted,
//! each with its tensor shapes and what it computes.

use eframe::egui::{self, Color32, RichText, Stroke};

use crate::engine::{Layer, ModelConfig, Phase};
use crate::trainer::Snapshot;
use crate::ui::ViewState;
use crate::ui::support::palette;
use crate::ui::support::text::GlyphSafe;
use crate::ui::support::text::thousands;
use crate::ui::windows::help::{HelpTopic, heading_ui, phase_note};

/// The shapes a phase reads and writes, with `N` for the batch size, e.g.
/// `N×16×28×28 → N×32×28×28`.
pub fn phase_shapes(phase: Phase, cfg: &ModelConfig) -> String {
    use Layer::*;
    let (c, h, w) = (cfg.in_channels, cfg.in_height, cfg.in_width);
    let (f1, f2, k) = (cfg.conv1_filters, cfg.conv2_filters, cfg.kernel);
    let (h1, w1) = cfg.conv1_out();
    let (h2, w2) = cfg.conv2_out();
    let flat = thousands(cfg.flat_len() as u64);
    let (hid, cls) = (cfg.hidden, cfg.classes);
    let x = format!("N×{c}×{h}×{w}");
    let a1 = format!("N×{f1}×{h1}×{w1}");
    let a2 = format!("N×{f2}×{h2}×{w2}");
    match phase {
        Phase::Forward(Conv1) => format!("{x} → {a1}"),
        Phase::Forward(Relu1) | Phase::Backward(Relu1) => format!("{a1} → {a1}"),
        Phase::Forward(Conv2) => format!("{a1} → {a2}"),
        Phase::Forward(ReluConv2) | Phase::Backward(ReluConv2) => format!("{a2} → {a2}"),
        Phase::Forward(Fc1) => format!("{a2} → N×{flat} → N×{hid}"),
        Phase::Forward(Relu2) | Phase::Backward(Relu2) => format!("N×{hid} → N×{hid}"),
        Phase::Forward(Fc2) => format!("N×{hid} → N×{cls}"),
        Phase::Forward(Loss) => format!("N×{cls} → loss (1 number)"),
        Phase::Backward(Loss) => format!("loss → N×{cls}"),
        Phase::Backward(Fc2) => format!("N×{cls} → N×{hid}; dW4 {cls}×{hid}"),
        Phase::Backward(Fc1) => format!("N×{hid} → {a2}; dW3 {hid}×{flat}"),
        Phase::Backward(Conv2) => format!("{a2} → {a1}; dW2 {f2}×{f1}×{k}×{k}"),
        Phase::Backward(Conv1) => format!("{a1} → dW1 {f1}×{c}×{k}×{k}"),
        Phase::Update => format!("{} weights and biases", thousands(param_count(cfg) as u64)),
    }
}

/// Every trainable number of the network.
pub fn param_count(cfg: &ModelConfig) -> usize {
    let k2 = cfg.kernel * cfg.kernel;
    let (f1, f2) = (cfg.conv1_filters, cfg.conv2_filters);
    f1 * cfg.in_channels * k2
        + f1
        + f2 * f1 * k2
        + f2
        + cfg.hidden * cfg.flat_len()
        + cfg.hidden
        + cfg.classes * cfg.hidden
        + cfg.classes
}

fn phase_color(phase: Phase) -> Color32 {
    match phase {
        Phase::Forward(_) => palette::FORWARD,
        Phase::Backward(_) => palette::BACKWARD,
        Phase::Update => palette::UPDATE,
    }
}

/// Draws the pipeline for `snap`. Clicking a phase brings its layer's view to the front (it does
/// not run anything), so the panel returns no commands.
pub fn pipeline_ui(ui: &mut egui::Ui, snap: Option<&Snapshot>, view: &mut ViewState, glyphs: &mut GlyphSafe) {
    heading_ui(ui, HelpTopic::Pipeline);
    let Some(snap) = snap else {
        ui.label("Waiting for the trainer…");
        return;
    };
    let total = snap.phases.len();
    let last = snap.last_phase();
    let next = if snap.phases_done >= total { snap.phases.first().copied() } else { snap.next_phase() };
    ui.label(
        RichText::new(format!(
            "N = {} images per batch · phase {} of {}",
            snap.settings.batch_size, snap.phases_done, total
        ))
        .small(),
    );
    if last.is_none() {
        let first = next.map(|n| n.label()).unwrap_or_default();
        ui.label(RichText::new(format!("Nothing has run in this step yet; next: {first}")).small().weak());
    }
    ui.add_space(2.0);
    // Scroll the phase that just ran into sight once per phase, not every frame (so the user can
    // still scroll), and not while running (it would never hold still).
    let position = (snap.step, snap.phases_done);
    let scroll = !snap.running && view.scrolled_for != Some(position);
    view.scrolled_for = Some(position);
    let mut clicked = None;
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        let mut backward_started = false;
        for (i, &phase) in snap.phases.iter().enumerate() {
            if phase.is_backward() && !backward_started {
                backward_started = true;
                ui.add_space(2.0);
                ui.label(RichText::new("backward pass").small().weak());
            } else if i == 0 {
                ui.label(RichText::new("forward pass").small().weak());
            } else if phase == Phase::Update {
                ui.add_space(2.0);
            }
            let is_last = Some(phase) == last;
            let is_next = !is_last && Some(phase) == next && snap.phases_done < total;
            let done = i < snap.phases_done;
            let row =
                RowState { is_last, is_next, done, focused: view.focus == Some(phase), scroll: scroll && is_last };
            if phase_row_ui(ui, phase, &snap.config, row, glyphs) {
                clicked = Some(phase);
            }
        }
    });
    if let Some(p) = clicked {
        view.focus_phase(p, Some(snap));
    }
}

/// How a row relates to the step's progress.
struct RowState {
    is_last: bool,
    is_next: bool,
    done: bool,
    focused: bool,
    scroll: bool,
}

/// One phase: its name (a selectable button, on when it just ran), shapes and formula.
/// Returns true when clicked.
fn phase_row_ui(ui: &mut egui::Ui, phase: Phase, cfg: &ModelConfig, row: RowState, glyphs: &mut GlyphSafe) -> bool {
    let RowState { is_last, is_next, done, focused, scroll } = row;
    let color = phase_color(phase);
    let visuals = ui.visuals();
    let fill = if is_last { visuals.selection.bg_fill.gamma_multiply(0.35) } else { Color32::TRANSPARENT };
    let stroke = if is_last {
        Stroke::new(2.0, color)
    } else if focused {
        Stroke::new(1.0, visuals.selection.stroke.color)
    } else if is_next {
        Stroke::new(1.0, color.gamma_multiply(0.5))
    } else {
        Stroke::NONE
    };
    let mut clicked = false;
    let frame =
        egui::Frame::new().fill(fill).stroke(stroke).corner_radius(4.0).inner_margin(egui::Margin::symmetric(6, 3));
    let shapes = glyphs.get(ui.ctx(), &phase_shapes(phase, cfg), true);
    let formula = glyphs.get(ui.ctx(), phase.formula(), true);
    let note = glyphs.get(ui.ctx(), phase_note(phase), false);
    let response = frame.show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            // A coloured bar: blue forward, orange backward, so the two passes separate at a glance.
            let (bar, _) = ui.allocate_exact_size(egui::vec2(4.0, 16.0), egui::Sense::hover());
            ui.painter().rect_filled(bar, 1.0, if done || is_last { color } else { color.gamma_multiply(0.35) });
            let mut name = RichText::new(phase.label()).size(14.0);
            if is_last {
                name = name.strong().color(color);
            }
            let button = egui::Button::selectable(is_last, name).frame_when_inactive(false);
            let r = ui.add(button).on_hover_ui(|ui| {
                ui.label(phase.description());
                ui.label(RichText::new(&shapes).monospace());
                ui.label(RichText::new(&formula).monospace());
                ui.set_max_width(440.0);
                ui.add(egui::Label::new(RichText::new(&note).small()).wrap());
                ui.label(RichText::new("Click to show this layer's view.").weak());
            });
            clicked |= r.clicked();
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.add(egui::Label::new(RichText::new(&shapes).monospace().size(10.5)).truncate());
            });
        });
        // Every formula whole, wrapped: cut with "…" at 1280 pixels it could not be read.
        let formula_text = RichText::new(&formula).monospace().size(10.5).weak();
        ui.add(egui::Label::new(formula_text).wrap());
        if is_last {
            // The phase that just ran also gets a sentence in words.
            ui.add(egui::Label::new(RichText::new(phase.description()).small()).wrap());
        }
    });
    if scroll {
        response.response.scroll_to_me(None);
    }
    clicked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv2_shapes_read_like_the_post() {
        let cfg = ModelConfig::default();
        assert_eq!(phase_shapes(Phase::Forward(Layer::Conv2), &cfg), "N×16×28×28 → N×32×28×28");
        assert_eq!(phase_shapes(Phase::Forward(Layer::Fc1), &cfg), "N×32×28×28 → N×25,088 → N×100");
    }

    #[test]
    fn the_post_network_has_about_2_5_million_parameters() {
        let n = param_count(&ModelConfig::default());
        assert_eq!(n, 16 * 25 + 16 + 32 * 16 * 25 + 32 + 100 * 25088 + 100 + 10 * 100 + 10);
    }
}
