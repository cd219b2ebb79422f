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

/// The legend of groups sharing a scale (a conv and the activation after it): the scales of
/// the first one computed, and the larger share of clipped values.
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

/// Draws the maps from `scene`. Returns the pixel clicked, for the pixel inspector.
pub fn feature_maps_ui(
    ui: &mut egui::Ui,
    snap: Option<&Snapshot>,
    scene: &Scene,
    view: &ViewState,
) -> Option<PixelRef> {
    let snap = snap?;
    let model = &*snap.model;
    let grads = scene.maps_are_gradients;
    let groups: Vec<&MapGroup> = scene.maps.iter().collect();
    if groups.is_empty() {
        ui.label("This network has no layer with feature maps (it flattens the image first).");
        return None;
    }
    // One legend per scale group (a conv with its activation, or a layer alone).
    let mut scale_groups: Vec<(usize, Vec<&MapGroup>)> = Vec::new();
    for g in &groups {
        let first = scale_group(model, g.layer);
        match scale_groups.iter_mut().find(|(f, _)| *f == first) {
            Some((_, members)) => members.push(g),
            None => scale_groups.push((first, vec![g])),
        }
    }
    ui.horizontal_wrapped(|ui| {
        help_button_ui(ui, HelpTopic::FeatureMaps);
        for (i, (first, members)) in scale_groups.iter().enumerate() {
            if i > 0 {
                ui.add_space(12.0);
            }
            let name = model.layer(*first).map_or("", |l| l.name.as_str());
            pair_legend_ui(ui, name, members, scene);
        }
    });
    ui.add_space(2.0);

    let mut clicked = None;
    if post_shaped(model, &groups) {
        let (first, rest) = groups.split_at(2);
        let (f1, f2) = (first[0].shape.0, rest[0].shape.0);
        let layout = MapLayout::choose(f1, f2, rest.len(), ui.available_size()).at_least(min_picture(ui.ctx()));
        egui::ScrollArea::vertical().id_salt("feature maps").auto_shrink([false, false]).show(ui, |ui| {
            let first_row = |ui: &mut egui::Ui, clicked: &mut Option<PixelRef>, groups: &[&MapGroup], grid: Grid| {
                for (i, g) in groups.iter().enumerate() {
                    if i > 0 {
                        ui.add_space(GROUP_GAP - ui.spacing().item_spacing.x);
                    }
                    *clicked = clicked.or(group_ui(ui, g, grid, grads, snap, view));
                }
            };
            let grid1 = Grid { rows: layout.rows1, cols: layout.cols1, tile: layout.tile, gap: GAP };
            let grid2 = Grid { rows: layout.rows2, cols: layout.cols2, tile: layout.tile, gap: GAP };
            if layout.one_row {
                ui.horizontal_top(|ui| {
                    first_row(ui, &mut clicked, first, grid1);
                    for g in rest {
                        ui.add_space(GROUP_GAP - ui.spacing().item_spacing.x);
                        clicked = clicked.or(group_ui(ui, g, grid2, grads, snap, view));
                    }
                });
            } else {
                ui.horizontal_top(|ui| first_row(ui, &mut clicked, first, grid1));
                for g in rest {
                    clicked = clicked.or(group_ui(ui, g, grid2, grads, snap, view));
                }
            }
        });
        return clicked;
    }
    // Any other network: the scale groups as rows (a conv beside its activation), each map
    // grid square-ish, the tiles as large as the rows allow.
    let avail = ui.available_size();
    let rows = scale_groups.len().max(1) as f32;
    let min = min_picture(ui.ctx());
    egui::ScrollArea::vertical().id_salt("feature maps").auto_shrink([false, false]).show(ui, |ui| {
        for (_, members) in &scale_groups {
            let per_row_h = (avail.y / rows - HEADER - 6.0).max(40.0);
            let per_group_w = (avail.x - GROUP_GAP * members.len() as f32) / members.len().max(1) as f32;
            ui.horizontal_top(|ui| {
                for (i, g) in members.iter().enumerate() {
                    if i > 0 {
                        ui.add_space(GROUP_GAP - ui.spacing().item_spacing.x);
                    }
                    let c = g.shape.0.max(1);
                    let cols = (c as f32).sqrt().ceil().max(1.0) as usize;
                    let rows = c.div_ceil(cols);
                    let mut grid = Grid::fit(rows, cols, egui::vec2(per_group_w, per_row_h), GAP, 4.0, 140.0);
                    grid.tile = grid.tile.max(min.min(per_group_w / cols as f32));
                    clicked = clicked.or(group_ui(ui, g, grid, grads, snap, view));
                }
            });
            ui.add_space(4.0);
        }
    });
    clicked
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

fn group_ui(
    ui: &mut egui::Ui,
    group: &MapGroup,
    grid: Grid,
    grads: bool,
    snap: &Snapshot,
    view: &ViewState,
) -> Option<PixelRef> {
    ui.vertical(|ui| {
        let count = group.tiles.count();
        let focused = view.is_focused(group.layer);
        let model = &*snap.model;
        let heading = RichText::new(title(model, group.layer, grads)).strong();
        ui.horizontal(|ui| {
            ui.label(if focused { heading.color(ui.visuals().selection.stroke.color) } else { heading });
            if count > 0 {
                let (h, w) = group.tiles.tile_size();
                ui.label(RichText::new(format!("{count} maps · {h}×{w}")).small().weak());
            }
        });
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
        if let Some(p) = feature_maps_ui(ui, ctx.shown, ctx.scene, ctx.view) {
            ctx.inspect = Some(p);
        }
    }
}
