//! Feature maps of the selected digit: every conv, pool and activation layer before `flatten`
//! (the post's conv1 before and after its ReLU, and conv2) — or, in the backward pass, the
//! gradients of the loss with respect to the same maps.

use eframe::egui::{self, RichText, Stroke, StrokeKind};

use crate::engine::Phase;
use crate::engine::model::LayerSpec;
use crate::trainer::{ModelView, PixelRef, Snapshot};
use crate::ui::support::colormap::{Legend, color_scale_ui, fmt_sig, legend_ui, row_fits};
use crate::ui::support::scene::{MapGroup, Scene, scale_group};
use crate::ui::support::textures::{Grid, tiles_ui};
use crate::ui::support::widgets::{min_picture, placeholder_ui};
use crate::ui::tabs::{Picture, Tab, TabContext, TabId};
use crate::ui::windows::help::{HelpTopic, help_button_ui};
use crate::ui::{MapMode, ScaleMode, ViewState};

/// A group's heading: `conv1 · before ReLU`, `pool1 · max 2×2`, `∂L/∂relu2`.
fn title(model: &ModelView, layer: usize, gradients: bool) -> String {
    let Some(l) = model.layer(layer) else { return String::new() };
    let name = &l.name;
    if gradients {
        return format!("∂L/∂{name}");
    }
    let function = |spec: LayerSpec| match spec {
        LayerSpec::Relu => "ReLU",
        LayerSpec::Tanh => "tanh",
        LayerSpec::Sigmoid => "sigmoid",
        _ => "",
    };
    let what = match l.spec {
        LayerSpec::Conv { .. } => match model.layer(layer + 1) {
            Some(next) if next.spec.is_activation() => format!("before {}", function(next.spec)),
            _ if model.name.as_deref() == Some("post") => "no ReLU after it in the post".to_string(),
            _ => "no activation after it".to_string(),
        },
        LayerSpec::MaxPool { k, .. } => format!("max of each {k}×{k}"),
        LayerSpec::AvgPool { k, .. } => format!("mean of each {k}×{k}"),
        spec if spec.is_activation() => format!("after {}", function(spec)),
        _ => String::new(),
    };
    if what.is_empty() { name.clone() } else { format!("{name} · {what}") }
}

/// The phase that fills a group, for the "not computed yet" placeholder: its forward phase, or
/// for its gradient the backward phase of the layer after it.
fn produced_by(model: &ModelView, layer: usize, gradients: bool) -> Phase {
    if !gradients {
        Phase::Forward(layer)
    } else if layer + 1 < model.plan.layers.len() {
        Phase::Backward(layer + 1)
    } else {
        Phase::LossBackward
    }
}

/// The buttons choosing activations, gradients or "follow the phase", then the colour-scale
/// selector.
pub fn map_mode_ui(ui: &mut egui::Ui, view: &mut ViewState) {
    // On a 1280-pixel screen the row has no room for the word and the colour selector both.
    if row_fits(ui, &["Show", "Follow phase", "Activations", "Gradients"]) {
        ui.label("Show");
    }
    ui.selectable_value(&mut view.map_mode, MapMode::Auto, "Follow phase")
        .on_hover_text("Activations during the forward pass, gradients once the backward pass reached them.");
    ui.selectable_value(&mut view.map_mode, MapMode::Activations, "Activations");
    ui.selectable_value(&mut view.map_mode, MapMode::Gradients, "Gradients");
    ui.separator();
    color_scale_ui(ui, view);
}

/// The legend of groups sharing a scale (a conv and the activations and pools after it): the
/// scales of the first one computed, and the larger share of clipped values.
fn pair_legend_ui(ui: &mut egui::Ui, what: &str, pair: &[&MapGroup], scene: &Scene) {
    let computed: Vec<&&MapGroup> = pair.iter().filter(|g| !g.tiles.is_empty()).collect();
    let Some(scales) = computed.first().and_then(|g| g.tiles.scales()) else { return };
    let clipped = computed.iter().map(|g| g.tiles.clipped_fraction()).fold(0.0, f32::max);
    legend_ui(ui, &Legend { what, scales, clipped, map: scene.color_map });
    crate::ui::panels::lesson::tiny_scale_ui(ui, scales.range().1, scene.maps_are_gradients);
}

