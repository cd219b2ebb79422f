//! The Loops tab: one phase's loop nest in the post's numpy notation, stepped one iteration at
//! a time on the current batch (issue 16 §1). The worker sends the case
//! ([`Command::Loops`] → [`LoopCase`]); the stepping happens here, on the window thread, with
//! the core's [`LoopCursor`], so stepping never waits for the trainer and never stops a run.
//!
//! A lesson card (or anything else) puts the view in a state with [`LoopsTab::show`]: a layer,
//! a part and an image to start at; the case is asked for on the next frame the tab is drawn.

use std::sync::Arc;

use eframe::egui::{self, Color32, RichText, Stroke, StrokeKind};

use crate::engine::ConvEngine;
use crate::engine::model::loops::{Iteration, LoopCase, LoopCursor, LoopPart, part_title, parts_of};
use crate::engine::model::{LayerSpec, Plan};
use crate::trainer::{Command, Snapshot};
use crate::ui::support::colormap::{abs_max, fmt_sig};
use crate::ui::support::palette;
use crate::ui::support::widgets::{placeholder_ui, projector};
use crate::ui::tabs::{Tab, TabContext, TabId};
use crate::ui::windows::help::HelpTopic;
use crate::ui::windows::keys::LOOPS_KEYS;

/// The tab's stable name.
pub const ID: TabId = TabId::new("Loops");
/// The button running one iteration.
pub const STEP_LABEL: &str = "Step";
/// The button running to the end of the innermost loop.
pub const INNER_LABEL: &str = "End of inner loop";
/// The button running the loop at the chosen speed.
pub const RUN_LABEL: &str = "Run";
/// The button stopping a run.
pub const STOP_LABEL: &str = "Stop";
/// The button running to the end of the phase.
pub const END_LABEL: &str = "End of phase";
/// The button going back to the start.
pub const RESTART_LABEL: &str = "Restart";
/// The picker of the layer and part.
pub const PART_LABEL: &str = "Loop";
/// The slider of the run's speed (iterations per second; its top is full speed).
pub const SPEED_LABEL: &str = "Speed";
/// The toggle giving the Loops view the whole window.
pub const WIDE_LABEL: &str = "Wide";
/// What [`WIDE_LABEL`] does, on hover.
const WIDE_HOVER: &str = "Hides the pipeline, the outputs panel and the batch strip while the Loops tab is in front, \
                          and puts the code beside the arithmetic (for a projector or a small screen). They come back \
                          with another tab or this switched off.";
/// The buttons walking through the terms of a long sum (an fc's inputs).
pub const FIRST_TERM_LABEL: &str = "first term";
/// See [`FIRST_TERM_LABEL`].
pub const PREVIOUS_TERM_LABEL: &str = "previous term";
/// See [`FIRST_TERM_LABEL`].
pub const NEXT_TERM_LABEL: &str = "next term";
/// See [`FIRST_TERM_LABEL`].
pub const LAST_TERM_LABEL: &str = "last term";
/// Terms shown as numbers on each side of the running one, at most.
const TERMS_AROUND: usize = 3;
/// The top of the speed slider: full speed.
const FULL_SPEED: f64 = 10_000.0;
/// What the heading's numbers mean, on hover.
const HEADER_HOVER: &str = "The batch in progress, run again from the weights it started with. The loops are the naive \
                            engine's arithmetic in the post's order: when the phase ran on the fast engine, the maps \
                            agree with it to f32 rounding. Click to fold the code away.";
/// Seconds of work per frame at most, when running at full speed or jumping to the end.
const FRAME_BUDGET: f64 = 0.03;

/// The Loops view. Its public fields are the state a lesson card may set ([`LoopsTab::show`]).
pub struct LoopsTab {
    /// The layer (position in the line) and part shown; `None`: the first the network has.
    pub choice: Option<(usize, LoopPart)>,
    /// The image of the batch to start at; `None`: the image selected in the batch.
    pub start_image: Option<usize>,
    /// The second loop's index to start at (filter `f`, channel `c`, unit `o`).
    pub start_second: usize,
    /// Iterations per second while running ([`FULL_SPEED`] and above: as fast as the frame
    /// budget allows).
    pub speed: f64,
    /// The input channel whose slice the arithmetic shows.
    pub channel: usize,
    /// The running term of a sum too long for a grid of numbers (an fc's `k` in
    /// `x[n, k]·W[o, k]`): it and its neighbours are shown as numbers with the sum so far.
    pub term: usize,
    case: Option<Arc<LoopCase>>,
    cursor: Option<LoopCursor>,
    /// The (layer, part, batch step) asked for and not answered yet.
    asked: Option<(usize, LoopPart, u64)>,
    /// A request the worker refused: not asked again until the batch or the choice changes.
    refused: Option<(usize, LoopPart, u64)>,
    /// The teaching revision last looked at.
    seen_revision: u64,
    running: bool,
    /// Running to the end of the phase (over several frames).
    finishing: bool,
    /// Iterations owed to the run (fractions carried from frame to frame).
    credit: f64,
    last_time: Option<f64>,
}

impl Default for LoopsTab {
    fn default() -> Self {
        Self {
            choice: None,
            start_image: None,
            start_second: 0,
            speed: 5.0,
            channel: 0,
            term: 0,
            case: None,
            cursor: None,
            asked: None,
            refused: None,
            seen_revision: u64::MAX,
            running: false,
            finishing: false,
            credit: 0.0,
            last_time: None,
        }
    }
}

impl LoopsTab {
    /// Puts the view on `part` of layer `layer`, starting at image `image` (`None`: the image
    /// selected in the batch) and filter (channel, unit) `second`. The case is asked for the
    /// next time the tab is drawn; a layer without that part shows what it has instead.
    pub fn show(&mut self, layer: usize, part: LoopPart, image: Option<usize>, second: usize) {
        self.choice = Some((layer, part));
        self.start_image = image;
        self.start_second = second;
        self.channel = 0;
        self.term = 0;
        self.running = false;
        self.finishing = false;
        self.refused = None;
    }

