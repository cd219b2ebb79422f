//! The drawing canvas and its MNIST-style preparation: strokes are soft and clipped, and a drawn
//! digit comes out scaled into the 20×20 box and centred by mass, the way MNIST's were — which the
//! round trip of real MNIST digits through the canvas confirms.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cnn_stepper_core::data::draw::{Canvas, DEFAULT_SIDE, INK_BOX};
use cnn_stepper_core::data::{MNIST_SIDE, embedded};
use proptest::prelude::*;

const N: usize = MNIST_SIDE;

/// Centre of mass (column, row) in pixel indices.
fn centre_of_mass(img: &[f32]) -> (f32, f32) {
    let (mut s, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (i, &v) in img.iter().enumerate() {
        s += v;
        sx += v * (i % N) as f32;
        sy += v * (i / N) as f32;
    }
    (sx / s, sy / s)
}

/// (width, height) of the smallest box holding every pixel above `threshold`.
fn ink_box(img: &[f32], threshold: f32) -> (usize, usize) {
    let inked: Vec<(usize, usize)> =
        img.iter().enumerate().filter(|(_, v)| **v > threshold).map(|(i, _)| (i % N, i / N)).collect();
    let x0 = inked.iter().map(|p| p.0).min().unwrap();
    let x1 = inked.iter().map(|p| p.0).max().unwrap();
    let y0 = inked.iter().map(|p| p.1).min().unwrap();
    let y1 = inked.iter().map(|p| p.1).max().unwrap();
    (x1 - x0 + 1, y1 - y0 + 1)
}

fn in_range(img: &[f32]) -> bool {
    img.iter().all(|v| (0.0..=1.0).contains(v))
}

/// A 7 drawn small in the top-left corner.
fn small_seven() -> Canvas {
    let mut c = Canvas::default();
    assert!(c.stroke([0.08, 0.10], [0.30, 0.10]));
    assert!(c.stroke([0.30, 0.10], [0.16, 0.38]));
    c
}

#[test]
fn an_empty_canvas_has_no_digit() {
    let mut c = Canvas::default();
    assert!(c.is_empty());
    assert_eq!(c.to_mnist(), None);
    c.stroke([0.5, 0.5], [0.6, 0.6]);
    assert!(!c.is_empty());
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.to_mnist(), None, "cleared is empty again");
}

