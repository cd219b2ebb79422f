//! The network's outputs for the selected digit: class probabilities as a bar chart (with the
//! gradient of the loss w.r.t. each score once the backward pass started), and FC1's 100 hidden
//! units.

use eframe::egui::{self, Color32, RichText, Sense, Stroke, StrokeKind, pos2, vec2};

use crate::engine::argmax;
use crate::engine::model::{LayerSpec, Shape};
use crate::trainer::Snapshot;
use crate::ui::ViewState;
use crate::ui::support::colormap::{ColorMap, fmt_sig};
use crate::ui::support::palette;
use crate::ui::support::text::{item_word_capital, prob};
use crate::ui::support::textures::TileSet;
use crate::ui::windows::help::{HelpTopic, heading_ui};

/// Whose outputs the panel shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    /// The batch's selected digit.
    Batch,
    /// An image run through the network on its own (a drawing, a test image).
    Probe {
        /// What to call it, e.g. "Your drawing".
        caption: String,
        /// Its true class, if known.
        label: Option<usize>,
    },
}

/// Draws the selected digit's (or a probed image's) class probabilities and FC1 activations;
/// `digits` holds its thumbnail at the sample's index; `gradients` follows the feature-map mode.
pub fn outputs_ui(
    ui: &mut egui::Ui,
    snap: Option<&Snapshot>,
    digits: &TileSet,
    view: &ViewState,
    gradients: bool,
    subject: &Subject,
) {
    // The dense part of the network (from flatten on) and the loss are shown here.
    let dense_from = snap.map_or(usize::MAX, |s| {
        s.model.plan.layers.iter().position(|l| matches!(l.output, Shape::Flat(_))).unwrap_or(usize::MAX)
    });
    let focused = view.is_loss_focused()
        || snap.is_some_and(|s| (dense_from..s.model.plan.layers.len()).any(|i| view.is_focused(i)));
    let frame = egui::Frame::new().inner_margin(4).corner_radius(4.0).stroke(if focused {
        Stroke::new(2.0, ui.visuals().selection.stroke.color)
    } else {
        Stroke::NONE
    });
    frame.show(ui, |ui| {
        heading_ui(ui, HelpTopic::Outputs);
        let Some(snap) = snap else { return };
        let s = &snap.sample;
        let names = &snap.class_names;
        let (caption, label) = match subject {
            Subject::Batch => (
                format!("{} {} of the batch", item_word_capital(names), s.index + 1),
                snap.batch.labels.get(s.index).copied(),
            ),
            Subject::Probe { caption, label } => (caption.clone(), *label),
        };
        let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());

        ui.horizontal(|ui| {
            let side = 56.0;
            let (rect, _) = ui.allocate_exact_size(vec2(side, side), Sense::hover());
            if let Some(tex) = digits.texture_id().filter(|_| s.index < digits.count()) {
                ui.painter().image(tex, rect, digits.uv(s.index), Color32::WHITE);
            }
            ui.vertical(|ui| {
                ui.label(RichText::new(caption).strong());
                if let Some(l) = label {
                    ui.label(format!("label: {}", name(l)));
                }
                match (!s.probs.is_empty()).then(|| argmax(&s.probs)) {
                    Some(p) => {
                        let text = format!("predicted: {} ({})", name(p), prob(s.probs[p]));
                        let wrong = label.is_some_and(|l| l != p);
                        ui.label(if wrong { RichText::new(text).color(palette::WRONG) } else { RichText::new(text) });
                    }
                    None => {
                        ui.label(RichText::new("predicted: after forward loss").weak());
                    }
                }
            });
        });
        ui.add_space(4.0);
        probabilities_ui(ui, snap, label, gradients);
        ui.add_space(6.0);
        fc1_ui(ui, snap, gradients, view.color_map);
    });
}

