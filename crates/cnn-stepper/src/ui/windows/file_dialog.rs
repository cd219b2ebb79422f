//! A file dialog drawn with egui itself, so that opening and saving need no system library
//! (GTK, a portal) beyond what eframe already uses: the README's two commands stay the whole
//! set-up on any Linux desktop, a bare VM or a classroom machine.
//!
//! The navigation and checks ([`FileDialog::choose`], [`FileDialog::enter_dir`], …) are plain
//! methods, tested without a window; [`FileDialog::ui`] only draws them.

use std::path::{Path, PathBuf};

use eframe::egui::{self, Key, RichText, TextEdit};

/// Open an existing file, name one to write, or choose a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogKind {
    /// The chosen file must exist.
    Open,
    /// The chosen file is written; an existing one is replaced only after a confirmation.
    Save,
    /// A folder is chosen (a data folder): only folders are listed, with a count of the files
    /// in the one shown; an empty name field chooses the folder shown.
    Folder,
}

/// Label of the name field in folder mode (the file modes say "File name:").
pub const FOLDER_NAME_LABEL: &str = "Folder name:";

/// One line of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// File or folder name.
    pub name: String,
    /// True for folders.
    pub is_dir: bool,
    /// Size in bytes (files only).
    pub len: u64,
}

/// What the dialog came to after a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialogOutcome {
    /// Still open.
    Open,
    /// Closed without a choice.
    Cancelled,
    /// This file was chosen (for Save: the user agreed to replace it if it existed).
    Chosen(PathBuf),
}

/// A modal file dialog: a folder, its listing, a file-name field, Cancel and Open/Save.
#[derive(Clone, Debug)]
pub struct FileDialog {
    title: String,
    kind: DialogKind,
    /// File extensions listed (lower case, without the dot); the first is added to a saved
    /// name that has none.
    extensions: Vec<&'static str>,
    dir: PathBuf,
    dir_text: String,
    /// The file-name field; may also hold a path, relative to `dir` or absolute.
    pub name: String,
    entries: Vec<Entry>,
    show_all: bool,
    show_hidden: bool,
    error: Option<String>,
    /// Set when Save named an existing file: the next confirmation replaces it.
    confirm_replace: Option<PathBuf>,
    /// A file that may be replaced without asking (the session file being saved again).
    replace_silently: Option<PathBuf>,
    focus_name: bool,
    /// Folder mode: how many files the folder shown holds (they are not listed).
    files_here: usize,
}

