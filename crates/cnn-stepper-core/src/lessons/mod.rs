//! Lessons a teacher can write: a short sequence of cards, each with a few sentences and the
//! state the app should be in while it is shown (a network and recipe, a seed, a step and a
//! phase, a tab, a layer, a pixel for the inspector).
//!
//! A lesson is a plain Markdown file:
//!
//! ```text
//! # Why the post's network does not learn      ← the lesson's title (first line that is not blank)
//! An optional introduction.
//!
//! ## The post's initialisation                 ← a card
//! network: post                                ← its state: `key: value` lines right after
//! recipe: post                                   the card's title, up to the first blank line
//! seed: 1
//! run-until: 50
//! tab: health
//!
//! A few sentences, **bold**, `code`, and       ← the card's text
//! - bullet lists.
//! ```
//!
//! [`Lesson::parse`] checks every line and every value, and names the line of the first
//! problem ([`LessonError`]); phases, layers, pixels and tabs are checked against the network
//! the card will be on ([`Known`]). The window ([`crate`] has no egui) puts the app in each
//! card's state; [`Lesson::state_at`] is that state with what earlier cards set carried over.
//! The keys are one table ([`KEYS`]): a new key is a field of [`CardState`], an entry there and a
//! line in [`CardState::set`].

mod error;
mod text;

pub mod builtin;

pub use error::{LessonError, Problem};
pub use text::{Block, Span, blocks};

use std::path::Path;

use crate::data::DataSource;
use crate::data::{SHAPE_NAMES, SHAPES_SIDE};
use crate::engine::Preset;
use crate::engine::model::loops::{LoopPart, check_part};
use crate::engine::model::{Plan, Shape, resolve};
use crate::engine::playground::Setup;

/// Every key a card's state may hold, in the order [`Lesson::to_markdown`] writes them.
pub const KEYS: [&str; 13] = [
    "data",
    "network",
    "recipe",
    "seed",
    "run-until",
    "phase",
    "tab",
    "layer",
    "inspect",
    "select",
    "evaluate",
    "loop",
    "playground",
];

/// The images and classes of the embedded MNIST sample, for checking networks against it.
pub const MNIST_SHAPE: DataShape = DataShape { input: (1, 28, 28), classes: 10 };

/// The images and classes of the built-in `shapes` set.
pub const SHAPES_SHAPE: DataShape = DataShape { input: (3, SHAPES_SIDE, SHAPES_SIDE), classes: SHAPE_NAMES.len() };

/// What a network is checked against: one image's (channels, height, width) and the classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// One image: channels, height, width.
    pub input: (usize, usize, usize),
    /// Number of classes.
    pub classes: usize,
}

/// What the parser checks names against: the window's tabs and the data the app is on when
/// the lesson starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// Each tab as (name on the tab row, stored id): `("Backprop check", "Health")`. A card's
    /// `tab:` may give either, in any case; empty: tabs are not checked.
    pub tabs: Vec<(String, String)>,
    /// The data before any card names one: `None` when not known (networks are then checked
    /// only once a card names the data).
    pub start_data: Option<DataShape>,
    /// The network before any card names one (a name or a line), if known.
    pub start_network: Option<String>,
}

/// A pixel for the pixel inspector: `inspect: conv2, 7, 14, 14`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PixelSpec {
    /// The layer whose output holds it (its student name, `conv2`).
    pub layer: String,
    /// The map (output channel), from 0.
    pub map: usize,
    /// Row, from 0.
    pub row: usize,
    /// Column, from 0.
    pub column: usize,
}

/// The state a card puts the app in; `None` leaves that part as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardState {
    /// `data:` the built-in MNIST sample, the `shapes` set, or a folder.
    pub data: Option<DataSource>,
    /// `network:` a named network or a line (checked like the Network window's).
    pub network: Option<String>,
    /// `recipe:` the preset: initialisation and hyper-parameters.
    pub recipe: Option<Preset>,
    /// `seed:` a fresh run from this seed (the same seed gives the same run).
    pub seed: Option<u64>,
    /// `run-until:` train until this many steps are complete.
    pub run_until: Option<u64>,
    /// `phase:` after `run-until`'s steps, step until this phase (a label such as `forward
    /// conv1`, `loss`, `backward fc1`, `update`, in lower case) has just run.
    pub phase: Option<String>,
    /// `tab:` the tab in front, as its stored id (`Health`).
    pub tab: Option<String>,
    /// `layer:` the layer the views focus (its student name).
    pub layer: Option<String>,
    /// `inspect:` the pixel the inspector opens on.
    pub inspect: Option<PixelSpec>,
    /// `select:` the image of the batch the digit views follow, from 1 as the batch strip counts.
    pub select: Option<usize>,
    /// `evaluate:` measure accuracy on this many test images (0 = all of them).
    pub evaluate: Option<usize>,
    /// `loop:` the Loops tab at a layer's part (`conv2 forward`, `conv1 backward dW`, `loss
    /// backward`), started at the beginning of its loop nest.
    pub loop_part: Option<LoopSpec>,
    /// `playground:` the convolution playground opened in this setup (a
    /// [`Setup`] line: `size=8 kernel=edge-vertical pad=1 stride=2`).
    pub playground: Option<String>,
}