/// True for the post's arrangement: a conv and its activation, then a conv (and perhaps its
/// activation), all of one size — drawn as [`MapLayout`] arranges them.
fn post_shaped(model: &ModelView, groups: &[&MapGroup]) -> bool {
    let kinds: Vec<&str> = groups.iter().filter_map(|g| model.layer(g.layer)).map(|l| l.spec.kind()).collect();
    let same_size = groups.windows(2).all(|w| (w[0].shape.1, w[0].shape.2) == (w[1].shape.1, w[1].shape.2));
    same_size
        && matches!(kinds[..], ["conv", a, "conv"] | ["conv", a, "conv", _] if a != "conv")
        && groups
            .iter()
            .skip(1)
            .all(|g| model.layer(g.layer).is_some_and(|l| l.spec.kind() != "maxpool" && l.spec.kind() != "avgpool"))
}

/// The groups sharing a colour scale ([`scale_group`]), in forward order, each with the first
/// layer of its group.
fn scale_groups<'a>(model: &ModelView, groups: &[&'a MapGroup]) -> Vec<(usize, Vec<&'a MapGroup>)> {
    let mut out: Vec<(usize, Vec<&MapGroup>)> = Vec::new();
    for g in groups {
        let first = scale_group(model, g.layer);
        match out.iter_mut().find(|(f, _)| *f == first) {
            Some((_, members)) => members.push(g),
            None => out.push((first, vec![g])),
        }
    }
    out
}

/// The "?" and one legend per scale group of `groups`, named by its layers (`conv1–pool1`).
fn legends_ui(ui: &mut egui::Ui, model: &ModelView, groups: &[&MapGroup], scene: &Scene, post: bool) {
    ui.horizontal_wrapped(|ui| {
        help_button_ui(ui, HelpTopic::FeatureMaps);
        for (i, (first, members)) in scale_groups(model, groups).iter().enumerate() {
            if i > 0 {
                ui.add_space(12.0);
            }
            // The post's legends keep their names: conv1 (with relu1) and conv2.
            let name = match (members.first(), members.last()) {
                (Some(one), Some(last)) if !post && members.len() > 1 => format!("{}–{}", one.name, last.name),
                (Some(one), _) if !post => one.name.clone(),
                _ => model.layer(*first).map_or_else(String::new, |l| l.name.clone()),
            };
            pair_legend_ui(ui, &name, members, scene);
        }
    });
}

/// The layer picker of a network with many map layers: "all", then a toggle per layer (a
/// little apart before each convolution, so that each stage reads as one).
fn layer_picker_ui(ui: &mut egui::Ui, model: &ModelView, groups: &[&MapGroup], view: &mut ViewState) {
    let key = model.argument();
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let everything = view.picked_layers(&key).is_none();
    ui.horizontal_wrapped(|ui| {
        ui.label("Layers");
        let r = ui.selectable_label(everything, "all").on_hover_text("Show the maps of every layer.");
        if r.clicked() {
            view.show_all_layers(&key);
        }
        for (i, g) in groups.iter().enumerate() {
            if i > 0 && model.layer(g.layer).is_some_and(|l| matches!(l.spec, LayerSpec::Conv { .. })) {
                ui.add_space(8.0);
            }
            let on = !everything && view.shows_layer(&key, &g.name);
            let (c, h, w) = g.shape;
            let tip = if everything {
                format!("{c} maps of {h}×{w}. Click to show this layer alone; then click others to add them.")
            } else if on {
                format!("{c} maps of {h}×{w}. Click to hide it.")
            } else {
                format!("{c} maps of {h}×{w}. Click to show it too.")
            };
            if ui.selectable_label(on, &g.name).on_hover_text(tip).clicked() {
                view.toggle_layer(&key, &names, &g.name);
            }
        }
    });
}

