//! What the first fc after `flatten` looks at, and the exact class evidence of the selected
//! digit, for any network whose evidence is exact.
//!
//! `flatten` lays the `C × H × W` maps of the layer before it end to end, so row `j` of fc1's
//! weights is itself a stack of `C` maps of `H × W` (the post's: 32 maps of 28×28 from conv2;
//! LeNet's: 16 maps of 5×5 from pool2). The first part of the view draws them for a chosen unit,
//! with the unit's bias, its value on the selected digit and, when it reaches the classes
//! through one more fc, that fc's weights from it (the classes it votes for). With a single fc
//! (`tiny`) the units are the class scores themselves. The second part draws, for the selected
//! digit, how much every value `flatten` takes adds to every class score ([`ClassEvidence`]): an
//! exact decomposition when every activation after `flatten` is a ReLU (held at its on/off
//! pattern), so each class's map plus its bias terms sums to its logit. For any other network
//! the view says why ([`evidence_support`]) and asks the worker for nothing.
//!
//! Both parts come from the worker on request, because they need fc1's weights (2.5 M in the
//! post), which snapshots never carry. The view asks again when the unit, the step or the
//! selected digit changes, with at most one request of each kind in flight so that a running
//! trainer is never flooded.

use std::sync::Arc;

use eframe::egui::{self, RichText, Stroke, StrokeKind};

use crate::engine::argmax;
use crate::engine::model::evidence::{EvidenceLayers, evidence_support};
use crate::engine::model::{LayerSpec, Plan};
use crate::trainer::{ClassEvidence, Command, EvidenceOf, Fc1Unit, ImageId, ModelView, Snapshot};
use crate::ui::support::colormap::{ColorMap, Legend, Scales, fmt_sig, legend_ui};
use crate::ui::support::palette;
use crate::ui::support::text::{GlyphSafe, item_word};
use crate::ui::support::textures::{Coloring, Grid, TileSet, pixel_text, tiles_ui};
use crate::ui::support::widgets::placeholder_ui;
use crate::ui::support::widgets::section_heading;
use crate::ui::tabs::{Tab, TabContext, TabId};
use crate::ui::windows::help::HelpTopic;

/// Accessibility label of the slider choosing the FC1 unit.
pub const UNIT_LABEL: &str = "FC1 unit";
/// Accessibility label of the button going to the previous unit.
pub const PREVIOUS_UNIT_LABEL: &str = "Previous FC1 unit";
/// Accessibility label of the button going to the next unit.
pub const NEXT_UNIT_LABEL: &str = "Next FC1 unit";
/// Accessibility label of the grid of the unit's weight maps.
pub const UNIT_MAPS_LABEL: &str = "FC1 unit weight maps";
/// Accessibility label of the grid of the chosen class's per-channel evidence maps.
pub const CHANNEL_MAPS_LABEL: &str = "Evidence per input map of fc1";
/// The heading shown instead of both parts when the network's class evidence is not exact,
/// above the reason.
pub const NOT_SHOWN_HEADING: &str = "No FC view for this network";
/// The words that start the identity line of the chosen class ("Σ evidence 3.217 + bias terms
/// 0.412 = logit 3.629"), so tests and screen readers can find it.
pub const IDENTITY_START: &str = "Σ evidence";

/// A request that got no answer (the worker reported an error instead) is sent again after this.
const RETRY_SECS: f64 = 5.0;
/// Automatic re-requests (a new step while training runs) at most this often: a result is 1 MB
/// and nobody reads 30 of them a second.
const REFRESH_SECS: f64 = 0.25;

/// Tracks one kind of request so that at most one is in flight.
///
/// A request counts as answered as soon as a *different* result is shown than the one shown
/// when it was sent: results carry no request id, and comparing with what was asked for fails
/// after a reset (the step goes back) or while training runs ahead of the snapshots.
#[derive(Debug)]
struct Requests<K> {
    /// The result shown when the request went out, and when it went out.
    pending: Option<(Option<K>, f64)>,
    last_sent: f64,
}

impl<K> Default for Requests<K> {
    fn default() -> Self {
        Self { pending: None, last_sent: f64::NEG_INFINITY }
    }
}

impl<K: PartialEq + Clone> Requests<K> {
    fn update(&mut self, shown: Option<&K>, now: f64) {
        if let Some((before, sent)) = &self.pending
            && (before.as_ref() != shown || now - sent > RETRY_SECS)
        {
            self.pending = None;
        }
    }

    fn may_send(&self, now: f64, urgent: bool) -> bool {
        self.pending.is_none() && (urgent || now - self.last_sent >= REFRESH_SECS)
    }

    fn sent(&mut self, shown: Option<&K>, now: f64) {
        self.pending = Some((shown.cloned(), now));
        self.last_sent = now;
    }

    fn in_flight(&self) -> bool {
        self.pending.is_some()
    }
}

/// What identifies an FC1 unit result (the bias and FC2 weights tell two runs apart at the same
/// step).
#[derive(Clone, Debug, PartialEq)]
struct UnitKey {
    unit: usize,
    step: u64,
    bias: u32,
    votes: Vec<u32>,
}

