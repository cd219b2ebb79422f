//! The diverging colour maps signed tensors are drawn with, the colour scales that map numbers
//! onto them (one per layer, one per map, or held), and the legend that says which is in force.
//!
//! Every map is symmetric around zero: the sign of a value picks the arm, its magnitude over the
//! scale how far along the arm. Values beyond a scale (only possible while it is held) saturate
//! at the end colour, and the legend says how many did, so a student never mistakes a clipped
//! value for one that merely reached the old maximum.

use std::collections::HashMap;
use std::sync::LazyLock;

use eframe::egui::{self, Color32, FontId, Rect, Sense, Stroke, StrokeKind, Vec2, pos2, vec2};
use serde::{Deserialize, Serialize};

use crate::ui::{ScaleMode, ViewState};

/// Which diverging colour map signed values are drawn with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColorMap {
    /// ColorBrewer's RdBu (reversed): blue negative, near-white zero, red positive. Listed by
    /// ColorBrewer as colour-blind safe.
    #[default]
    RdBu,
    /// ColorBrewer's PuOr: purple negative, near-white zero, orange positive. Also colour-blind
    /// safe, and its two arms stay apart for the rarer tritan (blue–yellow) deficiency too.
    PuOr,
    /// Dark blue through mid grey to pale yellow, with lightness rising steadily from −scale to
    /// +scale.
    ///
    /// RdBu and PuOr put both extremes at the dark end, so on a washed-out projector or a
    /// greyscale printout −1 and +1 look alike and only the hue tells them apart. Here lightness
    /// alone carries the sign: negative is darker than zero, positive lighter (like matplotlib's
    /// cividis, which is designed for colour-vision deficiencies). The stops are points of the
    /// OKLab colour space at lightness L = 0.60 + 0.33·t for t = −1, −0.8, …, 1, hue 260° (blue)
    /// below zero and 85° (yellow) above, chroma 0.15·|t| reduced where sRGB cannot show it; so
    /// equal steps in value are equal steps in perceived lightness.
    HighContrast,
}

impl ColorMap {
    /// Every map, in the order the selector lists them.
    pub const ALL: [ColorMap; 3] = [ColorMap::RdBu, ColorMap::PuOr, ColorMap::HighContrast];

    /// The name shown in the selector and the legend.
    pub fn name(self) -> &'static str {
        match self {
            ColorMap::RdBu => "RdBu",
            ColorMap::PuOr => "PuOr",
            ColorMap::HighContrast => "High contrast",
        }
    }

    /// How to read it, in words.
    pub fn reading(self) -> &'static str {
        match self {
            ColorMap::RdBu => "blue is negative, white is zero, red is positive",
            ColorMap::PuOr => "purple is negative, white is zero, orange is positive",
            ColorMap::HighContrast => "dark blue is negative, grey is zero, light yellow is positive",
        }
    }

    /// The 11 ColorBrewer-style stops from most negative to most positive.
    fn stops(self) -> &'static [[u8; 3]; 11] {
        match self {
            ColorMap::RdBu => &RDBU,
            ColorMap::PuOr => &PUOR,
            ColorMap::HighContrast => &HIGH_CONTRAST,
        }
    }

    fn lut(self) -> &'static [Color32; LUT_LEN] {
        &LUTS[self as usize]
    }

    /// The colour of `value` on a symmetric scale `[-scale, +scale]`; values beyond it saturate,
    /// and NaN or a scale of zero give the colour of zero.
    pub fn color(self, value: f32, scale: f32) -> Color32 {
        let t = if scale > 0.0 && value.is_finite() { (value / scale).clamp(-1.0, 1.0) } else { 0.0 };
        let i = ((t + 1.0) * 0.5 * (LUT_LEN - 1) as f32).round() as usize;
        self.lut()[i.min(LUT_LEN - 1)]
    }

    /// The colour of zero.
    pub fn neutral(self) -> Color32 {
        self.color(0.0, 1.0)
    }
}