/// Draws the maps from `scene`; a network with many map layers gets a layer picker, whose
/// choice goes into `view`. Returns the pixel clicked, for the pixel inspector.
pub fn feature_maps_ui(
    ui: &mut egui::Ui,
    snap: Option<&Snapshot>,
    scene: &Scene,
    view: &mut ViewState,
) -> Option<PixelRef> {
    let snap = snap?;
    let model = &*snap.model;
    let grads = scene.maps_are_gradients;
    let groups: Vec<&MapGroup> = scene.maps.iter().collect();
    if groups.is_empty() {
        ui.label("This network has no layer with feature maps (it flattens the image first).");
        return None;
    }
    if !post_shaped(model, &groups) {
        return any_network_ui(ui, snap, scene, view, &groups);
    }
    legends_ui(ui, model, &groups, scene, true);
    ui.add_space(2.0);

    let mut clicked = None;
    let (first, rest) = groups.split_at(2);
    let (f1, f2) = (first[0].shape.0, rest[0].shape.0);
    let layout = MapLayout::choose(f1, f2, rest.len(), ui.available_size()).at_least(min_picture(ui.ctx()));
    egui::ScrollArea::vertical().id_salt("feature maps").auto_shrink([false, false]).show(ui, |ui| {
        let first_row = |ui: &mut egui::Ui, clicked: &mut Option<PixelRef>, groups: &[&MapGroup], grid: Grid| {
            for (i, g) in groups.iter().enumerate() {
                if i > 0 {
                    ui.add_space(GROUP_GAP - ui.spacing().item_spacing.x);
                }
                *clicked = clicked.or(group_ui(ui, g, grid, grads, snap, view, None));
            }
        };
        let grid1 = Grid { rows: layout.rows1, cols: layout.cols1, tile: layout.tile, gap: GAP };
        let grid2 = Grid { rows: layout.rows2, cols: layout.cols2, tile: layout.tile, gap: GAP };
        if layout.one_row {
            ui.horizontal_top(|ui| {
                first_row(ui, &mut clicked, first, grid1);
                for g in rest {
                    ui.add_space(GROUP_GAP - ui.spacing().item_spacing.x);
                    clicked = clicked.or(group_ui(ui, g, grid2, grads, snap, view, None));
                }
            });
        } else {
            ui.horizontal_top(|ui| first_row(ui, &mut clicked, first, grid1));
            for g in rest {
                clicked = clicked.or(group_ui(ui, g, grid2, grads, snap, view, None));
            }
        }
    });
    clicked
}

/// Any network but the post's: the picker, the legends of the layers shown, and their maps
/// flowed in rows, one stage (a conv with what follows it) per row where that reads best.
fn any_network_ui(
    ui: &mut egui::Ui,
    snap: &Snapshot,
    scene: &Scene,
    view: &mut ViewState,
    groups: &[&MapGroup],
) -> Option<PixelRef> {
    let model = &*snap.model;
    let grads = scene.maps_are_gradients;
    if groups.len() > 2 {
        layer_picker_ui(ui, model, groups, view);
    }
    let key = model.argument();
    let shown: Vec<&MapGroup> = groups.iter().copied().filter(|g| view.shows_layer(&key, &g.name)).collect();
    // A remembered pick that names no layer of this network (cannot happen through the picker).
    let shown = if shown.is_empty() { groups.to_vec() } else { shown };
    legends_ui(ui, model, &shown, scene, false);
    ui.add_space(2.0);

    let title_font = egui::TextStyle::Body.resolve(ui.style());
    let small_font = egui::TextStyle::Small.resolve(ui.style());
    let width_of = |text: String, font: &egui::FontId| {
        ui.painter().layout_no_wrap(text, font.clone(), egui::Color32::WHITE).size().x
    };
    let specs: Vec<BlockSpec> = shown
        .iter()
        .enumerate()
        .map(|(i, g)| BlockSpec {
            maps: g.shape.0,
            side: g.shape.1.max(g.shape.2),
            // Both titles' widths, so that the maps keep their size when gradients replace activations.
            header_w: width_of(title(model, g.layer, false), &title_font)
                .max(width_of(title(model, g.layer, true), &title_font))
                .max(width_of(shape_text(g), &small_font)),
            new_row: i > 0 && scale_group(model, g.layer) != scale_group(model, shown[i - 1].layer),
        })
        .collect();
    let header_h = ui.text_style_height(&egui::TextStyle::Body)
        + ui.text_style_height(&egui::TextStyle::Small)
        + 2.0 * ui.spacing().item_spacing.y;
    let space = FlowSpace {
        avail: ui.available_size() - egui::vec2(4.0, 4.0),
        header_h,
        min_tile: min_picture(ui.ctx()),
        max_tile: MAX_TILE,
    };
    let layout = FlowLayout::choose(&specs, space);
    let mut clicked = None;
    egui::ScrollArea::vertical().id_salt("feature maps").auto_shrink([false, false]).show(ui, |ui| {
        for shelf in 0..layout.shelves() {
            ui.horizontal_top(|ui| {
                for (i, (g, b)) in shown.iter().zip(&layout.blocks).enumerate().filter(|(_, (_, b))| b.shelf == shelf) {
                    if i > 0 && layout.blocks[i - 1].shelf == shelf {
                        ui.add_space(GROUP_GAP - ui.spacing().item_spacing.x);
                    }
                    let grid = Grid { rows: b.rows, cols: b.cols, tile: b.tile, gap: GAP };
                    clicked = clicked.or(group_ui(ui, g, grid, grads, snap, view, Some(b.width)));
                }
            });
            ui.add_space(ROW_GAP - ui.spacing().item_spacing.y);
        }
    });
    clicked
}

