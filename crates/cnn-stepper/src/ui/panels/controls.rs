//! The control bar: stepping and running, reset with the seed, engine and preset, the
//! hyper-parameters, and where training stands (step, epoch progress, images per second).

use eframe::egui::{self, RichText, TextEdit, vec2};

use crate::engine::{ConvEngine, Hyper, MAX_BATCH, OptimizerKind, Preset, Setting};
use crate::trainer::{Command, Settings, Snapshot};
use crate::ui::support::text::thousands;

/// The text in the editable fields, and what they were last filled from.
#[derive(Clone, Debug, Default)]
pub struct ControlsState {
    /// Seed for the next reset.
    pub seed: String,
    /// Learning rate.
    pub lr: String,
    /// Momentum.
    pub momentum: String,
    /// L2 regularisation strength.
    pub reg: String,
    /// Batch size.
    pub batch: String,
    /// Why the last seed or reset was refused, if it was.
    pub message: Option<String>,
    /// Every value refused when the fields were last applied, with its reason; the fields
    /// keep the refused text and show the value still in use beside them.
    pub refused: Vec<Refusal>,
    synced: Option<Settings>,
    synced_seed: Option<u64>,
}

impl ControlsState {
    /// Refills the fields from the trainer's settings when those changed (a reset, a preset),
    /// unless the user is typing.
    fn sync(&mut self, snap: &Snapshot, typing: bool) {
        if typing {
            return;
        }
        let target = snap.pending.unwrap_or(snap.settings);
        if self.synced != Some(target) {
            self.lr = target.hyper.lr.to_string();
            self.momentum = target.hyper.momentum.to_string();
            self.reg = target.hyper.reg.to_string();
            self.batch = target.batch_size.to_string();
            self.synced = Some(target);
        }
        if self.synced_seed != Some(snap.seed) {
            self.seed = snap.seed.to_string();
            self.synced_seed = Some(snap.seed);
        }
    }

    /// The settings the fields describe, on top of `base` (engine and lr decay are kept), or
    /// every value that cannot train, each with its reason.
    pub fn parse(&self, base: Settings) -> Result<Settings, Vec<Refusal>> {
        let mut refused = Vec::new();
        let mut num = |setting: Setting, text: &str, fallback: f32| -> f32 {
            text.trim().parse::<f32>().unwrap_or_else(|_| {
                refused.push(Refusal::new(setting, text, "is not a number"));
                fallback
            })
        };
        let lr = num(Setting::LearningRate, &self.lr, base.hyper.lr);
        let momentum = num(Setting::Momentum, &self.momentum, base.hyper.momentum);
        let reg = num(Setting::Reg, &self.reg, base.hyper.reg);
        let batch_size = self.batch.trim().parse::<usize>().unwrap_or_else(|_| {
            refused.push(Refusal::new(Setting::BatchSize, &self.batch, "is not a whole number"));
            base.batch_size
        });
        let s = Settings { hyper: Hyper { lr, momentum, reg, ..base.hyper }, batch_size, ..base };
        if let Err(e) = s.validate() {
            // A field that is not a number was replaced by the value in use, which is valid.
            for p in e.problems {
                refused.push(Refusal { setting: p.setting, text: p.value, reason: p.reason });
            }
        }
        refused.sort_by_key(|r| field_order(r.setting));
        if refused.is_empty() { Ok(s) } else { Err(refused) }
    }

    /// The seed typed in the field, or why it is not one.
    pub fn parse_seed(&self) -> Result<u64, String> {
        self.seed.trim().parse::<u64>().map_err(|_| format!("seed \"{}\" must be a whole number ≥ 0", self.seed.trim()))
    }
}

/// A value typed in a field that cannot train, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The field.
    pub setting: Setting,
    /// What was typed.
    pub text: String,
    /// Why it cannot be used, e.g. "must be above 0 and at most 10".
    pub reason: String,
}

