//! The built-in colour set of shapes: seeded, every class in both splits, colour independent
//! of the class, named by the word `shapes`, and trainable by the named networks.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use cnn_stepper_core::data::{
    self, DataSource, Dataset, LoadOptions, LoadProgress, SHAPE_NAMES, SHAPES_TEST, SHAPES_TRAIN, Splits,
    generate_shapes,
};
use cnn_stepper_core::engine::model::Shape;
use cnn_stepper_core::engine::{ConvEngine, Preset};
use cnn_stepper_core::trainer::Session;

fn shapes(seed: u64, train: usize, test: usize) -> Splits {
    generate_shapes(seed, train, test, &|_| {}).unwrap()
}

const PLANE: usize = 32 * 32;

/// The hue (0–1) of the brightest pixel of image `i`: a pixel of the shape, which is always
/// brighter than the background.
fn shape_hue(set: &Dataset, i: usize) -> f32 {
    let image = set.image(i);
    let brightest = (0..PLANE).max_by_key(|&p| (0..3).map(|c| image[c * PLANE + p]).max()).unwrap();
    let [r, g, b] = [0, 1, 2].map(|c| f32::from(image[c * PLANE + brightest]) / 255.0);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let d = (max - min).max(1e-6);
    let h = if max == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    h / 6.0
}

#[test]
fn the_word_shapes_names_the_generated_set_with_its_default_sizes() {
    assert_eq!(DataSource::parse("shapes"), DataSource::Shapes);
    assert_eq!(DataSource::parse(" Shapes "), DataSource::Shapes);
    assert_eq!(DataSource::Shapes.to_string(), "shapes");
    assert!(DataSource::BUILT_IN.contains(&"shapes"));
    let s = data::load(&DataSource::Shapes, &LoadOptions::default(), &|_| {}).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (SHAPES_TRAIN, SHAPES_TEST));
    assert_eq!((SHAPES_TRAIN, SHAPES_TEST), (10_000, 2_000));
    assert_eq!(s.input_shape(), (3, 32, 32));
    assert_eq!(s.class_names(), SHAPE_NAMES.map(String::from));
    assert!(s.source.contains("shapes") && s.source.contains("seed 0"), "{}", s.source);
    assert_eq!(s.notes.len(), 1);
    assert!(s.notes[0].contains("10,000 training and 2,000 test"), "{}", s.notes[0]);
}

#[test]
fn a_folder_called_shapes_is_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("shapes");
    std::fs::create_dir(&folder).unwrap();
    assert_eq!(DataSource::parse(&folder.to_string_lossy()), DataSource::Folder(folder));
}

#[test]
fn the_load_options_seed_draws_the_set() {
    let load = |seed| data::load(&DataSource::Shapes, &LoadOptions { seed, ..LoadOptions::default() }, &|_| {});
    let (a, b) = (load(3).unwrap(), load(3).unwrap());
    assert_eq!(a.train.images, b.train.images);
    assert_ne!(a.test.images, load(4).unwrap().test.images);
}

#[test]
fn the_same_seed_draws_the_same_pictures() {
    let (a, b) = (shapes(7, 60, 20), shapes(7, 60, 20));
    assert_eq!(a, b);
    // A picture does not depend on how many others are drawn with it.
    let more = shapes(7, 90, 5);
    assert_eq!(a.train.images[..], more.train.images[..a.train.images.len()]);
    assert_eq!(a.test.image(3), more.test.image(3));
}

#[test]
fn another_seed_draws_other_pictures() {
    let (a, b) = (shapes(7, 30, 10), shapes(8, 30, 10));
    for i in 0..30 {
        assert_ne!(a.train.image(i), b.train.image(i), "image {i}");
    }
}

#[test]
fn no_two_pictures_are_the_same_within_or_across_the_splits() {
    let s = shapes(0, 200, 100);
    let mut all: Vec<&[u8]> = (0..200).map(|i| s.train.image(i)).chain((0..100).map(|i| s.test.image(i))).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 300);
}

#[test]
fn every_class_is_in_both_splits_equally() {
    let s = shapes(1, 100, 25);
    for (set, per_class) in [(&s.train, 20), (&s.test, 5)] {
        for class in 0..SHAPE_NAMES.len() {
            let n = set.labels.iter().filter(|&&l| usize::from(l) == class).count();
            assert_eq!(n, per_class, "{} in a split of {}", SHAPE_NAMES[class], set.len());
        }
    }
}

#[test]
fn pictures_are_colour_thirty_two_by_thirty_two_and_use_every_channel() {
    let s = shapes(2, 20, 5);
    assert_eq!(s.train.input_shape(), (3, 32, 32));
    assert_eq!(s.train.images.len(), 20 * 3 * PLANE);
    // Colour for real: the channels of a picture differ.
    for i in 0..20 {
        let image = s.train.image(i);
        assert!(image[..PLANE] != image[PLANE..2 * PLANE] || image[PLANE..2 * PLANE] != image[2 * PLANE..], "{i}");
    }
}