fn probabilities_ui(ui: &mut egui::Ui, snap: &Snapshot, label: Option<usize>, gradients: bool) {
    let s = &snap.sample;
    let classes = snap.model.plan.classes;
    let show_grad = gradients && !s.d_scores().is_empty();
    ui.horizontal(|ui| {
        ui.label(RichText::new("Class probabilities p = softmax(scores)").small().strong());
        if show_grad {
            ui.label(RichText::new("· ∂L/∂score at right").small().weak());
        }
    });
    if s.probs.is_empty() {
        ui.label(RichText::new("computed in forward loss").weak());
        return;
    }
    let predicted = argmax(&s.probs);
    let row_h = 15.5;
    let name_w = snap.class_names.iter().map(|n| n.chars().count()).max().unwrap_or(1).clamp(1, 11) as f32 * 7.5 + 6.0;
    let pct_w = 52.0;
    let grad_w = if show_grad { 74.0 } else { 0.0 };
    let width = ui.available_width();
    let bar_w = (width - name_w - pct_w - grad_w - 12.0).max(40.0);
    for c in 0..classes {
        let p = s.probs.get(c).copied().unwrap_or(0.0);
        let (rect, response) = ui.allocate_exact_size(vec2(width, row_h), Sense::hover());
        let painter = ui.painter();
        let visuals = ui.visuals();
        let is_label = label == Some(c);
        let is_pred = predicted == c;
        let name = snap.class_names.get(c).cloned().unwrap_or_else(|| c.to_string());
        let font = egui::FontId::proportional(13.0);
        let text_color = if is_label { visuals.strong_text_color() } else { visuals.text_color() };
        painter.text(
            pos2(rect.left() + name_w - 4.0, rect.center().y),
            egui::Align2::RIGHT_CENTER,
            // A name longer than the column is cut; the hover text has it whole.
            crate::ui::support::text::fit_text(painter, &name, &font, name_w - 6.0),
            font.clone(),
            text_color,
        );
        let bar_rect =
            egui::Rect::from_min_size(pos2(rect.left() + name_w, rect.top() + 2.0), vec2(bar_w, row_h - 4.0));
        // An outline rather than a filled track: large fills are what software renderers
        // (lavapipe under Xvfb) are slowest at.
        painter.rect_stroke(
            bar_rect,
            2.0,
            Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
            StrokeKind::Inside,
        );
        let fill_rect = egui::Rect::from_min_size(bar_rect.min, vec2(bar_w * p.clamp(0.0, 1.0), bar_rect.height()));
        let fill = if is_pred && is_label {
            palette::ACCURACY
        } else if is_pred {
            palette::WRONG
        } else {
            visuals.weak_text_color()
        };
        painter.rect_filled(fill_rect, 2.0, fill);
        if is_label {
            // The true class is outlined whether or not it won, so a miss shows where it should be.
            painter.rect_stroke(bar_rect, 2.0, Stroke::new(1.5, visuals.strong_text_color()), StrokeKind::Outside);
        }
        let pct = format!("{:>6}", prob(p));
        painter.text(
            pos2(bar_rect.right() + 6.0, rect.center().y),
            egui::Align2::LEFT_CENTER,
            pct,
            egui::FontId::monospace(12.0),
            text_color,
        );
        let d = s.d_scores().get(c).copied();
        if let (true, Some(d)) = (show_grad, d) {
            painter.text(
                pos2(rect.right(), rect.center().y),
                egui::Align2::RIGHT_CENTER,
                fmt_sig(d),
                egui::FontId::monospace(11.5),
                if d < 0.0 { palette::FORWARD } else { palette::BACKWARD },
            );
        }
        let mut tip = format!("{name}: p = {p:.4}");
        if let Some(score) = s.scores().get(c) {
            tip.push_str(&format!(", score = {}", fmt_sig(*score)));
        }
        if let Some(d) = d {
            tip.push_str(&format!("\n∂L/∂score = {} (= (p − [label]) / N)", fmt_sig(d)));
        }
        if is_label {
            tip.push_str("\nthe true label");
        }
        response.on_hover_text(tip);
    }
}

