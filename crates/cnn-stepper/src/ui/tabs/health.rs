//! Is the network healthy? Two answers: a finite-difference proof that backprop computes the
//! derivative of the loss, on the live weights and batch; and the size of the signal and of the
//! gradient in every layer over training, where the post's initialisation shows its problem
//! (the signal vanishes layer by layer while the loss sits at ln 10 ≈ 2.30).
//!
//! Magnitude points arrive a few at a time in snapshots and are kept in [`Magnitudes`], which
//! decimates like the loss curve does so that a long run stays within a fixed memory.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Corner, GridMark, Legend, Line, LineStyle, Plot, PlotPoints};

use crate::engine::Preset;
use crate::engine::model::LayerSpec;
use crate::engine::gradcheck::{GradCheckEntry, GradCheckLayer, GradCheckReport};
use crate::trainer::{Command, GradientCheck, MagnitudePoint, Snapshot};
use crate::ui::panels::curves::{MAX_POINTS, Series};
use crate::ui::support::colormap::fmt_sig;
use crate::ui::support::widgets::section_heading;
use crate::ui::tabs::{Tab, TabContext, TabId};
use crate::ui::windows::help::HelpTopic;

/// Label of the button that starts a gradient check.
pub const CHECK_LABEL: &str = "Check gradients";
/// A layer passes when its largest relative error (kinks left out) is below this. Correct
/// backprop in f64 gives ~1e-8 or less; a wrong formula gives 1e-2 or more.
pub const PASS_REL_ERROR: f64 = 1e-4;
/// An entry whose absolute error is within this many times the report's rounding noise agrees,
/// whatever its relative error: for a gradient near the noise that ratio means nothing.
pub const NOISE_FACTOR: f64 = 10.0;

/// Colour-blind-safe colours (Okabe–Ito) for [`MagnitudePoint::TENSORS`], in forward order.
const TENSOR_COLORS: [Color32; 6] = [
    Color32::from_rgb(0, 114, 178),
    Color32::from_rgb(86, 180, 233),
    Color32::from_rgb(213, 94, 0),
    Color32::from_rgb(230, 159, 0),
    Color32::from_rgb(204, 121, 167),
    Color32::from_rgb(0, 158, 115),
];

/// Per-layer RMS of the activations and of the gradients over steps, as log₁₀, decimated.
///
/// Each series halves its resolution when it reaches its cap, averaging neighbours; the
/// average of log₁₀ values is the log of the geometric mean, the natural mean of magnitudes
/// that span orders of ten.
#[derive(Clone, Debug)]
pub struct Magnitudes {
    activations: Vec<Series>,
    gradients: Vec<Series>,
    last: Option<MagnitudePoint>,
    added: u64,
    cap: usize,
}

impl Default for Magnitudes {
    fn default() -> Self {
        Self::new(MAX_POINTS)
    }
}

impl Magnitudes {
    /// An empty store keeping at most `cap` points per series.
    pub fn new(cap: usize) -> Self {
        Self { activations: Vec::new(), gradients: Vec::new(), last: None, added: 0, cap }
    }

    /// Adds one step's point. An RMS of 0 (or not finite) has no logarithm and is left out of
    /// its series.
    pub fn add(&mut self, p: &MagnitudePoint) {
        let x = p.step as f64;
        // One series per layer of the network the points are of.
        let cap = self.cap;
        self.activations.resize_with(p.activations.len(), || Series::new(cap));
        self.gradients.resize_with(p.gradients.len(), || Series::new(cap));
        for (series, rms) in self.activations.iter_mut().zip(&p.activations) {
            push_log(series, x, *rms);
        }
        for (series, rms) in self.gradients.iter_mut().zip(&p.gradients) {
            push_log(series, x, *rms);
        }
        self.last = Some(p.clone());
        self.added += 1;
    }

    /// Forgets everything (a new run, an opened file, or a rewind).
    pub fn clear(&mut self) {
        *self = Self::new(self.cap);
    }

