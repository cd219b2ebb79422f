//! GPU textures for groups of small images (feature maps, kernels, the data's pictures).
//!
//! Each group lives in one atlas texture, created once with `load_texture` and afterwards only
//! updated with `TextureHandle::set` when a new snapshot brings new numbers, never per frame.
//! The group keeps a copy of its numbers so that hovering a pixel can show its value.
//!
//! A picture of the data (`C × H × W` in [0, 1]) becomes colours in one place,
//! [`picture_pixel`]: grey for one channel, red-green-blue for three. Every view that shows an
//! image (the batch, the probe, the gallery, the class evidence, the draw preview) goes through
//! it, by [`Coloring::picture`] or [`picture_image`].

use eframe::egui::{self, Color32, ColorImage, Rect, TextureHandle, TextureId, TextureOptions, pos2};

use crate::ui::support::colormap::{ColorMap, Scales, abs_max, fmt_sig, gray};

/// How numbers become colours.
#[derive(Clone, Debug, PartialEq)]
pub enum Coloring {
    /// A symmetric diverging map, each tile over `[-scale, +scale]` of its scale.
    Diverging {
        /// The colour map.
        map: ColorMap,
        /// The scale of every tile (shared or per tile, maybe held).
        scales: Scales,
    },
    /// Grey levels for pixel intensities in `[0, 1]`: a one-channel picture.
    Gray,
    /// Pictures of the data, each tile `channels × H × W` in `[0, 1]` (see [`picture_pixel`]).
    Picture {
        /// Values per pixel: 1 (grey) or 3 (red, green, blue).
        channels: usize,
    },
    /// Three signed channels (a first-layer filter on colour input, its gradient or update) as
    /// one colour picture, each tile `3 × H × W`: every channel `½ + ½·value/scale`, so zero is
    /// mid grey, a positive weight on red makes the pixel redder and a negative one greener-blue
    /// (as cs231n and CNN Explainer draw such filters). See [`signed_rgb_pixel`].
    SignedRgb {
        /// The scale of every tile (shared or per filter, maybe held).
        scales: Scales,
    },
}

impl Coloring {
    /// RdBu with one scale shared by every tile.
    pub fn shared(scale: f32) -> Self {
        Coloring::Diverging { map: ColorMap::RdBu, scales: Scales::per_layer(&[&[scale]]) }
    }

    /// Pictures of `channels` channels: grey for one, colour for three.
    pub fn picture(channels: usize) -> Self {
        if channels == 1 { Coloring::Gray } else { Coloring::Picture { channels } }
    }

    /// The colour of pixel `p` of tile number `t`, whose values are `tile` (`C × plane`).
    fn color(&self, tile: &[f32], t: usize, plane: usize, p: usize) -> Color32 {
        let first = tile.get(p).copied().unwrap_or(0.0);
        match self {
            Coloring::Diverging { map, scales } => map.color(first, scales.of_tile(t)),
            Coloring::Gray => picture_pixel(tile, 1, plane, p),
            Coloring::Picture { channels } => picture_pixel(tile, *channels, plane, p),
            Coloring::SignedRgb { scales } => signed_rgb_pixel(tile, plane, p, scales.of_tile(t)),
        }
    }

    /// Values per pixel of a tile.
    pub fn channels(&self) -> usize {
        match self {
            Coloring::Diverging { .. } | Coloring::Gray => 1,
            Coloring::Picture { channels } => *channels,
            Coloring::SignedRgb { .. } => 3,
        }
    }
}

/// The colour of pixel `i` (`row · W + column`) of a picture of the data, `channels × H × W`
/// values in `[0, 1]` channel after channel with `plane = H × W`: three channels are red, green
/// and blue; any other count is drawn in grey from the first (0 black, 1 white, as MNIST's ink).
pub fn picture_pixel(values: &[f32], channels: usize, plane: usize, i: usize) -> Color32 {
    let at = |c: usize| values.get(c * plane + i).copied().unwrap_or(0.0);
    if channels == 3 {
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        Color32::from_rgb(byte(at(0)), byte(at(1)), byte(at(2)))
    } else {
        gray(at(0))
    }
}

