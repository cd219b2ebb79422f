//! One entry point for every kind of data `--data` can name: the kind is recognised from what is
//! in the folder, and the built-in sets are named by a word.

use std::fmt;
use std::path::{Path, PathBuf};

use super::cifar::{cifar_folder, load_cifar};
use super::dataset::{TEST_IMAGES, TRAIN_IMAGES};
use super::folder::{load_folder, looks_like_image_folder};
use super::shapes::{SHAPES_TEST, SHAPES_TRAIN, generate_shapes};
use super::{ClassNames, DataError, Splits, embedded, load_dir};

/// What `--data` names: a folder, or one of the sets built into the program.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataSource {
    /// The embedded MNIST sample (the default).
    Sample,
    /// The generated colour set of shapes ([`generate_shapes`](super::generate_shapes)),
    /// drawn from [`LoadOptions::seed`].
    Shapes,
    /// A folder whose kind is recognised from its files.
    Folder(PathBuf),
}

impl DataSource {
    /// The words that name a built-in set, for help texts.
    pub const BUILT_IN: [&'static str; 2] = ["mnist-sample", "shapes"];

    /// Reads a `--data` value: a built-in set's word when no file of that name exists, else a
    /// path.
    #[must_use]
    pub fn parse(value: &str) -> Self {
        let path = Path::new(value);
        if !path.exists() {
            let word = value.trim();
            if word.eq_ignore_ascii_case("mnist-sample") {
                return DataSource::Sample;
            }
            if word.eq_ignore_ascii_case("shapes") {
                return DataSource::Shapes;
            }
        }
        DataSource::Folder(path.to_path_buf())
    }

    /// `--data DIR` if given, else the embedded sample.
    #[must_use]
    pub fn from_option(dir: Option<&Path>) -> Self {
        match dir {
            Some(dir) => DataSource::parse(&dir.to_string_lossy()),
            None => DataSource::Sample,
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Sample => f.write_str("mnist-sample"),
            DataSource::Shapes => f.write_str("shapes"),
            DataSource::Folder(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// The kinds of folder `--data` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// MNIST-style IDX files (`train-images-idx3-ubyte[.gz]` …), any image size and classes.
    Idx,
    /// CIFAR-10 binary batches (`data_batch_1.bin` …, `test_batch.bin`), 3×32×32 colour.
    Cifar,
    /// Pictures in torchvision's `ImageFolder` layout: `train/<class>/*` and `test/<class>/*`,
    /// or only `<class>/*` (see [`super::folder`]).
    ImageFolder,
}

impl DataKind {
    /// How the kind is named in messages.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            DataKind::Idx => "MNIST-style IDX files",
            DataKind::Cifar => "CIFAR-10 binary batches",
            DataKind::ImageFolder => "an image folder (one folder of pictures per class)",
        }
    }
}

/// How a folder is read; every field has a default that suits MNIST.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Class names for IDX folders (`--classes`); otherwise from `classes.txt` or numbers.
    pub classes: Option<ClassNames>,
    /// The side images are resized to, for folders of pictures of any size (`--image-size`,
    /// from [`MIN_IMAGE_SIZE`](super::MIN_IMAGE_SIZE) to [`MAX_IMAGE_SIZE`](super::MAX_IMAGE_SIZE);
    /// [`DEFAULT_IMAGE_SIZE`](super::DEFAULT_IMAGE_SIZE) when `None`).
    pub image_size: Option<usize>,
    /// Turn colour pictures grey (`--grayscale`).
    pub grayscale: bool,
    /// Seeds what a reader draws at random (a held-out test share, a generated set).
    pub seed: u64,
}

/// How far a long load has come, for a progress bar: `done` of `total` images decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadProgress {
    /// Images read so far.
    pub done: usize,
    /// Images to read in all.
    pub total: usize,
}

/// Which kind of data `dir` holds, from the names of what is in it: IDX files by their names;
/// an image folder by a `train` folder, or a sub-folder holding a picture.
///
/// # Errors
/// [`DataError::FolderMissing`] / [`DataError::NotAFolder`], or
/// [`DataError::UnknownDataKind`] listing what each kind needs.
pub fn kind_of(dir: &Path) -> Result<DataKind, DataError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(DataError::NotAFolder { path: dir.to_path_buf() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::FolderMissing { dir: dir.to_path_buf() });
        }
        Err(_) => {}
    }
    let has_prefix = |prefix: &str| {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|entry| {
            let name = entry.file_name().to_string_lossy().replace('.', "-");
            name.starts_with(prefix)
        })
    };
    if has_prefix(TRAIN_IMAGES) || has_prefix(TEST_IMAGES) {
        return Ok(DataKind::Idx);
    }
    if cifar_folder(dir).is_some() {
        return Ok(DataKind::Cifar);
    }
    if looks_like_image_folder(dir) {
        return Ok(DataKind::ImageFolder);
    }
    Err(DataError::UnknownDataKind { dir: dir.to_path_buf() })
}

/// Reads `source` as options say, reporting progress on long loads.
///
/// # Errors
/// Any error of the kind's reader, naming the file and what is wrong.
pub fn load(
    source: &DataSource,
    options: &LoadOptions,
    progress: &(dyn Fn(LoadProgress) + Sync),
) -> Result<Splits, DataError> {
    match source {
        DataSource::Sample => embedded(),
        DataSource::Shapes => generate_shapes(options.seed, SHAPES_TRAIN, SHAPES_TEST, progress),
        DataSource::Folder(dir) => match kind_of(dir)? {
            DataKind::Idx => load_dir(dir, options.classes),
            DataKind::Cifar => load_cifar(dir, progress),
            DataKind::ImageFolder => load_folder(dir, options, progress),
        },
    }
}
