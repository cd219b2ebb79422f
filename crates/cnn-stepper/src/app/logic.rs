//! The work of a frame that draws nothing: the worker's events taken in (snapshots, curves,
//! teaching answers, errors), the renderer and frame timing, the keyboard shortcuts, the zoom,
//! and what the digit views show.

use std::time::Duration;

use eframe::egui::{self, Modifiers};

use super::in_flight::{Awaited, Request};
use super::{CnnApp, ZoomMode};
use crate::engine::Phase;
use crate::trainer::{Command, Event, Probed, SampleView, Snapshot};
use crate::ui::panels::banner::Severity;
use crate::ui::panels::controls::{Availability, reset_command};
use crate::ui::panels::menu::FileAction;
use crate::ui::panels::status::Progress;
use crate::ui::support::textures::Coloring;
use crate::ui::support::widgets::set_projector;
use crate::ui::windows::keys::{self, KeyAction};

impl CnnApp {
    /// `eframe::App::logic`: notes the renderer, times the frame, takes in the worker's events
    /// and the PNG results, and keeps frames coming while training runs.
    pub(super) fn frame_logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        if self.software_renderer.is_none()
            && let Some(rs) = frame.wgpu_render_state()
        {
            let info = rs.adapter.get_info();
            let cpu = info.device_type == eframe::wgpu::DeviceType::Cpu;
            if self.frame_log.is_some() {
                eprintln!("renderer: {} ({:?}, {:?})", info.name, info.backend, info.device_type);
            }
            if cpu && let Some(w) = &self.link.worker {
                // The renderer needs a core of its own: with the engine on both, each frame
                // preempts one of its threads and the other waits for it (measured under
                // Xvfb: 505 images/s and 18.8 fps with two engine threads, 874 and 20.2 with one).
                w.send(Command::SetComputeThreads(1));
            }
            self.software_renderer = Some(cpu.then_some(info.name));
        }
        if let Some(log) = &mut self.frame_log {
            let snap = self.results.snapshot.as_deref();
            log.frame(frame.info().cpu_usage, snap.is_some_and(|s| s.running), snap.map_or(0, |s| s.step));
            if log.continuous {
                ctx.request_repaint();
            }
        }
        self.poll();
        self.poll_loading();
        self.poll_classifying();
        self.drive_lesson();
        for result in self.files.shots.poll() {
            match result {
                Ok(m) => self.push_banner(Severity::Info, m),
                Err(e) => self.push_banner(Severity::Error, e),
            }
        }
        if self.results.snapshot.as_deref().is_some_and(|s| s.running) {
            // The worker's snapshots wake us ~30 times a second; this keeps the frame rate up
            // if one is late (e.g. a slow naive phase), without spinning when paused.
            ctx.request_repaint_after(Duration::from_millis(33));
        }
    }

    /// Drains the worker's events without blocking: keeps the newest snapshot, accumulates curve
    /// points from all of them, and turns errors into banners.
    pub fn poll(&mut self) {
        let Some(worker) = &self.link.worker else { return };
        let mut events = Vec::new();
        while let Some(e) = worker.try_recv() {
            events.push(e);
        }
        let alive = worker.is_alive();
        self.take_events(events);
        if !alive && self.link.no_worker.is_none() {
            self.link.no_worker = Some("The training thread has stopped".into());
            self.push_banner(Severity::Error, "The training thread stopped unexpectedly. Restart the program.");
        }
    }

    /// Takes in `events`, in the order the worker sent them; only the newest snapshot is shown.
    fn take_events(&mut self, events: impl IntoIterator<Item = Event>) {
        let mut newest = None;
        for event in events {
            if let Some(s) = self.take_event(event) {
                newest = Some(s);
            }
        }
        if let Some(s) = newest {
            self.show_snapshot(s);
        }
        if self.data_switch.arrived {
            self.data_arrived();
        }
    }

    /// Takes in one event; returns its snapshot, if it is one, for [`Self::show_snapshot`].
    fn take_event(&mut self, event: Event) -> Option<Box<Snapshot>> {
        let results = &mut self.results;
        match event {
            Event::Snapshot(s) => {
                self.link.in_flight.snapshot();
                self.link.progress = None;
                if !s.running {
                    self.link.pausing = false;
                }
                if s.curves_reset {
                    // A new run, an opened file or a rewind: the points that follow are the
                    // whole history. Diverged points stay marked (a new run dropped them).
                    let marks = std::mem::take(&mut results.curves.divergences);
                    results.curves.clear();
                    results.curves.divergences = marks;
                }
                // The same blow-up retried (same step, same loss, NaN too) is marked once.
                if let Some(d) = s.diverged
                    && !results
                        .curves
                        .divergences
                        .iter()
                        .any(|m| m.step == d.step && m.loss.to_bits() == d.loss.to_bits())
                {
                    results.curves.divergences.push(d);
                }
                for p in &s.new_loss_points {
                    results.curves.add_loss(p);
                }
                for p in &s.new_accuracy_points {
                    results.curves.add_accuracy(p);
                }
                results.magnitudes.absorb(&s);
                for n in &s.notices {
                    if n.starts_with("saved the session") || n.starts_with("opened ") {
                        self.windows.saved_step = Some(s.step);
                    }
                    if Self::notice_means_new_data(n) {
                        self.data_switch.arrived = true;
                    }
                    self.push_banner(Severity::Info, n.clone());
                }
                return Some(s);
            }
            Event::Progress { what, done, total } => self.link.progress = Some(Progress { what, done, total }),
            Event::Evaluated(r) => {
                self.link.in_flight.answered(Awaited::Evaluation);
                self.link.progress = None;
                results.teaching.evaluation = Some(r.clone());
                results.curves.add_evaluation(r);
                results.teaching.revision += 1;
            }
            Event::Probed(p) => {
                self.link.in_flight.answered(Awaited::Reply(Request::Probe));
                self.probe.in_flight = false;
                self.probe.answers += 1;
                results.teaching.probe = Some(p);
                results.teaching.revision += 1;
            }
            Event::ClassEvidence(e) => {
                self.link.in_flight.answered(Awaited::Reply(Request::ClassEvidence));
                results.teaching.class_evidence = Some(e);
                results.teaching.revision += 1;
            }
            Event::Fc1Unit(u) => {
                self.link.in_flight.answered(Awaited::Reply(Request::Fc1Unit));
                results.teaching.fc1_unit = Some(u);
                results.teaching.revision += 1;
            }
            Event::Loops(c) => {
                self.link.in_flight.answered(Awaited::Reply(Request::Loops));
                results.teaching.loops = Some(c);
                results.teaching.revision += 1;
            }
            Event::GradientCheck(g) => {
                self.link.in_flight.answered(Awaited::Reply(Request::CheckGradients));
                self.link.progress = None;
                results.teaching.gradient_check = Some(g);
                results.teaching.revision += 1;
            }
            Event::Error(e) => {
                // An error pauses training (a snapshot says so next).
                self.link.pausing = false;
                // Only the evaluation's own failure ends it (see `InFlight`).
                self.link.in_flight.error();
                // It may be the answer to a teaching view's request (e.g. a drawing the worker
                // refused): they may all ask again, which costs a repeated request at worst.
                self.probe.in_flight = false;
                for tab in &mut self.tabs {
                    tab.request_failed();
                }
                self.lesson_error(&e);
                self.push_banner(Severity::Error, e);
            }
        }
        None
    }

    fn show_snapshot(&mut self, mut s: Box<Snapshot>) {
        let other_network = self.results.snapshot.as_deref().is_some_and(|old| !same_network(old, &s));
        if other_network {
            self.forget_network();
        } else if s.running
            && let Some(old) = &self.results.snapshot
        {
            hold_coherent_views(old, &mut s);
        }
        self.follow_update(&s);
        self.results.snapshot = Some(s);
        self.results.generation += 1;
    }

    /// Drops what was about the previous network when a run of another one starts (a reset
    /// with another network, or a file of another network opened): the teaching answers, whose
    /// tensors have that network's shapes, and the inspected pixel, whose layer index means
    /// another layer now. A drawing or test image shown is sent again, to the new network.
    fn forget_network(&mut self) {
        self.forget_answers();
        if self.probe.showing {
            self.probe.pending = self.probe.pending.take().or_else(|| self.probe.source.clone());
        }
    }

    /// Drops the teaching answers and the inspected pixel (another network, or other data).
    pub(super) fn forget_answers(&mut self) {
        let t = &mut self.results.teaching;
        t.class_evidence = None;
        t.fc1_unit = None;
        t.loops = None;
        t.gradient_check = None;
        t.evaluation = None;
        t.probe = None;
        t.revision += 1;
        self.windows.inspector.pixel = None;
    }

    /// What the buttons can do now, and why not.
    pub(super) fn availability(&self) -> Availability {
        let busy = if self.link.in_flight.busy() {
            Some(match &self.link.progress {
                Some(p) => format!("Busy: {} {}/{}", p.what, p.done, p.total),
                None => "Busy with the last command".to_string(),
            })
        } else {
            None
        };
        Availability { no_worker: self.link.no_worker.clone(), busy, pausing: self.link.pausing }
    }

    /// The keys of [`SHORTCUTS`] and each tab's key; only Ctrl+S, Ctrl+O and F1 while the user
    /// is typing in a field.
    pub(super) fn shortcuts(&mut self, ctx: &egui::Context) -> Vec<Command> {
        if self.files.dialog.is_some() || self.data_window_open() {
            return Vec::new();
        }
        let typing = ctx.text_edit_focused();
        let pressed = keys::pressed(ctx, typing, self.windows.show_keys);
        if !typing {
            for tab in &self.tabs {
                if let Some(key) = tab.key()
                    && ctx.input_mut(|i| i.consume_key(Modifiers::NONE, key))
                {
                    self.view.tab = tab.id();
                }
            }
        }
        if pressed.contains(&KeyAction::Save) {
            self.ask_file(FileAction::SaveSession);
        } else if pressed.contains(&KeyAction::Open) {
            self.ask_file(FileAction::OpenSession);
        }
        let snap = self.results.snapshot.as_deref();
        let avail = self.availability();
        let mut out = Vec::new();
        for action in pressed {
            match action {
                KeyAction::Save | KeyAction::Open => {}
                KeyAction::KeysHelp => self.windows.show_keys = !self.windows.show_keys,
                KeyAction::Network => self.windows.show_network = !self.windows.show_network,
                KeyAction::RunPause if avail.can_control(snap).is_ok() => {
                    out.push(if snap.is_some_and(|s| s.running) { Command::Pause } else { Command::Run });
                }
                KeyAction::StepBatch if avail.can_step(snap).is_ok() => out.push(Command::StepBatch),
                // Shift+→ also matches plain →: one step, not two.
                KeyAction::StepPhase if avail.can_step(snap).is_ok() && !out.contains(&Command::StepBatch) => {
                    out.push(Command::StepPhase)
                }
                KeyAction::Reset if avail.can_control(snap).is_ok() => {
                    if let Some(s) = snap {
                        match reset_command(&self.controls, s, s.preset) {
                            Ok(c) => out.push(c),
                            Err(e) => self.controls.message = Some(e),
                        }
                    }
                }
                KeyAction::StepBack if avail.can_step_back(snap).is_ok() => out.push(Command::StepBack),
                KeyAction::RunPause
                | KeyAction::StepBatch
                | KeyAction::StepPhase
                | KeyAction::StepBack
                | KeyAction::Reset => {}
            }
        }
        out
    }

    /// The size in points the layout is designed for: the zoom makes the window that large, as
    /// far as both its width and its height allow (a 16:9 projector is shorter than a 16:10
    /// laptop). Projector mode designs for a smaller window, so everything is drawn larger.
    fn design_size(&self) -> egui::Vec2 {
        if self.zoom.projector { egui::vec2(1150.0, 720.0) } else { egui::vec2(1360.0, 850.0) }
    }

    /// Follows the window's size with the zoom, unless the user chose one; tells the views
    /// whether projector mode is on ([`set_projector`]).
    pub(super) fn auto_zoom(&mut self, ctx: &egui::Context) {
        set_projector(ctx, self.zoom.projector);
        let ZoomMode::Auto(ours) = self.zoom.mode else { return };
        let zoom = ctx.zoom_factor();
        if (zoom - ours).abs() > 1e-3 {
            // Someone else changed it: Ctrl +/- (handled by eframe). Leave it to the user.
            self.zoom.mode = ZoomMode::Manual;
            return;
        }
        let size = ctx.content_rect().size() * zoom;
        let design = self.design_size();
        let wanted = (size.x / design.x).min(size.y / design.y).clamp(1.0, 2.0);
        if (wanted - zoom).abs() > 0.03 {
            ctx.set_zoom_factor(wanted);
            self.zoom.mode = ZoomMode::Auto(wanted);
        }
    }

    /// Gets the views ready to be drawn: the tab a picture waits for in front, the probe sent
    /// again after a step, and the textures of what the digit views show.
    pub(super) fn prepare_views(&mut self, ctx: &egui::Context) {
        if let Some(tab) = self.files.shots.waiting_for().and_then(|t| t.tab()) {
            self.view.tab = tab;
        }
        self.send_probe();
        self.refresh_display(ctx);
        if let Some(s) = self.display.probed.as_deref().or(self.results.snapshot.as_deref()) {
            self.display.scene.refresh(ctx, s, self.display.generation, &self.view);
        }
    }

    /// Rebuilds what the digit views show when the snapshot, a probe or the choice changed.
    fn refresh_display(&mut self, ctx: &egui::Context) {
        let key = (self.results.generation, self.probe.answers, self.probe.showing);
        if self.display.key == Some(key) {
            return;
        }
        self.display.key = Some(key);
        self.display.generation += 1;
        let snap = self.results.snapshot.as_deref();
        let shown = self.results.teaching.probe.as_deref().filter(|_| self.probe.showing);
        self.display.probed = match (snap, shown) {
            (Some(snap), Some(p)) => Some(Box::new(with_probe(snap, p))),
            _ => None,
        };
        if let (Some(p), Some(snap)) = (shown, snap) {
            // In colour when the data is, as the batch's thumbnails.
            let (c, h, w) = snap.batch.image_shape();
            self.display.probe_thumb.set(ctx, &p.sample.input, 1, h, w, Coloring::picture(c));
        }
    }
}