/// A `loop:` value: which part of which layer the Loops tab steps through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopSpec {
    /// The layer's student name; `None` for the loss's parts, which belong to the last layer.
    pub layer: Option<String>,
    /// The part of its loop nest.
    pub part: LoopPart,
}

impl LoopSpec {
    /// Reads `conv2 forward`, `conv1 backward dW` (or `dW & db`, `dw`), `fc1 backward dX` (or
    /// `dx`), `loss forward`, `loss backward`.
    pub fn parse(value: &str) -> Result<LoopSpec, String> {
        let words: Vec<String> = value
            .split(|c: char| c.is_whitespace() || c == '&' || c == ',')
            .filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("and"))
            .map(str::to_ascii_lowercase)
            .collect();
        let usage = "expected a layer and a part, such as `conv2 forward`, `conv1 backward dW`, \
                     `fc1 backward dX` or `loss backward`";
        let Some((first, rest)) = words.split_first() else { return Err(usage.into()) };
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        if first == "loss" {
            let part = match rest[..] {
                [] | ["forward"] => LoopPart::LossForward,
                ["backward"] => LoopPart::LossBackward,
                _ => return Err("the loss has `loss forward` and `loss backward`".into()),
            };
            return Ok(LoopSpec { layer: None, part });
        }
        if !is_key_word(first) {
            return Err(usage.into());
        }
        let has = |w: &str| rest.contains(&w);
        let part = if rest == ["forward"] {
            LoopPart::Forward
        } else if has("dx") {
            LoopPart::BackwardInput
        } else if has("dw") || has("db") {
            LoopPart::BackwardParams
        } else if rest == ["backward"] {
            return Err("say which backward part: `backward dW` (dW & db) or `backward dX`".into());
        } else {
            return Err(usage.into());
        };
        Ok(LoopSpec { layer: Some(first.clone()), part })
    }

    /// The layer's position in `plan` (the last layer for the loss's parts), checked to have
    /// the part.
    pub fn layer_in(&self, plan: &Plan) -> Result<usize, String> {
        let index = match &self.layer {
            None => plan.layers.len().checked_sub(1).ok_or("the network has no layers")?,
            Some(name) => plan.layer_named(name).map(|l| l.index).ok_or_else(|| {
                let names: Vec<&str> = plan.layers.iter().map(|l| l.name.as_str()).collect();
                format!("there is no layer {name}: the network has {}", names.join(", "))
            })?,
        };
        check_part(plan, index, self.part)?;
        Ok(index)
    }
}

impl std::fmt::Display for LoopSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.layer {
            None => f.write_str(self.part.label()),
            Some(l) => write!(f, "{l} {}", self.part.label()),
        }
    }
}

/// One card: a title, its state and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The card's title (after `## `).
    pub title: String,
    /// The line of the title, from 1 (where the window's messages about the card point).
    pub line: usize,
    /// What the card sets.
    pub state: CardState,
    /// The text, Markdown-lite (see [`blocks`]), trimmed.
    pub text: String,
}

/// A lesson: a title, an optional introduction and at least one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lesson {
    /// The title (after `# `).
    pub title: String,
    /// Lines between the title and the first card, trimmed (may be empty).
    pub intro: String,
    /// The cards, in order.
    pub cards: Vec<Card>,
}