    /// The cursor being stepped, with its case (for tests and lesson cards).
    pub fn state(&self) -> Option<(&LoopCase, &LoopCursor)> {
        Some((self.case.as_deref()?, self.cursor.as_ref()?))
    }

    /// Where the cursor starts: the first iteration of image `start_image`, second loop index
    /// `start_second`; the iterations before it run at once (so sums over images stay whole).
    fn restart(&mut self, selected: usize) {
        let Some(case) = self.case.clone() else { return };
        let mut cursor = LoopCursor::new(&case);
        let nest = cursor.nest().clone();
        let n = self.start_image.unwrap_or(selected).min(case.n.saturating_sub(1));
        // Pinned: the toolbar shows where this cursor started even if the selection moves on.
        self.start_image = Some(n);
        let second = nest.vars.get(1).map_or(0, |v| self.start_second.min(v.range.saturating_sub(1)));
        let inner: u64 = nest.vars.iter().skip(2).map(|v| v.range as u64).product::<u64>() * nest.body.len() as u64;
        let per_image = nest.vars.get(1).map_or(1, |v| v.range as u64) * inner;
        let at = n as u64 * per_image + second as u64 * inner;
        cursor.run(&case, at);
        self.cursor = Some(cursor);
        self.running = false;
        self.finishing = false;
    }

    /// The step of the batch shown (1-based), or `None` before any batch.
    fn batch_step(snap: &Snapshot) -> Option<u64> {
        if snap.phases_done == snap.phases.len() {
            (snap.step > 0).then_some(snap.step)
        } else if snap.phases_done == 0 && snap.step == 0 {
            None
        } else {
            Some(snap.step + 1)
        }
    }

    /// Asks for the case when the choice or the batch changed, one request at a time; takes a
    /// new answer in.
    fn sync(&mut self, ctx: &mut TabContext<'_>) {
        let Some(snap) = ctx.snapshot else { return };
        let plan = &snap.model.plan;
        let choice = valid_choice(plan, self.choice);
        self.choice = choice;
        let Some((layer, part)) = choice else { return };
        if ctx.teaching.revision != self.seen_revision {
            self.seen_revision = ctx.teaching.revision;
            if let Some(c) = &ctx.teaching.loops
                && (c.layer, c.part) == (layer, part)
                && c.layer_name == plan.layers[layer].name
                && self.case.as_deref().is_none_or(|old| old.step != c.step || (old.layer, old.part) != (layer, part))
            {
                self.asked = None;
                let position = self.cursor.as_ref().map(LoopCursor::position);
                let same_nest = self.case.as_deref().is_some_and(|old| (old.layer, old.part) == (c.layer, c.part));
                self.case = Some(Arc::new((**c).clone()));
                if same_nest && let (Some(at), Some(case)) = (position, self.case.clone()) {
                    // A new batch under a loop being followed: the same place in the new batch.
                    let mut cursor = LoopCursor::new(&case);
                    cursor.run(&case, at);
                    self.cursor = Some(cursor);
                } else {
                    self.restart(snap.sample.index);
                }
            }
        }
        let Some(step) = Self::batch_step(snap) else { return };
        let key = (layer, part, step);
        let have = self.case.as_deref().is_some_and(|c| (c.layer, c.part, c.step) == key);
        if !have && self.asked.is_none() && self.refused != Some(key) {
            ctx.commands.push(Command::Loops { layer, part });
            self.asked = Some(key);
        }
    }

    /// Runs what the buttons and keys asked for this frame, within the frame's time budget.
    fn advance(&mut self, ui: &egui::Ui) {
        let (Some(case), Some(cursor)) = (self.case.clone(), self.cursor.as_mut()) else { return };
        let now = ui.input(|i| i.time);
        let dt = self.last_time.map_or(0.0, |t| (now - t).clamp(0.0, 0.25));
        self.last_time = Some(now);
        if !(self.running || self.finishing) {
            return;
        }
        let start = std::time::Instant::now();
        let full = self.finishing || self.speed >= FULL_SPEED;
        if !full {
            self.credit += dt * self.speed;
        }
        loop {
            let want = if full { 256 } else { (self.credit.floor() as u64).min(256) };
            if want == 0 {
                break;
            }
            let ran = cursor.run(&case, want);
            if !full {
                self.credit -= ran as f64;
            }
            if ran < want || start.elapsed().as_secs_f64() > FRAME_BUDGET {
                break;
            }
        }
        if cursor.finished() {
            self.running = false;
            self.finishing = false;
            self.credit = 0.0;
        }
        ui.ctx().request_repaint();
    }

