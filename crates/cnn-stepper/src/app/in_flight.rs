//! What the worker still owes an answer to, in the order it will answer.
//!
//! The worker serves commands one at a time, in the order sent, and every command is answered
//! while it is served: a command that changes the training state by one snapshot (after an
//! [`Event::Error`](crate::trainer::Event::Error) if it failed), an evaluation by
//! `Evaluated` (or an error, then a snapshot), a read-only request by its own event (or an
//! error alone). So an error belongs to the oldest command not answered yet. Knowing which
//! keeps one failed request (an FC1 unit out of range, say) from ending an evaluation that is
//! still running, which would enable Evaluate again too early.
//!
//! Two kinds of events answer nothing: the snapshots of a run (sent ~30 times a second while
//! running) and the errors of a run (a phase that fails while running). A run snapshot is told
//! apart when a request is first in line (its answer is not a snapshot). A run error cannot be
//! told from the failure of the command first in line, but an evaluation is only sent while
//! paused, so none ends an evaluation early.

use std::collections::VecDeque;

use crate::trainer::Command;

/// A read-only request, answered by an event of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// [`Command::Probe`], answered by `Probed`.
    Probe,
    /// [`Command::ClassEvidence`], answered by `ClassEvidence`.
    ClassEvidence,
    /// [`Command::Fc1Unit`], answered by `Fc1Unit`.
    Fc1Unit,
    /// [`Command::CheckGradients`], answered by `GradientCheck`.
    CheckGradients,
    /// [`Command::Loops`], answered by `Loops`.
    Loops,
}

/// The answer a command sent waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Awaited {
    /// A snapshot: the answer of a command that changes the training state.
    Snapshot,
    /// `Evaluated`, or an error then a snapshot.
    Evaluation,
    /// The request's own event, or an error.
    Reply(Request),
}

impl Awaited {
    /// What `command` waits for; `None` for commands that answer nothing of their own.
    fn of(command: &Command) -> Option<Self> {
        Some(match command {
            Command::StepPhase
            | Command::StepBatch
            | Command::StepBack
            | Command::Run
            | Command::Pause
            | Command::RunEpoch
            | Command::RunTo { .. }
            | Command::Reset { .. }
            | Command::SetData { .. }
            | Command::SetSettings(_)
            | Command::SelectSample(_)
            | Command::Save(_)
            | Command::Open(_)
            | Command::Export(_) => Self::Snapshot,
            Command::Evaluate { .. } => Self::Evaluation,
            Command::Probe(_) => Self::Reply(Request::Probe),
            Command::ClassEvidence(_) => Self::Reply(Request::ClassEvidence),
            Command::Fc1Unit(_) => Self::Reply(Request::Fc1Unit),
            Command::CheckGradients => Self::Reply(Request::CheckGradients),
            Command::Loops { .. } => Self::Reply(Request::Loops),
            Command::InjectPanic | Command::SetComputeThreads(_) | Command::Shutdown => return None,
        })
    }
}

/// The commands sent and not answered yet, oldest first.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    queue: VecDeque<Awaited>,
}

impl InFlight {
    /// Records `command`, just sent.
    pub(crate) fn sent(&mut self, command: &Command) {
        if let Some(a) = Awaited::of(command) {
            self.queue.push_back(a);
        }
    }

    /// A snapshot arrived: the answer of the oldest command if that waits for one; otherwise a
    /// snapshot of a run, which answers nothing.
    pub(crate) fn snapshot(&mut self) {
        if self.queue.front() == Some(&Awaited::Snapshot) {
            self.queue.pop_front();
        }
    }

    /// `Evaluated` or a request's own event arrived (`answer` is [`Awaited::Evaluation`] or
    /// [`Awaited::Reply`]). Whatever was sent before it has been answered too, since the
    /// worker answers in order.
    pub(crate) fn answered(&mut self, answer: Awaited) {
        if let Some(i) = self.queue.iter().position(|a| *a == answer) {
            self.queue.drain(..=i);
        }
    }

