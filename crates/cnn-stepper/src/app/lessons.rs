//! A lesson in the window: the cards of a lesson file (see [`crate::lessons`]) shown one at a
//! time, each putting the app in its state.
//!
//! Moving to a card sets a goal, the card's state with what earlier cards set carried over
//! ([`Lesson::state_at`]); every frame, once the worker has answered everything sent, the next
//! commands towards it go out, in this order: the card's data (loaded on a thread, then
//! [`Command::SetData`]), a fresh run ([`Command::Reset`]) when the network, recipe or seed
//! differ, or the card names a seed, or the run is past the card and cannot step back to it;
//! then [`Command::RunTo`] for whole steps and `StepPhase`/`StepBack` within the batch; the
//! selected image and an evaluation; and last the view (tab, layer, inspector pixel). The same
//! seed gives the same run, so Back re-applies the card before exactly. A command the user
//! sends meanwhile (Run, Pause, a step, a reset) stops the pursuit, and the card offers to go
//! to its state again.

use std::path::Path;
use std::sync::{Arc, mpsc};

use eframe::egui;

use super::CnnApp;
use super::open_data::Loaded;
use crate::data::{DataError, DataSource, LoadOptions, Splits};
use crate::engine::Phase;
use crate::engine::playground::Setup;
use crate::lessons::builtin::{BUILT_IN, built_in};
use crate::lessons::{CardState, DataShape, Known, Lesson, LessonError, Problem, phase_index};
use crate::trainer::{Command, PixelRef, Snapshot};
use crate::ui::panels::banner::Severity;
use crate::ui::panels::lesson_cards::{CardStatus, LessonAction};
use crate::ui::support::prefs::DataChoice;
use crate::ui::tabs::loops::{self, LoopsTab};
use crate::ui::tabs::{TabId, all_tabs};

/// The lesson shown, if any.
#[derive(Default)]
pub(super) struct Lessons {
    pub(super) run: Option<LessonRun>,
    /// Where the lesson panel's top was last drawn (in points): the inspector a card opens
    /// stays above it.
    pub(super) panel_top: Option<f32>,
    /// The height the lesson panel needed last frame for the whole card.
    pub(super) panel_height: Option<f32>,
}

/// A lesson being taught.
pub(super) struct LessonRun {
    pub(super) lesson: Lesson,
    /// The file's name, for messages.
    pub(super) file: String,
    /// The card shown.
    pub(super) card: usize,
    pub(super) status: CardStatus,
    pursuit: Pursuit,
    /// The pixel a card opened the inspector on: closed by a card that opens none.
    inspected: Option<PixelRef>,
    /// A card opened the convolution playground: closed by a card that opens none.
    played: bool,
}

/// What has been done towards the card's state on this visit.
#[derive(Default)]
struct Pursuit {
    /// The fresh run the card asks for has been started (reset or new data).
    fresh: bool,
    /// The card's data: loading, or sent to the worker.
    data: Option<DataStage>,
    /// A `RunTo` of ours is (or was) running.
    running: bool,
    selected: bool,
    evaluated: bool,
    /// An error the worker reported while the card was pursued.
    error: Option<String>,
}

enum DataStage {
    Loading(DataSource, mpsc::Receiver<Result<Splits, DataError>>),
    /// Sent to the worker; the data's source as the worker's snapshots will name it.
    Sent(String),
}

/// What comes out of one look at the card's goal.
enum Next {
    Wait,
    Send(Vec<Command>, String),
    Fail(String),
    Done,
}

impl CnnApp {
    /// The tabs and data the lesson's names are checked against.
    fn lesson_known(&self) -> Known {
        let tabs = all_tabs().iter().map(|t| (t.name().to_owned(), t.id().as_str().to_owned())).collect();
        let start_data =
            Some(DataShape { input: self.data.train.input_shape(), classes: self.data.train.num_classes() });
        let start_network = self.results.snapshot.as_deref().map(|s| s.model.argument());
        Known { tabs, start_data, start_network }
    }

