//! Image folders (torchvision's `ImageFolder` layout): both layouts, the held-out share,
//! colour, resizing, skipped files, every error, damaged pictures, and training on the result.
//! Every picture is written by the test with the `image` crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use clap::Parser;
use cnn_stepper_core::cli::args::Cli;
use cnn_stepper_core::cli::{self, Console, StopFlag, TrainOptions};
use cnn_stepper_core::data::{
    self, DataError, DataKind, DataSource, Dataset, LoadOptions, LoadProgress, Splits, load_folder, load_folder_test,
};
use cnn_stepper_core::engine::{ConvEngine, Preset};
use cnn_stepper_core::trainer::Session;
use image::{ImageFormat, Rgba, RgbaImage};
use proptest::prelude::*;

/// A `w × h` picture of one colour.
fn plain(w: u32, h: u32, rgba: [u8; 4]) -> RgbaImage {
    RgbaImage::from_pixel(w, h, Rgba(rgba))
}

/// Writes `img` at `path` in the format its extension names (JPEG and BMP without alpha).
fn write(path: &Path, img: &RgbaImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = ImageFormat::from_path(path).unwrap();
    match format {
        ImageFormat::Jpeg | ImageFormat::Bmp => {
            image::DynamicImage::ImageRgba8(img.clone()).to_rgb8().save_with_format(path, format).unwrap();
        }
        _ => img.save_with_format(path, format).unwrap(),
    }
}

/// The bytes of `img` in `format`.
fn encoded(img: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg | ImageFormat::Bmp => {
            image::DynamicImage::ImageRgba8(img.clone()).to_rgb8().write_to(&mut out, format).unwrap();
        }
        _ => img.write_to(&mut out, format).unwrap(),
    }
    out.into_inner()
}

/// A grey level that tells picture `i` of class `class` apart from every other of a test
/// (up to 8 classes of 30 pictures).
fn level(class: usize, i: usize) -> u8 {
    (class * 30 + i) as u8
}

/// `counts[k]` grey 4×4 PNGs in `root/<names[k]>/`, picture `i` of level [`level`]`(k, i)`.
fn grey_classes(root: &Path, names: &[&str], counts: &[usize]) {
    for (k, (name, &n)) in names.iter().zip(counts).enumerate() {
        for i in 0..n {
            let v = level(k, i);
            write(&root.join(name).join(format!("{i:03}.png")), &plain(4, 4, [v, v, v, 255]));
        }
    }
}

fn options(size: usize) -> LoadOptions {
    LoadOptions { image_size: Some(size), ..LoadOptions::default() }
}

fn load(dir: &Path, size: usize) -> Result<Splits, DataError> {
    data::load(&DataSource::Folder(dir.to_path_buf()), &options(size), &|_| {})
}

/// The first byte of each image (the picture's level, for plain pictures).
fn levels(set: &Dataset) -> Vec<u8> {
    (0..set.len()).map(|i| set.image(i)[0]).collect()
}

#[test]
fn train_and_test_folders_are_read_with_class_names_sorted_as_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    // Python's sorted(): upper case before lower case, by code point.
    let names = ["b", "a", "C"];
    grey_classes(&dir.path().join("train"), &names, &[3, 2, 4]);
    grey_classes(&dir.path().join("test"), &names, &[1, 2, 1]);
    std::fs::write(dir.path().join("README.txt"), "my photos").unwrap();

    assert_eq!(data::kind_of(dir.path()).unwrap(), DataKind::ImageFolder);
    let splits = load(dir.path(), 8).unwrap();
    assert_eq!(splits.class_names(), ["C", "a", "b"]);
    assert_eq!((splits.train.len(), splits.test.len()), (9, 4));
    assert_eq!(splits.input_shape(), (1, 8, 8));
    assert_eq!(splits.source, dir.path().display().to_string());
    // Class order, then name order within a class: C (written third) first.
    assert_eq!(splits.train.labels, [0, 0, 0, 0, 1, 1, 2, 2, 2]);
    assert_eq!(levels(&splits.train)[..4], [level(2, 0), level(2, 1), level(2, 2), level(2, 3)]);
    assert_eq!(splits.test.labels, [0, 1, 1, 2]);
    assert!(!splits.notes.iter().any(|n| n.contains("held out")), "{:?}", splits.notes);
}

