//! The convolution playground (View → Convolution playground…): a small input, a kernel or a
//! pooling window, padding and stride, and the window sliding over the padded input one
//! position at a time — the window outlined, its products and their sum, the output cell being
//! written — with the post's output-size formula and what its floor leaves out.
//!
//! It has nothing to do with training: the numbers are the user's, and the maths is
//! [`crate::engine::playground`]'s (the same as the engine's naive loops, tested there). A lesson
//! card puts it in a state with [`PlaygroundState::apply`].

use std::time::Duration;

use eframe::egui::{self, Color32, FontId, Rect, RichText, Sense, Stroke, StrokeKind, TextStyle, vec2};

use crate::engine::playground::{
    Cell, DoesNotFit, Grid, InputPreset, KERNEL_SIDES, KernelPreset, MAX_PAD, MAX_SIDE, MAX_STRIDE, MIN_SIDE, Mode,
    Operation, Output, OutputSize, POOL_SIDES, Setup,
};
use crate::ui::support::palette;
use crate::ui::support::widgets::projector;
use crate::ui::windows::help::{HelpTopic, help_button_ui};

/// The window's title (and the View menu item without its ellipsis).
pub const TITLE: &str = "Convolution playground";
/// The Step button.
pub const STEP_LABEL: &str = "Step";
/// The Play button (Pause while playing).
pub const PLAY_LABEL: &str = "Play";
/// The Pause button.
pub const PAUSE_LABEL: &str = "Pause";
/// The Restart button.
pub const RESTART_LABEL: &str = "Restart";
/// The first words of the output-size line.
pub const SIZE_PREFIX: &str = "Output size = 1 + (H − HH + 2·pad) / stride";

/// The widths, in points, the input and output grids may take at most (more cells: smaller cells).
const INPUT_BUDGET: f32 = 340.0;
/// See [`INPUT_BUDGET`].
const OUTPUT_BUDGET: f32 = 330.0;
/// How much larger the grids are in projector mode.
const PROJECTOR_GROWTH: f32 = 1.15;

/// Slowest and fastest animation, in window positions per second.
const SPEEDS: (f32, f32) = (0.5, 10.0);

/// Everything the playground shows; owned by the app, kept while the app runs (closing the
/// window keeps the numbers for the next opening).
#[derive(Clone, Debug)]
pub struct PlaygroundState {
    input: Grid,
    /// The preset the input came from; `None` once a cell was edited.
    input_preset: Option<InputPreset>,
    /// The seed random inputs are drawn with.
    seed: u64,
    kernel: Grid,
    /// The preset the kernel came from; `None` once a weight was edited.
    kernel_preset: Option<KernelPreset>,
    bias: f32,
    pad: usize,
    stride: usize,
    mode: Mode,
    pool: usize,
    /// Output cells written so far, in slide order (0: the window has not started).
    written: usize,
    playing: bool,
    /// Window positions per second while playing.
    speed: f32,
    /// When the last position was written while playing (egui's clock, seconds).
    last_tick: Option<f64>,
    /// The output cell clicked (its index in slide order), whose arithmetic is shown instead of
    /// the animation's.
    picked: Option<usize>,
    /// The geometry the animation was made for: when it changes the window starts again.
    geometry: (usize, usize, usize, usize, Mode),
    /// How much of their full size the input and output grids get (1: all), so that both fit
    /// beside the arithmetic in the window's width; set each frame.
    fit: f32,
    /// The largest cell side that keeps the grids within the window's height (points).
    tallest: f32,
}

impl Default for PlaygroundState {
    fn default() -> Self {
        let mut s = Self {
            input: Grid::zeros(1),
            input_preset: None,
            seed: 1,
            kernel: Grid::zeros(1),
            kernel_preset: None,
            bias: 0.0,
            pad: 0,
            stride: 1,
            mode: Mode::Conv,
            pool: 2,
            written: 0,
            playing: false,
            speed: 2.0,
            last_tick: None,
            picked: None,
            geometry: (0, 0, 0, 0, Mode::Conv),
            fit: 1.0,
            tallest: f32::INFINITY,
        };
        s.apply(&Setup::default());
        s
    }
}