impl FileDialog {
    /// A dialog titled `title` in `dir` (or the nearest folder above it that exists), listing
    /// folders and files ending in one of `extensions`, with `name` in the file-name field.
    pub fn new(
        title: impl Into<String>,
        kind: DialogKind,
        extensions: &[&'static str],
        dir: &Path,
        name: &str,
    ) -> Self {
        let mut d = Self {
            title: title.into(),
            kind,
            extensions: extensions.to_vec(),
            dir: PathBuf::new(),
            dir_text: String::new(),
            name: name.to_string(),
            entries: Vec::new(),
            show_all: extensions.is_empty(),
            show_hidden: false,
            error: None,
            confirm_replace: None,
            replace_silently: None,
            focus_name: true,
            files_here: 0,
        };
        let start = existing_ancestor(dir).or_else(|| std::env::current_dir().ok()).unwrap_or_else(|| "/".into());
        d.enter_dir(&start);
        d
    }

    /// Lets Save replace `path` without asking (it is the file the user opened or saved last).
    pub fn replace_silently(mut self, path: Option<PathBuf>) -> Self {
        self.replace_silently = path;
        self
    }

    /// The folder shown.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The listing shown: folders first, then matching files, each sorted by name.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// What went wrong last (unreadable folder, missing file, …), if anything.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The file waiting for "replace it?" confirmation, if any.
    pub fn awaiting_replace(&self) -> Option<&Path> {
        self.confirm_replace.as_deref()
    }

    /// Folder mode: the number of files in the folder shown (not listed).
    pub fn files_here(&self) -> usize {
        self.files_here
    }

    /// Shows `dir`. An unreadable folder keeps the current one and says why.
    pub fn enter_dir(&mut self, dir: &Path) {
        let folders = self.kind == DialogKind::Folder;
        let listed = if folders {
            list_dir(dir, &[], true, self.show_hidden)
        } else {
            list_dir(dir, &self.extensions, self.show_all, self.show_hidden)
        };
        match listed {
            Ok(mut entries) => {
                if folders {
                    self.files_here = entries.iter().filter(|e| !e.is_dir).count();
                    entries.retain(|e| e.is_dir);
                    // A folder name picked in the folder left behind means nothing here.
                    if dir != self.dir && !self.dir.as_os_str().is_empty() {
                        self.name.clear();
                    }
                }
                self.dir = dir.to_path_buf();
                self.dir_text = dir.display().to_string();
                self.entries = entries;
                self.error = None;
                self.confirm_replace = None;
            }
            Err(e) => {
                self.dir_text = self.dir.display().to_string();
                self.error = Some(format!("Cannot open the folder {}: {e}", dir.display()));
            }
        }
    }

    fn refresh(&mut self) {
        let dir = self.dir.clone();
        self.enter_dir(&dir);
    }

    /// Goes to the parent folder.
    pub fn up(&mut self) {
        if let Some(parent) = self.dir.parent().map(Path::to_path_buf) {
            self.enter_dir(&parent);
        }
    }

    /// The path the file-name field names, with the default extension added for Save.
    fn target(&self) -> Option<PathBuf> {
        let name = self.name.trim();
        if name.is_empty() {
            return None;
        }
        let mut path = self.dir.join(expand_home(name));
        if self.kind == DialogKind::Save
            && !path.is_dir()
            && path.extension().is_none()
            && let Some(ext) = self.extensions.first()
        {
            path.set_extension(ext);
        }
        Some(path)
    }

    /// Acts on the file-name field as the Open/Save button does: a folder is entered; a file is
    /// chosen if it passes the checks (Open: it exists; Save: its folder exists, and an existing
    /// file is replaced only when asked twice). Otherwise `error` says why. In folder mode the
    /// folder named is chosen, or the folder shown when the field is empty.
    pub fn choose(&mut self) -> Option<PathBuf> {
        if self.kind == DialogKind::Folder {
            let name = self.name.trim();
            let path = if name.is_empty() { self.dir.clone() } else { self.dir.join(expand_home(name)) };
            if path.is_dir() {
                return Some(path);
            }
            self.error = Some(format!("{} is not a folder.", path.display()));
            return None;
        }
        let Some(path) = self.target() else {
            self.error = Some("Type a file name or pick a file from the list.".into());
            return None;
        };
        if path.is_dir() {
            self.name.clear();
            self.enter_dir(&path);
            return None;
        }
        match self.kind {
            DialogKind::Open => {
                if path.is_file() {
                    Some(path)
                } else {
                    self.error = Some(format!("{} does not exist.", path.display()));
                    None
                }
            }
            DialogKind::Folder | DialogKind::Save => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                if !parent.is_dir() {
                    self.error = Some(format!("The folder {} does not exist.", parent.display()));
                    return None;
                }
                let asked = self.confirm_replace.as_deref() == Some(path.as_path());
                let silent = self.replace_silently.as_deref() == Some(path.as_path());
                if path.exists() && !asked && !silent {
                    self.error = None;
                    self.confirm_replace = Some(path);
                    return None;
                }
                Some(path)
            }
        }
    }

    /// Single click on a listing line: a file's name goes to the field; folders wait for a
    /// double click (in folder mode a folder's name goes to the field: the button chooses it).
    pub fn select(&mut self, entry: &Entry) {
        if !entry.is_dir || self.kind == DialogKind::Folder {
            self.name = entry.name.clone();
            self.confirm_replace = None;
            self.error = None;
        }
    }

    /// Double click on a listing line: enters a folder, chooses a file.
    pub fn activate(&mut self, entry: &Entry) -> Option<PathBuf> {
        if entry.is_dir {
            let dir = self.dir.join(&entry.name);
            self.enter_dir(&dir);
            None
        } else {
            self.name = entry.name.clone();
            self.choose()
        }
    }

