//! The data layer: IDX reading (good and bad files), dataset folders, class names, the embedded
//! sample, batches and seeded sampling.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use cnn_stepper_core::data::{self, ClassNames, DataError, Dataset, IMAGES_MAGIC, LABELS_MAGIC, Sampler, SamplingMode};
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers: small IDX files built by hand (independent of the crate's writer).

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [IMAGES_MAGIC, count, rows, cols] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Distinct, deterministic pixels so that mix-ups between images would show.
fn pixels(count: usize, side: usize) -> Vec<u8> {
    (0..count * side * side).map(|i| (i * 7 % 256) as u8).collect()
}

fn labels(count: usize) -> Vec<u8> {
    (0..count).map(|i| (i * 3 % 10) as u8).collect()
}

/// A valid 28×28 image file with `count` images.
fn mnist_images(count: usize) -> Vec<u8> {
    idx_images(count as u32, 28, 28, &pixels(count, 28))
}

fn mnist_labels(count: usize) -> Vec<u8> {
    idx_labels(&labels(count))
}

const TRAIN_N: usize = 5;
const TEST_N: usize = 3;

/// The four files, keyed by canonical name.
fn four_files() -> [(&'static str, Vec<u8>); 4] {
    [
        ("train-images-idx3-ubyte", mnist_images(TRAIN_N)),
        ("train-labels-idx1-ubyte", mnist_labels(TRAIN_N)),
        ("t10k-images-idx3-ubyte", mnist_images(TEST_N)),
        ("t10k-labels-idx1-ubyte", mnist_labels(TEST_N)),
    ]
}

/// Writes the four files into a fresh folder, spelled `dotted` or not, gzipped or not.
fn folder(dotted: bool, gzip: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in four_files() {
        write_file(dir.path(), name, &bytes, dotted, gzip);
    }
    dir
}

fn file_name(canonical: &str, dotted: bool, gzip: bool) -> String {
    let mut name = if dotted { canonical.replacen("-idx", ".idx", 1) } else { canonical.to_owned() };
    if gzip {
        name.push_str(".gz");
    }
    name
}

fn write_file(dir: &Path, canonical: &str, bytes: &[u8], dotted: bool, gzip: bool) -> PathBuf {
    let path = dir.join(file_name(canonical, dotted, gzip));
    let bytes = if gzip { gz(bytes) } else { bytes.to_vec() };
    fs::write(&path, bytes).unwrap();
    path
}

/// Replaces one of the four files of a raw, plain-spelled folder.
fn folder_with(canonical: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = folder(false, false);
    fs::write(dir.path().join(canonical), bytes).unwrap();
    dir
}

fn read_images(bytes: &[u8]) -> Result<data::IdxImages, DataError> {
    data::read_images(bytes, "test-images", 28, 28)
}

fn read_labels(bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    data::read_labels(bytes, "test-labels", 10)
}

/// Asserts that the error's message names the file.
fn assert_names(err: &DataError, name: &str) {
    let msg = err.to_string();
    assert!(msg.contains(name), "message {msg:?} should name {name:?}");
}

// ---------------------------------------------------------------------------------------------
// Reading good files.

#[test]
fn raw_and_gzip_give_identical_data() {
    let raw_images = mnist_images(4);
    let raw_labels = mnist_labels(4);
    let a = read_images(&raw_images).unwrap();
    let b = read_images(&gz(&raw_images)).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.count, a.rows, a.cols), (4, 28, 28));
    assert_eq!(a.pixels, pixels(4, 28));
    assert_eq!(read_labels(&raw_labels).unwrap(), read_labels(&gz(&raw_labels)).unwrap());
    assert_eq!(read_labels(&raw_labels).unwrap(), labels(4));
}

#[test]
fn raw_and_gzip_folders_load_the_same_datasets() {
    let raw = data::load_dir(folder(false, false).path(), None).unwrap();
    let gzip = data::load_dir(folder(false, true).path(), None).unwrap();
    assert_eq!(raw.train, gzip.train);
    assert_eq!(raw.test, gzip.test);
}

