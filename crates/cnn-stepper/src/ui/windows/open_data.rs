//! File → "Open data…": a folder (chosen in the app's file dialog, or typed) or one of the sets
//! built into the program, and how pictures are read (their size, grey or colour). The window
//! only collects the choice; the app loads it on a thread of its own and, when the data is in,
//! asks here ([`data_question_ui`]) whether to switch and, when the current network does not fit
//! the new images, which network to use.

use std::path::{Path, PathBuf};

use eframe::egui::{self, RichText, TextEdit};

use crate::data::{DataSource, LoadOptions, kind_of};
use crate::engine::model::named::NamedModel;
use crate::ui::support::prefs::DataChoice;
use crate::ui::support::text::thousands;

/// Title of the window, and the menu item that opens it.
pub const OPEN_DATA_TITLE: &str = "Open data…";
/// Accessibility label of the folder field.
pub const FOLDER_LABEL: &str = "Data folder:";
/// Text of the button that asks for a folder in the file dialog.
pub const CHOOSE_FOLDER_LABEL: &str = "Choose a folder…";
/// Accessibility label of the picture size field.
pub const IMAGE_SIZE_LABEL: &str = "Resize every picture to";
/// Text of the grey checkbox.
pub const GREY_LABEL: &str = "Make colour pictures grey";
/// Text of the button that loads the data.
pub const LOAD_LABEL: &str = "Load";
/// Text of the radio button for a folder.
pub const A_FOLDER_LABEL: &str = "A folder";

/// Text of the button that switches to the new data with the current network.
pub const SWITCH_LABEL: &str = "Switch to the new data";
/// Text of the button that leaves the choice of network to the Network window.
pub const EDIT_NETWORK_LABEL: &str = "Edit in the Network window";
/// Text of the button that keeps the current data and run.
pub const KEEP_LABEL: &str = "Keep the current data";

/// The side pictures are resized to unless the user says otherwise (as `--image-size`).
pub const DEFAULT_IMAGE_SIZE: usize = 32;
/// The smallest and largest picture sides offered.
pub const IMAGE_SIZES: std::ops::RangeInclusive<usize> = 8..=256;

/// Which data the window is about to load.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Which {
    /// The folder typed or chosen.
    Folder,
    /// A built-in set, by its word ([`DataSource::BUILT_IN`]).
    BuiltIn(&'static str),
}

/// What the window came to after a frame.
#[derive(Clone, Debug, PartialEq)]
pub enum OpenDataOutcome {
    /// Still open.
    Open,
    /// Closed without a choice.
    Cancelled,
    /// The user wants the file dialog to pick the folder (the window waits behind it).
    ChooseFolder,
    /// Load this.
    Load(DataSource, LoadOptions),
}

/// The state of the Open data window.
#[derive(Clone, Debug)]
pub struct OpenDataDialog {
    which: Which,
    /// The folder field.
    pub folder: String,
    image_size: usize,
    grayscale: bool,
    /// What the folder in the field holds, as checked when it last changed.
    kind: Result<String, String>,
    checked: String,
}

impl OpenDataDialog {
    /// The window, filled with `last` (the data in use or last chosen) when there is one.
    pub fn new(last: Option<&DataChoice>) -> Self {
        let mut d = Self {
            which: Which::Folder,
            folder: String::new(),
            image_size: DEFAULT_IMAGE_SIZE,
            grayscale: false,
            kind: Err(String::new()),
            checked: String::new(),
        };
        if let Some(last) = last {
            match last.data_source() {
                DataSource::Folder(dir) => d.folder = dir.display().to_string(),
                DataSource::Sample | DataSource::Shapes => d.which = Which::BuiltIn(DataSource::BUILT_IN[0]),
            }
            if let Some(word) = DataSource::BUILT_IN.iter().find(|w| w.eq_ignore_ascii_case(&last.source)) {
                d.which = Which::BuiltIn(word);
            }
            d.image_size = last.image_size.unwrap_or(DEFAULT_IMAGE_SIZE);
            d.grayscale = last.grayscale;
        }
        d.check_folder();
        d
    }

    /// Puts `dir` in the folder field and selects it (a folder chosen in the file dialog or
    /// dropped on the window).
    pub fn set_folder(&mut self, dir: &Path) {
        self.folder = dir.display().to_string();
        self.which = Which::Folder;
        self.check_folder();
    }

    /// The folder in the field, if any.
    pub fn folder_path(&self) -> Option<PathBuf> {
        let text = self.folder.trim();
        (!text.is_empty()).then(|| PathBuf::from(text))
    }

    /// What to load, or why not yet.
    pub fn choice(&self) -> Result<(DataSource, LoadOptions), String> {
        let source = match self.which {
            Which::BuiltIn(word) => DataSource::parse(word),
            Which::Folder => match self.folder_path() {
                Some(dir) => DataSource::Folder(dir),
                None => return Err("Type a folder or choose one.".into()),
            },
        };
        let options = LoadOptions {
            image_size: Some(self.image_size.clamp(*IMAGE_SIZES.start(), *IMAGE_SIZES.end())),
            grayscale: self.grayscale,
            ..LoadOptions::default()
        };
        Ok((source, options))
    }