/// RdBu, 11 classes, from most negative to most positive.
const RDBU: [[u8; 3]; 11] = [
    [5, 48, 97],
    [33, 102, 172],
    [67, 147, 195],
    [146, 197, 222],
    [209, 229, 240],
    [247, 247, 247],
    [253, 219, 199],
    [244, 165, 130],
    [214, 96, 77],
    [178, 24, 43],
    [103, 0, 31],
];

/// PuOr, 11 classes, purple (negative) to orange (positive): ColorBrewer's list reversed, so
/// that the cool colour is negative as in RdBu.
const PUOR: [[u8; 3]; 11] = [
    [45, 0, 75],
    [84, 39, 136],
    [128, 115, 172],
    [178, 171, 210],
    [216, 218, 235],
    [247, 247, 247],
    [254, 224, 182],
    [253, 184, 99],
    [224, 130, 20],
    [179, 88, 6],
    [127, 59, 8],
];

/// See [`ColorMap::HighContrast`] for how these were chosen.
const HIGH_CONTRAST: [[u8; 3]; 11] = [
    [0, 33, 91],
    [10, 51, 115],
    [42, 71, 120],
    [70, 91, 124],
    [99, 110, 127],
    [128, 128, 128],
    [157, 147, 128],
    [186, 166, 125],
    [216, 185, 120],
    [246, 204, 113],
    [255, 229, 176],
];

/// Entries in each lookup table; odd so that zero has an entry of its own.
const LUT_LEN: usize = 257;

static LUTS: LazyLock<[[Color32; LUT_LEN]; 3]> = LazyLock::new(|| ColorMap::ALL.map(build_lut));

fn build_lut(map: ColorMap) -> [Color32; LUT_LEN] {
    let stops = map.stops();
    let mut lut = [Color32::BLACK; LUT_LEN];
    for (i, c) in lut.iter_mut().enumerate() {
        let t = i as f32 / (LUT_LEN - 1) as f32 * (stops.len() - 1) as f32;
        let lo = (t.floor() as usize).min(stops.len() - 2);
        let f = t - lo as f32;
        let mix = |k: usize| (stops[lo][k] as f32 * (1.0 - f) + stops[lo + 1][k] as f32 * f).round() as u8;
        *c = Color32::from_rgb(mix(0), mix(1), mix(2));
    }
    lut
}

/// The colour of `value` on RdBu over `[-scale, +scale]` (see [`ColorMap::color`]).
pub fn diverging(value: f32, scale: f32) -> Color32 {
    ColorMap::RdBu.color(value, scale)
}

/// The colour scales of one set of tiles: one shared by all of them, or one per tile.
#[derive(Clone, Debug, PartialEq)]
pub struct Scales {
    mode: ScaleMode,
    /// One entry in [`ScaleMode::PerLayer`], one per tile in [`ScaleMode::PerMap`]; never 0.
    values: Vec<f32>,
    held: bool,
}

impl Scales {
    /// One scale for every tile: the largest |value| of all `groups` (e.g. a layer's maps before
    /// and after its ReLU, so that the two compare directly).
    pub fn per_layer(groups: &[&[f32]]) -> Self {
        let s = groups.iter().map(|g| abs_max(g)).fold(0.0, f32::max);
        Self { mode: ScaleMode::PerLayer, values: vec![s.max(f32::MIN_POSITIVE)], held: false }
    }

    /// One scale per tile of `per` values: each tile's own largest |value|.
    pub fn per_map(values: &[f32], per: usize) -> Self {
        let values = if per == 0 {
            Vec::new()
        } else {
            values.chunks_exact(per).map(|t| abs_max(t).max(f32::MIN_POSITIVE)).collect()
        };
        Self { mode: ScaleMode::PerMap, values, held: false }
    }

    /// The scales `mode` asks for: per map from `own` (the tiles, `per` values each), per layer
    /// from `layer` (all the tensors that share the layer's scale).
    pub fn compute(mode: ScaleMode, own: &[f32], per: usize, layer: &[&[f32]]) -> Self {
        match mode {
            ScaleMode::PerMap => Self::per_map(own, per),
            ScaleMode::PerLayer => Self::per_layer(layer),
        }
    }

