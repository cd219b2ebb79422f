//! The textures drawn from the latest snapshot that several views share: the batch's digits,
//! the selected digit's feature maps and the two filter banks. Rebuilt only when a new snapshot
//! arrives or a view choice that changes their colours does.

use eframe::egui;

use crate::engine::Layer;
use crate::trainer::Snapshot;
use crate::ui::support::colormap::{ColorMap, HeldScales, Scales};
use crate::ui::support::textures::{Coloring, TileSet};
use crate::ui::{FilterMode, ScaleMode, ViewState};

/// One group of feature maps as drawn: its tiles and what they are.
pub struct MapGroup {
    /// The layer whose output (or output gradient) this is.
    pub layer: Layer,
    /// The tiles.
    pub tiles: TileSet,
}

/// Everything drawn from textures, rebuilt only when a new snapshot arrives or the view mode
/// changes.
pub struct Scene {
    /// The batch's digits (grey).
    pub batch: TileSet,
    /// conv1, relu1, conv2 and (if configured) relu_c2 maps of the selected digit.
    pub maps: Vec<MapGroup>,
    /// Whether `maps` hold gradients.
    pub maps_are_gradients: bool,
    /// conv1's kernels in the current filter mode.
    pub conv1_bank: TileSet,
    /// conv2's kernels in the current filter mode.
    pub conv2_bank: TileSet,
    /// The filter mode the banks were built for.
    pub banks_mode: FilterMode,
    /// The colour map the tiles were drawn with.
    pub color_map: ColorMap,
    held: HeldScales,
    built_for: Option<SceneKey>,
}

/// What the textures of a [`Scene`] depend on besides the snapshot's generation.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SceneKey {
    generation: u64,
    gradients: bool,
    filter_mode: FilterMode,
    scale_mode: ScaleMode,
    hold: bool,
    color_map: ColorMap,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            batch: TileSet::new("batch digits"),
            maps: vec![
                MapGroup { layer: Layer::Conv1, tiles: TileSet::new("conv1 maps") },
                MapGroup { layer: Layer::Relu1, tiles: TileSet::new("relu1 maps") },
                MapGroup { layer: Layer::Conv2, tiles: TileSet::new("conv2 maps") },
                MapGroup { layer: Layer::ReluConv2, tiles: TileSet::new("relu_c2 maps") },
            ],
            maps_are_gradients: false,
            conv1_bank: TileSet::new("conv1 filters"),
            conv2_bank: TileSet::new("conv2 filters"),
            banks_mode: FilterMode::Weights,
            color_map: ColorMap::RdBu,
            held: HeldScales::default(),
            built_for: None,
        }
    }
}

impl Scene {
    /// Rebuilds the textures if `generation` (bumped per snapshot) or the view's modes, scale or
    /// colour map changed.
    pub fn refresh(&mut self, ctx: &egui::Context, snap: &Snapshot, generation: u64, view: &ViewState) {
        let grads = view.shows_gradients(Some(snap));
        let key = SceneKey {
            generation,
            gradients: grads,
            filter_mode: view.filter_mode,
            scale_mode: view.scale_mode,
            hold: view.hold_scale,
            color_map: view.color_map,
        };
        if self.built_for == Some(key) {
            return;
        }
        let batch_changed = self.built_for.is_none_or(|k| k.generation != generation);
        self.built_for = Some(key);
        let cfg = &snap.config;
        if batch_changed {
            let b = &snap.batch;
            self.batch.set(ctx, &b.images, b.labels.len(), b.height, b.width, Coloring::Gray);
        }
        let (mode, hold, map) = (view.scale_mode, view.hold_scale, view.color_map);
        self.color_map = map;

        let s = &snap.sample;
        let (h1, w1) = cfg.conv1_out();
        let (h2, w2) = cfg.conv2_out();
        let (f1, f2) = (cfg.conv1_filters, cfg.conv2_filters);
        let data: [(&[f32], usize, usize, usize); 4] = if grads {
            [(&s.d_conv1, f1, h1, w1), (&s.d_relu1, f1, h1, w1), (&s.d_conv2, f2, h2, w2), (&s.d_relu_c2, f2, h2, w2)]
        } else {
            [(&s.conv1, f1, h1, w1), (&s.relu1, f1, h1, w1), (&s.conv2, f2, h2, w2), (&s.relu_c2, f2, h2, w2)]
        };
        // Per layer, conv1 and relu1 share a scale so that "before" and "after" ReLU compare
        // directly; the same for conv2 and its optional ReLU. Held scales are kept apart for
        // activations and gradients, which differ by orders of magnitude.
        const SLOTS: [[&str; 4]; 2] = [
            ["conv1 maps", "relu1 maps", "conv2 maps", "relu_c2 maps"],
            ["conv1 map gradients", "relu1 map gradients", "conv2 map gradients", "relu_c2 map gradients"],
        ];
        const PAIR_SLOTS: [[&str; 2]; 2] = [
            ["conv1 and relu1 maps", "conv2 and relu_c2 maps"],
            ["conv1 and relu1 gradients", "conv2 and relu_c2 gradients"],
        ];
        let pairs = [[data[0].0, data[1].0], [data[2].0, data[3].0]];
        for (i, group) in self.maps.iter_mut().enumerate() {
            let (values, count, h, w) = data[i];
            let configured = group.layer != Layer::ReluConv2 || cfg.relu_after_conv2;
            if !configured || count * h * w == 0 || values.len() < count * h * w {
                group.tiles.clear();
                continue;
            }
            let values = &values[..count * h * w];
            let slot = match mode {
                ScaleMode::PerMap => SLOTS[usize::from(grads)][i],
                ScaleMode::PerLayer => PAIR_SLOTS[usize::from(grads)][i / 2],
            };
            let scales = self.held.resolve(slot, Scales::compute(mode, values, h * w, &pairs[i / 2]), hold);
            group.tiles.set(ctx, values, count, h, w, Coloring::Diverging { map, scales });
        }
        self.maps_are_gradients = grads;

        let f = &snap.filters;
        let (w1v, w2v, quantity): (&[f32], &[f32], usize) = match view.filter_mode {
            FilterMode::Weights => (&f.conv1_w, &f.conv2_w, 0),
            FilterMode::Gradients => (&f.conv1_grad, &f.conv2_grad, 1),
            FilterMode::Delta => (&f.conv1_delta, &f.conv2_delta, 2),
        };
        const BANK_SLOTS: [[&str; 3]; 2] = [
            ["conv1 weights", "conv1 gradients", "conv1 updates"],
            ["conv2 weights", "conv2 gradients", "conv2 updates"],
        ];
        let k = cfg.kernel;
        let c = cfg.in_channels;
        let banks = [(&mut self.conv1_bank, w1v, f1 * c), (&mut self.conv2_bank, w2v, f2 * f1)];
        for (b, (bank, values, count)) in banks.into_iter().enumerate() {
            if count * k * k == 0 || values.len() < count * k * k {
                bank.clear();
                continue;
            }
            let values = &values[..count * k * k];
            let scales =
                self.held.resolve(BANK_SLOTS[b][quantity], Scales::compute(mode, values, k * k, &[values]), hold);
            bank.set(ctx, values, count, k, k, Coloring::Diverging { map, scales });
        }
        self.banks_mode = view.filter_mode;
    }
}
