//! Datasets in memory, class names, and loading an MNIST-style folder.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::idx::{read_images_sized, read_labels_sized};
use super::{Batch, DataError};
use crate::fileio::{self, FileError};

/// Most bytes of `classes.txt` read.
const MAX_CLASSES_FILE: u64 = 1 << 20;

/// Side length of an MNIST image in pixels.
pub const MNIST_SIDE: usize = 28;
/// Number of classes in MNIST and Fashion-MNIST.
pub const NUM_CLASSES: usize = 10;

/// Which names to give the ten classes.
///
/// Parse it from a CLI string with [`str::parse`] / [`ClassNames::from_str`]: `"digits"` or
/// `"fashion"` (case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ClassNames {
    /// MNIST's handwritten digits: "0" to "9".
    #[default]
    Digits,
    /// Fashion-MNIST's clothing classes, from "T-shirt/top" to "Ankle boot".
    Fashion,
}

/// Fashion-MNIST's class names, in label order.
const FASHION_NAMES: [&str; NUM_CLASSES] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

impl ClassNames {
    /// The CLI spellings, for help texts.
    pub const VARIANTS: [&'static str; 2] = ["digits", "fashion"];

    /// The ten names in label order.
    #[must_use]
    pub fn names(self) -> Vec<String> {
        match self {
            ClassNames::Digits => (0..NUM_CLASSES).map(|d| d.to_string()).collect(),
            ClassNames::Fashion => FASHION_NAMES.iter().map(|&s| s.to_owned()).collect(),
        }
    }

    /// The CLI spelling of this choice.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ClassNames::Digits => "digits",
            ClassNames::Fashion => "fashion",
        }
    }
}

impl FromStr for ClassNames {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "digits" => Ok(ClassNames::Digits),
            "fashion" => Ok(ClassNames::Fashion),
            _ => Err(DataError::UnknownClassNames { value: s.to_owned() }),
        }
    }
}

impl fmt::Display for ClassNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One split (training or test) of an image-classification dataset, held as bytes (one per pixel
/// and channel) and turned into floats only per batch, so 60,000 colour 32×32 images take 184 MB.
///
/// The fields are public for reading; [`Dataset::new`] checks that they fit together. Methods
/// that index ([`image`](Self::image), [`label`](Self::label)) panic on out-of-range indices like
/// slices do; [`batch`](Self::batch) returns an error instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    /// `len() * channels * rows * cols` bytes, image after image, each channel after channel
    /// (C×H×W), row-major; for MNIST 0 is background and 255 ink, for colour 0–255 per channel.
    pub images: Vec<u8>,
    /// One label per image, each below `class_names.len()`.
    pub labels: Vec<u8>,
    /// Channels per image: 1 (grey) or 3 (red, green, blue).
    pub channels: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// The name of each class, indexed by label.
    pub class_names: Vec<String>,
}

