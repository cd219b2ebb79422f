//! The MNIST sample built into the binary, so the program works without downloading anything.
//!
//! The first 10,000 training images and all 10,000 test images of MNIST, made by
//! `cargo run --no-default-features --example make_sample -- <mnist folder> assets/mnist-sample`.
//! See `assets/mnist-sample/LICENSE.md` (CC BY-SA 3.0) and `SHA256SUMS`.

use super::dataset::{MNIST_SIDE, Splits, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, pair};
use super::idx::{read_images, read_labels};
use super::{ClassNames, DataError, Dataset};

/// Description of the embedded sample, used as [`Splits::source`].
pub const EMBEDDED_SOURCE: &str = "embedded MNIST sample (10,000 train / 10,000 test)";

const TRAIN_IMAGES_GZ: &[u8] = include_bytes!("../../assets/mnist-sample/train-images-idx3-ubyte.gz");
const TRAIN_LABELS_GZ: &[u8] = include_bytes!("../../assets/mnist-sample/train-labels-idx1-ubyte.gz");
const TEST_IMAGES_GZ: &[u8] = include_bytes!("../../assets/mnist-sample/t10k-images-idx3-ubyte.gz");
const TEST_LABELS_GZ: &[u8] = include_bytes!("../../assets/mnist-sample/t10k-labels-idx1-ubyte.gz");

/// Decodes the embedded MNIST sample: 10,000 training and 10,000 test images with digit names.
///
/// # Errors
/// Only if the embedded files are damaged, which the crate's tests rule out; the error names
/// the embedded file like any other IDX error.
pub fn embedded() -> Result<Splits, DataError> {
    let names = ClassNames::Digits.names();
    let split = |images: &[u8], labels: &[u8], images_file: &str, labels_file: &str| {
        let images_name = format!("embedded MNIST sample: {images_file}.gz");
        let labels_name = format!("embedded MNIST sample: {labels_file}.gz");
        let images = read_images(images, &images_name, MNIST_SIDE, MNIST_SIDE)?;
        let labels = read_labels(labels, &labels_name, names.len())?;
        pair(images, labels, &images_name, &labels_name, &names)
    };
    let train: Dataset = split(TRAIN_IMAGES_GZ, TRAIN_LABELS_GZ, TRAIN_IMAGES, TRAIN_LABELS)?;
    let test = split(TEST_IMAGES_GZ, TEST_LABELS_GZ, TEST_IMAGES, TEST_LABELS)?;
    Ok(Splits { train, test, source: EMBEDDED_SOURCE.to_owned(), notes: Vec::new() })
}
