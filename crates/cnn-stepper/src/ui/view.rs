//! What the user chose to look at: the tab in front, the modes of the feature-map and filter
//! views, the colour scale and map, the help panel. Owned by the app, changed by the panels and
//! tabs, remembered between runs (see [`crate::ui::support::prefs`]).

use serde::{Deserialize, Serialize};

use crate::engine::Phase;
use crate::engine::model::{LayerSpec, Shape};
use crate::trainer::Snapshot;
use crate::ui::support::colormap::ColorMap;
use crate::ui::tabs::{self, TabId};

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
    pub tab: TabId,
    /// Feature-map mode.
    pub map_mode: MapMode,
    /// Filter mode.
    pub filter_mode: FilterMode,
    /// Filters that read a colour image (the first conv of a colour network) drawn as each
    /// channel's K×K slice on the diverging map, instead of one RGB picture per filter.
    pub filters_per_channel: bool,
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
    /// Whether the help panel ([`crate::ui::windows::help::help_ui`]) is shown.
    pub show_help: bool,
    /// Whether the pipeline (left panel) is shown; hidden, the maps get its width.
    pub show_pipeline: bool,
    /// Whether the outputs and curves (right panel) are shown.
    pub show_outputs: bool,
    /// The Loops tab's "Wide" toggle: while that tab is in front, the side panels and the batch
    /// strip are hidden (see [`ViewState::side_panels`]); `show_pipeline` and `show_outputs`
    /// keep the user's choice, so the panels come back with another tab or the toggle off.
    pub loops_wide: bool,
    /// The layers picked in the feature-map view of each network that had a pick, the one
    /// picked in last at the end; a network not listed shows all its layers.
    pub map_layers: Vec<PickedLayers>,
}

/// The layers of one network the feature-map view shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickedLayers {
    /// The network, as `--model` takes it (its name, or its line).
    pub model: String,
    /// The student names of the layers shown (`conv1`, `pool2`), never empty.
    pub layers: Vec<String>,
}

/// Networks whose picked layers are remembered: enough for every named one and a few lines.
pub const PICKS_KEPT: usize = 12;