/// True when both snapshots are of the same network (the same plan: a reset to the same
/// network keeps the answers, which are marked as older than the weights anyway).
fn same_network(a: &Snapshot, b: &Snapshot) -> bool {
    std::sync::Arc::ptr_eq(&a.model, &b.model) || a.model.plan == b.model.plan
}

/// `snap` with the probed image's tensors in place of the selected digit's: the forward pass is
/// complete (so the views show activations), there are no gradients, and the weights are the
/// current ones (a probe runs on the weights in force, not on those of a half-done step).
fn with_probe(snap: &Snapshot, probe: &Probed) -> Snapshot {
    let mut shown = snap.clone();
    shown.sample = probe.sample.clone();
    shown.sample.index = 0;
    for f in &mut shown.filters.convs {
        f.before_update = None;
    }
    if let Some(i) = snap.phases.iter().position(|p| *p == Phase::Loss) {
        shown.phases_done = i + 1;
    }
    shown
}

/// While running, a snapshot may land after any phase, so many of its tensors are often not
/// computed yet in its step, and the batch it shows may have no predictions yet. Rather than
/// blank views flickering 30 times a second, or a mix of two batches (one digit's image with
/// another's probabilities), the batch and digit views keep the last snapshot whose batch had
/// been through the loss; within one step, tensors not recomputed yet are taken from earlier
/// snapshots of the same step.
fn hold_coherent_views(old: &Snapshot, new: &mut Snapshot) {
    if new.batch.probs.is_empty() && !old.batch.probs.is_empty() {
        new.batch.clone_from(&old.batch);
        new.sample.clone_from(&old.sample);
        new.loss = old.loss;
    } else if new.batch.indices == old.batch.indices && new.sample.index == old.sample.index {
        fill_gaps(&old.sample, &mut new.sample);
    }
    // The last gradient computed, even of an earlier step, beats an empty filter view.
    for (n, o) in new.filters.convs.iter_mut().zip(&old.filters.convs) {
        if n.grad.is_empty() && n.layer == o.layer {
            n.grad.clone_from(&o.grad);
        }
    }
}