impl PlaygroundState {
    /// Puts the playground in the state `setup` describes (input size and preset, kernel size
    /// and preset, bias, padding, stride, mode, pooling window), with the animation at its
    /// start and paused. Values out of range are brought into range. This is how a lesson card
    /// opens it: `state.apply(&Setup::parse("size=8 kernel=edge-vertical stride=2")?)`.
    pub fn apply(&mut self, setup: &Setup) {
        let side = setup.side.clamp(MIN_SIDE, MAX_SIDE);
        if let InputPreset::Random(seed) = setup.input {
            self.seed = seed;
        }
        self.input = setup.input.grid(side);
        self.input_preset = Some(setup.input);
        let k = if KERNEL_SIDES.contains(&setup.kernel_side) { setup.kernel_side } else { KERNEL_SIDES[0] };
        self.kernel = setup.kernel.grid(k);
        self.kernel_preset = Some(setup.kernel);
        self.bias = if setup.bias.is_finite() { setup.bias } else { 0.0 };
        self.pad = setup.pad.min(MAX_PAD);
        self.stride = setup.stride.clamp(1, MAX_STRIDE);
        self.mode = setup.mode;
        self.pool = if POOL_SIDES.contains(&setup.pool) { setup.pool } else { POOL_SIDES[0] };
        self.restart();
        self.playing = false;
        self.geometry = self.current_geometry();
    }

    /// What slides over the input now.
    pub fn operation(&self) -> Operation {
        Operation {
            mode: self.mode,
            kernel: self.kernel.clone(),
            bias: self.bias,
            pad: self.pad,
            stride: self.stride,
            pool: self.pool,
        }
    }

    /// The input (without padding).
    pub fn input(&self) -> &Grid {
        &self.input
    }

    /// The kernel.
    pub fn kernel(&self) -> &Grid {
        &self.kernel
    }

    /// The output size and its formula's numbers.
    pub fn output_size(&self) -> OutputSize {
        self.operation().output_size(self.input.side())
    }

    /// Every output cell's arithmetic, or why there is no output.
    pub fn output(&self) -> Result<Output, DoesNotFit> {
        self.operation().apply(&self.input)
    }

    /// Output cells written so far by the animation.
    pub fn written(&self) -> usize {
        self.written
    }

    /// True while the animation plays.
    pub fn playing(&self) -> bool {
        self.playing
    }

    /// Writes the next output cell (what Step does); false when all are written.
    pub fn step(&mut self) -> bool {
        self.picked = None;
        let total = self.positions();
        if self.written < total {
            self.written += 1;
            true
        } else {
            false
        }
    }

    /// Back to the start: no output cell written.
    pub fn restart(&mut self) {
        self.written = 0;
        self.picked = None;
        self.last_tick = None;
    }

    /// Sets the input value at (`row`, `col`) (as typing it into the cell does).
    pub fn set_input(&mut self, row: usize, col: usize, value: f32) {
        if value.is_finite() && self.input.get(row, col).is_some_and(|v| v != value) {
            self.input.set(row, col, value);
            self.input_preset = None;
        }
    }

    /// Sets the kernel weight at (`row`, `col`).
    pub fn set_kernel(&mut self, row: usize, col: usize, value: f32) {
        if value.is_finite() && self.kernel.get(row, col).is_some_and(|v| v != value) {
            self.kernel.set(row, col, value);
            self.kernel_preset = None;
        }
    }

    fn positions(&self) -> usize {
        self.output_size().out().map_or(0, |o| o * o)
    }

    fn current_geometry(&self) -> (usize, usize, usize, usize, Mode) {
        let size = self.output_size();
        (size.input, size.window, size.pad, size.stride, self.mode)
    }

    /// The cell whose arithmetic is shown: the one clicked, else the one just written.
    fn shown(&self) -> Option<usize> {
        self.picked.or_else(|| self.written.checked_sub(1))
    }

    /// A new input side: the preset drawn again at that size, or the edited numbers kept where
    /// they fit (zeros elsewhere).
    fn resize_input(&mut self, side: usize) {
        self.input = match self.input_preset {
            Some(p) => p.grid(side),
            None => Grid::from_fn(side, |r, c| self.input.get(r, c).unwrap_or(0.0)),
        };
    }

    fn resize_kernel(&mut self, side: usize) {
        self.kernel = match self.kernel_preset {
            Some(p) => p.grid(side),
            None => {
                // An edited kernel keeps its centre where it is.
                let (old, shift) = (self.kernel.side() as isize, (side as isize - self.kernel.side() as isize) / 2);
                Grid::from_fn(side, |r, c| {
                    let (r, c) = (r as isize - shift, c as isize - shift);
                    if (0..old).contains(&r) && (0..old).contains(&c) {
                        self.kernel.get(r as usize, c as usize).unwrap_or(0.0)
                    } else {
                        0.0
                    }
                })
            }
        };
    }

    /// Advances the animation by the time passed; asks for a repaint when the next position is
    /// due.
    fn tick(&mut self, ctx: &egui::Context) {
        if !self.playing {
            self.last_tick = None;
            return;
        }
        let now = ctx.input(|i| i.time);
        let period = 1.0 / f64::from(self.speed.clamp(SPEEDS.0, SPEEDS.1));
        match self.last_tick {
            None => {
                // Play writes the first cell at once, then one per period.
                self.last_tick = Some(now);
                if !self.step() {
                    self.playing = false;
                }
            }
            Some(last) if now - last >= period => {
                self.last_tick = Some(last + period * ((now - last) / period).floor());
                if !self.step() {
                    self.playing = false;
                }
            }
            Some(_) => {}
        }
        if self.playing {
            let last = self.last_tick.unwrap_or(now);
            let wait = (last + period - now).max(0.0);
            ctx.request_repaint_after(Duration::from_secs_f64(wait));
        }
        if self.written >= self.positions() {
            self.playing = false;
        }
    }
}