impl Lesson {
    /// Reads a lesson from `text`; `file` names it in errors. Names are checked against `known`
    /// and against the network each card is on.
    ///
    /// # Errors
    /// The first problem, with its line: see [`Problem`].
    pub fn parse(file: &str, text: &str, known: &Known) -> Result<Lesson, LessonError> {
        let fail = |line: usize, problem: Problem| LessonError { file: file.to_owned(), line, problem };
        let lines: Vec<&str> = text.lines().collect();
        let mut at = 0;
        while at < lines.len() && lines[at].trim().is_empty() {
            at += 1;
        }
        let Some(first) = lines.get(at) else {
            return Err(fail(lines.len().max(1), Problem::Empty));
        };
        let title = match heading(first) {
            Some((1, "")) => return Err(fail(at + 1, Problem::EmptyTitle)),
            Some((1, t)) => t.to_owned(),
            Some((2, _)) => return Err(fail(at + 1, Problem::MissingTitle)),
            _ => return Err(fail(at + 1, Problem::MissingTitle)),
        };
        at += 1;
        let mut intro = Vec::new();
        while at < lines.len() && heading(lines[at]).is_none() {
            intro.push(lines[at]);
            at += 1;
        }
        if let Some(i) = intro.iter().position(|l| looks_like_key(l)) {
            // A state line before any card: the teacher forgot the card's title.
            if intro[..i].iter().all(|l| l.trim().is_empty()) {
                return Err(fail(at - intro.len() + i + 1, Problem::CardWithoutTitle));
            }
        }
        let mut cards = Vec::new();
        let mut key_lines = Vec::new();
        while at < lines.len() {
            let line_no = at + 1;
            let card_title = match heading(lines[at]) {
                Some((2, "")) => return Err(fail(line_no, Problem::EmptyTitle)),
                Some((2, t)) => t.to_owned(),
                Some((1, _)) => {
                    return Err(fail(
                        line_no,
                        Problem::BadValue {
                            key: "#",
                            value: lines[at].trim().to_owned(),
                            reason: "a lesson has one `# title`; a card starts with `## `".into(),
                        },
                    ));
                }
                _ => return Err(fail(line_no, Problem::CardWithoutTitle)),
            };
            at += 1;
            let mut state = CardState::default();
            let mut seen: Vec<(&'static str, usize)> = Vec::new();
            while at < lines.len() && !lines[at].trim().is_empty() && heading(lines[at]).is_none() {
                let Some((key, value)) = lines[at].split_once(':') else { break };
                let key = key.trim();
                if !is_key_word(key) {
                    break;
                }
                let lower = key.to_ascii_lowercase();
                let Some(&k) = KEYS.iter().find(|k| **k == lower) else {
                    return Err(fail(at + 1, Problem::UnknownKey { key: key.to_owned(), known: KEYS.to_vec() }));
                };
                if seen.iter().any(|(s, _)| *s == k) {
                    return Err(fail(at + 1, Problem::DuplicateKey(k.to_owned())));
                }
                seen.push((k, at + 1));
                state.set(k, value.trim(), known).map_err(|p| fail(at + 1, p))?;
                at += 1;
            }
            let mut body = Vec::new();
            while at < lines.len() && heading(lines[at]).is_none() {
                body.push(lines[at]);
                at += 1;
            }
            cards.push(Card { title: card_title, line: line_no, state, text: trim_block(&body) });
            key_lines.push(seen);
        }
        if cards.is_empty() {
            return Err(fail(lines.len(), Problem::NoCards));
        }
        let lesson = Lesson { title, intro: trim_block(&intro), cards };
        lesson.check_names(&key_lines, known).map_err(|(line, p)| fail(line, p))?;
        Ok(lesson)
    }

    /// Reads and parses the lesson file at `path`; a relative `data:` folder is taken from the
    /// file's folder.
    ///
    /// # Errors
    /// The file cannot be read (line 1), or see [`Lesson::parse`].
    pub fn open(path: &Path, known: &Known) -> Result<Lesson, LessonError> {
        let file = path.display().to_string();
        let unreadable =
            |reason: String| LessonError { file: file.clone(), line: 0, problem: Problem::Unreadable(reason) };
        let mut f = crate::fileio::open_regular(path).map_err(|e| unreadable(e.to_string()))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text)
            .map_err(|e| unreadable(format!("cannot be read as text: {e}")))?;
        let mut lesson = Lesson::parse(&file, &text, known)?;
        if let Some(dir) = path.parent() {
            for card in &mut lesson.cards {
                if let Some(DataSource::Folder(f)) = &mut card.state.data
                    && f.is_relative()
                {
                    *f = dir.join(&*f);
                }
            }
        }
        Ok(lesson)
    }

