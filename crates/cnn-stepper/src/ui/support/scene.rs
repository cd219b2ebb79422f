//! The textures drawn from the latest snapshot that several views share: the batch's digits,
//! the selected digit's feature maps (one group per layer with maps) and each convolution's
//! filter bank. Rebuilt only when a new snapshot arrives or a view choice that changes their
//! colours does.

use eframe::egui;

use crate::engine::model::{LayerSpec, Shape};
use crate::trainer::inspect::reads_image_channels;
use crate::trainer::{ModelView, Snapshot};
use crate::ui::support::colormap::{ColorMap, HeldScales, Scales};
use crate::ui::support::textures::{Coloring, TileSet};
use crate::ui::{FilterMode, ScaleMode, ViewState};

/// One group of feature maps as drawn: its tiles and what they are.
pub struct MapGroup {
    /// The layer whose output (or output gradient) this is: its position in the line.
    pub layer: usize,
    /// The layer's student name (`conv1`, `pool1`).
    pub name: String,
    /// Maps, height and width.
    pub shape: (usize, usize, usize),
    /// The tiles.
    pub tiles: TileSet,
}

/// One convolution's kernels as drawn.
pub struct Bank {
    /// The conv layer's position in the line.
    pub layer: usize,
    /// Its student name.
    pub name: String,
    /// Filters F.
    pub filters: usize,
    /// Input channels C (the bank has F × C kernels).
    pub channels: usize,
    /// Kernel side K.
    pub kernel: usize,
    /// True when the convolution reads a colour image's red, green and blue (the first one of
    /// a colour network): its filters can be drawn as RGB pictures.
    pub colour: bool,
    /// True when the tiles are RGB pictures, one per filter (tile `f`, `3 × K × K`); else
    /// kernel `(f, c)` is tile `f·C + c` on the diverging map.
    pub rgb: bool,
    /// The tiles.
    pub tiles: TileSet,
}

impl Bank {
    /// The tile of filter `f`, input channel `c` (the filter's one RGB tile when drawn in RGB).
    pub fn tile_of(&self, f: usize, c: usize) -> usize {
        if self.rgb { f } else { f * self.channels + c }
    }
}

/// Everything drawn from textures, rebuilt only when a new snapshot arrives or the view mode
/// changes.
pub struct Scene {
    /// The batch's images (grey or colour, as the data is).
    pub batch: TileSet,
    /// The maps of every layer whose output is a stack of maps (conv, pool and activations
    /// before `flatten`), in forward order.
    pub maps: Vec<MapGroup>,
    /// Whether `maps` hold gradients.
    pub maps_are_gradients: bool,
    /// Each convolution's kernels in the current filter mode, in forward order.
    pub banks: Vec<Bank>,
    /// The filter mode the banks were built for.
    pub banks_mode: FilterMode,
    /// The colour map the tiles were drawn with.
    pub color_map: ColorMap,
    held: HeldScales,
    built_for: Option<SceneKey>,
    /// The network the groups were made for (rebuilt when it changes).
    model: Option<std::sync::Arc<ModelView>>,
}

/// What the textures of a [`Scene`] depend on besides the snapshot's generation.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SceneKey {
    generation: u64,
    gradients: bool,
    filter_mode: FilterMode,
    per_channel: bool,
    scale_mode: ScaleMode,
    hold: bool,
    color_map: ColorMap,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            batch: TileSet::new("batch digits"),
            maps: Vec::new(),
            maps_are_gradients: false,
            banks: Vec::new(),
            banks_mode: FilterMode::Weights,
            color_map: ColorMap::RdBu,
            held: HeldScales::default(),
            built_for: None,
            model: None,
        }
    }
}

/// The first layer of the scale group of layer `i` in per-layer scale mode: a convolution and
/// the activations and pools after it (up to the next convolution) share one scale, so
/// "before" and "after" the activation, and a pool beside what it pools, compare directly;
/// map layers before the first convolution share the input's group (0). A layer without maps
/// is its own group.
pub fn scale_group(model: &ModelView, i: usize) -> usize {
    let has_maps = |j: usize| {
        model.layer(j).is_some_and(|l| matches!(l.output, Shape::Maps { .. }) && l.spec != LayerSpec::Flatten)
    };
    if !has_maps(i) {
        return i;
    }
    (0..=i).rev().find(|&j| model.layer(j).is_some_and(|l| matches!(l.spec, LayerSpec::Conv { .. }))).unwrap_or(0)
}

impl Scene {
    /// The map group of layer `layer`, if it has maps.
    pub fn group(&self, layer: usize) -> Option<&MapGroup> {
        self.maps.iter().find(|g| g.layer == layer)
    }