impl fmt::Debug for Dataset {
    // The derived Debug would print every pixel.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("channels", &self.channels)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("class_names", &self.class_names)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// Builds a grey dataset (one channel) after checking that pixels, labels, image size and
    /// class names agree.
    ///
    /// # Errors
    /// [`DataError::InconsistentDataset`] if `images` is not `labels.len() * rows * cols` bytes
    /// or a label is not below `class_names.len()`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        Self::with_channels(images, labels, 1, rows, cols, class_names)
    }

    /// Builds a dataset of `channels`×`rows`×`cols` images (C×H×W bytes each) after checking
    /// that pixels, labels, image size and class names agree.
    ///
    /// # Errors
    /// [`DataError::InconsistentDataset`] if `images` is not `labels.len() * channels * rows *
    /// cols` bytes, `channels` is not 1 or 3, or a label is not below `class_names.len()`.
    pub fn with_channels(
        images: Vec<u8>,
        labels: Vec<u8>,
        channels: usize,
        rows: usize,
        cols: usize,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        if channels != 1 && channels != 3 {
            return Err(DataError::InconsistentDataset {
                reason: format!("{channels} channels per image: only grey (1) and colour (3) images are shown"),
            });
        }
        let expected =
            labels.len().checked_mul(channels).and_then(|n| n.checked_mul(rows)).and_then(|n| n.checked_mul(cols));
        if expected != Some(images.len()) {
            return Err(DataError::InconsistentDataset {
                reason: format!(
                    "{} pixel bytes for {} labels of {channels}×{rows}×{cols} images",
                    images.len(),
                    labels.len()
                ),
            });
        }
        if let Some(&label) = labels.iter().find(|&&l| usize::from(l) >= class_names.len()) {
            return Err(DataError::InconsistentDataset {
                reason: format!("label {label} but only {} class names", class_names.len()),
            });
        }
        Ok(Dataset { images, labels, channels, rows, cols, class_names })
    }

    /// Number of images (and labels).
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`channels * rows * cols`).
    #[must_use]
    pub fn image_len(&self) -> usize {
        // Saturating: the fields are public, and an absurd size must lead to an error in
        // `batch`, not an overflow panic.
        self.channels.saturating_mul(self.rows).saturating_mul(self.cols)
    }

    /// One image's shape, channels × height × width (the network's input).
    #[must_use]
    pub fn input_shape(&self) -> (usize, usize, usize) {
        (self.channels, self.rows, self.cols)
    }

    /// Whether the images are in colour (three channels).
    #[must_use]
    pub fn is_colour(&self) -> bool {
        self.channels == 3
    }

    /// Number of classes (the length of `class_names`).
    #[must_use]
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The `channels * rows * cols` bytes of image `i`, C×H×W.
    ///
    /// # Panics
    /// If `i >= len()` (like slice indexing).
    #[must_use]
    pub fn image(&self, i: usize) -> &[u8] {
        match self.get_image(i) {
            Some(pixels) => pixels,
            None => panic!("image index {i} out of range for a dataset of {} images", self.len()),
        }
    }

    /// The pixel bytes of image `i`, or `None` if there is no such image.
    #[must_use]
    pub fn get_image(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len() {
            return None;
        }
        let n = self.image_len();
        // Checked so that a huge index cannot wrap around to a valid-looking range.
        let start = i.checked_mul(n)?;
        self.images.get(start..start.checked_add(n)?)
    }

    /// The label (class number) of image `i`.
    ///
    /// # Panics
    /// If `i >= len()` (like slice indexing).
    #[must_use]
    pub fn label(&self, i: usize) -> usize {
        usize::from(self.labels[i])
    }

    /// The name of class `label`, if there is such a class.
    #[must_use]
    pub fn class_name(&self, label: usize) -> Option<&str> {
        self.class_names.get(label).map(String::as_str)
    }

    /// Gathers the images at `indices` into a batch of `f32` pixels in `[0, 1]`.
    ///
    /// # Shapes
    /// `indices.len() = N` → `images: N × channels × rows × cols`, `labels: N`, `indices: N`.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] if an index is not below [`len`](Self::len) (for instance
    /// a sampler made for another dataset), [`DataError::InconsistentDataset`] if the fields
    /// were changed so that an image's pixels are missing.
    pub fn batch(&self, indices: &[usize]) -> Result<Batch, DataError> {
        Batch::gather(self, indices)
    }
}

/// The training and test splits of a dataset: the same image shape and classes in both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    /// The training split (60,000 images for the full MNIST).
    pub train: Dataset,
    /// The test split (10,000 images for the full MNIST).
    pub test: Dataset,
    /// Where the data came from, for display: a folder path or "embedded MNIST sample (…)".
    pub source: String,
    /// What the reader decided that the user should know, one sentence each: a held-out test
    /// share, files skipped as not images, images resized or turned grey.
    pub notes: Vec<String>,
}

impl Splits {
    /// Joins two splits after checking that their images and classes agree.
    ///
    /// # Errors
    /// [`DataError::InconsistentDataset`] naming what differs.
    pub fn new(train: Dataset, test: Dataset, source: String, notes: Vec<String>) -> Result<Self, DataError> {
        if train.input_shape() != test.input_shape() {
            let (a, b) = (train.input_shape(), test.input_shape());
            return Err(DataError::InconsistentDataset {
                reason: format!(
                    "the training images are {}×{}×{} but the test images are {}×{}×{}",
                    a.0, a.1, a.2, b.0, b.1, b.2
                ),
            });
        }
        if train.class_names != test.class_names {
            return Err(DataError::InconsistentDataset {
                reason: format!(
                    "the training classes ({}) differ from the test classes ({})",
                    train.class_names.join(", "),
                    test.class_names.join(", ")
                ),
            });
        }
        Ok(Splits { train, test, source, notes })
    }

