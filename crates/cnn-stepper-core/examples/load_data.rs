//! Loads a `--data` folder as `train` would and prints what it holds and how long it took: for
//! measuring image-folder loading (50,000 small PNGs must load in under 15 s on 2 cores).
//!
//! `cargo run --release -p cnn-stepper-core --example load_data -- DIR [--image-size N] [--grayscale]`
//!
//! `--make N DIR` first writes N colour 32×32 PNGs into ten class folders of DIR (smooth
//! colour fields with noise, a few KB each, like CIFAR's photos saved as PNG), to measure on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A measuring tool: a bad argument may panic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cnn_stepper_core::data::{self, DataSource, LoadOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut options = LoadOptions::default();
    let mut make: Option<usize> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--image-size" => options.image_size = Some(args.next().expect("--image-size N").parse().unwrap()),
            "--grayscale" => options.grayscale = true,
            "--make" => make = Some(args.next().expect("--make N DIR").parse().unwrap()),
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let dir = dir.expect("usage: load_data DIR [--image-size N] [--grayscale] | --make N DIR");
    if let Some(n) = make {
        let t = Instant::now();
        write_pictures(&dir, n);
        println!("wrote {n} PNGs to {} in {:.2} s", dir.display(), t.elapsed().as_secs_f64());
        return;
    }
    let calls = AtomicUsize::new(0);
    let t = Instant::now();
    let source = DataSource::Folder(dir.clone());
    let kind = data::kind_of(&dir).map(|k| k.describe()).unwrap_or("?");
    let splits = data::load(&source, &options, &|_| {
        calls.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let secs = t.elapsed().as_secs_f64();
    let (c, h, w) = splits.input_shape();
    let names = splits.class_names();
    println!("{}: {kind}", splits.source);
    println!(
        "{} training + {} test images of {c}×{h}×{w}, {} classes ({}{})",
        splits.train.len(),
        splits.test.len(),
        names.len(),
        names.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        if names.len() > 5 { ", …" } else { "" }
    );
    for note in &splits.notes {
        println!("note: {note}");
    }
    let mb = (splits.train.images.len() + splits.test.images.len()) as f64 / 1e6;
    println!(
        "loaded in {secs:.2} s ({:.0} images/s), {mb:.1} MB of pixels, {} progress calls",
        (splits.train.len() + splits.test.len()) as f64 / secs,
        calls.load(Ordering::Relaxed)
    );
}

/// N colour 32×32 PNGs in `dir/class0` … `dir/class9`.
fn write_pictures(dir: &Path, n: usize) {
    for k in 0..10 {
        std::fs::create_dir_all(dir.join(format!("class{k}"))).unwrap();
    }
    (0..n).into_par_iter().for_each(|i| {
        let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
        let base: [f32; 3] = [rng.random(), rng.random(), rng.random()];
        let slope: [f32; 3] = [rng.random_range(-4.0..4.0), rng.random_range(-4.0..4.0), rng.random_range(-4.0..4.0)];
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            let mut px = [0u8; 3];
            for c in 0..3 {
                let v = base[c] * 255.0 + slope[c] * (x as f32 - y as f32) + rng.random_range(-12.0..12.0);
                px[c] = v.clamp(0.0, 255.0) as u8;
            }
            image::Rgb(px)
        });
        img.save(dir.join(format!("class{}/{i:06}.png", i % 10))).unwrap();
    });
}