    /// How the scales were chosen.
    pub fn mode(&self) -> ScaleMode {
        self.mode
    }

    /// True when the scales were frozen at an earlier step.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// The scale tile `i` is drawn with.
    pub fn of_tile(&self, i: usize) -> f32 {
        match self.values.as_slice() {
            [shared] => *shared,
            all => all.get(i).copied().unwrap_or(f32::MIN_POSITIVE),
        }
    }

    /// The smallest and largest scale in use.
    pub fn range(&self) -> (f32, f32) {
        let lo = self.values.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = self.values.iter().copied().fold(0.0, f32::max);
        (if lo.is_finite() { lo } else { 0.0 }, hi)
    }

    /// The colour of `value` in tile `tile` on `map`.
    pub fn color(&self, map: ColorMap, tile: usize, value: f32) -> Color32 {
        map.color(value, self.of_tile(tile))
    }

    /// The share of finite values (tile after tile, `per` each) beyond their tile's scale, which
    /// are drawn at full colour: non-zero only while a scale is held.
    pub fn clipped_fraction(&self, values: &[f32], per: usize) -> f32 {
        if per == 0 {
            return 0.0;
        }
        let (mut beyond, mut total) = (0usize, 0usize);
        for (t, tile) in values.chunks_exact(per).enumerate() {
            let s = self.of_tile(t);
            for v in tile.iter().filter(|v| v.is_finite()) {
                total += 1;
                beyond += usize::from(v.abs() > s);
            }
        }
        if total == 0 { 0.0 } else { beyond as f32 / total as f32 }
    }
}

/// Scales frozen by "hold scale", per view slot, until hold is switched off.
#[derive(Debug, Default)]
pub struct HeldScales {
    held: HashMap<(String, ScaleMode), Vec<f32>>,
}

impl HeldScales {
    /// The scales to draw `slot` with. With `hold` off that is `current`, and everything held is
    /// forgotten; with it on, the scales `slot` had when hold found it first (in the same scale
    /// mode and with as many tiles), marked as held.
    ///
    /// `slot` names what is drawn, including the quantity ("conv1 maps · gradients"), so that
    /// activations are never drawn on a scale held for gradients.
    pub fn resolve(&mut self, slot: &str, current: Scales, hold: bool) -> Scales {
        if !hold {
            self.held.clear();
            return current;
        }
        let key = (slot.to_owned(), current.mode);
        match self.held.get(&key) {
            Some(v) if v.len() == current.values.len() => Scales { values: v.clone(), held: true, ..current },
            _ => {
                self.held.insert(key, current.values.clone());
                Scales { held: true, ..current }
            }
        }
    }
}

/// The colour of a pixel intensity in `[0, 1]` (0 = black background, 1 = white ink, as in MNIST).
pub fn gray(value: f32) -> Color32 {
    let v = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
    Color32::from_gray(v)
}

/// The largest absolute finite value, used as the symmetric colour scale of a group of maps.
pub fn abs_max(values: &[f32]) -> f32 {
    values.iter().filter(|v| v.is_finite()).fold(0.0_f32, |m, v| m.max(v.abs()))
}

/// A number in 3 significant digits, switching to scientific notation when tiny or huge, so
/// that values from 1e-6 (gradients) to 100 (scores) stay readable in a narrow space.
pub fn fmt_sig(v: f32) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if (1e-3..1e4).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

/// What a legend describes: the scales of a group of tiles, how many values they clip, and the
/// colour map.
#[derive(Clone, Copy, Debug)]
pub struct Legend<'a> {
    /// The quantity, e.g. "conv1" or "∂L/∂W"; may be empty.
    pub what: &'a str,
    /// The scales in force.
    pub scales: &'a Scales,
    /// Share of values beyond their scale (see [`Scales::clipped_fraction`]).
    pub clipped: f32,
    /// The colour map.
    pub map: ColorMap,
}

