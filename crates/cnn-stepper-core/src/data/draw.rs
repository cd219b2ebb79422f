//! A canvas for drawing a digit with the mouse, and the preparation that turns the drawing into
//! a 28×28 MNIST-style image.
//!
//! MNIST's digits were prepared in three steps (LeCun et al., "The MNIST database"): the ink of
//! the binary NIST scan was scaled, keeping its aspect ratio and anti-aliased, so that it fits a
//! 20×20 box; that box was then placed in a 28×28 frame so that the centre of mass of the ink
//! lands on the frame's centre. [`Canvas::to_mnist`] does the same to a drawing, so the network
//! sees a drawn digit the way it saw the digits it was trained on: a "7" drawn small in a corner
//! comes out as large and as centred as a training "7".
//!
//! Coordinates are canvas-relative: `(0, 0)` is the top-left corner, `(1, 1)` the bottom-right,
//! `x` to the right and `y` down, like screen coordinates.

use super::MNIST_SIDE;

/// Side of the box the ink is scaled into, in MNIST pixels.
pub const INK_BOX: usize = 20;

/// Default canvas resolution: ten canvas pixels per MNIST pixel, so that the downscaling has
/// enough samples to anti-alias and a drawn digit of typical size keeps the pen's soft edge.
pub const DEFAULT_SIDE: usize = 280;

/// Default pen radius as a fraction of the canvas side. A digit drawn over most of the canvas
/// shrinks about tenfold into the 20×20 box, which turns this pen into a stroke 2–3 pixels wide:
/// the width of MNIST's strokes.
pub const DEFAULT_PEN_RADIUS: f32 = 0.042;

/// Width of the pen's soft edge as a fraction of its radius: ink fades from full to none over
/// this band, so strokes are anti-aliased on the canvas already and not only after scaling.
const SOFT_EDGE: f32 = 0.35;

/// A square grey-level drawing surface: white ink (1.0) on black (0.0), like MNIST.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    side: usize,
    pen_radius: f32,
    pixels: Vec<f32>,
}

impl Default for Canvas {
    fn default() -> Self {
        Self::new(DEFAULT_SIDE)
    }
}

impl Canvas {
    /// An empty canvas of `side × side` pixels (at least 1) with the default pen.
    pub fn new(side: usize) -> Self {
        let side = side.max(1);
        Self { side, pen_radius: DEFAULT_PEN_RADIUS, pixels: vec![0.0; side * side] }
    }