    /// An error arrived: returns what it answers, `None` if nothing was waiting (an error of a
    /// run). A failed state command or evaluation still sends its snapshot, which is then
    /// awaited; a failed request is answered.
    pub(crate) fn error(&mut self) -> Option<Awaited> {
        let first = self.queue.front_mut()?;
        let failed = *first;
        match failed {
            Awaited::Snapshot => {}
            Awaited::Evaluation => *first = Awaited::Snapshot,
            Awaited::Reply(_) => {
                self.queue.pop_front();
            }
        }
        Some(failed)
    }

    /// True while an evaluation is sent and neither its result nor its failure has arrived.
    pub(crate) fn evaluating(&self) -> bool {
        self.queue.contains(&Awaited::Evaluation)
    }

    /// True while a command that changes the training state, or an evaluation, is unanswered:
    /// the controls wait for it. Read-only requests do not count; they never stop a run.
    pub(crate) fn busy(&self) -> bool {
        self.queue.iter().any(|a| matches!(a, Awaited::Snapshot | Awaited::Evaluation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(commands: &[Command]) -> InFlight {
        let mut f = InFlight::default();
        for c in commands {
            f.sent(c);
        }
        f
    }

    #[test]
    fn an_error_of_a_request_sent_before_the_evaluation_does_not_end_it() {
        let mut f = sent(&[Command::Fc1Unit(9999), Command::Evaluate { count: 0 }]);
        assert_eq!(f.error(), Some(Awaited::Reply(Request::Fc1Unit)));
        assert!(f.evaluating() && f.busy(), "the evaluation is still running");
        f.answered(Awaited::Evaluation);
        assert!(!f.evaluating() && !f.busy());
    }

    #[test]
    fn a_failed_evaluation_ends_it_and_its_snapshot_is_still_awaited() {
        let mut f = sent(&[Command::Evaluate { count: 0 }]);
        assert_eq!(f.error(), Some(Awaited::Evaluation));
        assert!(!f.evaluating());
        assert!(f.busy(), "the snapshot that follows a failure is still to come");
        f.snapshot();
        assert!(!f.busy());
    }

    #[test]
    fn a_request_sent_after_the_evaluation_fails_after_its_result() {
        let mut f = sent(&[Command::Evaluate { count: 0 }, Command::Probe(crate::trainer::ProbeInput::TestImage(3))]);
        f.answered(Awaited::Evaluation);
        assert_eq!(f.error(), Some(Awaited::Reply(Request::Probe)));
        assert_eq!(f.error(), None, "nothing else was waiting: a run's error");
    }

    #[test]
    fn a_failed_step_keeps_the_controls_waiting_for_its_snapshot() {
        let mut f = sent(&[Command::StepPhase, Command::Evaluate { count: 0 }]);
        assert_eq!(f.error(), Some(Awaited::Snapshot));
        assert!(f.evaluating(), "the step's failure is not the evaluation's");
        f.snapshot();
        assert!(f.evaluating() && f.busy());
    }

    #[test]
    fn a_run_snapshot_does_not_answer_a_command_queued_behind_a_request() {
        let mut f = sent(&[Command::Fc1Unit(1), Command::Pause]);
        f.snapshot(); // sent by the run before the worker got to the request
        assert!(f.busy(), "Pause is not answered yet");
        f.answered(Awaited::Reply(Request::Fc1Unit));
        f.snapshot();
        assert!(!f.busy());
    }

    #[test]
    fn read_only_requests_do_not_make_the_controls_wait() {
        let f = sent(&[Command::Fc1Unit(1), Command::CheckGradients, Command::SetComputeThreads(1)]);
        assert!(!f.busy() && !f.evaluating());
    }

    #[test]
    fn an_answer_also_answers_everything_sent_before_it() {
        let mut f = sent(&[Command::Probe(crate::trainer::ProbeInput::TestImage(0)), Command::Fc1Unit(1)]);
        f.answered(Awaited::Reply(Request::Fc1Unit));
        assert_eq!(f.error(), None);
        f.answered(Awaited::Evaluation); // nothing of the kind waiting: ignored
        assert!(!f.busy());
    }
}