#[test]
fn val_and_valid_are_test_folders_in_any_case_and_test_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(&dir.path().join("Train"), &["x", "y"], &[2, 2]);
    grey_classes(&dir.path().join("VAL"), &["x", "y"], &[1, 1]);
    let splits = load(dir.path(), 8).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (4, 2));

    grey_classes(&dir.path().join("test"), &["x", "y"], &[3, 3]);
    let splits = load(dir.path(), 8).unwrap();
    assert_eq!(splits.test.len(), 6, "test/ is preferred to VAL/");
    assert!(splits.notes.iter().any(|n| n.contains("test/") && n.contains("VAL/")), "{:?}", splits.notes);
}

#[test]
fn class_folders_alone_hold_out_a_fifth_of_each_class_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b", "c"], &[10, 15, 3]);
    assert_eq!(data::kind_of(dir.path()).unwrap(), DataKind::ImageFolder);
    let splits = load(dir.path(), 8).unwrap();
    // round(20%) of each class, at least one: 2 + 3 + 1.
    let per_class = |set: &Dataset, k: u8| set.labels.iter().filter(|&&l| l == k).count();
    assert_eq!([0, 1, 2].map(|k| per_class(&splits.test, k)), [2, 3, 1], "stratified");
    assert_eq!([0, 1, 2].map(|k| per_class(&splits.train, k)), [8, 12, 2]);
    assert!(
        splits.notes.contains(&"held out 20% of each class as the test split: 6 of 28 pictures, seed 0".to_owned()),
        "{:?}",
        splits.notes
    );
    let (train, test): (BTreeSet<u8>, BTreeSet<u8>) =
        (levels(&splits.train).into_iter().collect(), levels(&splits.test).into_iter().collect());
    assert!(train.is_disjoint(&test), "no picture is in both splits");
    assert_eq!(train.len() + test.len(), 28, "every picture is in one split");

    let again = load(dir.path(), 8).unwrap();
    assert_eq!(again, splits, "the same split every time (train, eval and the window agree)");
    let test_only = load_folder_test(dir.path(), &options(8), &|_| {}).unwrap().0;
    assert_eq!(test_only, splits.test, "eval's test split is training's");

    let seeded = |seed| {
        let o = LoadOptions { seed, ..options(8) };
        levels(&load_folder(dir.path(), &o, &|_| {}).unwrap().test).into_iter().collect::<BTreeSet<u8>>()
    };
    assert!((1..6).any(|seed| seeded(seed) != test), "another seed holds out other pictures");
}

#[test]
fn a_train_folder_without_a_test_folder_holds_out_a_share_too() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(&dir.path().join("train"), &["a", "b"], &[5, 5]);
    let splits = load(dir.path(), 8).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (8, 2));
    assert!(splits.notes[0].starts_with("held out 20% of each class"), "{:?}", splits.notes);
}

#[test]
fn colour_is_kept_when_any_picture_has_colour_and_grayscale_turns_it_grey() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b"], &[3, 3]);
    let grey = load(dir.path(), 8).unwrap();
    assert_eq!(grey.input_shape(), (1, 8, 8));
    assert!(grey.notes.iter().any(|n| n.contains("no picture has colour")), "{:?}", grey.notes);

    write(&dir.path().join("b/red.png"), &plain(4, 4, [200, 0, 0, 255]));
    let colour = load(dir.path(), 8).unwrap();
    assert_eq!(colour.input_shape(), (3, 8, 8));
    assert!(colour.notes.iter().any(|n| n.contains("in colour (3 channels)")), "{:?}", colour.notes);
    let all = colour.train.images.chunks(192).chain(colour.test.images.chunks(192));
    let red: Vec<&[u8]> = all.filter(|img| img[0] != img[64]).collect();
    assert_eq!(red.len(), 1, "only the red picture differs between channels");
    assert_eq!((red[0][0], red[0][64], red[0][128]), (200, 0, 0), "channel after channel");
    let grey_pictures =
        colour.train.images.chunks(192).filter(|img| img[..64] == img[64..128] && img[..64] == img[128..]).count();
    assert!(grey_pictures >= 4, "grey pictures have three equal channels");

    let o = LoadOptions { grayscale: true, ..options(8) };
    let forced = load_folder(dir.path(), &o, &|_| {}).unwrap();
    assert_eq!(forced.input_shape(), (1, 8, 8));
    assert!(forced.notes.iter().any(|n| n.contains("turned grey as asked")), "{:?}", forced.notes);
    // ITU-R 601: 0.299 × 200 = 59.8.
    let all = forced.train.images.chunks(64).chain(forced.test.images.chunks(64));
    assert_eq!(all.filter(|img| img[0] == 60).count(), 1, "the red picture is grey level 60");
}

