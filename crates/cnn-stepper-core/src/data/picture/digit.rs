//! A picture of a handwritten digit (a photo of pen on paper, a scan, a PNG from a paint program)
//! turned into the ink image MNIST's preparation starts from: bright ink on black, the paper's
//! level, shading and grain removed, specks dropped, and strokes thin for their size thickened
//! to MNIST's usual width. [`mnist_from_grey`] then scales and centres it as it does a drawn
//! digit.

use super::Picture;
use crate::data::MNIST_SIDE;
use crate::data::draw::mnist_from_grey;

/// The largest side the picture is worked on at: a phone photo is shrunk (averaging) first, so
/// the work takes milliseconds; a digit filling a third of the photo keeps ~200 pixels.
const WORK_SIDE: usize = 600;

/// The border ring the paper is measured on is this fraction of the shorter side (at least one
/// pixel): a digit rarely reaches into it.
const BORDER_PART: usize = 32;

/// Paper grain: residuals within this many robust standard deviations of the paper are paper.
const NOISE_SIGMAS: f32 = 4.0;

/// Faint ink below this fraction of the strongest is dropped too (JPEG ringing, a shadow's edge).
const FAINT: f32 = 0.1;

/// Ink at this quantile of the kept ink becomes full ink (1.0): pen strokes reach MNIST's
/// saturated cores while their edges stay soft.
const FULL_INK_QUANTILE: f32 = 0.75;

/// A piece of ink lighter than this fraction of the heaviest piece is a speck, not a stroke.
const SPECK: f64 = 0.04;

/// MNIST's median stroke width as a fraction of its ink box's larger side (2 px of the 20-px
/// box; measured on the embedded sample's 10,000 test digits with [`stroke_width`]: 5% are
/// below 0.066, 1% below 0.053).
const MNIST_STROKE: f32 = 0.10;

/// Strokes thinner than this fraction of the ink box (a ballpoint line on a digit a few
/// centimetres tall) are thickened to [`MNIST_STROKE`]; MNIST-like ones are left as they are.
const THIN_STROKE: f32 = 0.06;

/// Before thickening, the ink box is max-pooled down to about this many pixels, so the
/// thickening disc stays small whatever the photo's resolution.
const THICKEN_SIDE: usize = 80;

/// The picture as a 28×28 MNIST-style digit in `[0, 1]` (all zeros when it holds no ink).
pub(super) fn prepare(picture: &Picture) -> Vec<f32> {
    let (grey, cols, rows) = working_grey(picture);
    let blank = || vec![0.0; MNIST_SIDE * MNIST_SIDE];
    let Some(ink) = ink_image(&grey, cols, rows) else { return blank() };
    let ink = drop_specks(ink, cols, rows);
    let (ink, cols, rows) = thicken(ink, cols, rows);
    mnist_from_grey(&ink, cols, rows).unwrap_or_else(blank)
}

/// The picture's grey levels in `[0, 1]`, shrunk by a whole factor (each pixel the mean of a
/// block, the blocks at the right and bottom edges perhaps narrower) until its larger side is
/// at most [`WORK_SIDE`]: (levels, width, height).
///
/// A block mean is the area average the MNIST preparation does anyway, and the cheapest: a
/// 12-megapixel photo takes tens of milliseconds.
fn working_grey(picture: &Picture) -> (Vec<f32>, usize, usize) {
    let (w, h) = picture.size();
    let k = w.max(h).div_ceil(WORK_SIDE).max(1);
    let (cols, rows) = (w.div_ceil(k), h.div_ceil(k));
    let mut sum = vec![0u32; cols * rows];
    let mut count = vec![0u32; cols * rows];
    for (y, row) in picture.rgb.rows().enumerate() {
        let base = y / k * cols;
        for (x, p) in row.enumerate() {
            sum[base + x / k] += u32::from(super::grey(p.0));
            count[base + x / k] += 1;
        }
    }
    let grey = sum.iter().zip(&count).map(|(&s, &n)| s as f32 / (255.0 * n.max(1) as f32)).collect();
    (grey, cols, rows)
}