    /// Takes a snapshot's new points, starting over first if the snapshot says the curves do.
    pub fn absorb(&mut self, snap: &Snapshot) {
        if snap.curves_reset {
            self.clear();
        }
        for p in &snap.new_magnitude_points {
            self.add(p);
        }
    }

    /// log₁₀ of the RMS of layer `i`'s output over steps.
    pub fn activations(&self, i: usize) -> Option<&Series> {
        self.activations.get(i)
    }

    /// log₁₀ of the RMS of ∂L/∂(layer `i`'s output) over steps.
    pub fn gradients(&self, i: usize) -> Option<&Series> {
        self.gradients.get(i)
    }

    /// The latest point added.
    pub fn last(&self) -> Option<&MagnitudePoint> {
        self.last.as_ref()
    }

    /// Points added since the last clear (before decimation).
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Points stored in the longest series.
    pub fn len(&self) -> usize {
        self.activations.iter().chain(&self.gradients).map(Series::len).max().unwrap_or(0)
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn push_log(series: &mut Series, x: f64, rms: f32) {
    if rms.is_finite() && rms > 0.0 {
        series.push(x, f64::from(rms).log10());
    }
}

/// The view's state: whether a check was asked for and not answered yet.
#[derive(Debug, Default)]
pub struct HealthState {
    /// The check shown when the last one was asked for (`Some(None)`: none was shown).
    pending: Option<Option<(u64, u64)>>,
}

impl HealthState {
    /// True between a click on [`CHECK_LABEL`] and the next result.
    pub fn checking(&self) -> bool {
        self.pending.is_some()
    }

    /// Forgets the check asked for: call it when the worker answered it with an error.
    pub fn forget_request(&mut self) {
        self.pending = None;
    }
}

/// What tells two check results apart.
fn check_key(c: &GradientCheck) -> (u64, u64) {
    (c.step, c.report.loss.to_bits())
}

/// Whether an entry agrees: a small relative error, or an absolute error within rounding noise.
/// Entries that crossed a ReLU kink are not judged.
pub fn entry_agrees(e: &GradCheckEntry, noise: f64) -> bool {
    e.crossed_kink || e.rel_error < PASS_REL_ERROR || e.abs_error <= NOISE_FACTOR * noise
}

/// Whether a layer passes: every entry agrees (see [`entry_agrees`]).
pub fn layer_passes(layer: &GradCheckLayer, noise: f64) -> bool {
    layer.entries.iter().all(|e| entry_agrees(e, noise))
}

/// The heading line of a layer in the report, e.g. "conv2: max relative error 3.1e-9 pass".
pub fn layer_summary(layer: &GradCheckLayer, noise: f64) -> String {
    let verdict = if layer.max_rel_error < PASS_REL_ERROR {
        "pass".to_string()
    } else if layer_passes(layer, noise) {
        "pass (larger ratios only where the gradient is within rounding noise)".to_string()
    } else {
        "FAIL".to_string()
    };
    let kinks = layer.entries.iter().filter(|e| e.crossed_kink).count();
    let kinks = if kinks > 0 { format!(" · {kinks} across a ReLU kink, not judged") } else { String::new() };
    format!("{}: max relative error {:.1e} {verdict}{kinks}", layer.layer, layer.max_rel_error)
}

/// Draws the gradient check and the magnitude curves. `can_run` says whether a check can start
/// now (and why not); returns [`Command::CheckGradients`] when the user asks for one.
pub fn health_ui(
    ui: &mut egui::Ui,
    state: &mut HealthState,
    snap: Option<&Snapshot>,
    check: Option<&GradientCheck>,
    magnitudes: &Magnitudes,
    can_run: Result<(), String>,
) -> Option<Command> {
    let mut command = None;
    let shown = check.map(check_key);
    if state.pending.is_some_and(|before| before != shown) {
        state.pending = None;
    }
    egui::ScrollArea::vertical().id_salt("health view").auto_shrink([false, false]).show(ui, |ui| {
        section_heading(ui, "Backprop proof: gradients against finite differences");
        ui.label(
            RichText::new(
                "For a few random weights of every layer, the gradient backprop computes is \
                 compared with (L(w + h) − L(w − h)) / 2h, the loss itself measured twice, on the \
                 current batch and weights in f64. If backprop is right, the two agree to many \
                 digits.",
            )
            .small(),
        );
        ui.horizontal(|ui| {
            let reason = match (&can_run, state.checking()) {
                (_, true) => Some("checking…".to_string()),
                (Err(why), false) => Some(why.clone()),
                (Ok(()), false) => None,
            };
            let button = ui.add_enabled(reason.is_none(), egui::Button::new(CHECK_LABEL));
            let button = match &reason {
                Some(why) => button.on_disabled_hover_text(why.as_str()),
                None => button.on_hover_text("Run the check on the current batch; training state is untouched."),
            };
            if button.clicked() {
                state.pending = Some(shown);
                command = Some(Command::CheckGradients);
            }
            if let Some(why) = reason {
                ui.label(RichText::new(why).weak());
            }
        });
        match check {
            Some(c) => report_ui(ui, c, snap),
            None => {
                ui.label(RichText::new("No check yet.").weak());
            }
        }

        ui.add_space(10.0);
        ui.separator();
        signal_ui(ui, snap, magnitudes);
    });
    command
}

fn report_ui(ui: &mut egui::Ui, c: &GradientCheck, snap: Option<&Snapshot>) {
    let r: &GradCheckReport = &c.report;
    let mut when = format!(
        "Computed at step {} on {} images · loss {:.6} · h = {:.0e} · {:?} engine",
        c.step, r.images, r.loss, r.step_size, r.engine
    );
    if let Some(s) = snap.filter(|s| s.step != c.step) {
        when.push_str(&format!(" · the network is now at step {}", s.step));
    }
    ui.label(RichText::new(when).small());
    ui.label(
        RichText::new(format!(
            "A layer passes when its largest relative error |a − n| / max(|a|, |n|) is below {PASS_REL_ERROR:.0e} \
             (a wrong formula gives 1e-2 or more). An entry whose |a − n| is within {NOISE_FACTOR:.0}× the \
             rounding noise of the numeric gradient ({:.1e}) agrees however small it is; entries whose ±h \
             moved some ReLU input across 0 straddle a kink, where the difference quotient is no \
             derivative, so they are marked and not judged.",
            r.noise
        ))
        .small()
        .weak(),
    );
    let overall = r.layers.iter().all(|l| layer_passes(l, r.noise));
    let verdict = if overall { "Backprop agrees with the finite differences." } else { "Some gradients disagree!" };
    ui.label(RichText::new(verdict).strong());
    for layer in &r.layers {
        ui.add_space(4.0);
        let passes = layer_passes(layer, r.noise);
        let color = if passes { ui.visuals().text_color() } else { crate::ui::support::palette::WRONG };
        ui.label(RichText::new(layer_summary(layer, r.noise)).strong().color(color));
        egui::Grid::new(("gradient check", &layer.layer)).striped(true).spacing([14.0, 2.0]).show(ui, |ui| {
            for head in ["parameter", "index", "analytic", "numeric", "relative error", "|a − n|", ""] {
                ui.label(RichText::new(head).small().strong());
            }
            ui.end_row();
            for e in &layer.entries {
                let index = e.index.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
                ui.label(RichText::new(&e.param).monospace());
                ui.label(RichText::new(format!("[{index}]")).monospace());
                ui.label(RichText::new(format!("{:+.6e}", e.analytic)).monospace());
                ui.label(RichText::new(format!("{:+.6e}", e.numeric)).monospace());
                ui.label(RichText::new(format!("{:.1e}", e.rel_error)).monospace());
                ui.label(RichText::new(format!("{:.1e}", e.abs_error)).monospace());
                let note = if e.crossed_kink {
                    "across a ReLU kink: not judged"
                } else if entry_agrees(e, r.noise) {
                    "agrees"
                } else {
                    "DISAGREES"
                };
                ui.label(RichText::new(note).small());
                ui.end_row();
            }
        });
    }
}

/// y-axis ticks of a log₁₀ axis read as powers of ten.
fn power_of_ten(mark: GridMark) -> String {
    let v = mark.value;
    if (v - v.round()).abs() < 1e-9 { format!("1e{}", v.round() as i64) } else { fmt_sig(10f64.powf(v) as f32) }
}

fn hover_text(pos: &egui_plot::HoverPosition<'_>, what: &str) -> Option<String> {
    let (name, p) = match pos {
        egui_plot::HoverPosition::NearDataPoint { plot_name, position, .. } => (*plot_name, position),
        egui_plot::HoverPosition::Elsewhere { position } => ("", position),
    };
    let rms = fmt_sig(10f64.powf(p.y) as f32);
    let name = if name.is_empty() { String::new() } else { format!("{name}\n") };
    Some(format!("{name}step {:.0}\n{what} RMS {rms} (log₁₀ {:.2})", p.x, p.y))
}

fn signal_ui(ui: &mut egui::Ui, snap: Option<&Snapshot>, m: &Magnitudes) {
    section_heading(ui, "Signal over time: how large each layer's numbers are");
    let mut note = String::from(
        "Root mean square of each layer's output and of the loss gradient arriving at it, per \
         step, on a log scale (1e-4 is ten thousand times smaller than 1). Healthy: every layer \
         within a few powers of ten of the others, steady over time. ",
    );
    if snap.is_some_and(|s| s.preset == Preset::Post) {
        note.push_str(
            "This run uses the post preset: its tiny initial weights shrink the signal at every \
             layer (each one more than a thousand times below He's), so the scores are almost \
             equal, the loss sits at 2.30 = ln 10 and the gradients are too small to get out.",
        );
    } else {
        note.push_str(
            "Switch to the post preset to see what goes wrong there: every layer's signal ends \
             up more than a thousand times below He's and shrinks layer by layer, while the loss \
             sits at 2.30 = ln 10.",
        );
    }
    ui.label(RichText::new(note).small());
    // Every layer but flatten (its output is its input's, the same numbers).
    let layers: Vec<(usize, &str, bool)> = snap.map_or_else(Vec::new, |s| {
        s.model
            .plan
            .layers
            .iter()
            .filter(|l| l.spec != LayerSpec::Flatten)
            .map(|l| (l.index, l.name.as_str(), l.spec.is_activation()))
            .collect()
    });
    if let Some(p) = m.last() {
        let now: Vec<String> = layers
            .iter()
            .filter_map(|&(i, name, _)| p.activations.get(i).filter(|v| v.is_finite()).map(|rms| (name, *rms)))
            .map(|(name, rms)| format!("{name} {}", fmt_sig(rms)))
            .collect();
        ui.label(RichText::new(format!("step {}: activation RMS {}", p.step, now.join(" · "))).small().monospace());
    }
    if m.is_empty() {
        ui.label(RichText::new("No steps yet: take a step to measure.").weak());
    }
    let plot_h = ((ui.available_height() - 40.0) / 2.0).clamp(140.0, 280.0);
    let link = egui::Id::unique("health plots x axis");
    for (title, gradients) in [("activation", false), ("gradient", true)] {
        let axis = if gradients { "log₁₀ RMS of ∂L/∂ output" } else { "log₁₀ RMS of output" };
        let what = if gradients { "gradient" } else { "activation" };
        ui.label(RichText::new(format!("{title} RMS per layer")).strong());
        Plot::new(("magnitudes", gradients))
            .height(plot_h)
            .legend(Legend::default().position(Corner::RightBottom))
            .x_axis_label("step")
            .y_axis_label(axis)
            .y_axis_formatter(|mark, _| power_of_ten(mark))
            .include_x(0.0)
            .link_axis(link, [true, false])
            .allow_scroll(false)
            .show_background(false)
            .label_formatter(move |pos| hover_text(pos, what))
            .show(ui, |plot| {
                for (k, &(i, name, activation)) in layers.iter().enumerate() {
                    let series = if gradients { m.gradients(i) } else { m.activations(i) };
                    let Some(series) = series.filter(|s| !s.is_empty()) else { continue };
                    // An activation's output dashed, in its pre-activation's colour family.
                    let style = if activation { LineStyle::dashed_loose() } else { LineStyle::Solid };
                    plot.line(
                        Line::new(name, PlotPoints::Borrowed(series.points()))
                            .color(TENSOR_COLORS[k % TENSOR_COLORS.len()])
                            .style(style)
                            .width(2.0),
                    );
                }
            });
    }
}

/// The tab's stable name.
pub const ID: TabId = TabId::new("Health");

/// The gradient check, and activation and gradient magnitudes over time.
#[derive(Default)]
pub struct HealthTab {
    state: HealthState,
}

impl Tab for HealthTab {
    fn id(&self) -> TabId {
        ID
    }

    fn name(&self) -> &'static str {
        "Backprop check"
    }

    fn key(&self) -> Option<egui::Key> {
        Some(egui::Key::Num5)
    }

    fn help_topic(&self) -> HelpTopic {
        HelpTopic::Health
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        let check = ctx.teaching.gradient_check.as_deref();
        let can = ctx.can_run.clone();
        egui::ScrollArea::vertical().id_salt("backprop check view").show(ui, |ui| {
            ctx.commands.extend(health_ui(ui, &mut self.state, ctx.snapshot, check, ctx.magnitudes, can));
        });
    }

    fn request_failed(&mut self) {
        self.state.forget_request();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rel: f64, abs: f64, kink: bool) -> GradCheckEntry {
        GradCheckEntry {
            param: "fc1.weight".into(),
            tensor: "4.weight".into(),
            index: vec![0, 1],
            analytic: 1.0,
            numeric: 1.0,
            rel_error: rel,
            abs_error: abs,
            crossed_kink: kink,
            kink_layer: kink.then(|| "relu1".into()),
        }
    }

    #[test]
    fn a_layer_passes_on_small_errors_noise_sized_gradients_and_kinks_but_not_on_a_wrong_one() {
        let noise = 1e-10;
        let ok = GradCheckLayer { layer: "fc1".into(), entries: vec![entry(1e-9, 1e-12, false)], max_rel_error: 1e-9 };
        assert!(layer_passes(&ok, noise));
        assert!(layer_summary(&ok, noise).starts_with("fc1: max relative error 1.0e-9 pass"));
        let tiny =
            GradCheckLayer { layer: "conv1".into(), entries: vec![entry(0.3, 2e-10, false)], max_rel_error: 0.3 };
        assert!(layer_passes(&tiny, noise), "an error within rounding noise agrees");
        let kink = GradCheckLayer { layer: "conv2".into(), entries: vec![entry(0.5, 1e-3, true)], max_rel_error: 0.0 };
        assert!(layer_passes(&kink, noise));
        assert!(layer_summary(&kink, noise).contains("1 across a ReLU kink"));
        let wrong =
            GradCheckLayer { layer: "fc2".into(), entries: vec![entry(0.02, 1e-3, false)], max_rel_error: 0.02 };
        assert!(!layer_passes(&wrong, noise));
        assert!(layer_summary(&wrong, noise).contains("FAIL"));
    }

    #[test]
    fn axis_ticks_read_as_powers_of_ten() {
        assert_eq!(power_of_ten(GridMark { value: -4.0, step_size: 1.0 }), "1e-4");
        assert_eq!(power_of_ten(GridMark { value: 0.0, step_size: 1.0 }), "1e0");
        assert_eq!(power_of_ten(GridMark { value: 0.5, step_size: 0.5 }), "3.16");
    }
}