#[test]
fn alpha_is_composited_on_black() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("train/a/clear.png"), &plain(4, 4, [255, 255, 255, 0]));
    write(&dir.path().join("train/a/half.png"), &plain(4, 4, [0, 255, 0, 128]));
    write(&dir.path().join("train/b/solid.png"), &plain(4, 4, [255, 255, 255, 255]));
    for class in ["a", "b"] {
        write(&dir.path().join(format!("test/{class}/t.png")), &plain(4, 4, [9, 9, 9, 255]));
    }
    let splits = load(dir.path(), 8).unwrap();
    assert_eq!(splits.input_shape(), (3, 8, 8));
    let image = |i: usize| splits.train.image(i);
    assert!(image(0).iter().all(|&v| v == 0), "a transparent white picture is black");
    assert_eq!((image(1)[0], image(1)[64], image(1)[128]), (0, 128, 0), "half-transparent green is dark green");
    assert!(image(2).iter().all(|&v| v == 255));
}

#[test]
fn pictures_of_any_size_are_resized_to_the_image_size() {
    let dir = tempfile::tempdir().unwrap();
    // Left half black, right half white, 40×20: stretched to a square, the halves stay.
    let img = RgbaImage::from_fn(40, 20, |x, _| if x < 20 { Rgba([0, 0, 0, 255]) } else { Rgba([255; 4]) });
    for class in ["a", "b"] {
        write(&dir.path().join(format!("train/{class}/wide.png")), &img);
        write(&dir.path().join(format!("test/{class}/small.png")), &plain(3, 5, [100, 100, 100, 255]));
    }
    let default = data::load(&DataSource::Folder(dir.path().into()), &LoadOptions::default(), &|_| {}).unwrap();
    assert_eq!(default.input_shape(), (1, data::DEFAULT_IMAGE_SIZE, data::DEFAULT_IMAGE_SIZE));
    assert_eq!(data::DEFAULT_IMAGE_SIZE, 32);

    let small = load(dir.path(), 8).unwrap();
    assert_eq!(small.input_shape(), (1, 8, 8));
    let row = &small.train.image(0)[..8];
    assert!(row[..3].iter().all(|&v| v < 30) && row[5..].iter().all(|&v| v > 225), "{row:?}");
    assert!(small.test.image(0).iter().all(|&v| v == 100), "an upscaled plain picture stays plain");

    let big = load(dir.path(), 256).unwrap();
    assert_eq!(big.input_shape(), (1, 256, 256));
    for size in [0, 7, 257, 10_000] {
        let err = load(dir.path(), size).unwrap_err();
        assert!(matches!(err, DataError::ImageSize { .. }), "{err}");
        assert!(err.to_string().contains(&format!("image size {size}")) && err.to_string().contains("8 to 256"));
    }
}

