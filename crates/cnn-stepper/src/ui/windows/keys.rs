//! The keyboard: the one list of the shortcuts the window answers ([`SHORTCUTS`]), which the app
//! reads its keys from, and the overlay that lists them (F1 or ?), built from that list and the
//! tabs' own keys so that it cannot drift from what the keys do.

use eframe::egui::{self, Key, Modifiers, RichText};

use crate::ui::tabs::Tab;

/// What a shortcut does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// Run, or pause a run.
    RunPause,
    /// Run the next phase.
    StepPhase,
    /// Go back one phase within the batch.
    StepBack,
    /// Finish the batch, or run a whole new one.
    StepBatch,
    /// Start again from fresh weights with the seed in the field.
    Reset,
    /// Save the session.
    Save,
    /// Open a session or weights file.
    Open,
    /// Show or hide the Network editor.
    Network,
    /// Show or hide this list.
    KeysHelp,
}

/// One key the window answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shortcut {
    /// What it does.
    pub action: KeyAction,
    /// The modifiers held (none, Shift, Ctrl/⌘).
    pub modifiers: Modifiers,
    /// The key.
    pub key: Key,
    /// What it does, in words.
    pub what: &'static str,
    /// True when it works even while a text field has the focus.
    pub while_typing: bool,
}

const fn shortcut(action: KeyAction, modifiers: Modifiers, key: Key, what: &'static str) -> Shortcut {
    Shortcut { action, modifiers, key, what, while_typing: false }
}

/// Every shortcut the app handles (besides the tabs' keys, [`Tab::key`], and the zoom keys
/// eframe handles, [`ZOOM_KEYS`]). Where one key is a prefix of another (→ and Shift+→), the
/// one with more modifiers comes first: egui matches a key with extra Shift too.
pub const SHORTCUTS: [Shortcut; 11] = [
    shortcut(KeyAction::RunPause, Modifiers::NONE, Key::Space, "run / pause"),
    shortcut(KeyAction::StepBatch, Modifiers::SHIFT, Key::ArrowRight, "step one batch (the rest of this one)"),
    shortcut(KeyAction::StepPhase, Modifiers::NONE, Key::ArrowRight, "step one phase"),
    shortcut(KeyAction::StepBack, Modifiers::NONE, Key::ArrowLeft, "step back one phase (within the batch)"),
    shortcut(KeyAction::Reset, Modifiers::NONE, Key::R, "reset with the seed"),
    shortcut(KeyAction::Network, Modifiers::NONE, Key::N, "show or hide the Network editor"),
    Shortcut { while_typing: true, ..shortcut(KeyAction::Save, Modifiers::COMMAND, Key::S, "save the session") },
    Shortcut { while_typing: true, ..shortcut(KeyAction::Open, Modifiers::COMMAND, Key::O, "open a session") },
    Shortcut {
        while_typing: true,
        ..shortcut(KeyAction::KeysHelp, Modifiers::NONE, Key::F1, "show or hide this list of keys")
    },
    shortcut(KeyAction::KeysHelp, Modifiers::NONE, Key::Questionmark, "show or hide this list of keys"),
    shortcut(KeyAction::KeysHelp, Modifiers::NONE, Key::Escape, "close this list"),
];

/// The keys the Loops tab reads while it is in front (none of [`SHORTCUTS`]' keys, nor a
/// tab's digit): (key, what).
pub const LOOPS_KEYS: [(Key, &str); 4] = [
    (Key::I, "Loops: one iteration"),
    (Key::L, "Loops: to the end of the inner loop"),
    (Key::G, "Loops: run / stop the loop"),
    (Key::E, "Loops: to the end of the phase"),
];

/// The zoom keys, which eframe handles itself: (keys, what).
pub const ZOOM_KEYS: [(&str, &str); 3] =
    [("Ctrl+=", "larger"), ("Ctrl+−", "smaller"), ("Ctrl+0", "back to 100 % (View > Fit zoom follows the window)")];