    fn buttons_ui(&mut self, ui: &mut egui::Ui, case: &Arc<LoopCase>, selected: usize) {
        let Some(done) = self.cursor.as_ref().map(LoopCursor::finished) else { return };
        let typing = ui.ctx().text_edit_focused();
        let keys = ui.input_mut(|i| {
            let mut pressed = [false; 4];
            if !i.modifiers.any() && !typing {
                for (p, (k, _)) in pressed.iter_mut().zip(LOOPS_KEYS) {
                    *p = i.consume_key(egui::Modifiers::NONE, k);
                }
            }
            pressed
        });
        let size = if projector(ui.ctx()) { 17.0 } else { 14.0 };
        let big = |t: &str| RichText::new(t).size(size);
        let mut clicked = [false; 5];
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().slider_width = 70.0;
            clicked[0] = ui
                .add_enabled(!done, egui::Button::new(big(STEP_LABEL)))
                .on_hover_text("One iteration (key I).")
                .clicked();
            clicked[1] = ui
                .add_enabled(!done, egui::Button::new(big(INNER_LABEL)))
                .on_hover_text("Run the innermost loop to its end (key L).")
                .clicked();
            let run_label = if self.running { STOP_LABEL } else { RUN_LABEL };
            clicked[2] = ui
                .add_enabled(!done, egui::Button::new(big(run_label)))
                .on_hover_text("Run the loop at the speed chosen (key G).")
                .clicked();
            ui.add(
                egui::Slider::new(&mut self.speed, 1.0..=FULL_SPEED)
                    .logarithmic(true)
                    .show_value(false)
                    .text(SPEED_LABEL),
            )
            .on_hover_text("Iterations per second, from 1 to full speed (the right end).");
            let speed_text =
                if self.speed >= FULL_SPEED { "full speed".to_string() } else { format!("{:.0}/s", self.speed) };
            ui.label(speed_text);
            clicked[3] = ui
                .add_enabled(!done, egui::Button::new(big(END_LABEL)))
                .on_hover_text("Run every remaining iteration (key E).")
                .clicked();
            clicked[4] = ui.button(big(RESTART_LABEL)).on_hover_text("Back to the chosen image and filter.").clicked();
        });
        for k in 0..4 {
            clicked[k] |= keys[k] && !done;
        }
        if let Some(cursor) = self.cursor.as_mut() {
            if clicked[0] {
                cursor.step(case);
                self.running = false;
            }
            if clicked[1] {
                cursor.end_of_inner_loop(case);
                self.running = false;
            }
        }
        if clicked[2] {
            self.running = !self.running;
            self.credit = 0.0;
        }
        if clicked[3] {
            self.finishing = true;
        }
        if clicked[4] {
            self.restart(selected);
        }
    }

    fn toolbar(&mut self, ui: &mut egui::Ui, snap: &Snapshot) {
        let plan = &snap.model.plan;
        let Some((layer, part)) = self.choice else { return };
        {
            ui.label(PART_LABEL);
            let title = |l: usize, p: LoopPart| part_title(&plan.layers[l], p);
            let mut chosen = (layer, part);
            let combo = egui::ComboBox::from_id_salt("loops part")
                .selected_text(title(layer, part))
                .height(640.0)
                .show_ui(ui, |ui| parts_grid(ui, plan, &mut chosen));
            let shown = title(layer, part);
            combo.response.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::ComboBox, true, format!("{PART_LABEL}: {shown}"))
            });
            if chosen != (layer, part) {
                self.show(chosen.0, chosen.1, self.start_image, 0);
            }
            let Some(case) = self.case.clone() else { return };
            if (case.layer, case.part) != (layer, part) {
                return;
            }
            let nest = case.nest();
            ui.separator();
            let mut n = self.start_image.unwrap_or(snap.sample.index).min(case.n.saturating_sub(1));
            let mut second = self.start_second;
            ui.label("start at image n =");
            let a = ui.add(egui::DragValue::new(&mut n).range(0..=case.n.saturating_sub(1)));
            let mut changed = a.changed();
            if let Some(v) = nest.vars.get(1) {
                ui.label(format!("{} =", v.name));
                changed |= ui.add(egui::DragValue::new(&mut second).range(0..=v.range.saturating_sub(1))).changed();
            }
            if changed {
                self.start_image = Some(n);
                self.start_second = second;
                self.restart(n);
            }
        }
    }
}

/// The picker's list: one row per layer with its parts (`conv2  forward  dW & db  dX`), the
/// loss's two parts last, so that every part of the post's network shows without scrolling.
/// Each choice is named in full for screen readers and tests (`conv2 backward dW & db`).
fn parts_grid(ui: &mut egui::Ui, plan: &Plan, chosen: &mut (usize, LoopPart)) {
    let short = |p: LoopPart| match p {
        LoopPart::Forward | LoopPart::LossForward => "forward",
        LoopPart::BackwardParams => "dW & db",
        LoopPart::BackwardInput => "dX",
        LoopPart::LossBackward => "backward",
    };
    let mut row = |ui: &mut egui::Ui, name: &str, l: usize, parts: &[LoopPart]| {
        ui.label(RichText::new(name).strong());
        for &p in parts {
            let on = *chosen == (l, p);
            let r = ui.selectable_value(chosen, (l, p), short(p));
            let full = part_title(&plan.layers[l], p);
            r.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, on, &full));
        }
        ui.end_row();
    };
    egui::Grid::new("loops parts").num_columns(4).spacing([10.0, 6.0]).show(ui, |ui| {
        for (l, layer) in plan.layers.iter().enumerate() {
            let parts: Vec<LoopPart> = parts_of(plan, l).into_iter().filter(|p| !p.is_loss()).collect();
            if !parts.is_empty() {
                row(ui, &layer.name, l, &parts);
            }
        }
        if let Some(last) = plan.layers.len().checked_sub(1) {
            row(ui, "loss", last, &[LoopPart::LossForward, LoopPart::LossBackward]);
        }
    });
}

/// `choice` if the network has it, else the first part of the first layer that has one.
fn valid_choice(plan: &Plan, choice: Option<(usize, LoopPart)>) -> Option<(usize, LoopPart)> {
    if let Some((l, p)) = choice
        && parts_of(plan, l).contains(&p)
    {
        return Some((l, p));
    }
    if let Some((l, _)) = choice
        && let Some(p) = parts_of(plan, l).first()
    {
        return Some((l, *p));
    }
    (0..plan.layers.len()).find_map(|l| parts_of(plan, l).first().map(|p| (l, *p)))
}

impl Tab for LoopsTab {
    fn id(&self) -> TabId {
        ID
    }