    /// The state card `index` puts the app in: its own keys, and the data, network, recipe,
    /// seed, steps and phase of the cards before it where it says nothing of them. Naming the
    /// data, network, recipe or seed starts a fresh run, so the steps and phase carried over
    /// are then dropped unless the card gives them; `run-until` drops a carried phase. The view
    /// keys (tab, layer, inspect, select, evaluate) are the card's own.
    pub fn state_at(&self, index: usize) -> CardState {
        let mut acc = CardState::default();
        for card in self.cards.iter().take(index + 1) {
            let s = &card.state;
            let fresh = s.data.is_some() || s.network.is_some() || s.recipe.is_some() || s.seed.is_some();
            if fresh {
                acc.run_until = None;
                acc.phase = None;
            }
            if s.run_until.is_some() {
                acc.phase = None;
            }
            macro_rules! carry {
                ($($f:ident),*) => { $( if s.$f.is_some() { acc.$f = s.$f.clone(); } )* };
            }
            carry!(data, network, recipe, seed, run_until, phase);
            acc.tab = s.tab.clone();
            acc.layer = s.layer.clone();
            acc.inspect = s.inspect.clone();
            acc.select = s.select;
            acc.evaluate = s.evaluate;
            acc.loop_part = s.loop_part.clone();
            acc.playground = s.playground.clone();
        }
        acc
    }

