//! The Network editor: the model line as rows of layers a teacher can add, remove, move and
//! edit, the line itself (typed or copied), and for every layer its student name, output
//! shape, parameters and work per image, with the network's totals.
//!
//! The editor only knows the model line and the data's shape ([`crate::engine::model`]'s
//! `spec`, `shape` and `named`), not the trainer: it returns [`NetworkAction::Apply`] with the
//! line, and the app starts the new run. When the current run has unsaved progress the editor
//! asks first, in place, so that an accidental click loses nothing.
//!
//! An invalid network is explained at the layer the check blames ([`SpecError::position`]):
//! the rows before it keep their shapes (planned as if the network ended there), the reason is
//! written under that row, and Apply is disabled with the same reason.

use eframe::egui::{self, Align, Layout, RichText, TextEdit, TextStyle};

use crate::engine::model::named::NAMED;
use crate::engine::model::shape::{Plan, PlannedLayer};
use crate::engine::model::spec::{
    KINDS, LayerSpec, MAX_FC, MAX_FILTERS, MAX_KERNEL, MAX_LAYERS, MAX_PAD, MAX_STRIDE, ModelSpec, SpecError,
};
use crate::ui::support::text::thousands;

/// Title of the window, and the label of the menu item the app adds for it.
pub const WINDOW_TITLE: &str = "Network";
/// Accessibility label of the model line's text box.
pub const LINE_LABEL: &str = "Model line";
/// Text of the button that starts a new run with the network.
pub const APPLY_LABEL: &str = "Apply";
/// Text of the confirmation's button that applies although progress would be lost.
pub const APPLY_ANYWAY_LABEL: &str = "Apply anyway";
/// Text of the confirmation's button that keeps the current run.
pub const CANCEL_LABEL: &str = "Cancel";
/// Text of the button that puts the line on the clipboard.
pub const COPY_LABEL: &str = "Copy";
/// Text of the button that goes back to the current run's network.
pub const REVERT_LABEL: &str = "Revert";
/// Text of the button that inserts a layer.
pub const ADD_LABEL: &str = "Add";
/// Accessibility label of the position a new layer is inserted at.
pub const ADD_POSITION_LABEL: &str = "Insert at position";
/// Accessibility label of the kind picker of a new layer.
pub const ADD_KIND_LABEL: &str = "Kind of the new layer";
/// Bytes of one value: the engine trains in f32.
const FLOAT_BYTES: usize = 4;
/// The batch size memory is shown for until the app says otherwise (the presets' batch).
const DEFAULT_BATCH: usize = 32;

/// What the user asked the app to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkAction {
    /// Start a new run with this model line (canonical, its last fc giving one score per class
    /// of the data). Progress of the current run was either saved or the user agreed to lose it.
    Apply(String),
}

/// The editor's state: the rows being edited and what the current run uses. Owned by the app,
/// kept across frames.
pub struct NetworkEditor {
    /// Channels, height and width of one image of the data.
    input: (usize, usize, usize),
    /// Classes of the data.
    classes: usize,
    /// The line the app last gave ([`Self::set_current`]), to tell when the run changed.
    current_line: String,
    /// The current run's network, when its line can be read.
    current: Option<ModelSpec>,
    /// The rows.
    layers: Vec<LayerSpec>,
    /// The text box's contents: the rows' canonical line, or what is being typed.
    line: String,
    /// Why the typed line cannot be read (the rows keep the last line that could).
    typed_error: Option<SpecError>,
    /// The rows checked against the data.
    check: Result<Plan, SpecError>,
    /// When the rows are invalid: the layers before the one blamed, planned as if the network
    /// ended there, so their rows keep names and shapes.
    partial: Vec<PlannedLayer>,
    /// Batch size of the memory estimate.
    batch: usize,
    /// Per-parameter buffers the optimizer keeps besides the change ΔW (0 for SGD, 2 for Adam).
    extra_state: usize,
    /// Index into [`KINDS`] of the kind the Add button inserts.
    add_kind: usize,
    /// 1-based position the Add button inserts at.
    add_at: usize,
    /// The line waiting for the user to confirm losing unsaved progress.
    confirming: Option<String>,
}