#[test]
fn png_jpeg_bmp_and_gif_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let colours = [("png", [250, 10, 10]), ("jpg", [10, 250, 10]), ("bmp", [10, 10, 250]), ("gif", [250, 250, 10])];
    for (ext, [r, g, b]) in colours {
        write(&dir.path().join(format!("train/a/{ext}.{ext}")), &plain(6, 6, [r, g, b, 255]));
        write(&dir.path().join(format!("train/b/{ext}.{}", ext.to_uppercase())), &plain(6, 6, [r, g, b, 255]));
    }
    write(&dir.path().join("train/a/photo.jpeg"), &plain(6, 6, [128, 128, 128, 255]));
    grey_classes(&dir.path().join("test"), &["a", "b"], &[1, 1]);
    let splits = load(dir.path(), 8).unwrap();
    assert_eq!(splits.train.len(), 9);
    // Sorted by name: bmp, gif, jpg, photo.jpeg, png.
    let expected = [[10, 10, 250], [250, 250, 10], [10, 250, 10], [128, 128, 128], [250, 10, 10]];
    for (i, want) in expected.iter().enumerate() {
        let img = splits.train.image(i);
        let got = [img[0], img[64], img[128]];
        let close = got.iter().zip(want).all(|(&a, &b)| a.abs_diff(b) <= 6);
        assert!(close, "picture {i}: {got:?} instead of {want:?} (JPEG is lossy, the others exact)");
    }
}

#[test]
fn files_that_are_not_pictures_are_skipped_and_counted_by_name() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b"], &[5, 5]);
    for junk in ["a/.DS_Store", "a/notes.txt", "b/Thumbs.db", "b/._000.png", "a/labels.csv"] {
        std::fs::write(dir.path().join(junk), b"not a picture").unwrap();
    }
    write(&dir.path().join("a/old/000.png"), &plain(4, 4, [1, 1, 1, 255]));
    let splits = load(dir.path(), 8).unwrap();
    assert_eq!(splits.train.len() + splits.test.len(), 10, "only the pictures directly in a class folder");
    let skipped = splits.notes.iter().find(|n| n.starts_with("skipped")).expect("a note on skipped files");
    assert!(skipped.starts_with("skipped 5 files that are not pictures"), "{skipped}");
    assert!(skipped.contains("a/.DS_Store") && skipped.contains("and 2 more"), "names a few: {skipped}");
    let ignored = splits.notes.iter().find(|n| n.starts_with("ignored")).expect("a note on nested folders");
    assert!(ignored.contains("1 folder") && ignored.contains("a/old"), "{ignored}");

    let split = tempfile::tempdir().unwrap();
    grey_classes(&split.path().join("train"), &["a", "b"], &[2, 2]);
    grey_classes(&split.path().join("test"), &["a", "b"], &[1, 1]);
    std::fs::write(split.path().join("test/b/desktop.ini"), b"[.ShellClassInfo]").unwrap();
    std::fs::write(split.path().join("LICENSE"), b"CC-BY").unwrap();
    let notes = load(split.path(), 8).unwrap().notes;
    assert!(
        notes.contains(
            &"skipped 1 file that is not a picture (PNG, JPEG, BMP, GIF) or is hidden: test/b/desktop.ini".to_owned()
        ),
        "named from the data folder, files beside train/ not counted: {notes:?}"
    );
}

#[test]
fn progress_reaches_the_total_about_a_hundred_times_at_most() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b", "c", "d", "e", "f", "g", "h"], &[30; 8]);
    let calls: Mutex<Vec<LoadProgress>> = Mutex::new(Vec::new());
    let splits = load_folder(dir.path(), &options(8), &|p| calls.lock().unwrap().push(p)).unwrap();
    let calls = calls.into_inner().unwrap();
    assert_eq!(splits.train.len() + splits.test.len(), 240);
    assert!(calls.iter().all(|p| p.total == 240 && p.done <= 240), "{calls:?}");
    assert!(calls.iter().any(|p| p.done == 240), "the last call says all are done");
    assert!(calls.len() > 10 && calls.len() <= 102, "{} calls", calls.len());
}

fn message(dir: &Path) -> String {
    load(dir, 8).unwrap_err().to_string()
}

#[test]
fn an_undecodable_picture_is_named_with_the_decoders_words() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b"], &[3, 3]);
    std::fs::write(dir.path().join("b/broken.jpg"), b"hello, I am not a JPEG").unwrap();
    let err = load(dir.path(), 8).unwrap_err();
    assert!(matches!(err, DataError::Picture { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&dir.path().join("b/broken.jpg").display().to_string()), "{text}");
    assert!(text.contains("not a PNG, JPEG, BMP or GIF"), "{text}");

    let mut cut = encoded(&plain(16, 16, [5, 6, 7, 255]), ImageFormat::Png);
    cut.truncate(cut.len() - 20);
    std::fs::write(dir.path().join("b/broken.jpg"), &cut).unwrap();
    let text = message(dir.path());
    assert!(text.starts_with(&format!("{}: cannot read the picture: ", dir.path().join("b/broken.jpg").display())));
}