    /// The layer and part the Loops tab steps through (what a `loop:` card set, or the user's
    /// pick), if one is chosen.
    pub fn loops_choice(&mut self) -> Option<(usize, crate::engine::model::loops::LoopPart)> {
        let tab = self.tabs.iter_mut().find(|t| t.id() == loops::ID).and_then(|t| t.as_any_mut())?;
        tab.downcast_mut::<LoopsTab>()?.choice
    }

    /// Starts the built-in lesson `name`, or the lesson file at `name`: what `--lesson` takes.
    pub fn start_lesson_named(&mut self, name: &str) {
        match built_in(name) {
            Some(b) => {
                let result = Lesson::parse(&b.file(), b.text, &self.lesson_known());
                self.start_lesson(result, b.file());
            }
            None if !Path::new(name).exists() && !name.contains(['/', '.']) => {
                // A mistyped built-in name, most likely: say which names there are.
                let names: Vec<&str> = BUILT_IN.iter().map(|b| b.name).collect();
                let problem = Problem::Unreadable(format!(
                    "no built-in lesson has this name and there is no such file; the built-in lessons are {}",
                    names.join(", ")
                ));
                self.start_lesson(Err(LessonError { file: name.to_owned(), line: 0, problem }), name.to_owned());
            }
            None => self.open_lesson_file(Path::new(name)),
        }
    }

    /// Reads the lesson file at `path` and starts it; a file that cannot be used is reported
    /// with its line, and the lesson shown (if any) and the run stay as they were.
    pub fn open_lesson_file(&mut self, path: &Path) {
        let result = Lesson::open(path, &self.lesson_known());
        self.start_lesson(result, path.display().to_string());
    }

    fn start_lesson(&mut self, result: Result<Lesson, LessonError>, file: String) {
        match result {
            Ok(lesson) => {
                self.lessons.run = Some(LessonRun {
                    lesson,
                    file,
                    card: 0,
                    status: CardStatus::Working(String::new()),
                    pursuit: Pursuit::default(),
                    inspected: None,
                    played: false,
                });
                let names_data =
                    self.lessons.run.as_ref().is_some_and(|r| r.lesson.cards.iter().any(|c| c.state.data.is_some()));
                if names_data && self.loading_data() {
                    // The lesson says which data: the last run's, still loading, would land
                    // in the middle of it.
                    self.cancel_loading();
                }
                self.go_to_card(0);
            }
            Err(e) => self.push_banner(Severity::Error, format!("Could not open the lesson: {e}")),
        }
    }

    /// The lesson shown: its title, the card's index and title, and where it stands.
    pub fn lesson(&self) -> Option<(&Lesson, usize, &CardStatus)> {
        self.lessons.run.as_ref().map(|r| (&r.lesson, r.card, &r.status))
    }

    /// Moves to card `index` and starts putting the app in its state.
    pub fn go_to_card(&mut self, index: usize) {
        let running_ours = self.results.snapshot.as_deref().is_some_and(|s| s.running);
        let Some(run) = &mut self.lessons.run else { return };
        if index >= run.lesson.cards.len() {
            return;
        }
        run.card = index;
        run.pursuit = Pursuit::default();
        run.status = CardStatus::Working("Getting the app ready…".into());
        if running_ours {
            // A run towards the card before (or the user's) ends here: this card has its own.
            self.send(Command::Pause);
        }
    }

    /// Does what the lesson panel asked for.
    pub(super) fn lesson_action(&mut self, action: LessonAction) {
        let Some(run) = &self.lessons.run else { return };
        let card = run.card;
        match action {
            LessonAction::Next => self.go_to_card(card + 1),
            LessonAction::Back => self.go_to_card(card.saturating_sub(1)),
            LessonAction::Again => self.go_to_card(card),
            LessonAction::Leave => self.lessons.run = None,
        }
    }

