//! The pixel inspector: click a pixel of a feature map and see the arithmetic that made it —
//! for a convolution the patch the kernel sees, the kernel, their products, the per-channel
//! sums, the bias and the activation after it; for a pool its window and which input won (or
//! their mean); for an activation its input and output — with the live numbers of the step;
//! after the backward pass, the gradient arriving at the pixel and where it goes.
//!
//! The numbers come from [`crate::trainer::inspect`], which redoes the arithmetic from the
//! snapshot; the window shows the engine's own value next to it, so a student can check that
//! the two agree.

use eframe::egui::{self, Color32, Rect, RichText, vec2};

use crate::trainer::{ActivationPixel, ActivationStep, InspectError, Inspection, PixelInspection, PixelRef, PoolPixel};
use crate::ui::support::colormap::{ColorMap, abs_max, fmt_sig};

/// Which pixel is inspected, and which input channel's K×K detail is open (a conv after the
/// first has several).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InspectorState {
    /// The pixel clicked last; `None` closes the inspector.
    pub pixel: Option<PixelRef>,
    /// Input channel shown in detail, for a conv with several.
    pub channel: usize,
    /// Set when a new pixel is chosen: the detail then opens on its largest contribution.
    pick_channel: bool,
    /// Where the click was, while the window still has to be put beside it.
    place_beside: Option<egui::Pos2>,
    /// The part of the screen beside the clicked map the window was given, with its corner.
    room: Option<(Rect, egui::Align2)>,
    /// The window's size when last drawn, to choose the side it fits best.
    last_size: Option<egui::Vec2>,
    /// Set by [`InspectorState::open_in`]: the window still has to be put in its room.
    place_in_room: bool,
}

impl InspectorState {
    /// Inspects `pixel`; for a conv with several input channels, opens the one that contributes
    /// most once shown.
    /// `clicked_at` is where the pixel was clicked: the window opens beside that point, not
    /// over the map.
    pub fn open(&mut self, pixel: PixelRef, clicked_at: Option<egui::Pos2>) {
        self.pixel = Some(pixel);
        self.pick_channel = true;
        self.place_beside = clicked_at;
    }

    /// Inspects `pixel` with the window kept inside `room`, at its top right (a lesson card
    /// opens it above the lesson panel, whose buttons it must not cover).
    pub fn open_in(&mut self, pixel: PixelRef, room: Rect) {
        self.open(pixel, None);
        self.room = Some((room, egui::Align2::RIGHT_TOP));
        self.place_in_room = true;
    }
}

/// The pre-activation value's name and the formula of one convolution pixel, in the layers'
/// own names: `conv2[7,3,4] = b_conv2[7] + Σ_c Σ_i,j relu1[c, 3+i−2, 4+j−2] · W_conv2[7,c,i,j]`.
fn formula(insp: &PixelInspection) -> (String, String) {
    let PixelRef { channel: f, y, x, .. } = insp.at;
    let conv = &insp.conv_name;
    let name = format!("{conv}[{f},{y},{x}]");
    let at = |v: usize, stride: usize| {
        let base = if stride == 1 { format!("{v}") } else { format!("{v}·{stride}") };
        if insp.pad == 0 { format!("{base}+i") } else { format!("{base}+i−{}", insp.pad) }
    };
    let (row, col) = (at(y, insp.stride), at(x, insp.stride).replace("+i", "+j"));
    let channels = if insp.channels > 1 { "Σ_c " } else { "" };
    let c = if insp.channels > 1 { "c" } else { "0" };
    let mut text = format!(
        "{name} = b_{conv}[{f}] + {channels}Σ_i,j {}[{c}, {row}, {col}] · W_{conv}[{f},{c},i,j]",
        insp.input_name
    );
    if insp.channels > 1 && insp.colour_channels {
        text.push_str(&format!(" (c = {})", insp.channel_names().join(", ")));
    }
    if let Some(a) = &insp.activation {
        text.push_str(&format!(";  {} = {}", a.name, function_text(a.function, conv)));
    }
    (name, text)
}

/// Up to this many input channels the sum is written out as a table of subtotals (a colour
/// image's red, green and blue); more are drawn as bars.
const SUBTOTAL_ROWS: usize = 4;