impl UnitKey {
    fn of(u: &Fc1Unit) -> Self {
        Self { unit: u.unit, step: u.step, bias: u.bias.to_bits(), votes: bits(&u.class_weights) }
    }
}

/// What identifies a class-evidence result.
#[derive(Clone, Debug, PartialEq)]
struct EvidenceKey {
    step: u64,
    image: ImageId,
    logits: Vec<u32>,
    bias_terms: Vec<u32>,
}

impl EvidenceKey {
    fn of(e: &ClassEvidence) -> Self {
        Self { step: e.step, image: e.image.clone(), logits: bits(&e.logits), bias_terms: bits(&e.bias_terms) }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The names and sizes the view's texts follow, read from the network's plan once per network.
#[derive(Clone, Debug, PartialEq)]
pub struct FcNames {
    /// The first fc after `flatten` (`fc1`).
    pub fc: String,
    /// The layer whose output `flatten` takes (`conv2`, `pool2`), or `input`.
    pub source: String,
    /// The ReLU right after fc1, if any (`relu2` in the post, `relu3` in LeNet).
    pub relu: Option<String>,
    /// The last fc, whose outputs are the class scores.
    pub last: String,
    /// The layers between fc1 and the scores, in words (`relu3, fc2, relu4 and fc3`), empty
    /// with one fc.
    pub after_fc: String,
    /// fc1's units.
    pub units: usize,
    /// The maps `flatten` takes: channels, height, width.
    pub maps: (usize, usize, usize),
    /// fc1 is the last layer: its units are the class scores.
    pub single: bool,
    /// Each unit of fc1 reaches the classes through the last fc alone, so it has fixed votes.
    pub votes: bool,
    /// Some pool comes before `flatten`.
    pub pooled: bool,
    /// The sentence saying in what sense the evidence is exact (from the engine).
    pub exact: String,
}

impl FcNames {
    /// The names for `plan`, whose evidence layers are `layers`.
    pub fn new(plan: &Plan, layers: &EvidenceLayers) -> Self {
        let name = |i: usize| plan.layers.get(i).map_or_else(String::new, |l| l.name.clone());
        let after_fc: Vec<String> = layers.chain.iter().filter(|&&i| i > layers.first_fc).map(|&i| name(i)).collect();
        Self {
            fc: name(layers.first_fc),
            source: layers.source.map_or_else(|| "input".to_string(), name),
            relu: layers.relu.map(name),
            last: name(layers.last_fc),
            after_fc: in_words(&after_fc),
            units: plan.layers.get(layers.first_fc).map_or(0, |l| l.output.len()),
            maps: (layers.channels, layers.height, layers.width),
            single: layers.first_fc == layers.last_fc,
            votes: layers.unit_votes(),
            pooled: plan.layers[..layers.flatten.min(plan.layers.len())]
                .iter()
                .any(|l| matches!(l.spec, LayerSpec::MaxPool { .. } | LayerSpec::AvgPool { .. })),
            exact: layers.sentence(plan),
        }
    }

    /// `conv2's 32 maps of 28×28` (or `the image's 1 map of 28×28`).
    fn source_maps(&self) -> String {
        let (c, h, w) = self.maps;
        let whose = if self.source == "input" { "the image's".to_string() } else { format!("{}'s", self.source) };
        format!("{whose} {c} map{} of {h}×{w}", if c == 1 { "" } else { "s" })
    }

    /// What one map of the source is called in hover texts: `conv2 map 3`.
    fn source_map(&self, t: usize) -> String {
        format!("{} map {t}", self.source)
    }
}

/// `a`, `a and b`, `a, b and c`.
fn in_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What the view knows of the network it shows: the names, or why there is no FC view.
type Support = Result<FcNames, String>;

/// The view's state: the choices, the textures and the requests in flight. Owned by [`Fc1Tab`].
pub struct Fc1State {
    /// The fc1 unit shown, `0..units`.
    pub unit: usize,
    /// The class whose per-channel evidence maps are shown; `None` follows the predicted class.
    pub class: Option<usize>,
    /// The diverging colour map ([`Fc1Tab`] keeps it equal to the other views').
    pub color_map: ColorMap,
    /// The network the support was worked out for, and the support.
    support: Option<(Arc<ModelView>, Support)>,
    /// The engine's sentences in characters the fonts have (its reasons write layers as
    /// `fc(20) → tanh`).
    glyphs: GlyphSafe,
    unit_requests: Requests<UnitKey>,
    evidence_requests: Requests<EvidenceKey>,
    unit_tiles: TileSet,
    unit_built: Option<(UnitKey, ColorMap)>,
    input_tiles: TileSet,
    sum_tiles: TileSet,
    channel_tiles: TileSet,
    evidence_built: Option<(EvidenceKey, usize, ColorMap)>,
}

impl Default for Fc1State {
    fn default() -> Self {
        Self {
            unit: 0,
            class: None,
            color_map: ColorMap::default(),
            support: None,
            glyphs: GlyphSafe::default(),
            unit_requests: Requests::default(),
            evidence_requests: Requests::default(),
            unit_tiles: TileSet::new("fc1 unit weights"),
            unit_built: None,
            input_tiles: TileSet::new("class evidence input"),
            sum_tiles: TileSet::new("class evidence sums"),
            channel_tiles: TileSet::new("class evidence channels"),
            evidence_built: None,
        }
    }
}

impl Fc1State {
    /// Forgets the requests in flight, so the next frame asks again at once: call it when the
    /// worker answered one of them with an error.
    pub fn forget_requests(&mut self) {
        self.unit_requests = Requests::default();
        self.evidence_requests = Requests::default();
    }

    /// True while an FC1-unit request is unanswered.
    pub fn unit_request_in_flight(&self) -> bool {
        self.unit_requests.in_flight()
    }

    /// True while a class-evidence request is unanswered.
    pub fn evidence_request_in_flight(&self) -> bool {
        self.evidence_requests.in_flight()
    }

    /// The names for `model`, or why it has no FC view, worked out again only for another
    /// network (the reason names the named networks, which takes parsing their lines).
    fn support(&mut self, model: &Arc<ModelView>) -> Support {
        if let Some((m, s)) = &self.support
            && (Arc::ptr_eq(m, model) || **m == **model)
        {
            return s.clone();
        }
        if self.support.is_some() {
            // Another network: its units and classes are others.
            self.unit = 0;
            self.class = None;
        }
        let support = evidence_support(&model.plan).map(|l| FcNames::new(&model.plan, &l));
        self.support = Some((model.clone(), support.clone()));
        support
    }
}

/// The selected digit as a class-evidence result names it, if there is a batch.
fn selected_image(snap: &Snapshot) -> Option<ImageId> {
    if snap.batch.labels.is_empty() {
        return None;
    }
    let position = snap.sample.index;
    Some(ImageId::Batch { position, train_index: snap.batch.indices.get(position).copied().unwrap_or(0) })
}

/// The class name of `k` for labels.
fn class_name(snap: Option<&Snapshot>, k: usize) -> String {
    snap.and_then(|s| s.class_names.get(k).cloned()).unwrap_or_else(|| k.to_string())
}

/// The line stating the identity for class `k`: "Σ evidence 3.217 + bias terms 0.412 = logit
/// 3.629".
pub fn identity_line(e: &ClassEvidence, k: usize) -> String {
    let sum = e.evidence_sum(k);
    let bias = e.bias_terms.get(k).copied().unwrap_or(0.0);
    let logit = e.logits.get(k).copied().unwrap_or(0.0);
    format!("{IDENTITY_START} {sum:.3} + bias terms {bias:.3} = logit {logit:.3}")
}

/// Draws both parts: what fc1 unit `state.unit` looks at, and the class evidence of the
/// selected digit; or, for a network whose evidence is not exact, why neither is shown.
/// `unit` and `evidence` are the latest answers from the worker (whatever they are about);
/// returns the requests to send.
pub fn fc1_ui(
    ui: &mut egui::Ui,
    state: &mut Fc1State,
    snap: Option<&Snapshot>,
    unit: Option<&Fc1Unit>,
    evidence: Option<&ClassEvidence>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let now = ui.input(|i| i.time);
    let names = match snap.map(|s| state.support(&s.model)) {
        Some(Ok(names)) => Some(names),
        Some(Err(reason)) => {
            let reason = state.glyphs.get(ui.ctx(), &reason, false);
            not_shown_ui(ui, &reason);
            return commands;
        }
        None => None,
    };
    // Answers about another network (the worker's last ones before a reset) are not shown.
    let unit = unit.filter(|u| names.as_ref().is_some_and(|n| unit_fits(u, n)));
    let evidence = evidence.filter(|e| names.as_ref().is_some_and(|n| evidence_fits(e, n, snap)));
    egui::ScrollArea::vertical().id_salt("fc1 view").auto_shrink([false, false]).show(ui, |ui| {
        if let Some(c) = unit_section_ui(ui, state, snap, names.as_ref(), unit, evidence, now) {
            commands.push(c);
        }
        ui.add_space(10.0);
        ui.separator();
        if let Some(c) = evidence_section_ui(ui, state, snap, names.as_ref(), evidence, now) {
            commands.push(c);
        }
    });
    commands
}

/// True when `u` is a unit of the network `n` describes.
fn unit_fits(u: &Fc1Unit, n: &FcNames) -> bool {
    let (c, h, w) = n.maps;
    u.layer == n.fc && (u.channels, u.height, u.width) == (c, h, w) && u.weights.len() == c * h * w
}

/// True when `e` is evidence of the network `n` describes.
fn evidence_fits(e: &ClassEvidence, n: &FcNames, snap: Option<&Snapshot>) -> bool {
    let (c, h, w) = n.maps;
    let classes = snap.map_or(e.classes(), |s| s.model.plan.classes);
    (e.channels, e.height, e.width) == (c, h, w) && e.maps.len() == e.classes() * c * h * w && e.classes() == classes
}

/// What the view says instead of both parts for a network whose class evidence is not exact.
fn not_shown_ui(ui: &mut egui::Ui, reason: &str) {
    section_heading(ui, NOT_SHOWN_HEADING);
    let mut chars = reason.chars();
    let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    ui.label(RichText::new(format!("{first}{}.", chars.as_str())).strong());
    ui.label(
        RichText::new(
            "This view shows the first fc after flatten as maps (each unit's weights laid out like \
             the maps it reads), and splits every class score of the selected digit exactly into \
             one number per value flatten takes. That split holds when every activation after \
             flatten is a ReLU, held at its on/off pattern for the digit: then each score is \
             linear in those values. The feature maps, filters and outputs still show this network.",
        )
        .small()
        .weak(),
    );
}

/// Grid shape for `count` square maps twice as wide as tall (32 → 8 × 4).
fn wide_grid(count: usize, avail_w: f32, max_tile: f32) -> Grid {
    // Room for the scroll bar the view's scroll area may add.
    let avail_w = avail_w - 14.0;
    let cols = ((2 * count) as f32).sqrt().ceil().max(1.0) as usize;
    let rows = count.div_ceil(cols).max(1);
    let gap = 3.0;
    let tile = ((avail_w - (cols - 1) as f32 * gap) / cols as f32).clamp(16.0, max_tile).floor();
    Grid { rows, cols, tile, gap }
}

/// The paragraph under the unit part's heading.
fn unit_intro(n: &FcNames) -> String {
    let (c, h, w) = n.maps;
    let weights = crate::ui::support::text::thousands((c * h * w) as u64);
    let lead = if n.pooled || n.source == "input" {
        format!("{}'s input is {} laid end to end by flatten", n.fc, n.source_maps())
    } else {
        format!("With no pooling, {}'s input is {} laid end to end by flatten", n.fc, n.source_maps())
    };
    let units = if n.single {
        format!(
            "{} is the last layer, so its {} units are the class scores: each class's weights are one weight per \
             {} value ({weights} of them), a stack of maps the size of {}'s — a template it matches against them.",
            n.fc, n.units, n.source, n.source
        )
    } else {
        format!(
            "so each of its {} hidden units has one weight per {} value ({weights} of them): a stack of maps the \
             size of {}'s.",
            n.units, n.source, n.source
        )
    };
    let sep = if n.single { ". " } else { ", " };
    format!(
        "{lead}{sep}{units} A positive weight raises the unit where {} is positive, a negative one lowers it.",
        n.source
    )
}

fn unit_section_ui(
    ui: &mut egui::Ui,
    state: &mut Fc1State,
    snap: Option<&Snapshot>,
    names: Option<&FcNames>,
    unit: Option<&Fc1Unit>,
    evidence: Option<&ClassEvidence>,
    now: f64,
) -> Option<Command> {
    let units = names.map_or(1, |n| n.units).max(1);
    state.unit = state.unit.min(units - 1);
    let fc = names.map_or("fc1", |n| n.fc.as_str());
    if names.is_some_and(|n| n.single) {
        section_heading(ui, &format!("What {fc} looks at for each class"));
    } else {
        section_heading(ui, &format!("What an {} unit looks at", fc.to_uppercase()));
    }
    if let Some(n) = names {
        ui.label(RichText::new(unit_intro(n)).small());
    }

    let before = state.unit;
    ui.horizontal(|ui| {
        let prev = ui.add_enabled(state.unit > 0, egui::Button::new("<"));
        prev.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, state.unit > 0, PREVIOUS_UNIT_LABEL));
        if prev.on_hover_text("Previous unit").clicked() {
            state.unit -= 1;
        }
        ui.add(egui::Slider::new(&mut state.unit, 0..=units - 1).text(UNIT_LABEL).integer());
        let more = state.unit + 1 < units;
        let next = ui.add_enabled(more, egui::Button::new(">"));
        next.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, more, NEXT_UNIT_LABEL));
        if next.on_hover_text("Next unit").clicked() {
            state.unit += 1;
        }
        if names.is_some_and(|n| n.single) {
            ui.label(RichText::new(format!("= class {}", class_name(snap, state.unit))).strong());
        }
    });
    let changed = state.unit != before;

    // Ask for the chosen unit when what is shown is another unit or another step's weights.
    let shown = unit.map(UnitKey::of);
    state.unit_requests.update(shown.as_ref(), now);
    let mut command = None;
    if let Some(s) = snap {
        let current = unit.is_some_and(|u| u.unit == state.unit && u.step == s.step);
        if !current && state.unit_requests.may_send(now, changed) {
            state.unit_requests.sent(shown.as_ref(), now);
            command = Some(Command::Fc1Unit(state.unit));
        }
    }

    let (Some(u), Some(n)) = (unit, names) else {
        let what = if snap.is_some() { "asking the trainer for the unit's weights…" } else { "no network yet" };
        placeholder_ui(ui, egui::vec2(ui.available_width().min(480.0), 80.0), what);
        return command;
    };

    let key = (UnitKey::of(u), state.color_map);
    let count = u.channels;
    let (h, w) = (u.height, u.width);
    if state.unit_built.as_ref() != Some(&key) {
        let scales = Scales::per_layer(&[&u.weights]);
        state.unit_tiles.set(ui.ctx(), &u.weights, count, h, w, Coloring::Diverging { map: state.color_map, scales });
        state.unit_built = Some(key);
    }

    if u.unit != state.unit {
        // Keeps the last unit on screen while the next arrives, so dragging the slider does not
        // flash an empty box every frame.
        ui.label(RichText::new(format!("showing unit {} until unit {} arrives…", u.unit, state.unit)).weak());
    }
    unit_facts_ui(ui, u, n, snap, evidence);
    votes_ui(ui, u, n, snap, state.color_map);

    ui.add_space(4.0);
    let per_map = if count == 1 { String::new() } else { format!(" (one per {} map)", n.source) };
    ui.label(
        RichText::new(format!(
            "{} weights as {count} map{} of {h}×{w}{per_map} · step {}",
            crate::ui::support::text::thousands((count * h * w) as u64),
            if count == 1 { "" } else { "s" },
            u.step
        ))
        .strong(),
    );
    if let Some(scales) = state.unit_tiles.scales() {
        let what = format!("{fc} weights");
        legend_ui(ui, &Legend { what: &what, scales, clipped: 0.0, map: state.color_map });
    }
    let grid = wide_grid(count, ui.available_width(), 72.0);
    let j = u.unit;
    let (response, _) = tiles_ui(ui, &state.unit_tiles, grid, &|r, c| Some(r * grid.cols + c), &|t, y, x, v| {
        format!("unit {j}'s weight on {}\nrow {y}, column {x}\nweight {}", n.source_map(t + 1), fmt_sig(v))
    });
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, UNIT_MAPS_LABEL));
    command
}