    fn name(&self) -> &'static str {
        "Loops"
    }

    fn key(&self) -> Option<egui::Key> {
        Some(egui::Key::Num6)
    }

    fn help_topic(&self) -> HelpTopic {
        HelpTopic::Loops
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        self.sync(ctx);
        ui.horizontal_wrapped(|ui| {
            if let Some(snap) = ctx.snapshot {
                self.toolbar(ui, snap);
                ui.separator();
            }
            ui.toggle_value(&mut ctx.view.loops_wide, WIDE_LABEL).on_hover_text(WIDE_HOVER);
        });
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        self.sync(ctx);
        self.advance(ui);
        let Some(snap) = ctx.snapshot else { return };
        let Some(case) = self.case.clone() else {
            let text = if Self::batch_step(snap).is_none() {
                "Take a step first (Step phase): the loops run on the batch in progress."
            } else {
                "Asking the trainer for this loop's tensors…"
            };
            placeholder_ui(ui, egui::vec2(ui.available_width().min(520.0), 120.0), text);
            return;
        };
        let current = Self::batch_step(snap);
        let stale = current != Some(case.step) || Some((case.layer, case.part)) != self.choice;
        self.buttons_ui(ui, &case, snap.sample.index);
        if self.running || self.finishing {
            ui.ctx().request_repaint();
        }
        let Some(cursor) = self.cursor.as_ref() else { return };
        egui::ScrollArea::vertical().id_salt("loops view").auto_shrink([false, false]).show(ui, |ui| {
            let mut header = format!("{} on step {}'s batch of {}", case.title(), case.step, case.n);
            if stale {
                header.push_str(&format!(" — from step {}, the new one is on its way", case.step));
            }
            if case.engine == ConvEngine::Fast {
                header.push_str(" (fast engine)");
            }
            let header = RichText::new(header).strong();
            // Wide (a large screen): the code beside the arithmetic. Narrow (1280 pixels with the
            // side panels, or projector mode): the code, with each loop's index on its line, over
            // the arithmetic, so that both show without scrolling.
            let wide = ui.available_width() > 1000.0;
            let shown = cursor.last().cloned().or_else(|| cursor.peek(&case));
            let mut at = Focus { channel: self.channel, term: self.term };
            if wide {
                ui.label(header).on_hover_text(HEADER_HOVER);
                ui.horizontal_top(|ui| {
                    // The code as wide as its longest loop line with its index; the body's
                    // statement wraps.
                    let code_width = (ui.available_width() * 0.4).clamp(330.0, 540.0);
                    ui.vertical(|ui| {
                        ui.set_width(code_width);
                        code_ui(ui, cursor, shown.as_ref(), projector(ui.ctx()));
                        status_ui(ui, &case, cursor);
                    });
                    ui.add_space(8.0);
                    ui.vertical(|ui| arithmetic_ui(ui, &case, cursor, shown.as_ref(), &mut at, true));
                });
            } else {
                // The heading folds the code away (more room for the numbers on a projector).
                egui::CollapsingHeader::new(header)
                    .id_salt("loops code")
                    .default_open(true)
                    .show(ui, |ui| code_ui(ui, cursor, shown.as_ref(), true))
                    .header_response
                    .on_hover_text(HEADER_HOVER);
                arithmetic_ui(ui, &case, cursor, shown.as_ref(), &mut at, false);
            }
            (self.channel, self.term) = (at.channel, at.term);
        });
    }

    /// A lesson card reaches [`LoopsTab::show`] through this.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn request_failed(&mut self) {
        // Refused (e.g. no batch yet): not asked again until the batch or the choice changes.
        self.refused = self.asked.take();
    }
}

fn text_size(ui: &egui::Ui) -> f32 {
    if projector(ui.ctx()) { 16.0 } else { 12.0 }
}

/// The code, the line of the iteration shown highlighted and each `for` line followed by its
/// index (`n = 3 of 0..32`), the post's differing lines under the ones they replace. `compact`
/// (a narrow view): two spaces a level, and only the lines before the loops that the post
/// wrote differently.
fn code_ui(ui: &mut egui::Ui, cursor: &LoopCursor, shown: Option<&Iteration>, compact: bool) {
    let nest = cursor.nest();
    let size = text_size(ui);
    let (idx, _) = match cursor.last() {
        Some(it) => (it.indices.clone(), it.line),
        None => cursor.indices(),
    };
    let first_for = nest.body.first().copied().unwrap_or(0).saturating_sub(nest.vars.len());
    let index_colour =
        if ui.visuals().dark_mode { Color32::from_rgb(255, 200, 90) } else { Color32::from_rgb(150, 80, 0) };
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.spacing_mut().item_spacing.y = 2.0;
        for (i, line) in nest.code.iter().enumerate() {
            if compact && i < first_for && line.post.is_none() {
                continue;
            }
            let on = shown.is_some_and(|s| s.line == i);
            let shown_text = if compact { halve_indent(&line.text) } else { line.text.clone() };
            let mut text = RichText::new(&shown_text).monospace().size(size);
            if on {
                text = text.background_color(ui.visuals().selection.bg_fill).strong();
            }
            let var = i.checked_sub(first_for).and_then(|k| nest.vars.get(k).map(|v| (k, v)));
            let r = match var {
                Some((k, v)) => {
                    ui.horizontal(|ui| {
                        let r = ui.label(text);
                        ui.add_space(12.0);
                        let at = idx.get(k).copied().unwrap_or(0);
                        ui.label(
                            RichText::new(format!("{} = {at} of 0..{}", v.name, v.range))
                                .monospace()
                                .size(size)
                                .strong()
                                .color(index_colour),
                        );
                        r
                    })
                    .inner
                }
                None => ui.label(text),
            };
            if on {
                r.widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::Label, true, format!("running: {}", line.text.trim()))
                });
            }
            if let Some(post) = &line.post {
                let indent = " ".repeat(shown_text.len() - shown_text.trim_start().len());
                ui.label(
                    RichText::new(format!("{indent}the post wrote:  {}", post.text.trim()))
                        .monospace()
                        .size(size)
                        .color(palette::WRONG),
                );
                ui.label(RichText::new(format!("If run as written: {}.", post.why)).size(size - 1.0).italics());
            }
        }
    });
}

/// `line` with two spaces per level of indentation instead of four.
fn halve_indent(line: &str) -> String {
    let body = line.trim_start_matches(' ');
    let spaces = line.len() - body.len();
    format!("{}{body}", " ".repeat(spaces / 2))
}