#[test]
fn image_dimensions_are_a_parameter() {
    let file = idx_images(2, 3, 5, &pixels(2, 15)[..30]);
    let images = data::read_images(&file[..], "small", 3, 5).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (2, 3, 5));
}

#[test]
fn zero_images_and_labels_are_valid_files() {
    assert_eq!(read_images(&idx_images(0, 28, 28, &[])).unwrap().count, 0);
    assert!(read_labels(&idx_labels(&[])).unwrap().is_empty());
}

#[test]
fn gzip_is_detected_by_content_not_by_file_name() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in four_files() {
        // Compressed data under the plain name, raw data under the .gz name.
        let compressed = name.starts_with("train");
        let file = if compressed { name.to_owned() } else { format!("{name}.gz") };
        let content = if compressed { gz(&bytes) } else { bytes };
        fs::write(dir.path().join(file), content).unwrap();
    }
    let mnist = data::load_dir(dir.path(), None).unwrap();
    assert_eq!(mnist.train.len(), TRAIN_N);
    assert_eq!(mnist.test.len(), TEST_N);
}

#[test]
fn every_spelling_of_the_file_names_loads() {
    for dotted in [false, true] {
        for gzip in [false, true] {
            let dir = folder(dotted, gzip);
            let mnist = data::load_dir(dir.path(), None).unwrap_or_else(|e| panic!("dotted={dotted} gzip={gzip}: {e}"));
            assert_eq!(mnist.train.len(), TRAIN_N);
            assert_eq!(mnist.test.len(), TEST_N);
            assert_eq!(mnist.train.image(1), &pixels(TRAIN_N, 28)[784..2 * 784]);
            assert_eq!(mnist.test.label(2), usize::from(labels(TEST_N)[2]));
            assert_eq!(mnist.source, dir.path().display().to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Folders and missing files.

#[test]
fn missing_file_names_the_file_the_folder_and_the_names_tried() {
    let dir = folder(false, true);
    fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingFile { file, tried, .. }
            if file == "t10k-labels-idx1-ubyte" && tried.len() == 4),
        "{err:?}"
    );
    let msg = err.to_string();
    for tried in
        ["t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz", "t10k-labels.idx1-ubyte", "t10k-labels.idx1-ubyte.gz"]
    {
        assert!(msg.contains(tried), "{msg}");
    }
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[test]
fn missing_folder_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let err = data::load_dir(&missing, None).unwrap_err();
    assert!(matches!(err, DataError::FolderMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-folder"), "{err}");
}

#[test]
fn a_file_given_as_folder_is_an_error() {
    let dir = folder(false, false);
    let file = dir.path().join("train-images-idx3-ubyte");
    let err = data::load_dir(&file, None).unwrap_err();
    assert!(matches!(err, DataError::NotAFolder { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Malformed files: each gives its own variant and names the file.

#[test]
fn empty_file_is_an_error() {
    let err = read_images(&[]).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    assert_names(&err, "test-images");
    // A gzip file that decompresses to nothing is just as empty.
    let err = read_labels(&gz(&[])).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err:?}");

    let dir = folder_with("train-labels-idx1-ubyte", &[]);
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    assert_names(&err, "train-labels-idx1-ubyte");
}

#[test]
fn bad_magic_is_an_error() {
    let mut file = mnist_images(1);
    file[3] = 0x04;
    let err = read_images(&file).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { expected: IMAGES_MAGIC, found: 0x0804, .. }), "{err:?}");
    assert_names(&err, "test-images");

    let dir = folder_with("t10k-images-idx3-ubyte", b"PK\x03\x04 a zip, not an IDX file");
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { .. }), "{err:?}");
    assert_names(&err, "t10k-images-idx3-ubyte");
    assert!(err.to_string().contains("zip"), "{err}");
}

#[test]
fn label_file_in_place_of_image_file_is_explained() {
    let err = read_images(&mnist_labels(3)).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { found: LABELS_MAGIC, .. }), "{err:?}");
    assert!(err.to_string().contains("label file"), "{err}");
}

#[test]
fn wrong_image_dimensions_are_an_error() {
    let file = idx_images(2, 27, 28, &vec![0; 2 * 27 * 28]);
    let err = read_images(&file).unwrap_err();
    assert!(
        matches!(err, DataError::WrongDims { rows: 27, cols: 28, expected_rows: 28, expected_cols: 28, .. }),
        "{err:?}"
    );
    assert_names(&err, "test-images");
    assert!(err.to_string().contains("27×28"), "{err}");

    // A folder may hold any size, but one size for both splits.
    let dir = folder_with("train-images-idx3-ubyte", &file);
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::SplitSizes { train: (1, 27, 28), test: (1, 28, 28), .. }), "{err:?}");
    assert_names(&err, "train-images-idx3-ubyte");
    assert_names(&err, "t10k-images-idx3-ubyte");
}