/// The colour of pixel `i` of three signed channels (`3 × H × W`, `plane = H × W`) on
/// `[-scale, +scale]`: each channel `½ + ½·value/scale`, so zero is mid grey; values beyond the
/// scale saturate, NaN is grey.
pub fn signed_rgb_pixel(values: &[f32], plane: usize, i: usize, scale: f32) -> Color32 {
    let byte = |c: usize| {
        let v = values.get(c * plane + i).copied().unwrap_or(0.0);
        let t = if scale > 0.0 && v.is_finite() { (v / scale).clamp(-1.0, 1.0) } else { 0.0 };
        ((0.5 + 0.5 * t) * 255.0).round() as u8
    };
    Color32::from_rgb(byte(0), byte(1), byte(2))
}

/// A pixel of a picture in words: its value, or `red 0.82, green 0.10, blue 0.05` in colour.
pub fn pixel_text(values: &[f32]) -> String {
    match values {
        [v] => fmt_sig(*v),
        [r, g, b] => format!("red {}, green {}, blue {}", fmt_sig(*r), fmt_sig(*g), fmt_sig(*b)),
        more => more.iter().map(|v| fmt_sig(*v)).collect::<Vec<_>>().join(", "),
    }
}

/// A picture of the data, `C × H × W` values in `[0, 1]`, as an egui image (see
/// [`picture_pixel`]); too few values leave the rest black.
pub fn picture_image(values: &[f32], (c, h, w): (usize, usize, usize)) -> ColorImage {
    let plane = h * w;
    let pixels = (0..plane).map(|i| picture_pixel(values, c, plane, i)).collect();
    ColorImage::new([w, h], pixels)
}

/// A set of equally sized images (tiles) packed into one texture.
pub struct TileSet {
    name: String,
    texture: Option<TextureHandle>,
    values: Vec<f32>,
    count: usize,
    tile_h: usize,
    tile_w: usize,
    /// Values per pixel (3 for colour pictures and RGB filters).
    channels: usize,
    atlas_cols: usize,
    coloring: Coloring,
    /// Share of the values beyond their tile's scale.
    clipped: f32,
}