    /// One image's shape, channels × height × width.
    #[must_use]
    pub fn input_shape(&self) -> (usize, usize, usize) {
        self.train.input_shape()
    }

    /// The class names, indexed by label.
    #[must_use]
    pub fn class_names(&self) -> &[String] {
        &self.train.class_names
    }
}

/// The four files of an MNIST-style folder, by canonical name.
pub(crate) const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub(crate) const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub(crate) const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub(crate) const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The optional file that names the classes, one per line.
pub const CLASSES_FILE: &str = "classes.txt";

/// Loads the four MNIST IDX files from `dir`.
///
/// Each file may be spelled `train-images-idx3-ubyte` or `train-images.idx3-ubyte` (the name
/// stored inside the original archives), with or without `.gz`; compression is detected from the
/// content, not the name. When more than one spelling of a file is present (say the raw file
/// and its `.gz`), all are read and must hold the same data; if they differ the folder is
/// refused ([`DataError::Ambiguous`]) rather than one of them being taken silently. Every file
/// must be a regular file (or a link to one): a named pipe, device or symlink loop is refused by
/// name. Each split must hold at least one image. Class names come from `classes`, else from a
/// `classes.txt` in `dir` (one name per line, ten lines), else they are the digits "0" to "9".
///
/// # Errors
/// [`DataError::FolderMissing`] / [`DataError::NotAFolder`] for a bad `dir`,
/// [`DataError::MissingFile`] listing the names tried, [`DataError::File`] for a file that is
/// not a regular file, [`DataError::Ambiguous`], [`DataError::EmptySplit`],
/// [`DataError::ClassesFile`] for a `classes.txt` with the wrong number of names,
/// [`DataError::CountMismatch`] when images and labels disagree, and any error of
/// [`read_images`](super::read_images) / [`read_labels`](super::read_labels).
pub fn load_dir(dir: &Path, classes: Option<ClassNames>) -> Result<Splits, DataError> {
    check_folder(dir)?;
    let named = given_names(dir, classes)?;
    // Find all four before reading any, so a missing file is reported at once rather than after
    // seconds of decompressing the others.
    let paths = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS].map(|f| find_files(dir, f));
    let [train_images, train_labels, test_images, test_labels] = paths;
    let (train_images, train_labels, test_images, test_labels) =
        (train_images?, train_labels?, test_images?, test_labels?);
    let train = read_split(&train_images, &train_labels, "training")?;
    let test = read_split(&test_images, &test_labels, "test")?;
    if (train.images.rows, train.images.cols) != (test.images.rows, test.images.cols) {
        return Err(DataError::SplitSizes {
            train_name: train.images_name,
            test_name: test.images_name,
            train: (1, train.images.rows, train.images.cols),
            test: (1, test.images.rows, test.images.cols),
        });
    }
    let class_names = decide_names(named, &[&train, &test])?;
    let (train, test) = (train.into_dataset(&class_names)?, test.into_dataset(&class_names)?);
    Splits::new(train, test, dir.display().to_string(), Vec::new())
}

/// Loads only the test split of `dir` (the two `t10k-*` files), as [`load_dir`] does, for
/// evaluating: the training files are not looked at, so a missing or damaged training file does
/// not stop an evaluation that does not need it.
///
/// # Errors
/// As [`load_dir`], for the test files only.
pub fn load_test_dir(dir: &Path, classes: Option<ClassNames>) -> Result<Dataset, DataError> {
    check_folder(dir)?;
    let named = given_names(dir, classes)?;
    let (images, labels) = (find_files(dir, TEST_IMAGES), find_files(dir, TEST_LABELS));
    let test = read_split(&images?, &labels?, "test")?;
    let class_names = decide_names(named, &[&test])?;
    test.into_dataset(&class_names)
}