/// The unit's bias and what it does on the selected digit.
fn unit_facts_ui(
    ui: &mut egui::Ui,
    u: &Fc1Unit,
    n: &FcNames,
    snap: Option<&Snapshot>,
    evidence: Option<&ClassEvidence>,
) {
    let j = u.unit;
    let mut facts = vec![format!("unit {j}: bias {}", fmt_sig(u.bias))];
    let fc = snap.and_then(|s| s.model.plan.layer_named(&u.layer).map(|l| (s, l.index)));
    match fc.map(|(s, i)| (s.sample.output(i), s.sample.output(i + 1))) {
        Some((z, a)) if j < z.len() => {
            let z = z[j];
            let mut text = format!("on the selected {}: {} = {}", word(snap), u.layer, fmt_sig(z));
            match &n.relu {
                Some(relu) => {
                    if let Some(a) = a.get(j) {
                        text.push_str(&format!(", {relu} = {}", fmt_sig(*a)));
                    }
                    text.push_str(&if z > 0.0 {
                        format!(" (active: it passes {relu})")
                    } else {
                        format!(" (off: {relu} blocks it)")
                    });
                }
                None if n.single => text.push_str(&format!(" (class {}'s score)", class_name(snap, j))),
                None => {}
            }
            facts.push(text);
        }
        Some(_) => facts.push(format!("on the selected {}: computed in forward {}", word(snap), u.layer)),
        None => {}
    }
    if let (Some(active), Some(_)) = (evidence.and_then(|e| e.active_units.get(j)), &n.relu) {
        // The evidence ran on the weights after the step's update, the digit's values before it.
        facts.push(format!(
            "with the current weights it is {} for this {}",
            if *active { "on" } else { "off" },
            word(snap)
        ));
    }
    ui.label(facts.join(" · "));
}