impl Refusal {
    fn new(setting: Setting, text: &str, reason: &str) -> Self {
        Self { setting, text: text.trim().to_string(), reason: reason.to_string() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {}: {}", self.setting, self.text, self.reason)
    }
}

/// Where a setting's field is in the row, for listing refusals in the order they are seen.
fn field_order(setting: Setting) -> usize {
    [Setting::LearningRate, Setting::Momentum, Setting::Reg, Setting::BatchSize, Setting::LrDecay]
        .iter()
        .position(|s| *s == setting)
        .unwrap_or(usize::MAX)
}

/// The value of `setting` in `s`, as the fields write it.
pub fn value_in_use(s: &Settings, setting: Setting) -> String {
    match setting {
        Setting::LearningRate => s.hyper.lr.to_string(),
        Setting::Momentum => s.hyper.momentum.to_string(),
        Setting::Reg => s.hyper.reg.to_string(),
        Setting::LrDecay => s.hyper.lr_decay.to_string(),
        Setting::BatchSize => s.batch_size.to_string(),
    }
}

/// What the buttons can do right now, and why not.
#[derive(Clone, Debug, Default)]
pub struct Availability {
    /// Set when there is no trainer at all (e.g. the session could not be created).
    pub no_worker: Option<String>,
    /// Set while a step command is being computed.
    pub busy: Option<String>,
    /// A Pause was sent and the worker has not confirmed it yet.
    pub pausing: bool,
}

impl Availability {
    /// Whether a step (phase or batch) may be sent, or why not.
    pub fn can_step(&self, snap: Option<&Snapshot>) -> Result<(), String> {
        if let Some(m) = &self.no_worker {
            return Err(m.clone());
        }
        match snap {
            None => Err("Waiting for the trainer".into()),
            Some(s) if s.running => Err("Pause first".into()),
            Some(_) => self.busy.clone().map_or(Ok(()), Err),
        }
    }

    /// Whether Step back may be sent, or why not (the trainer's reason at the start of a batch).
    pub fn can_step_back(&self, snap: Option<&Snapshot>) -> Result<(), String> {
        self.can_step(snap)?;
        match snap.and_then(|s| s.step_back_refusal.as_deref()) {
            Some(why) => Err(format!("Cannot step back: {why}")),
            None => Ok(()),
        }
    }

    /// Whether Run / Pause / Reset may be sent, or why not.
    pub fn can_control(&self, snap: Option<&Snapshot>) -> Result<(), String> {
        if let Some(m) = &self.no_worker {
            return Err(m.clone());
        }
        snap.map(|_| ()).ok_or_else(|| "Waiting for the trainer".into())
    }
}

/// The reset command for the seed in the field, or why it cannot be sent.
pub fn reset_command(state: &ControlsState, snap: &Snapshot, preset: Preset) -> Result<Command, String> {
    let seed = state.parse_seed()?;
    Ok(Command::Reset { seed, preset, model: snap.model.argument() })
}

fn big_button(text: &str) -> egui::Button<'_> {
    egui::Button::new(RichText::new(text).size(15.0)).min_size(vec2(92.0, 28.0))
}