/// How a key is written, e.g. "Shift+Right", "Ctrl+S", "?".
pub fn key_text(modifiers: Modifiers, key: Key) -> String {
    let mut text = String::new();
    if modifiers.command || modifiers.ctrl {
        text.push_str(if cfg!(target_os = "macos") { "Cmd+" } else { "Ctrl+" });
    }
    if modifiers.alt {
        text.push_str("Alt+");
    }
    if modifiers.shift {
        text.push_str("Shift+");
    }
    text.push_str(match key {
        Key::Questionmark => "?",
        k => k.name(),
    });
    text
}

/// The actions whose keys were pressed this frame, in [`SHORTCUTS`] order, each once; keys are
/// consumed so that no widget also reacts to them. While a text field has the focus, only the
/// shortcuts marked [`Shortcut::while_typing`] count. Escape counts only when `keys_shown` (it
/// closes the list, and means nothing else here).
pub fn pressed(ctx: &egui::Context, typing: bool, keys_shown: bool) -> Vec<KeyAction> {
    let mut out = Vec::new();
    ctx.input_mut(|i| {
        for s in SHORTCUTS {
            if (typing && !s.while_typing) || (s.key == Key::Escape && !keys_shown) {
                continue;
            }
            if i.consume_key(s.modifiers, s.key) && !out.contains(&s.action) {
                out.push(s.action);
            }
        }
    });
    out
}

/// The list of keys as a window in the middle of the screen; returns false when closed.
pub fn keys_window(ctx: &egui::Context, tabs: &[Box<dyn Tab>]) -> bool {
    let mut open = true;
    egui::Window::new("Keyboard shortcuts")
        .id(egui::Id::unique("keyboard shortcuts"))
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::vec2(0.0, 0.0))
        .show(ctx, |ui| keys_ui(ui, tabs));
    open
}

/// The table of keys: the app's shortcuts, the tabs' keys and the zoom keys.
pub fn keys_ui(ui: &mut egui::Ui, tabs: &[Box<dyn Tab>]) {
    let mut rows: Vec<(String, String)> = Vec::new();
    for s in SHORTCUTS {
        let keys = key_text(s.modifiers, s.key);
        // F1 and ? do the same: one row.
        match rows.last_mut() {
            Some(last) if last.1 == s.what => last.0.push_str(&format!(" or {keys}")),
            _ => rows.push((keys, s.what.to_string())),
        }
    }
    for tab in tabs {
        if let Some(k) = tab.key() {
            rows.push((key_text(Modifiers::NONE, k), format!("the {} tab", tab.name())));
        }
    }
    for (k, what) in LOOPS_KEYS {
        rows.push((key_text(Modifiers::NONE, k), what.to_string()));
    }
    for (k, what) in ZOOM_KEYS {
        rows.push((k.to_string(), format!("zoom: {what}")));
    }
    egui::Grid::new("keys grid").num_columns(2).spacing(egui::vec2(18.0, 6.0)).striped(true).show(ui, |ui| {
        for (keys, what) in rows {
            ui.label(RichText::new(keys).monospace().strong());
            ui.label(what);
            ui.end_row();
        }
    });
    ui.add_space(4.0);
    ui.label(
        RichText::new("Keys other than Ctrl+S / Ctrl+O and F1 do nothing while a text field has the focus.").small(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_a_person_types_them() {
        assert_eq!(key_text(Modifiers::SHIFT, Key::ArrowRight), "Shift+Right");
        assert_eq!(key_text(Modifiers::NONE, Key::Questionmark), "?");
        assert_eq!(key_text(Modifiers::NONE, Key::Num3), "3");
    }

    #[test]
    fn the_loops_keys_are_none_of_the_apps_keys() {
        for (k, what) in LOOPS_KEYS {
            assert!(SHORTCUTS.iter().all(|s| s.key != k), "{what} takes an app key");
        }
    }

    #[test]
    fn a_key_with_more_modifiers_comes_before_the_same_key_without() {
        for (i, a) in SHORTCUTS.iter().enumerate() {
            for b in &SHORTCUTS[i + 1..] {
                let more = b.modifiers.shift && !a.modifiers.shift;
                assert!(!(a.key == b.key && more), "{:?} must come before {:?}", b.action, a.action);
            }
        }
    }
}