/// The last fc's weight from the unit to each class: how its output votes; or why a unit has
/// no fixed vote.
fn votes_ui(ui: &mut egui::Ui, u: &Fc1Unit, n: &FcNames, snap: Option<&Snapshot>, map: ColorMap) {
    let votes = &u.class_weights;
    if votes.is_empty() || !n.votes {
        if !n.single && !n.votes {
            ui.label(
                RichText::new(format!(
                    "No fixed vote per class: {}'s units reach the scores through {}, so how much a unit counts \
                     for a class depends on which later units are on for the digit. The class evidence below \
                     takes that into account exactly.",
                    n.fc, n.after_fc
                ))
                .small()
                .weak(),
            );
        }
        return;
    }
    let last = n.last.to_uppercase();
    let scale = votes.iter().fold(0.0_f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let best = argmax(votes);
    let worst = argmax(&votes.iter().map(|v| -v).collect::<Vec<_>>());
    let summary = format!(
        "{last} weights from this unit: when it fires it votes most for {} ({}), most against {} ({})",
        class_name(snap, best),
        fmt_sig(votes[best]),
        class_name(snap, worst),
        fmt_sig(votes[worst])
    );
    ui.label(summary);
    let bar_w = 90.0;
    ui.horizontal_wrapped(|ui| {
        for (k, v) in votes.iter().enumerate() {
            let name = class_name(snap, k);
            // The class name in a column of its own, then the bar around its zero line: names
            // drawn beside the bars ran into the neighbouring cell's.
            let label_w = 16.0;
            let (rect, response) = ui.allocate_exact_size(egui::vec2(label_w + bar_w, 16.0), egui::Sense::hover());
            let painter = ui.painter_at(rect);
            let text_at = egui::pos2(rect.left(), rect.center().y);
            let font = egui::FontId::monospace(11.0);
            painter.text(text_at, egui::Align2::LEFT_CENTER, &name, font, ui.visuals().text_color());
            let bars = egui::Rect::from_min_max(egui::pos2(rect.left() + label_w, rect.top()), rect.max);
            let mid = bars.center().x;
            let end = mid + (v / scale) * (bar_w * 0.5 - 2.0);
            let bar = egui::Rect::from_x_y_ranges(mid.min(end)..=mid.max(end), bars.y_range().shrink(3.0));
            painter.rect_filled(bar, 1.0, map.color(*v, scale));
            painter.vline(mid, bars.y_range(), Stroke::new(1.0, ui.visuals().weak_text_color()));
            let label = format!("vote for {name}: {last} weight {}", fmt_sig(*v));
            response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
            response.on_hover_text(label);
        }
    });
}

/// The bias terms of the identity, in words.
fn bias_terms_text(n: &FcNames) -> String {
    if n.single {
        format!("the bias term is {}'s bias for the class", n.fc)
    } else {
        let held = n.relu.as_ref().map_or_else(String::new, |_| " that are on".to_string());
        format!("the bias terms are {}'s bias plus the biases of the earlier fc units{held}, carried forward", n.last)
    }
}

fn evidence_section_ui(
    ui: &mut egui::Ui,
    state: &mut Fc1State,
    snap: Option<&Snapshot>,
    names: Option<&FcNames>,
    evidence: Option<&ClassEvidence>,
    now: f64,
) -> Option<Command> {
    section_heading(ui, &format!("Class evidence for the selected {}", word(snap)));
    let source = names.map_or("input", |n| n.source.as_str());
    let summed =
        if names.is_some_and(|n| n.maps.0 > 1) { format!(", summed over the {source} maps") } else { String::new() };
    ui.label(
        RichText::new(format!(
            "How much every {source} pixel adds to each class score{summed}: positive values push the class \
             up, negative ones down. All classes share one colour scale, so colours compare between them."
        ))
        .small(),
    );

    let shown = evidence.map(EvidenceKey::of);
    state.evidence_requests.update(shown.as_ref(), now);
    let mut command = None;
    if let Some((s, image)) = snap.and_then(|s| selected_image(s).map(|i| (s, i))) {
        let current = evidence.is_some_and(|e| e.step == s.step && e.image == image);
        if !current && state.evidence_requests.may_send(now, false) {
            state.evidence_requests.sent(shown.as_ref(), now);
            command = Some(Command::ClassEvidence(EvidenceOf::SelectedSample));
        }
    }

    let (Some(e), Some(n)) = (evidence.filter(|e| e.classes() > 0 && e.channels * e.height * e.width > 0), names)
    else {
        let what = match snap {
            Some(s) if selected_image(s).is_some() => "asking the trainer for the evidence maps…",
            Some(s) if item_word(&s.class_names) == "image" => {
                "take a step first: the evidence is about an image of the batch"
            }
            Some(_) => "take a step first: the evidence is about a digit of the batch",
            None => "no network yet",
        };
        placeholder_ui(ui, egui::vec2(ui.available_width().min(480.0), 80.0), what);
        return command;
    };

    let classes = e.classes();
    let predicted = argmax(&e.logits);
    let chosen = state.class.filter(|k| *k < classes).unwrap_or(predicted);
    let input_shape = snap.map(|s| s.model.plan.input.dims());
    build_evidence_textures(ui.ctx(), state, e, chosen, input_shape.as_deref());

    ui.label(image_caption(e, n, snap));

    // The digit, then one summed map per class on a shared scale.
    if let Some(scales) = state.sum_tiles.scales() {
        legend_ui(ui, &Legend { what: "evidence per pixel", scales, clipped: 0.0, map: state.color_map });
    }
    let gap = ui.spacing().item_spacing.x;
    let tile =
        ((ui.available_width() - 14.0 - (classes as f32) * gap) / (classes + 1) as f32).clamp(28.0, 84.0).floor();
    let one = Grid { rows: 1, cols: 1, tile, gap: 0.0 };
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            let input = &state.input_tiles;
            let (r, _) = tiles_ui(ui, input, one, &|_, _| Some(0), &|_, y, x, _| {
                format!("input pixel row {y}, column {x}: {}", pixel_text(&input.texel(0, y, x)))
            });
            r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, format!("the {}", word(snap))));
            ui.label(RichText::new(word(snap)).small());
        });
        for k in 0..classes {
            ui.vertical(|ui| {
                let name = class_name(snap, k);
                let logit = e.logits.get(k).copied().unwrap_or(0.0);
                let (r, _) = tiles_ui(ui, &state.sum_tiles, one, &|_, _| Some(k), &|_, _, _, _| String::new());
                // The click area covers the tile and egui hovers only the topmost interactive
                // widget, so the per-pixel hover text is this area's.
                let click = ui.interact(r.rect, ui.scope_id().with(("evidence class", k)), egui::Sense::click());
                if let Some(pos) = click.hover_pos() {
                    let (th, tw) = state.sum_tiles.tile_size();
                    let rel = (pos - click.rect.min) / click.rect.size().max(egui::Vec2::splat(1.0));
                    let y = ((rel.y * th as f32) as usize).min(th.saturating_sub(1));
                    let x = ((rel.x * tw as f32) as usize).min(tw.saturating_sub(1));
                    if let Some(v) = state.sum_tiles.value(k, y, x) {
                        click.show_tooltip_text(format!(
                            "class {name}: evidence of {source} position row {y}, column {x}: {}\n{}\n\
                             Click: show its evidence per {source} map.",
                            fmt_sig(v),
                            identity_line(e, k)
                        ));
                    }
                }
                if k == predicted {
                    let stroke = Stroke::new(3.0, palette::FORWARD);
                    ui.painter().rect_stroke(click.rect.expand(2.0), 2.0, stroke, StrokeKind::Outside);
                }
                if k == chosen {
                    let stroke = Stroke::new(1.5, ui.visuals().selection.stroke.color);
                    ui.painter().rect_stroke(click.rect.expand(5.0), 3.0, stroke, StrokeKind::Outside);
                }
                // Name and logit on two lines: one line would be wider than the tile and push
                // the last classes out of the view.
                let mut text = RichText::new(format!("{name}\n{logit:+.2}")).small().monospace();
                if k == predicted {
                    text = text.strong().color(palette::FORWARD);
                }
                ui.label(text);
                let mut label = format!("class {name} evidence, logit {logit:.3}");
                if k == predicted {
                    label.push_str(", predicted");
                }
                click.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, k == chosen, &label));
                if click.clicked() {
                    state.class = Some(k);
                }
            });
        }
    });
    ui.label(
        RichText::new(format!("Blue-ringed: the predicted class, {}.", class_name(snap, predicted)))
            .small()
            .color(palette::FORWARD),
    );

    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("class {}:", class_name(snap, chosen))).strong());
        ui.label(RichText::new(identity_line(e, chosen)).monospace());
    });
    ui.label(
        RichText::new(format!(
            "{} So the contributions of the {} values plus the bias terms add up to the logit ({}).",
            n.exact,
            n.source,
            bias_terms_text(n)
        ))
        .small()
        .weak(),
    );

    ui.add_space(6.0);
    ui.horizontal(|ui| {
        let maps = if e.channels == 1 {
            format!("Class {}'s evidence in {source}'s map", class_name(snap, chosen))
        } else {
            format!("Class {}'s evidence in each of the {} {source} maps", class_name(snap, chosen), e.channels)
        };
        ui.label(RichText::new(maps).strong());
        if state.class.is_some() && ui.small_button("Follow prediction").clicked() {
            state.class = None;
        }
    });
    if let Some(scales) = state.channel_tiles.scales() {
        legend_ui(ui, &Legend { what: "per map", scales, clipped: 0.0, map: state.color_map });
    }
    let grid = wide_grid(e.channels, ui.available_width(), 72.0);
    let chosen_name = class_name(snap, chosen);
    let (response, _) = tiles_ui(ui, &state.channel_tiles, grid, &|r, c| Some(r * grid.cols + c), &|t, y, x, v| {
        format!("class {chosen_name}, {}\nrow {y}, column {x}\nevidence {}", n.source_map(t + 1), fmt_sig(v))
    });
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, CHANNEL_MAPS_LABEL));
    command
}

