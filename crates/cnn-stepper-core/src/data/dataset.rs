//! Datasets in memory, class names, and loading an MNIST-style folder.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::idx::{read_images, read_labels};
use super::{Batch, DataError};

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

/// One split (training or test) of an image-classification dataset, held as the raw bytes of the
/// IDX files.
///
/// The fields are public for reading; [`Dataset::new`] checks that they fit together. Methods
/// that index ([`image`](Self::image), [`label`](Self::label)) panic on out-of-range indices like
/// slices do; [`batch`](Self::batch) returns an error instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    /// `len() * rows * cols` pixel bytes, image after image, row-major; 0 is background, 255 ink.
    pub images: Vec<u8>,
    /// One label per image, each below `class_names.len()`.
    pub labels: Vec<u8>,
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
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("class_names", &self.class_names)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// Builds a dataset after checking that pixels, labels, image size and class names agree.
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
        let expected = labels.len().checked_mul(rows).and_then(|n| n.checked_mul(cols));
        if expected != Some(images.len()) {
            return Err(DataError::InconsistentDataset {
                reason: format!("{} pixel bytes for {} labels of {rows}×{cols} images", images.len(), labels.len()),
            });
        }
        if let Some(&label) = labels.iter().find(|&&l| usize::from(l) >= class_names.len()) {
            return Err(DataError::InconsistentDataset {
                reason: format!("label {label} but only {} class names", class_names.len()),
            });
        }
        Ok(Dataset { images, labels, rows, cols, class_names })
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

    /// Pixels per image (`rows * cols`).
    #[must_use]
    pub fn image_len(&self) -> usize {
        // Saturating: the fields are public, and an absurd size must lead to an error in
        // `batch`, not an overflow panic.
        self.rows.saturating_mul(self.cols)
    }

    /// Number of classes (the length of `class_names`).
    #[must_use]
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The `rows * cols` pixel bytes of image `i`, row-major.
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
    /// `indices.len() = N` → `images: N × 1 × rows × cols`, `labels: N`, `indices: N`.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] if an index is not below [`len`](Self::len) (for instance
    /// a sampler made for another dataset), [`DataError::InconsistentDataset`] if the fields
    /// were changed so that an image's pixels are missing.
    pub fn batch(&self, indices: &[usize]) -> Result<Batch, DataError> {
        Batch::gather(self, indices)
    }
}

/// The training and test splits of an MNIST-style dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mnist {
    /// The training split (60,000 images for the full MNIST).
    pub train: Dataset,
    /// The test split (10,000 images for the full MNIST).
    pub test: Dataset,
    /// Where the data came from, for display: a folder path or "embedded MNIST sample (…)".
    pub source: String,
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
/// content, not the name. Class names come from `classes`, else from a `classes.txt` in `dir`
/// (one name per line, ten lines), else they are the digits "0" to "9".
///
/// # Errors
/// [`DataError::FolderMissing`] / [`DataError::NotAFolder`] for a bad `dir`,
/// [`DataError::MissingFile`] listing the names tried, [`DataError::ClassesFile`] for a
/// `classes.txt` with the wrong number of names, [`DataError::CountMismatch`] when images and
/// labels disagree, and any error of [`read_images`] / [`read_labels`].
pub fn load_dir(dir: &Path, classes: Option<ClassNames>) -> Result<Mnist, DataError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(DataError::NotAFolder { path: dir.to_path_buf() });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::FolderMissing { dir: dir.to_path_buf() });
        }
        Err(source) => {
            return Err(DataError::Io { name: dir.display().to_string(), source });
        }
    }
    let class_names = match classes {
        Some(choice) => choice.names(),
        None => read_classes_file(dir)?.unwrap_or_else(|| ClassNames::Digits.names()),
    };
    // Find all four before reading any, so a missing file is reported at once rather than after
    // seconds of decompressing the others.
    let paths = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS].map(|f| find_file(dir, f));
    let [train_images, train_labels, test_images, test_labels] = paths;
    let train = load_split(&train_images?, &train_labels?, &class_names)?;
    let test = load_split(&test_images?, &test_labels?, &class_names)?;
    Ok(Mnist { train, test, source: dir.display().to_string() })
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

fn find_file(dir: &Path, canonical: &str) -> Result<PathBuf, DataError> {
    let tried = spellings(canonical);
    tried.iter().map(|name| dir.join(name)).find(|path| path.is_file()).ok_or_else(|| DataError::MissingFile {
        file: canonical.to_owned(),
        dir: dir.to_path_buf(),
        tried,
    })
}

fn open(path: &Path) -> Result<BufReader<File>, DataError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|source| DataError::Io { name: path.display().to_string(), source })
}

fn load_split(images_path: &Path, labels_path: &Path, class_names: &[String]) -> Result<Dataset, DataError> {
    let images_name = images_path.display().to_string();
    let labels_name = labels_path.display().to_string();
    let images = read_images(open(images_path)?, &images_name, MNIST_SIDE, MNIST_SIDE)?;
    let labels = read_labels(open(labels_path)?, &labels_name, class_names.len())?;
    pair(images, labels, &images_name, &labels_name, class_names)
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
        rows: images.rows,
        cols: images.cols,
        class_names: class_names.to_vec(),
    })
}

/// Reads `dir/classes.txt` if there is one: one class name per non-empty line, exactly
/// [`NUM_CLASSES`] of them.
fn read_classes_file(dir: &Path) -> Result<Option<Vec<String>>, DataError> {
    let path = dir.join(CLASSES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DataError::Io { name: path.display().to_string(), source });
        }
    };
    // Editors on Windows add a byte-order mark and \r\n; neither belongs in a class name.
    let names: Vec<String> = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() != NUM_CLASSES {
        return Err(DataError::ClassesFile { path, found: names.len(), expected: NUM_CLASSES });
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
