//! Text shown to people: counts with thousands separators, class names, and formulas in
//! characters every font can draw.
//!
//! The engine's formulas use a few mathematical characters (ᵀ, ⊙, ⋆) that egui's bundled fonts
//! lack. eframe falls back to system fonts when it can, but a classroom PC or a CI container may
//! have none, and a box instead of a symbol is worse than a plain spelling. So each formula is
//! checked once against the fonts and the missing characters are spelled out.

use std::collections::HashMap;

use eframe::egui::{self, FontId};

/// Plain spellings for characters the fonts may lack.
const FALLBACKS: [(char, &str); 10] = [
    ('ᵀ', "^T"),
    ('⊙', "*"),
    ('⋆', "*"),
    ('→', "->"),
    ('←', "<-"),
    ('−', "-"),
    ('Σ', "sum "),
    ('∂', "d"),
    ('²', "^2"),
    ('½', "1/2"),
];

/// Remembers, per string, the spelling that the fonts can draw.
#[derive(Default)]
pub struct GlyphSafe {
    cache: HashMap<(String, bool), String>,
}

impl GlyphSafe {
    /// `text` with characters missing from the monospace (`mono`) or proportional font replaced.
    pub fn get(&mut self, ctx: &egui::Context, text: &str, mono: bool) -> String {
        if let Some(s) = self.cache.get(&(text.to_string(), mono)) {
            return s.clone();
        }
        let font = if mono { FontId::monospace(12.0) } else { FontId::proportional(12.0) };
        let safe = ctx.fonts_mut(|f| {
            let mut out = String::with_capacity(text.len());
            for c in text.chars() {
                if f.has_glyph(&font, c) {
                    out.push(c);
                } else if let Some((_, s)) = FALLBACKS.iter().find(|(k, _)| *k == c) {
                    out.push_str(s);
                } else {
                    out.push('?');
                }
            }
            out
        });
        self.cache.insert((text.to_string(), mono), safe.clone());
        safe
    }
}

/// What the views call one picture of the data: "digit" when the classes are the ten digits
/// (MNIST, the sample), "image" for anything else (clothes, shapes, photos): a caption saying
/// "digit 3 of the batch" under a red triangle misleads a class.
pub fn item_word(names: &[String]) -> &'static str {
    let digits = names.len() == 10 && names.iter().enumerate().all(|(i, n)| n.trim() == i.to_string());
    if digits { "digit" } else { "image" }
}

/// [`item_word`] with a capital first letter, for the start of a caption.
pub fn item_word_capital(names: &[String]) -> &'static str {
    if item_word(names) == "digit" { "Digit" } else { "Image" }
}

/// Class `class`'s name, or its number when the dataset has no name for it.
pub fn class_name(names: &[String], class: usize) -> String {
    names.get(class).cloned().unwrap_or_else(|| class.to_string())
}

/// The name when it has at most `max_chars` characters, else the class number: long names
/// (Fashion-MNIST's "Ankle boot") do not fit a thumbnail's caption or a matrix cell.
pub fn short_class_name(names: &[String], class: usize, max_chars: usize) -> String {
    match names.get(class) {
        Some(n) if n.chars().count() <= max_chars => n.clone(),
        _ => class.to_string(),
    }
}

/// `text` as it fits `max_width` points in `font` on one line: whole when it fits, else its
/// longest beginning that fits with "…" after it (at least one character and the "…"), but
/// never a cut that is no narrower than the whole ("7" stays "7" however little room there is).
/// The views that cut a class name this way give the whole name on hover.
pub fn fit_text(painter: &egui::Painter, text: &str, font: &FontId, max_width: f32) -> String {
    let width = |t: &str| painter.layout_no_wrap(t.to_owned(), font.clone(), egui::Color32::WHITE).size().x;
    let whole = width(text);
    if whole <= max_width {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let cut = |n: usize| chars[..n].iter().collect::<String>().trim_end().to_owned() + "…";
    if chars.len() < 2 || width(&cut(1)) >= whole {
        return text.to_owned();
    }
    // The longest beginning that fits, by bisection: widths grow with the length.
    let (mut lo, mut hi) = (1, chars.len().saturating_sub(1).max(1));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if width(&cut(mid)) <= max_width { lo = mid } else { hi = mid - 1 }
    }
    cut(lo)
}

/// A probability in percent with `decimals` decimals, the one rounding every view uses (the
/// core's, so `predict` on the terminal and the window never disagree): floored, so that a short
/// form never contradicts a long one (99.8% is "99%", never "100%"), and 100% appears only for a
/// certainty.
pub use crate::cli::predict::percent;

/// A probability as the views show it: one decimal, floored (see [`percent`]).
pub fn prob(p: f32) -> String {
    percent(p, 1)
}

/// Thousands separators for counts shown to people ("25,088").
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_ten_digit_classes_make_pictures_digits() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        assert_eq!((item_word(&digits), item_word_capital(&digits)), ("digit", "Digit"));
        assert_eq!(item_word(&names(&["T-shirt/top", "Trouser"])), "image", "clothes");
        assert_eq!(item_word(&digits[..5]), "image", "five numbered classes are not the digits");
        assert_eq!(item_word_capital(&names(&["circle", "square"])), "Image");
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(thousands(25088), "25,088");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn a_long_class_name_gives_way_to_its_number() {
        let names = vec!["T-shirt".to_string(), "Ankle boot".to_string()];
        assert_eq!(short_class_name(&names, 0, 7), "T-shirt");
        assert_eq!(short_class_name(&names, 1, 7), "1");
        assert_eq!(class_name(&names, 5), "5");
    }

    #[test]
    fn a_long_name_is_cut_to_the_room_with_an_ellipsis_and_a_short_one_kept() {
        let ctx = egui::Context::default();
        let mut cut = Vec::new();
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            let painter = ui.painter();
            let font = FontId::monospace(10.0);
            let w = |t: &str| painter.layout_no_wrap(t.to_owned(), font.clone(), egui::Color32::WHITE).size().x;
            let room = w("airplane");
            cut = vec![
                fit_text(painter, "airplane", &font, room),
                fit_text(painter, "automobile", &font, room),
                fit_text(painter, "Ankle boot", &font, w("Ankle")),
                fit_text(painter, "frog", &font, 1.0),
                fit_text(painter, "7", &font, 1.0),
                fit_text(painter, "12", &font, 1.0),
            ];
            assert!(w(&cut[1]) <= room);
        });
        // The font atlas the frame made is not uploaded anywhere.
        out.textures_delta.clear();
        assert_eq!(cut[0], "airplane", "what fits stays whole");
        assert_eq!(cut[1], "automob…", "the longest beginning that fits, then the ellipsis");
        assert_eq!(cut[2], "Ankl…", "no space before the ellipsis");
        assert_eq!(cut[3], "f…", "at least one character");
        assert_eq!((cut[4].as_str(), cut[5].as_str()), ("7", "12"), "a cut no narrower than the whole is no cut");
    }

    #[test]
    fn a_probability_reads_the_same_in_every_view() {
        assert_eq!(super::prob(0.998), "99.8%");
        assert_eq!(super::percent(0.998, 0), "99%", "the short form never says 100% for 99.8%");
        assert_eq!(super::prob(0.99999), "99.9%");
        assert_eq!(super::prob(1.0), "100.0%");
        assert_eq!(super::prob(0.5), "50.0%");
        assert_eq!(super::percent(0.0, 0), "0%");
    }
}
