//! The views of the central area, one file each, and the one list of them.
//!
//! A tab is a type implementing [`Tab`] (its name, key, help topic, optional toolbar row and
//! view) plus one entry in [`all_tabs`]. Everything that concerns tabs in general iterates that
//! list: the tab row ([`tab_row_ui`]), the number keys, the tab remembered between runs
//! ([`TabId`] is what the preferences store), the help panel's fallback topic and the views
//! the File menu can save as PNG ([`Tab::picture`]). Adding a tab is a new file here and a line
//! in [`all_tabs`]; nothing in the app names a particular tab except where a behaviour is about
//! that tab (a pipeline click on a conv phase brings the feature maps forward).
//!
//! A tab draws from a [`TabContext`] (the snapshot, the shared textures, the teaching results,
//! the view choices) and leaves the commands it wants sent there; the tab keeps whatever state
//! is its own (the FC1 unit chosen, the evaluation gallery's page, requests in flight).

pub mod evaluation;
pub mod fc1;
pub mod feature_maps;
pub mod filters;
pub mod health;
pub mod loops;

use eframe::egui;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::data::Dataset;
use crate::trainer::{Command, PixelRef, Snapshot, TeachingResults};
use crate::ui::ViewState;
use crate::ui::panels::status::Progress;
use crate::ui::support::scene::Scene;
use crate::ui::windows::help::{HelpTopic, with_help};
use health::Magnitudes;

/// Every tab, in the order of the tab row (and of the keys 1, 2, …).
pub fn all_tabs() -> Vec<Box<dyn Tab>> {
    vec![
        Box::new(feature_maps::FeatureMapsTab),
        Box::new(filters::FiltersTab),
        Box::new(fc1::Fc1Tab::default()),
        Box::new(evaluation::EvaluationTab::default()),
        Box::new(health::HealthTab::default()),
        Box::new(loops::LoopsTab::default()),
    ]
}

/// A tab's stable name: what [`ViewState::tab`] holds and the preferences store. It never
/// changes once released, even if the tab is renamed on screen (the five first tabs keep the
/// names earlier versions stored: `FeatureMaps`, `Filters`, `Fc1`, `Evaluation`, `Health`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TabId(&'static str);

impl TabId {
    /// The id named `name`; each tab declares its own as a constant.
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The tab of [`all_tabs`] stored as `name`, if this version has it.
    pub fn find(name: &str) -> Option<Self> {
        all_tabs().iter().map(|t| t.id()).find(|id| id.0 == name)
    }
}

impl Default for TabId {
    /// The feature maps, the first tab.
    fn default() -> Self {
        feature_maps::ID
    }
}

impl Serialize for TabId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for TabId {
    /// A tab this version does not have (stored by a newer one) is the first tab, not an error:
    /// an error would drop every other remembered preference with it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::find(&name).unwrap_or_default())
    }
}

/// How the File menu names a view it can save as PNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Picture {
    /// In "Save … as PNG", e.g. "the feature maps".
    pub label: &'static str,
    /// In the suggested file name, e.g. "feature-maps".
    pub file_stem: &'static str,
}

/// One tab of the central area.
pub trait Tab {
    /// Its stable name (see [`TabId`]).
    fn id(&self) -> TabId;

    /// The title on the tab row.
    fn name(&self) -> &'static str;

    /// The key that brings it to the front (without modifiers), if any.
    fn key(&self) -> Option<egui::Key>;

    /// What its hover text and the help panel explain while it is in front.
    fn help_topic(&self) -> HelpTopic;

    /// `Some` when the File menu offers the view as a PNG (cut to the rectangle [`Tab::ui`]
    /// drew in).
    fn picture(&self) -> Option<Picture> {
        None
    }

    /// The view's own choices, on a row of their own under the tab row (the tabs fill a
    /// 1280-pixel row). Draws nothing by default; a tab that has a toolbar draws the whole row.
    fn toolbar_ui(&mut self, _ui: &mut egui::Ui, _ctx: &mut TabContext<'_>) {}

    /// The view itself.
    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>);

    /// The worker answered a request with an error, perhaps one of this tab's: forget the
    /// requests in flight so the tab may ask again.
    fn request_failed(&mut self) {}

