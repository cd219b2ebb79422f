//! The pipeline: every phase of one training step in order, the one that just ran highlighted,
//! each with its tensor shapes and what it computes.

use eframe::egui::{self, Color32, RichText, Stroke};

use crate::engine::Phase;
use crate::engine::model::{LayerSpec, Plan, Shape};
use crate::trainer::Snapshot;
use crate::ui::ViewState;
use crate::ui::support::text::GlyphSafe;
use crate::ui::support::text::thousands;
use crate::ui::windows::help::{HelpTopic, heading_ui, phase_color, phase_note};

/// A tensor of the batch with `N` for the batch size: `N×16×28×28` or `N×25,088`.
fn batch_shape(shape: Shape) -> String {
    match shape {
        Shape::Maps { c, h, w } => format!("N×{c}×{h}×{w}"),
        Shape::Flat(n) => format!("N×{}", thousands(n as u64)),
    }
}

/// The shapes a phase reads and writes, with `N` for the batch size, e.g.
/// `N×16×28×28 → N×32×28×28`; a backward phase also names the gradient of its weights.
pub fn phase_shapes(phase: Phase, plan: &Plan) -> String {
    let cls = plan.classes;
    match phase {
        Phase::Forward(i) => plan
            .layers
            .get(i)
            .map_or_else(String::new, |l| format!("{} → {}", batch_shape(l.input), batch_shape(l.output))),
        Phase::Loss => format!("N×{cls} → loss (1 number)"),
        Phase::LossBackward => format!("loss → N×{cls}"),
        Phase::Backward(i) => plan.layers.get(i).map_or_else(String::new, |l| {
            let grads = if i == 0 { String::new() } else { format!(" → {}", batch_shape(l.input)) };
            let dw = match l.param_shapes().first() {
                Some((_, shape)) if matches!(l.spec, LayerSpec::Conv { .. } | LayerSpec::Fc { .. }) => {
                    format!("; dW {}", shape.iter().map(|d| thousands(*d as u64)).collect::<Vec<_>>().join("×"))
                }
                _ => String::new(),
            };
            format!("{}{grads}{dw}", batch_shape(l.output))
        }),
        Phase::Update => format!("{} weights and biases", thousands(plan.total_params() as u64)),
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
        let first = next.map(|n| snap.model.phase_label(n)).unwrap_or_default();
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
            if phase_row_ui(ui, phase, snap, row, glyphs) {
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
fn phase_row_ui(ui: &mut egui::Ui, phase: Phase, snap: &Snapshot, row: RowState, glyphs: &mut GlyphSafe) -> bool {
    let (model, optimizer) = (&snap.model, snap.settings.hyper.optimizer);
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
    let shapes = glyphs.get(ui.ctx(), &phase_shapes(phase, &model.plan), true);
    let formula = glyphs.get(ui.ctx(), &model.plan.phase_formula(phase, optimizer.optimizer()), true);
    let description = glyphs.get(ui.ctx(), &model.plan.phase_sentence(phase, optimizer.optimizer()), false);
    let note = glyphs.get(ui.ctx(), &phase_note(model, phase, optimizer), false);
    let response = frame.show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            // A coloured bar: blue forward, orange backward, so the two passes separate at a glance.
            let (bar, _) = ui.allocate_exact_size(egui::vec2(4.0, 16.0), egui::Sense::hover());
            ui.painter().rect_filled(bar, 1.0, if done || is_last { color } else { color.gamma_multiply(0.35) });
            let mut name = RichText::new(model.phase_label(phase)).size(14.0);
            if is_last {
                name = name.strong().color(color);
            }
            let button = egui::Button::selectable(is_last, name).frame_when_inactive(false);
            let r = ui.add(button).on_hover_ui(|ui| {
                ui.label(&description);
                ui.label(RichText::new(&shapes).monospace());
                ui.label(RichText::new(&formula).monospace());
                ui.set_max_width(440.0);
                if note != description {
                    ui.add(egui::Label::new(RichText::new(&note).small()).wrap());
                }
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
            ui.add(egui::Label::new(RichText::new(&description).small()).wrap());
        }
    });
    if scroll {
        response.response.scroll_to_me(None);
    }
    clicked
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::model::resolve;

    #[test]
    fn conv2_shapes_read_like_the_post() {
        let plan = resolve("post", (1, 28, 28), 10).unwrap();
        assert_eq!(phase_shapes(Phase::Forward(2), &plan), "N×16×28×28 → N×32×28×28");
        assert_eq!(phase_shapes(Phase::Forward(3), &plan), "N×32×28×28 → N×25,088");
        assert_eq!(phase_shapes(Phase::Backward(4), &plan), "N×100 → N×25,088; dW 100×25,088");
    }

    #[test]
    fn a_strided_conv_and_an_average_pool_read_their_own_shapes() {
        let plan = resolve("conv(4,3,stride=2,pad=1), tanh, avgpool(2), flatten, fc(10)", (1, 28, 28), 10).unwrap();
        assert_eq!(phase_shapes(Phase::Forward(0), &plan), "N×1×28×28 → N×4×14×14");
        assert_eq!(phase_shapes(Phase::Forward(2), &plan), "N×4×14×14 → N×4×7×7");
        assert_eq!(phase_shapes(Phase::Backward(0), &plan), "N×4×14×14; dW 4×1×3×3", "no gradient for the digits");
        assert_eq!(phase_shapes(Phase::Backward(4), &plan), "N×10 → N×196; dW 10×196");
        assert_eq!(phase_shapes(Phase::Update, &plan), "2,010 weights and biases");
    }

    #[test]
    fn a_pool_halves_the_maps_and_the_update_counts_every_parameter() {
        let plan = resolve("lenet5", (1, 28, 28), 10).unwrap();
        assert_eq!(phase_shapes(Phase::Forward(2), &plan), "N×6×28×28 → N×6×14×14");
        assert_eq!(phase_shapes(Phase::Update, &plan), "61,706 weights and biases");
    }
}