/// How a formula writes the activation of `x`: `max(0, conv2)` for ReLU.
fn function_text(function: &str, x: &str) -> String {
    match function {
        "tanh" => format!("tanh({x})"),
        "sigmoid" => format!("σ({x})"),
        _ => format!("max(0, {x})"),
    }
}

/// One activation applied: `ReLU: max(0, 0.31) = 0.31 (positive: passes through)`.
fn activation_line(a: &ActivationStep) -> String {
    match a.function {
        "relu" => {
            let what = if a.output > 0.0 { "positive: passes through" } else { "negative: ReLU zeroes it" };
            format!("{}: max(0, {}) = {}   ({what})", a.name, fmt_sig(a.input), fmt_sig(a.output))
        }
        "tanh" => format!("{}: tanh({}) = {}", a.name, fmt_sig(a.input), fmt_sig(a.output)),
        _ => format!("{}: σ({}) = 1 / (1 + e^−x) = {}", a.name, fmt_sig(a.input), fmt_sig(a.output)),
    }
}

/// The gradient through one activation: `∂L/∂relu1 = g; the ReLU passes it: ∂L/∂conv1 = g`.
fn activation_gradient_line(a: &ActivationStep, input_name: &str) -> Option<String> {
    let (d_out, d_in) = (a.d_output?, a.d_input?);
    let how = match a.function {
        "relu" if a.input > 0.0 => "the ReLU passes it".to_string(),
        "relu" => "the ReLU blocks it".to_string(),
        "tanh" => format!("× tanh′ = 1 − {}²", fmt_sig(a.output)),
        _ => format!("× σ′ = {}·(1 − {})", fmt_sig(a.output), fmt_sig(a.output)),
    };
    Some(format!("∂L/∂{} = {};  {how}:  ∂L/∂{input_name} = {}", a.name, fmt_sig(d_out), fmt_sig(d_in)))
}

/// Draws the inspection of `state.pixel` (`result`), or why it cannot be shown; `layer_name`
/// is the clicked map's layer. Returns false when the user closed it.
pub fn inspector_ui(
    ui: &mut egui::Ui,
    state: &mut InspectorState,
    result: &Result<Inspection, InspectError>,
    layer_name: &str,
    map: ColorMap,
) -> bool {
    let Some(at) = state.pixel else { return false };
    let mut keep = true;
    ui.horizontal(|ui| {
        crate::ui::windows::help::help_button_ui(ui, crate::ui::windows::help::HelpTopic::Inspector);
        ui.label(RichText::new(format!("{layer_name} · map {} · row {} · column {}", at.channel, at.y, at.x)).strong());
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Close").on_hover_text("Click any feature-map pixel to inspect another one").clicked() {
                keep = false;
            }
        });
    });
    match result {
        Ok(Inspection::Conv(insp)) => conv_ui(ui, state, insp, map),
        Ok(Inspection::Pool(p)) => pool_ui(ui, p, map),
        Ok(Inspection::Activation(a)) => activation_ui(ui, a),
        Err(e) => {
            ui.label(e.to_string());
        }
    }
    keep
}