/// A group's shape as its header's second line says it: `6 maps · 14×14`.
fn shape_text(g: &MapGroup) -> String {
    let (c, h, w) = g.shape;
    format!("{c} {} · {h}×{w}", if c == 1 { "map" } else { "maps" })
}

/// What the arrangement of [`FlowLayout`] needs to know of one group of maps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSpec {
    /// Maps in the group.
    pub maps: usize,
    /// A map's larger side, in values.
    pub side: usize,
    /// Width of its header, in points.
    pub header_w: f32,
    /// It starts a stage (a conv with the activations and pools after it): it goes on a new
    /// row unless the maps come out much larger with the rows filled.
    pub new_row: bool,
}

/// The room a [`FlowLayout`] has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowSpace {
    /// Width and height, in points.
    pub avail: egui::Vec2,
    /// Height of a group's header.
    pub header_h: f32,
    /// The smallest side of the largest maps ([`min_picture`]); smaller maps may get less.
    pub min_tile: f32,
    /// The largest side of any map.
    pub max_tile: f32,
}

/// One group's place in a [`FlowLayout`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowBlock {
    /// The row of groups (shelf) it is on, from 0.
    pub shelf: usize,
    /// Rows of maps in its grid.
    pub rows: usize,
    /// Columns of maps.
    pub cols: usize,
    /// Side of a map, in points.
    pub tile: f32,
    /// Width of the group with its header, in points.
    pub width: f32,
}

/// The groups of maps of any network flowed left to right in rows, each group a grid of its
/// maps under a header. One zoom for all: the largest maps as large as the room allows, and
/// smaller maps smaller, but less than in proportion (a side 5 times shorter gets about 2.6
/// times fewer points, and never less than 0.6 of the minimum), so that a 5×5 map is neither
/// blown up to a 28×28 one's size nor lost beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowLayout {
    /// One per group, in order.
    pub blocks: Vec<FlowBlock>,
    /// Whether it fits the room (else the view scrolls).
    pub fits: bool,
}

/// Rows and columns of a grid of `maps` about `aspect` times as wide as tall: of the three
/// column counts from the one that ratio gives, the one leaving the fewest empty cells (32
/// maps as 8 × 4 rather than 6 × 6 with a row of two).
fn grid_shape(maps: usize, aspect: f32) -> (usize, usize) {
    let maps = maps.max(1);
    let first = ((maps as f32 * aspect).sqrt().ceil() as usize).clamp(1, maps);
    let cols = (first..=(first + 2).min(maps)).min_by_key(|c| maps.div_ceil(*c) * c - maps).unwrap_or(first);
    (maps.div_ceil(cols), cols)
}

/// Gap between rows of groups.
const ROW_GAP: f32 = 10.0;
/// The largest side of a map, in points.
const MAX_TILE: f32 = 140.0;
/// How a map's side in points follows its side in values: `points ∝ side^SIZE_EXPONENT`.
const SIZE_EXPONENT: f32 = 0.6;