    /// The user sent `commands` from the controls or the keys: a command that moves the run
    /// ends the pursuit of the card's state (the user has taken over).
    pub(super) fn lesson_user_commands(&mut self, commands: &[Command]) {
        let Some(run) = &mut self.lessons.run else { return };
        if !matches!(run.status, CardStatus::Working(_)) {
            return;
        }
        let moves = commands.iter().any(|c| {
            matches!(
                c,
                Command::Run
                    | Command::Pause
                    | Command::RunEpoch
                    | Command::StepPhase
                    | Command::StepBatch
                    | Command::StepBack
                    | Command::Reset { .. }
            )
        });
        if moves {
            run.status = CardStatus::Stopped("You took over: the card's state was not reached.".into());
        }
    }

    /// An error from the worker: while a card's state is pursued, it is why it failed.
    pub(super) fn lesson_error(&mut self, message: &str) {
        if let Some(run) = &mut self.lessons.run
            && matches!(run.status, CardStatus::Working(_))
        {
            run.pursuit.error = Some(message.to_owned());
        }
    }

    /// Sends the next commands towards the card's state, once the worker has answered the
    /// ones before; applies the view once the run is there.
    pub(super) fn drive_lesson(&mut self) {
        let Some(run) = &self.lessons.run else { return };
        if !matches!(run.status, CardStatus::Working(_)) {
            return;
        }
        if self.link.no_worker.is_some() {
            let why = self.link.no_worker.clone().unwrap_or_default();
            self.set_lesson_status(CardStatus::Failed(why));
            return;
        }
        self.poll_lesson_data();
        if self.link.in_flight.busy() {
            return;
        }
        if self.results.snapshot.as_deref().is_none_or(|s| s.running) {
            // Our RunTo on its way (or a Pause not answered yet).
            return;
        }
        // Taken out for the look (it is put back at once): `next_for_card` notes its progress.
        let Some(snap) = self.results.snapshot.take() else { return };
        let next = self.next_for_card(&snap);
        self.results.snapshot = Some(snap);
        match next {
            Next::Wait => {}
            Next::Send(commands, doing) => {
                self.set_lesson_status(CardStatus::Working(doing));
                for c in commands {
                    self.send(c);
                }
            }
            Next::Fail(why) => self.set_lesson_status(CardStatus::Failed(why)),
            Next::Done => {
                self.apply_card_view();
                self.set_lesson_status(CardStatus::Reached);
            }
        }
    }

    fn set_lesson_status(&mut self, status: CardStatus) {
        if let Some(run) = &mut self.lessons.run {
            run.status = status;
        }
    }

