//! The evaluation view: the current weights measured on the test set (in the worker, with a
//! progress bar), overall and per class, as a confusion matrix, and the misclassified digits
//! themselves, the most confident mistakes first because those teach the most.
//!
//! An [`EvalResult`] lists only the mistakes; correctly classified images are counts in the
//! matrix. So the gallery's filters are all over mistakes, and a click on the diagonal shows the
//! mistakes on that class instead of the (unlisted) correct digits.

use eframe::egui::{self, Align2, Color32, FontId, Rect, RichText, Sense, Stroke, StrokeKind, pos2, vec2};

use crate::data::Dataset;
use crate::trainer::{Command, EvalResult, Misclassified, ProbeInput};
use crate::ui::support::palette;
use crate::ui::support::text::{item_word, prob, thousands};
use crate::ui::support::textures::{Coloring, TileSet};
use crate::ui::support::widgets::section_heading;

/// Text (and accessibility label) of the button that starts an evaluation.
pub const EVALUATE_LABEL: &str = "Evaluate the whole test set";
/// Text of the button that clears the gallery's filter.
pub const SHOW_ALL_LABEL: &str = "Show all mistakes";
/// Text of the gallery's "previous page" button.
pub const PREVIOUS_PAGE_LABEL: &str = "< Previous";
/// Text of the gallery's "next page" button.
pub const NEXT_PAGE_LABEL: &str = "Next >";
/// Mistakes per gallery page: enough to see a pattern, few enough to stay one small texture.
pub const PAGE_SIZE: usize = 40;

/// Diagonal (correct) cells, light to dark: ColorBrewer Blues.
const CORRECT_RAMP: (Color32, Color32) = (Color32::from_rgb(222, 235, 247), Color32::from_rgb(8, 69, 148));
/// Off-diagonal (mistake) cells, light to dark: ColorBrewer Oranges, apart from the blues for
/// every common colour-vision deficiency.
const MISTAKE_RAMP: (Color32, Color32) = (Color32::from_rgb(254, 230, 206), Color32::from_rgb(166, 54, 3));
/// Side of a gallery thumbnail: MNIST's 28 pixels doubled, so each stays a crisp square.
const THUMB: f32 = 56.0;
/// A gallery item: the thumbnail over one line of text; wider (up to [`ITEM_MAX_WIDTH`]) when
/// the class names need it.
const ITEM: egui::Vec2 = vec2(112.0, THUMB + 24.0);
/// The widest a gallery item gets for long class names (which are then cut).
const ITEM_MAX_WIDTH: f32 = 190.0;

/// Which mistakes the gallery shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GalleryFilter {
    /// Every listed mistake.
    #[default]
    All,
    /// One off-diagonal cell of the confusion matrix: true `truth`, predicted `predicted`.
    Cell {
        /// The true class (matrix row).
        truth: usize,
        /// The class the network chose (matrix column).
        predicted: usize,
    },
    /// Every mistake on images of this true class (a matrix row, or its diagonal cell).
    TrueClass(usize),
    /// Every image wrongly given this class (a matrix column).
    PredictedAs(usize),
}

impl GalleryFilter {
    /// Whether the mistake `m` is shown.
    pub fn matches(self, m: &Misclassified) -> bool {
        match self {
            GalleryFilter::All => true,
            GalleryFilter::Cell { truth, predicted } => m.label == truth && m.predicted == predicted,
            GalleryFilter::TrueClass(k) => m.label == k,
            GalleryFilter::PredictedAs(k) => m.predicted == k,
        }
    }

    /// True if the filter names a class that a `classes`-class result does not have.
    fn out_of_range(self, classes: usize) -> bool {
        match self {
            GalleryFilter::All => false,
            GalleryFilter::Cell { truth, predicted } => truth >= classes || predicted >= classes,
            GalleryFilter::TrueClass(k) | GalleryFilter::PredictedAs(k) => k >= classes,
        }
    }

    /// What the gallery shows, in words ("true 4 predicted as 9").
    fn describe(self, names: &[String]) -> String {
        match self {
            GalleryFilter::All => "all mistakes".to_owned(),
            GalleryFilter::Cell { truth, predicted } => {
                format!("true {} predicted as {}", full_name(names, truth), full_name(names, predicted))
            }
            GalleryFilter::TrueClass(k) => format!("every mistake on a true {}", full_name(names, k)),
            GalleryFilter::PredictedAs(k) => format!("every image wrongly called {}", full_name(names, k)),
        }
    }