/// What the evidence is about, in words.
fn image_caption(e: &ClassEvidence, n: &FcNames, snap: Option<&Snapshot>) -> String {
    let what = match &e.image {
        ImageId::Batch { position, train_index } => {
            format!("{} {} of the batch (training image {train_index})", word(snap), position + 1)
        }
        ImageId::Test(i) => format!("test image {i}"),
        ImageId::Drawn => format!("the drawn {}", word(snap)),
    };
    let label = e.label.map(|l| format!(", label {}", class_name(snap, l))).unwrap_or_default();
    let x = if e.source == "input" { "the image".to_string() } else { format!("{}'s output", e.source) };
    let caption = format!("{what}{label} · weights after step {} · x = {x}", e.step);
    match &n.relu {
        Some(relu) if !e.active_units.is_empty() => {
            let on = e.active_units.iter().filter(|a| **a).count();
            format!("{caption} · {relu} lets {on} of {} {} units through", e.active_units.len(), n.fc)
        }
        _ => caption,
    }
}

/// Uploads the digit, the per-class sums and the chosen class's maps when the result, the class
/// or the colour map changed. `input_shape` is the network's input, `[C, H, W]`: the digit is
/// drawn from its first channel.
fn build_evidence_textures(
    ctx: &egui::Context,
    state: &mut Fc1State,
    e: &ClassEvidence,
    chosen: usize,
    input_shape: Option<&[usize]>,
) {
    let key = (EvidenceKey::of(e), chosen, state.color_map);
    if state.evidence_built.as_ref() == Some(&key) {
        return;
    }
    let map = state.color_map;
    let hw = e.height * e.width;
    let classes = e.classes();
    let same_result = state.evidence_built.as_ref().is_some_and(|(k, _, m)| *k == key.0 && *m == map);
    if !same_result {
        match input_shape {
            Some(&[c, h, w]) if c * h * w > 0 && e.input.len() >= c * h * w => {
                state.input_tiles.set(ctx, &e.input[..c * h * w], 1, h, w, Coloring::picture(c));
            }
            _ => state.input_tiles.clear(),
        }
        // Summed in f64 like `evidence_sum`, so the maps drawn add up to what the line says.
        let mut sums = vec![0.0_f64; classes * hw];
        for k in 0..classes {
            for c in 0..e.channels {
                for (s, v) in sums[k * hw..(k + 1) * hw].iter_mut().zip(e.channel_map(k, c)) {
                    *s += f64::from(*v);
                }
            }
        }
        let sums: Vec<f32> = sums.into_iter().map(|v| v as f32).collect();
        // One scale for all classes, so a stronger colour means more evidence whatever the class.
        let scales = Scales::per_layer(&[&sums]);
        state.sum_tiles.set(ctx, &sums, classes, e.height, e.width, Coloring::Diverging { map, scales });
    }
    let maps = e.class_map(chosen);
    let scales = Scales::per_layer(&[maps]);
    state.channel_tiles.set(ctx, maps, e.channels, e.height, e.width, Coloring::Diverging { map, scales });
    state.evidence_built = Some(key);
}