    /// Draws the dialog over the window (everything behind it is blocked) and handles its keys:
    /// Enter chooses, Escape cancels.
    pub fn ui(&mut self, ctx: &egui::Context) -> DialogOutcome {
        let mut outcome = DialogOutcome::Open;
        let modal = egui::Modal::new(egui::Id::unique("file dialog")).show(ctx, |ui| {
            ui.set_width(620.0);
            ui.heading(&self.title);
            ui.add_space(4.0);
            ui.horizontal(|ui| {
                if ui.button("Up").on_hover_text("The folder that contains this one").clicked() {
                    self.up();
                }
                if let Some(home) = std::env::home_dir()
                    && ui.button("Home").on_hover_text(home.display().to_string()).clicked()
                {
                    self.enter_dir(&home);
                }
                if let Ok(cwd) = std::env::current_dir()
                    && ui
                        .button("Start folder")
                        .on_hover_text(format!("Where cnn-stepper was started: {}", cwd.display()))
                        .clicked()
                {
                    self.enter_dir(&cwd);
                }
                let label = ui.label("Folder:");
                let folder = ui
                    .add(
                        TextEdit::singleline(&mut self.dir_text)
                            .desired_width(f32::INFINITY)
                            .hint_text("a folder; Enter goes there")
                            .id_salt("dialog folder"),
                    )
                    .labelled_by(label.id);
                if folder.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                    let dir = expand_home(self.dir_text.trim());
                    self.enter_dir(&dir);
                }
            });
            ui.add_space(4.0);
            let mut clicked = None;
            let mut activated = None;
            egui::Frame::group(ui.style()).show(ui, |ui| {
                egui::ScrollArea::vertical().max_height(300.0).auto_shrink([false, false]).show(ui, |ui| {
                    if self.entries.is_empty() {
                        ui.weak(if self.kind == DialogKind::Folder {
                            "(no folders here)"
                        } else {
                            "(no folders or matching files here)"
                        });
                    }
                    for (i, e) in self.entries.iter().enumerate() {
                        let selected = (!e.is_dir || self.kind == DialogKind::Folder) && e.name == self.name.trim();
                        // Plain text marks, not emoji: the window's fonts have no emoji glyphs.
                        let text = if e.is_dir {
                            RichText::new(format!("{}/", e.name)).strong()
                        } else {
                            RichText::new(format!("{}   ({})", e.name, human_size(e.len)))
                        };
                        let r = ui.selectable_label(selected, text);
                        if r.double_clicked() {
                            activated = Some(i);
                        } else if r.clicked() {
                            clicked = Some(i);
                        }
                    }
                });
            });
            if let Some(e) = clicked.and_then(|i| self.entries.get(i).cloned()) {
                self.select(&e);
            }
            if let Some(e) = activated.and_then(|i| self.entries.get(i).cloned())
                && let Some(p) = self.activate(&e)
            {
                outcome = DialogOutcome::Chosen(p);
            }
            if self.kind == DialogKind::Folder {
                let files = match self.files_here {
                    0 => "no files".to_string(),
                    1 => "1 file".to_string(),
                    n => format!("{} files", crate::ui::support::text::thousands(n as u64)),
                };
                ui.weak(format!("This folder holds {files}. Double click a folder to enter it."));
            }
            ui.horizontal(|ui| {
                let mut all = self.show_all;
                let filter = if self.extensions.is_empty() {
                    "all files".to_string()
                } else {
                    format!("only .{}", self.extensions.join(", ."))
                };
                if !self.extensions.is_empty()
                    && self.kind != DialogKind::Folder
                    && ui.checkbox(&mut all, "Show all files").on_hover_text(format!("Otherwise {filter}")).changed()
                {
                    self.show_all = all;
                    self.refresh();
                }
                let mut hidden = self.show_hidden;
                if ui.checkbox(&mut hidden, "Show hidden").changed() {
                    self.show_hidden = hidden;
                    self.refresh();
                }
            });
            ui.add_space(4.0);
            let mut enter = false;
            ui.horizontal(|ui| {
                let folders = self.kind == DialogKind::Folder;
                let label = ui.label(if folders { FOLDER_NAME_LABEL } else { "File name:" });
                let field = ui
                    .add(
                        TextEdit::singleline(&mut self.name)
                            .desired_width(f32::INFINITY)
                            .hint_text(if folders { "empty: the folder shown" } else { "name, or a path" })
                            .id_salt("dialog file name"),
                    )
                    .labelled_by(label.id);
                if self.focus_name {
                    field.request_focus();
                    self.focus_name = false;
                }
                if field.changed() {
                    self.confirm_replace = None;
                }
                enter = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            });
            if let Some(p) = &self.confirm_replace {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("{} already exists. Press {} again to replace it.", p.display(), self.verb()),
                );
            }
            if let Some(e) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                let verb = if self.confirm_replace.is_some() { "Replace" } else { self.verb() };
                let ready = !self.name.trim().is_empty() || self.kind == DialogKind::Folder;
                let ok = ui.add_enabled(ready, egui::Button::new(RichText::new(verb).strong()));
                if (ok.clicked() || enter)
                    && let Some(p) = self.choose()
                {
                    outcome = DialogOutcome::Chosen(p);
                }
                if ui.button("Cancel").clicked() {
                    outcome = DialogOutcome::Cancelled;
                }
            });
        });
        if outcome == DialogOutcome::Open && modal.should_close() {
            outcome = DialogOutcome::Cancelled;
        }
        outcome
    }

    fn verb(&self) -> &'static str {
        match self.kind {
            DialogKind::Open => "Open",
            DialogKind::Save => "Save",
            DialogKind::Folder => "Choose this folder",
        }
    }
}