    /// How many mistakes the filter stands for according to the matrix, which counts them all
    /// even when the result's list was cut short.
    fn true_count(self, result: &EvalResult) -> usize {
        let n = result.classes;
        match self {
            GalleryFilter::All => result.count.saturating_sub(result.correct),
            GalleryFilter::Cell { truth, predicted } => result.confusion_count(truth, predicted),
            GalleryFilter::TrueClass(k) => result.class_count(k).saturating_sub(result.confusion_count(k, k)),
            GalleryFilter::PredictedAs(k) => (0..n).filter(|t| *t != k).map(|t| result.confusion_count(t, k)).sum(),
        }
    }
}

/// Positions in `result.misclassified` of the mistakes `filter` keeps, the most confident
/// wrong answers first; ties keep test-set order so that the gallery does not reshuffle.
pub fn gallery_order(result: &EvalResult, filter: GalleryFilter) -> Vec<usize> {
    let list = &result.misclassified;
    let mut order: Vec<usize> = (0..list.len()).filter(|&i| filter.matches(&list[i])).collect();
    // `total_cmp` puts a NaN confidence (a diverged network) first rather than panicking.
    order.sort_by(|&a, &b| list[b].confidence.total_cmp(&list[a].confidence).then(list[a].index.cmp(&list[b].index)));
    order
}

/// What the evaluation view remembers between frames; owned by [`EvaluationTab`].
pub struct EvaluationState {
    filter: GalleryFilter,
    /// Said under the matrix after a click on its diagonal.
    note: Option<String>,
    /// Test index of the digit last clicked in the gallery.
    selected: Option<usize>,
    page: usize,
    /// The result the gallery order and thumbnails were made from.
    seen: Option<EvalResult>,
    /// [`gallery_order`] of `seen` under `filter`.
    order: Vec<usize>,
    /// The current page's digits, in one texture.
    thumbs: TileSet,
    /// What `thumbs` holds: `None` after the result changed.
    thumbs_for: Option<(GalleryFilter, usize)>,
}

impl Default for EvaluationState {
    fn default() -> Self {
        Self {
            filter: GalleryFilter::All,
            note: None,
            selected: None,
            page: 0,
            seen: None,
            order: Vec::new(),
            thumbs: TileSet::new("evaluation gallery"),
            thumbs_for: None,
        }
    }
}

impl EvaluationState {
    /// Which mistakes the gallery shows.
    pub fn filter(&self) -> GalleryFilter {
        self.filter
    }

    /// Shows the mistakes `filter` keeps, from the first page.
    pub fn set_filter(&mut self, filter: GalleryFilter) {
        if filter != self.filter {
            self.filter = filter;
            self.page = 0;
            self.note = None;
            self.reorder();
        }
    }

    /// Test index of the digit marked as selected in the gallery.
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    /// Marks test image `index` as selected (e.g. when the app selected it some other way).
    pub fn select(&mut self, index: Option<usize>) {
        self.selected = index;
    }

    /// The gallery page shown, from 0.
    pub fn page(&self) -> usize {
        self.page
    }

    /// Number of gallery pages (at least 1).
    pub fn pages(&self) -> usize {
        self.order.len().div_ceil(PAGE_SIZE).max(1)
    }

    /// Test indices of every mistake the gallery shows (on all pages), in gallery order.
    pub fn shown(&self) -> Vec<usize> {
        let Some(r) = &self.seen else { return Vec::new() };
        self.order.iter().filter_map(|&i| r.misclassified.get(i)).map(|m| m.index).collect()
    }

    /// Takes `result` as the one shown if it is new: its gallery starts on the first page, in
    /// the same filter so that a student can watch one cell shrink as training goes on.
    fn sync(&mut self, result: Option<&EvalResult>) {
        if self.seen.as_ref() == result {
            return;
        }
        self.seen = result.cloned();
        if let Some(r) = result
            && self.filter.out_of_range(r.classes)
        {
            self.filter = GalleryFilter::All;
            self.note = None;
        }
        self.page = 0;
        self.thumbs_for = None;
        self.reorder();
    }

    fn reorder(&mut self) {
        self.order = match &self.seen {
            Some(r) => gallery_order(r, self.filter),
            None => Vec::new(),
        };
        self.page = self.page.min(self.pages() - 1);
    }

    /// The mistakes on the current page.
    fn page_items(&self) -> Vec<Misclassified> {
        let Some(r) = &self.seen else { return Vec::new() };
        let start = self.page * PAGE_SIZE;
        let end = (start + PAGE_SIZE).min(self.order.len());
        self.order.get(start..end).unwrap_or(&[]).iter().filter_map(|&i| r.misclassified.get(i).copied()).collect()
    }

