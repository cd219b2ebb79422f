//! Every convolution's filter bank (F filters × C input channels of K×K kernels: the post's
//! conv1 has 16 × 1, its conv2 32 × 16), as weights, gradients or the change the last update
//! made. Kernels are K×K texels scaled up with crisp
//! (nearest) pixels.
//!
//! The first convolution of a colour network reads red, green and blue: each of its filters is
//! drawn as one small colour picture (zero is mid grey), as cs231n and CNN Explainer show them,
//! or, with "per channel", as its three K×K slices on the diverging map like any other bank.

use eframe::egui::{self, RichText};

use crate::engine::Phase;
use crate::trainer::Snapshot;
use crate::trainer::inspect::COLOUR_CHANNELS;
use crate::ui::support::colormap::{ColorMap, Legend, color_scale_ui, fmt_sig, legend_ui, rgb_legend_ui, row_fits};
use crate::ui::support::scene::Scene;
use crate::ui::support::textures::{Coloring, Grid, TileSet, tiles_ui};
use crate::ui::support::widgets::projector;
use crate::ui::tabs::feature_maps::scale_note;
use crate::ui::tabs::{Picture, Tab, TabContext, TabId};
use crate::ui::windows::help::{HelpTopic, help_button_ui};
use crate::ui::{FilterMode, ViewState};

/// The label of the toggle between RGB pictures and per-channel kernels.
pub const PER_CHANNEL: &str = "Per channel";

/// The buttons choosing weights, gradients or the last update, then (when a bank reads a colour
/// image, `colour`) the per-channel toggle, then the colour-scale selector.
pub fn filter_mode_ui(ui: &mut egui::Ui, view: &mut ViewState, colour: bool) {
    // On a 1280-pixel screen the row has no room for the word and the colour selector both.
    let mut labels = vec!["Show", "Weights", "Gradients", "Last update ΔW"];
    if colour {
        labels.push(PER_CHANNEL);
    }
    if row_fits(ui, &labels) {
        ui.label("Show");
    }
    ui.selectable_value(&mut view.filter_mode, FilterMode::Weights, "Weights");
    ui.selectable_value(&mut view.filter_mode, FilterMode::Gradients, "Gradients")
        .on_hover_text("∂L/∂W of this step: how the loss changes with each weight.");
    ui.selectable_value(&mut view.filter_mode, FilterMode::Delta, "Last update ΔW").on_hover_text(
        "What the last update added to each weight: with SGD −lr·gradient plus momentum, with Adam about lr \
             against the gradient's running mean.",
    );
    if colour {
        ui.separator();
        ui.toggle_value(&mut view.filters_per_channel, PER_CHANNEL).on_hover_text(
            "The first layer's filters read red, green and blue. Off: each filter as one colour picture \
             (mid grey is 0; a filter that looks red responds to red). On: each filter's red, green and \
             blue K×K slices apart, on the diverging colour map.",
        );
    }
    ui.separator();
    color_scale_ui(ui, view);
}

/// Draws every convolution's bank from `scene`, in forward order.
pub fn filters_ui(ui: &mut egui::Ui, snap: Option<&Snapshot>, scene: &Scene, view: &ViewState) {
    let Some(snap) = snap else { return };
    let (sym, what) = match scene.banks_mode {
        FilterMode::Weights => ("W", "weights"),
        FilterMode::Gradients => ("∂L/∂W", "gradients"),
        FilterMode::Delta => ("ΔW", "last update"),
    };
    let gap = 2.0;

    egui::ScrollArea::vertical().id_salt("filters").auto_shrink([false, false]).show(ui, |ui| {
        if scene.banks_mode == FilterMode::Delta {
            // The update phase made visible: how far it moved each layer's weights.
            crate::ui::panels::lesson::update_sizes_ui(ui, snap);
            ui.add_space(6.0);
        }
        if scene.banks.is_empty() {
            ui.label("This network has no convolution, so there are no filters to show.");
            return;
        }
        let avail = ui.available_size();
        let count = scene.banks.len();
        for (b, bank) in scene.banks.iter().enumerate() {
            let (f, c, k) = (bank.filters, bank.channels, bank.kernel);
            let shape = if bank.rgb {
                format!("{f} filters · 3×{k}×{k} (red, green, blue) as colour pictures")
            } else if bank.colour {
                format!("{f} filters (columns) × red, green, blue (rows) · {k}×{k}")
            } else if c == 1 {
                format!("{f} filters · {k}×{k}")
            } else {
                format!("{f} filters (columns) × {c} channels (rows) · {k}×{k}")
            };
            bank_header_ui(
                ui,
                &format!("{} {what}", bank.name),
                &shape,
                &bank.tiles,
                view.is_focused(bank.layer),
                scene.color_map,
                b == 0,
            );
            // The last bank gets the height left (in projector mode the whole width, and the
            // view scrolls: fitted to the height left, kernels would shrink as the text grows).
            let last = b + 1 == count;
            let height = if last && !projector(ui.ctx()) {
                (avail.y - ui.min_rect().height() - 8.0).max(100.0)
            } else {
                f32::INFINITY
            };
            let grid = if bank.rgb {
                Grid::fit(1, f, egui::vec2(avail.x, height), gap + 4.0, 16.0, 64.0)
            } else if c == 1 {
                Grid::fit(c, f, egui::vec2(avail.x, height), gap + 2.0, 16.0, 56.0)
            } else {
                Grid::fit(c, f, egui::vec2(avail.x, height), gap, 10.0, 48.0)
            };
            let name = format!("{sym} {}", bank.name);
            let tiles = &bank.tiles;
            let produced_by = phase_for(view.filter_mode, bank.layer);
            if bank.rgb {
                bank_ui(ui, snap, tiles, grid, &|_, col| Some(col), produced_by, &|t, y, x, _| {
                    rgb_texel_text(&name, tiles, t, y, x)
                });
            } else {
                let channel =
                    |t: usize| if bank.colour { rgb_name(t % c).to_string() } else { (t % c + 1).to_string() };
                bank_ui(ui, snap, tiles, grid, &|r, col| Some(col * c + r), produced_by, &|t, y, x, v| {
                    format!(
                        "{name}: filter {}, input channel {}\nrow {y}, column {x}\nvalue {}{}",
                        t / c + 1,
                        channel(t),
                        fmt_sig(v),
                        tile_scale_note(tiles, t, v)
                    )
                });
            }
            ui.add_space(8.0);
        }
    });
}