    /// The tab as its own type, for code that puts a particular tab in a state from outside
    /// (a lesson card opening the Loops view at a phase): `tab.as_any_mut()?.downcast_mut::<
    /// loops::LoopsTab>()` and then its public methods. `None` (the default) for tabs that offer
    /// no such state.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}

/// What a tab draws from, and what it leaves for the app.
pub struct TabContext<'a> {
    /// The latest snapshot (training state and weights).
    pub snapshot: Option<&'a Snapshot>,
    /// What the digit views show: `snapshot`, or a copy with a probed image's tensors.
    pub shown: Option<&'a Snapshot>,
    /// The textures built from `shown`.
    pub scene: &'a Scene,
    /// The user's view choices.
    pub view: &'a mut ViewState,
    /// The latest answer to each read-only request.
    pub teaching: &'a TeachingResults,
    /// Activation and gradient magnitudes over the run.
    pub magnitudes: &'a Magnitudes,
    /// The test split (images and class names of the evaluation).
    pub test_set: &'a Dataset,
    /// The progress of a long command under way, if one is.
    pub progress: Option<&'a Progress>,
    /// Whether a request that needs the trainer paused and idle (an evaluation, a gradient
    /// check) may be sent now, or why not.
    pub can_run: Result<(), String>,
    /// Commands for the worker, sent by the app after the frame.
    pub commands: Vec<Command>,
    /// A feature-map pixel clicked, for the pixel inspector.
    pub inspect: Option<PixelRef>,
}

/// The row of tab titles; a click brings a tab to the front. Each title explains its view on
/// hover.
pub fn tab_row_ui(ui: &mut egui::Ui, tabs: &[Box<dyn Tab>], selected: &mut TabId) {
    ui.horizontal(|ui| {
        for tab in tabs {
            let title = egui::RichText::new(tab.name()).size(15.0).strong();
            with_help(ui.selectable_value(selected, tab.id(), title), tab.help_topic());
        }
    });
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_tab_has_its_own_id_name_key_and_help() {
        let tabs = all_tabs();
        let ids: HashSet<TabId> = tabs.iter().map(|t| t.id()).collect();
        let names: HashSet<&str> = tabs.iter().map(|t| t.name()).collect();
        let topics: HashSet<HelpTopic> = tabs.iter().map(|t| t.help_topic()).collect();
        assert_eq!((ids.len(), names.len(), topics.len()), (tabs.len(), tabs.len(), tabs.len()));
        let keys: Vec<Option<egui::Key>> = tabs.iter().map(|t| t.key()).collect();
        use egui::Key::*;
        assert_eq!(
            keys,
            [Some(Num1), Some(Num2), Some(Num3), Some(Num4), Some(Num5), Some(Num6)],
            "keys 1–6 in row order"
        );
    }

    #[test]
    fn the_first_tab_is_the_default_and_every_id_is_found_by_its_name() {
        let tabs = all_tabs();
        assert_eq!(tabs.first().map(|t| t.id()), Some(TabId::default()));
        for t in &tabs {
            assert_eq!(TabId::find(t.id().as_str()), Some(t.id()));
        }
        assert_eq!(TabId::find("NoSuchTab"), None);
    }

    #[test]
    fn the_loops_tab_can_be_reached_from_the_list_and_put_at_a_part() {
        let mut tabs = all_tabs();
        let tab = tabs.iter_mut().find(|t| t.id() == loops::ID).expect("the Loops tab is listed");
        let part = crate::engine::model::loops::LoopPart::LossBackward;
        let lt = tab.as_any_mut().and_then(|a| a.downcast_mut::<loops::LoopsTab>()).expect("it offers its state");
        lt.show(6, part, Some(2), 0);
        assert_eq!((lt.choice, lt.start_image), (Some((6, part)), Some(2)));
        let others = tabs.iter_mut().filter(|t| t.id() != loops::ID).filter_map(|t| t.as_any_mut()).count();
        assert_eq!(others, 0, "only the Loops tab offers a state so far");
    }

    #[test]
    fn the_feature_maps_and_filters_can_be_saved_as_pictures() {
        let pictures: Vec<(TabId, &str)> =
            all_tabs().iter().filter_map(|t| t.picture().map(|p| (t.id(), p.file_stem))).collect();
        assert_eq!(pictures, [(feature_maps::ID, "feature-maps"), (filters::ID, "filters")]);
    }
}