impl NetworkEditor {
    /// An editor showing `current_line` (a line or a network's name) for images of `input` =
    /// (channels, height, width) in `classes` classes.
    pub fn new(current_line: &str, input: (usize, usize, usize), classes: usize) -> Self {
        let mut editor = Self {
            input,
            classes,
            current_line: String::new(),
            current: None,
            layers: Vec::new(),
            line: String::new(),
            typed_error: None,
            check: Err(SpecError::line("no network yet")),
            partial: Vec::new(),
            batch: DEFAULT_BATCH,
            extra_state: 0,
            add_kind: 0,
            add_at: 1,
            confirming: None,
        };
        editor.load_current(current_line, input, classes);
        editor
    }

    /// Tells the editor which network the run uses (call it when the run changes: a new run, a
    /// file opened, other data). The rows go back to that network; calling it again with the
    /// same line and data changes nothing, so the app may call it every frame.
    pub fn set_current(&mut self, line: &str, input: (usize, usize, usize), classes: usize) {
        if line == self.current_line && input == self.input && classes == self.classes {
            return;
        }
        self.load_current(line, input, classes);
    }

    /// The batch size and optimizer the memory estimate is for: `adam` adds Adam's two running
    /// means per parameter.
    pub fn set_training(&mut self, batch: usize, adam: bool) {
        self.batch = batch.max(1);
        self.extra_state = if adam { 2 } else { 0 };
    }

    /// The rows' line, canonical.
    pub fn line(&self) -> String {
        self.spec().to_string()
    }

    /// The rows checked against the data: the plan, or why the network cannot be used.
    pub fn check(&self) -> Result<&Plan, &SpecError> {
        self.check.as_ref()
    }

    /// Why Apply is disabled, or `None` when it is enabled.
    pub fn apply_refusal(&self) -> Option<String> {
        if let Some(e) = &self.typed_error {
            return Some(format!("the line in the box cannot be read: {}", e.message()));
        }
        if let Err(e) = &self.check {
            return Some(e.message());
        }
        if self.current.as_ref() == Some(&self.spec()) {
            return Some("this is the current run's network (Reset in the controls starts it again)".into());
        }
        None
    }

    /// Bytes one training step holds at the batch size of [`Self::set_training`] (see
    /// [`memory_formula`]), or `None` for an invalid network.
    pub fn bytes_per_step(&self) -> Option<usize> {
        let plan = self.check.as_ref().ok()?;
        Some(plan.bytes_per_step(self.batch, FLOAT_BYTES) + self.extra_state * plan.total_params() * FLOAT_BYTES)
    }

    fn spec(&self) -> ModelSpec {
        ModelSpec { layers: self.layers.clone() }
    }

    fn load_current(&mut self, line: &str, input: (usize, usize, usize), classes: usize) {
        self.current_line = line.to_string();
        self.input = input;
        self.classes = classes;
        self.current = read_line(line, classes).ok();
        match &self.current {
            Some(spec) => self.set_layers(spec.layers.clone()),
            None => {
                self.line = line.to_string();
                self.typed_error = read_line(line, classes).err();
                self.set_layers_keep_text(Vec::new());
            }
        }
        // A new layer goes before the last one by default: the last fc gives the scores.
        self.add_at = self.layers.len().max(1);
        self.confirming = None;
    }

    /// Replaces the rows (a click: a name, Revert, an edit) and writes their line in the box.
    fn set_layers(&mut self, layers: Vec<LayerSpec>) {
        self.set_layers_keep_text(layers);
        self.line = self.spec().to_string();
        self.typed_error = None;
    }

    /// Replaces the rows and checks them, leaving the box as typed.
    fn set_layers_keep_text(&mut self, layers: Vec<LayerSpec>) {
        self.layers = layers;
        self.check = self.spec().plan(self.input, self.classes);
        self.partial = match &self.check {
            Ok(_) => Vec::new(),
            Err(e) => e.position.map_or_else(Vec::new, |p| self.plan_prefix(p.saturating_sub(1))),
        };
        self.add_at = self.add_at.clamp(1, self.layers.len() + 1);
        if self.confirming.as_ref().is_some_and(|line| *line != self.spec().to_string()) {
            self.confirming = None;
        }
    }

