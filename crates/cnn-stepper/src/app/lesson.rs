//! What the window does for a lesson beyond drawing: with "Follow phase", the update phase
//! brings the filters' ΔW to the front (the forward maps would not change at all), and goes
//! back to the maps when the next phase runs; a Pause sent shows "Pausing…" until the worker
//! confirms; a new run forgets the diverged points marked on the curves.

use super::CnnApp;
use crate::engine::Phase;
use crate::trainer::{Command, Snapshot};
use crate::ui::tabs::{feature_maps, filters};
use crate::ui::{FilterMode, MapMode};

/// What [`CnnApp::follow_update`] remembers between snapshots.
#[derive(Debug, Default)]
pub(super) struct LessonState {
    /// The (step, phases done) last followed: a phase is followed once, so the user may
    /// change tabs afterwards.
    followed: Option<(u64, usize)>,
    /// The filter mode before the update phase switched to the filters' ΔW.
    switched_from: Option<FilterMode>,
}

impl CnnApp {
    /// The user's view choices (tab, modes, colours).
    pub fn view(&self) -> &crate::ui::ViewState {
        &self.view
    }

    /// With "Follow phase" on the feature maps, shows the update when one Step phase ran the
    /// update phase (not after a Step batch or a run, which are about the batch's results),
    /// and the maps again once another phase ran (a step on, or a step back).
    pub(super) fn follow_update(&mut self, s: &Snapshot) {
        if s.running {
            return;
        }
        let key = (s.step, s.phases_done);
        if self.lesson.followed.replace(key) == Some(key) || self.view.map_mode != MapMode::Auto {
            return;
        }
        let one_phase_on = self
            .results
            .snapshot
            .as_deref()
            .is_some_and(|old| old.step + 1 == s.step && old.phases_done + 1 == s.phases_done);
        if s.last_phase() == Some(Phase::Update) {
            if !one_phase_on {
                return;
            }
            if self.view.tab == feature_maps::ID {
                self.lesson.switched_from = Some(self.view.filter_mode);
                self.view.tab = filters::ID;
                self.view.filter_mode = FilterMode::Delta;
            }
        } else if let Some(mode) = self.lesson.switched_from.take()
            && self.view.tab == filters::ID
        {
            self.view.tab = feature_maps::ID;
            self.view.filter_mode = mode;
        }
    }

    /// Notes what a command sent means for the lesson's displays.
    pub(super) fn lesson_sent(&mut self, command: &Command) {
        match command {
            Command::Pause => self.link.pausing = true,
            Command::Reset { .. } | Command::Open(_) => self.results.curves.divergences.clear(),
            _ => {}
        }
    }
}
