//! Data: the IDX reader (raw or gzip), MNIST-style dataset folders, image folders of PNG, JPEG,
//! BMP and GIF pictures ([`folder`]), the embedded MNIST sample, and seeded batch sampling.
//!
//! Nothing here knows about the network or the window. The flow is
//! `load_dir` / `embedded` → [`Splits`] (two [`Dataset`]s of raw bytes) → a [`Sampler`] picks
//! indices → [`Dataset::batch`] turns them into a [`Batch`] of `f32` pixels in `[0, 1]`.
//!
//! Every failure is a [`DataError`] whose message names the file and says what is wrong.

mod batch;
mod cifar;
mod dataset;
pub mod draw;
mod error;
pub mod folder;
mod idx;
mod load;
pub mod picture;
mod sample;
mod shapes;

pub use batch::{Batch, Sampler, SamplingMode};
pub use cifar::{
    CIFAR_ARCHIVE_FOLDER, CIFAR_CLASSES, CIFAR_META_FILE, CIFAR_RECORD_BYTES, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES,
    cifar_folder, load_cifar,
};
pub use dataset::{CLASSES_FILE, ClassNames, Dataset, MNIST_SIDE, NUM_CLASSES, Splits, load_dir, load_test_dir};
pub use error::{ClassMismatch, DataError};
pub use folder::{DEFAULT_IMAGE_SIZE, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, load_folder, load_folder_test};
pub use idx::{IMAGES_MAGIC, IdxImages, LABELS_MAGIC, read_images, read_labels, write_images, write_labels};
pub use load::{DataKind, DataSource, LoadOptions, LoadProgress, kind_of, load};
pub use sample::{EMBEDDED_SOURCE, embedded};
pub use shapes::{SHAPE_NAMES, SHAPES_SIDE, SHAPES_TEST, SHAPES_TRAIN, generate_shapes};
