//! The built-in colour set: 3×32×32 pictures of shapes drawn in a random colour, size, place
//! and rotation on a random dark, textured background. The class is the shape, never the
//! colour, so a network has to learn form and not hue, and translation and channels can be
//! taught offline with nothing to download.
//!
//! Every image is drawn from its own random stream (the seed, the split and the image's
//! number), so the set is the same whatever the number of threads drawing it, and the test
//! images are not the training images.

use std::f32::consts::TAU;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::error::sep;
use super::{DataError, Dataset, LoadProgress, Splits};

/// The classes, in label order.
pub const SHAPE_NAMES: [&str; 5] = ["circle", "square", "triangle", "cross", "ring"];
/// Side length of a shape picture in pixels.
pub const SHAPES_SIDE: usize = 32;
/// Training images `--data shapes` generates.
pub const SHAPES_TRAIN: usize = 10_000;
/// Test images `--data shapes` generates.
pub const SHAPES_TEST: usize = 2_000;
/// Bytes per picture: three channels of 32×32.
const IMAGE_BYTES: usize = 3 * SHAPES_SIDE * SHAPES_SIDE;
/// Pictures drawn between two progress reports.
const PROGRESS_EVERY: usize = 500;

/// Generates `train` training and `test` test pictures of [`SHAPE_NAMES`] from `seed`, drawing
/// them in parallel; `progress` hears every few hundred pictures, from the drawing threads.
/// The labels go round the classes (0, 1, 2, 3, 4, 0, …), so every class has a fifth of each
/// split (and is in it once the split has five images).
///
/// # Errors
/// [`DataError::InconsistentDataset`] only for sizes that cannot be held in memory.
pub fn generate_shapes(
    seed: u64,
    train: usize,
    test: usize,
    progress: &(dyn Fn(LoadProgress) + Sync),
) -> Result<Splits, DataError> {
    let total = train.saturating_add(test);
    let done = AtomicUsize::new(0);
    progress(LoadProgress { done: 0, total });
    let names: Vec<String> = SHAPE_NAMES.iter().map(|&s| s.to_owned()).collect();
    let split = |count: usize, stream: u64| -> Result<Dataset, DataError> {
        let bytes = count.checked_mul(IMAGE_BYTES).ok_or_else(|| DataError::InconsistentDataset {
            reason: format!("{count} generated shape pictures do not fit in memory"),
        })?;
        let mut images = vec![0u8; bytes];
        images.par_chunks_mut(IMAGE_BYTES).enumerate().for_each(|(i, image)| {
            draw(seed, stream, i, image);
            let now = done.fetch_add(1, Ordering::Relaxed) + 1;
            if now.is_multiple_of(PROGRESS_EVERY) {
                progress(LoadProgress { done: now, total });
            }
        });
        let labels = (0..count).map(|i| label_of(i) as u8).collect();
        Dataset::with_channels(images, labels, 3, SHAPES_SIDE, SHAPES_SIDE, names.clone())
    };
    let (train_set, test_set) = (split(train, 0)?, split(test, 1)?);
    progress(LoadProgress { done: total, total });
    let source = format!("generated shapes (seed {seed})");
    let notes = vec![format!(
        "{} training and {} test pictures of {} shapes ({}): the class is the shape; \
         its colour, size, place and rotation and the background are random",
        sep(&train),
        sep(&test),
        SHAPE_NAMES.len(),
        SHAPE_NAMES.join(", ")
    )];
    Splits::new(train_set, test_set, source, notes)
}

/// The class of picture `i` of a split.
fn label_of(i: usize) -> usize {
    i % SHAPE_NAMES.len()
}

/// A uniform number in `[lo, hi)`, written out so that the set does not change with rand's
/// versions.
fn uniform(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
    lo + (hi - lo) * unit
}

/// A colour from hue (turns, 0–1), saturation and value, as RGB in `[0, 1]`.
fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(1.0) * 6.0;
    let sector = h.floor();
    let f = h - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector as u8 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// How the background is painted.
#[derive(Clone, Copy)]
enum Texture {
    /// One colour.
    Flat,
    /// A linear blend into a second dark colour.
    Gradient { dir: [f32; 2], other: [f32; 3] },
    /// Soft stripes of a second dark colour.
    Stripes { dir: [f32; 2], period: f32, phase: f32, other: [f32; 3] },
    /// A coarse checkerboard of a second dark colour.
    Checks { cell: f32, other: [f32; 3] },
}

/// Signed distance in pixels from `p` (relative to the shape's centre, unrotated) to the edge
/// of shape `class` of size `r`: negative inside.
fn distance(class: usize, [x, y]: [f32; 2], r: f32) -> f32 {
    let boxed = |x: f32, y: f32, a: f32, b: f32| {
        let (qx, qy) = (x.abs() - a, y.abs() - b);
        qx.max(0.0).hypot(qy.max(0.0)) + qx.max(qy).min(0.0)
    };
    match class {
        0 => x.hypot(y) - r,
        1 => boxed(x, y, 0.8 * r, 0.8 * r),
        2 => {
            // Inigo Quilez's equilateral triangle, half-side h, centred on its centroid.
            let h = 0.95 * r;
            let k = 3f32.sqrt();
            let (mut px, mut py) = (x.abs() - h, y + h / k);
            if px + k * py > 0.0 {
                (px, py) = ((px - k * py) / 2.0, (-k * px - py) / 2.0);
            }
            px -= px.clamp(-2.0 * h, 0.0);
            -px.hypot(py) * py.signum()
        }
        3 => boxed(x, y, 0.95 * r, 0.3 * r).min(boxed(x, y, 0.3 * r, 0.95 * r)),
        _ => (x.hypot(y) - 0.72 * r).abs() - 0.28 * r,
    }
}

