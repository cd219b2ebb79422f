//! What the window remembers between runs (eframe's persistence stores it next to the window
//! size and panel layout): the last hyper-parameters and preset, projector mode and zoom, the
//! view choices (tab, map and filter modes, colour map and scale, help panel), the folders
//! last used, and the data last trained on (reopened at the next start without `--data`).
//!
//! Anything missing or unreadable in the stored copy falls back to the defaults field by field;
//! remembered settings that would not train (edited by hand, or from an older version) are
//! dropped with a message rather than refused at start-up.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{DataSource, LoadOptions};
use crate::engine::Preset;
use crate::trainer::Settings;
use crate::ui::ViewState;

/// The key under which eframe's storage keeps [`Prefs`].
pub const PREFS_KEY: &str = "cnn-stepper/prefs";

/// The remembered preferences.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    /// Preset of the last run.
    pub preset: Option<Preset>,
    /// Hyper-parameters, batch size and engine last set.
    pub settings: Option<Settings>,
    /// Projector mode.
    pub projector: bool,
    /// A zoom the user chose with the keyboard; `None` follows the window size.
    pub zoom: Option<f32>,
    /// Tabs, modes, colours and the help panel.
    pub view: Option<ViewState>,
    /// Folder of the last file opened or saved.
    pub last_dir: Option<PathBuf>,
    /// The session file last opened or saved.
    pub last_session: Option<PathBuf>,
    /// The network of the last run: a name (`lenet5`) or a line.
    #[serde(default)]
    pub model: Option<String>,
    /// The data of the last run, when it was not the embedded sample.
    #[serde(default)]
    pub data: Option<DataChoice>,
}

/// Data the user chose: where it is and how it was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataChoice {
    /// A folder, or a built-in set's word (see [`DataSource::parse`]).
    pub source: String,
    /// The side pictures are resized to (image folders); `None` is the reader's default.
    #[serde(default)]
    pub image_size: Option<usize>,
    /// Colour pictures made grey.
    #[serde(default)]
    pub grayscale: bool,
}

impl DataChoice {
    /// The choice of `source` read with `options`.
    pub fn new(source: &DataSource, options: &LoadOptions) -> Self {
        Self { source: source.to_string(), image_size: options.image_size, grayscale: options.grayscale }
    }

    /// Where the data is.
    pub fn data_source(&self) -> DataSource {
        DataSource::parse(&self.source)
    }

    /// How to read it. The seed of a held-out test share stays the readers' default, so that
    /// the window, `train`, `eval` and `predict` hold out the same pictures.
    pub fn options(&self) -> LoadOptions {
        LoadOptions { image_size: self.image_size, grayscale: self.grayscale, ..LoadOptions::default() }
    }
}

impl Prefs {
    /// Drops values that cannot be used and says which, e.g. a learning rate of 0 or a zoom of
    /// 40 stored by hand.
    pub fn sanitized(mut self) -> (Self, Vec<String>) {
        let mut dropped = Vec::new();
        if let Some(s) = self.settings
            && let Err(e) = s.validate()
        {
            dropped.push(format!("the remembered settings were not used: {e}"));
            self.settings = None;
        }
        if let Some(z) = self.zoom
            && !(0.5..=3.0).contains(&z)
        {
            dropped.push(format!("the remembered zoom {z} is outside 0.5–3 and was not used"));
            self.zoom = None;
        }
        (self, dropped)
    }

    /// Parses a stored copy; anything unreadable gives the defaults.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::ConvEngine;

    #[test]
    fn prefs_survive_a_round_trip() {
        let mut settings = Settings::from_preset(Preset::Post, ConvEngine::Naive);
        settings.hyper.lr = 0.123;
        let p = Prefs {
            preset: Some(Preset::Post),
            settings: Some(settings),
            projector: true,
            zoom: Some(1.4),
            view: Some(ViewState { show_help: true, ..ViewState::default() }),
            last_dir: Some("/tmp".into()),
            last_session: Some("/tmp/s.safetensors".into()),
            model: Some("lenet5".into()),
            data: Some(DataChoice { source: "/data/photos".into(), image_size: Some(48), grayscale: true }),
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(Prefs::from_json(&text), p);
    }

    #[test]
    fn a_remembered_folder_and_a_built_in_set_read_back_as_their_sources() {
        let folder = DataChoice { source: "/data/photos".into(), image_size: Some(48), grayscale: true };
        assert_eq!(folder.data_source(), DataSource::Folder("/data/photos".into()));
        let options = folder.options();
        assert_eq!((options.image_size, options.grayscale), (Some(48), true));
        let sample = DataChoice::new(&DataSource::Sample, &LoadOptions::default());
        assert_eq!(sample.data_source(), DataSource::Sample);
    }

    #[test]
    fn unreadable_or_partial_prefs_fall_back_field_by_field() {
        assert_eq!(Prefs::from_json("not json"), Prefs::default());
        let p = Prefs::from_json(r#"{"projector": true, "unknown_field": 3}"#);
        assert!(p.projector);
        assert_eq!(p.settings, None);
    }

    #[test]
    fn absurd_remembered_values_are_dropped_with_a_reason() {
        let mut settings = Settings::from_preset(Preset::Recommended, ConvEngine::Fast);
        settings.hyper.lr = -1.0;
        let p = Prefs { settings: Some(settings), zoom: Some(40.0), projector: true, ..Prefs::default() };
        let (clean, dropped) = p.sanitized();
        assert_eq!(clean.settings, None);
        assert_eq!(clean.zoom, None);
        assert!(clean.projector);
        assert_eq!(dropped.len(), 2);
        assert!(dropped[0].contains("learning rate"), "{dropped:?}");
        assert!(dropped[1].contains("40"), "{dropped:?}");
    }
}
