//! Pictures of the window for slides and worksheets: the whole window, or one view cut out of
//! it (the feature maps, the filters), saved as PNG.
//!
//! The picture is the renderer's own screenshot, so it shows exactly what the student saw,
//! legend and all. eframe hands it to a callback on the window thread; the callback crops,
//! encodes and writes it (atomically, so a failed save leaves an older file intact) and reports
//! back through a channel that [`ShotQueue::poll`] drains.
//!
//! For slides and handouts a picture can be taken at 2× or 3× the screen's resolution: the
//! window is enlarged by that factor and the zoom with it, so that the layout in points is the
//! one on screen and every line and letter is drawn with 2 or 3 times the pixels; then both
//! are put back. If the window cannot grow (a window manager refusing a window larger than the
//! screen), the picture is taken at 1× and the message says so.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui::{self, ColorImage, Rect};

use crate::fileio::write_atomically;
use crate::ui::tabs::{Picture, TabId};

/// Which part of the window a PNG shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShotTarget {
    /// Everything.
    Window,
    /// The view of a tab, with its legend (see [`crate::ui::tabs::Tab::picture`]).
    Tab(TabId, Picture),
}

impl ShotTarget {
    /// How a menu names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Window => "the window",
            Self::Tab(_, p) => p.label,
        }
    }

    /// A file name to suggest.
    pub fn default_name(self, step: u64) -> String {
        let what = match self {
            Self::Window => "window",
            Self::Tab(_, p) => p.file_stem,
        };
        format!("cnn-stepper-{what}-step{step}.png")
    }

    /// The tab that must be in front to take the picture, if any.
    pub fn tab(self) -> Option<TabId> {
        match self {
            Self::Window => None,
            Self::Tab(id, _) => Some(id),
        }
    }
}

/// Frames to wait for the window to grow before taking the picture at 1× instead.
const GROW_FRAMES: u16 = 120;

/// Where a picture at a higher resolution is in its enlarging of the window.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    /// Drawing the view at the window's own size (frames left to settle).
    Settle(u8),
    /// The window was asked to grow by the scale; waiting for it (frames waited).
    Grow { waited: u16 },
    /// Grown, and zoomed by the scale: the layout is back to the screen's; frames left.
    Zoomed(u8),
}

/// A picture asked for: of what, where to, at what scale, and how far.
struct Pending {
    target: ShotTarget,
    path: PathBuf,
    scale: u8,
    stage: Stage,
    /// The window's size in points and the zoom before enlarging.
    original: Option<(egui::Vec2, f32)>,
    /// Set when the window would not grow: the picture is at 1×.
    fell_back: bool,
}

/// Screenshots asked for and not yet written, and the results of those written.
pub struct ShotQueue {
    /// Waiting for the frame that draws the view (the tab may have to switch first).
    pending: Option<Pending>,
    /// The window's size and zoom to put back, once a picture at a higher scale was taken;
    /// the zoom first, then (the frame after, at the zoom restored) the size.
    restore: Option<(egui::Vec2, f32, bool)>,
    results_tx: Sender<Result<String, String>>,
    results_rx: Receiver<Result<String, String>>,
}

impl Default for ShotQueue {
    fn default() -> Self {
        let (results_tx, results_rx) = channel();
        Self { pending: None, restore: None, results_tx, results_rx }
    }
}

impl ShotQueue {
    /// Asks for a PNG of `target` at `path`, `scale` (1 to 3) times the screen's resolution;
    /// taken once the view has been drawn.
    pub fn request(&mut self, target: ShotTarget, path: PathBuf, scale: u8) {
        // Two frames: one to bring the view to the front, one to draw it settled.
        self.pending = Some(Pending {
            target,
            path,
            scale: scale.clamp(1, 3),
            stage: Stage::Settle(2),
            original: None,
            fell_back: false,
        });
    }

    /// The view a request is waiting for, so the app can bring it to the front.
    pub fn waiting_for(&self) -> Option<ShotTarget> {
        self.pending.as_ref().map(|p| p.target)
    }

    /// True while the window is enlarged (or being put back) for a picture: the app leaves
    /// the zoom alone meanwhile.
    pub fn owns_zoom(&self) -> bool {
        self.restore.is_some() || self.pending.as_ref().is_some_and(|p| p.original.is_some())
    }