    /// Recognises the folder in the field (only when it changed: it reads the folder).
    fn check_folder(&mut self) {
        if self.checked == self.folder {
            return;
        }
        self.checked = self.folder.clone();
        self.kind = match self.folder_path() {
            None => Err(String::new()),
            Some(dir) => kind_of(&dir).map(|k| k.describe().to_string()).map_err(|e| e.to_string()),
        };
    }

    /// Draws the window over the others (everything behind it waits).
    pub fn ui(&mut self, ctx: &egui::Context) -> OpenDataOutcome {
        let mut outcome = OpenDataOutcome::Open;
        let modal = egui::Modal::new(egui::Id::unique("open data")).show(ctx, |ui| {
            ui.set_width(600.0);
            ui.heading("Open data");
            ui.label(
                RichText::new(
                    "The current run goes on until the new data is in; then you choose whether to switch, \
                     and which network to train on it.",
                )
                .small(),
            );
            ui.add_space(6.0);
            ui.radio_value(&mut self.which, Which::Folder, A_FOLDER_LABEL).on_hover_text(
                "MNIST-style IDX files (train-images-idx3-ubyte …), or pictures in class folders \
                 (train/<class>/*.png and test/<class>/*.png, or only <class>/*.png)",
            );
            ui.indent("folder", |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label(FOLDER_LABEL);
                    let r = ui
                        .add(
                            TextEdit::singleline(&mut self.folder)
                                .desired_width(340.0)
                                .hint_text("a folder")
                                .id_salt("open data folder"),
                        )
                        .labelled_by(label.id);
                    if r.changed() {
                        self.which = Which::Folder;
                    }
                    if ui.button(CHOOSE_FOLDER_LABEL).on_hover_text("Browse for the folder").clicked() {
                        outcome = OpenDataOutcome::ChooseFolder;
                    }
                });
                self.check_folder();
                match &self.kind {
                    Ok(kind) => {
                        ui.label(RichText::new(format!("This folder holds {kind}.")).small());
                    }
                    Err(e) if !e.is_empty() => {
                        ui.label(RichText::new(e).small().color(ui.visuals().warn_fg_color));
                    }
                    Err(_) => {}
                }
            });
            ui.add_space(4.0);
            for word in DataSource::BUILT_IN {
                ui.horizontal(|ui| {
                    ui.radio_value(&mut self.which, Which::BuiltIn(word), format!("Built in: {word}"));
                    ui.label(RichText::new(describe_built_in(word)).small().weak());
                });
            }
            ui.add_space(6.0);
            ui.separator();
            ui.label(RichText::new("Folders of pictures").strong());
            ui.horizontal(|ui| {
                let label = ui.label(IMAGE_SIZE_LABEL);
                ui.add(egui::DragValue::new(&mut self.image_size).range(IMAGE_SIZES).suffix(" px"))
                    .labelled_by(label.id)
                    .on_hover_text(
                        "Pictures of any size become squares of this side (as --image-size): \
                         small pictures train fast; 32 is CIFAR-10's size",
                    );
                ui.label(format!("× {} (IDX folders keep their size)", self.image_size));
            });
            ui.checkbox(&mut self.grayscale, GREY_LABEL)
                .on_hover_text("One channel instead of red, green and blue (as --grayscale)");
            ui.add_space(8.0);
            let choice = self.choice();
            ui.horizontal(|ui| {
                let load = ui.add_enabled(choice.is_ok(), egui::Button::new(RichText::new(LOAD_LABEL).strong()));
                let load = match &choice {
                    Err(why) => load.on_disabled_hover_text(why),
                    Ok(_) => load,
                };
                if load.clicked()
                    && let Ok((source, options)) = choice.clone()
                {
                    outcome = OpenDataOutcome::Load(source, options);
                }
                if ui.button("Cancel").clicked() {
                    outcome = OpenDataOutcome::Cancelled;
                }
            });
        });
        if outcome == OpenDataOutcome::Open && modal.should_close() {
            outcome = OpenDataOutcome::Cancelled;
        }
        outcome
    }
}

