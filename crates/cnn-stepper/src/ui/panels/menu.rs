//! The menu bar: File (data, a picture to classify, sessions, exports) and View (projector mode,
//! zoom, layout), and what each file action asks of the file dialog.

use std::path::{Path, PathBuf};

use eframe::egui::{self, Button};

use crate::data::picture;
use crate::ui::support::export::ShotTarget;
use crate::ui::windows::file_dialog::{DialogKind, FileDialog};

/// Something that needs a file name first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileAction {
    /// The folder of the data to open (asked for by the Open data window).
    DataFolder,
    /// A picture to run through the network.
    ClassifyImage,
    /// Open a session file, or a weights-only file (e.g. trained in PyTorch).
    OpenSession,
    /// Save weights and training state.
    SaveSession,
    /// The weights as NumPy `.npz` with the post's names.
    ExportNpz,
    /// The loss and accuracy curves as CSV.
    ExportCurves,
    /// A PNG of part of the window.
    ExportPng(ShotTarget),
    /// A lesson file (Markdown) to teach from.
    OpenLesson,
}

impl FileAction {
    /// The dialog that asks for this action's file, starting in `dir`; `last_session` is the
    /// session file last opened or saved (suggested again, and replaced without asking).
    pub fn dialog(self, dir: &Path, step: u64, last_session: Option<&Path>) -> FileDialog {
        let session_name = || {
            last_session
                .and_then(Path::file_name)
                .map_or_else(|| format!("session-step{step}.safetensors"), |n| n.to_string_lossy().into_owned())
        };
        match self {
            Self::DataFolder => FileDialog::new("Choose the data folder", DialogKind::Folder, &[], dir, ""),
            Self::ClassifyImage => FileDialog::new(
                "Classify an image (PNG, JPEG, BMP or GIF)",
                DialogKind::Open,
                &picture::EXTENSIONS,
                dir,
                "",
            ),
            Self::OpenSession => FileDialog::new(
                "Open a session or a weights file",
                DialogKind::Open,
                &["safetensors"],
                dir,
                &last_session.and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            ),
            Self::SaveSession => {
                FileDialog::new("Save the session", DialogKind::Save, &["safetensors"], dir, &session_name())
                    .replace_silently(last_session.map(Path::to_path_buf))
            }
            Self::ExportNpz => FileDialog::new(
                "Export the weights for NumPy (the post's names)",
                DialogKind::Save,
                &["npz"],
                dir,
                &format!("weights-step{step}.npz"),
            ),
            Self::ExportCurves => FileDialog::new(
                "Export the loss and accuracy curves",
                DialogKind::Save,
                &["csv"],
                dir,
                &format!("curves-step{step}.csv"),
            ),
            Self::OpenLesson => FileDialog::new("Open a lesson (Markdown)", DialogKind::Open, &["md"], dir, ""),
            Self::ExportPng(t) => FileDialog::new(
                format!("Save {} as PNG", t.label()),
                DialogKind::Save,
                &["png"],
                dir,
                &t.default_name(step),
            ),
        }
    }
}

/// What the menu bar asked for in one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MenuAction {
    /// Ask for a file, then act.
    File(FileAction),
    /// Show the Open data window.
    OpenData,
    /// Projector mode on or off.
    SetProjector(bool),
    /// Back to the automatic zoom (follows the window size).
    AutoZoom,
    /// Show or hide the help panel.
    SetHelp(bool),
    /// Show or hide the draw-a-digit window.
    SetDraw(bool),
    /// Show or hide the Network editor.
    SetNetwork(bool),
    /// Show or hide the pipeline (left panel).
    SetPipeline(bool),
    /// Show or hide the outputs and curves (right panel).
    SetOutputs(bool),
    /// Show or hide the list of keyboard shortcuts.
    SetKeys(bool),
    /// Show or hide the convolution playground.
    SetPlayground(bool),
    /// PNG pictures at this multiple of the screen's resolution (1 to 3).
    SetPngScale(u8),
    /// Panel sizes, zoom, projector mode, views and window size back to how they started.
    ResetLayout,
    /// Start the built-in lesson of this name ([`crate::lessons::builtin::BUILT_IN`]).
    BuiltInLesson(&'static str),
    /// Close the window.
    Quit,
}