    /// Uploads the current page's digits if the page, filter or result changed since.
    fn refresh_thumbs(&mut self, ctx: &egui::Context, test: &Dataset) {
        let key = (self.filter, self.page);
        if self.thumbs_for == Some(key) {
            return;
        }
        self.thumbs_for = Some(key);
        let items = self.page_items();
        let (c, h, w) = test.input_shape();
        let per = c * h * w;
        let mut values = Vec::with_capacity(items.len() * per);
        for m in &items {
            match test.get_image(m.index) {
                Some(px) => values.extend(px.iter().map(|&v| f32::from(v) / 255.0)),
                // A result from another test set: a black tile rather than the wrong digit.
                None => values.extend(std::iter::repeat_n(0.0, per)),
            }
        }
        self.thumbs.set(ctx, &values, items.len(), h, w, Coloring::picture(c));
    }
}

use crate::ui::support::text::{class_name as full_name, fit_text};

/// The width the longest class name takes in `font`, between `min` and `max` points: what a
/// column of names gets (longer names are cut to it, and shown whole on hover).
fn names_width(ui: &egui::Ui, names: &[String], classes: usize, font: &FontId, min: f32, max: f32) -> f32 {
    (0..classes)
        .map(|k| ui.painter().layout_no_wrap(full_name(names, k), font.clone(), Color32::WHITE).size().x)
        .fold(0.0, f32::max)
        .clamp(min, max)
        .ceil()
}
use crate::ui::tabs::{Tab, TabContext, TabId};
use crate::ui::windows::help::HelpTopic;

/// "→" when the font has it; egui's bundled fonts do not, and a box would be worse than "->".
fn arrow(ui: &egui::Ui) -> &'static str {
    if ui.ctx().fonts_mut(|f| f.has_glyph(&FontId::proportional(14.0), '→')) { "→" } else { "->" }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n as u64), if n == 1 { one } else { many })
}

/// A wrong answer's confidence as a whole percentage, floored and capped so that "100%" never
/// claims certainty.
fn percent(p: f32) -> String {
    crate::ui::support::text::percent(p, 0).replace("100%", "99%")
}

/// Draws the evaluation view; returns `Evaluate` when the button was pressed and `Probe` of a
/// test image when a gallery digit was clicked.
///
/// `result` is the last evaluation, `test` the test split it was measured on (for the images
/// and class names), `current_step` the training step the window shows now, `progress` the
/// (done, total) of an evaluation under way, and `can_run` why an evaluation cannot start now.
pub fn evaluation_ui(
    ui: &mut egui::Ui,
    state: &mut EvaluationState,
    result: Option<&EvalResult>,
    test: &Dataset,
    current_step: u64,
    progress: Option<(usize, usize)>,
    can_run: Result<(), String>,
) -> Option<Command> {
    state.sync(result);
    let mut command = None;
    let names = &test.class_names;

    ui.horizontal(|ui| {
        section_heading(ui, "Evaluation on the test set");
        let why_not = match (&can_run, progress) {
            (_, Some(_)) => Err("An evaluation is already running.".to_owned()),
            (Err(e), None) => Err(e.clone()),
            (Ok(()), None) => Ok(()),
        };
        let button = ui.add_enabled(why_not.is_ok(), egui::Button::new(EVALUATE_LABEL));
        let button = match &why_not {
            Ok(()) => button.on_hover_text(format!(
                "Classify all {} test images with the current weights: accuracy, confusion matrix \
                 and every mistake.",
                thousands(test.len() as u64)
            )),
            Err(e) => button.on_disabled_hover_text(e.as_str()),
        };
        if button.clicked() {
            command = Some(Command::Evaluate { count: 0 });
        }
        if let Some((done, total)) = progress {
            let frac = if total > 0 { done as f32 / total as f32 } else { 0.0 };
            let text = format!("evaluating {} / {}", thousands(done as u64), thousands(total as u64));
            ui.add(egui::ProgressBar::new(frac).desired_width(220.0).text(text));
        }
    });

    let Some(result) = result else {
        ui.label(
            RichText::new(
                "No evaluation yet. Press the button to measure the current weights on the test set: \
                 images the network never trains on.",
            )
            .weak(),
        );
        return command;
    };

    summary_ui(ui, result, test.len(), current_step);
    ui.add_space(6.0);

    // Side by side when both fit, the bars under the matrix otherwise.
    let cell = ((ui.available_width().min(620.0) - 60.0) / result.classes.max(1) as f32).floor().clamp(30.0, 52.0);
    let row_names = names_width(ui, names, result.classes, &FontId::proportional(14.0), 26.0, 110.0) - 26.0;
    let matrix_w = 60.0 + row_names + cell * result.classes as f32;
    if ui.available_width() >= matrix_w + 320.0 {
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                // The caption under the matrix wraps to its width instead of pushing the bars
                // out of view (with a few classes the matrix is narrower than the caption).
                ui.set_max_width(matrix_w);
                matrix_ui(ui, state, result, names, cell);
            });
            ui.add_space(16.0);
            ui.vertical(|ui| per_class_ui(ui, state, result, names));
        });
    } else {
        matrix_ui(ui, state, result, names, cell);
        ui.add_space(8.0);
        per_class_ui(ui, state, result, names);
    }
    ui.add_space(8.0);
    ui.separator();
    if let Some(index) = gallery_ui(ui, state, result, test) {
        state.selected = Some(index);
        command = Some(Command::Probe(ProbeInput::TestImage(index)));
    }
    command
}