/// A pool pixel: its window, the winner or the mean, and where the gradient goes.
fn pool_ui(ui: &mut egui::Ui, p: &PoolPixel, map: ColorMap) {
    let PixelRef { channel: c, y, x, .. } = p.at;
    let k = p.window;
    let (oy, ox) = p.origin;
    let op = if p.max { "max" } else { "mean" };
    ui.label(
        RichText::new(format!(
            "{}[{c},{y},{x}] = {op} of {}[{c}, {oy}..{}, {ox}..{}]  ({k}×{k} window, stride {})",
            p.name,
            p.input_name,
            oy + k - 1,
            ox + k - 1,
            p.stride
        ))
        .monospace()
        .size(12.0),
    );
    ui.add_space(4.0);
    ui.horizontal_top(|ui| {
        let marks = Marks { padding: None, winner: p.winner };
        grid_ui(ui, &format!("window of {}[{c}]", p.input_name), &p.values, marks, k, map, "window");
        ui.vertical(|ui| {
            match p.winner {
                Some(w) => {
                    ui.label(pool_winner_text(p, w));
                    ui.label(RichText::new("(the first one, if several are equal, as PyTorch picks)").small().weak());
                }
                None => {
                    let sum: f64 = p.values.iter().map(|v| f64::from(*v)).sum();
                    ui.label(format!("mean: their sum {} / {} = {}", fmt_sig(sum as f32), k * k, fmt_sig(p.result)));
                }
            }
            let diff = (p.result - p.map_value).abs();
            ui.label(
                RichText::new(format!("the engine computed {} (difference {})", fmt_sig(p.map_value), fmt_sig(diff)))
                    .small(),
            );
        });
    });
    ui.separator();
    match (p.d_output, &p.d_input) {
        (Some(g), Some(d)) => {
            ui.label(format!("gradient arriving here: ∂L/∂{} = {}", p.name, fmt_sig(g)));
            let how = if p.max {
                "all of it goes back to the input that won (outlined); the others get 0".to_string()
            } else {
                format!("each input of the window gets an equal share, g / {} = {}", k * k, fmt_sig(g / (k * k) as f32))
            };
            ui.label(RichText::new(how).small());
            let marks = Marks { padding: None, winner: p.winner };
            grid_ui(ui, &format!("adds to ∂L/∂{}[{c}]", p.input_name), d, marks, k, map, "pool dX");
        }
        _ => {
            ui.label(RichText::new("Step through the backward pass to see the gradient arriving here.").weak());
        }
    }
}

/// Where a max pool's winner is: `the largest, 1.47, is relu1[0, 15, 18] (row 1, column 0 of
/// the window)`.
fn pool_winner_text(p: &PoolPixel, w: usize) -> String {
    let k = p.window.max(1);
    let (r, c) = (w / k, w % k);
    format!(
        "the largest, {}, is {}[{}, {}, {}] (row {r}, column {c} of the window)",
        fmt_sig(p.values.get(w).copied().unwrap_or(f32::NAN)),
        p.input_name,
        p.at.channel,
        p.origin.0 + r,
        p.origin.1 + c
    )
}

/// An activation pixel whose input is not a convolution's (e.g. after a pool).
fn activation_ui(ui: &mut egui::Ui, a: &ActivationPixel) {
    ui.label(activation_line(&a.step));
    ui.label(RichText::new(format!("its input is {}'s value at the same place", a.input_name)).small());
    let diff = (a.step.output - a.map_value).abs();
    ui.label(
        RichText::new(format!("the engine computed {} (difference {})", fmt_sig(a.map_value), fmt_sig(diff))).small(),
    );
    ui.separator();
    match activation_gradient_line(&a.step, &a.input_name) {
        Some(text) => {
            ui.label(text);
        }
        None => {
            ui.label(RichText::new("Step through the backward pass to see the gradient arriving here.").weak());
        }
    }
}

/// Where the patch of a conv pixel is in the input: `the patch: rows 13 to 15, columns 15 to 17
/// of input (row 7·2 − 1 = 13: stride 2, pad 1)`; rows and columns outside are padding.
fn patch_origin_text(insp: &PixelInspection) -> String {
    let (oy, ox) = insp.origin;
    let k = insp.kernel as isize;
    let y = insp.at.y;
    let how = match (insp.stride, insp.pad) {
        (1, 0) => String::new(),
        (1, p) => format!(" (row {y} − {p} = {oy}: pad {p})"),
        (s, 0) => format!(" (row {y}·{s} = {oy}: stride {s})"),
        (s, p) => format!(" (row {y}·{s} − {p} = {oy}: stride {s}, pad {p})"),
    };
    let outside =
        if insp.in_padding.iter().any(|p| *p) { "; taps outside the input read the zero padding" } else { "" };
    format!(
        "the patch: rows {oy} to {}, columns {ox} to {} of {}{how}{outside}",
        oy + k - 1,
        ox + k - 1,
        insp.input_name
    )
}