impl Default for ViewState {
    fn default() -> Self {
        Self {
            tab: TabId::default(),
            map_mode: MapMode::Auto,
            filter_mode: FilterMode::Weights,
            filters_per_channel: false,
            focus: None,
            scrolled_for: None,
            scale_mode: ScaleMode::PerLayer,
            hold_scale: false,
            color_map: ColorMap::RdBu,
            show_help: false,
            show_pipeline: true,
            show_outputs: true,
            loops_wide: false,
            map_layers: Vec::new(),
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

    /// Brings the view that shows what `phase` computes to the front: a layer with maps →
    /// the feature maps (activations forward, gradients backward), a convolution's backward
    /// phase → its filters' gradients, the update → the filters' change; the dense layers and
    /// the loss are in the outputs panel, which is always visible.
    pub fn focus_phase(&mut self, phase: Phase, snap: Option<&Snapshot>) {
        self.focus = Some(phase);
        let want_gradients = phase.is_backward();
        let model = snap.map(|s| &*s.model);
        let has_maps = |i: usize| {
            model
                .and_then(|m| m.layer(i))
                .is_some_and(|l| matches!(l.output, Shape::Maps { .. }) && l.spec != LayerSpec::Flatten)
        };
        let is_conv =
            |i: usize| model.and_then(|m| m.layer(i)).is_some_and(|l| matches!(l.spec, LayerSpec::Conv { .. }));
        // Without a snapshot, the post's layout: conv1 relu1 conv2 flatten fc1 relu2 fc2.
        let (has_maps, is_conv) = (
            |i: usize| if model.is_some() { has_maps(i) } else { i < 3 },
            |i: usize| if model.is_some() { is_conv(i) } else { i == 0 || i == 2 },
        );
        let maps_tab = match phase {
            Phase::Forward(i) => has_maps(i),
            // Backward through layer i gives the gradient of its input: layer i − 1's maps.
            Phase::Backward(i) if is_conv(i) => {
                self.tab = tabs::filters::ID;
                self.filter_mode = FilterMode::Gradients;
                return;
            }
            Phase::Backward(i) => i > 0 && has_maps(i - 1),
            Phase::Update => {
                self.tab = tabs::filters::ID;
                self.filter_mode = FilterMode::Delta;
                return;
            }
            Phase::Loss | Phase::LossBackward => false,
        };
        if maps_tab {
            self.tab = tabs::feature_maps::ID;
            let layer = match phase {
                Phase::Backward(i) => i.saturating_sub(1),
                Phase::Forward(i) => i,
                _ => 0,
            };
            self.reveal_layer(snap, layer);
        }
        if self.shows_gradients(snap) != want_gradients {
            self.map_mode = if want_gradients { MapMode::Gradients } else { MapMode::Activations };
        }
    }

    /// Whether the Loops tab is in front with its "Wide" toggle on: it then takes the whole
    /// window, without the side panels and the batch strip.
    pub fn loops_wide_now(&self) -> bool {
        self.loops_wide && self.tab == tabs::loops::ID
    }

    /// Whether the pipeline and the outputs panel are drawn this frame: the user's choice,
    /// unless the Wide Loops view is in front.
    pub fn side_panels(&self) -> (bool, bool) {
        let wide = self.loops_wide_now();
        (self.show_pipeline && !wide, self.show_outputs && !wide)
    }

    /// True when the last pipeline click was about layer `layer` (its view gets an outline).
    pub fn is_focused(&self, layer: usize) -> bool {
        matches!(self.focus, Some(Phase::Forward(l) | Phase::Backward(l)) if l == layer)
    }

    /// The layers of network `model` picked in the feature-map view, or `None` for all.
    pub fn picked_layers(&self, model: &str) -> Option<&[String]> {
        self.map_layers.iter().find(|p| p.model == model).map(|p| &p.layers[..])
    }

    /// Whether the feature-map view of network `model` shows layer `layer`.
    pub fn shows_layer(&self, model: &str, layer: &str) -> bool {
        self.picked_layers(model).is_none_or(|l| l.iter().any(|n| n == layer))
    }

    /// A click on layer `layer` in the feature-map view's picker of network `model`, whose
    /// map layers are `all`: with every layer shown, shows that one alone; else shows or hides
    /// it. Hiding the last one, or showing the last missing one, goes back to all.
    pub fn toggle_layer(&mut self, model: &str, all: &[String], layer: &str) {
        let mut picked: Vec<String> = match self.picked_layers(model) {
            None => vec![layer.to_string()],
            Some(p) if p.iter().any(|n| n == layer) => p.iter().filter(|n| *n != layer).cloned().collect(),
            Some(p) => p.iter().cloned().chain([layer.to_string()]).collect(),
        };
        picked.retain(|n| all.contains(n));
        // In forward order, whatever order they were clicked in.
        picked.sort_by_key(|n| all.iter().position(|a| a == n));
        if picked.is_empty() || picked.len() == all.len() {
            self.show_all_layers(model);
        } else {
            self.map_layers.retain(|p| p.model != model);
            self.map_layers.push(PickedLayers { model: model.to_string(), layers: picked });
            if self.map_layers.len() > PICKS_KEPT {
                self.map_layers.remove(0);
            }
        }
    }

    /// Shows every layer of network `model` in the feature-map view.
    pub fn show_all_layers(&mut self, model: &str) {
        self.map_layers.retain(|p| p.model != model);
    }

    /// Makes sure the feature-map view of `snap`'s network shows layer `layer` (a pipeline
    /// click on it must not land on a view where it is hidden).
    fn reveal_layer(&mut self, snap: Option<&Snapshot>, layer: usize) {
        let Some(model) = snap.map(|s| &*s.model) else { return };
        let Some(name) = model.layer(layer).map(|l| l.name.clone()) else { return };
        let key = model.argument();
        if !self.shows_layer(&key, &name) {
            let all: Vec<String> = model.map_layers().map(|l| l.name.clone()).collect();
            self.toggle_layer(&key, &all, &name);
        }
    }

    /// True when the last pipeline click was about the loss.
    pub fn is_loss_focused(&self) -> bool {
        matches!(self.focus, Some(Phase::Loss | Phase::LossBackward))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn view_preferences_survive_a_restart_but_a_held_scale_does_not() {
        let view = ViewState {
            tab: tabs::health::ID,
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
            (back.tab, back.scale_mode, back.color_map, back.show_help),
            (tabs::health::ID, ScaleMode::PerMap, ColorMap::HighContrast, true)
        );
        assert!(!back.hold_scale && back.focus.is_none(), "session-only state is not stored");
        // A stored copy from before these fields existed still loads, with the defaults.
        let old: ViewState = serde_json::from_str(r#"{"tab":"Filters"}"#).unwrap();
        assert_eq!((old.tab, old.scale_mode, old.color_map), (tabs::filters::ID, ScaleMode::PerLayer, ColorMap::RdBu));
    }

    #[test]
    fn the_tab_is_stored_under_the_names_earlier_versions_wrote() {
        // Versions before the tab list stored an enum's variant names: they must keep meaning
        // the same tabs.
        for (stored, id) in [
            ("FeatureMaps", tabs::feature_maps::ID),
            ("Filters", tabs::filters::ID),
            ("Fc1", tabs::fc1::ID),
            ("Evaluation", tabs::evaluation::ID),
            ("Health", tabs::health::ID),
        ] {
            let view: ViewState = serde_json::from_str(&format!(r#"{{"tab":"{stored}"}}"#)).unwrap();
            assert_eq!(view.tab, id, "{stored}");
            assert!(serde_json::to_string(&view).unwrap().contains(&format!(r#""tab":"{stored}""#)));
        }
    }

    #[test]
    fn a_tab_this_version_does_not_have_falls_back_to_the_first_and_keeps_the_rest() {
        let view: ViewState =
            serde_json::from_str(r#"{"tab":"Attention","color_map":"HighContrast","show_help":true}"#).unwrap();
        assert_eq!(view.tab, TabId::default());
        assert_eq!((view.color_map, view.show_help), (ColorMap::HighContrast, true));
    }

    #[test]
    fn a_pipeline_click_brings_the_view_of_its_phase_to_the_front() {
        let mut view = ViewState::default();
        view.focus_phase(Phase::Update, None);
        assert_eq!((view.tab, view.filter_mode), (tabs::filters::ID, FilterMode::Delta));
        view.focus_phase(Phase::Backward(1), None);
        assert_eq!((view.tab, view.map_mode), (tabs::feature_maps::ID, MapMode::Gradients));
    }

    #[test]
    fn wide_loops_hides_the_side_panels_only_while_the_loops_tab_is_in_front() {
        let mut view = ViewState { loops_wide: true, tab: tabs::loops::ID, ..ViewState::default() };
        assert_eq!(view.side_panels(), (false, false));
        assert!(view.loops_wide_now());
        view.tab = tabs::filters::ID;
        assert_eq!(view.side_panels(), (true, true), "another tab: the user's panels");
        view.show_outputs = false;
        assert_eq!(view.side_panels(), (true, false));
        view.tab = tabs::loops::ID;
        view.loops_wide = false;
        assert_eq!(view.side_panels(), (true, false), "Wide off: the user's choice again");
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_layer_picker_solos_a_layer_then_adds_and_hides_others_and_falls_back_to_all() {
        let all = names(&["conv1", "relu1", "pool1", "conv2"]);
        let mut view = ViewState::default();
        assert!(view.shows_layer("lenet5", "pool1") && view.picked_layers("lenet5").is_none());
        view.toggle_layer("lenet5", &all, "pool1");
        assert_eq!(view.picked_layers("lenet5"), Some(&names(&["pool1"])[..]), "the first click shows it alone");
        view.toggle_layer("lenet5", &all, "conv1");
        assert_eq!(view.picked_layers("lenet5"), Some(&names(&["conv1", "pool1"])[..]), "in forward order");
        assert!(!view.shows_layer("lenet5", "relu1"));
        assert!(view.shows_layer("tiny", "relu1"), "another network keeps all its layers");
        view.toggle_layer("lenet5", &all, "conv1");
        view.toggle_layer("lenet5", &all, "pool1");
        assert!(view.picked_layers("lenet5").is_none(), "hiding the last one shows all again");
        for name in &all[1..] {
            view.toggle_layer("lenet5", &all, name);
        }
        view.toggle_layer("lenet5", &all, "conv1");
        assert!(view.picked_layers("lenet5").is_none(), "picking every layer is all");
    }

    #[test]
    fn picks_are_remembered_per_network_and_only_for_the_latest_few() {
        let all = names(&["conv1", "pool1"]);
        let mut view = ViewState::default();
        for i in 0..PICKS_KEPT + 3 {
            view.toggle_layer(&format!("line {i}"), &all, "pool1");
        }
        assert_eq!(view.map_layers.len(), PICKS_KEPT);
        assert!(
            view.picked_layers("line 0").is_none() && view.picked_layers(&format!("line {}", PICKS_KEPT + 2)).is_some()
        );
        let back: ViewState = serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();
        assert_eq!(back.map_layers, view.map_layers, "the picks survive a restart");
    }

    #[test]
    fn a_pipeline_click_on_a_hidden_layer_shows_it() {
        use std::sync::Arc;

        use crate::data::{ClassNames, Dataset, Splits};
        use crate::engine::{ConvEngine, Preset};
        use crate::trainer::Session;
        let names = ClassNames::Digits.names();
        let split = |n: usize| Dataset::new(vec![0; n * 28 * 28], (0..n as u8).collect(), 28, 28, names.clone());
        let data = Arc::new(Splits {
            train: split(8).unwrap(),
            test: split(8).unwrap(),
            source: "test".into(),
            notes: Vec::new(),
        });
        let mut session = Session::new(data, 1, Preset::Recommended, "lenet5", ConvEngine::Fast).unwrap();
        let snap = session.snapshot();
        let all: Vec<String> = snap.model.map_layers().map(|l| l.name.clone()).collect();
        let mut view = ViewState::default();
        view.toggle_layer("lenet5", &all, "conv1");
        // Forward pool1 (layer 2) is about pool1, hidden by the pick.
        view.focus_phase(Phase::Forward(2), Some(&snap));
        assert_eq!(view.tab, tabs::feature_maps::ID);
        assert!(view.shows_layer("lenet5", "pool1") && view.shows_layer("lenet5", "conv1"));
        view.focus_phase(Phase::Backward(5), Some(&snap));
        assert!(view.shows_layer("lenet5", "relu2"), "backward pool2 fills ∂L/∂relu2");
    }
}
