//! The batch strip: every digit of the current batch with its label and, once the loss phase
//! ran, the network's prediction and confidence. Mistakes get a red frame; a click selects the
//! digit that the feature-map and output views follow.

use eframe::egui::{self, Color32, RichText, Stroke, StrokeKind, vec2};

use crate::engine::argmax;
use crate::trainer::{Command, Snapshot};
use crate::ui::support::palette;
use crate::ui::support::text::{item_word, percent, prob};
use crate::ui::support::textures::TileSet;
use crate::ui::support::widgets::{min_picture, projector};
use crate::ui::windows::help::{HelpTopic, heading_ui};

/// What the batch shows for one digit.
struct Cell {
    label: usize,
    /// Predicted class and its probability, once the loss phase ran.
    prediction: Option<(usize, f32)>,
}

use crate::ui::support::text::{class_name as full_name, fit_text};

/// Draws the batch; returns `SelectSample` when a digit was clicked.
pub fn batch_ui(ui: &mut egui::Ui, snap: Option<&Snapshot>, digits: &TileSet) -> Option<Command> {
    let snap = snap?;
    let b = &snap.batch;
    let n = b.labels.len();
    let classes = snap.model.plan.classes;
    let cells: Vec<Cell> = (0..n)
        .map(|i| {
            let probs = b.probs.get(i * classes..(i + 1) * classes).unwrap_or(&[]);
            Cell { label: b.labels[i], prediction: (!probs.is_empty()).then(|| argmax(probs)).map(|p| (p, probs[p])) }
        })
        .collect();
    let correct = cells.iter().filter(|c| c.prediction.is_some_and(|(p, _)| p == c.label)).count();
    let have_predictions = !b.probs.is_empty();

    ui.horizontal(|ui| {
        heading_ui(ui, HelpTopic::Batch);
        let mut summary = format!("{n} images");
        if have_predictions {
            summary.push_str(&format!(" · {correct} of {n} correct"));
            if let Some(loss) = snap.loss {
                summary.push_str(&format!(" · loss {loss:.3}"));
            }
        } else if n > 0 {
            summary.push_str(" · predictions appear after forward loss");
        }
        ui.label(summary);
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(
                RichText::new(format!(
                    "click {} to follow it",
                    if item_word(&snap.class_names) == "digit" { "a digit" } else { "an image" }
                ))
                .small()
                .weak(),
            );
        });
    });
    if n == 0 {
        ui.label(RichText::new("No batch yet: press Step phase (Right arrow) or Step batch (Shift+Right).").weak());
        return None;
    }

    let gap = 4.0;
    let mut clicked = None;
    if projector(ui.ctx()) {
        // Digits as large as the text, on one row that scrolls sideways: the rows of a large
        // batch would take the feature maps' height.
        let cell_w = min_picture(ui.ctx()) + 4.0;
        let size = vec2(cell_w, cell_w - 4.0 + 28.0);
        egui::ScrollArea::horizontal().id_salt("batch strip").auto_shrink([false, true]).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing = vec2(gap, gap);
                for (i, cell) in cells.iter().enumerate() {
                    if digit_cell_ui(ui, i, cell, snap, digits, size, cell_w - 4.0) {
                        clicked = Some(i);
                    }
                }
            });
        });
        return clicked.map(Command::SelectSample);
    }
    // Fit the batch into at most two rows when the digits stay at least 32 points wide;
    // larger batches scroll, by whole rows so that no row's captions are cut.
    let avail = ui.available_width();
    let per_row_2 = n.div_ceil(2).max(1) as f32;
    let cell_w = ((avail - (per_row_2 - 1.0) * gap) / per_row_2).floor().clamp(32.0, 60.0);
    let img = cell_w - 4.0;
    let cell_h = img + 28.0;
    let per_row = ((avail + gap) / (cell_w + gap)).floor().max(1.0);
    let rows = (n as f32 / per_row).ceil().max(1.0);
    let height = rows.min(2.0) * (cell_h + gap);

    egui::ScrollArea::vertical().id_salt("batch strip").max_height(height).auto_shrink([false, true]).show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing = vec2(gap, gap);
            for (i, cell) in cells.iter().enumerate() {
                if digit_cell_ui(ui, i, cell, snap, digits, vec2(cell_w, cell_h), img) {
                    clicked = Some(i);
                }
            }
        });
    });
    clicked.map(Command::SelectSample)
}

fn digit_cell_ui(
    ui: &mut egui::Ui,
    i: usize,
    cell: &Cell,
    snap: &Snapshot,
    digits: &TileSet,
    size: egui::Vec2,
    img: f32,
) -> bool {
    let names = &snap.class_names;
    let selected = snap.sample.index == i;
    let wrong = cell.prediction.is_some_and(|(p, _)| p != cell.label);
    let description = match cell.prediction {
        Some((p, conf)) => format!(
            "{} {}: label {}, predicted {} ({}){}",
            item_word(names),
            i + 1,
            full_name(names, cell.label),
            full_name(names, p),
            prob(conf),
            if wrong { ", wrong" } else { "" }
        ),
        None => format!("{} {}: label {}", item_word(names), i + 1, full_name(names, cell.label)),
    };
    let (rect, response) = crate::ui::support::widgets::thumbnail_cell(ui, size, selected, &description);
    if ui.is_rect_visible(rect) {
        let painter = ui.painter();
        let visuals = ui.visuals();
        let img_rect = egui::Rect::from_min_size(rect.min + vec2((size.x - img) / 2.0, 2.0), vec2(img, img));
        if let Some(tex) = digits.texture_id().filter(|_| i < digits.count()) {
            painter.image(tex, img_rect, digits.uv(i), Color32::WHITE);
        }
        if wrong {
            painter.rect_stroke(img_rect, 2.0, Stroke::new(2.5, palette::WRONG), StrokeKind::Outside);
        }
        if selected {
            painter.rect_stroke(rect, 4.0, Stroke::new(2.0, visuals.selection.stroke.color), StrokeKind::Inside);
        }
        let text_color = visuals.text_color();
        // Digits line up in monospace; names (circle, airplane) get more letters in proportional.
        let font = if names.iter().any(|n| n.chars().count() > 2) {
            egui::FontId::proportional(11.0)
        } else {
            egui::FontId::monospace(10.5)
        };
        let y1 = img_rect.bottom() + 2.0;
        // Names longer than the cell is wide are cut ("air…"); the hover text has them whole.
        let room = size.x - 2.0;
        painter.text(
            egui::pos2(rect.center().x, y1),
            egui::Align2::CENTER_TOP,
            fit_text(painter, &format!("y={}", full_name(names, cell.label)), &font, room),
            font.clone(),
            text_color,
        );
        if let Some((p, conf)) = cell.prediction {
            let color = if wrong { palette::WRONG } else { visuals.weak_text_color() };
            // Floored and capped so "100%" never claims certainty and always fits the cell.
            let pct = format!(" {}", percent(conf, 0).replace("100%", "99%"));
            let pct_w = painter.layout_no_wrap(pct.clone(), font.clone(), color).size().x;
            let name = fit_text(painter, &full_name(names, p), &font, room - pct_w);
            painter.text(egui::pos2(rect.center().x, y1 + 12.0), egui::Align2::CENTER_TOP, name + &pct, font, color);
        }
    }
    let clicked = response.clicked();
    response.on_hover_text(description);
    clicked
}