fn summary_ui(ui: &mut egui::Ui, result: &EvalResult, test_len: usize, current_step: u64) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("Test accuracy {:.1}%", result.accuracy() * 100.0)).size(20.0).strong());
        let mut detail = format!(
            "{} of {} correct · measured at step {}",
            thousands(result.correct as u64),
            thousands(result.count as u64),
            thousands(result.step)
        );
        if result.count < test_len {
            detail.push_str(&format!(" on the first {} test images", thousands(result.count as u64)));
        }
        ui.label(detail);
    });
    // The result belongs to the weights of its step; say so when they are gone.
    let stale = match current_step.checked_sub(result.step) {
        Some(0) => None,
        Some(ago) => Some(format!(
            "Measured {} ago: the weights have changed since. Evaluate again to see the current network.",
            plural(ago as usize, "step", "steps")
        )),
        None => Some(format!(
            "Measured at step {}, but the run is now at step {}: this is an earlier run's result.",
            thousands(result.step),
            thousands(current_step)
        )),
    };
    if let Some(note) = stale {
        ui.label(RichText::new(note).color(ui.visuals().warn_fg_color));
    }
}

/// Luminance-based text colour that stays readable on `fill`.
fn ink_on(fill: Color32) -> Color32 {
    let l = 0.299 * f32::from(fill.r()) + 0.587 * f32::from(fill.g()) + 0.114 * f32::from(fill.b());
    if l > 150.0 { Color32::BLACK } else { Color32::WHITE }
}