/// Draws the playground window while `open`; the × closes it (sets `open` to false).
///
/// `room`, when given, is where the window must stay (above a lesson's card); else the screen.
pub fn playground_window(ctx: &egui::Context, state: &mut PlaygroundState, open: &mut bool, room: Option<Rect>) {
    state.tick(ctx);
    // As large as the screen allows below the menu and control bars: the grids are meant to be
    // read from the back of a room, and a scroll bar is the fallback, not the layout.
    let screen = ctx.content_rect();
    let size = vec2((screen.width() - 60.0).min(1060.0), (screen.height() - 110.0).min(720.0));
    let mut window = egui::Window::new(TITLE)
        .id(egui::Id::unique("convolution playground"))
        .open(open)
        .default_pos(egui::pos2(screen.left() + 30.0, screen.top() + 80.0))
        .default_size(size)
        .resizable(true);
    if let Some(room) = room {
        // The title bar and frame take ~40 points beyond the contents.
        window = window.constrain_to(room).max_height((room.height() - 40.0).max(120.0));
    }
    window.show(ctx, |ui| {
        egui::ScrollArea::both().auto_shrink([false, false]).show(ui, |ui| playground_ui(ui, state));
    });
}

/// The playground's contents (controls, formula, grids, animation), for the window or a test
/// host.
pub fn playground_ui(ui: &mut egui::Ui, state: &mut PlaygroundState) {
    ui.horizontal(|ui| {
        help_button_ui(ui, HelpTopic::Playground);
        ui.label(
            RichText::new(
                "A kernel slides over a small input, as in the post's conv loop; every number can be edited.",
            )
            .small(),
        );
    });
    controls_ui(ui, state);
    if state.current_geometry() != state.geometry {
        state.geometry = state.current_geometry();
        state.restart();
    }
    ui.separator();
    let size = state.output_size();
    size_ui(ui, &size);
    ui.separator();
    // The animation's buttons above the grids: on a small screen the grids scroll, not them.
    let total = state.output().map_or(0, |o| o.cells.len());
    animation_ui(ui, state, total);
    let output = state.output().ok();
    let cell = output.as_ref().and_then(|o| state.shown().and_then(|i| o.cells.get(i)));
    let middle = if projector(ui.ctx()) { 340.0 } else { 320.0 };
    let grids = (INPUT_BUDGET + OUTPUT_BUDGET) * if projector(ui.ctx()) { PROJECTOR_GROWTH } else { 1.0 };
    state.fit = ((ui.available_width() - middle - 40.0) / grids).clamp(0.5, 1.0);
    // Below the grids' titles; a grid that still does not fit (tiny window) scrolls.
    state.tallest =
        ((ui.available_height() - 2.0 * body_size(ui) - 8.0) / state.output_size().padded().max(1) as f32).max(20.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| input_ui(ui, state, &size, cell));
        ui.add_space(12.0);
        ui.vertical(|ui| {
            // Long sums wrap here rather than push the output off the window.
            ui.set_max_width(middle);
            middle_ui(ui, state, cell);
        });
        ui.add_space(12.0);
        ui.vertical(|ui| output_ui(ui, state, output.as_ref()));
    });
}