/// The tab's stable name.
pub const ID: TabId = TabId::new("Fc1");

/// What an FC1 unit looks at, and the class evidence of the selected digit.
#[derive(Default)]
pub struct Fc1Tab {
    state: Fc1State,
}

impl Tab for Fc1Tab {
    fn id(&self) -> TabId {
        ID
    }

    fn name(&self) -> &'static str {
        "FC1"
    }

    fn key(&self) -> Option<egui::Key> {
        Some(egui::Key::Num3)
    }

    fn help_topic(&self) -> HelpTopic {
        HelpTopic::Fc1
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut TabContext<'_>) {
        self.state.color_map = ctx.view.color_map;
        let (unit, evidence) = (ctx.teaching.fc1_unit.as_deref(), ctx.teaching.class_evidence.as_deref());
        egui::ScrollArea::vertical().id_salt("fc1 view").show(ui, |ui| {
            ctx.commands.extend(fc1_ui(ui, &mut self.state, ctx.snapshot, unit, evidence));
        });
    }

    fn request_failed(&mut self) {
        self.state.forget_requests();
    }
}

/// "digit" or "image" (see [`item_word`]); "digit" before the first snapshot.
fn word(snap: Option<&Snapshot>) -> &'static str {
    snap.map_or("digit", |s| item_word(&s.class_names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time_answered_by_any_new_result() {
        let mut r = Requests::<u32>::default();
        assert!(r.may_send(0.0, false));
        r.sent(Some(&1), 0.0);
        r.update(Some(&1), 1.0);
        assert!(!r.may_send(1.0, true), "the same result is still shown: still in flight");
        r.update(Some(&2), 1.1);
        assert!(r.may_send(1.1, true), "a new result answers it");
        r.sent(Some(&2), 1.1);
        assert!(!r.may_send(1.2, false));
        r.update(Some(&2), 1.1 + RETRY_SECS + 0.1);
        assert!(r.may_send(1.1 + RETRY_SECS + 0.1, false), "an unanswered request is retried");
    }

    fn names(model: &str) -> FcNames {
        let plan = crate::engine::model::resolve(model, (1, 28, 28), 10).unwrap();
        FcNames::new(&plan, &evidence_support(&plan).unwrap())
    }

    #[test]
    fn the_texts_name_the_layers_and_sizes_of_the_network() {
        let post = names("post");
        assert_eq!(
            (post.fc.as_str(), post.source.as_str(), post.relu.as_deref(), post.last.as_str()),
            ("fc1", "conv2", Some("relu2"), "fc2")
        );
        assert_eq!((post.units, post.maps), (100, (32, 28, 28)));
        assert!(post.votes && !post.single && !post.pooled);
        assert!(
            unit_intro(&post).starts_with(
                "With no pooling, fc1's input is conv2's 32 maps of 28×28 laid end to end by flatten, so each of \
                 its 100 hidden units has one weight per conv2 value (25,088 of them)"
            ),
            "{}",
            unit_intro(&post)
        );

        let lenet = names("lenet5");
        assert_eq!(
            (lenet.source.as_str(), lenet.relu.as_deref(), lenet.last.as_str(), lenet.units, lenet.maps),
            ("pool2", Some("relu3"), "fc3", 120, (16, 5, 5))
        );
        assert!(!lenet.votes && !lenet.single && lenet.pooled);
        assert_eq!(lenet.after_fc, "relu3, fc2, relu4 and fc3");
        assert!(unit_intro(&lenet).starts_with("fc1's input is pool2's 16 maps of 5×5"), "{}", unit_intro(&lenet));

        let tiny = names("tiny");
        assert!(tiny.single && !tiny.votes && tiny.relu.is_none());
        assert_eq!((tiny.source.as_str(), tiny.units, tiny.maps), ("pool2", 10, (32, 7, 7)));
        assert!(unit_intro(&tiny).contains("fc1 is the last layer, so its 10 units are the class scores"));
        assert!(bias_terms_text(&tiny).contains("fc1's bias"));

        let relu = names("post-relu");
        assert_eq!((relu.source.as_str(), relu.relu.as_deref()), ("relu2", Some("relu3")));
    }

    #[test]
    fn automatic_requests_are_spaced_but_a_users_choice_is_not() {
        let mut r = Requests::<u32>::default();
        r.sent(None, 10.0);
        r.update(Some(&1), 10.05);
        assert!(!r.may_send(10.05, false));
        assert!(r.may_send(10.05, true));
        assert!(r.may_send(10.0 + REFRESH_SECS, false));
    }
}