#[test]
fn an_empty_class_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b"], &[3, 3]);
    std::fs::create_dir(dir.path().join("c")).unwrap();
    let err = load(dir.path(), 8).unwrap_err();
    assert!(matches!(err, DataError::EmptyClass { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!("{}: the class folder holds no pictures", dir.path().join("c").display()))
    );

    std::fs::write(dir.path().join("c/readme.txt"), "x").unwrap();
    let text = message(dir.path());
    assert!(text.contains("(only 1 file, not a picture)"), "{text}");
}

#[test]
fn a_single_class_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(&dir.path().join("train"), &["cats"], &[3]);
    grey_classes(&dir.path().join("test"), &["cats"], &[1]);
    let err = load(dir.path(), 8).unwrap_err();
    assert!(matches!(err, DataError::SingleClass { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&dir.path().join("train").display().to_string()) && text.contains("(cats)"), "{text}");
    assert!(text.contains("at least two"), "{text}");
}

#[test]
fn train_and_test_with_different_classes_list_the_differences() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(&dir.path().join("train"), &["cat", "dog", "frog"], &[2, 2, 2]);
    grey_classes(&dir.path().join("test"), &["bird", "cat", "dog"], &[1, 1, 1]);
    let err = load(dir.path(), 8).unwrap_err();
    let DataError::ClassMismatch(diff) = &err else { panic!("{err}") };
    assert_eq!(
        (diff.only_train.as_slice(), diff.only_test.as_slice()),
        (["frog".to_owned()].as_slice(), ["bird".to_owned()].as_slice())
    );
    let text = err.to_string();
    assert!(
        text.contains("only in the training folder: frog") && text.contains("only in the test folder: bird"),
        "{text}"
    );
    assert!(text.contains(&dir.path().join("test").display().to_string()), "{text}");
}

#[test]
fn no_class_folders_and_too_many_classes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Pictures straight in train/: no classes.
    write(&dir.path().join("train/000.png"), &plain(4, 4, [1, 1, 1, 255]));
    let err = load(dir.path(), 8).unwrap_err();
    assert!(matches!(err, DataError::NoClassFolders { .. }), "{err}");
    assert!(err.to_string().contains("one folder per class"), "{err}");

    let many = tempfile::tempdir().unwrap();
    let png = encoded(&plain(2, 2, [1, 1, 1, 255]), ImageFormat::Png);
    for k in 0..257 {
        let class = many.path().join(format!("c{k:03}"));
        std::fs::create_dir(&class).unwrap();
        std::fs::write(class.join("0.png"), &png).unwrap();
    }
    let err = load(many.path(), 8).unwrap_err();
    assert!(matches!(err, DataError::TooManyClasses { count: 257, max: 256, .. }), "{err}");
    std::fs::remove_dir_all(many.path().join("c256")).unwrap();
    std::fs::write(many.path().join("c000/1.png"), &png).unwrap();
    let splits = load(many.path(), 8).unwrap();
    assert_eq!(splits.class_names().len(), 256, "256 classes fit in byte labels");
    assert_eq!(splits.test.labels, [0], "only the class with two pictures can lend one");
}

#[test]
fn classes_of_one_picture_each_leave_nothing_to_hold_out() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b"], &[1, 1]);
    let err = load(dir.path(), 8).unwrap_err();
    assert!(matches!(err, DataError::NothingToHoldOut { .. }), "{err}");
    assert!(err.to_string().contains("test/ folder"), "{err}");
}

#[test]
fn a_folder_of_nothing_known_describes_the_image_folder_layout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(dir.path().join("docs/notes.txt"), "x").unwrap();
    let err = data::kind_of(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::UnknownDataKind { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("IDX") && text.contains("train/<class>/") && text.contains("one folder of pictures per class")
    );
}