/// One sentence on a built-in set, for its hover text.
fn describe_built_in(word: &str) -> String {
    match word {
        "mnist-sample" => "the MNIST sample inside the program: 10,000 training and 10,000 test digits".into(),
        "shapes" => "generated colour shapes: the class is the shape, not its colour, size or place".into(),
        _ => "a set built into the program".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_typed_folder_is_loaded_with_the_picture_options() {
        let mut d = OpenDataDialog::new(None);
        assert!(d.choice().is_err(), "nothing chosen yet");
        d.set_folder(Path::new("/data/photos"));
        d.image_size = 48;
        d.grayscale = true;
        let (source, options) = d.choice().unwrap();
        assert_eq!(source, DataSource::Folder("/data/photos".into()));
        assert_eq!((options.image_size, options.grayscale), (Some(48), true));
        assert!(d.kind.is_err(), "a missing folder is said to be missing");
    }

    #[test]
    fn the_last_choice_fills_the_window() {
        let last = DataChoice { source: "mnist-sample".into(), image_size: Some(64), grayscale: false };
        let d = OpenDataDialog::new(Some(&last));
        let (source, options) = d.choice().unwrap();
        assert_eq!((source, options.image_size), (DataSource::Sample, Some(64)));
    }
}

/// What the window asks once new data is in.
#[derive(Clone, Debug)]
pub struct DataQuestion<'a> {
    /// Where the data came from ([`crate::data::Splits::source`]).
    pub source: &'a str,
    /// Its images: channels, height, width.
    pub input: (usize, usize, usize),
    /// Its classes.
    pub classes: usize,
    /// Training and test images.
    pub images: (usize, usize),
    /// What the reader wants the user to know (a held-out share, files skipped).
    pub notes: &'a [String],
    /// The current network, as the user knows it (a name or a line).
    pub network: &'a str,
    /// Why the current network does not fit the new images; `None` when it fits.
    pub misfit: Option<&'a str>,
    /// The named networks that fit.
    pub fits: &'a [&'static NamedModel],
    /// The current run's step, when it has progress that is not saved.
    pub unsaved: Option<u64>,
}

/// The user's answer to a [`DataQuestion`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataAnswer {
    /// Start a run of this network (a name or a line) on the new data.
    Switch(String),
    /// Choose the network in the Network window, checked against the new data.
    EditNetwork,
    /// Keep the current data and run.
    Keep,
}

/// The label of the button that starts the named network `name` on the new data.
pub fn use_label(name: &str) -> String {
    format!("Use {name}")
}

/// "3×32×32" or "28×28" (one channel).
pub fn shape_text((c, h, w): (usize, usize, usize)) -> String {
    if c == 1 { format!("{h}×{w} grey") } else { format!("{c}×{h}×{w} colour") }
}

/// Asks, over the window, whether to switch to the new data (the current network fits and
/// the run has unsaved steps), or which network to use (it does not fit, and why).
pub fn data_question_ui(ctx: &egui::Context, q: &DataQuestion<'_>) -> Option<DataAnswer> {
    let mut answer = None;
    let modal = egui::Modal::new(egui::Id::unique("data question")).show(ctx, |ui| {
        ui.set_width(560.0);
        ui.heading(if q.misfit.is_some() { "Which network for the new data?" } else { "Switch to the new data?" });
        ui.add_space(4.0);
        ui.label(format!(
            "{}: {} training and {} test images, {}, {} classes.",
            q.source,
            thousands(q.images.0 as u64),
            thousands(q.images.1 as u64),
            shape_text(q.input),
            q.classes
        ));
        for n in q.notes {
            ui.label(RichText::new(n).small());
        }
        ui.add_space(4.0);
        if let Some(why) = q.misfit {
            ui.label(RichText::new(format!("`{}` does not fit these images: {why}", q.network)).strong());
        } else {
            ui.label(format!("The current network `{}` fits them.", q.network));
        }
        if let Some(step) = q.unsaved {
            ui.label(
                RichText::new(format!(
                    "Step {step} of the current run is not saved: a new run starts on the new data."
                ))
                .color(ui.visuals().warn_fg_color),
            );
        }
        ui.add_space(6.0);
        if q.misfit.is_some() {
            if q.fits.is_empty() {
                ui.label("None of the named networks fits either.");
            } else {
                ui.label("Named networks that fit:");
            }
            ui.horizontal_wrapped(|ui| {
                for m in q.fits {
                    if ui.button(use_label(m.name)).on_hover_text(m.about).clicked() {
                        answer = Some(DataAnswer::Switch(m.name.to_string()));
                    }
                }
            });
        }
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            if q.misfit.is_none()
                && ui
                    .button(RichText::new(SWITCH_LABEL).strong())
                    .on_hover_text("A fresh run of the current network on the new data")
                    .clicked()
            {
                answer = Some(DataAnswer::Switch(q.network.to_string()));
            }
            if ui
                .button(EDIT_NETWORK_LABEL)
                .on_hover_text("Design the network against the new images; Apply starts it on them")
                .clicked()
            {
                answer = Some(DataAnswer::EditNetwork);
            }
            if ui.button(KEEP_LABEL).on_hover_text("The current run goes on as it was").clicked() {
                answer = Some(DataAnswer::Keep);
            }
        });
    });
    if answer.is_none() && modal.should_close() {
        answer = Some(DataAnswer::Keep);
    }
    answer
}