    /// A canvas holding `pixels` (row after row, `side × side` values; clamped to `[0, 1]`,
    /// non-finite values become 0), or `None` when the length does not match.
    pub fn from_pixels(side: usize, pixels: Vec<f32>) -> Option<Self> {
        if side == 0 || pixels.len() != side * side {
            return None;
        }
        let pixels = pixels.into_iter().map(|v| if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 }).collect();
        Some(Self { side, pen_radius: DEFAULT_PEN_RADIUS, pixels })
    }

    /// The same canvas with a pen of `radius` (a fraction of the side; non-finite or negative
    /// values keep the current pen).
    #[must_use]
    pub fn with_pen_radius(mut self, radius: f32) -> Self {
        if radius.is_finite() && radius >= 0.0 {
            self.pen_radius = radius;
        }
        self
    }

    /// Side of the canvas in pixels.
    pub fn side(&self) -> usize {
        self.side
    }

    /// Pen radius as a fraction of the side.
    pub fn pen_radius(&self) -> f32 {
        self.pen_radius
    }

    /// The grey levels, row after row, `side × side` values in `[0, 1]`.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// Erases everything.
    pub fn clear(&mut self) {
        self.pixels.fill(0.0);
    }

    /// True when there is no ink at all.
    pub fn is_empty(&self) -> bool {
        self.pixels.iter().all(|&v| v <= 0.0)
    }

    /// Draws a round-tipped line from `from` to `to` (canvas-relative `[x, y]`; `from == to`
    /// draws a dot). Whatever falls outside the canvas is clipped; a non-finite coordinate draws
    /// nothing. Returns whether any pixel changed.
    ///
    /// Ink combines by maximum, not by sum: where segments of one stroke overlap (at every joint
    /// of a mouse path) the line keeps its grey level instead of showing darker beads.
    pub fn stroke(&mut self, from: [f32; 2], to: [f32; 2]) -> bool {
        if !from.iter().chain(&to).all(|v| v.is_finite()) {
            return false;
        }
        let n = self.side as f32;
        let radius = (self.pen_radius * n).max(0.5);
        let inner = radius * (1.0 - SOFT_EDGE);
        // Pixel-space coordinates with pixel (i, j) centred at (i + 0.5, j + 0.5), cut to the part
        // that can reach the canvas: a line from far away keeps full precision where it is drawn.
        let margin = f64::from(radius) + 1.0;
        let Some([ax, ay, bx, by]) = clip_segment(
            [f64::from(from[0]) * f64::from(n), f64::from(from[1]) * f64::from(n)],
            [f64::from(to[0]) * f64::from(n), f64::from(to[1]) * f64::from(n)],
            -margin,
            f64::from(n) + margin,
        ) else {
            return false;
        };

        // Only the pixels near the segment can change.
        let lo = |a: f32, b: f32| (a.min(b) - radius - 1.0).floor().max(0.0) as usize;
        let hi = |a: f32, b: f32| ((a.max(b) + radius + 1.0).ceil().max(0.0) as usize).min(self.side);
        let (x0, x1) = (lo(ax, bx), hi(ax, bx));
        let (y0, y1) = (lo(ay, by), hi(ay, by));

        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let mut changed = false;
        for y in y0..y1 {
            let py = y as f32 + 0.5;
            for x in x0..x1 {
                let px = x as f32 + 0.5;
                // Distance from the pixel centre to the closest point of the segment.
                let t = if len2 > 0.0 { (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let (cx, cy) = (ax + t * dx - px, ay + t * dy - py);
                let d = (cx * cx + cy * cy).sqrt();
                let ink = pen_profile(d, inner, radius);
                if ink > 0.0 {
                    let p = &mut self.pixels[y * self.side + x];
                    if ink > *p {
                        *p = ink;
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// The drawing prepared like an MNIST digit: 28×28 values in `[0, 1]`, row after row, or
    /// `None` when the canvas is empty. See [`mnist_from_grey`], which does the work.
    pub fn to_mnist(&self) -> Option<Vec<f32>> {
        mnist_from_grey(&self.pixels, self.side, self.side)
    }
}

/// A grey image, bright ink on black (`width × height` values row after row, in `[0, 1]`;
/// others are clamped, non-finite ones count as no ink), prepared like an MNIST digit: 28×28
/// values in `[0, 1]`, row after row. `None` when there is no ink at all or the length is not
/// `width × height`.
///
/// The ink's bounding box (every pixel above 0) is scaled, keeping its aspect ratio, so that
/// its larger side is [`INK_BOX`] pixels; every output pixel is the average of the source area
/// it covers (which anti-aliases when shrinking). The scaled ink is then shifted by whole pixels
/// so that its centre of mass is as close as possible to the frame's centre, without leaving
/// the frame.
///
/// The drawing canvas ([`Canvas::to_mnist`]) and a photographed digit
/// ([`super::picture::for_input`]) both end here, so both reach the network as MNIST's digits did.
#[must_use]
pub fn mnist_from_grey(pixels: &[f32], width: usize, height: usize) -> Option<Vec<f32>> {
    if width == 0 || height == 0 || pixels.len() != width.checked_mul(height)? {
        return None;
    }
    let (bx0, by0, bx1, by1) = ink_bounds(pixels, width)?;
    let (w, h) = (bx1 - bx0, by1 - by0);
    let scale = INK_BOX as f64 / w.max(h) as f64;
    let xs = area_weights(w, scale);
    let ys = area_weights(h, scale);
    let (bw, bh) = (xs.len(), ys.len());

    // Separable box filter: first along rows, then along columns.
    let mut rows = vec![0.0_f64; h * bw];
    for y in 0..h {
        let src = &pixels[(by0 + y) * width + bx0..(by0 + y) * width + bx1];
        for (i, taps) in xs.iter().enumerate() {
            rows[y * bw + i] = taps.iter().map(|&(k, wt)| wt * f64::from(ink(src[k]))).sum();
        }
    }
    let mut small = vec![0.0_f64; bh * bw];
    for (j, taps) in ys.iter().enumerate() {
        for i in 0..bw {
            small[j * bw + i] = taps.iter().map(|&(k, wt)| wt * rows[k * bw + i]).sum();
        }
    }

    let (cx, cy) = centre_of_mass(&small, bw)?;
    let offset = |c: f64, size: usize| {
        let ideal = (CENTRE - c).round();
        ideal.clamp(0.0, (MNIST_SIDE - size) as f64) as usize
    };
    let (ox, oy) = (offset(cx, bw), offset(cy, bh));

    let mut out = vec![0.0_f32; MNIST_SIDE * MNIST_SIDE];
    for j in 0..bh {
        for i in 0..bw {
            out[(oy + j) * MNIST_SIDE + ox + i] = small[j * bw + i].clamp(0.0, 1.0) as f32;
        }
    }
    Some(out)
}

/// A pixel's ink: clamped to `[0, 1]`, none when not finite (the canvas's own values are
/// already so, and pass unchanged).
fn ink(v: f32) -> f32 {
    if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 }
}

/// The half-open pixel rectangle `(x0, y0, x1, y1)` holding all ink (values above 0) of a
/// `width`-wide image, if there is any.
fn ink_bounds(pixels: &[f32], width: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (width, usize::MAX, 0, 0);
    for (y, row) in pixels.chunks_exact(width).enumerate() {
        let Some(first) = row.iter().position(|&v| v > 0.0) else { continue };
        let last = row.iter().rposition(|&v| v > 0.0).unwrap_or(first);
        x0 = x0.min(first);
        x1 = x1.max(last + 1);
        y0 = y0.min(y);
        y1 = y + 1;
    }
    (x1 > x0).then_some((x0, y0, x1, y1))
}

/// Where the centre of mass goes, in the coordinates of [`centre_of_mass`]: MNIST placed it at
/// pixel index 14 of 0..28 (half a pixel right of and below the geometric centre; the round trip
/// of the embedded digits in `tests/draw.rs` checks that convention).
const CENTRE: f64 = 14.0;

/// The ink-weighted mean column and row of a `width`-wide image, in pixel indices, or `None`
/// when there is no ink.
fn centre_of_mass(image: &[f64], width: usize) -> Option<(f64, f64)> {
    let (mut sum, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (idx, &v) in image.iter().enumerate() {
        let (x, y) = ((idx % width) as f64, (idx / width) as f64);
        sum += v;
        sx += v * x;
        sy += v * y;
    }
    (sum > 0.0).then(|| (sx / sum, sy / sum))
}

/// For a source run of `len` pixels scaled by `scale`: per output pixel, the source pixels it
/// covers and their weights (covered length × scale, so a fully covered output pixel's weights
/// sum to 1 and a partly covered one at the end gets proportionally less ink).
fn area_weights(len: usize, scale: f64) -> Vec<Vec<(usize, f64)>> {
    // The larger side maps to exactly INK_BOX pixels; the tolerance keeps a rounding error from
    // adding an empty output column.
    let out_len = ((len as f64 * scale - 1e-9).ceil() as usize).clamp(1, INK_BOX);
    let step = 1.0 / scale;
    (0..out_len)
        .map(|i| {
            let (start, end) = (i as f64 * step, (i as f64 + 1.0) * step);
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).min(len);
            (first..last)
                .filter_map(|k| {
                    let overlap = end.min(k as f64 + 1.0) - start.max(k as f64);
                    (overlap > 0.0).then_some((k, overlap * scale))
                })
                .collect()
        })
        .collect()
}

/// The part of the segment `a`–`b` inside the square `[lo, hi]²` (Liang–Barsky), as
/// `[ax, ay, bx, by]`, or `None` when it misses the square.
fn clip_segment(a: [f64; 2], b: [f64; 2], lo: f64, hi: f64) -> Option<[f32; 4]> {
    let d = [b[0] - a[0], b[1] - a[1]];
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    for axis in 0..2 {
        // Entering and leaving the slab lo <= a + t·d <= hi along this axis.
        for (p, q) in [(-d[axis], a[axis] - lo), (d[axis], hi - a[axis])] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64, axis: usize| (a[axis] + t * d[axis]) as f32;
    Some([at(t0, 0), at(t0, 1), at(t1, 0), at(t1, 1)])
}

/// Ink of the pen at distance `d` from the stroke's centre line: full inside `inner`, fading
/// smoothly (smoothstep) to none at `radius`.
fn pen_profile(d: f32, inner: f32, radius: f32) -> f32 {
    if d <= inner {
        1.0
    } else if d >= radius {
        0.0
    } else {
        let t = (radius - d) / (radius - inner);
        t * t * (3.0 - 2.0 * t)
    }
}