fn matrix_ui(ui: &mut egui::Ui, state: &mut EvaluationState, result: &EvalResult, names: &[String], cell: f32) {
    let n = result.classes;
    ui.label(RichText::new("Confusion matrix").strong());
    if n == 0 {
        return;
    }
    let axis = 18.0;
    let header = 26.0;
    let header_font = FontId::proportional(14.0);
    // The row headers are as wide as the longest name needs, up to a limit; column headers
    // cut a name to the cell's width.
    let row_header = names_width(ui, names, n, &header_font, header, 110.0) + 6.0;
    let origin_offset = vec2(axis + row_header, axis + header);
    let size = origin_offset + vec2(cell * n as f32, cell * n as f32);
    let (area, _) = ui.allocate_exact_size(size, Sense::hover());
    let grid_min = area.min + origin_offset;
    let cell_rect = |t: usize, p: usize| {
        Rect::from_min_size(grid_min + vec2(p as f32 * cell, t as f32 * cell), vec2(cell, cell)).shrink(1.0)
    };

    let max_diag = (0..n).map(|k| result.confusion_count(k, k)).max().unwrap_or(0).max(1);
    let max_off = (0..n)
        .flat_map(|t| (0..n).map(move |p| (t, p)))
        .filter(|(t, p)| t != p)
        .map(|(t, p)| result.confusion_count(t, p))
        .max()
        .unwrap_or(0)
        .max(1);
    let visuals = ui.visuals().clone();
    let font = FontId::monospace((cell * 0.34).clamp(11.0, 18.0));
    let mut clicked = None;

    // Axis titles and class headers; the headers filter by row or column when clicked.
    let painter = ui.painter_at(area);
    painter.text(
        pos2(grid_min.x + cell * n as f32 / 2.0, area.top()),
        Align2::CENTER_TOP,
        format!("predicted class {}", arrow(ui)),
        header_font.clone(),
        visuals.text_color(),
    );
    let galley = painter.layout_no_wrap(format!("true class {}", arrow(ui)), header_font.clone(), visuals.text_color());
    // Turned clockwise so that the arrow points down the rows; the text's top then faces right.
    let (text_w, text_h) = (galley.size().x, galley.size().y);
    let text_pos = pos2(area.left() + text_h, grid_min.y + (cell * n as f32 - text_w) / 2.0);
    painter.add(
        egui::epaint::TextShape::new(text_pos, galley, visuals.text_color()).with_angle(std::f32::consts::FRAC_PI_2),
    );
    for k in 0..n {
        let col = Rect::from_min_size(pos2(grid_min.x + k as f32 * cell, grid_min.y - header), vec2(cell, header));
        let row =
            Rect::from_min_size(pos2(grid_min.x - row_header, grid_min.y + k as f32 * cell), vec2(row_header, cell));
        for (rect, filter, label, tip) in [
            (
                col,
                GalleryFilter::PredictedAs(k),
                format!("predicted {}: all mistakes", full_name(names, k)),
                format!("Column {}: images the network called {}. Click for its mistakes.", k, full_name(names, k)),
            ),
            (
                row,
                GalleryFilter::TrueClass(k),
                format!("true {}: all mistakes", full_name(names, k)),
                format!("Row {}: images that really are {}. Click for their mistakes.", k, full_name(names, k)),
            ),
        ] {
            let r = ui.interact(rect, ui.scope_id().with(("confusion header", label.as_str())), Sense::click());
            r.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, state.filter == filter, &label));
            let color =
                if r.hovered() || state.filter == filter { visuals.strong_text_color() } else { visuals.text_color() };
            let text = fit_text(&painter, &full_name(names, k), &header_font, rect.width() - 4.0);
            painter.text(rect.center(), Align2::CENTER_CENTER, text, header_font.clone(), color);
            if r.clicked() {
                clicked = Some((filter, None));
            }
            r.on_hover_text(tip);
        }
    }

    for t in 0..n {
        for p in 0..n {
            let count = result.confusion_count(t, p);
            let rect = cell_rect(t, p);
            let label = format!(
                "true {}, predicted {}: {}",
                full_name(names, t),
                full_name(names, p),
                plural(count, item_word(names), &format!("{}s", item_word(names)))
            );
            let r = ui.interact(rect, ui.scope_id().with(("confusion cell", t, p)), Sense::click());
            let filter =
                if t == p { GalleryFilter::TrueClass(t) } else { GalleryFilter::Cell { truth: t, predicted: p } };
            let is_filter = state.filter == GalleryFilter::Cell { truth: t, predicted: p }
                || (t == p && state.filter == filter && state.note.is_some());
            r.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, is_filter, &label));
            let fill = if count == 0 {
                visuals.faint_bg_color
            } else if t == p {
                let f = count as f32 / max_diag as f32;
                CORRECT_RAMP.0.lerp_to_gamma(CORRECT_RAMP.1, 0.25 + 0.75 * f)
            } else {
                // Square root: a cell with 3 mistakes must still stand out from one with none
                // next to a cell with 80.
                let f = (count as f32 / max_off as f32).sqrt();
                MISTAKE_RAMP.0.lerp_to_gamma(MISTAKE_RAMP.1, 0.15 + 0.85 * f)
            };
            painter.rect_filled(rect, 2.0, fill);
            let text_color = if count == 0 { visuals.weak_text_color() } else { ink_on(fill) };
            painter.text(rect.center(), Align2::CENTER_CENTER, count.to_string(), font.clone(), text_color);
            if is_filter {
                painter.rect_stroke(rect, 2.0, Stroke::new(2.5, visuals.strong_text_color()), StrokeKind::Inside);
            } else if r.hovered() {
                painter.rect_stroke(rect, 2.0, visuals.selection.stroke, StrokeKind::Inside);
            }
            let row_total = result.class_count(t);
            let share = if row_total > 0 { count as f32 / row_total as f32 * 100.0 } else { 0.0 };
            let tip = if t == p {
                format!(
                    "{} of {} images of {} classified correctly ({share:.1}%).\nClick to see the ones that were not.",
                    thousands(count as u64),
                    thousands(row_total as u64),
                    full_name(names, t)
                )
            } else {
                format!(
                    "{} of {} images of {} were taken for {} ({share:.1}%).\nClick to see them.",
                    thousands(count as u64),
                    thousands(row_total as u64),
                    full_name(names, t),
                    full_name(names, p)
                )
            };
            if r.clicked() {
                let note = (t == p).then(|| {
                    format!(
                        "The {} correctly classified images of {} are not listed (an evaluation keeps \
                         only the mistakes); below are the {} that were not.",
                        thousands(count as u64),
                        full_name(names, t),
                        plural(row_total.saturating_sub(count), "image", "images")
                    )
                });
                clicked = Some((filter, note));
            }
            r.on_hover_text(tip);
        }
    }
    if let Some((filter, note)) = clicked {
        state.set_filter(filter);
        state.note = note;
    }
    ui.label(
        RichText::new("Rows: the true class. Columns: the network's answer. Blue diagonal: correct; orange: mistakes.")
            .weak(),
    );
}