/// What the View menu shows as ticked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MenuState {
    /// Projector mode is on.
    pub projector: bool,
    /// The help panel is shown.
    pub help: bool,
    /// The draw-a-digit window is open.
    pub draw: bool,
    /// The Network editor is open.
    pub network: bool,
    /// The pipeline (left panel) is shown.
    pub pipeline: bool,
    /// The outputs and curves (right panel) are shown.
    pub outputs: bool,
    /// The list of keyboard shortcuts is shown.
    pub keys: bool,
    /// The convolution playground is open.
    pub playground: bool,
    /// PNG pictures' resolution, as a multiple of the screen's.
    pub png_scale: u8,
    /// The zoom now (1.0 = 100 %).
    pub zoom: f32,
    /// True when the user set the zoom with the keyboard.
    pub manual_zoom: bool,
    /// Why file actions cannot run now (no trainer), if so.
    pub files_disabled: Option<&'static str>,
    /// Why Draw a digit cannot be used with this network (it takes colour pictures), if so.
    pub draw_disabled: Option<&'static str>,
}

/// The File menu's item that opens the Open data window.
pub const OPEN_DATA_ITEM: &str = "Open data…";
/// The View menu's item that opens the convolution playground.
pub const PLAYGROUND_ITEM: &str = "Convolution playground…";
/// The File menu's item that asks for a lesson file.
pub const OPEN_LESSON_ITEM: &str = "Open lesson…";
/// The File menu's item that asks for a picture to classify.
pub const CLASSIFY_ITEM: &str = "Classify an image…";
/// Why Draw a digit is off for a colour network.
pub const DRAW_IS_GREY: &str = "Draw a digit makes grey digits, and this network takes colour pictures: \
                                classify a picture instead (File > Classify an image…, or drop one on the window)";