/// A convolution pixel: patch × kernel, the sums, the bias and the activation after it.
fn conv_ui(ui: &mut egui::Ui, state: &mut InspectorState, insp: &PixelInspection, map: ColorMap) {
    let at = insp.at;
    let (name, text) = formula(insp);
    ui.label(RichText::new(text).monospace().size(12.0));
    ui.label(RichText::new(patch_origin_text(insp)).small());
    ui.add_space(4.0);

    if std::mem::take(&mut state.pick_channel) {
        // A patch of dead relu1 pixels is all zeros: start where the sum comes from.
        let abs = |i: usize| insp.channel_sums[i].abs();
        state.channel = (0..insp.channels).max_by(|&a, &b| abs(a).total_cmp(&abs(b))).unwrap_or(0);
    }
    let k = insp.kernel;
    let c = state.channel.min(insp.channels.saturating_sub(1));
    let slice = |v: &[f32]| -> Vec<f32> { v.get(c * k * k..(c + 1) * k * k).map_or_else(Vec::new, <[f32]>::to_vec) };
    let patch = slice(&insp.patch);
    let weights = slice(&insp.weights);
    let products = slice(&insp.products);
    let channel = insp.channel_name(c);
    let named = insp.colour_channels;
    if (2..=SUBTOTAL_ROWS).contains(&insp.channels) {
        subtotals_ui(ui, state, insp, &name);
        ui.add_space(4.0);
        ui.label(RichText::new(format!("{channel} in detail (click a row above to change)")).small());
    } else if insp.channels > 1 {
        channel_sums_ui(ui, state, insp, map);
        ui.add_space(4.0);
        ui.label(RichText::new(format!("input channel {c} in detail (click a bar above to change)")).small());
    }
    ui.horizontal_top(|ui| {
        let what = if insp.input_name == "input" && insp.channels == 1 {
            "patch of the image x".to_string()
        } else if named {
            format!("patch of {}[{c}] ({channel})", insp.input_name)
        } else {
            format!("patch of {}[{c}]", insp.input_name)
        };
        grid_ui(ui, &what, &patch, Marks::padding(&insp.in_padding), k, map, "patch");
        ui.label(RichText::new("×").size(20.0));
        let kernel = format!("kernel W_{}[{},{c}]", insp.conv_name, at.channel);
        grid_ui(ui, &kernel, &weights, Marks::NONE, k, map, "kernel");
        ui.label(RichText::new("=").size(20.0));
        grid_ui(ui, "products", &products, Marks::padding(&insp.in_padding), k, map, "products");
    });
    ui.add_space(4.0);
    if !(2..=SUBTOTAL_ROWS).contains(&insp.channels) {
        // The table above already ends in the bias and the total.
        let sum: f32 = insp.channel_sums.iter().sum();
        let sums = if insp.channels > 1 {
            format!("Σ over {} channels of the products = {}", insp.channels, fmt_sig(sum))
        } else {
            format!("Σ products = {}", fmt_sig(sum))
        };
        ui.label(sums);
        ui.label(format!("+ bias {} = {name} = {}", fmt_sig(insp.bias), fmt_sig(insp.total)));
    }
    let diff = (insp.total - insp.map_value).abs();
    ui.label(
        RichText::new(format!(
            "the engine computed {} (difference {}: float rounding{})",
            fmt_sig(insp.map_value),
            fmt_sig(diff),
            if insp.by_fourier {
                "; the fast engine forms this convolution through Fourier transforms, whose rounding \
                 is relative to the whole map, not to this one sum"
            } else {
                ""
            }
        ))
        .small(),
    );
    if let Some(a) = &insp.activation {
        ui.label(activation_line(a));
    }

    ui.separator();
    match &insp.gradient {
        None => {
            ui.label(RichText::new("Step through the backward pass to see the gradient arriving here.").weak());
        }
        Some(g) => {
            if let Some(text) = insp.activation.as_ref().and_then(|a| activation_gradient_line(a, &name)) {
                ui.label(text);
            } else {
                ui.label(format!("gradient arriving here: ∂L/∂{name} = {}", fmt_sig(g.d_conv)));
            }
            ui.horizontal_top(|ui| {
                let w = format!("adds to dW_{}[{},{c}]", insp.conv_name, at.channel);
                let marks = Marks::padding(&insp.in_padding);
                grid_ui(ui, &format!("{w} (= grad × patch)"), &slice(&g.dw), marks, k, map, "dW");
                let x = if insp.input_name == "input" && insp.channels == 1 {
                    "adds to ∂L/∂x patch".to_string()
                } else if named {
                    format!("adds to ∂L/∂{}[{c}] patch ({channel})", insp.input_name)
                } else {
                    format!("adds to ∂L/∂{}[{c}] patch", insp.input_name)
                };
                grid_ui(ui, &format!("{x} (= grad × kernel)"), &slice(&g.dx), marks, k, map, "dX");
            });
            ui.label(format!(
                "and adds {} to db_{}[{}]. Summed over every pixel and image of the batch, these are the step's gradients.",
                fmt_sig(g.db),
                insp.conv_name,
                at.channel
            ));
        }
    }
}

