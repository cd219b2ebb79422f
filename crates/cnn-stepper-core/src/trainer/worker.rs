//! The named worker thread that owns the [`Session`] and talks to the window through channels.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::Phase;

use super::error::TrainError;
use super::protocol::{Command, Event};
use super::session::Session;

/// Snapshots while running are at least this far apart (~30 a second), so drawing never
/// slows training.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(33);
/// While running, no new snapshot is made while this many are still unread: a window that is
/// not drawing (minimised, or slow) never makes the queue grow. Curve points are not lost:
/// they wait in the session for the next snapshot.
const MAX_UNREAD_SNAPSHOTS: usize = 2;
/// While a slow step runs, a mid-step snapshot at most this often.
const SLOW_STEP_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// Progress events inside a long phase are at least this far apart.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// How the notice of a [`Command::SetData`] that succeeded begins (the data's source and its
/// notes follow): the window takes the new data in when a snapshot carries it.
pub const NEW_DATA_NOTICE: &str = "now training on ";

/// A function that wakes whoever reads the events (the window passes `ctx.request_repaint`).
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// Handle to the training thread. Dropping it shuts the thread down and joins it.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    unread_snapshots: Arc<AtomicUsize>,
    /// Raised by [`Worker::send`] with `Pause` (or `Shutdown`) before the command is queued, so
    /// that a long phase gives up at once instead of after it ends; lowered when the worker
    /// reads the command.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Paused,
    Running,
    /// Running until the epoch counter passes this value.
    UntilEpoch(u64),
    /// Running until this many steps are complete ([`Command::RunTo`]).
    UntilStep(u64),
}

impl Worker {
    /// Starts the thread with `session`; `waker` is called after every event sent.
    pub fn spawn(session: Session, waker: impl Fn() + Send + Sync + 'static) -> std::io::Result<Self> {
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let waker: Waker = Box::new(waker);
        let unread_snapshots = Arc::new(AtomicUsize::new(0));
        let unread = unread_snapshots.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new().name("cnn-stepper trainer".into()).spawn(move || {
            Loop {
                session,
                events: event_tx,
                waker,
                mode: Mode::Paused,
                last_snapshot: None,
                unread,
                pool: None,
                stop: stop_flag,
            }
            .run(command_rx)
        })?;
        Ok(Self { commands, events, unread_snapshots, stop, thread: Some(thread) })
    }

    /// Sends a command; ignored if the thread has ended (its error was already reported).
    /// `Pause` and `Shutdown` also stop the phase running now (see [`Command::Pause`]).
    pub fn send(&self, command: Command) {
        if matches!(command, Command::Pause | Command::Shutdown) {
            self.stop.store(true, Ordering::SeqCst);
        }
        let _ = self.commands.send(command);
    }

    /// The next event, if one is waiting. Never blocks.
    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok().map(|e| self.received(e))
    }

    /// Waits up to `timeout` for the next event (for tests and the headless CLI).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok().map(|e| self.received(e))
    }

    fn received(&self, e: Event) -> Event {
        if matches!(e, Event::Snapshot(_)) {
            self.unread_snapshots.fetch_sub(1, Ordering::Relaxed);
        }
        e
    }

    /// True while the thread runs.
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    session: Session,
    events: Sender<Event>,
    waker: Waker,
    mode: Mode,
    last_snapshot: Option<Instant>,
    unread: Arc<AtomicUsize>,
    /// The engine's own thread pool after [`Command::SetComputeThreads`]; rayon's global pool
    /// (one thread per core) until then.
    pool: Option<rayon::ThreadPool>,
    /// See [`Worker::stop`]: while raised, no phase starts and a naive one gives up.
    stop: Arc<AtomicBool>,
}

impl Loop {
    fn run(mut self, commands: Receiver<Command>) {
        self.snapshot();
        loop {
            let next = if self.mode == Mode::Paused {
                // Idle: block until told something.
                match commands.recv_timeout(Duration::from_secs(3600)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match commands.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            };
            // A panic (a bug in the engine, say) must not take the thread down: it becomes an
            // error message, the session goes back to the last completed step, and the thread
            // keeps serving commands so the user can still save or reset.
            if matches!(next, Some(Command::Pause)) {
                // Read: the phase it stopped is the next one again; later phases may run.
                self.stop.store(false, Ordering::SeqCst);
            }
            match next {
                Some(Command::Shutdown) => return,
                Some(Command::SetComputeThreads(n)) => self.set_threads(n),
                Some(c) => {
                    let what = format!("command {}", command_name(&c));
                    self.guarded(what, |l| l.apply(c));
                }
                None if self.mode != Mode::Paused => {
                    let what = self.activity();
                    self.guarded(what, Self::run_one_phase);
                }
                None => {}
            }
        }
    }

    /// What the next phase is, for error messages.
    fn activity(&self) -> String {
        self.session.network().next_phase().map_or_else(
            || format!("phase {} (new batch)", self.session.model().phase_label(Phase::Forward(0))),
            |p| format!("phase {}", self.session.model().phase_label(p)),
        )
    }

    fn set_threads(&mut self, n: usize) {
        self.pool = match n {
            0 => None,
            n => match rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("cnn-stepper engine {i}"))
                .build()
            {
                Ok(pool) => Some(pool),
                Err(e) => {
                    self.send(Event::Error(format!("Could not start {n} engine threads ({e}); using one per core.")));
                    None
                }
            },
        };
    }