/// The class names of a names file (`classes.txt`, CIFAR's `batches.meta.txt`): one per
/// non-empty line, trimmed. Editors on Windows add a byte-order mark and \r\n; neither belongs
/// in a class name.
pub(crate) fn name_lines(text: &str) -> Vec<String> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The largest label over `sources` (each a file and its labels), with the first file and
/// position holding it, for a message naming where it is.
pub(crate) fn largest_label<'a, T>(sources: impl Iterator<Item = (&'a T, &'a [u8])>) -> Option<(&'a T, usize, u8)> {
    let mut largest: Option<(&T, usize, u8)> = None;
    for (source, labels) in sources {
        if let Some((index, &label)) = labels.iter().enumerate().max_by_key(|&(i, &l)| (l, std::cmp::Reverse(i)))
            && largest.is_none_or(|(_, _, l)| label > l)
        {
            largest = Some((source, index, label));
        }
    }
    largest
}

/// Class names given before the labels are read: by `--classes` or by a `classes.txt`.
enum GivenNames {
    /// `--classes digits|fashion`.
    Option(ClassNames),
    /// The lines of this `classes.txt`.
    File(PathBuf, Vec<String>),
    /// Neither: numbers, as many as the labels need.
    None,
}

fn given_names(dir: &Path, classes: Option<ClassNames>) -> Result<GivenNames, DataError> {
    Ok(match classes {
        Some(choice) => GivenNames::Option(choice),
        None => match read_classes_file(dir)? {
            Some(names) => GivenNames::File(dir.join(CLASSES_FILE), names),
            None => GivenNames::None,
        },
    })
}

/// The class names for labels read from `splits`, checked against the labels: every label
/// must have a name. Without names, MNIST-style folders (labels below 10) get the digits and
/// others (EMNIST's 26 or 47 classes) numbers up to their largest label.
fn decide_names(named: GivenNames, splits: &[&RawSplit]) -> Result<Vec<String>, DataError> {
    let largest = largest_label(splits.iter().map(|&split| (split, split.labels.as_slice())));
    let needed = largest.map_or(0, |(_, _, l)| usize::from(l) + 1);
    let names = match named {
        GivenNames::Option(choice) => choice.names(),
        GivenNames::File(path, names) => {
            if names.len() < needed {
                return Err(DataError::ClassesFile { path, found: names.len(), expected: needed });
            }
            names
        }
        GivenNames::None if needed <= NUM_CLASSES => ClassNames::Digits.names(),
        GivenNames::None => (0..needed).map(|i| i.to_string()).collect(),
    };
    if let Some((split, index, label)) = largest
        && usize::from(label) >= names.len()
    {
        return Err(DataError::LabelOutOfRange {
            name: split.labels_name.clone(),
            index,
            label,
            num_classes: names.len(),
        });
    }
    Ok(names)
}

/// Refuses a `dir` that does not exist or is not a folder.
fn check_folder(dir: &Path) -> Result<(), DataError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DataError::NotAFolder { path: dir.to_path_buf() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DataError::FolderMissing { dir: dir.to_path_buf() }),
        Err(source) => Err(FileError::from_io(dir, "open the dataset folder", source).into()),
    }
}

/// The spellings accepted for one canonical file name, in the order they are tried.
fn spellings(canonical: &str) -> Vec<String> {
    // "train-images-idx3-ubyte" → "train-images.idx3-ubyte": the last '-' before "idx" is a dot
    // in the names stored inside the original archives.
    let dotted = match canonical.rfind("-idx") {
        Some(i) => format!("{}.{}", &canonical[..i], &canonical[i + 1..]),
        None => canonical.to_owned(),
    };
    vec![canonical.to_owned(), format!("{canonical}.gz"), dotted.clone(), format!("{dotted}.gz")]
}

/// Every spelling of `canonical` that exists in `dir`, in the order of [`spellings`]. Anything
/// there counts, so that a named pipe or a broken link is refused by name when it is opened
/// instead of being reported as missing.
fn find_files(dir: &Path, canonical: &str) -> Result<Vec<PathBuf>, DataError> {
    let tried = spellings(canonical);
    let found: Vec<PathBuf> = tried
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| !matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound))
        .collect();
    if found.is_empty() {
        return Err(DataError::MissingFile { file: canonical.to_owned(), dir: dir.to_path_buf(), tried });
    }
    Ok(found)
}