/// The sum written out for a few input channels: one subtotal per channel (named red, green,
/// blue for a colour image; a click opens its K×K detail below), then the bias, then the total.
fn subtotals_ui(ui: &mut egui::Ui, state: &mut InspectorState, insp: &PixelInspection, name: &str) {
    let k = insp.kernel;
    ui.label(RichText::new(format!("the sum, one input channel at a time (Σ of its {k}×{k} products):")).small());
    egui::Grid::new("inspector subtotals").num_columns(3).spacing(vec2(12.0, 2.0)).show(ui, |ui| {
        for (c, s) in insp.channel_sums.iter().enumerate() {
            let channel = insp.channel_name(c);
            let picked = c == state.channel.min(insp.channels.saturating_sub(1));
            let r = ui.selectable_label(picked, &channel).on_hover_text(format!("show {channel}'s products below"));
            if r.clicked() {
                state.channel = c;
            }
            ui.label(RichText::new(format!("Σ {}[{c}] · W", insp.input_name)).monospace().size(11.5).weak());
            ui.label(RichText::new(format!("{:>10}", fmt_sig(*s))).monospace());
            ui.end_row();
        }
        ui.label("+ bias");
        ui.label(RichText::new(format!("b_{}[{}]", insp.conv_name, insp.at.channel)).monospace().size(11.5).weak());
        ui.label(RichText::new(format!("{:>10}", fmt_sig(insp.bias))).monospace());
        ui.end_row();
        ui.label(RichText::new("= total").strong());
        ui.label(RichText::new(name).monospace().size(11.5).weak());
        ui.label(RichText::new(format!("{:>10}", fmt_sig(insp.total))).monospace().strong());
        ui.end_row();
    });
}

/// The per-input-channel partial sums as clickable bars, each with its number, in rows as
/// wide as the window.
fn channel_sums_ui(ui: &mut egui::Ui, state: &mut InspectorState, insp: &PixelInspection, map: ColorMap) {
    let format = NumberFormat::for_values(&insp.channel_sums);
    let k = insp.kernel;
    ui.label(
        RichText::new(format!("each input channel's share (Σ over its {k}×{k} products){}:", format.unit())).small(),
    );
    let scale = abs_max(&insp.channel_sums).max(1e-12);
    let width = 36.0;
    let height = 46.0;
    let font = egui::FontId::monospace(9.5);
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        for (c, &s) in insp.channel_sums.iter().enumerate() {
            let (rect, r) = ui.allocate_exact_size(vec2(width, height + 26.0), egui::Sense::click());
            let mid = rect.top() + height / 2.0;
            let h = (s / scale).clamp(-1.0, 1.0) * height / 2.0;
            let bar =
                egui::Rect::from_two_pos(egui::pos2(rect.left() + 5.0, mid), egui::pos2(rect.right() - 5.0, mid - h));
            let p = ui.painter();
            if c == state.channel {
                p.rect_stroke(
                    rect,
                    2.0,
                    egui::Stroke::new(1.5, ui.visuals().strong_text_color()),
                    egui::StrokeKind::Inside,
                );
            }
            p.rect_filled(bar, 0.0, map.color(s, scale));
            p.hline(rect.x_range(), mid, egui::Stroke::new(0.5, ui.visuals().weak_text_color()));
            p.text(
                egui::pos2(rect.center().x, rect.top() + height + 6.0),
                egui::Align2::CENTER_CENTER,
                format.cell(s),
                font.clone(),
                ui.visuals().text_color(),
            );
            p.text(
                egui::pos2(rect.center().x, rect.bottom() - 6.0),
                egui::Align2::CENTER_CENTER,
                format!("c{c}"),
                egui::FontId::proportional(10.0),
                ui.visuals().weak_text_color(),
            );
            let r = r.on_hover_text(format!("channel {c}: {}", fmt_sig(s)));
            if r.clicked() {
                state.channel = c;
            }
        }
    });
}