/// How far the loop is, and at the end how it compares with the engine.
fn status_ui(ui: &mut egui::Ui, case: &LoopCase, cursor: &LoopCursor) {
    ui.label(format!("iteration {} of {}", cursor.position(), cursor.total()));
    if cursor.finished() {
        let text = match cursor.max_difference(case) {
            Some(0.0) => "The loop's map equals the engine's (largest difference 0).".to_string(),
            Some(d) => format!("The loop's map equals the engine's to rounding (largest difference {d:e})."),
            None => "The loop's map has another size than the engine's.".to_string(),
        };
        ui.label(RichText::new(text).strong().size(text_size(ui) + 1.0));
    }
}

/// A grid of numbers, one cell per value (`None`: padding, shown empty grey), `fit` points wide
/// at most when given (the wide layout, where two grids share a row beside the code).
fn numbers_ui(ui: &mut egui::Ui, values: &[Option<f32>], rows: usize, cols: usize, title: &str, fit: Option<f32>) {
    let big = projector(ui.ctx());
    let (cw, ch, font) = if big { (60.0, 26.0, 14.0) } else { (54.0, 18.0, 11.0) };
    let cw = fit.map_or(cw, |w| (w / cols.max(1) as f32).clamp(36.0, cw));
    // Wide, two rows of grids share the height: a little lower in projector mode.
    let ch = if big && fit.is_some() { 23.0 } else { ch };
    if ui.available_size_before_wrap().x < cw * cols as f32 + 8.0 {
        // Inside a wrapped row: the next grid starts a new line rather than being squeezed.
        ui.end_row();
    }
    ui.vertical(|ui| {
        ui.label(RichText::new(title).monospace().size(font + 1.0));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(cw * cols as f32, ch * rows as f32), egui::Sense::hover());
        let scale = abs_max(&values.iter().flatten().copied().collect::<Vec<_>>()).max(1e-12);
        let p = ui.painter();
        for r in 0..rows {
            for c in 0..cols {
                let cell =
                    egui::Rect::from_min_size(rect.min + egui::vec2(c as f32 * cw, r as f32 * ch), egui::vec2(cw, ch));
                let v = values.get(r * cols + c).copied().flatten();
                let fill = match v {
                    Some(v) => tint(v, scale),
                    None => Color32::from_gray(200),
                };
                p.rect_filled(cell.shrink(0.5), 0.0, fill);
                if let Some(v) = v {
                    // A long number (-2.94e-4) a notch smaller rather than over its neighbours.
                    let text = fmt_sig(v);
                    let fits = (cw - 3.0) / (0.6 * text.chars().count() as f32);
                    p.text(
                        cell.center(),
                        egui::Align2::CENTER_CENTER,
                        text,
                        egui::FontId::monospace(font.min(fits)),
                        Color32::BLACK,
                    );
                }
            }
        }
    });
}

/// A pale diverging tint, so black numbers stay readable on it.
fn tint(v: f32, scale: f32) -> Color32 {
    let t = (v / scale).clamp(-1.0, 1.0);
    let a = (t.abs() * 110.0) as u8;
    if t >= 0.0 {
        Color32::from_rgb(255 - a / 2, 255 - a, 255 - a)
    } else {
        Color32::from_rgb(255 - a, 255 - a / 2, 255)
    }
}

/// A map as coloured cells, `outline` = (row, col, side) drawn around (rows/cols may start in
/// the padding ring of width `pad`), `mark` a cell framed, `written` (when given) greys the
/// cells not computed yet. Each cell is labelled for screen readers and tests when `names` is
/// given: `names(r, c)`.
#[allow(clippy::too_many_arguments)]
fn map_ui(
    ui: &mut egui::Ui,
    values: &[f32],
    h: usize,
    w: usize,
    pad: usize,
    outline: Option<(isize, isize, usize)>,
    written: Option<&[bool]>,
    names: Option<&dyn Fn(usize, usize) -> String>,
    side_px: f32,
) {
    let cell = (side_px / (h + 2 * pad).max(w + 2 * pad).max(1) as f32).clamp(3.0, 40.0);
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(cell * (w + 2 * pad) as f32, cell * (h + 2 * pad) as f32),
        egui::Sense::hover(),
    );
    let scale = abs_max(values).max(1e-12);
    let p = ui.painter().clone();
    let at =
        |r: isize, c: isize| rect.min + egui::vec2((c + pad as isize) as f32 * cell, (r + pad as isize) as f32 * cell);
    p.rect_filled(rect, 0.0, Color32::from_gray(215));
    for r in 0..h {
        for c in 0..w {
            let i = r * w + c;
            let done = written.is_none_or(|wr| wr.get(i).copied().unwrap_or(false));
            let fill = if done {
                crate::ui::support::colormap::diverging(values.get(i).copied().unwrap_or(0.0), scale)
            } else {
                Color32::from_gray(150)
            };
            let cr = egui::Rect::from_min_size(at(r as isize, c as isize), egui::vec2(cell, cell));
            p.rect_filled(cr, 0.0, fill);
            if let Some(names) = names {
                let id = ui.scope_id().with(("loops cell", r, c));
                let resp = ui.interact(cr, id, egui::Sense::hover());
                let label = names(r, c);
                resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &label));
            }
        }
    }
    if let Some((r, c, k)) = outline {
        let o = egui::Rect::from_min_size(at(r, c), egui::vec2(cell * k as f32, cell * k as f32));
        p.rect_stroke(o, 0.0, Stroke::new(2.5, Color32::from_rgb(255, 170, 0)), StrokeKind::Outside);
    }
}

/// The side, in points, of the input and output maps beside the numbers; in the wide layout
/// (two rows of them share the height) between the two.
fn map_side(ui: &egui::Ui, wide: bool) -> f32 {
    match (projector(ui.ctx()), wide) {
        (true, false) => 180.0,
        (true, true) => 150.0,
        (false, true) => 160.0,
        (false, false) => 130.0,
    }
}