#[test]
fn the_shapes_colour_is_spread_over_the_hue_circle_in_every_class() {
    let s = shapes(5, 1500, 5);
    let classes = SHAPE_NAMES.len();
    // Per class: how many shapes fall in each sixth of the hue circle, and the mean direction
    // of their hues (1 = all one hue, 0 = spread evenly).
    let mut bins = vec![[0usize; 6]; classes];
    let mut sums = vec![(0f32, 0f32, 0usize); classes];
    for i in 0..s.train.len() {
        let (class, hue) = (s.train.label(i), shape_hue(&s.train, i));
        bins[class][((hue * 6.0) as usize).min(5)] += 1;
        let angle = hue * std::f32::consts::TAU;
        sums[class].0 += angle.cos();
        sums[class].1 += angle.sin();
        sums[class].2 += 1;
    }
    for class in 0..classes {
        let (x, y, n) = sums[class];
        let concentration = x.hypot(y) / n as f32;
        assert!(concentration < 0.15, "{}: hues concentrated ({concentration})", SHAPE_NAMES[class]);
        // 300 shapes per class: 50 expected per sixth.
        assert!(bins[class].iter().all(|&b| b >= 25), "{}: {:?}", SHAPE_NAMES[class], bins[class]);
    }
}

#[test]
fn a_shapes_size_and_place_vary() {
    // The centre of the bright pixels moves and their count changes from picture to picture.
    let s = shapes(6, 100, 5);
    let mut centres = Vec::new();
    let mut areas = Vec::new();
    for i in 0..100 {
        let image = s.train.image(i);
        let bright: Vec<usize> =
            (0..PLANE).filter(|&p| (0..3).map(|c| image[c * PLANE + p]).max().unwrap() > 120).collect();
        let (sx, sy) = bright.iter().fold((0, 0), |(x, y), &p| (x + p % 32, y + p / 32));
        let n = bright.len().max(1);
        centres.push((sx / n, sy / n));
        areas.push(bright.len());
    }
    let (min_x, max_x) = (centres.iter().map(|c| c.0).min().unwrap(), centres.iter().map(|c| c.0).max().unwrap());
    let (min_y, max_y) = (centres.iter().map(|c| c.1).min().unwrap(), centres.iter().map(|c| c.1).max().unwrap());
    assert!(max_x - min_x >= 8 && max_y - min_y >= 8, "centres {centres:?}");
    let (small, large) = (areas.iter().min().unwrap(), areas.iter().max().unwrap());
    assert!(*large >= 3 * *small, "areas {areas:?}");
}

#[test]
fn progress_reaches_the_total_from_the_drawing_threads() {
    let seen = Mutex::new(Vec::new());
    let record = |p: LoadProgress| seen.lock().unwrap().push(p);
    generate_shapes(0, 1200, 300, &record).unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&LoadProgress { done: 0, total: 1500 }));
    assert_eq!(seen.last(), Some(&LoadProgress { done: 1500, total: 1500 }));
    assert!(seen.len() >= 4, "a report every few hundred pictures: {seen:?}");
}

#[test]
fn post_and_lenet5_train_a_few_steps_on_shapes() {
    let data = Arc::new(shapes(0, 96, 20));
    for model in ["post", "lenet5"] {
        let mut s = Session::new(data.clone(), 1, Preset::Recommended, model, ConvEngine::Fast).unwrap();
        assert_eq!(s.model().plan.input, Shape::Maps { c: 3, h: 32, w: 32 }, "{model}");
        for _ in 0..3 {
            let point = s.step_batch(&mut |_, _| {}).unwrap();
            assert!(point.loss.is_finite() && point.loss > 0.0, "{model}: {point:?}");
        }
        assert_eq!(s.step(), 3);
        let r = s.evaluate(0, &mut |_, _| {}).unwrap();
        assert_eq!((r.count, r.classes), (20, 5), "{model}");
    }
}

#[test]
fn lenet5_learns_the_shapes_well_above_chance() {
    let data = Arc::new(shapes(0, 4800, 400));
    let mut s = Session::new(data, 0, Preset::Recommended, "lenet5", ConvEngine::Fast).unwrap();
    for _ in 0..300 {
        s.step_batch(&mut |_, _| {}).unwrap();
    }
    let accuracy = s.evaluate(0, &mut |_, _| {}).unwrap().accuracy();
    // Chance is 20%.
    assert!(accuracy > 0.5, "test accuracy {accuracy} after 300 steps");
}