impl FlowLayout {
    /// The arrangement of `blocks` with the largest maps that fits `space`: one zoom for all,
    /// grids square-ish or two or four times as wide (or half) as tall, rows by stage or
    /// filled; if nothing fits, the smallest maps allowed (the view scrolls).
    pub fn choose(blocks: &[BlockSpec], space: FlowSpace) -> Self {
        let largest = blocks.iter().map(|b| b.side).max().unwrap_or(1).max(1) as f32;
        let relative = |side: usize| (side.max(1) as f32 / largest).powf(SIZE_EXPONENT);
        let min_tile = space.min_tile.min(space.max_tile).max(1.0);
        let arrange = |top: f32, aspect: f32, by_stage: bool| {
            let placed: Vec<FlowBlock> = blocks
                .iter()
                .map(|b| {
                    let r = relative(b.side);
                    let tile = (top * r).max(min_tile * r.max(0.6)).min(space.max_tile).floor().max(1.0);
                    let (rows, cols) = grid_shape(b.maps, aspect);
                    let grid_w = cols as f32 * tile + (cols - 1) as f32 * GAP;
                    FlowBlock { shelf: 0, rows, cols, tile, width: grid_w.max(b.header_w) }
                })
                .collect();
            Self::shelve(blocks, placed, space, by_stage)
        };
        let mut best: Option<(f32, Self)> = None;
        for by_stage in [true, false] {
            let mut top = space.max_tile.floor();
            while top >= min_tile {
                let found = [1.0, 2.0, 0.5, 4.0].into_iter().map(|a| arrange(top, a, by_stage)).find(|l| l.fits);
                if let Some(l) = found {
                    // Rows by stage read best: filled rows only when their maps come out much larger.
                    let better = best.as_ref().is_none_or(|(t, _)| top > 1.3 * *t);
                    if better {
                        best = Some((top, l));
                    }
                    break;
                }
                top -= 1.0;
            }
        }
        best.map(|(_, l)| l).unwrap_or_else(|| arrange(min_tile, 1.0, true))
    }

    /// Puts `placed` on rows (a new one where a stage starts when `by_stage`, and where the
    /// width runs out) and says whether it all fits.
    fn shelve(specs: &[BlockSpec], mut placed: Vec<FlowBlock>, space: FlowSpace, by_stage: bool) -> Self {
        let (mut shelf, mut x, mut shelf_h, mut total_h) = (0, 0.0_f32, 0.0_f32, 0.0_f32);
        let mut fits = true;
        for (i, (b, spec)) in placed.iter_mut().zip(specs).enumerate() {
            let h = space.header_h + b.rows as f32 * b.tile + (b.rows - 1) as f32 * GAP;
            fits &= b.width <= space.avail.x;
            if i > 0 && ((by_stage && spec.new_row) || x + GROUP_GAP + b.width > space.avail.x) {
                shelf += 1;
                total_h += shelf_h + ROW_GAP;
                x = b.width;
                shelf_h = h;
            } else {
                x += if i > 0 { GROUP_GAP } else { 0.0 } + b.width;
                shelf_h = shelf_h.max(h);
            }
            b.shelf = shelf;
        }
        total_h += shelf_h;
        Self { blocks: placed, fits: fits && total_h <= space.avail.y }
    }

    /// Rows of groups.
    pub fn shelves(&self) -> usize {
        self.blocks.last().map_or(0, |b| b.shelf + 1)
    }
}

/// Gap between maps, and between groups of maps, in points.
const GAP: f32 = 3.0;
const GROUP_GAP: f32 = 18.0;
/// Height of a group's heading line.
const HEADER: f32 = 22.0;

/// How the groups of maps are arranged: conv1 and relu1 in square grids side by side, and
/// conv2 (with its ReLU) either below them in twice as many columns, so that both rows are
/// equally wide, or, when the view is wide and short, on the same row in as many rows as conv1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapLayout {
    /// Rows and columns of conv1's and relu1's grids.
    pub rows1: usize,
    /// See `rows1`.
    pub cols1: usize,
    /// Rows and columns of each conv2 grid.
    pub rows2: usize,
    /// See `rows2`.
    pub cols2: usize,
    /// Every group on one row.
    pub one_row: bool,
    /// Side of a map, in points.
    pub tile: f32,
}