/// The arithmetic of the iteration shown. Narrow: two columns, the input map with the patch over
/// the output map filling in, beside them the operands, their products and the sums as numbers.
/// `wide` (the code is in a column of its own on the left): two rows, the operands, then the
/// input and output maps with the products and the sums.
fn arithmetic_ui(
    ui: &mut egui::Ui,
    case: &LoopCase,
    cursor: &LoopCursor,
    shown: Option<&Iteration>,
    at: &mut Focus,
    wide: bool,
) {
    let Some(it) = shown else { return };
    let (chans, _, _) = it.shape;
    at.channel = at.channel.min(chans.saturating_sub(1));
    // Wide on a screen with height to spare (no lesson card under it): larger maps.
    let roomy = wide && !projector(ui.ctx()) && ui.available_height() > 480.0;
    let side = if roomy { 210.0 } else { map_side(ui, wide) };
    if !wide {
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_max_width(side + 8.0);
                channel_ui(ui, chans, at);
                input_map_ui(ui, case, it, at.channel, side);
                output_ui(ui, case, cursor, it, at.channel, side);
            });
            ui.add_space(8.0);
            ui.vertical(|ui| {
                ui.horizontal_wrapped(|ui| {
                    operands_ui(ui, it, at, false);
                    products_ui(ui, it, at.channel, false);
                });
                sums_ui(ui, it);
                status_ui(ui, case, cursor);
            });
        });
        // Under both columns: the table of terms needs the width.
        terms_ui(ui, it, at);
        return;
    }
    // The operands side by side on top (two 5×5 grids fit beside the code in projector mode,
    // which they would not with a map beside them); under them the maps, where the patch comes
    // from and where the result goes, beside the products and the sums.
    channel_ui(ui, chans, at);
    ui.horizontal_top(|ui| operands_ui(ui, it, at, true));
    ui.add_space(4.0);
    ui.horizontal_top(|ui| {
        if it.window.is_some() {
            ui.vertical(|ui| {
                ui.set_width(side + 8.0);
                input_map_ui(ui, case, it, at.channel, side);
            });
        }
        ui.vertical(|ui| {
            ui.set_width(side + 8.0);
            output_ui(ui, case, cursor, it, at.channel, side);
        });
        ui.vertical(|ui| {
            products_ui(ui, it, at.channel, true);
            terms_ui(ui, it, at);
            sums_ui(ui, it);
        });
    });
}

/// Where in an iteration the arithmetic looks: the input channel whose slice it shows and the
/// running term of a sum too long for a grid (see [`LoopsTab::term`]).
struct Focus {
    channel: usize,
    term: usize,
}

/// The input channel picker, when the operands have more than one.
fn channel_ui(ui: &mut egui::Ui, chans: usize, at: &mut Focus) {
    if chans > 1 {
        ui.horizontal(|ui| {
            ui.label("channel c =");
            ui.add(egui::DragValue::new(&mut at.channel).range(0..=chans - 1));
            ui.label(format!("of 0..{chans}"));
        });
    }
}

/// The input map (the channel shown, the window outlined), when the iteration reads a window.
fn input_map_ui(ui: &mut egui::Ui, case: &LoopCase, it: &Iteration, channel: usize, side: f32) {
    let Some(win) = it.window else { return };
    let (_, h, w) = case.input;
    let pad = match case.spec {
        LayerSpec::Conv { pad, .. } => pad,
        _ => 0,
    };
    let ch = win.channel.unwrap_or(channel);
    ui.label(RichText::new(format!("x[{}, {ch}] {h}×{w}, pad {pad}", win.n)).monospace());
    map_ui(ui, case.input_plane(win.n, ch), h, w, pad, Some((win.row, win.col, win.size)), None, None, side);
    ui.add_space(6.0);
}

/// Whether channel slices of `it`'s operands are small enough for a grid of numbers (7×7);
/// larger ones show as heat maps, with the terms around [`LoopsTab::term`] as numbers.
fn is_small(it: &Iteration) -> bool {
    it.shape.1 * it.shape.2 <= 49
}

/// Channel `c`'s slice of an operand (all of it for one channel).
fn channel_slice(it: &Iteration, values: &[Option<f32>], c: usize) -> Vec<Option<f32>> {
    let per = it.shape.1 * it.shape.2;
    values.get(c * per..(c + 1) * per).map_or_else(Vec::new, <[_]>::to_vec)
}

/// The operands of the iteration shown (channel `c`'s slice): numbers, or a heat map with the
/// running term outlined.
fn operands_ui(ui: &mut egui::Ui, it: &Iteration, at: &Focus, wide: bool) {
    let (chans, rows, cols) = it.shape;
    let c = at.channel;
    let small = is_small(it);
    let size = text_size(ui);
    let heat_side = match (projector(ui.ctx()), wide) {
        (true, false) => 240.0,
        (true, true) => 170.0,
        (false, _) => 200.0,
    };
    // The running term, when it is in the channel shown.
    let per = rows * cols;
    let mark = (at.term / per.max(1) == c).then(|| {
        let t = at.term % per.max(1);
        ((t / cols.max(1)) as isize, (t % cols.max(1)) as isize, 1)
    });
    // Wide: the grids share the row's width.
    let grids = usize::from(it.a.len() > 1) + usize::from(it.b.len() > 1);
    let fit = (wide && grids > 0).then(|| (ui.available_width() - 12.0 * (grids - 1) as f32) / grids as f32 - 8.0);
    let operand = |ui: &mut egui::Ui, values: Vec<Option<f32>>, title: String| {
        if small {
            numbers_ui(ui, &values, rows, cols, &title, fit);
        } else {
            if ui.available_size_before_wrap().x < heat_side + 8.0 {
                // As a number grid: inside a wrapped row, the next map starts a new line.
                ui.end_row();
            }
            ui.vertical(|ui| {
                ui.label(RichText::new(&title).monospace());
                let vals: Vec<f32> = values.iter().map(|v| v.unwrap_or(0.0)).collect();
                map_ui(ui, &vals, rows, cols, 0, mark, None, None, heat_side);
            });
        }
    };
    if !it.a.is_empty() {
        let a_title = if chans > 1 { format!("{} (channel {c})", it.a_name) } else { it.a_name.clone() };
        if it.a.len() == 1 {
            ui.label(
                RichText::new(format!("{} = {}", it.a_name, it.a[0].map_or("0".into(), fmt_sig)))
                    .monospace()
                    .size(size),
            );
        } else {
            operand(ui, channel_slice(it, &it.a, c), a_title);
        }
    }
    if it.b.len() == 1 {
        ui.label(RichText::new(format!("× {} = {}", it.b_name, fmt_sig(it.b[0]))).monospace().size(size));
    } else if !it.b.is_empty() {
        let b: Vec<Option<f32>> = it.b.iter().copied().map(Some).collect();
        let title = if chans > 1 { format!("{} (channel {c})", it.b_name) } else { it.b_name.clone() };
        operand(ui, channel_slice(it, &b, c), title);
    }
}