/// Draws the control bar and returns the commands the user gave.
pub fn controls_ui(
    ui: &mut egui::Ui,
    state: &mut ControlsState,
    snap: Option<&Snapshot>,
    avail: &Availability,
) -> Vec<Command> {
    let mut out = Vec::new();
    let typing = ui.ctx().text_edit_focused();
    if let Some(s) = snap {
        state.sync(s, typing);
    }
    let running = snap.is_some_and(|s| s.running);
    let step_ok = avail.can_step(snap);
    let control_ok = avail.can_control(snap);

    ui.horizontal(|ui| {
        crate::ui::windows::help::help_button_ui(ui, crate::ui::windows::help::HelpTopic::Controls);
        if let Some(c) = crate::ui::panels::lesson::step_back_button_ui(ui, snap, avail) {
            out.push(c);
        }
        let r = ui.add_enabled(step_ok.is_ok(), big_button("Step phase"));
        let r = explain(r, &step_ok, "Run the next phase of the step (Right arrow)");
        if r.clicked() {
            out.push(Command::StepPhase);
        }
        let r = ui.add_enabled(step_ok.is_ok(), big_button("Step batch"));
        let r = explain(r, &step_ok, "Run every remaining phase of this batch, or a whole new one (Shift+Right arrow)");
        if r.clicked() {
            out.push(Command::StepBatch);
        }
        let pausing = running && avail.pausing;
        let run_label = if pausing {
            "Pausing…"
        } else if running {
            "Pause"
        } else {
            "Run"
        };
        let run_ok = if pausing { Err("Stopping the phase that runs".to_string()) } else { control_ok.clone() };
        let r = ui.add_enabled(run_ok.is_ok(), big_button(run_label));
        let r = explain(
            r,
            &run_ok,
            if running {
                "Stop now: a long phase is abandoned and runs again whole (Space)"
            } else {
                "Train continuously (Space)"
            },
        );
        if r.clicked() {
            out.push(if running { Command::Pause } else { Command::Run });
        }
        let r =
            ui.add_enabled(control_ok.is_ok() && !running, egui::Button::new("Run epoch").min_size(vec2(0.0, 28.0)));
        let epoch_ok = if running { Err("Pause first".to_string()) } else { control_ok.clone() };
        let r = explain(r, &epoch_ok, "Train until this epoch ends, then pause");
        if r.clicked() {
            out.push(Command::RunEpoch);
        }

        ui.separator();
        let seed_label = ui.label("Seed");
        let r = ui.add(TextEdit::singleline(&mut state.seed).desired_width(56.0)).labelled_by(seed_label.id);
        r.on_hover_text("Seed for the initial weights and the order of the batches; used by Reset.");
        let r = ui.add_enabled(control_ok.is_ok(), egui::Button::new("Reset").min_size(vec2(0.0, 28.0)));
        let r = explain(r, &control_ok, "Start again from fresh weights with this seed (R)");
        if r.clicked()
            && let Some(s) = snap
        {
            match reset_command(state, s, s.preset) {
                Ok(c) => {
                    state.message = None;
                    out.push(c);
                }
                Err(e) => state.message = Some(e),
            }
        }

        ui.separator();
        if let Some(s) = snap {
            ui.label("Preset");
            for preset in Preset::ALL {
                let tip = match preset {
                    Preset::Post => {
                        "The post's recipe: tiny initial weights (normal, std 1e-4), plain SGD, reg 0.05. \
                         Restarts training with the same network."
                    }
                    Preset::Recommended => {
                        "He initialisation and SGD with momentum 0.9. Restarts training with the same network."
                    }
                    Preset::Adam => {
                        "He initialisation and Adam (lr 0.001), PyTorch's constants. Restarts training with the \
                         same network."
                    }
                };
                let r = ui.add_enabled(control_ok.is_ok(), egui::Button::selectable(s.preset == preset, preset.name()));
                if explain(r, &control_ok, tip).clicked() && s.preset != preset {
                    match reset_command(state, s, preset) {
                        Ok(c) => out.push(c),
                        Err(e) => state.message = Some(e),
                    }
                }
            }
            ui.separator();
            ui.label("Engine");
            let target = s.pending.unwrap_or(s.settings);
            for (engine, name, tip) in [
                (ConvEngine::Naive, "naive", "The post's loops: slow, easy to follow. Applies at the next batch."),
                (
                    ConvEngine::Fast,
                    "fast",
                    "Matrix products (im2col) and, for the convolutions where it pays, Fourier transforms: the \
                     same numbers up to rounding, many times faster. Applies at the next batch.",
                ),
            ] {
                let r = ui.add_enabled(control_ok.is_ok(), egui::Button::selectable(target.engine == engine, name));
                if explain(r, &control_ok, tip).clicked() && target.engine != engine {
                    out.push(Command::SetSettings(Settings { engine, ..target }));
                }
            }
        }
    });

    ui.horizontal(|ui| {
        let Some(s) = snap else { return };
        let mut apply = false;
        let in_use = s.pending.unwrap_or(s.settings);
        if let Some(c) = optimizer_ui(ui, in_use, &control_ok) {
            out.push(c);
        }
        ui.separator();
        let adam = in_use.hyper.optimizer == OptimizerKind::Adam;
        let batch_tip = format!("Images per step (1 to {MAX_BATCH}). Applies at the next batch.");
        let error = ui.visuals().error_fg_color;
        for (setting, name, text, width, tip) in [
            (
                Setting::LearningRate,
                "Learning rate",
                &mut state.lr,
                64.0,
                "Step size of the update (> 0): SGD moves each weight by lr times its gradient, Adam by \
                 about lr. Applies at the next batch.",
            ),
            (Setting::Momentum, "Momentum", &mut state.momentum, 44.0, "0 is the post's plain SGD; must be below 1."),
            (Setting::Reg, "Reg", &mut state.reg, 56.0, "L2 strength on the dense weights (≥ 0)."),
            (Setting::BatchSize, "Batch size", &mut state.batch, 44.0, batch_tip.as_str()),
        ] {
            let label = ui.label(name);
            let refusal = state.refused.iter().find(|r| r.setting == setting);
            // A fixed id: the "(using …)" label a refusal adds before the next field must not
            // change that field's id, which would drop the focus a click just gave it.
            let mut edit = TextEdit::singleline(text).id_salt(("setting field", name)).desired_width(width);
            if refusal.is_some() {
                edit = edit.text_color(error);
            }
            let unused = adam && setting == Setting::Momentum;
            let r = ui.add_enabled(!unused, edit).labelled_by(label.id);
            apply |= r.lost_focus();
            r.on_hover_text(format!("{tip}\nPress Enter to apply.")).on_disabled_hover_text(ADAM_NO_MOMENTUM);
            if let Some(refusal) = refusal {
                // The box keeps what was typed, so it can be corrected; what trains is beside it.
                ui.label(RichText::new(format!("(using {})", value_in_use(&in_use, setting))).color(error).strong())
                    .on_hover_text(format!("Refused: {refusal}"));
            }
            ui.add_space(6.0);
        }
        if apply && control_ok.is_ok() {
            match state.parse(in_use) {
                Ok(new) => {
                    state.refused.clear();
                    if new != in_use {
                        out.push(Command::SetSettings(new));
                    }
                }
                Err(refused) => state.refused = refused,
            }
        }
        if let Some(m) = &state.message {
            ui.label(RichText::new(m).color(error).strong());
        } else if s.pending.is_some() && state.refused.is_empty() {
            ui.label(RichText::new("applies at next batch").color(ui.visuals().warn_fg_color))
                .on_hover_text("The current batch finishes with the settings it started with.");
        }
        // The readout gets what the step counter and progress bar leave, and shortens to fit.
        let room = ui.available_width() - progress_width(ui, s);
        crate::ui::panels::lesson::lr_schedule_ui(ui, s, room);
        progress_ui(ui, s);
    });
    // Every refused value with its reason, on a line of its own: the row has no room for them.
    if !state.refused.is_empty() {
        ui.horizontal_wrapped(|ui| {
            for r in &state.refused {
                ui.label(RichText::new(format!("Refused: {r}.")).color(ui.visuals().error_fg_color).strong());
            }
            let in_use = snap.map(|s| s.pending.unwrap_or(s.settings));
            if let Some(s) = in_use {
                let used: Vec<String> =
                    state.refused.iter().map(|r| format!("{} {}", r.setting, value_in_use(&s, r.setting))).collect();
                ui.label(RichText::new(format!("Still in use: {}.", used.join(", "))).strong());
            }
        });
    }
    out
}