    /// The first `n` layers planned as if the network ended there: a valid start ends in
    /// `fc(classes)` after `flatten` (or directly, when it is flat already).
    fn plan_prefix(&self, n: usize) -> Vec<PlannedLayer> {
        let start = &self.layers[..n.min(self.layers.len())];
        let fc = LayerSpec::Fc { out: self.classes };
        for tail in [vec![fc], vec![LayerSpec::Flatten, fc]] {
            let spec = ModelSpec { layers: start.iter().copied().chain(tail).collect() };
            if let Ok(mut plan) = spec.plan(self.input, self.classes) {
                plan.layers.truncate(start.len());
                return plan.layers;
            }
        }
        Vec::new()
    }

    /// The planned layer of row `i`, when it is known.
    fn planned(&self, i: usize) -> Option<&PlannedLayer> {
        match &self.check {
            Ok(plan) => plan.layers.get(i),
            Err(_) => self.partial.get(i),
        }
    }

    /// Draws the editor. `unsaved_step` is the current run's step when it has progress that is
    /// not saved (Apply then asks first), `None` when nothing would be lost.
    pub fn ui(&mut self, ui: &mut egui::Ui, unsaved_step: Option<u64>) -> Option<NetworkAction> {
        self.named_ui(ui);
        ui.add_space(4.0);
        self.line_ui(ui);
        ui.add_space(4.0);
        self.rows_ui(ui);
        ui.add_space(2.0);
        self.add_ui(ui);
        ui.separator();
        self.totals_ui(ui);
        ui.separator();
        self.apply_ui(ui, unsaved_step)
    }