impl MapLayout {
    /// The arrangement of `f1` conv1 maps (twice: before and after the ReLU) and `conv2_groups`
    /// groups of `f2` conv2 maps that gives the largest maps in `avail` (points).
    pub fn choose(f1: usize, f2: usize, conv2_groups: usize, avail: egui::Vec2) -> Self {
        let cols1 = (f1 as f32).sqrt().ceil().max(1.0) as usize;
        let rows1 = f1.div_ceil(cols1).max(1);
        let n2 = conv2_groups as f32;
        let fit = |cols: usize, rows: usize, groups: f32, headers: f32| {
            let w = (avail.x - groups * GROUP_GAP - cols.saturating_sub(1) as f32 * GAP) / cols.max(1) as f32;
            let h = (avail.y - headers * HEADER - 10.0 - rows.saturating_sub(1) as f32 * GAP) / rows.max(1) as f32;
            w.min(h).clamp(1.0, 140.0).floor()
        };
        // Stacked: conv2 below, in twice conv1's columns.
        let stacked_cols2 = cols1 * 2;
        let stacked_rows2 = f2.div_ceil(stacked_cols2);
        let stacked = Self {
            rows1,
            cols1,
            rows2: stacked_rows2,
            cols2: stacked_cols2,
            one_row: false,
            tile: fit(stacked_cols2, rows1 + stacked_rows2 * conv2_groups, 1.0, 1.0 + n2),
        };
        // One row: conv2 in conv1's rows.
        let row_cols2 = f2.div_ceil(rows1);
        let one_row = Self {
            rows1,
            cols1,
            rows2: rows1,
            cols2: row_cols2,
            one_row: true,
            tile: fit(2 * cols1 + row_cols2 * conv2_groups, rows1, 1.0 + n2, 1.0),
        };
        if one_row.tile > stacked.tile { one_row } else { stacked }
    }

    /// The same arrangement with maps of at least `min` points (the view scrolls if they no
    /// longer fit).
    pub fn at_least(self, min: f32) -> Self {
        Self { tile: self.tile.max(min), ..self }
    }
}

/// One group: its header, then its maps on `grid` (or a placeholder saying which phase
/// computes them). `stacked` is the width of a two-line header (name, then shape) of the
/// general layout; `None` keeps the post's one-line header.
fn group_ui(
    ui: &mut egui::Ui,
    group: &MapGroup,
    grid: Grid,
    grads: bool,
    snap: &Snapshot,
    view: &ViewState,
    stacked: Option<f32>,
) -> Option<PixelRef> {
    ui.vertical(|ui| {
        let count = group.tiles.count();
        let focused = view.is_focused(group.layer);
        let model = &*snap.model;
        let heading = RichText::new(title(model, group.layer, grads)).strong();
        let heading = if focused { heading.color(ui.visuals().selection.stroke.color) } else { heading };
        match stacked {
            Some(width) => {
                ui.set_min_width(width);
                ui.label(heading);
                ui.label(RichText::new(shape_text(group)).small().weak());
            }
            None => {
                ui.horizontal(|ui| {
                    ui.label(heading);
                    if count > 0 {
                        let (h, w) = group.tiles.tile_size();
                        ui.label(RichText::new(format!("{count} maps · {h}×{w}")).small().weak());
                    }
                });
            }
        }
        if group.tiles.is_empty() {
            let phase = produced_by(model, group.layer, grads);
            placeholder_ui(ui, grid.size(), &format!("computed in {}", model.phase_label(phase)));
            return None;
        }
        let layer = group.layer;
        let name = title(model, layer, grads);
        let scales = group.tiles.scales();
        let (response, hovered) = tiles_ui(ui, &group.tiles, grid, &|r, c| Some(r * grid.cols + c), &|t, y, x, v| {
            let mut text =
                format!("{name}, map {t}\nrow {y}, column {x}\nvalue {}\nclick: how it was computed", fmt_sig(v));
            if let Some(s) = scales {
                text.push_str(&scale_note(s.mode(), s.is_held(), s.of_tile(t), v));
            }
            text
        });
        if focused {
            ui.painter().rect_stroke(
                response.rect.expand(2.0),
                2.0,
                Stroke::new(2.0, ui.visuals().selection.stroke.color),
                StrokeKind::Outside,
            );
        }
        let (t, y, x) = hovered.filter(|_| response.clicked())?;
        Some(PixelRef { layer, channel: t, y, x })
    })
    .inner
}

/// The line a tile's hover text adds about its colour scale: the map's own scale, and whether
/// this value is beyond a held one.
pub fn scale_note(mode: ScaleMode, held: bool, scale: f32, value: f32) -> String {
    let mut note = match mode {
        ScaleMode::PerMap => format!("\nthis map's scale ±{}", fmt_sig(scale)),
        ScaleMode::PerLayer => String::new(),
    };
    if held && value.abs() > scale {
        note.push_str(&format!("\nbeyond the held scale ±{}: drawn at full colour", fmt_sig(scale)));
    }
    note
}