/// Why the momentum field is off with Adam.
pub const ADAM_NO_MOMENTUM: &str = "Adam does not use momentum: it keeps its own running means of each gradient \
     (β1 = 0.9) and of its square (β2 = 0.999). Switch to SGD to use it.";

/// The optimizer buttons: SGD or Adam from the next batch, as the other settings. Returns the
/// command when the choice changed.
fn optimizer_ui(ui: &mut egui::Ui, in_use: Settings, control_ok: &Result<(), String>) -> Option<Command> {
    let mut out = None;
    for (kind, name, tip) in [
        (
            OptimizerKind::Sgd,
            "SGD",
            "Stochastic gradient descent: each weight moves by −lr × its gradient, plus momentum × its last move \
             (momentum 0 is the post's plain SGD). Applies at the next batch.",
        ),
        (
            OptimizerKind::Adam,
            "Adam",
            "Adam (PyTorch's constants): each weight moves by about lr, in the direction of its running mean \
             gradient divided by the root of its running mean square, so every weight learns at a similar pace. \
             Usually with lr 0.001 (the adam preset). Applies at the next batch.",
        ),
    ] {
        let on = in_use.hyper.optimizer == kind;
        let r = ui.add_enabled(control_ok.is_ok(), egui::Button::selectable(on, name));
        if explain(r, control_ok, tip).clicked() && !on {
            out = Some(Command::SetSettings(with_optimizer(in_use, kind)));
        }
    }
    out
}

/// `settings` with the optimizer `kind`; everything else as it was.
pub fn with_optimizer(settings: Settings, kind: OptimizerKind) -> Settings {
    Settings { hyper: Hyper { optimizer: kind, ..settings.hyper }, ..settings }
}