impl TileSet {
    /// An empty set; the texture is created on the first [`TileSet::set`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            texture: None,
            values: Vec::new(),
            count: 0,
            tile_h: 0,
            tile_w: 0,
            channels: 1,
            atlas_cols: 1,
            coloring: Coloring::Gray,
            clipped: 0.0,
        }
    }

    /// Replaces the tiles with `values` (`count × C × tile_h × tile_w`, tile after tile, with `C`
    /// the coloring's [`channels`](Coloring::channels)) and uploads them into the one texture of
    /// this set; too few values (a tensor not computed yet) empty it.
    pub fn set(
        &mut self,
        ctx: &egui::Context,
        values: &[f32],
        count: usize,
        tile_h: usize,
        tile_w: usize,
        coloring: Coloring,
    ) {
        let plane = tile_h * tile_w;
        let per = coloring.channels() * plane;
        if count == 0 || per == 0 || values.len() < count * per {
            self.clear();
            return;
        }
        // Square-ish atlas so that even 512 digits stay far below any texture size limit.
        let cols = (count as f32).sqrt().ceil().max(1.0) as usize;
        let rows = count.div_ceil(cols);
        let (w, h) = (cols * tile_w, rows * tile_h);
        let mut pixels = vec![Color32::TRANSPARENT; w * h];
        for t in 0..count {
            let (ox, oy) = ((t % cols) * tile_w, (t / cols) * tile_h);
            let tile = &values[t * per..(t + 1) * per];
            for y in 0..tile_h {
                let row = &mut pixels[(oy + y) * w + ox..(oy + y) * w + ox + tile_w];
                for (x, px) in row.iter_mut().enumerate() {
                    *px = coloring.color(tile, t, plane, y * tile_w + x);
                }
            }
        }
        let image = ColorImage::new([w, h], pixels);
        match &mut self.texture {
            Some(handle) => handle.set(image, TextureOptions::NEAREST),
            None => self.texture = Some(ctx.load_texture(self.name.clone(), image, TextureOptions::NEAREST)),
        }
        self.values.clear();
        self.values.extend_from_slice(&values[..count * per]);
        self.count = count;
        self.tile_h = tile_h;
        self.tile_w = tile_w;
        self.channels = coloring.channels();
        self.atlas_cols = cols;
        self.clipped = match &coloring {
            Coloring::Diverging { scales, .. } | Coloring::SignedRgb { scales } if scales.is_held() => {
                scales.clipped_fraction(&self.values, per)
            }
            _ => 0.0,
        };
        self.coloring = coloring;
    }

    /// Forgets the tiles (the texture is kept for reuse).
    pub fn clear(&mut self) {
        self.values.clear();
        self.count = 0;
    }

    /// True when there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.count == 0 || self.texture.is_none()
    }

    /// Number of tiles.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Tile size as (height, width) in texels.
    pub fn tile_size(&self) -> (usize, usize) {
        (self.tile_h, self.tile_w)
    }

    /// Values per pixel: 3 for colour pictures and RGB filters, else 1.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// How the tiles were coloured.
    pub fn coloring(&self) -> &Coloring {
        &self.coloring
    }

    /// The largest colour scale in use (0 for pictures).
    pub fn scale(&self) -> f32 {
        self.scales().map_or(0.0, |s| s.range().1)
    }

    /// The colour scales in use (`None` for pictures).
    pub fn scales(&self) -> Option<&Scales> {
        match &self.coloring {
            Coloring::Diverging { scales, .. } | Coloring::SignedRgb { scales } => Some(scales),
            Coloring::Gray | Coloring::Picture { .. } => None,
        }
    }

    /// The diverging colour map in use (`None` for pictures and RGB filters).
    pub fn color_map(&self) -> Option<ColorMap> {
        match &self.coloring {
            Coloring::Diverging { map, .. } => Some(*map),
            _ => None,
        }
    }

    /// Share of the values drawn at full colour because they are beyond their (held) scale.
    pub fn clipped_fraction(&self) -> f32 {
        self.clipped
    }

    /// The texture, once something was uploaded.
    pub fn texture_id(&self) -> Option<TextureId> {
        self.texture.as_ref().map(|t| t.id())
    }

    /// The part of the texture holding tile `i`, in normalised coordinates.
    pub fn uv(&self, i: usize) -> Rect {
        let cols = self.atlas_cols.max(1);
        let rows = self.count.div_ceil(cols).max(1);
        let (c, r) = ((i % cols) as f32, (i / cols) as f32);
        let (cw, rh) = (1.0 / cols as f32, 1.0 / rows as f32);
        Rect::from_min_max(pos2(c * cw, r * rh), pos2((c + 1.0) * cw, (r + 1.0) * rh))
    }

    /// The value at row `y`, column `x` of tile `i` (of its first channel).
    pub fn value(&self, i: usize, y: usize, x: usize) -> Option<f32> {
        self.texel(i, y, x).first().copied()
    }

    /// Every channel's value at row `y`, column `x` of tile `i` (red, green, blue for a colour
    /// picture); empty outside the tiles.
    pub fn texel(&self, i: usize, y: usize, x: usize) -> Vec<f32> {
        if i >= self.count || y >= self.tile_h || x >= self.tile_w {
            return Vec::new();
        }
        let plane = self.tile_h * self.tile_w;
        let tile = self.tile(i);
        (0..self.channels).filter_map(|c| tile.get(c * plane + y * self.tile_w + x).copied()).collect()
    }

    /// The values of tile `i` (`C × H × W`).
    pub fn tile(&self, i: usize) -> &[f32] {
        let per = self.channels * self.tile_h * self.tile_w;
        self.values.get(i * per..(i + 1) * per).unwrap_or(&[])
    }

    /// The colour drawn at row `y`, column `x` of tile `i` (what the texture holds there).
    pub fn color_at(&self, i: usize, y: usize, x: usize) -> Option<Color32> {
        if i >= self.count || y >= self.tile_h || x >= self.tile_w {
            return None;
        }
        Some(self.coloring.color(self.tile(i), i, self.tile_h * self.tile_w, y * self.tile_w + x))
    }
}