impl Legend<'_> {
    /// The words after the colour bar: which scale is in force and its value(s), and how many
    /// values a held scale clips.
    pub fn caption(&self) -> String {
        let (lo, hi) = self.scales.range();
        let mut text = match (self.scales.mode(), self.scales.is_held()) {
            (ScaleMode::PerLayer, false) => "one scale per layer".to_string(),
            (ScaleMode::PerLayer, true) => format!("held scale ±{}", fmt_sig(hi)),
            (ScaleMode::PerMap, held) => {
                let which = if held { "held scale per map" } else { "one scale per map" };
                if lo == hi {
                    format!("{which}: ±{}", fmt_sig(hi))
                } else {
                    format!("{which}: ±{} to ±{}", fmt_sig(lo), fmt_sig(hi))
                }
            }
        };
        if self.scales.is_held() {
            if self.clipped > 0.0 {
                let pct = self.clipped * 100.0;
                let pct = if pct < 0.1 { "<0.1".to_string() } else { format!("{pct:.1}") };
                text.push_str(&format!(" · {pct}% of values beyond it, clipped"));
            } else {
                text.push_str(" · none beyond it");
            }
        }
        text
    }

    /// The numbers at the two ends of the bar.
    fn ends(&self) -> (String, String) {
        match self.scales.mode() {
            ScaleMode::PerLayer => {
                let s = fmt_sig(self.scales.range().1);
                (format!("−{s}"), format!("+{s}"))
            }
            // Each map has its own ends; the caption gives their range.
            ScaleMode::PerMap => ("−max".to_string(), "+max".to_string()),
        }
    }

    /// The hover text of the bar: the map read in words, and what the scale means.
    fn explanation(&self) -> String {
        let scale = match self.scales.mode() {
            ScaleMode::PerLayer => format!(
                "All maps of this layer share one scale, ±{}: equal colours are equal values.",
                fmt_sig(self.scales.range().1)
            ),
            ScaleMode::PerMap => "Each map is scaled by its own largest |value| (\"max\"): the pattern \
                 inside every map shows, but colours do not compare between maps."
                .to_string(),
        };
        let held = if self.scales.is_held() {
            " The scale is held: it stays at the value it had when Hold was switched on, so steps \
             compare honestly; values beyond it are drawn at full colour (clipped)."
        } else {
            " Values reach full colour at the scale."
        };
        format!("{} colour scale: {}.\n{scale}{held}", self.map.name(), self.map.reading())
    }
}

/// A horizontal colour bar from the negative end through 0 to the positive end, labelled at
/// both ends, with a caption saying which scale is in force (see [`Legend::caption`]).
pub fn legend_ui(ui: &mut egui::Ui, legend: &Legend<'_>) {
    // In a wrapping row (two legends side by side), a legend that does not fit in what is left
    // of the row drops the default caption ("one scale per layer", which the first legend of
    // the row already says, and the bar explains on hover) if that is enough, else starts the
    // next row rather than running off the view's edge. Captions that say more (a held scale,
    // clipped values) are never dropped.
    let mut caption = true;
    if ui.layout().main_wrap && ui.cursor().min.x > ui.max_rect().min.x + 1.0 {
        let room = ui.max_rect().right() - ui.cursor().min.x;
        let plain = legend.scales.mode() == ScaleMode::PerLayer && !legend.scales.is_held();
        if room < legend_width(ui, legend, true) {
            if plain && room >= legend_width(ui, legend, false) {
                caption = false;
            } else {
                ui.end_row();
            }
        }
    }
    ui.horizontal(|ui| {
        if !legend.what.is_empty() {
            ui.label(egui::RichText::new(legend.what).small().weak());
        }
        if legend.scales.range().1 <= f32::MIN_POSITIVE {
            ui.label(egui::RichText::new("all values are 0").small());
            return;
        }
        let font = FontId::monospace(11.0);
        let text_color = ui.visuals().text_color();
        let (left, right) = legend.ends();
        ui.label(egui::RichText::new(left).font(font.clone()).color(text_color));
        let bar = vec2(84.0, 12.0);
        let (rect, response) = ui.allocate_exact_size(bar, Sense::hover());
        paint_bar(ui, rect, legend.map);
        // A tick at zero so the light centre does not look like a gap.
        let mid = rect.center().x;
        ui.painter().vline(mid, rect.y_range(), Stroke::new(1.0, ui.visuals().weak_text_color()));
        let explanation = legend.explanation();
        let label = format!("{} colour scale: {}", legend.map.name(), legend.map.reading());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
        response.on_hover_text(explanation);
        ui.label(egui::RichText::new(right).font(font).color(text_color));
        if caption {
            ui.label(egui::RichText::new(legend.caption()).small().weak());
        }
    });
}