#[cfg(unix)]
#[test]
fn a_named_pipe_among_the_pictures_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b"], &[3, 3]);
    let fifo = dir.path().join("a/pipe.png");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(status.success());
    let err = load(dir.path(), 8).unwrap_err();
    assert!(matches!(err, DataError::File(_)), "{err}");
    assert!(err.to_string().contains(&fifo.display().to_string()), "{err}");
}

/// Three good pictures per class, for the damaged-file properties.
fn base_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    grey_classes(dir.path(), &["a", "b"], &[3, 3]);
    dir
}

fn format_of(index: usize) -> (ImageFormat, &'static str) {
    [(ImageFormat::Png, "png"), (ImageFormat::Jpeg, "jpg"), (ImageFormat::Bmp, "bmp"), (ImageFormat::Gif, "gif")]
        [index % 4]
}

/// Loads a folder holding `bytes` as `b/bad.<ext>`: either the picture still decodes (a flipped
/// bit in pixel data, a JPEG cut at its end) and the set has the right shape, or the error
/// names the file.
fn check_damaged(bytes: &[u8], ext: &str) -> Result<(), TestCaseError> {
    let dir = base_folder();
    let bad = dir.path().join(format!("b/bad.{ext}"));
    std::fs::write(&bad, bytes).unwrap();
    match load(dir.path(), 8) {
        Ok(splits) => {
            prop_assert_eq!(splits.train.len() + splits.test.len(), 7);
            prop_assert_eq!((splits.train.rows, splits.train.cols), (8, 8));
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert!(text.contains(&bad.display().to_string()), "{}", text);
        }
    }
    Ok(())
}

fn picture_bytes(format: usize, w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| {
        Rgba([seed.wrapping_add((x as u8).wrapping_mul(40)), (y as u8).wrapping_mul(70), seed, 255 - seed / 2])
    });
    encoded(&img, format_of(format).0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_in_a_class_folder_are_an_error_naming_the_file(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        format in 0usize..4,
    ) {
        check_damaged(&bytes, format_of(format).1)?;
    }

    #[test]
    fn truncated_pictures_never_panic(format in 0usize..4, w in 1u32..12, h in 1u32..12, seed: u8, cut in 0.0f64..1.0) {
        let mut bytes = picture_bytes(format, w, h, seed);
        bytes.truncate((bytes.len() as f64 * cut) as usize);
        check_damaged(&bytes, format_of(format).1)?;
    }

    #[test]
    fn bit_flipped_pictures_never_panic(
        format in 0usize..4,
        w in 1u32..12,
        h in 1u32..12,
        seed: u8,
        flips in proptest::collection::vec((0.0f64..1.0, 0u8..8), 1..4),
    ) {
        let mut bytes = picture_bytes(format, w, h, seed);
        for (at, bit) in flips {
            let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
            bytes[i] ^= 1 << bit;
        }
        check_damaged(&bytes, format_of(format).1)?;
    }
}

/// Two classes a small network can tell apart: a bright square top-left or bottom-right, in
/// random colours, 12×12.
fn squares(root: &Path, per_class: usize) {
    for i in 0..per_class {
        for (class, corner) in [("top-left", 0u32), ("bottom-right", 6)] {
            let c = [(i * 37 % 200) as u8 + 55, (i * 91 % 200) as u8 + 55, (i * 53 % 200) as u8 + 55, 255];
            let img = RgbaImage::from_fn(12, 12, |x, y| {
                let inside = (corner..corner + 6).contains(&x) && (corner..corner + 6).contains(&y);
                Rgba(if inside { c } else { [0, 0, 0, 255] })
            });
            write(&root.join(class).join(format!("{i:03}.png")), &img);
        }
    }
}

#[test]
fn the_trainer_steps_on_a_loaded_image_folder() {
    let dir = tempfile::tempdir().unwrap();
    squares(dir.path(), 20);
    let splits = Arc::new(load(dir.path(), 12).unwrap());
    assert_eq!(splits.input_shape(), (3, 12, 12));
    let line = "conv(4,3,pad=1), relu, maxpool(2), flatten, fc(2)";
    let mut session = Session::new(splits, 1, Preset::Recommended, line, ConvEngine::Fast).unwrap();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let point = session.step_batch(&mut |_, _| {}).unwrap();
        losses.push(point.loss);
    }
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{losses:?}");
    assert_eq!(session.step(), 3);
}