    fn named_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Named networks:");
            for m in NAMED {
                let selected = m.spec(self.classes).ok().is_some_and(|s| s.layers == self.layers);
                let r = ui.selectable_label(selected, m.name).on_hover_text(format!("{}\n\n{}", m.about, m.line));
                if r.clicked()
                    && let Ok(spec) = m.spec(self.classes)
                {
                    self.set_layers(spec.layers);
                }
            }
            ui.separator();
            let is_current = self.current.as_ref() == Some(&self.spec()) && self.typed_error.is_none();
            let revert = ui
                .add_enabled(self.current.is_some() && !is_current, egui::Button::new(REVERT_LABEL))
                .on_hover_text("Back to the current run's network")
                .on_disabled_hover_text(if self.current.is_some() {
                    "These rows are the current run's network"
                } else {
                    "The current run's line cannot be read"
                });
            if revert.clicked()
                && let Some(spec) = self.current.clone()
            {
                self.set_layers(spec.layers);
            }
            let (c, h, w) = self.input;
            let note = if is_current { "the current run's network" } else { "changed: not the current run's network" };
            ui.label(
                RichText::new(format!("Data: {c}×{h}×{w} images, {} classes · {note}", self.classes)).small().weak(),
            );
        });
    }

    fn line_ui(&mut self, ui: &mut egui::Ui) {
        let label = ui
            .horizontal(|ui| {
                let label = ui.label(LINE_LABEL);
                let label = label.on_hover_text(
                    "The layers as one line, one to one with a PyTorch nn.Sequential: conv(F,K[,stride=S][,pad=P]), \
                 maxpool(K[,stride=S]), avgpool(K[,stride=S]), relu, tanh, sigmoid, flatten, fc(N). \
                 Typing a line that can be read rebuilds the rows; a network's name (lenet5) works too.",
                );
                if ui.button(COPY_LABEL).on_hover_text("Put the line on the clipboard").clicked() {
                    ui.ctx().copy_text(self.line());
                }
                label
            })
            .inner;
        let edit = TextEdit::multiline(&mut self.line)
            .id_salt("network line")
            .font(TextStyle::Monospace)
            .desired_rows(2)
            // The rows' width, not "all there is": in a window that scrolls sideways that
            // would be without end.
            .desired_width(ui.available_width().min(rows_width(ui.spacing())));
        let r = ui.add(edit).labelled_by(label.id);
        if r.changed() {
            match read_line(&self.line, self.classes) {
                Ok(spec) => {
                    self.typed_error = None;
                    self.set_layers_keep_text(spec.layers);
                }
                Err(e) => self.typed_error = Some(e),
            }
        }
        if r.lost_focus() && self.typed_error.is_none() {
            // Done typing: the box shows the line as the rows write it.
            self.line = self.line();
        }
        if let Some(e) = &self.typed_error {
            let color = ui.visuals().error_fg_color;
            ui.add(
                egui::Label::new(
                    RichText::new(format!(
                        "Cannot read this line: {}. The rows show the last line that could be read.",
                        e.message()
                    ))
                    .color(color),
                )
                .wrap(),
            );
        }
    }

    fn rows_ui(&mut self, ui: &mut egui::Ui) {
        let mut edit: Option<(usize, LayerSpec)> = None;
        let mut swap: Option<(usize, usize)> = None;
        let mut remove: Option<usize> = None;
        let error = self.check.as_ref().err().cloned();
        let bad_row = error.as_ref().and_then(|e| e.position).map(|p| p.saturating_sub(1));
        let err_color = ui.visuals().error_fg_color;

        header_ui(ui);
        let n = self.layers.len();
        for i in 0..n {
            let spec = self.layers[i];
            let planned = self.planned(i).cloned();
            let is_bad = bad_row == Some(i);
            ui.push_id(("network row", i), |ui| {
                ui.horizontal(|ui| {
                    cell(ui, COLS[0], true, |ui| {
                        let number = RichText::new(format!("{}", i + 1));
                        ui.label(if is_bad { number.color(err_color).strong() } else { number.weak() })
                    });
                    cell(ui, COLS[1], false, |ui| {
                        let name = planned.as_ref().map_or(String::new(), |p| p.name.clone());
                        ui.add(egui::Label::new(RichText::new(name).strong()).truncate())
                    });
                    cell(ui, COLS[2], false, |ui| {
                        if let Some(new) = layer_numbers_ui(ui, i, spec) {
                            edit = Some((i, new));
                        }
                    });
                    let (shape, params, work) = match &planned {
                        Some(p) => (
                            p.output.to_string(),
                            if p.spec.has_params() { thousands(p.params as u64) } else { "–".into() },
                            if p.work_per_image > 0 { flop_text(flop(p)) } else { "–".into() },
                        ),
                        None => ("?".into(), String::new(), String::new()),
                    };
                    let row = i + 1;
                    cell(ui, COLS[3], false, |ui| {
                        let r = ui.add(egui::Label::new(RichText::new(&shape).monospace()).truncate());
                        named_label(&r, format!("layer {row} output {shape}"));
                    });
                    cell(ui, COLS[4], true, |ui| {
                        let r = ui.label(&params);
                        named_label(&r, format!("layer {row} parameters {params}"));
                    });
                    cell(ui, COLS[5], true, |ui| {
                        let r = ui.label(&work);
                        named_label(&r, format!("layer {row} work {work}"));
                    });
                    cell(ui, COLS[6], false, |ui| {
                        if icon_button(ui, i > 0, Icon::Up, &format!("move layer {row} up")).clicked() {
                            swap = Some((i - 1, i));
                        }
                        if icon_button(ui, i + 1 < n, Icon::Down, &format!("move layer {row} down")).clicked() {
                            swap = Some((i, i + 1));
                        }
                        if icon_button(ui, true, Icon::Remove, &format!("remove layer {row}")).clicked() {
                            remove = Some(i);
                        }
                    });
                });
            });
            if is_bad && let Some(e) = &error {
                ui.horizontal(|ui| {
                    ui.add_space(COLS[0] + ui.spacing().item_spacing.x);
                    let text = format!("Problem at layer {}: {}", i + 1, e.reason);
                    ui.add(egui::Label::new(RichText::new(text).color(err_color)).wrap()).on_hover_text(e.message());
                });
            }
        }
        if n == 0 {
            ui.label(RichText::new("No layers: add some below, type a line, or pick a named network.").weak());
        }
        if let Some(e) = error.as_ref().filter(|e| e.position.is_none_or(|p| p > n)) {
            ui.add(egui::Label::new(RichText::new(e.message()).color(err_color)).wrap());
        }

        let mut layers = self.layers.clone();
        let changed = if let Some((i, new)) = edit {
            layers[i] = new;
            true
        } else if let Some((a, b)) = swap {
            layers.swap(a, b);
            true
        } else if let Some(i) = remove {
            layers.remove(i);
            true
        } else {
            false
        };
        if changed {
            self.set_layers(layers);
        }
    }

    fn add_ui(&mut self, ui: &mut egui::Ui) {
        let full = self.layers.len() >= MAX_LAYERS;
        ui.horizontal(|ui| {
            ui.label("New layer:");
            let combo = egui::ComboBox::from_id_salt("network add kind")
                .selected_text(KINDS[self.add_kind.min(KINDS.len() - 1)])
                .show_ui(ui, |ui| {
                    for (k, name) in KINDS.iter().enumerate() {
                        ui.selectable_value(&mut self.add_kind, k, *name);
                    }
                });
            combo.response.widget_info(|| {
                egui::WidgetInfo::labeled(
                    egui::Role::ComboBox,
                    true,
                    format!("{ADD_KIND_LABEL}: {}", KINDS[self.add_kind]),
                )
            });
            ui.label("at position");
            let max = self.layers.len() + 1;
            self.add_at = self.add_at.clamp(1, max);
            let r = ui.add(egui::DragValue::new(&mut self.add_at).range(1..=max).speed(0.1));
            let at = self.add_at;
            r.widget_info(|| egui::WidgetInfo {
                label: Some(ADD_POSITION_LABEL.into()),
                ..egui::WidgetInfo::drag_value(true, at as f64)
            });
            r.on_hover_text(format!(
                "1 puts it first, {max} last; the layer at that position and those after it move down"
            ));
            let add = ui
                .add_enabled(!full, egui::Button::new(ADD_LABEL))
                .on_hover_text("Insert the layer with typical numbers; edit them in its row")
                .on_disabled_hover_text(format!("At most {MAX_LAYERS} layers"));
            if add.clicked() {
                let mut layers = self.layers.clone();
                let at = (self.add_at - 1).min(layers.len());
                layers.insert(at, new_layer(KINDS[self.add_kind.min(KINDS.len() - 1)]));
                self.add_at += 1;
                self.set_layers(layers);
            }
        });
    }

    fn totals_ui(&self, ui: &mut egui::Ui) {
        let Ok(plan) = &self.check else {
            ui.label(RichText::new("Totals: once the network is valid.").weak());
            return;
        };
        let params = plan.total_params();
        let flops: u64 = plan.layers.iter().map(flop).sum();
        let bytes = self.bytes_per_step().unwrap_or(0);
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(format!("Parameters: {}", thousands(params as u64))).strong())
                .on_hover_text("Weights and biases of every conv and fc layer");
            ui.label("·");
            ui.label(RichText::new(format!("{} per image", flop_text(flops))).strong()).on_hover_text(
                "Work of the forward pass for one image: a multiply-add of conv and fc counts 2 FLOP, a pool \
                 window read or an activation 1. The backward pass costs about twice as much again.",
            );
            ui.label("·");
            let optimizer = if self.extra_state > 0 { " (Adam)" } else { "" };
            ui.label(
                RichText::new(format!("{} per step at batch {}{optimizer}", bytes_text(bytes), self.batch)).strong(),
            )
            .on_hover_text(memory_formula(self.extra_state > 0));
        });
    }

    fn apply_ui(&mut self, ui: &mut egui::Ui, unsaved_step: Option<u64>) -> Option<NetworkAction> {
        if let Some(line) = self.confirming.clone() {
            let mut action = None;
            let step =
                unsaved_step.map_or_else(|| "The current run".to_string(), |s| format!("Step {s} of the current run"));
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(RichText::new(format!("Start a new run with this network? {step} is not saved.")).strong());
                ui.horizontal(|ui| {
                    if ui.button(APPLY_ANYWAY_LABEL).clicked() {
                        action = Some(NetworkAction::Apply(line.clone()));
                        self.confirming = None;
                    }
                    if ui.button(CANCEL_LABEL).clicked() {
                        self.confirming = None;
                    }
                });
            });
            return action;
        }
        let refusal = self.apply_refusal();
        let mut action = None;
        ui.horizontal(|ui| {
            let mut apply = ui
                .add_enabled(refusal.is_none(), egui::Button::new(RichText::new(APPLY_LABEL).strong()))
                .on_hover_text("Start a new run with this network, from fresh weights");
            if let Some(reason) = &refusal {
                apply = apply.on_disabled_hover_text(reason);
            }
            if apply.clicked() {
                let line = self.line();
                if unsaved_step.is_some() {
                    self.confirming = Some(line);
                } else {
                    action = Some(NetworkAction::Apply(line));
                }
            }
            ui.label(RichText::new("starts a new run with this network").small().weak());
        });
        if let Some(reason) = refusal {
            let color = if self.check.is_err() || self.typed_error.is_some() {
                ui.visuals().error_fg_color
            } else {
                ui.visuals().weak_text_color()
            };
            ui.add(egui::Label::new(RichText::new(format!("Apply is off: {reason}")).color(color)).wrap());
        }
        action
    }
}