    /// Rebuilds the textures if `generation` (bumped per snapshot) or the view's modes, scale or
    /// colour map changed.
    pub fn refresh(&mut self, ctx: &egui::Context, snap: &Snapshot, generation: u64, view: &ViewState) {
        let grads = view.shows_gradients(Some(snap));
        let key = SceneKey {
            generation,
            gradients: grads,
            filter_mode: view.filter_mode,
            per_channel: view.filters_per_channel,
            scale_mode: view.scale_mode,
            hold: view.hold_scale,
            color_map: view.color_map,
        };
        if self.built_for == Some(key) {
            return;
        }
        let batch_changed = self.built_for.is_none_or(|k| k.generation != generation);
        self.built_for = Some(key);
        if self.model.as_ref().is_none_or(|m| **m != *snap.model) {
            self.rebuild_groups(&snap.model);
            crate::ui::windows::help::set_model(ctx, &snap.model);
        }
        if batch_changed {
            let b = &snap.batch;
            self.batch.set(ctx, &b.images, b.labels.len(), b.height, b.width, Coloring::picture(b.channels));
        }
        let (mode, hold, map) = (view.scale_mode, view.hold_scale, view.color_map);
        self.color_map = map;

        let s = &snap.sample;
        let values = |layer: usize| if grads { s.grad(layer) } else { s.output(layer) };
        let quantity = if grads { "gradients" } else { "maps" };
        for i in 0..self.maps.len() {
            let (layer, (c, h, w)) = (self.maps[i].layer, self.maps[i].shape);
            let v = values(layer);
            if c * h * w == 0 || v.len() < c * h * w {
                self.maps[i].tiles.clear();
                continue;
            }
            let v = &v[..c * h * w];
            let first = scale_group(&snap.model, layer);
            let group: Vec<&[f32]> = self
                .maps
                .iter()
                .filter(|g| scale_group(&snap.model, g.layer) == first)
                .map(|g| values(g.layer))
                .filter(|v| !v.is_empty())
                .collect();
            let slot = match mode {
                ScaleMode::PerMap => format!("{} {quantity}", self.maps[i].name),
                ScaleMode::PerLayer => format!("layer {first} {quantity}"),
            };
            let scales = self.held.resolve(&slot, Scales::compute(mode, v, h * w, &group), hold);
            self.maps[i].tiles.set(ctx, v, c, h, w, Coloring::Diverging { map, scales });
        }
        self.maps_are_gradients = grads;

        let quantity = match view.filter_mode {
            FilterMode::Weights => "weights",
            FilterMode::Gradients => "gradients",
            FilterMode::Delta => "updates",
        };
        for bank in &mut self.banks {
            bank.rgb = bank.colour && !view.filters_per_channel;
            let Some(f) = snap.filters.of_layer(bank.layer) else {
                bank.tiles.clear();
                continue;
            };
            let values: &[f32] = match view.filter_mode {
                FilterMode::Weights => &f.weight,
                FilterMode::Gradients => &f.grad,
                FilterMode::Delta => &f.delta,
            };
            let k = bank.kernel;
            let all = bank.filters * bank.channels * k * k;
            if all == 0 || values.len() < all {
                bank.tiles.clear();
                continue;
            }
            let values = &values[..all];
            if bank.rgb {
                // One picture per filter: its scale (per filter, or the bank's) covers all three
                // colours, so their balance shows.
                let per = bank.channels * k * k;
                let slot = format!("{} {quantity} rgb", bank.name);
                let scales = self.held.resolve(&slot, Scales::compute(mode, values, per, &[values]), hold);
                bank.tiles.set(ctx, values, bank.filters, k, k, Coloring::SignedRgb { scales });
            } else {
                let slot = format!("{} {quantity}", bank.name);
                let scales = self.held.resolve(&slot, Scales::compute(mode, values, k * k, &[values]), hold);
                bank.tiles.set(ctx, values, bank.filters * bank.channels, k, k, Coloring::Diverging { map, scales });
            }
        }
        self.banks_mode = view.filter_mode;
    }

    /// New map groups and banks for another network.
    fn rebuild_groups(&mut self, model: &std::sync::Arc<ModelView>) {
        self.maps = model
            .map_layers()
            .filter_map(|l| match l.output {
                Shape::Maps { c, h, w } => Some(MapGroup {
                    layer: l.index,
                    name: l.name.clone(),
                    shape: (c, h, w),
                    tiles: TileSet::new(format!("{} maps", l.name)),
                }),
                Shape::Flat(_) => None,
            })
            .collect();
        self.banks = model
            .convs()
            .filter_map(|l| {
                let LayerSpec::Conv { filters, k, .. } = l.spec else { return None };
                let channels = match l.input {
                    Shape::Maps { c, .. } => c,
                    Shape::Flat(n) => n,
                };
                let colour = channels == 3 && reads_image_channels(model, l.index);
                Some(Bank {
                    layer: l.index,
                    name: l.name.clone(),
                    filters,
                    channels,
                    kernel: k,
                    colour,
                    rgb: colour,
                    tiles: TileSet::new(format!("{} filters", l.name)),
                })
            })
            .collect();
        self.model = Some(model.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::model::resolve;

    fn model(line: &str) -> ModelView {
        ModelView { name: None, plan: resolve(line, (1, 28, 28), 10).unwrap() }
    }

    #[test]
    fn a_conv_shares_its_scale_with_the_activations_and_pools_after_it() {
        let lenet = model("lenet5");
        // conv1 relu1 pool1 | conv2 relu2 pool2 | flatten fc1 relu3 fc2 relu4 fc3
        let groups: Vec<usize> = (0..lenet.plan.layers.len()).map(|i| scale_group(&lenet, i)).collect();
        assert_eq!(groups, [0, 0, 0, 3, 3, 3, 6, 7, 8, 9, 10, 11]);
        let post = model("post");
        assert_eq!(
            (0..3).map(|i| scale_group(&post, i)).collect::<Vec<_>>(),
            [0, 0, 2],
            "conv1 with relu1; conv2 alone"
        );
    }

    #[test]
    fn maps_before_the_first_conv_share_the_first_group() {
        let m = model("maxpool(2), relu, conv(4,3), flatten, fc(10)");
        assert_eq!((0..3).map(|i| scale_group(&m, i)).collect::<Vec<_>>(), [0, 0, 2]);
    }
}