/// Input size and fill, kernel size and preset, bias, mode, pooling window, padding, stride.
fn controls_ui(ui: &mut egui::Ui, state: &mut PlaygroundState) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Input").strong()).on_hover_text("The numbers the window slides over (H×H)");
        for side in MIN_SIDE..=MAX_SIDE {
            let r = ui
                .selectable_label(state.input.side() == side, format!("{side}×{side}"))
                .on_hover_text(format!("An input of {side}×{side} values (H = {side})"));
            if r.clicked() && state.input.side() != side {
                state.resize_input(side);
            }
        }
        ui.separator();
        let presets = [
            InputPreset::Numbers,
            InputPreset::Random(state.seed),
            InputPreset::Edge,
            InputPreset::Seven,
            InputPreset::One,
        ];
        for p in presets {
            let on = state.input_preset.is_some_and(|q| q.key() == p.key());
            let hover = match p {
                InputPreset::Numbers => "A fixed pattern of whole numbers 0 to 4",
                InputPreset::Random(_) => "Whole numbers 0 to 4 drawn with the seed beside",
                InputPreset::Edge => "Zeros on the left, ones on the right: try the vertical-edge kernel on it",
                InputPreset::Seven => "A tiny 7 drawn in ones on zeros, like a very small MNIST digit",
                InputPreset::One => "A tiny 1 drawn in ones on zeros",
            };
            if ui.selectable_label(on, p.name()).on_hover_text(hover).clicked() {
                state.input_preset = Some(p);
                state.input = p.grid(state.input.side());
            }
        }
        let mut seed = state.seed;
        let r = ui
            .add(egui::DragValue::new(&mut seed).prefix("seed ").range(0..=9999))
            .on_hover_text("The seed of the random numbers: the same seed gives the same input");
        if r.changed() {
            state.seed = seed;
            state.input_preset = Some(InputPreset::Random(seed));
            state.input = InputPreset::Random(seed).grid(state.input.side());
        }
        if state.input_preset.is_none() {
            ui.label(RichText::new("(your numbers)").weak()).on_hover_text("You edited the input");
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Mode").strong()).on_hover_text("What the window computes at each position");
        for m in Mode::ALL {
            let hover = match m {
                Mode::Conv => "Multiply the window by the kernel, add the products and the bias (the post's conv)",
                Mode::MaxPool => "Keep the largest value of each window (the post's max pooling)",
                Mode::AvgPool => "Keep the mean of each window",
            };
            if ui.selectable_label(state.mode == m, capitalised(m.name())).on_hover_text(hover).clicked() {
                // Pools usually step by their window (LeNet's pool(2) halves the map): start there.
                if m.is_pool() && !state.mode.is_pool() {
                    state.stride = state.pool;
                }
                state.mode = m;
            }
        }
        ui.separator();
        if state.mode.is_pool() {
            for k in POOL_SIDES {
                if ui
                    .selectable_label(state.pool == k, format!("window {k}×{k}"))
                    .on_hover_text(format!("Pool over {k}×{k} windows (HH = {k})"))
                    .clicked()
                {
                    if state.stride == state.pool {
                        state.stride = k;
                    }
                    state.pool = k;
                }
            }
        } else {
            for k in KERNEL_SIDES {
                if ui
                    .selectable_label(state.kernel.side() == k, format!("kernel {k}×{k}"))
                    .on_hover_text(format!("A {k}×{k} kernel (HH = {k})"))
                    .clicked()
                    && state.kernel.side() != k
                {
                    state.resize_kernel(k);
                }
            }
        }
        ui.separator();
        for p in 0..=MAX_PAD {
            let hover = if state.mode.is_pool() {
                "Pooling takes no padding here, as the engine's pool layers (and the post's) take none".to_string()
            } else {
                format!("{p} ring{} of zeros around the input before the kernel slides", if p == 1 { "" } else { "s" })
            };
            let r = ui
                .add_enabled(!state.mode.is_pool(), egui::Button::selectable(state.pad == p, format!("pad {p}")))
                .on_hover_text(hover.clone())
                .on_disabled_hover_text(hover);
            if r.clicked() {
                state.pad = p;
            }
        }
        ui.separator();
        for s in 1..=MAX_STRIDE {
            if ui
                .selectable_label(state.stride == s, format!("stride {s}"))
                .on_hover_text(format!("The window moves {s} cell{} at a time", if s == 1 { "" } else { "s" }))
                .clicked()
            {
                state.stride = s;
            }
        }
    });
    // Shown but off while pooling, so the rows below do not jump when the mode changes.
    ui.add_enabled_ui(!state.mode.is_pool(), |ui| {
        ui.horizontal_wrapped(|ui| {
            let off = "Pooling has no kernel and no bias: it only compares or averages the window's values";
            ui.label(RichText::new("Kernel").strong()).on_hover_text("The weights the window multiplies by");
            for k in KernelPreset::ALL {
                let r = ui
                    .selectable_label(state.kernel_preset == Some(k), k.name())
                    .on_hover_text(k.describe())
                    .on_disabled_hover_text(off);
                if r.clicked() {
                    state.kernel_preset = Some(k);
                    state.kernel = k.grid(state.kernel.side());
                }
            }
            if state.kernel_preset.is_none() {
                ui.label(RichText::new("(your weights)").weak()).on_hover_text("You edited the kernel");
            }
            ui.separator();
            ui.add(
                egui::DragValue::new(&mut state.bias).prefix("bias ").speed(0.1).range(-99.0..=99.0).max_decimals(2),
            )
            .on_hover_text("b, added to every sum: out = Σ window · kernel + b")
            .on_disabled_hover_text(off);
        });
    });
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// The output size from the post's formula, with the numbers, and what it means.
fn size_ui(ui: &mut egui::Ui, size: &OutputSize) {
    let mono = FontId::monospace(body_size(ui) + 2.0);
    let out = size.out().map_or_else(|| "no output".to_string(), |o| format!("{o}×{o}"));
    let strong = ui.visuals().strong_text_color();
    // The numbers under the formula, their "=" under its "=" (the font is monospace).
    let indent = " ".repeat(SIZE_PREFIX.chars().position(|c| c == '=').unwrap_or(0));
    let text = format!("{SIZE_PREFIX}\n{indent}= {}  →  {out}", size.formula());
    ui.label(RichText::new(text).font(mono).color(strong)).on_hover_text(
        "The post's formula: H the input's side, HH the window's, pad the zero rings, stride the step. \
         Its int() rounds the division down.",
    );
    if let Some(text) = size.explanation() {
        let warn = size.out().is_none() || size.remainder() > 0;
        let color = if warn { ui.visuals().warn_fg_color } else { ui.visuals().text_color() };
        ui.label(RichText::new(text).color(color));
    }
}