#[test]
fn an_idx_folder_of_any_size_and_class_count_loads() {
    // EMNIST-letters-like: 32×32 images, labels up to 25 → 26 classes, named by number without
    // a classes.txt and by it with one.
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<u8> = (0..26).collect();
    let pixels: Vec<u8> = (0..26 * 32 * 32).map(|i| (i % 251) as u8).collect();
    for (images, labels_file) in
        [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    {
        fs::write(dir.path().join(images), idx_images(26, 32, 32, &pixels)).unwrap();
        fs::write(dir.path().join(labels_file), idx_labels(&labels)).unwrap();
    }
    let data = data::load_dir(dir.path(), None).unwrap();
    assert_eq!(data.input_shape(), (1, 32, 32));
    assert_eq!(data.class_names().len(), 26);
    assert_eq!(data.class_names()[25], "25");
    assert_eq!(data.train.image(1)[0], (1024 % 251) as u8);

    let letters: Vec<String> = (b'a'..=b'z').map(|c| char::from(c).to_string()).collect();
    fs::write(dir.path().join("classes.txt"), letters.join("\n")).unwrap();
    assert_eq!(data::load_dir(dir.path(), None).unwrap().class_names()[25], "z");

    // Too few names for the labels: the file is named, with both counts.
    fs::write(dir.path().join("classes.txt"), letters[..20].join("\n")).unwrap();
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::ClassesFile { found: 20, expected: 26, .. }), "{err:?}");
    assert_names(&err, "classes.txt");
}

#[test]
fn truncated_image_file_is_an_error() {
    let file = mnist_images(3);
    let err = read_images(&file[..file.len() - 1]).unwrap_err();
    assert!(matches!(err, DataError::Truncated { count: 3, expected_bytes: 2352, actual_bytes: 2351, .. }), "{err:?}");
    assert_names(&err, "test-images");
    assert!(err.to_string().contains("2,351"), "{err}");

    let dir = folder_with("t10k-images-idx3-ubyte", &file[..1000]);
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert_names(&err, "t10k-images-idx3-ubyte");
}

#[test]
fn truncated_label_file_is_an_error() {
    let file = mnist_labels(10);
    let err = read_labels(&file[..file.len() - 3]).unwrap_err();
    assert!(matches!(err, DataError::Truncated { count: 10, .. }), "{err:?}");
}

#[test]
fn file_ending_inside_the_header_is_an_error() {
    let file = mnist_images(1);
    let err = read_images(&file[..10]).unwrap_err();
    assert!(matches!(err, DataError::TruncatedHeader { header_len: 16, actual: 10, .. }), "{err:?}");
    assert_names(&err, "test-images");
}

#[test]
fn huge_count_in_header_is_truncated_not_an_allocation() {
    // Claims 4 billion images (3 TB) but holds one; must fail fast without reserving memory.
    let file = idx_images(u32::MAX, 28, 28, &pixels(1, 28));
    let err = read_images(&file).unwrap_err();
    assert!(matches!(err, DataError::Truncated { count, .. } if count == u64::from(u32::MAX)));
    assert!(err.to_string().contains("4,294,967,295"), "{err}");
    let mut labels = idx_labels(&[1, 2]);
    labels[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = read_labels(&labels).unwrap_err();
    assert!(matches!(err, DataError::Truncated { actual_bytes: 2, .. }), "{err:?}");
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut file = mnist_images(2);
    file.extend_from_slice(&[0; 5]);
    let err = read_images(&file).unwrap_err();
    assert!(matches!(err, DataError::TrailingBytes { extra_bytes: 5, at_least: false, .. }), "{err:?}");
    assert_names(&err, "test-images");

    let mut labels = mnist_labels(4);
    labels.push(1);
    let dir = folder_with("train-labels-idx1-ubyte", &gz(&labels));
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::TrailingBytes { extra_bytes: 1, .. }), "{err:?}");
    assert_names(&err, "train-labels-idx1-ubyte");
}