/// One way to write every number of a grid, chosen from the grid's largest magnitude: fixed
/// decimals giving that number three significant digits, and for very small or large grids a
/// common power of ten said once in the title ("×1e-4") rather than a mix of 0.106 and 6e-5.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NumberFormat {
    /// The power of ten every value is divided by.
    pub exponent: i32,
    /// Decimals after dividing.
    pub decimals: usize,
}

impl NumberFormat {
    /// The format for a grid holding `values`.
    pub fn for_values(values: &[f32]) -> Self {
        let m = abs_max(values);
        if m == 0.0 || !m.is_finite() {
            return Self { exponent: 0, decimals: 0 };
        }
        let exponent = if (0.01..100.0).contains(&m) { 0 } else { m.log10().floor() as i32 };
        let scaled = m / 10f32.powi(exponent);
        let decimals = (2 - scaled.log10().floor() as i32).clamp(0, 4) as usize;
        Self { exponent, decimals }
    }

    /// A value written in this format ("0" for what rounds to zero, never "-0.000").
    pub fn cell(self, v: f32) -> String {
        let d = self.decimals;
        let text = format!("{:.d$}", v / 10f32.powi(self.exponent));
        if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') { "0".to_string() } else { text }
    }

    /// What to add to the grid's title: the common power of ten, if any.
    pub fn unit(self) -> String {
        if self.exponent == 0 { String::new() } else { format!(" ×1e{}", self.exponent) }
    }
}

/// What a grid marks besides its numbers.
#[derive(Clone, Copy, Debug, Default)]
struct Marks<'a> {
    /// `K × K`: true for cells in the zero padding, which say "pad".
    padding: Option<&'a [bool]>,
    /// The cell outlined: a max pool's winner.
    winner: Option<usize>,
}

impl<'a> Marks<'a> {
    const NONE: Marks<'static> = Marks { padding: None, winner: None };

    fn padding(p: &'a [bool]) -> Self {
        Marks { padding: Some(p), winner: None }
    }
}

/// A K×K grid of numbers on their colours; padding cells say so, a winner is outlined.
fn grid_ui(ui: &mut egui::Ui, title: &str, values: &[f32], marks: Marks<'_>, k: usize, map: ColorMap, id: &str) {
    let padding = marks.padding;
    ui.vertical(|ui| {
        // Padding cells are zeros that are not part of the sum: they do not choose the format.
        let counted: Vec<f32> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| padding.is_none_or(|p| p.get(*i) != Some(&true)))
            .map(|(_, v)| *v)
            .collect();
        let format = NumberFormat::for_values(&counted);
        ui.label(RichText::new(format!("{title}{}", format.unit())).small());
        let scale = abs_max(values).max(1e-12);
        egui::Grid::new(("inspector grid", id)).spacing(vec2(1.0, 1.0)).show(ui, |ui| {
            for i in 0..k {
                for j in 0..k {
                    let v = values.get(i * k + j).copied().unwrap_or(0.0);
                    let pad = padding.is_some_and(|p| p.get(i * k + j).copied().unwrap_or(false));
                    let (fill, text) = if pad {
                        (ui.visuals().faint_bg_color, "pad".to_string())
                    } else {
                        (map.color(v, scale), format.cell(v))
                    };
                    let ink = if luminance(fill) > 0.45 { Color32::BLACK } else { Color32::WHITE };
                    let (rect, r) = ui.allocate_exact_size(vec2(50.0, 20.0), egui::Sense::hover());
                    ui.painter().rect_filled(rect, 0.0, fill);
                    if marks.winner == Some(i * k + j) {
                        let stroke = egui::Stroke::new(2.5, ui.visuals().strong_text_color());
                        ui.painter().rect_stroke(rect, 0.0, stroke, egui::StrokeKind::Inside);
                    }
                    ui.painter().text(
                        rect.center(),
                        egui::Align2::CENTER_CENTER,
                        text,
                        egui::FontId::monospace(10.5),
                        ink,
                    );
                    r.on_hover_text(if pad { "zero padding: outside the image".to_string() } else { fmt_sig(v) });
                }
                ui.end_row();
            }
        });
    });
}