/// A model line or a network's name (its last fc taking the data's `classes`).
fn read_line(text: &str, classes: usize) -> Result<ModelSpec, SpecError> {
    match crate::engine::model::named::named(text) {
        Some(m) => m.spec(classes),
        None => ModelSpec::parse(text),
    }
}

/// Widths in points of the columns: #, name, layer, output, parameters, work, buttons.
const COLS: [f32; 7] = [22.0, 62.0, 300.0, 96.0, 72.0, 84.0, 86.0];

/// Width in points of a layer row: its columns and the space between them.
fn rows_width(spacing: &egui::style::Spacing) -> f32 {
    COLS.iter().sum::<f32>() + (COLS.len() - 1) as f32 * spacing.item_spacing.x
}

fn header_ui(ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        let titles = ["#", "name", "layer", "output", "parameters", "work/image", ""];
        for (i, (title, width)) in titles.iter().zip(COLS).enumerate() {
            let right = matches!(i, 0 | 4 | 5);
            cell(ui, width, right, |ui| ui.label(RichText::new(*title).small().weak()));
        }
    });
}

/// A cell of `width` points, its content right-aligned (numbers) or left-aligned.
fn cell<R>(ui: &mut egui::Ui, width: f32, right: bool, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    let height = ui.spacing().interact_size.y;
    let layout = if right { Layout::right_to_left(Align::Center) } else { Layout::left_to_right(Align::Center) };
    ui.allocate_ui_with_layout(egui::vec2(width, height), layout, |ui| {
        ui.set_min_width(width);
        ui.spacing_mut().item_spacing.x = 3.0;
        add(ui)
    })
    .inner
}