/// Copies the tensors `new` lacks from `old` (the same digit in the same step).
fn fill_gaps(old: &SampleView, new: &mut SampleView) {
    let fill = |n: &mut Vec<Vec<f32>>, o: &Vec<Vec<f32>>| {
        for (n, o) in n.iter_mut().zip(o) {
            if n.is_empty() {
                n.clone_from(o);
            }
        }
    };
    fill(&mut new.outputs, &old.outputs);
    fill(&mut new.grads, &old.grads);
    for (n, o) in new.winners.iter_mut().zip(&old.winners) {
        if n.is_empty() {
            n.clone_from(o);
        }
    }
    if new.probs.is_empty() {
        new.probs.clone_from(&old.probs);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::data::{ClassNames, Dataset, Splits};
    use crate::engine::{ConvEngine, Preset};
    use crate::trainer::{EvalResult, Session};

    fn data() -> Arc<Splits> {
        let names = ClassNames::Digits.names();
        let split = |n: usize| Dataset::new(vec![0; n * 28 * 28], (0..n as u8).collect(), 28, 28, names.clone());
        Arc::new(Splits { train: split(8).unwrap(), test: split(8).unwrap(), source: "tiny".into(), notes: Vec::new() })
    }

    fn session() -> Session {
        let mut s = Session::new(data(), 1, Preset::Recommended, "post", ConvEngine::Fast).unwrap();
        let mut settings = s.settings();
        settings.batch_size = 4;
        s.set_settings(settings).unwrap();
        s
    }

    fn running(mut snap: Snapshot) -> Snapshot {
        snap.running = true;
        snap
    }

    #[test]
    fn while_running_a_batch_without_predictions_keeps_the_last_one_with_them() {
        let mut s = session();
        s.step_batch(&mut |_, _| {}).unwrap();
        let old = running(s.snapshot());
        s.step_phase(&mut |_, _| {}).unwrap(); // forward conv1 of a new batch
        let mut new = running(s.snapshot());
        assert!(new.batch.probs.is_empty());
        hold_coherent_views(&old, &mut new);
        assert_eq!(new.batch, old.batch, "the digits shown match their predictions");
        assert_eq!(new.sample, old.sample);
        assert_eq!(new.step, 1, "the counters are the new snapshot's");
    }

    #[test]
    fn within_a_step_missing_tensors_come_from_earlier_snapshots() {
        let mut s = session();
        while s.network().next_phase() != Some(Phase::Backward(1)) {
            s.step_phase(&mut |_, _| {}).unwrap(); // up to backward conv2
        }
        let old = running(s.snapshot());
        assert!(!old.sample.grad(1).is_empty(), "∂L/∂relu1 is computed by backward conv2");
        let mut new = old.clone();
        new.sample.grads[1].clear();
        hold_coherent_views(&old, &mut new);
        assert_eq!(new.sample.grad(1), old.sample.grad(1));
    }

    /// The app's own handling of the worker's events, fed by hand: the real worker answers
    /// too, but its events are never taken in here (`poll` is not called).
    #[test]
    fn a_failed_request_sent_before_an_evaluation_leaves_evaluate_disabled_until_the_result() {
        let mut app = CnnApp::new(&egui::Context::default(), data(), 1);
        let snap = session().snapshot();
        app.take_events([Event::Snapshot(Box::new(snap))]);
        let can_evaluate = |app: &CnnApp| app.availability().can_step(app.snapshot()).is_ok();
        assert!(can_evaluate(&app));

        app.send(Command::Fc1Unit(usize::MAX));
        app.send(Command::Evaluate { count: 0 });
        assert!(app.evaluating() && !can_evaluate(&app));
        // The request's failure arrives first: the worker answers in the order it was asked.
        app.take_events([Event::Error("FC1 unit out of range".into())]);
        assert!(app.evaluating(), "the failed request is not the evaluation");
        assert!(!can_evaluate(&app), "Evaluate stays disabled while the evaluation runs");
        assert!(app.banners().iter().any(|b| b.message.contains("out of range")), "the error is still shown");

        let result =
            EvalResult { step: 0, count: 8, correct: 1, classes: 10, confusion: vec![0; 100], misclassified: vec![] };
        app.take_events([Event::Evaluated(result)]);
        assert!(!app.evaluating() && can_evaluate(&app));
    }

    #[test]
    fn a_run_of_another_network_drops_the_answers_and_the_pixel_about_the_old_one() {
        let mut app = CnnApp::new(&egui::Context::default(), data(), 1);
        let mut post = session();
        post.step_batch(&mut |_, _| {}).unwrap();
        app.take_events([Event::Snapshot(Box::new(post.snapshot()))]);
        let evidence = post.class_evidence(&crate::trainer::EvidenceOf::SelectedSample).unwrap();
        let unit = post.fc1_unit(0).unwrap();
        app.take_events([Event::ClassEvidence(Box::new(evidence)), Event::Fc1Unit(Box::new(unit))]);
        app.windows.inspector.pixel = Some(crate::trainer::PixelRef { layer: 2, channel: 0, y: 1, x: 1 });
        // The same network again (a reset, another step): the answers stay, marked by their step.
        post.step_batch(&mut |_, _| {}).unwrap();
        app.take_events([Event::Snapshot(Box::new(post.snapshot()))]);
        assert!(app.teaching().class_evidence.is_some() && app.teaching().fc1_unit.is_some());
        assert!(app.inspected().is_some());

        let lenet = Session::new(data(), 1, Preset::Recommended, "lenet5", ConvEngine::Fast).unwrap().snapshot();
        app.take_events([Event::Snapshot(Box::new(lenet))]);
        let t = app.teaching();
        assert!(t.class_evidence.is_none() && t.fc1_unit.is_none(), "post's answers are not LeNet's");
        assert!(app.inspected().is_none(), "layer 2 of the post is conv2, of LeNet pool1");
        assert_eq!(app.snapshot().map(|s| s.model.label()), Some("lenet5".to_string()));
    }

    #[test]
    fn a_failed_evaluation_ends_it_once_its_snapshot_arrives() {
        let mut app = CnnApp::new(&egui::Context::default(), data(), 1);
        let snap = session().snapshot();
        app.take_events([Event::Snapshot(Box::new(snap.clone()))]);
        app.send(Command::Evaluate { count: 0 });
        app.take_events([Event::Error("evaluation failed".into())]);
        assert!(!app.evaluating());
        app.take_events([Event::Snapshot(Box::new(snap))]);
        assert!(app.availability().can_step(app.snapshot()).is_ok());
    }
}