    /// Called after each frame is laid out with the rectangle (in points) of each tab's view
    /// drawn; enlarges the window for a picture at a higher scale, sends the screenshot request
    /// once the waited-for view has been drawn, and puts the window back afterwards.
    pub fn after_frame(&mut self, ctx: &egui::Context, view_rect: impl Fn(TabId) -> Option<Rect>) {
        if let Some((size, zoom, zoom_restored)) = self.restore {
            if zoom_restored {
                ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(size));
                self.restore = None;
            } else {
                ctx.set_zoom_factor(zoom);
                self.restore = Some((size, zoom, true));
            }
            ctx.request_repaint();
            return;
        }
        let Some(p) = &mut self.pending else { return };
        ctx.request_repaint();
        match p.stage {
            Stage::Settle(frames) if frames > 0 => {
                p.stage = Stage::Settle(frames - 1);
                return;
            }
            Stage::Settle(_) if p.scale > 1 && !p.fell_back => {
                let size = ctx.content_rect().size();
                p.original = Some((size, ctx.zoom_factor()));
                ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(size * p.scale as f32));
                p.stage = Stage::Grow { waited: 0 };
                return;
            }
            Stage::Grow { waited } => {
                let Some((size, zoom)) = p.original else { return };
                let grown = (ctx.content_rect().size() - size * p.scale as f32).length() < 2.0;
                if grown {
                    ctx.set_zoom_factor(zoom * p.scale as f32);
                    p.stage = Stage::Zoomed(2);
                } else if waited >= GROW_FRAMES {
                    // The window would not grow: put it back and take the picture at 1×.
                    p.fell_back = true;
                    p.original = None;
                    self.restore = Some((size, zoom, true));
                    p.stage = Stage::Settle(2);
                } else {
                    p.stage = Stage::Grow { waited: waited + 1 };
                }
                return;
            }
            Stage::Zoomed(frames) if frames > 0 => {
                p.stage = Stage::Zoomed(frames - 1);
                return;
            }
            Stage::Settle(_) | Stage::Zoomed(_) => {}
        }
        let target = p.target;
        let crop = match target.tab() {
            None => None,
            Some(t) => match view_rect(t) {
                Some(r) => Some(r),
                None => return,
            },
        };
        let Some(p) = self.pending.take() else { return };
        if let Some((size, zoom)) = p.original {
            self.restore = Some((size, zoom, false));
        }
        let note = if p.fell_back {
            format!(" at 1×: the window could not be enlarged {}× for the higher resolution", p.scale)
        } else {
            String::new()
        };
        let path = p.path;
        let tx = self.results_tx.clone();
        let waker = ctx.clone();
        let pixels_per_point = ctx.pixels_per_point();
        ctx.request_screenshot(move |image| {
            let rect_px = crop.map(|r| r * pixels_per_point);
            let result = write_png(&path, &image, rect_px)
                .map(|(w, h)| format!("saved {} ({w}×{h} pixels{note}) to {}", target.label(), path.display()));
            let _ = tx.send(result);
            waker.request_repaint();
        });
    }

    /// Results of screenshots written since the last call (messages for the banner).
    pub fn poll(&mut self) -> Vec<Result<String, String>> {
        self.results_rx.try_iter().collect()
    }
}

/// `image` cut to `rect` (in pixels; `None` = all of it, and clamped to the image).
pub fn crop(image: &ColorImage, rect: Option<Rect>) -> ColorImage {
    let [w, h] = image.size;
    let Some(r) = rect else { return image.clone() };
    let x0 = (r.min.x.round().max(0.0) as usize).min(w);
    let y0 = (r.min.y.round().max(0.0) as usize).min(h);
    let x1 = (r.max.x.round().max(0.0) as usize).clamp(x0, w);
    let y1 = (r.max.y.round().max(0.0) as usize).clamp(y0, h);
    let mut pixels = Vec::with_capacity((x1 - x0) * (y1 - y0));
    for y in y0..y1 {
        pixels.extend_from_slice(&image.pixels[y * w + x0..y * w + x1]);
    }
    ColorImage::new([x1 - x0, y1 - y0], pixels)
}

/// The image as PNG bytes (8-bit RGBA).
pub fn encode_png(image: &ColorImage) -> Result<Vec<u8>, String> {
    let [w, h] = image.size;
    if w == 0 || h == 0 {
        return Err("the picture is empty (is the view visible?)".into());
    }
    let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_srgba_unmultiplied()).collect();
    let mut out = Vec::new();
    let width = u32::try_from(w).map_err(|_| "the picture is too wide")?;
    let height = u32::try_from(h).map_err(|_| "the picture is too tall")?;
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Crops, encodes and writes `image` to `path`; returns the size written.
pub fn write_png(path: &Path, image: &ColorImage, rect_px: Option<Rect>) -> Result<(usize, usize), String> {
    let cut = crop(image, rect_px);
    let bytes = encode_png(&cut).map_err(|e| format!("{}: cannot make the PNG: {e}", path.display()))?;
    write_atomically(path, &bytes).map_err(|e| format!("cannot write the PNG: {e}"))?;
    Ok((cut.size[0], cut.size[1]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use eframe::egui::{Color32, pos2};

    fn gradient(w: usize, h: usize) -> ColorImage {
        let pixels = (0..w * h).map(|i| Color32::from_rgb((i % w) as u8, (i / w) as u8, 7)).collect();
        ColorImage::new([w, h], pixels)
    }

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn a_crop_keeps_exactly_the_pixels_inside_the_rectangle() {
        let img = gradient(40, 30);
        let cut = crop(&img, Some(Rect::from_min_max(pos2(10.0, 5.0), pos2(20.0, 9.0))));
        assert_eq!(cut.size, [10, 4]);
        assert_eq!(cut.pixels[0], Color32::from_rgb(10, 5, 7));
        assert_eq!(cut.pixels[39], Color32::from_rgb(19, 8, 7));
    }

    #[test]
    fn a_rectangle_beyond_the_image_is_clamped() {
        let img = gradient(8, 8);
        let cut = crop(&img, Some(Rect::from_min_max(pos2(-5.0, 6.0), pos2(50.0, 50.0))));
        assert_eq!(cut.size, [8, 2]);
    }

    #[test]
    fn the_png_decodes_to_the_same_pixels() {
        let img = gradient(13, 7);
        let (w, h, rgba) = decode(&encode_png(&img).unwrap());
        assert_eq!((w, h), (13, 7));
        assert_eq!(&rgba[4 * 14..4 * 15], &[1, 1, 7, 255]);
    }

    #[test]
    fn an_empty_picture_is_an_error_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let img = gradient(4, 4);
        let err = write_png(&path, &img, Some(Rect::from_min_max(pos2(2.0, 2.0), pos2(2.0, 2.0)))).unwrap_err();
        assert!(err.contains("x.png") && err.contains("empty"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let img = gradient(4, 4);
        let err = write_png(Path::new("/nonexistent-folder/x.png"), &img, None).unwrap_err();
        assert!(err.contains("/nonexistent-folder/x.png"), "{err}");
    }
}