/// The tab's stable name.
pub const ID: TabId = TabId::new("FeatureMaps");

/// The selected digit's feature maps, or their gradients; a click on a pixel opens the
/// inspector.
pub struct FeatureMapsTab;

impl Tab for FeatureMapsTab {
    fn id(&self) -> TabId {
        ID
    }

    fn name(&self) -> &'static str {
        "Feature maps"
    }

    fn key(&self) -> Option<egui::Key> {
        Some(egui::Key::Num1)
    }

    fn help_topic(&self) -> HelpTopic {
        HelpTopic::FeatureMaps
    }

    fn picture(&self) -> Option<Picture> {
        Some(Picture { label: "the feature maps", file_stem: "feature-maps" })
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        ui.horizontal(|ui| map_mode_ui(ui, ctx.view));
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        if let Some(p) = feature_maps_ui(ui, ctx.shown, ctx.scene, &mut *ctx.view) {
            ctx.inspect = Some(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(maps: usize, side: usize, new_row: bool) -> BlockSpec {
        BlockSpec { maps, side, header_w: 150.0, new_row }
    }

    /// LeNet's six groups: conv1, relu1, pool1 | conv2, relu2, pool2.
    fn lenet() -> Vec<BlockSpec> {
        vec![
            spec(6, 28, false),
            spec(6, 28, false),
            spec(6, 14, false),
            spec(16, 10, true),
            spec(16, 10, false),
            spec(16, 5, false),
        ]
    }

    fn space(w: f32, h: f32, min_tile: f32) -> FlowSpace {
        FlowSpace { avail: egui::vec2(w, h), header_h: 34.0, min_tile, max_tile: MAX_TILE }
    }

    #[test]
    fn lenet_fits_the_maps_area_of_a_1280_window_one_stage_per_row() {
        let l = FlowLayout::choose(&lenet(), space(585.0, 380.0, 18.0));
        assert!(l.fits, "{l:?}");
        let shelves: Vec<usize> = l.blocks.iter().map(|b| b.shelf).collect();
        assert_eq!(shelves, [0, 0, 0, 1, 1, 1], "conv1 relu1 pool1 on one row, conv2 relu2 pool2 on the next");
        let tile = |i: usize| l.blocks[i].tile;
        assert!(tile(0) >= 40.0, "the 28×28 maps are readable: {}", tile(0));
        assert!(tile(0) > tile(2) && tile(2) > tile(3) && tile(3) > tile(5), "smaller maps are drawn smaller");
        assert!(tile(5) < tile(0) / 2.0, "5×5 maps are not blown up to a 28×28 one's size");
        assert!(tile(5) >= 0.6 * 18.0, "nor shrunk below a readable size");
    }

    #[test]
    fn grids_leave_few_empty_cells() {
        assert_eq!(grid_shape(32, 1.0), (4, 8));
        assert_eq!(grid_shape(16, 1.0), (4, 4));
        assert_eq!(grid_shape(6, 1.0), (2, 3));
        assert_eq!(grid_shape(6, 4.0), (1, 6));
        assert_eq!(grid_shape(1, 0.5), (1, 1));
    }

    #[test]
    fn one_group_of_small_maps_alone_gets_the_room() {
        let l = FlowLayout::choose(&[spec(16, 5, false)], space(585.0, 380.0, 18.0));
        assert!(l.fits && l.blocks[0].tile >= 60.0, "{l:?}");
    }

    #[test]
    fn what_cannot_fit_keeps_its_minimum_size_and_scrolls() {
        let l = FlowLayout::choose(&lenet(), space(300.0, 120.0, 42.0));
        assert!(!l.fits);
        assert_eq!(l.blocks[0].tile, 42.0, "projector mode's minimum for the largest maps");
        assert!(l.blocks.iter().all(|b| b.width <= 300.0 || b.cols == 1), "{l:?}");
    }

    #[test]
    fn a_wide_short_view_fills_its_rows_when_that_makes_the_maps_much_larger() {
        let blocks = [spec(4, 14, false), spec(4, 14, false), spec(4, 7, true), spec(4, 7, false)];
        let l = FlowLayout::choose(&blocks, space(1400.0, 160.0, 18.0));
        assert!(l.fits);
        assert_eq!(l.shelves(), 1, "{l:?}");
    }
}