/// The first fc layer after `flatten` when it is not the last layer: its units are hidden.
pub fn hidden_fc(snap: &Snapshot) -> Option<usize> {
    let layers = &snap.model.plan.layers;
    let i = layers.iter().position(|l| matches!(l.spec, LayerSpec::Fc { .. }))?;
    (i + 1 < layers.len()).then_some(i)
}

fn fc1_ui(ui: &mut egui::Ui, snap: &Snapshot, gradients: bool, map: ColorMap) {
    let Some(fc) = hidden_fc(snap) else { return };
    let s = &snap.sample;
    let plan = &snap.model.plan;
    let (name, units) = (&plan.layers[fc].name, plan.layers[fc].output.len());
    let next = plan.layers.get(fc + 1);
    let relu_next = next.is_some_and(|l| l.spec == LayerSpec::Relu);
    let (values, title, produced) = if gradients {
        let by = next.map_or_else(|| "backward loss".to_string(), |l| format!("backward {}", l.name));
        (s.grad(fc), format!("{name} gradients ∂L/∂{name} ({units} hidden units)"), by)
    } else {
        let before = if relu_next { ", before ReLU" } else { "" };
        (s.output(fc), format!("{name} activations ({units} hidden units{before})"), format!("forward {name}"))
    };
    // Folded by default in projector mode: its height goes to the training curves below.
    let open = !crate::ui::support::widgets::projector(ui.ctx());
    egui::CollapsingHeader::new(RichText::new(title).small().strong())
        .id_salt("fc1 strip")
        .default_open(open)
        .show(ui, |ui| fc1_strip_ui(ui, values, gradients, &produced, map, relu_next));
}

/// The hidden units as bars around a zero line.
fn fc1_strip_ui(ui: &mut egui::Ui, values: &[f32], gradients: bool, produced: &str, map: ColorMap, relu: bool) {
    let height = 44.0;
    let (rect, response) = ui.allocate_exact_size(vec2(ui.available_width(), height), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_stroke(
        rect,
        2.0,
        Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color),
        StrokeKind::Inside,
    );
    if values.is_empty() {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            format!("computed in {produced}"),
            egui::FontId::proportional(13.0),
            ui.visuals().weak_text_color(),
        );
        return;
    }
    let scale = crate::ui::support::textures::group_scale(&[values]);
    let n = values.len();
    let w = rect.width() / n as f32;
    let mid = rect.center().y;
    painter.hline(rect.x_range(), mid, Stroke::new(1.0, ui.visuals().weak_text_color()));
    for (i, v) in values.iter().enumerate() {
        let h = (v / scale).clamp(-1.0, 1.0) * (height / 2.0 - 2.0);
        let x0 = rect.left() + i as f32 * w;
        let bar = egui::Rect::from_two_pos(pos2(x0 + 0.5, mid), pos2(x0 + w - 0.5, mid - h));
        painter.rect_filled(bar, 0.0, map.color(*v, scale));
    }
    if let Some(pos) = response.hover_pos() {
        let i = (((pos.x - rect.left()) / w).floor() as usize).min(n - 1);
        let x0 = rect.left() + i as f32 * w;
        painter.rect_stroke(
            egui::Rect::from_x_y_ranges(x0..=x0 + w, rect.y_range()),
            0.0,
            ui.visuals().selection.stroke,
            StrokeKind::Inside,
        );
        let after =
            if gradients || !relu { String::new() } else { format!("\nafter ReLU: {}", fmt_sig(values[i].max(0.0))) };
        response.show_tooltip_text(format!("hidden unit {}\nvalue {}{after}", i + 1, fmt_sig(values[i])));
    }
    let note = match (gradients, relu) {
        (true, true) => "zero where ReLU blocked the unit",
        (false, true) => "bars below the line are zeroed by ReLU",
        _ => "",
    };
    let note = if note.is_empty() { String::new() } else { format!(" · {note}") };
    ui.label(RichText::new(format!("scale ±{}{note}", fmt_sig(scale))).small().weak());
}