/// Bright ink on black in `[0, 1]`, or `None` when nothing stands out of the paper.
///
/// The paper is the border ring: a plane fitted to it (a photo's lighting falls off across the
/// page) is subtracted, its spread is the grain. The ink is the side that departs furthest from
/// the paper: darker for pen on paper (then inverted), brighter for an MNIST-style image.
fn ink_image(grey: &[f32], w: usize, h: usize) -> Option<Vec<f32>> {
    if grey.len() != w * h || grey.is_empty() {
        return None;
    }
    let ring = (w.min(h) / BORDER_PART).max(1);
    let border: Vec<usize> = (0..grey.len())
        .filter(|&i| {
            let (x, y) = (i % w, i / w);
            x < ring || y < ring || x + ring >= w || y + ring >= h
        })
        .collect();
    // Fit, then fit again without the border pixels far from the first fit (ink reaching the
    // edge, a shadow in a corner).
    let first = fit_plane(grey, w, &border)?;
    let spread = mad(border.iter().map(|&i| grey[i] - first.at(i, w)));
    let inliers: Vec<usize> =
        border.iter().copied().filter(|&i| (grey[i] - first.at(i, w)).abs() <= 3.0 * spread + 1.0 / 255.0).collect();
    let paper = fit_plane(grey, w, &inliers).unwrap_or(first);
    let residual: Vec<f32> = grey.iter().enumerate().map(|(i, &g)| g - paper.at(i, w)).collect();
    let sigma = (mad(inliers.iter().map(|&i| residual[i])) * 1.4826).max(0.5 / 255.0);

    let darkest = residual.iter().copied().fold(0.0_f32, f32::min);
    let brightest = residual.iter().copied().fold(0.0_f32, f32::max);
    let light_paper = -darkest > brightest;
    let ink: Vec<f32> = residual.into_iter().map(|r| if light_paper { -r } else { r }).collect();
    let peak = if light_paper { -darkest } else { brightest };
    let threshold = (NOISE_SIGMAS * sigma).max(FAINT * peak);
    if peak <= threshold || peak < 0.05 {
        return None;
    }
    let mut kept: Vec<f32> = ink.iter().copied().filter(|&v| v > threshold).collect();
    let full = quantile(&mut kept, FULL_INK_QUANTILE).max(threshold + 1e-3);
    Some(ink.into_iter().map(|v| ((v - threshold) / (full - threshold)).clamp(0.0, 1.0)).collect())
}

/// `a + b·x + c·y`, a paper's level and its fall-off.
#[derive(Clone, Copy, Debug)]
struct Plane {
    a: f32,
    b: f32,
    c: f32,
}

impl Plane {
    fn at(self, i: usize, w: usize) -> f32 {
        self.a + self.b * (i % w) as f32 + self.c * (i / w) as f32
    }
}

/// The least-squares plane through `grey` at the pixels `at`; `None` for no pixels. Directions
/// the pixels do not span (a one-pixel-high picture) get no slope.
fn fit_plane(grey: &[f32], w: usize, at: &[usize]) -> Option<Plane> {
    if at.is_empty() {
        return None;
    }
    let n = at.len() as f64;
    let (mut mx, mut my, mut mv) = (0.0, 0.0, 0.0);
    for &i in at {
        mx += (i % w) as f64;
        my += (i / w) as f64;
        mv += f64::from(grey[i]);
    }
    let (mx, my, mv) = (mx / n, my / n, mv / n);
    let (mut sxx, mut syy, mut sxy, mut sxv, mut syv) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &i in at {
        let (x, y, v) = ((i % w) as f64 - mx, (i / w) as f64 - my, f64::from(grey[i]) - mv);
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
        sxv += x * v;
        syv += y * v;
    }
    let det = sxx * syy - sxy * sxy;
    let (b, c) = if det > 1e-9 * (sxx * syy).max(1.0) {
        ((sxv * syy - syv * sxy) / det, (syv * sxx - sxv * sxy) / det)
    } else if sxx > 1e-9 {
        (sxv / sxx, 0.0)
    } else if syy > 1e-9 {
        (0.0, syv / syy)
    } else {
        (0.0, 0.0)
    };
    Some(Plane { a: (mv - b * mx - c * my) as f32, b: b as f32, c: c as f32 })
}