/// Draws picture `index` of split `stream` into `image` (C×H×W bytes).
fn draw(seed: u64, stream: u64, index: usize, image: &mut [u8]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // One ChaCha stream per picture: 2^48 pictures per split is more than memory holds.
    rng.set_stream((stream << 48) | (index as u64 & ((1 << 48) - 1)));
    let class = label_of(index);

    let bg_hue = uniform(&mut rng, 0.0, 1.0);
    let background = hsv(bg_hue, uniform(&mut rng, 0.1, 0.8), uniform(&mut rng, 0.05, 0.35));
    let second =
        hsv(bg_hue + uniform(&mut rng, -0.15, 0.15), uniform(&mut rng, 0.1, 0.8), uniform(&mut rng, 0.05, 0.3));
    let angle = uniform(&mut rng, 0.0, TAU);
    let dir = [angle.cos(), angle.sin()];
    let texture = match rng.next_u32() % 4 {
        0 => Texture::Flat,
        1 => Texture::Gradient { dir, other: second },
        2 => Texture::Stripes {
            dir,
            period: uniform(&mut rng, 3.0, 9.0),
            phase: uniform(&mut rng, 0.0, TAU),
            other: second,
        },
        _ => Texture::Checks { cell: uniform(&mut rng, 3.0, 8.0), other: second },
    };
    let noise = uniform(&mut rng, 0.0, 0.04);

    let colour = hsv(uniform(&mut rng, 0.0, 1.0), uniform(&mut rng, 0.4, 1.0), uniform(&mut rng, 0.65, 1.0));
    let r = uniform(&mut rng, 8.0, 14.0);
    let side = SHAPES_SIDE as f32;
    let (cx, cy) = (uniform(&mut rng, 0.9 * r, side - 0.9 * r), uniform(&mut rng, 0.9 * r, side - 0.9 * r));
    let turn = uniform(&mut rng, 0.0, TAU);
    let (sin, cos) = turn.sin_cos();
    // Light from one side, so the shape is not one flat colour either.
    let light_angle = uniform(&mut rng, 0.0, TAU);
    let light = [light_angle.cos(), light_angle.sin()];

    let plane = SHAPES_SIDE * SHAPES_SIDE;
    for row in 0..SHAPES_SIDE {
        for col in 0..SHAPES_SIDE {
            let (x, y) = (col as f32 + 0.5, row as f32 + 0.5);
            let back = match texture {
                Texture::Flat => background,
                Texture::Gradient { dir, other } => {
                    let t = ((x - side / 2.0) * dir[0] + (y - side / 2.0) * dir[1]) / side + 0.5;
                    mix(background, other, t.clamp(0.0, 1.0))
                }
                Texture::Stripes { dir, period, phase, other } => {
                    let t = 0.5 + 0.5 * ((x * dir[0] + y * dir[1]) * TAU / period + phase).sin();
                    mix(background, other, t)
                }
                Texture::Checks { cell, other } => {
                    let odd = ((x / cell).floor() + (y / cell).floor()).rem_euclid(2.0) >= 1.0;
                    if odd { other } else { background }
                }
            };
            let (dx, dy) = (x - cx, y - cy);
            let local = [cos * dx + sin * dy, -sin * dx + cos * dy];
            // One pixel of soft edge: the coverage of the pixel by the shape, near enough.
            let cover = (0.5 - distance(class, local, r)).clamp(0.0, 1.0);
            let shade = 0.8 + 0.2 * ((dx * light[0] + dy * light[1]) / r).clamp(-1.0, 1.0);
            let front = colour.map(|c| c * shade);
            let pixel = mix(back, front, cover);
            let grain = noise * (uniform(&mut rng, -1.0, 1.0) + uniform(&mut rng, -1.0, 1.0)) / 2.0;
            for (channel, value) in pixel.iter().enumerate() {
                image[channel * plane + row * SHAPES_SIDE + col] = to_byte(value + grain);
            }
        }
    }
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t)
}

fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use std::f32::consts::PI;

    use super::{distance, hsv};

    #[test]
    fn hsv_primaries_are_pure() {
        assert_eq!(hsv(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(hsv(1.0 / 3.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
        assert_eq!(hsv(2.0 / 3.0, 1.0, 1.0), [0.0, 0.0, 1.0]);
        assert_eq!(hsv(0.5, 0.0, 0.5), [0.5, 0.5, 0.5]);
    }

    #[test]
    fn every_shape_has_its_centre_inside_except_the_ring() {
        for class in 0..4 {
            assert!(distance(class, [0.0, 0.0], 8.0) < -1.0, "class {class}");
        }
        assert!(distance(4, [0.0, 0.0], 8.0) > 1.0, "a ring has a hole");
        // A point well outside the size is outside every shape.
        for class in 0..5 {
            let (s, c) = (PI / 5.0).sin_cos();
            assert!(distance(class, [12.0 * c, 12.0 * s], 8.0) > 1.0, "class {class}");
        }
    }
}