    /// Runs `f` in the engine's thread pool, turning a panic into an error event and a restored
    /// session.
    fn guarded(&mut self, what: String, f: impl FnOnce(&mut Self) + Send) {
        let pool = self.pool.take();
        let result = catch_unwind(AssertUnwindSafe(|| match &pool {
            Some(p) => p.install(|| f(self)),
            None => f(self),
        }));
        self.pool = pool;
        let Err(payload) = result else { return };
        let what =
            self.session.phase_in_progress().map_or(what, |p| format!("phase {}", self.session.model().phase_label(p)));
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        // Recovery itself must not kill the thread either.
        let restored = catch_unwind(AssertUnwindSafe(|| self.session.recover()))
            .unwrap_or_else(|_| "restoring the session failed too; press Reset".into());
        self.fail(format!("internal error in {what}: {message}; {restored}"));
    }

    fn send(&self, e: Event) {
        if self.events.send(e).is_ok() {
            (self.waker)();
        }
    }

    fn snapshot(&mut self) {
        let mut s = self.session.snapshot();
        s.running = self.mode != Mode::Paused;
        self.unread.fetch_add(1, Ordering::Relaxed);
        self.send(Event::Snapshot(Box::new(s)));
        self.last_snapshot = Some(Instant::now());
    }

    fn fail(&mut self, message: String) {
        self.mode = Mode::Paused;
        self.send(Event::Error(message));
        self.snapshot();
    }

    /// [`Loop::fail`] with the error's text: where a [`TrainError`] becomes words for the window.
    fn fail_with(&mut self, e: &TrainError) {
        self.fail(message(e));
    }