/// What an icon button shows.
#[derive(Clone, Copy)]
enum Icon {
    Up,
    Down,
    Remove,
}

/// A square button with a painted icon (egui's bundled font has no arrows), its own
/// accessibility label, and that label as its tooltip.
fn icon_button(ui: &mut egui::Ui, enabled: bool, icon: Icon, label: &str) -> egui::Response {
    let side = ui.spacing().interact_size.y;
    let r = ui.add_enabled(enabled, egui::Button::new("").min_size(egui::vec2(side, side)));
    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, enabled, label));
    if ui.is_rect_visible(r.rect) {
        let color = if enabled { ui.style().interact(&r).fg_stroke.color } else { ui.visuals().weak_text_color() };
        let c = r.rect.center();
        let s = side * 0.22;
        let painter = ui.painter();
        match icon {
            Icon::Up | Icon::Down => {
                let d = if matches!(icon, Icon::Up) { -1.0 } else { 1.0 };
                let points = vec![
                    c + egui::vec2(-s, -d * s * 0.6),
                    c + egui::vec2(s, -d * s * 0.6),
                    c + egui::vec2(0.0, d * s * 0.8),
                ];
                painter.add(egui::Shape::convex_polygon(points, color, egui::Stroke::NONE));
            }
            Icon::Remove => {
                let stroke = egui::Stroke::new(1.5, color);
                painter.line_segment([c + egui::vec2(-s, -s), c + egui::vec2(s, s)], stroke);
                painter.line_segment([c + egui::vec2(-s, s), c + egui::vec2(s, -s)], stroke);
            }
        }
    }
    r.on_hover_text(label)
}

/// Gives a label a longer accessible text than it shows ("layer 3 output 16×28×28" for
/// "16×28×28"), so that a screen reader, and a test, can tell the rows' numbers apart.
fn named_label(r: &egui::Response, text: String) {
    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &text));
}