/// Median absolute deviation from the median (0 for no values).
fn mad(values: impl Iterator<Item = f32>) -> f32 {
    let mut v: Vec<f32> = values.collect();
    let m = quantile(&mut v, 0.5);
    let mut dev: Vec<f32> = v.iter().map(|x| (x - m).abs()).collect();
    quantile(&mut dev, 0.5)
}

/// The value at quantile `q` of `values` (reordered), 0 for none.
fn quantile(values: &mut [f32], q: f32) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let k = ((values.len() - 1) as f32 * q).round() as usize;
    *values.select_nth_unstable_by(k, f32::total_cmp).1
}

/// The ink without its specks: pieces (8-connected) lighter than [`SPECK`] of the heaviest.
fn drop_specks(mut ink: Vec<f32>, w: usize, h: usize) -> Vec<f32> {
    let mut piece = vec![usize::MAX; ink.len()];
    let mut masses = Vec::new();
    let mut stack = Vec::new();
    for start in 0..ink.len() {
        if ink[start] <= 0.0 || piece[start] != usize::MAX {
            continue;
        }
        let id = masses.len();
        let mut mass = 0.0_f64;
        piece[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            mass += f64::from(ink[i]);
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if ink[j] > 0.0 && piece[j] == usize::MAX {
                        piece[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        masses.push(mass);
    }
    let heaviest = masses.iter().copied().fold(0.0, f64::max);
    for (v, &p) in ink.iter_mut().zip(&piece) {
        if p != usize::MAX && masses[p] < SPECK * heaviest {
            *v = 0.0;
        }
    }
    ink
}

/// Stroke width in pixels of the ink at half strength or more: twice its area over its
/// perimeter (a long stroke of width `d` has area `d·L` and perimeter about `2L`); 0 for none.
fn stroke_width(ink: &[f32], w: usize, h: usize) -> f32 {
    let on = |x: usize, y: usize| ink[y * w + x] >= 0.5;
    let (mut area, mut edges) = (0usize, 0usize);
    for y in 0..h {
        for x in 0..w {
            if !on(x, y) {
                continue;
            }
            area += 1;
            edges += usize::from(x == 0 || !on(x - 1, y))
                + usize::from(x + 1 == w || !on(x + 1, y))
                + usize::from(y == 0 || !on(x, y - 1))
                + usize::from(y + 1 == h || !on(x, y + 1));
        }
    }
    if edges == 0 { 0.0 } else { 2.0 * area as f32 / edges as f32 }
}

/// The half-open box `(x0, y0, x1, y1)` of every pixel above 0.
fn ink_box(ink: &[f32], w: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in ink.iter().enumerate().filter(|(_, v)| **v > 0.0) {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x + 1);
        y1 = y1.max(y + 1);
    }
    (x1 > x0).then_some((x0, y0, x1, y1))
}

/// Strokes much thinner than MNIST's for the digit's size ([`THIN_STROKE`]) widened to
/// [`MNIST_STROKE`]: the ink box is cut out, max-pooled to about [`THICKEN_SIDE`] pixels
/// (which keeps a hairline whole) and dilated with a disc. Returns the image and its size
/// (unchanged when the strokes are wide enough already).
fn thicken(ink: Vec<f32>, w: usize, h: usize) -> (Vec<f32>, usize, usize) {
    let Some((x0, y0, x1, y1)) = ink_box(&ink, w) else { return (ink, w, h) };
    let side = (x1 - x0).max(y1 - y0);
    let width = stroke_width(&ink, w, h);
    if width >= THIN_STROKE * side as f32 {
        return (ink, w, h);
    }
    let pool = (side / THICKEN_SIDE).max(1);
    let (pw, ph) = ((x1 - x0).div_ceil(pool), (y1 - y0).div_ceil(pool));
    let mut pooled = vec![0.0_f32; pw * ph];
    for y in y0..y1 {
        for x in x0..x1 {
            let p = &mut pooled[(y - y0) / pool * pw + (x - x0) / pool];
            *p = p.max(ink[y * w + x]);
        }
    }
    let pooled_side = pw.max(ph) as f32;
    let pooled_width = stroke_width(&pooled, pw, ph).max(1.0);
    // Dilating by r widens strokes and the box alike by 2r: (d + 2r) / (S + 2r) = target.
    let grow = (MNIST_STROKE * pooled_side - pooled_width) / (1.0 - MNIST_STROKE);
    let r = (grow / 2.0).round().max(1.0) as usize;
    let (dw, dh) = (pw + 2 * r, ph + 2 * r);
    let disc: Vec<(isize, isize)> = (-(r as isize)..=r as isize)
        .flat_map(|dy| (-(r as isize)..=r as isize).map(move |dx| (dx, dy)))
        .filter(|(dx, dy)| (dx * dx + dy * dy) as f32 <= (r as f32 + 0.5).powi(2))
        .collect();
    let mut out = vec![0.0_f32; dw * dh];
    for y in 0..ph {
        for x in 0..pw {
            let v = pooled[y * pw + x];
            if v <= 0.0 {
                continue;
            }
            let (cx, cy) = ((x + r) as isize, (y + r) as isize);
            for &(dx, dy) in &disc {
                let o = &mut out[(cy + dy) as usize * dw + (cx + dx) as usize];
                *o = o.max(v);
            }
        }
    }
    (out, dw, dh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture `w × h` of grey `paper(x, y)` with a dark upright bar (a "1") on it.
    fn page(w: u32, h: u32, paper: impl Fn(u32, u32) -> u8, ink: impl Fn(u32, u32) -> bool) -> Picture {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let v = if ink(x, y) { 40 } else { paper(x, y) };
            image::Rgb([v, v, v])
        });
        let mut bytes = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        Picture::decode(&bytes, "page.png").unwrap()
    }

    fn bar(x: u32, y: u32) -> bool {
        (70..82).contains(&x) && (30..130).contains(&y)
    }

    #[test]
    fn a_speck_far_from_the_digit_does_not_move_or_shrink_it() {
        let clean = prepare(&page(160, 160, |_, _| 220, bar));
        let specked = prepare(&page(160, 160, |_, _| 220, |x, y| bar(x, y) || (x == 150 && y == 12)));
        assert_eq!(clean, specked);
        assert!(clean.iter().any(|&v| v > 0.99));
    }

    #[test]
    fn light_falling_off_across_the_page_is_paper_not_ink() {
        let even = prepare(&page(160, 160, |_, _| 220, bar));
        let shaded = prepare(&page(160, 160, |x, _| (120 + x * 3 / 4) as u8, bar));
        let diff = even.iter().zip(&shaded).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
        assert!(diff < 0.05, "largest difference {diff}");
    }

    #[test]
    fn a_hairline_is_thickened_to_about_mnist_stroke_width() {
        let hair = prepare(&page(400, 400, |_, _| 230, |x, y| x == 200 && (50..350).contains(&y)));
        let width = stroke_width(&hair, MNIST_SIDE, MNIST_SIDE);
        assert!((1.5..=3.5).contains(&width), "stroke width {width} px (MNIST's median is 2)");
    }
}