/// The legend of filters drawn as colour pictures (three signed channels, zero at mid grey):
/// one bar per colour from `−scale` (none of it) through grey to `+scale` (all of it), then the
/// same caption as [`legend_ui`]'s. `legend.map` is not used.
pub fn rgb_legend_ui(ui: &mut egui::Ui, legend: &Legend<'_>) {
    ui.horizontal(|ui| {
        if legend.scales.range().1 <= f32::MIN_POSITIVE {
            ui.label(egui::RichText::new("all values are 0").small());
            return;
        }
        let font = FontId::monospace(11.0);
        let text_color = ui.visuals().text_color();
        let (left, right) = legend.ends();
        ui.label(egui::RichText::new(left).font(font.clone()).color(text_color));
        let (rect, response) = ui.allocate_exact_size(vec2(84.0, 12.0), Sense::hover());
        let steps = 24;
        let (w, h) = (rect.width() / steps as f32, rect.height() / 3.0);
        for c in 0..3 {
            for i in 0..steps {
                let v = ((i as f32 + 0.5) / steps as f32 * 255.0).round() as u8;
                let mut rgb = [128u8; 3];
                rgb[c] = v;
                let r = Rect::from_min_size(
                    pos2(rect.left() + i as f32 * w, rect.top() + c as f32 * h),
                    Vec2::new(w + 0.5, h + 0.5),
                );
                ui.painter().rect_filled(r, 0.0, Color32::from_rgb(rgb[0], rgb[1], rgb[2]));
            }
        }
        let mid = rect.center().x;
        ui.painter().vline(mid, rect.y_range(), Stroke::new(1.0, ui.visuals().weak_text_color()));
        let label = "colour filter scale: each of red, green and blue from none at −scale through mid grey \
                     at 0 to full at +scale";
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
        response.on_hover_text(
            "Each filter is one picture: its red, green and blue weights each set that colour's \
             brightness, mid grey at 0, full at +scale, none at −scale. A filter that looks red \
             responds to red in the image; one that looks cyan responds to a lack of red.",
        );
        ui.label(egui::RichText::new(right).font(font).color(text_color));
        ui.label(egui::RichText::new(legend.caption()).small().weak());
    });
}

/// The width [`legend_ui`] takes, in points, with or without its caption.
fn legend_width(ui: &egui::Ui, legend: &Legend<'_>, caption: bool) -> f32 {
    let small = egui::TextStyle::Small.resolve(ui.style());
    let mono = FontId::monospace(11.0);
    let text = |t: String, font: &FontId| ui.painter().layout_no_wrap(t, font.clone(), Color32::WHITE).size().x;
    let (left, right) = legend.ends();
    let parts = text(legend.what.to_string(), &small)
        + text(left, &mono)
        + 84.0
        + text(right, &mono)
        + if caption { text(legend.caption(), &small) + ui.spacing().item_spacing.x } else { 0.0 };
    parts + 3.0 * ui.spacing().item_spacing.x
}

fn paint_bar(ui: &egui::Ui, rect: Rect, map: ColorMap) {
    let steps = 48;
    let w = rect.width() / steps as f32;
    let painter = ui.painter();
    for i in 0..steps {
        let t = (i as f32 + 0.5) / steps as f32 * 2.0 - 1.0;
        let r = Rect::from_min_size(pos2(rect.left() + i as f32 * w, rect.top()), Vec2::new(w + 0.5, rect.height()));
        painter.rect_filled(r, 0.0, map.color(t, 1.0));
    }
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color),
        StrokeKind::Outside,
    );
}