#[test]
fn image_and_label_counts_must_match() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in four_files() {
        write_file(dir.path(), name, &bytes, false, true);
    }
    write_file(dir.path(), "t10k-images-idx3-ubyte", &mnist_images(10_000), false, true);
    write_file(dir.path(), "t10k-labels-idx1-ubyte", &mnist_labels(9_998), false, true);
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::CountMismatch { labels: 9_998, images: 10_000, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte.gz: 9,998 labels but 10,000 images"), "{msg}");
}

#[test]
fn label_not_below_the_number_of_classes_is_an_error() {
    let mut file = mnist_labels(20);
    file[8 + 13] = 10;
    let err = read_labels(&file).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { index: 13, label: 10, num_classes: 10, .. }), "{err:?}");
    assert_names(&err, "test-labels");

    let dir = folder_with("t10k-labels-idx1-ubyte", &file[..8 + TEST_N]);
    let mut three = idx_labels(&[0, 1, 200]);
    three[8 + 2] = 200;
    fs::write(dir.path().join("t10k-labels-idx1-ubyte"), three).unwrap();
    // Without names a label of 200 means 201 classes; with ten digit names it is an error.
    assert_eq!(data::load_dir(dir.path(), None).unwrap().class_names().len(), 201);
    let err = data::load_dir(dir.path(), Some(ClassNames::Digits)).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { label: 200, .. }), "{err:?}");
    assert_names(&err, "t10k-labels-idx1-ubyte");
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut file = gz(&mnist_images(3));
    // Damage the compressed body (after the 10-byte header); a CRC or deflate error follows.
    let mid = file.len() / 2;
    for b in &mut file[mid..mid + 8] {
        *b ^= 0xa5;
    }
    let err = read_images(&file).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
    assert_names(&err, "test-images");

    let dir = folder_with("train-images-idx3-ubyte", &file);
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
    assert_names(&err, "train-images-idx3-ubyte");
}

#[test]
fn gzip_with_a_wrong_checksum_is_an_error() {
    let mut file = gz(&mnist_labels(50));
    let crc_at = file.len() - 8;
    file[crc_at] ^= 1;
    let err = read_labels(&file).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
}

#[test]
fn garbage_after_the_gzip_stream_is_an_error() {
    let mut file = gz(&mnist_labels(50));
    file.extend_from_slice(b"garbage");
    let err = read_labels(&file).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
}

