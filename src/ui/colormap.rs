//! The diverging colour map every signed tensor is drawn with, and its legend.
//!
//! ColorBrewer's RdBu (reversed): negative is blue, zero is near-white, positive is red. It is one
//! of the schemes ColorBrewer lists as colour-blind safe, and the sign reads at a glance even on a
//! washed-out projector because the two arms differ in lightness as well as hue.

use std::sync::LazyLock;

use eframe::egui::{self, Color32, FontId, Rect, Sense, Stroke, StrokeKind, Vec2, pos2, vec2};

/// RdBu, 11 classes, from most negative to most positive.
const STOPS: [[u8; 3]; 11] = [
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

/// Entries in the lookup table; odd so that zero has an entry of its own.
const LUT_LEN: usize = 257;

static LUT: LazyLock<[Color32; LUT_LEN]> = LazyLock::new(|| {
    let mut lut = [Color32::BLACK; LUT_LEN];
    for (i, c) in lut.iter_mut().enumerate() {
        let t = i as f32 / (LUT_LEN - 1) as f32 * (STOPS.len() - 1) as f32;
        let lo = (t.floor() as usize).min(STOPS.len() - 2);
        let f = t - lo as f32;
        let mix = |k: usize| (STOPS[lo][k] as f32 * (1.0 - f) + STOPS[lo + 1][k] as f32 * f).round() as u8;
        *c = Color32::from_rgb(mix(0), mix(1), mix(2));
    }
    lut
});

/// The colour of `value` on a symmetric scale `[-scale, +scale]`; values beyond it saturate.
pub fn diverging(value: f32, scale: f32) -> Color32 {
    let t = if scale > 0.0 && value.is_finite() { (value / scale).clamp(-1.0, 1.0) } else { 0.0 };
    let i = ((t + 1.0) * 0.5 * (LUT_LEN - 1) as f32).round() as usize;
    LUT[i.min(LUT_LEN - 1)]
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

/// A horizontal colour bar from `−scale` through 0 to `+scale`, labelled at both ends and the
/// middle. `what` names the quantity, e.g. "activation" or "∂L/∂conv1".
pub fn legend_ui(ui: &mut egui::Ui, what: &str, scale: f32) {
    ui.horizontal(|ui| {
        if !what.is_empty() {
            ui.label(egui::RichText::new(what).small().weak());
        }
        if scale <= f32::MIN_POSITIVE {
            ui.label(egui::RichText::new("all values are 0").small());
            return;
        }
        let font = FontId::monospace(11.0);
        let text_color = ui.visuals().text_color();
        let left = format!("−{}", fmt_sig(scale));
        let right = format!("+{}", fmt_sig(scale));
        ui.label(egui::RichText::new(left).font(font.clone()).color(text_color));
        let bar = vec2(84.0, 12.0);
        let (rect, response) = ui.allocate_exact_size(bar, Sense::hover());
        paint_bar(ui, rect);
        // A tick at zero so the white centre does not look like a gap.
        let mid = rect.center().x;
        ui.painter().vline(mid, rect.y_range(), Stroke::new(1.0, ui.visuals().weak_text_color()));
        ui.label(egui::RichText::new(right).font(font).color(text_color));
        response.on_hover_text(format!(
            "Colour scale: blue is negative, white is zero, red is positive. \
             Values beyond ±{} are drawn at full colour.",
            fmt_sig(scale)
        ));
    });
}

fn paint_bar(ui: &egui::Ui, rect: Rect) {
    let steps = 48;
    let w = rect.width() / steps as f32;
    let painter = ui.painter();
    for i in 0..steps {
        let t = (i as f32 + 0.5) / steps as f32 * 2.0 - 1.0;
        let r = Rect::from_min_size(pos2(rect.left() + i as f32 * w, rect.top()), Vec2::new(w + 0.5, rect.height()));
        painter.rect_filled(r, 0.0, diverging(t, 1.0));
    }
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color),
        StrokeKind::Outside,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn values_beyond_the_scale_saturate_and_nan_is_neutral() {
        assert_eq!(diverging(10.0, 1.0), diverging(1.0, 1.0));
        assert_eq!(diverging(f32::NAN, 1.0), diverging(0.0, 1.0));
        assert_eq!(diverging(0.5, 0.0), diverging(0.0, 1.0));
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(fmt_sig(0.012345), "0.0123");
        assert_eq!(fmt_sig(1.5), "1.50");
        assert_eq!(fmt_sig(0.0), "0");
        assert_eq!(fmt_sig(2.5e-6), "2.50e-6");
    }
}