/// The colour-scale selector next to the map and filter mode buttons: one scale per layer or
/// per map, hold, and the colour map. A menu, so that it takes one button's width in a row
/// that is already nearly full on a 1280-pixel screen; the button is lit while a scale is held.
pub fn color_scale_ui(ui: &mut egui::Ui, view: &mut ViewState) {
    let config =
        egui::containers::menu::MenuConfig::new().close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside);
    let button = egui::containers::menu::MenuButton::from_button(egui::Button::selectable(view.hold_scale, SELECTOR))
        .config(config);
    let (response, _) = button.ui(ui, |ui| {
        ui.label(egui::RichText::new("Scale").strong());
        ui.radio_value(&mut view.scale_mode, ScaleMode::PerLayer, "One scale per layer")
            .on_hover_text("All maps of a layer share the layer's largest |value|: colours compare between maps.");
        ui.radio_value(&mut view.scale_mode, ScaleMode::PerMap, "One scale per map").on_hover_text(
            "Each map is scaled by its own largest |value|: weak maps show their pattern too, \
             but colours no longer compare between maps.",
        );
        ui.checkbox(&mut view.hold_scale, "Hold scale").on_hover_text(
            "Freeze the scale at its current value, so that the next steps are drawn on the same \
             scale and compare honestly. Values beyond it are drawn at full colour and the \
             legend says how many.",
        );
        ui.separator();
        ui.label(egui::RichText::new("Colour map").strong());
        for map in ColorMap::ALL {
            ui.radio_value(&mut view.color_map, map, map.name()).on_hover_text(map.reading());
        }
    });
    let held = if view.hold_scale { " The scale is held." } else { "" };
    response.on_hover_text(format!("How values become colours: the scale, holding it, and the colour map.{held}"));
}

/// The selector's label.
const SELECTOR: &str = "Colours";