/// The part of `screen` beside the point `at` (a clicked map) that a window of `size` fits best:
/// right, left, below or above it, at `GAP` from it; the first where the whole window fits, else
/// the tallest one wide enough, else the largest. With the corner the window is pinned to (the one nearest the point).
pub fn room_beside(screen: Rect, at: egui::Pos2, size: egui::Vec2) -> (Rect, egui::Align2) {
    const GAP: f32 = 48.0;
    let top = screen.top() + 30.0;
    let candidates = [
        (Rect::from_min_max(egui::pos2(at.x + GAP, top), screen.max), egui::Align2::LEFT_TOP),
        (
            Rect::from_min_max(egui::pos2(screen.left(), top), egui::pos2(at.x - GAP, screen.bottom())),
            egui::Align2::RIGHT_TOP,
        ),
        (Rect::from_min_max(egui::pos2(screen.left(), at.y + GAP), screen.max), egui::Align2::LEFT_TOP),
        (
            Rect::from_min_max(egui::pos2(screen.left(), top), egui::pos2(screen.right(), at.y - GAP)),
            egui::Align2::LEFT_BOTTOM,
        ),
    ];
    let valid = candidates.into_iter().filter(|(r, _)| r.is_positive());
    let fits = |r: &Rect| r.width() >= size.x && r.height() >= size.y;
    // Else the tallest place as wide as the window (it scrolls vertically), else the largest.
    valid
        .clone()
        .find(|(r, _)| fits(r))
        .or_else(|| {
            valid.clone().filter(|(r, _)| r.width() >= size.x).max_by(|a, b| a.0.height().total_cmp(&b.0.height()))
        })
        .or_else(|| valid.max_by(|a, b| a.0.area().total_cmp(&b.0.area())))
        .unwrap_or((screen, egui::Align2::LEFT_TOP))
}

fn luminance(c: Color32) -> f32 {
    (0.2126 * c.r() as f32 + 0.7152 * c.g() as f32 + 0.0722 * c.b() as f32) / 255.0
}