/// A number of a layer: a drag value named `layer N <what>` for screen readers and tests.
fn number_ui(
    ui: &mut egui::Ui,
    row: usize,
    what: &str,
    value: &mut usize,
    range: std::ops::RangeInclusive<usize>,
    format: fn(usize) -> String,
    tip: &str,
) -> bool {
    let r = ui.add(
        egui::DragValue::new(value)
            .range(range)
            .speed(0.05)
            .custom_formatter(move |v, _| format(v.round() as usize))
            .custom_parser(|s| s.trim().split(['×', 'x']).next().and_then(|n| n.trim().parse::<f64>().ok())),
    );
    let v = *value as f64;
    r.widget_info(|| egui::WidgetInfo {
        label: Some(format!("layer {} {what}", row + 1)),
        ..egui::WidgetInfo::drag_value(true, v)
    });
    let changed = r.changed();
    r.on_hover_text(tip);
    changed
}

/// The kind and the editable numbers of row `row`; returns the layer when a number changed.
fn layer_numbers_ui(ui: &mut egui::Ui, row: usize, spec: LayerSpec) -> Option<LayerSpec> {
    ui.add(egui::Label::new(RichText::new(spec.kind()).monospace().strong()));
    let mut new = spec;
    let changed = match &mut new {
        LayerSpec::Conv { filters, k, stride, pad } => {
            let mut c = number_ui(
                ui,
                row,
                "filters",
                filters,
                1..=MAX_FILTERS,
                |v| format!("{v} filters"),
                "Output channels: one map per filter",
            );
            c |= number_ui(
                ui,
                row,
                "kernel",
                k,
                1..=MAX_KERNEL,
                |v| format!("{v}×{v}"),
                "Kernel side K: each filter is C×K×K",
            );
            c |=
                number_ui(ui, row, "stride", stride, 1..=MAX_STRIDE, |v| format!("stride {v}"), "Step between windows");
            c |= number_ui(ui, row, "pad", pad, 0..=MAX_PAD, |v| format!("pad {v}"), "Zeros added on every side");
            c
        }
        LayerSpec::MaxPool { k, stride } | LayerSpec::AvgPool { k, stride } => {
            let old_k = *k;
            let mut c = number_ui(ui, row, "window", k, 1..=MAX_KERNEL, |v| format!("{v}×{v}"), "Window side K");
            // The stride follows the window while it is the default (equal to it).
            if c && *stride == old_k {
                *stride = *k;
            }
            c |= number_ui(
                ui,
                row,
                "stride",
                stride,
                1..=MAX_STRIDE,
                |v| format!("stride {v}"),
                "Step between windows (the window side unless changed)",
            );
            c
        }
        LayerSpec::Fc { out } => number_ui(
            ui,
            row,
            "units",
            out,
            1..=MAX_FC,
            |v| format!("{v} units"),
            "Outputs: the last fc gives one score per class",
        ),
        LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid | LayerSpec::Flatten => false,
    };
    (changed && new != spec).then_some(new)
}

/// A new layer of `kind` with typical numbers: a conv that keeps the size, a 2×2 pool, 64 fc
/// units.
fn new_layer(kind: &str) -> LayerSpec {
    match kind {
        "conv" => LayerSpec::Conv { filters: 8, k: 3, stride: 1, pad: 1 },
        "maxpool" => LayerSpec::MaxPool { k: 2, stride: 2 },
        "avgpool" => LayerSpec::AvgPool { k: 2, stride: 2 },
        "tanh" => LayerSpec::Tanh,
        "sigmoid" => LayerSpec::Sigmoid,
        "flatten" => LayerSpec::Flatten,
        "fc" => LayerSpec::Fc { out: 64 },
        _ => LayerSpec::Relu,
    }
}

/// A layer's forward work in FLOP: a multiply-add counts 2, a pool's window read or an
/// activation's value 1.
fn flop(layer: &PlannedLayer) -> u64 {
    let work = layer.work_per_image as u64;
    if layer.spec.has_params() { 2 * work } else { work }
}

/// FLOP as people read them: "20.1 MFLOP", "12.5 kFLOP", "784 FLOP".
pub fn flop_text(flop: u64) -> String {
    let f = flop as f64;
    if f >= 1e6 {
        format!("{:.1} MFLOP", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} kFLOP", f / 1e3)
    } else {
        format!("{flop} FLOP")
    }
}

/// Bytes as people read them: "3.4 MB", "512 kB".
pub fn bytes_text(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", (b / 1e3).ceil())
    }
}

