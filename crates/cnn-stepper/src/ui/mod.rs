//! The window's panels, one file each. Every panel is a `*_ui` function that draws from the state
//! it is given and returns the commands the user asked for; only the app sends them to the worker.
//!
//! What the panels share lives here: which view is in front ([`ViewState`]) and the textures
//! built from the latest snapshot ([`Scene`]).

pub mod banner;
pub mod batch;
pub mod colormap;
pub mod controls;
pub mod curves;
pub mod draw;
pub mod evaluation;
pub mod export;
pub mod fc1;
pub mod feature_maps;
pub mod file_dialog;
pub mod filters;
pub mod health;
pub mod help;
pub mod inspector;
pub mod menu;
pub mod outputs;
pub mod pipeline;
pub mod prefs;
pub mod status;
pub mod text;
pub mod textures;

use eframe::egui::{self, Color32};
use serde::{Deserialize, Serialize};

use crate::engine::{Layer, Phase};
use crate::trainer::Snapshot;
use colormap::{ColorMap, HeldScales, Scales};
use textures::{Coloring, TileSet};

/// Which large view the central area shows under the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CenterTab {
    /// The selected digit's feature maps (or their gradients).
    FeatureMaps,
    /// The convolution kernels (weights, gradients or last update).
    Filters,
    /// What FC1's hidden units look at, and the exact class evidence of the selected digit.
    Fc1,
    /// Accuracy on the test set: confusion matrix, per-class accuracy, the mistakes.
    Evaluation,
    /// The gradient check, and activation and gradient magnitudes over time.
    Health,
}

/// What the feature-map view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapMode {
    /// Activations in forward phases, gradients once the backward pass reached them.
    Auto,
    /// Always the forward values.
    Activations,
    /// Always the gradients ∂L/∂(map).
    Gradients,
}

/// What the filter view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterMode {
    /// The kernels themselves.
    Weights,
    /// ∂L/∂W of the current step.
    Gradients,
    /// The change the last update made.
    Delta,
}

/// How the maps (or kernels) of one layer are put on a colour scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScaleMode {
    /// Each map by its own largest |value|: every map's pattern shows, even a weak one, but the
    /// same colour means different values in different maps.
    PerMap,
    /// All maps of a layer share the layer's largest |value| (conv1 with relu1, conv2 with its
    /// ReLU; each filter bank as a whole): colours compare between maps.
    #[default]
    PerLayer,
}

/// The user's choices about what to look at; owned by the app, changed by the panels.
///
/// Serialisable so that the app can remember the view preferences between runs; what belongs
/// to one session (the focused phase, scroll position, a held scale) is not stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewState {
    /// Tab of the central area.
    pub tab: CenterTab,
    /// Feature-map mode.
    pub map_mode: MapMode,
    /// Filter mode.
    pub filter_mode: FilterMode,
    /// The phase last clicked in the pipeline; its layer's view is outlined.
    #[serde(skip)]
    pub focus: Option<Phase>,
    /// The (step, phases done) the pipeline last scrolled to.
    #[serde(skip)]
    pub scrolled_for: Option<(u64, usize)>,
    /// One colour scale per map or per layer, for feature maps and filters alike.
    pub scale_mode: ScaleMode,
    /// Freeze the colour scales at their values when this was switched on. Not remembered:
    /// the values it froze belong to the run it was switched on in.
    #[serde(skip)]
    pub hold_scale: bool,
    /// The diverging colour map of every signed view.
    pub color_map: ColorMap,
    /// Whether the help panel ([`help::help_ui`]) is shown.
    pub show_help: bool,
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            tab: CenterTab::FeatureMaps,
            map_mode: MapMode::Auto,
            filter_mode: FilterMode::Weights,
            focus: None,
            scrolled_for: None,
            scale_mode: ScaleMode::PerLayer,
            hold_scale: false,
            color_map: ColorMap::RdBu,
            show_help: false,
        }
    }
}

impl ViewState {
    /// Whether the feature maps (and FC1 bars) show gradients for this snapshot.
    pub fn shows_gradients(&self, snap: Option<&Snapshot>) -> bool {
        match self.map_mode {
            MapMode::Activations => false,
            MapMode::Gradients => true,
            // While running, the phase a snapshot lands on is arbitrary: flipping between
            // activations and gradients 30 times a second would be unreadable.
            MapMode::Auto => snap.is_some_and(|s| !s.running && s.last_phase().is_some_and(Phase::is_backward)),
        }
    }

