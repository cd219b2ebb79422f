//! Classify an image: a picture file (chosen in File → "Classify an image…" or dropped on the
//! window) prepared for the current network's input and probed exactly as a drawn digit is, so
//! every view shows it and its answer follows training. Decoding runs on a thread of its own: a
//! phone photo takes a moment to decode and shrink.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use eframe::egui;

use super::CnnApp;
use crate::data::{DataError, picture};
use crate::engine::model::Shape;
use crate::trainer::ProbeInput;
use crate::ui::panels::banner::Severity;

/// The one way the window turns a picture file into a network's input: `channels × rows ×
/// cols` values in [0, 1], as `predict` prepares it (see [`picture::for_input`]): resized in
/// colour or grey as training saw its images, and for an MNIST-style 28×28 grey network made
/// into an MNIST digit as a drawing is (paper removed, ink centred by mass).
///
/// # Errors
/// The file cannot be read or decoded: the error names it and says what the decoder said.
pub fn prepare_picture(path: &Path, input: (usize, usize, usize)) -> Result<Vec<f32>, DataError> {
    picture::file_for_input(path, input)
}

/// A picture being prepared.
#[derive(Debug)]
pub(super) struct Classifying {
    path: PathBuf,
    input: (usize, usize, usize),
    result: mpsc::Receiver<Result<Vec<f32>, DataError>>,
}

/// The network's input as channels, height and width (a flat input is `n × 1 × 1`).
pub(super) fn input_of(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => (n, 1, 1),
    }
}

impl CnnApp {
    /// Prepares the picture at `path` for the current network, then probes it. A picture that
    /// cannot be read becomes a banner naming the file and what the decoder said.
    pub fn classify_file(&mut self, path: &Path) {
        let Some(snap) = self.results.snapshot.as_deref() else {
            self.push_banner(Severity::Error, "The network is not ready yet: try again in a moment.");
            return;
        };
        let input = input_of(snap.model.plan.input);
        let (tx, rx) = mpsc::channel();
        let ctx = self.egui_ctx.clone();
        let file = path.to_path_buf();
        let spawned = std::thread::Builder::new().name("cnn-stepper picture".into()).spawn(move || {
            let _ = tx.send(prepare_picture(&file, input));
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.probe.classifying = Some(Classifying { path: path.to_path_buf(), input, result: rx }),
            Err(e) => self.push_banner(Severity::Error, format!("Could not start decoding {}: {e}", path.display())),
        }
    }

    /// Takes in a prepared picture: probed, unless the network's input changed meanwhile (then
    /// it is prepared again).
    pub(super) fn poll_classifying(&mut self) {
        let Some(c) = &self.probe.classifying else { return };
        let result = match c.result.try_recv() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => {
                Err(format!("{}: decoding stopped unexpectedly", c.path.display()))
            }
        };
        let Some(c) = self.probe.classifying.take() else { return };
        match result {
            Ok(pixels) => {
                let now = self.results.snapshot.as_deref().map(|s| input_of(s.model.plan.input));
                if now.is_some_and(|n| n != c.input) {
                    self.classify_file(&c.path);
                } else {
                    self.probe(ProbeInput::Pixels(pixels));
                    self.probe.file = Some(c.path);
                }
            }
            Err(e) => self.push_banner(Severity::Error, format!("Cannot classify the picture {e}")),
        }
    }

    /// Files dropped on the window: a picture is classified, a folder opens in Open data…,
    /// anything else is refused with its name.
    pub(super) fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            let path = file.path().to_path_buf();
            if path.is_dir() {
                self.folder_dropped(&path);
            } else if picture::is_picture(&path) {
                self.classify_file(&path);
            } else {
                self.push_banner(
                    Severity::Error,
                    format!(
                        "{} is not a picture: drop a PNG, JPEG, BMP or GIF file to classify it, or a data folder",
                        path.display()
                    ),
                );
            }
        }
    }

    /// While files are dragged over the window, says what dropping them does.
    pub(super) fn drop_hint_ui(&self, ctx: &egui::Context) {
        if ctx.input(|i| i.raw.hovered_files.is_empty()) {
            return;
        }
        let rect = ctx.content_rect();
        let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop hint")));
        painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "Drop a picture to classify it, or a folder to open it as data",
            egui::FontId::proportional(24.0),
            egui::Color32::WHITE,
        );
    }

    /// A drawn digit (28×28, MNIST-style) for the current network: as drawn for a 28×28 grey
    /// input, resized for another grey size; `None` for a colour network.
    pub(super) fn drawn_for_network(&self, drawn: Vec<f32>) -> Option<Vec<f32>> {
        let side = crate::data::MNIST_SIDE;
        let Some(snap) = self.results.snapshot.as_deref() else { return Some(drawn) };
        match input_of(snap.model.plan.input) {
            (1, h, w) if (h, w) == (side, side) => Some(drawn),
            (1, h, w) => Some(resize_grey(&drawn, side, side, h, w)),
            _ => None,
        }
    }
}

/// A grey image `rows × cols` resized to `h × w` by area averaging (each output pixel is the
/// mean of the input area it covers, pixels cut by its edges counted by the part inside).
pub fn resize_grey(src: &[f32], rows: usize, cols: usize, h: usize, w: usize) -> Vec<f32> {
    let weights = |from: usize, to: usize| -> Vec<Vec<(usize, f32)>> {
        let scale = from as f32 / to as f32;
        (0..to)
            .map(|o| {
                let (a, b) = (o as f32 * scale, (o + 1) as f32 * scale);
                let mut taps = Vec::new();
                let mut i = a.floor() as usize;
                while (i as f32) < b && i < from {
                    let cover = (b.min(i as f32 + 1.0) - a.max(i as f32)).max(0.0);
                    if cover > 0.0 {
                        taps.push((i, cover / scale));
                    }
                    i += 1;
                }
                taps
            })
            .collect()
    };
    let (ys, xs) = (weights(rows, h), weights(cols, w));
    let mut out = Vec::with_capacity(h * w);
    for ty in &ys {
        for tx in &xs {
            let v: f32 = ty
                .iter()
                .flat_map(|&(y, wy)| {
                    tx.iter().map(move |&(x, wx)| wy * wx * src.get(y * cols + x).copied().unwrap_or(0.0))
                })
                .sum();
            out.push(v.clamp(0.0, 1.0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_keeps_the_mean_and_the_place_of_the_ink() {
        // A 4×4 image, ink in its top-left quarter.
        let mut src = vec![0.0; 16];
        for (y, x) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            src[y * 4 + x] = 1.0;
        }
        assert_eq!(resize_grey(&src, 4, 4, 2, 2), vec![1.0, 0.0, 0.0, 0.0]);
        let third = resize_grey(&src, 4, 4, 3, 3);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&third) - mean(&src)).abs() < 1e-5, "{third:?}");
        assert!(third[0] > 0.99 && third[8] < 1e-6, "{third:?}");
        let up = resize_grey(&src, 4, 4, 8, 8);
        assert_eq!((up[0], up[3], up[4], up[63]), (1.0, 1.0, 0.0, 0.0));
    }
}