/// How the memory per step is counted, for its tooltip.
pub fn memory_formula(adam: bool) -> String {
    let state = if adam {
        "(3 + 2)·P: the parameters, their gradients, ΔW and Adam's two running means"
    } else {
        "3·P: the parameters, their gradients and their change ΔW (the momentum buffer)"
    };
    format!(
        "Memory of one training step, 4 bytes per f32 value:\n\
         4 · (N·(I + 2·A) + {state})\n\
         N = batch size, I = values of one input image, A = values of all layers' outputs for one \
         image (flatten's not counted twice), kept in the forward pass with their gradients in the \
         backward pass, P = parameters. Scratch buffers of the engines (im2col, FFT) are not counted."
    )
}

/// What the Network window did in one frame.
#[derive(Debug, Default, PartialEq)]
pub struct NetworkWindow {
    /// False once the user closed the window.
    pub open: bool,
    /// What the user asked for.
    pub action: Option<NetworkAction>,
}

/// The Network editor as a window sized to the screen (whatever the zoom: projector mode makes
/// the screen smaller in points, and what does not fit scrolls). `unsaved_step` as in
/// [`NetworkEditor::ui`].
pub fn network_window(ctx: &egui::Context, editor: &mut NetworkEditor, unsaved_step: Option<u64>) -> NetworkWindow {
    let mut open = true;
    let mut action = None;
    let screen = ctx.content_rect();
    let width = (rows_width(&ctx.global_style().spacing) + 40.0).min(screen.width() - 24.0);
    let height = (screen.height() - 40.0).max(200.0);
    egui::Window::new(WINDOW_TITLE)
        .id(egui::Id::unique("network editor"))
        .open(&mut open)
        .default_pos(egui::pos2(screen.left() + (screen.width() - width).max(0.0) / 2.0, screen.top() + 20.0))
        .default_width(width)
        // Room for the content up to the screen's height; the window is as tall as the content
        // (the scroll area below shrinks to it) and what does not fit scrolls. The window's
        // own scrolling would keep the height of the first frame, and a longer network would
        // push Apply out of sight.
        .default_height(height)
        .max_height(height)
        .constrain_to(screen)
        // The width is the user's; a narrow window scrolls sideways.
        .resizable([true, false])
        .show(ctx, |ui| {
            ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
            egui::ScrollArea::both()
                .id_salt("network editor scroll")
                .auto_shrink([false, true])
                .show(ui, |ui| action = editor.ui(ui, unsaved_step));
        });
    NetworkWindow { open, action }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: (usize, usize, usize) = (1, 28, 28);

    #[test]
    fn work_and_memory_read_in_the_usual_units() {
        assert_eq!(flop_text(20_070_400), "20.1 MFLOP");
        assert_eq!(flop_text(12_544), "12.5 kFLOP");
        assert_eq!(flop_text(784), "784 FLOP");
        assert_eq!(bytes_text(3_400_000), "3.4 MB");
        assert_eq!(bytes_text(1_500), "2 kB");
    }

    #[test]
    fn the_rows_before_an_invalid_layer_keep_their_names_and_shapes() {
        // The post without flatten: fc(100) at position 4 is blamed.
        let e = NetworkEditor::new("conv(16,5,pad=2), relu, conv(32,5,pad=2), fc(100), relu, fc(10)", MNIST, 10);
        let err = e.check().expect_err("no flatten");
        assert_eq!(err.position, Some(4));
        let names: Vec<&str> = e.partial.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["conv1", "relu1", "conv2"]);
        assert_eq!(e.partial[2].output.to_string(), "32×28×28");
    }

    #[test]
    fn memory_per_step_follows_the_batch_and_the_optimizer() {
        let mut e = NetworkEditor::new("lenet5", MNIST, 10);
        let plan = e.check().expect("lenet5 fits MNIST").clone();
        assert_eq!(e.bytes_per_step(), Some(plan.bytes_per_step(32, 4)));
        e.set_training(8, true);
        assert_eq!(e.bytes_per_step(), Some(plan.bytes_per_step(8, 4) + 2 * 61_706 * 4));
    }

    #[test]
    fn a_named_current_line_is_the_current_network_and_cannot_be_applied_again() {
        let e = NetworkEditor::new("post", MNIST, 10);
        assert_eq!(e.line(), NAMED[0].line);
        assert!(e.apply_refusal().is_some_and(|r| r.contains("current run")));
    }
}