/// The products as a grid of numbers (channel `c`'s slice), when it is small enough; `fit`: as
/// wide as the space left (the wide layout).
fn products_ui(ui: &mut egui::Ui, it: &Iteration, c: usize, fit: bool) {
    let (_, rows, cols) = it.shape;
    if !it.products.is_empty() && is_small(it) {
        let name = if it.products_name.is_empty() { "products" } else { it.products_name.as_str() };
        let width = fit.then(|| ui.available_width() - 8.0);
        numbers_ui(ui, &channel_slice(it, &it.products, c), rows, cols, name, width);
    }
}

/// `x[0]` with index `k` appended: `x[0, k]`; a name without brackets gets them: `e[k]`.
fn element(name: &str, k: impl std::fmt::Display) -> String {
    match name.strip_suffix(']') {
        Some(head) => format!("{head}, {k}]"),
        None => format!("{name}[{k}]"),
    }
}

/// A sum too long for a grid of numbers (an fc's `x[n]·W[o]` over hundreds of inputs): the
/// running term and its neighbours as numbers, `… x[n, k−1]·W[o, k−1], [x[n, k]·W[o, k]], …`,
/// with the sum so far; buttons walk `k` through the terms.
fn terms_ui(ui: &mut egui::Ui, it: &Iteration, at: &mut Focus) {
    let len = it.a.len();
    if is_small(it) || len < 2 || it.products.len() != len {
        return;
    }
    let per = (it.shape.1 * it.shape.2).max(1);
    at.term = at.term.min(len - 1);
    let size = text_size(ui);
    let mono = |t: String| RichText::new(t).monospace().size(size);
    // The walk through the terms; moving to another channel's term shows that channel.
    let before = at.term;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("term").size(size));
        let label = ui.label(mono("k =".into()));
        ui.add(egui::DragValue::new(&mut at.term).range(0..=len - 1)).labelled_by(label.id);
        ui.label(mono(format!("of 0..{len}")));
        let k = at.term;
        for (text, name, to, enabled) in [
            ("|◀", FIRST_TERM_LABEL, 0, k > 0),
            ("◀", PREVIOUS_TERM_LABEL, k.saturating_sub(1), k > 0),
            ("▶", NEXT_TERM_LABEL, (k + 1).min(len - 1), k + 1 < len),
            ("▶|", LAST_TERM_LABEL, len - 1, k + 1 < len),
        ] {
            // The arrows are in the monospace font: the proportional one has no ◀.
            let r = ui.add_enabled(enabled, egui::Button::new(mono(text.into()))).on_hover_text(name);
            r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, enabled, name));
            if r.clicked() {
                at.term = to;
            }
        }
    });
    if at.term != before {
        at.channel = at.term / per;
    }
    let k = at.term;
    let b_of = |j: usize| if it.b.len() == 1 { it.b[0] } else { it.b.get(j).copied().unwrap_or(0.0) };
    let b_name = |j: usize| if it.b.len() == 1 { it.b_name.clone() } else { element(&it.b_name, j) };
    let product = |j: usize| it.products.get(j).copied().flatten().unwrap_or(0.0);
    // As many terms on each side as the width holds (fewer in projector mode): a number is
    // about 8 characters, the row names 10, the two "…" columns one.
    let digit = ui.ctx().fonts_mut(|f| f.glyph_width(&egui::FontId::monospace(size), '0')).max(1.0);
    let columns = ((ui.available_width() - 12.0 * digit - 2.0 * (digit + 10.0)) / (8.0 * digit + 10.0)).floor();
    let shown = (columns.max(0.0) as usize).clamp(3, 2 * TERMS_AROUND + 1);
    // k in the middle, or as near it as the ends allow (k = 0: the first `shown` terms).
    let to = (k.saturating_sub(shown / 2) + shown - 1).min(len - 1);
    let from = (to + 1).saturating_sub(shown);
    // The sum so far, in the order the statement adds (bit for bit its result at the last term).
    let sums = it.start.map(|start| {
        let mut acc = start;
        let mut out = Vec::with_capacity(to + 1);
        for j in 0..=to {
            acc += product(j);
            out.push(acc);
        }
        out
    });
    let on = ui.visuals().selection.bg_fill;
    egui::Grid::new("loops terms").spacing([10.0, 2.0]).show(ui, |ui| {
        let cell = |ui: &mut egui::Ui, text: String, j: usize| {
            let t = mono(text);
            ui.label(if j == k { t.strong().background_color(on) } else { t });
        };
        let ellipsis = |ui: &mut egui::Ui, show: bool| {
            ui.label(mono(if show { "…".into() } else { String::new() }));
        };
        ui.label(mono("k".into()));
        ellipsis(ui, from > 0);
        for j in from..=to {
            cell(ui, j.to_string(), j);
        }
        ellipsis(ui, to + 1 < len);
        ui.end_row();
        let row = |ui: &mut egui::Ui, name: &str, value: &dyn Fn(usize) -> f32| {
            ui.label(mono(name.to_string()));
            ellipsis(ui, from > 0);
            for j in from..=to {
                cell(ui, fmt_sig(value(j)), j);
            }
            ellipsis(ui, to + 1 < len);
            ui.end_row();
        };
        row(ui, &element(&it.a_name, "k"), &|j| it.a[j].unwrap_or(0.0));
        if it.b.len() > 1 {
            row(ui, &element(&it.b_name, "k"), &b_of);
        }
        row(ui, "product", &product);
        if let Some(sums) = &sums {
            row(ui, "b + Σ to k ", &|j| sums[j]);
        }
    });
    let (a, b, p) = (it.a[k].unwrap_or(0.0), b_of(k), product(k));
    let (a_name, b_name) = (element(&it.a_name, k), b_name(k));
    let text = format!("{a_name}·{b_name} = {} × {} = {}", fmt_sig(a), fmt_sig(b), fmt_sig(p));
    let r = ui.label(mono(text).strong());
    // Exact values for screen readers and tests.
    r.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Label,
            true,
            format!("{a_name} = {a:?}, {b_name} = {b:?}, product = {p:?}"),
        )
    });
    if let Some(sums) = &sums {
        let s = sums[k];
        let id = ui.scope_id().with("loops sum so far");
        let resp = ui.interact(r.rect, id, egui::Sense::hover());
        resp.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Label, true, format!("sum so far at k = {k} = {s:?}"))
        });
    }
}