fn per_class_ui(ui: &mut egui::Ui, state: &mut EvaluationState, result: &EvalResult, names: &[String]) {
    ui.label(RichText::new("Accuracy per class").strong());
    let accuracies = result.per_class_accuracy();
    let worst = accuracies
        .iter()
        .enumerate()
        .filter_map(|(k, a)| a.map(|a| (k, a)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k);
    let row_h = 22.0;
    let name_font = FontId::proportional(14.0);
    let name_w = names_width(ui, names, accuracies.len(), &name_font, 22.0, 110.0) + 12.0;
    let bar_w = (ui.available_width() - name_w - 120.0).clamp(80.0, 220.0);
    let visuals = ui.visuals().clone();
    let mut clicked = None;
    for (k, accuracy) in accuracies.iter().enumerate() {
        let total = result.class_count(k);
        let correct = result.confusion_count(k, k);
        let text = match accuracy {
            Some(a) => format!("{:.1}%  ({} / {})", a * 100.0, thousands(correct as u64), thousands(total as u64)),
            None => "no images".to_owned(),
        };
        let label = match accuracy {
            Some(a) => format!("accuracy on {}: {:.1}% ({} of {})", full_name(names, k), a * 100.0, correct, total),
            None => format!("accuracy on {}: no images evaluated", full_name(names, k)),
        };
        let (rect, r) = ui.allocate_exact_size(vec2(name_w + bar_w + 120.0, row_h), Sense::click());
        let is_filter = state.filter == GalleryFilter::TrueClass(k);
        r.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, is_filter, &label));
        if ui.is_rect_visible(rect) {
            let painter = ui.painter();
            if is_filter {
                painter.rect_filled(rect, 2.0, visuals.selection.bg_fill.gamma_multiply(0.4));
            } else if r.hovered() {
                painter.rect_filled(rect, 2.0, visuals.widgets.hovered.weak_bg_fill);
            }
            painter.text(
                pos2(rect.left() + name_w - 6.0, rect.center().y),
                Align2::RIGHT_CENTER,
                fit_text(painter, &full_name(names, k), &name_font, name_w - 8.0),
                name_font.clone(),
                visuals.text_color(),
            );
            let track = Rect::from_min_size(pos2(rect.left() + name_w, rect.top() + 3.0), vec2(bar_w, row_h - 6.0));
            painter.rect_filled(track, 2.0, visuals.faint_bg_color);
            let fill = accuracy.unwrap_or(0.0).clamp(0.0, 1.0);
            let color = if worst == Some(k) { MISTAKE_RAMP.1 } else { palette::ACCURACY };
            painter.rect_filled(Rect::from_min_size(track.min, vec2(bar_w * fill, track.height())), 2.0, color);
            painter.text(
                pos2(track.right() + 6.0, rect.center().y),
                Align2::LEFT_CENTER,
                text,
                FontId::monospace(12.0),
                visuals.text_color(),
            );
        }
        if r.clicked() {
            clicked = Some(k);
        }
        r.on_hover_text(format!(
            "{}.{}\nClick to see the mistakes on {}.",
            label,
            if worst == Some(k) { " The hardest class for the network." } else { "" },
            full_name(names, k)
        ));
    }
    if let Some(k) = clicked {
        state.set_filter(GalleryFilter::TrueClass(k));
    }
}

/// Draws the gallery; returns the test index of a clicked digit.
fn gallery_ui(ui: &mut egui::Ui, state: &mut EvaluationState, result: &EvalResult, test: &Dataset) -> Option<usize> {
    let names = &test.class_names;
    let shown = state.order.len();
    let true_count = state.filter.true_count(result);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("Misclassified test {}s", item_word(names))).strong());
        ui.label(format!("{} · {}", plural(shown, "mistake", "mistakes"), state.filter.describe(names)));
        if shown < true_count {
            ui.label(
                RichText::new(format!(
                    "({} in all; the result lists at most the first {})",
                    thousands(true_count as u64),
                    thousands(EvalResult::MAX_MISCLASSIFIED as u64)
                ))
                .weak(),
            );
        }
        let reset = ui.add_enabled(state.filter != GalleryFilter::All, egui::Button::new(SHOW_ALL_LABEL));
        if reset.on_disabled_hover_text("All mistakes are shown.").clicked() {
            state.set_filter(GalleryFilter::All);
        }
    });
    if let Some(note) = &state.note {
        ui.label(RichText::new(note).italics());
    }
    if shown == 0 {
        ui.label(RichText::new("No mistakes here.").weak());
        return None;
    }
    ui.label(
        RichText::new("Most confident mistakes first. Click a digit to look at it in the other views.").small().weak(),
    );

    if state.pages() > 1 {
        ui.horizontal(|ui| {
            if ui.add_enabled(state.page > 0, egui::Button::new(PREVIOUS_PAGE_LABEL)).clicked() {
                state.page -= 1;
            }
            let first = state.page * PAGE_SIZE + 1;
            let last = ((state.page + 1) * PAGE_SIZE).min(shown);
            ui.label(format!(
                "page {} of {} · {}-{} of {}",
                state.page + 1,
                state.pages(),
                thousands(first as u64),
                thousands(last as u64),
                thousands(shown as u64)
            ));
            if ui.add_enabled(state.page + 1 < state.pages(), egui::Button::new(NEXT_PAGE_LABEL)).clicked() {
                state.page += 1;
            }
        });
    }

    state.refresh_thumbs(ui.ctx(), test);
    let items = state.page_items();
    // Wide enough for "true triangle → circle (99%)" with the longest names, within limits.
    let font = FontId::proportional(12.0);
    let rest = format!("true  {}  (99%)", arrow(ui));
    let rest_w = ui.painter().layout_no_wrap(rest, font.clone(), Color32::WHITE).size().x;
    let longest = names_width(ui, names, names.len(), &font, 0.0, ITEM_MAX_WIDTH);
    let item = vec2((2.0 * longest + rest_w + 8.0).clamp(ITEM.x, ITEM_MAX_WIDTH).ceil(), ITEM.y);
    let mut clicked = None;
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = vec2(4.0, 4.0);
        for (slot, m) in items.iter().enumerate() {
            if gallery_item_ui(ui, slot, m, state, names, item) {
                clicked = Some(m.index);
            }
        }
    });
    clicked
}