/// The phase that produces what a bank shows in `mode` (for the empty placeholder).
fn phase_for(mode: FilterMode, layer: usize) -> Option<Phase> {
    match mode {
        FilterMode::Weights => None,
        FilterMode::Gradients => Some(Phase::Backward(layer)),
        FilterMode::Delta => Some(Phase::Update),
    }
}

/// `red`, `green` or `blue`.
fn rgb_name(c: usize) -> &'static str {
    COLOUR_CHANNELS.get(c).copied().unwrap_or("?")
}

/// The hover text of a texel of an RGB filter: its three weights and what its colour means.
fn rgb_texel_text(name: &str, tiles: &TileSet, t: usize, y: usize, x: usize) -> String {
    let values = tiles.texel(t, y, x);
    let weights: Vec<String> =
        values.iter().enumerate().map(|(c, v)| format!("{} {}", rgb_name(c), fmt_sig(*v))).collect();
    let scale = tiles.scales().map_or(0.0, |s| s.of_tile(t));
    format!(
        "{name}: filter {}\nrow {y}, column {x}\n{}\neach colour at ½ + ½·w / {}: mid grey is 0",
        t + 1,
        weights.join(", "),
        fmt_sig(scale)
    )
}

fn tile_scale_note(bank: &TileSet, tile: usize, value: f32) -> String {
    bank.scales().map(|s| scale_note(s.mode(), s.is_held(), s.of_tile(tile), value)).unwrap_or_default()
}

/// A bank's title, shape and legend; `help` adds the panel's "?" (once per panel).
fn bank_header_ui(
    ui: &mut egui::Ui,
    title: &str,
    shape: &str,
    bank: &TileSet,
    focused: bool,
    map: ColorMap,
    help: bool,
) {
    ui.horizontal_wrapped(|ui| {
        let heading = RichText::new(title).strong();
        ui.label(if focused { heading.color(ui.visuals().selection.stroke.color) } else { heading });
        if help {
            help_button_ui(ui, HelpTopic::Filters);
        }
        ui.label(RichText::new(shape).small().weak());
        if let (false, Some(scales)) = (bank.is_empty(), bank.scales()) {
            ui.add_space(8.0);
            let legend = Legend { what: "", scales, clipped: bank.clipped_fraction(), map };
            if matches!(bank.coloring(), Coloring::SignedRgb { .. }) {
                rgb_legend_ui(ui, &legend);
            } else {
                legend_ui(ui, &legend);
            }
        }
    });
}

/// One bank on `grid` (columns = filters; rows = input channels, or one row of RGB pictures);
/// `tile_at(row, column)` is the tile a cell shows.
fn bank_ui(
    ui: &mut egui::Ui,
    snap: &Snapshot,
    bank: &TileSet,
    grid: Grid,
    tile_at: &dyn Fn(usize, usize) -> Option<usize>,
    produced_by: Option<Phase>,
    describe: &dyn Fn(usize, usize, usize, f32) -> String,
) {
    if bank.is_empty() {
        let text = match produced_by {
            Some(Phase::Update) => "no update yet: computed in update".to_string(),
            Some(p) => format!("not this step yet: computed in {}", snap.model.phase_label(p)),
            None => "no weights".to_string(),
        };
        crate::ui::support::widgets::placeholder_ui(ui, grid.size().max(egui::vec2(240.0, 40.0)), &text);
        return;
    }
    tiles_ui(ui, bank, grid, tile_at, describe);
}

/// The tab's stable name.
pub const ID: TabId = TabId::new("Filters");

/// Every conv layer's filter bank as weights, gradients or the last update.
pub struct FiltersTab;

impl Tab for FiltersTab {
    fn id(&self) -> TabId {
        ID
    }

    fn name(&self) -> &'static str {
        "Filters"
    }

    fn key(&self) -> Option<egui::Key> {
        Some(egui::Key::Num2)
    }

    fn help_topic(&self) -> HelpTopic {
        HelpTopic::Filters
    }

    fn picture(&self) -> Option<Picture> {
        Some(Picture { label: "the filters", file_stem: "filters" })
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        let colour = ctx.scene.banks.iter().any(|b| b.colour);
        ui.horizontal(|ui| filter_mode_ui(ui, ctx.view, colour));
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        filters_ui(ui, ctx.snapshot, ctx.scene, ctx.view);
    }
}