/// Draws the menu bar and returns what was chosen. `pictures` are the parts of the window the
/// File menu offers to save as PNG, in menu order.
pub fn menu_bar_ui(ui: &mut egui::Ui, state: MenuState, pictures: &[ShotTarget]) -> Option<MenuAction> {
    let mut action = None;
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            let files = state.files_disabled.is_none();
            let why = state.files_disabled.unwrap_or_default();
            let r = ui.add_enabled(files, Button::new(OPEN_DATA_ITEM)).on_hover_text(
                "Train on other data: a folder of MNIST-style IDX files or of pictures in class folders, \
                     or a set built into the program. The current run goes on until the data is in.",
            );
            let r = if files { r } else { r.on_disabled_hover_text(why) };
            if r.clicked() {
                action = Some(MenuAction::OpenData);
            }
            let mut item = |ui: &mut egui::Ui, text: &str, shortcut: &str, hover: &str, a: FileAction| {
                let button =
                    if shortcut.is_empty() { Button::new(text) } else { Button::new(text).shortcut_text(shortcut) };
                let r = ui.add_enabled(files, button).on_hover_text(hover);
                let r = if files { r } else { r.on_disabled_hover_text(why) };
                if r.clicked() {
                    action = Some(MenuAction::File(a));
                }
            };
            item(
                ui,
                CLASSIFY_ITEM,
                "",
                "Run a picture (PNG, JPEG, BMP or GIF) through the network and show it in every view, \
                 as a drawn digit is; dropping a picture on the window does the same",
                FileAction::ClassifyImage,
            );
            item(
                ui,
                OPEN_LESSON_ITEM,
                "",
                "A lesson file: cards of text, each putting the app in a state (a network, a step, a tab). \
                 Write your own in Markdown; see the built-in ones in the Lessons menu",
                FileAction::OpenLesson,
            );
            ui.separator();
            item(
                ui,
                "Open session or weights…",
                "Ctrl+O",
                "A session file continues exactly where it was saved; a weights-only file \
                 (e.g. from PyTorch) starts a new run from those weights",
                FileAction::OpenSession,
            );
            item(
                ui,
                "Save session…",
                "Ctrl+S",
                "Weights, optimizer state, batch order and curves: opening it later continues \
                 bit-identically. A half-done step is finished first.",
                FileAction::SaveSession,
            );
            ui.separator();
            item(
                ui,
                "Export weights as NumPy .npz…",
                "",
                "c1_filters, c1_b, c2_filters, c2_b, fc_W1, fc_b1, fc_W2, fc_b2: load them into the post's code \
                 with np.load",
                FileAction::ExportNpz,
            );
            item(
                ui,
                "Export curves as CSV…",
                "",
                "step, loss, batch accuracy, test accuracy",
                FileAction::ExportCurves,
            );
            ui.separator();
            let mut scale = None;
            ui.horizontal(|ui| {
                ui.label("PNG resolution");
                for k in 1..=3u8 {
                    let tip = if k == 1 {
                        "As on screen".to_string()
                    } else {
                        format!("{k} times the screen's pixels, for slides and print (the window grows for a moment)")
                    };
                    if ui.selectable_label(state.png_scale == k, format!("{k}×")).on_hover_text(tip).clicked() {
                        scale = Some(k);
                    }
                }
            });
            for &t in pictures {
                let text = format!("Save {} as PNG…", t.label());
                item(ui, &text, "", "Exactly as shown, legend included", FileAction::ExportPng(t));
            }
            ui.separator();
            if let Some(k) = scale {
                action = Some(MenuAction::SetPngScale(k));
            }
            if ui.button("Quit").clicked() {
                action = Some(MenuAction::Quit);
            }
        });
        ui.menu_button("Lessons", |ui| {
            for b in crate::lessons::builtin::BUILT_IN {
                let r = ui
                    .add_enabled(state.files_disabled.is_none(), Button::new(b.title()))
                    .on_hover_text("Start this lesson: each card puts the app in its state; Leave keeps it");
                if r.clicked() {
                    action = Some(MenuAction::BuiltInLesson(b.name));
                }
            }
            ui.separator();
            if ui.add_enabled(state.files_disabled.is_none(), Button::new(OPEN_LESSON_ITEM)).clicked() {
                action = Some(MenuAction::File(FileAction::OpenLesson));
            }
        });
        ui.menu_button("View", |ui| {
            let mut projector = state.projector;
            if ui
                .checkbox(&mut projector, "Projector mode")
                .on_hover_text("Larger everything, for the back of a classroom")
                .changed()
            {
                action = Some(MenuAction::SetProjector(projector));
            }
            let mut help = state.help;
            if ui.checkbox(&mut help, "Help panel").on_hover_text("What each panel and phase shows").changed() {
                action = Some(MenuAction::SetHelp(help));
            }
            let mut draw = state.draw;
            let r = ui
                .add_enabled(state.draw_disabled.is_none(), egui::Checkbox::new(&mut draw, "Draw a digit"))
                .on_hover_text("Draw with the mouse; the network classifies it")
                .on_disabled_hover_text(state.draw_disabled.unwrap_or_default());
            if r.changed() {
                action = Some(MenuAction::SetDraw(draw));
            }
            let mut pipeline = state.pipeline;
            if ui
                .checkbox(&mut pipeline, "Pipeline panel")
                .on_hover_text("The list of phases at the left; hide it to give the maps its room")
                .changed()
            {
                action = Some(MenuAction::SetPipeline(pipeline));
            }
            let mut outputs = state.outputs;
            if ui
                .checkbox(&mut outputs, "Outputs and curves panel")
                .on_hover_text("Probabilities and training curves at the right; hide it to give the maps its room")
                .changed()
            {
                action = Some(MenuAction::SetOutputs(outputs));
            }
            if ui
                .add(Button::selectable(state.playground, PLAYGROUND_ITEM))
                .on_hover_text(
                    "A kernel sliding over a small input you choose, step by step: padding, stride, the \
                     output-size formula, max and average pooling. Independent of training.",
                )
                .clicked()
            {
                action = Some(MenuAction::SetPlayground(true));
            }
            let mut keys = state.keys;
            if ui.checkbox(&mut keys, "Keyboard shortcuts").on_hover_text("Every key the window answers (F1)").changed()
            {
                action = Some(MenuAction::SetKeys(keys));
            }
            ui.separator();
            ui.label(format!("Zoom {:.0} %  (Ctrl+= / Ctrl+− / Ctrl+0)", state.zoom * 100.0));
            if ui
                .add_enabled(state.manual_zoom, Button::new("Fit zoom to the window"))
                .on_hover_text("The zoom follows the window size again")
                .clicked()
            {
                action = Some(MenuAction::AutoZoom);
            }
            ui.separator();
            if ui
                .button("Reset layout")
                .on_hover_text("Panel sizes, zoom, projector mode, view choices and window size as at first start")
                .clicked()
            {
                action = Some(MenuAction::ResetLayout);
            }
        });
        ui.separator();
        // The teaching windows are one click away, not hidden in a menu.
        if ui
            .selectable_label(state.network, "Network")
            .on_hover_text("Design the network: layers, pooling, activations, sizes (N)")
            .clicked()
        {
            action = Some(MenuAction::SetNetwork(!state.network));
        }
        if ui
            .add_enabled(state.draw_disabled.is_none(), Button::selectable(state.draw, "Draw a digit"))
            .on_hover_text("Draw your own digit and watch the network classify it, while it trains")
            .on_disabled_hover_text(state.draw_disabled.unwrap_or_default())
            .clicked()
        {
            action = Some(MenuAction::SetDraw(!state.draw));
        }
        if ui
            .selectable_label(state.help, "Help")
            .on_hover_text("What each panel and phase shows, with formulas")
            .clicked()
        {
            action = Some(MenuAction::SetHelp(!state.help));
        }
    });
    action
}

/// The folder a file dialog starts in: the last one used, else the working directory.
pub fn start_dir(last_dir: Option<&Path>) -> PathBuf {
    last_dir.map(Path::to_path_buf).or_else(|| std::env::current_dir().ok()).unwrap_or_else(|| PathBuf::from("/"))
}