#[test]
fn a_small_off_centre_digit_is_scaled_into_the_box_and_centred_by_mass() {
    let img = small_seven().to_mnist().unwrap();
    assert_eq!(img.len(), N * N);
    let (cx, cy) = centre_of_mass(&img);
    assert!((cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5, "centre of mass ({cx:.2}, {cy:.2})");
    let (w, h) = ink_box(&img, 0.0);
    assert!(w <= INK_BOX && h <= INK_BOX, "ink box {w}×{h}");
    assert!(w.max(h) >= INK_BOX - 1, "the larger side fills the box: {w}×{h}");
}

#[test]
fn a_tall_thin_one_keeps_its_aspect_ratio() {
    let mut c = Canvas::default();
    c.stroke([0.5, 0.2], [0.5, 0.8]);
    let img = c.to_mnist().unwrap();
    let (w, h) = ink_box(&img, 0.0);
    assert!((INK_BOX - 1..=INK_BOX).contains(&h), "height {h}");
    // The canvas ink is about 24 px wide and 192 px tall: 2.5 px wide once 20 tall.
    assert!((2..=4).contains(&w), "a 1 stays thin: width {w}");

    let mut c = Canvas::default();
    c.stroke([0.1, 0.5], [0.9, 0.5]);
    let (w, h) = ink_box(&c.to_mnist().unwrap(), 0.0);
    assert!(w >= INK_BOX - 1 && (2..=4).contains(&h), "a dash stays flat: {w}×{h}");
}

#[test]
fn strokes_have_soft_edges_and_values_stay_in_range() {
    let c = small_seven();
    assert!(c.pixels().iter().all(|v| (0.0..=1.0).contains(v)));
    let canvas_greys = c.pixels().iter().filter(|v| **v > 0.05 && **v < 0.95).count();
    assert!(canvas_greys > 100, "anti-aliased on the canvas: {canvas_greys} grey pixels");

    let img = c.to_mnist().unwrap();
    assert!(in_range(&img));
    let full = img.iter().filter(|v| **v >= 0.95).count();
    let greys = img.iter().filter(|v| **v > 0.05 && **v < 0.95).count();
    assert!(full >= 10, "the stroke's core is full ink: {full} pixels");
    assert!(greys >= 10, "the stroke's edge is grey, like MNIST's: {greys} pixels");
}

#[test]
fn ink_combines_by_maximum_so_joints_do_not_darken() {
    let mut once = Canvas::default();
    once.stroke([0.2, 0.5], [0.8, 0.5]);
    let mut twice = Canvas::default();
    twice.stroke([0.2, 0.5], [0.5, 0.5]);
    twice.stroke([0.5, 0.5], [0.8, 0.5]);
    twice.stroke([0.2, 0.5], [0.8, 0.5]);
    assert_eq!(once, twice);
    assert!(!twice.stroke([0.3, 0.5], [0.7, 0.5]), "redrawing a line changes nothing");
}

#[test]
fn strokes_outside_the_canvas_are_clipped() {
    let mut c = Canvas::default();
    assert!(!c.stroke([-1.0, -1.0], [-0.5, -0.5]), "entirely outside: nothing drawn");
    assert!(!c.stroke([1.5, 0.2], [3.0, 0.9]));
    assert!(!c.stroke([f32::NAN, 0.5], [0.5, 0.5]));
    assert!(!c.stroke([f32::INFINITY, 0.5], [0.5, f32::NEG_INFINITY]));
    assert!(c.is_empty());
    assert!(c.stroke([-1e30, 0.5], [1e30, 0.5]), "a huge line through the middle");
    assert!(c.stroke([-5.0, 0.5], [5.0, 0.5]), "crosses the canvas: the inside part is drawn");
    let side = c.side();
    let row = &c.pixels()[side / 2 * side..(side / 2 + 1) * side];
    assert!(row.iter().all(|v| *v == 1.0), "the line spans the whole width");
    let img = c.to_mnist().unwrap();
    assert!(in_range(&img));
}

#[test]
fn pixels_of_the_wrong_length_are_refused() {
    assert!(Canvas::from_pixels(10, vec![0.0; 99]).is_none());
    assert!(Canvas::from_pixels(0, vec![]).is_none());
    let c = Canvas::from_pixels(2, vec![-1.0, 2.0, f32::NAN, 0.5]).unwrap();
    assert_eq!(c.pixels(), &[0.0, 1.0, 0.0, 0.5]);
}

/// An MNIST digit blown up tenfold onto the canvas and prepared again must come back as itself:
/// its ink already fills the 20×20 box and sits centred by mass, so a preparation that matches
/// MNIST's has nothing left to change.
#[test]
fn real_mnist_digits_survive_the_round_trip_through_the_canvas() {
    let mnist = embedded().unwrap();
    let factor = DEFAULT_SIDE / N;
    let mut worst = 0.0_f32;
    let mut total = 0.0_f32;
    let count = 300;
    for i in 0..count {
        let digit: Vec<f32> = mnist.test.image(i).iter().map(|&b| f32::from(b) / 255.0).collect();
        let mut big = vec![0.0; DEFAULT_SIDE * DEFAULT_SIDE];
        for (p, v) in big.iter_mut().enumerate() {
            let (x, y) = (p % DEFAULT_SIDE / factor, p / DEFAULT_SIDE / factor);
            *v = digit[y * N + x];
        }
        let back = Canvas::from_pixels(DEFAULT_SIDE, big).unwrap().to_mnist().unwrap();
        let mad = back.iter().zip(&digit).map(|(a, b)| (a - b).abs()).sum::<f32>() / (N * N) as f32;
        worst = worst.max(mad);
        total += mad;
    }
    // Every one comes back exactly (up to float rounding): the same box, the same centre.
    let mean = total / count as f32;
    assert!(worst < 1e-4, "worst digit's mean abs difference {worst} (mean {mean})");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_strokes_never_panic_and_give_a_valid_digit(
        side in prop_oneof![Just(DEFAULT_SIDE), 1usize..120],
        radius in 0.0f32..0.2,
        strokes in proptest::collection::vec(((-2.0f32..3.0, -2.0f32..3.0), (-2.0f32..3.0, -2.0f32..3.0)), 0..8),
    ) {
        let mut c = Canvas::new(side).with_pen_radius(radius);
        for ((ax, ay), (bx, by)) in strokes {
            c.stroke([ax, ay], [bx, by]);
        }
        match c.to_mnist() {
            None => prop_assert!(c.is_empty()),
            Some(img) => {
                prop_assert!(!c.is_empty());
                prop_assert_eq!(img.len(), N * N);
                prop_assert!(in_range(&img));
                prop_assert!(img.iter().any(|v| *v > 0.0), "ink survives the preparation");
                let (w, h) = ink_box(&img, 0.0);
                prop_assert!(w <= INK_BOX && h <= INK_BOX);
            }
        }
    }
}
