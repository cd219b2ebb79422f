//! Text that every font can draw.
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