/// The sums: the statement's whole sum (or its note), per channel, and a max pool's winner.
fn sums_ui(ui: &mut egui::Ui, it: &Iteration) {
    let (chans, rows, _) = it.shape;
    let size = text_size(ui);
    let sum_text = match (it.start, it.result) {
        _ if it.note.is_some() => it.note.clone().unwrap_or_default(),
        (Some(b), Some(r)) => format!("{} = {} + Σ products = {}", it.target, fmt_sig(b), fmt_sig(r)),
        (None, Some(r)) => format!("{} ← {}", it.target, fmt_sig(r)),
        _ => format!("{} += the products", it.target),
    };
    ui.label(RichText::new(sum_text).monospace().strong().size(size + 1.0));
    // The breakdown after the total, which must stay in sight.
    if !it.partial_sums.is_empty() && chans > 1 {
        let sums: Vec<String> =
            it.partial_sums.iter().enumerate().map(|(k, s)| format!("c{k}: {}", fmt_sig(*s))).collect();
        ui.label(RichText::new(format!("Σ per channel  {}", sums.join("   "))).monospace().size(size - 1.0));
    }
    if let Some(win) = it.winner {
        ui.label(format!(
            "the largest value is at row {}, column {} of the window",
            win / rows.max(1),
            win % rows.max(1)
        ));
    }
}

/// The output the loop writes, filling in: the map (or slice) the iteration shown writes to.
fn output_ui(ui: &mut egui::Ui, case: &LoopCase, cursor: &LoopCursor, it: &Iteration, c: usize, side: f32) {
    let Some(write) = it.writes.first() else { return };
    let (tensor, index) = match *write {
        crate::engine::model::loops::Write::Set { tensor, index, .. }
        | crate::engine::model::loops::Write::Add { tensor, index, .. } => (tensor, index),
    };
    let Some(out) = case.outputs.get(tensor) else { return };
    let values = &cursor.outputs()[tensor];
    let written = &cursor.written()[tensor];
    let shape = &out.shape;
    // The last two dimensions are a map when there are four (N, F, H, W / F, C, K, K).
    let (plane_h, plane_w, lead) = match shape.len() {
        4 => (shape[2], shape[3], vec![shape[0], shape[1]]),
        // A few values (scores, probabilities) read best as one row.
        2 if shape[1] <= 16 => (1, shape[1], vec![shape[0]]),
        2 => {
            let side = (shape[1] as f64).sqrt().ceil().max(1.0) as usize;
            (shape[1].div_ceil(side), side, vec![shape[0]])
        }
        _ => {
            let side = (shape[0] as f64).sqrt().ceil().max(1.0) as usize;
            (shape[0].div_ceil(side), side, vec![])
        }
    };
    let per = if shape.len() == 2 { shape[1] } else { plane_h * plane_w };
    let per = per.max(1);
    // The dW of a conv: the slice of the channel shown.
    let plane = if shape.len() == 4 && out.name == "dW" { index / per / shape[1] * shape[1] + c } else { index / per };
    let name = out.name;
    let mut idx_text: Vec<usize> = Vec::new();
    let mut rest = plane;
    for d in lead.iter().rev() {
        idx_text.push(rest % d);
        rest /= d;
    }
    idx_text.reverse();
    let prefix: Vec<String> = idx_text.iter().map(usize::to_string).collect();
    let title = if prefix.is_empty() { name.to_string() } else { format!("{name}[{}]", prefix.join(", ")) };
    let from = plane * per;
    let to = (from + per).min(values.len());
    let done = written[from..to].iter().filter(|w| **w).count();
    ui.label(RichText::new(format!("{title}: {done} of {} written", to - from)).monospace().strong());
    let vals = &values[from..to];
    let wr = &written[from..to];
    let label = |r: usize, col: usize| {
        let i = r * plane_w + col;
        let coords = if shape.len() == 4 {
            format!("{}, {r}, {col}", prefix.join(", "))
        } else {
            format!("{}, {i}", prefix.join(", "))
        };
        let coords = coords.trim_start_matches(", ").to_string();
        match (vals.get(i), wr.get(i)) {
            (Some(v), Some(true)) => format!("{name}[{coords}] = {v:?}"),
            _ => format!("{name}[{coords}] not computed yet"),
        }
    };
    let mut padded = vals.to_vec();
    padded.resize(plane_h * plane_w, 0.0);
    let mut wpad = wr.to_vec();
    wpad.resize(plane_h * plane_w, false);
    let cell = index % per;
    let mark =
        (shape.len() == 4 && out.name != "dW").then(|| ((cell / plane_w) as isize, (cell % plane_w) as isize, 1));
    map_ui(ui, &padded, plane_h, plane_w, 0, mark, Some(&wpad), Some(&label), side);
}