    /// The lesson written back as a lesson file ([`Lesson::parse`] reads it back equal).
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n", self.title);
        if !self.intro.is_empty() {
            out.push_str(&self.intro);
            out.push('\n');
        }
        for card in &self.cards {
            out.push_str(&format!("\n## {}\n", card.title));
            for (key, value) in card.state.entries() {
                out.push_str(&format!("{key}: {value}\n"));
            }
            if !card.text.is_empty() {
                out.push('\n');
                out.push_str(&card.text);
                out.push('\n');
            }
        }
        out
    }

    /// Checks each card's phase, layer and pixel against the network it will be on (when the
    /// data and network are known there), and its network against its data.
    fn check_names(&self, key_lines: &[Vec<(&'static str, usize)>], known: &Known) -> Result<(), (usize, Problem)> {
        for (i, card) in self.cards.iter().enumerate() {
            let key_line = |_: &Card, key: &str| {
                key_lines.get(i).and_then(|ks| ks.iter().find(|(k, _)| *k == key)).map_or(card.line, |(_, l)| *l)
            };
            let state = self.state_at(i);
            let data = match &state.data {
                Some(DataSource::Sample) => Some(MNIST_SHAPE),
                Some(DataSource::Shapes) => Some(SHAPES_SHAPE),
                Some(DataSource::Folder(_)) => None,
                None => known.start_data,
            };
            let network = state.network.clone().or_else(|| known.start_network.clone());
            let (Some(data), Some(network)) = (data, network) else { continue };
            let context = format!("`{network}` on {}", data_name(state.data.as_ref()));
            let plan = match resolve(&network, data.input, data.classes) {
                Ok(p) => p,
                Err(e) => {
                    // Reported on the card that names the network, else on the one naming the data.
                    let key = if card.state.network.is_some() { "network" } else { "data" };
                    return Err((key_line(card, key), Problem::BadValue { key, value: network, reason: e.message() }));
                }
            };
            if let Some(phase) = &card.state.phase
                && phase_index(&plan, phase).is_none()
            {
                let known = plan.phases().into_iter().map(|p| plan.phase_label(p)).collect();
                let name = phase.clone();
                return Err((key_line(card, "phase"), Problem::Unknown { what: "phase", name, context, known }));
            }
            if let Some(layer) = &card.state.layer
                && plan.layer_named(layer).is_none()
            {
                let known = plan.layers.iter().map(|l| l.name.clone()).collect();
                let name = layer.clone();
                return Err((key_line(card, "layer"), Problem::Unknown { what: "layer", name, context, known }));
            }
            if let Some(px) = &card.state.inspect {
                check_pixel(&plan, px, &context).map_err(|p| (key_line(card, "inspect"), p))?;
            }
            if let Some(spec) = &card.state.loop_part
                && let Err(reason) = spec.layer_in(&plan)
            {
                let value = spec.to_string();
                return Err((
                    key_line(card, "loop"),
                    Problem::BadValue { key: "loop", value, reason: format!("{reason} ({context})") },
                ));
            }
        }
        Ok(())
    }
}

/// How a card's data is named in messages.
fn data_name(data: Option<&DataSource>) -> String {
    data.map_or_else(|| "the data in use".to_owned(), |d| d.to_string())
}

/// The position in `plan.phases()` of the phase labelled `label` (any case, any spacing).
pub fn phase_index(plan: &Plan, label: &str) -> Option<usize> {
    let want = normalise(label);
    plan.phases().into_iter().position(|p| normalise(&plan.phase_label(p)) == want)
}

/// Lower case, single spaces.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Checks that the pixel's layer has maps and the map, row and column are inside them.
fn check_pixel(plan: &Plan, px: &PixelSpec, context: &str) -> Result<(), Problem> {
    let Some(layer) = plan.layer_named(&px.layer) else {
        return Err(Problem::Unknown {
            what: "layer",
            name: px.layer.clone(),
            context: context.to_owned(),
            known: plan.layers.iter().map(|l| l.name.clone()).collect(),
        });
    };
    let value = format!("{}, {}, {}, {}", px.layer, px.map, px.row, px.column);
    match layer.output {
        Shape::Maps { c, h, w } if layer.spec != crate::engine::model::LayerSpec::Flatten => {
            if px.map >= c || px.row >= h || px.column >= w {
                return Err(Problem::BadValue {
                    key: "inspect",
                    value,
                    reason: format!(
                        "{} has {c} maps of {h}×{w}: the map is 0 to {}, the row 0 to {}, the column 0 to {}",
                        px.layer,
                        c - 1,
                        h - 1,
                        w - 1
                    ),
                });
            }
            Ok(())
        }
        _ => Err(Problem::BadValue {
            key: "inspect",
            value,
            reason: format!("{} has no maps to inspect (it is after flatten)", px.layer),
        }),
    }
}

impl CardState {
    /// Sets `key` (one of [`KEYS`]) from `value`, checking it.
    fn set(&mut self, key: &'static str, value: &str, known: &Known) -> Result<(), Problem> {
        let bad = |reason: String| Problem::BadValue { key, value: value.to_owned(), reason };
        let number = |v: &str| v.trim().parse::<u64>().map_err(|_| bad("expected a whole number".into()));
        if value.is_empty() {
            return Err(bad("the value is missing".into()));
        }
        match key {
            "data" => {
                self.data = Some(if value.eq_ignore_ascii_case("mnist-sample") {
                    DataSource::Sample
                } else if value.eq_ignore_ascii_case("shapes") {
                    DataSource::Shapes
                } else {
                    DataSource::Folder(value.into())
                });
            }
            "network" => {
                // The line is checked against the data once the card's data is known.
                if crate::engine::model::named(value).is_none()
                    && let Err(e) = crate::engine::model::ModelSpec::parse(value)
                {
                    let is_word = value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    return Err(if is_word {
                        Problem::Unknown {
                            what: "network",
                            name: value.to_owned(),
                            context: String::new(),
                            known: crate::engine::model::NAMED.iter().map(|m| m.name.to_owned()).collect(),
                        }
                    } else {
                        bad(e.message())
                    });
                }
                self.network = Some(value.to_owned());
            }
            "recipe" => {
                self.recipe = Some(
                    Preset::parse(&value.to_ascii_lowercase())
                        .map_err(|_| bad("expected post, recommended or adam".into()))?,
                );
            }
            "seed" => self.seed = Some(number(value)?),
            "run-until" => {
                let v = value.strip_prefix("step").unwrap_or(value);
                self.run_until = Some(number(v)?);
            }
            "phase" => self.phase = Some(normalise(value)),
            "tab" => {
                if known.tabs.is_empty() {
                    self.tab = Some(value.to_owned());
                } else {
                    let want = value.replace([' ', '-', '_'], "").to_lowercase();
                    let found = known
                        .tabs
                        .iter()
                        .find(|(name, id)| name.replace(' ', "").to_lowercase() == want || id.to_lowercase() == want);
                    let Some((_, id)) = found else {
                        return Err(Problem::Unknown {
                            what: "tab",
                            name: value.to_owned(),
                            context: String::new(),
                            known: known.tabs.iter().map(|(n, _)| n.clone()).collect(),
                        });
                    };
                    self.tab = Some(id.clone());
                }
            }
            "layer" => {
                if !is_key_word(value) {
                    return Err(bad("expected a layer's name, such as conv1 or pool2".into()));
                }
                self.layer = Some(value.to_ascii_lowercase());
            }
            "inspect" => {
                let parts: Vec<&str> =
                    value.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()).collect();
                let usage = "expected the layer, the map, the row and the column: `conv1, 3, 14, 14`";
                let [layer, map, row, column] = parts[..] else { return Err(bad(usage.into())) };
                let n = |v: &str| v.parse::<usize>().map_err(|_| bad(usage.into()));
                self.inspect = Some(PixelSpec {
                    layer: layer.to_ascii_lowercase(),
                    map: n(map)?,
                    row: n(row)?,
                    column: n(column)?,
                });
            }
            "select" => {
                let n = number(value)?;
                if n == 0 {
                    return Err(bad("images of the batch count from 1".into()));
                }
                self.select = Some(usize::try_from(n).map_err(|_| bad("too large".into()))?);
            }
            "evaluate" => {
                self.evaluate = match value.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "all" => Some(0),
                    "false" | "no" => None,
                    v => Some(
                        v.parse::<usize>()
                            .map_err(|_| bad("expected true (the whole test set) or a number of test images".into()))?,
                    ),
                };
            }
            "loop" => self.loop_part = Some(LoopSpec::parse(value).map_err(bad)?),
            "playground" => {
                Setup::parse(value).map_err(|e| bad(e.to_string()))?;
                self.playground = Some(value.trim().to_owned());
            }
            // Unreachable through `parse` (it looks the key up in KEYS), but a new key added to
            // KEYS and not here is reported rather than ignored.
            _ => return Err(Problem::UnknownKey { key: key.to_owned(), known: KEYS.to_vec() }),
        }
        Ok(())
    }

    /// The keys set, as `(key, value)` in [`KEYS`] order, written as a lesson file takes them.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(d) = &self.data {
            out.push(("data", d.to_string()));
        }
        if let Some(n) = &self.network {
            out.push(("network", n.clone()));
        }
        if let Some(r) = self.recipe {
            out.push(("recipe", r.name().to_owned()));
        }
        if let Some(s) = self.seed {
            out.push(("seed", s.to_string()));
        }
        if let Some(n) = self.run_until {
            out.push(("run-until", n.to_string()));
        }
        if let Some(p) = &self.phase {
            out.push(("phase", p.clone()));
        }
        if let Some(t) = &self.tab {
            out.push(("tab", t.clone()));
        }
        if let Some(l) = &self.layer {
            out.push(("layer", l.clone()));
        }
        if let Some(p) = &self.inspect {
            out.push(("inspect", format!("{}, {}, {}, {}", p.layer, p.map, p.row, p.column)));
        }
        if let Some(s) = self.select {
            out.push(("select", s.to_string()));
        }
        if let Some(e) = self.evaluate {
            out.push(("evaluate", if e == 0 { "true".to_owned() } else { e.to_string() }));
        }
        if let Some(l) = &self.loop_part {
            out.push(("loop", l.to_string()));
        }
        if let Some(p) = &self.playground {
            out.push(("playground", p.clone()));
        }
        out
    }

    /// True when the card sets something that changes the run (data, network, recipe, seed,
    /// steps or phase), not only the view.
    pub fn moves_the_run(&self) -> bool {
        self.data.is_some()
            || self.network.is_some()
            || self.recipe.is_some()
            || self.seed.is_some()
            || self.run_until.is_some()
            || self.phase.is_some()
    }
}

/// `# title` → (1, "title"), `## title` → (2, "title"); deeper headings are text.
fn heading(line: &str) -> Option<(usize, &str)> {
    let t = line.trim_end();
    if let Some(rest) = t.strip_prefix("## ").or_else(|| (t == "##").then_some("")) {
        return Some((2, rest.trim()));
    }
    if t.starts_with("###") {
        return None;
    }
    t.strip_prefix("# ").or_else(|| (t == "#").then_some("")).map(|rest| (1, rest.trim()))
}

/// A key's spelling: letters, digits and `-`, starting with a letter.
fn is_key_word(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// True for a line that reads as `key: value` with a known key.
fn looks_like_key(line: &str) -> bool {
    line.split_once(':').is_some_and(|(k, _)| KEYS.contains(&k.trim().to_ascii_lowercase().as_str()))
}

/// The lines joined, without blank lines at either end and trailing spaces.
fn trim_block(lines: &[&str]) -> String {
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |e| e + 1);
    lines[start..end].join("\n")
}