/// The width [`progress_ui`] takes (an estimate from its texts), so that what comes before it
/// can leave it room.
fn progress_width(ui: &egui::Ui, s: &Snapshot) -> f32 {
    let width = |text: String, size: f32| {
        ui.painter().layout_no_wrap(text, egui::FontId::proportional(size), egui::Color32::WHITE).size().x
    };
    let spacing = ui.spacing().item_spacing.x;
    let mut w = 190.0 + width(format!("Step {}", s.step), 17.0) + 2.0 * spacing;
    if s.running && s.images_per_sec > 0.0 {
        w += width(format!("{} img/s", thousands(s.images_per_sec.round() as u64)), 14.0) + spacing;
    }
    w
}

/// Step counter, epoch progress and throughput, right-aligned.
fn progress_ui(ui: &mut egui::Ui, s: &Snapshot) {
    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
        // Only while running: after a step by hand the "rate" is the time the teacher took to
        // press the key again.
        let ips = s.images_per_sec;
        if s.running && ips > 0.0 {
            ui.label(RichText::new(format!("{} img/s", thousands(ips.round() as u64))).monospace()).on_hover_text(
                format!("Training throughput, smoothed over the last batches (batch size {}).", s.settings.batch_size),
            );
        }
        let frac = if s.epoch_len > 0 { s.epoch_position as f32 / s.epoch_len as f32 } else { 0.0 };
        let text =
            format!("epoch {} · {}/{}", s.epoch + 1, thousands(s.epoch_position as u64), thousands(s.epoch_len as u64));
        ui.add(egui::ProgressBar::new(frac).desired_width(190.0).text(text))
            .on_hover_text("Images of this epoch already used for training.");
        ui.label(RichText::new(format!("Step {}", s.step)).size(17.0).strong());
    });
}

/// Adds the tooltip: `why` when the widget is disabled, `what` when it is enabled.
pub fn explain(r: egui::Response, why: &Result<(), String>, what: &str) -> egui::Response {
    match why {
        Ok(()) => r.on_hover_text(what),
        Err(e) => r.on_disabled_hover_text(e.as_str()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base() -> Settings {
        Settings::from_preset(Preset::Recommended, ConvEngine::Fast)
    }

    fn state(lr: &str, batch: &str) -> ControlsState {
        ControlsState {
            lr: lr.into(),
            momentum: "0.9".into(),
            reg: "0.0001".into(),
            batch: batch.into(),
            ..Default::default()
        }
    }

    fn refusals(lr: &str, batch: &str) -> Vec<String> {
        state(lr, batch).parse(base()).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_zero_learning_rate_is_refused_with_the_reason() {
        let e = refusals("0", "32");
        assert!(e.len() == 1 && e[0].starts_with("learning rate = 0: must be above 0"), "{e:?}");
    }

    #[test]
    fn a_zero_batch_is_refused() {
        let e = refusals("0.01", "0");
        assert!(e.len() == 1 && e[0].starts_with("batch size = 0"), "{e:?}");
    }

    #[test]
    fn text_that_is_not_a_number_is_refused() {
        assert_eq!(refusals("fast", "32"), ["learning rate = fast: is not a number"]);
    }

    #[test]
    fn every_refused_field_is_named_in_field_order() {
        let e = refusals("100", "x");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("learning rate = 100: is far too large"), "{e:?}");
        assert_eq!(e[1], "batch size = x: is not a whole number");
    }

    #[test]
    fn choosing_adam_changes_only_the_optimizer_and_the_fields_keep_it() {
        let adam = with_optimizer(base(), OptimizerKind::Adam);
        assert_eq!(adam.hyper.optimizer, OptimizerKind::Adam);
        assert_eq!(with_optimizer(adam, OptimizerKind::Sgd), base(), "nothing else changed");
        // Applying the typed fields afterwards keeps the optimizer chosen.
        let parsed = state("0.001", "32").parse(adam).unwrap();
        assert_eq!((parsed.hyper.optimizer, parsed.hyper.lr), (OptimizerKind::Adam, 0.001));
    }

    #[test]
    fn valid_fields_keep_the_engine_and_decay() {
        let s = state("0.05", "64").parse(base());
        assert_eq!(
            s.map(|s| (s.batch_size, s.engine, s.hyper.lr_decay)),
            Ok((64, ConvEngine::Fast, base().hyper.lr_decay))
        );
    }
}