    /// The next step towards the card's state from `snap` (nothing in flight, paused).
    fn next_for_card(&mut self, snap: &Snapshot) -> Next {
        let data_now = self.data_switch.current.as_ref().map_or(DataSource::Sample, DataChoice::data_source);
        let Some(run) = &mut self.lessons.run else { return Next::Wait };
        let goal = run.lesson.state_at(run.card);
        let own = run.lesson.cards[run.card].state.clone();
        let p = &mut run.pursuit;
        if let Some(e) = p.error.take() {
            return Next::Fail(e);
        }
        let model = goal.network.clone().unwrap_or_else(|| snap.model.argument());
        let preset = goal.recipe.unwrap_or(snap.preset);
        let seed = goal.seed.unwrap_or(snap.seed);
        // 1. The data.
        if let Some(want) = &goal.data
            && *want != data_now
        {
            return match &p.data {
                None => Next::Wait, // poll_lesson_data starts the load
                Some(DataStage::Loading(..)) => Next::Wait,
                Some(DataStage::Sent(source)) if snap.data_source == *source => Next::Wait,
                Some(DataStage::Sent(..)) => {
                    Next::Fail(format!("The app could not switch to the data {want} (see the message at the top)."))
                }
            };
        }
        // 2. A fresh run.
        let plan_differs =
            match crate::engine::model::resolve(&model, self.data.train.input_shape(), self.data.train.num_classes()) {
                Ok(plan) => plan != snap.model.plan,
                Err(e) => {
                    return Next::Fail(format!(
                        "The network `{model}` cannot run on {}: {}",
                        self.data.source,
                        e.message()
                    ));
                }
            };
        let fresh_asked = own.seed.is_some() && !p.fresh;
        if plan_differs || preset != snap.preset || seed != snap.seed || fresh_asked {
            p.fresh = true;
            return Next::Send(vec![Command::Reset { seed, preset, model }], "Starting a fresh run…".into());
        }
        // 3. The step and the phase.
        if goal.run_until.is_some() || goal.phase.is_some() {
            let phases = snap.phases.len() as u64;
            let base = goal.run_until.unwrap_or(0);
            let within = match &goal.phase {
                None => 0,
                Some(label) => match phase_index(&snap.model.plan, label) {
                    Some(i) => i as u64 + 1,
                    None => {
                        let known: Vec<String> = snap.phases.iter().map(|ph| snap.model.phase_label(*ph)).collect();
                        return Next::Fail(format!(
                            "{} has no phase `{label}`; its phases: {}",
                            snap.model.label(),
                            known.join(", ")
                        ));
                    }
                },
            };
            let target = base * phases + within;
            let now = position(snap);
            if now != target {
                if now > target {
                    let back = now - target;
                    if snap.step_back_refusal.is_none() && back <= snap.phases_done as u64 {
                        return Next::Send(
                            vec![Command::StepBack; back as usize],
                            format!("Stepping back to {}…", goal.phase.as_deref().unwrap_or("the batch's start")),
                        );
                    }
                    // Past it in another batch: the same run again from its start.
                    return Next::Send(vec![Command::Reset { seed, preset, model }], "Starting the run again…".into());
                }
                if now < base * phases {
                    p.running = true;
                    return Next::Send(vec![Command::RunTo { step: base }], format!("Training to step {base}…"));
                }
                let label = goal.phase.clone().unwrap_or_default();
                return Next::Send(vec![Command::StepPhase; (target - now) as usize], format!("Stepping to {label}…"));
            }
        }
        // 4. The image followed, and an evaluation.
        if let Some(i) = goal.select
            && !p.selected
        {
            p.selected = true;
            if i > snap.batch.labels.len() {
                return Next::Fail(format!("The batch has {} images, not {i}.", snap.batch.labels.len()));
            }
            if snap.sample.index != i - 1 {
                return Next::Send(vec![Command::SelectSample(i - 1)], "Selecting the image…".into());
            }
        }
        if let Some(count) = goal.evaluate
            && !p.evaluated
        {
            p.evaluated = true;
            return Next::Send(vec![Command::Evaluate { count }], "Evaluating on the test images…".into());
        }
        Next::Done
    }

    /// Starts loading the card's data, and sends it to the worker once it is in (the window
    /// takes it in as for Open data…, [`CnnApp::data_arrived`]).
    fn poll_lesson_data(&mut self) {
        let data_now = self.data_switch.current.as_ref().map_or(DataSource::Sample, DataChoice::data_source);
        let Some(run) = &self.lessons.run else { return };
        let goal = run.lesson.state_at(run.card);
        let Some(want) = goal.data.clone() else { return };
        match &run.pursuit.data {
            None if want != data_now => {
                let counters = (Arc::default(), Arc::default());
                let spawned = self.spawn_loader(want.clone(), LoadOptions::default(), counters.0, counters.1);
                let Some(run) = &mut self.lessons.run else { return };
                match spawned {
                    Ok(rx) => {
                        run.pursuit.data = Some(DataStage::Loading(want.clone(), rx));
                        run.status = CardStatus::Working(format!("Loading the data {want}…"));
                    }
                    Err(e) => run.status = CardStatus::Failed(format!("Could not start loading {want}: {e}")),
                }
            }
            Some(DataStage::Loading(source, rx)) => {
                let source = source.clone();
                let result = match rx.try_recv() {
                    Err(mpsc::TryRecvError::Empty) => return,
                    Err(mpsc::TryRecvError::Disconnected) => Err(format!("Loading {source} stopped unexpectedly.")),
                    Ok(Err(e)) => Err(format!("Could not load the data {source}: {e}")),
                    Ok(Ok(splits)) => Ok(Arc::new(splits)),
                };
                let data = match result {
                    Ok(data) => data,
                    Err(why) => return self.set_lesson_status(CardStatus::Failed(why)),
                };
                let snap = self.results.snapshot.as_deref();
                let model = goal.network.clone().or_else(|| snap.map(|s| s.model.argument()));
                let model = model.unwrap_or_else(|| crate::engine::model::DEFAULT_MODEL.to_owned());
                let preset = goal.recipe.or(snap.map(|s| s.preset)).unwrap_or(crate::engine::Preset::Recommended);
                let seed = goal.seed.or(snap.map(|s| s.seed)).unwrap_or(1);
                if let Some(run) = &mut self.lessons.run {
                    run.pursuit.data = Some(DataStage::Sent(data.source.clone()));
                    run.pursuit.fresh = true;
                    run.status = CardStatus::Working(format!("Starting a run on {source}…"));
                }
                self.send_data(Loaded::from_source(data, &source), seed, preset, model);
            }
            _ => {}
        }
    }