/// The symmetric scale for a group: its largest |value|, never exactly zero so the colours
/// stay defined.
pub fn group_scale(groups: &[&[f32]]) -> f32 {
    groups.iter().map(|g| abs_max(g)).fold(0.0, f32::max).max(f32::MIN_POSITIVE)
}

/// Where tiles go on screen: a grid of `rows × cols` cells of `tile` points with `gap` between.
#[derive(Clone, Copy, Debug)]
pub struct Grid {
    /// Cell rows.
    pub rows: usize,
    /// Cell columns.
    pub cols: usize,
    /// Side of one tile in points.
    pub tile: f32,
    /// Space between tiles in points.
    pub gap: f32,
}

impl Grid {
    /// The size the grid takes.
    pub fn size(&self) -> egui::Vec2 {
        let w = self.cols as f32 * self.tile + self.cols.saturating_sub(1) as f32 * self.gap;
        let h = self.rows as f32 * self.tile + self.rows.saturating_sub(1) as f32 * self.gap;
        egui::vec2(w, h)
    }

    /// The largest tile side (in whole points, at least `min`) that fits `cols × rows` into
    /// `avail`.
    pub fn fit(rows: usize, cols: usize, avail: egui::Vec2, gap: f32, min: f32, max: f32) -> Self {
        let w = (avail.x - cols.saturating_sub(1) as f32 * gap) / cols.max(1) as f32;
        let h = (avail.y - rows.saturating_sub(1) as f32 * gap) / rows.max(1) as f32;
        let tile = w.min(h).clamp(min, max).floor();
        Self { rows, cols, tile, gap }
    }
}

