//! Frame timing for measurements (`CNN_STEPPER_FRAME_LOG`): frame rate, slowest frame, CPU per
//! frame and resident memory, printed to stderr.

use std::time::{Duration, Instant};

/// Frame timing, on when `CNN_STEPPER_FRAME_LOG=1`: prints the frame rate and the slowest frame
/// every 5 seconds to stderr, and a summary at exit. `CNN_STEPPER_FRAME_LOG=continuous` also
/// repaints without pause and counts every frame, paused or not, to measure what drawing alone
/// costs.
pub(super) struct FrameLog {
    /// Repaint without pause (see above).
    pub(super) continuous: bool,
    last: Option<Instant>,
    window_start: Instant,
    window: FrameStats,
    total: FrameStats,
}

#[derive(Clone, Copy, Default)]
struct FrameStats {
    frames: u64,
    secs: f64,
    max_interval_secs: f64,
    cpu_secs: f64,
    max_cpu_secs: f64,
}

impl FrameStats {
    fn describe(&self) -> String {
        let fps = if self.secs > 0.0 { self.frames as f64 / self.secs } else { 0.0 };
        let mean_cpu = if self.frames > 0 { self.cpu_secs / self.frames as f64 } else { 0.0 };
        format!(
            "{} frames in {:.1} s = {:.1} fps; longest gap between frames {:.1} ms; \
             CPU per frame mean {:.1} ms, max {:.1} ms (while running)",
            self.frames,
            self.secs,
            fps,
            self.max_interval_secs * 1e3,
            mean_cpu * 1e3,
            self.max_cpu_secs * 1e3
        )
    }
}

impl FrameLog {
    /// The log `CNN_STEPPER_FRAME_LOG` asks for, if any.
    pub(super) fn from_env() -> Option<Self> {
        let mode = std::env::var("CNN_STEPPER_FRAME_LOG").ok()?;
        (mode == "1" || mode == "continuous").then(|| Self {
            continuous: mode == "continuous",
            last: None,
            window_start: Instant::now(),
            window: FrameStats::default(),
            total: FrameStats::default(),
        })
    }

    /// Records a frame. Only frames while training runs count: when paused the window sleeps
    /// until something happens, and those gaps are not slow frames.
    pub(super) fn frame(&mut self, cpu_secs: Option<f32>, running: bool, step: u64) {
        let running = running || self.continuous;
        let now = Instant::now();
        if !running {
            self.last = None;
        } else if let Some(last) = self.last {
            let dt = (now - last).as_secs_f64();
            let cpu = cpu_secs.unwrap_or(0.0) as f64;
            for s in [&mut self.window, &mut self.total] {
                s.frames += 1;
                s.secs += dt;
                s.max_interval_secs = s.max_interval_secs.max(dt);
                s.cpu_secs += cpu;
                s.max_cpu_secs = s.max_cpu_secs.max(cpu);
            }
        }
        if running {
            self.last = Some(now);
        }
        if now - self.window_start >= Duration::from_secs(5) {
            if self.window.frames > 0 {
                eprintln!("frame log, last 5 s: {}", self.window.describe());
                eprintln!("frame log, so far: {}", self.total.describe());
            }
            // For endurance runs: memory must stay flat over an hour of training.
            if let Some(kb) = resident_kb() {
                eprintln!("frame log, memory: resident {:.1} MB at step {step}", kb as f64 / 1024.0);
            }
            self.window = FrameStats::default();
            self.window_start = now;
        }
    }

    /// The whole session's figures, for the exit message.
    pub(super) fn total_summary(&self) -> String {
        self.total.describe()
    }
}

/// Resident memory of this process in kB (Linux; `None` elsewhere).
fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