/// Opens a data file if it is a regular file, with its length.
fn open(path: &Path) -> Result<(BufReader<File>, u64), DataError> {
    let file = fileio::open_regular(path)?;
    let size = file.metadata().map_err(|source| DataError::Io { name: path.display().to_string(), source })?.len();
    Ok((BufReader::with_capacity(1 << 16, file), size))
}

/// Reads every spelling in `paths` with `read` and returns the first's contents and name,
/// refusing spellings whose contents differ.
fn read_agreeing<T: PartialEq>(
    paths: &[PathBuf],
    read: impl Fn(&Path, &str) -> Result<T, DataError>,
) -> Result<(T, String), DataError> {
    let Some((first, others)) = paths.split_first() else {
        return Err(DataError::InconsistentDataset { reason: "no file to read".into() });
    };
    let name = first.display().to_string();
    let value = read(first, &name)?;
    for other in others {
        if read(other, &other.display().to_string())? != value {
            return Err(DataError::Ambiguous { first: first.clone(), second: other.clone() });
        }
    }
    Ok((value, name))
}

/// One split's files read but not yet given class names.
struct RawSplit {
    images: super::IdxImages,
    labels: Vec<u8>,
    images_name: String,
    labels_name: String,
}

impl RawSplit {
    fn into_dataset(self, class_names: &[String]) -> Result<Dataset, DataError> {
        pair(self.images, self.labels, &self.images_name, &self.labels_name, class_names)
    }
}

fn read_split(images_paths: &[PathBuf], labels_paths: &[PathBuf], split: &'static str) -> Result<RawSplit, DataError> {
    let (images, images_name) = read_agreeing(images_paths, |path, name| {
        let (reader, size) = open(path)?;
        read_images_sized(reader, Some(size), name, None)
    })?;
    let (labels, labels_name) = read_agreeing(labels_paths, |path, name| {
        let (reader, size) = open(path)?;
        // Every byte is a possible label here; the class names decide which are valid.
        read_labels_sized(reader, Some(size), name, 256)
    })?;
    if images.count == 0 {
        return Err(DataError::EmptySplit { images_name, split });
    }
    Ok(RawSplit { images, labels, images_name, labels_name })
}

/// Joins an image file and its label file into a dataset, checking that the counts agree.
pub(crate) fn pair(
    images: super::IdxImages,
    labels: Vec<u8>,
    images_name: &str,
    labels_name: &str,
    class_names: &[String],
) -> Result<Dataset, DataError> {
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            labels_name: labels_name.to_owned(),
            images_name: images_name.to_owned(),
            labels: labels.len(),
            images: images.count,
        });
    }
    Ok(Dataset {
        images: images.pixels,
        labels,
        channels: 1,
        rows: images.rows,
        cols: images.cols,
        class_names: class_names.to_vec(),
    })
}

/// Reads `dir/classes.txt` if there is one: one class name per non-empty line, in label order,
/// at least two.
fn read_classes_file(dir: &Path) -> Result<Option<Vec<String>>, DataError> {
    let path = dir.join(CLASSES_FILE);
    let file = match fileio::open_regular(&path) {
        Ok(file) => file,
        Err(FileError::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // Ten names take a few hundred bytes; a huge file is not a class list.
    let mut text = String::new();
    file.take(MAX_CLASSES_FILE)
        .read_to_string(&mut text)
        .map_err(|source| DataError::Io { name: path.display().to_string(), source })?;
    let names = name_lines(&text);
    if names.len() < 2 {
        return Err(DataError::ClassesFile { path, found: names.len(), expected: 2 });
    }
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::spellings;

    #[test]
    fn both_spellings_with_and_without_gz_are_tried() {
        assert_eq!(
            spellings("t10k-labels-idx1-ubyte"),
            [
                "t10k-labels-idx1-ubyte",
                "t10k-labels-idx1-ubyte.gz",
                "t10k-labels.idx1-ubyte",
                "t10k-labels.idx1-ubyte.gz"
            ]
        );
    }
}