/// Draws the tiles of `set` on `grid`; `tile_at(row, col)` says which tile goes in a cell.
/// Hovering shows `describe(tile, y, x, value)` next to the pointer. Returns the response (it
/// senses clicks) and the pixel under the pointer as `(tile, y, x)`.
pub fn tiles_ui(
    ui: &mut egui::Ui,
    set: &TileSet,
    grid: Grid,
    tile_at: &dyn Fn(usize, usize) -> Option<usize>,
    describe: &dyn Fn(usize, usize, usize, f32) -> String,
) -> (egui::Response, Option<(usize, usize, usize)>) {
    let (rect, response) = ui.allocate_exact_size(grid.size(), egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &set.name));
    let Some(tex) = set.texture_id() else { return (response, None) };
    if !ui.is_rect_visible(rect) || set.is_empty() {
        return (response, None);
    }
    let painter = ui.painter_at(rect);
    let step = grid.tile + grid.gap;
    let cell_rect = |r: usize, c: usize| {
        Rect::from_min_size(rect.min + egui::vec2(c as f32 * step, r as f32 * step), egui::Vec2::splat(grid.tile))
    };
    for r in 0..grid.rows {
        for c in 0..grid.cols {
            if let Some(t) = tile_at(r, c).filter(|t| *t < set.count()) {
                painter.image(tex, cell_rect(r, c), set.uv(t), Color32::WHITE);
            }
        }
    }
    let mut hovered_tile = None;
    if let Some(pos) = response.hover_pos() {
        let rel = pos - rect.min;
        let (c, r) = ((rel.x / step).floor() as usize, (rel.y / step).floor() as usize);
        if r < grid.rows && c < grid.cols {
            let cell = cell_rect(r, c);
            if let (true, Some(t)) = (cell.contains(pos), tile_at(r, c)) {
                let (th, tw) = set.tile_size();
                let y = (((pos.y - cell.top()) / grid.tile) * th as f32).floor() as usize;
                let x = (((pos.x - cell.left()) / grid.tile) * tw as f32).floor() as usize;
                if let Some(v) = set.value(t, y.min(th - 1), x.min(tw - 1)) {
                    hovered_tile = Some((t, y.min(th - 1), x.min(tw - 1)));
                    painter.rect_stroke(cell, 0.0, ui.visuals().selection.stroke, egui::StrokeKind::Outside);
                    let text = describe(t, y.min(th - 1), x.min(tw - 1), v);
                    response.show_tooltip_text(text);
                }
            }
        }
    }
    (response, hovered_tile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_colour_picture_is_drawn_in_its_colours_and_a_grey_one_in_grey() {
        // 3×1×2: pixel 0 pure red, pixel 1 a dark cyan.
        let rgb = [1.0, 0.0, 0.0, 0.5, 0.0, 0.5];
        assert_eq!(picture_pixel(&rgb, 3, 2, 0), Color32::from_rgb(255, 0, 0));
        assert_eq!(picture_pixel(&rgb, 3, 2, 1), Color32::from_rgb(0, 128, 128));
        assert_eq!(picture_pixel(&[0.0, 1.0], 1, 2, 1), Color32::WHITE);
        assert_eq!(picture_pixel(&[0.2, 1.0], 1, 2, 0), gray(0.2));
        let image = picture_image(&rgb, (3, 1, 2));
        assert_eq!(
            (image.size, image.pixels[0], image.pixels[1]),
            ([2, 1], Color32::RED, Color32::from_rgb(0, 128, 128))
        );
        // Out-of-range values are clamped, missing ones black.
        assert_eq!(picture_pixel(&[2.0, -1.0, 0.0], 3, 1, 0), Color32::from_rgb(255, 0, 0));
        assert_eq!(picture_pixel(&[], 3, 1, 0), Color32::BLACK);
    }

    #[test]
    fn a_signed_rgb_filter_is_mid_grey_at_zero_and_saturates_at_its_scale() {
        // 3×1×2: pixel 0 all zero, pixel 1 red +scale, green −scale, blue twice the scale.
        let w = [0.0, 0.5, 0.0, -0.5, 0.0, 1.0];
        assert_eq!(signed_rgb_pixel(&w, 2, 0, 0.5), Color32::from_rgb(128, 128, 128));
        assert_eq!(signed_rgb_pixel(&w, 2, 1, 0.5), Color32::from_rgb(255, 0, 255));
        assert_eq!(signed_rgb_pixel(&[f32::NAN, 0.0, 0.0], 1, 0, 1.0), Color32::from_gray(128));
        assert_eq!(signed_rgb_pixel(&w, 2, 1, 0.0), Color32::from_gray(128), "a zero scale draws zero");
    }

    #[test]
    fn a_pixel_reads_as_one_value_or_as_red_green_and_blue() {
        assert_eq!(pixel_text(&[0.5]), "0.500");
        assert_eq!(pixel_text(&[1.0, 0.0, 0.25]), "red 1.00, green 0, blue 0.250");
    }

    #[test]
    fn colour_tiles_keep_every_channel_and_report_their_colours() {
        let ctx = egui::Context::default();
        let mut set = TileSet::new("test");
        // Two 3×1×1 tiles: red, then blue.
        set.set(&ctx, &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], 2, 1, 1, Coloring::picture(3));
        assert_eq!((set.count(), set.channels()), (2, 3));
        assert_eq!(set.tile(1), [0.0, 0.0, 1.0]);
        assert_eq!(set.texel(0, 0, 0), [1.0, 0.0, 0.0]);
        assert_eq!(set.value(1, 0, 0), Some(0.0), "a single value is the first channel's");
        assert_eq!((set.color_at(0, 0, 0), set.color_at(1, 0, 0)), (Some(Color32::RED), Some(Color32::BLUE)));
        assert!(set.color_at(2, 0, 0).is_none() && set.texel(0, 1, 0).is_empty());
        // Grey as before: one value per pixel.
        set.set(&ctx, &[0.0, 1.0], 2, 1, 1, Coloring::picture(1));
        assert_eq!((set.channels(), set.color_at(1, 0, 0)), (1, Some(Color32::WHITE)));
        // Too few values for three channels: nothing.
        set.set(&ctx, &[1.0, 0.0], 1, 1, 1, Coloring::picture(3));
        assert!(set.is_empty());
    }
}
