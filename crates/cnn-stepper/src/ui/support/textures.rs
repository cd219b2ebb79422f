//! GPU textures for groups of small images (feature maps, kernels, digits).
//!
//! Each group lives in one atlas texture, created once with `load_texture` and afterwards only
//! updated with `TextureHandle::set` when a new snapshot brings new numbers, never per frame.
//! The group keeps a copy of its numbers so that hovering a pixel can show its value.

use eframe::egui::{self, Color32, ColorImage, Rect, TextureHandle, TextureId, TextureOptions, pos2};

use crate::ui::support::colormap::{ColorMap, Scales, abs_max, gray};

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
    /// Grey levels for pixel intensities in `[0, 1]`.
    Gray,
}

impl Coloring {
    /// RdBu with one scale shared by every tile.
    pub fn shared(scale: f32) -> Self {
        Coloring::Diverging { map: ColorMap::RdBu, scales: Scales::per_layer(&[&[scale]]) }
    }
}

/// A set of equally sized images (tiles) packed into one texture.
pub struct TileSet {
    name: String,
    texture: Option<TextureHandle>,
    values: Vec<f32>,
    count: usize,
    tile_h: usize,
    tile_w: usize,
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
            atlas_cols: 1,
            coloring: Coloring::Gray,
            clipped: 0.0,
        }
    }

    /// Replaces the tiles with `values` (`count × tile_h × tile_w`, tile after tile) and uploads
    /// them into the one texture of this set; too few values (a tensor not computed yet) empty it.
    pub fn set(
        &mut self,
        ctx: &egui::Context,
        values: &[f32],
        count: usize,
        tile_h: usize,
        tile_w: usize,
        coloring: Coloring,
    ) {
        let per = tile_h * tile_w;
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
                    let v = tile[y * tile_w + x];
                    *px = match &coloring {
                        Coloring::Diverging { map, scales } => map.color(v, scales.of_tile(t)),
                        Coloring::Gray => gray(v),
                    };
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
        self.atlas_cols = cols;
        self.clipped = match &coloring {
            Coloring::Diverging { scales, .. } if scales.is_held() => scales.clipped_fraction(&self.values, per),
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

    /// The largest colour scale in use (0 for grey tiles).
    pub fn scale(&self) -> f32 {
        self.scales().map_or(0.0, |s| s.range().1)
    }

    /// The colour scales in use (`None` for grey tiles).
    pub fn scales(&self) -> Option<&Scales> {
        match &self.coloring {
            Coloring::Diverging { scales, .. } => Some(scales),
            Coloring::Gray => None,
        }
    }

    /// The colour map in use (`None` for grey tiles).
    pub fn color_map(&self) -> Option<ColorMap> {
        match &self.coloring {
            Coloring::Diverging { map, .. } => Some(*map),
            Coloring::Gray => None,
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

    /// The value at row `y`, column `x` of tile `i`.
    pub fn value(&self, i: usize, y: usize, x: usize) -> Option<f32> {
        if i >= self.count || y >= self.tile_h || x >= self.tile_w {
            return None;
        }
        self.values.get(i * self.tile_h * self.tile_w + y * self.tile_w + x).copied()
    }

    /// The values of tile `i`.
    pub fn tile(&self, i: usize) -> &[f32] {
        let per = self.tile_h * self.tile_w;
        self.values.get(i * per..(i + 1) * per).unwrap_or(&[])
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