fn gallery_item_ui(
    ui: &mut egui::Ui,
    slot: usize,
    m: &Misclassified,
    state: &EvaluationState,
    names: &[String],
    size: egui::Vec2,
) -> bool {
    let selected = state.selected == Some(m.index);
    let label = format!(
        "test image {}: true {}, predicted {} ({})",
        m.index,
        full_name(names, m.label),
        full_name(names, m.predicted),
        percent(m.confidence)
    );
    let (rect, response) = crate::ui::support::widgets::thumbnail_cell(ui, size, selected, &label);
    if ui.is_rect_visible(rect) {
        let painter = ui.painter();
        let visuals = ui.visuals();
        let img = Rect::from_min_size(pos2(rect.center().x - THUMB / 2.0, rect.top() + 3.0), vec2(THUMB, THUMB));
        if let Some(tex) = state.thumbs.texture_id().filter(|_| slot < state.thumbs.count()) {
            painter.image(tex, img, state.thumbs.uv(slot), Color32::WHITE);
        }
        painter.rect_stroke(img, 2.0, Stroke::new(1.5, palette::WRONG), StrokeKind::Outside);
        if selected {
            painter.rect_stroke(rect, 4.0, Stroke::new(2.0, visuals.selection.stroke.color), StrokeKind::Inside);
        }
        // Each name gets an equal share of what the rest of the caption leaves.
        let font = FontId::proportional(12.0);
        let rest = format!("true  {}  ({})", arrow(ui), percent(m.confidence));
        let rest_w = painter.layout_no_wrap(rest, font.clone(), visuals.text_color()).size().x;
        let room = ((rect.width() - 4.0 - rest_w) / 2.0).max(8.0);
        painter.text(
            pos2(rect.center().x, img.bottom() + 4.0),
            Align2::CENTER_TOP,
            format!(
                "true {} {} {} ({})",
                fit_text(painter, &full_name(names, m.label), &font, room),
                arrow(ui),
                fit_text(painter, &full_name(names, m.predicted), &font, room),
                percent(m.confidence)
            ),
            font,
            visuals.text_color(),
        );
    }
    let clicked = response.clicked();
    response.on_hover_text(format!(
        "Test image #{}\nTrue class: {} (the network gave it {})\nPredicted: {} with {}\nClick to look at it \
         in the other views.",
        m.index,
        full_name(names, m.label),
        prob(m.label_probability),
        full_name(names, m.predicted),
        prob(m.confidence)
    ));
    clicked
}

/// The tab's stable name.
pub const ID: TabId = TabId::new("Evaluation");

/// Accuracy on the test set: confusion matrix, per-class accuracy, the mistakes.
#[derive(Default)]
pub struct EvaluationTab {
    state: EvaluationState,
}

impl Tab for EvaluationTab {
    fn id(&self) -> TabId {
        ID
    }