/// Whether `labels` (as buttons) and then a separator and the colour selector fit in what is
/// left of the row; decides whether a row can afford its "Show" label.
pub fn row_fits(ui: &egui::Ui, labels: &[&str]) -> bool {
    let font = egui::TextStyle::Button.resolve(ui.style());
    let spacing = ui.spacing();
    let pad = 2.0 * spacing.button_padding.x + spacing.item_spacing.x;
    let text: f32 = labels
        .iter()
        .chain(std::iter::once(&SELECTOR))
        .map(|t| ui.painter().layout_no_wrap((*t).to_string(), font.clone(), Color32::WHITE).size().x + pad)
        .sum();
    let separator = 2.0 * spacing.item_spacing.x + 6.0;
    text + separator <= ui.available_width()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Perceived lightness: OKLab's L of an sRGB colour (0 black … 1 white).
    fn lightness(c: Color32) -> f32 {
        let lin = |u: u8| {
            let c = u as f32 / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        let (r, g, b) = (lin(c.r()), lin(c.g()), lin(c.b()));
        let l = 0.412_221_46 * r + 0.536_332_55 * g + 0.051_445_995 * b;
        let m = 0.211_903_5 * r + 0.680_699_5 * g + 0.107_396_96 * b;
        let s = 0.088_302_46 * r + 0.281_718_85 * g + 0.629_978_7 * b;
        0.210_454_26 * l.cbrt() + 0.793_617_8 * m.cbrt() - 0.004_072_047 * s.cbrt()
    }

    /// Lightness along one arm, from zero out to ±1 in steps of 1/64.
    fn arm(map: ColorMap, sign: f32) -> Vec<f32> {
        (0..=64).map(|i| lightness(map.color(sign * i as f32 / 64.0, 1.0))).collect()
    }

    fn strictly_monotone(l: &[f32]) -> bool {
        l.windows(2).all(|w| w[1] < w[0]) || l.windows(2).all(|w| w[1] > w[0])
    }

    #[test]
    fn zero_is_near_white_and_the_sign_sets_the_hue() {
        let z = diverging(0.0, 1.0);
        assert!(z.r() > 240 && z.g() > 240 && z.b() > 240);
        let neg = diverging(-1.0, 1.0);
        let pos = diverging(1.0, 1.0);
        assert!(neg.b() > neg.r(), "negative is blue");
        assert!(pos.r() > pos.b(), "positive is red");
    }

    #[test]
    fn zero_maps_to_a_neutral_grey_or_white_in_every_map() {
        for map in ColorMap::ALL {
            let z = map.color(0.0, 3.0);
            assert_eq!(z, map.neutral());
            assert!(z.r() == z.g() && z.g() == z.b(), "{}: zero is {z:?}, not a grey", map.name());
        }
        assert_eq!(ColorMap::HighContrast.neutral(), Color32::from_gray(128));
    }

    #[test]
    fn lightness_changes_monotonically_along_each_arm_of_every_map() {
        for map in ColorMap::ALL {
            for sign in [-1.0, 1.0] {
                let l = arm(map, sign);
                assert!(strictly_monotone(&l), "{} arm {sign}: {l:?}", map.name());
            }
        }
    }

    #[test]
    fn the_brewer_maps_darken_away_from_zero_and_high_contrast_codes_the_sign_in_lightness() {
        for map in [ColorMap::RdBu, ColorMap::PuOr] {
            let (neg, pos) = (arm(map, -1.0), arm(map, 1.0));
            assert!(neg[64] < neg[0] && pos[64] < pos[0], "{}: both ends darker than zero", map.name());
        }
        // In greyscale −1 and +1 of RdBu are within 0.02 of each other: the sign is lost.
        let rdbu = (lightness(diverging(-1.0, 1.0)) - lightness(diverging(1.0, 1.0))).abs();
        assert!(rdbu < 0.02, "{rdbu}");
        // High contrast: lightness rises from −1 through 0 to +1, far apart at the three points.
        let hc = |v: f32| lightness(ColorMap::HighContrast.color(v, 1.0));
        assert!(hc(-1.0) + 0.25 < hc(0.0) && hc(0.0) + 0.25 < hc(1.0), "{} {} {}", hc(-1.0), hc(0.0), hc(1.0));
        let all: Vec<f32> = (-64..=64).map(|i| hc(i as f32 / 64.0)).collect();
        assert!(all.windows(2).all(|w| w[1] > w[0]), "monotone across zero: {all:?}");
    }

    #[test]
    fn values_beyond_the_scale_saturate_and_nan_is_neutral() {
        assert_eq!(diverging(10.0, 1.0), diverging(1.0, 1.0));
        assert_eq!(diverging(f32::NAN, 1.0), diverging(0.0, 1.0));
        assert_eq!(diverging(0.5, 0.0), diverging(0.0, 1.0));
        for map in ColorMap::ALL {
            assert_eq!(map.color(-7.0, 2.0), map.color(-2.0, 2.0));
        }
    }

    /// Two 2-value tiles: a strong one (max 4) and a weak one (max 0.5).
    const TILES: [f32; 4] = [4.0, -2.0, 0.5, 0.25];

    #[test]
    fn per_layer_scale_colours_a_value_by_the_layers_largest_magnitude() {
        let s = Scales::per_layer(&[&TILES]);
        let map = ColorMap::RdBu;
        assert_eq!(s.of_tile(0), 4.0);
        assert_eq!(s.of_tile(1), 4.0);
        // 0.5 in the weak tile is an eighth of the way to full colour, as it would be anywhere.
        assert_eq!(s.color(map, 1, 0.5), map.color(0.125, 1.0));
        assert_eq!(s.color(map, 0, 0.5), s.color(map, 1, 0.5), "equal values, equal colours");
        assert_eq!(s.color(map, 0, 4.0), map.color(1.0, 1.0));
    }

    #[test]
    fn per_map_scale_gives_each_map_its_own_full_colour() {
        let s = Scales::per_map(&TILES, 2);
        let map = ColorMap::PuOr;
        assert_eq!((s.of_tile(0), s.of_tile(1)), (4.0, 0.5));
        // The weak tile's maximum reaches full colour, like the strong tile's.
        assert_eq!(s.color(map, 1, 0.5), map.color(1.0, 1.0));
        assert_eq!(s.color(map, 0, 4.0), map.color(1.0, 1.0));
        // The same value now differs between maps.
        assert_ne!(s.color(map, 0, 0.5), s.color(map, 1, 0.5));
        assert_eq!(s.range(), (0.5, 4.0));
    }

    #[test]
    fn a_held_scale_stays_put_and_clips_what_outgrows_it() {
        let mut held = HeldScales::default();
        let first = held.resolve("conv1 maps", Scales::per_layer(&[&TILES]), true);
        assert!(first.is_held());
        assert_eq!(first.of_tile(0), 4.0);
        // The next step's values are twice as large: the held scale does not follow them.
        let doubled: Vec<f32> = TILES.iter().map(|v| v * 2.0).collect();
        let next = held.resolve("conv1 maps", Scales::per_layer(&[&doubled]), true);
        assert_eq!(next.of_tile(0), 4.0);
        let map = ColorMap::RdBu;
        assert_eq!(next.color(map, 0, 2.0), map.color(0.5, 1.0), "2 is half way, as in the held step");
        assert_eq!(next.color(map, 0, 8.0), map.color(1.0, 1.0), "beyond the scale: full colour");
        assert_eq!(next.clipped_fraction(&doubled, 2), 0.25, "only 8 is beyond ±4");
        // Another slot is held separately; switching hold off forgets everything.
        let other = held.resolve("conv2 maps", Scales::per_layer(&[&doubled]), true);
        assert_eq!(other.of_tile(0), 8.0);
        let free = held.resolve("conv1 maps", Scales::per_layer(&[&doubled]), false);
        assert!(!free.is_held());
        assert_eq!(free.of_tile(0), 8.0);
        let again = held.resolve("conv1 maps", Scales::per_layer(&[&doubled]), true);
        assert_eq!(again.of_tile(0), 8.0, "hold again captures the new scale");
    }

    #[test]
    fn a_held_per_map_scale_keeps_every_maps_own_value() {
        let mut held = HeldScales::default();
        held.resolve("f", Scales::per_map(&TILES, 2), true);
        let later = held.resolve("f", Scales::per_map(&[1.0, 1.0, 1.0, 1.0], 2), true);
        assert_eq!((later.of_tile(0), later.of_tile(1)), (4.0, 0.5));
        assert_eq!(later.clipped_fraction(&[1.0, 1.0, 1.0, 1.0], 2), 0.5, "the weak map's 1s are clipped");
        // Per layer is held apart from per map.
        let layer = held.resolve("f", Scales::per_layer(&[&[1.0]]), true);
        assert_eq!(layer.of_tile(1), 1.0);
    }

    #[test]
    fn the_legend_caption_names_the_scale_and_its_values() {
        let map = ColorMap::RdBu;
        let layer = Scales::per_layer(&[&TILES]);
        let caption = |scales: &Scales, clipped: f32| Legend { what: "", scales, clipped, map }.caption();
        assert_eq!(caption(&layer, 0.0), "one scale per layer");
        assert_eq!(Legend { what: "", scales: &layer, clipped: 0.0, map }.ends(), ("−4.00".into(), "+4.00".into()));
        assert_eq!(caption(&Scales::per_map(&TILES, 2), 0.0), "one scale per map: ±0.500 to ±4.00");
        let held = HeldScales::default().resolve("x", layer, true);
        assert_eq!(caption(&held, 0.25), "held scale ±4.00 · 25.0% of values beyond it, clipped");
        assert_eq!(caption(&held, 0.0), "held scale ±4.00 · none beyond it");
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(fmt_sig(0.012345), "0.0123");
        assert_eq!(fmt_sig(1.5), "1.50");
        assert_eq!(fmt_sig(0.0), "0");
        assert_eq!(fmt_sig(2.5e-6), "2.50e-6");
    }
}