    /// The card's tab, layer and inspector pixel, once the run is in the card's state.
    fn apply_card_view(&mut self) {
        let Some(run) = &self.lessons.run else { return };
        let own: CardState = run.lesson.state_at(run.card);
        if let Some(tab) = own.tab.as_deref().and_then(TabId::find) {
            self.view.tab = tab;
        }
        let Some(snap) = self.results.snapshot.as_deref() else { return };
        if let Some(layer) = own.layer.as_deref().and_then(|l| snap.model.plan.layer_named(l)) {
            let i = layer.index;
            let backward = snap.last_phase().is_some_and(Phase::is_backward);
            self.view.focus = Some(if backward { Phase::Backward(i) } else { Phase::Forward(i) });
        }
        if let Some(spec) = &own.loop_part
            && let Ok(layer) = spec.layer_in(&snap.model.plan)
        {
            if own.tab.is_none() {
                self.view.tab = loops::ID;
            }
            // Under a lesson's card the loops need the whole width (see the Wide switch).
            self.view.loops_wide = true;
            let tab = self.tabs.iter_mut().find(|t| t.id() == loops::ID).and_then(|t| t.as_any_mut());
            if let Some(tab) = tab.and_then(|t| t.downcast_mut::<LoopsTab>()) {
                tab.show(layer, spec.part, None, 0);
            }
        }
        let played = self.lessons.run.as_ref().is_some_and(|r| r.played);
        match own.playground.as_deref().map(Setup::parse) {
            Some(Ok(setup)) => {
                self.windows.playground.apply(&setup);
                self.windows.show_playground = true;
            }
            _ if played => self.windows.show_playground = false,
            _ => {}
        }
        if let Some(run) = &mut self.lessons.run {
            run.played = own.playground.is_some();
        }
        let opened = self.lessons.run.as_ref().and_then(|r| r.inspected);
        if own.inspect.is_none() && opened.is_some() && self.windows.inspector.pixel == opened {
            self.windows.inspector.pixel = None;
        }
        if let Some(px) = &own.inspect
            && let Some(layer) = snap.model.plan.layer_named(&px.layer)
        {
            let pixel = PixelRef { layer: layer.index, channel: px.map, y: px.row, x: px.column };
            let screen = self.egui_ctx.content_rect();
            let bottom = self.lessons.panel_top.unwrap_or(screen.bottom() * 0.7) - 8.0;
            let room = egui::Rect::from_min_max(
                egui::pos2(screen.left(), screen.top() + 30.0),
                egui::pos2(screen.right(), bottom),
            );
            self.windows.inspector.open_in(pixel, room);
            if let Some(run) = &mut self.lessons.run {
                run.inspected = Some(pixel);
            }
        }
    }
}

/// How far the run is, in phases from the start: complete steps × phases per step + the phases
/// of the batch under way (a step just updated counts as complete).
fn position(s: &Snapshot) -> u64 {
    let phases = s.phases.len() as u64;
    let done = s.phases_done as u64;
    if done >= phases { s.step.saturating_sub(1) * phases + done } else { s.step * phases + done }
}