    fn name(&self) -> &'static str {
        "Evaluation"
    }

    fn key(&self) -> Option<egui::Key> {
        Some(egui::Key::Num4)
    }

    fn help_topic(&self) -> HelpTopic {
        HelpTopic::Evaluation
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        let progress = ctx.progress.filter(|p| p.what == "evaluating").map(|p| (p.done, p.total));
        let step = ctx.snapshot.map_or(0, |s| s.step);
        let result = ctx.teaching.evaluation.as_ref();
        let can = ctx.can_run.clone();
        egui::ScrollArea::vertical().id_salt("evaluation view").show(ui, |ui| {
            let test = ctx.test_set;
            ctx.commands.extend(evaluation_ui(ui, &mut self.state, result, test, step, progress, can));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mistake(index: usize, label: usize, predicted: usize, confidence: f32) -> Misclassified {
        Misclassified { index, label, predicted, confidence, label_probability: 0.01 }
    }

    /// Three classes; 10 images of each, with the listed mistakes counted in the matrix.
    fn result(misclassified: Vec<Misclassified>) -> EvalResult {
        let classes = 3;
        let mut confusion = vec![0; 9];
        for k in 0..classes {
            confusion[k * classes + k] = 10;
        }
        for m in &misclassified {
            confusion[m.label * classes + m.predicted] += 1;
            confusion[m.label * classes + m.label] -= 1;
        }
        let count = 30;
        let correct = count - misclassified.len();
        EvalResult { step: 7, count, correct, classes, confusion, misclassified }
    }

    fn indices(r: &EvalResult, order: &[usize]) -> Vec<usize> {
        order.iter().map(|&i| r.misclassified[i].index).collect()
    }

    #[test]
    fn the_most_confident_mistakes_come_first_and_ties_keep_test_order() {
        let r = result(vec![
            mistake(2, 0, 1, 0.40),
            mistake(5, 1, 2, 0.95),
            mistake(9, 2, 0, 0.60),
            mistake(11, 0, 2, 0.95),
            mistake(14, 1, 0, 0.55),
        ]);
        assert_eq!(indices(&r, &gallery_order(&r, GalleryFilter::All)), vec![5, 11, 9, 14, 2]);
    }

    #[test]
    fn a_nan_confidence_does_not_break_the_order() {
        let r = result(vec![mistake(1, 0, 1, 0.5), mistake(2, 0, 1, f32::NAN), mistake(3, 0, 1, 0.7)]);
        let order = indices(&r, &gallery_order(&r, GalleryFilter::All));
        assert_eq!(order.len(), 3);
        assert_eq!(&order[1..], &[3, 1], "the finite ones stay ordered");
    }

    #[test]
    fn each_filter_keeps_exactly_its_mistakes() {
        let r = result(vec![
            mistake(2, 0, 1, 0.40),
            mistake(5, 1, 2, 0.95),
            mistake(9, 0, 1, 0.60),
            mistake(11, 0, 2, 0.90),
            mistake(14, 2, 1, 0.55),
        ]);
        let cell = GalleryFilter::Cell { truth: 0, predicted: 1 };
        assert_eq!(indices(&r, &gallery_order(&r, cell)), vec![9, 2]);
        assert_eq!(indices(&r, &gallery_order(&r, GalleryFilter::TrueClass(0))), vec![11, 9, 2]);
        assert_eq!(indices(&r, &gallery_order(&r, GalleryFilter::PredictedAs(1))), vec![9, 14, 2]);
        assert!(gallery_order(&r, GalleryFilter::Cell { truth: 2, predicted: 0 }).is_empty());
        // The matrix agrees with the list when nothing was cut off.
        for f in [cell, GalleryFilter::TrueClass(0), GalleryFilter::PredictedAs(1), GalleryFilter::All] {
            assert_eq!(f.true_count(&r), gallery_order(&r, f).len(), "{f:?}");
        }
    }

    #[test]
    fn a_new_result_keeps_the_filter_but_starts_on_the_first_page() {
        let many: Vec<_> = (0..PAGE_SIZE + 5).map(|i| mistake(i, 0, 1, 0.5)).collect();
        let first = EvalResult { count: 200, correct: 200 - many.len(), ..result(Vec::new()) };
        let first = EvalResult { confusion: vec![0, many.len(), 0, 0, 0, 0, 0, 0, 0], misclassified: many, ..first };
        let mut s = EvaluationState::default();
        s.sync(Some(&first));
        s.set_filter(GalleryFilter::Cell { truth: 0, predicted: 1 });
        assert_eq!(s.pages(), 2);
        s.page = 1;
        let second = EvalResult { step: 8, ..first.clone() };
        s.sync(Some(&second));
        assert_eq!((s.filter(), s.page()), (GalleryFilter::Cell { truth: 0, predicted: 1 }, 0));
        s.page = 1;
        s.sync(Some(&second));
        assert_eq!(s.page(), 1, "the same result again changes nothing");
        assert_eq!(s.shown().len(), PAGE_SIZE + 5);
    }

    #[test]
    fn a_filter_for_a_class_the_new_result_lacks_is_dropped() {
        let mut s = EvaluationState::default();
        s.set_filter(GalleryFilter::TrueClass(5));
        s.sync(Some(&result(vec![mistake(1, 0, 1, 0.5)])));
        assert_eq!(s.filter(), GalleryFilter::All);
        assert_eq!(s.shown(), vec![1]);
    }

    #[test]
    fn wrong_answers_never_show_as_certain() {
        assert_eq!(percent(0.9996), "99%");
        assert_eq!(percent(0.874), "87%");
    }
}