/// The text size of the window's body text, in points.
fn body_size(ui: &egui::Ui) -> f32 {
    TextStyle::Body.resolve(ui.style()).size
}

/// The side of one cell, in points: larger in projector mode, smaller for large grids so the
/// window stays on screen.
fn cell_side(ui: &egui::Ui, cells: usize, budget: f32) -> f32 {
    let (base, budget) = if projector(ui.ctx()) { (46.0, budget * PROJECTOR_GROWTH) } else { (36.0, budget) };
    (budget / cells.max(1) as f32).min(base).max(20.0)
}

/// The font for the numbers in cells of side `cell`.
fn cell_font(cell: f32) -> FontId {
    FontId::monospace((cell * 0.42).clamp(11.0, 20.0))
}

/// A number as a cell shows it: whole numbers without decimals, others with up to two, and a
/// real minus sign.
pub fn num(v: f32) -> String {
    let text = if v.fract() == 0.0 && v.abs() < 1e6 {
        format!("{v:.0}")
    } else {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let text = if text == "-0" { "0".to_string() } else { text };
    text.replace('-', "−")
}

/// A tint for value `v` on a scale whose largest magnitude is `scale`: blue for positive, red
/// for negative, light enough for the text on it.
fn tint(v: f32, scale: f32) -> Color32 {
    let a = (v.abs() / scale.max(1e-6)).clamp(0.0, 1.0);
    let base = if v >= 0.0 { palette::FORWARD } else { palette::BACKWARD };
    base.gamma_multiply(0.12 + 0.45 * a)
}

fn scale_of(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// The colour of the window outline (and of the output cell it writes).
fn window_color(ui: &egui::Ui) -> Color32 {
    if ui.visuals().dark_mode { Color32::from_rgb(255, 200, 60) } else { Color32::from_rgb(220, 120, 0) }
}

/// The colour of a max pool's winner.
fn winner_color(ui: &egui::Ui) -> Color32 {
    if ui.visuals().dark_mode { Color32::from_rgb(90, 220, 110) } else { Color32::from_rgb(20, 140, 50) }
}

/// The padded input: the zero ring in its own colour, the cells editable (drag or click and
/// type), the rows and columns no window reads shaded, the window outlined.
fn input_ui(ui: &mut egui::Ui, state: &mut PlaygroundState, size: &OutputSize, cell: Option<&Cell>) {
    let pad = size.pad;
    let side = state.input.side();
    let n = size.padded();
    let title =
        if pad > 0 { format!("Input {side}×{side}, padded to {n}×{n}") } else { format!("Input {side}×{side}") };
    ui.label(RichText::new(title).strong()).on_hover_text(
        "Drag a number sideways to change it, or click it and type. The ring of zeros is the padding; \
         rows and columns in red are never read by any window.",
    );
    let c = cell_side(ui, n, INPUT_BUDGET * state.fit).min(state.tallest);
    let (rect, _) = ui.allocate_exact_size(vec2(c * n as f32, c * n as f32), Sense::hover());
    let at = |r: usize, col: usize| {
        Rect::from_min_size(rect.min + vec2(col as f32 * c, r as f32 * c), vec2(c, c)).shrink(1.0)
    };
    let scale = scale_of(state.input.values());
    let font = cell_font(c);
    let pad_fill =
        if ui.visuals().dark_mode { Color32::from_rgb(60, 52, 80) } else { Color32::from_rgb(226, 218, 240) };
    let unread = size.unread_padded();
    let weak = ui.visuals().weak_text_color();
    let mut cells = cells_ui(ui, rect, &font);
    let mut edits = Vec::new();
    for r in 0..n {
        for col in 0..n {
            let cell_rect = at(r, col);
            let inside = |v: usize| v.checked_sub(pad).filter(|&v| v < side);
            match (inside(r), inside(col)) {
                (Some(ir), Some(ic)) => {
                    let v = state.input.get(ir, ic).unwrap_or(0.0);
                    ui.painter().rect_filled(cell_rect, 2.0, tint(v, scale));
                    let mut edited = v;
                    let changed = cells
                        .put(cell_rect, number_field(&mut edited))
                        .on_hover_text(format!("x[{ir}, {ic}] = {}: drag or click and type", num(v)))
                        .changed();
                    if changed {
                        edits.push((ir, ic, edited));
                    }
                }
                _ => {
                    ui.painter().rect_filled(cell_rect, 2.0, pad_fill);
                    ui.painter().text(cell_rect.center(), egui::Align2::CENTER_CENTER, "0", font.clone(), weak);
                    let id = ui.scope_id().with(("padding", r, col));
                    ui.interact(cell_rect, id, Sense::hover())
                        .on_hover_text("Zero padding: added around the input so the window can reach its border");
                }
            }
        }
    }
    for (r, col, v) in edits {
        state.set_input(r, col, v);
    }
    let painter = ui.painter();
    // The input's own border, so the padding ring reads as outside it.
    let inner = Rect::from_min_max(at(pad, pad).min, at(pad + side - 1, pad + side - 1).max).expand(1.0);
    painter.rect_stroke(inner, 2.0, Stroke::new(1.5, ui.visuals().strong_text_color()), StrokeKind::Outside);
    if !unread.is_empty() {
        let red = palette::WRONG.gamma_multiply(0.35);
        for p in unread.clone() {
            painter.rect_filled(Rect::from_min_max(at(p, 0).min, at(p, n - 1).max), 0.0, red);
            painter.rect_filled(Rect::from_min_max(at(0, p).min, at(n - 1, p).max), 0.0, red);
        }
    }
    if let Some(cell) = cell {
        let w = &cell.window;
        let outline = Rect::from_min_max(at(w.top, w.left).min, at(w.top + w.side - 1, w.left + w.side - 1).max);
        painter.rect_stroke(outline.expand(1.0), 3.0, Stroke::new(3.0, window_color(ui)), StrokeKind::Outside);
        if let Some(k) = cell.winner {
            let (r, col) = w.at(k);
            painter.rect_stroke(at(r, col), 2.0, Stroke::new(3.0, winner_color(ui)), StrokeKind::Inside);
        }
    }
    if !unread.is_empty() {
        let rows: Vec<String> = unread.map(|p| p.to_string()).collect();
        ui.label(
            RichText::new(format!(
                "red: {} {}{} never read",
                if rows.len() == 1 { "row and column" } else { "rows and columns" },
                rows.join(" and "),
                if pad > 0 { " of the padded input" } else { "" }
            ))
            .small()
            .color(ui.visuals().warn_fg_color),
        );
    }
}

/// A child of `ui` over the grid's `rect` (already allocated) for its number fields: placing
/// them there does not move `ui`'s cursor, and they take the cells' look.
fn cells_ui(ui: &mut egui::Ui, rect: Rect, font: &FontId) -> egui::Ui {
    let mut child = ui.new_child(egui::UiBuilder::new().max_rect(rect));
    cell_style(&mut child, font);
    child
}

/// A number cell's look: large monospace digits, no frame of its own (the cell is painted).
fn cell_style(ui: &mut egui::Ui, font: &FontId) {
    let name = TextStyle::Name("playground cell".into());
    let style = ui.style_mut();
    style.text_styles.insert(name.clone(), font.clone());
    style.drag_value_text_style = name;
    style.spacing.button_padding = vec2(0.0, 0.0);
    style.explanation_tooltips = false;
    let w = &mut style.visuals.widgets;
    for v in [&mut w.inactive, &mut w.noninteractive] {
        v.weak_bg_fill = Color32::TRANSPARENT;
        v.bg_fill = Color32::TRANSPARENT;
        v.bg_stroke = Stroke::NONE;
    }
}

/// An editable number: drag it sideways, or click and type.
fn number_field(value: &mut f32) -> egui::DragValue<'_> {
    egui::DragValue::new(value)
        .speed(0.05)
        .range(-99.0..=99.0)
        .max_decimals(2)
        .custom_formatter(|v, _| num(v as f32))
        .custom_parser(|t| t.trim().replace('−', "-").parse::<f64>().ok())
}

/// The kernel (editable) and, for the position shown, the products and their sum; for a pool,
/// the window's values and the maximum or the mean.
fn middle_ui(ui: &mut egui::Ui, state: &mut PlaygroundState, cell: Option<&Cell>) {
    if !state.mode.is_pool() {
        let k = state.kernel.side();
        ui.label(RichText::new(format!("Kernel {k}×{k}")).strong())
            .on_hover_text("The weights: drag a number sideways to change it, or click it and type");
        let c = cell_side(ui, k, 200.0);
        let font = cell_font(c);
        let (rect, _) = ui.allocate_exact_size(vec2(c * k as f32, c * k as f32), Sense::hover());
        let scale = scale_of(state.kernel.values());
        let mut cells = cells_ui(ui, rect, &font);
        let mut edits = Vec::new();
        for r in 0..k {
            for col in 0..k {
                let cell_rect =
                    Rect::from_min_size(rect.min + vec2(col as f32 * c, r as f32 * c), vec2(c, c)).shrink(1.0);
                let v = state.kernel.get(r, col).unwrap_or(0.0);
                ui.painter().rect_filled(cell_rect, 2.0, tint(v, scale));
                let mut edited = v;
                let changed = cells
                    .put(cell_rect, number_field(&mut edited))
                    .on_hover_text(format!("k[{r}, {col}] = {}: drag or click and type", num(v)))
                    .changed();
                if changed {
                    edits.push((r, col, edited));
                }
            }
        }
        for (r, col, v) in edits {
            state.set_kernel(r, col, v);
        }
        ui.add_space(8.0);
    }
    let Some(cell) = cell else {
        ui.label(RichText::new("Press Step or Play: the window starts at the top left.").weak());
        return;
    };
    let (oy, ox) = (cell.window.out_row, cell.window.out_col);
    let k = cell.window.side;
    match state.mode {
        Mode::Conv => {
            ui.label(RichText::new("window × kernel").strong())
                .on_hover_text("Each input value under the window times the kernel weight over it");
            let hover: Vec<String> = cell
                .inputs
                .iter()
                .zip(state.kernel.values())
                .zip(&cell.products)
                .map(|((x, w), p)| format!("{} · {} = {}", num(*x), num(*w), num(*p)))
                .collect();
            small_grid_ui(ui, "products", &cell.products, k, None, &hover);
            let terms: Vec<String> = cell.products.iter().map(|p| paren(*p)).collect();
            let with_bias = if state.bias != 0.0 {
                format!("{} + b ({}) = {}", num(cell.sum), num(state.bias), num(cell.value))
            } else {
                num(cell.value)
            };
            let mono = FontId::monospace(body_size(ui));
            let strong = ui.visuals().strong_text_color();
            ui.add(
                egui::Label::new(
                    RichText::new(format!("sum = {} = {}", terms.join(" + "), num(cell.sum)))
                        .font(mono.clone())
                        .color(strong),
                )
                .wrap(),
            );
            ui.label(RichText::new(format!("out[{oy}, {ox}] = {with_bias}")).font(mono).color(strong))
                .on_hover_text("The post: out[n, f, h, w] = np.sum(x_pad[…] * k[f]) + b[f]");
        }
        Mode::MaxPool | Mode::AvgPool => {
            ui.label(RichText::new(format!("window {k}×{k}")).strong());
            let hover: Vec<String> = cell.inputs.iter().map(|v| num(*v)).collect();
            small_grid_ui(ui, "window", &cell.inputs, k, cell.winner, &hover);
            let mono = FontId::monospace(body_size(ui));
            let text = match cell.winner {
                Some(w) => format!(
                    "out[{oy}, {ox}] = max = {}\n(row {}, column {} of the window)",
                    num(cell.value),
                    w / k,
                    w % k
                ),
                None => {
                    format!("out[{oy}, {ox}] = mean = {} / {} = {}", num(cell.sum), k * k, num(cell.value))
                }
            };
            let strong = ui.visuals().strong_text_color();
            ui.label(RichText::new(text).font(mono).color(strong)).on_hover_text(if cell.winner.is_some() {
                "The largest value wins (outlined in green; the first one if several are equal, as PyTorch picks)"
            } else {
                "The window's values added up and divided by their number"
            });
        }
    }
}

/// A number in a sum: negative ones in brackets, `(−2)`.
fn paren(v: f32) -> String {
    if v < 0.0 { format!("({})", num(v)) } else { num(v) }
}

/// A small painted grid of `values` (products or a pool's window), `mark` outlined.
fn small_grid_ui(ui: &mut egui::Ui, id: &str, values: &[f32], k: usize, mark: Option<usize>, hover: &[String]) {
    let c = cell_side(ui, k, 230.0) * 1.25;
    let font = cell_font(c / 1.25);
    let (rect, _) = ui.allocate_exact_size(vec2(c * k as f32, c / 1.25 * k as f32), Sense::hover());
    let scale = scale_of(values);
    let text = ui.visuals().strong_text_color();
    for (i, &v) in values.iter().enumerate() {
        let (r, col) = (i / k, i % k);
        let cell_rect =
            Rect::from_min_size(rect.min + vec2(col as f32 * c, r as f32 * c / 1.25), vec2(c, c / 1.25)).shrink(1.0);
        ui.painter().rect_filled(cell_rect, 2.0, tint(v, scale));
        ui.painter().text(cell_rect.center(), egui::Align2::CENTER_CENTER, num(v), font.clone(), text);
        if mark == Some(i) {
            ui.painter().rect_stroke(cell_rect, 2.0, Stroke::new(3.0, winner_color(ui)), StrokeKind::Inside);
        }
        if let Some(h) = hover.get(i) {
            ui.interact(cell_rect, ui.scope_id().with((id, i)), Sense::hover()).on_hover_text(h);
        }
    }
}

/// The output grid filling in: cells written so far show their value, the one being written is
/// outlined; clicking a cell shows its arithmetic.
fn output_ui(ui: &mut egui::Ui, state: &mut PlaygroundState, output: Option<&Output>) {
    let Some(output) = output else {
        ui.label(RichText::new("Output").strong());
        ui.label(RichText::new("none: the window does not fit").color(ui.visuals().warn_fg_color));
        return;
    };
    let n = output.side();
    ui.label(RichText::new(format!("Output {n}×{n}")).strong())
        .on_hover_text("Written one cell per window position, row after row; click a cell to see its arithmetic");
    let c = cell_side(ui, n, OUTPUT_BUDGET * state.fit).min(state.tallest);
    let font = cell_font(c);
    let (rect, _) = ui.allocate_exact_size(vec2(c * n as f32, c * n as f32), Sense::hover());
    let values: Vec<f32> = output.values();
    let scale = scale_of(&values[..state.written.min(values.len())]);
    let shown = state.shown();
    let mut clicked = None;
    let frame = ui.visuals().widgets.noninteractive.bg_stroke;
    for (i, cell) in output.cells.iter().enumerate() {
        let (r, col) = (cell.window.out_row, cell.window.out_col);
        let cell_rect = Rect::from_min_size(rect.min + vec2(col as f32 * c, r as f32 * c), vec2(c, c)).shrink(1.0);
        let written = i < state.written;
        let label = if written {
            format!("output row {r} column {col}: {}", num(cell.value))
        } else {
            format!("output row {r} column {col}: not written yet")
        };
        let id = ui.scope_id().with(("output cell", i));
        let response = ui.interact(cell_rect, id, Sense::click());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
        if written {
            ui.painter().rect_filled(cell_rect, 2.0, tint(cell.value, scale));
            ui.painter().text(
                cell_rect.center(),
                egui::Align2::CENTER_CENTER,
                num(cell.value),
                font.clone(),
                ui.visuals().strong_text_color(),
            );
        } else {
            ui.painter().rect_stroke(cell_rect, 2.0, frame, StrokeKind::Inside);
        }
        if shown == Some(i) {
            ui.painter().rect_stroke(
                cell_rect.expand(1.0),
                3.0,
                Stroke::new(3.0, window_color(ui)),
                StrokeKind::Outside,
            );
        }
        if response.clicked() {
            clicked = Some(i);
        }
        response.on_hover_text(format!("{label}. Click to see its arithmetic and its window on the input"));
    }
    if let Some(i) = clicked {
        state.picked = if state.picked == Some(i) { None } else { Some(i) };
        state.playing = false;
    }
    if state.picked.is_some() {
        ui.label(RichText::new("showing the cell you clicked; click it again or Step to go on").small().weak());
    }
}

/// Restart, Step, Play/Pause, the speed, and where the window is.
fn animation_ui(ui: &mut egui::Ui, state: &mut PlaygroundState, total: usize) {
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(state.written > 0, egui::Button::new(RESTART_LABEL))
            .on_hover_text("Clear the output and put the window back at the top left")
            .clicked()
        {
            state.restart();
        }
        let more = state.written < total;
        if ui
            .add_enabled(more, egui::Button::new(STEP_LABEL))
            .on_hover_text("Move the window to its next position and write one output cell")
            .clicked()
        {
            state.playing = false;
            state.step();
        }
        let (label, hover) = if state.playing {
            (PAUSE_LABEL, "Stop the window where it is")
        } else {
            (PLAY_LABEL, "Slide the window on its own, at the speed beside")
        };
        if ui.add_enabled(more || state.playing, egui::Button::new(label)).on_hover_text(hover).clicked() {
            state.playing = !state.playing;
            state.picked = None;
            state.last_tick = None;
        }
        ui.add(
            egui::Slider::new(&mut state.speed, SPEEDS.0..=SPEEDS.1)
                .logarithmic(true)
                .max_decimals(1)
                .suffix(" positions/s"),
        )
        .on_hover_text("How fast the window slides while playing");
        let text = match (total, state.written) {
            (0, _) => "no position: the window does not fit".to_string(),
            (_, 0) => format!("{total} positions; none done yet"),
            (t, w) if w >= t => format!("all {t} positions done: the output is complete"),
            (t, w) => format!("position {w} of {t}"),
        };
        ui.label(text);
    });
}