#[test]
fn cut_off_gzip_is_an_error() {
    let file = gz(&mnist_images(3));
    let err = read_images(&file[..file.len() / 2]).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. } | DataError::Truncated { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Class names.

#[test]
fn class_names_default_to_digits() {
    let mnist = data::load_dir(folder(false, false).path(), None).unwrap();
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    assert_eq!(mnist.train.class_names, digits);
    assert_eq!(mnist.test.class_names, digits);
}

#[test]
fn fashion_class_names_are_fashion_mnists_ten() {
    let names = ClassNames::Fashion.names();
    assert_eq!(
        names,
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    );
    let mnist = data::load_dir(folder(false, false).path(), Some(ClassNames::Fashion)).unwrap();
    assert_eq!(mnist.train.class_name(9), Some("Ankle boot"));
}

#[test]
fn class_names_parse_from_cli_strings() {
    assert_eq!("digits".parse::<ClassNames>().unwrap(), ClassNames::Digits);
    assert_eq!("Fashion".parse::<ClassNames>().unwrap(), ClassNames::Fashion);
    let err = "letters".parse::<ClassNames>().unwrap_err();
    assert!(matches!(err, DataError::UnknownClassNames { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("letters") && msg.contains("digits") && msg.contains("fashion"), "{msg}");
    for s in ClassNames::VARIANTS {
        assert_eq!(s.parse::<ClassNames>().unwrap().to_string(), s);
    }
}

#[test]
fn classes_txt_overrides_the_digit_names() {
    let dir = folder(false, true);
    let names: Vec<String> = (0..10).map(|i| format!("class {i}")).collect();
    // Windows line endings and blank lines are tolerated.
    fs::write(dir.path().join("classes.txt"), names.join("\r\n\r\n") + "\r\n").unwrap();
    let mnist = data::load_dir(dir.path(), None).unwrap();
    assert_eq!(mnist.train.class_names, names);
    assert_eq!(mnist.test.class_names, names);
}

#[test]
fn explicit_class_choice_wins_over_classes_txt() {
    let dir = folder(false, true);
    let names: Vec<String> = (0..10).map(|i| format!("class {i}")).collect();
    fs::write(dir.path().join("classes.txt"), names.join("\n")).unwrap();
    let mnist = data::load_dir(dir.path(), Some(ClassNames::Digits)).unwrap();
    assert_eq!(mnist.train.class_names, ClassNames::Digits.names());
}

#[test]
fn classes_txt_with_wrong_line_count_is_an_error() {
    let dir = folder(false, true);
    fs::write(dir.path().join("classes.txt"), "a\nb\nc\n").unwrap();
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::ClassesFile { found: 3, expected: 10, .. }), "{err:?}");
    assert_names(&err, "classes.txt");

    // An explicit choice does not read classes.txt at all.
    assert!(data::load_dir(dir.path(), Some(ClassNames::Fashion)).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The embedded sample.

#[test]
fn embedded_sample_is_the_first_mnist_images() {
    let mnist = data::embedded().unwrap();
    assert_eq!(mnist.train.len(), 10_000);
    assert_eq!(mnist.test.len(), 10_000);
    assert_eq!((mnist.train.rows, mnist.train.cols), (28, 28));
    let first = |d: &Dataset| (0..10).map(|i| d.label(i)).collect::<Vec<_>>();
    assert_eq!(first(&mnist.train), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(first(&mnist.test), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(mnist.train.class_names, ClassNames::Digits.names());
    assert!(mnist.source.contains("embedded MNIST sample"), "{}", mnist.source);
    // The test split is all of MNIST's: its label counts are the published ones.
    let mut counts = [0usize; 10];
    for i in 0..mnist.test.len() {
        counts[mnist.test.label(i)] += 1;
    }
    assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
}

// ---------------------------------------------------------------------------------------------
// Batches.

fn small_dataset(n: usize) -> Dataset {
    let side = 4;
    let images: Vec<u8> = (0..n * side * side).map(|i| (i * 37 % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(images, labels, side, side, ClassNames::Digits.names()).unwrap()
}

#[test]
fn batch_has_shape_n_1_rows_cols_and_pixels_in_unit_range() {
    let mut images = vec![0u8; 3 * 16];
    images[16..32].fill(255);
    images[40] = 51;
    let data = Dataset::new(images, vec![4, 7, 9], 4, 4, ClassNames::Digits.names()).unwrap();
    let batch = data.batch(&[2, 1, 2]).unwrap();
    assert_eq!(batch.images.shape(), &[3, 1, 4, 4]);
    assert_eq!(batch.labels, [9, 7, 9]);
    assert_eq!(batch.indices, [2, 1, 2]);
    assert!(batch.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert_eq!(batch.images[[1, 0, 3, 3]], 1.0);
    assert_eq!(batch.images[[0, 0, 2, 0]], 51.0 / 255.0);
    assert_eq!(batch.images[[0, 0, 0, 0]], 0.0);

    let mnist = data::embedded().unwrap();
    let batch = mnist.train.batch(&[0, 1, 2, 3]).unwrap();
    assert_eq!(batch.images.shape(), &[4, 1, 28, 28]);
    assert!(batch.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert!(batch.images.iter().any(|&p| p == 1.0));
}

#[test]
fn empty_batch_is_fine() {
    let batch = small_dataset(3).batch(&[]).unwrap();
    assert_eq!(batch.images.shape(), &[0, 1, 4, 4]);
    assert!(batch.is_empty());
}

#[test]
fn batch_index_out_of_range_is_an_error() {
    let err = small_dataset(5).batch(&[0, 5]).unwrap_err();
    assert!(matches!(err, DataError::IndexOutOfRange { index: 5, len: 5 }), "{err:?}");
}

#[test]
fn inconsistent_dataset_fields_are_errors_not_panics() {
    assert!(Dataset::new(vec![0; 15], vec![0], 4, 4, ClassNames::Digits.names()).is_err());
    assert!(Dataset::new(vec![0; 16], vec![10], 4, 4, ClassNames::Digits.names()).is_err());
    let mut data = small_dataset(3);
    data.images.truncate(20);
    assert!(data.batch(&[2]).is_err());
    data.rows = usize::MAX;
    assert!(data.batch(&[0]).is_err());
    assert!(data.batch(&[]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Sampling.

fn draw(sampler: &mut Sampler, batch_size: usize, batches: usize) -> Vec<Vec<usize>> {
    (0..batches).map(|_| sampler.next_batch(batch_size)).collect()
}

#[test]
fn same_seed_gives_same_batches() {
    for mode in [SamplingMode::ShuffledEpochs, SamplingMode::WithReplacement] {
        let a = draw(&mut Sampler::new(100, mode, 42), 7, 40);
        let b = draw(&mut Sampler::new(100, mode, 42), 7, 40);
        assert_eq!(a, b, "{mode:?}");
    }
}

#[test]
fn different_seeds_give_different_batches() {
    for mode in [SamplingMode::ShuffledEpochs, SamplingMode::WithReplacement] {
        let a = draw(&mut Sampler::new(1000, mode, 1), 32, 5);
        let b = draw(&mut Sampler::new(1000, mode, 2), 32, 5);
        assert_ne!(a, b, "{mode:?}");
    }
}

#[test]
fn seeded_batches_are_stable_across_versions() {
    // Pinned so that a change of rand, rand_chacha or the shuffle shows up as a failing test
    // rather than silently different training runs.
    let mut shuffled = Sampler::new(10, SamplingMode::ShuffledEpochs, 7);
    let mut replacement = Sampler::new(10, SamplingMode::WithReplacement, 7);
    let s = shuffled.next_batch(10);
    let r = replacement.next_batch(10);
    assert_eq!(s, PINNED_SHUFFLED);
    assert_eq!(r, PINNED_REPLACEMENT);
}
const PINNED_SHUFFLED: [usize; 10] = [4, 6, 2, 0, 8, 3, 7, 5, 9, 1];
const PINNED_REPLACEMENT: [usize; 10] = [1, 1, 7, 7, 6, 3, 0, 8, 3, 9];

#[test]
fn shuffled_epochs_cover_every_index_exactly_once() {
    let len = 103;
    let mut sampler = Sampler::new(len, SamplingMode::ShuffledEpochs, 9);
    assert_eq!(sampler.epoch_len(), len);
    let mut previous: Option<Vec<usize>> = None;
    for epoch in 0..4 {
        assert_eq!(sampler.epoch(), epoch);
        let mut seen = Vec::new();
        loop {
            let batch = sampler.next_batch(10);
            seen.extend_from_slice(&batch);
            if sampler.epoch() > epoch {
                // The last batch of an epoch is shorter instead of straddling into the next.
                assert_eq!(batch.len(), 3);
                break;
            }
            assert_eq!(batch.len(), 10);
            assert_eq!(sampler.position(), seen.len());
        }
        assert_eq!(sampler.position(), 0);
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..len).collect::<Vec<_>>());
        // Each epoch has its own order.
        assert_ne!(previous.as_ref(), Some(&seen));
        previous = Some(seen);
    }
}

#[test]
fn batch_size_dividing_the_epoch_ends_it_exactly() {
    let mut sampler = Sampler::new(20, SamplingMode::ShuffledEpochs, 3);
    draw(&mut sampler, 5, 4);
    assert_eq!((sampler.epoch(), sampler.position()), (1, 0));
}

#[test]
fn sampling_with_replacement_stays_in_range_and_counts_epochs_by_draws() {
    let mut sampler = Sampler::new(50, SamplingMode::WithReplacement, 5);
    let batches = draw(&mut sampler, 32, 10);
    assert!(batches.iter().all(|b| b.len() == 32 && b.iter().all(|&i| i < 50)));
    assert_eq!((sampler.epoch(), sampler.position()), (6, 20));
    // Uniform draws repeat indices; a permutation would not.
    let all: Vec<usize> = batches.concat();
    let mut distinct = all[..50].to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() < 50);
}

#[test]
fn empty_dataset_or_zero_batch_size_give_empty_batches() {
    let mut sampler = Sampler::new(0, SamplingMode::ShuffledEpochs, 1);
    assert!(sampler.next_batch(8).is_empty());
    assert_eq!(sampler.epoch(), 0);
    let mut sampler = Sampler::new(0, SamplingMode::WithReplacement, 1);
    assert!(sampler.next_batch(8).is_empty());
    let mut sampler = Sampler::new(10, SamplingMode::ShuffledEpochs, 1);
    assert!(sampler.next_batch(0).is_empty());
    assert_eq!(sampler.position(), 0);
}

#[test]
fn serde_round_tripped_sampler_continues_identically() {
    for mode in [SamplingMode::ShuffledEpochs, SamplingMode::WithReplacement] {
        let mut original = Sampler::new(97, mode, 1234);
        draw(&mut original, 10, 13); // mid-way through the second epoch
        let json = serde_json::to_string(&original).unwrap();
        let mut restored: Sampler = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, original, "{json}");
        assert_eq!(draw(&mut restored, 10, 30), draw(&mut original, 10, 30), "{mode:?}");
        assert_eq!(restored, original);
    }
}

#[test]
fn cloned_sampler_continues_identically() {
    let mut original = Sampler::new(40, SamplingMode::ShuffledEpochs, 8);
    draw(&mut original, 6, 3);
    let mut copy = original.clone();
    assert_eq!(draw(&mut copy, 6, 20), draw(&mut original, 6, 20));
}

#[test]
fn impossible_saved_sampler_state_is_rejected() {
    let sampler = Sampler::new(10, SamplingMode::ShuffledEpochs, 1);
    let json = serde_json::to_string(&sampler).unwrap();
    let edited = json.replace("\"position\":0", "\"position\":10");
    assert_ne!(json, edited);
    assert!(serde_json::from_str::<Sampler>(&edited).is_err());
}

#[test]
fn sampling_mode_parses_and_defaults_to_shuffled_epochs() {
    assert_eq!(SamplingMode::default(), SamplingMode::ShuffledEpochs);
    for s in SamplingMode::VARIANTS {
        assert_eq!(s.parse::<SamplingMode>().unwrap().to_string(), s);
    }
    let err = "sometimes".parse::<SamplingMode>().unwrap_err();
    assert!(matches!(err, DataError::UnknownSamplingMode { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// No input panics.

fn small_images() -> Vec<u8> {
    mnist_images(2)
}

fn small_labels() -> Vec<u8> {
    mnist_labels(6)
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error() {
    let images = small_images();
    let labels = small_labels();
    let (images_gz, labels_gz) = (gz(&images), gz(&labels));
    for len in 0..images.len() {
        assert!(read_images(&images[..len]).is_err(), "raw images cut at {len}");
    }
    for len in 0..labels.len() {
        assert!(read_labels(&labels[..len]).is_err(), "raw labels cut at {len}");
    }
    for len in 0..images_gz.len() {
        assert!(read_images(&images_gz[..len]).is_err(), "gz images cut at {len}");
    }
    for len in 0..labels_gz.len() {
        assert!(read_labels(&labels_gz[..len]).is_err(), "gz labels cut at {len}");
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = read_images(&bytes);
        let _ = read_labels(&bytes);
        let _ = data::read_images(&bytes[..], "any", 0, 0);
    }

    #[test]
    fn random_bytes_behind_a_gzip_or_idx_prefix_never_panic(
        prefix in prop_oneof![
            Just(vec![0x1f, 0x8b]),
            Just(vec![0x1f, 0x8b, 8, 0]),
            Just(vec![0, 0, 8, 3]),
            Just(vec![0, 0, 8, 1]),
        ],
        tail in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let bytes = [prefix, tail].concat();
        let _ = read_images(&bytes);
        let _ = read_labels(&bytes);
    }

    #[test]
    fn random_truncations_never_panic_and_are_errors(cut in 0.0f64..1.0, gzip in any::<bool>()) {
        let images = if gzip { gz(&small_images()) } else { small_images() };
        let labels = if gzip { gz(&small_labels()) } else { small_labels() };
        let at = |len: usize| ((len as f64) * cut) as usize;
        prop_assert!(read_images(&images[..at(images.len())]).is_err());
        prop_assert!(read_labels(&labels[..at(labels.len())]).is_err());
    }

    #[test]
    fn bit_flips_never_panic(position in any::<prop::sample::Index>(), bit in 0u8..8, gzip in any::<bool>()) {
        for file in [small_images(), small_labels()] {
            let mut bytes = if gzip { gz(&file) } else { file };
            let i = position.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let _ = read_images(&bytes);
            let _ = read_labels(&bytes);
        }
    }

    #[test]
    fn sampler_batches_are_always_in_range(
        len in 1usize..200,
        batch_size in 1usize..64,
        seed in any::<u64>(),
        replacement in any::<bool>(),
    ) {
        let mode = if replacement { SamplingMode::WithReplacement } else { SamplingMode::ShuffledEpochs };
        let mut sampler = Sampler::new(len, mode, seed);
        for _ in 0..10 {
            let batch = sampler.next_batch(batch_size);
            prop_assert!(!batch.is_empty() && batch.len() <= batch_size);
            prop_assert!(batch.iter().all(|&i| i < len));
            prop_assert!(sampler.position() < len);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The full datasets, when this machine has them.

/// `../shared/data/NAME`, which the tests below need: they are ignored by default (run them
/// with `--ignored`; CI does) and fail, not pass, when the folder is missing.
fn shared_folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(name);
    assert!(dir.is_dir(), "{} is not there: this test needs the full data set", dir.display());
    dir
}

fn label_counts(d: &Dataset) -> Vec<usize> {
    let mut counts = vec![0; d.num_classes()];
    for i in 0..d.len() {
        counts[d.label(i)] += 1;
    }
    counts
}

#[test]
#[ignore = "needs ../shared/data/mnist (run with --ignored)"]
fn full_mnist_loads_with_the_published_counts() {
    let dir = shared_folder("mnist");
    let mnist = data::load_dir(&dir, None).unwrap();
    assert_eq!(mnist.train.len(), 60_000);
    assert_eq!(mnist.test.len(), 10_000);
    assert_eq!(label_counts(&mnist.train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(label_counts(&mnist.test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    // The embedded sample is exactly the start of the training set and the whole test set.
    let sample = data::embedded().unwrap();
    assert_eq!(sample.train.images, mnist.train.images[..10_000 * 784]);
    assert_eq!(sample.train.labels, mnist.train.labels[..10_000]);
    assert_eq!(sample.test, mnist.test);
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist (run with --ignored)"]
fn full_fashion_mnist_loads_with_the_published_counts() {
    let dir = shared_folder("fashion-mnist");
    let fashion = data::load_dir(&dir, Some(ClassNames::Fashion)).unwrap();
    assert_eq!(fashion.train.len(), 60_000);
    assert_eq!(fashion.test.len(), 10_000);
    assert_eq!(label_counts(&fashion.train), [6000; 10]);
    assert_eq!(label_counts(&fashion.test), [1000; 10]);
    let first = |d: &Dataset| (0..10).map(|i| d.label(i)).collect::<Vec<_>>();
    assert_eq!(first(&fashion.train), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(first(&fashion.test), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert_eq!(fashion.train.class_name(0), Some("T-shirt/top"));
}