    /// Brings the view that shows what `phase` computes to the front.
    pub fn focus_phase(&mut self, phase: Phase, snap: Option<&Snapshot>) {
        use Layer::*;
        self.focus = Some(phase);
        let want_gradients = phase.is_backward();
        match phase {
            Phase::Forward(Conv1 | Relu1 | Conv2 | ReluConv2) | Phase::Backward(Relu1 | ReluConv2 | Fc1) => {
                self.tab = CenterTab::FeatureMaps;
                if self.shows_gradients(snap) != want_gradients {
                    self.map_mode = if want_gradients { MapMode::Gradients } else { MapMode::Activations };
                }
            }
            Phase::Backward(Conv1 | Conv2) => {
                self.tab = CenterTab::Filters;
                self.filter_mode = FilterMode::Gradients;
            }
            Phase::Update => {
                self.tab = CenterTab::Filters;
                self.filter_mode = FilterMode::Delta;
            }
            // The dense layers and the loss are in the outputs panel, which is always visible.
            Phase::Forward(Fc1 | Relu2 | Fc2 | Loss) | Phase::Backward(Relu2 | Fc2 | Loss) => {
                if self.shows_gradients(snap) != want_gradients {
                    self.map_mode = if want_gradients { MapMode::Gradients } else { MapMode::Activations };
                }
            }
        }
    }

    /// True when the last pipeline click was about `layer` (its view gets an outline).
    pub fn is_focused(&self, layer: Layer) -> bool {
        matches!(self.focus, Some(Phase::Forward(l) | Phase::Backward(l)) if l == layer)
    }
}

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

/// A clickable cell for a digit's thumbnail (batch, gallery): allocates it, names it for
/// screen readers and tests, and paints the selected or hovered background. The caller draws
/// the image and captions inside the returned rectangle when it is visible.
pub fn thumbnail_cell(
    ui: &mut egui::Ui,
    size: egui::Vec2,
    selected: bool,
    label: &str,
) -> (egui::Rect, egui::Response) {
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, label));
    if ui.is_rect_visible(rect) {
        let visuals = ui.visuals();
        if selected {
            ui.painter().rect_filled(rect, 4.0, visuals.selection.bg_fill.gamma_multiply(0.4));
        } else if response.hovered() {
            ui.painter().rect_filled(rect, 4.0, visuals.widgets.hovered.weak_bg_fill);
        }
    }
    (rect, response)
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

/// Accent colours shared by the panels.
pub mod palette {
    use super::Color32;

    /// Forward phases (ColorBrewer blue, distinguishable from the orange below for all common
    /// kinds of colour blindness).
    pub const FORWARD: Color32 = Color32::from_rgb(33, 102, 172);
    /// Backward phases.
    pub const BACKWARD: Color32 = Color32::from_rgb(214, 96, 77);
    /// The update.
    pub const UPDATE: Color32 = Color32::from_rgb(120, 100, 160);
    /// Mistakes in the batch.
    pub const WRONG: Color32 = Color32::from_rgb(215, 38, 40);
    /// The loss curve's smoothed line.
    pub const LOSS: Color32 = Color32::from_rgb(214, 96, 77);
    /// The accuracy curve.
    pub const ACCURACY: Color32 = Color32::from_rgb(33, 102, 172);
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

/// The index of the largest value (the predicted class), if any.
pub fn argmax(v: &[f32]) -> Option<usize> {
    v.iter().enumerate().filter(|(_, x)| x.is_finite()).max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
}

/// A small section heading.
pub fn section_heading(ui: &mut egui::Ui, text: &str) {
    ui.label(egui::RichText::new(text).strong().size(15.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(thousands(25088), "25,088");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn view_preferences_survive_a_restart_but_a_held_scale_does_not() {
        let view = ViewState {
            scale_mode: ScaleMode::PerMap,
            color_map: ColorMap::HighContrast,
            hold_scale: true,
            show_help: true,
            focus: Some(Phase::Update),
            ..ViewState::default()
        };
        let json = serde_json::to_string(&view).unwrap();
        let back: ViewState = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (back.scale_mode, back.color_map, back.show_help),
            (ScaleMode::PerMap, ColorMap::HighContrast, true)
        );
        assert!(!back.hold_scale && back.focus.is_none(), "session-only state is not stored");
        // A stored copy from before these fields existed still loads, with the defaults.
        let old: ViewState = serde_json::from_str(r#"{"tab":"Filters"}"#).unwrap();
        assert_eq!((old.tab, old.scale_mode, old.color_map), (CenterTab::Filters, ScaleMode::PerLayer, ColorMap::RdBu));
    }

    #[test]
    fn the_prediction_is_the_largest_probability() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), Some(1));
        assert_eq!(argmax(&[]), None);
    }
}