    fn run_one_phase(&mut self) {
        if self.stop.load(Ordering::SeqCst) {
            // A Pause is on its way: run nothing more until it is read.
            std::thread::yield_now();
            return;
        }
        match self.step_with_progress(false) {
            Err(e) => self.fail_with(&e),
            Ok(()) => {
                let done = match self.mode {
                    Mode::UntilEpoch(e) => self.session.epoch() > e,
                    Mode::UntilStep(n) => self.session.step() >= n,
                    Mode::Paused | Mode::Running => false,
                };
                if done && !self.session.mid_step() {
                    self.mode = Mode::Paused;
                    self.snapshot();
                } else if self.last_snapshot.is_none_or(|t| t.elapsed() >= SNAPSHOT_INTERVAL)
                    && self.unread.load(Ordering::Relaxed) < MAX_UNREAD_SNAPSHOTS
                    // Whole steps while running, so the views never mix two batches; a slow
                    // (naive) step still shows its phases once a second.
                    && (!self.session.mid_step()
                        || self.last_snapshot.is_none_or(|t| t.elapsed() >= SLOW_STEP_SNAPSHOT_INTERVAL))
                {
                    self.snapshot();
                }
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::StepPhase => {
                self.mode = Mode::Paused;
                match self.step_with_progress(false) {
                    Ok(()) => self.snapshot(),
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::StepBatch => {
                self.mode = Mode::Paused;
                match self.step_with_progress(true) {
                    Ok(()) => self.snapshot(),
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::StepBack => {
                self.mode = Mode::Paused;
                let result = {
                    let mut progress = reporter(&self.events, &self.waker, "stepping back".into());
                    self.session.step_back(&mut progress)
                };
                match result {
                    Ok(_) => self.snapshot(),
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::Run => {
                self.mode = Mode::Running;
                self.snapshot();
            }
            Command::RunEpoch => {
                self.mode = Mode::UntilEpoch(self.session.epoch());
                self.snapshot();
            }
            Command::RunTo { step } => {
                let reached = self.session.step() >= step && !self.session.mid_step();
                self.mode = if reached { Mode::Paused } else { Mode::UntilStep(step) };
                self.snapshot();
            }
            Command::Pause => {
                self.mode = Mode::Paused;
                self.snapshot();
            }
            Command::Reset { seed, preset, model } => {
                self.mode = Mode::Paused;
                match self.session.reset(seed, preset, &model) {
                    Ok(()) => self.snapshot(),
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::SetData { data, seed, preset, model } => {
                self.mode = Mode::Paused;
                let mine = self.session.pending_settings().unwrap_or(self.session.settings());
                match Session::new(data, seed, preset, &model, mine.engine) {
                    Ok(mut fresh) => {
                        let source = fresh.data().source.clone();
                        let notes = fresh.data().notes.join("; ");
                        fresh.notify(if notes.is_empty() {
                            format!("{NEW_DATA_NOTICE}{source}")
                        } else {
                            format!("{NEW_DATA_NOTICE}{source} ({notes})")
                        });
                        // As a reset keeps them: the user's tuned settings survive, unless they
                        // cannot train here (a batch larger than a small training set).
                        if self.session.preset() == preset
                            && mine != fresh.settings()
                            && let Err(e) = fresh.set_settings(mine)
                        {
                            fresh.notify(format!("the preset's settings are used on this data: {e}"));
                        }
                        self.session = fresh;
                        self.snapshot();
                    }
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::SetSettings(s) => match self.session.set_settings(s) {
                Ok(()) => self.snapshot(),
                Err(e) => {
                    self.send(Event::Error(message(&e)));
                    self.snapshot();
                }
            },
            Command::SelectSample(i) => {
                self.session.select(i);
                self.snapshot();
            }
            Command::Evaluate { count } => {
                let result = {
                    let mut progress = reporter(&self.events, &self.waker, "evaluating".into());
                    self.session.evaluate(count, &mut progress)
                };
                match result {
                    Ok(r) => self.send(Event::Evaluated(r)),
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::Save(path) => {
                self.mode = Mode::Paused;
                // A file holds whole steps: finish the half-done one, as Step batch would.
                if self.session.mid_step()
                    && let Err(e) = self.finish_step()
                {
                    self.fail(format!("{}: not saved: finishing the current step failed: {e}", path.display()));
                    return;
                }
                match self.session.save_checkpoint(&path) {
                    Ok(()) => {
                        let step = self.session.step();
                        self.session.notify(format!("saved the session at step {step} to {}", path.display()));
                        self.snapshot();
                    }
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::Open(path) => {
                self.mode = Mode::Paused;
                let engine = self.session.settings().engine;
                match Session::open_checkpoint(
                    self.session.data().clone(),
                    &path,
                    engine,
                    Some(&self.session.model().argument()),
                ) {
                    Ok(s) => {
                        self.session = s;
                        let step = self.session.step();
                        self.session.notify(format!("opened {} at step {step}", path.display()));
                        self.snapshot();
                    }
                    Err(e) => self.fail_with(&e),
                }
            }
            Command::Export(what) => match self.session.export(&what) {
                Ok(message) => {
                    self.session.notify(message);
                    self.snapshot();
                }
                Err(e) => self.fail_with(&e),
            },
            // Read-only requests: they answer with their own event, leave the mode alone (a run
            // goes on after them) and a failure is only reported, never pauses training.
            Command::Probe(input) => {
                let r = self.session.probe(&input).map(|p| Event::Probed(Box::new(p)));
                self.answer(r);
            }
            Command::ClassEvidence(of) => {
                let r = self.session.class_evidence(&of).map(|e| Event::ClassEvidence(Box::new(e)));
                self.answer(r);
            }
            Command::Fc1Unit(unit) => {
                let r = self.session.fc1_unit(unit).map(|u| Event::Fc1Unit(Box::new(u)));
                self.answer(r);
            }
            Command::CheckGradients => {
                let r = {
                    let mut progress = reporter(&self.events, &self.waker, "checking gradients".into());
                    self.session.check_gradients(&mut progress)
                };
                self.answer(r.map(|g| Event::GradientCheck(Box::new(g))));
            }
            Command::Loops { layer, part } => {
                let r = self.session.loop_case(layer, part).map(|c| Event::Loops(Box::new(c)));
                self.answer(r);
            }
            Command::InjectPanic => self.session.inject_panic(),
            // Both handled by the loop before a command gets here.
            Command::SetComputeThreads(_) | Command::Shutdown => {}
        }
    }

    /// Sends the answer to a read-only request, or its error (without pausing).
    fn answer(&self, result: Result<Event, TrainError>) {
        self.send(result.unwrap_or_else(|e| Event::Error(message(&e))));
    }

    /// Runs the next phase (or, with `whole_batch`, the rest of the step), unless a Pause
    /// stops it: then the phase running is abandoned, to run again whole later.
    fn step_with_progress(&mut self, whole_batch: bool) -> Result<(), TrainError> {
        let stop = self.stop.clone();
        let stopped = move || stop.load(Ordering::SeqCst);
        loop {
            // Labelled per phase, so progress reads "backward conv2 37/128".
            let what =
                self.session.model().phase_label(self.session.network().next_phase().unwrap_or(Phase::Forward(0)));
            let mut progress = reporter(&self.events, &self.waker, what);
            match self.session.step_phase_unless(&mut progress, &stopped)? {
                Some(phase) if whole_batch && phase != Phase::Update => {}
                _ => return Ok(()),
            }
        }
    }

    /// [`Loop::step_with_progress`] that a Pause cannot stop (a save finishes the step).
    fn finish_step(&mut self) -> Result<(), TrainError> {
        while self.session.mid_step() {
            let what =
                self.session.model().phase_label(self.session.network().next_phase().unwrap_or(Phase::Forward(0)));
            let mut progress = reporter(&self.events, &self.waker, what);
            self.session.step_phase(&mut progress)?;
        }
        Ok(())
    }
}

/// The text of an [`Event::Error`]: the error, and for a divergence what to do in the window.
fn message(e: &TrainError) -> String {
    if e.is_divergence() {
        format!("{e}. Training is paused: lower the learning rate (or momentum) and continue.")
    } else {
        e.to_string()
    }
}

/// The command's name for messages, without its (possibly large) arguments.
fn command_name(c: &Command) -> &'static str {
    match c {
        Command::StepPhase => "StepPhase",
        Command::StepBatch => "StepBatch",
        Command::StepBack => "StepBack",
        Command::Run => "Run",
        Command::Pause => "Pause",
        Command::RunEpoch => "RunEpoch",
        Command::RunTo { .. } => "RunTo",
        Command::Reset { .. } => "Reset",
        Command::SetData { .. } => "SetData",
        Command::SetSettings(_) => "SetSettings",
        Command::SelectSample(_) => "SelectSample",
        Command::Evaluate { .. } => "Evaluate",
        Command::Save(_) => "Save",
        Command::Open(_) => "Open",
        Command::Export(_) => "Export",
        Command::Probe(_) => "Probe",
        Command::ClassEvidence(_) => "ClassEvidence",
        Command::Fc1Unit(_) => "Fc1Unit",
        Command::CheckGradients => "CheckGradients",
        Command::Loops { .. } => "Loops",
        Command::InjectPanic => "InjectPanic",
        Command::SetComputeThreads(_) => "SetComputeThreads",
        Command::Shutdown => "Shutdown",
    }
}

/// Sends throttled progress events for `what`, always including the last one.
fn reporter<'a>(events: &'a Sender<Event>, waker: &'a Waker, what: String) -> impl FnMut(usize, usize) + 'a {
    let mut last = Instant::now();
    move |done, total| {
        if last.elapsed() >= PROGRESS_INTERVAL || done == total {
            last = Instant::now();
            if events.send(Event::Progress { what: what.clone(), done, total }).is_ok() {
                waker();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::data::{ClassNames, Dataset, Splits};
    use crate::engine::{ConvEngine, Preset};
    use crate::trainer::Snapshot;

    /// `n` blank images of `channels × side × side` in `classes` classes.
    fn splits(n: usize, channels: usize, side: usize, classes: usize, source: &str) -> Arc<Splits> {
        let names: Vec<String> = (0..classes).map(|k| format!("class {k}")).collect();
        let split = || {
            let labels = (0..n).map(|i| (i % classes) as u8).collect();
            Dataset::with_channels(vec![0; n * channels * side * side], labels, channels, side, side, names.clone())
                .unwrap()
        };
        Arc::new(Splits::new(split(), split(), source.into(), vec!["a note".into()]).unwrap())
    }

    /// Reads events until `done` accepts a snapshot (or fails after a while).
    fn snapshot_where(worker: &Worker, done: impl Fn(&Snapshot) -> bool) -> (Box<Snapshot>, Vec<String>) {
        let mut errors = Vec::new();
        for _ in 0..3000 {
            match worker.recv_timeout(Duration::from_millis(10)) {
                Some(Event::Snapshot(s)) if done(&s) => return (s, errors),
                Some(Event::Error(e)) => errors.push(e),
                _ => {}
            }
        }
        panic!("no such snapshot; errors: {errors:?}");
    }

    #[test]
    fn set_data_starts_a_fresh_run_on_the_new_data_and_says_so() {
        let digits = Arc::new(
            Splits::new(
                Dataset::new(vec![0; 8 * 28 * 28], (0..8).collect(), 28, 28, ClassNames::Digits.names()).unwrap(),
                Dataset::new(vec![0; 8 * 28 * 28], (0..8).collect(), 28, 28, ClassNames::Digits.names()).unwrap(),
                "digits".into(),
                Vec::new(),
            )
            .unwrap(),
        );
        let mut session = Session::new(digits, 1, Preset::Recommended, "tiny", ConvEngine::Fast).unwrap();
        let mut settings = session.settings();
        settings.batch_size = 4;
        session.set_settings(settings).unwrap();
        let worker = Worker::spawn(session, || {}).unwrap();
        worker.send(Command::StepBatch);
        snapshot_where(&worker, |s| s.step == 1);

        let colour = splits(6, 3, 12, 3, "colour shapes");
        worker.send(Command::SetData { data: colour, seed: 5, preset: Preset::Recommended, model: "tiny".into() });
        let (s, errors) = snapshot_where(&worker, |s| s.data_source == "colour shapes");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((s.step, s.seed, s.curves_reset), (0, 5, true), "a fresh run");
        assert_eq!(s.class_names, ["class 0", "class 1", "class 2"]);
        assert_eq!(
            s.model.plan.input,
            crate::engine::model::Shape::Maps { c: 3, h: 12, w: 12 },
            "planned on the new input"
        );
        assert_eq!(s.notices, [format!("{NEW_DATA_NOTICE}colour shapes (a note)")]);
        assert_eq!(s.settings.batch_size, 4, "the user's batch size goes on");
        worker.send(Command::StepBatch);
        snapshot_where(&worker, |s| s.step == 1 && s.data_source == "colour shapes");

        // A batch larger than the next training set: the preset's settings, and a notice why.
        worker.send(Command::SetData {
            data: splits(3, 1, 8, 2, "three"),
            seed: 5,
            preset: Preset::Recommended,
            model: "post".into(),
        });
        let (s, _) = snapshot_where(&worker, |s| s.data_source == "three");
        assert!(s.notices.iter().any(|n| n.contains("larger than the training set")), "{:?}", s.notices);
    }

    #[test]
    fn run_to_pauses_once_the_step_is_complete_and_pause_still_stops_it() {
        let data = splits(8, 1, 28, 10, "first");
        let mut session = Session::new(data, 1, Preset::Recommended, "tiny", ConvEngine::Fast).unwrap();
        let mut settings = session.settings();
        settings.batch_size = 2;
        session.set_settings(settings).unwrap();
        let worker = Worker::spawn(session, || {}).unwrap();
        worker.send(Command::StepPhase); // mid-step: the step is finished first
        snapshot_where(&worker, |s| s.phases_done == 1);
        worker.send(Command::RunTo { step: 3 });
        let (s, errors) = snapshot_where(&worker, |s| !s.running && s.step > 0);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((s.step, s.phases_done), (3, s.phases.len()), "paused right after step 3's update");
        // Already there: it answers paused, without a step.
        worker.send(Command::RunTo { step: 2 });
        let (s, _) = snapshot_where(&worker, |_| true);
        assert_eq!((s.step, s.running), (3, false));
        // A far step: Pause stops it on the way.
        worker.send(Command::RunTo { step: 1_000_000 });
        snapshot_where(&worker, |s| s.running);
        worker.send(Command::Pause);
        let (s, _) = snapshot_where(&worker, |s| !s.running);
        assert!(s.step < 1_000_000);
    }

    #[test]
    fn set_data_with_a_network_that_does_not_fit_keeps_the_run_and_its_data() {
        let data = splits(8, 1, 28, 10, "first");
        let worker =
            Worker::spawn(Session::new(data, 1, Preset::Recommended, "tiny", ConvEngine::Fast).unwrap(), || {})
                .unwrap();
        worker.send(Command::StepBatch);
        snapshot_where(&worker, |s| s.step == 1);
        // LeNet-5's second conv has no room on 8×8 images.
        worker.send(Command::SetData {
            data: splits(4, 3, 8, 3, "small"),
            seed: 2,
            preset: Preset::Recommended,
            model: "lenet5".into(),
        });
        let (s, errors) = snapshot_where(&worker, |s| !s.running);
        assert!(errors.iter().any(|e| e.contains("lenet5")), "{errors:?}");
        assert_eq!((s.step, s.data_source.as_str()), (1, "first"), "the run goes on where it was");
    }
}