#[test]
fn image_size_and_grayscale_are_options_of_train_eval_and_the_window() {
    let cli = Cli::try_parse_from(["cnn-stepper", "train", "--image-size", "64", "--grayscale"]).unwrap();
    assert_eq!(cli.load_options(), LoadOptions { image_size: Some(64), grayscale: true, ..LoadOptions::default() });
    let cli = Cli::try_parse_from(["cnn-stepper", "--image-size", "16", "eval", "--weights", "w.safetensors"]).unwrap();
    assert_eq!(cli.load_options().image_size, Some(16));
    let cli = Cli::try_parse_from(["cnn-stepper", "--grayscale"]).unwrap();
    assert!(cli.command.is_none() && cli.grayscale, "the window takes them too");
    for bad in ["7", "257", "-3", "big"] {
        let err = Cli::try_parse_from(["cnn-stepper", "train", "--image-size", bad]).unwrap_err().to_string();
        assert!(err.contains("from 8 to 256"), "{bad}: {err}");
    }
}

/// What `cli::train` wrote on standard output and standard error.
fn train(o: &TrainOptions) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    cli::train(o, &StopFlag::new(), &mut Console { out: &mut out, err: &mut err, progress: false }).unwrap();
    (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn a_model_trained_at_one_size_is_evaluated_at_that_size() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("squares");
    squares(&data_dir, 10);
    let save = dir.path().join("w.safetensors");
    let o = TrainOptions {
        data: Some(data_dir.clone()),
        image_size: Some(12),
        model: Some("conv(4,3,pad=1), relu, maxpool(2), flatten, fc(2)".into()),
        batch: Some(4),
        save: Some(save.clone()),
        ..TrainOptions::default()
    };
    let (out, err) = train(&o);
    assert!(out.contains("(16 images)"), "{out}");
    assert!(err.contains("note: held out 20% of each class as the test split: 4 of 20 pictures, seed 0"), "{err}");
    assert!(err.contains("note: pictures resized to 12×12, in colour"), "{err}");

    // No --image-size: the file's 3×12×12, not the default 32.
    let mut report = Vec::new();
    let acc = cli::eval_model(&save, None, Some(&data_dir), &LoadOptions::default(), None, &mut report).unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert!(String::from_utf8(report).unwrap().starts_with("test accuracy: "));

    // An explicit other size is honoured, and then does not fit.
    let e = cli::eval_model(&save, None, Some(&data_dir), &options(16), None, &mut Vec::new()).unwrap_err();
    assert!(matches!(e, cli::CliError::DoesNotFit { .. }), "{e}");
    assert!(e.to_string().contains("3×16×16"), "{e}");

    // A resumed run reads the folder at the file's size too.
    let resumed = TrainOptions {
        data: Some(data_dir.clone()),
        epochs: 2,
        resume: Some(save.clone()),
        save: None,
        batch: Some(4),
        ..TrainOptions::default()
    };
    let (out, _) = train(&resumed);
    assert!(out.contains("resuming"), "{out}");
}

#[test]
fn a_grey_model_evaluates_a_colour_folder_in_grey() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("squares");
    squares(&data_dir, 10);
    let save = dir.path().join("grey.safetensors");
    let o = TrainOptions {
        data: Some(data_dir.clone()),
        image_size: Some(8),
        grayscale: true,
        model: Some("conv(2,3,pad=1), relu, flatten, fc(2)".into()),
        batch: Some(4),
        save: Some(save.clone()),
        ..TrainOptions::default()
    };
    let (_, err) = train(&o);
    assert!(err.contains("turned grey as asked"), "{err}");
    let acc = cli::eval_model(&save, None, Some(&data_dir), &LoadOptions::default(), None, &mut Vec::new());
    assert!(acc.is_ok(), "read at 1×8×8 as the file says: {acc:?}");
}