/// The inspector as a window over the others while a pixel is chosen; returns false when the
/// user closed it.
pub fn inspector_window(
    ctx: &egui::Context,
    state: &mut InspectorState,
    result: &Result<Inspection, InspectError>,
    layer_name: &str,
    map: ColorMap,
) -> bool {
    let mut keep = true;
    let mut window = egui::Window::new("Pixel inspector")
        .id(egui::Id::unique("pixel inspector"))
        .default_pos(egui::pos2(360.0, 140.0))
        .resizable(false);
    if let Some(at) = state.place_beside.take() {
        let size = state.last_size.unwrap_or(egui::vec2(860.0, 560.0));
        let room = room_beside(ctx.content_rect(), at, size);
        window = window.pivot(room.1).current_pos(room.1.pos_in_rect(&room.0));
        state.room = Some(room);
    }
    if std::mem::take(&mut state.place_in_room)
        && let Some((rect, corner)) = state.room
    {
        window = window.pivot(corner).current_pos(corner.pos_in_rect(&rect));
    }
    if let Some((rect, _)) = state.room {
        // Kept out of the clicked map's way: what does not fit there scrolls.
        window = window.constrain_to(rect).max_height(rect.height() - 40.0).vscroll(true);
    }
    let shown = window.show(ctx, |ui| keep = inspector_ui(ui, state, result, layer_name, map));
    if let Some(r) = shown {
        state.last_size = Some(r.response.rect.size());
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_writes_all_its_numbers_one_way_and_stays_narrow() {
        let mixed = [0.106, -3e-4, 6e-5, 0.0];
        let f = NumberFormat::for_values(&mixed);
        let cells: Vec<String> = mixed.iter().map(|&v| f.cell(v)).collect();
        assert_eq!(cells, ["0.106", "0", "0", "0"], "three decimals for all, none in e-notation");
        let tiny = [2.5e-4, -6e-5, 1e-6];
        let f = NumberFormat::for_values(&tiny);
        assert_eq!(f.unit(), " ×1e-4");
        assert_eq!(tiny.iter().map(|&v| f.cell(v)).collect::<Vec<_>>(), ["2.50", "-0.60", "0.01"]);
        for values in [[0.5, -0.123456, 0.0], [12.3456, -99.9, 1.0], [1e-7, 3e-9, 0.0], [-3e5, 1.0, 2.0]] {
            let f = NumberFormat::for_values(&values);
            for v in values {
                assert!(f.cell(v).chars().count() <= 7, "{v} -> {}", f.cell(v));
            }
        }
    }

    #[test]
    fn a_max_pool_names_its_winner_in_the_input_and_in_the_window() {
        let p = PoolPixel {
            at: PixelRef { layer: 2, channel: 3, y: 7, x: 9 },
            name: "pool1".into(),
            input_name: "relu1".into(),
            max: true,
            window: 2,
            stride: 2,
            origin: (14, 18),
            values: vec![0.81, 0.99, 1.47, 1.32],
            winner: Some(2),
            result: 1.47,
            map_value: 1.47,
            d_output: None,
            d_input: None,
        };
        assert_eq!(pool_winner_text(&p, 2), "the largest, 1.47, is relu1[3, 15, 18] (row 1, column 0 of the window)");
    }

    #[test]
    fn the_window_opens_beside_the_clicked_map_not_over_it() {
        let screen = Rect::from_min_size(egui::Pos2::ZERO, vec2(1280.0, 800.0));
        let size = vec2(600.0, 500.0);
        for at in [egui::pos2(200.0, 400.0), egui::pos2(1100.0, 300.0), egui::pos2(640.0, 700.0)] {
            let (room, _) = room_beside(screen, at, size);
            assert!(room.width() >= size.x && room.height() >= size.y, "{at:?}: the window fits in {room:?}");
            assert!(!room.expand(40.0).contains(at), "{at:?}: {room:?} keeps clear of the click");
        }
    }

    #[test]
    fn formulas_use_the_layers_names() {
        let insp = PixelInspection {
            at: PixelRef { layer: 2, channel: 7, y: 3, x: 4 },
            conv_name: "conv2".into(),
            input_name: "relu1".into(),
            channels: 16,
            kernel: 5,
            stride: 1,
            pad: 2,
            origin: (1, 2),
            patch: vec![],
            in_padding: vec![],
            weights: vec![],
            products: vec![],
            channel_sums: vec![],
            colour_channels: false,
            bias: 0.0,
            total: 0.0,
            map_value: 0.0,
            by_fourier: false,
            activation: None,
            gradient: None,
        };
        assert_eq!(patch_origin_text(&insp), "the patch: rows 1 to 5, columns 2 to 6 of relu1 (row 3 − 2 = 1: pad 2)");
        let strided = PixelInspection { stride: 2, pad: 1, kernel: 3, origin: (5, 7), ..insp.clone() };
        assert_eq!(
            patch_origin_text(&strided),
            "the patch: rows 5 to 7, columns 7 to 9 of relu1 (row 3·2 − 1 = 5: stride 2, pad 1)"
        );
        assert!(formula(&strided).1.contains("relu1[c, 3·2+i−1, 4·2+j−1]"), "{}", formula(&strided).1);
        let (name, text) = formula(&insp);
        assert_eq!(name, "conv2[7,3,4]");
        assert!(text.contains("relu1[c, 3+i−2, 4+j−2] · W_conv2[7,c,i,j]") && text.contains("b_conv2[7]"), "{text}");
    }
}