/// The listing of `dir`: folders, then files with one of `extensions` (all files if
/// `show_all`), hidden ones only if `show_hidden`; entries that cannot be read are skipped.
pub fn list_dir(dir: &Path, extensions: &[&str], show_all: bool, show_hidden: bool) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let Ok(item) = item else { continue };
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !show_hidden {
            continue;
        }
        // Follows symlinks, so a linked folder is a folder.
        let Ok(meta) = std::fs::metadata(item.path()) else { continue };
        let is_dir = meta.is_dir();
        if !is_dir && !show_all {
            let ext = Path::new(&name).extension().map(|e| e.to_string_lossy().to_lowercase());
            if !ext.is_some_and(|e| extensions.contains(&e.as_str())) {
                continue;
            }
        }
        entries.push(Entry { name, is_dir, len: if is_dir { 0 } else { meta.len() } });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase())));
    Ok(entries)
}

/// `dir` if it is a folder, else the nearest folder above it.
fn existing_ancestor(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.is_dir()).map(Path::to_path_buf)
}

/// `~` or `~/x` → the home folder (typed paths are often written that way).
fn expand_home(text: &str) -> PathBuf {
    match (text.strip_prefix('~'), std::env::home_dir()) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(text),
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn folder() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("runs")).unwrap();
        std::fs::write(t.path().join("b.safetensors"), b"x").unwrap();
        std::fs::write(t.path().join("A.safetensors"), b"xy").unwrap();
        std::fs::write(t.path().join("notes.txt"), b"").unwrap();
        std::fs::write(t.path().join(".hidden.safetensors"), b"").unwrap();
        t
    }

    fn names(d: &FileDialog) -> Vec<&str> {
        d.entries().iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn lists_folders_first_then_matching_files_by_name() {
        let t = folder();
        let d = FileDialog::new("Open", DialogKind::Open, &["safetensors"], t.path(), "");
        assert_eq!(names(&d), ["runs", "A.safetensors", "b.safetensors"]);
    }

    #[test]
    fn show_all_and_hidden_widen_the_listing() {
        let t = folder();
        let all = list_dir(t.path(), &["safetensors"], true, true).unwrap();
        let n: Vec<_> = all.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(n, ["runs", ".hidden.safetensors", "A.safetensors", "b.safetensors", "notes.txt"]);
    }

    #[test]
    fn open_needs_an_existing_file() {
        let t = folder();
        let mut d = FileDialog::new("Open", DialogKind::Open, &["safetensors"], t.path(), "missing.safetensors");
        assert_eq!(d.choose(), None);
        assert!(d.error().unwrap().contains("missing.safetensors does not exist"), "{:?}", d.error());
        d.name = "A.safetensors".into();
        assert_eq!(d.choose(), Some(t.path().join("A.safetensors")));
    }

    #[test]
    fn a_typed_folder_is_entered_not_chosen() {
        let t = folder();
        let mut d = FileDialog::new("Open", DialogKind::Open, &["safetensors"], t.path(), "runs");
        assert_eq!(d.choose(), None);
        assert_eq!(d.dir(), t.path().join("runs"));
        assert!(d.name.is_empty());
        d.up();
        assert_eq!(d.dir(), t.path());
    }

    #[test]
    fn save_adds_the_extension_and_asks_before_replacing() {
        let t = folder();
        let mut d = FileDialog::new("Save", DialogKind::Save, &["safetensors"], t.path(), "new");
        assert_eq!(d.choose(), Some(t.path().join("new.safetensors")));
        d.name = "b".into();
        assert_eq!(d.choose(), None, "an existing file is not replaced at the first press");
        assert_eq!(d.awaiting_replace(), Some(t.path().join("b.safetensors").as_path()));
        assert_eq!(d.choose(), Some(t.path().join("b.safetensors")), "the second press replaces it");
    }

    #[test]
    fn saving_again_over_the_same_session_file_does_not_ask() {
        let t = folder();
        let same = t.path().join("b.safetensors");
        let mut d = FileDialog::new("Save", DialogKind::Save, &["safetensors"], t.path(), "b.safetensors")
            .replace_silently(Some(same.clone()));
        assert_eq!(d.choose(), Some(same));
    }

    #[test]
    fn save_into_a_missing_folder_is_refused_with_its_name() {
        let t = folder();
        let mut d = FileDialog::new("Save", DialogKind::Save, &["png"], t.path(), "nowhere/x.png");
        assert_eq!(d.choose(), None);
        assert!(d.error().unwrap().contains("nowhere"), "{:?}", d.error());
    }

    #[test]
    fn an_unreadable_or_missing_folder_keeps_the_current_one() {
        let t = folder();
        let mut d = FileDialog::new("Open", DialogKind::Open, &["safetensors"], t.path(), "");
        d.enter_dir(&t.path().join("no such folder"));
        assert_eq!(d.dir(), t.path());
        assert!(d.error().unwrap().contains("no such folder"));
    }

    #[test]
    fn a_missing_start_folder_falls_back_to_its_nearest_existing_parent() {
        let t = folder();
        let d = FileDialog::new("Open", DialogKind::Open, &[], &t.path().join("gone/deeper"), "");
        assert_eq!(d.dir(), t.path());
    }

    #[test]
    fn folder_mode_lists_folders_counts_files_and_chooses_the_folder_named_or_shown() {
        let t = folder();
        std::fs::create_dir(t.path().join("digits")).unwrap();
        let mut d = FileDialog::new("Data", DialogKind::Folder, &[], t.path(), "");
        assert_eq!(names(&d), ["digits", "runs"]);
        assert_eq!(d.files_here(), 3, "A, b and notes; the hidden file is not counted");
        assert_eq!(d.choose(), Some(t.path().to_path_buf()), "an empty name chooses the folder shown");
        let runs = d.entries()[1].clone();
        d.select(&runs);
        assert_eq!(d.choose(), Some(t.path().join("runs")), "a click picks a folder, the button chooses it");
        d.name = "A.safetensors".into();
        assert_eq!(d.choose(), None);
        assert!(d.error().unwrap().contains("is not a folder"), "{:?}", d.error());
        let digits = d.entries()[0].clone();
        assert_eq!(d.activate(&digits), None, "a double click enters");
        assert_eq!(d.dir(), t.path().join("digits"));
    }

    #[test]
    fn double_click_enters_folders_and_chooses_files() {
        let t = folder();
        let mut d = FileDialog::new("Open", DialogKind::Open, &["safetensors"], t.path(), "");
        let file = d.entries()[1].clone();
        assert_eq!(d.activate(&file), Some(t.path().join("A.safetensors")));
        let dir = d.entries()[0].clone();
        assert_eq!(d.activate(&dir), None);
        assert_eq!(d.dir(), t.path().join("runs"));
    }
}
