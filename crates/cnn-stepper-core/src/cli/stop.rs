//! Ctrl-C and SIGTERM: `train` finishes the step in progress, saves, and exits with the
//! signal's code (130 or 143), as Rust and Unix tools do. A second signal ends it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A signal that asks a headless run to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C in the terminal.
    Interrupt,
    /// SIGTERM: `kill`, a service manager, a container stopping.
    Terminate,
}

impl Signal {
    /// The exit status a process ended by this signal reports: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    /// How messages name it: "Ctrl-C" or "SIGTERM".
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
        }
    }

    fn from_code(code: usize) -> Option<Self> {
        match code {
            130 => Some(Signal::Interrupt),
            143 => Some(Signal::Terminate),
            _ => None,
        }
    }
}

/// Set when a stop is asked for; `train` checks it between steps and inside the test-set
/// evaluation. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct StopFlag {
    /// The exit code of the signal that arrived (0: none). Written by the signal handler.
    code: Arc<AtomicUsize>,
    /// True after the first signal: a second one then exits at once.
    armed: Arc<AtomicBool>,
}

impl StopFlag {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for a stop, as the signal would.
    pub fn raise(&self, signal: Signal) {
        self.code.store(usize::from(signal.exit_code()), Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    /// The signal that asked for a stop, if one did.
    pub fn raised(&self) -> Option<Signal> {
        Signal::from_code(self.code.load(Ordering::SeqCst))
    }

    /// Routes SIGINT and SIGTERM to this flag for the rest of the process: the first one raises
    /// it, a second one (either) ends the process at once with its exit code, unsaved, for a
    /// user who does not want to wait for the step to finish.
    pub fn install_handlers(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for (signal, kind) in [(SIGINT, Signal::Interrupt), (SIGTERM, Signal::Terminate)] {
            let code = kind.exit_code();
            // Order matters: the shutdown check must run before the flag that arms it is set.
            signal_hook::flag::register_conditional_shutdown(signal, i32::from(code), self.armed.clone())?;
            signal_hook::flag::register_usize(signal, self.code.clone(), usize::from(code))?;
            signal_hook::flag::register(signal, self.armed.clone())?;
        }
        Ok(())
    }
}
